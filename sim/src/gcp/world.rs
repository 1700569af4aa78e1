//! What the stand-in knows: projects, functions and their Cloud Run
//! services, service accounts, IAM policies, operations — and the
//! [`GcpWorld`] builder tests seed it with.

use super::errors::{GcpError, GcpResult};
use super::policy::{Binding, Policy};
use super::pubsub::{self, PubSub};
use super::request::{is_resource_id, now_rfc3339};
use super::{functions, iam};
use crate::scaffold::Faults;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::time::Duration;

/// The projects, functions, service accounts and policies a stand-in starts
/// with. Seeds go through the same validation as API requests, so a world
/// cannot hold what Google would refuse.
#[derive(Default)]
pub struct GcpWorld {
    projects: Vec<(String, u64)>,
    functions: Vec<FunctionSeed>,
    service_accounts: Vec<(String, String, String)>,
    run_services: Vec<(String, String, String)>,
    project_policies: Vec<(String, Vec<Binding>)>,
    run_policies: Vec<((String, String, String), Vec<Binding>)>,
    account_policies: Vec<(String, Vec<Binding>)>,
    roles: Vec<SeededRole>,
    insights: Vec<super::recommender::InsightSeed>,
    sink_exclusions: Vec<(String, String, String)>,
    operation_polls: Option<u32>,
    subscriptions: Vec<SubscriptionSeed>,
    pull_hold: Option<Duration>,
}

/// A Pub/Sub pull subscription to seed.
struct SubscriptionSeed {
    project: String,
    name: String,
    ack_deadline_secs: u32,
    max_delivery_attempts: Option<u32>,
}

/// A role `iam.roles.get` answers: predefined (`roles/R`) or custom
/// (`projects/P/roles/R`, `organizations/O/roles/R`).
#[derive(Clone, Debug)]
pub(crate) struct SeededRole {
    pub name: String,
    pub title: String,
    pub permissions: Vec<String>,
    pub deleted: bool,
}

impl GcpWorld {
    pub fn new() -> GcpWorld {
        GcpWorld::default()
    }

    /// A project by id and number. It comes with the Compute Engine
    /// (`{number}-compute@developer.gserviceaccount.com`) and App Engine
    /// (`{id}@appspot.gserviceaccount.com`) default service accounts.
    pub fn project(mut self, id: &str, number: u64) -> GcpWorld {
        self.projects.push((id.to_string(), number));
        self
    }

    /// A 2nd gen function, with its Cloud Run service.
    pub fn function(mut self, seed: FunctionSeed) -> GcpWorld {
        self.functions.push(seed);
        self
    }

    /// A user-managed service account `{account_id}@{project}.iam.gserviceaccount.com`.
    pub fn service_account(mut self, project: &str, account_id: &str, display_name: &str) -> GcpWorld {
        self.service_accounts
            .push((project.to_string(), account_id.to_string(), display_name.to_string()));
        self
    }

    /// A Cloud Run service that no function owns.
    pub fn run_service(mut self, project: &str, location: &str, service: &str) -> GcpWorld {
        self.run_services
            .push((project.to_string(), location.to_string(), service.to_string()));
        self
    }

    /// The project's IAM policy (Resource Manager). Without one, a project's
    /// policy grants `roles/owner` to `user:owner@example.com`, since real
    /// projects always have an owner.
    pub fn project_policy(mut self, project: &str, bindings: Vec<Binding>) -> GcpWorld {
        self.project_policies.push((project.to_string(), bindings));
        self
    }

    /// The IAM policy of a Cloud Run service (a function's service or one
    /// added with [`GcpWorld::run_service`]).
    pub fn run_policy(mut self, project: &str, location: &str, service: &str, bindings: Vec<Binding>) -> GcpWorld {
        self.run_policies.push((
            (project.to_string(), location.to_string(), service.to_string()),
            bindings,
        ));
        self
    }

    /// A role with its permissions, served by `iam.roles.get`.
    pub fn role(mut self, name: &str, title: &str, permissions: &[&str]) -> GcpWorld {
        self.roles.push(SeededRole {
            name: name.to_string(),
            title: title.to_string(),
            permissions: permissions.iter().map(|p| p.to_string()).collect(),
            deleted: false,
        });
        self
    }

    /// The IAM policy of a service account (who may act as it). Without
    /// one, an account's policy is empty.
    pub fn service_account_policy(mut self, email: &str, bindings: Vec<Binding>) -> GcpWorld {
        self.account_policies.push((email.to_string(), bindings));
        self
    }

    /// An enabled exclusion `name` with `filter` on the project's `_Default`
    /// log sink.
    pub fn default_sink_exclusion(mut self, project: &str, name: &str, filter: &str) -> GcpWorld {
        self.sink_exclusions
            .push((project.to_string(), name.to_string(), filter.to_string()));
        self
    }

    /// An IAM policy insight the Recommender lists for the project.
    pub fn policy_insight(mut self, seed: super::recommender::InsightSeed) -> GcpWorld {
        self.insights.push(seed);
        self
    }

    /// How many GETs of a function operation it takes to see it done
    /// (default 1: the first poll finds it complete).
    pub fn operation_polls(mut self, polls: u32) -> GcpWorld {
        self.operation_polls = Some(polls);
        self
    }

    /// A Pub/Sub pull subscription `projects/{project}/subscriptions/{name}`
    /// with the default 10 s ack deadline and no dead-letter policy.
    pub fn subscription(self, project: &str, name: &str) -> GcpWorld {
        self.subscription_with(project, name, pubsub::DEFAULT_ACK_DEADLINE_SECS, None)
    }

    /// A Pub/Sub pull subscription with its `ackDeadlineSeconds` (10–600)
    /// and, when `Some`, a dead-letter policy's `maxDeliveryAttempts` (5–100):
    /// only then do pulls report `deliveryAttempt`.
    pub fn subscription_with(
        mut self,
        project: &str,
        name: &str,
        ack_deadline_secs: u32,
        max_delivery_attempts: Option<u32>,
    ) -> GcpWorld {
        self.subscriptions.push(SubscriptionSeed {
            project: project.to_string(),
            name: name.to_string(),
            ack_deadline_secs,
            max_delivery_attempts,
        });
        self
    }

    /// How long a pull that finds no message waits for one before answering
    /// `{}` (default 1 s; Google holds pulls far longer).
    pub fn pull_hold(mut self, hold: Duration) -> GcpWorld {
        self.pull_hold = Some(hold);
        self
    }

    pub(crate) fn build(self) -> GcpResult<State> {
        let mut state = State {
            operation_polls: self.operation_polls.unwrap_or(1).max(1),
            ..State::default()
        };
        for (id, number) in self.projects {
            check_project_id(&id)?;
            if number == 0 || state.project(&id).is_some() || state.project(&number.to_string()).is_some() {
                return Err(GcpError::invalid(format!(
                    "project {id} ({number}) is seeded twice or has number 0"
                )));
            }
            let project = Project {
                id: id.clone(),
                number,
                create_time: now_rfc3339(),
            };
            for sa in iam::default_accounts(&project) {
                state.service_accounts.insert(sa.email.clone(), sa);
            }
            let owner = Policy::seeded(vec![Binding::new("roles/owner", ["user:owner@example.com"])])?;
            state.policies.insert(format!("projects/{id}"), owner);
            state.projects.push(project);
        }
        for (project, account_id, display_name) in self.service_accounts {
            let sa = iam::create(&state, &project, &account_id, &display_name, "")?;
            state.service_accounts.insert(sa.email.clone(), sa);
        }
        for seed in self.functions {
            let f = functions::seed(&state, &seed)?;
            let service = f
                .get("serviceConfig")
                .and_then(|s| s.get("service"))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            let name = f.get("name").and_then(Value::as_str).unwrap_or_default().to_string();
            if state.functions.contains_key(&name) {
                return Err(GcpError::invalid(format!("function {name} is seeded twice")));
            }
            state.policies.entry(service).or_insert(Policy::seeded(vec![])?);
            state.functions.insert(
                name,
                FunctionEntry {
                    value: f,
                    pending: None,
                },
            );
        }
        for (project, location, service) in self.run_services {
            let key = state.run_service_key(&project, &location, &service)?;
            state.policies.entry(key).or_insert(Policy::seeded(vec![])?);
        }
        for (project, bindings) in self.project_policies {
            let key = state.project_key(&project)?;
            state.policies.insert(key, Policy::seeded(bindings)?);
        }
        for role in self.roles {
            let parts: Vec<&str> = role.name.split('/').collect();
            let ok = matches!(parts.as_slice(), ["roles", r] if !r.is_empty())
                || matches!(parts.as_slice(), ["projects" | "organizations", p, "roles", r] if !p.is_empty() && !r.is_empty());
            if !ok {
                return Err(GcpError::invalid(format!("invalid role name {}", role.name)));
            }
            state.roles.insert(role.name.clone(), role);
        }
        for (email, bindings) in self.account_policies {
            let sa = state
                .service_accounts
                .get(&email)
                .ok_or_else(|| GcpError::invalid(format!("service account policy for unknown {email}")))?;
            let key = format!("projects/{}/serviceAccounts/{email}", sa.project);
            state.policies.insert(key, Policy::seeded(bindings)?);
        }
        for (project, name, filter) in self.sink_exclusions {
            let id = state
                .project(&project)
                .map(|p| p.id.clone())
                .ok_or_else(|| GcpError::invalid(format!("sink exclusion for unknown project {project}")))?;
            state.sink_exclusions.entry(id).or_default().push(json!({
                "name": name,
                "filter": filter,
                "createTime": "2026-01-01T00:00:00Z",
                "updateTime": "2026-01-01T00:00:00Z",
            }));
        }
        for seed in self.insights {
            let id = state
                .project(&seed.project)
                .map(|p| p.id.clone())
                .ok_or_else(|| GcpError::invalid(format!("policy insight for unknown project {}", seed.project)))?;
            state
                .insights
                .push(super::recommender::InsightSeed { project: id, ..seed });
        }
        for ((project, location, service), bindings) in self.run_policies {
            let key = state.run_service_key(&project, &location, &service)?;
            if !state.policies.contains_key(&key) {
                return Err(GcpError::invalid(format!(
                    "run policy for {key}: seed the function or the run service first"
                )));
            }
            state.policies.insert(key, Policy::seeded(bindings)?);
        }
        if let Some(hold) = self.pull_hold {
            state.pubsub.hold = hold;
        }
        for seed in self.subscriptions {
            state.add_subscription(
                &seed.project,
                &seed.name,
                seed.ack_deadline_secs,
                seed.max_delivery_attempts,
            )?;
        }
        Ok(state)
    }
}

/// Project ids: 6–30 lowercase letters, digits and hyphens, starting with a
/// letter and not ending with a hyphen.
fn check_project_id(id: &str) -> GcpResult<()> {
    if is_resource_id(id, 6..=30) {
        Ok(())
    } else {
        Err(GcpError::invalid(format!("invalid project id {id:?}")))
    }
}

/// A 2nd gen Cloud Function to seed. Unset fields get the values the API
/// fills in on deploy (Compute Engine default service account, ALLOW_ALL
/// ingress, `gcf-artifacts` repository, ...).
#[derive(Clone, Debug)]
pub struct FunctionSeed {
    pub(crate) project: String,
    pub(crate) location: String,
    pub(crate) name: String,
    pub(crate) json: Map<String, Value>,
}

impl FunctionSeed {
    pub fn new(project: &str, location: &str, name: &str) -> FunctionSeed {
        FunctionSeed {
            project: project.to_string(),
            location: location.to_string(),
            name: name.to_string(),
            json: Map::new(),
        }
    }

    fn set(mut self, path: &[&str], value: Value) -> FunctionSeed {
        let mut here = &mut self.json;
        for (i, key) in path.iter().enumerate() {
            if i + 1 == path.len() {
                here.insert(key.to_string(), value);
                break;
            }
            let entry = here.entry(key.to_string()).or_insert_with(|| json!({}));
            if !entry.is_object() {
                *entry = json!({});
            }
            match entry {
                Value::Object(m) => here = m,
                _ => break,
            }
        }
        self
    }

    pub fn runtime(self, runtime: &str) -> FunctionSeed {
        self.set(&["buildConfig", "runtime"], json!(runtime))
    }

    pub fn entry_point(self, entry_point: &str) -> FunctionSeed {
        self.set(&["buildConfig", "entryPoint"], json!(entry_point))
    }

    /// `serviceConfig.serviceAccountEmail`, the identity the function runs as.
    pub fn service_account(self, email: &str) -> FunctionSeed {
        self.set(&["serviceConfig", "serviceAccountEmail"], json!(email))
    }

    /// `serviceConfig.ingressSettings`, e.g. `ALLOW_INTERNAL_ONLY`.
    pub fn ingress(self, setting: &str) -> FunctionSeed {
        self.set(&["serviceConfig", "ingressSettings"], json!(setting))
    }

    /// `serviceConfig.vpcConnector` and `vpcConnectorEgressSettings`.
    pub fn vpc_connector(self, connector: &str, egress: &str) -> FunctionSeed {
        self.set(&["serviceConfig", "vpcConnector"], json!(connector))
            .set(&["serviceConfig", "vpcConnectorEgressSettings"], json!(egress))
    }

    pub fn label(mut self, key: &str, value: &str) -> FunctionSeed {
        let labels = self.json.entry("labels").or_insert_with(|| json!({}));
        if let Value::Object(m) = labels {
            m.insert(key.to_string(), json!(value));
        }
        self
    }

    /// `buildConfig.dockerRepository`, `projects/P/locations/L/repositories/R`.
    pub fn docker_repository(self, repository: &str) -> FunctionSeed {
        self.set(&["buildConfig", "dockerRepository"], json!(repository))
    }

    /// `buildConfig.serviceAccount`, `projects/P/serviceAccounts/EMAIL`.
    pub fn build_service_account(self, resource: &str) -> FunctionSeed {
        self.set(&["buildConfig", "serviceAccount"], json!(resource))
    }

    /// The Cloud Run service's id (default: the function's name).
    pub fn service(self, service_id: &str) -> FunctionSeed {
        self.set(&["serviceConfig", "service"], json!(service_id))
    }

    /// A Pub/Sub event trigger on `projects/P/topics/T`, delivered as
    /// `trigger_service_account` (None: the Compute Engine default).
    pub fn pubsub_trigger(self, topic: &str, trigger_service_account: Option<&str>) -> FunctionSeed {
        let mut t = json!({
            "eventType": "google.cloud.pubsub.topic.v1.messagePublished",
            "pubsubTopic": topic,
        });
        if let Some(sa) = trigger_service_account {
            t["serviceAccountEmail"] = json!(sa);
        }
        self.set(&["eventTrigger"], t)
    }

    /// Any other fields, as the Function's proto3 JSON, merged over what the
    /// other setters set (objects merge, everything else replaces).
    pub fn json(mut self, fields: Value) -> FunctionSeed {
        if let Value::Object(m) = fields {
            merge(&mut self.json, m);
        } else {
            // A non-object cannot be a Function; keep it so build() refuses it.
            self.json.insert("__not_an_object__".into(), fields);
        }
        self
    }
}

fn merge(into: &mut Map<String, Value>, from: Map<String, Value>) {
    for (k, v) in from {
        match (into.get_mut(&k), v) {
            (Some(Value::Object(a)), Value::Object(b)) => merge(a, b),
            (_, v) => {
                into.insert(k, v);
            }
        }
    }
}

#[derive(Clone, Debug)]
pub(crate) struct Project {
    pub id: String,
    pub number: u64,
    pub create_time: String,
}

#[derive(Clone, Debug)]
pub(crate) struct ServiceAccount {
    pub project: String,
    pub email: String,
    pub unique_id: String,
    pub display_name: String,
    pub description: String,
}

pub(crate) struct FunctionEntry {
    pub value: Map<String, Value>,
    /// The operation updating it, while one runs.
    pub pending: Option<String>,
}

pub(crate) struct Operation {
    pub json: Map<String, Value>,
    pub function: String,
    /// The function as it will be once the operation completes.
    pub result: Map<String, Value>,
    pub polls: u32,
}

pub(crate) type PolicyChange = Box<dyn FnOnce(&mut Policy) + Send>;

#[derive(Default)]
pub(crate) struct State {
    pub projects: Vec<Project>,
    pub functions: BTreeMap<String, FunctionEntry>,
    pub service_accounts: BTreeMap<String, ServiceAccount>,
    /// Keyed by resource name with the project id: `projects/P` or
    /// `projects/P/locations/L/services/S`. A Cloud Run service exists
    /// exactly when it has an entry here.
    pub policies: BTreeMap<String, Policy>,
    pub operations: BTreeMap<String, Operation>,
    pub operation_polls: u32,
    /// Errors armed by tests, answered before anything is read or changed.
    pub faults: Faults<GcpError>,
    /// Changes to apply right after the next getIamPolicy of a resource.
    pub hooks: Vec<(String, PolicyChange)>,
    pub roles: BTreeMap<String, SeededRole>,
    pub pubsub: PubSub,
    /// IAM policy insights, in the order seeded.
    pub insights: Vec<super::recommender::InsightSeed>,
    /// Project id → the exclusions of its `_Default` log sink.
    pub sink_exclusions: BTreeMap<String, Vec<Value>>,
    /// Cloud Run service name → its binaryAuthorization (empty: none).
    pub binary_authorization: BTreeMap<String, Map<String, Value>>,
    /// Cloud Run service name → an ingress set on the service itself
    /// (`services.patch`, or seeded), which holds until the function's next
    /// deploy applies the function's own setting again.
    pub service_ingress: BTreeMap<String, String>,
    /// Cloud Run service name → its generation, bumped by each update.
    pub service_generations: BTreeMap<String, u64>,
}

impl State {
    /// Creates a pull subscription in a known project, checked as Google
    /// checks `subscriptions.create`.
    pub fn add_subscription(
        &mut self,
        project: &str,
        name: &str,
        ack_deadline_secs: u32,
        max_delivery_attempts: Option<u32>,
    ) -> GcpResult<()> {
        let key = self.subscription_key(project, name)?;
        pubsub::check_subscription_id(name)?;
        self.pubsub.add(key, ack_deadline_secs, max_delivery_attempts)
    }

    /// `projects/{project id}/subscriptions/{name}`; a project the stand-in
    /// does not know is refused as everywhere else.
    pub fn subscription_key(&self, project: &str, name: &str) -> GcpResult<String> {
        let p = self.project(project).ok_or_else(|| {
            GcpError::project_denied(
                "pubsub.subscriptions.consume",
                &format!("projects/{project}/subscriptions/{name}"),
            )
        })?;
        Ok(format!("projects/{}/subscriptions/{name}", p.id))
    }

    /// A project by id or number, the two forms resource names accept.
    pub fn project(&self, key: &str) -> Option<&Project> {
        self.projects
            .iter()
            .find(|p| p.id == key || p.number.to_string() == key)
    }

    pub fn project_key(&self, project: &str) -> GcpResult<String> {
        self.project(project)
            .map(|p| format!("projects/{}", p.id))
            .ok_or_else(|| GcpError::invalid(format!("unknown project {project}")))
    }

    pub fn run_service_key(&self, project: &str, location: &str, service: &str) -> GcpResult<String> {
        let p = self
            .project(project)
            .ok_or_else(|| GcpError::invalid(format!("unknown project {project}")))?;
        Ok(format!("projects/{}/locations/{location}/services/{service}", p.id))
    }

    /// Whether a service account exists — None when the address belongs to a
    /// project the stand-in does not know, where it cannot tell.
    pub fn service_account_exists(&self, email: &str) -> Option<bool> {
        if self.service_accounts.contains_key(email) {
            return Some(true);
        }
        let (local, domain) = email.split_once('@')?;
        let project = if let Some(p) = domain.strip_suffix(".iam.gserviceaccount.com") {
            p.to_string()
        } else if domain == "developer.gserviceaccount.com" {
            local.strip_suffix("-compute")?.to_string()
        } else if domain == "appspot.gserviceaccount.com" {
            local.to_string()
        } else {
            return None;
        };
        self.project(&project).map(|_| false)
    }

    /// Runs the oldest concurrent change armed for `key`, as a write of its
    /// own: arming two makes two successive read-modify-writes go stale.
    pub fn fire_hook(&mut self, key: &str) {
        let Some(i) = self.hooks.iter().position(|(k, _)| k == key) else {
            return;
        };
        let (_, change) = self.hooks.remove(i);
        if let Some(p) = self.policies.get_mut(key) {
            change(p);
            p.normalize();
            p.bump();
        }
    }
}
