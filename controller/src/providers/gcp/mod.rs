//! Google Cloud Functions (2nd gen): every GCP column of the control map.

pub mod action;
mod apply;
pub mod client;
pub mod model;
pub mod names;
mod observe;
pub mod plan;

pub use action::GcpAction;
pub use client::Tuning;

use crate::api::{Cloud, GcpAccount};
use crate::metrics::Metrics;
use crate::providers::pace::Pacer;
use crate::providers::{Action, Plan, Posture, Provider, ProviderError};
use futures::FutureExt;
use futures::future::BoxFuture;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::OnceCell;

/// Default pace of per-function reads (requests per second per project).
pub const DEFAULT_RATE: u32 = 10;

pub struct GcpProvider {
    account: GcpAccount,
    clients: client::Clients,
    caller: client::Caller,
    inventory: observe::Inventory,
    pacer: Pacer,
    ttl: Duration,
    number: OnceCell<String>,
    propagation: Duration,
}

impl GcpProvider {
    /// `key`: a service account key (JSON) from the account's Secret.
    pub async fn new(
        account: GcpAccount,
        key: Option<serde_json::Value>,
        metrics: Arc<Metrics>,
        tuning: Tuning,
        ttl: Duration,
    ) -> Result<Self, ProviderError> {
        let clients = client::build(&account, key, &tuning).await?;
        Ok(GcpProvider {
            number: OnceCell::new(),
            account,
            clients,
            caller: client::Caller { metrics, tuning },
            inventory: observe::Inventory::default(),
            pacer: Pacer::per_second(DEFAULT_RATE),
            ttl,
            propagation: Duration::from_secs(120),
        })
    }

    async fn project_number(&self) -> Result<&str, ProviderError> {
        self.number
            .get_or_try_init(|| async {
                match &self.account.project_number {
                    Some(n) => Ok(n.clone()),
                    None => observe::project_number(&self.clients, &self.caller, &self.account.project_id).await,
                }
            })
            .await
            .map(String::as_str)
    }

    fn target<'a>(&self, p: &'a Posture) -> Result<(&'a str, &'a str), ProviderError> {
        let f = p
            .spec
            .function
            .gcp
            .as_ref()
            .ok_or_else(|| ProviderError::Config("posture does not target a GCP function".into()))?;
        Ok((&f.location, &f.name))
    }

    async fn assess_inner(&self, p: &Posture) -> Result<Plan, ProviderError> {
        let number = self.project_number().await?;
        let (location, id) = self.target(p)?;
        let observer = observe::Observer {
            clients: &self.clients,
            caller: &self.caller,
            inventory: &self.inventory,
            pacer: &self.pacer,
            ttl: self.ttl,
            project: &self.account.project_id,
            project_number: number,
        };
        let observed = observer.observe(p, location, id).await?;
        Ok(plan::plan(p, &observed))
    }

    async fn release_inner(&self, p: &Posture) -> Result<(), ProviderError> {
        let (location, id) = self.target(p)?;
        let name = format!(
            "projects/{}/locations/{location}/functions/{id}",
            self.account.project_id
        );
        let f = match self
            .caller
            .call("GetFunction", &name, || {
                self.clients.functions.get_function().set_name(&name).send()
            })
            .await
        {
            Ok(f) => f,
            Err(ProviderError::NotFound(_)) => return Ok(()),
            Err(e) => return Err(e),
        };
        if f.labels.get(names::OWNER_LABEL) != Some(&names::owner_label_value(&p.owner)) {
            return Ok(());
        }
        let mut labels: std::collections::BTreeMap<String, String> =
            f.labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        labels.remove(names::OWNER_LABEL);
        let action = GcpAction::PatchFunction {
            name,
            service_account: None,
            ingress: None,
            vpc_connector: None,
            egress: None,
            labels: Some(labels),
        };
        self.applier().apply(&action).await
    }

    fn applier(&self) -> apply::Applier<'_> {
        apply::Applier {
            clients: &self.clients,
            caller: &self.caller,
            propagation: self.propagation,
        }
    }
}

impl Provider for GcpProvider {
    fn cloud(&self) -> Cloud {
        Cloud::Gcp
    }

    fn reached(&self) -> Option<String> {
        self.number.get().map(|n| format!("{} ({n})", self.account.project_id))
    }

    fn assess<'a>(&'a self, posture: &'a Posture) -> BoxFuture<'a, Result<Plan, ProviderError>> {
        self.assess_inner(posture).boxed()
    }

    fn apply<'a>(&'a self, _posture: &'a Posture, action: &'a Action) -> BoxFuture<'a, Result<(), ProviderError>> {
        async move {
            match action {
                Action::Gcp(a) => self.applier().apply(a).await,
                other => Err(ProviderError::Config(format!("not a GCP action: {}", other.summary()))),
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

    fn probe(&self) -> BoxFuture<'_, Result<(), ProviderError>> {
        // GetProject even when the number is declared: it proves the
        // endpoint answers and the credentials are accepted.
        async move {
            observe::project_number(&self.clients, &self.caller, &self.account.project_id)
                .await
                .map(drop)
        }
        .boxed()
    }
}
