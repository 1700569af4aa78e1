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
    /// The dedicated account zerofn would create: whether it exists, and its
    /// unconditional project roles.
    pub dedicated: Option<BTreeSet<String>>,
    /// Members holding roles/run.invoker on the service (observed when
    /// triggers are declared).
    pub invokers: Option<BTreeSet<String>>,
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

    pub fn runs_as_default(&self) -> bool {
        self.service_account.is_empty()
            || self.service_account == self.default_compute_account()
            || self.service_account == self.app_engine_account()
    }
}
