//! Leader election on a `coordination.k8s.io/v1` Lease, so two replicas never
//! both write.
//!
//! A standby takes the lease only after it has seen it unrenewed for a whole
//! `lease_duration` by its own clock (no trust in other pods' clocks). A
//! leader that cannot renew within `renew_deadline` (shorter than the lease
//! duration) steps down before anyone else may take over. Every change is an
//! optimistic-concurrency update (resourceVersion), so two candidates cannot
//! both win one round.

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{Api, ObjectMeta, PostParams};
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

#[derive(Clone, Debug)]
pub struct LeaderConfig {
    pub namespace: String,
    pub lease_name: String,
    /// This replica, e.g. the pod name.
    pub identity: String,
    pub lease_duration: Duration,
    pub renew_deadline: Duration,
    pub retry_period: Duration,
}

impl LeaderConfig {
    pub fn new(namespace: &str, lease_name: &str, identity: &str) -> Self {
        LeaderConfig {
            namespace: namespace.to_string(),
            lease_name: lease_name.to_string(),
            identity: identity.to_string(),
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }
}

/// What this replica last saw of someone else's lease, and when.
struct Seen {
    holder: Option<String>,
    renew: Option<MicroTime>,
    at: Instant,
}

pub struct Elector {
    api: Api<Lease>,
    cfg: LeaderConfig,
    seen: Option<Seen>,
}

impl Elector {
    pub fn new(client: kube::Client, cfg: LeaderConfig) -> Self {
        Elector {
            api: Api::namespaced(client, &cfg.namespace),
            cfg,
            seen: None,
        }
    }

    /// Campaign until `stop`, publishing whether this replica leads. Once it
    /// has led and lost, it publishes `false` and returns: the caller stops.
    /// On `stop` a leader releases the lease so a standby need not wait.
    pub async fn run(mut self, tx: watch::Sender<bool>, mut stop: watch::Receiver<bool>) {
        let mut leading_since_renew: Option<Instant> = None;
        loop {
            match self.try_acquire_or_renew().await {
                Ok(true) => {
                    leading_since_renew = Some(Instant::now());
                    tx.send_replace(true);
                }
                Ok(false) => {
                    if leading_since_renew.is_some() {
                        tracing::warn!(lease = %self.cfg.lease_name, "leadership lost to another replica");
                        tx.send_replace(false);
                        return;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "lease update failed");
                    if let Some(at) = leading_since_renew
                        && at.elapsed() > self.cfg.renew_deadline
                    {
                        tracing::warn!("could not renew the lease within the renew deadline; stepping down");
                        tx.send_replace(false);
                        return;
                    }
                }
            }
            let jitter = self.cfg.retry_period.mul_f64(fastrand::f64() * 0.2);
            tokio::select! {
                _ = tokio::time::sleep(self.cfg.retry_period + jitter) => {}
                _ = stop.changed() => {
                    if leading_since_renew.is_some() {
                        self.release().await;
                    }
                    tx.send_replace(false);
                    return;
                }
            }
        }
    }

    fn spec(&self, previous: Option<&LeaseSpec>, now: MicroTime) -> LeaseSpec {
        let taking_over = previous.and_then(|p| p.holder_identity.as_deref()) != Some(self.cfg.identity.as_str());
        let transitions = previous.and_then(|p| p.lease_transitions).unwrap_or(0);
        LeaseSpec {
            holder_identity: Some(self.cfg.identity.clone()),
            lease_duration_seconds: Some(self.cfg.lease_duration.as_secs() as i32),
            acquire_time: if taking_over {
                Some(now.clone())
            } else {
                previous.and_then(|p| p.acquire_time.clone())
            },
            renew_time: Some(now),
            lease_transitions: Some(if taking_over && previous.is_some() {
                transitions + 1
            } else {
                transitions
            }),
            ..LeaseSpec::default()
        }
    }

    /// One round: Ok(true) when this replica holds the lease afterwards.
    pub async fn try_acquire_or_renew(&mut self) -> Result<bool, kube::Error> {
        let now = MicroTime(jiff::Timestamp::now());
        let Some(mut lease) = self.api.get_opt(&self.cfg.lease_name).await? else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.cfg.lease_name.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(self.spec(None, now)),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(true),
                Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
                Err(e) => Err(e),
            };
        };
        let current = lease.spec.clone().unwrap_or_default();
        let mine = current.holder_identity.as_deref() == Some(self.cfg.identity.as_str());
        if !mine {
            let changed = self
                .seen
                .as_ref()
                .is_none_or(|s| s.holder != current.holder_identity || s.renew != current.renew_time);
            if changed {
                self.seen = Some(Seen {
                    holder: current.holder_identity.clone(),
                    renew: current.renew_time.clone(),
                    at: Instant::now(),
                });
            }
            let released = current.holder_identity.as_deref().is_none_or(str::is_empty);
            let duration = current
                .lease_duration_seconds
                .map(|s| Duration::from_secs(s.max(0) as u64))
                .unwrap_or(self.cfg.lease_duration);
            let expired = self.seen.as_ref().is_some_and(|s| s.at.elapsed() > duration);
            if !released && !expired {
                return Ok(false);
            }
        }
        lease.spec = Some(self.spec(Some(&current), now));
        match self
            .api
            .replace(&self.cfg.lease_name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => Ok(true),
            // Someone else changed it first: look again next round.
            Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Give the lease up (on shutdown) so a standby need not wait it out.
    pub async fn release(&self) {
        let Ok(Some(mut lease)) = self.api.get_opt(&self.cfg.lease_name).await else {
            return;
        };
        let Some(spec) = lease.spec.as_mut() else { return };
        if spec.holder_identity.as_deref() != Some(self.cfg.identity.as_str()) {
            return;
        }
        spec.holder_identity = None;
        spec.renew_time = Some(MicroTime(jiff::Timestamp::now()));
        if let Err(e) = self
            .api
            .replace(&self.cfg.lease_name, &PostParams::default(), &lease)
            .await
        {
            tracing::warn!(error = %e, "could not release the lease; a standby takes over when it expires");
        }
    }
}
