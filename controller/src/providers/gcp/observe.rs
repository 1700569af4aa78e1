//! Reading one function's state from GCP. Account-wide reads (every
//! function of the project, the project IAM policy, the service accounts)
//! are cached and shared by all postures; the per-function reads (the Cloud
//! Run service, its invoker policy) are made only when a declared control
//! judges them.

use super::client::{Caller, Clients};
use super::model::{
    BinAuthz, DedicatedAccount, EventTrigger, Exclusivity, InvokeGrant, ObservedFunction, RunService, ServiceState,
    UnjudgedRole,
};
use super::names;
use super::roles::{self, Known};
use crate::providers::cache::Cached;
use crate::providers::pace::Pacer;
use crate::providers::{Posture, ProviderError};
use google_cloud_functions_v2::model::{BuildConfig, Function, ServiceConfig};
use google_cloud_iam_v1::model::{GetPolicyOptions, Policy};
use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Mutex;
use std::time::Duration;

pub const INVOKER: &str = "roles/run.invoker";

/// Workloads that can run as a service account but that zerofn does not
/// observe: while any is listed, no account is provably exclusive.
pub const UNOBSERVED_USERS: [&str; 3] = [
    "Compute Engine VM instances",
    "GKE workloads",
    "Cloud Run services and jobs other than the function's own",
];

/// Roles on a service account's own policy that give no power over it; every
/// other role (actAs, token creation, key or policy administration, basic
/// and custom roles) counts as someone else being able to use it.
const HARMLESS_ACCOUNT_ROLES: [&str; 2] = ["roles/iam.serviceAccountViewer", "roles/viewer"];

/// One function of the project as the planners read it. The inventory
/// holds one per function of the project, so it keeps these fields and not
/// the API's whole object (build, runtime, revision, state messages, ...):
/// at 10,000 functions that is a few MiB instead of tens.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FunctionRecord {
    /// The service account email (empty: the default compute account).
    pub service_account: String,
    pub ingress: String,
    pub vpc_connector: String,
    /// Empty when the function has no connector and no egress setting.
    pub egress: String,
    pub service: String,
    pub labels: BTreeMap<String, String>,
    pub docker_repository: String,
    pub build_service_account: String,
    pub event_trigger: Option<EventTrigger>,
}

impl FunctionRecord {
    pub fn of(f: &Function) -> Self {
        let (no_service, no_build) = (ServiceConfig::default(), BuildConfig::default());
        let sc = f.service_config.as_ref().unwrap_or(&no_service);
        let bc = f.build_config.as_ref().unwrap_or(&no_build);
        FunctionRecord {
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
            labels: f.labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            docker_repository: bc.docker_repository.clone(),
            build_service_account: bc.service_account.clone(),
            event_trigger: f.event_trigger.as_ref().map(|t| EventTrigger {
                event_type: t.event_type.clone(),
                pubsub_topic: t.pubsub_topic.clone(),
                service_account: t.service_account_email.clone(),
            }),
        }
    }

    /// The account the function runs as (an empty email means the default
    /// compute account).
    fn account(&self, default_compute: &str) -> String {
        if self.service_account.is_empty() {
            default_compute.to_string()
        } else {
            self.service_account.clone()
        }
    }
}

#[derive(Default)]
pub struct Inventory {
    /// Every function of the project, by resource name.
    pub functions: Cached<HashMap<String, FunctionRecord>>,
    pub policy: Cached<Policy>,
    /// Service accounts of the project: email → uniqueId.
    pub accounts: Cached<BTreeMap<String, String>>,
    /// Whether a role carries run.routes.invoke, for roles read through
    /// iam.roles.get.
    pub roles: Mutex<HashMap<String, bool>>,
    /// Policy insights by service account: kept for the posture's refresh
    /// interval and not dropped by `invalidate` (zerofn's writes change
    /// nothing they say).
    pub insights: super::insights::InsightCache,
}

impl Inventory {
    pub fn invalidate(&self) {
        self.functions.invalidate();
        self.policy.invalidate();
        self.accounts.invalidate();
        if let Ok(mut r) = self.roles.lock() {
            r.clear();
        }
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
) -> Result<HashMap<String, FunctionRecord>, ProviderError> {
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
        out.extend(page.functions.iter().map(|f| (f.name.clone(), FunctionRecord::of(f))));
        if page.next_page_token.is_empty() {
            return Ok(out);
        }
        token = page.next_page_token;
    }
}

async fn load_accounts(
    clients: &Clients,
    caller: &Caller,
    project: &str,
) -> Result<BTreeMap<String, String>, ProviderError> {
    let mut out = BTreeMap::new();
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
        out.extend(page.accounts.into_iter().map(|a| (a.email, a.unique_id)));
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

/// The other functions of the project that run as the same account.
fn shared_with(o: &ObservedFunction, functions: &HashMap<String, FunctionRecord>) -> Vec<String> {
    let account = o.account();
    let default_compute = o.default_compute_account();
    let mut shared: Vec<String> = functions
        .iter()
        .filter(|(name, other)| **name != o.name && other.account(&default_compute) == account)
        .map(|(name, _)| name.clone())
        .collect();
    shared.sort();
    shared
}

fn name_of<E: std::fmt::Debug>(v: Option<&str>, fallback: &E) -> String {
    v.map(str::to_string).unwrap_or_else(|| format!("{fallback:?}"))
}

/// Whether a declared control judges the function's Cloud Run service,
/// which is then read once for all of them.
fn judges_service(spec: &crate::api::posture::FunctionPostureSpec) -> bool {
    let private_ingress = spec
        .triggers
        .as_ref()
        .and_then(|t| t.gcp.as_ref())
        .is_some_and(|g| g.require_private_ingress);
    let binauthz = spec
        .supply_chain
        .as_ref()
        .and_then(|s| s.gcp.as_ref())
        .is_some_and(|g| g.require_binary_authorization.is_some());
    private_ingress || binauthz
}

pub struct Observer<'a> {
    pub clients: &'a Clients,
    pub caller: &'a Caller,
    pub inventory: &'a Inventory,
    pub pacer: &'a Pacer,
    pub ttl: Duration,
    pub project: &'a str,
    pub project_number: &'a str,
    /// uniqueIds of the accounts zerofn recorded minting for this posture.
    pub minted: BTreeSet<String>,
}

/// Every function of the project, with its labels, from the shared
/// ListFunctions.
pub async fn listed(
    clients: &Clients,
    caller: &Caller,
    inventory: &Inventory,
    ttl: std::time::Duration,
    project: &str,
) -> Result<Vec<crate::fleet::Listed>, ProviderError> {
    let functions = inventory
        .functions
        .get_or_load(ttl, || load_functions(clients, caller, project))
        .await?;
    let mut out: Vec<_> = functions
        .iter()
        .filter_map(|(name, f)| {
            // projects/P/locations/L/functions/N
            let mut parts = name.split('/').skip(3).step_by(2);
            let (location, id) = (parts.next()?, parts.next()?);
            Some(crate::fleet::Listed {
                target: crate::api::FunctionTarget {
                    aws: None,
                    azure: None,
                    gcp: Some(crate::api::GcpFunctionRef {
                        location: location.to_string(),
                        name: id.to_string(),
                    }),
                },
                owner: f.labels.get(super::names::OWNER_LABEL).cloned(),
                identity: Some(f.service_account.clone()).filter(|s| !s.is_empty()),
                tags: f.labels.clone(),
            })
        })
        .collect();
    out.sort_by(|a, b| {
        a.target
            .gcp
            .as_ref()
            .map(|g| (&g.location, &g.name))
            .cmp(&b.target.gcp.as_ref().map(|g| (&g.location, &g.name)))
    });
    Ok(out)
}

impl Observer<'_> {
    pub async fn observe(&self, p: &Posture, location: &str, id: &str) -> Result<ObservedFunction, ProviderError> {
        let name = format!("projects/{}/locations/{location}/functions/{id}", self.project);
        let functions = self
            .inventory
            .functions
            .get_or_load(self.ttl, || load_functions(self.clients, self.caller, self.project))
            .await?;
        let (name, f) = match functions.get(&name) {
            Some(f) => (name, Cow::Borrowed(f)),
            None => {
                self.pacer.ready().await;
                let f = self
                    .caller
                    .call("GetFunction", &name, || {
                        self.clients.functions.get_function().set_name(&name).send()
                    })
                    .await?;
                (f.name.clone(), Cow::Owned(FunctionRecord::of(&f)))
            }
        };
        let mut o = self.observed(name, &f, location, id);
        o.shared_with = shared_with(&o, &functions);
        if let Some(declared) = &p.spec.identity {
            self.observe_identity(&mut o, declared.edit_in_place_if_exclusive)
                .await?;
            if let Some(u) = &declared.unused_permissions {
                self.pacer.ready().await;
                o.role_usage = Some(
                    super::insights::role_usage(
                        &self.clients.recommender,
                        self.caller,
                        &self.inventory.insights,
                        self.project,
                        &o.service_account,
                        u.refresh(),
                    )
                    .await,
                );
            }
        }
        let keep_logs = p
            .spec
            .observability
            .as_ref()
            .and_then(|x| x.gcp.as_ref())
            .is_some_and(|g| g.require_logs_kept);
        if keep_logs {
            self.pacer.ready().await;
            o.default_sink = Some(super::logsink::default_sink(&self.clients.logging, self.caller, self.project).await);
        }
        if judges_service(&p.spec) && !o.service.is_empty() {
            self.pacer.ready().await;
            let read = self
                .caller
                .call("GetService", &o.service, || {
                    self.clients.run.get_service().set_name(&o.service).send()
                })
                .await;
            o.run_service = Some(match read {
                Ok(s) => ServiceState::Observed(RunService {
                    ingress: name_of(s.ingress.name(), &s.ingress),
                    binary_authorization: s.binary_authorization.as_ref().and_then(BinAuthz::of),
                }),
                Err(e) => ServiceState::NotObserved(e),
            });
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
            let (grants, unjudged) = self.invoke_grants(&policy).await?;
            o.invokers = Some(grants);
            o.unjudged_roles = unjudged;
        }
        Ok(o)
    }

    /// The function as Cloud Functions reports it.
    fn observed(&self, name: String, f: &FunctionRecord, location: &str, id: &str) -> ObservedFunction {
        ObservedFunction {
            name,
            project: self.project.to_string(),
            project_number: self.project_number.to_string(),
            location: location.to_string(),
            id: id.to_string(),
            service_account: f.service_account.clone(),
            ingress: f.ingress.clone(),
            vpc_connector: f.vpc_connector.clone(),
            egress: f.egress.clone(),
            service: f.service.clone(),
            labels: f.labels.clone(),
            docker_repository: f.docker_repository.clone(),
            build_service_account: f.build_service_account.clone(),
            event_trigger: f.event_trigger.clone(),
            minted: self.minted.clone(),
            ..ObservedFunction::default()
        }
    }

    /// The account's project roles and uniqueId, the dedicated account if
    /// it exists, and the evidence of exclusivity when it is asked for and
    /// could matter.
    async fn observe_identity(&self, o: &mut ObservedFunction, edit_in_place: bool) -> Result<(), ProviderError> {
        let account = o.account();
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
        o.service_account_unique_id = accounts.get(&account).cloned();
        let dedicated = names::account_email(&names::dedicated_account_id(&o.id, &o.name), self.project);
        if let Some(uid) = accounts.get(&dedicated) {
            o.dedicated = Some(DedicatedAccount {
                roles: roles_of(&policy, &format!("serviceAccount:{dedicated}")).0,
                email: dedicated,
                unique_id: uid.clone(),
            });
        }
        let needs_evidence = edit_in_place
            && !o.runs_as_default()
            && o.shared_with.is_empty()
            && o.service_account_unique_id
                .as_ref()
                .is_some_and(|uid| !o.minted.contains(uid));
        if needs_evidence {
            o.exclusivity = Some(self.exclusivity(&account).await?);
        }
        Ok(())
    }

    /// Who else can use `account`: the members its own IAM policy empowers,
    /// and the kinds of workload zerofn cannot see.
    async fn exclusivity(&self, account: &str) -> Result<Exclusivity, ProviderError> {
        let resource = format!("projects/{}/serviceAccounts/{account}", self.project);
        self.pacer.ready().await;
        let actors = match self
            .caller
            .call("GetIamPolicy(serviceAccount)", &resource, || {
                self.clients
                    .iam
                    .get_iam_policy()
                    .set_resource(&resource)
                    .set_options(GetPolicyOptions::new().set_requested_policy_version(3))
                    .send()
            })
            .await
        {
            Ok(policy) => Some(
                policy
                    .bindings
                    .iter()
                    .filter(|b| !HARMLESS_ACCOUNT_ROLES.contains(&b.role.as_str()))
                    .flat_map(|b| b.members.iter().cloned())
                    .collect(),
            ),
            // Unreadable evidence proves nothing; the finding says so.
            Err(ProviderError::Auth(_) | ProviderError::NotFound(_)) => None,
            Err(e) => return Err(e),
        };
        Ok(Exclusivity {
            actors,
            unobserved: UNOBSERVED_USERS.iter().map(|s| s.to_string()).collect(),
        })
    }

    /// Every member of every binding whose role carries run.routes.invoke;
    /// roles whose permissions cannot be read are returned as not judged.
    async fn invoke_grants(&self, policy: &Policy) -> Result<(Vec<InvokeGrant>, Vec<UnjudgedRole>), ProviderError> {
        let mut grants = Vec::new();
        let mut unjudged = Vec::new();
        for b in &policy.bindings {
            let invokes = match self.role_invokes(&b.role).await? {
                Ok(v) => v,
                Err(reason) => {
                    unjudged.push(UnjudgedRole {
                        role: b.role.clone(),
                        members: b.members.clone(),
                        reason,
                    });
                    continue;
                }
            };
            if invokes {
                grants.extend(b.members.iter().map(|m| InvokeGrant {
                    member: m.clone(),
                    role: b.role.clone(),
                    conditional: b.condition.is_some(),
                }));
            }
        }
        grants.sort();
        grants.dedup();
        Ok((grants, unjudged))
    }

    /// Whether `role` carries run.routes.invoke: from the predefined-role
    /// table, else read through iam.roles.get. The inner error is why the
    /// role could not be judged.
    async fn role_invokes(&self, role: &str) -> Result<Result<bool, String>, ProviderError> {
        match roles::classify(role) {
            Known::Invokes => return Ok(Ok(true)),
            Known::DoesNotInvoke => return Ok(Ok(false)),
            Known::Unknown => {}
        }
        if let Some(v) = self.inventory.roles.lock().ok().and_then(|r| r.get(role).copied()) {
            return Ok(Ok(v));
        }
        if !roles::readable_role_name(role) {
            return Ok(Err(format!("{role} is not a role name iam.roles.get can read")));
        }
        self.pacer.ready().await;
        match self
            .caller
            .call("GetRole", role, || self.clients.iam.get_role().set_name(role).send())
            .await
        {
            Ok(r) => {
                let v = roles::permissions_invoke(&r.included_permissions);
                if let Ok(mut cache) = self.inventory.roles.lock() {
                    cache.insert(role.to_string(), v);
                }
                Ok(Ok(v))
            }
            Err(e @ (ProviderError::Auth(_) | ProviderError::NotFound(_))) => Ok(Err(e.to_string())),
            Err(e) => Err(e),
        }
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
