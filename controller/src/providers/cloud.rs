//! What a cloud implements: the typed side of the seam.
//!
//! A cloud names its account type, its action type and what it observes;
//! `providers::adapter::Adapter` turns any `Cloud` into the object-safe
//! `Provider` the engine holds, and `providers::registry` maps each account
//! config to its cloud. Nothing outside `providers/` sees a cloud's types.

use super::registry::ConnectOptions;
use super::{ActionSummary, MintIntent, MintedIdentity, Plan, Posture, ProviderError, Tuning};
use crate::api::{self, FunctionTarget};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Debug;
use std::future::Future;

/// Secret data, decoded.
pub type SecretData = BTreeMap<String, Vec<u8>>;

/// The Secret an account names, as read from the account's namespace.
#[derive(Clone, Copy)]
pub struct Secret<'a> {
    pub name: &'a str,
    pub data: &'a SecretData,
}

impl<'a> Secret<'a> {
    /// The raw value of `key`.
    pub fn bytes(&self, key: &str) -> Result<&'a [u8], ProviderError> {
        self.data
            .get(key)
            .map(Vec::as_slice)
            .ok_or_else(|| ProviderError::Config(format!("Secret {} has no key {key}", self.name)))
    }

    /// The value of `key` as text, without surrounding whitespace (a
    /// trailing newline is what `echo` into a file leaves).
    pub fn text(&self, key: &str) -> Result<String, ProviderError> {
        std::str::from_utf8(self.bytes(key)?)
            .map(|s| s.trim().to_string())
            .map_err(|_| ProviderError::Config(format!("Secret {} key {key} is not UTF-8", self.name)))
    }
}

/// One write a cloud would make: planned by its pure `plan`, applied by its
/// `apply`, shown to people as a summary and to machines as JSON.
pub trait CloudAction: Clone + Debug + PartialEq + Serialize + Send + Sync + 'static {
    fn summary(&self) -> ActionSummary;
}

/// One cloud: how an account of it is reached, how a function on it is
/// observed, planned and changed. `Adapter<Self>` is its `Provider`.
///
/// `minted`, `intent` and `probe` have no default: a cloud that forgot one
/// would silently lose the only proof of what zerofn made, or report an
/// account reachable it never asked (see `engine::MintLog`).
pub trait Cloud: Send + Sync + Sized + 'static {
    /// Which of the API's clouds this is.
    const KIND: api::Cloud;
    /// The account spec of this cloud (`spec.aws`, `spec.gcp`, ...).
    type Account: Send + Sync;
    type Action: CloudAction;
    /// What one observation of a posture's function yields: plain data the
    /// pure `plan` reads.
    type Observed: Send;

    /// The Secret the account names, if any.
    fn secret_name(account: &Self::Account) -> Option<&str>;

    /// This cloud's retries, timeouts and waits when nothing overrides
    /// them: each cloud answers at its own pace, so each has its own.
    fn default_tuning() -> Tuning;

    /// Build the cloud's clients for an account. `secret` is the Secret the
    /// account names (already read from its namespace); `tuning` is
    /// `default_tuning` with the run's overrides (`ConnectOptions::tuning`);
    /// the caller has checked the tenancy rules.
    fn connect(
        account: &Self::Account,
        secret: Option<Secret<'_>>,
        tuning: Tuning,
        opts: &ConnectOptions,
    ) -> impl Future<Output = Result<Self, ProviderError>> + Send;

    /// The function a posture targets, as the conflict index keys it: the
    /// real account when the account spec declares it, else `account_key`
    /// (the CloudAccount itself). None when the target is not on this cloud.
    fn function_key(account_key: &str, account: &Self::Account, target: &FunctionTarget) -> Option<String>;

    /// The account the credentials reached (AWS account id, subscription,
    /// project), once known.
    fn reached(&self) -> Option<String>;

    /// Read the posture's function (fresh per-function reads; account-wide
    /// reads from the cache).
    fn observe(&self, posture: &Posture) -> impl Future<Output = Result<Self::Observed, ProviderError>> + Send;

    /// The plan for what was observed: findings and the writes Enforce would
    /// make, in order. Pure apart from the records this process holds.
    fn plan(&self, posture: &Posture, observed: &Self::Observed) -> Plan<Self::Action>;

    /// Apply one action of a plan this cloud made. Waits out the cloud's
    /// asynchronous updates and retries transient conflicts.
    fn apply(&self, posture: &Posture, action: &Self::Action)
    -> impl Future<Output = Result<(), ProviderError>> + Send;

    /// Forget cached account-wide observations.
    fn invalidate(&self);

    /// Remove this posture's ownership marker from the function, if it holds
    /// it. Never reverts hardening.
    fn release(&self, posture: &Posture) -> impl Future<Output = Result<(), ProviderError>> + Send;

    /// Identities minted for the posture since this cloud was connected.
    fn minted(&self, posture: &Posture) -> Vec<MintedIdentity>;

    /// The write-ahead record to keep before `action` is applied, when it
    /// creates an identity and no record of it is held yet.
    fn intent(&self, posture: &Posture, action: &Self::Action) -> Option<MintIntent>;

    /// One cheap call that proves the account answers and the credentials
    /// work.
    fn probe(&self) -> impl Future<Output = Result<(), ProviderError>> + Send;

    /// Every function of the account in the account's scope (its regions,
    /// its project, its subscription), with its tags or labels, from the
    /// shared account-wide reads: what a PosturePolicy selects from and what
    /// discovery counts. No per-function read where the cloud lists tags
    /// account-wide.
    fn functions(&self) -> impl Future<Output = Result<Vec<crate::fleet::Listed>, ProviderError>> + Send;

    /// The account's change-event feed, when the account declares one,
    /// read with the account's own credentials and endpoints.
    fn feed(&self) -> Option<std::sync::Arc<dyn super::feed::EventFeed>>;
}
