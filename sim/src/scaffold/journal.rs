//! The journal: every exchange a stand-in answered, kept for tests to assert
//! on, recorded around the stand-in's router so no handler has to.

use super::lock;
use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use serde_json::Value;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// One request as a stand-in received it, and the status it answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recorded {
    pub method: String,
    /// Percent-decoded path (as received when it does not decode), with any
    /// `:verb`, e.g. `/v3/projects/p:setIamPolicy`.
    pub path: String,
    /// The raw query string.
    pub query: String,
    /// The Content-Type header, empty without one.
    pub content_type: String,
    pub body: String,
    /// The HTTP status it was answered with.
    pub status: u16,
    /// The scheme of the Authorization header only ("Bearer"), never the
    /// credential.
    pub authorization: Option<String>,
    /// Whom the stand-in authenticated the request as (see [`Principal`]);
    /// empty when nobody, or when the stand-in does not authenticate.
    pub user: String,
    /// When the request arrived.
    pub at: Instant,
    write: bool,
}

impl Recorded {
    /// Whether the call changes something, by the stand-in's own rule: the
    /// method alone does not tell (Resource Manager's getIamPolicy and ARM's
    /// appsettings/list are POSTs that only read).
    pub fn is_write(&self) -> bool {
        self.write
    }

    /// A decoded query parameter, empty values included; the first of
    /// repeated names.
    pub fn query_param(&self, name: &str) -> Option<String> {
        self.query.split('&').find_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let k = percent_decode(k, true).ok()?;
            (k == name).then(|| percent_decode(v, true).unwrap_or_else(|_| v.to_string()))
        })
    }

    pub fn body_json(&self) -> Option<Value> {
        serde_json::from_str(&self.body).ok()
    }
}

/// A response extension a handler sets to name whom the request was
/// authenticated as; the journal records it as [`Recorded::user`].
#[derive(Clone, Debug)]
pub struct Principal(pub String);

/// The requests a stand-in answered, oldest first. A request is recorded
/// before its answer leaves, so one a client sends after reading an answer
/// always comes later.
#[derive(Clone)]
pub struct Journal {
    entries: Arc<Mutex<Vec<Recorded>>>,
    is_write: fn(&str, &str) -> bool,
}

/// Bodies up to this size are recorded and passed on whole; a larger one is
/// passed on empty (the stand-ins' clients never send one).
const BODY_LIMIT: usize = 64 << 20;

impl Journal {
    pub(super) fn new(is_write: fn(&str, &str) -> bool) -> Journal {
        Journal {
            entries: Arc::default(),
            is_write,
        }
    }

    /// `router`, with every exchange recorded here.
    pub(super) fn record(&self, router: Router) -> Router {
        router.layer(middleware::from_fn_with_state(self.clone(), record))
    }

    pub fn all(&self) -> Vec<Recorded> {
        lock(&self.entries).clone()
    }

    pub fn clear(&self) {
        lock(&self.entries).clear();
    }

    /// The requests that change something (see [`Recorded::is_write`]).
    pub fn writes(&self) -> Vec<Recorded> {
        lock(&self.entries).iter().filter(|r| r.write).cloned().collect()
    }

    /// Requests whose method is `method` (`*` for any; any case) and whose
    /// decoded path starts with `path_prefix` (the leading `/` optional).
    pub fn count(&self, method: &str, path_prefix: &str) -> usize {
        let prefix = slash(path_prefix);
        lock(&self.entries)
            .iter()
            .filter(|r| (method == "*" || r.method.eq_ignore_ascii_case(method)) && r.path.starts_with(&prefix))
            .count()
    }
}

/// `prefix` with a leading `/`.
pub(super) fn slash(prefix: &str) -> String {
    if prefix.starts_with('/') {
        prefix.to_string()
    } else {
        format!("/{prefix}")
    }
}

async fn record(State(journal): State<Journal>, request: Request, next: Next) -> Response {
    let at = Instant::now();
    let (parts, body) = request.into_parts();
    let bytes = axum::body::to_bytes(body, BODY_LIMIT).await.unwrap_or_default();
    let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
    let raw_path = parts.uri.path();
    let mut entry = Recorded {
        method: parts.method.to_string(),
        path: percent_decode(raw_path, false).unwrap_or_else(|_| raw_path.to_string()),
        query: parts.uri.query().unwrap_or_default().to_string(),
        content_type: header("content-type").unwrap_or_default().to_string(),
        body: String::from_utf8_lossy(&bytes).into_owned(),
        status: 0,
        authorization: header("authorization")
            .and_then(|v| v.split_whitespace().next())
            .map(str::to_string),
        user: String::new(),
        at,
        write: false,
    };
    entry.write = (journal.is_write)(&entry.method, &entry.path);
    let response = next.run(Request::from_parts(parts, Body::from(bytes))).await;
    entry.status = response.status().as_u16();
    if let Some(Principal(user)) = response.extensions().get::<Principal>() {
        entry.user = user.clone();
    }
    lock(&journal.entries).push(entry);
    response
}

/// Why a string is not valid percent-encoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BadEncoding {
    /// A `%` not followed by two hex digits.
    Escape,
    /// The decoded bytes are not UTF-8.
    Utf8,
}

/// `%XX` decoding; `+` becomes a space only in form and query values
/// (`plus_is_space`).
pub fn percent_decode(s: &str, plus_is_space: bool) -> Result<String, BadEncoding> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or(BadEncoding::Escape)?;
                out.push(hex);
                i += 3;
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| BadEncoding::Utf8)
}
