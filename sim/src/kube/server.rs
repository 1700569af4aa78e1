//! HTTP: routing, bearer-token auth, content negotiation (JSON, Tables,
//! metadata-only), list pagination, and watch streams.

use super::openapi;
use super::protobuf;
use super::rbac::{self, Attributes, Policy, User};
use super::registry::ResourceType;
use super::selectors::{FieldSelector, LabelSelector};
use super::status::{ApiError, ApiResult, success_status};
use super::store::{FieldValidation, State, WriteOptions};
use super::table;
use crate::scaffold::{Faults, Principal, lock};
use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub struct App {
    pub state: Mutex<State>,
    pub token: String,
    /// Tokens other than the admin's, and whom they authenticate.
    pub tokens: Mutex<HashMap<String, User>>,
    /// Statuses armed by tests, answered to authenticated requests before
    /// anything is read or changed.
    pub faults: Mutex<Faults<u16>>,
}

impl App {
    pub fn state(&self) -> std::sync::MutexGuard<'_, State> {
        lock(&self.state)
    }
}

fn json_response(code: u16, v: &Value) -> Response {
    let code = StatusCode::from_u16(code).unwrap_or(StatusCode::OK);
    (code, [("content-type", "application/json")], v.to_string()).into_response()
}

/// Where a request goes.
#[derive(Debug, PartialEq)]
enum Route {
    Version,
    Api,
    Apis,
    CoreV1,
    Group(String),
    GroupVersion(String, String),
    OpenApiV3Root,
    OpenApiV3(String),
    Resource {
        group: String,
        version: String,
        namespace: Option<String>,
        plural: String,
        name: Option<String>,
        sub: Option<String>,
    },
}

fn route(path: &str) -> Option<Route> {
    let segs: Vec<&str> = path.trim_matches('/').split('/').filter(|s| !s.is_empty()).collect();
    let (group, version, rest) = match segs.as_slice() {
        ["version"] => return Some(Route::Version),
        ["api"] => return Some(Route::Api),
        ["apis"] => return Some(Route::Apis),
        ["api", "v1"] => return Some(Route::CoreV1),
        ["apis", g] => return Some(Route::Group(g.to_string())),
        ["apis", g, v] => return Some(Route::GroupVersion(g.to_string(), v.to_string())),
        ["openapi", "v3"] => return Some(Route::OpenApiV3Root),
        ["openapi", "v3", rest @ ..] => return Some(Route::OpenApiV3(rest.join("/"))),
        ["api", "v1", rest @ ..] => (String::new(), "v1".to_string(), rest),
        ["apis", g, v, rest @ ..] => (g.to_string(), v.to_string(), rest),
        _ => return None,
    };
    let (namespace, rest) = match rest {
        ["namespaces", ns, more @ ..] if !more.is_empty() => (Some(ns.to_string()), more),
        other => (None, other),
    };
    let (plural, name, sub) = match rest {
        [p] => (p, None, None),
        [p, n] => (p, Some(n.to_string()), None),
        [p, n, s] => (p, Some(n.to_string()), Some(s.to_string())),
        _ => return None,
    };
    Some(Route::Resource {
        group,
        version,
        namespace,
        plural: plural.to_string(),
        name,
        sub,
    })
}

fn query_map(raw: &str) -> HashMap<String, String> {
    serde_urlencoded::from_str::<Vec<(String, String)>>(raw)
        .unwrap_or_default()
        .into_iter()
        .collect()
}

fn parse_body(content_type: &str, bytes: &[u8]) -> ApiResult<Value> {
    if bytes.is_empty() {
        return Ok(Value::Null);
    }
    if content_type.contains("protobuf") {
        return protobuf::decode(bytes).map_err(|e| match e {
            protobuf::Unreadable::Malformed(why) => ApiError::bad_request(format!("error decoding protobuf: {why}")),
            protobuf::Unreadable::Unsupported { api_version, kind } => ApiError::unsupported_media(format!(
                "the stand-in reads protobuf bodies of Namespaces, ConfigMaps, Secrets, ServiceAccounts and RBAC objects only, not {kind} ({api_version}): send it as JSON or YAML (kubectl apply -f)"
            )),
        });
    }
    let text = std::str::from_utf8(bytes).map_err(|_| ApiError::bad_request("the body is not UTF-8"))?;
    if content_type.contains("yaml") {
        serde_saphyr::from_str(text).map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))
    } else {
        serde_json::from_str(text).map_err(|e| ApiError::bad_request(format!("error decoding JSON: {e}")))
    }
}

/// What the client asked the answer to look like.
#[derive(Clone, Copy, PartialEq)]
enum View {
    Full,
    Table,
    Metadata,
}

fn view(headers: &HeaderMap) -> View {
    let accept = headers.get("accept").and_then(|v| v.to_str().ok()).unwrap_or_default();
    if accept.contains("as=Table") {
        View::Table
    } else if accept.contains("as=PartialObjectMetadata") {
        View::Metadata
    } else {
        View::Full
    }
}

fn metadata_only(o: &Value) -> Value {
    json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": o.get("metadata").cloned().unwrap_or(json!({}))})
}

pub async fn handle(app: Arc<App>, req: Request) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let raw_query = req.uri().query().unwrap_or_default().to_string();
    let headers = req.headers().clone();
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let bytes = axum::body::to_bytes(req.into_body(), 64 << 20)
        .await
        .unwrap_or_default();
    let user = authenticate(&app, &headers);
    let mut response = respond(
        &app,
        user.as_ref(),
        &method,
        &path,
        &raw_query,
        &headers,
        &content_type,
        &bytes,
    )
    .await;
    if let Some(user) = user {
        response.extensions_mut().insert(Principal(user.name));
    }
    response
}

#[allow(clippy::too_many_arguments)]
async fn respond(
    app: &Arc<App>,
    user: Option<&User>,
    method: &Method,
    path: &str,
    raw_query: &str,
    headers: &HeaderMap,
    content_type: &str,
    bytes: &[u8],
) -> Response {
    let Some(user) = user else {
        return ApiError::unauthorized().into_response();
    };
    if let Some(status) = lock(&app.faults).take(method.as_str(), path) {
        return ApiError::status(status, "injected fault").into_response();
    }
    let q = query_map(raw_query);
    let r = route(path);
    let attrs = attributes(method, path, r.as_ref(), &q);
    if let Err(e) = authorize(app, user, &attrs) {
        return e.into_response();
    }
    let Some(r) = r else {
        return ApiError::no_route(path).into_response();
    };
    match dispatch(app, method, r, &q, headers, content_type, bytes).await {
        Ok(resp) => resp,
        Err(e) => e.into_response(),
    }
}

/// Who presents the request's bearer token, if anyone.
fn authenticate(app: &App, headers: &HeaderMap) -> Option<User> {
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))?;
    if token == app.token {
        return Some(User::admin());
    }
    lock(&app.tokens).get(token).cloned()
}

/// The request's attributes as the authorizer sees them: a resource request
/// (verb from the method, the path and `watch`), or a non-resource path.
fn attributes(method: &Method, path: &str, r: Option<&Route>, q: &HashMap<String, String>) -> Attributes {
    match r {
        Some(Route::Resource {
            group,
            namespace,
            plural,
            name,
            sub,
            ..
        }) => {
            let watching = q.get("watch").is_some_and(|w| w == "true" || w == "1");
            Attributes::Resource {
                verb: rbac::resource_verb(method.as_str(), name.is_some(), watching).to_string(),
                group: group.clone(),
                resource: plural.clone(),
                subresource: sub.clone(),
                namespace: namespace.clone(),
                name: name.clone(),
            }
        }
        _ => Attributes::NonResource {
            verb: rbac::non_resource_verb(method.as_str()),
            path: path.to_string(),
        },
    }
}

/// Allow the request, or 403 with the reason, by the RBAC objects stored
/// now.
fn authorize(app: &App, user: &User, attrs: &Attributes) -> ApiResult<()> {
    if user == &User::admin() {
        return Ok(());
    }
    let s = app.state();
    let all = |plural: &str| {
        s.registry
            .find("rbac.authorization.k8s.io", "v1", plural)
            .cloned()
            .map(|t| s.list(&t, None))
            .unwrap_or_default()
    };
    let (roles, role_bindings) = (all("roles"), all("rolebindings"));
    let (cluster_roles, cluster_role_bindings) = (all("clusterroles"), all("clusterrolebindings"));
    let policy = Policy {
        roles: &roles,
        role_bindings: &role_bindings,
        cluster_roles: &cluster_roles,
        cluster_role_bindings: &cluster_role_bindings,
    };
    if policy.allows(user, attrs) {
        Ok(())
    } else {
        Err(rbac::forbidden(user, attrs))
    }
}

async fn dispatch(
    app: &Arc<App>,
    method: &Method,
    r: Route,
    q: &HashMap<String, String>,
    headers: &HeaderMap,
    content_type: &str,
    bytes: &[u8],
) -> ApiResult<Response> {
    let get_only = |m: &Method| {
        if *m == Method::GET {
            Ok(())
        } else {
            Err(ApiError::method_not_allowed("only GET"))
        }
    };
    let state = || app.state();
    let found = |v: Option<Value>, what: &str| v.ok_or_else(|| ApiError::no_route(what));
    match r {
        Route::Version => {
            get_only(method)?;
            Ok(json_response(
                200,
                &json!({"major": "1", "minor": "33", "gitVersion": "v1.33.0-zerofn-sim", "platform": "linux/amd64"}),
            ))
        }
        Route::Api => Ok(json_response(200, &state().registry.api_versions())),
        Route::Apis => Ok(json_response(200, &state().registry.groups())),
        Route::CoreV1 => Ok(json_response(
            200,
            &found(state().registry.resources("", "v1"), "api/v1")?,
        )),
        Route::Group(g) => Ok(json_response(200, &found(state().registry.group(&g), &g)?)),
        Route::GroupVersion(g, v) => Ok(json_response(200, &found(state().registry.resources(&g, &v), &g)?)),
        Route::OpenApiV3Root => Ok(json_response(200, &openapi::root(&state().registry))),
        Route::OpenApiV3(gv) => Ok(json_response(
            200,
            &found(openapi::group_version(&state().registry, &gv), &gv)?,
        )),
        Route::Resource {
            group,
            version,
            namespace,
            plural,
            name,
            sub,
        } => {
            let t = state()
                .registry
                .find(&group, &version, &plural)
                .cloned()
                .ok_or_else(|| ApiError::no_route(&format!("{group}/{version}/{plural}")))?;
            if namespace.is_some() && !t.namespaced {
                return Err(ApiError::no_route(&plural));
            }
            if let Some(s) = &sub
                && !(s == "status" && t.status_subresource)
            {
                return Err(ApiError::no_route(&format!("{plural}/{s}")));
            }
            let ns = namespace.clone().unwrap_or_default();
            let opts = WriteOptions {
                field_manager: q.get("fieldManager").cloned(),
                force: q.get("force").is_some_and(|f| f == "true"),
                field_validation: FieldValidation::parse(q.get("fieldValidation").map(String::as_str))?,
                dry_run: q.contains_key("dryRun"),
                warnings: Default::default(),
            };
            let body = || parse_body(content_type, bytes);
            let answer = match (method.clone(), name) {
                (Method::GET, None) => {
                    let watching = q.get("watch").is_some_and(|w| w == "true" || w == "1");
                    if watching {
                        watch(app, &t, namespace.as_deref(), q, view(headers))
                    } else {
                        list(app, &t, namespace.as_deref(), q, view(headers))
                    }
                }
                (Method::POST, None) => {
                    if t.namespaced && namespace.is_none() {
                        return Err(ApiError::method_not_allowed("create needs a namespace"));
                    }
                    let o = state().create(&t, &ns, body()?, &opts)?;
                    Ok(json_response(201, &o))
                }
                (Method::GET, Some(n)) => Ok(shaped(&t, state().get(&t, &ns, &n)?, view(headers))),
                (Method::PUT, Some(n)) => Ok(json_response(
                    200,
                    &state().update(&t, &ns, &n, body()?, sub.as_deref(), &opts)?,
                )),
                (Method::PATCH, Some(n)) => Ok(json_response(
                    200,
                    &state().patch(&t, &ns, &n, content_type, &body()?, sub.as_deref(), &opts)?,
                )),
                (Method::DELETE, Some(n)) => {
                    let o = state().delete(&t, &ns, &n)?;
                    if o.pointer("/metadata/deletionTimestamp").is_some() && state().get(&t, &ns, &n).is_ok() {
                        Ok(json_response(200, &o))
                    } else {
                        Ok(json_response(
                            200,
                            &success_status(json!({"name": n, "kind": t.plural, "uid": o.pointer("/metadata/uid")})),
                        ))
                    }
                }
                (m, _) => Err(ApiError::method_not_allowed(format!("{m} is not supported here"))),
            };
            answer.map(|r| with_warnings(r, &opts.warnings.borrow()))
        }
    }
}

/// The bookmark that ends a streaming list's initial events (the API
/// conventions' `k8s.io/initial-events-end` annotation), at the
/// resourceVersion the initial events were taken at.
fn initial_events_end(t: &ResourceType, v: View, rv: u64) -> Value {
    let (api_version, kind) = match v {
        View::Metadata => ("meta.k8s.io/v1".to_string(), "PartialObjectMetadata".to_string()),
        _ => (t.api_version(), t.kind.clone()),
    };
    json!({"apiVersion": api_version, "kind": kind, "metadata": {
        "resourceVersion": rv.to_string(),
        "annotations": {"k8s.io/initial-events-end": "true"},
    }})
}

/// A `Warning` header per text, as the API server sends them (RFC 7234:
/// code 299, agent `-`, the text quoted as Go's strconv.Quote does).
fn with_warnings(mut resp: Response, warnings: &[String]) -> Response {
    for w in warnings {
        if let Ok(v) = axum::http::HeaderValue::from_str(&format!("299 - {}", go_quote(w))) {
            resp.headers_mut().append("warning", v);
        }
    }
    resp
}

fn go_quote(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => out.push_str(&format!("\\x{:02x}", c as u32)),
            // A header value is visible ASCII: escape the rest.
            c if !c.is_ascii() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn shaped(t: &ResourceType, o: Value, v: View) -> Response {
    match v {
        View::Full => json_response(200, &o),
        View::Metadata => json_response(200, &metadata_only(&o)),
        View::Table => json_response(200, &table::table(t, &[o], json!({}), "Metadata")),
    }
}

fn selectors(q: &HashMap<String, String>) -> ApiResult<(LabelSelector, FieldSelector)> {
    let l = LabelSelector::parse(q.get("labelSelector").map(String::as_str).unwrap_or_default())
        .map_err(ApiError::bad_request)?;
    let f = FieldSelector::parse(q.get("fieldSelector").map(String::as_str).unwrap_or_default())
        .map_err(ApiError::bad_request)?;
    Ok((l, f))
}

/// Field selectors on events name the core shape (involvedObject.*).
fn core_fields(t: &ResourceType, o: &Value) -> Value {
    if t.group == "events.k8s.io" {
        super::events::to_core(o)
    } else {
        o.clone()
    }
}

fn list(
    app: &Arc<App>,
    t: &ResourceType,
    ns: Option<&str>,
    q: &HashMap<String, String>,
    v: View,
) -> ApiResult<Response> {
    let (labels, fields) = selectors(q)?;
    let start = q
        .get("continue")
        .filter(|c| !c.is_empty())
        .map(|c| c.parse::<usize>().unwrap_or(usize::MAX))
        .unwrap_or(0);
    let limit = q.get("limit").and_then(|l| l.parse::<usize>().ok()).filter(|l| *l > 0);
    // Only the page is copied out of the store: a paged list of N objects
    // costs N copies in all, not N per page.
    let (items, rest, rv) = {
        let s = app.state();
        let wanted =
            |o: &&Value| labels.matches(o) && (fields.is_empty() || fields.matches(&core_fields(t, &s.present(t, o))));
        let mut matching = s.stored(t, ns).filter(wanted);
        let items: Vec<Value> = matching
            .by_ref()
            .skip(start)
            .take(limit.unwrap_or(usize::MAX))
            .map(|o| s.present(t, o))
            .collect();
        (items, matching.count(), s.rv)
    };
    let mut meta = json!({"resourceVersion": rv.to_string()});
    if let Some(l) = limit
        && rest > 0
    {
        meta["continue"] = json!((start + l).to_string());
        meta["remainingItemCount"] = json!(rest);
    }
    let body = match v {
        View::Table => table::table(
            t,
            &items,
            meta,
            q.get("includeObject").map(String::as_str).unwrap_or("Metadata"),
        ),
        View::Metadata => json!({"kind": "PartialObjectMetadataList", "apiVersion": "meta.k8s.io/v1", "metadata": meta,
                                 "items": items.iter().map(metadata_only).collect::<Vec<_>>()}),
        View::Full => {
            json!({"kind": format!("{}List", t.kind), "apiVersion": t.api_version(), "metadata": meta, "items": items})
        }
    };
    Ok(json_response(200, &body))
}

fn watch(
    app: &Arc<App>,
    t: &ResourceType,
    ns: Option<&str>,
    q: &HashMap<String, String>,
    v: View,
) -> ApiResult<Response> {
    let (labels, fields) = selectors(q)?;
    let from = q.get("resourceVersion").cloned().unwrap_or_default();
    let timeout = q
        .get("timeoutSeconds")
        .and_then(|s| s.parse::<u64>().ok())
        .map(Duration::from_secs)
        .unwrap_or(Duration::from_secs(1800));
    // A streaming list (client-go's WatchList, which helm's readiness
    // checks use): the current objects as ADDED, then a BOOKMARK marking
    // the end of the initial events.
    let streaming_list = q.get("sendInitialEvents").is_some_and(|v| v == "true");
    let (rx, replay, snapshot_rv) = {
        let s = app.state();
        let rx = s.tx.subscribe();
        let replay: Vec<(String, Value)> = if from.is_empty() || from == "0" || streaming_list {
            s.list(t, ns).into_iter().map(|o| ("ADDED".to_string(), o)).collect()
        } else {
            let rv: u64 = from
                .parse()
                .map_err(|_| ApiError::bad_request(format!("invalid resourceVersion {from:?}")))?;
            if rv < s.oldest_resumable() {
                let gone = ApiError::gone(format!("too old resource version: {rv} ({})", s.oldest_resumable()));
                let ev = json!({"type": "ERROR", "object": gone.to_status()});
                return Ok((
                    StatusCode::OK,
                    [("content-type", "application/json")],
                    format!("{ev}\n"),
                )
                    .into_response());
            }
            s.history
                .iter()
                .filter(|c| {
                    c.rv > rv
                        && c.group == t.store_group()
                        && c.plural == t.plural
                        && ns.is_none_or(|n| c.namespace == n)
                })
                .map(|c| (c.kind.to_string(), s.present(t, &c.object)))
                .collect()
        };
        (rx, replay, s.rv)
    };
    let t = t.clone();
    let ns = ns.map(str::to_string);
    let app = app.clone();
    let events = t.group == "events.k8s.io";
    let matches = move |o: &Value| {
        let core = if events { super::events::to_core(o) } else { o.clone() };
        labels.matches(o) && fields.matches(&core)
    };
    let shape = move |o: Value| if v == View::Metadata { metadata_only(&o) } else { o };
    let line = |kind: &str, o: Value| Bytes::from(format!("{}\n", json!({"type": kind, "object": o})));
    let mut first: Vec<Bytes> = replay
        .into_iter()
        .filter(|(_, o)| matches(o))
        .map(|(k, o)| line(&k, shape(o)))
        .collect();
    if streaming_list {
        first.push(line("BOOKMARK", initial_events_end(&t, v, snapshot_rv)));
    }
    let deadline = tokio::time::Instant::now() + timeout;
    let live = futures::stream::unfold(rx, move |mut rx| {
        let (t, ns, app, matches) = (t.clone(), ns.clone(), app.clone(), matches.clone());
        async move {
            loop {
                let change = match tokio::time::timeout_at(deadline, rx.recv()).await {
                    Ok(Ok(c)) => c,
                    Ok(Err(tokio::sync::broadcast::error::RecvError::Lagged(_))) => {
                        // The client fell too far behind: end the watch so it relists.
                        return None;
                    }
                    _ => return None,
                };
                if change.group != t.store_group()
                    || change.plural != t.plural
                    || ns.as_deref().is_some_and(|n| change.namespace != n)
                {
                    continue;
                }
                let o = app.state().present(&t, &change.object);
                if !matches(&o) {
                    continue;
                }
                return Some((line(change.kind, shape(o)), rx));
            }
        }
    });
    let stream = futures::stream::iter(first)
        .chain(live)
        .map(Ok::<_, std::convert::Infallible>);
    Ok(Response::builder()
        .status(200)
        .header("content-type", "application/json")
        .body(Body::from_stream(stream))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        assert_eq!(
            route("/api/v1/namespaces/shop/secrets/creds"),
            Some(Route::Resource {
                group: "".into(),
                version: "v1".into(),
                namespace: Some("shop".into()),
                plural: "secrets".into(),
                name: Some("creds".into()),
                sub: None
            })
        );
        assert_eq!(
            route("/api/v1/namespaces/shop"),
            Some(Route::Resource {
                group: "".into(),
                version: "v1".into(),
                namespace: None,
                plural: "namespaces".into(),
                name: Some("shop".into()),
                sub: None
            })
        );
        assert_eq!(
            route("/apis/zerofn.dev/v1alpha1/namespaces/a/functionpostures/b/status"),
            Some(Route::Resource {
                group: "zerofn.dev".into(),
                version: "v1alpha1".into(),
                namespace: Some("a".into()),
                plural: "functionpostures".into(),
                name: Some("b".into()),
                sub: Some("status".into())
            })
        );
        assert_eq!(route("/apis/zerofn.dev"), Some(Route::Group("zerofn.dev".into())));
        assert_eq!(route("/nonsense/x"), None);
    }

    #[test]
    fn warnings_are_quoted_as_the_api_server_quotes_them() {
        assert_eq!(go_quote(r#"unknown field "spec.x""#), r#""unknown field \"spec.x\"""#);
        assert_eq!(go_quote("a\\b\n"), r#""a\\b\n""#);
        let r = with_warnings(
            ().into_response(),
            &["unknown field \"spec.x\"".into(), "second".into()],
        );
        let values: Vec<&str> = r
            .headers()
            .get_all("warning")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        assert_eq!(values, [r#"299 - "unknown field \"spec.x\"""#, r#"299 - "second""#]);
    }
}
