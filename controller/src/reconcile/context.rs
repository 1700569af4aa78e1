//! What every reconcile shares.

use super::cached::CachedPosture;
use super::conflict::ConflictIndex;
use super::providers::ProviderCache;
use super::secrets::SecretCache;
use crate::api::{CloudAccount, ClusterCloudAccount, FunctionPostureStatus};
use crate::findings::Control;
use crate::metrics::{ControlLabels, Metrics};
use kube::Client;
use kube::runtime::events::Recorder;
use kube::runtime::reflector::Store;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Field manager of everything the controller writes.
pub const MANAGER: &str = "zerofn";

#[derive(Clone, Debug)]
pub struct Settings {
    /// Identifies this installation in the cloud ownership marker.
    pub cluster_id: String,
    /// The controller's namespace: where ClusterCloudAccounts' Secrets live.
    pub namespace: String,
    /// Default resync interval (a posture's `spec.resyncInterval` wins).
    pub resync: Duration,
    /// How long a deletion may wait for the cloud before the ownership
    /// marker is abandoned.
    pub release_timeout: Duration,
    /// How long a copy of an account's Secret is used before it is read
    /// again (and how often the Secrets in use are checked for rotation).
    pub secret_refresh: Duration,
}

pub struct Context {
    pub client: Client,
    pub recorder: Recorder,
    pub metrics: Arc<Metrics>,
    pub providers: ProviderCache,
    pub secrets: SecretCache,
    pub accounts: Store<CloudAccount>,
    pub cluster_accounts: Store<ClusterCloudAccount>,
    pub postures: Store<CachedPosture>,
    pub conflicts: ConflictIndex,
    pub settings: Settings,
    /// Each account's change-event feed, as its consumer last found it.
    pub feeds: super::events::FeedBoard,
    failures: Mutex<HashMap<String, u32>>,
    /// Compliant declared controls per posture, behind the gauges.
    compliance: Mutex<HashMap<String, Vec<Control>>>,
}

/// Wait until a reflector store holds its first full list (or its writer
/// is gone).
///
/// Not a bare `Store::wait_until_ready`: kube-runtime's readiness is a
/// oneshot receiver that remembers only the waker of the last task to poll
/// it, so of several tasks waiting at once (every posture reconciled at
/// startup) all but one can sleep forever. Waiting in short rounds makes
/// each waiter poll again; once one has seen the store ready, the rest get
/// the memoized answer at once.
pub async fn synced<K>(store: &Store<K>)
where
    K: 'static + Clone + kube::runtime::reflector::Lookup,
    K::DynamicType: Eq + std::hash::Hash + Clone,
{
    while tokio::time::timeout(Duration::from_millis(250), store.wait_until_ready())
        .await
        .is_err()
    {}
}

fn key(ns: &Option<String>, name: &Option<String>) -> String {
    format!(
        "{}/{}",
        ns.as_deref().unwrap_or_default(),
        name.as_deref().unwrap_or_default()
    )
}

impl Context {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        client: Client,
        recorder: Recorder,
        metrics: Arc<Metrics>,
        providers: ProviderCache,
        accounts: Store<CloudAccount>,
        cluster_accounts: Store<ClusterCloudAccount>,
        postures: Store<CachedPosture>,
        settings: Settings,
    ) -> Self {
        Context {
            client,
            recorder,
            metrics,
            providers,
            secrets: SecretCache::new(settings.secret_refresh),
            accounts,
            cluster_accounts,
            postures,
            conflicts: ConflictIndex::default(),
            settings,
            feeds: Default::default(),
            failures: Mutex::default(),
            compliance: Mutex::default(),
        }
    }

    /// Account lookups are only meaningful once the account caches hold a
    /// first full list; until then a missing account is not yet known.
    pub async fn accounts_synced(&self) {
        tokio::join!(synced(&self.accounts), synced(&self.cluster_accounts));
    }

    /// Consecutive failures of a posture, counting this one.
    pub fn count_failure(&self, ns: &Option<String>, name: &Option<String>) -> u32 {
        let mut f = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let n = f.entry(key(ns, name)).or_default();
        *n += 1;
        *n - 1
    }

    pub fn reset_failures(&self, ns: &Option<String>, name: &Option<String>) {
        self.failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&key(ns, name));
    }

    /// Update `zerofn_compliant_postures{control}` from a posture's status.
    pub fn record_compliance(&self, ns: &str, name: &str, status: &FunctionPostureStatus, declared: &[Control]) {
        let compliant: Vec<Control> = declared
            .iter()
            .copied()
            .filter(|c| {
                status
                    .conditions
                    .iter()
                    .any(|x| x.type_ == c.condition_type() && x.status == "True")
            })
            .collect();
        let mut map = self.compliance.lock().unwrap_or_else(|e| e.into_inner());
        let old = map
            .insert(format!("{ns}/{name}"), compliant.clone())
            .unwrap_or_default();
        self.adjust(&old, &compliant);
        self.metrics.postures.set(map.len() as i64);
    }

    pub fn forget_compliance(&self, ns: &str, name: &str) {
        let mut map = self.compliance.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(old) = map.remove(&format!("{ns}/{name}")) {
            self.adjust(&old, &[]);
        }
        self.metrics.postures.set(map.len() as i64);
    }

    fn adjust(&self, old: &[Control], new: &[Control]) {
        for c in Control::ALL {
            let delta = i64::from(new.contains(&c)) - i64::from(old.contains(&c));
            if delta != 0 {
                self.metrics
                    .compliant
                    .get_or_create(&ControlLabels { control: c.as_str() })
                    .inc_by(delta);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::synced;
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::runtime::{reflector, watcher};
    use std::time::Duration;

    /// Many reconciles wait for the account caches at once; every one of
    /// them must wake when the first list lands (a bare
    /// `wait_until_ready` strands all but the last to poll).
    #[tokio::test]
    async fn every_concurrent_waiter_wakes_when_the_store_is_ready() {
        let (store, mut writer) = reflector::store::<ConfigMap>();
        let waiters: Vec<_> = (0..8)
            .map(|_| {
                let s = store.clone();
                tokio::spawn(async move { synced(&s).await })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(50)).await;
        writer.apply_watcher_event(&watcher::Event::Init);
        writer.apply_watcher_event(&watcher::Event::InitDone);
        for w in waiters {
            tokio::time::timeout(Duration::from_secs(5), w)
                .await
                .expect("a waiter was never woken")
                .expect("waiter task");
        }
    }
}
