//! The HTTP side: one HTTPS server (the shared scaffold) serving the token
//! endpoint and ARM, bearer-token and api-version checks, the faults tests
//! arm, and the handle tests inspect and steer the stand-in by.

use super::errors::{ArmError, ArmResult, json_response};
use super::ids::{eq_ci, guid, parse_query};
use super::token::Audience;
use super::world::{AzureWorld, State, key};
use super::{authorization, managed_identity, queue, resources, token, web};
use crate::scaffold::{self, Listener, PathMatch, Recorded, Server, percent_decode};
use axum::Router;
use axum::body::Bytes;
use axum::extract::State as AxumState;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::Response;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

/// Whether the call would change something. `config/appsettings/list` is
/// a POST that only reads, and getting a token changes nothing in ARM.
fn is_write(method: &str, path: &str) -> bool {
    let path = path.to_ascii_lowercase();
    scaffold::mutating_method(method, &path)
        && !path.ends_with("/config/appsettings/list")
        && !path.contains("/oauth2/")
}

/// A handler's answer: status, JSON body (none for 204), extra headers.
pub(crate) struct Reply {
    pub status: u16,
    pub body: Option<Value>,
    pub headers: Vec<(&'static str, String)>,
}

impl Reply {
    pub fn new(status: u16, body: Value) -> Reply {
        Reply {
            status,
            body: Some(body),
            headers: Vec::new(),
        }
    }

    pub fn ok(body: Value) -> Reply {
        Reply::new(200, body)
    }

    pub fn header(mut self, name: &'static str, value: String) -> Reply {
        self.headers.push((name, value));
        self
    }
}

/// What the providers' handlers get: the request, already authenticated,
/// api-version checked and split into path segments.
pub(crate) struct Req<'a> {
    pub method: &'a str,
    pub segs: Vec<&'a str>,
    pub query: &'a BTreeMap<String, String>,
    pub body: &'a [u8],
}

impl Req<'_> {
    pub fn path(&self) -> String {
        format!("/{}", self.segs.join("/"))
    }

    pub fn no_route(&self) -> ArmError {
        ArmError::no_route(self.method, &self.path())
    }

    pub fn not_allowed(&self) -> ArmError {
        ArmError::method_not_allowed(self.method, &self.path())
    }

    /// The JSON object body of a PUT, PATCH or POST.
    pub fn json(&self) -> ArmResult<serde_json::Map<String, Value>> {
        match serde_json::from_slice::<Value>(self.body) {
            Ok(Value::Object(m)) => Ok(m),
            Ok(_) => Err(ArmError::new(
                400,
                "InvalidRequestContent",
                "The request content was invalid and could not be deserialized: expected a JSON object.",
            )),
            Err(e) => Err(ArmError::new(
                400,
                "InvalidRequestContent",
                format!("The request content was invalid and could not be deserialized: {e}"),
            )),
        }
    }
}

type Shared = Arc<Mutex<State>>;

fn lock(shared: &Shared) -> MutexGuard<'_, State> {
    scaffold::lock(shared)
}

/// A running Azure Resource Manager stand-in. Dropping it stops the server.
pub struct Arm {
    shared: Shared,
    server: Server,
}

impl Arm {
    /// Serves `world` over HTTPS on a free port of 127.0.0.1. Fails with
    /// InvalidInput on a seed Azure could not hold.
    pub async fn start(world: AzureWorld) -> std::io::Result<Arm> {
        let mut state = world
            .build()
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        let listener = Listener::https().await?;
        state.base_url = listener.url();
        let shared: Shared = Arc::new(Mutex::new(state));
        let app = Router::new().fallback(handle).with_state(shared.clone());
        let server = listener.serve(app, is_write);
        Ok(Arm { shared, server })
    }

    /// `https://127.0.0.1:PORT`: the ARM endpoint and the authority host.
    pub fn url(&self) -> String {
        self.server.url().to_string()
    }

    /// The CA certificate (PEM) clients must trust.
    pub fn ca_pem(&self) -> &str {
        self.server.ca_pem()
    }

    /// Every request so far, oldest first.
    pub fn requests(&self) -> Vec<Recorded> {
        self.server.journal().all()
    }

    /// Writes that were answered 2xx.
    pub fn writes(&self) -> usize {
        let writes = self.server.journal().writes();
        writes.iter().filter(|r| (200..300).contains(&r.status)).count()
    }

    pub fn clear_requests(&self) {
        self.server.journal().clear();
    }

    /// Fails the next `times` requests with `method` (`*` for any) whose
    /// decoded path contains `path_contains` (case-insensitively) with
    /// `status` and ARM error `code`, before anything is read or changed;
    /// `retry_after_secs` adds a Retry-After header.
    pub fn fail_next(
        &self,
        method: &str,
        path_contains: &str,
        status: u16,
        code: &str,
        retry_after_secs: Option<u64>,
        times: u32,
    ) {
        let mut e = ArmError::new(status, code, format!("{code} (injected by the Azure stand-in)."));
        e.retry_after_secs = retry_after_secs;
        lock(&self.shared)
            .faults
            .arm(method, PathMatch::contains_ignore_case(path_contains), times, e);
    }

    /// `https://127.0.0.1:PORT/{account}/{queue}`: the queue, path-style as
    /// the Azurite emulator serves it (Azure's is
    /// `https://{account}.queue.core.windows.net/{queue}`).
    pub fn queue_url(&self, account: &str, queue: &str) -> String {
        format!("{}/{account}/{queue}", self.url())
    }

    /// Creates an empty queue; Err on a name Azure refuses or one that exists.
    pub fn create_queue(&self, account: &str, queue: &str) -> Result<(), String> {
        lock(&self.shared).add_queue(account, queue)
    }

    /// Puts a message as Put Message would (visible at once, 7 days to
    /// live); its MessageId, or None when there is no such queue.
    pub fn put_message(&self, account: &str, queue: &str, text: &str) -> Option<String> {
        let mut state = lock(&self.shared);
        let q = state.queues.get_mut(&(account.to_string(), queue.to_string()))?;
        Some(q.put_returning_id(text, jiff::Timestamp::now()))
    }

    /// Messages in a queue that have not expired or been deleted, invisible
    /// ones included; None when there is no such queue.
    pub fn queue_length(&self, account: &str, queue: &str) -> Option<usize> {
        let mut state = lock(&self.shared);
        let q = state.queues.get_mut(&(account.to_string(), queue.to_string()))?;
        Some(q.len(jiff::Timestamp::now()))
    }

    /// The site as GET site answers it.
    pub fn site(&self, rg: &str, name: &str) -> Option<Value> {
        let state = lock(&self.shared);
        state.sites.get(&key(rg, name)).map(|s| web::site_json(&state, s))
    }

    /// Sets (`Some`) or removes (`None`) one tag of a site out of band, as
    /// another admin would. False when there is no such site.
    pub fn set_tag(&self, rg: &str, name: &str, tag: &str, value: Option<&str>) -> bool {
        let mut state = lock(&self.shared);
        let Some(site) = state.sites.get_mut(&key(rg, name)) else {
            return false;
        };
        match value {
            Some(v) => site.tags.insert(tag.to_string(), serde_json::json!(v)),
            None => site.tags.remove(tag),
        };
        true
    }

    /// Sets one config/web property of a site out of band, as another admin
    /// would. False when there is no such site.
    pub fn set_site_config(&self, rg: &str, name: &str, property: &str, value: Value) -> bool {
        let mut state = lock(&self.shared);
        let Some(site) = state.sites.get_mut(&key(rg, name)) else {
            return false;
        };
        site.config.insert(property.to_string(), value);
        true
    }

    /// config/web as GET answers it.
    pub fn site_config(&self, rg: &str, name: &str) -> Option<Value> {
        let state = lock(&self.shared);
        state.sites.get(&key(rg, name)).map(|s| web::config_json(&state, s))
    }

    /// authsettingsV2 as GET answers it.
    pub fn auth_settings(&self, rg: &str, name: &str) -> Option<Value> {
        let state = lock(&self.shared);
        state.sites.get(&key(rg, name)).map(|s| web::auth_json(&state, s))
    }

    /// Whether basic-auth publishing is allowed; `kind` is `ftp` or `scm`.
    pub fn publishing_allowed(&self, rg: &str, name: &str, kind: &str) -> Option<bool> {
        let state = lock(&self.shared);
        let site = state.sites.get(&key(rg, name))?;
        match kind {
            "ftp" => Some(site.ftp_allowed),
            "scm" => Some(site.scm_allowed),
            _ => None,
        }
    }

    /// Every role assignment, as GET roleAssignments answers each.
    pub fn role_assignments(&self) -> Vec<Value> {
        let state = lock(&self.shared);
        state
            .assignments
            .iter()
            .map(|a| authorization::assignment_json(&state, a))
            .collect()
    }

    /// The system-assigned principal of a site, once its operation is done.
    pub fn principal_id(&self, rg: &str, name: &str) -> Option<String> {
        lock(&self.shared).sites.get(&key(rg, name))?.identity.system.clone()
    }

    pub fn uai_principal_id(&self, rg: &str, name: &str) -> Option<String> {
        Some(lock(&self.shared).uais.get(&key(rg, name))?.principal_id.clone())
    }

    /// Changes a site behind zerofn's back, as someone in the portal would.
    /// `f` gets the site with its full siteConfig (config/web properties);
    /// see [`web::apply_mutation`] for what is read back.
    pub fn mutate_site(&self, rg: &str, name: &str, f: impl FnOnce(&mut Value)) {
        let mut state = lock(&self.shared);
        web::apply_mutation(&mut state, &key(rg, name), f);
    }
}

/// api-versions per resource provider namespace, as ARM checks them.
fn supported_versions(namespace: &str) -> &'static [&'static str] {
    match namespace.to_ascii_lowercase().as_str() {
        "microsoft.web" => &["2024-04-01", "2023-12-01"],
        "microsoft.authorization" => &["2022-04-01"],
        "microsoft.managedidentity" => &["2023-01-31"],
        "microsoft.resources" => &["2021-04-01", "2022-09-01", "2024-03-01"],
        "microsoft.network" => super::network::API_VERSIONS,
        "microsoft.insights" => &["2021-05-01-preview"],
        _ => &[],
    }
}

fn authenticate(state: &State, headers: &HeaderMap) -> ArmResult<()> {
    let Some(value) = headers.get("authorization") else {
        return Err(ArmError::new(
            401,
            "AuthenticationFailed",
            "Authentication failed. The 'Authorization' header is missing.",
        ));
    };
    let value = value.to_str().unwrap_or_default();
    match value.split_once(' ') {
        Some((scheme, token)) if eq_ci(scheme, "Bearer") && state.tokens.get(token.trim()) == Some(&Audience::Arm) => {
            Ok(())
        }
        Some((scheme, token)) if eq_ci(scheme, "Bearer") && state.tokens.contains_key(token.trim()) => {
            Err(ArmError::new(
                401,
                "InvalidAuthenticationToken",
                "The access token has been obtained for wrong audience or resource 'https://storage.azure.com'. It \
                 should exactly match with one of the allowed audiences 'https://management.azure.com/'.",
            ))
        }
        Some((scheme, _)) if eq_ci(scheme, "Bearer") => Err(ArmError::new(
            401,
            "InvalidAuthenticationToken",
            "The access token is invalid: it was not issued by this stand-in's token endpoint.",
        )),
        _ => Err(ArmError::new(
            401,
            "AuthenticationFailed",
            "Authentication failed. The 'Authorization' header is provided in an invalid format.",
        )),
    }
}

/// GET {site}/providers/Microsoft.Insights/diagnosticSettings: the app's
/// diagnostic settings (list only; they are read, never written, here).
fn diagnostic_settings(state: &State, req: &Req, at: usize) -> ArmResult<Reply> {
    let rest: Vec<String> = req.segs[at + 2..].iter().map(|s| s.to_ascii_lowercase()).collect();
    if req.method != "GET" || rest != ["diagnosticsettings"] {
        return Err(req.no_route());
    }
    let k = super::resources::site_key(state, &req.segs[..at])?;
    let value = state.diagnostic_settings.get(&k).cloned().unwrap_or_default();
    Ok(Reply::ok(serde_json::json!({ "value": value })))
}

fn route(state: &mut State, req: &Req) -> ArmResult<Reply> {
    let segs = &req.segs;
    // The provider is the last `providers/{namespace}` pair: a role
    // assignment scoped to a site is Microsoft.Authorization's.
    let Some(at) = (0..segs.len().saturating_sub(1))
        .rev()
        .find(|&i| eq_ci(segs[i], "providers"))
    else {
        return Err(req.no_route());
    };
    let namespace = segs[at + 1];
    let supported = supported_versions(namespace);
    if supported.is_empty() {
        return Err(req.no_route());
    }
    match req.query.get("api-version") {
        None => {
            return Err(ArmError::new(
                400,
                "MissingApiVersionParameter",
                "The api-version query parameter (?api-version=) is required for all requests.",
            ));
        }
        Some(v) if !supported.contains(&v.as_str()) => {
            return Err(ArmError::new(
                400,
                "InvalidApiVersionParameter",
                format!(
                    "The api-version '{v}' is invalid. The supported versions are '{}'.",
                    supported.join(",")
                ),
            ));
        }
        Some(_) => {}
    }
    if let [s, sub, ..] = segs.as_slice()
        && eq_ci(s, "subscriptions")
        && !eq_ci(sub, &state.sub)
    {
        return Err(ArmError::subscription_not_found(sub));
    }
    match namespace.to_ascii_lowercase().as_str() {
        "microsoft.web" => web::route(state, req),
        "microsoft.authorization" => authorization::route(state, req, at),
        "microsoft.resources" => resources::route(state, req, at),
        "microsoft.network" => super::network::route(state, req),
        "microsoft.insights" => diagnostic_settings(state, req, at),
        _ => managed_identity::route(state, req),
    }
}

fn respond(reply: Reply) -> Response {
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = match &reply.body {
        Some(body) => json_response(status, body),
        None => {
            let mut r = Response::new(axum::body::Body::empty());
            *r.status_mut() = status;
            r
        }
    };
    for (name, value) in reply.headers {
        if let Ok(v) = HeaderValue::from_str(&value) {
            response.headers_mut().insert(name, v);
        }
    }
    if let Ok(id) = HeaderValue::from_str(&guid()) {
        response.headers_mut().insert("x-ms-request-id", id);
    }
    response
}

async fn handle(
    AxumState(shared): AxumState<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let raw_query = uri.query().unwrap_or_default();
    let path = percent_decode(uri.path(), false).unwrap_or_else(|_| uri.path().to_string());
    let mut state = lock(&shared);
    let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    if queue::is_queue_path(&segs) {
        return serve_queue(&mut state, &method, &segs, raw_query, &headers, &body);
    }
    let reply = match state.faults.take(method.as_str(), &path) {
        Some(e) => Err(e),
        None => dispatch(&mut state, &method, &path, raw_query, &headers, &body),
    };
    let reply = reply.unwrap_or_else(|e| {
        let retry = e.retry_after_secs;
        let mut r = Reply::new(e.status, e.body());
        if let Some(secs) = retry {
            r = r.header("retry-after", secs.to_string());
        }
        r
    });
    drop(state);
    respond(reply)
}

/// A Queue service request: armed faults first, answered in the storage
/// error shape, then the queue itself.
fn serve_queue(
    state: &mut State,
    method: &Method,
    segs: &[&str],
    raw_query: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Response {
    let path = format!("/{}", segs.join("/"));
    if let Some(e) = state.faults.take(method.as_str(), &path) {
        return queue::fault_response(&e, headers, state);
    }
    let query = parse_query(raw_query).unwrap_or_default();
    let req = queue::QueueRequest {
        method: method.as_str(),
        account: segs[0],
        queue: segs[1],
        message: segs.get(3).copied(),
        query: &query,
        headers,
        body,
    };
    queue::handle(state, &req, jiff::Timestamp::now())
}

fn dispatch(
    state: &mut State,
    method: &Method,
    path: &str,
    raw_query: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> ArmResult<Reply> {
    let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    if let [tenant, "oauth2", "v2.0", "token"] = segs.as_slice() {
        return if method == Method::POST {
            Ok(token::handle(state, tenant, body))
        } else {
            Err(ArmError::method_not_allowed(method.as_str(), path))
        };
    }
    authenticate(state, headers)?;
    if segs.iter().any(|s| s.is_empty()) {
        return Err(ArmError::no_route(method.as_str(), path));
    }
    let query = parse_query(raw_query)
        .ok_or_else(|| ArmError::bad_request("The query string is not valid percent-encoding."))?;
    let req = Req {
        method: method.as_str(),
        segs,
        query: &query,
        body,
    };
    route(state, &req)
}
