//! Drift in seconds: a change made behind zerofn's back, with the change
//! event its cloud would deliver, is reverted within seconds of the event
//! landing while the resync is 10 minutes away. The posture shows
//! DriftDetected, then an Enforced event naming the exact change, and
//! Ready goes False then True. zerofn's own writes, whose events flow back
//! through the same feed, trigger nothing. A feed that cannot be read turns
//! the account's EventsReady False, and the resync still reverts drift.
#![forbid(unsafe_code)]

use serde_json::Value;
use std::time::{Duration, Instant};
use zerofn_e2e::{Cluster, Controller, World};

/// The controller's resync: far beyond every wait below, so only an event
/// can explain a revert.
const SLOW_RESYNC: &[&str] = &[
    "--namespace",
    "zerofn-system",
    "--resync-interval",
    "10m",
    "--inventory-ttl",
    "1s",
    "--leader-elect",
    "false",
];
const REPETITIONS: usize = 10;
/// The acceptance: reverted within 10 s of the event landing (p95).
const WITHIN: Duration = Duration::from_secs(10);
const SETTLE: Duration = Duration::from_secs(120);
/// How long zerofn's own events flow while nothing may be written.
const QUIET: Duration = Duration::from_secs(120);

fn tail(s: &str) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(60)..].join("\n")
}

/// The 95th percentile (nearest rank) of `samples`.
fn p95(samples: &[Duration]) -> Duration {
    let mut s = samples.to_vec();
    s.sort();
    let rank = (s.len() * 95).div_ceil(100).max(1);
    s[rank - 1]
}

/// Events of `ns` for `object`, oldest first: (reason, action, message).
async fn events_of(cluster: &Cluster, ns: &str, object: &str) -> Vec<(String, String, String)> {
    let json = cluster.kubectl_ok(&["get", "events", "-n", ns, "-o", "json"]).await;
    let v: Value = serde_json::from_str(&json).unwrap_or_default();
    let mut items: Vec<&Value> = v["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["involvedObject"]["name"] == object || e["regarding"]["name"] == object)
        .collect();
    items.sort_by_key(|e| {
        e["eventTime"]
            .as_str()
            .or(e["firstTimestamp"].as_str())
            .unwrap_or_default()
            .to_string()
    });
    items
        .iter()
        .map(|e| {
            let s = |k: &str| e[k].as_str().unwrap_or_default().to_string();
            (
                s("reason"),
                s("action"),
                if e["note"].is_string() { s("note") } else { s("message") },
            )
        })
        .collect()
}

/// The posture's Ready condition is True.
fn ready(cluster: &Cluster, name: &str) -> bool {
    cluster
        .condition("shop", name, "Ready")
        .is_some_and(|(s, _)| s == "True")
}

async fn account_status(cluster: &Cluster, ns: &str, name: &str) -> Value {
    let json = cluster
        .kubectl_ok(&["get", "cloudaccount", "-n", ns, name, "-o", "json"])
        .await;
    serde_json::from_str::<Value>(&json)
        .map(|v| v["status"].clone())
        .unwrap_or_default()
}

fn events_ready(status: &Value) -> (String, String) {
    status["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["type"] == "EventsReady")
        .map(|c| {
            (
                c["status"].as_str().unwrap_or_default().to_string(),
                c["reason"].as_str().unwrap_or_default().to_string(),
            )
        })
        .unwrap_or_default()
}

/// Poll `check` every 250 ms until it holds; fail with the controller's
/// log after `timeout`.
async fn wait(what: &str, timeout: Duration, c: &Controller, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !check().await {
        assert!(
            Instant::now() < deadline,
            "{what} within {timeout:?}\ncontroller log:\n{}",
            tail(&c.log())
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The account of the fleet's manifests, reading `queue`'s events.
fn account_with_queue(world: &World, queue_url: &str) -> String {
    let account = std::fs::read_to_string(&world.manifests.account).expect("account manifest");
    account.replacen(
        "    maxRequestsPerSecond: 200\n",
        &format!("    maxRequestsPerSecond: 200\n    events: {{queueUrl: \"{queue_url}\"}}\n"),
        1,
    )
}

fn reports_posture(world: &World) -> String {
    format!(
        "apiVersion: zerofn.dev/v1alpha1\nkind: FunctionPosture\nmetadata: {{name: reports, namespace: shop}}\n\
         spec:\n  accountRef: {{name: stand-in}}\n  function: {{aws: {{name: {}}}}}\n  mode: Enforce\n  \
         triggers: {{publicAccess: RequireAuth}}\n",
        world.fleet.reports
    )
}

fn sids(policy: Option<Value>) -> Vec<String> {
    policy
        .map(|p| {
            p["Statement"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|s| s["Sid"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Behind zerofn's back: a public invoke grant `sid` on `function`.
async fn open_up(world: &World, function: &str, sid: &str) {
    world
        .aws
        .lambda
        .add_permission()
        .function_name(function)
        .statement_id(sid)
        .action("lambda:InvokeFunction")
        .principal("*")
        .send()
        .await
        .unwrap_or_else(|e| panic!("{}", aws_sdk_lambda::error::DisplayErrorContext(e)));
}

const SOMEONE: &str = "arn:aws:sts::000000000000:assumed-role/admin/someone";
/// Who LocalStack says the test credentials are (GetCallerIdentity).
const ZEROFN: &str = "arn:aws:iam::000000000000:root";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn aws_drift_with_its_cloudtrail_event_is_reverted_in_seconds() {
    let world = World::start("events").await;
    let queue = format!("{}events", world.fleet.prefix);
    world.aws.create_queue(&queue).expect("queue");
    let url = world.aws.queue_url(&queue);
    world.apply(&account_with_queue(&world, &url)).await;
    world.apply(&reports_posture(&world)).await;
    let f = world.fleet.reports.clone();
    let c = world.controller("zerofn-0", SLOW_RESYNC);
    wait("the posture Ready", SETTLE, &c, async || ready(&world, "reports")).await;
    wait("EventsReady True", SETTLE, &c, async || {
        events_ready(&account_status(&world, "shop", "stand-in").await).0 == "True"
    })
    .await;

    let sid = |i: usize| format!("sneaky-public-{i}");
    let p95 = measure(
        "aws",
        &c,
        async |i| open_up(&world, &f, &sid(i)).await,
        |i| {
            let event = zerofn_sim::aws::cloudtrail_event(
                "lambda.amazonaws.com",
                "AddPermission20150331v2",
                serde_json::json!({"functionName": f, "statementId": sid(i), "action": "lambda:InvokeFunction", "principal": "*"}),
                SOMEONE,
                zerofn_sim::localstack::REGION,
            );
            world.aws.send_message(&queue, &event).expect("event sent");
        },
        async |i| !sids(world.resource_policy(&f).await).contains(&sid(i)),
        async || {
            ready(&world, "reports")
        },
    )
    .await;
    assert!(p95 <= WITHIN, "p95 {p95:?} over {WITHIN:?}");

    // What the posture showed for the last one: the drift, the exact
    // statement removed, Ready False then True.
    let last = format!("sneaky-public-{}", REPETITIONS - 1);
    let shown = events_of(&world, "shop", "reports").await;
    let drift = shown
        .iter()
        .rposition(|(r, _, _)| r == "DriftDetected")
        .unwrap_or_else(|| panic!("no DriftDetected: {shown:?}"));
    let enforced = shown
        .iter()
        .rposition(|(r, a, _)| r == "Enforced" && a.contains(&last))
        .unwrap_or_else(|| panic!("no Enforced naming {last}: {shown:?}"));
    assert!(drift < enforced, "DriftDetected before Enforced: {shown:?}");
    let status = world.posture("shop", "reports").expect("posture")["status"].clone();
    assert!(status["lastDriftTime"].is_string(), "{status}");
    let mapped = account_status(&world, "shop", "stand-in").await;
    assert!(
        mapped["events"]["mapped"].as_u64() >= Some(REPETITIONS as u64),
        "{mapped}"
    );

    // Zerofn's own writes come back as events: nothing more is written.
    let writes = c.writes();
    let quiet_until = Instant::now() + QUIET;
    let mut sent = 0;
    while Instant::now() < quiet_until {
        let own = zerofn_sim::aws::cloudtrail_event(
            "lambda.amazonaws.com",
            "RemovePermission20150331v2",
            serde_json::json!({"functionName": f, "statementId": last}),
            ZEROFN,
            zerofn_sim::localstack::REGION,
        );
        let other = zerofn_sim::aws::cloudtrail_event(
            "lambda.amazonaws.com",
            "UpdateFunctionConfiguration20150331v2",
            serde_json::json!({"functionName": format!("{}not-governed", world.fleet.prefix)}),
            SOMEONE,
            zerofn_sim::localstack::REGION,
        );
        world.aws.send_message(&queue, &own).expect("own event");
        world.aws.send_message(&queue, &other).expect("other event");
        sent += 1;
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    assert_eq!(
        c.writes(),
        writes,
        "writes while {sent} own events flowed\n{}",
        tail(&c.log())
    );
    wait("own and dropped events counted", SETTLE, &c, async || {
        let s = account_status(&world, "shop", "stand-in").await;
        s["events"]["own"].as_u64() >= Some(sent) && s["events"]["dropped"].as_u64() >= Some(sent)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_unreadable_aws_queue_turns_events_ready_false_and_the_resync_still_reverts() {
    let world = World::start("events-down").await;
    let url = world.aws.queue_url(&format!("{}no-such-queue", world.fleet.prefix));
    world.apply(&account_with_queue(&world, &url)).await;
    world.apply(&reports_posture(&world)).await;
    let f = world.fleet.reports.clone();
    let c = world.single_controller(&[]);
    wait("EventsReady False", SETTLE, &c, async || {
        let (status, reason) = events_ready(&account_status(&world, "shop", "stand-in").await);
        status == "False" && !reason.is_empty()
    })
    .await;
    wait("the posture Ready", SETTLE, &c, async || ready(&world, "reports")).await;
    open_up(&world, &f, "sneaky-while-down").await;
    wait("the resync reverts it", SETTLE, &c, async || {
        !sids(world.resource_policy(&f).await).contains(&"sneaky-while-down".to_string())
    })
    .await;
    let ready = account_status(&world, "shop", "stand-in").await;
    let account_ready = ready["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "Ready" && c["status"] == "True");
    assert!(account_ready, "the account itself stays Ready: {ready}");
}

/// Changes made behind zerofn's back, each with its event, `REPETITIONS`
/// times: the p95 from the event landing to the revert.
async fn measure(
    cloud: &str,
    c: &Controller,
    mut drift: impl AsyncFnMut(usize),
    mut event: impl FnMut(usize),
    mut reverted: impl AsyncFnMut(usize) -> bool,
    mut ready: impl AsyncFnMut() -> bool,
) -> Duration {
    let mut took = Vec::new();
    for i in 0..REPETITIONS {
        drift(i).await;
        let landed = Instant::now();
        event(i);
        wait(&format!("drift {i} reverted"), SETTLE, c, async || reverted(i).await).await;
        took.push(landed.elapsed());
        wait("Ready again", SETTLE, c, async || ready().await).await;
    }
    let p95 = p95(&took);
    println!("{cloud}: event to revert over {REPETITIONS} repetitions: p95 {p95:?}, all {took:?}");
    p95
}

/// What the posture showed: a DriftDetected event before an Enforced one,
/// and its lastDriftTime.
async fn drift_was_shown(cluster: &Cluster, posture: &str) {
    let shown = events_of(cluster, "shop", posture).await;
    let drift = shown.iter().rposition(|(r, _, _)| r == "DriftDetected");
    let enforced = shown.iter().rposition(|(r, _, _)| r == "Enforced");
    assert!(
        matches!((drift, enforced), (Some(d), Some(e)) if d < e),
        "DriftDetected, then Enforced: {shown:?}"
    );
    let status = cluster.posture("shop", posture).expect("posture")["status"].clone();
    assert!(status["lastDriftTime"].is_string(), "{status}");
}

const PROJECT: &str = "shop-prod";
const LOCATION: &str = "europe-west1";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn gcp_drift_with_its_audit_log_entry_is_reverted_in_seconds() {
    use zerofn_sim::gcp::{Binding, FunctionSeed, GcpStandIn, GcpWorld, IamResource, audit_entry};
    let cluster = Cluster::start("events-gcp").await;
    let gcp = GcpStandIn::start(
        GcpWorld::new()
            .project(PROJECT, 424242424242)
            .function(FunctionSeed::new(PROJECT, LOCATION, "orders").ingress("ALLOW_ALL"))
            .subscription(PROJECT, "zerofn-events"),
    )
    .await
    .expect("GCP stand-in");
    let url = gcp.url();
    let account = zerofn_e2e::gcp_account(&url).replacen(
        &format!("resourceManager: \"{url}\"}}\n"),
        &format!(
            "resourceManager: \"{url}\", pubsub: \"{url}\"}}\n    events: {{subscription: projects/{PROJECT}/subscriptions/zerofn-events}}\n"
        ),
        1,
    );
    cluster.apply(&account).await;
    cluster
        .apply(&format!(
            "apiVersion: zerofn.dev/v1alpha1\nkind: FunctionPosture\nmetadata: {{name: orders, namespace: shop}}\n\
             spec:\n  accountRef: {{name: gcp}}\n  function: {{gcp: {{location: {LOCATION}, name: orders}}}}\n  mode: Enforce\n  \
             triggers: {{publicAccess: Deny}}\n"
        ))
        .await;
    let c = cluster.controller("zerofn-0", SLOW_RESYNC);
    wait("the posture Ready", SETTLE, &c, async || ready(&cluster, "orders")).await;
    wait("EventsReady True", SETTLE, &c, async || {
        events_ready(&account_status(&cluster, "shop", "gcp").await).0 == "True"
    })
    .await;
    let service = IamResource::RunService {
        project: PROJECT.into(),
        location: LOCATION.into(),
        service: "orders".into(),
    };
    let resource = format!("projects/{PROJECT}/locations/{LOCATION}/services/orders");
    let publish = |principal: &str| {
        let entry = audit_entry(
            PROJECT,
            "run.googleapis.com",
            "google.cloud.run.v2.Services.SetIamPolicy",
            &resource,
            principal,
        );
        gcp.publish(PROJECT, "zerofn-events", entry.as_bytes(), &[])
            .expect("published");
    };
    let public = || {
        gcp.run_policy(PROJECT, LOCATION, "orders")
            .is_some_and(|p| p.members("roles/run.invoker").iter().any(|m| m == "allUsers"))
    };
    let p95 = measure(
        "gcp",
        &c,
        async |_| {
            gcp.mutate_policy(&service, |p| {
                p.bindings.push(Binding::new("roles/run.invoker", ["allUsers"]))
            })
            .expect("allUsers granted behind zerofn's back")
        },
        |_| publish("someone@example.com"),
        async |_| !public(),
        async || ready(&cluster, "orders"),
    )
    .await;
    assert!(p95 <= WITHIN, "p95 {p95:?} over {WITHIN:?}");
    drift_was_shown(&cluster, "orders").await;
    let mapped = account_status(&cluster, "shop", "gcp").await;
    assert!(
        mapped["events"]["received"].as_u64() >= Some(REPETITIONS as u64),
        "{mapped}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn azure_drift_with_its_event_grid_event_is_reverted_in_seconds() {
    use zerofn_e2e::{AZURE_CLIENT, AZURE_CLIENT_SECRET, AZURE_SUBSCRIPTION, AZURE_TENANT};
    use zerofn_sim::azure::{Arm, AzureWorld, SiteSeed, resource_write_event};
    let cluster = Cluster::start("events-azure").await;
    let arm = Arm::start(
        AzureWorld::new(AZURE_TENANT, AZURE_SUBSCRIPTION)
            .client(AZURE_CLIENT, AZURE_CLIENT_SECRET)
            .site(SiteSeed {
                min_tls_version: "1.0".into(),
                ..SiteSeed::new("rg-fn", "orders")
            })
            .queue("shopevents", "zerofn-events"),
    )
    .await
    .expect("ARM stand-in");
    let ca = cluster.dir.path().join("azure-ca.pem");
    std::fs::write(&ca, arm.ca_pem()).expect("CA file");
    let queue = arm.queue_url("shopevents", "zerofn-events");
    cluster
        .apply(&zerofn_e2e::azure_account(
            &arm.url(),
            &format!("    events: {{queue: \"{queue}\"}}\n"),
        ))
        .await;
    cluster
        .apply(
            "apiVersion: zerofn.dev/v1alpha1\nkind: FunctionPosture\nmetadata: {name: orders, namespace: shop}\n\
             spec:\n  accountRef: {name: azure}\n  function: {azure: {resourceGroup: rg-fn, name: orders}}\n  mode: Enforce\n  \
             triggers:\n    publicAccess: RequireAuth\n    azure: {requireAuthentication: false}\n",
        )
        .await;
    let ca_arg = ca.to_string_lossy().into_owned();
    let mut args = SLOW_RESYNC.to_vec();
    args.extend_from_slice(&["--azure-ca-file", &ca_arg]);
    let c = cluster.controller("zerofn-0", &args);
    wait("the posture Ready", SETTLE, &c, async || ready(&cluster, "orders")).await;
    wait("EventsReady True", SETTLE, &c, async || {
        events_ready(&account_status(&cluster, "shop", "azure").await).0 == "True"
    })
    .await;
    let uri = format!(
        "/subscriptions/{AZURE_SUBSCRIPTION}/resourceGroups/rg-fn/providers/Microsoft.Web/sites/orders/config/web"
    );
    let tls = || {
        arm.site_config("rg-fn", "orders")
            .and_then(|w| w["properties"]["minTlsVersion"].as_str().map(str::to_string))
            .unwrap_or_default()
    };
    let p95 = measure(
        "azure",
        &c,
        async |_| assert!(arm.set_site_config("rg-fn", "orders", "minTlsVersion", "1.0".into())),
        |_| {
            let event = resource_write_event(
                AZURE_SUBSCRIPTION,
                &uri,
                "Microsoft.Web/sites/config/write",
                "someone-else",
            );
            arm.put_message("shopevents", "zerofn-events", &event).expect("queued");
        },
        async |_| tls() == "1.2",
        async || ready(&cluster, "orders"),
    )
    .await;
    assert!(p95 <= WITHIN, "p95 {p95:?} over {WITHIN:?}");
    drift_was_shown(&cluster, "orders").await;

    // zerofn's own writes, coming back through the queue: nothing written.
    let writes = c.writes();
    for _ in 0..10 {
        let own = resource_write_event(
            AZURE_SUBSCRIPTION,
            &uri,
            "Microsoft.Web/sites/config/write",
            AZURE_CLIENT,
        );
        arm.put_message("shopevents", "zerofn-events", &own).expect("queued");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    wait("own events skipped and counted", SETTLE, &c, async || {
        account_status(&cluster, "shop", "azure").await["events"]["own"].as_u64() >= Some(10)
    })
    .await;
    assert_eq!(c.writes(), writes, "own events caused writes");
    assert_eq!(
        arm.queue_length("shopevents", "zerofn-events"),
        Some(0),
        "every message deleted"
    );
}
