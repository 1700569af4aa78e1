//! Pure planning for Azure Functions (Microsoft.Web/sites): declared posture
//! + observed app → findings and the ordered writes that would fix them.
//!
//! Safety rules: an action only removes access or adds what the posture
//! declares. A user-assigned identity is never detached (other resources may
//! rely on it); authentication is only required when an identity provider is
//! configured (otherwise every caller, the legitimate ones too, would be
//! locked out); role assignments inherited from above the subscription and
//! undeclared Deny access restrictions are kept; settings ARM replaces
//! wholesale are changed field by field at write time.

use super::action::{AzureAction, SiteField, WebField};
use super::model::{Assignment, AuthSettings, ObservedApp, RoleDefinition, WebConfig};
use super::names;
use crate::api::{
    AzureAccessRestriction, AzurePublicNetworkAccess, AzureRoleAssignment, AzureTriggers, IdentityControl, Mode,
    PublicAccess, TracingMode, TriggerControl,
};
use crate::findings::{Control, Finding, Severity};
use crate::providers::assemble::{self, Ownership, Phase, PlanBuilder};
use crate::providers::patch::Patch;
use crate::providers::{Note, Plan, Posture};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};

/// The writes planned for one site: the app itself or one of its slots.
#[derive(Default)]
struct Target {
    id: String,
    site: Patch<SiteField>,
    web: Patch<WebField>,
    publishing: Vec<AzureAction>,
    auth: bool,
}

impl Target {
    fn new(id: &str) -> Target {
        Target {
            id: id.to_string(),
            ..Target::default()
        }
    }

    /// The target's writes, all configuring the site, in order: site
    /// properties, config/web, publishing policies, authentication.
    fn push_into(self, plan: &mut PlanBuilder<AzureAction>) {
        if !self.site.is_empty() {
            let site = self.id.clone();
            plan.push(Phase::Configure, AzureAction::PatchSite { site, patch: self.site });
        }
        if !self.web.is_empty() {
            let site = self.id.clone();
            plan.push(Phase::Configure, AzureAction::PatchWebConfig { site, patch: self.web });
        }
        for a in self.publishing {
            plan.push(Phase::Configure, a);
        }
        if self.auth {
            plan.push(Phase::Configure, AzureAction::RequireAuthentication { site: self.id });
        }
    }
}

#[derive(Default)]
struct Builder {
    plan: PlanBuilder<AzureAction>,
    app: Target,
    slots: Vec<Target>,
    notes: Vec<Note>,
}

/// One public endpoint of the app as the trigger checks see it: the app
/// itself, or one deployment slot (its own site, its own settings).
struct Surface<'a> {
    /// Prefix of finding fields: empty for the app, `slots/{name}/` for a slot.
    field: String,
    /// How messages name it.
    label: String,
    https_only: bool,
    public_network_access: &'a str,
    web: Option<&'a WebConfig>,
    auth: Option<&'a AuthSettings>,
    publishing: Option<(bool, bool)>,
}

impl Surface<'_> {
    fn field(&self, f: &str) -> String {
        format!("{}{f}", self.field)
    }

    /// The finding field of one rule of a config/web list.
    fn rule_field(&self, list: &str, rule: &Value) -> String {
        self.field(&format!("config/web.{list}[{}]", rule["name"].as_str().unwrap_or("?")))
    }
}

/// The order of the writes: the claim (tag) first; the system-assigned
/// identity is created, then granted its declared roles, before the sites
/// are configured; undeclared role assignments go last, so the app never
/// holds neither the old grants nor the new ones.
pub fn plan(p: &Posture, o: &ObservedApp) -> Plan<AzureAction> {
    let mut b = Builder {
        app: Target::new(&o.id),
        ..Builder::default()
    };
    let blocked = match assemble::ownership(
        p.mode() == Mode::Enforce,
        o.tags.get(names::OWNER_TAG).map(String::as_str),
        &p.owner,
        |v| format!("{v} (tag {})", names::OWNER_TAG),
    ) {
        Ownership::Blocked(blocked) => Some(blocked),
        Ownership::Unclaimed => {
            b.plan.push(
                Phase::Claim,
                AzureAction::SetTag {
                    site: o.id.clone(),
                    key: names::OWNER_TAG.to_string(),
                    value: Some(p.owner.clone()),
                },
            );
            None
        }
        Ownership::Held => None,
    };
    if let Some(id) = &p.spec.identity {
        identity(id, o, &mut b);
    }
    if let Some(t) = &p.spec.triggers {
        surfaces(t, o, &mut b);
    }
    network(p, o, &mut b);
    supply_chain(p, o, &mut b);
    observability(p, o, &mut b);
    b.app.push_into(&mut b.plan);
    for slot in b.slots {
        slot.push_into(&mut b.plan);
    }
    let assembled = b.plan.assemble(blocked.as_ref());
    Plan {
        function: format!("{}/{}", o.resource_group, o.name),
        principal: o
            .system_principal
            .clone()
            .or_else(|| o.user_assigned.values().next().cloned()),
        findings: assembled.findings,
        actions: assembled.actions,
        blocked,
        notes: b.notes,
        proposals: Vec::new(),
    }
}

/// The trigger checks of the app and of each deployment slot, each a site
/// with its own settings and writes.
fn surfaces(t: &TriggerControl, o: &ObservedApp, b: &mut Builder) {
    let app = Surface {
        field: String::new(),
        label: "the app".into(),
        https_only: o.https_only,
        public_network_access: &o.public_network_access,
        web: o.web.as_ref(),
        auth: o.auth.as_ref(),
        publishing: o.publishing,
    };
    triggers(t, &app, &mut b.app, &mut b.plan);
    for slot in &o.slots {
        let surface = Surface {
            field: format!("slots/{}/", slot.name),
            label: format!("deployment slot {}", slot.name),
            https_only: slot.https_only,
            public_network_access: &slot.public_network_access,
            web: slot.web.as_ref(),
            auth: slot.auth.as_ref(),
            publishing: None,
        };
        let mut target = Target::new(&slot.id);
        triggers(t, &surface, &mut target, &mut b.plan);
        b.slots.push(target);
    }
}

/// Whether an ARM action pattern (`*` matches any run of characters,
/// case-insensitive, as role definitions use it) covers `action`.
fn action_matches(pattern: &str, action: &str) -> bool {
    let (p, a) = (pattern.to_ascii_lowercase(), action.to_ascii_lowercase());
    let parts: Vec<&str> = p.split('*').collect();
    if parts.len() == 1 {
        return p == a;
    }
    let mut rest = a.as_str();
    for (i, part) in parts.iter().enumerate() {
        if i == 0 {
            match rest.strip_prefix(part) {
                Some(r) => rest = r,
                None => return false,
            }
        } else if i == parts.len() - 1 {
            return rest.ends_with(part);
        } else {
            match rest.find(part) {
                Some(at) => rest = &rest[at + part.len()..],
                None => return false,
            }
        }
    }
    true
}

/// The power to grant roles, which is every permission in waiting.
const ROLE_GRANTING: &str = "Microsoft.Authorization/roleAssignments/write";

/// Whether a role lets its holder change anything, or who may: by its
/// well-known id, or by what its definition (custom roles too) allows.
fn is_broad(role: &str, definition: Option<&RoleDefinition>) -> bool {
    if names::builtin::BROAD.contains(&role) {
        return true;
    }
    definition.is_some_and(|d| {
        d.actions.iter().any(|a| a == "*")
            || (d.actions.iter().any(|a| action_matches(a, ROLE_GRANTING))
                && !d.not_actions.iter().any(|n| action_matches(n, ROLE_GRANTING)))
    })
}

fn in_subscription(scope: &str, subscription: &str) -> bool {
    let s = names::normalize_scope(scope);
    let sub = format!("/subscriptions/{}", subscription.to_ascii_lowercase());
    s == sub || s.starts_with(&format!("{sub}/"))
}

fn identity(id: &IdentityControl, o: &ObservedApp, b: &mut Builder) {
    let enabling = id.dedicated && dedicated_identity(o, b);
    let Some(declared) = id.azure.as_ref().and_then(|a| a.role_assignments.as_ref()) else {
        return;
    };
    let want = wanted_assignments(declared, o, b);
    let have = match (&o.system_principal, &o.assignments) {
        (Some(_), Some(a)) => a.clone(),
        // The identity is enabled by this plan: its principal holds nothing.
        (None, _) if enabling => Vec::new(),
        _ => {
            b.plan.finding(
                Finding::builder(Control::Identity, "azure.identity.noPrincipal", "identity.principalId")
                    .observed("no system-assigned identity")
                    .desired("a system-assigned identity holding the declared roles")
                    .severity(Severity::Medium)
                    .remediable(false)
                    .message("role assignments are checked on the system-assigned identity, which the app does not have (identity.dedicated is false)"),
            );
            return;
        }
    };
    for a in &have {
        if !want.contains_key(&(a.role.clone(), names::normalize_scope(&a.scope))) {
            undeclared_assignment(a, o, b);
        }
    }
    let have_keys: BTreeSet<(String, String)> = have
        .iter()
        .map(|a| (a.role.clone(), names::normalize_scope(&a.scope)))
        .collect();
    for ((guid, _), scope) in want.into_iter().filter(|(k, _)| !have_keys.contains(k)) {
        missing_assignment(&guid, scope, o, b);
    }
}

/// The app needs an identity of its own: the system-assigned one, enabled
/// when missing (whether this plan enables it). Shared user-assigned
/// identities are reported, never detached.
fn dedicated_identity(o: &ObservedApp, b: &mut Builder) -> bool {
    let enabling = o.system_principal.is_none();
    if enabling {
        let ua: Vec<String> = o.user_assigned.keys().cloned().collect();
        b.plan.finding(
            Finding::builder(Control::Identity, "azure.identity.noSystemAssigned", "identity.type")
                .observed(if ua.is_empty() {
                    "None".to_string()
                } else {
                    format!("UserAssigned ({})", ua.len())
                })
                .desired("SystemAssigned")
                .severity(Severity::High)
                .remediable(true)
                .message(
                    "the app has no system-assigned identity, the one identity that is its alone and goes away with it",
                ),
        );
        b.plan.push(
            Phase::Create,
            AzureAction::EnableSystemIdentity {
                site: o.id.clone(),
                user_assigned: ua,
            },
        );
    }
    for (uai, others) in &o.shared_user_assigned {
        b.plan.finding(
            Finding::builder(
                Control::Identity,
                "azure.identity.sharedUserAssigned",
                format!("identity.userAssignedIdentities[{uai}]"),
            )
            .observed(format!("also attached to {}", others.join(", ")))
            .desired("an identity only this app uses")
            .severity(Severity::High)
            .remediable(false)
            .message(format!(
                "the user-assigned identity {} is shared with {}: a compromise of one is a compromise of all; it is reported, never detached, because the app may rely on it",
                uai.rsplit('/').next().unwrap_or(uai),
                others.join(", ")
            )),
        );
    }
    enabling
}

/// The declared assignments, keyed by role id and normalized scope, with
/// the scope as written; a role that does not exist is reported.
fn wanted_assignments(
    declared: &[AzureRoleAssignment],
    o: &ObservedApp,
    b: &mut Builder,
) -> BTreeMap<(String, String), String> {
    let mut want = BTreeMap::new();
    for d in declared {
        match o.roles.get(&d.role).cloned().flatten() {
            Some(guid) => {
                want.insert((guid, names::normalize_scope(&d.scope)), d.scope.clone());
            }
            None => b.plan.finding(
                Finding::builder(
                    Control::Identity,
                    "azure.identity.unknownRole",
                    "identity.azure.roleAssignments",
                )
                .observed(format!("no role definition named {}", d.role))
                .desired(&d.role)
                .severity(Severity::Low)
                .remediable(false)
                .message(format!(
                    "the declared role {} does not exist in the subscription; nothing is assigned for it",
                    d.role
                )),
            ),
        }
    }
    want
}

/// A role assignment the posture does not declare: removed when it is in
/// the subscription zerofn governs, reported when it is inherited from above.
fn undeclared_assignment(a: &Assignment, o: &ObservedApp, b: &mut Builder) {
    let ours = in_subscription(&a.scope, &o.subscription);
    let broad = is_broad(&a.role, o.role_definitions.get(&a.role));
    b.plan.finding(
        Finding::builder(
            Control::Identity,
            "azure.identity.undeclaredRoleAssignment",
            format!("roleAssignments[{}]", a.id.rsplit('/').next().unwrap_or(&a.id)),
        )
        .observed(format!("role {} at {}", a.role, a.scope))
        .desired("only the declared role assignments")
        .severity(if broad { Severity::Critical } else { Severity::High })
        .remediable(ours)
        .message(if ours {
            format!(
                "the app's identity holds role {} at {}, which is not declared",
                a.role, a.scope
            )
        } else {
            format!(
                "the app's identity inherits role {} from {}, above the subscription zerofn governs; remove it there",
                a.role, a.scope
            )
        }),
    );
    if ours {
        b.plan.push(
            Phase::Revoke,
            AzureAction::DeleteRoleAssignment {
                id: a.id.clone(),
                role: a.role.clone(),
                scope: a.scope.clone(),
            },
        );
    }
}

fn missing_assignment(guid: &str, scope: String, o: &ObservedApp, b: &mut Builder) {
    b.plan.finding(
        Finding::builder(
            Control::Identity,
            "azure.identity.missingRoleAssignment",
            "roleAssignments",
        )
        .observed("absent")
        .desired(format!("role {guid} at {scope}"))
        .severity(Severity::Low)
        .remediable(true)
        .message(format!("the app's identity lacks the declared role {guid} at {scope}")),
    );
    b.plan.push(
        Phase::Grant,
        AzureAction::CreateRoleAssignment {
            site: o.id.clone(),
            name: names::assignment_name(&o.id, guid, &scope),
            role_definition_id: format!(
                "/subscriptions/{}/providers/Microsoft.Authorization/roleDefinitions/{guid}",
                o.subscription
            ),
            scope,
            principal_id: o.system_principal.clone(),
        },
    );
}

/// The ARM shape of a declared access restriction: always an Allow rule.
pub fn restriction_json(r: &AzureAccessRestriction) -> Value {
    let mut v = json!({"name": r.name, "priority": r.priority, "action": "Allow"});
    if let Some(ip) = &r.ip_address {
        v["ipAddress"] = json!(ip);
    } else if let Some(subnet) = &r.vnet_subnet_resource_id {
        v["vnetSubnetResourceId"] = json!(subnet);
    } else if let Some(tag) = &r.service_tag {
        v["ipAddress"] = json!(tag);
        v["tag"] = json!("ServiceTag");
    }
    if !r.headers.is_empty() {
        v["headers"] = json!(r.headers);
    }
    v
}

/// The priority ARM gives the implicit rule that stands for the default
/// action at the end of every list.
pub const IMPLICIT_PRIORITY: i64 = 2147483647;

/// What a rule lets in, for comparison: its source (address range, subnet
/// or service tags), its tag, its header pins, its action and priority.
/// The name and description are labels and do not count. A rule pinned to
/// one Front Door is a different rule from the same source unpinned.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct RuleKey {
    pub source: String,
    pub tag: String,
    pub headers: BTreeMap<String, BTreeSet<String>>,
    pub action: String,
    pub priority: i64,
}

pub fn rule_key(v: &Value) -> RuleKey {
    let tag = v["tag"]
        .as_str()
        .filter(|t| !t.is_empty())
        .unwrap_or("Default")
        .to_ascii_lowercase();
    let source = match v["vnetSubnetResourceId"].as_str().filter(|s| !s.is_empty()) {
        Some(subnet) => subnet.to_ascii_lowercase(),
        None => {
            let ip = v["ipAddress"].as_str().unwrap_or_default().to_ascii_lowercase();
            // Service tags are a set: order and spacing do not matter.
            let mut parts: Vec<&str> = ip.split(',').map(str::trim).filter(|p| !p.is_empty()).collect();
            parts.sort_unstable();
            parts.join(",")
        }
    };
    let headers = v["headers"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, vals)| {
                    let set: BTreeSet<String> = vals
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(Value::as_str)
                        .map(str::to_ascii_lowercase)
                        .collect();
                    (k.to_ascii_lowercase(), set)
                })
                .filter(|(_, set)| !set.is_empty())
                .collect()
        })
        .unwrap_or_default();
    RuleKey {
        source,
        tag,
        headers,
        action: v["action"].as_str().unwrap_or("Allow").to_ascii_lowercase(),
        priority: v["priority"].as_i64().unwrap_or_default(),
    }
}

/// The rule ARM shows for the default action itself: `Any` at the last
/// priority, "Allow all" when the list's default action is Allow (or unset),
/// "Deny all" when it is Deny — not a rule anyone wrote. An `Any` rule at
/// any other priority or name, or one that contradicts the list's default,
/// is a rule, and judged as one: taking an "Allow all" for the implicit rule
/// of a Deny list would pass an open list as closed.
pub fn implicit(v: &Value, default_action: Option<&str>) -> bool {
    let k = rule_key(v);
    let (name, action) = match default_action {
        Some(d) if d.eq_ignore_ascii_case("Deny") => ("Deny all", "deny"),
        _ => ("Allow all", "allow"),
    };
    k.source == "any"
        && k.priority == IMPLICIT_PRIORITY
        && k.headers.is_empty()
        && k.tag == "default"
        && k.action == action
        && v["name"].as_str().is_some_and(|n| n.eq_ignore_ascii_case(name))
}

/// An explicit rule that lets every address in: `Any` or a whole address
/// space, with no header pin.
pub fn open_rule(v: &Value) -> bool {
    let k = rule_key(v);
    k.action == "allow"
        && k.tag != "servicetag"
        && k.headers.is_empty()
        && matches!(k.source.as_str(), "any" | "0.0.0.0/0" | "::/0")
}

/// The access restrictions to write: the planned list plus every Deny rule
/// the app holds now that the plan did not see (added between observation
/// and write). ARM replaces the list, so dropping one would widen access.
pub fn with_current_denies(planned: &[Value], current: &[Value]) -> Vec<Value> {
    let planned_keys: BTreeSet<_> = planned.iter().map(rule_key).collect();
    let mut out = planned.to_vec();
    out.extend(
        current
            .iter()
            // A "Deny all" at the last priority adds nothing to the Deny
            // default every enforced list is written with.
            .filter(|r| {
                !implicit(r, Some("Deny")) && rule_key(r).action == "deny" && !planned_keys.contains(&rule_key(r))
            })
            .cloned(),
    );
    out
}

fn tls_at_least_1_2(v: &str) -> bool {
    let mut parts = v.split('.');
    match (
        parts.next().and_then(|m| m.parse::<u32>().ok()),
        parts.next().and_then(|n| n.parse::<u32>().ok()),
    ) {
        (Some(major), Some(minor)) => (major, minor) >= (1, 2),
        _ => false,
    }
}

/// A rule as findings show it: action, source, tag and pins.
fn describe(v: &Value) -> String {
    let k = rule_key(v);
    let mut d = format!(
        "{} {}",
        v["action"].as_str().unwrap_or("Allow"),
        v["vnetSubnetResourceId"]
            .as_str()
            .filter(|s| !s.is_empty())
            .or_else(|| v["ipAddress"].as_str())
            .unwrap_or("?")
    );
    if k.tag != "default" {
        d.push_str(&format!(" (tag {})", v["tag"].as_str().unwrap_or_default()));
    }
    for (h, vals) in &k.headers {
        d.push_str(&format!(
            " [{h}: {}]",
            vals.iter().cloned().collect::<Vec<_>>().join(", ")
        ));
    }
    format!("{d} (priority {})", k.priority)
}

fn triggers(t: &TriggerControl, s: &Surface, target: &mut Target, plan: &mut PlanBuilder<AzureAction>) {
    let a: AzureTriggers = t.azure.clone().unwrap_or_default();
    let want_closed = match a.public_network_access {
        Some(AzurePublicNetworkAccess::Disabled) => true,
        // Declared Enabled: a closed endpoint is stricter and stays closed.
        Some(AzurePublicNetworkAccess::Enabled) => false,
        None => t.public_access == PublicAccess::Deny,
    };
    let closed = s.public_network_access == "Disabled";
    if want_closed && !closed {
        plan.finding(
            Finding::builder(
                Control::Triggers,
                "azure.triggers.publicNetworkAccess",
                s.field("properties.publicNetworkAccess"),
            )
            .observed(s.public_network_access)
            .desired("Disabled")
            .severity(Severity::High)
            .remediable(true)
            .message(format!(
                "{} is reachable from the internet; only private endpoints should reach it",
                s.label
            )),
        );
        target.site.set(SiteField::PublicNetworkAccess("Disabled".into()));
    }

    if let (Some(declared), Some(web)) = (&a.access_restrictions, s.web) {
        restrictions(declared, t.remove_unlisted, web, s, target, plan);
        // A closed public endpoint closes the SCM site too.
        if !(want_closed || closed) {
            let keys = declared.iter().map(|d| rule_key(&restriction_json(d))).collect();
            scm(&keys, t.remove_unlisted, web, s, target, plan);
        }
    }

    if a.require_authentication
        && let Some(auth) = s.auth
    {
        authentication(auth, s, target, plan);
    }

    if a.harden_transport {
        transport(s, target, plan);
    }
}

fn authentication(auth: &AuthSettings, s: &Surface, target: &mut Target, plan: &mut PlanBuilder<AzureAction>) {
    let anonymous_allowed = auth
        .unauthenticated_client_action
        .as_deref()
        .is_none_or(|x| x == "AllowAnonymous");
    if auth.enabled && auth.require_authentication && !anonymous_allowed {
        return;
    }
    let can_fix = auth.has_identity_provider;
    plan.finding(
        Finding::builder(
            Control::Triggers,
            "azure.triggers.authentication",
            s.field("config/authsettingsV2.globalValidation.requireAuthentication"),
        )
        .observed(if auth.enabled {
            "authentication on, anonymous callers allowed"
        } else {
            "authentication off"
        })
        .desired("authentication required, unauthenticated callers refused")
        .severity(Severity::High)
        .remediable(can_fix)
        .message(if can_fix {
            format!("anyone who can reach {} can call it without authenticating", s.label)
        } else {
            format!(
                "anyone who can reach {} can call it without authenticating; no identity provider is configured, so requiring authentication would lock every caller out — register one (e.g. Microsoft Entra ID) and zerofn will require it",
                s.label
            )
        }),
    );
    target.auth = can_fix;
}

fn transport(s: &Surface, target: &mut Target, plan: &mut PlanBuilder<AzureAction>) {
    if !s.https_only {
        plan.finding(
            Finding::builder(
                Control::Triggers,
                "azure.triggers.httpsOnly",
                s.field("properties.httpsOnly"),
            )
            .observed("false")
            .desired("true")
            .severity(Severity::Medium)
            .remediable(true)
            .message(format!("{} answers plain HTTP", s.label)),
        );
        target.site.set(SiteField::HttpsOnly(true));
    }
    if let Some(web) = s.web {
        if !tls_at_least_1_2(&web.min_tls_version) {
            plan.finding(
                Finding::builder(
                    Control::Triggers,
                    "azure.triggers.minTlsVersion",
                    s.field("config/web.minTlsVersion"),
                )
                .observed(&web.min_tls_version)
                .desired("1.2")
                .severity(Severity::High)
                .remediable(true)
                .message(format!("{} accepts TLS versions older than 1.2", s.label)),
            );
            target.web.set(WebField::MinTlsVersion("1.2".into()));
        }
        if web.ftps_state != "Disabled" {
            plan.finding(
                Finding::builder(
                    Control::Triggers,
                    "azure.triggers.ftpsState",
                    s.field("config/web.ftpsState"),
                )
                .observed(&web.ftps_state)
                .desired("Disabled")
                .severity(Severity::Medium)
                .remediable(true)
                .message(format!("FTP(S) deployment to {} is open", s.label)),
            );
            target.web.set(WebField::FtpsState("Disabled".into()));
        }
    }
    if let Some((ftp, scm)) = s.publishing {
        for (allowed, kind, check) in [
            (ftp, "ftp", "azure.triggers.basicPublishing.ftp"),
            (scm, "scm", "azure.triggers.basicPublishing.scm"),
        ] {
            if allowed {
                plan.finding(
                    Finding::builder(
                        Control::Triggers,
                        check,
                        s.field(&format!("basicPublishingCredentialsPolicies/{kind}.allow")),
                    )
                    .observed("true")
                    .desired("false")
                    .severity(Severity::High)
                    .remediable(true)
                    .message(format!(
                        "{} deployment accepts basic (username/password) credentials instead of Entra ID",
                        kind.to_uppercase()
                    )),
                );
                target.publishing.push(AzureAction::DisableBasicPublishing {
                    site: target.id.clone(),
                    kind: kind.to_string(),
                });
            }
        }
    }
}

/// Access restrictions: the declared Allow rules in place, default action
/// Deny. Undeclared Allow rules go (or are reported when removeUnlisted is
/// false, except an open one, which always goes); undeclared Deny rules stay
/// whole, pins and all — with the default action Deny they can only narrow
/// what the declared rules let in.
fn restrictions(
    declared: &[AzureAccessRestriction],
    remove_unlisted: bool,
    web: &WebConfig,
    s: &Surface,
    target: &mut Target,
    plan: &mut PlanBuilder<AzureAction>,
) {
    let want: Vec<Value> = declared.iter().map(restriction_json).collect();
    let want_keys: BTreeSet<_> = want.iter().map(rule_key).collect();
    let default = web.default_action.as_deref();
    let observed: Vec<&Value> = web
        .ip_security_restrictions
        .iter()
        .filter(|r| !implicit(r, default))
        .collect();
    let have_keys: BTreeSet<_> = observed.iter().map(|r| rule_key(r)).collect();
    let mut changed = open_by_default(web, s, plan);
    let mut kept = Vec::new();
    for r in observed.into_iter().filter(|r| !want_keys.contains(&rule_key(r))) {
        if rule_key(r).action != "deny" && undeclared_allow(r, remove_unlisted, s, plan) {
            changed = true;
        } else {
            kept.push(r.clone());
        }
    }
    for w in want.iter().filter(|w| !have_keys.contains(&rule_key(w))) {
        missing_rule(w, s, plan);
        changed = true;
    }
    if changed {
        let mut rules = want;
        rules.extend(kept);
        target.web.set(WebField::IpSecurityRestrictions(rules));
    }
}

/// Traffic no rule matches is let in: a finding, and the reason to write
/// the list with default action Deny.
fn open_by_default(web: &WebConfig, s: &Surface, plan: &mut PlanBuilder<AzureAction>) -> bool {
    if web.default_action.as_deref() == Some("Deny") {
        return false;
    }
    plan.finding(
        Finding::builder(
            Control::Triggers,
            "azure.triggers.accessRestrictionsDefault",
            s.field("config/web.ipSecurityRestrictionsDefaultAction"),
        )
        .observed(web.default_action.as_deref().unwrap_or("Allow"))
        .desired("Deny")
        .severity(Severity::High)
        .remediable(true)
        .message(format!(
            "traffic no access restriction of {} matches is let in",
            s.label
        )),
    );
    true
}

/// An Allow rule the posture does not declare: reported, and removed
/// (true) unless removeUnlisted is false and the rule is not open.
fn undeclared_allow(r: &Value, remove_unlisted: bool, s: &Surface, plan: &mut PlanBuilder<AzureAction>) -> bool {
    let open = open_rule(r);
    let remove = remove_unlisted || open;
    let name = r["name"].as_str().unwrap_or("?");
    plan.finding(
        Finding::builder(
            Control::Triggers,
            if open {
                "azure.triggers.openAccessRestriction"
            } else {
                "azure.triggers.unlistedAccessRestriction"
            },
            s.rule_field("ipSecurityRestrictions", r),
        )
        .observed(describe(r))
        .desired("declared access restrictions only")
        .severity(if open { Severity::Critical } else { Severity::High })
        .remediable(remove)
        .message(match (open, remove) {
            (true, _) => format!(
                "rule {name} lets every address reach {}: it is an explicit rule, not the platform's default, and it is removed whatever removeUnlisted says",
                s.label
            ),
            (false, true) => format!("{} may reach {} but is not declared", describe(r), s.label),
            (false, false) => format!(
                "{} may reach {} but is not declared (kept: triggers.removeUnlisted is false)",
                describe(r),
                s.label
            ),
        }),
    );
    remove
}

fn missing_rule(w: &Value, s: &Surface, plan: &mut PlanBuilder<AzureAction>) {
    plan.finding(
        Finding::builder(
            Control::Triggers,
            "azure.triggers.missingAccessRestriction",
            s.rule_field("ipSecurityRestrictions", w),
        )
        .observed("absent")
        .desired(describe(w))
        .severity(Severity::Low)
        .remediable(true)
        .message(format!(
            "the declared access restriction {} of {} is missing",
            describe(w),
            s.label
        )),
    );
}

/// The SCM (Kudu) site: deployment and console access to the app. It must
/// be no wider than the declared main site: either it uses the main site's
/// rules, or its own are closed by default and let in no more than the
/// declared rules do. The fix only narrows: default action Deny, open and
/// undeclared Allow rules dropped (undeclared ones only when removeUnlisted
/// allows; open ones always); Deny rules and declared rules stay as they
/// are. Declared rules are never added: a closed SCM site is fine.
fn scm(
    declared: &BTreeSet<RuleKey>,
    remove_unlisted: bool,
    web: &WebConfig,
    s: &Surface,
    target: &mut Target,
    plan: &mut PlanBuilder<AzureAction>,
) {
    if web.scm_use_main {
        return;
    }
    let default_open = web.scm_default_action.as_deref() != Some("Deny");
    let mut wide = Vec::new();
    let mut keep = Vec::new();
    let default = web.scm_default_action.as_deref();
    for r in web
        .scm_ip_security_restrictions
        .iter()
        .filter(|r| !implicit(r, default))
    {
        let k = rule_key(r);
        if k.action == "deny" || declared.contains(&k) {
            keep.push(r.clone());
        } else if open_rule(r) || remove_unlisted {
            wide.push(describe(r));
        } else {
            keep.push(r.clone());
            plan.finding(
                Finding::builder(
                    Control::Triggers,
                    "azure.triggers.scmUnlistedAccessRestriction",
                    s.rule_field("scmIpSecurityRestrictions", r),
                )
                .observed(describe(r))
                .desired("the declared access restrictions only")
                .severity(Severity::High)
                .remediable(false)
                .message(format!(
                    "{} may reach the SCM (Kudu) site of {} but is not declared (kept: triggers.removeUnlisted is false)",
                    describe(r),
                    s.label
                )),
            );
        }
    }
    if !default_open && wide.is_empty() {
        return;
    }
    let mut observed = Vec::new();
    if default_open {
        observed.push(format!(
            "default action {}",
            web.scm_default_action.as_deref().unwrap_or("Allow")
        ));
    }
    observed.extend(wide);
    plan.finding(
        Finding::builder(
            Control::Triggers,
            "azure.triggers.scmAccessRestrictions",
            s.field("config/web.scmIpSecurityRestrictions"),
        )
        .observed(observed.join("; "))
        .desired("the main site's rules, or default action Deny and no rule wider than the declared ones")
        .severity(Severity::High)
        .remediable(true)
        .message(format!(
            "the SCM (Kudu) site of {} lets in more than the declared access restrictions: deployment and the console are open wider than the app; its default action becomes Deny and the wider rules are removed (Deny rules and declared rules stay)",
            s.label
        )),
    );
    target.web.set(WebField::ScmIpSecurityRestrictions(keep));
}

fn network(p: &Posture, o: &ObservedApp, b: &mut Builder) {
    let Some(n) = p.spec.network.as_ref().and_then(|n| n.azure.as_ref()) else {
        return;
    };
    let same = o
        .virtual_network_subnet_id
        .as_deref()
        .is_some_and(|s| names::normalize_scope(s) == names::normalize_scope(&n.subnet_id));
    if !same {
        let none = o.virtual_network_subnet_id.is_none();
        b.plan.finding(
            Finding::builder(
                Control::Network,
                if none {
                    "azure.network.noVnetIntegration"
                } else {
                    "azure.network.subnet"
                },
                "properties.virtualNetworkSubnetId",
            )
            .observed(o.virtual_network_subnet_id.as_deref().unwrap_or("none"))
            .desired(&n.subnet_id)
            .severity(if none { Severity::High } else { Severity::Medium })
            .remediable(true)
            .message(if none {
                "the app is not integrated with a virtual network, so its egress leaves straight to the internet"
            } else {
                "the app is integrated with another subnet than declared"
            }),
        );
        b.app.site.set(SiteField::VirtualNetworkSubnetId(n.subnet_id.clone()));
    }
    if n.route_all_egress && !o.vnet_route_all {
        b.plan.finding(
            Finding::builder(
                Control::Network,
                "azure.network.routeAll",
                "config/web.vnetRouteAllEnabled",
            )
            .observed("false")
            .desired("true")
            .severity(Severity::Medium)
            .remediable(true)
            .message("only private-range traffic goes through the virtual network; the rest bypasses its controls"),
        );
        b.app.site.set(SiteField::VnetRouteAllEnabled(true));
    }
    // Judged on the subnet the app is in; one not integrated is the finding
    // above already.
    if n.require_egress_control && o.virtual_network_subnet_id.is_some() {
        super::egress::plan(o, &mut b.plan);
    }
}

fn supply_chain(p: &Posture, o: &ObservedApp, b: &mut Builder) {
    let Some(sc) = p.spec.supply_chain.as_ref().and_then(|s| s.azure.as_ref()) else {
        return;
    };
    if sc.require_run_from_package && o.app_setting(names::RUN_FROM_PACKAGE) == Some(false) {
        b.plan.finding(
            Finding::builder(
                Control::SupplyChain,
                "azure.supplyChain.runFromPackage",
                format!("appsettings.{}", names::RUN_FROM_PACKAGE),
            )
            .observed("unset")
            .desired("a deployment package")
            .severity(Severity::Medium)
            .remediable(false)
            .message("the app does not run from an immutable deployment package, so its files can be changed in place; deployment is reported, not changed"),
        );
    }
}

/// A diagnostic setting sends the app's FunctionAppLogs to the declared
/// workspace (report-only: diagnostic settings are the platform team's);
/// settings that could not be read are not judged, never passed.
fn log_workspace(workspace: &str, o: &ObservedApp, b: &mut Builder) {
    let finding = |observed: String, message: String| {
        Finding::builder(
            Control::Observability,
            "azure.observability.logWorkspace",
            "diagnosticSettings.properties.workspaceId",
        )
        .observed(observed)
        .desired(workspace)
        .severity(Severity::Medium)
        .remediable(false)
        .message(message)
    };
    match &o.log_destinations {
        Some(Ok(sent)) if sent.iter().any(|w| w.eq_ignore_ascii_case(workspace)) => {}
        Some(Ok(sent)) => b.plan.finding(finding(
            if sent.is_empty() { "FunctionAppLogs sent nowhere".into() } else { sent.join(",") },
            format!("no diagnostic setting sends the app's FunctionAppLogs to {workspace}; add one (zerofn does not change diagnostic settings)"),
        )),
        Some(Err(e)) => b.plan.finding(finding(
            format!("{}: {e}", e.reason().as_str()),
            format!("where the app's logs go could not be judged: {e}; grant Microsoft.Insights/diagnosticSettings/read"),
        )),
        None => b.plan.finding(finding(
            "not read".into(),
            "where the app's logs go was not read".into(),
        )),
    }
}

fn observability(p: &Posture, o: &ObservedApp, b: &mut Builder) {
    let Some(ob) = &p.spec.observability else { return };
    if let Some(w) = ob.azure.as_ref().and_then(|a| a.log_analytics_workspace.as_ref()) {
        log_workspace(w, o, b);
        if ob.tracing.is_none() {
            return;
        }
    }
    match ob.tracing {
        Some(TracingMode::Active) => {
            let connected = names::APP_INSIGHTS_SETTINGS
                .iter()
                .any(|s| o.app_setting(s) == Some(true));
            if !connected && o.app_settings.is_some() {
                b.plan.finding(
                    Finding::builder(
                        Control::Observability,
                        "azure.observability.applicationInsights",
                        format!("appsettings.{}", names::APP_INSIGHTS_SETTINGS[0]),
                    )
                    .observed("unset")
                    .desired("an Application Insights connection string")
                    .severity(Severity::Medium)
                    .remediable(false)
                    .message("the app sends no telemetry to Application Insights; connecting it needs a resource zerofn does not create, so this is reported"),
                );
            }
        }
        Some(TracingMode::PassThrough) => {}
        None => b.notes.push(Note {
            control: Control::Observability,
            reason: crate::reason::Reason::NotApplicable,
            message: "Azure Functions log through Application Insights, whose telemetry is structured; declare tracing: Active to check it is connected".into(),
        }),
    }
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
