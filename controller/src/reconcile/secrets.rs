//! The Secrets that accounts name, read one at a time with `get`.
//!
//! The controller holds no cluster-wide Secret permission: no list, no
//! watch. A Secret is read when an account that names it is first used, and
//! again when its copy is older than the refresh interval; a periodic sweep
//! (`refresh_named`) re-reads the Secrets in use so that a rotated Secret
//! re-reconciles the postures of its account within one interval, without a
//! watch. The provider cache rebuilds a provider when the Secret's
//! resourceVersion changes.

use crate::api::{CloudAccount, ClusterCloudAccount};
use crate::providers::cloud::SecretData;
use crate::providers::registry;
use crate::reason::Reason;
use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use kube::runtime::reflector::Store;
use kube::{Client, ResourceExt};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A Secret as read: its decoded data and the resourceVersion it had.
#[derive(Clone, Debug, PartialEq)]
pub struct Fetched {
    pub data: SecretData,
    pub version: String,
}

/// Why a named Secret could not be used. Each maps to a stable status
/// reason.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("Secret {namespace}/{name} does not exist")]
    NotFound { namespace: String, name: String },
    #[error(
        "the controller may not read Secrets in namespace {namespace} (get secrets/{name} was forbidden): \
         add {namespace} to the chart's tenantNamespaces, or grant its ServiceAccount `get` on that Secret"
    )]
    Forbidden { namespace: String, name: String },
    #[error("reading Secret {namespace}/{name}: {message}")]
    Unreadable {
        namespace: String,
        name: String,
        message: String,
    },
}

impl SecretError {
    /// Its status reason.
    pub fn reason(&self) -> Reason {
        match self {
            SecretError::NotFound { .. } => Reason::SecretNotFound,
            SecretError::Forbidden { .. } => Reason::SecretForbidden,
            SecretError::Unreadable { .. } => Reason::SecretUnreadable,
        }
    }
}

/// Namespace and name of a Secret.
pub type SecretKey = (String, String);

struct Entry {
    read_at: Instant,
    fetched: Arc<Fetched>,
}

/// Copies of the Secrets in use, each re-read after `ttl`.
pub struct SecretCache {
    ttl: Duration,
    entries: Mutex<HashMap<SecretKey, Entry>>,
    /// One read in flight per Secret: postures of one account reconciled at
    /// once share it.
    inflight: tokio::sync::Mutex<HashMap<SecretKey, Arc<tokio::sync::Mutex<()>>>>,
}

/// Read one Secret with `get` (never list), mapping the API's answers to
/// reasons.
async fn read(client: &Client, namespace: &str, name: &str) -> Result<Fetched, SecretError> {
    let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
    match api.get_opt(name).await {
        Ok(Some(s)) => Ok(Fetched {
            version: s.metadata.resource_version.clone().unwrap_or_default(),
            data: s.data.unwrap_or_default().into_iter().map(|(k, v)| (k, v.0)).collect(),
        }),
        Ok(None) => Err(SecretError::NotFound {
            namespace: namespace.into(),
            name: name.into(),
        }),
        Err(kube::Error::Api(status)) if status.code == 403 => Err(SecretError::Forbidden {
            namespace: namespace.into(),
            name: name.into(),
        }),
        Err(e) => Err(SecretError::Unreadable {
            namespace: namespace.into(),
            name: name.into(),
            message: e.to_string(),
        }),
    }
}

impl SecretCache {
    pub fn new(ttl: Duration) -> Self {
        SecretCache {
            ttl,
            entries: Mutex::default(),
            inflight: tokio::sync::Mutex::default(),
        }
    }

    fn cached(&self, key: &SecretKey, max_age: Duration) -> Option<Arc<Fetched>> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries
            .get(key)
            .filter(|e| e.read_at.elapsed() < max_age)
            .map(|e| e.fetched.clone())
    }

    fn version(&self, key: &SecretKey) -> Option<String> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.get(key).map(|e| e.fetched.version.clone())
    }

    async fn slot(&self, key: &SecretKey) -> Arc<tokio::sync::Mutex<()>> {
        self.inflight.lock().await.entry(key.clone()).or_default().clone()
    }

    /// The Secret `namespace/name`: the copy read within the refresh
    /// interval, or a fresh `get`. Failures are not cached: the next
    /// reconcile asks again.
    pub async fn get(&self, client: &Client, namespace: &str, name: &str) -> Result<Arc<Fetched>, SecretError> {
        let key = (namespace.to_string(), name.to_string());
        if let Some(f) = self.cached(&key, self.ttl) {
            return Ok(f);
        }
        let slot = self.slot(&key).await;
        let _one_reader = slot.lock().await;
        // Another reconcile may have read it while this one waited.
        if let Some(f) = self.cached(&key, self.ttl) {
            return Ok(f);
        }
        self.reread(client, &key).await
    }

    async fn reread(&self, client: &Client, key: &SecretKey) -> Result<Arc<Fetched>, SecretError> {
        match read(client, &key.0, &key.1).await {
            Ok(f) => {
                let fetched = Arc::new(f);
                let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
                entries.insert(
                    key.clone(),
                    Entry {
                        read_at: Instant::now(),
                        fetched: fetched.clone(),
                    },
                );
                Ok(fetched)
            }
            Err(e) => {
                // A Secret that is gone or no longer readable must not keep
                // serving its old credentials.
                self.entries.lock().unwrap_or_else(|e| e.into_inner()).remove(key);
                Err(e)
            }
        }
    }

    /// Re-read every cached Secret that `named` still contains and forget
    /// the others. Returns the Secrets whose resourceVersion changed (or
    /// that can no longer be read): their accounts' postures need a
    /// reconcile.
    pub async fn refresh_named(&self, client: &Client, named: &HashSet<SecretKey>) -> Vec<SecretKey> {
        let held: Vec<SecretKey> = {
            let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
            entries.retain(|k, _| named.contains(k));
            entries.keys().cloned().collect()
        };
        let mut changed = Vec::new();
        for key in held {
            let before = self.version(&key);
            let slot = self.slot(&key).await;
            let _one_reader = slot.lock().await;
            let after = self.reread(client, &key).await.ok().map(|f| f.version.clone());
            if after.is_none() || after != before {
                changed.push(key);
            }
        }
        changed
    }
}

/// Every Secret an account names, where the controller reads it: a
/// CloudAccount's in its own namespace, a ClusterCloudAccount's in the
/// controller's namespace.
pub fn named_secrets(
    accounts: &Store<CloudAccount>,
    cluster_accounts: &Store<ClusterCloudAccount>,
    controller_namespace: &str,
) -> HashSet<SecretKey> {
    let mut out = HashSet::new();
    for a in accounts.state() {
        if let (Some(ns), Some(config)) = (a.namespace(), a.spec.config())
            && let Some(name) = registry::secret_name(&config)
        {
            out.insert((ns, name.to_string()));
        }
    }
    for a in cluster_accounts.state() {
        if let Some(config) = a.spec.config()
            && let Some(name) = registry::secret_name(&config)
        {
            out.insert((controller_namespace.to_string(), name.to_string()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::{Request, Response};
    use kube::client::Body;
    use serde_json::json;

    type Handle = tower_test::mock::Handle<Request<Body>, Response<Body>>;

    fn client() -> (Client, Handle) {
        let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        (Client::new(service, "default"), handle)
    }

    fn secret(version: &str) -> serde_json::Value {
        json!({"apiVersion": "v1", "kind": "Secret",
               "metadata": {"name": "creds", "namespace": "shop", "resourceVersion": version},
               "data": {"aws_access_key_id": "QUtJQQ=="}})
    }

    fn forbidden() -> serde_json::Value {
        json!({"apiVersion": "v1", "kind": "Status", "status": "Failure", "reason": "Forbidden", "code": 403,
               "message": "secrets \"creds\" is forbidden: User \"system:serviceaccount:zerofn-system:zerofn\" cannot get resource \"secrets\" in API group \"\" in the namespace \"shop\""})
    }

    /// Answer the next request, asserting it is a `get` of the one Secret
    /// (never a list or a watch).
    async fn answer(h: &mut Handle, code: u16, body: serde_json::Value) {
        let (req, send) = tokio::time::timeout(Duration::from_secs(5), h.next_request())
            .await
            .expect("a request")
            .expect("service open");
        assert_eq!(req.method(), http::Method::GET);
        assert_eq!(req.uri().path(), "/api/v1/namespaces/shop/secrets/creds");
        send.send_response(
            Response::builder()
                .status(code)
                .body(Body::from(serde_json::to_vec(&body).unwrap()))
                .unwrap(),
        );
    }

    async fn no_request(h: &mut Handle) {
        assert!(
            tokio::time::timeout(Duration::from_millis(100), h.next_request())
                .await
                .is_err(),
            "an unexpected request"
        );
    }

    #[tokio::test]
    async fn a_secret_is_read_with_get_once_per_interval() {
        let (client, mut h) = client();
        let cache = Arc::new(SecretCache::new(Duration::from_secs(60)));
        let (c, k) = (cache.clone(), client.clone());
        let first = tokio::spawn(async move { c.get(&k, "shop", "creds").await });
        answer(&mut h, 200, secret("7")).await;
        let f = first.await.unwrap().expect("read");
        assert_eq!(f.version, "7");
        assert_eq!(f.data["aws_access_key_id"], b"AKIA");
        // Within the interval: the copy, no request.
        let again = cache.get(&client, "shop", "creds").await.expect("cached");
        assert_eq!(again.version, "7");
        no_request(&mut h).await;
    }

    #[tokio::test]
    async fn a_forbidden_get_is_its_own_reason_naming_the_namespace() {
        let (client, mut h) = client();
        let cache = Arc::new(SecretCache::new(Duration::from_secs(60)));
        let (c, k) = (cache.clone(), client.clone());
        let read = tokio::spawn(async move { c.get(&k, "shop", "creds").await });
        answer(&mut h, 403, forbidden()).await;
        let e = read.await.unwrap().expect_err("forbidden");
        assert_eq!(e.reason(), "SecretForbidden");
        assert!(e.to_string().contains("tenantNamespaces"), "{e}");
        assert!(e.to_string().contains("namespace shop"), "{e}");
        // Not cached: the next reconcile asks again (the grant may be fixed).
        let (c, k) = (cache.clone(), client.clone());
        let read = tokio::spawn(async move { c.get(&k, "shop", "creds").await });
        answer(
            &mut h,
            404,
            json!({"kind": "Status", "code": 404, "reason": "NotFound"}),
        )
        .await;
        assert_eq!(read.await.unwrap().expect_err("gone").reason(), "SecretNotFound");
    }

    #[tokio::test]
    async fn the_sweep_reports_a_rotated_secret_and_forgets_unnamed_ones() {
        let (client, mut h) = client();
        let cache = Arc::new(SecretCache::new(Duration::from_secs(60)));
        let (c, k) = (cache.clone(), client.clone());
        let first = tokio::spawn(async move { c.get(&k, "shop", "creds").await });
        answer(&mut h, 200, secret("7")).await;
        first.await.unwrap().expect("read");

        let named: HashSet<SecretKey> = [("shop".to_string(), "creds".to_string())].into();
        // Unchanged: nothing to reconcile.
        let (c, k, n) = (cache.clone(), client.clone(), named.clone());
        let sweep = tokio::spawn(async move { c.refresh_named(&k, &n).await });
        answer(&mut h, 200, secret("7")).await;
        assert!(sweep.await.unwrap().is_empty());
        // Rotated: reported, and the new copy is served.
        let (c, k, n) = (cache.clone(), client.clone(), named.clone());
        let sweep = tokio::spawn(async move { c.refresh_named(&k, &n).await });
        answer(&mut h, 200, secret("9")).await;
        assert_eq!(sweep.await.unwrap(), vec![("shop".to_string(), "creds".to_string())]);
        assert_eq!(cache.get(&client, "shop", "creds").await.unwrap().version, "9");
        no_request(&mut h).await;
        // No account names it any more: forgotten, not read.
        assert!(cache.refresh_named(&client, &HashSet::new()).await.is_empty());
        no_request(&mut h).await;
    }
}
