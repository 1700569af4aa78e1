//! Cloud change events as a reconcile trigger. Every account that declares
//! a feed gets one consumer: it long-polls the feed, maps each event to the
//! postures it affects, requeues them at once (the controller coalesces
//! them), and only then deletes the messages. zerofn's own writes are
//! skipped. The periodic resync stays the safety net: a feed that fails
//! only turns the account's `EventsReady` False.

use super::account_probe::{self, Known};
use super::cached::CachedPosture;
use super::connect::connect;
use super::context::Context;
use super::posture::each_live_posture;
use crate::accounts::ResolvedAccount;
use crate::api::{AccountConfig, Condition, EventFeedStatus};
use crate::events::{Decoded, Touched};
use crate::fleet;
use crate::metrics::{CloudLabels, EventLabels, EventOutcome};
use crate::providers::feed::EventFeed;
use crate::providers::{Provider, ProviderError};
use crate::reason::Reason;
use kube::ResourceExt;
use kube::runtime::reflector::ObjectRef;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// How often the set of consumers is compared with the accounts.
const TICK: Duration = Duration::from_secs(2);
/// One receive's deadline: the long poll (20 s at most) and its answer.
const RECEIVE_DEADLINE: Duration = Duration::from_secs(60);
/// One delete's deadline.
const DELETE_DEADLINE: Duration = Duration::from_secs(30);
/// Pauses after a failed read: doubling from the first to the last.
const BACKOFF: (Duration, Duration) = (Duration::from_secs(1), Duration::from_secs(30));

/// Whether a feed is read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum FeedState {
    #[default]
    Starting,
    Flowing,
    Failing {
        reason: Reason,
        message: String,
    },
}

/// One feed as the account's status shows it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FeedHealth {
    pub state: FeedState,
    pub counts: EventFeedStatus,
}

impl FeedHealth {
    /// The account's `EventsReady` condition.
    pub fn condition(&self, generation: Option<i64>, now: &str) -> Condition {
        let (status, reason, message) = match &self.state {
            FeedState::Starting => (
                "Unknown",
                Reason::EventsStarting,
                "the feed has not been read yet".to_string(),
            ),
            FeedState::Flowing => ("True", Reason::EventsFlowing, "the feed is read".to_string()),
            FeedState::Failing { reason, message } => (
                "False",
                *reason,
                format!("{message}; the resync still checks every posture"),
            ),
        };
        Condition {
            type_: "EventsReady".into(),
            status: status.into(),
            observed_generation: generation,
            last_transition_time: now.to_string(),
            reason: reason.to_string(),
            message,
        }
    }
}

/// Every feed's health, by account key, shared by the consumers (which
/// write it) and the account probe (which reports it). An account whose
/// feed changed state is probed again at once, so EventsReady moves within
/// a probe tick rather than a resync; new counts are reported at most every
/// `COUNTS_EVERY`, so a busy feed does not write the account's status for
/// each event.
#[derive(Default)]
pub struct FeedBoard {
    feeds: Mutex<HashMap<String, Board>>,
}

#[derive(Default)]
struct Board {
    health: FeedHealth,
    state_changed: bool,
    counted: bool,
    reported: Option<Instant>,
}

/// How often a feed's counts alone make its account's status written.
const COUNTS_EVERY: Duration = Duration::from_secs(30);

impl FeedBoard {
    pub fn health(&self, key: &str) -> FeedHealth {
        lock(&self.feeds).get(key).map(|b| b.health.clone()).unwrap_or_default()
    }

    /// Accounts whose feed changed state, or whose counts moved and were
    /// last reported `COUNTS_EVERY` ago: their status is due now.
    pub fn take_due(&self) -> HashSet<String> {
        let now = Instant::now();
        lock(&self.feeds)
            .iter_mut()
            .filter(|(_, b)| {
                b.state_changed || (b.counted && b.reported.is_none_or(|t| now.duration_since(t) >= COUNTS_EVERY))
            })
            .map(|(key, b)| {
                (b.state_changed, b.counted, b.reported) = (false, false, Some(now));
                key.clone()
            })
            .collect()
    }

    fn set_state(&self, key: &str, state: FeedState) {
        let mut feeds = lock(&self.feeds);
        let board = feeds.entry(key.to_string()).or_default();
        if board.health.state != state {
            board.health.state = state;
            board.state_changed = true;
        }
    }

    fn count(&self, key: &str, f: impl FnOnce(&mut EventFeedStatus)) {
        let mut feeds = lock(&self.feeds);
        let board = feeds.entry(key.to_string()).or_default();
        f(&mut board.health.counts);
        board.counted = true;
    }

    fn forget(&self, key: &str) {
        lock(&self.feeds).remove(key);
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The postures to requeue, as the controller's trigger stream takes them.
pub type Requeue = mpsc::Sender<ObjectRef<CachedPosture>>;

/// Keep one consumer per account that declares a feed, forever (dropped
/// with the controller, so only the leader reads feeds).
pub async fn run(ctx: Arc<Context>, requeue: Requeue) {
    ctx.accounts_synced().await;
    let mut running: HashMap<String, (AccountConfig, tokio::task::JoinHandle<()>)> = HashMap::new();
    loop {
        let wanted: HashMap<String, ResolvedAccount> = account_probe::known(&ctx)
            .into_iter()
            .filter_map(|k: Known| k.resolved_with_events(&ctx.settings.namespace))
            .map(|a| (a.key.clone(), a))
            .collect();
        running.retain(|key, (config, task)| {
            let keep = wanted.get(key).is_some_and(|a| &a.config == config);
            if !keep {
                task.abort();
                ctx.feeds.forget(key);
            }
            keep
        });
        for (key, account) in wanted {
            if running.contains_key(&key) {
                continue;
            }
            let config = account.config.clone();
            let task = tokio::spawn(consume(ctx.clone(), account, requeue.clone()));
            running.insert(key, (config, task));
        }
        tokio::time::sleep(TICK).await;
    }
}

/// Read one account's feed until aborted.
async fn consume(ctx: Arc<Context>, account: ResolvedAccount, requeue: Requeue) {
    let cloud = account.config.cloud().as_str();
    let mut pause = BACKOFF.0;
    loop {
        match round(&ctx, &account, &requeue).await {
            Ok(()) => {
                ctx.feeds.set_state(&account.key, FeedState::Flowing);
                pause = BACKOFF.0;
            }
            Err((reason, message)) => {
                tracing::warn!(account = %account.key, %message, "change-event feed not read");
                ctx.metrics
                    .event_feed_errors
                    .get_or_create(&CloudLabels { cloud })
                    .inc();
                ctx.feeds
                    .set_state(&account.key, FeedState::Failing { reason, message });
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(BACKOFF.1);
            }
        }
    }
}

type Failure = (Reason, String);

fn failure(e: &ProviderError) -> Failure {
    (e.reason(), e.to_string())
}

async fn bounded<T>(
    deadline: Duration,
    what: &str,
    call: impl Future<Output = Result<T, ProviderError>>,
) -> Result<T, Failure> {
    match tokio::time::timeout(deadline, call).await {
        Ok(r) => r.map_err(|e| failure(&e)),
        Err(_) => Err(failure(&ProviderError::Timeout(format!(
            "{what} did not answer within {deadline:?}"
        )))),
    }
}

/// One receive, its requeues, then its deletes.
async fn round(ctx: &Context, account: &ResolvedAccount, requeue: &Requeue) -> Result<(), Failure> {
    let provider = connect(ctx, account).await.map_err(|u| (u.reason(), u.to_string()))?;
    let Some(feed) = provider.feed() else {
        return Err(failure(&ProviderError::Config(format!(
            "{} declares events, but its cloud's provider has no feed for them",
            account.key
        ))));
    };
    let batch = bounded(RECEIVE_DEADLINE, feed.name(), feed.receive()).await?;
    if batch.is_empty() {
        return Ok(());
    }
    ctx.feeds.set_state(&account.key, FeedState::Flowing);
    let changes: Vec<&Touched> = batch
        .iter()
        .filter_map(|m| match &m.event {
            Ok(Decoded::Change(t)) => Some(t),
            _ => None,
        })
        .collect();
    let governed = Governed::of(ctx, account, provider.as_ref(), &changes).await;
    let mut refs = HashSet::new();
    let mut receipts = Vec::with_capacity(batch.len());
    for message in batch {
        let outcome = match message.event {
            Ok(Decoded::Change(touched)) => triage(ctx, account, feed.as_ref(), &touched, &governed, &mut refs).await,
            Ok(Decoded::Unwatched(what)) => {
                tracing::debug!(account = %account.key, %what, "event not watched");
                EventOutcome::dropped
            }
            Err(e) => {
                tracing::info!(account = %account.key, error = %e, "event dropped");
                EventOutcome::dropped
            }
        };
        record(ctx, account, outcome);
        receipts.push(message.receipt);
    }
    for r in refs {
        // The controller may be stopping: the message stays for the next.
        if requeue.send(r).await.is_err() {
            return Ok(());
        }
    }
    bounded(DELETE_DEADLINE, feed.name(), feed.delete(&receipts)).await
}

/// What one change is: zerofn's own, for postures (added to `refs`), or
/// for no governed function.
async fn triage(
    ctx: &Context,
    account: &ResolvedAccount,
    feed: &dyn EventFeed,
    touched: &Touched,
    governed: &Governed,
    refs: &mut HashSet<ObjectRef<CachedPosture>>,
) -> EventOutcome {
    if let Some(at) = touched.time {
        let lag = jiff::Timestamp::now().duration_since(at).as_secs_f64().max(0.0);
        ctx.metrics.event_lag.observe(lag);
        ctx.feeds
            .count(&account.key, |c| c.lag_seconds = Some(lag.round() as u64));
    }
    if let Some(actor) = &touched.actor
        && feed.is_own(actor).await
    {
        return EventOutcome::own;
    }
    let hits = governed.hits(account, touched);
    let mapped = !hits.is_empty();
    refs.extend(hits.into_iter().cloned());
    if mapped {
        EventOutcome::mapped
    } else {
        EventOutcome::dropped
    }
}

/// What a batch's changes are matched against, gathered once per batch:
/// the account's live postures, and the functions running as each identity
/// a change of the batch named.
#[derive(Default)]
struct Governed {
    /// Each posture with the function it governs (conflict-index key) and
    /// whether it declares identity.
    postures: Vec<(ObjectRef<CachedPosture>, String, bool)>,
    /// Identity → the keys of the functions running as it.
    by_identity: HashMap<String, HashSet<String>>,
}

impl Governed {
    async fn of(ctx: &Context, account: &ResolvedAccount, provider: &dyn Provider, changes: &[&Touched]) -> Governed {
        if changes.is_empty() {
            return Governed::default();
        }
        let named: HashSet<&String> = changes.iter().flat_map(|t| &t.identities).collect();
        Governed {
            postures: live_postures(ctx, account),
            by_identity: functions_by_identity(account, provider, &named).await,
        }
    }

    /// The postures a change reaches: one governing a function it names,
    /// one whose function runs as an identity it names, or, when it cannot
    /// say which identity, every one that declares identity.
    fn hits(&self, account: &ResolvedAccount, touched: &Touched) -> Vec<&ObjectRef<CachedPosture>> {
        let named: HashSet<String> = touched
            .functions
            .iter()
            .map(|f| fleet::function_key(account, f))
            .collect();
        let running_as: HashSet<&String> = touched
            .identities
            .iter()
            .filter_map(|i| self.by_identity.get(i))
            .flatten()
            .collect();
        self.postures
            .iter()
            .filter(|(_, key, declares_identity)| {
                named.contains(key) || running_as.contains(key) || (touched.identity_wide && *declares_identity)
            })
            .map(|(posture, _, _)| posture)
            .collect()
    }
}

/// The functions running as an identity a change named, from the
/// account's shared inventory (one listing for the batch). A listing that
/// fails maps none of them: the resync still reaches them.
async fn functions_by_identity(
    account: &ResolvedAccount,
    provider: &dyn Provider,
    named: &HashSet<&String>,
) -> HashMap<String, HashSet<String>> {
    let mut out: HashMap<String, HashSet<String>> = HashMap::new();
    if named.is_empty() {
        return out;
    }
    match bounded(RECEIVE_DEADLINE, "the function listing", provider.functions()).await {
        Ok(listed) => {
            for f in listed.iter() {
                if let Some(identity) = f.identity.as_ref().filter(|i| named.contains(i)) {
                    out.entry(identity.clone())
                        .or_default()
                        .insert(fleet::function_key(account, &f.target));
                }
            }
        }
        Err((_, message)) => {
            tracing::info!(account = %account.key, %message, "an identity's functions not listed");
        }
    }
    out
}

/// The postures of this account that are not being deleted: each with the
/// function it governs (conflict-index key) and whether it declares
/// identity.
fn live_postures(ctx: &Context, account: &ResolvedAccount) -> Vec<(ObjectRef<CachedPosture>, String, bool)> {
    let mut out = Vec::new();
    each_live_posture(ctx, |p, ns, spec, resolved| {
        if resolved.key == account.key {
            out.push((
                ObjectRef::new(&p.name_any()).within(ns),
                fleet::function_key(account, &spec.function),
                spec.identity.is_some(),
            ));
        }
    });
    out
}

fn record(ctx: &Context, account: &ResolvedAccount, outcome: EventOutcome) {
    let cloud = account.config.cloud().as_str();
    for o in [EventOutcome::received, outcome] {
        ctx.metrics
            .events
            .get_or_create(&EventLabels { cloud, outcome: o })
            .inc();
    }
    let now = jiff::Timestamp::now().to_string();
    ctx.feeds.count(&account.key, |c| {
        c.received += 1;
        c.last_event_time = Some(now);
        match outcome {
            EventOutcome::mapped => c.mapped += 1,
            EventOutcome::own => c.own += 1,
            EventOutcome::dropped | EventOutcome::received => c.dropped += 1,
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{AccountConfig, AccountKind, AwsAccount, AwsFunctionRef, FunctionTarget};

    fn account() -> ResolvedAccount {
        ResolvedAccount {
            key: "ClusterCloudAccount/prod".into(),
            kind: AccountKind::ClusterCloudAccount,
            namespace: None,
            name: "prod".into(),
            config: AccountConfig::Aws(AwsAccount {
                region: "eu-west-1".into(),
                account_id: Some("123456789012".into()),
                ..AwsAccount::default()
            }),
            secret_namespace: "zerofn".into(),
        }
    }

    fn function(name: &str) -> FunctionTarget {
        FunctionTarget {
            aws: Some(AwsFunctionRef {
                name: name.into(),
                region: None,
            }),
            azure: None,
            gcp: None,
        }
    }

    /// Three postures: `orders` (declares identity, runs as the shared
    /// role), `billing` (runs as the shared role), `reports` (neither).
    fn governed() -> Governed {
        let a = account();
        let posture = |name: &str, identity: bool| {
            (
                ObjectRef::new(name).within("shop"),
                fleet::function_key(&a, &function(name)),
                identity,
            )
        };
        let shared: HashSet<String> = ["orders", "billing"]
            .iter()
            .map(|n| fleet::function_key(&a, &function(n)))
            .collect();
        Governed {
            postures: vec![
                posture("orders", true),
                posture("billing", false),
                posture("reports", false),
            ],
            by_identity: [("arn:aws:iam::123456789012:role/shared".to_string(), shared)].into(),
        }
    }

    fn names(hits: Vec<&ObjectRef<CachedPosture>>) -> Vec<String> {
        let mut n: Vec<String> = hits.into_iter().map(|r| r.name.clone()).collect();
        n.sort();
        n
    }

    #[test]
    fn a_change_reaches_the_postures_of_what_it_names() {
        let g = governed();
        let a = account();
        let named = Touched {
            functions: vec![function("reports")],
            ..Touched::default()
        };
        assert_eq!(names(g.hits(&a, &named)), vec!["reports"]);
        let role = Touched {
            identities: vec!["arn:aws:iam::123456789012:role/shared".into()],
            ..Touched::default()
        };
        assert_eq!(names(g.hits(&a, &role)), vec!["billing", "orders"]);
        let wide = Touched {
            identity_wide: true,
            ..Touched::default()
        };
        assert_eq!(names(g.hits(&a, &wide)), vec!["orders"]);
        let other = Touched {
            functions: vec![function("ungoverned")],
            identities: vec!["arn:aws:iam::123456789012:role/other".into()],
            ..Touched::default()
        };
        assert!(g.hits(&a, &other).is_empty());
    }
}
