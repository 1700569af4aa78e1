//! Google Cloud Functions (2nd gen): every GCP column of the control map.

pub mod action;
mod apply;
pub mod client;
pub mod connect;
mod feed;
pub mod ingress;
pub mod insights;
pub mod logsink;
pub mod model;
pub mod names;
mod observe;
pub mod plan;
pub mod roles;
pub mod unused;

pub use action::GcpAction;

use crate::api::{self, FunctionTarget, GcpAccount};
use crate::metrics::Metrics;
use crate::providers::cloud::{Cloud, CloudAction, Secret};
use crate::providers::pace::Pacer;
use crate::providers::registry::ConnectOptions;
use crate::providers::{ActionSummary, MintIntent, MintedIdentity, Plan, Posture, ProviderError, Tuning};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
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
    /// Service accounts this provider created, by posture owner: the proof,
    /// within this process, that zerofn minted them.
    minted: Mutex<BTreeMap<String, Vec<MintedIdentity>>>,
    /// The project's change-event subscription, when the account names one.
    feed: Option<Arc<feed::GcpFeed>>,
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
        let own = key
            .as_ref()
            .and_then(|k| k["client_email"].as_str().map(str::to_string));
        let clients = client::build(&account, key, &tuning).await?;
        let feed = match &account.events {
            Some(events) => Some(Arc::new(feed::GcpFeed::new(
                account.endpoints.as_ref().and_then(|e| e.pubsub.as_deref()),
                &events.subscription,
                clients.credentials.clone(),
                crate::providers::https::client(&tuning.extra_roots, Some(feed::PULL_TIMEOUT))?,
                own,
            ))),
            None => None,
        };
        Ok(GcpProvider {
            feed,
            number: OnceCell::new(),
            account,
            clients,
            caller: client::Caller {
                metrics,
                tuning,
                refused_is_final: false,
            },
            inventory: observe::Inventory::default(),
            pacer: Pacer::per_second(DEFAULT_RATE),
            ttl,
            minted: Mutex::new(BTreeMap::new()),
        })
    }

    /// The project number as Resource Manager reports it, checked against
    /// the account's spec once per account: the default accounts are
    /// recognised by it, so a wrong number refuses the account before any
    /// write.
    async fn project_number(&self) -> Result<&str, ProviderError> {
        self.number
            .get_or_try_init(|| async {
                let observed = observe::project_number(&self.clients, &self.caller, &self.account.project_id).await?;
                verify_project_number(
                    &self.account.project_id,
                    self.account.project_number.as_deref(),
                    observed,
                )
            })
            .await
            .map(String::as_str)
    }

    /// uniqueIds that prove zerofn minted an account for this posture: the
    /// posture's status record and this process's own.
    fn minted_ids(&self, p: &Posture) -> BTreeSet<String> {
        let mut ids: BTreeSet<String> = p.minted.iter().map(|m| m.unique_id.clone()).collect();
        if let Ok(m) = self.minted.lock()
            && let Some(mine) = m.get(&p.owner)
        {
            ids.extend(mine.iter().map(|m| m.unique_id.clone()));
        }
        ids
    }

    fn record_minted(&self, p: &Posture, identity: MintedIdentity) {
        if let Ok(mut m) = self.minted.lock() {
            let list = m.entry(p.owner.clone()).or_default();
            if !list.contains(&identity) {
                list.push(identity);
            }
        }
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

    async fn observe_function(&self, p: &Posture) -> Result<model::ObservedFunction, ProviderError> {
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
            minted: self.minted_ids(p),
        };
        observer.observe(p, location, id).await
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
        let mine = names::owner_label_value(&p.owner);
        if f.labels.get(names::OWNER_LABEL) != Some(&mine) {
            return Ok(());
        }
        let action = GcpAction::release(name, mine);
        self.applier().apply(&action).await.map(|_| ())
    }

    fn applier(&self) -> apply::Applier<'_> {
        apply::Applier {
            clients: &self.clients,
            caller: &self.caller,
        }
    }
}

impl CloudAction for GcpAction {
    fn summary(&self) -> ActionSummary {
        GcpAction::summary(self)
    }
}

impl Cloud for GcpProvider {
    const KIND: api::Cloud = api::Cloud::Gcp;
    type Account = GcpAccount;
    type Action = GcpAction;
    type Observed = model::ObservedFunction;

    fn secret_name(account: &GcpAccount) -> Option<&str> {
        connect::secret_name(account)
    }

    fn default_tuning() -> Tuning {
        connect::tuning()
    }

    async fn connect(
        account: &GcpAccount,
        secret: Option<Secret<'_>>,
        tuning: Tuning,
        opts: &ConnectOptions,
    ) -> Result<Self, ProviderError> {
        connect::connect(account, secret, tuning, opts).await
    }

    fn function_key(_account_key: &str, account: &GcpAccount, target: &FunctionTarget) -> Option<String> {
        connect::function_key(account, target)
    }

    fn reached(&self) -> Option<String> {
        self.number.get().map(|n| format!("{} ({n})", self.account.project_id))
    }

    async fn observe(&self, posture: &Posture) -> Result<model::ObservedFunction, ProviderError> {
        self.observe_function(posture).await
    }

    fn plan(&self, posture: &Posture, observed: &model::ObservedFunction) -> Plan<GcpAction> {
        plan::plan(posture, observed)
    }

    async fn apply(&self, posture: &Posture, action: &GcpAction) -> Result<(), ProviderError> {
        if let Some(minted) = self.applier().apply(action).await? {
            self.record_minted(posture, minted);
        }
        Ok(())
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
            .ok()
            .and_then(|m| m.get(&posture.owner).cloned())
            .unwrap_or_default()
    }

    // A service account has no creation time, and the only thing the create
    // call could stamp on it (its description) can be rewritten later by
    // anyone allowed to update it, so a write-ahead record could not prove
    // one: an account created by a process that died before recording its
    // uniqueId is reported (name taken, not proved) and never adopted.
    fn intent(&self, _posture: &Posture, _action: &GcpAction) -> Option<MintIntent> {
        None
    }

    async fn probe(&self) -> Result<(), ProviderError> {
        // GetProject even when the number is declared: it proves the
        // endpoint answers and the credentials are accepted.
        observe::project_number(&self.clients, &self.caller.probing(), &self.account.project_id)
            .await
            .map(drop)
    }

    fn feed(&self) -> Option<Arc<dyn crate::providers::feed::EventFeed>> {
        self.feed
            .clone()
            .map(|f| f as Arc<dyn crate::providers::feed::EventFeed>)
    }

    async fn functions(&self) -> Result<Vec<crate::fleet::Listed>, ProviderError> {
        observe::listed(
            &self.clients,
            &self.caller,
            &self.inventory,
            self.ttl,
            &self.account.project_id,
        )
        .await
    }
}

/// The spec's project number, if given, must be the one Resource Manager
/// reports for the project id.
fn verify_project_number(project: &str, spec: Option<&str>, observed: String) -> Result<String, ProviderError> {
    match spec {
        Some(n) if n != observed => Err(ProviderError::Config(format!(
            "spec.gcp.projectNumber is {n}, but Resource Manager reports project {project} as number {observed}; nothing is written until the spec names the right number"
        ))),
        _ => Ok(observed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wrong_project_number_refuses_the_account() {
        let e = verify_project_number("shop-prod", Some("111"), "424242".into()).unwrap_err();
        assert!(matches!(e, ProviderError::Config(_)), "{e:?}");
        assert_eq!(e.reason(), "AccountMisconfigured");
        assert_eq!(
            verify_project_number("shop-prod", Some("424242"), "424242".into()).unwrap(),
            "424242"
        );
        assert_eq!(
            verify_project_number("shop-prod", None, "424242".into()).unwrap(),
            "424242"
        );
    }
}
