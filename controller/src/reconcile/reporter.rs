//! What a posture's reconcile writes back: its status, its events, and the
//! durable records the engine asks for before it writes to the cloud.

use super::context::{Context, MANAGER};
use super::error::Error;
use super::status::{self, Observation};
use crate::api::{API_VERSION, FunctionPosture, FunctionPostureStatus};
use crate::engine;
use crate::findings::Control;
use crate::providers::{MintIntent, MintedIdentity};
use crate::reason::Reason;
use futures::future::BoxFuture;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::events::{Event, EventType};
use kube::{Resource, ResourceExt};
use std::sync::Mutex;

/// DriftDetected events one observation publishes, one per finding; the
/// rest are counted in one more.
const DRIFT_EVENTS: usize = 10;

pub fn now() -> String {
    jiff::Timestamp::now().to_string()
}

/// What must survive every status write of this reconcile, even a failed
/// one: the proof of the identities the provider minted, the write-ahead
/// records of those about to be minted, and that the ownership marker may
/// be set.
#[derive(Debug, Default)]
struct Records {
    minted: Vec<MintedIdentity>,
    intents: Vec<MintIntent>,
    /// `status.ownershipMarked` was written in this reconcile.
    marked: bool,
}

/// Every record of a kind: those in the status read, those held, and the
/// new ones; the held copy keeps them all from now on.
fn merged<T: Clone>(held: &mut Vec<T>, previous: Option<&[T]>, new: &[T], record: fn(&mut Vec<T>, &[T])) -> Vec<T> {
    let mut all = previous.unwrap_or_default().to_vec();
    record(&mut all, held);
    record(&mut all, new);
    record(held, &all);
    all
}

pub struct Reporter<'a> {
    ctx: &'a Context,
    fp: &'a FunctionPosture,
    api: Api<FunctionPosture>,
    name: String,
    pub declared: Vec<Control>,
    records: Mutex<Records>,
    /// The status this reconcile last wrote: what the next write of the
    /// same reconcile is built against.
    written: Mutex<Option<FunctionPostureStatus>>,
}

impl engine::MintLog for Reporter<'_> {
    fn record<'a>(&'a self, minted: &'a [MintedIdentity]) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(self.persist_minted(minted))
    }

    fn intend<'a>(&'a self, intent: &'a MintIntent) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(self.persist_intent(intent))
    }

    fn writing(&self) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(self.persist_marked())
    }

    fn before_fixing<'a>(&'a self, found: &'a crate::providers::Plan) -> BoxFuture<'a, ()> {
        Box::pin(self.show_drift(found))
    }
}

impl<'a> Reporter<'a> {
    pub fn new(ctx: &'a Context, fp: &'a FunctionPosture, declared: Vec<Control>) -> Self {
        let ns = fp.namespace().unwrap_or_default();
        Reporter {
            ctx,
            fp,
            api: Api::namespaced(ctx.client.clone(), &ns),
            name: fp.name_any(),
            declared,
            records: Mutex::default(),
            written: Mutex::default(),
        }
    }

    fn records(&self) -> std::sync::MutexGuard<'_, Records> {
        self.records.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub async fn event(&self, type_: EventType, reason: Reason, action: &str, note: String) {
        let ev = Event {
            type_,
            reason: reason.to_string(),
            note: Some(note.chars().take(1000).collect()),
            action: action.to_string(),
            secondary: None,
        };
        if let Err(e) = self.ctx.recorder.publish(&ev, &self.fp.object_ref(&())).await {
            tracing::warn!(error = %e, %reason, "could not publish an event");
        }
    }

    pub fn generation(&self) -> Option<i64> {
        self.fp.metadata.generation
    }

    /// The status read when the reconcile began.
    pub fn previous(&self) -> Option<&FunctionPostureStatus> {
        self.fp.status.as_ref()
    }

    /// The status as it stands now: the last one this reconcile wrote, or
    /// the one it read.
    pub fn standing(&self) -> Option<FunctionPostureStatus> {
        let written = self.written.lock().unwrap_or_else(|e| e.into_inner()).clone();
        written.or_else(|| self.previous().cloned())
    }

    /// A `DriftDetected` event for each finding the status standing now
    /// does not have, each under its own action (check and field), so one
    /// drift never folds into another's event; and the drift counter.
    pub async fn drift_events(&self, findings: &[crate::findings::Finding]) {
        let standing = self.standing();
        let new = status::new_findings(
            findings,
            standing.as_ref().map(|s| s.findings.as_slice()).unwrap_or_default(),
        );
        for f in &new {
            self.ctx
                .metrics
                .drift_detected
                .get_or_create(&crate::metrics::ControlLabels {
                    control: f.control.as_str(),
                })
                .inc();
        }
        for f in new.iter().take(DRIFT_EVENTS) {
            let action = crate::providers::event_action(&["Detect", &f.check, &f.field]);
            let note = format!(
                "{} {}: {} (observed {}, declared {})",
                f.severity, f.field, f.message, f.observed, f.desired
            );
            self.event(EventType::Warning, Reason::DriftDetected, &action, note)
                .await;
        }
        if new.len() > DRIFT_EVENTS {
            let note = format!(
                "{} more findings appeared: see status.findings",
                new.len() - DRIFT_EVENTS
            );
            self.event(EventType::Warning, Reason::DriftDetected, "Detect more", note)
                .await;
        }
    }

    /// What Enforce is about to fix, shown first: its events, then a status
    /// with the findings (Ready False), so a watcher sees the drift even
    /// though the same reconcile fixes it. A status that cannot be written
    /// does not stop the fix; the final status follows.
    async fn show_drift(&self, found: &crate::providers::Plan) {
        self.drift_events(&found.findings).await;
        let standing = self.standing();
        let s = status::build(status::Input {
            generation: self.generation(),
            declared: &self.declared,
            cloud: self.fp.spec.function.cloud().map(|c| c.to_string()),
            now: &now(),
            previous: standing.as_ref(),
            observation: Observation::Observed {
                plan: found,
                enforced_writes: None,
                enforce_error: None,
            },
        });
        if let Err(e) = self.write(s).await {
            tracing::warn!(error = %e, "could not show the drift before fixing it");
        }
    }

    /// The reason of the posture's `type_` condition, as last written.
    pub fn previous_reason(&self, type_: &str) -> Option<&str> {
        self.previous()?
            .conditions
            .iter()
            .find(|c| c.type_ == type_)
            .map(|c| c.reason.as_str())
    }

    pub fn remember_minted(&self, minted: &[MintedIdentity]) {
        engine::record_minted(&mut self.records().minted, minted);
    }

    async fn merge_status(&self, patch: serde_json::Value) -> Result<(), String> {
        self.api
            .patch_status(&self.name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map(drop)
            .map_err(|e| e.to_string())
    }

    /// Every record held, as one JSON merge patch of `status.mintedIdentities`
    /// (the list is atomic, so the patch carries all of it). It does not wait
    /// for the full status: the function may be switched to the identity next.
    async fn persist_minted(&self, new: &[MintedIdentity]) -> Result<(), String> {
        let previous = self.previous().map(|s| s.minted_identities.as_slice());
        let all = merged(&mut self.records().minted, previous, new, engine::record_minted);
        self.merge_status(serde_json::json!({ "status": { "mintedIdentities": all } }))
            .await
    }

    /// Every write-ahead record held, as one JSON merge patch of
    /// `status.mintIntents`, written before the create call is sent.
    async fn persist_intent(&self, new: &MintIntent) -> Result<(), String> {
        let previous = self.previous().map(|s| s.mint_intents.as_slice());
        let all = merged(
            &mut self.records().intents,
            previous,
            std::slice::from_ref(new),
            engine::record_intents,
        );
        self.merge_status(serde_json::json!({ "status": { "mintIntents": all } }))
            .await
    }

    /// `status.ownershipMarked: true`, durable before the first cloud write
    /// (which may set the marker), so a deletion knows to release it.
    async fn persist_marked(&self) -> Result<(), String> {
        if self.records().marked || self.previous().is_some_and(|s| s.ownership_marked) {
            return Ok(());
        }
        self.merge_status(serde_json::json!({ "status": { "ownershipMarked": true } }))
            .await?;
        self.records().marked = true;
        Ok(())
    }

    /// The whole status, by server-side apply, with every record held.
    pub async fn write(&self, mut status: FunctionPostureStatus) -> Result<(), Error> {
        {
            let records = self.records();
            status.ownership_marked |= records.marked;
            engine::record_minted(&mut status.minted_identities, &records.minted);
            engine::record_intents(&mut status.mint_intents, &records.intents);
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
        *self.written.lock().unwrap_or_else(|e| e.into_inner()) = Some(status);
        Ok(())
    }

    /// Nothing observed: say why (once as an event), keep the rest.
    pub async fn not_synced(&self, reason: Reason, message: String) -> Result<(), Error> {
        if self.previous_reason("Synced") != Some(reason.as_str()) {
            self.event(EventType::Warning, reason, "Observe", message.clone()).await;
        }
        let s = status::build(status::Input {
            generation: self.generation(),
            declared: &self.declared,
            cloud: self.fp.spec.function.cloud().map(|c| c.to_string()),
            now: &now(),
            previous: self.previous(),
            observation: Observation::NotSynced { reason, message },
        });
        self.write(s).await
    }
}
