//! Pure planning for Cloud Functions (2nd gen): declared posture + observed
//! function → findings and the ordered writes that would fix them.
//!
//! Safety rules: an action only removes access or adds what the posture
//! declares; an account shared with another function (or a default account)
//! is never changed — the function moves to a dedicated account instead, or
//! the finding is reported; IAM changes are member-scoped deltas, so no other
//! member and no conditional binding is touched; build settings and event
//! triggers are reported, never changed.

use super::action::GcpAction;
use super::model::ObservedFunction;
use super::names;
use crate::api::{GcpEgress, GcpIngress, GcpTriggers, IdentityControl, Mode, PublicAccess, TriggerControl};
use crate::findings::{Control, Finding, Severity};
use crate::providers::{Action, Blocked, Note, Plan, Posture};
use std::collections::BTreeSet;

const PUBLIC_MEMBERS: [&str; 2] = ["allUsers", "allAuthenticatedUsers"];
const BROAD_ROLES: [&str; 3] = ["roles/owner", "roles/editor", "roles/iam.securityAdmin"];

#[derive(Default)]
struct Patch {
    service_account: Option<String>,
    ingress: Option<String>,
    vpc_connector: Option<String>,
    egress: Option<String>,
}

#[derive(Default)]
struct Builder {
    findings: Vec<Finding>,
    claim: Vec<GcpAction>,
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

pub fn plan(p: &Posture, o: &ObservedFunction) -> Plan {
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
            reason: "NotApplicable".into(),
            message:
                "Cloud Functions send logs and traces to Cloud Logging and Cloud Trace on their own; nothing to enforce"
                    .into(),
        });
    }

    let mut findings = b.findings;
    findings.sort_by(|a, b| (a.control, &a.check, &a.field).cmp(&(b.control, &b.check, &b.field)));
    let mut actions = Vec::new();
    if blocked.is_none() {
        actions.extend(b.claim);
        actions.extend(b.create);
        actions.extend(b.roles);
        let pt = b.patch;
        if pt.service_account.is_some() || pt.ingress.is_some() || pt.vpc_connector.is_some() || pt.egress.is_some() {
            actions.push(GcpAction::PatchFunction {
                name: o.name.clone(),
                service_account: pt.service_account,
                ingress: pt.ingress,
                vpc_connector: pt.vpc_connector,
                egress: pt.egress,
                labels: None,
            });
        }
        actions.extend(b.invokers);
    }
    Plan {
        function: format!("{}/{}", o.location, o.id),
        principal: Some(o.service_account.clone()).filter(|s| !s.is_empty()),
        findings,
        actions: actions.into_iter().map(Action::Gcp).collect(),
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
            let mut labels = o.labels.clone();
            labels.insert(names::OWNER_LABEL.to_string(), mine);
            b.claim.push(GcpAction::PatchFunction {
                name: o.name.clone(),
                service_account: None,
                ingress: None,
                vpc_connector: None,
                egress: None,
                labels: Some(labels),
            });
            None
        }
    }
}

fn member(email: &str) -> String {
    format!("serviceAccount:{email}")
}

fn identity(id: &IdentityControl, o: &ObservedFunction, b: &mut Builder) {
    let declared: Option<BTreeSet<String>> = id
        .gcp
        .as_ref()
        .and_then(|g| g.roles.as_ref())
        .map(|r| r.iter().cloned().collect());
    let on_default = o.runs_as_default();
    let shared = !o.shared_with.is_empty();
    let account = if o.service_account.is_empty() {
        o.default_compute_account()
    } else {
        o.service_account.clone()
    };
    let dedicated_id = names::dedicated_account_id(&o.id, &o.name);
    let dedicated_email = names::account_email(&dedicated_id, &o.project);
    let mut switching = false;

    if id.dedicated && (on_default || shared) {
        let can_fix = id.create_if_shared && declared.is_some();
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
        let message = if can_fix {
            format!(
                "the function {problem}; it moves to the dedicated account {dedicated_email}, which holds only the declared roles (the old account is left as it is)"
            )
        } else {
            format!(
                "the function {problem}: a compromise of one is a compromise of all; set identity.createIfShared to give it its own account"
            )
        };
        b.findings.push(
            Finding::builder(Control::Identity, check, "serviceConfig.serviceAccountEmail")
                .observed(if shared {
                    format!("{account} (also used by {})", o.shared_with.join(", "))
                } else {
                    account.clone()
                })
                .desired(if can_fix {
                    dedicated_email.clone()
                } else {
                    "a service account only this function uses".into()
                })
                .severity(Severity::High)
                .remediable(can_fix)
                .message(message),
        );
        if let (true, Some(want)) = (can_fix, &declared) {
            let have = o.dedicated.clone().unwrap_or_default();
            if o.dedicated.is_none() {
                b.create.push(GcpAction::CreateServiceAccount {
                    project: o.project.clone(),
                    account_id: dedicated_id.clone(),
                    display_name: format!("{}{}", names::MANAGED_DISPLAY_PREFIX, o.id),
                });
            }
            let add: Vec<String> = want.difference(&have).cloned().collect();
            let remove: Vec<String> = have.difference(want).cloned().collect();
            if !add.is_empty() || !remove.is_empty() {
                b.roles.push(GcpAction::UpdateProjectRoles {
                    project: o.project.clone(),
                    member: member(&dedicated_email),
                    add,
                    remove,
                });
            }
            b.patch.service_account = Some(dedicated_email.clone());
            switching = true;
        }
    }

    let Some(want) = declared else { return };
    let fixable = switching || !(on_default || shared);
    let why = if switching {
        format!("; the function moves to {dedicated_email}, which holds only the declared roles")
    } else if !fixable {
        format!("; {account} is not this function's alone, so its roles are not changed")
    } else {
        String::new()
    };
    let extra: Vec<String> = o.project_roles.difference(&want).cloned().collect();
    let missing: Vec<String> = want.difference(&o.project_roles).cloned().collect();
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
            .remediable(false)
            .message(format!(
                "{account} holds {role} under a condition; zerofn does not change conditional bindings it did not write"
            )),
        );
    }
    if fixable && !switching && (!extra.is_empty() || !missing.is_empty()) {
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

    if let Some(have) = &o.invokers {
        let declared: Option<BTreeSet<String>> = g.invokers.as_ref().map(|v| v.iter().cloned().collect());
        let mut remove = Vec::new();
        let mut add = Vec::new();
        for m in have {
            if PUBLIC_MEMBERS.contains(&m.as_str()) {
                b.findings.push(
                    Finding::builder(
                        Control::Triggers,
                        "gcp.triggers.publicInvoker",
                        format!("{}:bindings[roles/run.invoker]", o.service),
                    )
                    .observed(m)
                    .desired("declared invokers only")
                    .severity(Severity::Critical)
                    .remediable(true)
                    .message(format!("{m} may invoke the function")),
                );
                remove.push(m.clone());
            } else if let Some(d) = &declared
                && !d.contains(m)
            {
                b.findings.push(
                    Finding::builder(Control::Triggers, "gcp.triggers.unlistedInvoker", format!("{}:bindings[roles/run.invoker]", o.service))
                        .observed(m)
                        .desired("declared invokers only")
                        .severity(Severity::High)
                        .remediable(t.remove_unlisted)
                        .message(if t.remove_unlisted {
                            format!("{m} may invoke the function but is not a declared invoker")
                        } else {
                            format!("{m} may invoke the function but is not a declared invoker (kept: triggers.removeUnlisted is false)")
                        }),
                );
                if t.remove_unlisted {
                    remove.push(m.clone());
                }
            }
        }
        for m in declared.iter().flatten().filter(|m| !have.contains(*m)) {
            b.findings.push(
                Finding::builder(
                    Control::Triggers,
                    "gcp.triggers.missingInvoker",
                    format!("{}:bindings[roles/run.invoker]", o.service),
                )
                .observed("absent")
                .desired(m)
                .severity(Severity::Low)
                .remediable(true)
                .message(format!("declared invoker {m} cannot invoke the function")),
            );
            add.push(m.clone());
        }
        if !add.is_empty() || !remove.is_empty() {
            b.invokers.push(GcpAction::UpdateInvokers {
                service: o.service.clone(),
                add,
                remove,
            });
        }
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
