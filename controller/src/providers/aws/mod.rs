//! AWS Lambda: every AWS column of the control map.

pub mod action;
mod apply;
pub mod client;
pub mod model;
pub mod names;
mod observe;
pub mod plan;
pub mod policy;

pub use action::AwsAction;
pub use client::{StaticCredentials, Tuning};
pub use plan::AccountContext;

use crate::api::{AwsAccount, Cloud};
use crate::metrics::Metrics;
use crate::providers::pace::Pacer;
use crate::providers::{Action, MintedIdentity, Plan, Posture, Provider, ProviderError};
use futures::FutureExt;
use futures::future::BoxFuture;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::OnceCell;

/// Default pace of per-function reads (requests per second per account):
/// under Lambda's GetPolicy quota, leaving room for other tools.
pub const DEFAULT_RATE: u32 = 10;

pub struct AwsProvider {
    account: AwsAccount,
    clients: client::Clients,
    inventory: observe::Inventory,
    pacer: Pacer,
    tuning: Tuning,
    /// How long account-wide observations are reused.
    ttl: Duration,
    context: OnceCell<AccountContext>,
    /// Roles this provider created, by the owner value of the posture they
    /// were created for: the record of ownership until the caller keeps it.
    minted: std::sync::Mutex<std::collections::HashMap<String, Vec<MintedIdentity>>>,
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
        AwsProvider {
            account,
            clients,
            inventory: observe::Inventory::default(),
            pacer: Pacer::per_second(rate),
            tuning,
            ttl,
            context: OnceCell::new(),
            minted: Default::default(),
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

    fn target<'a>(&'a self, p: &'a Posture) -> Result<(&'a str, &'a str), ProviderError> {
        let f = p
            .spec
            .function
            .aws
            .as_ref()
            .ok_or_else(|| ProviderError::Config("posture does not target an AWS function".into()))?;
        Ok((f.region.as_deref().unwrap_or(&self.account.region), &f.name))
    }

    async fn assess_inner(&self, p: &Posture) -> Result<Plan, ProviderError> {
        let ctx = self.context().await?;
        let (region, name) = self.target(p)?;
        self.clients.lambda(region)?;
        let observer = observe::Observer {
            clients: &self.clients,
            inventory: &self.inventory,
            pacer: &self.pacer,
            ttl: self.ttl,
        };
        let observed = observer.observe(p, region, name).await?;
        Ok(plan::plan(&self.with_own_records(p), ctx, &observed))
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

    /// CreateRole, recording the RoleId. A role of that name that exists is
    /// only used when its RoleId is on record for this posture.
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
        match applier
            .create_role(role_name, path, trust_policy, description, tags)
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
            apply::RoleCreation::Exists { role_id, .. } => {
                let known = self.with_own_records(p);
                if known.minted.iter().any(|m| m.unique_id == role_id) {
                    Ok(())
                } else {
                    Err(apply::name_taken(role_name, &role_id))
                }
            }
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
        self.pacer.ready().await;
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

impl Provider for AwsProvider {
    fn cloud(&self) -> Cloud {
        Cloud::Aws
    }

    fn reached(&self) -> Option<String> {
        self.context.get().map(|c| c.account_id.clone())
    }

    fn assess<'a>(&'a self, posture: &'a Posture) -> BoxFuture<'a, Result<Plan, ProviderError>> {
        self.assess_inner(posture).boxed()
    }

    fn apply<'a>(&'a self, posture: &'a Posture, action: &'a Action) -> BoxFuture<'a, Result<(), ProviderError>> {
        async move {
            let Action::Aws(a) = action else {
                return Err(ProviderError::Config(format!(
                    "not an AWS action: {}",
                    action.summary()
                )));
            };
            let (region, _) = self.target(posture)?;
            let applier = apply::Applier {
                clients: &self.clients,
                tuning: &self.tuning,
                region,
            };
            match a {
                AwsAction::CreateRole { .. } => self.create_role(posture, &applier, a).await,
                _ => applier.apply(a).await,
            }
        }
        .boxed()
    }

    fn invalidate(&self) {
        self.inventory.invalidate();
    }

    fn release<'a>(&'a self, posture: &'a Posture) -> BoxFuture<'a, Result<(), ProviderError>> {
        self.release_inner(posture).boxed()
    }

    fn minted(&self, posture: &Posture) -> Vec<MintedIdentity> {
        self.minted
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&posture.owner)
            .cloned()
            .unwrap_or_default()
    }

    fn probe(&self) -> BoxFuture<'_, Result<(), ProviderError>> {
        // GetCallerIdentity: the account check every assessment starts with.
        async move { self.context().await.map(drop) }.boxed()
    }
}
