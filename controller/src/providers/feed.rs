//! An account's change-event feed: the queue or subscription its cloud
//! delivers change events to. A cloud builds its feed with the account's
//! own credentials and endpoints (`Provider::feed`); the controller reads
//! it (`reconcile::events`).

use super::ProviderError;
use crate::events::{Decoded, Undecodable};
use futures::future::BoxFuture;

/// One message of a feed.
#[derive(Clone, Debug)]
pub struct Received {
    /// What deletes or acknowledges this message.
    pub receipt: String,
    pub event: Result<Decoded, Undecodable>,
}

pub trait EventFeed: Send + Sync {
    /// The queue or subscription, as the account names it.
    fn name(&self) -> &str;

    /// The next messages: waits (long poll) until some arrive or the wait
    /// ends, within the feed's own deadline.
    fn receive(&self) -> BoxFuture<'_, Result<Vec<Received>, ProviderError>>;

    /// Delete (acknowledge) messages already handled.
    fn delete<'a>(&'a self, receipts: &'a [String]) -> BoxFuture<'a, Result<(), ProviderError>>;

    /// Whether a change's caller is zerofn itself (the identity this feed's
    /// account acts as), so its own writes are not taken for drift. False
    /// when that identity is not known: then nothing is skipped.
    fn is_own<'a>(&'a self, actor: &'a str) -> BoxFuture<'a, bool>;
}
