//! Cloud change events, read as what they touched: which functions, which
//! identities, who made the change and when. Pure: each cloud's envelope
//! (CloudTrail through EventBridge, Cloud Audit Logs through a log sink,
//! Event Grid) is decoded here; the feeds that fetch them are the
//! providers', and mapping to postures is the controller's
//! (`reconcile::events`).

pub mod aws;
pub mod azure;
pub mod gcp;

use crate::api::FunctionTarget;

/// What one change event says was touched.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Touched {
    /// Functions the call named (AWS with its Region).
    pub functions: Vec<FunctionTarget>,
    /// Identities the call changed, as the inventory names a function's
    /// identity (AWS role name, GCP service account email).
    pub identities: Vec<String>,
    /// A change whose reach cannot be narrowed to functions (an Azure role
    /// assignment, a GCP project policy without a delta): every posture of
    /// the account that declares identity is checked again.
    pub identity_wide: bool,
    /// Who made the change, as the cloud names the caller (AWS
    /// `userIdentity.arn`, GCP `principalEmail`, Azure `appid`).
    pub actor: Option<String>,
    /// When the change happened, in the cloud's clock.
    pub time: Option<jiff::Timestamp>,
}

/// One message of a feed, decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decoded {
    /// A change zerofn watches.
    Change(Touched),
    /// A well-formed event of a kind that changes nothing zerofn checks (a
    /// read, another service), named for the log.
    Unwatched(String),
}

/// A message that is not an event of the declared kind.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("not a change event: {0}")]
pub struct Undecodable(pub String);

/// A timestamp as the clouds write them (RFC 3339).
fn timestamp(text: Option<&str>) -> Option<jiff::Timestamp> {
    text.and_then(|t| t.parse().ok())
}

fn parse(text: &str) -> Result<serde_json::Value, Undecodable> {
    serde_json::from_str(text).map_err(|e| Undecodable(format!("not JSON: {e}")))
}
