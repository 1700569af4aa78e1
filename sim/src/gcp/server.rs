//! The HTTP side: one plain-HTTP server (the shared scaffold) serving all five
//! APIs (their paths do not overlap: `v1/` IAM and Pub/Sub — `serviceAccounts`
//! vs `subscriptions` —, `v2/` Cloud Functions and Cloud Run, `v3/` Resource
//! Manager), the faults tests arm, and the handle tests inspect and steer the
//! stand-in through.

use super::errors::{Code, GcpError, GcpResult, json_response};
use super::policy::{IamResource, Policy};
use super::request::{Path, Query};
use super::world::{GcpWorld, State};
use super::{functions, iam, logging, lro, pubsub, recommender, resourcemanager, roles, run, services};
use crate::scaffold::{self, Listener, PathMatch, Recorded, Server, percent_decode};
use axum::Router;
use axum::body::Bytes;
use axum::extract::State as AxumState;
use axum::http::{Method, StatusCode, Uri};
use axum::response::Response;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Whether a call changes something. Resource Manager's getIamPolicy is a
/// POST that only reads, so the method alone does not tell.
fn is_write(method: &str, path: &str) -> bool {
    method != "GET" && !path.ends_with(":getIamPolicy") && !path.ends_with(":testIamPermissions")
}

type Shared = Arc<Mutex<State>>;

fn lock(shared: &Shared) -> MutexGuard<'_, State> {
    scaffold::lock(shared)
}

/// A running Google Cloud stand-in. Dropping it stops the server.
pub struct GcpStandIn {
    shared: Shared,
    server: Server,
}

impl GcpStandIn {
    /// Serves `world` over plain HTTP on a free port of 127.0.0.1. Fails on
    /// a seed Google would refuse (kind InvalidInput) or if no port is free.
    pub async fn start(world: GcpWorld) -> std::io::Result<GcpStandIn> {
        let state = world
            .build()
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        let shared: Shared = Arc::new(Mutex::new(state));
        let app = Router::new().fallback(handle).with_state(shared.clone());
        let server = Listener::http().await?.serve(app, is_write);
        Ok(GcpStandIn { shared, server })
    }

    /// `http://127.0.0.1:PORT`, for the clients' `with_endpoint`.
    pub fn url(&self) -> String {
        self.server.url().to_string()
    }

    /// A function as `functions.get` would answer it.
    pub fn function(&self, project: &str, location: &str, name: &str) -> Option<Value> {
        let state = lock(&self.shared);
        let p = state.project(project)?;
        let key = format!("projects/{}/locations/{location}/functions/{name}", p.id);
        state.functions.get(&key).map(|e| Value::Object(e.value.clone()))
    }

    /// Sets (`Some`) or removes (`None`) one label of a function out of
    /// band, as another admin would. False when there is no such function.
    pub fn set_label(&self, project: &str, location: &str, name: &str, label: &str, value: Option<&str>) -> bool {
        let mut state = lock(&self.shared);
        let Some(p) = state.project(project) else {
            return false;
        };
        let key = format!("projects/{}/locations/{location}/functions/{name}", p.id);
        let Some(f) = state.functions.get_mut(&key) else {
            return false;
        };
        let labels = f
            .value
            .entry("labels")
            .or_insert_with(|| Value::Object(serde_json::Map::new()));
        if let Value::Object(labels) = labels {
            match value {
                Some(v) => labels.insert(label.to_string(), Value::String(v.to_string())),
                None => labels.remove(label),
            };
        }
        true
    }

    /// Every function, by name.
    pub fn functions(&self) -> Vec<Value> {
        lock(&self.shared)
            .functions
            .values()
            .map(|e| Value::Object(e.value.clone()))
            .collect()
    }

    /// A service account as `serviceAccounts.get` would answer it.
    pub fn service_account(&self, email: &str) -> Option<Value> {
        lock(&self.shared).service_accounts.get(email).map(iam::to_json)
    }

    /// The service accounts of a project, default ones included.
    pub fn service_accounts(&self, project: &str) -> Vec<Value> {
        let state = lock(&self.shared);
        let Some(p) = state.project(project) else {
            return Vec::new();
        };
        state
            .service_accounts
            .values()
            .filter(|sa| sa.project == p.id)
            .map(iam::to_json)
            .collect()
    }

    pub fn policy(&self, resource: &IamResource) -> Option<Policy> {
        let state = lock(&self.shared);
        let key = policy_key(&state, resource).ok()?;
        state.policies.get(&key).cloned()
    }

    pub fn project_policy(&self, project: &str) -> Option<Policy> {
        self.policy(&IamResource::project(project))
    }

    pub fn run_policy(&self, project: &str, location: &str, service: &str) -> Option<Policy> {
        self.policy(&IamResource::run_service(project, location, service))
    }

    /// Changes a policy out of band, as another admin would: a new etag.
    pub fn mutate_policy(&self, resource: &IamResource, change: impl FnOnce(&mut Policy)) -> Result<(), GcpError> {
        let mut state = lock(&self.shared);
        let key = policy_key(&state, resource)?;
        let p = state
            .policies
            .get_mut(&key)
            .ok_or_else(|| GcpError::not_found(format!("no policy for {key}")))?;
        change(p);
        p.normalize();
        p.bump();
        Ok(())
    }

    /// Arms a concurrent change: right after the next getIamPolicy of
    /// `resource` has been answered, `change` is written (new etag), so a
    /// read-modify-write by the caller hits ABORTED. Armed twice, the next
    /// two reads are each overtaken.
    pub fn arm_concurrent_change(
        &self,
        resource: &IamResource,
        change: impl FnOnce(&mut Policy) + Send + 'static,
    ) -> Result<(), GcpError> {
        let mut state = lock(&self.shared);
        let key = policy_key(&state, resource)?;
        if !state.policies.contains_key(&key) {
            return Err(GcpError::not_found(format!("no policy for {key}")));
        }
        state.hooks.push((key, Box::new(change)));
        Ok(())
    }

    /// The binaryAuthorization of a Cloud Run service, as `services.get`
    /// answers it (None: not set, or no such service).
    pub fn binary_authorization(&self, project: &str, location: &str, service: &str) -> Option<Value> {
        let state = lock(&self.shared);
        let key = state.run_service_key(project, location, service).ok()?;
        state
            .binary_authorization
            .get(&key)
            .filter(|b| !b.is_empty())
            .map(|b| Value::Object(b.clone()))
    }

    /// The ingress of a Cloud Run service, as `services.get` answers it
    /// (None: no such project).
    pub fn service_ingress(&self, project: &str, location: &str, service: &str) -> Option<String> {
        let state = lock(&self.shared);
        let key = state.run_service_key(project, location, service).ok()?;
        Some(super::services::ingress(&state, &key))
    }

    /// Sets a Cloud Run service's ingress out of band, as someone changing
    /// the service behind its function's back would; the function's next
    /// deploy applies its own setting again.
    pub fn set_service_ingress(&self, project: &str, location: &str, service: &str, ingress: &str) -> bool {
        let mut state = lock(&self.shared);
        let Ok(key) = state.run_service_key(project, location, service) else {
            return false;
        };
        state.service_ingress.insert(key, ingress.to_string());
        true
    }

    /// Every request so far, oldest first.
    pub fn requests(&self) -> Vec<Recorded> {
        self.server.journal().all()
    }

    pub fn clear_requests(&self) {
        self.server.journal().clear();
    }

    /// Requests whose method is `method` (`*` for any) and whose decoded path
    /// starts with `path_prefix`.
    pub fn count_requests(&self, method: &str, path_prefix: &str) -> usize {
        self.server.journal().count(method, path_prefix)
    }

    /// The requests that change something (see [`Recorded::is_write`]).
    pub fn write_requests(&self) -> Vec<Recorded> {
        self.server.journal().writes()
    }

    /// Fails the next `times` requests with `method` (`*` for any) whose
    /// decoded path starts with `path_prefix`, answering `code` in the
    /// standard error body before anything is read or changed.
    pub fn fail_next(&self, method: &str, path_prefix: &str, times: u32, code: Code) {
        lock(&self.shared)
            .faults
            .arm(method, PathMatch::prefix(path_prefix), times, injected(code));
    }

    /// Creates a Pub/Sub pull subscription in a seeded project, as
    /// [`GcpWorld::subscription_with`] seeds one.
    pub fn create_subscription(
        &self,
        project: &str,
        name: &str,
        ack_deadline_secs: u32,
        max_delivery_attempts: Option<u32>,
    ) -> Result<(), GcpError> {
        lock(&self.shared).add_subscription(project, name, ack_deadline_secs, max_delivery_attempts)
    }

    /// Publishes a message straight into a subscription (as if to its
    /// topic) and wakes pulls waiting on it; the message id pulls will show.
    pub fn publish(
        &self,
        project: &str,
        subscription: &str,
        data: &[u8],
        attributes: &[(&str, &str)],
    ) -> Result<String, GcpError> {
        let mut state = lock(&self.shared);
        let key = state.subscription_key(project, subscription)?;
        let attributes: BTreeMap<String, String> =
            attributes.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        state.pubsub.publish(&key, data, attributes)
    }

    /// Messages of a subscription not acknowledged yet, leased ones
    /// included; None when there is no such subscription.
    pub fn unacknowledged(&self, project: &str, subscription: &str) -> Option<usize> {
        let state = lock(&self.shared);
        let key = state.subscription_key(project, subscription).ok()?;
        state.pubsub.unacknowledged(&key)
    }

    /// Messages a dead-letter policy moved out of a subscription after its
    /// `maxDeliveryAttempts`.
    pub fn dead_lettered(&self, project: &str, subscription: &str) -> Option<usize> {
        let state = lock(&self.shared);
        let key = state.subscription_key(project, subscription).ok()?;
        state.pubsub.subscriptions.get(&key).map(|s| s.dead_lettered)
    }

    /// How long a pull that finds nothing is held waiting for a message.
    pub fn set_pull_hold(&self, hold: Duration) {
        lock(&self.shared).pubsub.hold = hold;
    }

    /// How many polls a function operation started from now on needs.
    pub fn set_operation_polls(&self, polls: u32) {
        lock(&self.shared).operation_polls = polls.max(1);
    }

    /// Names of the function operations not done yet.
    pub fn pending_operations(&self) -> Vec<String> {
        lock(&self.shared)
            .functions
            .values()
            .filter_map(|e| e.pending.clone())
            .collect()
    }
}

fn policy_key(state: &State, resource: &IamResource) -> GcpResult<String> {
    match resource {
        IamResource::Project(p) => state.project_key(p),
        IamResource::RunService {
            project,
            location,
            service,
        } => state.run_service_key(project, location, service),
    }
}

/// The error an armed fault answers with, as Google words it.
fn injected(code: Code) -> GcpError {
    let message = match code {
        Code::ResourceExhausted => {
            "Quota exceeded for quota metric 'Read requests' and limit 'Read requests per minute' (injected by the \
             GCP stand-in)."
                .to_string()
        }
        other => format!("{other} (injected by the GCP stand-in)."),
    };
    GcpError::new(code, message)
}

fn route(state: &mut State, method: &Method, path: &Path, query: &Query, body: &[u8]) -> GcpResult<Value> {
    let segments = path.strs();
    let no_route = || {
        GcpError::not_found(format!(
            "The GCP stand-in serves no {method} {}",
            path.segments.join("/")
        ))
    };
    if segments.iter().any(|s| s.is_empty()) {
        return Err(no_route());
    }
    let verb = path.verb.as_deref();
    match (method.as_str(), segments.as_slice(), verb) {
        ("GET", ["v2", "projects", p, "locations", l, "functions", f], None) => {
            functions::handle_get(state, query, p, l, f)
        }
        ("PATCH", ["v2", "projects", p, "locations", l, "functions", f], None) => {
            functions::handle_patch(state, query, p, l, f, body)
        }
        ("GET", ["v2", "projects", p, "locations", l, "functions"], None) => functions::handle_list(state, query, p, l),
        ("GET", ["v2", "projects", p, "locations", l, "operations", o], None) => lro::handle_get(state, query, p, l, o),
        ("GET", ["v2", "projects", p, "sinks", s], None) => logging::handle_get_sink(state, query, p, s),
        ("GET", ["v2", "projects", p, "locations", l, "services", s], None) => {
            services::handle_get(state, query, p, l, s)
        }
        ("PATCH", ["v2", "projects", p, "locations", l, "services", s], None) => {
            services::handle_patch(state, query, p, l, s, body)
        }
        ("GET", ["v2", "projects", p, "locations", l, "services", s], Some("getIamPolicy")) => {
            run::handle_get_policy(state, query, p, l, s)
        }
        ("POST", ["v2", "projects", p, "locations", l, "services", s], Some("setIamPolicy")) => {
            run::handle_set_policy(state, query, p, l, s, body)
        }
        ("POST", ["v1", "projects", p, "serviceAccounts"], None) => iam::handle_create(state, query, p, body),
        ("GET", ["v1", "projects", p, "serviceAccounts"], None) => iam::handle_list(state, query, p),
        ("GET", ["v1", "projects", p, "serviceAccounts", a], None) => iam::handle_get(state, query, p, a),
        ("POST", ["v1", "projects", p, "serviceAccounts", a], Some("getIamPolicy")) => {
            iam::handle_get_policy(state, query, p, a)
        }
        ("POST", ["v1", "projects", p, "subscriptions", s], Some("pull")) => {
            let req = pubsub::parse_pull(state, query, p, s, body)?;
            pubsub::pull_once(state, &req, Instant::now())
        }
        ("POST", ["v1", "projects", p, "subscriptions", s], Some("acknowledge")) => {
            pubsub::handle_acknowledge(state, query, p, s, body)
        }
        ("POST", ["v1", "projects", p, "subscriptions", s], Some("modifyAckDeadline")) => {
            pubsub::handle_modify_ack_deadline(state, query, p, s, body)
        }
        ("GET", ["v1", "projects", p, "locations", l, "insightTypes", t, "insights"], None) => {
            recommender::handle_list(state, query, p, l, t)
        }
        ("GET", ["v1", "roles", _], None)
        | ("GET", ["v1", "projects", _, "roles", _], None)
        | ("GET", ["v1", "organizations", _, "roles", _], None) => {
            roles::handle_get(state, query, &segments[1..].join("/"))
        }
        ("GET", ["v3", "projects", p], None) => resourcemanager::handle_get_project(state, query, p),
        ("POST", ["v3", "projects", p], Some("getIamPolicy")) => {
            resourcemanager::handle_get_policy(state, query, p, body)
        }
        ("POST", ["v3", "projects", p], Some("setIamPolicy")) => {
            resourcemanager::handle_set_policy(state, query, p, body)
        }
        _ => Err(no_route()),
    }
}

async fn handle(AxumState(shared): AxumState<Shared>, method: Method, uri: Uri, body: Bytes) -> Response {
    let raw_path = uri.path();
    let raw_query = uri.query().unwrap_or_default();
    let decoded = percent_decode(raw_path, false).unwrap_or_else(|_| raw_path.to_string());
    let (mut result, hold) = {
        let mut state = lock(&shared);
        match state.faults.take(method.as_str(), &decoded) {
            Some(e) => (Err(e), None),
            None => {
                let result = serve(&mut state, &method, raw_path, raw_query, &body);
                (result, pull_hold(&state, &method, raw_path, raw_query, &body))
            }
        }
    };
    if let Some((key, hold)) = hold {
        result = hold_pull(&shared, &key, Instant::now() + hold, result, || {
            serve(&mut lock(&shared), &method, raw_path, raw_query, &body)
        })
        .await;
    }
    let (status, answer) = match result {
        Ok(v) => (StatusCode::OK, v),
        Err(e) => (
            StatusCode::from_u16(e.code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            e.body(),
        ),
    };
    json_response(status, &answer)
}

fn serve(state: &mut State, method: &Method, raw_path: &str, raw_query: &str, body: &[u8]) -> GcpResult<Value> {
    let path = Path::parse(raw_path)?;
    let query = Query::parse(raw_query)?;
    route(state, method, &path, &query, body)
}

/// For a valid pull that may wait: its subscription and how long to hold it.
fn pull_hold(
    state: &State,
    method: &Method,
    raw_path: &str,
    raw_query: &str,
    body: &[u8],
) -> Option<(String, Duration)> {
    let path = Path::parse(raw_path).ok()?;
    let query = Query::parse(raw_query).ok()?;
    match (method.as_str(), path.strs().as_slice(), path.verb.as_deref()) {
        ("POST", ["v1", "projects", p, "subscriptions", s], Some("pull")) => {
            let req = pubsub::parse_pull(state, &query, p, s, body).ok()?;
            req.may_wait.then_some((req.key, state.pubsub.hold))
        }
        _ => None,
    }
}

/// Holds an empty pull until a message is published or nacked, a lease runs
/// out, or `until`; then answers what a fresh attempt finds. Real Pub/Sub
/// holds pulls the same way ("may wait ... until at least one message is
/// available"), so callers must not rely on `{}` coming back at once.
async fn hold_pull(
    shared: &Shared,
    key: &str,
    until: Instant,
    mut result: GcpResult<Value>,
    mut again: impl FnMut() -> GcpResult<Value>,
) -> GcpResult<Value> {
    while is_empty_pull(&result) {
        let now = Instant::now();
        if now >= until {
            break;
        }
        let (notify, expiry) = {
            let state = lock(shared);
            (state.pubsub.notify.clone(), state.pubsub.next_expiry(key))
        };
        // Registered before looking again, so a publish in between is not missed.
        let notified = notify.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        result = again();
        if !is_empty_pull(&result) {
            break;
        }
        let wake = expiry.filter(|e| *e > now).map_or(until, |e| e.min(until));
        let _ = tokio::time::timeout_at(wake.into(), notified).await;
        result = again();
    }
    result
}

fn is_empty_pull(result: &GcpResult<Value>) -> bool {
    matches!(result, Ok(Value::Object(m)) if m.is_empty())
}
