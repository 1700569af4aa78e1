//! The Helm chart installed into the Kubernetes API stand-in with the real
//! helm, as an operator would: every object it renders is accepted and
//! stored, the controller runs as the installed ServiceAccount with nothing
//! refused, and the documented upgrade path (CRDs server-side, then
//! `helm upgrade`) works.
#![forbid(unsafe_code)]

use std::path::Path;
use std::time::{Duration, Instant};
use zerofn_e2e::{CONTROLLER_NAMESPACE, Cluster, eventually};

fn chart() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../charts/zerofn")
        .to_string_lossy()
        .into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn helm_install_of_the_chart_succeeds() {
    let cluster = Cluster::bare("helm").await;
    // kubectl's typed create (a protobuf body) for the tenant namespace.
    cluster.kubectl_ok(&["create", "namespace", "shop"]).await;

    let started = Instant::now();
    let r = cluster
        .helm(&[
            "install",
            "zerofn",
            &chart(),
            "--namespace",
            CONTROLLER_NAMESPACE,
            "--set",
            "tenantNamespaces={shop}",
        ])
        .await;
    assert!(r.ok, "helm install failed:\n{}", r.out);
    eprintln!("helm install took {:?}", started.elapsed());
    let status = cluster
        .helm(&["status", "zerofn", "--namespace", CONTROLLER_NAMESPACE])
        .await;
    assert!(status.ok && status.out.contains("STATUS: deployed"), "{}", status.out);

    // Every object the chart renders is stored.
    let ns = CONTROLLER_NAMESPACE;
    let kube = &cluster.kube;
    for (group, plural, namespace, name) in [
        ("apps", "deployments", ns, "zerofn"),
        ("", "serviceaccounts", ns, "zerofn"),
        ("", "services", ns, "zerofn-metrics"),
        ("policy", "poddisruptionbudgets", ns, "zerofn"),
        ("rbac.authorization.k8s.io", "clusterroles", "", "zerofn"),
        ("rbac.authorization.k8s.io", "clusterrolebindings", "", "zerofn"),
        ("rbac.authorization.k8s.io", "roles", ns, "zerofn-leader-election"),
        (
            "rbac.authorization.k8s.io",
            "rolebindings",
            ns,
            "zerofn-leader-election",
        ),
        ("rbac.authorization.k8s.io", "roles", "shop", "zerofn-secret-reader"),
        (
            "apiextensions.k8s.io",
            "customresourcedefinitions",
            "",
            "functionpostures.zerofn.dev",
        ),
        (
            "apiextensions.k8s.io",
            "customresourcedefinitions",
            "",
            "cloudaccounts.zerofn.dev",
        ),
        (
            "apiextensions.k8s.io",
            "customresourcedefinitions",
            "",
            "clustercloudaccounts.zerofn.dev",
        ),
    ] {
        assert!(
            kube.get(group, "v1", plural, namespace, name).is_some(),
            "{plural}/{name} in {namespace:?} was not stored"
        );
    }
    let d = kube
        .get("apps", "v1", "deployments", ns, "zerofn")
        .expect("the Deployment");
    let pod = &d["spec"]["template"]["spec"];
    assert_eq!(pod["serviceAccountName"], "zerofn");
    assert!(pod["affinity"]["podAntiAffinity"].is_object(), "{pod}");
    let pdb = kube.get("policy", "v1", "poddisruptionbudgets", ns, "zerofn").unwrap();
    assert_eq!(pdb["spec"]["maxUnavailable"], 1);
    // Helm's release record.
    let releases = kube.list("", "v1", "secrets", Some(ns));
    assert!(
        releases.iter().any(|s| s["metadata"]["labels"]["owner"] == "helm"
            && s["metadata"]["labels"]["name"] == "zerofn"
            && s["metadata"]["labels"]["status"] == "deployed"),
        "{releases:#?}"
    );

    // The controller, as the ServiceAccount helm created, with leader
    // election as the chart runs it: it syncs and holds the Lease without a
    // single refused request.
    let c = cluster.controller(
        "zerofn-0",
        &["--namespace", ns, "--leader-elect", "true", "--lease-name", "zerofn"],
    );
    let ready = eventually(Duration::from_secs(60), || async { c.ready() }).await;
    assert!(ready, "{}", c.log());
    let held = eventually(Duration::from_secs(30), || async {
        kube.get("coordination.k8s.io", "v1", "leases", ns, "zerofn")
            .is_some_and(|l| l["spec"]["holderIdentity"] == "zerofn-0")
    })
    .await;
    assert!(held, "{}", c.log());
    let forbidden = cluster.controller_forbidden();
    assert!(
        forbidden.is_empty(),
        "the installed chart lacks permissions: {forbidden:#?}"
    );

    // The README's upgrade path: CRDs server-side, then the release.
    let crds = format!("{}/crds/", chart());
    let applied = cluster
        .kubectl(&["apply", "--server-side", "--force-conflicts", "-f", &crds])
        .await;
    assert!(applied.ok, "{}", applied.out);
    let r = cluster
        .helm(&["upgrade", "zerofn", &chart(), "--namespace", ns, "--reuse-values"])
        .await;
    assert!(r.ok, "helm upgrade failed:\n{}", r.out);
    let status = cluster.helm(&["status", "zerofn", "--namespace", ns]).await;
    assert!(
        status.out.contains("REVISION: 2") && status.out.contains("STATUS: deployed"),
        "{}",
        status.out
    );
}
