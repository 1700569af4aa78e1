//! The seam between the cloud-neutral engine and each cloud.
//!
//! A cloud implements `cloud::Cloud` with its own types: it observes one
//! function (reusing account-wide observations it caches per account), runs
//! its pure `plan`, and applies one action at a time. `adapter::Adapter`
//! puts any cloud behind the object-safe `Provider` the engine holds, and
//! `registry` maps each account config to its cloud. The engine never sees a
//! cloud type.

pub mod adapter;
pub mod assemble;
pub mod aws;
pub mod azure;
pub mod cache;
pub mod circuit;
pub mod cloud;
pub mod feed;
pub mod gcp;
pub mod https;
pub mod pace;
pub mod patch;
pub mod registry;
pub mod retry;
#[cfg(test)]
pub mod testing;

pub use crate::api::{MintIntent, MintedIdentity};
pub use adapter::Action;
pub use cloud::{Cloud, CloudAction};
pub use retry::Tuning;

use crate::api::{self, FunctionPostureSpec, Mode};
use crate::findings::{Control, Finding};
use crate::reason::Reason;
use futures::future::BoxFuture;
use serde::Serialize;
use std::fmt;

/// A validated posture as a provider sees it.
#[derive(Clone, Debug)]
pub struct Posture {
    pub namespace: String,
    pub name: String,
    pub spec: FunctionPostureSpec,
    /// Value of the `zerofn.dev/owner` marker this posture claims the
    /// function with: `<cluster id>/<namespace>/<name>`.
    pub owner: String,
    /// Identities zerofn minted for this posture (from the posture's status).
    pub minted: Vec<MintedIdentity>,
    /// Identities zerofn set out to create for this posture (from the
    /// posture's status), whether or not the create call was answered.
    pub intents: Vec<MintIntent>,
}

impl Posture {
    pub fn new(cluster_id: &str, namespace: &str, name: &str, spec: FunctionPostureSpec) -> Self {
        Posture {
            namespace: namespace.to_string(),
            name: name.to_string(),
            owner: format!("{cluster_id}/{namespace}/{name}"),
            spec,
            minted: Vec::new(),
            intents: Vec::new(),
        }
    }

    pub fn mode(&self) -> Mode {
        self.spec.mode
    }

    /// Controls this posture declares, i.e. the ones that are checked.
    pub fn declared_controls(&self) -> Vec<Control> {
        let s = &self.spec;
        let mut v = Vec::new();
        if s.identity.is_some() {
            v.push(Control::Identity);
        }
        if s.triggers.is_some() {
            v.push(Control::Triggers);
        }
        if s.network.is_some() {
            v.push(Control::Network);
        }
        if s.supply_chain.is_some() {
            v.push(Control::SupplyChain);
        }
        if s.observability.is_some() {
            v.push(Control::Observability);
        }
        v
    }
}

/// What an action does, for people (CLI table, events) and machines (JSON).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ActionSummary {
    /// The API operation, e.g. `UpdateFunctionConfiguration`.
    pub op: String,
    /// What it acts on (ARN, resource id).
    pub target: String,
    /// What changes.
    pub detail: String,
}

impl fmt::Display for ActionSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.op, self.target, self.detail)
    }
}

/// The longest `action` an events.k8s.io/v1 Event may carry.
pub const EVENT_ACTION_MAX: usize = 128;

/// An Event `action` that names exactly one change or one finding:
/// kube-runtime folds events with the same reason and action into one
/// series that keeps the first note, so two different changes under one
/// action (the API operation alone) would show the first one's note
/// forever. Cut to the API's limit with a digest of the whole, so two long
/// ones still differ.
pub fn event_action(parts: &[&str]) -> String {
    let full = parts
        .iter()
        .filter(|p| !p.is_empty())
        .copied()
        .collect::<Vec<_>>()
        .join(" ");
    if full.len() <= EVENT_ACTION_MAX {
        return full;
    }
    use sha2::{Digest, Sha256};
    let digest: String = Sha256::digest(full.as_bytes())
        .iter()
        .take(4)
        .map(|b| format!("{b:02x}"))
        .collect();
    let mut cut = EVENT_ACTION_MAX - digest.len() - 1;
    while !full.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{} {digest}", &full[..cut])
}

impl ActionSummary {
    /// This change as an Event action: the operation, what it changes and
    /// the last part of what it acts on (function, alias, role).
    pub fn event_action(&self) -> String {
        let on = self.target.rsplit([':', '/']).next().unwrap_or_default();
        event_action(&[&self.op, &self.detail, "on", on])
    }
}

/// Why enforcement is refused for this function even though drift exists.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "reason", rename_all = "camelCase")]
pub enum Blocked {
    /// Another posture (this or another cluster) owns the function.
    Conflict { owner: String },
}

impl fmt::Display for Blocked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Blocked::Conflict { owner } => write!(
                f,
                "the function is owned by {owner} (tag zerofn.dev/owner); nothing is written until that owner releases it"
            ),
        }
    }
}

/// A declared control that does not apply on this cloud: reported, never
/// counted as drift (and never faked as compliance).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Note {
    pub control: Control,
    pub reason: Reason,
    pub message: String,
}

/// The outcome of observing and planning one posture: a cloud's plan holds
/// its own actions, the engine's (`Plan`) erased ones.
#[derive(Clone, Debug)]
pub struct Plan<A = Action> {
    /// Human name of the function, e.g. `eu-west-1/orders-api`.
    pub function: String,
    /// The identity the function runs as now.
    pub principal: Option<String>,
    pub findings: Vec<Finding>,
    /// Writes Enforce would make, in order.
    pub actions: Vec<A>,
    pub blocked: Option<Blocked>,
    pub notes: Vec<Note>,
    /// Narrower declarations proposed from evidence: never applied.
    pub proposals: Vec<crate::findings::Proposal>,
}

impl<A> Default for Plan<A> {
    fn default() -> Self {
        Plan {
            function: String::new(),
            principal: None,
            findings: Vec::new(),
            actions: Vec::new(),
            blocked: None,
            notes: Vec::new(),
            proposals: Vec::new(),
        }
    }
}

impl<A> Plan<A> {
    pub fn compliant(&self) -> bool {
        self.findings.is_empty()
    }

    /// The same plan with each action turned into another type.
    pub fn map_actions<B>(self, f: impl FnMut(A) -> B) -> Plan<B> {
        Plan {
            function: self.function,
            principal: self.principal,
            findings: self.findings,
            actions: self.actions.into_iter().map(f).collect(),
            blocked: self.blocked,
            notes: self.notes,
            proposals: self.proposals,
        }
    }
}

/// Failures talking to a cloud. `category` labels metrics, `reason` status
/// conditions and events; both are stable.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    #[error("credentials refused: {0}")]
    Auth(String),
    #[error("throttled by the cloud: {0}")]
    Throttled(String),
    #[error("not found: {0}")]
    NotFound(String),
    #[error("the cloud refused the change: {0}")]
    Refused(String),
    #[error("conflicting change in progress: {0}")]
    Conflict(String),
    #[error("cannot reach the cloud: {0}")]
    Unreachable(String),
    #[error("timed out: {0}")]
    Timeout(String),
    #[error("account misconfigured: {0}")]
    Config(String),
    #[error("unexpected cloud response: {0}")]
    Cloud(String),
    /// An identity was minted but its record could not be kept: nothing more
    /// is written until it is, so zerofn never switches to an identity it
    /// could not prove it made.
    #[error("could not record a minted identity: {0}")]
    Unrecorded(String),
    /// That zerofn is about to write (and so may set its ownership marker)
    /// could not be recorded: nothing is written, so a deletion never skips
    /// a marker it did not know about.
    #[error("could not record that the ownership marker may be set: {0}")]
    MarkUnrecorded(String),
}

impl ProviderError {
    pub fn category(&self) -> &'static str {
        match self {
            ProviderError::Auth(_) => "auth",
            ProviderError::Throttled(_) => "throttled",
            ProviderError::NotFound(_) => "not_found",
            ProviderError::Refused(_) => "refused",
            ProviderError::Conflict(_) => "conflict",
            ProviderError::Unreachable(_) => "unreachable",
            ProviderError::Timeout(_) => "timeout",
            ProviderError::Config(_) => "config",
            ProviderError::Cloud(_) => "cloud",
            ProviderError::Unrecorded(_) | ProviderError::MarkUnrecorded(_) => "unrecorded",
        }
    }

    /// The reason for status conditions and events.
    pub fn reason(&self) -> Reason {
        match self {
            ProviderError::Auth(_) => Reason::CloudAuthFailed,
            ProviderError::Throttled(_) => Reason::CloudThrottled,
            ProviderError::NotFound(_) => Reason::FunctionNotFound,
            ProviderError::Refused(_) => Reason::CloudRefused,
            ProviderError::Conflict(_) => Reason::CloudConflict,
            ProviderError::Unreachable(_) => Reason::CloudUnreachable,
            ProviderError::Timeout(_) => Reason::CloudTimeout,
            ProviderError::Config(_) => Reason::AccountMisconfigured,
            ProviderError::Cloud(_) => Reason::CloudError,
            ProviderError::Unrecorded(_) => Reason::MintUnrecorded,
            ProviderError::MarkUnrecorded(_) => Reason::MarkUnrecorded,
        }
    }
}

/// One cloud account's observe / apply, object safe so the engine can hold
/// providers of every cloud side by side. `adapter::Adapter` is the one
/// implementation for a cloud; wrappers (`circuit::Circuit`) forward every
/// call.
pub trait Provider: Send + Sync {
    fn cloud(&self) -> api::Cloud;

    /// The account the credentials reached (AWS account id, subscription,
    /// project), once known.
    fn reached(&self) -> Option<String>;

    /// Observe the posture's function (fresh per-function reads; account-wide
    /// reads from the cache) and plan against it. Pure planning happens in the
    /// cloud's `plan` module.
    fn assess<'a>(&'a self, posture: &'a Posture) -> BoxFuture<'a, Result<Plan, ProviderError>>;

    /// Apply one action of a plan this provider made. Waits out the cloud's
    /// asynchronous updates and retries transient conflicts.
    fn apply<'a>(&'a self, posture: &'a Posture, action: &'a Action) -> BoxFuture<'a, Result<(), ProviderError>>;

    /// Forget cached account-wide observations, so the next `assess` sees
    /// the writes just made.
    fn invalidate(&self);

    /// Remove this posture's ownership marker from the function, if it holds
    /// it. Never reverts hardening.
    fn release<'a>(&'a self, posture: &'a Posture) -> BoxFuture<'a, Result<(), ProviderError>>;

    /// Identities this provider minted for the posture since it was built,
    /// for the caller to record and pass back in `Posture::minted`. No
    /// default: a wrapper that forgot to forward it would silently lose the
    /// only proof of what zerofn made.
    fn minted(&self, posture: &Posture) -> Vec<MintedIdentity>;

    /// The write-ahead record the caller must keep before `action` is
    /// applied, when the action creates an identity and no record for it is
    /// held yet. No default, for the same reason as `minted`.
    fn intent(&self, posture: &Posture, action: &Action) -> Option<MintIntent>;

    /// One cheap call that proves the account answers (and the credentials
    /// work), so a caller can fail every posture of an unreachable account
    /// at once instead of each waiting out its own retries. Callers bound it
    /// with their own deadline. No default: an account is never reported
    /// reachable without being asked.
    fn probe(&self) -> BoxFuture<'_, Result<(), ProviderError>>;

    /// Every function of the account in its scope, with its tags or labels
    /// (`Cloud::functions`).
    fn functions(&self) -> BoxFuture<'_, Result<Vec<crate::fleet::Listed>, ProviderError>>;

    /// The account's change-event feed, if it declares one. No default: a
    /// wrapper that forgot to forward it would leave the feed unread while
    /// the account's status could not say why.
    fn feed(&self) -> Option<std::sync::Arc<dyn feed::EventFeed>>;
}

#[cfg(test)]
mod event_action_tests {
    use super::*;

    #[test]
    fn an_event_action_names_its_change_and_fits_the_api() {
        let remove = |sid: &str| ActionSummary {
            op: "RemovePermission".into(),
            target: "arn:aws:lambda:eu-west-1:123456789012:function:orders".into(),
            detail: format!("remove statement {sid}"),
        };
        assert_eq!(
            remove("sneaky-public").event_action(),
            "RemovePermission remove statement sneaky-public on orders"
        );
        assert_ne!(remove("a").event_action(), remove("b").event_action());
        let long = |tail: &str| event_action(&["PutRolePolicy", &"x".repeat(200), tail]);
        assert!(long("a").len() <= EVENT_ACTION_MAX);
        assert_ne!(long("a"), long("b"), "cut, two actions still differ");
        let wide = event_action(&["Op", &"é".repeat(100)]);
        assert!(wide.len() <= EVENT_ACTION_MAX, "cut on a character boundary");
    }
}
