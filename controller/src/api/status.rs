//! Status of a FunctionPosture: conditions a person and `kubectl wait` read,
//! and the findings behind them.

use crate::findings::{Finding, Proposal};
use kube::KubeSchema;
use serde::{Deserialize, Serialize};

/// Same wire shape as `metav1.Condition`, so kubectl and other tools read it
/// as they read any condition.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// The condition's type, e.g. Ready.
    #[serde(rename = "type")]
    pub type_: String,
    /// True, False or Unknown.
    pub status: String,
    /// The generation of the spec the condition was set for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// RFC 3339 time the status last changed.
    pub last_transition_time: String,
    /// CamelCase reason, stable for alerting.
    pub reason: String,
    /// What a person needs to know, in a sentence.
    pub message: String,
}

/// What the controller last observed and did.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct FunctionPostureStatus {
    /// The generation of the spec this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Ready, Synced and one `<Control>Compliant` per declared control.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// aws, azure or gcp.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cloud: Option<String>,
    /// The function, as region/name or resource group/name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function: Option<String>,
    /// The identity the function runs as (role ARN, service account, principal id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal: Option<String>,
    /// Declared controls that are compliant, e.g. `4/5`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compliance: Option<String>,
    /// What differs from the declared posture, after the last enforcement.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub findings: Vec<Finding>,
    /// Narrower declarations zerofn proposes from the cloud's evidence of
    /// use (identity.unusedPermissions), ready to paste; never applied.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub proposals: Vec<Proposal>,
    /// Findings left out of `findings` to keep the object small.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub findings_truncated: u32,
    /// RFC 3339 time of the last observation of the function.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_observed_time: Option<String>,
    /// RFC 3339 time findings last appeared that the status before did not
    /// have (drift, or a posture's first findings).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_drift_time: Option<String>,
    /// RFC 3339 time of the last enforcement.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_enforced_time: Option<String>,
    /// Write calls made by the last enforcement.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_enforced_writes: Option<u64>,
    /// Identities zerofn created for this posture, with the unique id the
    /// cloud returned: the only proof zerofn accepts that an identity is its
    /// own to change. Kept for as long as the posture exists.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub minted_identities: Vec<MintedIdentity>,
    /// Identities zerofn set out to create for this posture, each recorded
    /// before the create call with a nonce the call stamps on the identity:
    /// how a controller that died between the call and recording the unique
    /// id proves, after a restart, that the identity is the one it created.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mint_intents: Vec<MintIntent>,
    /// True once zerofn may have written its ownership marker to the
    /// function: set before the first write to the cloud, never unset. A
    /// posture without it is deleted at once, as there is nothing to release.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub ownership_marked: bool,
}

impl FunctionPostureStatus {
    /// Whether the function may carry this posture's ownership marker.
    /// Statuses written before `ownershipMarked` existed count as marked when
    /// they show a write or a minted identity.
    pub fn may_hold_marker(&self) -> bool {
        self.ownership_marked || self.last_enforced_time.is_some() || !self.minted_identities.is_empty()
    }
}

/// An identity zerofn created for a posture. Ownership is proved by the cloud's
/// own immutable unique id (AWS RoleId, GCP service account uniqueId) recorded
/// when zerofn created it, never by a name or a tag that anyone could set.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MintedIdentity {
    /// Role ARN or service account email.
    pub principal: String,
    /// The unique id the cloud returned when zerofn created the identity.
    pub unique_id: String,
}

/// The write-ahead record of an identity zerofn is about to create, kept
/// before the create call is sent. A process that dies after the cloud
/// created the identity and before its unique id was recorded leaves this
/// record behind: the next one proves the identity is the one it created
/// when the identity carries the record's nonce (set atomically by the
/// create call) and was created no earlier than the record. Without it, such
/// an identity could never be proved zerofn's and the posture would be stuck.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MintIntent {
    /// Role ARN or service account email the identity will have.
    pub principal: String,
    /// A random value the create call stamps on the identity.
    pub nonce: String,
    /// When the record was written (RFC 3339).
    pub at: String,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}
