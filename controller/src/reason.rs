//! Every reason zerofn gives: the `reason` of status conditions (postures
//! and accounts) and of Kubernetes events. They are an API (alerts match on
//! them), so each exists once, here, and its wire form is its name.
//!
//! Top level, so that `api`, `accounts`, `providers` and `reconcile` all use
//! the same type without one layer importing another. docs/design.md lists
//! them ("Reasons"); a test keeps that table complete.

use std::fmt;

/// Declares `Reason` with one variant per reason, `Reason::ALL` and the
/// wire form (the variant's name), so a reason cannot be spelt twice.
macro_rules! reasons {
    ($($(#[doc = $doc:literal])* $name:ident,)*) => {
        /// A status-condition or event reason. Its wire form is its name.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum Reason {
            $($(#[doc = $doc])* $name,)*
        }

        impl Reason {
            /// Every reason, for the documentation check.
            pub const ALL: &[Reason] = &[$(Reason::$name,)*];

            /// The CamelCase form written to conditions and events.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Reason::$name => stringify!($name),)*
                }
            }
        }
    };
}

reasons! {
    // A posture's conditions.
    /// Synced=True: the function was observed (and, in Enforce, enforced).
    Synced,
    /// Ready=True, or a control's condition True: as declared.
    Compliant,
    /// Ready=False or a control's condition False: findings.
    Drift,
    /// A declared control that does not apply on the function's cloud.
    NotApplicable,
    /// Another posture (created earlier) governs the same function, or the
    /// function carries another owner's marker: nothing is written.
    Conflict,
    /// The spec breaks a rule the API server did not enforce.
    InvalidSpec,
    /// The object does not deserialize as a FunctionPosture.
    InvalidObject,
    // Account refusals (tenancy rules).
    /// The posture's `accountRef` names no account.
    AccountNotFound,
    /// A ClusterCloudAccount whose `allowedNamespaces` does not admit the
    /// posture's namespace.
    AccountNotAllowed,
    /// An account that sets no cloud (or more than one).
    AccountInvalid,
    /// The account is on another cloud than the function.
    AccountCloudMismatch,
    /// The account would use what only the platform admin may grant: the
    /// controller's ambient identity with a loopback endpoint, an endpoint
    /// override in a namespaced account, a token over plain HTTP.
    AccountNotPermitted,
    /// A namespaced account without credentials of its own.
    CredentialsRequired,
    /// The posture declares more than its account's permission ceiling.
    CeilingExceeded,
    // The account's Secret (one its cloud cannot read is
    // `AccountMisconfigured`).
    /// The Secret the account names does not exist.
    SecretNotFound,
    /// The controller may not `get` the Secret (RBAC).
    SecretForbidden,
    /// Reading the Secret failed otherwise.
    SecretUnreadable,
    // The cloud (`ProviderError`).
    /// The cloud refused the credentials.
    CloudAuthFailed,
    /// The cloud throttled zerofn.
    CloudThrottled,
    /// The function does not exist.
    FunctionNotFound,
    /// The cloud refused a change.
    CloudRefused,
    /// A conflicting change was in progress in the cloud.
    CloudConflict,
    /// The cloud could not be reached.
    CloudUnreachable,
    /// The cloud did not answer in time.
    CloudTimeout,
    /// The account's configuration does not match the cloud (e.g. a GCP
    /// project number).
    AccountMisconfigured,
    /// The cloud answered something unexpected.
    CloudError,
    /// An identity was minted but its record could not be written to status.
    MintUnrecorded,
    /// That a write may set the ownership marker could not be recorded.
    MarkUnrecorded,
    // An account's Ready condition.
    /// The account's credentials reach the cloud.
    Reachable,
    // An account's EventsReady condition (failures take the cloud's reason).
    /// The account's change-event feed is being read.
    EventsFlowing,
    /// The feed has not been read yet.
    EventsStarting,
    // A PosturePolicy's Ready condition.
    /// Every function the policy governs has a child, and every child is
    /// Ready.
    ChildrenReady,
    /// A child is missing or not Ready yet.
    ChildrenNotReady,
    // Events only.
    /// An action of the plan was applied.
    Enforced,
    /// An action of the plan failed.
    EnforceFailed,
    /// The findings changed.
    DriftDetected,
    /// The ownership marker was removed from a deleted posture's function.
    OwnershipReleased,
    /// A deletion gave up releasing the marker after `--release-timeout`.
    ReleaseAbandoned,
    /// A policy created, updated or deleted a child FunctionPosture.
    ChildrenChanged,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A reason read back from the API (a condition's `reason`) compares with
/// the one about to be written.
impl PartialEq<&str> for Reason {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<str> for Reason {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl serde::Serialize for Reason {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::Reason;

    /// docs/design.md's table lists every reason (the docs are where
    /// someone writing an alert looks), and no reason that does not exist.
    #[test]
    fn the_design_document_lists_every_reason_and_only_those() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/design.md");
        let doc = std::fs::read_to_string(path).expect("docs/design.md");
        let table = doc.split("## Reasons").nth(1).expect("a Reasons section");
        let table = table.split("\n## ").next().unwrap_or(table);
        let listed: Vec<&str> = table
            .lines()
            .filter_map(|l| l.strip_prefix("| `"))
            .filter_map(|l| l.split('`').next())
            .collect();
        let all: Vec<&str> = Reason::ALL.iter().map(|r| r.as_str()).collect();
        for r in &all {
            assert!(listed.contains(r), "{r} is missing from the Reasons table");
        }
        for l in &listed {
            assert!(all.contains(l), "the Reasons table lists {l}, which is no Reason");
        }
    }

    #[test]
    fn the_wire_form_is_the_name() {
        assert_eq!(Reason::CloudThrottled.to_string(), "CloudThrottled");
        assert_eq!(Reason::Conflict, "Conflict");
        assert_eq!(
            serde_json::to_value(Reason::InvalidSpec).expect("serializes"),
            serde_json::json!("InvalidSpec")
        );
    }
}
