//! Table tests of the GCP planner, and a generated sweep proving no action
//! grants beyond the spec.

use super::*;
use crate::api::*;
use crate::fixtures::{SpecExt, gcp_spec, sweep};
use crate::providers::gcp::model::{
    DedicatedAccount, EventTrigger, Exclusivity, RunService, ServiceState, UnjudgedRole,
};
use proptest::prelude::*;
use proptest::sample::select;
use std::cell::RefCell;
use std::collections::BTreeMap;

const P: &str = "shop-prod";
const NAME: &str = "projects/shop-prod/locations/europe-west1/functions/orders";
const SA: &str = "orders-rt@shop-prod.iam.gserviceaccount.com";
const CONNECTOR: &str = "projects/shop-prod/locations/europe-west1/connectors/egress";
const ME: &str = "serviceAccount:checkout@shop-prod.iam.gserviceaccount.com";

fn spec() -> FunctionPostureSpec {
    gcp_spec("europe-west1", "orders")
        .with_account(AccountKind::CloudAccount, "gcp")
        .with_identity(IdentityControl {
            dedicated: true,
            create_if_shared: true,
            edit_in_place_if_exclusive: false,
            unused_permissions: None,
            aws: None,
            azure: None,
            gcp: Some(GcpIdentity {
                roles: Some(vec!["roles/datastore.user".into()]),
            }),
        })
        .with_triggers(TriggerControl {
            public_access: PublicAccess::Deny,
            remove_unlisted: true,
            aws: None,
            azure: None,
            gcp: Some(GcpTriggers {
                ingress: None,
                invokers: Some(vec![ME.into()]),
                event_trigger: None,
                require_private_ingress: false,
            }),
        })
        .with_network(NetworkControl {
            aws: None,
            azure: None,
            gcp: Some(GcpNetwork {
                vpc_connector: CONNECTOR.into(),
                egress: GcpEgress::AllTraffic,
            }),
        })
}

fn grant(member: &str, role: &str) -> InvokeGrant {
    InvokeGrant {
        member: member.into(),
        role: role.into(),
        conditional: false,
    }
}

fn invokers_of(members: &[&str]) -> Option<Vec<InvokeGrant>> {
    Some(members.iter().map(|m| grant(m, INVOKER)).collect())
}

fn mr(member: &str, role: &str) -> MemberRole {
    MemberRole {
        member: member.into(),
        role: role.into(),
    }
}

fn dedicated_email() -> String {
    names::account_email(&names::dedicated_account_id("orders", NAME), P)
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
        service_account_unique_id: Some("100000000000000000001".into()),
        invokers: invokers_of(&[ME]),
        ..ObservedFunction::default()
    }
}

fn run(s: FunctionPostureSpec, o: &ObservedFunction) -> Plan<GcpAction> {
    plan(&posture(s), o)
}

/// The fields of a PatchFunction; none for any other action.
fn patch_fields(a: &GcpAction) -> &[FunctionField] {
    match a {
        GcpAction::PatchFunction { patch, .. } => patch.fields(),
        _ => &[],
    }
}

fn checks(p: &Plan<GcpAction>) -> Vec<&str> {
    p.findings.iter().map(|f| f.check.as_str()).collect()
}

fn actions(p: &Plan<GcpAction>) -> Vec<&GcpAction> {
    p.actions.iter().collect()
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
    assert_eq!(patch_fields(a[2]), [FunctionField::ServiceAccount(email)]);
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
fn an_existing_dedicated_account_is_reused_when_its_unique_id_is_on_record() {
    let mut o = compliant();
    o.service_account = String::new();
    o.dedicated = Some(DedicatedAccount {
        email: dedicated_email(),
        unique_id: "200".into(),
        roles: ["roles/datastore.user".to_string(), "roles/pubsub.admin".to_string()].into(),
    });
    o.minted = ["200".to_string()].into();
    let p = run(spec(), &o);
    let a = actions(&p);
    assert!(!a.iter().any(|x| matches!(x, GcpAction::CreateServiceAccount { .. })));
    assert!(
        matches!(a[0], GcpAction::UpdateProjectRoles { add, remove, .. } if add.is_empty() && remove == &vec!["roles/pubsub.admin".to_string()])
    );
}

#[test]
fn a_dedicated_named_account_without_a_record_is_never_adopted() {
    let mut o = compliant();
    o.service_account = String::new();
    // Someone else created zf-orders-…: same name, no record of its uniqueId.
    o.dedicated = Some(DedicatedAccount {
        email: dedicated_email(),
        unique_id: "666".into(),
        roles: ["roles/owner".to_string()].into(),
    });
    let p = run(spec(), &o);
    assert!(
        p.actions.is_empty(),
        "nothing granted, nothing switched: {:#?}",
        p.actions
    );
    let f = p
        .findings
        .iter()
        .find(|f| f.check == "gcp.identity.defaultServiceAccount")
        .unwrap();
    assert!(!f.remediable);
    assert!(
        f.message.contains("no record of creating it (uniqueId 666)"),
        "{}",
        f.message
    );
    // The same account as the function's own, drifting, is not changed either.
    let mut o = compliant();
    o.service_account = dedicated_email();
    o.service_account_unique_id = Some("666".into());
    o.dedicated = Some(DedicatedAccount {
        email: dedicated_email(),
        unique_id: "666".into(),
        roles: ["roles/editor".to_string()].into(),
    });
    o.project_roles = ["roles/editor".to_string()].into();
    let p = run(spec(), &o);
    assert!(p.actions.is_empty(), "{:#?}", p.actions);
    assert!(p.findings.iter().all(|f| !f.remediable));
}

#[test]
fn an_account_zerofn_minted_is_brought_to_the_declared_roles_in_place() {
    let mut o = compliant();
    o.project_roles = ["roles/editor".to_string()].into();
    o.conditional_roles = ["roles/storage.admin".to_string()].into();
    o.minted = ["100000000000000000001".to_string()].into();
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
    let editor = p
        .findings
        .iter()
        .find(|f| f.check == "gcp.identity.undeclaredRole")
        .unwrap();
    assert!(
        editor
            .message
            .contains("minted by zerofn (uniqueId 100000000000000000001)"),
        "{}",
        editor.message
    );
}

#[test]
fn an_account_zerofn_did_not_mint_is_left_alone_and_the_function_moves() {
    let mut o = compliant();
    o.project_roles = ["roles/editor".to_string()].into();
    let p = run(spec(), &o);
    let a = actions(&p);
    assert!(matches!(a[0], GcpAction::CreateServiceAccount { .. }), "{a:#?}");
    assert!(
        a.iter().all(
            |x| !matches!(x, GcpAction::UpdateProjectRoles { member, .. } if member == &format!("serviceAccount:{SA}"))
        ),
        "the old account keeps its roles: {a:#?}"
    );
    assert!(patch_fields(a[2]).contains(&FunctionField::ServiceAccount(dedicated_email())));
    let editor = p
        .findings
        .iter()
        .find(|f| f.check == "gcp.identity.undeclaredRole")
        .unwrap();
    assert!(
        editor.remediable && editor.message.contains("editInPlaceIfExclusive is off"),
        "{}",
        editor.message
    );
    // Without createIfShared it is reported, and nothing is written.
    let mut s = spec();
    s.identity.as_mut().unwrap().create_if_shared = false;
    let p = run(s, &o);
    assert!(p.actions.is_empty());
    assert!(p.findings.iter().all(|f| !f.remediable));
}

fn opted_in() -> FunctionPostureSpec {
    let mut s = spec();
    s.identity.as_mut().unwrap().edit_in_place_if_exclusive = true;
    s.identity.as_mut().unwrap().create_if_shared = false;
    s
}

#[test]
fn opted_in_accounts_change_in_place_only_when_proved_exclusive() {
    let mut o = compliant();
    o.project_roles = ["roles/editor".to_string()].into();
    // Every piece of evidence clean: changed in place.
    o.exclusivity = Some(Exclusivity {
        actors: Some(BTreeSet::new()),
        unobserved: vec![],
    });
    let p = run(opted_in(), &o);
    assert!(
        matches!(actions(&p)[0], GcpAction::UpdateProjectRoles { member, .. } if member == &format!("serviceAccount:{SA}"))
    );
    assert!(p.findings.iter().any(|f| f.message.contains("opted in")));
    // Each missing proof keeps it untouched, and says why.
    let cases: Vec<(Option<Exclusivity>, &str)> = vec![
        (None, "was not observed"),
        (
            Some(Exclusivity {
                actors: None,
                unobserved: vec![],
            }),
            "could not be read",
        ),
        (
            Some(Exclusivity {
                actors: Some(["user:ops@example.com".to_string()].into()),
                unobserved: vec![],
            }),
            "lets user:ops@example.com act as it",
        ),
        (
            Some(Exclusivity {
                actors: Some(BTreeSet::new()),
                unobserved: vec!["Compute Engine VM instances".into()],
            }),
            "does not observe whether Compute Engine VM instances run as it",
        ),
    ];
    for (ex, why) in cases {
        o.exclusivity = ex;
        let p = run(opted_in(), &o);
        assert!(p.actions.is_empty(), "{why}: {:#?}", p.actions);
        let f = p
            .findings
            .iter()
            .find(|f| f.check == "gcp.identity.undeclaredRole")
            .unwrap();
        assert!(!f.remediable && f.message.contains(why), "{why}: {}", f.message);
    }
    // Opting in never covers a shared, default or foreign account.
    for (account, uid, shared) in [
        (SA, Some("1"), true),
        ("123456789012-compute@developer.gserviceaccount.com", Some("2"), false),
        ("rt@other-project.iam.gserviceaccount.com", None, false),
    ] {
        let mut o = compliant();
        o.service_account = account.into();
        o.service_account_unique_id = uid.map(str::to_string);
        if shared {
            o.shared_with = vec!["projects/shop-prod/locations/europe-west1/functions/billing".into()];
        }
        o.project_roles = ["roles/editor".to_string()].into();
        o.exclusivity = Some(Exclusivity {
            actors: Some(BTreeSet::new()),
            unobserved: vec![],
        });
        assert!(run(opted_in(), &o).actions.is_empty(), "{account}");
    }
}

#[test]
fn a_default_account_of_another_number_is_not_this_projects_and_is_left_alone() {
    // The spec said 999 but the project is 123456789012: the number is
    // verified before planning, so 999-compute@… is a foreign account here.
    let mut o = compliant();
    o.service_account = "999-compute@developer.gserviceaccount.com".into();
    o.service_account_unique_id = None;
    o.project_roles = ["roles/editor".to_string()].into();
    let p = run(opted_in(), &o);
    assert!(p.actions.is_empty());
    assert!(
        p.findings
            .iter()
            .any(|f| f.message.contains("not a service account of project shop-prod"))
    );
}

#[test]
fn public_ingress_and_public_invokers_are_closed() {
    let mut o = compliant();
    o.ingress = "ALLOW_ALL".into();
    o.invokers = invokers_of(&["allUsers", ME, "user:dev@example.com"]);
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
    assert!(patch_fields(a[0]).contains(&FunctionField::Ingress("ALLOW_INTERNAL_ONLY".into())));
    assert_eq!(
        a[1],
        &GcpAction::UpdateInvokers {
            service: o.service.clone(),
            add: vec![],
            remove: vec![mr("allUsers", INVOKER), mr("user:dev@example.com", INVOKER)],
        }
    );
}

#[test]
fn unlisted_invokers_stay_when_remove_unlisted_is_false_but_public_ones_go() {
    let mut o = compliant();
    o.invokers = invokers_of(&["allAuthenticatedUsers", "user:dev@example.com"]);
    let mut s = spec();
    s.triggers.as_mut().unwrap().remove_unlisted = false;
    let p = run(s, &o);
    assert_eq!(
        actions(&p),
        vec![&GcpAction::UpdateInvokers {
            service: o.service.clone(),
            add: vec![ME.into()],
            remove: vec![mr("allAuthenticatedUsers", INVOKER)],
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
            require_binary_authorization: None,
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
        aws: None,
        azure: None,
        gcp: None,
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
    assert_eq!(
        patch_fields(actions(&p)[0]),
        [FunctionField::Claim(names::owner_label_value("test/shop/orders"))]
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
            .all(|a| !patch_fields(a).iter().any(|f| matches!(f, FunctionField::Claim(_)))),
        "Audit claims nothing (its planned writes are shown, never applied)"
    );
}

#[test]
fn claim_and_configuration_are_one_update() {
    let mut o = compliant();
    o.labels.clear();
    o.ingress = "ALLOW_ALL".into();
    o.vpc_connector = String::new();
    let p = run(spec(), &o);
    let patches: Vec<_> = actions(&p)
        .into_iter()
        .filter(|a| matches!(a, GcpAction::PatchFunction { .. }))
        .collect();
    assert_eq!(patches.len(), 1, "one redeploy: {patches:#?}");
    assert_eq!(
        patches[0].mask(),
        vec![
            "service_config.ingress_settings",
            "service_config.vpc_connector",
            "labels"
        ]
    );
}

#[test]
fn the_event_triggers_own_account_keeps_its_invoke_grant() {
    let trigger_sa = "events@shop-prod.iam.gserviceaccount.com";
    let mut o = compliant();
    o.event_trigger = Some(EventTrigger {
        event_type: "google.cloud.pubsub.topic.v1.messagePublished".into(),
        pubsub_topic: "projects/shop-prod/topics/orders".into(),
        service_account: trigger_sa.into(),
    });
    let m = format!("serviceAccount:{trigger_sa}");
    o.invokers = invokers_of(&[ME, &m, "user:dev@example.com"]);
    let mut s = spec();
    s.triggers.as_mut().unwrap().gcp.as_mut().unwrap().invokers = Some(vec![]);
    let p = run(s, &o);
    let f = p
        .findings
        .iter()
        .find(|f| f.check == "gcp.triggers.eventTriggerInvoker")
        .expect("reported");
    assert!(
        !f.remediable && f.message.contains("stop event delivery"),
        "{}",
        f.message
    );
    let GcpAction::UpdateInvokers { remove, .. } = actions(&p)[0] else {
        panic!("{:#?}", p.actions)
    };
    assert!(!remove.iter().any(|r| r.member == m), "{remove:?}");
    assert_eq!(remove.len(), 2, "the others go: {remove:?}");
    // An empty trigger account means the default compute account delivers.
    let mut o2 = o.clone();
    o2.event_trigger.as_mut().unwrap().service_account = String::new();
    let dflt = format!("serviceAccount:{}", o2.default_compute_account());
    o2.invokers = invokers_of(&[&dflt]);
    let mut s = spec();
    s.triggers.as_mut().unwrap().gcp.as_mut().unwrap().invokers = Some(vec![]);
    assert!(run(s, &o2).actions.is_empty());
}

/// Open configurations on the service's IAM policy, each through a role
/// other than roles/run.invoker: reported Critical/High and removed
/// member-scoped where Enforce may.
#[test]
fn every_invoke_role_is_judged() {
    let cases: Vec<(InvokeGrant, &str, Severity, bool)> = vec![
        (
            grant("allUsers", "roles/run.admin"),
            "gcp.triggers.publicInvoker",
            Severity::Critical,
            true,
        ),
        (
            grant("allAuthenticatedUsers", "roles/run.developer"),
            "gcp.triggers.publicInvoker",
            Severity::Critical,
            true,
        ),
        (
            grant("user:dev@example.com", "roles/editor"),
            "gcp.triggers.unlistedInvoker",
            Severity::High,
            true,
        ),
        (
            grant("user:a@example.com", "roles/owner"),
            "gcp.triggers.unlistedInvoker",
            Severity::High,
            true,
        ),
        (
            grant("user:b@example.com", "roles/run.servicesInvoker"),
            "gcp.triggers.unlistedInvoker",
            Severity::High,
            true,
        ),
        (
            grant("group:c@example.com", "projects/shop-prod/roles/caller"),
            "gcp.triggers.unlistedInvoker",
            Severity::High,
            true,
        ),
        (
            InvokeGrant {
                conditional: true,
                ..grant("allUsers", INVOKER)
            },
            "gcp.triggers.publicInvoker",
            Severity::Critical,
            false,
        ),
    ];
    for (g, check, severity, fixable) in cases {
        let mut o = compliant();
        o.invokers = Some(vec![grant(ME, INVOKER), g.clone()]);
        let p = run(spec(), &o);
        assert_eq!(checks(&p), vec![check], "{g:?}");
        assert_eq!(
            (p.findings[0].severity, p.findings[0].remediable),
            (severity, fixable),
            "{g:?}"
        );
        let removed: Vec<MemberRole> = actions(&p)
            .iter()
            .flat_map(|a| match a {
                GcpAction::UpdateInvokers { remove, .. } => remove.clone(),
                _ => vec![],
            })
            .collect();
        if fixable {
            assert_eq!(removed, vec![mr(&g.member, &g.role)], "{g:?}");
        } else {
            assert!(removed.is_empty(), "a conditional binding is never touched: {g:?}");
        }
    }
}

#[test]
fn a_role_whose_permissions_cannot_be_read_is_not_judged_and_never_passed() {
    let mut o = compliant();
    o.unjudged_roles = vec![UnjudgedRole {
        role: "organizations/1/roles/mystery".into(),
        members: vec!["user:x@example.com".into()],
        reason: "permission denied".into(),
    }];
    let p = run(spec(), &o);
    assert_eq!(checks(&p), vec!["gcp.triggers.unjudgedRole"]);
    assert!(!p.compliant());
    assert_eq!(p.findings[0].severity, Severity::High);
    assert!(p.actions.is_empty());
}

/// A change to an observed function and its spec, for table tests.
type Change = Box<dyn Fn(&mut ObservedFunction, &mut FunctionPostureSpec)>;

/// Correct configurations stay compliant: no false alarm.
#[test]
fn correct_configurations_are_compliant() {
    let trigger = format!("serviceAccount:{SA}");
    let cases: Vec<(&str, Change)> = vec![
        ("declared invoker through run.invoker", Box::new(|_, _| {})),
        (
            "declared invoker also through roles/run.admin",
            Box::new(|o, _| o.invokers.as_mut().unwrap().push(grant(ME, "roles/run.admin"))),
        ),
        (
            "declared invoker only through a custom role",
            Box::new(|o, _| o.invokers = Some(vec![grant(ME, "projects/shop-prod/roles/caller")])),
        ),
        (
            "the event trigger's account declared as an invoker",
            Box::new(move |o, s| {
                o.event_trigger = Some(EventTrigger {
                    service_account: SA.into(),
                    ..EventTrigger::default()
                });
                o.invokers.as_mut().unwrap().push(grant(&trigger, INVOKER));
                s.triggers.as_mut().unwrap().gcp.as_mut().unwrap().invokers = Some(vec![ME.into(), trigger.clone()]);
            }),
        ),
        (
            "a minted account with exactly the declared roles",
            Box::new(|o, _| {
                o.service_account = dedicated_email();
                o.service_account_unique_id = Some("7".into());
                o.minted = ["7".to_string()].into();
            }),
        ),
        (
            "an unrecorded account with exactly the declared roles",
            Box::new(|o, _| o.minted.clear()),
        ),
    ];
    for (what, change) in cases {
        let mut o = compliant();
        let mut s = spec();
        change(&mut o, &mut s);
        let p = run(s, &o);
        assert!(p.findings.is_empty(), "{what}: {:#?}", p.findings);
        assert!(p.actions.is_empty(), "{what}: {:#?}", p.actions);
    }
}

// ---------------------------------------------------------------- the sweep

/// The evaluator's own view of the world: plain (role, member, conditional)
/// bindings, written without any of the planner's or applier's functions.
#[derive(Clone, Debug, PartialEq)]
struct World {
    project: Vec<(String, String, bool)>,
    service: Vec<(String, String, bool)>,
    runs_as: String,
    created: BTreeSet<String>,
    /// The function's ingressSettings and its service's ingress (None:
    /// not read).
    function_ingress: String,
    service_ingress: Option<String>,
}

/// Roles the evaluator knows let their members invoke (its own list: the
/// custom role the generator uses carries run.routes.invoke).
const EVAL_INVOKE_ROLES: [&str; 4] = [
    "roles/run.invoker",
    "roles/run.admin",
    "roles/editor",
    "projects/shop-prod/roles/caller",
];

impl World {
    fn roles(&self, member: &str) -> BTreeSet<String> {
        self.project
            .iter()
            .filter(|(_, m, _)| m == member)
            .map(|(r, _, c)| format!("{r}{}", if *c { "?" } else { "" }))
            .collect()
    }

    fn can_invoke(&self, member: &str) -> bool {
        self.service
            .iter()
            .any(|(r, m, _)| m == member && EVAL_INVOKE_ROLES.contains(&r.as_str()))
    }

    fn members(&self) -> BTreeSet<String> {
        self.project
            .iter()
            .chain(&self.service)
            .map(|(_, m, _)| m.clone())
            .collect()
    }

    /// What Enforce would leave: each action interpreted literally.
    fn after(&self, acts: &[&GcpAction]) -> World {
        let mut w = self.clone();
        for a in acts {
            match a {
                GcpAction::CreateServiceAccount {
                    account_id, project, ..
                } => {
                    w.created
                        .insert(format!("{account_id}@{project}.iam.gserviceaccount.com"));
                }
                GcpAction::UpdateProjectRoles {
                    member, add, remove, ..
                } => {
                    w.project
                        .retain(|(r, m, c)| !(m == member && !*c && remove.contains(r)));
                    for r in add {
                        if !w.project.iter().any(|(r2, m, c)| r2 == r && m == member && !*c) {
                            w.project.push((r.clone(), member.clone(), false));
                        }
                    }
                }
                GcpAction::UpdateInvokers { add, remove, .. } => {
                    w.service
                        .retain(|(r, m, c)| *c || !remove.iter().any(|x| &x.member == m && &x.role == r));
                    for m in add {
                        w.service.push((INVOKER.into(), m.clone(), false));
                    }
                }
                GcpAction::SetBinaryAuthorization { .. } => {}
                GcpAction::NarrowServiceIngress { ingress, .. } => w.service_ingress = Some(ingress.clone()),
                GcpAction::PatchFunction { patch, .. } => {
                    for f in patch.fields() {
                        match f {
                            FunctionField::ServiceAccount(sa) => w.runs_as = sa.clone(),
                            FunctionField::Ingress(i) => w.function_ingress = i.clone(),
                            _ => {}
                        }
                    }
                }
            }
        }
        w
    }
}

/// Service accounts a function may run as: its own, the project's two
/// default ones, a default one of another project, the dedicated one, and
/// the event trigger's.
fn accounts() -> Vec<String> {
    vec![
        SA.to_string(),
        "123456789012-compute@developer.gserviceaccount.com".to_string(),
        "shop-prod@appspot.gserviceaccount.com".to_string(),
        // A default account named with a wrong number: another project's.
        "999-compute@developer.gserviceaccount.com".to_string(),
        dedicated_email(),
        EVENT_SA.to_string(),
    ]
}

const EVENT_SA: &str = "events@shop-prod.iam.gserviceaccount.com";

/// Service bindings the generator may hold: public ones, the declared
/// invoker, invoke-capable roles other than run.invoker, the event
/// trigger's account, and a role that cannot invoke.
const SERVICE_BINDINGS: [(&str, &str); 7] = [
    (INVOKER, "allUsers"),
    (INVOKER, ME),
    ("roles/run.admin", "user:dev@example.com"),
    ("roles/editor", "allAuthenticatedUsers"),
    ("projects/shop-prod/roles/caller", "group:callers@example.com"),
    (INVOKER, "serviceAccount:events@shop-prod.iam.gserviceaccount.com"),
    ("roles/run.viewer", "user:viewer@example.com"),
];

fn any_gcp_spec() -> impl Strategy<Value = FunctionPostureSpec> {
    (
        select(vec![Mode::Enforce, Mode::Audit]),
        any::<[bool; 3]>(),
        select(vec![PublicAccess::Deny, PublicAccess::RequireAuth]),
        select(vec![None, Some(vec![]), Some(vec![ME.to_string()])]),
        (
            select(vec![
                None,
                Some(GcpIngress::AllowInternalOnly),
                Some(GcpIngress::AllowInternalAndGclb),
                Some(GcpIngress::AllowAll),
            ]),
            any::<bool>(),
        ),
    )
        .prop_map(
            |(mode, [create, in_place, remove_unlisted], public, invokers, (ingress, private))| {
                let mut s = spec();
                s.mode = mode;
                let idc = s.identity.as_mut().unwrap();
                idc.create_if_shared = create;
                idc.edit_in_place_if_exclusive = in_place;
                let t = s.triggers.as_mut().unwrap();
                t.remove_unlisted = remove_unlisted;
                t.public_access = public;
                let g = t.gcp.as_mut().unwrap();
                g.invokers = invokers;
                g.require_private_ingress = private;
                // The one combination the API refuses.
                g.ingress = ingress.filter(|i| !(private && *i == GcpIngress::AllowAll));
                s
            },
        )
}

/// The choices behind a generated function; `gcp_case` builds it.
#[derive(Clone, Debug)]
struct Choices {
    account: String,
    shared: bool,
    minted_current: bool,
    dedicated_exists: bool,
    dedicated_minted: bool,
    exclusivity: Option<Exclusivity>,
    current_roles: Vec<&'static str>,
    conditional_admin: bool,
    dedicated_roles: Vec<&'static str>,
    bindings: [(bool, bool); 7],
    event_trigger: bool,
    unlabelled: bool,
    function_ingress: &'static str,
    /// None: the service could not be read.
    service_ingress: Option<&'static str>,
}

fn any_choices() -> impl Strategy<Value = Choices> {
    (
        (select(accounts()), any::<[bool; 4]>()),
        select(vec![
            None,
            Some(Exclusivity {
                actors: Some(BTreeSet::new()),
                unobserved: vec![],
            }),
            Some(Exclusivity {
                actors: Some(["user:ops@example.com".to_string()].into()),
                unobserved: vec![],
            }),
            Some(Exclusivity {
                actors: Some(BTreeSet::new()),
                unobserved: vec!["GKE workloads".into()],
            }),
        ]),
        select(vec![
            vec![],
            vec!["roles/editor"],
            vec!["roles/datastore.user", "roles/owner"],
            vec!["roles/datastore.user"],
        ]),
        any::<bool>(),
        select(vec![vec![], vec!["roles/owner"], vec!["roles/datastore.user"]]),
        proptest::array::uniform7((any::<bool>(), proptest::bool::weighted(0.2))),
        any::<[bool; 2]>(),
        (
            select(vec![
                "ALLOW_ALL",
                "ALLOW_INTERNAL_ONLY",
                "ALLOW_INTERNAL_AND_GCLB",
                "INGRESS_SETTINGS_UNSPECIFIED",
                "ALLOW_SOMETIMES",
            ]),
            select(vec![
                None,
                Some("INGRESS_TRAFFIC_ALL"),
                Some("INGRESS_TRAFFIC_INTERNAL_ONLY"),
                Some("INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER"),
                Some("INGRESS_TRAFFIC_NONE"),
                Some("INGRESS_TRAFFIC_UNSPECIFIED"),
                Some("INGRESS_TRAFFIC_SOMETIMES"),
            ]),
        ),
    )
        .prop_map(
            |(
                (account, [shared, minted_current, dedicated_exists, dedicated_minted]),
                exclusivity,
                current_roles,
                conditional_admin,
                dedicated_roles,
                bindings,
                [event_trigger, unlabelled],
                (function_ingress, service_ingress),
            )| Choices {
                account,
                shared,
                minted_current,
                dedicated_exists,
                dedicated_minted,
                exclusivity,
                current_roles,
                conditional_admin,
                dedicated_roles,
                bindings,
                event_trigger,
                unlabelled,
                function_ingress,
                service_ingress,
            },
        )
}

/// A generated case: the spec, the function as observed, the world the
/// evaluator holds it in, and which accounts zerofn's record says it minted.
#[derive(Clone, Debug)]
struct Case {
    spec: FunctionPostureSpec,
    observed: ObservedFunction,
    world: World,
    minted_current: bool,
    dedicated_minted: bool,
}

/// The world a generated case starts in: the function, its accounts and
/// their bindings. Long because each choice maps to one part of it, in order.
fn gcp_case(spec: FunctionPostureSpec, c: Choices) -> Case {
    let dedicated = dedicated_email();
    let mut o = compliant();
    o.service_account = c.account;
    let current = o.account();
    let foreign = current.starts_with("999-");
    o.service_account_unique_id = (!foreign).then(|| format!("uid-{current}"));
    if c.shared {
        o.shared_with = vec!["projects/shop-prod/locations/us-central1/functions/x".into()];
    }
    let minted_current = c.minted_current && !foreign;
    let dedicated_exists = c.dedicated_exists || current == dedicated;
    if minted_current {
        o.minted.insert(format!("uid-{current}"));
    }
    if c.dedicated_minted {
        o.minted.insert(format!("uid-{dedicated}"));
    }
    o.exclusivity = c.exclusivity;

    // The observed project policy, from which the planner's view derives.
    let mut world = World {
        project: vec![("roles/owner".into(), "user:owner@example.com".into(), false)],
        service: vec![],
        runs_as: current.clone(),
        created: BTreeSet::new(),
        function_ingress: c.function_ingress.into(),
        service_ingress: c.service_ingress.map(str::to_string),
    };
    o.ingress = c.function_ingress.into();
    o.run_service = Some(match c.service_ingress {
        Some(i) => ServiceState::Observed(RunService {
            ingress: i.into(),
            binary_authorization: None,
        }),
        None => ServiceState::NotObserved(crate::providers::ProviderError::Throttled("slow down".into())),
    });
    for role in c.current_roles {
        world.project.push((role.into(), member(&current), false));
    }
    if c.conditional_admin {
        world
            .project
            .push(("roles/storage.admin".into(), member(&current), true));
    }
    if dedicated_exists && current != dedicated {
        for role in c.dedicated_roles {
            world.project.push((role.into(), member(&dedicated), false));
        }
    }
    for ((role, m), (bound, conditional)) in SERVICE_BINDINGS.into_iter().zip(c.bindings) {
        if bound {
            world.service.push((role.into(), m.into(), conditional));
        }
    }
    if c.event_trigger {
        o.event_trigger = Some(EventTrigger {
            service_account: EVENT_SA.into(),
            ..EventTrigger::default()
        });
    }
    // The planner's view of that world.
    let roles_of = |m: &str, conditional: bool| -> BTreeSet<String> {
        world
            .project
            .iter()
            .filter(|(_, x, c)| x == m && *c == conditional)
            .map(|(r, _, _)| r.clone())
            .collect()
    };
    o.project_roles = roles_of(&member(&current), false);
    o.conditional_roles = roles_of(&member(&current), true);
    o.dedicated = dedicated_exists.then(|| DedicatedAccount {
        email: dedicated.clone(),
        unique_id: format!("uid-{dedicated}"),
        roles: roles_of(&member(&dedicated), false),
    });
    o.invokers = Some(
        world
            .service
            .iter()
            .filter(|(r, _, _)| EVAL_INVOKE_ROLES.contains(&r.as_str()))
            .map(|(r, m, c)| InvokeGrant {
                member: m.clone(),
                role: r.clone(),
                conditional: *c,
            })
            .collect(),
    );
    if c.unlabelled {
        o.labels.clear();
    }
    Case {
        spec,
        observed: o,
        world,
        minted_current,
        dedicated_minted: c.dedicated_minted,
    }
}

fn any_gcp_case() -> impl Strategy<Value = Case> {
    (any_gcp_spec(), any_choices()).prop_map(|(s, c)| gcp_case(s, c))
}

/// Which of the two accounts zerofn may change, judged from the raw
/// evidence (not from the planner's reading of it): the current one, the
/// dedicated one.
fn may_change(case: &Case, after: &World) -> (bool, bool) {
    let (s, o) = (&case.spec, &case.observed);
    let current = o.account();
    let foreign = current.starts_with("999-");
    let exclusive_evidence = s.identity.as_ref().unwrap().edit_in_place_if_exclusive
        && o.exclusivity
            .as_ref()
            .is_some_and(|e| e.actors.as_ref().is_some_and(BTreeSet::is_empty) && e.unobserved.is_empty());
    let is_default = current.ends_with("-compute@developer.gserviceaccount.com")
        || current.ends_with("@appspot.gserviceaccount.com");
    let current_ok = !is_default && !foreign && o.shared_with.is_empty() && (case.minted_current || exclusive_evidence);
    let dedicated_ok = after.created.contains(&dedicated_email()) || case.dedicated_minted;
    (current_ok, dedicated_ok)
}

fn declared_roles() -> BTreeSet<String> {
    ["roles/datastore.user".to_string()].into()
}

/// Only the accounts zerofn may change gain roles, and only declared ones;
/// nobody may newly invoke unless declared; event delivery, public members
/// and conditional bindings are as they were.
fn judge_members(case: &Case, after: &World, acts: &[&GcpAction]) {
    let (world, o) = (&case.world, &case.observed);
    let (may_change_current, may_change_dedicated) = may_change(case, after);
    let (current, dedicated) = (member(&o.account()), member(&dedicated_email()));
    let declared_invokers: BTreeSet<String> = case
        .spec
        .triggers
        .as_ref()
        .and_then(|t| t.gcp.as_ref())
        .and_then(|g| g.invokers.clone())
        .unwrap_or_default()
        .into_iter()
        .collect();
    for m in world.members().union(&after.members()) {
        let (before_r, after_r) = (world.roles(m), after.roles(m));
        let mine = (m == &current && may_change_current) || (m == &dedicated && may_change_dedicated);
        if mine {
            assert!(
                after_r.difference(&before_r).all(|r| declared_roles().contains(r)),
                "{m} gained undeclared roles {after_r:?} (had {before_r:?})"
            );
        } else {
            assert_eq!(before_r, after_r, "bystander {m} changed\n{acts:#?}");
        }
        if after.can_invoke(m) && !world.can_invoke(m) {
            assert!(declared_invokers.contains(m), "{m} may now invoke");
        }
        if m == "serviceAccount:events@shop-prod.iam.gserviceaccount.com" && o.event_trigger.is_some() {
            assert_eq!(world.can_invoke(m), after.can_invoke(m), "event delivery changed");
        }
    }
    for pub_m in PUBLIC_MEMBERS {
        assert!(
            !after.can_invoke(pub_m) || world.can_invoke(pub_m),
            "{pub_m} may now invoke"
        );
    }
    let conditional = |w: &World| -> Vec<(String, String, bool)> {
        w.project.iter().chain(&w.service).filter(|b| b.2).cloned().collect()
    };
    assert_eq!(conditional(world), conditional(after), "a conditional binding changed");
}

/// The function moves only to the dedicated account, one zerofn can prove
/// it minted, holding only declared roles.
fn judge_switch(case: &Case, after: &World) {
    if after.runs_as == case.world.runs_as {
        return;
    }
    let dedicated = dedicated_email();
    assert_eq!(after.runs_as, dedicated, "switched elsewhere");
    assert!(
        may_change(case, after).1,
        "switched to an account zerofn cannot prove it minted"
    );
    assert!(
        after
            .roles(&member(&dedicated))
            .iter()
            .all(|r| declared_roles().contains(r)),
        "the new identity holds undeclared roles"
    );
}

/// How far each ingress value lets traffic in, the evaluator's own table
/// (None: a value it does not know, which must then be left as it is).
fn reach(value: &str) -> Option<u8> {
    match value {
        "INGRESS_TRAFFIC_NONE" => Some(0),
        "ALLOW_INTERNAL_ONLY" | "INGRESS_TRAFFIC_INTERNAL_ONLY" => Some(1),
        "ALLOW_INTERNAL_AND_GCLB" | "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER" => Some(2),
        "ALLOW_ALL" | "INGRESS_SETTINGS_UNSPECIFIED" | "INGRESS_TRAFFIC_ALL" | "INGRESS_TRAFFIC_UNSPECIFIED" => Some(3),
        _ => None,
    }
}

/// Neither the function's ingress (beyond what is declared) nor its
/// service's ever widens, an unknown or unread one is never changed, and a
/// posture requiring private ingress is never passed while either could
/// let everyone in.
fn judge_ingress(case: &Case, after: &World, p: &Plan<GcpAction>) {
    let before = &case.world;
    let g = case.spec.triggers.as_ref().and_then(|t| t.gcp.as_ref());
    // What the posture asks of the function's setting may be written
    // whatever it was: declared, or internal only when public access is denied.
    let deny = case
        .spec
        .triggers
        .as_ref()
        .is_some_and(|t| t.public_access == PublicAccess::Deny);
    let declared = match g.and_then(|g| g.ingress) {
        Some(GcpIngress::AllowInternalOnly) => Some("ALLOW_INTERNAL_ONLY".to_string()),
        Some(GcpIngress::AllowInternalAndGclb) => Some("ALLOW_INTERNAL_AND_GCLB".to_string()),
        Some(GcpIngress::AllowAll) => Some("ALLOW_ALL".to_string()),
        None => deny.then(|| "ALLOW_INTERNAL_ONLY".to_string()),
    };
    let pairs = [
        (
            Some(&before.function_ingress),
            Some(&after.function_ingress),
            declared.as_ref(),
        ),
        (before.service_ingress.as_ref(), after.service_ingress.as_ref(), None),
    ];
    for (was, now, declared) in pairs {
        if was != now && now == declared {
            continue;
        }
        match (was.and_then(|w| reach(w)), now.and_then(|n| reach(n))) {
            (Some(w), Some(n)) => assert!(n <= w, "ingress widened from {was:?} to {now:?}"),
            _ => assert_eq!(was, now, "an unknown or unread ingress changed"),
        }
    }
    let required = g.is_some_and(|g| g.require_private_ingress);
    let reported = p
        .findings
        .iter()
        .any(|f| f.check == "gcp.triggers.privateIngress" || f.check == "gcp.triggers.ingress");
    let private = |v: Option<&String>| v.and_then(|v| reach(v)).is_some_and(|r| r <= 2);
    if required && !reported {
        assert!(
            private(Some(&before.function_ingress)) && private(before.service_ingress.as_ref()),
            "passed as private: {before:?}"
        );
    }
}

/// At most one update of the function, which never opens ingress (unless
/// declared open) or egress.
fn judge_patches(case: &Case, acts: &[&GcpAction]) {
    let declared_open = case
        .spec
        .triggers
        .as_ref()
        .and_then(|t| t.gcp.as_ref())
        .is_some_and(|g| g.ingress == Some(GcpIngress::AllowAll));
    for f in acts.iter().flat_map(|a| patch_fields(a)) {
        match f {
            FunctionField::Ingress(v) => assert!(v != "ALLOW_ALL" || declared_open, "opened ingress"),
            FunctionField::Egress(v) => assert_eq!(v, "ALL_TRAFFIC"),
            FunctionField::VpcConnector(v) => assert_eq!(v, CONNECTOR),
            FunctionField::ServiceAccount(_) | FunctionField::Claim(_) | FunctionField::Release(_) => {}
        }
    }
    let patches = acts
        .iter()
        .filter(|a| matches!(a, GcpAction::PatchFunction { .. }))
        .count();
    assert!(patches <= 1, "more than one update of the function");
}

#[test]
fn no_plan_ever_widens_access_or_touches_a_bystander() {
    let seen = RefCell::new(BTreeSet::new());
    sweep(5000, any_gcp_case(), |case| {
        let p = plan(&posture(case.spec.clone()), &case.observed);
        let acts = actions(&p);
        seen.borrow_mut().extend(acts.iter().map(|a| a.op()));
        let after = case.world.after(&acts);
        judge_members(&case, &after, &acts);
        judge_switch(&case, &after);
        judge_patches(&case, &acts);
        judge_ingress(&case, &after, &p);
        Ok(())
    });
    let seen = seen.into_inner();
    for op in [
        "CreateServiceAccount",
        "SetIamPolicy(project)",
        "UpdateFunction",
        "SetIamPolicy(service)",
        "UpdateService",
    ] {
        assert!(seen.contains(op), "sweep never produced {op}");
    }
}

// ------------------------------------------------------------------ binary authorization

/// The function's service as read: internal only, with this Binary
/// Authorization.
fn service(binauthz: Option<BinAuthz>) -> ServiceState {
    ServiceState::Observed(RunService {
        ingress: "INGRESS_TRAFFIC_INTERNAL_ONLY".into(),
        binary_authorization: binauthz,
    })
}

fn with_binauthz(declared: &str) -> FunctionPostureSpec {
    let mut s = spec();
    s.supply_chain = Some(SupplyChainControl {
        aws: None,
        azure: None,
        gcp: Some(GcpSupplyChain {
            require_binary_authorization: Some(declared.into()),
            ..GcpSupplyChain::default()
        }),
    });
    s
}

#[test]
fn a_service_without_binary_authorization_gets_the_declared_one() {
    let mut o = compliant();
    o.run_service = Some(service(None));
    let p = run(with_binauthz("default"), &o);
    assert_eq!(
        p.findings.iter().map(|f| f.check.as_str()).collect::<Vec<_>>(),
        vec!["gcp.supplyChain.binaryAuthorization"]
    );
    assert_eq!(p.findings[0].severity, Severity::High);
    assert!(actions(&p).iter().any(|a| matches!(
        a,
        GcpAction::SetBinaryAuthorization { method: BinAuthz::UseDefault, service } if *service == o.service
    )));
    o.run_service = Some(service(Some(BinAuthz::UseDefault)));
    let p = run(with_binauthz("default"), &o);
    assert!(p.findings.is_empty() && p.actions.is_empty());
}

#[test]
fn another_enforced_policy_is_reported_never_switched_and_an_unread_service_never_passed() {
    let mut o = compliant();
    o.run_service = Some(service(Some(BinAuthz::Policy(
        "projects/shop-prod/platforms/cloudrun/policies/strict".into(),
    ))));
    let p = run(with_binauthz("default"), &o);
    assert_eq!(p.findings.len(), 1);
    assert!(!p.findings[0].remediable);
    assert!(
        !actions(&p)
            .iter()
            .any(|a| matches!(a, GcpAction::SetBinaryAuthorization { .. }))
    );
    o.run_service = Some(ServiceState::NotObserved(crate::providers::ProviderError::Auth(
        "denied".into(),
    )));
    let p = run(with_binauthz("default"), &o);
    assert_eq!(p.findings.len(), 1);
    assert!(p.findings[0].observed.starts_with("CloudAuthFailed"));
}

// ------------------------------------------------------------------ private ingress

fn with_private_ingress(declared: Option<GcpIngress>) -> FunctionPostureSpec {
    let mut s = spec();
    let t = s.triggers.as_mut().unwrap();
    t.public_access = PublicAccess::RequireAuth;
    let g = t.gcp.as_mut().unwrap();
    g.require_private_ingress = true;
    g.ingress = declared;
    s
}

fn service_ingress(ingress: &str) -> Option<ServiceState> {
    Some(ServiceState::Observed(RunService {
        ingress: ingress.into(),
        binary_authorization: None,
    }))
}

fn narrowed_service(p: &Plan<GcpAction>) -> Vec<String> {
    actions(p)
        .iter()
        .filter_map(|a| match a {
            GcpAction::NarrowServiceIngress { ingress, .. } => Some(ingress.clone()),
            _ => None,
        })
        .collect()
}

/// The service opened behind the function's back: the function's own
/// setting says internal, the service lets everyone in. High, and the
/// service (not the function) is narrowed to internal and load balancing.
#[test]
fn a_service_opened_behind_the_functions_back_is_found_and_narrowed() {
    let mut o = compliant();
    o.ingress = "ALLOW_INTERNAL_AND_GCLB".into();
    o.run_service = service_ingress("INGRESS_TRAFFIC_ALL");
    let p = run(with_private_ingress(None), &o);
    assert_eq!(checks(&p), vec!["gcp.triggers.privateIngress"]);
    assert_eq!(p.findings[0].field, "service.ingress");
    assert_eq!(p.findings[0].severity, Severity::High);
    assert_eq!(narrowed_service(&p), vec!["INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER"]);
    assert!(!actions(&p).iter().any(|a| matches!(a, GcpAction::PatchFunction { .. })));

    o.run_service = service_ingress("INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER");
    let p = run(with_private_ingress(None), &o);
    assert!(p.findings.is_empty() && p.actions.is_empty(), "{:#?}", p.findings);
}

/// A function open to all is narrowed on both sides: its setting (or its
/// next deploy would open the service again) and its service.
#[test]
fn an_open_function_is_narrowed_on_both_sides() {
    let mut o = compliant();
    o.ingress = "ALLOW_ALL".into();
    o.run_service = service_ingress("INGRESS_TRAFFIC_ALL");
    let p = run(with_private_ingress(None), &o);
    let fields: BTreeSet<&str> = p.findings.iter().map(|f| f.field.as_str()).collect();
    assert_eq!(
        fields,
        BTreeSet::from(["serviceConfig.ingressSettings", "service.ingress"])
    );
    assert!(actions(&p).iter().any(|a| {
        patch_fields(a)
            .iter()
            .any(|f| *f == FunctionField::Ingress("ALLOW_INTERNAL_AND_GCLB".into()))
    }));
    assert_eq!(narrowed_service(&p), vec!["INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER"]);
}

/// A narrower service is kept; a declared ingress is the bound (and the
/// ingress control writes the function's setting); a service wider than
/// the declared ingress, though not open to all, is narrowed to it.
#[test]
fn the_bound_is_the_declared_ingress_and_narrower_is_kept() {
    let mut o = compliant();
    o.run_service = service_ingress("INGRESS_TRAFFIC_NONE");
    let p = run(with_private_ingress(None), &o);
    assert!(p.findings.is_empty(), "{:#?}", p.findings);

    o.run_service = service_ingress("INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER");
    let p = run(with_private_ingress(Some(GcpIngress::AllowInternalOnly)), &o);
    assert_eq!(checks(&p), vec!["gcp.triggers.privateIngress"]);
    assert_eq!(p.findings[0].severity, Severity::Medium);
    assert_eq!(narrowed_service(&p), vec!["INGRESS_TRAFFIC_INTERNAL_ONLY"]);

    o.ingress = "ALLOW_ALL".into();
    o.run_service = service_ingress("INGRESS_TRAFFIC_INTERNAL_ONLY");
    let p = run(with_private_ingress(Some(GcpIngress::AllowInternalOnly)), &o);
    assert_eq!(
        checks(&p),
        vec!["gcp.triggers.ingress"],
        "one finding, one write of the setting"
    );
}

/// An unread service, or a value zerofn does not know, is reported as not
/// judged and never written.
#[test]
fn an_unread_or_unknown_ingress_is_never_passed_nor_written() {
    let mut o = compliant();
    for state in [
        None,
        Some(ServiceState::NotObserved(crate::providers::ProviderError::Auth(
            "denied".into(),
        ))),
        service_ingress("INGRESS_TRAFFIC_SOMETIMES"),
    ] {
        o.run_service = state;
        let p = run(with_private_ingress(None), &o);
        assert_eq!(checks(&p), vec!["gcp.triggers.privateIngress"]);
        assert!(!p.findings[0].remediable);
        assert!(p.actions.is_empty());
    }
    o.run_service = service_ingress("INGRESS_TRAFFIC_INTERNAL_ONLY");
    o.ingress = "ALLOW_SOMETIMES".into();
    let p = run(with_private_ingress(None), &o);
    assert_eq!(checks(&p), vec!["gcp.triggers.privateIngress"]);
    assert!(p.actions.is_empty());
}
