//! A loopback HTTP/1.1 server that answers from a script, in order, and
//! records every request: for behaviour no emulator produces on demand
//! (throttling, Retry-After, transient conflicts).

use crate::scaffold::{Listener, Recorded, Server, lock, mutating_method};
use axum::body::Body;
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::Response;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

#[derive(Clone, Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Reply {
    pub fn new(status: u16, body: impl Into<String>) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: body.into(),
        }
    }

    pub fn header(mut self, k: &str, v: &str) -> Reply {
        self.headers.push((k.to_string(), v.to_string()));
        self
    }

    /// The reply with exactly its own headers (no Content-Type added).
    fn into_response(self) -> Response {
        let mut response = Response::new(Body::from(self.body));
        *response.status_mut() = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        for (k, v) in &self.headers {
            if let (Ok(k), Ok(v)) = (HeaderName::try_from(k.as_str()), HeaderValue::try_from(v.as_str())) {
                response.headers_mut().append(k, v);
            }
        }
        response
    }
}

/// Answers requests with the scripted replies in order; once the script is
/// used up, every further request gets the `fallback` reply. Dropping it
/// stops the server.
pub struct Scripted {
    server: Server,
}

impl Scripted {
    pub async fn start(script: Vec<Reply>, fallback: Reply) -> std::io::Result<Scripted> {
        let script = Arc::new(Mutex::new(VecDeque::from(script)));
        let router = axum::Router::new().fallback(move || {
            let reply = lock(&script).pop_front().unwrap_or_else(|| fallback.clone());
            std::future::ready(reply.into_response())
        });
        let server = Listener::http().await?.serve(router, mutating_method);
        Ok(Scripted { server })
    }

    pub fn url(&self) -> String {
        self.server.url().to_string()
    }

    /// Every request so far, oldest first ([`Recorded::at`]: when it arrived).
    pub fn requests(&self) -> Vec<Recorded> {
        self.server.journal().all()
    }
}
