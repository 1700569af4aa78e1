//! Pure planning for Cloud Functions (2nd gen): declared posture + observed
//! function → findings and the ordered writes that would fix them.
//!
//! Safety rules: an action only removes access or adds what the posture
//! declares; the roles of an account change only when zerofn minted it
//! (its uniqueId is on record) or the posture opted in and the account is
//! provably exclusive — otherwise the function moves to a dedicated account
//! zerofn mints, or the finding is reported; IAM changes are member-scoped
//! deltas, so no other member and no conditional binding is touched; the
//! function's own event trigger keeps its invoke grant; build settings and
//! event triggers are reported, never changed.

use super::action::{FunctionField, GcpAction, MemberRole};
use super::ingress::{Reach, private_reach};
use super::model::{BinAuthz, InvokeGrant, ObservedFunction, RunService, ServiceState, SinkState};
use super::names;
use super::observe::INVOKER;
use crate::api::{GcpEgress, GcpIngress, GcpTriggers, IdentityControl, Mode, PublicAccess, TriggerControl};
use crate::findings::{Control, Finding, Severity};
use crate::providers::assemble::{self, Ownership, Phase, PlanBuilder};
use crate::providers::patch::Patch;
use crate::providers::{Note, Plan, Posture};
use std::collections::BTreeSet;

const PUBLIC_MEMBERS: [&str; 2] = ["allUsers", "allAuthenticatedUsers"];
const BROAD_ROLES: [&str; 3] = ["roles/owner", "roles/editor", "roles/iam.securityAdmin"];

/// A plan in the making: the phased actions and findings, and the fields of
/// the one PATCH of the function that every control adds to.
#[derive(Default)]
struct Builder {
    plan: PlanBuilder<GcpAction>,
    patch: Patch<FunctionField>,
    notes: Vec<Note>,
}

impl Builder {
    fn finding(&mut self, f: Finding) {
        self.plan.finding(f);
    }
}

pub fn ingress_name(i: GcpIngress) -> &'static str {
    match i {
        GcpIngress::AllowInternalOnly => "ALLOW_INTERNAL_ONLY",
        GcpIngress::AllowInternalAndGclb => "ALLOW_INTERNAL_AND_GCLB",
        GcpIngress::AllowAll => "ALLOW_ALL",
    }
}

pub fn egress_name(e: GcpEgress) -> &'static str {
    match e {
        GcpEgress::AllTraffic => "ALL_TRAFFIC",
        GcpEgress::PrivateRangesOnly => "PRIVATE_RANGES_ONLY",
    }
}

/// The order of the writes: a new account is created (Create) and given
/// its roles (Grant) before the one PATCH switches the function to it
/// (Configure); the invokers of its service change last (Revoke).
pub fn plan(p: &Posture, o: &ObservedFunction) -> Plan<GcpAction> {
    let mut b = Builder::default();
    let mine = names::owner_label_value(&p.owner);
    let owner = assemble::ownership(
        p.mode() == Mode::Enforce,
        o.labels.get(names::OWNER_LABEL).map(String::as_str),
        &mine,
        |v| format!("label {}={v}", names::OWNER_LABEL),
    );
    let mut proposals = Vec::new();
    if let Some(id) = &p.spec.identity {
        identity(id, o, &mut b);
        proposals.extend(unused_roles(id, o, &mut b));
    }
    if let Some(t) = &p.spec.triggers {
        triggers(t, o, &mut b);
    }
    network(p, o, &mut b);
    supply_chain(p, o, &mut b);
    if p.spec
        .observability
        .as_ref()
        .and_then(|x| x.gcp.as_ref())
        .is_some_and(|g| g.require_logs_kept)
    {
        logs_kept(o, &mut b);
    }
    if p.spec
        .observability
        .as_ref()
        .is_some_and(|x| x.tracing.is_some() || x.structured_logs.is_some())
    {
        b.notes.push(Note {
            control: Control::Observability,
            reason: crate::reason::Reason::NotApplicable,
            message:
                "Cloud Functions send logs and traces to Cloud Logging and Cloud Trace on their own; nothing to enforce"
                    .into(),
        });
    }
    let blocked = match owner {
        Ownership::Blocked(blocked) => Some(blocked),
        // The claim is a field of the one PATCH (one redeploy), named last
        // in it, so it lands with the configuration, not before it.
        Ownership::Unclaimed => {
            b.patch.set(FunctionField::Claim(mine));
            None
        }
        Ownership::Held => None,
    };
    if !b.patch.is_empty() {
        b.plan.push(
            Phase::Configure,
            GcpAction::PatchFunction {
                name: o.name.clone(),
                patch: b.patch,
            },
        );
    }
    let assembled = b.plan.assemble(blocked.as_ref());
    Plan {
        function: format!("{}/{}", o.location, o.id),
        principal: Some(o.service_account.clone()).filter(|s| !s.is_empty()),
        findings: assembled.findings,
        actions: assembled.actions,
        blocked,
        notes: b.notes,
        proposals,
    }
}

/// Declared roles the account has not used within the window: Low
/// findings and the narrower list, never a write.
fn unused_roles(id: &IdentityControl, o: &ObservedFunction, b: &mut Builder) -> Option<crate::findings::Proposal> {
    let wanted = id.unused_permissions.as_ref()?;
    let declared = id.gcp.as_ref().and_then(|g| g.roles.as_deref()).unwrap_or_default();
    let (findings, proposal) = super::unused::judge(declared, wanted, o.role_usage.as_ref());
    for f in findings {
        b.plan.finding(f);
    }
    proposal
}

fn member(email: &str) -> String {
    format!("serviceAccount:{email}")
}

/// Why zerofn may change the project roles of the account the function runs
/// as (the identity rule), or why it may not.
fn edit_authority(id: &IdentityControl, o: &ObservedFunction) -> Result<String, String> {
    let account = o.account();
    if o.runs_as_default() {
        return Err(format!(
            "{account} is a default account of the project, which every default workload shares"
        ));
    }
    if !o.shared_with.is_empty() {
        return Err(format!("{account} is also used by {}", o.shared_with.join(", ")));
    }
    let Some(uid) = &o.service_account_unique_id else {
        return Err(format!("{account} is not a service account of project {}", o.project));
    };
    if o.minted.contains(uid) {
        return Ok(format!("{account} was minted by zerofn (uniqueId {uid})"));
    }
    if !id.edit_in_place_if_exclusive {
        return Err(format!(
            "zerofn did not mint {account} (no record of its uniqueId {uid}) and identity.editInPlaceIfExclusive is off"
        ));
    }
    exclusive(o)
}

/// Whether an opted-in account is provably the function's alone.
fn exclusive(o: &ObservedFunction) -> Result<String, String> {
    let account = o.account();
    let not_proved = |why: String| Err(format!("{account} cannot be proved exclusive to this function: {why}"));
    let Some(ex) = &o.exclusivity else {
        return not_proved("who else uses it was not observed".into());
    };
    match &ex.actors {
        None => return not_proved("its own IAM policy could not be read".into()),
        Some(a) if !a.is_empty() => {
            return not_proved(format!(
                "its IAM policy lets {} act as it",
                a.iter().cloned().collect::<Vec<_>>().join(", ")
            ));
        }
        Some(_) => {}
    }
    if !ex.unobserved.is_empty() {
        return not_proved(format!(
            "zerofn does not observe whether {} run as it",
            ex.unobserved.join(", ")
        ));
    }
    Ok(format!(
        "{account} is opted in (editInPlaceIfExclusive) and exclusive: a user-managed account of {} that no other function runs as and that nobody else may act as",
        o.project
    ))
}

/// The dedicated account the function could be moved to.
enum MintTarget {
    /// It does not exist yet: create it.
    Create,
    /// zerofn minted it (its uniqueId is on record): reuse it.
    Reuse(BTreeSet<String>),
    /// An account of that name exists, but nothing proves zerofn made it:
    /// it is never adopted.
    Unproven(String),
}

fn mint_target(o: &ObservedFunction) -> MintTarget {
    match &o.dedicated {
        None => MintTarget::Create,
        Some(d) if o.minted.contains(&d.unique_id) => MintTarget::Reuse(d.roles.clone()),
        Some(d) => MintTarget::Unproven(d.unique_id.clone()),
    }
}

/// What the identity checks decide from, worked out once.
struct Identity<'a> {
    id: &'a IdentityControl,
    o: &'a ObservedFunction,
    /// The declared project roles, if the posture declares them.
    declared: Option<BTreeSet<String>>,
    /// The account the function runs as now.
    account: String,
    /// The dedicated account zerofn mints for it.
    dedicated: String,
    target: MintTarget,
    /// Why the current account's roles may (Ok) or may not (Err) change.
    authority: Result<String, String>,
    /// Whether the function may move to the dedicated account: it is (or
    /// will be) provably zerofn's and not the account already in use.
    can_switch: bool,
}

impl<'a> Identity<'a> {
    fn new(id: &'a IdentityControl, o: &'a ObservedFunction) -> Self {
        let declared: Option<BTreeSet<String>> = id
            .gcp
            .as_ref()
            .and_then(|g| g.roles.as_ref())
            .map(|r| r.iter().cloned().collect());
        let account = o.account();
        let dedicated = names::account_email(&names::dedicated_account_id(&o.id, &o.name), &o.project);
        let target = mint_target(o);
        let can_switch = id.create_if_shared
            && declared.is_some()
            && account != dedicated
            && !matches!(target, MintTarget::Unproven(_));
        Identity {
            id,
            o,
            declared,
            account,
            dedicated,
            target,
            authority: edit_authority(id, o),
            can_switch,
        }
    }

    /// Why an existing account of the dedicated name is not used, if so.
    fn unproven_note(&self) -> String {
        match &self.target {
            MintTarget::Unproven(uid) => format!(
                "; {} exists but zerofn has no record of creating it (uniqueId {uid}), so it is not adopted",
                self.dedicated
            ),
            _ => String::new(),
        }
    }

    /// Create (if needed) the dedicated account, give it exactly the
    /// declared roles and switch the function to it. The old account is not
    /// touched.
    fn mint_and_switch(&self, want: &BTreeSet<String>, b: &mut Builder) {
        let o = self.o;
        let have = match &self.target {
            MintTarget::Create => {
                b.plan.push(
                    Phase::Create,
                    GcpAction::CreateServiceAccount {
                        project: o.project.clone(),
                        account_id: names::dedicated_account_id(&o.id, &o.name),
                        display_name: format!("{}{}", names::MANAGED_DISPLAY_PREFIX, o.id),
                    },
                );
                BTreeSet::new()
            }
            MintTarget::Reuse(roles) => roles.clone(),
            MintTarget::Unproven(_) => return,
        };
        let add: Vec<String> = want.difference(&have).cloned().collect();
        let remove: Vec<String> = have.difference(want).cloned().collect();
        if !add.is_empty() || !remove.is_empty() {
            b.plan.push(
                Phase::Grant,
                GcpAction::UpdateProjectRoles {
                    project: o.project.clone(),
                    member: member(&self.dedicated),
                    add,
                    remove,
                },
            );
        }
        b.patch.set(FunctionField::ServiceAccount(self.dedicated.clone()));
    }
}

fn identity(id: &IdentityControl, o: &ObservedFunction, b: &mut Builder) {
    let cx = Identity::new(id, o);
    let shares = o.runs_as_default() || !o.shared_with.is_empty();
    let switching = id.dedicated && shares && own_account(&cx, b);
    if let Some(want) = &cx.declared {
        declared_roles(&cx, want, switching, b);
    }
}

/// The function shares its account (the project's default one, or another
/// function's): report it, and move the function to the dedicated account
/// when it may. Whether it moves.
fn own_account(cx: &Identity, b: &mut Builder) -> bool {
    let o = cx.o;
    let account = &cx.account;
    let (check, problem) = if o.runs_as_default() {
        (
            "gcp.identity.defaultServiceAccount",
            format!("runs as the default account {account}, which every default workload of the project shares"),
        )
    } else {
        (
            "gcp.identity.sharedServiceAccount",
            format!("shares {account} with {}", o.shared_with.join(", ")),
        )
    };
    let message = if cx.can_switch {
        format!(
            "the function {problem}; it moves to the dedicated account {}, which holds only the declared roles (the old account is left as it is)",
            cx.dedicated
        )
    } else {
        format!(
            "the function {problem}: a compromise of one is a compromise of all; set identity.createIfShared to give it its own account{}",
            cx.unproven_note()
        )
    };
    b.finding(
        Finding::builder(Control::Identity, check, "serviceConfig.serviceAccountEmail")
            .observed(if o.shared_with.is_empty() {
                account.clone()
            } else {
                format!("{account} (also used by {})", o.shared_with.join(", "))
            })
            .desired(if cx.can_switch {
                cx.dedicated.clone()
            } else {
                "a service account only this function uses".into()
            })
            .severity(Severity::High)
            .remediable(cx.can_switch)
            .message(message),
    );
    match (&cx.declared, cx.can_switch) {
        (Some(want), true) => {
            cx.mint_and_switch(want, b);
            true
        }
        _ => false,
    }
}

/// How drift in the account's roles is fixed: by moving the function, by
/// changing the roles in place, or not at all (and why).
struct RoleFix {
    switching: bool,
    in_place: bool,
    /// Appended to each finding's message.
    why: String,
}

/// The account's project roles against the declared ones. An account
/// zerofn may not change is left alone (the identity rule) and the function
/// moves to one zerofn minted, when it may.
fn declared_roles(cx: &Identity, want: &BTreeSet<String>, switching: bool, b: &mut Builder) {
    let o = cx.o;
    let extra: Vec<String> = o.project_roles.difference(want).cloned().collect();
    let missing: Vec<String> = want.difference(&o.project_roles).cloned().collect();
    let drift = !extra.is_empty() || !missing.is_empty();
    let in_place = !switching && cx.authority.is_ok();
    let mut switching = switching;
    if drift && !switching && !in_place && cx.can_switch {
        cx.mint_and_switch(want, b);
        switching = true;
    }
    let fix = RoleFix {
        switching,
        in_place,
        why: role_fix_reason(cx, switching),
    };
    role_findings(cx, &extra, &missing, &fix, b);
    conditional_role_findings(cx, want, fix.switching, b);
    if fix.in_place && drift {
        // One write that sets the account's roles to the declared ones.
        b.plan.push(
            Phase::Grant,
            GcpAction::UpdateProjectRoles {
                project: o.project.clone(),
                member: member(&cx.account),
                add: missing,
                remove: extra,
            },
        );
    }
}

fn role_fix_reason(cx: &Identity, switching: bool) -> String {
    let account = &cx.account;
    match (&cx.authority, switching) {
        (_, true) => format!(
            "; the function moves to {}, which holds only the declared roles{}",
            cx.dedicated,
            cx.authority
                .as_ref()
                .err()
                .map(|w| format!(", and {account} is not changed ({w})"))
                .unwrap_or_default()
        ),
        (Ok(case), false) => format!("; changed in place: {case}"),
        (Err(w), false) => format!(
            "; its roles are not changed: {w}{}{}",
            cx.unproven_note(),
            if cx.id.create_if_shared {
                ""
            } else {
                "; set identity.createIfShared to move the function to an account zerofn mints"
            }
        ),
    }
}

fn role_findings(cx: &Identity, extra: &[String], missing: &[String], fix: &RoleFix, b: &mut Builder) {
    let (o, account) = (cx.o, &cx.account);
    let fixable = fix.switching || fix.in_place;
    let why = &fix.why;
    for role in extra {
        let broad = BROAD_ROLES.contains(&role.as_str());
        b.finding(
            Finding::builder(
                Control::Identity,
                "gcp.identity.undeclaredRole",
                format!("projects/{}:bindings[{role}]", o.project),
            )
            .observed(format!("{} holds {role}", member(account)))
            .desired("only the declared roles")
            .severity(if broad { Severity::Critical } else { Severity::High })
            .remediable(fixable)
            .message(format!(
                "{account} holds {role} on the project, which is not declared{why}"
            )),
        );
    }
    for role in missing {
        b.finding(
            Finding::builder(
                Control::Identity,
                "gcp.identity.missingRole",
                format!("projects/{}:bindings[{role}]", o.project),
            )
            .observed("absent")
            .desired(format!("{} holds {role}", member(account)))
            .severity(Severity::Low)
            .remediable(fixable)
            .message(format!("{account} lacks the declared role {role}{why}")),
        );
    }
}

/// Conditional bindings zerofn did not write are never changed; only a move
/// to the dedicated account leaves them behind.
fn conditional_role_findings(cx: &Identity, want: &BTreeSet<String>, switching: bool, b: &mut Builder) {
    let (o, account) = (cx.o, &cx.account);
    for role in o.conditional_roles.difference(want) {
        b.finding(
            Finding::builder(
                Control::Identity,
                "gcp.identity.conditionalRole",
                format!("projects/{}:bindings[{role}]", o.project),
            )
            .observed(format!("{} holds {role} under a condition", member(account)))
            .desired("only the declared roles")
            .severity(Severity::Medium)
            .remediable(switching)
            .message(if switching {
                format!(
                    "{account} holds {role} under a condition; the function moves to {}, which holds only the declared roles",
                    cx.dedicated
                )
            } else {
                format!(
                    "{account} holds {role} under a condition; zerofn does not change conditional bindings it did not write"
                )
            }),
        );
    }
}

fn triggers(t: &TriggerControl, o: &ObservedFunction, b: &mut Builder) {
    let g: GcpTriggers = t.gcp.clone().unwrap_or_default();
    ingress(t, &g, o, b);
    if g.require_private_ingress {
        private_ingress(declared_ingress(t, &g), o, b);
    }
    if let Some(grants) = &o.invokers {
        invokers(t, &g, grants, o, b);
    }
    unjudged_roles(o, b);
    if let (Some(allow), Some(et)) = (&g.event_trigger, &o.event_trigger) {
        let checks = [
            (
                "gcp.triggers.eventServiceAccount",
                "eventTrigger.serviceAccountEmail",
                &et.service_account,
                &allow.service_accounts,
                "service account",
            ),
            (
                "gcp.triggers.eventTopic",
                "eventTrigger.pubsubTopic",
                &et.pubsub_topic,
                &allow.pubsub_topics,
                "topic",
            ),
            (
                "gcp.triggers.eventType",
                "eventTrigger.eventType",
                &et.event_type,
                &allow.event_types,
                "event type",
            ),
        ];
        for (check, field, have, allowed, what) in checks {
            if !allowed.is_empty() && !allowed.contains(have) {
                b.finding(
                    Finding::builder(Control::Triggers, check, field)
                        .observed(have)
                        .desired(format!("one of {}", allowed.join(", ")))
                        .severity(Severity::Medium)
                        .remediable(false)
                        .message(format!("the event trigger's {what} {have} is not allowlisted; event triggers are reported, not changed")),
                );
            }
        }
    }
}

/// The function's ingress setting the posture asks for: declared, or
/// internal only when public access is denied.
fn declared_ingress(t: &TriggerControl, g: &GcpTriggers) -> Option<&'static str> {
    g.ingress.map(ingress_name).or(match t.public_access {
        PublicAccess::Deny => Some("ALLOW_INTERNAL_ONLY"),
        PublicAccess::RequireAuth => None,
    })
}

/// The ingress setting: declared, or internal only when public access is
/// denied.
fn ingress(t: &TriggerControl, g: &GcpTriggers, o: &ObservedFunction, b: &mut Builder) {
    let Some(want) = declared_ingress(t, g).filter(|w| o.ingress != *w) else {
        return;
    };
    b.finding(
        Finding::builder(
            Control::Triggers,
            "gcp.triggers.ingress",
            "serviceConfig.ingressSettings",
        )
        .observed(&o.ingress)
        .desired(want)
        .severity(if o.ingress == "ALLOW_ALL" {
            Severity::High
        } else {
            Severity::Medium
        })
        .remediable(true)
        .message(format!(
            "the function accepts traffic from {} sources",
            o.ingress.to_lowercase().replace('_', " ")
        )),
    );
    b.patch.set(FunctionField::Ingress(want.to_string()));
}

/// Private ingress: neither the function's setting (applied again at its
/// next deploy) nor its Cloud Run service's ingress (what Google enforces,
/// changeable on the service alone) lets everyone in, nor anything wider
/// than a declared ingress. Narrowed to that bound, never widened; a
/// service that could not be read is not judged.
fn private_ingress(declared: Option<&'static str>, o: &ObservedFunction, b: &mut Builder) {
    let bound = private_reach(declared);
    let finding = |field: &str, observed: String, severity: Severity, remediable: bool, message: String| {
        Finding::builder(Control::Triggers, "gcp.triggers.privateIngress", field)
            .observed(observed)
            .desired(format!("no wider than {}", bound.service_value()))
            .severity(severity)
            .remediable(remediable)
            .message(message)
    };
    // A declared setting is the ingress control's to judge and write.
    if declared.is_none() && Reach::of_function(&o.ingress).is_none_or(|r| r > bound) {
        let known = Reach::of_function(&o.ingress).is_some();
        b.finding(finding(
            "serviceConfig.ingressSettings",
            o.ingress.clone(),
            if known { Severity::High } else { Severity::Medium },
            known,
            if known {
                "the function lets every source in; zerofn sets ALLOW_INTERNAL_AND_GCLB, so it is reached from the project's networks or through a Google Cloud load balancer".into()
            } else {
                format!("the function's ingress setting {} is not one zerofn knows, so its reach is not judged", o.ingress)
            },
        ));
        if known {
            b.patch.set(FunctionField::Ingress("ALLOW_INTERNAL_AND_GCLB".into()));
        }
    }
    let service = match run_service(o) {
        Ok(s) => s,
        Err(e) => {
            b.finding(finding(
                "service.ingress",
                format!("{}: {e}", e.reason().as_str()),
                Severity::Medium,
                false,
                format!("who can reach the function's service could not be judged: {e}; grant run.services.get"),
            ));
            return;
        }
    };
    match Reach::of_service(&service.ingress) {
        Some(r) if r <= bound => {}
        Some(r) => {
            b.finding(finding(
                "service.ingress",
                service.ingress.clone(),
                if r == Reach::Everyone { Severity::High } else { Severity::Medium },
                true,
                format!(
                    "the function's service {} admits {} traffic, whatever the function's own setting says; zerofn sets {} (updateMask ingress)",
                    o.service,
                    service.ingress.trim_start_matches("INGRESS_TRAFFIC_").to_lowercase().replace('_', " "),
                    bound.service_value()
                ),
            ));
            b.plan.push(
                Phase::Revoke,
                GcpAction::NarrowServiceIngress {
                    service: o.service.clone(),
                    ingress: bound.service_value().to_string(),
                },
            );
        }
        None => b.finding(finding(
            "service.ingress",
            service.ingress.clone(),
            Severity::Medium,
            false,
            format!(
                "the service's ingress {} is not one zerofn knows, so who can reach the function is not judged",
                service.ingress
            ),
        )),
    }
}

/// The function's Cloud Run service as read, or why it was not.
fn run_service(o: &ObservedFunction) -> Result<&RunService, crate::providers::ProviderError> {
    match &o.run_service {
        Some(ServiceState::Observed(s)) => Ok(s),
        Some(ServiceState::NotObserved(e)) => Err(e.clone()),
        None => Err(crate::providers::ProviderError::Cloud(
            "the function has no Cloud Run service to read".into(),
        )),
    }
}

/// Roles on the service whose permissions could not be read: whether their
/// members may invoke is not judged, so it is reported, never passed.
fn unjudged_roles(o: &ObservedFunction, b: &mut Builder) {
    for u in &o.unjudged_roles {
        b.finding(
            Finding::builder(
                Control::Triggers,
                "gcp.triggers.unjudgedRole",
                format!("{}:bindings[{}]", o.service, u.role),
            )
            .observed(u.members.join(", "))
            .desired("only roles whose permissions zerofn can read")
            .severity(Severity::High)
            .remediable(false)
            .message(format!(
                "the permissions of {} could not be read ({}), so whether {} may invoke the function is not judged",
                u.role,
                u.reason,
                u.members.join(", ")
            )),
        );
    }
}

/// The member the function's own event trigger delivers events as, if any.
fn event_trigger_member(o: &ObservedFunction) -> Option<String> {
    o.event_trigger.as_ref().map(|et| {
        if et.service_account.is_empty() {
            member(&o.default_compute_account())
        } else {
            member(&et.service_account)
        }
    })
}

/// Every member of an invoke-granting binding must be a declared invoker;
/// public members never may. Removal is member-scoped, never touches a
/// conditional binding, and never cuts the function's own event delivery.
fn invokers(t: &TriggerControl, g: &GcpTriggers, grants: &[InvokeGrant], o: &ObservedFunction, b: &mut Builder) {
    let declared: Option<BTreeSet<String>> = g.invokers.as_ref().map(|v| v.iter().cloned().collect());
    let event_member = event_trigger_member(o);
    let mut remove: Vec<MemberRole> = grants
        .iter()
        .filter_map(|grant| undeclared_invoker(t, declared.as_ref(), event_member.as_deref(), grant, o, b))
        .collect();
    let able: BTreeSet<&String> = grants.iter().filter(|g| !g.conditional).map(|g| &g.member).collect();
    let mut add = Vec::new();
    for m in declared.iter().flatten().filter(|m| !able.contains(m)) {
        b.finding(
            Finding::builder(
                Control::Triggers,
                "gcp.triggers.missingInvoker",
                format!("{}:bindings[{INVOKER}]", o.service),
            )
            .observed("absent")
            .desired(m)
            .severity(Severity::Low)
            .remediable(true)
            .message(format!("declared invoker {m} cannot invoke the function")),
        );
        add.push(m.clone());
    }
    remove.sort();
    remove.dedup();
    if !add.is_empty() || !remove.is_empty() {
        // Who may call the function narrows last, after it is configured;
        // the invokers it adds are declared ones.
        b.plan.push(
            Phase::Revoke,
            GcpAction::UpdateInvokers {
                service: o.service.clone(),
                add,
                remove,
            },
        );
    }
}

/// Judge one invoke grant: a public or undeclared member is reported, and
/// returned for removal unless it must be kept.
fn undeclared_invoker(
    t: &TriggerControl,
    declared: Option<&BTreeSet<String>>,
    event_member: Option<&str>,
    grant: &InvokeGrant,
    o: &ObservedFunction,
    b: &mut Builder,
) -> Option<MemberRole> {
    let m = &grant.member;
    let public = PUBLIC_MEMBERS.contains(&m.as_str());
    let undeclared = declared.is_some_and(|d| !d.contains(m));
    if !public && !undeclared {
        return None;
    }
    let delivers_events = event_member == Some(m.as_str());
    let keep_reason = if grant.conditional {
        Some("the binding has a condition, and zerofn does not change conditional bindings it did not write")
    } else if delivers_events {
        Some(
            "it is the service account of the function's own event trigger, and removing it would stop event delivery; declare it in triggers.gcp.invokers",
        )
    } else if !public && !t.remove_unlisted {
        Some("triggers.removeUnlisted is false")
    } else {
        None
    };
    let (check, severity) = if public {
        ("gcp.triggers.publicInvoker", Severity::Critical)
    } else if keep_reason.is_some() && delivers_events {
        ("gcp.triggers.eventTriggerInvoker", Severity::Medium)
    } else {
        ("gcp.triggers.unlistedInvoker", Severity::High)
    };
    let what = if public {
        format!("{m} may invoke the function through {}", grant.role)
    } else {
        format!(
            "{m} may invoke the function through {} but is not a declared invoker",
            grant.role
        )
    };
    b.finding(
        Finding::builder(
            Control::Triggers,
            check,
            format!("{}:bindings[{}]", o.service, grant.role),
        )
        .observed(m)
        .desired("declared invokers only")
        .severity(severity)
        .remediable(keep_reason.is_none())
        .message(match keep_reason {
            Some(r) => format!("{what} (kept: {r})"),
            None => what,
        }),
    );
    keep_reason.is_none().then(|| MemberRole {
        member: m.clone(),
        role: grant.role.clone(),
    })
}

fn network(p: &Posture, o: &ObservedFunction, b: &mut Builder) {
    let Some(n) = p.spec.network.as_ref().and_then(|n| n.gcp.as_ref()) else {
        return;
    };
    if o.vpc_connector != n.vpc_connector {
        let none = o.vpc_connector.is_empty();
        b.finding(
            Finding::builder(
                Control::Network,
                if none {
                    "gcp.network.noVpcConnector"
                } else {
                    "gcp.network.vpcConnector"
                },
                "serviceConfig.vpcConnector",
            )
            .observed(if none { "none" } else { &o.vpc_connector })
            .desired(&n.vpc_connector)
            .severity(if none { Severity::High } else { Severity::Medium })
            .remediable(true)
            .message(if none {
                "the function has no VPC connector, so its egress leaves straight to the internet".to_string()
            } else {
                "the function uses another VPC connector than declared".to_string()
            }),
        );
        b.patch.set(FunctionField::VpcConnector(n.vpc_connector.clone()));
    }
    let want = egress_name(n.egress);
    if o.egress != want {
        b.finding(
            Finding::builder(
                Control::Network,
                "gcp.network.egress",
                "serviceConfig.vpcConnectorEgressSettings",
            )
            .observed(if o.egress.is_empty() { "unset" } else { &o.egress })
            .desired(want)
            .severity(Severity::Medium)
            .remediable(true)
            .message("not all of the function's egress goes through the VPC connector"),
        );
        b.patch.set(FunctionField::Egress(want.to_string()));
    }
}

fn supply_chain(p: &Posture, o: &ObservedFunction, b: &mut Builder) {
    let Some(sc) = p.spec.supply_chain.as_ref().and_then(|s| s.gcp.as_ref()) else {
        return;
    };
    let mut report = |check: &str, field: &str, have: &str, allowed: &Option<Vec<String>>, what: &str| {
        if let Some(allowed) = allowed
            && !allowed.iter().any(|a| a == have)
        {
            b.finding(
                Finding::builder(Control::SupplyChain, check, field)
                    .observed(if have.is_empty() { "unset" } else { have })
                    .desired(format!("one of {}", allowed.join(", ")))
                    .severity(Severity::Medium)
                    .remediable(false)
                    .message(format!(
                        "the build's {what} is not allowlisted; build settings are reported, not changed"
                    )),
            );
        }
    };
    report(
        "gcp.supplyChain.dockerRepository",
        "buildConfig.dockerRepository",
        &o.docker_repository,
        &sc.allowed_docker_repositories,
        "image repository",
    );
    report(
        "gcp.supplyChain.buildServiceAccount",
        "buildConfig.serviceAccount",
        &o.build_service_account,
        &sc.allowed_build_service_accounts,
        "service account",
    );
    if let Some(declared) = &sc.require_binary_authorization {
        binary_authorization(&BinAuthz::declared(declared), o, b);
    }
}

/// No enabled exclusion of the `_Default` sink drops the function's logs
/// (report-only: the sink is the project's); an exclusion whose filter is
/// not evaluated, or a sink that could not be read, is not judged.
fn logs_kept(o: &ObservedFunction, b: &mut Builder) {
    use super::logsink::{Verdict, judge};
    let finding = |field: String, observed: String, severity: Severity, message: String| {
        Finding::builder(Control::Observability, "gcp.observability.logsExcluded", field)
            .observed(observed)
            .desired("the function's logs kept by the _Default sink")
            .severity(severity)
            .remediable(false)
            .message(message)
    };
    let unread = SinkState::NotObserved(crate::providers::ProviderError::Cloud("it was not read".into()));
    let exclusions = match o.default_sink.as_ref().unwrap_or(&unread) {
        SinkState::Observed(x) => x,
        SinkState::NotObserved(e) => {
            b.finding(finding(
                "sinks/_Default".into(),
                format!("{}: {e}", e.reason().as_str()),
                Severity::Medium,
                format!("whether the function's logs are kept could not be judged: {e}; grant logging.sinks.get"),
            ));
            return;
        }
    };
    for x in exclusions.iter().filter(|x| !x.disabled) {
        let field = format!("sinks/_Default.exclusions[{}]", x.name);
        match judge(&x.filter, o) {
            Verdict::Spares => {}
            Verdict::Drops => b.finding(finding(
                field,
                x.filter.clone(),
                Severity::High,
                format!(
                    "the _Default sink's exclusion {} drops the function's logs; narrow or disable it (zerofn does not change sinks)",
                    x.name
                ),
            )),
            Verdict::NotEvaluated => b.finding(finding(
                field,
                x.filter.clone(),
                Severity::Low,
                format!(
                    "the _Default sink's exclusion {} has a filter zerofn does not evaluate, so whether it drops the function's logs is not judged",
                    x.name
                ),
            )),
        }
    }
}

/// The function's Cloud Run service enforces Binary Authorization: the
/// declared one is set where none is; another one is reported, never
/// switched (it may be the stricter); an unread service is not judged.
fn binary_authorization(want: &BinAuthz, o: &ObservedFunction, b: &mut Builder) {
    let finding = |observed: String, severity: Severity, remediable: bool, message: String| {
        Finding::builder(
            Control::SupplyChain,
            "gcp.supplyChain.binaryAuthorization",
            "service.binaryAuthorization",
        )
        .observed(observed)
        .desired(want.to_string())
        .severity(severity)
        .remediable(remediable)
        .message(message)
    };
    let have = match run_service(o) {
        Err(e) => {
            b.finding(finding(
                format!("{}: {e}", e.reason().as_str()),
                Severity::Medium,
                false,
                format!("whether the function's service enforces Binary Authorization could not be judged: {e}; grant run.services.get"),
            ));
            return;
        }
        Ok(service) => &service.binary_authorization,
    };
    match have {
        None => {
            b.finding(finding(
                "none".into(),
                Severity::High,
                true,
                format!(
                    "any image, signed or not, can be deployed to the function's service {}; zerofn sets {want} (updateMask binaryAuthorization)",
                    o.service
                ),
            ));
            // A restriction, so after the function's own update (which
            // carries the ownership claim), with the other tightening writes.
            b.plan.push(
                Phase::Revoke,
                GcpAction::SetBinaryAuthorization {
                    service: o.service.clone(),
                    method: want.clone(),
                },
            );
        }
        Some(have) if have != want => b.finding(finding(
            have.to_string(),
            Severity::Medium,
            false,
            format!("the function's service enforces {have}, not the declared {want}; zerofn does not switch one enforced policy for another"),
        )),
        Some(_) => {}
    }
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
