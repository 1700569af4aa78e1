//! The engine: observe → plan → (Enforce) apply → re-observe, cloud-neutral.
//!
//! Used by the CLI for a batch of postures and by the controller for one
//! posture per reconcile. Audit never writes. Status reports the plan made
//! from the re-observation, i.e. what is true, not what was sent.

use crate::api::Mode;
use crate::providers::{Action, ActionSummary, MintIntent, MintedIdentity, Plan, Posture, Provider, ProviderError};
use futures::StreamExt;
use futures::future::BoxFuture;
use std::sync::Arc;

/// What enforcement did for one posture.
#[derive(Debug, Default)]
pub struct Applied {
    pub done: Vec<ActionSummary>,
    /// The action that failed, and why; the rest of the plan was not applied.
    pub failed: Option<(ActionSummary, ProviderError)>,
    /// Identities the provider has minted for the posture (this enforcement
    /// or earlier ones in this process), to be recorded where the next run
    /// finds them (the posture's status).
    pub minted: Vec<MintedIdentity>,
}

impl Applied {
    pub fn wrote(&self) -> bool {
        !self.done.is_empty() || self.failed.is_some()
    }
}

/// Whether enforcement would act on this plan.
pub fn should_apply(posture: &Posture, plan: &Plan) -> bool {
    posture.mode() == Mode::Enforce && plan.blocked.is_none() && !plan.actions.is_empty()
}

/// Where a newly minted identity is recorded before the plan goes on. The
/// record is the only proof that zerofn made the identity, so it must be
/// durable before the function is switched to it: a crash in between would
/// otherwise leave an identity zerofn may never change or adopt.
pub trait MintLog: Send + Sync {
    fn record<'a>(&'a self, minted: &'a [MintedIdentity]) -> BoxFuture<'a, Result<(), String>>;

    /// Keep the write-ahead record of an identity about to be created; the
    /// create call is only sent once this returns Ok.
    fn intend<'a>(&'a self, intent: &'a MintIntent) -> BoxFuture<'a, Result<(), String>>;

    /// Called once before the first write of a plan: any write may set the
    /// ownership marker, and a deletion must know whether one may exist. A
    /// failure stops the plan before anything is written.
    fn writing(&self) -> BoxFuture<'_, Result<(), String>>;

    /// Called with the first observation when Enforce is about to fix what
    /// it found: the drift is shown (the controller's status goes Ready
    /// False and says why) before it is fixed, not only after. Nothing to
    /// do by default (the CLI reports at the end).
    fn before_fixing<'a>(&'a self, _found: &'a Plan) -> BoxFuture<'a, ()> {
        Box::pin(async {})
    }
}

/// The CLI's log without `--state`: a run keeps its records in the
/// providers' memory, and a later run cannot prove what this one minted
/// (`cli::state` is the durable one).
pub struct InMemory;

impl MintLog for InMemory {
    fn record<'a>(&'a self, _minted: &'a [MintedIdentity]) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async { Ok(()) })
    }

    fn intend<'a>(&'a self, _intent: &'a MintIntent) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async { Ok(()) })
    }

    fn writing(&self) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async { Ok(()) })
    }
}

/// Apply a plan's actions in order; stop at the first failure (later actions
/// may depend on it, e.g. a role switch on the role's creation). An identity
/// minted by an action is recorded in `log` before the next action runs, and
/// the intent to mint it before the action itself.
pub async fn apply(provider: &dyn Provider, posture: &Posture, actions: &[Action], log: &dyn MintLog) -> Applied {
    let mut out = Applied::default();
    if let Some(first) = actions.first()
        && let Err(e) = log.writing().await
    {
        tracing::warn!(posture = %posture.owner, error = %e, "recording that zerofn writes failed; nothing is written");
        out.failed = Some((first.summary(), ProviderError::MarkUnrecorded(e)));
        return out;
    }
    let mut known = provider.minted(posture);
    for a in actions {
        let summary = a.summary();
        if let Some(intent) = provider.intent(posture, a)
            && let Err(e) = log.intend(&intent).await
        {
            tracing::warn!(posture = %posture.owner, error = %e, "recording the intent to mint an identity failed; the plan stops here");
            out.failed = Some((summary, ProviderError::Unrecorded(e)));
            break;
        }
        match provider.apply(posture, a).await {
            Ok(()) => {
                tracing::info!(posture = %posture.owner, op = %summary.op, target = %summary.target, "{}", summary.detail);
                out.done.push(summary.clone());
            }
            Err(e) => {
                tracing::warn!(posture = %posture.owner, op = %summary.op, error = %e, "action failed");
                out.failed = Some((summary, e));
                break;
            }
        }
        let new: Vec<MintedIdentity> = provider
            .minted(posture)
            .into_iter()
            .filter(|m| !known.contains(m))
            .collect();
        if new.is_empty() {
            continue;
        }
        if let Err(e) = log.record(&new).await {
            tracing::warn!(posture = %posture.owner, error = %e, "recording a minted identity failed; the plan stops here");
            out.failed = Some((summary, ProviderError::Unrecorded(e)));
            break;
        }
        known.extend(new);
    }
    out
}

/// One posture, start to end: the controller's unit of work.
#[derive(Debug)]
pub struct Outcome {
    /// The plan from the first observation (what was wrong).
    pub before: Plan,
    pub applied: Applied,
    /// The plan from the re-observation after enforcing; None when nothing
    /// was written (then `before` is still the truth).
    pub after: Option<Plan>,
}

impl Outcome {
    /// The plan that describes the cloud now.
    pub fn current(&self) -> &Plan {
        self.after.as_ref().unwrap_or(&self.before)
    }
}

pub async fn reconcile(
    provider: &dyn Provider,
    posture: &Posture,
    log: &dyn MintLog,
) -> Result<Outcome, ProviderError> {
    let before = provider.assess(posture).await?;
    if !should_apply(posture, &before) {
        return Ok(Outcome {
            before,
            applied: Applied::default(),
            after: None,
        });
    }
    log.before_fixing(&before).await;
    let mut applied = apply(provider, posture, &before.actions, log).await;
    applied.minted = provider.minted(posture);
    provider.invalidate();
    let after = provider.assess(&with_minted(posture, &applied.minted)).await?;
    Ok(Outcome {
        before,
        applied,
        after: Some(after),
    })
}

/// Add records of minted identities to a list, keeping every record already
/// there: a record is only dropped with the posture itself.
pub fn record_minted(into: &mut Vec<MintedIdentity>, new: &[MintedIdentity]) {
    for m in new {
        if !into.contains(m) {
            into.push(m.clone());
        }
    }
}

/// Add write-ahead records to a list, keeping every record already there
/// (one per principal: the first is the one the create call stamped).
pub fn record_intents(into: &mut Vec<MintIntent>, new: &[MintIntent]) {
    for i in new {
        if !into.iter().any(|have| have.principal == i.principal) {
            into.push(i.clone());
        }
    }
}

/// The posture as the re-observation must see it: with what was just minted.
fn with_minted(posture: &Posture, minted: &[MintedIdentity]) -> Posture {
    let mut p = posture.clone();
    record_minted(&mut p.minted, minted);
    p
}

/// A posture together with the provider of its account.
#[derive(Clone)]
pub struct Bound {
    pub posture: Posture,
    pub provider: Arc<dyn Provider>,
}

/// Assess many postures, `concurrency` at a time (per-account pacing is the
/// provider's). Results keep the input order.
pub async fn assess_all(items: &[Bound], concurrency: usize) -> Vec<Result<Plan, ProviderError>> {
    futures::stream::iter(items.iter())
        .map(|b| async move { b.provider.assess(&b.posture).await })
        .buffered(concurrency.max(1))
        .collect()
        .await
}

/// Enforce a batch: apply every Enforce posture's plan, then re-observe all
/// postures once (account-wide observations are read again only once per
/// account, not once per posture). `log_for` gives each posture the log
/// its minted identities are recorded in.
pub async fn enforce_all(
    items: &[Bound],
    plans: &[Result<Plan, ProviderError>],
    concurrency: usize,
    log_for: &(dyn Fn(&Posture) -> Box<dyn MintLog> + Sync),
) -> (Vec<Applied>, Vec<Result<Plan, ProviderError>>) {
    let applied: Vec<Applied> = futures::stream::iter(items.iter().zip(plans))
        .map(|(b, plan)| async move {
            let mut applied = match plan {
                Ok(plan) if should_apply(&b.posture, plan) => {
                    let log = log_for(&b.posture);
                    apply(b.provider.as_ref(), &b.posture, &plan.actions, log.as_ref()).await
                }
                _ => Applied::default(),
            };
            applied.minted = b.provider.minted(&b.posture);
            applied
        })
        .buffered(concurrency.max(1))
        .collect()
        .await;
    for b in items {
        b.provider.invalidate();
    }
    let again: Vec<Bound> = items
        .iter()
        .zip(&applied)
        .map(|(b, a)| Bound {
            posture: with_minted(&b.posture, &a.minted),
            provider: b.provider.clone(),
        })
        .collect();
    let after = assess_all(&again, concurrency).await;
    (applied, after)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{SpecExt, aws_spec};
    use crate::providers::adapter::Adapter;
    use crate::providers::testing::{MINTED, TestCloud, role};
    use futures::FutureExt;
    use futures::future::BoxFuture;
    use std::sync::Mutex;

    type Fake = Adapter<TestCloud>;

    fn fake(drift: &[&str]) -> Fake {
        Adapter::new(TestCloud::drifting(drift))
    }

    /// A log that notes what had been applied when each record arrived.
    struct Log<'f> {
        fake: &'f Fake,
        fail: bool,
        fail_intent: bool,
        fail_writing: bool,
        records: Mutex<Vec<(Vec<MintedIdentity>, Vec<String>)>>,
        intents: Mutex<Vec<(MintIntent, Vec<String>)>>,
        /// How many actions had been applied at each `writing` call.
        writing: Mutex<Vec<usize>>,
    }

    impl MintLog for Log<'_> {
        fn record<'a>(&'a self, minted: &'a [MintedIdentity]) -> BoxFuture<'a, Result<(), String>> {
            async move {
                let applied = self.fake.inner().applied();
                self.records.lock().unwrap().push((minted.to_vec(), applied));
                if self.fail {
                    Err("status write refused".into())
                } else {
                    Ok(())
                }
            }
            .boxed()
        }
        fn intend<'a>(&'a self, intent: &'a MintIntent) -> BoxFuture<'a, Result<(), String>> {
            async move {
                let applied = self.fake.inner().applied();
                self.intents.lock().unwrap().push((intent.clone(), applied));
                if self.fail_intent {
                    Err("status write refused".into())
                } else {
                    Ok(())
                }
            }
            .boxed()
        }
        fn writing(&self) -> BoxFuture<'_, Result<(), String>> {
            async move {
                let applied = self.fake.inner().applied().len();
                self.writing.lock().unwrap().push(applied);
                if self.fail_writing {
                    Err("status write refused".into())
                } else {
                    Ok(())
                }
            }
            .boxed()
        }
    }

    fn log(fake: &Fake, fail: bool) -> Log<'_> {
        Log {
            fake,
            fail,
            fail_intent: false,
            fail_writing: false,
            records: Mutex::default(),
            intents: Mutex::default(),
            writing: Mutex::default(),
        }
    }

    #[tokio::test]
    async fn zerofn_records_that_it_writes_before_the_first_write() {
        let f = fake(&["tag", "url"]);
        let l = log(&f, false);
        let o = reconcile(&f, &posture(Mode::Enforce), &l).await.unwrap();
        assert!(o.applied.failed.is_none());
        assert_eq!(*l.writing.lock().unwrap(), vec![0], "once, before any action");

        // Nothing to write: nothing recorded.
        let f = fake(&[]);
        let l = log(&f, false);
        reconcile(&f, &posture(Mode::Enforce), &l).await.unwrap();
        assert!(l.writing.lock().unwrap().is_empty());

        // The record failed: nothing is written.
        let f = fake(&["tag"]);
        let l = Log {
            fail_writing: true,
            ..log(&f, false)
        };
        let o = reconcile(&f, &posture(Mode::Enforce), &l).await.unwrap();
        assert!(matches!(o.applied.failed, Some((_, ProviderError::MarkUnrecorded(_)))));
        assert!(f.inner().applied().is_empty());
    }

    #[tokio::test]
    async fn a_minted_identity_is_recorded_before_the_next_action_runs() {
        let f = Adapter::new(TestCloud {
            mint_on: Some("create".into()),
            ..TestCloud::drifting(&["create", "switch"])
        });
        let log = log(&f, false);
        let o = reconcile(&f, &posture(Mode::Enforce), &log).await.unwrap();
        assert!(o.applied.failed.is_none());
        let records = log.records.lock().unwrap().clone();
        assert_eq!(records, vec![(vec![role(MINTED)], vec!["create".to_string()])]);
        assert_eq!(f.inner().applied(), vec!["create", "switch"]);
        // The intent was kept before the create call was sent.
        let intents = log.intents.lock().unwrap().clone();
        assert_eq!(intents.len(), 1);
        assert_eq!(intents[0].0.principal, role(MINTED).principal);
        assert!(intents[0].1.is_empty(), "{intents:?}");
    }

    #[tokio::test]
    async fn an_unrecorded_intent_stops_the_plan_before_the_create() {
        let f = Adapter::new(TestCloud {
            mint_on: Some("create".into()),
            ..TestCloud::drifting(&["create", "switch"])
        });
        let log = Log {
            fail_intent: true,
            ..log(&f, false)
        };
        let o = reconcile(&f, &posture(Mode::Enforce), &log).await.unwrap();
        assert!(matches!(o.applied.failed, Some((_, ProviderError::Unrecorded(_)))));
        assert!(f.inner().applied().is_empty());
    }

    #[tokio::test]
    async fn an_unrecorded_mint_stops_the_plan_before_the_switch() {
        let f = Adapter::new(TestCloud {
            mint_on: Some("create".into()),
            ..TestCloud::drifting(&["create", "switch"])
        });
        let log = log(&f, true);
        let o = reconcile(&f, &posture(Mode::Enforce), &log).await.unwrap();
        assert!(matches!(o.applied.failed, Some((_, ProviderError::Unrecorded(_)))));
        assert_eq!(f.inner().applied(), vec!["create"]);
    }

    #[tokio::test]
    async fn minted_identities_reach_the_outcome_and_the_reobservation() {
        let f = Adapter::new(TestCloud {
            mints: vec![role(2)],
            ..TestCloud::drifting(&["a"])
        });
        let mut p = posture(Mode::Enforce);
        p.minted = vec![role(1)];
        let o = reconcile(&f, &p, &InMemory).await.unwrap();
        assert_eq!(o.applied.minted, vec![role(2)]);
        let seen = f.inner().seen_minted.lock().unwrap().clone();
        assert_eq!(seen, vec![vec![role(1)], vec![role(1), role(2)]]);

        // The batch form does the same.
        let f = Arc::new(Adapter::new(TestCloud {
            mints: vec![role(3)],
            ..TestCloud::drifting(&["a"])
        }));
        let items = vec![Bound {
            posture: posture(Mode::Enforce),
            provider: f.clone(),
        }];
        let plans = assess_all(&items, 1).await;
        let (applied, _) = enforce_all(&items, &plans, 1, &|_| Box::new(InMemory)).await;
        assert_eq!(applied[0].minted, vec![role(3)]);
        assert_eq!(f.inner().seen_minted.lock().unwrap().last().unwrap(), &vec![role(3)]);
    }

    #[test]
    fn records_are_merged_never_dropped() {
        let mut held = vec![role(1), role(2)];
        record_minted(&mut held, &[role(2), role(3)]);
        assert_eq!(held, vec![role(1), role(2), role(3)]);
        record_minted(&mut held, &[]);
        assert_eq!(held.len(), 3);
    }

    fn posture(mode: Mode) -> Posture {
        Posture::new("c", "ns", "p", aws_spec("f").with_mode(mode))
    }

    #[tokio::test]
    async fn audit_observes_and_never_writes() {
        let f = fake(&["a", "b"]);
        let o = reconcile(&f, &posture(Mode::Audit), &InMemory).await.unwrap();
        assert_eq!(o.current().findings.len(), 2);
        assert!(f.inner().applied().is_empty());
        assert!(o.after.is_none());
    }

    #[tokio::test]
    async fn enforce_applies_then_reports_the_reobserved_state() {
        let f = fake(&["a", "b"]);
        let o = reconcile(&f, &posture(Mode::Enforce), &InMemory).await.unwrap();
        assert_eq!(f.inner().applied(), vec!["a", "b"]);
        assert_eq!(
            *f.inner().invalidated.lock().unwrap(),
            1,
            "cached observations are dropped after writing"
        );
        assert_eq!(*f.inner().assessed.lock().unwrap(), 2);
        assert!(o.current().compliant());
        assert_eq!(o.before.findings.len(), 2);
    }

    #[tokio::test]
    async fn compliant_posture_is_observed_once_and_written_never() {
        let f = fake(&[]);
        let o = reconcile(&f, &posture(Mode::Enforce), &InMemory).await.unwrap();
        assert_eq!(*f.inner().assessed.lock().unwrap(), 1);
        assert!(!o.applied.wrote());
    }

    #[tokio::test]
    async fn a_failed_action_stops_the_rest() {
        let f = Adapter::new(TestCloud {
            fail_on: Some("b".into()),
            ..TestCloud::drifting(&["a", "b", "c"])
        });
        let o = reconcile(&f, &posture(Mode::Enforce), &InMemory).await.unwrap();
        assert_eq!(f.inner().applied(), vec!["a"]);
        let (failed, e) = o.applied.failed.as_ref().unwrap();
        assert_eq!((failed.op.as_str(), failed.detail.as_str()), ("Fix", "b"));
        assert!(matches!(e, crate::providers::ProviderError::Refused(_)), "{e}");
        assert_eq!(o.current().findings.len(), 2, "status shows what is still wrong");
    }

    #[tokio::test]
    async fn a_blocked_plan_writes_nothing() {
        let f = Adapter::new(TestCloud {
            blocked: true,
            ..TestCloud::drifting(&["a"])
        });
        let o = reconcile(&f, &posture(Mode::Enforce), &InMemory).await.unwrap();
        assert!(f.inner().applied().is_empty());
        assert!(o.before.blocked.is_some());
    }

    #[tokio::test]
    async fn batches_reobserve_after_applying_everything() {
        let f: Arc<dyn Provider> = Arc::new(fake(&["a"]));
        let items = vec![
            Bound {
                posture: posture(Mode::Enforce),
                provider: f.clone(),
            },
            Bound {
                posture: posture(Mode::Audit),
                provider: f.clone(),
            },
        ];
        let plans = assess_all(&items, 4).await;
        let (applied, after) = enforce_all(&items, &plans, 4, &|_| Box::new(InMemory)).await;
        assert!(applied[0].wrote());
        assert!(!applied[1].wrote());
        assert!(after.iter().all(|p| p.as_ref().unwrap().compliant()));
    }
}
