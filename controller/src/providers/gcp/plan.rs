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

use super::action::{GcpAction, MemberRole};
use super::model::{InvokeGrant, ObservedFunction};
use super::names;
use super::observe::INVOKER;
use crate::api::{GcpEgress, GcpIngress, GcpTriggers, IdentityControl, Mode, PublicAccess, TriggerControl};
use crate::findings::{Control, Finding, Severity};
use crate::providers::{Blocked, Note, Plan, Posture};
use std::collections::BTreeSet;

const PUBLIC_MEMBERS: [&str; 2] = ["allUsers", "allAuthenticatedUsers"];
const BROAD_ROLES: [&str; 3] = ["roles/owner", "roles/editor", "roles/iam.securityAdmin"];

#[derive(Default)]
struct Patch {
    claim: Option<String>,
    service_account: Option<String>,
    ingress: Option<String>,
    vpc_connector: Option<String>,
    egress: Option<String>,
}

#[derive(Default)]
struct Builder {
    findings: Vec<Finding>,
    create: Vec<GcpAction>,
    roles: Vec<GcpAction>,
    patch: Patch,
    invokers: Vec<GcpAction>,
    notes: Vec<Note>,
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

pub fn plan(p: &Posture, o: &ObservedFunction) -> Plan<GcpAction> {
    let mut b = Builder::default();
    let blocked = ownership(p, o, &mut b);
    if let Some(id) = &p.spec.identity {
        identity(id, o, &mut b);
    }
    if let Some(t) = &p.spec.triggers {
        triggers(t, o, &mut b);
    }
    network(p, o, &mut b);
    supply_chain(p, o, &mut b);
    if p.spec.observability.is_some() {
        b.notes.push(Note {
            control: Control::Observability,
            reason: crate::reason::Reason::NotApplicable,
            message:
                "Cloud Functions send logs and traces to Cloud Logging and Cloud Trace on their own; nothing to enforce"
                    .into(),
        });
    }

    let mut findings = b.findings;
    findings.sort_by(|a, b| (a.control, &a.check, &a.field).cmp(&(b.control, &b.check, &b.field)));
    let mut actions = Vec::new();
    if blocked.is_none() {
        actions.extend(b.create);
        actions.extend(b.roles);
        // One update of the function (one redeploy): the ownership claim and
        // every configuration change together.
        let pt = b.patch;
        if pt.claim.is_some()
            || pt.service_account.is_some()
            || pt.ingress.is_some()
            || pt.vpc_connector.is_some()
            || pt.egress.is_some()
        {
            actions.push(GcpAction::PatchFunction {
                name: o.name.clone(),
                service_account: pt.service_account,
                ingress: pt.ingress,
                vpc_connector: pt.vpc_connector,
                egress: pt.egress,
                claim: pt.claim,
                release: None,
            });
        }
        actions.extend(b.invokers);
    }
    Plan {
        function: format!("{}/{}", o.location, o.id),
        principal: Some(o.service_account.clone()).filter(|s| !s.is_empty()),
        findings,
        actions,
        blocked,
        notes: b.notes,
    }
}

fn ownership(p: &Posture, o: &ObservedFunction, b: &mut Builder) -> Option<Blocked> {
    if p.mode() != Mode::Enforce {
        return None;
    }
    let mine = names::owner_label_value(&p.owner);
    match o.labels.get(names::OWNER_LABEL) {
        Some(v) if *v != mine => Some(Blocked::Conflict {
            owner: format!("label {}={v}", names::OWNER_LABEL),
        }),
        Some(_) => None,
        None => {
            b.patch.claim = Some(mine);
            None
        }
    }
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

/// Create (if needed) the dedicated account, give it exactly the declared
/// roles and switch the function to it. The old account is not touched.
fn mint_and_switch(o: &ObservedFunction, want: &BTreeSet<String>, target: &MintTarget, email: &str, b: &mut Builder) {
    let have = match target {
        MintTarget::Create => {
            b.create.push(GcpAction::CreateServiceAccount {
                project: o.project.clone(),
                account_id: names::dedicated_account_id(&o.id, &o.name),
                display_name: format!("{}{}", names::MANAGED_DISPLAY_PREFIX, o.id),
            });
            BTreeSet::new()
        }
        MintTarget::Reuse(roles) => roles.clone(),
        MintTarget::Unproven(_) => return,
    };
    let add: Vec<String> = want.difference(&have).cloned().collect();
    let remove: Vec<String> = have.difference(want).cloned().collect();
    if !add.is_empty() || !remove.is_empty() {
        b.roles.push(GcpAction::UpdateProjectRoles {
            project: o.project.clone(),
            member: member(email),
            add,
            remove,
        });
    }
    b.patch.service_account = Some(email.to_string());
}

fn identity(id: &IdentityControl, o: &ObservedFunction, b: &mut Builder) {
    let declared: Option<BTreeSet<String>> = id
        .gcp
        .as_ref()
        .and_then(|g| g.roles.as_ref())
        .map(|r| r.iter().cloned().collect());
    let on_default = o.runs_as_default();
    let shared = !o.shared_with.is_empty();
    let account = o.account();
    let dedicated_email = names::account_email(&names::dedicated_account_id(&o.id, &o.name), &o.project);
    let target = mint_target(o);
    let authority = edit_authority(id, o);
    // Moving is possible when the dedicated account is (or will be) provably
    // zerofn's and is not the account the function already runs as.
    let can_switch = id.create_if_shared
        && declared.is_some()
        && account != dedicated_email
        && !matches!(target, MintTarget::Unproven(_));
    let unproven_note = match &target {
        MintTarget::Unproven(uid) => format!(
            "; {dedicated_email} exists but zerofn has no record of creating it (uniqueId {uid}), so it is not adopted"
        ),
        _ => String::new(),
    };
    let mut switching = false;

    if id.dedicated && (on_default || shared) {
        let (check, problem) = if on_default {
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
        let message = if can_switch {
            format!(
                "the function {problem}; it moves to the dedicated account {dedicated_email}, which holds only the declared roles (the old account is left as it is)"
            )
        } else {
            format!(
                "the function {problem}: a compromise of one is a compromise of all; set identity.createIfShared to give it its own account{unproven_note}"
            )
        };
        b.findings.push(
            Finding::builder(Control::Identity, check, "serviceConfig.serviceAccountEmail")
                .observed(if shared {
                    format!("{account} (also used by {})", o.shared_with.join(", "))
                } else {
                    account.clone()
                })
                .desired(if can_switch {
                    dedicated_email.clone()
                } else {
                    "a service account only this function uses".into()
                })
                .severity(Severity::High)
                .remediable(can_switch)
                .message(message),
        );
        if let (true, Some(want)) = (can_switch, &declared) {
            mint_and_switch(o, want, &target, &dedicated_email, b);
            switching = true;
        }
    }

    let Some(want) = declared else { return };
    let extra: Vec<String> = o.project_roles.difference(&want).cloned().collect();
    let missing: Vec<String> = want.difference(&o.project_roles).cloned().collect();
    let drift = !extra.is_empty() || !missing.is_empty();
    let edit_in_place = !switching && authority.is_ok();
    if drift && !switching && !edit_in_place && can_switch {
        // The identity rule: an account zerofn may not change is left alone
        // and the function moves to one it minted.
        mint_and_switch(o, &want, &target, &dedicated_email, b);
        switching = true;
    }
    let fixable = switching || edit_in_place;
    let why = match (&authority, switching) {
        (_, true) => format!(
            "; the function moves to {dedicated_email}, which holds only the declared roles{}",
            authority
                .as_ref()
                .err()
                .map(|w| format!(", and {account} is not changed ({w})"))
                .unwrap_or_default()
        ),
        (Ok(case), false) => format!("; changed in place: {case}"),
        (Err(w), false) => format!(
            "; its roles are not changed: {w}{unproven_note}{}",
            if id.create_if_shared {
                ""
            } else {
                "; set identity.createIfShared to move the function to an account zerofn mints"
            }
        ),
    };
    for role in &extra {
        let broad = BROAD_ROLES.contains(&role.as_str());
        b.findings.push(
            Finding::builder(
                Control::Identity,
                "gcp.identity.undeclaredRole",
                format!("projects/{}:bindings[{role}]", o.project),
            )
            .observed(format!("{} holds {role}", member(&account)))
            .desired("only the declared roles")
            .severity(if broad { Severity::Critical } else { Severity::High })
            .remediable(fixable)
            .message(format!(
                "{account} holds {role} on the project, which is not declared{why}"
            )),
        );
    }
    for role in &missing {
        b.findings.push(
            Finding::builder(
                Control::Identity,
                "gcp.identity.missingRole",
                format!("projects/{}:bindings[{role}]", o.project),
            )
            .observed("absent")
            .desired(format!("{} holds {role}", member(&account)))
            .severity(Severity::Low)
            .remediable(fixable)
            .message(format!("{account} lacks the declared role {role}{why}")),
        );
    }
    for role in o.conditional_roles.difference(&want) {
        b.findings.push(
            Finding::builder(
                Control::Identity,
                "gcp.identity.conditionalRole",
                format!("projects/{}:bindings[{role}]", o.project),
            )
            .observed(format!("{} holds {role} under a condition", member(&account)))
            .desired("only the declared roles")
            .severity(Severity::Medium)
            .remediable(switching)
            .message(if switching {
                format!(
                    "{account} holds {role} under a condition; the function moves to {dedicated_email}, which holds only the declared roles"
                )
            } else {
                format!(
                    "{account} holds {role} under a condition; zerofn does not change conditional bindings it did not write"
                )
            }),
        );
    }
    if edit_in_place && drift {
        b.roles.push(GcpAction::UpdateProjectRoles {
            project: o.project.clone(),
            member: member(&account),
            add: missing,
            remove: extra,
        });
    }
}

fn triggers(t: &TriggerControl, o: &ObservedFunction, b: &mut Builder) {
    let g: GcpTriggers = t.gcp.clone().unwrap_or_default();
    let want_ingress = g.ingress.map(ingress_name).or(match t.public_access {
        PublicAccess::Deny => Some("ALLOW_INTERNAL_ONLY"),
        PublicAccess::RequireAuth => None,
    });
    if let Some(want) = want_ingress
        && o.ingress != want
    {
        b.findings.push(
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
        b.patch.ingress = Some(want.to_string());
    }

    if let Some(grants) = &o.invokers {
        invokers(t, &g, grants, o, b);
    }
    for u in &o.unjudged_roles {
        b.findings.push(
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

    if let (Some(allow), Some(et)) = (&g.event_trigger, &o.event_trigger) {
        let mut report = |check: &str, field: &str, have: &str, allowed: &[String], what: &str| {
            if !allowed.is_empty() && !allowed.iter().any(|a| a == have) {
                b.findings.push(
                    Finding::builder(Control::Triggers, check, field)
                        .observed(have)
                        .desired(format!("one of {}", allowed.join(", ")))
                        .severity(Severity::Medium)
                        .remediable(false)
                        .message(format!("the event trigger's {what} {have} is not allowlisted; event triggers are reported, not changed")),
                );
            }
        };
        report(
            "gcp.triggers.eventServiceAccount",
            "eventTrigger.serviceAccountEmail",
            &et.service_account,
            &allow.service_accounts,
            "service account",
        );
        report(
            "gcp.triggers.eventTopic",
            "eventTrigger.pubsubTopic",
            &et.pubsub_topic,
            &allow.pubsub_topics,
            "topic",
        );
        report(
            "gcp.triggers.eventType",
            "eventTrigger.eventType",
            &et.event_type,
            &allow.event_types,
            "event type",
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
    let mut remove = Vec::new();
    for grant in grants {
        let m = &grant.member;
        let public = PUBLIC_MEMBERS.contains(&m.as_str());
        let undeclared = declared.as_ref().is_some_and(|d| !d.contains(m));
        if !public && !undeclared {
            continue;
        }
        let field = format!("{}:bindings[{}]", o.service, grant.role);
        let keep_reason = if grant.conditional {
            Some(
                "the binding has a condition, and zerofn does not change conditional bindings it did not write"
                    .to_string(),
            )
        } else if event_member.as_deref() == Some(m.as_str()) {
            Some(
                "it is the service account of the function's own event trigger, and removing it would stop event delivery; declare it in triggers.gcp.invokers"
                    .to_string(),
            )
        } else if !public && !t.remove_unlisted {
            Some("triggers.removeUnlisted is false".to_string())
        } else {
            None
        };
        let (check, severity) = if public {
            ("gcp.triggers.publicInvoker", Severity::Critical)
        } else if keep_reason.is_some() && event_member.as_deref() == Some(m.as_str()) {
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
        b.findings.push(
            Finding::builder(Control::Triggers, check, field)
                .observed(m)
                .desired("declared invokers only")
                .severity(severity)
                .remediable(keep_reason.is_none())
                .message(match &keep_reason {
                    Some(r) => format!("{what} (kept: {r})"),
                    None => what,
                }),
        );
        if keep_reason.is_none() {
            remove.push(MemberRole {
                member: m.clone(),
                role: grant.role.clone(),
            });
        }
    }
    let able: BTreeSet<&String> = grants.iter().filter(|g| !g.conditional).map(|g| &g.member).collect();
    let mut add = Vec::new();
    for m in declared.iter().flatten().filter(|m| !able.contains(m)) {
        b.findings.push(
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
        b.invokers.push(GcpAction::UpdateInvokers {
            service: o.service.clone(),
            add,
            remove,
        });
    }
}

fn network(p: &Posture, o: &ObservedFunction, b: &mut Builder) {
    let Some(n) = p.spec.network.as_ref().and_then(|n| n.gcp.as_ref()) else {
        return;
    };
    if o.vpc_connector != n.vpc_connector {
        let none = o.vpc_connector.is_empty();
        b.findings.push(
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
        b.patch.vpc_connector = Some(n.vpc_connector.clone());
    }
    let want = egress_name(n.egress);
    if o.egress != want {
        b.findings.push(
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
        b.patch.egress = Some(want.to_string());
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
            b.findings.push(
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
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
