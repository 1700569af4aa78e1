//! One provider per cloud account, rebuilt when the account or its Secret
//! changes. Building goes through a factory so tests can supply fake clouds.

use crate::accounts::ResolvedAccount;
use crate::providers::circuit::Circuit;
use crate::providers::cloud::SecretData;
use crate::providers::registry::ConnectOptions;
use crate::providers::{Provider, ProviderError};
use futures::FutureExt;
use futures::future::BoxFuture;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use tokio::sync::Mutex;

/// How long an account that did not answer is not asked again.
pub const UNREACHABLE_COOLDOWN: std::time::Duration = std::time::Duration::from_secs(30);

pub trait ProviderFactory: Send + Sync {
    fn connect<'a>(
        &'a self,
        account: &'a ResolvedAccount,
        secret: Option<&'a SecretData>,
    ) -> BoxFuture<'a, Result<Arc<dyn Provider>, ProviderError>>;
}

/// The real clouds.
pub struct CloudFactory(pub ConnectOptions);

impl ProviderFactory for CloudFactory {
    fn connect<'a>(
        &'a self,
        account: &'a ResolvedAccount,
        secret: Option<&'a SecretData>,
    ) -> BoxFuture<'a, Result<Arc<dyn Provider>, ProviderError>> {
        crate::accounts::connect(account, secret, &self.0).boxed()
    }
}

/// A built provider and the fingerprint of what it was built from.
type Entry = (u64, Arc<dyn Provider>);

pub struct ProviderCache {
    factory: Arc<dyn ProviderFactory>,
    entries: Mutex<HashMap<String, Entry>>,
}

impl ProviderCache {
    pub fn new(factory: Arc<dyn ProviderFactory>) -> Self {
        ProviderCache {
            factory,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The provider for `account`, built again when the account's spec or its
    /// Secret (by resourceVersion) changed since it was built.
    pub async fn get(
        &self,
        account: &ResolvedAccount,
        secret: Option<(&SecretData, &str)>,
    ) -> Result<Arc<dyn Provider>, ProviderError> {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        format!("{:?}", account.config).hash(&mut h);
        secret.map(|(_, version)| version).hash(&mut h);
        let fingerprint = h.finish();
        // Held across connect: concurrent reconciles of one account share
        // one build instead of racing to make several.
        let mut entries = self.entries.lock().await;
        if let Some((f, p)) = entries.get(&account.key)
            && *f == fingerprint
        {
            return Ok(p.clone());
        }
        let p = self.factory.connect(account, secret.map(|(d, _)| d)).await?;
        // Postures of one account share its reachability: once it does not
        // answer, the others fail at once (CloudUnreachable, requeued)
        // instead of each waiting out its own timeouts.
        let p: Arc<dyn Provider> = Arc::new(Circuit::new(p, UNREACHABLE_COOLDOWN));
        entries.insert(account.key.clone(), (fingerprint, p.clone()));
        Ok(p)
    }
}
