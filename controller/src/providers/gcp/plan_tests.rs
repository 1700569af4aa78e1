//! Table tests of the GCP planner, and a generated sweep proving no action
//! grants beyond the spec.

use super::*;
use crate::api::*;
use crate::providers::gcp::model::EventTrigger;
use std::collections::BTreeMap;

const P: &str = "shop-prod";
const NAME: &str = "projects/shop-prod/locations/europe-west1/functions/orders";
const SA: &str = "orders-rt@shop-prod.iam.gserviceaccount.com";
const CONNECTOR: &str = "projects/shop-prod/locations/europe-west1/connectors/egress";
const ME: &str = "serviceAccount:checkout@shop-prod.iam.gserviceaccount.com";

fn spec() -> FunctionPostureSpec {
    FunctionPostureSpec {
        account_ref: AccountRef {
            kind: AccountKind::CloudAccount,
            name: "gcp".into(),
        },
        function: FunctionTarget {
            aws: None,
            azure: None,
            gcp: Some(GcpFunctionRef {
                location: "europe-west1".into(),
                name: "orders".into(),
            }),
        },
        mode: Mode::Enforce,
        identity: Some(IdentityControl {
            dedicated: true,
            create_if_shared: true,
            edit_in_place_if_exclusive: false,
            aws: None,
            azure: None,
            gcp: Some(GcpIdentity {
                roles: Some(vec!["roles/datastore.user".into()]),
            }),
        }),
        triggers: Some(TriggerControl {
            public_access: PublicAccess::Deny,
            remove_unlisted: true,
            aws: None,
            azure: None,
            gcp: Some(GcpTriggers {
                ingress: None,
                invokers: Some(vec![ME.into()]),
                event_trigger: None,
            }),
        }),
        network: Some(NetworkControl {
            aws: None,
            azure: None,
            gcp: Some(GcpNetwork {
                vpc_connector: CONNECTOR.into(),
                egress: GcpEgress::AllTraffic,
            }),
        }),
        supply_chain: None,
        observability: None,
        resync_interval: None,
    }
}

fn posture(s: FunctionPostureSpec) -> Posture {
    Posture::new("test", "shop", "orders", s)
}

fn compliant() -> ObservedFunction {
    ObservedFunction {
        name: NAME.into(),
        project: P.into(),
        project_number: "123456789012".into(),
        location: "europe-west1".into(),
        id: "orders".into(),
        service_account: SA.into(),
        ingress: "ALLOW_INTERNAL_ONLY".into(),
        vpc_connector: CONNECTOR.into(),
        egress: "ALL_TRAFFIC".into(),
        service: "projects/shop-prod/locations/europe-west1/services/orders".into(),
        labels: BTreeMap::from([(
            names::OWNER_LABEL.to_string(),
            names::owner_label_value("test/shop/orders"),
        )]),
        project_roles: ["roles/datastore.user".to_string()].into(),
        invokers: Some([ME.to_string()].into()),
        ..ObservedFunction::default()
    }
}

fn run(s: FunctionPostureSpec, o: &ObservedFunction) -> Plan {
    plan(&posture(s), o)
}

fn checks(p: &Plan) -> Vec<&str> {
    p.findings.iter().map(|f| f.check.as_str()).collect()
}

fn actions(p: &Plan) -> Vec<&GcpAction> {
    p.actions
        .iter()
        .map(|a| match a {
            Action::Gcp(g) => g,
            other => panic!("not a GCP action: {other:?}"),
        })
        .collect()
}

#[test]
fn compliant_function_plans_nothing() {
    let p = run(spec(), &compliant());
    assert!(p.findings.is_empty(), "{:#?}", p.findings);
    assert!(p.actions.is_empty(), "{:#?}", p.actions);
    assert_eq!(p.principal.as_deref(), Some(SA));
}

#[test]
fn shared_account_moves_to_a_new_dedicated_one_with_the_declared_roles() {
    let mut o = compliant();
    o.shared_with = vec!["projects/shop-prod/locations/europe-west1/functions/billing".into()];
    o.project_roles.insert("roles/editor".into());
    let p = run(spec(), &o);
    assert_eq!(
        checks(&p),
        vec!["gcp.identity.sharedServiceAccount", "gcp.identity.undeclaredRole"]
    );
    assert!(p.findings.iter().all(|f| f.remediable));
    let a = actions(&p);
    let GcpAction::CreateServiceAccount { account_id, .. } = a[0] else {
        panic!("{a:#?}")
    };
    let email = names::account_email(account_id, P);
    assert_eq!(
        a[1],
        &GcpAction::UpdateProjectRoles {
            project: P.into(),
            member: format!("serviceAccount:{email}"),
            add: vec!["roles/datastore.user".into()],
            remove: vec![],
        },
        "the new account gets the declared roles; the shared one is not touched"
    );
    let GcpAction::PatchFunction {
        service_account: Some(s),
        ..
    } = a[2]
    else {
        panic!("{a:#?}")
    };
    assert_eq!(s, &email);
    assert_eq!(a[2].mask(), vec!["service_config.service_account_email"]);
    assert_eq!(a.len(), 3);
}

#[test]
fn default_compute_account_without_create_is_reported_and_left_alone() {
    let mut o = compliant();
    o.service_account = "123456789012-compute@developer.gserviceaccount.com".into();
    o.project_roles = ["roles/editor".to_string()].into();
    let mut s = spec();
    s.identity.as_mut().unwrap().create_if_shared = false;
    let p = run(s, &o);
    assert_eq!(
        checks(&p),
        vec![
            "gcp.identity.defaultServiceAccount",
            "gcp.identity.missingRole",
            "gcp.identity.undeclaredRole"
        ]
    );
    assert!(p.findings.iter().all(|f| !f.remediable));
    assert!(
        p.actions.is_empty(),
        "the default account is never changed: {:#?}",
        p.actions
    );
    let editor = p
        .findings
        .iter()
        .find(|f| f.check == "gcp.identity.undeclaredRole")
        .unwrap();
    assert_eq!(editor.severity, Severity::Critical);
}

#[test]
fn an_existing_dedicated_account_is_reused() {
    let mut o = compliant();
    o.service_account = String::new();
    o.dedicated = Some(["roles/datastore.user".to_string(), "roles/pubsub.admin".to_string()].into());
    let p = run(spec(), &o);
    let a = actions(&p);
    assert!(!a.iter().any(|x| matches!(x, GcpAction::CreateServiceAccount { .. })));
    assert!(
        matches!(a[0], GcpAction::UpdateProjectRoles { add, remove, .. } if add.is_empty() && remove == &vec!["roles/pubsub.admin".to_string()])
    );
}

#[test]
fn own_account_with_editor_is_brought_to_the_declared_roles() {
    let mut o = compliant();
    o.project_roles = ["roles/editor".to_string()].into();
    o.conditional_roles = ["roles/storage.admin".to_string()].into();
    let p = run(spec(), &o);
    assert_eq!(
        checks(&p),
        vec![
            "gcp.identity.conditionalRole",
            "gcp.identity.missingRole",
            "gcp.identity.undeclaredRole"
        ]
    );
    assert_eq!(
        actions(&p),
        vec![&GcpAction::UpdateProjectRoles {
            project: P.into(),
            member: format!("serviceAccount:{SA}"),
            add: vec!["roles/datastore.user".into()],
            remove: vec!["roles/editor".into()],
        }],
        "conditional bindings are reported, never changed"
    );
}

#[test]
fn public_ingress_and_public_invokers_are_closed() {
    let mut o = compliant();
    o.ingress = "ALLOW_ALL".into();
    o.invokers = Some(
        [
            "allUsers".to_string(),
            ME.to_string(),
            "user:dev@example.com".to_string(),
        ]
        .into(),
    );
    let p = run(spec(), &o);
    assert_eq!(
        checks(&p),
        vec![
            "gcp.triggers.ingress",
            "gcp.triggers.publicInvoker",
            "gcp.triggers.unlistedInvoker"
        ]
    );
    let a = actions(&p);
    assert!(matches!(a[0], GcpAction::PatchFunction { ingress: Some(i), .. } if i == "ALLOW_INTERNAL_ONLY"));
    assert_eq!(
        a[1],
        &GcpAction::UpdateInvokers {
            service: o.service.clone(),
            add: vec![],
            remove: vec!["allUsers".into(), "user:dev@example.com".into()],
        }
    );
}

#[test]
fn unlisted_invokers_stay_when_remove_unlisted_is_false_but_public_ones_go() {
    let mut o = compliant();
    o.invokers = Some(["allAuthenticatedUsers".to_string(), "user:dev@example.com".to_string()].into());
    let mut s = spec();
    s.triggers.as_mut().unwrap().remove_unlisted = false;
    let p = run(s, &o);
    assert_eq!(
        actions(&p),
        vec![&GcpAction::UpdateInvokers {
            service: o.service.clone(),
            add: vec![ME.into()],
            remove: vec!["allAuthenticatedUsers".into()],
        }]
    );
}

#[test]
fn require_auth_leaves_ingress_unchecked_unless_declared() {
    let mut o = compliant();
    o.ingress = "ALLOW_ALL".into();
    let mut s = spec();
    s.triggers.as_mut().unwrap().public_access = PublicAccess::RequireAuth;
    assert!(run(s.clone(), &o).findings.is_empty());
    s.triggers.as_mut().unwrap().gcp.as_mut().unwrap().ingress = Some(GcpIngress::AllowInternalAndGclb);
    assert_eq!(checks(&run(s, &o)), vec!["gcp.triggers.ingress"]);
}

#[test]
fn no_connector_and_private_ranges_egress_are_fixed_in_one_patch() {
    let mut o = compliant();
    o.vpc_connector = String::new();
    o.egress = "PRIVATE_RANGES_ONLY".into();
    let p = run(spec(), &o);
    assert_eq!(checks(&p), vec!["gcp.network.egress", "gcp.network.noVpcConnector"]);
    let a = actions(&p);
    assert_eq!(a.len(), 1);
    assert_eq!(
        a[0].mask(),
        vec![
            "service_config.vpc_connector",
            "service_config.vpc_connector_egress_settings"
        ]
    );
}

#[test]
fn build_settings_and_event_triggers_are_only_reported() {
    let mut o = compliant();
    o.docker_repository = "projects/other/locations/us/repositories/x".into();
    o.event_trigger = Some(EventTrigger {
        event_type: "google.cloud.pubsub.topic.v1.messagePublished".into(),
        pubsub_topic: "projects/shop-prod/topics/anything".into(),
        service_account: SA.into(),
    });
    let mut s = spec();
    s.supply_chain = Some(SupplyChainControl {
        aws: None,
        azure: None,
        gcp: Some(GcpSupplyChain {
            allowed_docker_repositories: Some(vec![
                "projects/shop-prod/locations/europe-west1/repositories/gcf-artifacts".into(),
            ]),
            allowed_build_service_accounts: None,
        }),
    });
    s.triggers.as_mut().unwrap().gcp.as_mut().unwrap().event_trigger = Some(GcpEventTriggerAllowlist {
        service_accounts: vec![],
        pubsub_topics: vec!["projects/shop-prod/topics/orders".into()],
        event_types: vec![],
    });
    let p = run(s, &o);
    assert_eq!(
        checks(&p),
        vec!["gcp.triggers.eventTopic", "gcp.supplyChain.dockerRepository"]
    );
    assert!(p.findings.iter().all(|f| !f.remediable));
    assert!(p.actions.is_empty());
}

#[test]
fn observability_is_reported_as_not_applicable() {
    let mut s = spec();
    s.observability = Some(ObservabilityControl {
        tracing: Some(TracingMode::Active),
        structured_logs: Some(true),
    });
    let p = run(s, &compliant());
    assert!(p.findings.is_empty());
    assert_eq!(p.notes.len(), 1);
    assert_eq!(
        (p.notes[0].control, p.notes[0].reason.as_str()),
        (Control::Observability, "NotApplicable")
    );
}

#[test]
fn ownership_label_is_claimed_keeping_other_labels_and_respected() {
    let mut o = compliant();
    o.labels = BTreeMap::from([("team".to_string(), "checkout".to_string())]);
    let p = run(spec(), &o);
    let GcpAction::PatchFunction { labels: Some(l), .. } = actions(&p)[0] else {
        panic!()
    };
    assert_eq!(
        l.get("team").map(String::as_str),
        Some("checkout"),
        "other labels are kept"
    );
    assert_eq!(
        l.get(names::OWNER_LABEL),
        Some(&names::owner_label_value("test/shop/orders"))
    );
    assert_eq!(actions(&p)[0].mask(), vec!["labels"]);
    o.labels.insert(names::OWNER_LABEL.into(), "someone-else".into());
    o.ingress = "ALLOW_ALL".into();
    let p = run(spec(), &o);
    assert!(p.blocked.is_some() && p.actions.is_empty());
    let p = run(
        FunctionPostureSpec {
            mode: Mode::Audit,
            ..spec()
        },
        &o,
    );
    assert!(
        p.blocked.is_none(),
        "Audit never claims, so another owner does not block it"
    );
    assert!(
        actions(&p)
            .iter()
            .all(|a| !matches!(a, GcpAction::PatchFunction { labels: Some(_), .. })),
        "Audit claims nothing (its planned writes are shown, never applied)"
    );
}

/// Deterministic generator for the sweep.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn coin(&mut self) -> bool {
        self.next().is_multiple_of(2)
    }
    fn pick<T: Clone>(&mut self, v: &[T]) -> T {
        v[(self.next() % v.len() as u64) as usize].clone()
    }
}

#[test]
fn no_action_ever_grants_beyond_the_spec() {
    let mut r = Rng(0x2545f4914f6cdd1d);
    let mut seen = BTreeSet::new();
    for i in 0..3000 {
        let mut s = spec();
        s.mode = r.pick(&[Mode::Enforce, Mode::Audit]);
        s.identity.as_mut().unwrap().create_if_shared = r.coin();
        let t = s.triggers.as_mut().unwrap();
        t.remove_unlisted = r.coin();
        t.public_access = r.pick(&[PublicAccess::Deny, PublicAccess::RequireAuth]);
        if r.coin() {
            t.gcp.as_mut().unwrap().invokers = None;
        }
        let mut o = compliant();
        o.service_account = r.pick(&[SA.to_string(), String::new(), o.default_compute_account()]);
        if r.coin() {
            o.shared_with = vec!["projects/shop-prod/locations/us-central1/functions/x".into()];
        }
        o.project_roles = r.pick(&[
            BTreeSet::new(),
            ["roles/editor".to_string()].into(),
            ["roles/datastore.user".to_string(), "roles/owner".to_string()].into(),
        ]);
        o.dedicated = r.pick(&[None, Some(BTreeSet::new()), Some(["roles/owner".to_string()].into())]);
        o.ingress = r.pick(&["ALLOW_ALL".to_string(), "ALLOW_INTERNAL_ONLY".to_string()]);
        o.invokers = r.pick(&[
            None,
            Some(["allUsers".to_string()].into()),
            Some(["user:x@example.com".to_string(), ME.to_string()].into()),
        ]);
        o.vpc_connector = r.pick(&[String::new(), CONNECTOR.to_string()]);
        o.egress = r.pick(&["PRIVATE_RANGES_ONLY".to_string(), "ALL_TRAFFIC".to_string()]);
        if r.coin() {
            o.labels.clear();
        }
        let p = posture(s.clone());
        let declared_roles: BTreeSet<String> = ["roles/datastore.user".to_string()].into();
        let declared_invokers: BTreeSet<String> = s
            .triggers
            .as_ref()
            .and_then(|t| t.gcp.as_ref())
            .and_then(|g| g.invokers.clone())
            .unwrap_or_default()
            .into_iter()
            .collect();
        for a in actions(&plan(&p, &o)) {
            seen.insert(a.op());
            match a {
                GcpAction::UpdateProjectRoles { member, add, .. } => {
                    assert!(
                        add.iter().all(|r| declared_roles.contains(r)),
                        "case {i}: granted undeclared {add:?}"
                    );
                    let shared_or_default = !o.shared_with.is_empty() || o.runs_as_default();
                    let own = member == &format!("serviceAccount:{}", o.service_account);
                    assert!(
                        !(own && shared_or_default),
                        "case {i}: changed a shared or default account"
                    );
                }
                GcpAction::UpdateInvokers { add, .. } => {
                    assert!(
                        add.iter().all(|m| declared_invokers.contains(m)),
                        "case {i}: granted invoker {add:?}"
                    );
                    assert!(!add.iter().any(|m| PUBLIC_MEMBERS.contains(&m.as_str())));
                }
                GcpAction::PatchFunction {
                    ingress,
                    service_account,
                    egress,
                    vpc_connector,
                    labels,
                    ..
                } => {
                    assert!(ingress.as_deref() != Some("ALLOW_ALL"), "case {i}: opened ingress");
                    if let Some(sa) = service_account {
                        assert!(
                            sa.starts_with("zf-orders-"),
                            "case {i}: switched to an account zerofn did not make: {sa}"
                        );
                    }
                    assert!(egress.as_deref().is_none_or(|e| e == "ALL_TRAFFIC"));
                    assert!(vpc_connector.as_deref().is_none_or(|c| c == CONNECTOR));
                    if let Some(l) = labels {
                        assert_eq!(l.len(), o.labels.len() + 1, "case {i}: labels lost");
                    }
                }
                GcpAction::CreateServiceAccount { .. } => {}
            }
        }
    }
    for op in [
        "CreateServiceAccount",
        "SetIamPolicy(project)",
        "UpdateFunction",
        "SetIamPolicy(service)",
    ] {
        assert!(seen.contains(op), "sweep never produced {op}");
    }
}
