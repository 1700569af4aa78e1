//! Reconciling one FunctionPosture, as named steps: validate → resolve the
//! account → connect → hold the function (in-cluster conflicts) → run the
//! engine → report (status and events). A step that cannot go on says why
//! (`Halt`); `apply` turns that into the status and the next requeue.
//! Deleting a posture releases its ownership marker and nothing else.

use super::account_status::{self, Reach};
use super::cached::CachedPosture;
use super::conflict::{Claimant, function_key};
use super::connect::{Unusable, connect};
use super::context::Context;
use super::error::Error;
use super::reporter::{Reporter, now};
use super::secrets::SecretError;
use super::status::{self, Observation};
use crate::accounts::{self, ResolvedAccount};
use crate::api::{FunctionPosture, FunctionPostureSpec, FunctionPostureStatus, duration, validate};
use crate::engine;
use crate::providers::{Blocked, Posture, Provider, ProviderError};
use crate::reason::Reason;
use kube::api::ObjectMeta;
use kube::api::{Api, Patch, PatchParams};
use kube::core::DeserializeGuard;
use kube::core::error_boundary::InvalidObject;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::finalizer::{Event as Finalizer, finalizer};
use kube::runtime::reflector::ObjectRef;
use kube::{Resource, ResourceExt};
use std::sync::Arc;
use std::time::Duration;

/// Held while the posture's ownership marker may be in the cloud.
pub const FINALIZER: &str = "zerofn.dev/release-ownership";

/// Up to +10% jitter so postures created together do not resync together.
fn jittered(d: Duration) -> Duration {
    d + d.mul_f64(fastrand::f64() * 0.1)
}

pub async fn reconcile(obj: Arc<CachedPosture>, ctx: Arc<Context>) -> Result<Action, Error> {
    let started = std::time::Instant::now();
    tracing::debug!("reconcile started");
    let result = match obj.posture() {
        Ok(fp) => {
            let ns = fp.namespace().unwrap_or_default();
            let api: Api<FunctionPosture> = Api::namespaced(ctx.client.clone(), &ns);
            finalizer(&api, FINALIZER, Arc::new(fp), |event| async {
                match event {
                    Finalizer::Apply(fp) => apply(&fp, &ctx).await,
                    Finalizer::Cleanup(fp) => cleanup(&fp, &ctx).await,
                }
            })
            .await
            .map_err(|e| Error::Finalizer(Box::new(e)))
        }
        Err(invalid) => report_invalid(&invalid, &ctx).await,
    };
    ctx.metrics.reconcile_duration.observe(started.elapsed().as_secs_f64());
    let label = if result.is_ok() { "ok" } else { "error" };
    ctx.metrics
        .reconciles
        .get_or_create(&crate::metrics::ResultLabels { result: label })
        .inc();
    if result.is_ok() {
        ctx.reset_failures(&obj.meta().namespace, &obj.meta().name);
    }
    result
}

/// Backoff per posture after a failed reconcile: exponential with jitter;
/// throttling waits at least a minute so the account's quota recovers.
pub fn error_policy(obj: Arc<CachedPosture>, err: &Error, ctx: Arc<Context>) -> Action {
    let category = err.category();
    ctx.metrics
        .errors
        .get_or_create(&crate::metrics::CategoryLabels { category })
        .inc();
    let n = ctx.count_failure(&obj.meta().namespace, &obj.meta().name);
    let mut wait = backoff(n, err);
    // A deletion retries its release no later than when `--release-timeout`
    // runs out, then gives up: the backoff alone could add minutes.
    if obj.meta().deletion_timestamp.is_some() {
        wait = wait.min(release_time_left(obj.meta(), ctx.settings.release_timeout) + Duration::from_millis(500));
    }
    tracing::warn!(posture = ?obj.meta().name, error = %err, category, retry_in = ?wait, "reconcile failed");
    Action::requeue(wait)
}

/// After `failures` failures in a row: 5 s doubling to 5 min, ±20%
/// jitter; throttling waits at least a minute so the account's quota
/// recovers.
fn backoff(failures: u32, err: &Error) -> Duration {
    let mut wait = Duration::from_secs(5)
        .saturating_mul(1 << failures.min(6))
        .min(Duration::from_secs(300));
    if matches!(err.provider(), Some(ProviderError::Throttled(_))) {
        wait = wait.max(Duration::from_secs(60));
    }
    wait.mul_f64(0.8 + fastrand::f64() * 0.4)
}

/// Why a step of `apply` ends the reconcile early.
enum Halt {
    /// Nothing (new) was observed: Synced goes False with this reason, then
    /// the reconcile ends as `then` says.
    NotSynced {
        reason: Reason,
        message: String,
        then: Then,
        /// An account whose Secret could not be used: said on the account
        /// too, after the posture (its own status is the first place users
        /// look).
        secret_unusable: Option<Box<(ResolvedAccount, SecretError)>>,
    },
    /// The status is written; the reconcile failed and is retried with
    /// backoff.
    Failed(Error),
}

/// How a reconcile that did not sync ends.
enum Then {
    /// Only a change of the object can help (an invalid spec).
    AwaitChange,
    /// Look again at the next resync.
    Resync,
    /// Retry with backoff (`error_policy`).
    Retry(Error),
}

impl Halt {
    fn not_synced(reason: Reason, message: String, then: Then) -> Self {
        Halt::NotSynced {
            reason,
            message,
            then,
            secret_unusable: None,
        }
    }
}

impl From<Error> for Halt {
    fn from(e: Error) -> Self {
        Halt::Failed(e)
    }
}

/// The posture as the engine sees it. The proof of what zerofn minted lives
/// in status, which only the controller writes.
fn engine_posture(ctx: &Context, fp: &FunctionPosture) -> Posture {
    let ns = fp.namespace().unwrap_or_default();
    let mut posture = Posture::new(&ctx.settings.cluster_id, &ns, &fp.name_any(), fp.spec.clone());
    posture.minted = fp
        .status
        .as_ref()
        .map(|s| s.minted_identities.clone())
        .unwrap_or_default();
    posture.intents = fp.status.as_ref().map(|s| s.mint_intents.clone()).unwrap_or_default();
    posture
}

/// The posture with the status the API server holds now. The cache keeps no
/// status (`cached`), and a cached copy could lag behind this controller's
/// own last write: the records of minted identities, the write-ahead
/// intents and the ownership mark a reconcile builds on must be the latest.
async fn with_status(fp: &FunctionPosture, ctx: &Context) -> Result<Result<FunctionPosture, InvalidObject>, Error> {
    let api: Api<DeserializeGuard<FunctionPosture>> =
        Api::namespaced(ctx.client.clone(), &fp.namespace().unwrap_or_default());
    let read = api.get_status(&fp.name_any()).await?;
    Ok(read.0.map(|now| FunctionPosture {
        status: now.status,
        ..fp.clone()
    }))
}

async fn apply(fp: &FunctionPosture, ctx: &Context) -> Result<Action, Error> {
    let fp = match with_status(fp, ctx).await? {
        Ok(fp) => fp,
        Err(invalid) => return report_invalid(&invalid, ctx).await,
    };
    let fp = &fp;
    let posture = engine_posture(ctx, fp);
    let r = Reporter::new(ctx, fp, posture.declared_controls());
    let resync = jittered(
        fp.spec
            .resync_interval
            .as_deref()
            .and_then(duration::parse)
            .unwrap_or(ctx.settings.resync),
    );
    match steps(fp, ctx, &posture, &r).await {
        Ok(()) => Ok(Action::requeue(resync)),
        Err(Halt::Failed(e)) => Err(e),
        Err(Halt::NotSynced {
            reason,
            message,
            then,
            secret_unusable,
        }) => {
            r.not_synced(reason, message).await?;
            if let Some(unusable) = secret_unusable {
                let (account, e) = *unusable;
                account_status::report(ctx, &account, Reach::SecretUnusable(&e)).await;
            }
            match then {
                Then::AwaitChange => Ok(Action::await_change()),
                Then::Resync => Ok(Action::requeue(resync)),
                Then::Retry(e) => Err(e),
            }
        }
    }
}

async fn steps(fp: &FunctionPosture, ctx: &Context, posture: &Posture, r: &Reporter<'_>) -> Result<(), Halt> {
    check_spec(fp)?;
    let account = resolve(ctx, fp).await?;
    let provider = connect_to(ctx, &account).await?;
    hold_function(ctx, fp, &account, provider.as_ref(), posture).await?;
    let outcome = run_engine(ctx, &account, provider.as_ref(), posture, r).await?;
    report(ctx, &account, provider.as_ref(), &outcome, r).await?;
    match outcome.applied.failed {
        Some((_, e)) => Err(Halt::Failed(e.into())),
        None => Ok(()),
    }
}

/// Rules the API server may not have enforced (an older CRD, a stand-in).
fn check_spec(fp: &FunctionPosture) -> Result<(), Halt> {
    let errors = validate::posture(&fp.spec);
    if errors.is_empty() {
        return Ok(());
    }
    let message = errors.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("; ");
    Err(Halt::not_synced(Reason::InvalidSpec, message, Then::AwaitChange))
}

/// The account the posture names, if it may use it and declares no more
/// than the account's ceiling.
async fn resolve(ctx: &Context, fp: &FunctionPosture) -> Result<ResolvedAccount, Halt> {
    tracing::debug!("waiting for the account caches");
    ctx.accounts_synced().await;
    tracing::debug!("account caches synced");
    let ns = fp.namespace().unwrap_or_default();
    let account =
        locate_account(ctx, &ns, &fp.spec).map_err(|r| Halt::not_synced(r.reason, r.message, Then::Resync))?;
    // Before any Secret is read or any client built.
    if let Err(refusal) = accounts::permit(&account.key, account.kind, &account.config) {
        return Err(refused(ctx, &account, refusal).await);
    }
    accounts::within_ceiling(&account, &fp.spec).map_err(|r| Halt::not_synced(r.reason, r.message, Then::Resync))?;
    Ok(account)
}

/// An account that breaks the tenancy rules: said on the account too.
async fn refused(ctx: &Context, account: &ResolvedAccount, refusal: accounts::Refusal) -> Halt {
    account_status::report(ctx, account, Reach::Refused(&refusal)).await;
    Halt::not_synced(refusal.reason, refusal.message, Then::Resync)
}

/// The account's provider; a Secret that cannot be used is said on the
/// account too.
async fn connect_to(ctx: &Context, account: &ResolvedAccount) -> Result<Arc<dyn Provider>, Halt> {
    match connect(ctx, account).await {
        Ok(p) => Ok(p),
        Err(Unusable::Refused(refusal)) => Err(refused(ctx, account, refusal).await),
        Err(Unusable::Secret(e)) => Err(Halt::NotSynced {
            reason: e.reason(),
            message: format!("{}: {e}", account.key),
            then: Then::Resync,
            secret_unusable: Some(Box::new((account.clone(), e))),
        }),
        Err(Unusable::Cloud(e)) => Err(Halt::not_synced(e.reason(), e.to_string(), Then::Retry(e.into()))),
    }
}

/// Of several postures naming one function, the one created first acts; the
/// others write nothing (and drop any ownership claim they made earlier).
async fn hold_function(
    ctx: &Context,
    fp: &FunctionPosture,
    account: &ResolvedAccount,
    provider: &dyn Provider,
    posture: &Posture,
) -> Result<(), Halt> {
    let Some(key) = function_key(account, &fp.spec.function) else {
        return Ok(());
    };
    let holder = ctx.conflicts.contend(&key, &claimant(fp), |c| {
        let other = ctx.postures.get(&ObjectRef::new(&c.name).within(&c.namespace))?;
        let spec = other.spec.as_ref().ok()?;
        if other.meta().deletion_timestamp.is_some() {
            return None;
        }
        let acct = resolve_account(ctx, &c.namespace, spec).ok()?;
        function_key(&acct, &spec.function)
    });
    let Some(h) = holder else { return Ok(()) };
    if let Err(e) = provider.release(posture).await {
        tracing::warn!(error = %e, "releasing the ownership marker of a conflicting posture failed");
    }
    let message = format!(
        "FunctionPosture {}/{} (created earlier) governs the same function; this posture writes nothing",
        h.namespace, h.name
    );
    Err(Halt::not_synced(Reason::Conflict, message, Then::Resync))
}

/// Observe, plan and (in Enforce) apply. Whatever happened, what the
/// provider minted reaches status.
async fn run_engine(
    ctx: &Context,
    account: &ResolvedAccount,
    provider: &dyn Provider,
    posture: &Posture,
    r: &Reporter<'_>,
) -> Result<engine::Outcome, Halt> {
    let outcome = engine::reconcile(provider, posture, r).await;
    r.remember_minted(&provider.minted(posture));
    match outcome {
        Ok(o) => Ok(o),
        Err(e) => {
            if account_status::is_account_error(&e) {
                account_status::report(ctx, account, Reach::Failed(&e)).await;
            }
            Err(Halt::not_synced(e.reason(), e.to_string(), Then::Retry(e.into())))
        }
    }
}

/// Events for what was done and what changed, then the status from the
/// latest observation, then the account's status.
async fn report(
    ctx: &Context,
    account: &ResolvedAccount,
    provider: &dyn Provider,
    outcome: &engine::Outcome,
    r: &Reporter<'_>,
) -> Result<(), Error> {
    publish_events(outcome, r).await;
    let failed = outcome
        .applied
        .failed
        .as_ref()
        .map(|(a, e)| (e.reason(), format!("{a} failed: {e}")));
    let writes = outcome
        .applied
        .wrote()
        .then(|| (outcome.applied.done.len() + usize::from(outcome.applied.failed.is_some())) as u64);
    let standing = r.standing();
    let s = status::build(status::Input {
        generation: r.generation(),
        declared: &r.declared,
        cloud: Some(provider.cloud().to_string()),
        now: &now(),
        previous: standing.as_ref(),
        observation: Observation::Observed {
            plan: outcome.current(),
            enforced_writes: writes,
            enforce_error: failed,
        },
    });
    r.write(s).await?;
    account_status::report(ctx, account, Reach::Reached(provider.reached())).await;
    Ok(())
}

async fn publish_events(outcome: &engine::Outcome, r: &Reporter<'_>) {
    // Drift first: what was found, then what was done about it.
    r.drift_events(&outcome.current().findings).await;
    for a in &outcome.applied.done {
        r.event(EventType::Normal, Reason::Enforced, &a.event_action(), format!("{a}"))
            .await;
    }
    if let Some((a, e)) = &outcome.applied.failed {
        r.event(
            EventType::Warning,
            Reason::EnforceFailed,
            &a.event_action(),
            format!("{a}: {e}"),
        )
        .await;
    }
    let plan = outcome.current();
    if let Some(b @ Blocked::Conflict { .. }) = &plan.blocked
        && r.previous_reason("Synced") != Some(Reason::Conflict.as_str())
    {
        r.event(EventType::Warning, Reason::Conflict, "Enforce", b.to_string())
            .await;
    }
}

/// Every posture of the cache that is not being deleted, whose spec reads
/// and whose account resolves, with that account: what the account probe,
/// the policy pass and the event consumer each look through.
pub(super) fn each_live_posture(
    ctx: &Context,
    mut f: impl FnMut(&CachedPosture, &str, &FunctionPostureSpec, ResolvedAccount),
) {
    for p in ctx.postures.state() {
        if p.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let Ok(spec) = p.spec.as_ref() else { continue };
        let ns = p.metadata.namespace.clone().unwrap_or_default();
        if let Ok(account) = resolve_account(ctx, &ns, spec) {
            f(&p, &ns, spec, account);
        }
    }
}

pub(super) fn resolve_account(
    ctx: &Context,
    ns: &str,
    spec: &FunctionPostureSpec,
) -> Result<ResolvedAccount, accounts::Refusal> {
    let account = locate_account(ctx, ns, spec)?;
    accounts::permit(&account.key, account.kind, &account.config)?;
    Ok(account)
}

fn locate_account(ctx: &Context, ns: &str, spec: &FunctionPostureSpec) -> Result<ResolvedAccount, accounts::Refusal> {
    accounts::locate(
        ns,
        &spec.account_ref,
        spec.function.cloud(),
        |ns, name| {
            ctx.accounts
                .get(&ObjectRef::new(name).within(ns))
                .map(|a| a.spec.clone())
        },
        |name| ctx.cluster_accounts.get(&ObjectRef::new(name)).map(|a| a.spec.clone()),
        &ctx.settings.namespace,
    )
}

fn claimant(fp: &FunctionPosture) -> Claimant {
    Claimant {
        namespace: fp.namespace().unwrap_or_default(),
        name: fp.name_any(),
        created: fp
            .metadata
            .creation_timestamp
            .as_ref()
            .map(|t| t.0.to_string())
            .unwrap_or_default(),
        policy_child: super::policy::is_child(&fp.metadata),
    }
}

async fn cleanup(fp: &FunctionPosture, ctx: &Context) -> Result<Action, Error> {
    ctx.conflicts.release(&claimant(fp));
    ctx.forget_compliance(&fp.namespace().unwrap_or_default(), &fp.name_any());
    let fp = match with_status(fp, ctx).await? {
        Ok(fp) => fp,
        Err(invalid) => return report_invalid(&invalid, ctx).await,
    };
    let fp = &fp;
    if !fp.status.as_ref().is_some_and(FunctionPostureStatus::may_hold_marker) {
        // zerofn never wrote to the cloud for this posture: no marker.
        tracing::debug!("no ownership marker to release");
        return Ok(Action::await_change());
    }
    let r = Reporter::new(ctx, fp, Vec::new());
    ctx.accounts_synced().await;
    let left = release_time_left(&fp.metadata, ctx.settings.release_timeout);
    // One attempt may not outlast the deletion's budget (a provider's own
    // retries can take minutes).
    let released = match tokio::time::timeout(left.max(Duration::from_secs(1)), release_marker(ctx, fp)).await {
        Ok(r) => r,
        Err(_) => Err((Reason::CloudTimeout, format!("no answer within {left:?}"))),
    };
    let Err((reason, message)) = released else {
        r.event(
            EventType::Normal,
            Reason::OwnershipReleased,
            "Release",
            "released the zerofn.dev/owner marker; hardening stays in place".into(),
        )
        .await;
        return Ok(Action::await_change());
    };
    if release_time_left(&fp.metadata, ctx.settings.release_timeout).is_zero() {
        let deleting_for = deleting_for(&fp.metadata);
        // Never block a deletion forever on an unreachable cloud.
        r.event(
            EventType::Warning,
            Reason::ReleaseAbandoned,
            "Release",
            format!("gave up releasing the ownership marker after {deleting_for:?}: {message}"),
        )
        .await;
        return Ok(Action::await_change());
    }
    r.event(EventType::Warning, reason, "Release", message.clone()).await;
    Err(Error::Cloud(ProviderError::Unreachable(message)))
}

/// Resolve the account, connect, and remove the posture's ownership marker
/// (hardening stays).
async fn release_marker(ctx: &Context, fp: &FunctionPosture) -> Result<(), (Reason, String)> {
    let ns = fp.namespace().unwrap_or_default();
    let account = resolve_account(ctx, &ns, &fp.spec).map_err(|r| (r.reason, r.message))?;
    let provider = connect(ctx, &account).await.map_err(|u| (u.reason(), u.to_string()))?;
    let posture = Posture::new(&ctx.settings.cluster_id, &ns, &fp.name_any(), fp.spec.clone());
    provider
        .release(&posture)
        .await
        .map_err(|e| (e.reason(), e.to_string()))
}

/// How long the posture has been waiting to be deleted.
fn deleting_for(meta: &ObjectMeta) -> Duration {
    meta.deletion_timestamp
        .as_ref()
        .map(|t| jiff::Timestamp::now().duration_since(t.0).unsigned_abs())
        .unwrap_or_default()
}

/// What is left of `--release-timeout` for a posture being deleted.
fn release_time_left(meta: &ObjectMeta, timeout: Duration) -> Duration {
    timeout.saturating_sub(deleting_for(meta))
}

/// A posture that does not deserialize gets a status saying why, instead of
/// failing every reconcile.
async fn report_invalid(invalid: &kube::core::error_boundary::InvalidObject, ctx: &Context) -> Result<Action, Error> {
    let (Some(ns), Some(name)) = (invalid.metadata.namespace.as_deref(), invalid.metadata.name.as_deref()) else {
        return Ok(Action::await_change());
    };
    // The answer is the same undeserializable object: read it leniently.
    let api: Api<DeserializeGuard<FunctionPosture>> = Api::namespaced(ctx.client.clone(), ns);
    let condition = |type_: &str| {
        serde_json::json!({
            "type": type_, "status": "False", "reason": Reason::InvalidObject,
            "message": format!("the object does not match the FunctionPosture schema: {}", invalid.error),
            "lastTransitionTime": now(), "observedGeneration": invalid.metadata.generation,
        })
    };
    // A merge patch, not an apply: the status fields this patch leaves out
    // (the records of minted identities and write-ahead intents, the
    // ownership mark) must survive, and an apply would drop the ones this
    // manager applied before.
    let patch = serde_json::json!({
        "status": { "observedGeneration": invalid.metadata.generation, "conditions": [condition("Ready"), condition("Synced")] }
    });
    api.patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    let meta = &invalid.metadata;
    let finalizers = meta.finalizers.clone().unwrap_or_default();
    if meta.deletion_timestamp.is_none() || !finalizers.iter().any(|f| f == FINALIZER) {
        return Ok(Action::await_change());
    }
    // Being deleted, and its function cannot be read from it: the marker
    // (if any) cannot be released. Wait out --release-timeout in case the
    // object is fixed, then let it go rather than block the deletion.
    let left = release_time_left(meta, ctx.settings.release_timeout);
    if !left.is_zero() {
        return Ok(Action::requeue(left + Duration::from_millis(500)));
    }
    tracing::warn!(posture = %format!("{ns}/{name}"), "deleting an object that does not deserialize: its ownership marker, if any, is left");
    let rest: Vec<&String> = finalizers.iter().filter(|f| *f != FINALIZER).collect();
    // The resourceVersion makes it conditional: a finalizer added since is
    // never dropped.
    let patch = serde_json::json!({
        "metadata": { "resourceVersion": meta.resource_version, "finalizers": rest }
    });
    api.patch(name, &PatchParams::default(), &Patch::Merge(&patch)).await?;
    Ok(Action::await_change())
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::runtime::finalizer;

    /// Throttling is known by its variant, also when the finalizer wraps it.
    #[test]
    fn throttling_waits_most_of_a_minute_even_behind_the_finalizer() {
        let throttled = || Error::Cloud(ProviderError::Throttled("slow down".into()));
        let wrapped = Error::Finalizer(Box::new(finalizer::Error::ApplyFailed(throttled())));
        let refused = Error::Cloud(ProviderError::Refused("no".into()));
        for _ in 0..50 {
            assert!(backoff(0, &throttled()) >= Duration::from_secs(48));
            assert!(backoff(0, &wrapped) >= Duration::from_secs(48));
            assert!(backoff(0, &refused) <= Duration::from_secs(6));
        }
    }
}
