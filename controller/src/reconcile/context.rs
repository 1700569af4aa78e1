//! What every reconcile shares.

use super::conflict::ConflictIndex;
use super::providers::ProviderCache;
use crate::api::{CloudAccount, ClusterCloudAccount, FunctionPosture, FunctionPostureStatus};
use crate::findings::Control;
use crate::metrics::{ControlLabels, Metrics};
use kube::Client;
use kube::core::DeserializeGuard;
use kube::runtime::events::Recorder;
use kube::runtime::reflector::Store;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

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
}

pub struct Context {
    pub client: Client,
    pub recorder: Recorder,
    pub metrics: Arc<Metrics>,
    pub providers: ProviderCache,
    pub accounts: Store<CloudAccount>,
    pub cluster_accounts: Store<ClusterCloudAccount>,
    pub postures: Store<DeserializeGuard<FunctionPosture>>,
    pub conflicts: ConflictIndex,
    pub settings: Settings,
    failures: Mutex<HashMap<String, u32>>,
    /// Compliant declared controls per posture, behind the gauges.
    compliance: Mutex<HashMap<String, Vec<Control>>>,
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
        postures: Store<DeserializeGuard<FunctionPosture>>,
        settings: Settings,
    ) -> Self {
        Context {
            client,
            recorder,
            metrics,
            providers,
            accounts,
            cluster_accounts,
            postures,
            conflicts: ConflictIndex::default(),
            settings,
            failures: Mutex::default(),
            compliance: Mutex::default(),
        }
    }

    /// Account lookups are only meaningful once the account caches hold a
    /// first full list; until then a missing account is not yet known.
    pub async fn accounts_synced(&self) {
        let _ = tokio::join!(
            self.accounts.wait_until_ready(),
            self.cluster_accounts.wait_until_ready()
        );
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
