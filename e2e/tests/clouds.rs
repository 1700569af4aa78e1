//! The controller drives GCP and Azure the same way it drives AWS: one
//! `zerofn run` against the Kubernetes stand-in, the GCP stand-in and the ARM
//! stand-in (HTTPS, trusted through --azure-ca-file), driven with kubectl.
#![forbid(unsafe_code)]

use std::time::Duration;
use zerofn_e2e::Cluster;
use zerofn_sim::azure::{Arm, AzureWorld, SiteSeed};
use zerofn_sim::gcp::{FunctionSeed, GcpStandIn, GcpWorld};

use zerofn_e2e::{AZURE_CLIENT as CLIENT, AZURE_SUBSCRIPTION as SUB, AZURE_TENANT as TENANT};
const PROJECT: &str = "shop-prod";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn gcp_and_azure_postures_become_ready_through_the_controller() {
    let cluster = Cluster::start("clouds").await;
    let gcp = GcpStandIn::start(
        GcpWorld::new()
            .project(PROJECT, 424242424242)
            .function(FunctionSeed::new(PROJECT, "europe-west1", "orders").ingress("ALLOW_ALL")),
    )
    .await
    .expect("GCP stand-in");
    let arm = Arm::start(AzureWorld::new(TENANT, SUB).client(CLIENT, "s3cret").site(SiteSeed {
        min_tls_version: "1.0".into(),
        ..SiteSeed::new("rg-fn", "orders")
    }))
    .await
    .expect("ARM stand-in");
    let ca = cluster.dir.path().join("azure-ca.pem");
    std::fs::write(&ca, arm.ca_pem()).expect("CA file");

    cluster
        .apply(&format!(
            r#"apiVersion: zerofn.dev/v1alpha1
kind: CloudAccount
metadata: {{name: gcp, namespace: shop}}
spec:
  gcp:
    projectId: {PROJECT}
    projectNumber: "424242424242"
    anonymous: true
    endpoints: {{functions: "{g}", run: "{g}", iam: "{g}", resourceManager: "{g}"}}
---
apiVersion: zerofn.dev/v1alpha1
kind: CloudAccount
metadata: {{name: azure, namespace: shop}}
spec:
  azure:
    tenantId: {TENANT}
    subscriptionId: {SUB}
    clientId: {CLIENT}
    credential: ClientSecret
    clientSecretRef: {{name: azure-credentials}}
    resourceManagerEndpoint: {a}
    authorityHost: {a}
---
apiVersion: v1
kind: Secret
metadata: {{name: azure-credentials, namespace: shop}}
stringData: {{client_secret: s3cret}}
---
apiVersion: zerofn.dev/v1alpha1
kind: FunctionPosture
metadata: {{name: orders-gcp, namespace: shop}}
spec:
  accountRef: {{name: gcp}}
  function: {{gcp: {{location: europe-west1, name: orders}}}}
  mode: Enforce
  triggers: {{publicAccess: Deny}}
---
apiVersion: zerofn.dev/v1alpha1
kind: FunctionPosture
metadata: {{name: orders-azure, namespace: shop}}
spec:
  accountRef: {{name: azure}}
  function: {{azure: {{resourceGroup: rg-fn, name: orders}}}}
  mode: Enforce
  triggers:
    publicAccess: RequireAuth
    azure: {{requireAuthentication: false}}
"#,
            g = gcp.url(),
            a = arm.url()
        ))
        .await;

    let ca_arg = ca.to_string_lossy().into_owned();
    let c = cluster.single_controller(&["--azure-ca-file", &ca_arg]);
    for name in ["orders-gcp", "orders-azure"] {
        let r = cluster.wait_for("shop", name, "Ready", Duration::from_secs(90)).await;
        assert!(
            r.ok,
            "{name}: {}\n{:?}\n{}",
            r.out,
            cluster.posture("shop", name).map(|p| p["status"].clone()),
            c.log()
        );
    }
    // The clouds hold what the postures declare.
    let f = gcp.function(PROJECT, "europe-west1", "orders").expect("function");
    assert_eq!(f["serviceConfig"]["ingressSettings"], "ALLOW_INTERNAL_ONLY", "{f}");
    let site = arm.site("rg-fn", "orders").expect("site");
    assert_eq!(site["properties"]["httpsOnly"], true);
    assert_eq!(site["tags"]["zerofn.dev-owner"], "default/shop/orders-azure");
    let web = arm.site_config("rg-fn", "orders").expect("config/web");
    assert_eq!(web["properties"]["minTlsVersion"], "1.2");
    // kubectl shows both clouds side by side.
    let table = cluster.kubectl_ok(&["get", "fp", "-n", "shop"]).await;
    assert!(table.contains("gcp") && table.contains("azure"), "{table}");
    let accounts = cluster.kubectl_ok(&["get", "cloudaccounts", "-n", "shop"]).await;
    assert!(accounts.contains(SUB) && accounts.contains(PROJECT), "{accounts}");
    let calls = c.cloud_calls();
    assert!(calls.iter().any(|(op, _, _)| op == "ListSites"), "{calls:?}");
}
