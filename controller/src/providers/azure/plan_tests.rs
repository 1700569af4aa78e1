//! Table tests of the Azure planner, and a generated sweep proving no action
//! grants beyond the spec.

use super::*;
use crate::api::FunctionPostureSpec;
use crate::providers::azure::model::{Assignment, AuthSettings, WebConfig};
use std::collections::BTreeMap;

const SUB: &str = "5e6f7a8b-9c0d-4e1f-8a2b-3c4d5e6f7a8b";
const SITE: &str =
    "/subscriptions/5e6f7a8b-9c0d-4e1f-8a2b-3c4d5e6f7a8b/resourceGroups/rg-fn/providers/Microsoft.Web/sites/orders";
const SUBNET: &str = "/subscriptions/5e6f7a8b-9c0d-4e1f-8a2b-3c4d5e6f7a8b/resourceGroups/rg-net/providers/Microsoft.Network/virtualNetworks/vnet/subnets/functions";
const READER: &str = "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1";
const CONTRIBUTOR: &str = "b24988ac-6180-42a0-ab88-20f7382d0c24";
const STORAGE: &str = "/subscriptions/5e6f7a8b-9c0d-4e1f-8a2b-3c4d5e6f7a8b/resourceGroups/rg-data/providers/Microsoft.Storage/storageAccounts/orders";
const OWNER: &str = "test/shop/orders";

fn spec_json() -> Value {
    json!({
        "accountRef": {"name": "azure"},
        "function": {"azure": {"resourceGroup": "rg-fn", "name": "orders"}},
        "mode": "Enforce",
        "identity": {"azure": {"roleAssignments": [{"role": "Storage Blob Data Reader", "scope": STORAGE}]}},
        "triggers": {
            "publicAccess": "Deny",
            "azure": {"accessRestrictions": [{"name": "office", "ipAddress": "203.0.113.0/24", "priority": 100}]}
        },
        "network": {"azure": {"subnetId": SUBNET}},
        "supplyChain": {"azure": {"requireRunFromPackage": true}},
        "observability": {"tracing": "Active"}
    })
}

fn posture_from(v: Value) -> Posture {
    let spec: FunctionPostureSpec = serde_json::from_value(v).expect("test spec");
    Posture::new("test", "shop", "orders", spec)
}

fn posture() -> Posture {
    posture_from(spec_json())
}

fn office() -> Value {
    json!({"name": "office", "priority": 100, "action": "Allow", "ipAddress": "203.0.113.0/24"})
}

fn compliant() -> ObservedApp {
    ObservedApp {
        id: SITE.into(),
        subscription: SUB.into(),
        resource_group: "rg-fn".into(),
        name: "orders".into(),
        tags: BTreeMap::from([(names::OWNER_TAG.to_string(), OWNER.to_string())]),
        system_principal: Some("11111111-1111-4111-8111-111111111111".into()),
        user_assigned: BTreeMap::new(),
        shared_user_assigned: BTreeMap::new(),
        https_only: true,
        public_network_access: "Disabled".into(),
        virtual_network_subnet_id: Some(SUBNET.into()),
        vnet_route_all: true,
        web: Some(WebConfig {
            min_tls_version: "1.2".into(),
            ftps_state: "Disabled".into(),
            ip_security_restrictions: vec![office()],
            default_action: Some("Deny".into()),
        }),
        auth: Some(AuthSettings {
            enabled: true,
            require_authentication: true,
            unauthenticated_client_action: Some("Return401".into()),
            has_identity_provider: true,
        }),
        publishing: Some((false, false)),
        app_settings: Some(BTreeMap::from([
            ("APPLICATIONINSIGHTS_CONNECTION_STRING".to_string(), true),
            ("WEBSITE_RUN_FROM_PACKAGE".to_string(), true),
        ])),
        assignments: Some(vec![Assignment {
            id: format!("{STORAGE}/providers/Microsoft.Authorization/roleAssignments/aaaa"),
            role: READER.into(),
            scope: STORAGE.into(),
        }]),
        roles: BTreeMap::from([("Storage Blob Data Reader".to_string(), Some(READER.to_string()))]),
    }
}

fn checks(p: &Plan) -> Vec<&str> {
    p.findings.iter().map(|f| f.check.as_str()).collect()
}

fn actions(p: &Plan) -> Vec<&AzureAction> {
    p.actions
        .iter()
        .map(|a| match a {
            Action::Azure(a) => a,
            other => panic!("not an Azure action: {other:?}"),
        })
        .collect()
}

#[test]
fn a_compliant_app_has_no_finding_and_no_action() {
    let p = plan(&posture(), &compliant());
    assert!(p.findings.is_empty(), "{:?}", p.findings);
    assert!(p.actions.is_empty());
    assert_eq!(p.function, "rg-fn/orders");
    assert_eq!(p.principal.as_deref(), Some("11111111-1111-4111-8111-111111111111"));
}

#[test]
fn enforce_claims_an_unowned_app_and_refuses_one_owned_elsewhere() {
    let mut o = compliant();
    o.tags.clear();
    let p = plan(&posture(), &o);
    assert_eq!(
        actions(&p),
        vec![&AzureAction::SetTag {
            site: SITE.into(),
            key: "zerofn.dev-owner".into(),
            value: Some(OWNER.into())
        }]
    );
    o.tags.insert(names::OWNER_TAG.into(), "other/shop/orders".into());
    o.https_only = false;
    let p = plan(&posture(), &o);
    assert!(matches!(p.blocked, Some(Blocked::Conflict { .. })));
    assert!(p.actions.is_empty());
    assert_eq!(checks(&p), vec!["azure.triggers.httpsOnly"]);
    // Audit never claims.
    let mut audit = spec_json();
    audit["mode"] = json!("Audit");
    o.tags.clear();
    assert!(
        plan(&posture_from(audit), &o)
            .actions
            .iter()
            .all(|a| !matches!(a, Action::Azure(AzureAction::SetTag { .. })))
    );
}

#[test]
fn no_identity_is_fixed_by_enabling_the_system_assigned_one_and_its_roles_follow() {
    let mut o = compliant();
    o.system_principal = None;
    o.assignments = None;
    o.user_assigned = BTreeMap::from([(
        "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/app".to_string(),
        "p".to_string(),
    )]);
    let p = plan(&posture(), &o);
    assert_eq!(
        checks(&p),
        vec![
            "azure.identity.missingRoleAssignment",
            "azure.identity.noSystemAssigned"
        ]
    );
    let a = actions(&p);
    assert!(matches!(a[0], AzureAction::EnableSystemIdentity { user_assigned, .. } if user_assigned.len() == 1));
    // The role goes to the new principal, looked up when it exists.
    assert!(matches!(a[1], AzureAction::CreateRoleAssignment { principal_id: None, scope, .. } if scope == STORAGE));
}

#[test]
fn a_shared_user_assigned_identity_is_reported_never_detached() {
    let mut o = compliant();
    let uai = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/shared";
    o.user_assigned.insert(uai.into(), "p".into());
    o.shared_user_assigned.insert(uai.into(), vec!["billing".into()]);
    let p = plan(&posture(), &o);
    assert_eq!(checks(&p), vec!["azure.identity.sharedUserAssigned"]);
    assert!(!p.findings[0].remediable);
    assert!(p.actions.is_empty());
}

#[test]
fn undeclared_assignments_go_and_declared_ones_come() {
    let mut o = compliant();
    let sub_scope = format!("/subscriptions/{SUB}");
    o.assignments = Some(vec![
        Assignment {
            id: format!("{sub_scope}/providers/Microsoft.Authorization/roleAssignments/bbbb"),
            role: CONTRIBUTOR.into(),
            scope: sub_scope.clone(),
        },
        Assignment {
            id: "/providers/Microsoft.Management/managementGroups/root/providers/Microsoft.Authorization/roleAssignments/cccc".into(),
            role: READER.into(),
            scope: "/providers/Microsoft.Management/managementGroups/root".into(),
        },
    ]);
    let p = plan(&posture(), &o);
    let contributor = p
        .findings
        .iter()
        .find(|f| f.observed.contains(CONTRIBUTOR))
        .expect("contributor finding");
    assert_eq!(contributor.severity, Severity::Critical);
    assert!(contributor.remediable);
    let inherited = p
        .findings
        .iter()
        .find(|f| f.observed.contains("managementGroups"))
        .expect("inherited finding");
    assert!(!inherited.remediable, "above the subscription: reported only");
    let a = actions(&p);
    // Create first, then delete; the inherited one is never touched.
    assert!(matches!(a[0], AzureAction::CreateRoleAssignment { .. }));
    assert!(matches!(a[1], AzureAction::DeleteRoleAssignment { id, .. } if id.ends_with("/bbbb")));
    assert_eq!(a.len(), 2);
}

#[test]
fn role_assignment_names_are_deterministic_so_a_rerun_finds_them() {
    let mut o = compliant();
    o.assignments = Some(Vec::new());
    let n = |p: &Plan| match actions(p)[0] {
        AzureAction::CreateRoleAssignment { name, .. } => name.clone(),
        other => panic!("{other:?}"),
    };
    assert_eq!(n(&plan(&posture(), &o)), n(&plan(&posture(), &o)));
    assert!(names::is_guid(&n(&plan(&posture(), &o))));
}

#[test]
fn a_role_that_does_not_exist_is_reported() {
    let mut o = compliant();
    o.roles.insert("Storage Blob Data Reader".into(), None);
    let p = plan(&posture(), &o);
    assert!(checks(&p).contains(&"azure.identity.unknownRole"));
    // The existing (now undeclared) assignment is removed; nothing is created.
    assert!(
        actions(&p)
            .iter()
            .all(|a| !matches!(a, AzureAction::CreateRoleAssignment { .. }))
    );
}

#[test]
fn public_access_deny_closes_the_public_endpoint() {
    let mut o = compliant();
    o.public_network_access = "Enabled".into();
    let p = plan(&posture(), &o);
    assert_eq!(checks(&p), vec!["azure.triggers.publicNetworkAccess"]);
    assert!(matches!(actions(&p)[0], AzureAction::PatchSite { public_network_access: Some(v), .. } if v == "Disabled"));
    // Declared Enabled never reopens a closed endpoint.
    let mut s = spec_json();
    s["triggers"]["azure"]["publicNetworkAccess"] = json!("Enabled");
    assert!(plan(&posture_from(s), &compliant()).findings.is_empty());
}

#[test]
fn access_restrictions_converge_on_the_declared_allow_rules_with_default_deny() {
    let mut o = compliant();
    let deny = json!({"name": "bad", "priority": 50, "action": "Deny", "ipAddress": "198.51.100.7/32"});
    let stray = json!({"name": "vendor", "priority": 200, "action": "Allow", "ipAddress": "192.0.2.0/24"});
    let implicit = json!({"name": "Allow all", "priority": 2147483647, "action": "Allow", "ipAddress": "Any"});
    o.web = Some(WebConfig {
        ip_security_restrictions: vec![deny.clone(), stray, implicit],
        default_action: Some("Allow".into()),
        ..o.web.clone().unwrap_or_default()
    });
    let p = plan(&posture(), &o);
    assert_eq!(
        checks(&p),
        vec![
            "azure.triggers.accessRestrictionsDefault",
            "azure.triggers.missingAccessRestriction",
            "azure.triggers.unlistedAccessRestriction"
        ]
    );
    match actions(&p)[0] {
        AzureAction::PatchWebConfig {
            ip_security_restrictions: Some(rules),
            ..
        } => assert_eq!(rules, &vec![office(), deny]),
        other => panic!("{other:?}"),
    }
    // removeUnlisted false: the stray Allow rule is reported and kept.
    let mut s = spec_json();
    s["triggers"]["removeUnlisted"] = json!(false);
    let p = plan(&posture_from(s), &o);
    let kept = p
        .findings
        .iter()
        .find(|f| f.check == "azure.triggers.unlistedAccessRestriction")
        .expect("finding");
    assert!(!kept.remediable);
    match actions(&p)[0] {
        AzureAction::PatchWebConfig {
            ip_security_restrictions: Some(rules),
            ..
        } => assert_eq!(rules.len(), 3),
        other => panic!("{other:?}"),
    }
}

#[test]
fn authentication_is_required_only_when_an_identity_provider_exists() {
    let mut o = compliant();
    o.auth = Some(AuthSettings {
        enabled: false,
        require_authentication: false,
        unauthenticated_client_action: None,
        has_identity_provider: true,
    });
    let p = plan(&posture(), &o);
    assert_eq!(checks(&p), vec!["azure.triggers.authentication"]);
    assert_eq!(
        actions(&p),
        vec![&AzureAction::RequireAuthentication { site: SITE.into() }]
    );
    o.auth = Some(AuthSettings {
        has_identity_provider: false,
        ..AuthSettings::default()
    });
    let p = plan(&posture(), &o);
    assert!(!p.findings[0].remediable, "would lock every caller out");
    assert!(p.actions.is_empty());
    // Authentication on but anonymous callers allowed is still drift.
    o.auth = Some(AuthSettings {
        enabled: true,
        require_authentication: false,
        unauthenticated_client_action: Some("AllowAnonymous".into()),
        has_identity_provider: true,
    });
    assert_eq!(checks(&plan(&posture(), &o)), vec!["azure.triggers.authentication"]);
}

#[test]
fn transport_hardening_covers_https_tls_ftps_and_basic_publishing() {
    let mut o = compliant();
    o.https_only = false;
    o.web = Some(WebConfig {
        min_tls_version: "1.0".into(),
        ftps_state: "AllAllowed".into(),
        ..o.web.clone().unwrap_or_default()
    });
    o.publishing = Some((true, true));
    let p = plan(&posture(), &o);
    assert_eq!(
        checks(&p),
        vec![
            "azure.triggers.basicPublishing.ftp",
            "azure.triggers.basicPublishing.scm",
            "azure.triggers.ftpsState",
            "azure.triggers.httpsOnly",
            "azure.triggers.minTlsVersion"
        ]
    );
    let a = actions(&p);
    assert!(a.contains(&&AzureAction::PatchWebConfig {
        site: SITE.into(),
        min_tls_version: Some("1.2".into()),
        ftps_state: Some("Disabled".into()),
        ip_security_restrictions: None
    }));
    assert_eq!(
        a.iter()
            .filter(|a| matches!(a, AzureAction::DisableBasicPublishing { .. }))
            .count(),
        2
    );
    // TLS 1.3 is better than 1.2: no finding.
    o = compliant();
    if let Some(w) = o.web.as_mut() {
        w.min_tls_version = "1.3".into();
    }
    assert!(plan(&posture(), &o).findings.is_empty());
    // hardenTransport false: not checked.
    let mut s = spec_json();
    s["triggers"]["azure"]["hardenTransport"] = json!(false);
    let mut o = compliant();
    o.https_only = false;
    assert!(plan(&posture_from(s), &o).findings.is_empty());
}

#[test]
fn network_integration_and_route_all() {
    let mut o = compliant();
    o.virtual_network_subnet_id = None;
    o.vnet_route_all = false;
    let p = plan(&posture(), &o);
    assert_eq!(
        checks(&p),
        vec!["azure.network.noVnetIntegration", "azure.network.routeAll"]
    );
    assert_eq!(
        actions(&p),
        vec![&AzureAction::PatchSite {
            site: SITE.into(),
            https_only: None,
            public_network_access: None,
            virtual_network_subnet_id: Some(SUBNET.into()),
            vnet_route_all_enabled: Some(true)
        }]
    );
    // Case differences in ARM ids are not drift.
    let mut o = compliant();
    o.virtual_network_subnet_id = Some(SUBNET.to_ascii_lowercase());
    assert!(plan(&posture(), &o).findings.is_empty());
}

#[test]
fn supply_chain_and_observability_are_reported_only() {
    let mut o = compliant();
    o.app_settings = Some(BTreeMap::new());
    let p = plan(&posture(), &o);
    assert_eq!(
        checks(&p),
        vec![
            "azure.supplyChain.runFromPackage",
            "azure.observability.applicationInsights"
        ]
    );
    assert!(p.findings.iter().all(|f| !f.remediable));
    assert!(p.actions.is_empty());
    let mut s = spec_json();
    s["observability"] = json!({"structuredLogs": true});
    let p = plan(&posture_from(s), &compliant());
    assert_eq!(p.notes.len(), 1);
    assert_eq!(p.notes[0].reason, "NotApplicable");
}

#[test]
fn audit_reports_the_same_findings() {
    let mut s = spec_json();
    s["mode"] = json!("Audit");
    let mut o = compliant();
    o.https_only = false;
    let p = plan(&posture_from(s), &o);
    assert_eq!(checks(&p), vec!["azure.triggers.httpsOnly"]);
}

#[test]
fn a_deny_rule_added_after_observation_survives_the_write() {
    let late = json!({"name": "block", "priority": 10, "action": "Deny", "ipAddress": "198.51.100.9/32"});
    let stray = json!({"name": "vendor", "priority": 200, "action": "Allow", "ipAddress": "192.0.2.0/24"});
    let implicit = json!({"name": "Deny all", "priority": 2147483647, "action": "Deny", "ipAddress": "Any"});
    let out = with_current_denies(&[office()], &[office(), late.clone(), stray, implicit]);
    assert_eq!(out, vec![office(), late]);
}

/// Random observed states: every action the planner emits narrows access or
/// adds exactly what the spec declares.
#[test]
fn no_action_grants_beyond_the_spec() {
    let declared_rules = [office()];
    let rule_pool = [
        office(),
        json!({"name": "vendor", "priority": 200, "action": "Allow", "ipAddress": "192.0.2.0/24"}),
        json!({"name": "bad", "priority": 50, "action": "Deny", "ipAddress": "198.51.100.7/32"}),
        json!({"name": "vnet", "priority": 300, "action": "Allow", "vnetSubnetResourceId": SUBNET}),
    ];
    let mut rng = fastrand::Rng::with_seed(7);
    for _ in 0..3000 {
        let mut o = compliant();
        o.https_only = rng.bool();
        o.public_network_access = if rng.bool() { "Enabled" } else { "Disabled" }.into();
        o.vnet_route_all = rng.bool();
        o.virtual_network_subnet_id =
            [None, Some(SUBNET.to_string()), Some(format!("{SUBNET}x"))][rng.usize(..3)].clone();
        o.system_principal = rng.bool().then(|| "p1".to_string());
        o.web = Some(WebConfig {
            min_tls_version: ["1.0", "1.1", "1.2", "1.3", ""][rng.usize(..5)].into(),
            ftps_state: ["AllAllowed", "FtpsOnly", "Disabled"][rng.usize(..3)].into(),
            ip_security_restrictions: rule_pool.iter().filter(|_| rng.bool()).cloned().collect::<Vec<_>>(),
            default_action: [None, Some("Allow".to_string()), Some("Deny".to_string())][rng.usize(..3)].clone(),
        });
        o.publishing = Some((rng.bool(), rng.bool()));
        o.auth = Some(AuthSettings {
            enabled: rng.bool(),
            require_authentication: rng.bool(),
            unauthenticated_client_action: [None, Some("AllowAnonymous".to_string()), Some("Return401".to_string())]
                [rng.usize(..3)]
            .clone(),
            has_identity_provider: rng.bool(),
        });
        o.assignments = if o.system_principal.is_some() {
            let mut held = Vec::new();
            for r in [READER, CONTRIBUTOR] {
                if rng.bool() {
                    held.push(Assignment {
                        id: format!("{STORAGE}/providers/Microsoft.Authorization/roleAssignments/{r}"),
                        role: r.to_string(),
                        scope: if rng.bool() {
                            STORAGE.into()
                        } else {
                            format!("/subscriptions/{SUB}")
                        },
                    });
                }
            }
            Some(held)
        } else {
            None
        };
        let mut s = spec_json();
        s["triggers"]["removeUnlisted"] = json!(rng.bool());
        let p = plan(&posture_from(s), &o);
        for a in actions(&p) {
            match a {
                AzureAction::PatchSite {
                    https_only,
                    public_network_access,
                    virtual_network_subnet_id,
                    vnet_route_all_enabled,
                    ..
                } => {
                    assert!(https_only.is_none_or(|v| v));
                    assert!(public_network_access.as_deref().is_none_or(|v| v == "Disabled"));
                    assert!(virtual_network_subnet_id.as_deref().is_none_or(|v| v == SUBNET));
                    assert!(vnet_route_all_enabled.is_none_or(|v| v));
                }
                AzureAction::PatchWebConfig {
                    min_tls_version,
                    ftps_state,
                    ip_security_restrictions,
                    ..
                } => {
                    assert!(min_tls_version.as_deref().is_none_or(|v| v == "1.2"));
                    assert!(ftps_state.as_deref().is_none_or(|v| v == "Disabled"));
                    for r in ip_security_restrictions.iter().flatten() {
                        let declared = declared_rules.contains(r);
                        let observed = o.web.as_ref().is_some_and(|w| w.ip_security_restrictions.contains(r));
                        assert!(declared || observed, "a rule from nowhere: {r}");
                        // An undeclared Allow rule survives only when the spec keeps unlisted ones.
                        if !declared && r["action"] == "Allow" {
                            assert!(
                                p.findings
                                    .iter()
                                    .any(|f| f.check == "azure.triggers.unlistedAccessRestriction" && !f.remediable)
                            );
                        }
                    }
                }
                AzureAction::CreateRoleAssignment {
                    scope,
                    role_definition_id,
                    ..
                } => {
                    assert_eq!(scope, STORAGE);
                    assert!(role_definition_id.ends_with(READER));
                }
                AzureAction::EnableSystemIdentity { user_assigned, .. } => {
                    assert_eq!(user_assigned.len(), o.user_assigned.len());
                }
                AzureAction::SetTag { key, value, .. } => {
                    assert_eq!(key, names::OWNER_TAG);
                    assert_eq!(value.as_deref(), Some(OWNER));
                }
                AzureAction::RequireAuthentication { .. }
                | AzureAction::DisableBasicPublishing { .. }
                | AzureAction::DeleteRoleAssignment { .. } => {}
            }
        }
        if p.findings.is_empty() {
            assert!(p.actions.is_empty());
        }
    }
}
