//! What zerofn observes of one Cloud Function (2nd gen), as plain data.

use std::collections::{BTreeMap, BTreeSet};

#[derive(Clone, Debug, Default, PartialEq)]
pub struct ObservedFunction {
    /// projects/P/locations/L/functions/F
    pub name: String,
    pub project: String,
    pub project_number: String,
    pub location: String,
    pub id: String,
    pub service_account: String,
    /// Other functions of the project running as the same account.
    pub shared_with: Vec<String>,
    pub ingress: String,
    pub vpc_connector: String,
    pub egress: String,
    /// The Cloud Run service behind the function.
    pub service: String,
    pub labels: BTreeMap<String, String>,
    pub docker_repository: String,
    pub build_service_account: String,
    pub event_trigger: Option<EventTrigger>,
    /// Unconditional project roles the function's account holds.
    pub project_roles: BTreeSet<String>,
    /// Project roles the account holds only under a condition (not zerofn's
    /// to change).
    pub conditional_roles: BTreeSet<String>,
    /// The uniqueId of the account the function runs as, when it is a
    /// service account of this project (None: another project's, or gone).
    pub service_account_unique_id: Option<String>,
    /// The dedicated account zerofn would create, when it exists.
    pub dedicated: Option<DedicatedAccount>,
    /// uniqueIds of the accounts zerofn recorded minting for this posture
    /// (the posture's status and this process's own record).
    pub minted: BTreeSet<String>,
    /// Evidence about who else can use the function's account, gathered
    /// only when the posture opts in to editing it in place.
    pub exclusivity: Option<Exclusivity>,
    /// Bindings on the service's IAM policy whose role lets members invoke
    /// the function (observed when triggers are declared).
    pub invokers: Option<Vec<InvokeGrant>>,
    /// Roles on the service's IAM policy whose permissions could not be read:
    /// their members may or may not invoke the function.
    pub unjudged_roles: Vec<UnjudgedRole>,
    /// Which of its roles the account used, from the IAM recommender's
    /// policy insights: observed only when the posture asks about unused
    /// permissions.
    pub role_usage: Option<RoleUsage>,
    /// The function's Cloud Run service: read only when a control judges
    /// it (private ingress, Binary Authorization).
    pub run_service: Option<ServiceState>,
    /// The exclusions of the project's `_Default` log sink: observed only
    /// when the posture requires the function's logs to be kept.
    pub default_sink: Option<SinkState>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum SinkState {
    Observed(Vec<SinkExclusion>),
    NotObserved(crate::providers::ProviderError),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SinkExclusion {
    pub name: String,
    pub filter: String,
    pub disabled: bool,
}

/// The function's Cloud Run service, or why it could not be read.
#[derive(Clone, Debug, PartialEq)]
pub enum ServiceState {
    Observed(RunService),
    NotObserved(crate::providers::ProviderError),
}

/// What the service enforces, as far as zerofn judges it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunService {
    /// `ingress`, e.g. INGRESS_TRAFFIC_INTERNAL_ONLY.
    pub ingress: String,
    /// None: no Binary Authorization.
    pub binary_authorization: Option<BinAuthz>,
}

/// `binaryAuthorization.useDefault` or `.policy`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub enum BinAuthz {
    UseDefault,
    Policy(String),
}

impl BinAuthz {
    /// As the posture declares it: `default` or the policy's name.
    pub fn declared(s: &str) -> BinAuthz {
        if s == "default" {
            BinAuthz::UseDefault
        } else {
            BinAuthz::Policy(s.to_string())
        }
    }

    pub fn of(b: &google_cloud_run_v2::model::BinaryAuthorization) -> Option<BinAuthz> {
        if b.use_default() == Some(&true) {
            Some(BinAuthz::UseDefault)
        } else {
            b.policy()
                .filter(|p| !p.is_empty())
                .map(|p| BinAuthz::Policy(p.clone()))
        }
    }
}

impl std::fmt::Display for BinAuthz {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BinAuthz::UseDefault => f.write_str("useDefault"),
            BinAuthz::Policy(p) => write!(f, "policy {p}"),
        }
    }
}

/// The policy insights about the account's project role bindings, or why
/// they could not be read.
#[derive(Clone, Debug, PartialEq)]
pub enum RoleUsage {
    Observed(Vec<RoleInsight>),
    NotObserved(crate::providers::ProviderError),
}

/// One permissions-usage insight about one unconditional binding of the
/// account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoleInsight {
    /// The insight's resource name.
    pub name: String,
    pub role: String,
    /// Permissions of the role used (exercised) or inferred as needed
    /// within the observation period.
    pub used_permissions: usize,
    pub total_permissions: Option<u64>,
    /// How far back the insight looked.
    pub observation_period: std::time::Duration,
    pub last_refresh: Option<jiff::Timestamp>,
}

/// zerofn's dedicated account for the function, as observed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DedicatedAccount {
    pub email: String,
    pub unique_id: String,
    /// Its unconditional project roles.
    pub roles: BTreeSet<String>,
}

/// What can be observed about other users of a service account.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Exclusivity {
    /// Members the account's own IAM policy lets act as it, or mint tokens
    /// for it (None: the policy could not be read).
    pub actors: Option<BTreeSet<String>>,
    /// Kinds of workload that could run as the account but that zerofn does
    /// not observe (each one means exclusivity cannot be proved).
    pub unobserved: Vec<String>,
}

/// One member of one binding that lets it invoke the function.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct InvokeGrant {
    pub member: String,
    pub role: String,
    /// The binding has a condition: zerofn does not change it.
    pub conditional: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct UnjudgedRole {
    pub role: String,
    pub members: Vec<String>,
    pub reason: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EventTrigger {
    pub event_type: String,
    pub pubsub_topic: String,
    pub service_account: String,
}

impl ObservedFunction {
    pub fn default_compute_account(&self) -> String {
        format!("{}-compute@developer.gserviceaccount.com", self.project_number)
    }

    pub fn app_engine_account(&self) -> String {
        format!("{}@appspot.gserviceaccount.com", self.project)
    }

    /// The account the function runs as (an empty email means the default
    /// compute account).
    pub fn account(&self) -> String {
        if self.service_account.is_empty() {
            self.default_compute_account()
        } else {
            self.service_account.clone()
        }
    }

    pub fn runs_as_default(&self) -> bool {
        self.service_account.is_empty()
            || self.service_account == self.default_compute_account()
            || self.service_account == self.app_engine_account()
    }
}
