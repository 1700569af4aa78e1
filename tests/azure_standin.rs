//! The Azure provider end to end through the CLI, against the ARM stand-in
//! seeded with the estate of the acceptance criteria, over HTTPS with a test
//! CA and azure_identity's client secret credential.
#![forbid(unsafe_code)]

use serde_json::Value;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use zerofn_sim::azure::{Arm, AzureWorld, SiteSeed};
use zerofn_tests::{TempDir, zerofn};

const TENANT: &str = "0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0";
const SUB: &str = "5e6f7a8b-9c0d-4e1f-8a2b-3c4d5e6f7a8b";
const CLIENT: &str = "c1c1c1c1-0000-4000-8000-000000000001";
const SECRET: &str = "s3cret-value";
const RG: &str = "rg-fn";
const CONTRIBUTOR: &str = "b24988ac-6180-42a0-ab88-20f7382dd24c";
const BLOB_READER: &str = "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1";

fn subnet() -> String {
    format!(
        "/subscriptions/{SUB}/resourceGroups/rg-net/providers/Microsoft.Network/virtualNetworks/vnet/subnets/functions"
    )
}

fn storage() -> String {
    format!("/subscriptions/{SUB}/resourceGroups/rg-data/providers/Microsoft.Storage/storageAccounts/orders")
}

/// `orders`: system identity holding Contributor on the subscription,
/// Entra ID configured but authentication not required, TLS 1.0, App
/// Insights connected. `intake`: no identity at all, no authentication
/// provider. `shared`: a user-assigned identity it shares with `sibling`.
/// All: public network access on with no restrictions, FTPS allowed, basic
/// publishing credentials on, no VNet, route-all off.
fn world() -> AzureWorld {
    let w = AzureWorld::new(TENANT, SUB)
        .client(CLIENT, SECRET)
        .resource_group("rg-data")
        .resource_group("rg-net")
        .user_assigned_identity(RG, "shared-id");
    let uai = w.uai_id(RG, "shared-id");
    let w = w
        .site(SiteSeed {
            system_assigned: true,
            min_tls_version: "1.0".into(),
            auth_enabled: true,
            require_authentication: false,
            app_settings: BTreeMap::from([(
                "APPLICATIONINSIGHTS_CONNECTION_STRING".to_string(),
                "InstrumentationKey=00000000-0000-0000-0000-000000000000".to_string(),
            )]),
            tags: BTreeMap::from([("team".to_string(), "orders".to_string())]),
            ..SiteSeed::new(RG, "orders")
        })
        .site(SiteSeed::new(RG, "intake"))
        .site(SiteSeed {
            user_assigned: vec![uai.clone()],
            ..SiteSeed::new(RG, "shared")
        })
        .site(SiteSeed {
            user_assigned: vec![uai],
            ..SiteSeed::new("rg-other", "sibling")
        })
        .page_size(2);
    let orders = w.site_principal_id(RG, "orders").expect("orders has a principal");
    w.role_assignment(&orders, "Contributor", &format!("/subscriptions/{SUB}"))
}

fn account(arm: &Arm) -> String {
    format!(
        "apiVersion: zerofn.dev/v1alpha1\nkind: CloudAccount\nmetadata: {{name: azure, namespace: shop}}\nspec:\n  azure:\n    tenantId: {TENANT}\n    subscriptionId: {SUB}\n    clientId: {CLIENT}\n    credential: ClientSecret\n    clientSecretRef: {{name: azure-credentials}}\n    resourceManagerEndpoint: {url}\n    authorityHost: {url}\n---\napiVersion: v1\nkind: Secret\nmetadata: {{name: azure-credentials, namespace: shop}}\nstringData: {{client_secret: {SECRET}}}\n",
        url = arm.url()
    )
}

fn posture(app: &str) -> String {
    format!(
        "apiVersion: zerofn.dev/v1alpha1\nkind: FunctionPosture\nmetadata: {{name: {app}, namespace: shop}}\nspec:\n  accountRef: {{name: azure}}\n  function: {{azure: {{resourceGroup: {RG}, name: {app}}}}}\n  mode: Enforce\n  identity:\n    azure:\n      roleAssignments:\n        - {{role: Storage Blob Data Reader, scope: \"{storage}\"}}\n  triggers:\n    publicAccess: Deny\n    azure:\n      accessRestrictions:\n        - {{name: office, ipAddress: 203.0.113.0/24, priority: 100}}\n  network:\n    azure: {{subnetId: \"{subnet}\"}}\n  observability: {{tracing: Active}}\n",
        storage = storage(),
        subnet = subnet()
    )
}

struct Files {
    _dir: TempDir,
    ca: String,
    account: String,
    orders: String,
    all: String,
}

fn files(arm: &Arm) -> Files {
    let dir = TempDir::new("azure");
    let ca = dir.write("ca.pem", arm.ca_pem()).to_string_lossy().into_owned();
    let account = dir.write("account.yaml", &account(arm)).to_string_lossy().into_owned();
    let orders = dir
        .write("orders.yaml", &posture("orders"))
        .to_string_lossy()
        .into_owned();
    let rest = ["intake", "shared"].map(posture).join("---\n");
    let all = dir.write("rest.yaml", &rest).to_string_lossy().into_owned();
    Files {
        _dir: dir,
        ca,
        account,
        orders,
        all,
    }
}

fn assignments_of(arm: &Arm, principal: &str) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = arm
        .role_assignments()
        .iter()
        .filter(|a| a["properties"]["principalId"].as_str() == Some(principal))
        .map(|a| {
            (
                a["properties"]["roleDefinitionId"]
                    .as_str()
                    .unwrap_or_default()
                    .rsplit('/')
                    .next()
                    .unwrap_or_default()
                    .to_string(),
                a["properties"]["scope"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    v.sort();
    v
}

fn writes(run: &zerofn_tests::Run) -> u64 {
    run.json()["cloudCalls"]
        .as_object()
        .map(|m| {
            m.iter()
                .filter(|(op, _)| zerofn::metrics::is_write(op.trim_start_matches("azure ")))
                .map(|(_, n)| n.as_u64().unwrap_or_default())
                .sum()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_enforce_plan_enforce_on_a_misconfigured_subscription() {
    let arm = Arm::start(world()).await.expect("stand-in");
    let f = files(&arm);
    let args = |cmd: &[&'static str]| {
        let mut v: Vec<String> = cmd.iter().map(|s| s.to_string()).collect();
        v.extend(["--azure-ca-file".into(), f.ca.clone(), "-o".into(), "json".into()]);
        for p in [&f.account, &f.orders, &f.all] {
            v.extend(["-f".into(), p.clone()]);
        }
        v
    };
    let run = |a: Vec<String>| async move { zerofn(&a.iter().map(String::as_str).collect::<Vec<_>>()).await };

    // plan: every misconfiguration of the seed is a finding; exit 1.
    let plan = run(args(&["plan"])).await;
    assert_eq!(plan.code, 1, "{}{}", plan.stdout, plan.stderr);
    let orders = plan.checks("shop/orders");
    for c in [
        "azure.identity.undeclaredRoleAssignment",
        "azure.identity.missingRoleAssignment",
        "azure.triggers.publicNetworkAccess",
        "azure.triggers.accessRestrictionsDefault",
        "azure.triggers.missingAccessRestriction",
        "azure.triggers.authentication",
        "azure.triggers.httpsOnly",
        "azure.triggers.minTlsVersion",
        "azure.triggers.ftpsState",
        "azure.triggers.basicPublishing.ftp",
        "azure.triggers.basicPublishing.scm",
        "azure.network.noVnetIntegration",
        "azure.network.routeAll",
    ] {
        assert!(orders.iter().any(|x| x == c), "orders lacks {c}: {orders:?}");
    }
    let report = plan.json();
    let contributor = report["postures"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|p| p["findings"].as_array().cloned().unwrap_or_default())
        .find(|f| f["observed"].as_str().is_some_and(|o| o.contains(CONTRIBUTOR)))
        .expect("Contributor on the subscription is a finding");
    assert_eq!(contributor["severity"], "Critical");
    let intake = plan.checks("shop/intake");
    for c in [
        "azure.identity.noSystemAssigned",
        "azure.triggers.authentication",
        "azure.observability.applicationInsights",
    ] {
        assert!(intake.iter().any(|x| x == c), "intake lacks {c}: {intake:?}");
    }
    assert!(
        plan.checks("shop/shared")
            .iter()
            .any(|x| x == "azure.identity.sharedUserAssigned")
    );
    assert_eq!(arm.writes(), 0, "plan wrote");

    // enforce: the remediable ones are fixed.
    let enforce = run(args(&["enforce", "--once"])).await;
    assert!(writes(&enforce) > 0, "{}{}", enforce.stdout, enforce.stderr);

    // The cloud, as ARM now holds it.
    let site = arm.site(RG, "orders").expect("orders");
    let p = &site["properties"];
    assert_eq!(p["httpsOnly"], true);
    assert_eq!(p["publicNetworkAccess"], "Disabled");
    assert_eq!(
        p["virtualNetworkSubnetId"].as_str().map(str::to_ascii_lowercase),
        Some(subnet().to_ascii_lowercase())
    );
    assert_eq!(site["tags"]["team"], "orders", "other tags kept");
    assert_eq!(site["tags"]["zerofn.dev-owner"], "default/shop/orders");
    let web = arm.site_config(RG, "orders").expect("config/web");
    let w = &web["properties"];
    assert_eq!(w["minTlsVersion"], "1.2");
    assert_eq!(w["ftpsState"], "Disabled");
    assert_eq!(w["vnetRouteAllEnabled"], true);
    assert_eq!(w["ipSecurityRestrictionsDefaultAction"], "Deny");
    assert_eq!(w["ipSecurityRestrictions"][0]["ipAddress"], "203.0.113.0/24");
    assert_eq!(arm.publishing_allowed(RG, "orders", "ftp"), Some(false));
    assert_eq!(arm.publishing_allowed(RG, "orders", "scm"), Some(false));
    let auth = arm.auth_settings(RG, "orders").expect("auth");
    assert_eq!(auth["properties"]["globalValidation"]["requireAuthentication"], true);
    assert!(
        auth["properties"]["identityProviders"]["azureActiveDirectory"]["registration"]["clientId"].is_string(),
        "the read-modify-write kept the identity provider: {auth}"
    );
    let orders_principal = arm.principal_id(RG, "orders").expect("principal");
    assert_eq!(
        assignments_of(&arm, &orders_principal),
        vec![(BLOB_READER.to_string(), storage())]
    );
    // intake got its own identity, and its role right away.
    let intake_principal = arm
        .principal_id(RG, "intake")
        .expect("intake has a system identity now");
    assert_eq!(
        assignments_of(&arm, &intake_principal),
        vec![(BLOB_READER.to_string(), storage())]
    );
    // The shared user-assigned identity stays attached to both apps.
    for (rg, app) in [(RG, "shared"), ("rg-other", "sibling")] {
        let s = arm.site(rg, app).expect(app);
        let ua = s["identity"]["userAssignedIdentities"]
            .as_object()
            .map(|m| m.len())
            .unwrap_or_default();
        assert_eq!(ua, 1, "{app}: {}", s["identity"]);
    }
    // The sibling nobody declared is untouched.
    assert!(arm.site("rg-other", "sibling").expect("sibling")["tags"]["zerofn.dev-owner"].is_null());

    // plan again: orders, whose findings were all remediable, is compliant;
    // what is left elsewhere is report-only by design.
    let orders_only = zerofn(&[
        "plan",
        "--azure-ca-file",
        &f.ca,
        "-o",
        "json",
        "-f",
        &f.account,
        "-f",
        &f.orders,
    ])
    .await;
    assert_eq!(orders_only.code, 0, "{}{}", orders_only.stdout, orders_only.stderr);
    let again = run(args(&["plan"])).await;
    let left: Vec<Value> = again.json()["postures"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|p| p["findings"].as_array().cloned().unwrap_or_default())
        .collect();
    assert!(!left.is_empty());
    for f in &left {
        assert_eq!(f["remediable"], false, "a remediable finding survived enforce: {f}");
    }
    let mut left_checks: Vec<&str> = left.iter().filter_map(|f| f["check"].as_str()).collect();
    left_checks.sort();
    left_checks.dedup();
    assert_eq!(
        left_checks,
        vec![
            "azure.identity.sharedUserAssigned",
            "azure.observability.applicationInsights",
            "azure.triggers.authentication"
        ]
    );

    // A second enforce writes nothing.
    let before = arm.writes();
    let second = run(args(&["enforce", "--once"])).await;
    assert_eq!(writes(&second), 0, "{}", second.stdout);
    assert_eq!(arm.writes(), before);
    // Every ARM call carried a bearer token, over HTTPS (the stand-in
    // speaks nothing else).
    assert!(
        arm.requests()
            .iter()
            .filter(|r| !r.path.contains("/oauth2/"))
            .all(|r| r.authorization.as_deref() == Some("Bearer"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_with_retry_after_is_waited_out() {
    let arm = Arm::start(world()).await.expect("stand-in");
    let f = files(&arm);
    arm.fail_next(
        "GET",
        "/providers/Microsoft.Web/sites",
        429,
        "TooManyRequests",
        Some(1),
        1,
    );
    let started = Instant::now();
    let plan = zerofn(&[
        "plan",
        "--azure-ca-file",
        &f.ca,
        "-o",
        "json",
        "-f",
        &f.account,
        "-f",
        &f.orders,
    ])
    .await;
    assert_eq!(plan.code, 1, "{}{}", plan.stdout, plan.stderr);
    assert!(started.elapsed() >= Duration::from_secs(1), "Retry-After not obeyed");
    let listed: Vec<u16> = arm
        .requests()
        .iter()
        .filter(|r| r.method == "GET" && r.path.ends_with("/providers/Microsoft.Web/sites"))
        .map(|r| r.status)
        .collect();
    // The throttled first page again, then the second page (page size 2).
    assert_eq!(listed, vec![429, 200, 200]);
    let calls = plan.json()["cloudCalls"].clone();
    assert_eq!(calls["azure ListSites"], 3, "every attempt is counted: {calls}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_is_never_sent_over_plain_http() {
    // An http:// endpoint is refused by the schema before any call...
    let arm = Arm::start(world()).await.expect("stand-in");
    let f = files(&arm);
    let plain = arm.url().replace("https://", "http://");
    let dir = TempDir::new("azure-http");
    let bad = dir.write(
        "account.yaml",
        &account(&arm).replace(
            &format!("resourceManagerEndpoint: {}", arm.url()),
            &format!("resourceManagerEndpoint: {plain}"),
        ),
    );
    let run = zerofn(&["plan", "-f", bad.to_str().unwrap_or_default(), "-f", &f.orders]).await;
    assert_eq!(run.code, 2, "{}{}", run.stdout, run.stderr);
    assert!(run.stderr.contains("resourceManagerEndpoint"), "{}", run.stderr);
    assert!(arm.requests().is_empty(), "a call was made");

    // ...and by the provider itself, whoever builds it.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("listener");
    listener.set_nonblocking(true).expect("nonblocking");
    let account: zerofn::api::AzureAccount = serde_json::from_value(serde_json::json!({
        "tenantId": TENANT, "subscriptionId": SUB, "clientId": CLIENT, "credential": "ClientSecret",
        "resourceManagerEndpoint": format!("http://{}", listener.local_addr().expect("addr")),
        "authorityHost": arm.url(),
    }))
    .expect("account");
    let built = zerofn::providers::azure::AzureProvider::new(
        account,
        Some(SECRET.into()),
        Default::default(),
        Default::default(),
        Duration::from_secs(1),
    );
    let Err(e) = built else {
        panic!("a provider for a plain-HTTP endpoint was built")
    };
    assert!(e.to_string().contains("plain HTTP"), "{e}");
    assert!(
        listener.accept().is_err(),
        "something connected to the plain-HTTP endpoint"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conflicting_operation_in_progress_is_retried() {
    let arm = Arm::start(world()).await.expect("stand-in");
    let f = files(&arm);
    arm.fail_next("PATCH", "/sites/orders/config/web", 409, "Conflict", None, 1);
    let enforce = zerofn(&[
        "enforce",
        "--once",
        "--azure-ca-file",
        &f.ca,
        "-o",
        "json",
        "-f",
        &f.account,
        "-f",
        &f.orders,
    ])
    .await;
    assert_eq!(enforce.code, 0, "{}{}", enforce.stdout, enforce.stderr);
    let statuses: Vec<u16> = arm
        .requests()
        .iter()
        .filter(|r| r.method == "PATCH" && r.path.ends_with("/config/web"))
        .map(|r| r.status)
        .collect();
    assert_eq!(statuses, vec![409, 200]);
    assert_eq!(
        arm.site_config(RG, "orders").expect("config")["properties"]["minTlsVersion"],
        "1.2"
    );
}

const FDID: &str = "0d5f0c7b-93d1-4d43-8a53-2b8e4c52e5a1";

/// `edge`: an explicit `{Any, Allow, 100}` rule as ARM templates write it
/// next to a Deny rule, default action unset; its SCM site with its own
/// open rules; a staging slot nobody restricted; a team tag.
fn edge_world() -> AzureWorld {
    AzureWorld::new(TENANT, SUB)
        .client(CLIENT, SECRET)
        .site(SiteSeed {
            ip_security_restrictions: vec![
                serde_json::json!({"name": "AllowAll", "priority": 100, "action": "Allow", "ipAddress": "Any"}),
                serde_json::json!({"name": "block", "priority": 50, "action": "Deny", "ipAddress": "198.51.100.0/24"}),
            ],
            scm_ip_security_restrictions: vec![serde_json::json!(
                {"name": "scmblock", "priority": 60, "action": "Deny", "ipAddress": "198.51.100.0/24"}
            )],
            tags: BTreeMap::from([("team".to_string(), "edge".to_string())]),
            ..SiteSeed::new(RG, "edge")
        })
        .slot("edge", SiteSeed::new(RG, "staging"))
}

fn edge_posture() -> String {
    format!(
        "apiVersion: zerofn.dev/v1alpha1\nkind: FunctionPosture\nmetadata: {{name: edge, namespace: shop}}\nspec:\n  accountRef: {{name: azure}}\n  function: {{azure: {{resourceGroup: {RG}, name: edge}}}}\n  mode: Enforce\n  triggers:\n    publicAccess: RequireAuth\n    removeUnlisted: false\n    azure:\n      requireAuthentication: false\n      hardenTransport: false\n      accessRestrictions:\n        - {{name: office, ipAddress: 203.0.113.0/24, priority: 100}}\n        - {{name: frontdoor, serviceTag: AzureFrontDoor.Backend, priority: 200, headers: {{x-azure-fdid: [\"{FDID}\"]}}}}\n"
    )
}

fn names_of(rules: &Value) -> Vec<String> {
    rules
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["name"].as_str().map(str::to_string))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slots_scm_and_an_explicit_allow_any_are_judged_and_fixed() {
    let arm = Arm::start(edge_world()).await.expect("stand-in");
    let dir = TempDir::new("azure-edge");
    let ca = dir.write("ca.pem", arm.ca_pem()).to_string_lossy().into_owned();
    let acct = dir.write("account.yaml", &account(&arm)).to_string_lossy().into_owned();
    let edge = dir.write("edge.yaml", &edge_posture()).to_string_lossy().into_owned();
    let run = |cmd: &'static [&'static str]| {
        let mut v: Vec<String> = cmd.iter().map(|s| s.to_string()).collect();
        v.extend(["--azure-ca-file", &ca, "-o", "json", "-f", &acct, "-f", &edge].map(String::from));
        async move { zerofn(&v.iter().map(String::as_str).collect::<Vec<_>>()).await }
    };

    let plan = run(&["plan"]).await;
    assert_eq!(plan.code, 1, "{}{}", plan.stdout, plan.stderr);
    let findings: Vec<Value> = plan.json()["postures"][0]["findings"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let find = |check: &str, field_prefix: &str| {
        findings
            .iter()
            .find(|f| f["check"] == check && f["field"].as_str().is_some_and(|x| x.starts_with(field_prefix)))
            .cloned()
            .unwrap_or_else(|| panic!("no {check} at {field_prefix}: {findings:#?}"))
    };
    let open = find("azure.triggers.openAccessRestriction", "config/web");
    assert_eq!(
        (open["severity"].as_str(), open["remediable"].as_bool()),
        (Some("Critical"), Some(true))
    );
    assert_eq!(
        find("azure.triggers.scmAccessRestrictions", "config/web")["severity"],
        "High"
    );
    assert_eq!(
        find("azure.triggers.accessRestrictionsDefault", "slots/staging/")["severity"],
        "High"
    );
    find("azure.triggers.missingAccessRestriction", "slots/staging/");
    assert_eq!(arm.writes(), 0, "plan wrote");

    let enforce = run(&["enforce", "--once"]).await;
    assert_eq!(enforce.code, 0, "{}{}", enforce.stdout, enforce.stderr);
    let web = arm.site_config(RG, "edge").expect("config/web")["properties"].clone();
    // The open rule is gone, the Deny rule stays, the pin is written.
    assert_eq!(
        names_of(&web["ipSecurityRestrictions"]),
        vec!["office", "frontdoor", "block", "Deny all"]
    );
    assert_eq!(web["ipSecurityRestrictions"][1]["headers"]["x-azure-fdid"][0], FDID);
    assert_eq!(web["ipSecurityRestrictionsDefaultAction"], "Deny");
    assert_eq!(web["scmIpSecurityRestrictionsDefaultAction"], "Deny");
    assert_eq!(
        names_of(&web["scmIpSecurityRestrictions"]),
        vec!["scmblock", "Deny all"]
    );
    let slot = arm.site_config(RG, "edge/staging").expect("slot config/web")["properties"].clone();
    assert_eq!(
        names_of(&slot["ipSecurityRestrictions"]),
        vec!["office", "frontdoor", "Deny all"]
    );
    // Ownership landed through the tags API, next to the team's tag.
    let site = arm.site(RG, "edge").expect("edge");
    assert_eq!(site["tags"]["zerofn.dev-owner"], "default/shop/edge");
    assert_eq!(site["tags"]["team"], "edge");
    let requests = arm.requests();
    assert!(requests.iter().any(|r| {
        r.method == "PATCH"
            && r.path
                .ends_with("/sites/edge/providers/Microsoft.Resources/tags/default")
    }));
    assert!(
        requests
            .iter()
            .filter(|r| r.method == "PATCH" && r.path.ends_with("/sites/edge"))
            .all(|r| !r.body.contains("\"tags\"")),
        "a site PATCH carried tags, which its contract does not take"
    );

    // Compliant now, and a second enforce writes nothing.
    let again = run(&["plan"]).await;
    assert_eq!(again.code, 0, "{}{}", again.stdout, again.stderr);
    let before = arm.writes();
    let second = run(&["enforce", "--once"]).await;
    assert_eq!(writes(&second), 0, "{}", second.stdout);
    assert_eq!(arm.writes(), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn release_removes_only_our_ownership_tag_through_the_tags_api() {
    let arm = Arm::start(edge_world()).await.expect("stand-in");
    let dir = TempDir::new("azure-release");
    let ca = dir.write("ca.pem", arm.ca_pem()).to_string_lossy().into_owned();
    let acct = dir.write("account.yaml", &account(&arm)).to_string_lossy().into_owned();
    let edge = dir.write("edge.yaml", &edge_posture()).to_string_lossy().into_owned();
    let enforce = zerofn(&["enforce", "--once", "--azure-ca-file", &ca, "-f", &acct, "-f", &edge]).await;
    assert_eq!(enforce.code, 0, "{}{}", enforce.stdout, enforce.stderr);
    assert_eq!(
        arm.site(RG, "edge").expect("edge")["tags"]["zerofn.dev-owner"],
        "default/shop/edge"
    );

    let account: zerofn::api::AzureAccount = serde_json::from_value(serde_json::json!({
        "tenantId": TENANT, "subscriptionId": SUB, "clientId": CLIENT, "credential": "ClientSecret",
        "resourceManagerEndpoint": arm.url(), "authorityHost": arm.url(),
    }))
    .expect("account");
    let tuning = zerofn::providers::Tuning {
        extra_roots: vec![arm.ca_pem().to_string()],
        ..<zerofn::providers::azure::AzureProvider as zerofn::providers::Cloud>::default_tuning()
    };
    let provider = zerofn::providers::azure::AzureProvider::new(
        account,
        Some(SECRET.into()),
        Default::default(),
        tuning,
        Duration::from_secs(1),
    )
    .expect("provider");
    let spec: zerofn::api::FunctionPostureSpec = serde_json::from_value(serde_json::json!({
        "accountRef": {"name": "azure"},
        "function": {"azure": {"resourceGroup": RG, "name": "edge"}},
    }))
    .expect("spec");
    use zerofn::providers::Cloud;
    // Another owner's posture releases nothing.
    let stranger = zerofn::providers::Posture::new("other", "shop", "edge", spec.clone());
    provider.release(&stranger).await.expect("release");
    assert_eq!(
        arm.site(RG, "edge").expect("edge")["tags"]["zerofn.dev-owner"],
        "default/shop/edge"
    );
    let ours = zerofn::providers::Posture::new("default", "shop", "edge", spec);
    provider.release(&ours).await.expect("release");
    let tags = arm.site(RG, "edge").expect("edge")["tags"].clone();
    assert!(tags["zerofn.dev-owner"].is_null(), "{tags}");
    assert_eq!(tags["team"], "edge", "other tags kept");
}

/// A PosturePolicy selecting by tag in one resource group governs the
/// tagged function apps of the subscription's site list, except one a
/// hand-written posture targets, and writes nothing in `plan`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_selects_by_tag_and_yields_to_a_hand_written_posture() {
    let tagged = |rg: &str, name: &str| SiteSeed {
        tags: BTreeMap::from([("zerofn".to_string(), "governed".to_string())]),
        ..SiteSeed::new(rg, name)
    };
    let w = AzureWorld::new(TENANT, SUB)
        .client(CLIENT, SECRET)
        .resource_group("rg-other")
        .site(tagged(RG, "a"))
        .site(tagged(RG, "b"))
        .site(tagged(RG, "orders"))
        .site(tagged("rg-other", "elsewhere"))
        .site(SiteSeed::new(RG, "untagged"))
        .page_size(2);
    let arm = Arm::start(w).await.expect("stand-in");
    let f = files(&arm);
    let dir = TempDir::new("azure-policy");
    let policy = format!(
        "apiVersion: zerofn.dev/v1alpha1\nkind: PosturePolicy\nmetadata: {{name: fleet, namespace: shop}}\nspec:\n  accountRef: {{name: azure}}\n  selector:\n    azure:\n      resourceGroups: [{RG}]\n      tags:\n        matchExpressions: [{{key: zerofn, operator: Exists}}]\n  template:\n    observability: {{tracing: Active}}\n"
    );
    let policy = dir.write("policy.yaml", &policy).to_string_lossy().into_owned();
    let run = zerofn(&[
        "plan",
        "--azure-ca-file",
        &f.ca,
        "-o",
        "json",
        "-f",
        &f.account,
        "-f",
        &f.orders,
        "-f",
        &policy,
    ])
    .await;
    let report = run.json();
    let rows = run.postures();
    assert_eq!(
        rows,
        [
            "shop/fleet → rg-fn/a".to_string(),
            "shop/fleet → rg-fn/b".to_string(),
            "shop/orders".to_string(),
        ],
        "{report:#}"
    );
    assert_eq!(report["summary"]["errors"], 0, "{report:#}");
    assert_eq!(writes(&run), 0);
}

/// `network.azure.requireEgressControl`, report-only: the integration
/// subnet's security group, with only the rules ARM adds to every group,
/// lets the app's traffic out to the internet (a finding naming the group);
/// an outbound Deny to Internet ahead of the defaults, or a route of
/// 0.0.0.0/0 to a virtual appliance, controls it. Nothing is written to the
/// network, and the subnet, group and route table are read with
/// Microsoft.Network's GETs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_integration_subnet_that_lets_the_internet_out_is_reported() {
    let net = format!("/subscriptions/{SUB}/resourceGroups/rg-net/providers/Microsoft.Network");
    let subnet = |name: &str| format!("{net}/virtualNetworks/vnet/subnets/{name}");
    let rule = |name: &str, priority: u32, access: &str, to: &str| {
        serde_json::json!({
            "name": name,
            "properties": {"protocol": "*", "sourcePortRange": "*", "destinationPortRange": "*",
                "sourceAddressPrefix": "*", "destinationAddressPrefix": to,
                "access": access, "priority": priority, "direction": "Outbound"}
        })
    };
    let defaults = serde_json::json!([
        rule("AllowVnetOutBound", 65000, "Allow", "VirtualNetwork"),
        rule("AllowInternetOutBound", 65001, "Allow", "Internet"),
        rule("DenyAllOutBound", 65500, "Deny", "*")
    ]);
    let app = |name: &str, in_subnet: &str| SiteSeed {
        virtual_network_subnet_id: Some(subnet(in_subnet)),
        ..SiteSeed::new(RG, name)
    };
    let world = AzureWorld::new(TENANT, SUB)
        .client(CLIENT, SECRET)
        .resource_group("rg-net")
        .site(app("open", "open"))
        .site(app("denied", "denied"))
        .site(app("firewalled", "firewalled"))
        .network_resource(&subnet("open"), serde_json::json!({"addressPrefix": "10.0.1.0/24", "networkSecurityGroup": {"id": format!("{net}/networkSecurityGroups/nsg-open")}}))
        .network_resource(&format!("{net}/networkSecurityGroups/nsg-open"), serde_json::json!({"securityRules": [], "defaultSecurityRules": defaults}))
        .network_resource(&subnet("denied"), serde_json::json!({"addressPrefix": "10.0.2.0/24", "networkSecurityGroup": {"id": format!("{net}/networkSecurityGroups/nsg-denied")}}))
        .network_resource(&format!("{net}/networkSecurityGroups/nsg-denied"), serde_json::json!({"securityRules": [rule("deny-internet", 4000, "Deny", "Internet")], "defaultSecurityRules": defaults}))
        .network_resource(&subnet("firewalled"), serde_json::json!({"addressPrefix": "10.0.3.0/24", "routeTable": {"id": format!("{net}/routeTables/to-firewall")}}))
        .network_resource(&format!("{net}/routeTables/to-firewall"), serde_json::json!({"routes": [{"name": "default", "properties": {"addressPrefix": "0.0.0.0/0", "nextHopType": "VirtualAppliance", "nextHopIpAddress": "10.0.0.4"}}]}));
    let arm = Arm::start(world).await.expect("stand-in");
    let dir = TempDir::new("azure-egress");
    let ca = dir.write("ca.pem", arm.ca_pem()).to_string_lossy().into_owned();
    let acct = dir.write("account.yaml", &account(&arm)).to_string_lossy().into_owned();
    let postures: Vec<String> = ["open", "denied", "firewalled"]
        .iter()
        .map(|a| {
            format!(
                "apiVersion: zerofn.dev/v1alpha1\nkind: FunctionPosture\nmetadata: {{name: {a}, namespace: shop}}\nspec:\n  accountRef: {{name: azure}}\n  function: {{azure: {{resourceGroup: {RG}, name: {a}}}}}\n  mode: Audit\n  network:\n    azure: {{subnetId: \"{}\", routeAllEgress: false, requireEgressControl: true}}\n",
                subnet(a)
            )
        })
        .collect();
    let all = dir
        .write("postures.yaml", &postures.join("---\n"))
        .to_string_lossy()
        .into_owned();
    let run = zerofn(&["plan", "--azure-ca-file", &ca, "-f", &acct, "-f", &all, "-o", "json"]).await;
    let report = run.json();
    assert_eq!(
        run.checks("shop/open"),
        vec!["azure.network.egressUncontrolled"],
        "{report:#}"
    );
    assert!(run.checks("shop/denied").is_empty(), "{report:#}");
    assert!(run.checks("shop/firewalled").is_empty(), "{report:#}");
    let observed = report["postures"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["posture"] == "shop/open")
        .map(|p| p["findings"][0]["observed"].clone())
        .unwrap_or_default();
    assert!(observed.as_str().unwrap_or_default().contains("nsg-open"), "{observed}");
    assert!(
        arm.requests()
            .iter()
            .all(|r| r.method == "GET" || !r.path.to_ascii_lowercase().contains("microsoft.network")),
        "the network is never written"
    );
}

/// `observability.azure.logAnalyticsWorkspace`: an app whose diagnostic
/// setting sends FunctionAppLogs elsewhere is reported (report-only, nothing
/// written); one sending them to the declared workspace passes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn function_app_logs_reach_the_declared_workspace_or_are_reported() {
    let workspace = format!(
        "/subscriptions/{SUB}/resourceGroups/rg-data/providers/Microsoft.OperationalInsights/workspaces/central"
    );
    let other =
        format!("/subscriptions/{SUB}/resourceGroups/rg-data/providers/Microsoft.OperationalInsights/workspaces/team");
    let w = world()
        .diagnostic_setting(RG, "intake", "to-team", &other, "FunctionAppLogs")
        .diagnostic_setting(RG, "shared", "to-central", &workspace, "allLogs");
    let arm = Arm::start(w).await.expect("stand-in");
    let dir = TempDir::new("azure-logs");
    let ca = dir.write("ca.pem", arm.ca_pem()).to_string_lossy().into_owned();
    let mut yaml = account(&arm);
    for app in ["intake", "shared"] {
        yaml.push_str(&format!(
            "---\napiVersion: zerofn.dev/v1alpha1\nkind: FunctionPosture\nmetadata: {{name: {app}, namespace: shop}}\nspec:\n  accountRef: {{name: azure}}\n  function: {{azure: {{resourceGroup: {RG}, name: {app}}}}}\n  observability:\n    azure: {{logAnalyticsWorkspace: \"{workspace}\"}}\n"
        ));
    }
    let file = dir.write("logs.yaml", &yaml).to_string_lossy().into_owned();
    let run = zerofn(&["plan", "-f", &file, "--azure-ca-file", &ca, "-o", "json"]).await;
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert_eq!(run.checks("shop/intake"), vec!["azure.observability.logWorkspace"]);
    assert!(run.checks("shop/shared").is_empty(), "{}", run.stdout);
    let report = run.json();
    let intake = report["postures"]
        .as_array()
        .and_then(|a| a.iter().find(|r| r["posture"] == "shop/intake"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(intake["findings"][0]["observed"], other.as_str());
    assert_eq!(intake["findings"][0]["remediable"], false);
}
