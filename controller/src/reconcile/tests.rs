//! The reconciler against a mock API server (kube's tower-test), with a fake
//! cloud: every request the controller makes is checked, in order.

use super::cached::CachedPosture;
use super::context::{Context, Settings};
use super::posture::{FINALIZER, reconcile};
use super::providers::{ProviderCache, ProviderFactory};
use crate::accounts::ResolvedAccount;
use crate::api::*;
use crate::findings::{Control, Finding, Severity};
use crate::metrics::Metrics;
use crate::providers::adapter::Adapter;
use crate::providers::cloud::SecretData;
use crate::providers::testing::TestCloud;
use crate::providers::{Provider, ProviderError};
use futures::FutureExt;
use futures::future::BoxFuture;
use http::{Method, Request, Response};
use kube::client::Body;
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::{self, store::Writer};
use kube::runtime::watcher;
use kube::{Client, Resource, ResourceExt};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The test cloud, reaching the account the fixtures declare, its function
/// drifting by `findings`.
fn cloud(findings: Vec<Finding>) -> TestCloud {
    TestCloud {
        drift: Mutex::new(findings),
        reached: Some("123456789012".into()),
        ..TestCloud::default()
    }
}

struct Factory(Arc<Adapter<TestCloud>>);

impl ProviderFactory for Factory {
    fn connect<'a>(
        &'a self,
        _a: &'a ResolvedAccount,
        _s: Option<&'a SecretData>,
    ) -> BoxFuture<'a, Result<Arc<dyn Provider>, ProviderError>> {
        let p: Arc<dyn Provider> = self.0.clone();
        async move { Ok(p) }.boxed()
    }
}

fn drift() -> Finding {
    Finding::builder(
        Control::Triggers,
        "aws.triggers.publicUrl",
        "FunctionUrlConfig.AuthType",
    )
    .severity(Severity::Critical)
    .message("function URL can be called without authentication")
}

fn posture(name: &str, mode: Mode, created: &str) -> FunctionPosture {
    let mut fp = FunctionPosture::new(
        name,
        FunctionPostureSpec {
            account_ref: AccountRef {
                kind: AccountKind::ClusterCloudAccount,
                name: "prod".into(),
            },
            function: FunctionTarget {
                aws: Some(AwsFunctionRef {
                    name: "orders".into(),
                    region: None,
                }),
                azure: None,
                gcp: None,
            },
            mode,
            identity: None,
            triggers: Some(TriggerControl {
                public_access: PublicAccess::Deny,
                remove_unlisted: true,
                aws: None,
                azure: None,
                gcp: None,
            }),
            network: None,
            supply_chain: None,
            observability: None,
            resync_interval: Some("2m".into()),
        },
    );
    fp.meta_mut().namespace = Some("shop".into());
    fp.meta_mut().generation = Some(1);
    fp.meta_mut().uid = Some(format!("uid-{name}"));
    fp.meta_mut().creation_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
        created.parse().unwrap(),
    ));
    fp
}

fn finalized(mut fp: FunctionPosture) -> FunctionPosture {
    fp.meta_mut().finalizers = Some(vec![FINALIZER.to_string()]);
    fp
}

/// The admin's account: only a ClusterCloudAccount may run with the
/// controller's ambient identity.
fn account() -> ClusterCloudAccount {
    ClusterCloudAccount::new(
        "prod",
        ClusterCloudAccountSpec {
            allowed_namespaces: vec!["shop".into()],
            aws: Some(AwsAccount {
                region: "eu-west-1".into(),
                account_id: Some("123456789012".into()),
                ..Default::default()
            }),
            azure: None,
            gcp: None,
        },
    )
}

type Handle = tower_test::mock::Handle<Request<Body>, Response<Body>>;

struct Fixture {
    ctx: Arc<Context>,
    cloud: Arc<Adapter<TestCloud>>,
    _postures: Writer<CachedPosture>,
    _accounts: Writer<CloudAccount>,
    _cluster: Writer<ClusterCloudAccount>,
}

fn ready<K: Resource + Clone>(w: &mut Writer<K>, objs: Vec<K>)
where
    K::DynamicType: Eq + std::hash::Hash + Clone,
{
    w.apply_watcher_event(&watcher::Event::Init);
    for o in objs {
        w.apply_watcher_event(&watcher::Event::InitApply(o));
    }
    w.apply_watcher_event(&watcher::Event::InitDone);
}

fn fixture(accounts: Vec<ClusterCloudAccount>, postures: Vec<FunctionPosture>, cloud: TestCloud) -> (Fixture, Handle) {
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let client = Client::new(service, "default");
    let (a_reader, mut a_writer) = reflector::store::<CloudAccount>();
    ready(&mut a_writer, vec![]);
    let (c_reader, mut c_writer) = reflector::store::<ClusterCloudAccount>();
    ready(&mut c_writer, accounts);
    let (p_reader, mut p_writer) = reflector::store::<CachedPosture>();
    ready(&mut p_writer, postures.into_iter().map(CachedPosture::from).collect());
    let cloud = Arc::new(Adapter::new(cloud));
    let ctx = Context::new(
        client.clone(),
        Recorder::new(
            client,
            Reporter {
                controller: "zerofn".into(),
                instance: None,
            },
        ),
        Arc::new(Metrics::default()),
        ProviderCache::new(Arc::new(Factory(cloud.clone()))),
        a_reader,
        c_reader,
        p_reader,
        Settings {
            cluster_id: "test".into(),
            namespace: "zerofn-system".into(),
            resync: Duration::from_secs(300),
            release_timeout: Duration::from_secs(60),
            secret_refresh: Duration::from_secs(60),
        },
    );
    let f = Fixture {
        ctx: Arc::new(ctx),
        cloud,
        _postures: p_writer,
        _accounts: a_writer,
        _cluster: c_writer,
    };
    (f, handle)
}

/// One request the controller made: checked, then answered.
struct Seen {
    method: Method,
    uri: String,
    body: Value,
}

async fn expect(handle: &mut Handle, respond: impl FnOnce(&Seen) -> Value) -> Seen {
    expect_answered(handle, 200, respond).await
}

/// Like `expect`, answering with the HTTP status `code`.
async fn expect_answered(handle: &mut Handle, code: u16, respond: impl FnOnce(&Seen) -> Value) -> Seen {
    let (req, send) = tokio::time::timeout(Duration::from_secs(5), handle.next_request())
        .await
        .expect("the controller made no further request")
        .expect("service closed");
    let method = req.method().clone();
    let uri = req.uri().to_string();
    let bytes = req.into_body().collect_bytes().await.unwrap();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    let seen = Seen { method, uri, body };
    let reply = respond(&seen);
    send.send_response(
        Response::builder()
            .status(code)
            .body(Body::from(serde_json::to_vec(&reply).unwrap()))
            .unwrap(),
    );
    seen
}

fn echo_status(fp: &FunctionPosture) -> impl FnOnce(&Seen) -> Value + use<> {
    let fp = fp.clone();
    move |s: &Seen| {
        let mut o = serde_json::to_value(&fp).unwrap();
        o["status"] = s.body["status"].clone();
        o
    }
}

fn echo_event(s: &Seen) -> Value {
    s.body.clone()
}

/// The account's status follows the posture's, with the account reached.
async fn expect_account_status(h: &mut Handle) {
    let s = expect(h, |s| {
        let mut a = serde_json::to_value(account()).unwrap();
        a["status"] = s.body["status"].clone();
        a
    })
    .await;
    assert_eq!(s.method, Method::PATCH);
    assert_eq!(
        s.uri,
        "/apis/zerofn.dev/v1alpha1/clustercloudaccounts/prod/status?&force=true&fieldManager=zerofn"
    );
    assert_eq!(s.body["status"]["account"], "123456789012");
    assert_eq!(s.body["status"]["cloud"], "aws");
    assert_eq!(condition(&s.body["status"], "Ready")["reason"], "Reachable");
}

fn condition<'a>(status: &'a Value, type_: &str) -> &'a Value {
    status["conditions"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["type"] == type_))
        .unwrap_or_else(|| panic!("no {type_} in {status:#}"))
}

async fn run(f: &Fixture, fp: FunctionPosture) -> Result<kube::runtime::controller::Action, super::error::Error> {
    reconcile(Arc::new(CachedPosture::from(fp)), f.ctx.clone()).await
}

/// A reconcile past the finalizer reads the posture's status first (the
/// cache holds none); the API server answers with `fp` as it stands.
async fn expect_status_read(h: &mut Handle, fp: FunctionPosture) {
    let path = format!(
        "/apis/zerofn.dev/v1alpha1/namespaces/shop/functionpostures/{}/status",
        fp.name_any()
    );
    let s = expect(h, move |_| serde_json::to_value(fp).unwrap()).await;
    assert_eq!(s.method, Method::GET);
    assert_eq!(s.uri.split('?').next(), Some(path.as_str()));
}

/// Run one reconcile while `verify` answers its requests; both must finish.
async fn scenario<F, Fut>(
    f: &Fixture,
    fp: FunctionPosture,
    handle: Handle,
    verify: F,
) -> Result<kube::runtime::controller::Action, super::error::Error>
where
    F: FnOnce(Handle) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Handle> + Send + 'static,
{
    let read = fp.finalizers().iter().any(|x| x == FINALIZER).then(|| fp.clone());
    let verifier = tokio::spawn(async move {
        let mut h = handle;
        if let Some(fp) = read {
            expect_status_read(&mut h, fp).await;
        }
        verify(h).await
    });
    let result = tokio::time::timeout(Duration::from_secs(10), run(f, fp))
        .await
        .expect("the reconcile finished (it waits forever for a request the scenario does not answer)");
    let mut handle = tokio::time::timeout(Duration::from_secs(5), verifier)
        .await
        .expect("the scenario finished")
        .expect("the scenario's assertions held");
    // Nothing more than the scenario expected.
    assert!(
        tokio::time::timeout(Duration::from_millis(100), handle.next_request())
            .await
            .is_err(),
        "the controller made an unexpected extra request"
    );
    result
}

#[tokio::test]
async fn a_new_posture_gets_the_finalizer_first_and_touches_no_cloud() {
    let fp = posture("orders", Mode::Enforce, "2026-01-01T00:00:00Z");
    let (f, handle) = fixture(vec![account()], vec![fp.clone()], cloud(vec![]));
    let answer = finalized(fp.clone());
    let result = scenario(&f, fp, handle, |mut h| async move {
        let s = expect(&mut h, |_| serde_json::to_value(answer).unwrap()).await;
        assert_eq!(s.method, Method::PATCH);
        assert_eq!(
            s.uri,
            "/apis/zerofn.dev/v1alpha1/namespaces/shop/functionpostures/orders?"
        );
        assert_eq!(
            s.body[1],
            json!({"op": "add", "path": "/metadata/finalizers", "value": [FINALIZER]})
        );
        h
    })
    .await;
    assert!(result.is_ok(), "{result:?}");
    assert!(f.cloud.inner().applied().is_empty());
}

#[tokio::test]
async fn a_compliant_posture_gets_a_ready_status_by_server_side_apply() {
    let fp = finalized(posture("orders", Mode::Enforce, "2026-01-01T00:00:00Z"));
    let (f, handle) = fixture(vec![account()], vec![fp.clone()], cloud(vec![]));
    let echo = fp.clone();
    let result = scenario(&f, fp, handle, |mut h| async move {
        let s = expect(&mut h, echo_status(&echo)).await;
        assert_eq!(s.method, Method::PATCH);
        assert_eq!(
            s.uri,
            "/apis/zerofn.dev/v1alpha1/namespaces/shop/functionpostures/orders/status?&force=true&fieldManager=zerofn"
        );
        let status = &s.body["status"];
        assert_eq!(s.body["kind"], "FunctionPosture");
        assert_eq!(condition(status, "Ready")["status"], "True");
        assert_eq!(condition(status, "TriggersCompliant")["status"], "True");
        assert_eq!(status["observedGeneration"], 1);
        assert_eq!(status["cloud"], "aws");
        assert_eq!(status["compliance"], "1/1");
        expect_account_status(&mut h).await;
        h
    })
    .await;
    let resync = requeue_after(&result.expect("reconciled")).expect("a compliant posture is resynced");
    // spec.resyncInterval is 2m; the jitter adds up to 10%.
    assert!(
        (Duration::from_secs(120)..=Duration::from_secs(132)).contains(&resync),
        "resync in {resync:?}"
    );
    assert!(
        f.cloud.inner().applied().is_empty(),
        "a compliant posture writes nothing to the cloud"
    );
}

/// When the reconciler asked to run again; None when it waits for a change
/// (kube's `Action` shows it only in its Debug output).
fn requeue_after(a: &kube::runtime::controller::Action) -> Option<Duration> {
    let shown = format!("{a:?}");
    let after = shown.split("requeue_after: Some(").nth(1)?.split(')').next()?;
    let secs: f64 = match after.strip_suffix("ms") {
        Some(ms) => ms.parse::<f64>().ok()? / 1000.0,
        None => after.strip_suffix('s')?.parse().ok()?,
    };
    Some(Duration::from_secs_f64(secs))
}

/// Drift that Enforce fixes is shown before it is fixed: a DriftDetected
/// event naming the finding, a status with Ready False; then the Enforced
/// event naming exactly what changed, then Ready True. Each event's action
/// names its finding or change, so kube-runtime never folds one drift's
/// event into another's.
#[tokio::test]
async fn enforcing_shows_the_drift_then_names_each_write_then_the_status() {
    let fp = finalized(posture("orders", Mode::Enforce, "2026-01-01T00:00:00Z"));
    let cloud = cloud(vec![drift()]);
    let (f, handle) = fixture(vec![account()], vec![fp.clone()], cloud);
    let echo = fp.clone();
    let result = scenario(&f, fp, handle, |mut h| async move {
        let d = expect(&mut h, echo_event).await;
        assert_eq!(
            (d.body["reason"].as_str(), d.body["type"].as_str()),
            (Some("DriftDetected"), Some("Warning"))
        );
        assert_eq!(
            d.body["action"],
            "Detect aws.triggers.publicUrl FunctionUrlConfig.AuthType"
        );
        let note = d.body["note"].as_str().unwrap();
        assert!(
            note.starts_with("Critical FunctionUrlConfig.AuthType: function URL"),
            "{note}"
        );
        let shown = expect(&mut h, echo_status(&echo)).await;
        let status = &shown.body["status"];
        assert_eq!(
            (
                condition(status, "Ready")["status"].as_str(),
                condition(status, "Ready")["reason"].as_str()
            ),
            (Some("False"), Some("Drift")),
            "the drift is shown before it is fixed"
        );
        assert_eq!(condition(status, "TriggersCompliant")["status"], "False");
        let drift_time = status["lastDriftTime"].as_str().expect("lastDriftTime").to_string();
        assert!(status.get("lastEnforcedTime").is_none());
        // Before the first write: the marker may be set from now on.
        let m = expect(&mut h, echo_status(&echo)).await;
        assert_eq!(m.method, Method::PATCH);
        assert_eq!(
            m.uri,
            "/apis/zerofn.dev/v1alpha1/namespaces/shop/functionpostures/orders/status?"
        );
        assert_eq!(m.body, json!({"status": {"ownershipMarked": true}}));
        let e = expect(&mut h, echo_event).await;
        assert_eq!(e.method, Method::POST);
        assert_eq!(e.uri, "/apis/events.k8s.io/v1/namespaces/shop/events?");
        assert_eq!(e.body["reason"], "Enforced");
        assert_eq!(e.body["type"], "Normal");
        assert_eq!(e.body["regarding"]["name"], "orders");
        assert_eq!(
            e.body["action"], "Fix aws.triggers.publicUrl on f",
            "the action names the change"
        );
        assert!(
            e.body["note"]
                .as_str()
                .unwrap()
                .starts_with("Fix f: aws.triggers.publicUrl"),
            "{:#}",
            e.body
        );
        let s = expect(&mut h, echo_status(&echo)).await;
        let status = &s.body["status"];
        assert_eq!(
            condition(status, "Ready")["status"],
            "True",
            "status reports the re-observed state"
        );
        assert_eq!(status["lastEnforcedWrites"], 1);
        assert_eq!(
            status["lastDriftTime"],
            drift_time.as_str(),
            "the drift stays on record"
        );
        assert_eq!(status["ownershipMarked"], true, "the full status keeps it");
        expect_account_status(&mut h).await;
        h
    })
    .await;
    assert!(result.is_ok(), "{result:?}");
    assert_eq!(f.cloud.inner().applied(), vec!["aws.triggers.publicUrl"]);
    let metrics = f.ctx.metrics.encode();
    assert!(
        metrics.contains("zerofn_drift_detected_total{control=\"Triggers\"} 1"),
        "{metrics}"
    );
}

#[tokio::test]
async fn audit_reports_drift_once_and_writes_nothing_to_the_cloud() {
    let fp = finalized(posture("orders", Mode::Audit, "2026-01-01T00:00:00Z"));
    let cloud = cloud(vec![drift()]);
    let (f, handle) = fixture(vec![account()], vec![fp.clone()], cloud);
    let echo = fp.clone();
    let result = scenario(&f, fp, handle, |mut h| async move {
        let e = expect(&mut h, echo_event).await;
        assert_eq!(
            (e.body["reason"].as_str(), e.body["type"].as_str()),
            (Some("DriftDetected"), Some("Warning"))
        );
        let s = expect(&mut h, echo_status(&echo)).await;
        let status = &s.body["status"];
        assert_eq!(condition(status, "Ready")["reason"], "Drift");
        assert_eq!(condition(status, "TriggersCompliant")["status"], "False");
        assert_eq!(status["findings"][0]["check"], "aws.triggers.publicUrl");
        expect_account_status(&mut h).await;
        h
    })
    .await;
    assert!(result.is_ok(), "{result:?}");
    assert!(f.cloud.inner().applied().is_empty());
}

#[tokio::test]
async fn a_missing_account_is_a_status_reason_not_a_crash() {
    let fp = finalized(posture("orders", Mode::Enforce, "2026-01-01T00:00:00Z"));
    let (f, handle) = fixture(vec![], vec![fp.clone()], cloud(vec![]));
    let echo = fp.clone();
    let result = scenario(&f, fp, handle, |mut h| async move {
        let e = expect(&mut h, echo_event).await;
        assert_eq!(e.body["reason"], "AccountNotFound");
        let s = expect(&mut h, echo_status(&echo)).await;
        let synced = condition(&s.body["status"], "Synced");
        assert_eq!(
            (synced["status"].as_str(), synced["reason"].as_str()),
            (Some("False"), Some("AccountNotFound"))
        );
        assert!(
            synced["message"]
                .as_str()
                .unwrap()
                .contains("ClusterCloudAccount prod does not exist")
        );
        h
    })
    .await;
    assert!(result.is_ok(), "{result:?}");
}

#[tokio::test]
async fn the_later_of_two_postures_for_one_function_is_a_conflict_and_writes_nothing() {
    let first = finalized(posture("orders", Mode::Enforce, "2026-01-01T00:00:00Z"));
    let second = finalized(posture("orders-copy", Mode::Enforce, "2026-03-01T00:00:00Z"));
    let cloud = cloud(vec![drift()]);
    let (f, handle) = fixture(vec![account()], vec![first.clone(), second.clone()], cloud);
    // The earlier posture reconciles first and holds the function.
    f.ctx.conflicts.contend(
        "aws/123456789012/eu-west-1/orders",
        &super::conflict::Claimant {
            namespace: "shop".into(),
            name: "orders".into(),
            created: "2026-01-01T00:00:00Z".into(),
            policy_child: false,
        },
        |_| None,
    );
    let echo = second.clone();
    let result = scenario(&f, second, handle, |mut h| async move {
        let e = expect(&mut h, echo_event).await;
        assert_eq!(e.body["reason"], "Conflict");
        let s = expect(&mut h, echo_status(&echo)).await;
        let synced = condition(&s.body["status"], "Synced");
        assert_eq!(synced["reason"], "Conflict");
        assert!(
            synced["message"]
                .as_str()
                .unwrap()
                .contains("shop/orders (created earlier)")
        );
        h
    })
    .await;
    assert!(result.is_ok(), "{result:?}");
    assert!(
        f.cloud.inner().applied().is_empty(),
        "the later posture wrote to the cloud"
    );
    assert_eq!(
        *f.cloud.inner().released.lock().unwrap(),
        1,
        "it drops any ownership claim it made"
    );
}

fn deleted(mut fp: FunctionPosture, marked: bool) -> FunctionPosture {
    fp.meta_mut().deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
        jiff::Timestamp::now(),
    ));
    fp.status = Some(FunctionPostureStatus {
        ownership_marked: marked,
        ..Default::default()
    });
    fp
}

#[tokio::test]
async fn deleting_a_posture_that_never_wrote_skips_the_cloud_and_removes_the_finalizer() {
    let fp = deleted(
        finalized(posture("orders", Mode::Enforce, "2026-01-01T00:00:00Z")),
        false,
    );
    // No account: with a marker to release it would wait for one.
    let (f, handle) = fixture(vec![], vec![fp.clone()], cloud(vec![]));
    let mut gone = fp.clone();
    gone.meta_mut().finalizers = None;
    let result = scenario(&f, fp, handle, |mut h| async move {
        let s = expect(&mut h, |_| serde_json::to_value(gone).unwrap()).await;
        assert_eq!(s.method, Method::PATCH);
        assert_eq!(s.body[1]["op"], "remove", "{:#}", s.body);
        h
    })
    .await;
    assert!(result.is_ok(), "{result:?}");
    assert_eq!(*f.cloud.inner().released.lock().unwrap(), 0);
}

/// A marker that cannot be released (here: the account is gone) holds the
/// deletion only until `--release-timeout`, and the retry is scheduled
/// within what is left of it, whatever the backoff says.
#[tokio::test]
async fn a_release_that_cannot_happen_is_retried_within_the_release_timeout() {
    let fp = deleted(
        finalized(posture("orders", Mode::Enforce, "2026-01-01T00:00:00Z")),
        true,
    );
    let (f, handle) = fixture(vec![], vec![fp.clone()], cloud(vec![]));
    let result = scenario(&f, fp.clone(), handle, |mut h| async move {
        let e = expect(&mut h, echo_event).await;
        assert_eq!(e.body["reason"], "AccountNotFound");
        h
    })
    .await;
    let err = result.expect_err("the marker is still held");
    // Many failures in: the backoff alone would wait minutes.
    for _ in 0..8 {
        f.ctx.count_failure(&fp.metadata.namespace, &fp.metadata.name);
    }
    let action = super::posture::error_policy(Arc::new(CachedPosture::from(fp)), &err, f.ctx.clone());
    let retry = requeue_after(&action).expect("retried");
    assert!(
        retry <= Duration::from_secs(61),
        "--release-timeout is 60s, retry in {retry:?}"
    );
}

#[tokio::test]
async fn deletion_releases_ownership_then_removes_the_finalizer() {
    let fp = deleted(
        finalized(posture("orders", Mode::Enforce, "2026-01-01T00:00:00Z")),
        true,
    );
    let (f, handle) = fixture(vec![account()], vec![fp.clone()], cloud(vec![]));
    let mut gone = fp.clone();
    gone.meta_mut().finalizers = None;
    let result = scenario(&f, fp, handle, |mut h| async move {
        let e = expect(&mut h, echo_event).await;
        assert_eq!(e.body["reason"], "OwnershipReleased");
        let s = expect(&mut h, |_| serde_json::to_value(gone).unwrap()).await;
        assert_eq!(s.method, Method::PATCH);
        assert_eq!(
            s.body[0],
            json!({"op": "test", "path": "/metadata/finalizers/0", "value": FINALIZER})
        );
        assert_eq!(s.body[1]["op"], "remove");
        h
    })
    .await;
    assert!(result.is_ok(), "{result:?}");
    assert_eq!(*f.cloud.inner().released.lock().unwrap(), 1);
    assert!(
        f.cloud.inner().applied().is_empty(),
        "deleting a posture never reverts or writes hardening"
    );
}

#[tokio::test]
async fn an_object_that_does_not_deserialize_gets_a_status_reason() {
    let (f, handle) = fixture(vec![account()], vec![], cloud(vec![]));
    let invalid = kube::core::error_boundary::InvalidObject {
        error: "unknown variant `Fix`, expected `Enforce` or `Audit`".into(),
        metadata: kube::api::ObjectMeta {
            name: Some("broken".into()),
            namespace: Some("shop".into()),
            generation: Some(4),
            ..Default::default()
        },
    };
    let verifier = tokio::spawn(async move {
        let mut h = handle;
        let s = expect(&mut h, |s| json!({"apiVersion": API_VERSION, "kind": "FunctionPosture", "metadata": {"name": "broken"}, "status": s.body["status"]})).await;
        assert!(
            s.uri
                .starts_with("/apis/zerofn.dev/v1alpha1/namespaces/shop/functionpostures/broken/status?")
        );
        let ready = condition(&s.body["status"], "Ready");
        assert_eq!(ready["reason"], "InvalidObject");
        assert!(ready["message"].as_str().unwrap().contains("unknown variant `Fix`"));
        assert_eq!(s.body["status"]["observedGeneration"], 4);
        // A merge patch: an apply would drop the status fields it leaves out
        // (the records of minted identities among them).
        assert!(!s.uri.contains("force=true"), "{}", s.uri);
        assert!(s.body.get("apiVersion").is_none(), "{}", s.body);
    });
    let result = reconcile(Arc::new(CachedPosture::from(invalid)), f.ctx.clone()).await;
    verifier.await.expect("scenario held");
    assert!(result.is_ok(), "{result:?}");
}

/// The chart grants `get` on Secrets only in the namespaces it is told
/// about (a ClusterCloudAccount's Secret lives in the controller's). A refusal is a reason on the posture and on the account, with no
/// cloud asked; the Secret is asked for by name, never listed.
#[tokio::test]
async fn a_secret_the_controller_may_not_read_is_a_status_reason_on_posture_and_account() {
    let fp = finalized(posture("orders", Mode::Enforce, "2026-01-01T00:00:00Z"));
    let mut acct = account();
    if let Some(aws) = acct.spec.aws.as_mut() {
        aws.credentials_secret_ref = Some(SecretRef { name: "creds".into() });
    }
    let (f, handle) = fixture(vec![acct.clone()], vec![fp.clone()], cloud(vec![]));
    let echo = fp.clone();
    let result = scenario(&f, fp, handle, |mut h| async move {
        let get = expect_answered(&mut h, 403, |_| {
            json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "Forbidden", "code": 403,
                   "message": "secrets \"creds\" is forbidden: User \"system:serviceaccount:zerofn-system:zerofn\" cannot get resource \"secrets\" in API group \"\" in the namespace \"zerofn-system\""})
        })
        .await;
        assert_eq!(get.method, Method::GET);
        assert_eq!(get.uri.split('?').next(), Some("/api/v1/namespaces/zerofn-system/secrets/creds"));
        let e = expect(&mut h, echo_event).await;
        assert_eq!(e.body["reason"], "SecretForbidden");
        let s = expect(&mut h, echo_status(&echo)).await;
        let synced = condition(&s.body["status"], "Synced");
        assert_eq!(synced["reason"], "SecretForbidden");
        let message = synced["message"].as_str().unwrap();
        assert!(message.contains("namespace zerofn-system") && message.contains("tenantNamespaces"), "{message}");
        let a = expect(&mut h, move |s| {
            let mut a = serde_json::to_value(&acct).unwrap();
            a["status"] = s.body["status"].clone();
            a
        })
        .await;
        assert_eq!(
            a.uri,
            "/apis/zerofn.dev/v1alpha1/clustercloudaccounts/prod/status?&force=true&fieldManager=zerofn"
        );
        let ready = condition(&a.body["status"], "Ready");
        assert_eq!((ready["status"].as_str(), ready["reason"].as_str()), (Some("False"), Some("SecretForbidden")));
        h
    })
    .await;
    assert!(result.is_ok(), "{result:?}");
    assert!(f.cloud.inner().applied().is_empty());
}

/// An account no posture uses still gets its status (cloud, the account
/// reached, Ready), from a probe; once that status is written it is not
/// probed again before the resync interval.
#[tokio::test]
async fn an_account_no_posture_uses_gets_a_status_from_a_probe() {
    let listed = ["orders", "billing"]
        .map(|name| crate::fleet::Listed {
            target: crate::api::FunctionTarget {
                aws: Some(crate::api::AwsFunctionRef {
                    name: name.into(),
                    region: Some("eu-west-1".into()),
                }),
                azure: None,
                gcp: None,
            },
            tags: Default::default(),
            owner: None,
            identity: None,
        })
        .to_vec();
    let (mut f, handle) = fixture(
        vec![account()],
        vec![],
        TestCloud {
            listed,
            ..cloud(vec![])
        },
    );
    let verifier = tokio::spawn(async move {
        let mut h = handle;
        expect_account_status(&mut h).await;
        // How much of the account is governed: under a field manager of
        // its own, so the reachability write never drops it.
        let counts = expect(&mut h, |s| {
            let mut a = serde_json::to_value(account()).unwrap();
            a["status"] = s.body["status"].clone();
            a
        })
        .await;
        assert_eq!(
            counts.uri,
            "/apis/zerofn.dev/v1alpha1/clustercloudaccounts/prod/status?&force=true&fieldManager=zerofn-inventory"
        );
        assert_eq!(
            counts.body["status"]["functions"],
            json!({"total": 2, "governed": 0, "ungoverned": 2})
        );
        h
    });
    let mut last = std::collections::HashMap::new();
    tokio::time::timeout(Duration::from_secs(5), super::account_probe::sweep(&f.ctx, &mut last))
        .await
        .expect("the sweep finished");
    let mut handle = verifier.await.expect("the account's status was written");
    assert_eq!(*f.cloud.inner().probes.lock().unwrap(), 1);

    let mut reported = account();
    reported.status = Some(CloudAccountStatus {
        observed_generation: None,
        conditions: vec![Condition {
            type_: "Ready".into(),
            status: "True".into(),
            observed_generation: None,
            last_transition_time: "2026-01-01T00:00:00Z".into(),
            reason: "Reachable".into(),
            message: "credentials reach 123456789012".into(),
        }],
        cloud: Some("aws".into()),
        account: Some("123456789012".into()),
        functions: Some(crate::api::FunctionCounts {
            total: 2,
            governed: 0,
            ungoverned: 2,
        }),
        events: None,
    });
    f._cluster.apply_watcher_event(&watcher::Event::Apply(reported));
    super::account_probe::sweep(&f.ctx, &mut last).await;
    assert!(
        tokio::time::timeout(Duration::from_millis(100), handle.next_request())
            .await
            .is_err(),
        "status written again"
    );
    assert_eq!(
        *f.cloud.inner().probes.lock().unwrap(),
        1,
        "probed again before the resync interval"
    );
}

/// An object that does not deserialize names no function to release: its
/// deletion waits out `--release-timeout` (it may be fixed meanwhile), then
/// the finalizer goes, conditionally on the version read.
#[tokio::test]
async fn deleting_an_object_that_does_not_deserialize_ends_after_the_release_timeout() {
    for (ago, removed) in [(1, false), (120, true)] {
        let (f, handle) = fixture(vec![account()], vec![], cloud(vec![]));
        let invalid = kube::core::error_boundary::InvalidObject {
            error: "unknown variant `Fix`, expected `Enforce` or `Audit`".into(),
            metadata: kube::api::ObjectMeta {
                name: Some("broken".into()),
                namespace: Some("shop".into()),
                resource_version: Some("42".into()),
                finalizers: Some(vec![FINALIZER.to_string(), "other/keep".into()]),
                deletion_timestamp: Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                    jiff::Timestamp::now() - jiff::SignedDuration::from_secs(ago),
                )),
                ..Default::default()
            },
        };
        let verifier = tokio::spawn(async move {
            let mut h = handle;
            let broken = |s: &Seen| json!({"apiVersion": API_VERSION, "kind": "FunctionPosture", "metadata": {"name": "broken"}, "status": s.body["status"]});
            let s = expect(&mut h, broken).await;
            assert!(s.uri.contains("/functionpostures/broken/status?"), "{}", s.uri);
            if removed {
                let p = expect(
                    &mut h,
                    |_| json!({"apiVersion": API_VERSION, "kind": "FunctionPosture", "metadata": {"name": "broken"}}),
                )
                .await;
                assert_eq!(p.method, Method::PATCH);
                assert!(
                    p.uri
                        .starts_with("/apis/zerofn.dev/v1alpha1/namespaces/shop/functionpostures/broken?")
                );
                assert_eq!(
                    p.body,
                    json!({"metadata": {"resourceVersion": "42", "finalizers": ["other/keep"]}})
                );
            }
            h
        });
        let result = reconcile(Arc::new(CachedPosture::from(invalid)), f.ctx.clone()).await;
        let mut h = verifier.await.expect("scenario held");
        assert!(
            tokio::time::timeout(Duration::from_millis(100), h.next_request())
                .await
                .is_err(),
            "no other request"
        );
        let action = result.expect("reconciled");
        if !removed {
            assert_ne!(
                action,
                kube::runtime::controller::Action::await_change(),
                "retried when the timeout runs out"
            );
        }
    }
}

/// The status a reconcile builds on is read from the API server; one that
/// no longer deserializes is said in the status, like a broken spec.
#[tokio::test]
async fn a_status_that_does_not_deserialize_gets_a_status_reason() {
    let fp = finalized(posture("orders", Mode::Enforce, "2026-01-01T00:00:00Z"));
    let (f, handle) = fixture(vec![account()], vec![fp.clone()], cloud(vec![]));
    let mut broken = serde_json::to_value(&fp).unwrap();
    broken["status"] = json!({"mintedIdentities": "not a list"});
    let verifier = tokio::spawn(async move {
        let mut h = handle;
        let get = expect(&mut h, move |_| broken).await;
        assert_eq!(get.method, Method::GET);
        let s = expect(&mut h, |s| json!({"apiVersion": API_VERSION, "kind": "FunctionPosture", "metadata": {"name": "orders"}, "status": s.body["status"]})).await;
        assert!(s.uri.contains("/functionpostures/orders/status?"), "{}", s.uri);
        assert!(
            !s.uri.contains("force=true"),
            "a merge patch keeps the records: {}",
            s.uri
        );
        assert_eq!(condition(&s.body["status"], "Ready")["reason"], "InvalidObject");
        h
    });
    let result = run(&f, fp).await;
    verifier.await.expect("scenario held");
    assert!(result.is_ok(), "{result:?}");
    assert!(f.cloud.inner().applied().is_empty());
}
