//! The Kubernetes controller (`zerofn run`): the glue between the API server
//! and the engine. It knows no cloud.
//!
//! - FunctionPostures are watched through a shared reflector; only changes
//!   of spec (generation), finalizers or deletion trigger a reconcile, so the
//!   controller's own status writes do not loop.
//! - CloudAccounts and ClusterCloudAccounts are watched into stores (for
//!   lookups) and re-reconcile the postures that use them.
//! - Secrets are never listed or watched: the controller may only `get` the
//!   Secrets accounts name, in the namespaces the chart grants. A periodic
//!   sweep re-reads the Secrets in use and re-reconciles the postures whose
//!   account's Secret changed (`secrets`).
//! - Every account is probed on its own (`account_probe`), so one no
//!   posture uses still gets a status.
//! - Only the replica holding the Lease reconciles.

pub mod account_probe;
pub mod account_status;
pub mod cached;
pub mod conflict;
pub mod connect;
pub mod context;
pub mod error;
pub mod events;
pub mod leader;
pub mod policy;
pub mod posture;
pub mod providers;
pub mod reporter;
pub mod secrets;
pub mod server;
pub mod status;

use crate::api::{AccountKind, CloudAccount, ClusterCloudAccount, FunctionPosture, PosturePolicy};
use crate::metrics::Metrics;
use crate::providers::registry::{self, ConnectOptions};
use cached::CachedPosture;
use context::{Context, Settings};
use futures::StreamExt;
use kube::api::Api;
use kube::runtime::controller::{self, Controller};
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, predicates, watcher};
use kube::{Client, Resource, ResourceExt};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::watch;

#[derive(Clone, Debug)]
pub struct RunOptions {
    pub settings: Settings,
    pub probe_addr: SocketAddr,
    pub concurrency: u16,
    pub connect: ConnectOptions,
    /// None: leader election off (a single replica).
    pub leader: Option<leader::LeaderConfig>,
}

type Guarded = CachedPosture;

/// What the account caches never need (`cached::slim`); the posture cache
/// drops it while parsing.
fn slim<K: kube::Resource>(obj: &mut K) {
    cached::slim(obj.meta_mut());
}

/// Only spec, finalizer and deletion changes reconcile; status writes (ours
/// included) do not.
fn lifecycle(obj: &Guarded) -> Option<u64> {
    let m = obj.meta();
    let deleting = m.deletion_timestamp.is_some();
    let h = (
        predicates::generation(obj),
        predicates::finalizers(obj),
        deleting,
        // Generation is absent for objects the server did not version.
        m.generation.is_none().then(|| m.resource_version.clone()),
    );
    Some({
        use std::hash::{Hash, Hasher};
        let mut s = std::collections::hash_map::DefaultHasher::new();
        h.hash(&mut s);
        s.finish()
    })
}

fn refs_using(
    postures: &Store<Guarded>,
    kind: AccountKind,
    namespace: Option<&str>,
    name: &str,
) -> Vec<ObjectRef<Guarded>> {
    postures
        .state()
        .iter()
        .filter(|p| {
            p.spec
                .as_ref()
                .is_ok_and(|s| s.account_ref.kind == kind && s.account_ref.name == name)
                && namespace.is_none_or(|ns| p.namespace().as_deref() == Some(ns))
        })
        .map(|p| ObjectRef::new(&p.name_any()).within(&p.namespace().unwrap_or_default()))
        .collect()
}

/// Postures whose account names the Secret `ns/name`.
fn refs_using_secret(
    postures: &Store<Guarded>,
    accounts: &Store<CloudAccount>,
    cluster_accounts: &Store<ClusterCloudAccount>,
    controller_ns: &str,
    ns: &str,
    name: &str,
) -> Vec<ObjectRef<Guarded>> {
    let mut out = Vec::new();
    for a in accounts.state() {
        let secret = a
            .spec
            .config()
            .and_then(|c| registry::secret_name(&c).map(str::to_string));
        if a.namespace().as_deref() == Some(ns) && secret.as_deref() == Some(name) {
            out.extend(refs_using(postures, AccountKind::CloudAccount, Some(ns), &a.name_any()));
        }
    }
    if ns == controller_ns {
        for a in cluster_accounts.state() {
            let secret = a
                .spec
                .config()
                .and_then(|c| registry::secret_name(&c).map(str::to_string));
            if secret.as_deref() == Some(name) {
                out.extend(refs_using(
                    postures,
                    AccountKind::ClusterCloudAccount,
                    None,
                    &a.name_any(),
                ));
            }
        }
    }
    out
}

/// Postures to reconcile because their account's Secret changed: every
/// `secret_refresh`, the Secrets in use are read again (one `get` each) and
/// compared by resourceVersion. This replaces a cluster-wide Secret watch,
/// which would need `list` and `watch` on every Secret of the cluster.
fn rotated_secrets(
    ctx: Arc<Context>,
    postures: Store<Guarded>,
    controller_ns: String,
) -> impl futures::Stream<Item = ObjectRef<Guarded>> + Send + 'static {
    let every = ctx.settings.secret_refresh;
    futures::stream::unfold((), move |()| {
        let (ctx, postures, controller_ns) = (ctx.clone(), postures.clone(), controller_ns.clone());
        async move {
            tokio::time::sleep(every).await;
            let named = secrets::named_secrets(&ctx.accounts, &ctx.cluster_accounts, &controller_ns);
            let changed = ctx.secrets.refresh_named(&ctx.client, &named).await;
            let refs: Vec<ObjectRef<Guarded>> = changed
                .iter()
                .flat_map(|(ns, name)| {
                    tracing::info!(secret = %format!("{ns}/{name}"), "an account's Secret changed");
                    refs_using_secret(
                        &postures,
                        &ctx.accounts,
                        &ctx.cluster_accounts,
                        &controller_ns,
                        ns,
                        name,
                    )
                })
                .collect();
            Some((futures::stream::iter(refs), ()))
        }
    })
    .flatten()
}

/// A channel's receiving end as a stream (for `reconcile_on`).
fn receiver_stream<T: Send + 'static>(rx: tokio::sync::mpsc::Receiver<T>) -> impl futures::Stream<Item = T> + Send {
    futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|t| (t, rx)) })
}

async fn shutdown_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    tracing::info!("shutdown requested");
}

/// Run the controller until SIGTERM (Ok) or until leadership is lost (Err:
/// the process exits and a fresh replica campaigns again).
pub async fn run(client: Client, opts: RunOptions) -> Result<(), String> {
    let metrics = opts.connect.metrics.clone();
    let health = Arc::new(server::Health::default());
    let (stop_tx, stop_rx) = watch::channel(false);

    let listener = server::bind(opts.probe_addr)
        .await
        .map_err(|e| format!("{}: {e}", opts.probe_addr))?;
    let server = tokio::spawn(server::serve(
        listener,
        health.clone(),
        metrics.clone(),
        stop_rx.clone(),
    ));

    let (lead_tx, mut lead_rx) = watch::channel(opts.leader.is_none());
    // Without election this process leads for its whole life: the sender is
    // held here, because a closed channel means the elector died, which
    // `control` rightly treats as lost leadership.
    let mut always_leading = None;
    let elector = match opts.leader.clone() {
        Some(cfg) => {
            tracing::info!(lease = %cfg.lease_name, identity = %cfg.identity, "campaigning for leadership");
            Some(tokio::spawn(
                leader::Elector::new(client.clone(), cfg).run(lead_tx, stop_rx.clone()),
            ))
        }
        None => {
            always_leading = Some(lead_tx);
            None
        }
    };
    // A standby is ready when the API server answers: it can take over.
    match client.apiserver_version().await {
        Ok(_) => health.ready.store(true, Ordering::Relaxed),
        Err(e) => tracing::warn!(error = %e, "API server not reachable yet"),
    }

    let signal = tokio::spawn(async move {
        shutdown_signal().await;
        let _ = stop_tx.send(true);
    });
    let mut stopping = stop_rx.clone();
    // Wait to lead (or to be told to stop while standing by).
    while !*lead_rx.borrow() {
        tokio::select! {
            changed = lead_rx.changed() => if changed.is_err() { return Err("leader election ended".into()) },
            _ = stopping.changed() => {
                server.abort();
                return Ok(());
            }
        }
    }
    tracing::info!("leading: starting the controller");
    let result = control(client, opts.clone(), metrics, health, stop_rx.clone(), lead_rx.clone()).await;
    signal.abort();
    drop(always_leading);
    if let Some(e) = elector {
        // The elector releases the lease when `stop` fires; give it a moment.
        let _ = tokio::time::timeout(Duration::from_secs(5), e).await;
    }
    server.abort();
    result
}

/// A kind's watch, with every change kept in a store for lookups. Only a
/// change of spec (generation) or a deletion passes on: the controller's
/// own status writes to an account (reachability, counts, its event feed's
/// health every 30 s while events flow) must not re-check every posture
/// that uses it.
fn watch_into_store<K>(
    client: &Client,
) -> (
    Store<K>,
    impl futures::Stream<Item = Result<K, watcher::Error>> + Send + use<K>,
)
where
    K: kube::Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned + Send + Sync + 'static,
    K::DynamicType: Default + Eq + std::hash::Hash + Clone + Send + Sync,
{
    let (reader, writer) = reflector::store::<K>();
    let stream = watcher(Api::<K>::all(client.clone()), watcher::Config::default())
        .default_backoff()
        .modify(slim)
        .reflect(writer)
        .flat_map(spec_changes_and_deletions());
    (reader, stream)
}

/// The objects of a watch whose generation changed (or that are new), and
/// every deleted one.
#[allow(clippy::type_complexity)]
fn spec_changes_and_deletions<K: kube::Resource + Send + 'static>() -> impl FnMut(
    Result<watcher::Event<K>, watcher::Error>,
) -> futures::stream::Iter<
    std::vec::IntoIter<Result<K, watcher::Error>>,
> {
    let mut seen: std::collections::HashMap<(Option<String>, String), Option<i64>> = Default::default();
    move |event| {
        let out = match event {
            Ok(watcher::Event::Apply(o) | watcher::Event::InitApply(o)) => {
                let key = (o.meta().namespace.clone(), o.meta().name.clone().unwrap_or_default());
                let generation = o.meta().generation;
                match seen.insert(key, generation) {
                    Some(before) if before == generation && generation.is_some() => Vec::new(),
                    _ => vec![Ok(o)],
                }
            }
            Ok(watcher::Event::Delete(o)) => {
                seen.remove(&(o.meta().namespace.clone(), o.meta().name.clone().unwrap_or_default()));
                vec![Ok(o)]
            }
            Ok(watcher::Event::Init | watcher::Event::InitDone) => Vec::new(),
            Err(e) => vec![Err(e)],
        };
        futures::stream::iter(out)
    }
}

/// Resolves when the controller must stop: on SIGTERM, or when leadership
/// is lost (then `lost` is set, and the process exits with an error).
async fn stop_or_lost(mut stop: watch::Receiver<bool>, mut leading: watch::Receiver<bool>, lost: Arc<AtomicBool>) {
    let lost_leadership = async {
        while *leading.borrow() {
            if leading.changed().await.is_err() {
                break;
            }
        }
    };
    tokio::select! {
        _ = stop.changed() => {}
        _ = lost_leadership => {
            tracing::warn!("leadership lost: stopping");
            lost.store(true, Ordering::Relaxed);
        }
    }
}

/// `/readyz` turns ready once every store holds its first full list.
fn ready_when_synced(
    health: Arc<server::Health>,
    p: Store<Guarded>,
    a: Store<CloudAccount>,
    c: Store<ClusterCloudAccount>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        tokio::join!(context::synced(&p), context::synced(&a), context::synced(&c));
        health.ready.store(true, Ordering::Relaxed);
        tracing::info!("caches synced");
    })
}

async fn control(
    client: Client,
    opts: RunOptions,
    metrics: Arc<Metrics>,
    health: Arc<server::Health>,
    stop: watch::Receiver<bool>,
    leading: watch::Receiver<bool>,
) -> Result<(), String> {
    let (posture_reader, posture_writer) = reflector::store::<Guarded>();
    let postures = watcher(Api::<Guarded>::all(client.clone()), watcher::Config::default())
        .default_backoff()
        .reflect(posture_writer)
        .applied_objects()
        .predicate_filter(lifecycle, Default::default());
    let (account_reader, accounts_stream) = watch_into_store::<CloudAccount>(&client);
    let (cluster_reader, cluster_stream) = watch_into_store::<ClusterCloudAccount>(&client);

    let reporter = Reporter {
        controller: "zerofn".into(),
        instance: opts.leader.as_ref().map(|l| l.identity.clone()),
    };
    let ctx = Arc::new(Context::new(
        client.clone(),
        Recorder::new(client.clone(), reporter),
        metrics.clone(),
        providers::ProviderCache::new(Arc::new(providers::CloudFactory(opts.connect.clone()))),
        account_reader.clone(),
        cluster_reader.clone(),
        posture_reader.clone(),
        opts.settings.clone(),
    ));

    let (p1, p2, p3) = (posture_reader.clone(), posture_reader.clone(), posture_reader.clone());
    let (requeue, requeued) = tokio::sync::mpsc::channel(1024);
    let lost_leadership = Arc::new(AtomicBool::new(false));
    let (stop, leading) = (stop, leading);
    let controller = Controller::for_stream(postures, posture_reader.clone())
        .with_config(controller::Config::default().concurrency(opts.concurrency))
        .watches_stream(accounts_stream, move |a: CloudAccount| {
            refs_using(&p1, AccountKind::CloudAccount, a.namespace().as_deref(), &a.name_any())
        })
        .watches_stream(cluster_stream, move |a: ClusterCloudAccount| {
            refs_using(&p2, AccountKind::ClusterCloudAccount, None, &a.name_any())
        })
        .reconcile_on(rotated_secrets(ctx.clone(), p3, opts.settings.namespace.clone()))
        .reconcile_on(receiver_stream(requeued))
        .graceful_shutdown_on(stop_or_lost(stop.clone(), leading.clone(), lost_leadership.clone()));

    let ready = ready_when_synced(health, posture_reader, account_reader, cluster_reader);
    let probes = tokio::spawn(account_probe::run(ctx.clone()));
    let feeds = tokio::spawn(events::run(ctx.clone(), requeue));
    let policies = policy_controller(&client, ctx.clone(), &opts, stop.clone(), leading.clone());
    let postures = controller
        .run(posture::reconcile, posture::error_policy, ctx)
        .for_each(|res| async move {
            match res {
                Ok((obj, _)) => tracing::debug!(posture = %obj, "reconciled"),
                Err(e) => tracing::debug!(error = %e, "reconcile error"),
            }
        });
    tokio::join!(postures, policies);
    ready.abort();
    probes.abort();
    feeds.abort();
    // The controller stops on SIGTERM or on lost leadership; only the
    // latter is an error (the pod restarts and campaigns again).
    if lost_leadership.load(Ordering::Relaxed) {
        return Err("leadership lost".into());
    }
    Ok(())
}

/// A posture's change as a policy sees it: its spec (generation),
/// deletion, and which policy's child it is. A child's status is read by
/// its policy when it looks again, not on every status write.
fn posture_identity(meta: &kube::core::PartialObjectMeta<FunctionPosture>) -> Option<u64> {
    use std::hash::{Hash, Hasher};
    let m = &meta.metadata;
    let mut s = std::collections::hash_map::DefaultHasher::new();
    (
        m.generation,
        m.deletion_timestamp.is_some(),
        m.labels
            .as_ref()
            .and_then(|l| l.get(crate::fleet::children::POLICY_LABEL)),
    )
        .hash(&mut s);
    Some(s.finish())
}

/// Only spec, finalizer and deletion changes of a policy reconcile it;
/// its own status writes do not.
fn policy_lifecycle(p: &PosturePolicy) -> Option<u64> {
    use std::hash::{Hash, Hasher};
    let mut s = std::collections::hash_map::DefaultHasher::new();
    (
        predicates::generation(p),
        predicates::finalizers(p),
        p.metadata.deletion_timestamp.is_some(),
    )
        .hash(&mut s);
    Some(s.finish())
}

/// The PosturePolicy controller: each policy keeps its children. It is
/// woken by its own changes, by postures created, changed or deleted
/// (metadata only: a hand-written posture can take a function from a
/// policy), and by its own requeue (the inventory refresh).
fn policy_controller(
    client: &Client,
    ctx: Arc<Context>,
    opts: &RunOptions,
    stop: watch::Receiver<bool>,
    leading: watch::Receiver<bool>,
) -> impl std::future::Future<Output = ()> + use<> {
    let (policy_reader, policy_writer) = reflector::store::<PosturePolicy>();
    let policies = watcher(Api::<PosturePolicy>::all(client.clone()), watcher::Config::default())
        .default_backoff()
        .modify(slim)
        .reflect(policy_writer)
        .applied_objects()
        .predicate_filter(policy_lifecycle, Default::default());
    let postures = watcher(
        Api::<kube::core::PartialObjectMeta<FunctionPosture>>::all(client.clone()),
        watcher::Config::default(),
    )
    .default_backoff()
    .touched_objects()
    .predicate_filter(posture_identity, Default::default());
    let store = policy_reader.clone();
    let pctx = Arc::new(policy::PolicyContext {
        ctx,
        policies: policy_reader.clone(),
    });
    let lost = Arc::new(AtomicBool::new(false));
    let run = Controller::for_stream(policies, policy_reader)
        .with_config(
            controller::Config::default()
                .concurrency(opts.concurrency.clamp(1, 4))
                .debounce(Duration::from_millis(500)),
        )
        .watches_stream(postures, move |p| policy::policies_to_requeue(&store, &p.metadata))
        .graceful_shutdown_on(stop_or_lost(stop, leading, lost))
        .run(policy::reconcile, policy::error_policy, pctx);
    run.for_each(|res| async move {
        match res {
            Ok((obj, _)) => tracing::debug!(policy = %obj, "reconciled"),
            Err(e) => tracing::debug!(error = %e, "policy reconcile error"),
        }
    })
}

#[cfg(test)]
mod tests;
