//! Table tests of the Azure planner, and a generated sweep proving no action
//! grants beyond the spec.

use super::*;
use crate::api::FunctionPostureSpec;
use crate::fixtures::sweep;
use crate::providers::Blocked;
use crate::providers::azure::model::{Assignment, AuthSettings, RoleDefinition, WebConfig};
use proptest::prelude::*;
use proptest::sample::select;
use std::collections::BTreeMap;

const SUB: &str = "5e6f7a8b-9c0d-4e1f-8a2b-3c4d5e6f7a8b";
const SITE: &str =
    "/subscriptions/5e6f7a8b-9c0d-4e1f-8a2b-3c4d5e6f7a8b/resourceGroups/rg-fn/providers/Microsoft.Web/sites/orders";
const SUBNET: &str = "/subscriptions/5e6f7a8b-9c0d-4e1f-8a2b-3c4d5e6f7a8b/resourceGroups/rg-net/providers/Microsoft.Network/virtualNetworks/vnet/subnets/functions";
const READER: &str = "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1";
const CONTRIBUTOR: &str = "b24988ac-6180-42a0-ab88-20f7382dd24c";
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
            ..WebConfig::default()
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
        role_definitions: BTreeMap::new(),
        slots: Vec::new(),
        egress_control: None,
        log_destinations: None,
    }
}

fn site_patch(site: &str, fields: impl IntoIterator<Item = SiteField>) -> AzureAction {
    AzureAction::PatchSite {
        site: site.into(),
        patch: fields.into_iter().collect(),
    }
}

/// The fields of a PatchSite; none for any other action.
fn site_fields(a: &AzureAction) -> &[SiteField] {
    match a {
        AzureAction::PatchSite { patch, .. } => patch.fields(),
        _ => &[],
    }
}

/// The fields of a PatchWebConfig; none for any other action.
fn web_fields(a: &AzureAction) -> &[WebField] {
    match a {
        AzureAction::PatchWebConfig { patch, .. } => patch.fields(),
        _ => &[],
    }
}

/// The main site's access restrictions a PatchWebConfig writes, if any.
fn main_rules(a: &AzureAction) -> Option<&Vec<Value>> {
    web_fields(a).iter().find_map(|f| match f {
        WebField::IpSecurityRestrictions(r) => Some(r),
        _ => None,
    })
}

/// The SCM site's access restrictions a PatchWebConfig writes, if any.
fn scm_rules(a: &AzureAction) -> Option<&Vec<Value>> {
    web_fields(a).iter().find_map(|f| match f {
        WebField::ScmIpSecurityRestrictions(r) => Some(r),
        _ => None,
    })
}

fn checks(p: &Plan<AzureAction>) -> Vec<&str> {
    p.findings.iter().map(|f| f.check.as_str()).collect()
}

fn actions(p: &Plan<AzureAction>) -> Vec<&AzureAction> {
    p.actions.iter().collect()
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
            .all(|a| !matches!(a, AzureAction::SetTag { .. }))
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

/// The phases on Azure: the claim, then the declared role comes before the
/// site is locked down, and an undeclared role goes only after both.
#[test]
fn claim_then_grants_then_configuration_then_removals() {
    let mut o = compliant();
    o.tags.clear();
    o.https_only = false;
    let sub_scope = format!("/subscriptions/{SUB}");
    o.assignments = Some(vec![Assignment {
        id: format!("{sub_scope}/providers/Microsoft.Authorization/roleAssignments/bbbb"),
        role: CONTRIBUTOR.into(),
        scope: sub_scope,
    }]);
    let p = plan(&posture(), &o);
    let ops: Vec<&str> = actions(&p).iter().map(|a| a.op()).collect();
    assert_eq!(
        ops,
        vec!["PatchTags", "CreateRoleAssignment", "PatchSite", "DeleteRoleAssignment"]
    );
}

#[test]
fn role_assignment_names_are_deterministic_so_a_rerun_finds_them() {
    let mut o = compliant();
    o.assignments = Some(Vec::new());
    let n = |p: &Plan<AzureAction>| match actions(p)[0] {
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
    assert!(site_fields(actions(&p)[0]).contains(&SiteField::PublicNetworkAccess("Disabled".into())));
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
    assert_eq!(main_rules(actions(&p)[0]), Some(&vec![office(), deny]));
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
    assert_eq!(main_rules(actions(&p)[0]).map(Vec::len), Some(3));
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
    assert!(
        a.contains(&&AzureAction::PatchWebConfig {
            site: SITE.into(),
            patch: [
                WebField::MinTlsVersion("1.2".into()),
                WebField::FtpsState("Disabled".into())
            ]
            .into_iter()
            .collect()
        })
    );
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
        vec![&site_patch(
            SITE,
            [
                SiteField::VirtualNetworkSubnetId(SUBNET.into()),
                SiteField::VnetRouteAllEnabled(true)
            ]
        )]
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

/// A generated app: every setting either way, any subset of a rule pool
/// (the declared rule, an undeclared Allow, a Deny, a subnet rule) under any
/// default action, and, with a system identity, the declared and an
/// undeclared role held at the declared scope or the whole subscription.
fn any_app() -> impl Strategy<Value = ObservedApp> {
    let rule_pool = [
        office(),
        json!({"name": "vendor", "priority": 200, "action": "Allow", "ipAddress": "192.0.2.0/24"}),
        json!({"name": "bad", "priority": 50, "action": "Deny", "ipAddress": "198.51.100.7/32"}),
        json!({"name": "vnet", "priority": 300, "action": "Allow", "vnetSubnetResourceId": SUBNET}),
    ];
    let web = (
        select(vec!["1.0", "1.1", "1.2", "1.3", ""]),
        select(vec!["AllAllowed", "FtpsOnly", "Disabled"]),
        any::<[bool; 4]>(),
        select(vec![None, Some("Allow".to_string()), Some("Deny".to_string())]),
    )
        .prop_map(move |(tls, ftps, rules, default_action)| WebConfig {
            min_tls_version: tls.into(),
            ftps_state: ftps.into(),
            ip_security_restrictions: rule_pool
                .iter()
                .zip(rules)
                .filter(|(_, on)| *on)
                .map(|(r, _)| r.clone())
                .collect(),
            default_action,
            ..WebConfig::default()
        });
    let auth = (
        any::<[bool; 3]>(),
        select(vec![
            None,
            Some("AllowAnonymous".to_string()),
            Some("Return401".to_string()),
        ]),
    )
        .prop_map(
            |([enabled, require_authentication, has_identity_provider], action)| AuthSettings {
                enabled,
                require_authentication,
                unauthenticated_client_action: action,
                has_identity_provider,
            },
        );
    (
        any::<[bool; 4]>(),
        select(vec![None, Some(SUBNET.to_string()), Some(format!("{SUBNET}x"))]),
        web,
        any::<(bool, bool)>(),
        auth,
        any::<[(bool, bool); 2]>(),
    )
        .prop_map(
            |([https_only, enabled, route_all, identity], subnet, web, publishing, auth, roles)| {
                let mut o = compliant();
                o.https_only = https_only;
                o.public_network_access = if enabled { "Enabled" } else { "Disabled" }.into();
                o.vnet_route_all = route_all;
                o.virtual_network_subnet_id = subnet;
                o.system_principal = identity.then(|| "p1".to_string());
                o.web = Some(web);
                o.publishing = Some(publishing);
                o.auth = Some(auth);
                o.assignments = identity.then(|| {
                    [READER, CONTRIBUTOR]
                        .into_iter()
                        .zip(roles)
                        .filter(|(_, (held, _))| *held)
                        .map(|(r, (_, at_storage))| Assignment {
                            id: format!("{STORAGE}/providers/Microsoft.Authorization/roleAssignments/{r}"),
                            role: r.to_string(),
                            scope: if at_storage {
                                STORAGE.into()
                            } else {
                                format!("/subscriptions/{SUB}")
                            },
                        })
                        .collect()
                });
                o
            },
        )
}

/// Whether one action only narrows access or adds what the spec declares.
fn judge_action(a: &AzureAction, p: &Plan<AzureAction>, o: &ObservedApp) {
    let declared_rules = [office()];
    match a {
        AzureAction::PatchSite { patch, .. } => {
            for f in patch.fields() {
                match f {
                    SiteField::HttpsOnly(v) | SiteField::VnetRouteAllEnabled(v) => assert!(v),
                    SiteField::PublicNetworkAccess(v) => assert_eq!(v, "Disabled"),
                    SiteField::VirtualNetworkSubnetId(v) => assert_eq!(v, SUBNET),
                }
            }
        }
        AzureAction::PatchWebConfig { .. } => {
            for f in web_fields(a) {
                match f {
                    WebField::MinTlsVersion(v) => assert_eq!(v, "1.2"),
                    WebField::FtpsState(v) => assert_eq!(v, "Disabled"),
                    WebField::IpSecurityRestrictions(_) | WebField::ScmIpSecurityRestrictions(_) => {}
                }
            }
            for r in main_rules(a).into_iter().flatten() {
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

/// Generated observed states: every action the planner emits narrows access
/// or adds exactly what the spec declares.
#[test]
fn no_action_grants_beyond_the_spec() {
    sweep(3000, (any_app(), any::<bool>()), |(o, remove_unlisted)| {
        let mut s = spec_json();
        s["triggers"]["removeUnlisted"] = json!(remove_unlisted);
        let p = plan(&posture_from(s), &o);
        for a in actions(&p) {
            judge_action(a, &p, &o);
        }
        if p.findings.is_empty() {
            prop_assert!(p.actions.is_empty());
        }
        Ok(())
    });
}

// ------------------------------------------------- no false COMPLIANT (issue 10)

const FDID: &str = "0d5f0c7b-93d1-4d43-8a53-2b8e4c52e5a1";

fn fd_pinned() -> Value {
    json!({"name": "frontdoor", "priority": 200, "action": "Allow", "ipAddress": "AzureFrontDoor.Backend",
           "tag": "ServiceTag", "headers": {"x-azure-fdid": [FDID]}})
}

fn fd_plain() -> Value {
    json!({"name": "frontdoor", "priority": 200, "action": "Allow", "ipAddress": "AzureFrontDoor.Backend", "tag": "ServiceTag"})
}

/// A spec whose app stays publicly reachable (RequireAuth), so what the
/// access restrictions, slots and SCM site let in is what is judged; it
/// declares the office range and one Front Door, pinned by its id.
fn reachable_spec() -> Value {
    let mut s = spec_json();
    s["triggers"]["publicAccess"] = json!("RequireAuth");
    s["triggers"]["azure"]["accessRestrictions"] = json!([
        {"name": "office", "ipAddress": "203.0.113.0/24", "priority": 100},
        {"name": "frontdoor", "serviceTag": "AzureFrontDoor.Backend", "priority": 200, "headers": {"x-azure-fdid": [FDID]}}
    ]);
    s
}

fn reachable_compliant() -> ObservedApp {
    let mut o = compliant();
    o.public_network_access = "Enabled".into();
    if let Some(w) = o.web.as_mut() {
        w.ip_security_restrictions = vec![office(), fd_pinned()];
        w.scm_use_main = true;
    }
    o
}

fn staging(o: &ObservedApp) -> crate::providers::azure::model::ObservedSlot {
    crate::providers::azure::model::ObservedSlot {
        id: format!("{SITE}/slots/staging"),
        name: "staging".into(),
        https_only: true,
        public_network_access: o.public_network_access.clone(),
        web: o.web.clone(),
        auth: o.auth.clone(),
    }
}

fn web_patch<'a>(p: &'a Plan<AzureAction>, site: &str) -> Option<&'a AzureAction> {
    actions(p)
        .into_iter()
        .find(|a| matches!(a, AzureAction::PatchWebConfig { site: s, .. } if s == site))
}

/// ARM shows "Allow all" at the last priority only for a list whose default
/// is Allow. On a Deny list such a rule was written by someone, lets every
/// address in, and must never pass for the implicit rule.
#[test]
fn an_allow_all_on_a_deny_list_is_an_open_rule_not_the_implicit_one() {
    let mut o = reachable_compliant();
    if let Some(w) = o.web.as_mut() {
        w.default_action = Some("Deny".into());
        w.ip_security_restrictions.push(arm_implicit_rule(false));
    }
    let p = plan(&posture_from(reachable_spec()), &o);
    let open = p
        .findings
        .iter()
        .find(|f| f.check == "azure.triggers.openAccessRestriction")
        .expect("the Allow all rule is reported");
    assert_eq!(open.severity, Severity::Critical);
    let kept = web_patch(&p, SITE).and_then(main_rules).expect("the list is rewritten");
    assert!(!kept.contains(&arm_implicit_rule(false)), "{kept:?}");
    // The implicit rule of the list's own default stays out of the findings.
    if let Some(w) = o.web.as_mut() {
        w.ip_security_restrictions.pop();
        w.ip_security_restrictions.push(arm_implicit_rule(true));
    }
    assert!(plan(&posture_from(reachable_spec()), &o).findings.is_empty());
}

/// A table of open configurations (long for that reason): each is a
/// Critical or High finding, and Enforce fixes it.
#[test]
fn every_open_configuration_is_a_critical_or_high_finding_fixed_in_enforce() {
    type Case = (&'static str, fn(&mut ObservedApp), &'static str, Severity);
    let cases: [Case; 7] = [
        (
            "explicit Allow Any at priority 100",
            |o| {
                if let Some(w) = o.web.as_mut() {
                    w.ip_security_restrictions
                        .push(json!({"name": "AllowAll", "priority": 100, "action": "Allow", "ipAddress": "Any"}));
                }
            },
            "azure.triggers.openAccessRestriction",
            Severity::Critical,
        ),
        (
            "explicit 0.0.0.0/0 rule",
            |o| {
                if let Some(w) = o.web.as_mut() {
                    w.ip_security_restrictions.push(
                        json!({"name": "everyone", "priority": 300, "action": "Allow", "ipAddress": "0.0.0.0/0"}),
                    );
                }
            },
            "azure.triggers.openAccessRestriction",
            Severity::Critical,
        ),
        (
            "header-pinned rule replaced by the plain one",
            |o| {
                if let Some(w) = o.web.as_mut() {
                    w.ip_security_restrictions = vec![office(), fd_plain()];
                }
            },
            "azure.triggers.unlistedAccessRestriction",
            Severity::High,
        ),
        (
            "public deployment slot",
            |o| {
                let mut slot = staging(o);
                if let Some(w) = slot.web.as_mut() {
                    w.ip_security_restrictions = Vec::new();
                    w.default_action = None;
                }
                o.slots.push(slot);
            },
            "azure.triggers.accessRestrictionsDefault",
            Severity::High,
        ),
        (
            "open SCM site",
            |o| {
                if let Some(w) = o.web.as_mut() {
                    w.scm_use_main = false;
                    w.scm_default_action = None;
                }
            },
            "azure.triggers.scmAccessRestrictions",
            Severity::High,
        ),
        (
            "subscription-wide Contributor",
            |o| {
                o.assignments = Some(vec![Assignment {
                    id: format!("/subscriptions/{SUB}/providers/Microsoft.Authorization/roleAssignments/cccc"),
                    role: "b24988ac-6180-42a0-ab88-20f7382dd24c".into(),
                    scope: format!("/subscriptions/{SUB}"),
                }]);
            },
            "azure.identity.undeclaredRoleAssignment",
            Severity::Critical,
        ),
        (
            "a custom role that can grant roles",
            |o| {
                let custom = "0b6d4a1e-7c1f-4e0a-9d5e-1f2a3b4c5d6e";
                o.assignments = Some(vec![Assignment {
                    id: format!("{STORAGE}/providers/Microsoft.Authorization/roleAssignments/dddd"),
                    role: custom.into(),
                    scope: STORAGE.into(),
                }]);
                o.role_definitions.insert(
                    custom.into(),
                    RoleDefinition {
                        name: "Ops Delegate".into(),
                        actions: vec!["Microsoft.Authorization/roleAssignments/*".into()],
                        not_actions: Vec::new(),
                    },
                );
            },
            "azure.identity.undeclaredRoleAssignment",
            Severity::Critical,
        ),
    ];
    for (name, mutate, check, severity) in cases {
        let mut o = reachable_compliant();
        mutate(&mut o);
        let p = plan(&posture_from(reachable_spec()), &o);
        let f = p
            .findings
            .iter()
            .find(|f| f.check == check)
            .unwrap_or_else(|| panic!("{name}: no {check} in {:?}", checks(&p)));
        assert_eq!(f.severity, severity, "{name}");
        assert!(f.remediable, "{name}: {f:?}");
        assert!(!p.actions.is_empty(), "{name}: nothing would fix it");
    }
}

#[test]
fn the_open_rule_goes_even_when_unlisted_rules_are_kept_and_pins_stay() {
    let any = json!({"name": "AllowAll", "priority": 100, "action": "Allow", "ipAddress": "Any"});
    let vendor = json!({"name": "vendor", "priority": 150, "action": "Allow", "ipAddress": "192.0.2.0/24",
                        "tag": "XffProxy", "headers": {"x-forwarded-host": ["api.example.com"]}});
    let block = json!({"name": "block", "priority": 10, "action": "Deny", "ipAddress": "198.51.100.0/24",
                       "headers": {"x-azure-fdid": [FDID]}});
    let mut o = reachable_compliant();
    if let Some(w) = o.web.as_mut() {
        w.ip_security_restrictions = vec![office(), fd_pinned(), any.clone(), vendor.clone(), block.clone()];
    }
    let mut s = reachable_spec();
    s["triggers"]["removeUnlisted"] = json!(false);
    let p = plan(&posture_from(s), &o);
    match web_patch(&p, SITE).and_then(main_rules) {
        Some(rules) => {
            assert!(!rules.contains(&any), "the open rule stayed: {rules:?}");
            // Kept rules are kept whole: tag, pins and all.
            assert!(rules.contains(&vendor) && rules.contains(&block), "{rules:?}");
            assert!(
                rules
                    .iter()
                    .any(|r| r["headers"]["x-azure-fdid"][0] == FDID && r["action"] == "Allow")
            );
        }
        other => panic!("{other:?}"),
    }
    // The pinned rule declared in the spec is written with its pin.
    let mut o = reachable_compliant();
    if let Some(w) = o.web.as_mut() {
        w.ip_security_restrictions = vec![office(), fd_plain()];
    }
    let p = plan(&posture_from(reachable_spec()), &o);
    assert!(checks(&p).contains(&"azure.triggers.missingAccessRestriction"));
    assert_eq!(
        web_patch(&p, SITE).and_then(main_rules),
        Some(&vec![office(), fd_pinned()])
    );
}

#[test]
fn every_deny_access_restriction_is_kept() {
    let denies = [
        json!({"name": "bad", "priority": 50, "action": "Deny", "ipAddress": "198.51.100.7/32"}),
        json!({"name": "badtag", "priority": 60, "action": "Deny", "ipAddress": "AzureCloud", "tag": "ServiceTag"}),
        json!({"name": "badxff", "priority": 70, "action": "Deny", "ipAddress": "192.0.2.0/24", "tag": "XffProxy"}),
        json!({"name": "badsubnet", "priority": 80, "action": "Deny", "vnetSubnetResourceId": SUBNET}),
    ];
    let mut o = reachable_compliant();
    if let Some(w) = o.web.as_mut() {
        w.ip_security_restrictions = denies.to_vec();
        w.default_action = Some("Allow".into());
        w.scm_use_main = false;
        w.scm_ip_security_restrictions = denies.to_vec();
    }
    let p = plan(&posture_from(reachable_spec()), &o);
    let patch = web_patch(&p, SITE);
    match (patch.and_then(main_rules), patch.and_then(scm_rules)) {
        (Some(rules), Some(scm)) => {
            for d in &denies {
                assert!(rules.contains(d), "main lost {d}");
                assert!(scm.contains(d), "SCM lost {d}");
            }
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn correctly_scoped_configurations_stay_compliant() {
    type Case = (&'static str, fn(&mut ObservedApp));
    let cases: [Case; 8] = [
        ("as declared", |_| {}),
        ("ARM's implicit Deny all rule", |o| {
            if let Some(w) = o.web.as_mut() {
                w.ip_security_restrictions.push(json!({"name": "Deny all", "priority": 2147483647, "action": "Deny", "ipAddress": "Any", "description": "Deny all access"}));
                w.scm_ip_security_restrictions
                    .push(json!({"name": "Allow all", "priority": 2147483647, "action": "Allow", "ipAddress": "Any"}));
            }
        }),
        ("pins spelled in another case and order", |o| {
            if let Some(w) = o.web.as_mut() {
                w.ip_security_restrictions[1] = json!({"name": "fd", "priority": 200, "action": "Allow",
                    "ipAddress": "azurefrontdoor.backend", "tag": "ServiceTag", "headers": {"X-Azure-FDID": [FDID.to_uppercase()]}});
            }
        }),
        ("an undeclared Deny rule", |o| {
            if let Some(w) = o.web.as_mut() {
                w.ip_security_restrictions
                    .push(json!({"name": "block", "priority": 5, "action": "Deny", "ipAddress": "Any"}));
            }
        }),
        ("SCM with its own closed rules, no wider than declared", |o| {
            if let Some(w) = o.web.as_mut() {
                w.scm_use_main = false;
                w.scm_default_action = Some("Deny".into());
                w.scm_ip_security_restrictions = vec![
                    office(),
                    json!({"name": "ci-block", "priority": 10, "action": "Deny", "ipAddress": "192.0.2.10/32"}),
                ];
            }
        }),
        ("a slot configured like the app", |o| {
            let slot = staging(o);
            o.slots.push(slot);
        }),
        ("a slot closed to the internet, its SCM site open", |o| {
            // A closed public endpoint closes the slot's SCM site too.
            let mut slot = staging(o);
            slot.public_network_access = "Disabled".into();
            if let Some(w) = slot.web.as_mut() {
                w.scm_use_main = false;
                w.scm_default_action = Some("Allow".into());
            }
            o.slots.push(slot);
        }),
        ("a narrow custom role held as declared", |o| {
            if let Some(a) = o.assignments.as_mut() {
                a[0].role = READER.into();
            }
            o.role_definitions.insert(
                READER.into(),
                RoleDefinition {
                    name: "Storage Blob Data Reader".into(),
                    actions: vec!["Microsoft.Storage/storageAccounts/blobServices/containers/read".into()],
                    not_actions: Vec::new(),
                },
            );
        }),
    ];
    for (name, mutate) in cases {
        let mut o = reachable_compliant();
        mutate(&mut o);
        let p = plan(&posture_from(reachable_spec()), &o);
        assert!(p.findings.is_empty(), "{name}: {:?}", p.findings);
        assert!(p.actions.is_empty(), "{name}");
    }
}

#[test]
fn a_public_slot_is_closed_by_its_own_writes() {
    let mut o = compliant();
    let mut slot = staging(&o);
    slot.public_network_access = "Enabled".into();
    slot.https_only = false;
    o.slots.push(slot);
    let p = plan(&posture(), &o);
    assert_eq!(
        checks(&p),
        vec!["azure.triggers.httpsOnly", "azure.triggers.publicNetworkAccess"]
    );
    assert!(p.findings.iter().all(|f| f.field.starts_with("slots/staging/")));
    assert_eq!(
        actions(&p),
        vec![&site_patch(
            &format!("{SITE}/slots/staging"),
            [
                SiteField::PublicNetworkAccess("Disabled".into()),
                SiteField::HttpsOnly(true)
            ]
        )]
    );
}

// ------------------------------------ never widens: an independent evaluator

/// One request as App Service's front end sees it.
#[derive(Clone, Debug)]
struct Request {
    ip: [u8; 4],
    /// The X-Forwarded-For client address, for XffProxy rules.
    xff: Option<[u8; 4]>,
    /// The Azure service tag the source address belongs to, if any.
    service_tag: Option<&'static str>,
    /// The subnet it comes from through a service endpoint, if any.
    subnet: Option<&'static str>,
    headers: Vec<(&'static str, &'static str)>,
    scm: bool,
    /// None: the app; Some: that slot.
    slot: Option<&'static str>,
}

/// What reaches one site: written for this test from App Service's
/// documented behaviour, sharing nothing with the planner.
#[derive(Clone, Debug)]
struct SiteState {
    public: bool,
    rules: Vec<Value>,
    default_deny: bool,
    scm_use_main: bool,
    scm_rules: Vec<Value>,
    scm_default_deny: bool,
}

fn in_cidr(ip: [u8; 4], cidr: &str) -> bool {
    if cidr.eq_ignore_ascii_case("any") {
        return true;
    }
    let Some((net, len)) = cidr.split_once('/') else {
        return false;
    };
    let (Ok(net), Ok(len)) = (net.parse::<std::net::Ipv4Addr>(), len.parse::<u32>()) else {
        return false;
    };
    let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
    (u32::from(std::net::Ipv4Addr::from(ip)) & mask) == (u32::from(net) & mask)
}

fn rule_matches(rule: &Value, r: &Request) -> bool {
    let source = match rule["tag"].as_str().unwrap_or("Default") {
        "ServiceTag" => {
            let tags = rule["ipAddress"].as_str().unwrap_or_default();
            r.service_tag
                .is_some_and(|t| tags.split(',').any(|x| x.trim().eq_ignore_ascii_case(t)))
        }
        "XffProxy" => r
            .xff
            .is_some_and(|x| in_cidr(x, rule["ipAddress"].as_str().unwrap_or_default())),
        _ => match rule["vnetSubnetResourceId"].as_str() {
            Some(subnet) => r.subnet.is_some_and(|s| s.eq_ignore_ascii_case(subnet)),
            None => in_cidr(r.ip, rule["ipAddress"].as_str().unwrap_or_default()),
        },
    };
    let pins = rule["headers"].as_object().into_iter().flatten().all(|(h, allowed)| {
        r.headers.iter().any(|(name, value)| {
            name.eq_ignore_ascii_case(h)
                && allowed
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|a| a.as_str().is_some_and(|a| a.eq_ignore_ascii_case(value)))
        })
    });
    source && pins
}

/// First matching rule by priority decides; none: the default action.
fn list_allows(rules: &[Value], default_deny: bool, r: &Request) -> bool {
    let mut sorted: Vec<&Value> = rules.iter().collect();
    sorted.sort_by_key(|x| x["priority"].as_i64().unwrap_or(i64::MAX));
    match sorted.into_iter().find(|x| rule_matches(x, r)) {
        Some(rule) => rule["action"].as_str().is_some_and(|a| a.eq_ignore_ascii_case("Allow")),
        None => !default_deny,
    }
}

fn site_allows(s: &SiteState, r: &Request) -> bool {
    if !s.public {
        return false;
    }
    if r.scm && !s.scm_use_main {
        list_allows(&s.scm_rules, s.scm_default_deny, r)
    } else {
        list_allows(&s.rules, s.default_deny, r)
    }
}

fn site_state(public_network_access: &str, web: &WebConfig) -> SiteState {
    SiteState {
        public: public_network_access != "Disabled",
        rules: web.ip_security_restrictions.clone(),
        default_deny: web.default_action.as_deref() == Some("Deny"),
        scm_use_main: web.scm_use_main,
        scm_rules: web.scm_ip_security_restrictions.clone(),
        scm_default_deny: web.scm_default_action.as_deref() == Some("Deny"),
    }
}

/// The planned writes applied to the observed sites, as ARM would.
fn apply_to(states: &mut BTreeMap<String, SiteState>, p: &Plan<AzureAction>) {
    for a in actions(p) {
        match a {
            AzureAction::PatchSite { site, patch } => {
                for f in patch.fields() {
                    if let (SiteField::PublicNetworkAccess(v), Some(s)) = (f, states.get_mut(site)) {
                        s.public = v != "Disabled";
                    }
                }
            }
            AzureAction::PatchWebConfig { site, .. } => {
                if let Some(s) = states.get_mut(site) {
                    if let Some(rules) = main_rules(a) {
                        s.rules = rules.clone();
                        s.default_deny = true;
                    }
                    if let Some(rules) = scm_rules(a) {
                        s.scm_rules = rules.clone();
                        s.scm_default_deny = true;
                    }
                }
            }
            _ => {}
        }
    }
}

fn requests() -> Vec<Request> {
    let mut out = Vec::new();
    let ips = [[203, 0, 113, 5], [192, 0, 2, 7], [198, 51, 100, 7], [8, 8, 8, 8]];
    let tags = [None, Some("AzureFrontDoor.Backend"), Some("AzureCloud")];
    let fdids = [None, Some(FDID), Some("6a1e0c3d-0000-4000-8000-00000000beef")];
    for ip in ips {
        for tag in tags {
            for fdid in fdids {
                for scm in [false, true] {
                    for slot in [None, Some("staging")] {
                        for (xff, subnet) in [(None, None), (Some([203, 0, 113, 9]), None), (None, Some(SUBNET))] {
                            out.push(Request {
                                ip,
                                xff,
                                service_tag: tag,
                                subnet,
                                headers: fdid.map(|f| vec![("X-Azure-FDID", f)]).unwrap_or_default(),
                                scm,
                                slot,
                            });
                        }
                    }
                }
            }
        }
    }
    out
}

/// Rules an estate may hold: the declared ones, a plain Front Door rule,
/// wider Allows, an XffProxy rule, Deny rules (one header-pinned) and the
/// implicit rules.
fn rule_pool() -> Vec<Value> {
    vec![
        office(),
        fd_pinned(),
        fd_plain(),
        json!({"name": "vendor", "priority": 150, "action": "Allow", "ipAddress": "192.0.2.0/24"}),
        json!({"name": "AllowAll", "priority": 100, "action": "Allow", "ipAddress": "Any"}),
        json!({"name": "everyone", "priority": 400, "action": "Allow", "ipAddress": "0.0.0.0/0"}),
        json!({"name": "xff", "priority": 120, "action": "Allow", "ipAddress": "203.0.113.0/24", "tag": "XffProxy"}),
        json!({"name": "vnet", "priority": 300, "action": "Allow", "vnetSubnetResourceId": SUBNET}),
        json!({"name": "bad", "priority": 50, "action": "Deny", "ipAddress": "198.51.100.0/24"}),
        json!({"name": "badfd", "priority": 60, "action": "Deny", "ipAddress": "AzureFrontDoor.Backend", "tag": "ServiceTag",
               "headers": {"x-azure-fdid": ["6a1e0c3d-0000-4000-8000-00000000beef"]}}),
        json!({"name": "denyany", "priority": 90, "action": "Deny", "ipAddress": "Any"}),
        json!({"name": "Allow all", "priority": 2147483647, "action": "Allow", "ipAddress": "Any"}),
        json!({"name": "Deny all", "priority": 2147483647, "action": "Deny", "ipAddress": "Any"}),
    ]
}

/// Some rules and a default action.
fn any_rule_list() -> impl Strategy<Value = (Vec<Value>, Option<String>)> {
    let defaults = vec![None, Some("Allow".to_string()), Some("Deny".to_string())];
    (proptest::sample::subsequence(rule_pool(), 0..=5), select(defaults))
}

/// A main list near the posture (office and a Front Door rule, pinned or
/// not, maybe one more rule, mostly a Deny default), where a near miss
/// looks compliant: that is where a false COMPLIANT hides.
fn any_near_miss() -> impl Strategy<Value = (Vec<Value>, Option<String>)> {
    (
        any::<bool>(),
        proptest::option::of(select(rule_pool())),
        proptest::bool::weighted(0.75),
    )
        .prop_map(|(pinned, extra, deny)| {
            let mut rules = vec![office(), if pinned { fd_pinned() } else { fd_plain() }];
            rules.extend(extra);
            (rules, deny.then(|| "Deny".to_string()))
        })
}

/// The rule ARM shows for a list's default action (the test's own reading).
fn arm_implicit_rule(deny: bool) -> Value {
    json!({"name": if deny { "Deny all" } else { "Allow all" }, "priority": 2147483647,
           "action": if deny { "Deny" } else { "Allow" }, "ipAddress": "Any"})
}

/// A rule list as ARM shows it: the only implicit rule it shows is the one
/// of the list's own default action. A rule at that priority that
/// contradicts the default is one someone wrote (the nasty case: an "Allow
/// all" on a Deny list) and stays.
fn as_arm_shows(mut rules: Vec<Value>, default: &Option<String>, shown: bool) -> Vec<Value> {
    let implicit = arm_implicit_rule(default.as_deref() == Some("Deny"));
    rules.retain(|r| *r != implicit);
    if shown {
        rules.push(implicit);
    }
    rules
}

fn any_web() -> impl Strategy<Value = WebConfig> {
    let main = prop_oneof![any_rule_list(), any_near_miss()];
    (main, any_rule_list(), any::<[bool; 3]>()).prop_map(
        |((main, default), (scm, scm_default), [main_shown, scm_shown, scm_use_main])| WebConfig {
            min_tls_version: "1.2".into(),
            ftps_state: "Disabled".into(),
            ip_security_restrictions: as_arm_shows(main, &default, main_shown),
            default_action: default,
            scm_ip_security_restrictions: as_arm_shows(scm, &scm_default, scm_shown),
            scm_use_main,
            scm_default_action: scm_default,
        },
    )
}

fn any_public_network_access() -> impl Strategy<Value = String> {
    proptest::bool::weighted(0.25).prop_map(|off| if off { "Disabled" } else { "Enabled" }.to_string())
}

/// An app (and maybe its staging slot) and a reachability posture that
/// keeps or removes unlisted rules and maybe denies public access.
fn any_reach_case() -> impl Strategy<Value = (ObservedApp, Value)> {
    (
        (any_public_network_access(), any_web()),
        proptest::option::of((any_public_network_access(), any_web())),
        any::<bool>(),
        proptest::bool::weighted(0.25),
    )
        .prop_map(|((access, web), slot, remove_unlisted, deny_public)| {
            let mut o = reachable_compliant();
            o.public_network_access = access;
            o.web = Some(web);
            if let Some((access, web)) = slot {
                let mut slot = staging(&o);
                slot.public_network_access = access;
                slot.web = Some(web);
                o.slots.push(slot);
            }
            let mut s = reachable_spec();
            s["triggers"]["removeUnlisted"] = json!(remove_unlisted);
            if deny_public {
                s["triggers"]["publicAccess"] = json!("Deny");
            }
            (o, s)
        })
}

/// Each site's access as the evaluator models it, by site id.
fn site_states(o: &ObservedApp) -> BTreeMap<String, SiteState> {
    let app = o
        .web
        .as_ref()
        .map(|w| (o.id.clone(), site_state(&o.public_network_access, w)));
    let slots = o.slots.iter().filter_map(|slot| {
        slot.web
            .as_ref()
            .map(|w| (slot.id.clone(), site_state(&slot.public_network_access, w)))
    });
    app.into_iter().chain(slots).collect()
}

/// Nobody kept out before gets in after unless the posture declares it, and
/// a plan without findings means nobody beyond the posture gets in.
fn judge_reach(
    o: &ObservedApp,
    p: &Plan<AzureAction>,
    (before, after): (&BTreeMap<String, SiteState>, &BTreeMap<String, SiteState>),
) {
    let declared: Vec<Value> = posture_from(reachable_spec())
        .spec
        .triggers
        .and_then(|t| t.azure)
        .and_then(|a| a.access_restrictions)
        .unwrap_or_default()
        .iter()
        .map(restriction_json)
        .collect();
    let declared_allows = |r: &Request| declared.iter().any(|d| rule_matches(d, r));
    let target = |r: &Request| match r.slot {
        None => o.id.clone(),
        Some(name) => format!("{SITE}/slots/{name}"),
    };
    for r in &requests() {
        let Some(b) = before.get(&target(r)) else { continue };
        let a = &after[&target(r)];
        let (was, is) = (site_allows(b, r), site_allows(a, r));
        assert!(
            !is || was || declared_allows(r),
            "enforcing let in {r:?}\nbefore {b:?}\nafter {a:?}\nplan {:?}",
            p.actions
        );
        if p.findings.is_empty() {
            assert!(!was || declared_allows(r), "COMPLIANT, yet {r:?} gets in\nstate {b:?}");
        }
    }
}

/// Deny rules survive every rewrite, pins and all.
fn judge_denies_kept(before: &BTreeMap<String, SiteState>, after: &BTreeMap<String, SiteState>) {
    for (id, b) in before {
        let a = &after[id];
        let default = |deny: bool| Some(if deny { "Deny" } else { "Allow" });
        for d in b
            .rules
            .iter()
            .filter(|d| d["action"] == "Deny" && !implicit(d, default(b.default_deny)))
        {
            assert!(a.rules.contains(d), "main list of {id} lost {d}");
        }
        for d in b
            .scm_rules
            .iter()
            .filter(|d| d["action"] == "Deny" && !implicit(d, default(b.scm_default_deny)))
        {
            assert!(a.scm_rules.contains(d), "SCM list of {id} lost {d}");
        }
    }
}

/// Generated apps and slots with Deny rules, header-pinned and XffProxy
/// rules, explicit Allow Any, the implicit rules and open SCM sites:
/// enforcing never lets a request in that was kept out before unless the
/// posture declares it, never drops a Deny rule, and a plan without
/// findings means nothing beyond the posture can get in.
#[test]
fn enforcing_never_widens_who_can_reach_the_app_and_compliance_is_real() {
    let compliant_seen = std::cell::Cell::new(0);
    sweep(1500, any_reach_case(), |(o, s)| {
        let p = plan(&posture_from(s), &o);
        let before = site_states(&o);
        let mut after = before.clone();
        apply_to(&mut after, &p);
        judge_reach(&o, &p, (&before, &after));
        judge_denies_kept(&before, &after);
        if p.findings.is_empty() {
            compliant_seen.set(compliant_seen.get() + 1);
        }
        Ok(())
    });
    assert!(
        compliant_seen.get() > 0,
        "the generator never produced a compliant estate"
    );
}

#[test]
fn unread_diagnostic_settings_are_reported_never_passed() {
    const WS: &str = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers/Microsoft.OperationalInsights/workspaces/central";
    let mut v = spec_json();
    v["observability"] = json!({"azure": {"logAnalyticsWorkspace": WS}});
    let p = posture_from(v);
    let mut o = compliant();
    o.log_destinations = Some(Err(crate::providers::ProviderError::Auth("denied".into())));
    let out = plan(&p, &o);
    assert_eq!(out.findings.len(), 1, "{:#?}", out.findings);
    assert_eq!(out.findings[0].check, "azure.observability.logWorkspace");
    assert!(out.findings[0].observed.starts_with("CloudAuthFailed"));
    assert!(out.actions.is_empty());
    o.log_destinations = Some(Ok(vec![WS.to_ascii_uppercase()]));
    assert!(plan(&p, &o).findings.is_empty(), "ARM ids compare without case");
}
