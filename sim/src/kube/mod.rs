//! Kubernetes API stand-in: what the zerofn controller, kubectl and the Helm
//! chart use, served from memory on 127.0.0.1.
//!
//! Covered: discovery, `/version`, OpenAPI v3; built-in Namespaces, Secrets,
//! ConfigMaps, ServiceAccounts, Leases, Events (core/v1 and events.k8s.io/v1
//! sharing one store), what the Helm chart creates (Deployments, Services,
//! PodDisruptionBudgets, NetworkPolicies, RBAC) and
//! CustomResourceDefinitions, whose registration makes their kinds servable;
//! JSON, YAML and (for kubectl's typed creates) protobuf bodies;
//! create/get/list/update/patch/delete with label and field selectors and
//! pagination; watch with resourceVersion and 410 Gone past the retained
//! history; status subresource; generation; finalizers with
//! deletionTimestamp; merge, JSON and server-side-apply patches; schema
//! validation, defaulting, pruning (with `fieldValidation` warnings or
//! refusals) and CEL of custom resources; Tables with printer columns and
//! the Event columns; metadata-only views; bearer-token auth. See README.md.

pub mod celcost;
mod events;
mod openapi;
mod patch;
mod protobuf;
mod rbac;
mod registry;
mod schema;
mod selectors;
mod server;
mod status;
mod store;
mod table;

pub use rbac::User;

use crate::scaffold::{Listener, PathMatch, Recorded, Server, lock, mutating_method};
use serde_json::Value;
use server::App;
use std::path::Path;
use std::sync::{Arc, Mutex};

pub struct KubeApiOptions {
    /// The admin's bearer token (`system:masters`: every request allowed).
    /// Other tokens come from `service_account_token` and are authorized by
    /// the RBAC objects in the store.
    pub token: String,
    /// Changes kept for watches to resume from; older resourceVersions get
    /// 410 Gone.
    pub history: usize,
}

impl Default for KubeApiOptions {
    fn default() -> Self {
        KubeApiOptions {
            token: format!("zerofn-{:016x}", fastrand::u64(..)),
            history: 10_000,
        }
    }
}

pub struct KubeApi {
    app: Arc<App>,
    server: Server,
}

impl KubeApi {
    pub async fn start(opts: KubeApiOptions) -> std::io::Result<KubeApi> {
        let app = Arc::new(App {
            state: Mutex::new(store::State::new(opts.history)),
            token: opts.token,
            tokens: Mutex::default(),
            faults: Mutex::default(),
        });
        let shared = app.clone();
        let router = axum::Router::new().fallback(move |req| server::handle(shared.clone(), req));
        // HTTPS: kubectl never sends a bearer token over plain HTTP.
        let server = Listener::https().await?.serve(router, mutating_method);
        Ok(KubeApi { app, server })
    }

    pub fn url(&self) -> String {
        self.server.url().to_string()
    }

    /// The CA that issued the server's certificate (PEM).
    pub fn ca_pem(&self) -> &str {
        self.server.ca_pem()
    }

    pub fn token(&self) -> &str {
        &self.app.token
    }

    /// A kubeconfig for kubectl and kube-rs (context `zerofn-sim`), as the
    /// admin.
    pub fn kubeconfig(&self, namespace: &str) -> String {
        self.kubeconfig_with_token(namespace, &self.app.token)
    }

    /// A kubeconfig that authenticates with `token` (e.g. a ServiceAccount's).
    pub fn kubeconfig_with_token(&self, namespace: &str, token: &str) -> String {
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: zerofn-sim\nclusters:\n- name: zerofn-sim\n  cluster:\n    server: {}\n    certificate-authority-data: {}\ncontexts:\n- name: zerofn-sim\n  context:\n    cluster: zerofn-sim\n    user: zerofn-sim\n    namespace: {namespace}\nusers:\n- name: zerofn-sim\n  user:\n    token: {token}\n",
            self.url(),
            base64::Engine::encode(&base64::engine::general_purpose::STANDARD, self.ca_pem().as_bytes()),
        )
    }

    /// A bearer token of the ServiceAccount `namespace/name`: requests with
    /// it are authorized by the Roles and ClusterRoles bound to that
    /// ServiceAccount, its groups (`system:serviceaccounts`,
    /// `system:serviceaccounts:<namespace>`) and `system:authenticated`.
    pub fn service_account_token(&self, namespace: &str, name: &str) -> String {
        let token = format!("zerofn-sa-{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..));
        lock(&self.app.tokens).insert(token.clone(), User::service_account(namespace, name));
        token
    }

    pub fn write_kubeconfig(&self, path: &Path, namespace: &str) -> std::io::Result<()> {
        std::fs::write(path, self.kubeconfig(namespace))
    }

    /// An object as a client would get it (group "" for the core API).
    pub fn get(&self, group: &str, version: &str, plural: &str, namespace: &str, name: &str) -> Option<Value> {
        let s = self.app.state();
        let t = s.registry.find(group, version, plural)?.clone();
        s.get(&t, namespace, name).ok()
    }

    /// Objects of a kind, in a namespace or everywhere.
    pub fn list(&self, group: &str, version: &str, plural: &str, namespace: Option<&str>) -> Vec<Value> {
        let s = self.app.state();
        let Some(t) = s.registry.find(group, version, plural).cloned() else {
            return Vec::new();
        };
        s.list(&t, namespace)
    }

    /// Every request so far, oldest first; [`Recorded::user`] names who
    /// made it.
    pub fn requests(&self) -> Vec<Recorded> {
        self.server.journal().all()
    }

    /// Answer the next `times` authenticated requests of `method` under
    /// `path_prefix` with `status`.
    pub fn fail_next(&self, method: &str, path_prefix: &str, times: u32, status: u16) {
        lock(&self.app.faults).arm(method, PathMatch::prefix(path_prefix), times, status);
    }

    /// The current resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.app.state().rv
    }
}
