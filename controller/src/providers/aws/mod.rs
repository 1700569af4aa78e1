//! AWS Lambda: every AWS column of the control map.

pub mod action;
pub mod apigw;
mod apply;
pub mod client;
pub mod connect;
mod egress;
mod feed;
pub mod front_doors;
mod inventory;
pub mod logs;
pub mod model;
pub mod names;
mod network;
mod observability;
mod observe;
#[cfg(test)]
mod pacing_tests;
pub mod plan;
pub mod policy;
mod quota;
mod routes;
pub mod unused;
pub mod usage;

pub use action::AwsAction;
pub use client::StaticCredentials;
pub use plan::AccountContext;

use crate::api::{self, AwsAccount, FunctionTarget};
use crate::metrics::Metrics;
use crate::providers::cloud::{Cloud, CloudAction, Secret};
use crate::providers::registry::ConnectOptions;
use crate::providers::{ActionSummary, MintIntent, MintedIdentity, Plan, Posture, ProviderError, Tuning};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::OnceCell;

/// Default pace of per-function reads (requests per second per account):
/// under Lambda's GetPolicy quota, leaving room for other tools.
pub const DEFAULT_RATE: u32 = 10;

pub struct AwsProvider {
    account: AwsAccount,
    clients: client::Clients,
    inventory: inventory::Inventory,
    /// Requests per second for each of the account's quotas
    /// (`max_requests_per_second`).
    rate: u32,
    /// The account's pacers, shared with every provider of the same account
    /// id; known once the credentials have told which account they reach.
    pacers: std::sync::OnceLock<quota::Pacers>,
    tuning: Tuning,
    /// How long account-wide observations are reused.
    ttl: Duration,
    context: OnceCell<AccountContext>,
    /// Roles this provider created, by the owner value of the posture they
    /// were created for: the record of ownership until the caller keeps it.
    minted: std::sync::Mutex<std::collections::HashMap<String, Vec<MintedIdentity>>>,
    /// Write-ahead records this provider made, by owner, until the caller's
    /// copy comes back in `Posture::intents`.
    intents: std::sync::Mutex<std::collections::HashMap<String, Vec<MintIntent>>>,
    /// The account's change-event queue, when it declares one.
    feed: Option<Arc<feed::AwsFeed>>,
}

/// How much earlier than the write-ahead record a role's CreateDate may be
/// and still be the role that record announced: the controller's clock and
/// IAM's may disagree by this much.
const CLOCK_SKEW: jiff::SignedDuration = jiff::SignedDuration::from_mins(5);

/// A fresh nonce for a write-ahead record: 128 random bits, as hex.
fn new_nonce() -> String {
    format!("{:032x}", fastrand::u128(..))
}

/// Whether a role that existed when zerofn went to create it is the one its
/// write-ahead record announced: it carries the record's nonce, which only
/// zerofn's CreateRole stamps, and was created no earlier than the record.
fn proves(intent: &MintIntent, nonce: Option<&str>, created: Option<jiff::Timestamp>) -> bool {
    let Ok(at) = intent.at.parse::<jiff::Timestamp>() else {
        return false;
    };
    nonce == Some(intent.nonce.as_str()) && created.is_some_and(|c| c >= at - CLOCK_SKEW)
}

impl AwsProvider {
    pub async fn new(
        account: AwsAccount,
        creds: Option<StaticCredentials>,
        metrics: Arc<Metrics>,
        tuning: Tuning,
        ttl: Duration,
    ) -> Self {
        let clients = client::build(&account, creds, metrics, &tuning).await;
        let rate = account.max_requests_per_second.unwrap_or(DEFAULT_RATE);
        let feed = match (&clients.sqs, &account.events) {
            (Some(sqs), Some(events)) => Some(Arc::new(feed::AwsFeed {
                sqs: sqs.clone(),
                sts: clients.sts.clone(),
                queue_url: events.queue_url.clone(),
                home_region: account.region.clone(),
                caller: OnceCell::new(),
            })),
            _ => None,
        };
        AwsProvider {
            feed,
            account,
            clients,
            inventory: inventory::Inventory::default(),
            rate,
            pacers: std::sync::OnceLock::new(),
            tuning,
            ttl,
            context: OnceCell::new(),
            minted: Default::default(),
            intents: Default::default(),
        }
    }

    /// The account the credentials reach, checked against the declared id so
    /// a posture never acts on another account by mistake.
    pub async fn context(&self) -> Result<&AccountContext, ProviderError> {
        self.context
            .get_or_try_init(|| async {
                let who = self
                    .clients
                    .sts
                    .get_caller_identity()
                    .send()
                    .await
                    .map_err(|e| client::map_err("GetCallerIdentity", "sts", e))?;
                let reached = who.account().unwrap_or_default().to_string();
                if let Some(declared) = &self.account.account_id
                    && *declared != reached
                {
                    return Err(ProviderError::Config(format!(
                        "the credentials reach account {reached}, but the CloudAccount declares {declared}"
                    )));
                }
                let partition = who
                    .arn()
                    .and_then(|a| a.split(':').nth(1))
                    .unwrap_or_else(|| client::partition_of(&self.account.region))
                    .to_string();
                Ok(AccountContext {
                    account_id: reached,
                    partition,
                })
            })
            .await
    }

    fn pacers(&self, ctx: &AccountContext) -> &quota::Pacers {
        self.pacers.get_or_init(|| quota::Pacers::new(ctx, self.rate))
    }

    fn target<'a>(&'a self, p: &'a Posture) -> Result<(&'a str, &'a str), ProviderError> {
        let f = p
            .spec
            .function
            .aws
            .as_ref()
            .ok_or_else(|| ProviderError::Config("posture does not target an AWS function".into()))?;
        Ok((f.region.as_deref().unwrap_or(&self.account.region), &f.name))
    }

    async fn observe_function(&self, p: &Posture) -> Result<Observed, ProviderError> {
        let ctx = self.context().await?;
        let (region, name) = self.target(p)?;
        self.clients.lambda(region)?;
        let observer = observe::Observer {
            clients: &self.clients,
            inventory: &self.inventory,
            pacers: self.pacers(ctx),
            ttl: self.ttl,
            region,
        };
        let mut observed = Observed {
            account: ctx.clone(),
            function: observer.observe(p, name).await?,
        };
        if let Some(u) = p.spec.identity.as_ref().and_then(|i| i.unused_permissions.as_ref()) {
            self.pacers(ctx).get(quota::Quota::Iam, region).ready().await;
            let wait = self.tuning.operation("aws", &self.clients.metrics);
            observed.function.last_accessed = Some(
                usage::last_accessed(
                    &self.clients.iam,
                    &self.inventory.last_accessed,
                    &observed.function.role_arn,
                    u.refresh(),
                    wait,
                )
                .await,
            );
        }
        // The tagging API may lag behind a TagResource: a plan that writes
        // decides ownership on the function's own tags, so another posture's
        // fresh claim always blocks, and zerofn's own is never made twice.
        if observed.function.tags_may_lag && !self.plan(p, &observed).actions.is_empty() {
            observed.function.tags = Some(observer.listed_tags(&observed.function.arn).await?);
            observed.function.tags_may_lag = false;
        }
        Ok(observed)
    }

    /// The posture with what this provider minted for it in this process
    /// added to the records it came with.
    fn with_own_records(&self, p: &Posture) -> Posture {
        let mut p = p.clone();
        for m in self.minted(&p) {
            if !p.minted.contains(&m) {
                p.minted.push(m);
            }
        }
        p
    }

    fn remember(&self, p: &Posture, m: MintedIdentity) {
        let mut held = self.minted.lock().unwrap_or_else(|e| e.into_inner());
        let list = held.entry(p.owner.clone()).or_default();
        if !list.contains(&m) {
            list.push(m);
        }
    }

    /// The write-ahead record held for a role: the caller's, or one this
    /// provider made and the caller has not handed back yet.
    fn intent_for(&self, p: &Posture, principal: &str) -> Option<MintIntent> {
        let own = self.intents.lock().unwrap_or_else(|e| e.into_inner());
        p.intents
            .iter()
            .chain(own.get(&p.owner).into_iter().flatten())
            .find(|i| i.principal == principal)
            .cloned()
    }

    /// CreateRole, stamped with the nonce of its write-ahead record, and
    /// recording the RoleId. A role of that name that exists is only used
    /// when its RoleId is on record for this posture, or when it carries the
    /// record's nonce and is no older than the record (the process that
    /// created it died before it could record the RoleId).
    async fn create_role(&self, p: &Posture, applier: &apply::Applier<'_>, a: &AwsAction) -> Result<(), ProviderError> {
        let AwsAction::CreateRole {
            role_name,
            path,
            trust_policy,
            description,
            tags,
        } = a
        else {
            return applier.apply(a).await;
        };
        let ctx = self.context().await?;
        let principal = names::role_arn(&ctx.partition, &ctx.account_id, path, role_name);
        let Some(intent) = self.intent_for(p, &principal) else {
            return Err(ProviderError::Unrecorded(format!(
                "CreateRole {role_name}: no write-ahead record of it is kept, so a crash could leave a role zerofn cannot prove it created; nothing was created"
            )));
        };
        let mut tags = tags.clone();
        tags.insert(names::MINT_NONCE_TAG.to_string(), intent.nonce.clone());
        match applier
            .create_role(role_name, path, trust_policy, description, &tags)
            .await?
        {
            apply::RoleCreation::Created { arn, role_id } => {
                self.remember(
                    p,
                    MintedIdentity {
                        principal: arn,
                        unique_id: role_id,
                    },
                );
                Ok(())
            }
            apply::RoleCreation::Exists {
                arn,
                role_id,
                nonce,
                created,
            } => {
                let known = self.with_own_records(p);
                if known.minted.iter().any(|m| m.unique_id == role_id) {
                    Ok(())
                } else if proves(&intent, nonce.as_deref(), created) {
                    tracing::info!(posture = %p.owner, role = %arn, "a role created before a restart carries this posture's write-ahead nonce: recording its RoleId");
                    self.remember(
                        p,
                        MintedIdentity {
                            principal: arn,
                            unique_id: role_id,
                        },
                    );
                    Ok(())
                } else {
                    Err(apply::name_taken(role_name, &role_id))
                }
            }
        }
    }

    /// The API read again right before a stage is deployed: a method the
    /// plan did not find may be served open (someone opened it since the
    /// read) stops the deployment, which the next reconcile plans afresh.
    async fn still_opens_nothing(
        &self,
        region: &str,
        api_id: &str,
        may_serve_open: &std::collections::BTreeSet<String>,
    ) -> Result<(), ProviderError> {
        let ctx = self.context().await?;
        let client = self.clients.apigateway.get(region).ok_or_else(|| {
            ProviderError::Config(format!(
                "region {region} is not in the account's regions; add it to spec.aws.regions"
            ))
        })?;
        let pace = self.pacers(ctx).get(quota::Quota::ApiGateway, region);
        let draft = apigw::draft(client, &pace, api_id).await?;
        match front_doors::open_methods(&draft)
            .into_iter()
            .find(|m| !may_serve_open.contains(m))
        {
            Some(m) => Err(ProviderError::Conflict(format!(
                "API {api_id} changed since it was read: deploying it now would serve {m} without authorization; not deployed"
            ))),
            None => Ok(()),
        }
    }

    async fn release_inner(&self, p: &Posture) -> Result<(), ProviderError> {
        let ctx = self.context().await?;
        let (region, name) = self.target(p)?;
        let arn = format!(
            "arn:{}:lambda:{region}:{}:function:{name}",
            ctx.partition, ctx.account_id
        );
        let lambda = self.clients.lambda(region)?;
        self.pacers(ctx)
            .get(quota::Quota::LambdaControlPlane, region)
            .ready()
            .await;
        let tags = match lambda.list_tags().resource(&arn).send().await {
            Ok(t) => t.tags().cloned().unwrap_or_default(),
            Err(e) => {
                return match client::map_err("ListTags", &arn, e) {
                    // The function is gone: nothing to release.
                    ProviderError::NotFound(_) => Ok(()),
                    other => Err(other),
                };
            }
        };
        if tags.get(names::OWNER_TAG) != Some(&p.owner) {
            return Ok(());
        }
        let applier = apply::Applier {
            clients: &self.clients,
            tuning: &self.tuning,
            region,
        };
        applier
            .apply(&AwsAction::UntagFunction {
                function_arn: arn,
                key: names::OWNER_TAG.to_string(),
            })
            .await
    }
}

/// One observation of a function, with the account it was made in.
pub struct Observed {
    pub account: AccountContext,
    pub function: model::ObservedFunction,
}

impl CloudAction for AwsAction {
    fn summary(&self) -> ActionSummary {
        AwsAction::summary(self)
    }
}

impl Cloud for AwsProvider {
    const KIND: api::Cloud = api::Cloud::Aws;
    type Account = AwsAccount;
    type Action = AwsAction;
    type Observed = Observed;

    fn secret_name(account: &AwsAccount) -> Option<&str> {
        connect::secret_name(account)
    }

    fn default_tuning() -> Tuning {
        connect::tuning()
    }

    async fn connect(
        account: &AwsAccount,
        secret: Option<Secret<'_>>,
        tuning: Tuning,
        opts: &ConnectOptions,
    ) -> Result<Self, ProviderError> {
        connect::connect(account, secret, tuning, opts).await
    }

    fn function_key(account_key: &str, account: &AwsAccount, target: &FunctionTarget) -> Option<String> {
        connect::function_key(account_key, account, target)
    }

    fn reached(&self) -> Option<String> {
        self.context.get().map(|c| c.account_id.clone())
    }

    async fn observe(&self, posture: &Posture) -> Result<Observed, ProviderError> {
        self.observe_function(posture).await
    }

    fn plan(&self, posture: &Posture, observed: &Observed) -> Plan<AwsAction> {
        plan::plan(&self.with_own_records(posture), &observed.account, &observed.function)
    }

    async fn apply(&self, posture: &Posture, action: &AwsAction) -> Result<(), ProviderError> {
        let (region, _) = self.target(posture)?;
        let applier = apply::Applier {
            clients: &self.clients,
            tuning: &self.tuning,
            region,
        };
        match action {
            AwsAction::CreateRole { .. } => self.create_role(posture, &applier, action).await,
            AwsAction::DeployApiStage {
                region,
                api_id,
                may_serve_open,
                ..
            } => {
                self.still_opens_nothing(region, api_id, may_serve_open).await?;
                applier.apply(action).await
            }
            _ => applier.apply(action).await,
        }
    }

    fn invalidate(&self) {
        self.inventory.invalidate();
    }

    async fn release(&self, posture: &Posture) -> Result<(), ProviderError> {
        self.release_inner(posture).await
    }

    fn minted(&self, posture: &Posture) -> Vec<MintedIdentity> {
        self.minted
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&posture.owner)
            .cloned()
            .unwrap_or_default()
    }

    fn intent(&self, posture: &Posture, action: &AwsAction) -> Option<MintIntent> {
        let AwsAction::CreateRole { role_name, path, .. } = action else {
            return None;
        };
        // The account is known once the posture was assessed; without it
        // there is no record, and CreateRole refuses to run.
        let ctx = self.context.get()?;
        let principal = names::role_arn(&ctx.partition, &ctx.account_id, path, role_name);
        if posture.intents.iter().any(|i| i.principal == principal) {
            return None;
        }
        // One this provider made is handed out again until the caller's copy
        // comes back: the caller may have failed to keep it.
        let mut own = self.intents.lock().unwrap_or_else(|e| e.into_inner());
        let list = own.entry(posture.owner.clone()).or_default();
        if let Some(i) = list.iter().find(|i| i.principal == principal) {
            return Some(i.clone());
        }
        let intent = MintIntent {
            principal,
            nonce: new_nonce(),
            at: jiff::Timestamp::now().to_string(),
        };
        list.push(intent.clone());
        Some(intent)
    }

    async fn probe(&self) -> Result<(), ProviderError> {
        // GetCallerIdentity: the account check every assessment starts with.
        self.context().await.map(drop)
    }

    async fn functions(&self) -> Result<Vec<crate::fleet::Listed>, ProviderError> {
        let ctx = self.context().await?;
        observe::listed(&self.clients, &self.inventory, self.pacers(ctx), self.ttl).await
    }

    fn feed(&self) -> Option<Arc<dyn crate::providers::feed::EventFeed>> {
        self.feed
            .clone()
            .map(|f| f as Arc<dyn crate::providers::feed::EventFeed>)
    }
}
