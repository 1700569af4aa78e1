//! Azure Functions (Microsoft.Web/sites): every Azure column of the control
//! map, through Azure Resource Manager with azure_identity's credentials and
//! small JSON models of exactly the calls the controls need.

pub mod action;
mod apply;
pub mod arm;
pub mod connect;
mod egress;
mod feed;
pub mod model;
pub mod names;
mod observe;
pub mod plan;

pub use action::AzureAction;

use crate::api::{self, AzureAccount, AzureCredentialKind, FunctionTarget};
use crate::metrics::Metrics;
use crate::providers::cloud::{Cloud, CloudAction};
use crate::providers::pace::Pacer;
use crate::providers::registry::ConnectOptions;
use crate::providers::{ActionSummary, MintIntent, MintedIdentity, Plan, Posture, ProviderError, Tuning};
use azure_core::cloud::{CloudConfiguration, CustomConfiguration};
use azure_core::credentials::{Secret, TokenCredential};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// The public cloud's ARM endpoint.
pub const PUBLIC_ARM: &str = "https://management.azure.com";
/// Default pace of per-app reads (requests per second per subscription);
/// ARM allows far more reads per hour, but they are shared with every other
/// tool of the subscription.
pub const DEFAULT_RATE: u32 = 20;

pub struct AzureProvider {
    account: AzureAccount,
    arm: arm::Arm,
    inventory: observe::Inventory,
    pacer: Pacer,
    ttl: Duration,
    reached: OnceLock<String>,
    /// The subscription's change-event queue, when the account names one.
    feed: Option<Arc<feed::AzureFeed>>,
}

fn credential(
    account: &AzureAccount,
    client_secret: Option<String>,
    tuning: &Tuning,
) -> Result<Arc<dyn TokenCredential>, ProviderError> {
    let mut client_options = arm::client_options(tuning)?;
    if let Some(host) = &account.authority_host {
        let mut custom = CustomConfiguration::default();
        custom.authority_host = host.clone();
        client_options.cloud = Some(Arc::new(CloudConfiguration::Custom(custom)));
    }
    let built: azure_core::Result<Arc<dyn TokenCredential>> = match account.credential {
        AzureCredentialKind::ClientSecret => {
            let secret = client_secret.ok_or_else(|| {
                ProviderError::Config("azure.credential ClientSecret needs azure.clientSecretRef".into())
            })?;
            let client_id = account
                .client_id
                .clone()
                .ok_or_else(|| ProviderError::Config("azure.credential ClientSecret needs azure.clientId".into()))?;
            azure_identity::ClientSecretCredential::new(
                &account.tenant_id,
                client_id,
                Secret::new(secret),
                Some(azure_identity::ClientSecretCredentialOptions { client_options }),
            )
            .map(|c| c as Arc<dyn TokenCredential>)
        }
        // The pod's projected service account token, exchanged for an Entra
        // ID token (AZURE_FEDERATED_TOKEN_FILE, set by the workload identity
        // webhook); the account's tenant and client ids win over the
        // webhook's environment.
        AzureCredentialKind::WorkloadIdentity => {
            azure_identity::WorkloadIdentityCredential::new(Some(azure_identity::WorkloadIdentityCredentialOptions {
                credential_options: azure_identity::ClientAssertionCredentialOptions { client_options },
                client_id: account.client_id.clone(),
                tenant_id: Some(account.tenant_id.clone()),
                token_file_path: None,
            }))
            .map(|c| c as Arc<dyn TokenCredential>)
        }
        AzureCredentialKind::ManagedIdentity => {
            azure_identity::ManagedIdentityCredential::new(Some(azure_identity::ManagedIdentityCredentialOptions {
                user_assigned_id: account.client_id.clone().map(azure_identity::UserAssignedId::ClientId),
                client_options,
            }))
            .map(|c| c as Arc<dyn TokenCredential>)
        }
    };
    built.map_err(|e| ProviderError::Auth(format!("Azure {:?} credential: {e}", account.credential)))
}

impl AzureProvider {
    /// `client_secret`: from the account's Secret, for credential ClientSecret.
    pub fn new(
        account: AzureAccount,
        client_secret: Option<String>,
        metrics: Arc<Metrics>,
        tuning: Tuning,
        ttl: Duration,
    ) -> Result<Self, ProviderError> {
        let endpoint = account
            .resource_manager_endpoint
            .clone()
            .unwrap_or_else(|| PUBLIC_ARM.to_string());
        let credential = credential(&account, client_secret, &tuning)?;
        let feed = match &account.events {
            Some(events) => Some(Arc::new(feed::AzureFeed::new(
                &events.queue,
                credential.clone(),
                arm::client_options(&tuning)?,
                account.client_id.clone(),
            )?)),
            None => None,
        };
        let arm = arm::Arm::new(&endpoint, credential, metrics, tuning)?;
        Ok(AzureProvider {
            feed,
            account,
            arm,
            inventory: observe::Inventory::default(),
            pacer: Pacer::per_second(DEFAULT_RATE),
            ttl,
            reached: OnceLock::new(),
        })
    }

    fn target<'a>(&self, p: &'a Posture) -> Result<(&'a str, &'a str), ProviderError> {
        let f = p
            .spec
            .function
            .azure
            .as_ref()
            .ok_or_else(|| ProviderError::Config("posture does not target an Azure function app".into()))?;
        Ok((&f.resource_group, &f.name))
    }

    fn observer(&self) -> observe::Observer<'_> {
        observe::Observer {
            arm: &self.arm,
            inventory: &self.inventory,
            pacer: &self.pacer,
            ttl: self.ttl,
            subscription: &self.account.subscription_id,
        }
    }

    async fn observe_app(&self, p: &Posture) -> Result<model::ObservedApp, ProviderError> {
        let (rg, name) = self.target(p)?;
        let observed = self.observer().observe(p, rg, name).await?;
        let _ = self.reached.set(self.account.subscription_id.clone());
        Ok(observed)
    }

    async fn release_inner(&self, p: &Posture) -> Result<(), ProviderError> {
        let (rg, name) = self.target(p)?;
        let site = observe::site_path(&self.account.subscription_id, rg, name);
        let current = match self.arm.get("GetSite", &site, arm::WEB_API, &[]).await {
            Ok(s) => s,
            Err(e) if e.status == 404 => return Ok(()),
            Err(e) => return Err(e.provider()),
        };
        if current["tags"][names::OWNER_TAG].as_str() != Some(p.owner.as_str()) {
            return Ok(());
        }
        self.applier().set_tag(&site, names::OWNER_TAG, &p.owner, true).await
    }

    fn applier(&self) -> apply::Applier<'_> {
        apply::Applier { arm: &self.arm }
    }
}

impl CloudAction for AzureAction {
    fn summary(&self) -> ActionSummary {
        AzureAction::summary(self)
    }
}

impl Cloud for AzureProvider {
    const KIND: api::Cloud = api::Cloud::Azure;
    type Account = AzureAccount;
    type Action = AzureAction;
    type Observed = model::ObservedApp;

    fn secret_name(account: &AzureAccount) -> Option<&str> {
        connect::secret_name(account)
    }

    fn default_tuning() -> Tuning {
        connect::tuning()
    }

    async fn connect(
        account: &AzureAccount,
        secret: Option<crate::providers::cloud::Secret<'_>>,
        tuning: Tuning,
        opts: &ConnectOptions,
    ) -> Result<Self, ProviderError> {
        connect::connect(account, secret, tuning, opts)
    }

    fn function_key(_account_key: &str, account: &AzureAccount, target: &FunctionTarget) -> Option<String> {
        connect::function_key(account, target)
    }

    fn reached(&self) -> Option<String> {
        self.reached.get().cloned()
    }

    async fn observe(&self, posture: &Posture) -> Result<model::ObservedApp, ProviderError> {
        self.observe_app(posture).await
    }

    fn plan(&self, posture: &Posture, observed: &model::ObservedApp) -> Plan<AzureAction> {
        plan::plan(posture, observed)
    }

    async fn apply(&self, _posture: &Posture, action: &AzureAction) -> Result<(), ProviderError> {
        self.applier().apply(action).await
    }

    fn invalidate(&self) {
        self.inventory.invalidate();
    }

    async fn release(&self, posture: &Posture) -> Result<(), ProviderError> {
        self.release_inner(posture).await
    }

    // Azure identities zerofn changes are system-assigned (bound to the
    // app's lifecycle): it never mints one, so there is nothing to record.
    fn minted(&self, _posture: &Posture) -> Vec<MintedIdentity> {
        Vec::new()
    }

    fn intent(&self, _posture: &Posture, _action: &AzureAction) -> Option<MintIntent> {
        None
    }

    async fn probe(&self) -> Result<(), ProviderError> {
        // One role definition by name: readable by any identity with any
        // role in the subscription, and it needs a token first, so the
        // authority host is proved too.
        let path = format!(
            "/subscriptions/{}/providers/Microsoft.Authorization/roleDefinitions",
            self.account.subscription_id
        );
        self.arm
            .probe(
                "ListRoleDefinitions",
                &path,
                arm::AUTHZ_API,
                &[("$filter", "roleName eq 'Reader'")],
            )
            .await
            .map_err(|e| e.provider())
    }

    fn feed(&self) -> Option<Arc<dyn crate::providers::feed::EventFeed>> {
        self.feed
            .clone()
            .map(|f| f as Arc<dyn crate::providers::feed::EventFeed>)
    }

    async fn functions(&self) -> Result<Vec<crate::fleet::Listed>, ProviderError> {
        self.observer().listed().await
    }
}
