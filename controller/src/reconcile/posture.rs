//! Reconciling one FunctionPosture: validate → resolve the account → hold
//! the function (in-cluster conflicts) → run the engine → status and events.
//! Deleting a posture releases its ownership marker and nothing else.

use super::account_status::{self, Reach};
use super::conflict::{Claimant, function_key};
use super::context::Context;
use super::error::Error;
use super::secrets::SecretError;
use super::status::{self, Observation};
use crate::accounts::{self, ResolvedAccount, SecretData};
use crate::api::{API_VERSION, FunctionPosture, FunctionPostureStatus, validate};
use crate::engine;
use crate::findings::Control;
use crate::providers::{Blocked, MintIntent, MintedIdentity, Posture};
use kube::api::ObjectMeta;
use kube::api::{Api, Patch, PatchParams};
use kube::core::DeserializeGuard;
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType};
use kube::runtime::finalizer::{Event as Finalizer, finalizer};
use kube::runtime::reflector::ObjectRef;
use kube::{Resource, ResourceExt};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Held while the posture's ownership marker may be in the cloud.
pub const FINALIZER: &str = "zerofn.dev/release-ownership";
/// Field manager of everything the controller writes.
pub const MANAGER: &str = "zerofn";

fn now() -> String {
    jiff::Timestamp::now().to_string()
}

/// `5m`, `1h30m`, `45s` (the CRD's pattern) → Duration.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let mut total = 0u64;
    let mut n = String::new();
    for c in s.chars() {
        match c {
            '0'..='9' => n.push(c),
            's' | 'm' | 'h' => {
                let v: u64 = n.parse().ok()?;
                total += v * match c {
                    's' => 1,
                    'm' => 60,
                    _ => 3600,
                };
                n.clear();
            }
            _ => return None,
        }
    }
    (n.is_empty() && total > 0).then(|| Duration::from_secs(total))
}

/// Up to +10% jitter so postures created together do not resync together.
fn jittered(d: Duration) -> Duration {
    d + d.mul_f64(fastrand::f64() * 0.1)
}

pub async fn reconcile(obj: Arc<DeserializeGuard<FunctionPosture>>, ctx: Arc<Context>) -> Result<Action, Error> {
    let started = std::time::Instant::now();
    tracing::debug!("reconcile started");
    let result = match &obj.0 {
        Ok(fp) => {
            let ns = fp.namespace().unwrap_or_default();
            let api: Api<FunctionPosture> = Api::namespaced(ctx.client.clone(), &ns);
            finalizer(&api, FINALIZER, Arc::new(fp.clone()), |event| async {
                match event {
                    Finalizer::Apply(fp) => apply(&fp, &ctx).await,
                    Finalizer::Cleanup(fp) => cleanup(&fp, &ctx).await,
                }
            })
            .await
            .map_err(|e| Error::Finalizer(Box::new(e)))
        }
        Err(invalid) => report_invalid(invalid, &ctx).await,
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
pub fn error_policy(obj: Arc<DeserializeGuard<FunctionPosture>>, err: &Error, ctx: Arc<Context>) -> Action {
    let category = err.category();
    ctx.metrics
        .errors
        .get_or_create(&crate::metrics::CategoryLabels { category })
        .inc();
    let n = ctx.count_failure(&obj.meta().namespace, &obj.meta().name);
    let mut wait = Duration::from_secs(5)
        .saturating_mul(1 << n.min(6))
        .min(Duration::from_secs(300));
    if category == "throttled" {
        wait = wait.max(Duration::from_secs(60));
    }
    wait = wait.mul_f64(0.8 + fastrand::f64() * 0.4);
    // A deletion retries its release no later than when `--release-timeout`
    // runs out, then gives up: the backoff alone could add minutes.
    if obj.meta().deletion_timestamp.is_some() {
        wait = wait.min(release_time_left(obj.meta(), ctx.settings.release_timeout) + Duration::from_millis(500));
    }
    tracing::warn!(posture = ?obj.meta().name, error = %err, category, retry_in = ?wait, "reconcile failed");
    Action::requeue(wait)
}

struct Reporter<'a> {
    ctx: &'a Context,
    fp: &'a FunctionPosture,
    api: Api<FunctionPosture>,
    name: String,
    declared: Vec<Control>,
    /// Identities the provider minted for this posture: merged into every
    /// status written, so the proof of ownership survives a failed reconcile.
    minted: std::sync::Mutex<Vec<MintedIdentity>>,
    /// Write-ahead records of identities about to be minted: merged into
    /// every status written, like `minted`.
    intents: std::sync::Mutex<Vec<MintIntent>>,
    /// `status.ownershipMarked` was written in this reconcile: every later
    /// status keeps it.
    marked: AtomicBool,
}

impl engine::MintLog for Reporter<'_> {
    fn record<'a>(&'a self, minted: &'a [MintedIdentity]) -> futures::future::BoxFuture<'a, Result<(), String>> {
        Box::pin(self.persist_minted(minted))
    }

    fn intend<'a>(&'a self, intent: &'a MintIntent) -> futures::future::BoxFuture<'a, Result<(), String>> {
        Box::pin(self.persist_intent(intent))
    }

    fn writing(&self) -> futures::future::BoxFuture<'_, Result<(), String>> {
        Box::pin(self.persist_marked())
    }
}

impl Reporter<'_> {
    async fn event(&self, type_: EventType, reason: &str, action: &str, note: String) {
        let ev = Event {
            type_,
            reason: reason.to_string(),
            note: Some(note.chars().take(1000).collect()),
            action: action.to_string(),
            secondary: None,
        };
        if let Err(e) = self.ctx.recorder.publish(&ev, &self.fp.object_ref(&())).await {
            tracing::warn!(error = %e, reason, "could not publish an event");
        }
    }

    fn previous(&self) -> Option<&FunctionPostureStatus> {
        self.fp.status.as_ref()
    }

    fn previous_reason(&self, type_: &str) -> Option<&str> {
        self.previous()?
            .conditions
            .iter()
            .find(|c| c.type_ == type_)
            .map(|c| c.reason.as_str())
    }

    fn remember_minted(&self, minted: &[MintedIdentity]) {
        let mut held = self.minted.lock().unwrap_or_else(|e| e.into_inner());
        engine::record_minted(&mut held, minted);
    }

    /// Every record held, as one JSON merge patch of `status.mintedIdentities`
    /// (the list is atomic, so the patch carries all of it). It does not wait
    /// for the full status: the function may be switched to the identity next.
    async fn persist_minted(&self, new: &[MintedIdentity]) -> Result<(), String> {
        let held = {
            let mut held = self.minted.lock().unwrap_or_else(|e| e.into_inner());
            let mut all = self.previous().map(|s| s.minted_identities.clone()).unwrap_or_default();
            engine::record_minted(&mut all, &held);
            engine::record_minted(&mut all, new);
            engine::record_minted(&mut held, &all);
            all
        };
        let patch = serde_json::json!({ "status": { "mintedIdentities": held } });
        self.api
            .patch_status(&self.name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    /// Every write-ahead record held, as one JSON merge patch of
    /// `status.mintIntents`, written before the create call is sent.
    async fn persist_intent(&self, new: &MintIntent) -> Result<(), String> {
        let held = {
            let mut held = self.intents.lock().unwrap_or_else(|e| e.into_inner());
            let mut all = self.previous().map(|s| s.mint_intents.clone()).unwrap_or_default();
            engine::record_intents(&mut all, &held);
            engine::record_intents(&mut all, std::slice::from_ref(new));
            engine::record_intents(&mut held, &all);
            all
        };
        let patch = serde_json::json!({ "status": { "mintIntents": held } });
        self.api
            .patch_status(&self.name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    /// `status.ownershipMarked: true`, durable before the first cloud write
    /// (which may set the marker), so a deletion knows to release it.
    async fn persist_marked(&self) -> Result<(), String> {
        if self.marked.load(Ordering::Acquire) || self.previous().is_some_and(|s| s.ownership_marked) {
            return Ok(());
        }
        let patch = serde_json::json!({ "status": { "ownershipMarked": true } });
        self.api
            .patch_status(&self.name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(|e| e.to_string())?;
        self.marked.store(true, Ordering::Release);
        Ok(())
    }

    async fn write(&self, mut status: FunctionPostureStatus) -> Result<(), Error> {
        status.ownership_marked |= self.marked.load(Ordering::Acquire);
        {
            let held = self.minted.lock().unwrap_or_else(|e| e.into_inner());
            engine::record_minted(&mut status.minted_identities, &held);
            let intents = self.intents.lock().unwrap_or_else(|e| e.into_inner());
            engine::record_intents(&mut status.mint_intents, &intents);
        }
        self.ctx.record_compliance(
            &self.fp.namespace().unwrap_or_default(),
            &self.name,
            &status,
            &self.declared,
        );
        let patch = serde_json::json!({ "apiVersion": API_VERSION, "kind": "FunctionPosture", "status": status });
        self.api
            .patch_status(&self.name, &PatchParams::apply(MANAGER).force(), &Patch::Apply(&patch))
            .await?;
        Ok(())
    }

    /// Nothing observed: say why (once as an event), keep the rest.
    async fn not_synced(&self, reason: &str, message: String) -> Result<(), Error> {
        if self.previous_reason("Synced") != Some(reason) {
            self.event(EventType::Warning, reason, "Observe", message.clone()).await;
        }
        let s = status::build(status::Input {
            generation: self.fp.metadata.generation,
            declared: &self.declared,
            cloud: self.fp.spec.function.cloud().map(|c| c.to_string()),
            now: &now(),
            previous: self.previous(),
            observation: Observation::NotSynced { reason, message },
        });
        self.write(s).await
    }
}

fn resolve_account(ctx: &Context, ns: &str, fp: &FunctionPosture) -> Result<ResolvedAccount, accounts::Refusal> {
    let account = locate_account(ctx, ns, fp)?;
    accounts::permit(&account.key, account.kind, &account.config)?;
    Ok(account)
}

fn locate_account(ctx: &Context, ns: &str, fp: &FunctionPosture) -> Result<ResolvedAccount, accounts::Refusal> {
    accounts::locate(
        ns,
        &fp.spec.account_ref,
        fp.spec.function.cloud(),
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
    }
}

/// The account's Secret, when it names one: `(data, resourceVersion)`.
pub(super) async fn read_secret(
    ctx: &Context,
    account: &ResolvedAccount,
) -> Result<Option<(SecretData, String)>, SecretError> {
    let Some(name) = accounts::secret_name(&account.config) else {
        return Ok(None);
    };
    let f = ctx.secrets.get(&ctx.client, &account.secret_namespace, name).await?;
    Ok(Some((f.data.clone(), f.version.clone())))
}

async fn apply(fp: &FunctionPosture, ctx: &Context) -> Result<Action, Error> {
    let ns = fp.namespace().unwrap_or_default();
    let name = fp.name_any();
    let mut posture = Posture::new(&ctx.settings.cluster_id, &ns, &name, fp.spec.clone());
    // The proof of what zerofn minted lives in status, which only the
    // controller writes.
    posture.minted = fp
        .status
        .as_ref()
        .map(|s| s.minted_identities.clone())
        .unwrap_or_default();
    posture.intents = fp.status.as_ref().map(|s| s.mint_intents.clone()).unwrap_or_default();
    let r = Reporter {
        ctx,
        fp,
        api: Api::namespaced(ctx.client.clone(), &ns),
        name: name.clone(),
        declared: posture.declared_controls(),
        minted: Default::default(),
        intents: Default::default(),
        marked: AtomicBool::new(false),
    };
    let resync = jittered(
        fp.spec
            .resync_interval
            .as_deref()
            .and_then(parse_duration)
            .unwrap_or(ctx.settings.resync),
    );

    // Rules the API server may not have enforced (an older CRD, a stand-in).
    let errors = validate::posture(&fp.spec);
    if !errors.is_empty() {
        let message = errors.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("; ");
        r.not_synced("InvalidSpec", message).await?;
        return Ok(Action::await_change());
    }

    tracing::debug!("waiting for the account caches");
    ctx.accounts_synced().await;
    tracing::debug!("account caches synced");
    let account = match locate_account(ctx, &ns, fp) {
        Ok(a) => a,
        Err(refusal) => {
            r.not_synced(refusal.reason, refusal.message).await?;
            return Ok(Action::requeue(resync));
        }
    };
    // Before any Secret is read or any client built.
    if let Err(refusal) = accounts::permit(&account.key, account.kind, &account.config) {
        account_status::report(ctx, &account, Reach::Refused(&refusal)).await;
        r.not_synced(refusal.reason, refusal.message).await?;
        return Ok(Action::requeue(resync));
    }
    if let Err(refusal) = accounts::within_ceiling(&account, &fp.spec) {
        r.not_synced(refusal.reason, refusal.message).await?;
        return Ok(Action::requeue(resync));
    }
    let secret = match read_secret(ctx, &account).await {
        Ok(s) => s,
        Err(e) => {
            r.not_synced(e.reason(), format!("{}: {e}", account.key)).await?;
            account_status::report(ctx, &account, Reach::SecretUnusable(&e)).await;
            return Ok(Action::requeue(resync));
        }
    };
    let provider = match ctx
        .providers
        .get(&account, secret.as_ref().map(|(d, v)| (d, v.as_str())))
        .await
    {
        Ok(p) => p,
        Err(e) => {
            r.not_synced(e.reason(), e.to_string()).await?;
            return Err(e.into());
        }
    };

    if let Some(key) = function_key(&account, &fp.spec.function) {
        let holder = ctx.conflicts.contend(&key, &claimant(fp), |c| {
            let other = ctx.postures.get(&ObjectRef::new(&c.name).within(&c.namespace))?;
            let other = other.0.as_ref().ok()?;
            if other.meta().deletion_timestamp.is_some() {
                return None;
            }
            let acct = resolve_account(ctx, &c.namespace, other).ok()?;
            function_key(&acct, &other.spec.function)
        });
        if let Some(h) = holder {
            // Let the holder act: drop any claim this posture made earlier.
            if let Err(e) = provider.release(&posture).await {
                tracing::warn!(error = %e, "releasing the ownership marker of a conflicting posture failed");
            }
            let message = format!(
                "FunctionPosture {}/{} (created earlier) governs the same function; this posture writes nothing",
                h.namespace, h.name
            );
            r.not_synced("Conflict", message).await?;
            return Ok(Action::requeue(resync));
        }
    }

    let outcome = engine::reconcile(provider.as_ref(), &posture, &r).await;
    // Whatever happened, what the provider minted must reach status.
    r.remember_minted(&provider.minted(&posture));
    let outcome = match outcome {
        Ok(o) => o,
        Err(e) => {
            r.not_synced(e.reason(), e.to_string()).await?;
            if account_status::is_account_error(&e) {
                account_status::report(ctx, &account, Reach::Failed(&e)).await;
            }
            return Err(e.into());
        }
    };

    for a in &outcome.applied.done {
        r.event(EventType::Normal, "Enforced", &a.op, format!("{a}")).await;
    }
    if let Some((a, e)) = &outcome.applied.failed {
        r.event(EventType::Warning, "EnforceFailed", &a.op, format!("{a}: {e}"))
            .await;
    }
    let plan = outcome.current();
    if let Some(b @ Blocked::Conflict { .. }) = &plan.blocked
        && r.previous_reason("Synced") != Some("Conflict")
    {
        r.event(EventType::Warning, "Conflict", "Enforce", b.to_string()).await;
    }
    let before = r
        .previous()
        .map(|s| status::finding_keys(&s.findings))
        .unwrap_or_default();
    if !plan.findings.is_empty() && status::finding_keys(&plan.findings) != before {
        let note = plan
            .findings
            .iter()
            .map(|f| format!("{} {}: {}", f.severity, f.field, f.message))
            .collect::<Vec<_>>()
            .join("; ");
        r.event(EventType::Warning, "DriftDetected", "Observe", note).await;
    }

    let failed = outcome
        .applied
        .failed
        .as_ref()
        .map(|(a, e)| (e.reason(), format!("{a} failed: {e}")));
    let writes = outcome
        .applied
        .wrote()
        .then(|| (outcome.applied.done.len() + usize::from(outcome.applied.failed.is_some())) as u64);
    let s = status::build(status::Input {
        generation: fp.metadata.generation,
        declared: &r.declared,
        cloud: Some(provider.cloud().to_string()),
        now: &now(),
        previous: r.previous(),
        observation: Observation::Observed {
            plan,
            enforced_writes: writes,
            enforce_error: failed.as_ref().map(|(reason, m)| (*reason, m.clone())),
        },
    });
    r.write(s).await?;
    account_status::report(ctx, &account, Reach::Reached(provider.reached())).await;
    if let Some((_, e)) = outcome.applied.failed {
        return Err(e.into());
    }
    Ok(Action::requeue(resync))
}

async fn cleanup(fp: &FunctionPosture, ctx: &Context) -> Result<Action, Error> {
    let ns = fp.namespace().unwrap_or_default();
    let name = fp.name_any();
    ctx.conflicts.release(&claimant(fp));
    ctx.forget_compliance(&ns, &name);
    let r = Reporter {
        ctx,
        fp,
        api: Api::namespaced(ctx.client.clone(), &ns),
        name: name.clone(),
        declared: Vec::new(),
        minted: Default::default(),
        intents: Default::default(),
        marked: AtomicBool::new(false),
    };
    if !fp.status.as_ref().is_some_and(FunctionPostureStatus::may_hold_marker) {
        // zerofn never wrote to the cloud for this posture: no marker.
        tracing::debug!("no ownership marker to release");
        return Ok(Action::await_change());
    }
    let posture = Posture::new(&ctx.settings.cluster_id, &ns, &name, fp.spec.clone());
    ctx.accounts_synced().await;
    let left = release_time_left(&fp.metadata, ctx.settings.release_timeout);
    let released = async {
        let account = resolve_account(ctx, &ns, fp).map_err(|r| (r.reason, r.message))?;
        let secret = read_secret(ctx, &account)
            .await
            .map_err(|e| (e.reason(), e.to_string()))?;
        let provider = ctx
            .providers
            .get(&account, secret.as_ref().map(|(d, v)| (d, v.as_str())))
            .await
            .map_err(|e| (e.reason(), e.to_string()))?;
        provider
            .release(&posture)
            .await
            .map_err(|e| (e.reason(), e.to_string()))
    };
    // One attempt may not outlast the deletion's budget (a provider's own
    // retries can take minutes).
    let released = match tokio::time::timeout(left.max(Duration::from_secs(1)), released).await {
        Ok(r) => r,
        Err(_) => Err(("CloudTimeout", format!("no answer within {left:?}"))),
    };
    match released {
        Ok(()) => {
            r.event(
                EventType::Normal,
                "OwnershipReleased",
                "Release",
                "released the zerofn.dev/owner marker; hardening stays in place".into(),
            )
            .await;
            Ok(Action::await_change())
        }
        Err((reason, message)) => {
            if release_time_left(&fp.metadata, ctx.settings.release_timeout).is_zero() {
                let deleting_for = deleting_for(&fp.metadata);
                // Never block a deletion forever on an unreachable cloud.
                r.event(
                    EventType::Warning,
                    "ReleaseAbandoned",
                    "Release",
                    format!("gave up releasing the ownership marker after {deleting_for:?}: {message}"),
                )
                .await;
                Ok(Action::await_change())
            } else {
                r.event(EventType::Warning, reason, "Release", message.clone()).await;
                Err(Error::Cloud(crate::providers::ProviderError::Unreachable(message)))
            }
        }
    }
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
            "type": type_, "status": "False", "reason": "InvalidObject",
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

    #[test]
    fn durations_parse_like_the_crd_pattern() {
        assert_eq!(parse_duration("45s"), Some(Duration::from_secs(45)));
        assert_eq!(parse_duration("1h30m"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_duration("5m"), Some(Duration::from_secs(300)));
        assert_eq!(parse_duration("0s"), None);
        assert_eq!(parse_duration("5"), None);
        assert_eq!(parse_duration("5d"), None);
    }
}
