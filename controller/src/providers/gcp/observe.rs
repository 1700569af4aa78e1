//! Reading one function's state from GCP. Account-wide reads (every
//! function of the project, the project IAM policy, the service accounts)
//! are cached and shared by all postures; the Cloud Run invoker policy is the
//! only per-function read, made when triggers are declared.

use super::client::{Caller, Clients};
use super::model::{EventTrigger, ObservedFunction};
use super::names;
use crate::providers::cache::Cached;
use crate::providers::pace::Pacer;
use crate::providers::{Posture, ProviderError};
use google_cloud_functions_v2::model::Function;
use google_cloud_iam_v1::model::{GetPolicyOptions, Policy};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

pub const INVOKER: &str = "roles/run.invoker";

#[derive(Default)]
pub struct Inventory {
    pub functions: Cached<HashMap<String, Function>>,
    pub policy: Cached<Policy>,
    pub accounts: Cached<BTreeSet<String>>,
}

impl Inventory {
    pub fn invalidate(&self) {
        self.functions.invalidate();
        self.policy.invalidate();
        self.accounts.invalidate();
    }
}

pub fn project_policy_request(
    clients: &Clients,
    project: &str,
) -> google_cloud_resourcemanager_v3::builder::projects::GetIamPolicy {
    clients
        .projects
        .get_iam_policy()
        .set_resource(format!("projects/{project}"))
        .set_options(GetPolicyOptions::new().set_requested_policy_version(3))
}

pub fn service_policy_request(
    clients: &Clients,
    service: &str,
) -> google_cloud_run_v2::builder::services::GetIamPolicy {
    clients
        .run
        .get_iam_policy()
        .set_resource(service)
        .set_options(GetPolicyOptions::new().set_requested_policy_version(3))
}

async fn load_functions(
    clients: &Clients,
    caller: &Caller,
    project: &str,
) -> Result<HashMap<String, Function>, ProviderError> {
    let mut out = HashMap::new();
    let mut token = String::new();
    let parent = format!("projects/{project}/locations/-");
    loop {
        let page = caller
            .call("ListFunctions", &parent, || {
                clients
                    .functions
                    .list_functions()
                    .set_parent(&parent)
                    .set_page_token(&token)
                    .send()
            })
            .await?;
        for f in page.functions {
            out.insert(f.name.clone(), f);
        }
        if page.next_page_token.is_empty() {
            return Ok(out);
        }
        token = page.next_page_token;
    }
}

async fn load_accounts(clients: &Clients, caller: &Caller, project: &str) -> Result<BTreeSet<String>, ProviderError> {
    let mut out = BTreeSet::new();
    let mut token = String::new();
    let name = format!("projects/{project}");
    loop {
        let page = caller
            .call("ListServiceAccounts", &name, || {
                clients
                    .iam
                    .list_service_accounts()
                    .set_name(&name)
                    .set_page_token(&token)
                    .send()
            })
            .await?;
        out.extend(page.accounts.into_iter().map(|a| a.email));
        if page.next_page_token.is_empty() {
            return Ok(out);
        }
        token = page.next_page_token;
    }
}

/// Unconditional and conditional roles `member` holds in `policy`.
pub fn roles_of(policy: &Policy, member: &str) -> (BTreeSet<String>, BTreeSet<String>) {
    let (mut plain, mut conditional) = (BTreeSet::new(), BTreeSet::new());
    for b in policy.bindings.iter().filter(|b| b.members.iter().any(|m| m == member)) {
        if b.condition.is_some() {
            conditional.insert(b.role.clone());
        } else {
            plain.insert(b.role.clone());
        }
    }
    (plain, conditional)
}

fn name_of<E: std::fmt::Debug>(v: Option<&str>, fallback: &E) -> String {
    v.map(str::to_string).unwrap_or_else(|| format!("{fallback:?}"))
}

pub struct Observer<'a> {
    pub clients: &'a Clients,
    pub caller: &'a Caller,
    pub inventory: &'a Inventory,
    pub pacer: &'a Pacer,
    pub ttl: Duration,
    pub project: &'a str,
    pub project_number: &'a str,
}

impl Observer<'_> {
    pub async fn observe(&self, p: &Posture, location: &str, id: &str) -> Result<ObservedFunction, ProviderError> {
        let name = format!("projects/{}/locations/{location}/functions/{id}", self.project);
        let functions = self
            .inventory
            .functions
            .get_or_load(self.ttl, || load_functions(self.clients, self.caller, self.project))
            .await?;
        let f = match functions.get(&name) {
            Some(f) => f.clone(),
            None => {
                self.pacer.ready().await;
                self.caller
                    .call("GetFunction", &name, || {
                        self.clients.functions.get_function().set_name(&name).send()
                    })
                    .await?
            }
        };
        let sc = f.service_config.clone().unwrap_or_default();
        let bc = f.build_config.clone().unwrap_or_default();
        let mut o = ObservedFunction {
            name: f.name.clone(),
            project: self.project.to_string(),
            project_number: self.project_number.to_string(),
            location: location.to_string(),
            id: id.to_string(),
            service_account: sc.service_account_email.clone(),
            ingress: name_of(sc.ingress_settings.name(), &sc.ingress_settings),
            vpc_connector: sc.vpc_connector.clone(),
            egress: if sc.vpc_connector.is_empty() && sc.vpc_connector_egress_settings.value() == Some(0) {
                String::new()
            } else {
                name_of(
                    sc.vpc_connector_egress_settings.name(),
                    &sc.vpc_connector_egress_settings,
                )
            },
            service: sc.service.clone(),
            labels: f
                .labels
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect::<BTreeMap<_, _>>(),
            docker_repository: bc.docker_repository.clone(),
            build_service_account: bc.service_account.clone(),
            event_trigger: f.event_trigger.as_ref().map(|t| EventTrigger {
                event_type: t.event_type.clone(),
                pubsub_topic: t.pubsub_topic.clone(),
                service_account: t.service_account_email.clone(),
            }),
            ..ObservedFunction::default()
        };
        let account = if o.service_account.is_empty() {
            o.default_compute_account()
        } else {
            o.service_account.clone()
        };
        o.shared_with = functions
            .values()
            .filter(|other| other.name != o.name)
            .filter(|other| {
                let a = other
                    .service_config
                    .as_ref()
                    .map(|s| s.service_account_email.as_str())
                    .unwrap_or_default();
                let a = if a.is_empty() {
                    o.default_compute_account()
                } else {
                    a.to_string()
                };
                a == account
            })
            .map(|other| other.name.clone())
            .collect();
        o.shared_with.sort();

        if p.spec.identity.is_some() {
            let policy = self
                .inventory
                .policy
                .get_or_load(self.ttl, || async {
                    self.caller
                        .call("GetIamPolicy(project)", self.project, || {
                            project_policy_request(self.clients, self.project).send()
                        })
                        .await
                })
                .await?;
            (o.project_roles, o.conditional_roles) = roles_of(&policy, &format!("serviceAccount:{account}"));
            let accounts = self
                .inventory
                .accounts
                .get_or_load(self.ttl, || load_accounts(self.clients, self.caller, self.project))
                .await?;
            let dedicated = names::account_email(&names::dedicated_account_id(&o.id, &o.name), self.project);
            if accounts.contains(&dedicated) {
                o.dedicated = Some(roles_of(&policy, &format!("serviceAccount:{dedicated}")).0);
            }
        }
        if p.spec.triggers.is_some() && !o.service.is_empty() {
            self.pacer.ready().await;
            let policy = self
                .caller
                .call("GetIamPolicy(service)", &o.service, || {
                    service_policy_request(self.clients, &o.service).send()
                })
                .await
                .map_err(|e| match e {
                    // The service is the function's own: if it is gone, so is the function.
                    ProviderError::NotFound(m) => ProviderError::Cloud(m),
                    other => other,
                })?;
            o.invokers = Some(
                policy
                    .bindings
                    .iter()
                    .filter(|b| b.role == INVOKER && b.condition.is_none())
                    .flat_map(|b| b.members.iter().cloned())
                    .collect(),
            );
        }
        Ok(o)
    }
}

/// The project number, for the default compute account's email.
pub async fn project_number(clients: &Clients, caller: &Caller, project: &str) -> Result<String, ProviderError> {
    let name = format!("projects/{project}");
    let p = caller
        .call("GetProject", &name, || {
            clients.projects.get_project().set_name(&name).send()
        })
        .await?;
    p.name
        .strip_prefix("projects/")
        .map(str::to_string)
        .filter(|n| n.bytes().all(|b| b.is_ascii_digit()) && !n.is_empty())
        .ok_or_else(|| ProviderError::Cloud(format!("GetProject {name}: unexpected name {}", p.name)))
}
