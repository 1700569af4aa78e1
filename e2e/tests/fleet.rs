//! Fleet policies through the controller: a PosturePolicy keeps one child
//! FunctionPosture per function it selects, as functions start and stop
//! matching, yields to a hand-written posture, and takes every child (and
//! every ownership marker) with it when it is deleted. One scenario per
//! cloud: AWS on LocalStack, GCP and Azure on their stand-ins.
#![forbid(unsafe_code)]

use serde_json::Value;
use std::time::{Duration, Instant};
use zerofn_e2e::readme::{same_table, sample};
use zerofn_e2e::{Cluster, Controller, World, eventually};
use zerofn_sim::azure::{Arm, AzureWorld, SiteSeed};
use zerofn_sim::gcp::{FunctionSeed, GcpStandIn, GcpWorld};

/// One resync of the policy, one inventory refresh, and room for a busy
/// machine.
const REFRESH: Duration = Duration::from_secs(30);
const SETTLE: Duration = Duration::from_secs(120);

/// The names of the functions the policy's children target, sorted.
fn governed(cluster: &Cluster, policy: &str, name: impl Fn(&Value) -> String) -> Vec<String> {
    let mut v: Vec<String> = cluster
        .children("shop", policy)
        .iter()
        .map(|(_, f, _)| name(f))
        .collect();
    v.sort();
    v
}

fn all_ready(cluster: &Cluster, policy: &str, n: usize) -> bool {
    let c = cluster.children("shop", policy);
    c.len() == n && c.iter().all(|(_, _, ready)| ready == "True")
}

async fn wait(what: &str, timeout: Duration, c: &Controller, cluster: &Cluster, check: impl Fn() -> bool) {
    let ok = eventually(timeout, || {
        let r = check();
        async move { r }
    })
    .await;
    assert!(
        ok,
        "{what} within {timeout:?}\npolicy status: {}\nchildren: {:?}\ncontroller log:\n{}",
        cluster
            .policy("shop", "fleet")
            .map(|p| p["status"].clone())
            .unwrap_or_default(),
        cluster.children("shop", "fleet"),
        tail(&c.log())
    );
}

fn tail(s: &str) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

/// The policy's Ready condition and counts once settled.
fn policy_status(cluster: &Cluster) -> Value {
    cluster
        .policy("shop", "fleet")
        .map(|p| p["status"].clone())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_aws_policy_follows_its_tag_yields_to_a_posture_and_leaves_no_marker() {
    let world = World::start("fleet").await;
    let p = world.fleet.prefix.clone();
    let role = world.aws.create_role(&format!("{p}extra-role")).await.expect("role");
    let (extra1, extra2) = (format!("{p}extra-1"), format!("{p}extra-2"));
    for f in [&extra1, &extra2] {
        world.aws.create_function(f, &role).await.expect("function");
    }
    let arn = |f: &str| {
        format!(
            "arn:aws:lambda:{}:{}:function:{f}",
            zerofn_sim::localstack::REGION,
            zerofn_sim::localstack::ACCOUNT_ID
        )
    };
    let tag = |f: String| {
        let lambda = world.aws.lambda.clone();
        let (arn, p) = (arn(&f), p.clone());
        async move {
            lambda
                .tag_resource()
                .resource(arn)
                .tags("zerofn-fleet", p)
                .send()
                .await
                .expect("tag")
        }
    };
    // 3 of the 5 functions carry the tag.
    for f in [&world.fleet.orders, &world.fleet.reports, &extra1] {
        tag(f.clone()).await;
    }
    world.apply_file(&world.manifests.account).await;
    world
        .apply(&format!(
            r#"apiVersion: zerofn.dev/v1alpha1
kind: PosturePolicy
metadata: {{name: fleet, namespace: shop}}
spec:
  accountRef: {{name: stand-in}}
  selector:
    aws:
      tags:
        matchTags: {{zerofn-fleet: "{p}"}}
  template:
    mode: Enforce
    observability: {{tracing: Active}}
"#
        ))
        .await;
    let c = world.single_controller(&[]);
    let name = |f: &Value| f["aws"]["name"].as_str().unwrap_or_default().to_string();
    let mut three = vec![world.fleet.orders.clone(), world.fleet.reports.clone(), extra1.clone()];
    three.sort();
    wait("3 Ready children", SETTLE, &c, &world, || {
        governed(&world, "fleet", name) == three && all_ready(&world, "fleet", 3)
    })
    .await;
    for f in &three {
        assert!(world.tags(f).await.contains_key("zerofn.dev/owner"), "{f}");
        assert_eq!(
            world
                .function(f)
                .await
                .tracing_config()
                .and_then(|t| t.mode())
                .map(|m| m.as_str().to_string()),
            Some("Active".into()),
            "{f}"
        );
    }
    // Untagged functions are untouched.
    assert!(!world.tags(&extra2).await.contains_key("zerofn.dev/owner"));
    wait("the policy Ready with 3 compliant", REFRESH, &c, &world, || {
        let s = policy_status(&world);
        s["matched"] == 3 && s["compliant"] == 3 && s["conditions"][0]["status"] == "True"
    })
    .await;
    // kubectl shows what the README shows.
    let table = world.kubectl_ok(&["get", "pp", "-n", "shop"]).await;
    let readme = zerofn_e2e::readme::readme();
    if let Err(e) = same_table(&sample(&readme, "kubectl get pp -n shop"), &table) {
        panic!("{e}");
    }

    // A fourth function is tagged: governed within one inventory refresh.
    let tagged = Instant::now();
    tag(extra2.clone()).await;
    wait("a child for the newly tagged function", REFRESH, &c, &world, || {
        governed(&world, "fleet", name).contains(&extra2)
    })
    .await;
    let took = tagged.elapsed();

    // One is untagged: its child goes, and with it the ownership marker.
    world
        .aws
        .lambda
        .untag_resource()
        .resource(arn(&extra1))
        .tag_keys("zerofn-fleet")
        .send()
        .await
        .expect("untag");
    wait("the untagged function's child deleted", REFRESH, &c, &world, || {
        !governed(&world, "fleet", name).contains(&extra1)
    })
    .await;
    let released = eventually(REFRESH, || async {
        !world.tags(&extra1).await.contains_key("zerofn.dev/owner")
    })
    .await;
    assert!(released, "the untagged function still carries the marker");

    // A hand-written posture supersedes the policy for one function.
    world
        .apply(&format!(
            r#"apiVersion: zerofn.dev/v1alpha1
kind: FunctionPosture
metadata: {{name: reports-by-hand, namespace: shop}}
spec:
  accountRef: {{name: stand-in}}
  function: {{aws: {{name: {}}}}}
  mode: Audit
  observability: {{tracing: Active}}
"#,
            world.fleet.reports
        ))
        .await;
    wait(
        "the policy yields the hand-written function",
        REFRESH,
        &c,
        &world,
        || {
            let s = policy_status(&world);
            !governed(&world, "fleet", name).contains(&world.fleet.reports)
                && s["superseded"] == 1
                && s["supersededBy"][0]["governedBy"] == "FunctionPosture shop/reports-by-hand"
        },
    )
    .await;
    wait("the hand-written posture Ready", SETTLE, &c, &world, || {
        world.condition("shop", "reports-by-hand", "Ready").map(|(s, _)| s) == Some("True".into())
    })
    .await;
    // The account says how much of it is governed.
    wait("the account counts its governed functions", REFRESH, &c, &world, || {
        let a = world
            .kube
            .get("zerofn.dev", "v1alpha1", "cloudaccounts", "shop", "stand-in");
        a.is_some_and(|a| {
            let f = &a["status"]["functions"];
            f["governed"].as_u64() == Some(3)
                && f["total"].as_u64() >= Some(5)
                && f["ungoverned"].as_u64() == f["total"].as_u64().map(|t| t - 3)
        })
    })
    .await;

    // Deleting the policy removes every child and releases every marker.
    let out = world
        .kubectl_ok(&["delete", "pp", "fleet", "-n", "shop", "--timeout=90s"])
        .await;
    assert!(out.contains("deleted"), "{out}");
    assert!(world.children("shop", "fleet").is_empty());
    for f in [&world.fleet.orders, &extra1, &extra2] {
        assert!(
            !world.tags(f).await.contains_key("zerofn.dev/owner"),
            "{f} keeps a marker"
        );
    }
    assert!(
        world.posture("shop", "reports-by-hand").is_some(),
        "the hand-written posture stays"
    );
    let forbidden = world.controller_forbidden();
    assert!(forbidden.is_empty(), "the chart lacks permissions: {forbidden:#?}");
    eprintln!("a newly tagged function was governed {took:?} after it was tagged");
}

use zerofn_e2e::{AZURE_CLIENT, AZURE_CLIENT_SECRET, AZURE_SUBSCRIPTION, AZURE_TENANT};
const PROJECT: &str = "shop-prod";
const LOCATION: &str = "europe-west1";
const RG: &str = "rg-fn";
const FUNCTIONS: [&str; 5] = ["orders", "billing", "reports", "extra-1", "extra-2"];
const TAGGED: [&str; 3] = ["orders", "reports", "extra-1"];

/// The same scenario as on AWS, run once per cloud: `tag` sets or removes
/// the selecting tag (label) of a function, `marked` says whether a
/// function carries a zerofn ownership marker.
struct Scenario<'a> {
    cluster: &'a Cluster,
    controller: &'a Controller,
    /// The target block of a hand-written posture for `reports`.
    reports_target: String,
    account: &'a str,
    function_name: fn(&Value) -> String,
    tag: &'a dyn Fn(&str, bool),
    marked: &'a dyn Fn(&str) -> bool,
}

impl Scenario<'_> {
    async fn run(&self) {
        let (cluster, c) = (self.cluster, self.controller);
        let name = self.function_name;
        let mut three: Vec<String> = TAGGED.iter().map(|s| s.to_string()).collect();
        three.sort();
        wait("3 Ready children", SETTLE, c, cluster, || {
            governed(cluster, "fleet", name) == three && all_ready(cluster, "fleet", 3)
        })
        .await;
        for f in TAGGED {
            assert!((self.marked)(f), "{f} carries no ownership marker");
        }
        assert!(!(self.marked)("billing") && !(self.marked)("extra-2"));

        // A change of the policy reaches every child.
        cluster
            .kubectl_ok(&[
                "patch",
                "pp",
                "fleet",
                "-n",
                "shop",
                "--type",
                "merge",
                "-p",
                r#"{"spec":{"template":{"resyncInterval":"5s"}}}"#,
            ])
            .await;
        wait("every child updated", REFRESH, c, cluster, || {
            let all = cluster
                .kube
                .list("zerofn.dev", "v1alpha1", "functionpostures", Some("shop"));
            let children: Vec<&Value> = all
                .iter()
                .filter(|p| p["metadata"]["labels"]["zerofn.dev/policy"] == "fleet")
                .collect();
            children.len() == 3 && children.iter().all(|p| p["spec"]["resyncInterval"] == "5s")
        })
        .await;

        (self.tag)("extra-2", true);
        wait("a child for the newly tagged function", REFRESH, c, cluster, || {
            governed(cluster, "fleet", name).contains(&"extra-2".to_string())
        })
        .await;

        (self.tag)("extra-1", false);
        wait(
            "the untagged function's child deleted, its marker released",
            REFRESH,
            c,
            cluster,
            || !governed(cluster, "fleet", name).contains(&"extra-1".to_string()) && !(self.marked)("extra-1"),
        )
        .await;

        cluster
            .apply(&format!(
                "apiVersion: zerofn.dev/v1alpha1\nkind: FunctionPosture\nmetadata: {{name: reports-by-hand, namespace: shop}}\nspec:\n  accountRef: {{name: {}}}\n  function: {}\n  mode: Audit\n",
                self.account, self.reports_target
            ))
            .await;
        wait(
            "the policy yields the hand-written function",
            REFRESH,
            c,
            cluster,
            || {
                let s = policy_status(cluster);
                !governed(cluster, "fleet", name).contains(&"reports".to_string())
                    && s["superseded"] == 1
                    && s["supersededBy"][0]["governedBy"] == "FunctionPosture shop/reports-by-hand"
            },
        )
        .await;
        wait("the account counts what is governed", REFRESH, c, cluster, || {
            let a = cluster
                .kube
                .get("zerofn.dev", "v1alpha1", "cloudaccounts", "shop", self.account);
            a.is_some_and(|a| {
                a["status"]["functions"] == serde_json::json!({"total": 5, "governed": 3, "ungoverned": 2})
            })
        })
        .await;

        let out = cluster
            .kubectl_ok(&["delete", "pp", "fleet", "-n", "shop", "--timeout=90s"])
            .await;
        assert!(out.contains("deleted"), "{out}");
        assert!(cluster.children("shop", "fleet").is_empty());
        for f in FUNCTIONS {
            assert!(!(self.marked)(f), "{f} keeps a marker");
        }
    }
}

fn policy_yaml(account: &str, selector: &str, template: &str) -> String {
    format!(
        "apiVersion: zerofn.dev/v1alpha1\nkind: PosturePolicy\nmetadata: {{name: fleet, namespace: shop}}\nspec:\n  accountRef: {{name: {account}}}\n  selector: {selector}\n  template: {template}\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_gcp_policy_follows_its_label_yields_to_a_posture_and_leaves_no_marker() {
    let cluster = Cluster::start("fleet-gcp").await;
    let mut world = GcpWorld::new().project(PROJECT, 424242424242);
    for f in FUNCTIONS {
        let mut seed = FunctionSeed::new(PROJECT, LOCATION, f).ingress("ALLOW_ALL");
        if TAGGED.contains(&f) {
            seed = seed.label("zerofn-fleet", "yes");
        }
        world = world.function(seed);
    }
    let gcp = GcpStandIn::start(world).await.expect("GCP stand-in");
    cluster.apply(&zerofn_e2e::gcp_account(&gcp.url())).await;
    cluster
        .apply(&policy_yaml(
            "gcp",
            "{gcp: {labels: {matchTags: {zerofn-fleet: \"yes\"}}}}",
            "{mode: Enforce, triggers: {publicAccess: Deny}}",
        ))
        .await;
    let c = cluster.single_controller(&[]);
    let tag = |f: &str, on: bool| {
        assert!(gcp.set_label(PROJECT, LOCATION, f, "zerofn-fleet", on.then_some("yes")));
    };
    let marked = |f: &str| {
        gcp.function(PROJECT, LOCATION, f)
            .is_some_and(|v| v["labels"].get("zerofn_dev-owner").is_some())
    };
    Scenario {
        cluster: &cluster,
        controller: &c,
        reports_target: format!("{{gcp: {{location: {LOCATION}, name: reports}}}}"),
        account: "gcp",
        function_name: |f| f["gcp"]["name"].as_str().unwrap_or_default().to_string(),
        tag: &tag,
        marked: &marked,
    }
    .run()
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_azure_policy_follows_its_tag_yields_to_a_posture_and_leaves_no_marker() {
    let cluster = Cluster::start("fleet-azure").await;
    let mut world = AzureWorld::new(AZURE_TENANT, AZURE_SUBSCRIPTION).client(AZURE_CLIENT, AZURE_CLIENT_SECRET);
    for f in FUNCTIONS {
        let mut seed = SiteSeed {
            min_tls_version: "1.0".into(),
            ..SiteSeed::new(RG, f)
        };
        if TAGGED.contains(&f) {
            seed.tags.insert("zerofn-fleet".into(), "yes".into());
        }
        world = world.site(seed);
    }
    let arm = Arm::start(world).await.expect("ARM stand-in");
    let ca = cluster.dir.path().join("azure-ca.pem");
    std::fs::write(&ca, arm.ca_pem()).expect("CA file");
    cluster.apply(&zerofn_e2e::azure_account(&arm.url(), "")).await;
    cluster
        .apply(&policy_yaml(
            "azure",
            "{azure: {tags: {matchTags: {zerofn-fleet: \"yes\"}}}}",
            "{mode: Enforce, triggers: {publicAccess: RequireAuth, azure: {requireAuthentication: false}}}",
        ))
        .await;
    let ca_arg = ca.to_string_lossy().into_owned();
    let c = cluster.single_controller(&["--azure-ca-file", &ca_arg]);
    let tag = |f: &str, on: bool| {
        assert!(arm.set_tag(RG, f, "zerofn-fleet", on.then_some("yes")));
    };
    let marked = |f: &str| {
        arm.site(RG, f)
            .is_some_and(|s| s["tags"].get("zerofn.dev-owner").is_some())
    };
    Scenario {
        cluster: &cluster,
        controller: &c,
        reports_target: format!("{{azure: {{resourceGroup: {RG}, name: reports}}}}"),
        account: "azure",
        function_name: |f| f["azure"]["name"].as_str().unwrap_or_default().to_string(),
        tag: &tag,
        marked: &marked,
    }
    .run()
    .await;
}
