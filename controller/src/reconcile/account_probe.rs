//! Every CloudAccount and ClusterCloudAccount gets a status (cloud, the
//! account its credentials reach, Ready), whether or not a posture uses it:
//! an admin sees a broken account before the first posture names it.
//!
//! Each account is probed through its circuit (one cheap identity call,
//! `Provider::probe`) at once when it is new or its spec changed, and again
//! every resync interval. The status is written only when it changes.

use super::account_status::{self, Reach};
use super::connect::connect;
use super::context::Context;
use super::posture::each_live_posture;
use crate::accounts::ResolvedAccount;
use crate::api::{AccountConfig, AccountKind, CloudAccountStatus, FunctionCounts};
use crate::fleet;
use crate::providers::{Provider, ProviderError};
use futures::StreamExt;
use kube::ResourceExt;
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

/// How often the sweep looks for accounts that are due.
const TICK: Duration = Duration::from_secs(2);
/// One probe's deadline (the clouds' own timeouts are per attempt).
const PROBE_DEADLINE: Duration = Duration::from_secs(30);
/// Accounts probed at once.
const CONCURRENCY: usize = 8;

/// One account as the sweep sees it.
pub(super) struct Known {
    key: String,
    kind: AccountKind,
    namespace: Option<String>,
    name: String,
    config: Option<AccountConfig>,
    /// Its status was written for its current spec.
    observed: bool,
}

fn observed(status: Option<&CloudAccountStatus>, generation: Option<i64>) -> bool {
    status.is_some_and(|s| s.observed_generation == generation && !s.conditions.is_empty())
}

impl Known {
    /// The account as a connection takes it; None when it sets no cloud.
    fn resolved(self, controller_namespace: &str) -> Option<ResolvedAccount> {
        let secret_namespace = self
            .namespace
            .clone()
            .unwrap_or_else(|| controller_namespace.to_string());
        Some(ResolvedAccount {
            key: self.key,
            kind: self.kind,
            namespace: self.namespace,
            name: self.name,
            config: self.config?,
            secret_namespace,
        })
    }

    /// The account, when it declares a change-event feed.
    pub(super) fn resolved_with_events(self, controller_namespace: &str) -> Option<ResolvedAccount> {
        self.resolved(controller_namespace)
            .filter(|a| a.config.declares_events())
    }
}

pub(super) fn known(ctx: &Context) -> Vec<Known> {
    let namespaced = ctx.accounts.state().into_iter().map(|a| {
        let ns = a.namespace().unwrap_or_default();
        Known {
            key: format!("CloudAccount/{ns}/{}", a.name_any()),
            kind: AccountKind::CloudAccount,
            namespace: Some(ns),
            name: a.name_any(),
            config: a.spec.config(),
            observed: observed(a.status.as_ref(), a.metadata.generation),
        }
    });
    let cluster = ctx.cluster_accounts.state().into_iter().map(|a| Known {
        key: format!("ClusterCloudAccount/{}", a.name_any()),
        kind: AccountKind::ClusterCloudAccount,
        namespace: None,
        name: a.name_any(),
        config: a.spec.config(),
        observed: observed(a.status.as_ref(), a.metadata.generation),
    });
    namespaced.chain(cluster).collect()
}

/// Probe every account that is due, forever (the task is dropped with the
/// controller, so only the leader probes).
pub async fn run(ctx: std::sync::Arc<Context>) {
    ctx.accounts_synced().await;
    let mut last: HashMap<String, Instant> = HashMap::new();
    loop {
        sweep(&ctx, &mut last).await;
        tokio::time::sleep(TICK).await;
    }
}

/// One pass: probe the accounts without a status for their spec, and those
/// not probed for a resync interval.
pub async fn sweep(ctx: &Context, last: &mut HashMap<String, Instant>) {
    let every = ctx.settings.resync;
    let all = known(ctx);
    last.retain(|k, _| all.iter().any(|a| &a.key == k));
    // A feed that changed state is reported now, not at the next resync.
    let feeds_changed = ctx.feeds.take_due();
    let due: Vec<Known> = all
        .into_iter()
        .filter(|a| {
            !a.observed || feeds_changed.contains(&a.key) || last.get(&a.key).is_none_or(|t| t.elapsed() >= every)
        })
        .collect();
    for a in &due {
        last.insert(a.key.clone(), Instant::now());
    }
    if due.is_empty() {
        return;
    }
    let governed = governed_keys(ctx);
    futures::stream::iter(due)
        .for_each_concurrent(CONCURRENCY, |a| probe(ctx, a, &governed))
        .await;
}

/// The functions a FunctionPosture (hand-written or a policy's child)
/// targets, by conflict-index key.
fn governed_keys(ctx: &Context) -> HashSet<String> {
    let mut keys = HashSet::new();
    each_live_posture(ctx, |_, _, spec, account| {
        keys.insert(fleet::function_key(&account, &spec.function));
    });
    keys
}

/// How many of the account's functions are governed, from its shared
/// inventory. A listing that fails leaves the last counts (the account's
/// Ready condition says what failed).
async fn count_functions(
    ctx: &Context,
    account: &ResolvedAccount,
    provider: &dyn Provider,
    governed: &HashSet<String>,
) {
    let listed = match tokio::time::timeout(PROBE_DEADLINE, provider.functions()).await {
        Ok(Ok(l)) => l,
        Ok(Err(e)) => {
            tracing::debug!(account = %account.key, error = %e, "functions not listed");
            return;
        }
        Err(_) => {
            tracing::debug!(account = %account.key, "functions not listed within the deadline");
            return;
        }
    };
    let total = listed.len();
    let covered = listed
        .iter()
        .filter(|f| governed.contains(&fleet::function_key(account, &f.target)))
        .count();
    let n = |x: usize| u32::try_from(x).unwrap_or(u32::MAX);
    let counts = FunctionCounts {
        total: n(total),
        governed: n(covered),
        ungoverned: n(total - covered),
    };
    account_status::report_counts(ctx, account, counts).await;
}

async fn probe(ctx: &Context, a: Known, governed: &HashSet<String>) {
    let key = a.key.clone();
    let Some(account) = a.resolved(&ctx.settings.namespace) else {
        // Nothing to write the status against: the cloud is unknown. The
        // CRD's rules refuse such an object; one stored before them is
        // reported by the postures that name it.
        tracing::debug!(account = %key, "no cloud set; not probed");
        return;
    };
    let provider = match connect(ctx, &account).await {
        Ok(p) => p,
        Err(unusable) => {
            account_status::report(ctx, &account, unusable.reach()).await;
            return;
        }
    };
    let answered = match tokio::time::timeout(PROBE_DEADLINE, provider.probe()).await {
        Ok(r) => r,
        Err(_) => Err(ProviderError::Timeout(format!(
            "{} did not answer within {PROBE_DEADLINE:?}",
            account.key
        ))),
    };
    match answered {
        Ok(()) => {
            account_status::report(ctx, &account, Reach::Reached(provider.reached())).await;
            count_functions(ctx, &account, provider.as_ref(), governed).await;
        }
        Err(e) => account_status::report(ctx, &account, Reach::Failed(&e)).await,
    }
}
