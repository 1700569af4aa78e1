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

use super::action::AzureAction;
use super::model::ObservedApp;
use super::names;
use crate::api::{
    AzureAccessRestriction, AzurePublicNetworkAccess, AzureTriggers, IdentityControl, Mode, PublicAccess, TracingMode,
    TriggerControl,
};
use crate::findings::{Control, Finding, Severity};
use crate::providers::{Action, Blocked, Note, Plan, Posture};
use serde_json::{Value, json};
use std::collections::BTreeSet;

/// Built-in roles that can change anything, or who may: an undeclared one
/// is critical.
const BROAD_ROLES: [&str; 3] = [
    "8e3af657-a8ff-443c-a75c-2fe8c4bcb635", // Owner
    "b24988ac-6180-42a0-ab88-20f7382d0c24", // Contributor
    "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9", // User Access Administrator
];

#[derive(Default)]
struct SitePatch {
    https_only: Option<bool>,
    public_network_access: Option<String>,
    subnet: Option<String>,
    route_all: Option<bool>,
}

#[derive(Default)]
struct WebPatch {
    min_tls: Option<String>,
    ftps: Option<String>,
    restrictions: Option<Vec<Value>>,
}

#[derive(Default)]
struct Builder {
    findings: Vec<Finding>,
    claim: Vec<AzureAction>,
    enable: Option<AzureAction>,
    site: SitePatch,
    web: WebPatch,
    publishing: Vec<AzureAction>,
    auth: bool,
    create: Vec<AzureAction>,
    delete: Vec<AzureAction>,
    notes: Vec<Note>,
}

pub fn plan(p: &Posture, o: &ObservedApp) -> Plan {
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
    observability(p, o, &mut b);

    let mut findings = b.findings;
    findings.sort_by(|a, b| (a.control, &a.check, &a.field).cmp(&(b.control, &b.check, &b.field)));
    let mut actions = Vec::new();
    if blocked.is_none() {
        actions.extend(b.claim);
        actions.extend(b.enable);
        let s = b.site;
        if s.https_only.is_some() || s.public_network_access.is_some() || s.subnet.is_some() || s.route_all.is_some() {
            actions.push(AzureAction::PatchSite {
                site: o.id.clone(),
                https_only: s.https_only,
                public_network_access: s.public_network_access,
                virtual_network_subnet_id: s.subnet,
                vnet_route_all_enabled: s.route_all,
            });
        }
        let w = b.web;
        if w.min_tls.is_some() || w.ftps.is_some() || w.restrictions.is_some() {
            actions.push(AzureAction::PatchWebConfig {
                site: o.id.clone(),
                min_tls_version: w.min_tls,
                ftps_state: w.ftps,
                ip_security_restrictions: w.restrictions,
            });
        }
        actions.extend(b.publishing);
        if b.auth {
            actions.push(AzureAction::RequireAuthentication { site: o.id.clone() });
        }
        // Grants the function needs first, then the ones it must lose: no
        // window in which it holds neither.
        actions.extend(b.create);
        actions.extend(b.delete);
    }
    Plan {
        function: format!("{}/{}", o.resource_group, o.name),
        principal: o
            .system_principal
            .clone()
            .or_else(|| o.user_assigned.values().next().cloned()),
        findings,
        actions: actions.into_iter().map(Action::Azure).collect(),
        blocked,
        notes: b.notes,
    }
}

fn ownership(p: &Posture, o: &ObservedApp, b: &mut Builder) -> Option<Blocked> {
    if p.mode() != Mode::Enforce {
        return None;
    }
    match o.tags.get(names::OWNER_TAG) {
        Some(v) if *v != p.owner => Some(Blocked::Conflict {
            owner: format!("{v} (tag {})", names::OWNER_TAG),
        }),
        Some(_) => None,
        None => {
            b.claim.push(AzureAction::SetTag {
                site: o.id.clone(),
                key: names::OWNER_TAG.to_string(),
                value: Some(p.owner.clone()),
            });
            None
        }
    }
}

fn in_subscription(scope: &str, subscription: &str) -> bool {
    let s = names::normalize_scope(scope);
    let sub = format!("/subscriptions/{}", subscription.to_ascii_lowercase());
    s == sub || s.starts_with(&format!("{sub}/"))
}

fn identity(id: &IdentityControl, o: &ObservedApp, b: &mut Builder) {
    let mut enabling = false;
    if id.dedicated {
        if o.system_principal.is_none() {
            let ua: Vec<String> = o.user_assigned.keys().cloned().collect();
            b.findings.push(
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
            b.enable = Some(AzureAction::EnableSystemIdentity {
                site: o.id.clone(),
                user_assigned: ua,
            });
            enabling = true;
        }
        for (uai, others) in &o.shared_user_assigned {
            b.findings.push(
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
    }

    let Some(declared) = id.azure.as_ref().and_then(|a| a.role_assignments.as_ref()) else {
        return;
    };
    let mut want: BTreeSet<(String, String)> = BTreeSet::new();
    let mut scopes_as_written = std::collections::BTreeMap::new();
    for d in declared {
        match o.roles.get(&d.role).cloned().flatten() {
            Some(guid) => {
                let key = (guid, names::normalize_scope(&d.scope));
                scopes_as_written.insert(key.clone(), d.scope.clone());
                want.insert(key);
            }
            None => b.findings.push(
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
    let have = match (&o.system_principal, &o.assignments) {
        (Some(_), Some(a)) => a.clone(),
        // The identity is enabled by this plan: its principal holds nothing.
        (None, _) if enabling => Vec::new(),
        _ => {
            b.findings.push(
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
    let have_keys: BTreeSet<(String, String)> = have
        .iter()
        .map(|a| (a.role.clone(), names::normalize_scope(&a.scope)))
        .collect();
    for a in &have {
        let key = (a.role.clone(), names::normalize_scope(&a.scope));
        if want.contains(&key) {
            continue;
        }
        let ours = in_subscription(&a.scope, &o.subscription);
        let broad = BROAD_ROLES.contains(&a.role.as_str());
        b.findings.push(
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
                format!("the app's identity holds role {} at {}, which is not declared", a.role, a.scope)
            } else {
                format!(
                    "the app's identity inherits role {} from {}, above the subscription zerofn governs; remove it there",
                    a.role, a.scope
                )
            }),
        );
        if ours {
            b.delete.push(AzureAction::DeleteRoleAssignment {
                id: a.id.clone(),
                role: a.role.clone(),
                scope: a.scope.clone(),
            });
        }
    }
    for key in want.difference(&have_keys) {
        let (guid, _) = key;
        let scope = scopes_as_written.get(key).cloned().unwrap_or_else(|| key.1.clone());
        b.findings.push(
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
        b.create.push(AzureAction::CreateRoleAssignment {
            site: o.id.clone(),
            name: names::assignment_name(&o.id, guid, &scope),
            role_definition_id: format!(
                "/subscriptions/{}/providers/Microsoft.Authorization/roleDefinitions/{guid}",
                o.subscription
            ),
            scope,
            principal_id: o.system_principal.clone(),
        });
    }
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
    v
}

/// What a rule lets in, for comparison: (source, action, priority). Names
/// are labels and do not count.
fn rule_key(v: &Value) -> (String, String, i64) {
    let source = v["vnetSubnetResourceId"]
        .as_str()
        .filter(|s| !s.is_empty())
        .or_else(|| v["ipAddress"].as_str())
        .unwrap_or_default()
        .to_ascii_lowercase();
    (
        source,
        v["action"].as_str().unwrap_or("Allow").to_string(),
        v["priority"].as_i64().unwrap_or_default(),
    )
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
            .filter(|r| !implicit(r) && r["action"] == "Deny" && !planned_keys.contains(&rule_key(r)))
            .cloned(),
    );
    out
}

/// The rule ARM shows for the default action itself (`Any`), not a rule
/// anyone wrote.
fn implicit(v: &Value) -> bool {
    v["ipAddress"].as_str().is_some_and(|ip| ip.eq_ignore_ascii_case("Any"))
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

fn triggers(t: &TriggerControl, o: &ObservedApp, b: &mut Builder) {
    let a: AzureTriggers = t.azure.clone().unwrap_or_default();
    let want_closed = match a.public_network_access {
        Some(AzurePublicNetworkAccess::Disabled) => true,
        // Declared Enabled: a closed endpoint is stricter and stays closed.
        Some(AzurePublicNetworkAccess::Enabled) => false,
        None => t.public_access == PublicAccess::Deny,
    };
    if want_closed && o.public_network_access != "Disabled" {
        b.findings.push(
            Finding::builder(
                Control::Triggers,
                "azure.triggers.publicNetworkAccess",
                "properties.publicNetworkAccess",
            )
            .observed(&o.public_network_access)
            .desired("Disabled")
            .severity(Severity::High)
            .remediable(true)
            .message("the app is reachable from the internet; only private endpoints should reach it"),
        );
        b.site.public_network_access = Some("Disabled".into());
    }

    if let (Some(declared), Some(web)) = (&a.access_restrictions, &o.web) {
        restrictions(declared, t.remove_unlisted, web, b);
    }

    if a.require_authentication
        && let Some(auth) = &o.auth
    {
        let anonymous_allowed = auth
            .unauthenticated_client_action
            .as_deref()
            .is_none_or(|x| x == "AllowAnonymous");
        if !(auth.enabled && auth.require_authentication && !anonymous_allowed) {
            let can_fix = auth.has_identity_provider;
            b.findings.push(
                Finding::builder(
                    Control::Triggers,
                    "azure.triggers.authentication",
                    "config/authsettingsV2.globalValidation.requireAuthentication",
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
                    "anyone who can reach the app can call it without authenticating".to_string()
                } else {
                    "anyone who can reach the app can call it without authenticating; no identity provider is configured, so requiring authentication would lock every caller out — register one (e.g. Microsoft Entra ID) and zerofn will require it".to_string()
                }),
            );
            b.auth = can_fix;
        }
    }

    if a.harden_transport {
        if !o.https_only {
            b.findings.push(
                Finding::builder(Control::Triggers, "azure.triggers.httpsOnly", "properties.httpsOnly")
                    .observed("false")
                    .desired("true")
                    .severity(Severity::Medium)
                    .remediable(true)
                    .message("the app answers plain HTTP"),
            );
            b.site.https_only = Some(true);
        }
        if let Some(web) = &o.web {
            if !tls_at_least_1_2(&web.min_tls_version) {
                b.findings.push(
                    Finding::builder(
                        Control::Triggers,
                        "azure.triggers.minTlsVersion",
                        "config/web.minTlsVersion",
                    )
                    .observed(&web.min_tls_version)
                    .desired("1.2")
                    .severity(Severity::High)
                    .remediable(true)
                    .message("the app accepts TLS versions older than 1.2"),
                );
                b.web.min_tls = Some("1.2".into());
            }
            if web.ftps_state != "Disabled" {
                b.findings.push(
                    Finding::builder(Control::Triggers, "azure.triggers.ftpsState", "config/web.ftpsState")
                        .observed(&web.ftps_state)
                        .desired("Disabled")
                        .severity(Severity::Medium)
                        .remediable(true)
                        .message("FTP(S) deployment is open"),
                );
                b.web.ftps = Some("Disabled".into());
            }
        }
        if let Some((ftp, scm)) = o.publishing {
            for (allowed, kind, check) in [
                (ftp, "ftp", "azure.triggers.basicPublishing.ftp"),
                (scm, "scm", "azure.triggers.basicPublishing.scm"),
            ] {
                if allowed {
                    b.findings.push(
                        Finding::builder(
                            Control::Triggers,
                            check,
                            format!("basicPublishingCredentialsPolicies/{kind}.allow"),
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
                    b.publishing.push(AzureAction::DisableBasicPublishing {
                        site: o.id.clone(),
                        kind: kind.to_string(),
                    });
                }
            }
        }
    }
}

/// Access restrictions: the declared Allow rules in place, default action
/// Deny. Undeclared Allow rules go (or are reported when removeUnlisted is
/// false); undeclared Deny rules stay — with the default action Deny they can
/// only narrow what the declared rules let in.
fn restrictions(
    declared: &[AzureAccessRestriction],
    remove_unlisted: bool,
    web: &super::model::WebConfig,
    b: &mut Builder,
) {
    let want: Vec<Value> = declared.iter().map(restriction_json).collect();
    let want_keys: BTreeSet<_> = want.iter().map(rule_key).collect();
    let observed: Vec<&Value> = web.ip_security_restrictions.iter().filter(|r| !implicit(r)).collect();
    let have_keys: BTreeSet<_> = observed.iter().map(|r| rule_key(r)).collect();
    let mut changed = false;
    let mut kept = Vec::new();
    if web.default_action.as_deref() != Some("Deny") {
        b.findings.push(
            Finding::builder(
                Control::Triggers,
                "azure.triggers.accessRestrictionsDefault",
                "config/web.ipSecurityRestrictionsDefaultAction",
            )
            .observed(web.default_action.as_deref().unwrap_or("Allow"))
            .desired("Deny")
            .severity(Severity::High)
            .remediable(true)
            .message("traffic no access restriction matches is let in"),
        );
        changed = true;
    }
    for r in &observed {
        let key = rule_key(r);
        if want_keys.contains(&key) {
            continue;
        }
        if key.1 == "Deny" {
            kept.push((*r).clone());
            continue;
        }
        b.findings.push(
            Finding::builder(
                Control::Triggers,
                "azure.triggers.unlistedAccessRestriction",
                format!(
                    "config/web.ipSecurityRestrictions[{}]",
                    r["name"].as_str().unwrap_or("?")
                ),
            )
            .observed(format!("Allow {} (priority {})", key.0, key.2))
            .desired("declared access restrictions only")
            .severity(Severity::High)
            .remediable(remove_unlisted)
            .message(if remove_unlisted {
                format!("{} may reach the app but is not declared", key.0)
            } else {
                format!(
                    "{} may reach the app but is not declared (kept: triggers.removeUnlisted is false)",
                    key.0
                )
            }),
        );
        if remove_unlisted {
            changed = true;
        } else {
            kept.push((*r).clone());
        }
    }
    for (w, key) in want.iter().zip(want.iter().map(rule_key)) {
        if !have_keys.contains(&key) {
            b.findings.push(
                Finding::builder(
                    Control::Triggers,
                    "azure.triggers.missingAccessRestriction",
                    format!(
                        "config/web.ipSecurityRestrictions[{}]",
                        w["name"].as_str().unwrap_or("?")
                    ),
                )
                .observed("absent")
                .desired(format!("Allow {} (priority {})", key.0, key.2))
                .severity(Severity::Low)
                .remediable(true)
                .message(format!("the declared access restriction for {} is missing", key.0)),
            );
            changed = true;
        }
    }
    if changed {
        let mut rules = want;
        rules.extend(kept);
        b.web.restrictions = Some(rules);
    }
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
        b.findings.push(
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
        b.site.subnet = Some(n.subnet_id.clone());
    }
    if n.route_all_egress && !o.vnet_route_all {
        b.findings.push(
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
        b.site.route_all = Some(true);
    }
}

fn supply_chain(p: &Posture, o: &ObservedApp, b: &mut Builder) {
    let Some(sc) = p.spec.supply_chain.as_ref().and_then(|s| s.azure.as_ref()) else {
        return;
    };
    if sc.require_run_from_package && o.app_setting(names::RUN_FROM_PACKAGE) == Some(false) {
        b.findings.push(
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

fn observability(p: &Posture, o: &ObservedApp, b: &mut Builder) {
    let Some(ob) = &p.spec.observability else { return };
    match ob.tracing {
        Some(TracingMode::Active) => {
            let connected = names::APP_INSIGHTS_SETTINGS
                .iter()
                .any(|s| o.app_setting(s) == Some(true));
            if !connected && o.app_settings.is_some() {
                b.findings.push(
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
            reason: "NotApplicable".into(),
            message: "Azure Functions log through Application Insights, whose telemetry is structured; declare tracing: Active to check it is connected".into(),
        }),
    }
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
