//! Azure Resource Manager over azure_core's pipeline: the bearer-token
//! policy of azure_identity's credential (which refuses plain HTTP), and
//! our own retries so every attempt is counted and `Retry-After` is obeyed.
//!
//! Only `https` URLs on the configured ARM host are ever called: a
//! `nextLink` or an operation URL pointing elsewhere is refused, so the
//! token never leaves for another host.

use crate::metrics::{Metrics, Outcome};
use crate::providers::ProviderError;
use azure_core::credentials::TokenCredential;
use azure_core::http::headers::{HeaderName, Headers};
use azure_core::http::policies::Policy;
use azure_core::http::policies::auth::BearerTokenAuthorizationPolicy;
use azure_core::http::{ClientOptions, Context, Method, Pipeline, PipelineSendOptions, Request, RetryOptions, Url};
use serde_json::Value;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub const WEB_API: &str = "2024-04-01";
pub const AUTHZ_API: &str = "2022-04-01";
/// Microsoft.Resources, for the tags API.
pub const RESOURCES_API: &str = "2021-04-01";

#[derive(Clone, Debug)]
pub struct Tuning {
    pub max_attempts: u32,
    pub initial_backoff: Duration,
    /// Longest `Retry-After` obeyed; a longer one fails the call as
    /// throttled (the reconcile is requeued) instead of parking a worker.
    pub max_retry_after: Duration,
    /// Longest wait for a long-running operation.
    pub operation_wait: Duration,
    /// Delay between polls when ARM does not say (`Retry-After`).
    pub poll_interval: Duration,
    /// How long a new principal may stay unknown to role assignments
    /// (Entra ID replication, `PrincipalNotFound`).
    pub propagation: Duration,
    /// PEM root certificates trusted in addition to the system's (a private
    /// ARM endpoint, a TLS-inspecting proxy, the test stand-in).
    pub extra_roots: Vec<String>,
    /// Deadline of one attempt (the token request included): a silent
    /// endpoint costs this, not forever.
    pub attempt_timeout: Duration,
    /// Deadline of one call, retries included.
    pub call_deadline: Duration,
}

impl Default for Tuning {
    fn default() -> Self {
        Tuning {
            max_attempts: 6,
            initial_backoff: Duration::from_millis(500),
            max_retry_after: Duration::from_secs(60),
            operation_wait: Duration::from_secs(600),
            poll_interval: Duration::from_secs(5),
            propagation: Duration::from_secs(120),
            extra_roots: Vec::new(),
            attempt_timeout: Duration::from_secs(30),
            call_deadline: Duration::from_secs(180),
        }
    }
}

/// A failed ARM call: the HTTP status (0 when no answer came) and the ARM
/// error code and message.
#[derive(Debug, Clone)]
pub struct ArmError {
    pub status: u16,
    pub code: String,
    pub message: String,
    pub op: String,
}

impl ArmError {
    pub fn provider(&self) -> ProviderError {
        let msg = format!("{}: {} {}: {}", self.op, self.status, self.code, self.message);
        match (self.status, self.code.as_str()) {
            (0, "Timeout") => ProviderError::Timeout(msg),
            (0, "UntrustedLink") => ProviderError::Cloud(msg),
            (0, _) => ProviderError::Unreachable(msg),
            (401 | 403, _) => ProviderError::Auth(msg),
            (404, _) => ProviderError::NotFound(msg),
            (409, _) => ProviderError::Conflict(msg),
            (429, _) => ProviderError::Throttled(msg),
            (400 | 422, _) => ProviderError::Refused(msg),
            (s, _) if s >= 500 => ProviderError::Unreachable(msg),
            _ => ProviderError::Cloud(msg),
        }
    }
}

/// How a long-running operation reports that it is done.
#[derive(Clone, Copy)]
enum Tracking {
    AsyncOperation,
    Location,
}

/// A successful answer.
pub struct Reply {
    pub status: u16,
    pub headers: Headers,
    pub body: Value,
}

pub struct Arm {
    pipeline: Pipeline,
    endpoint: Url,
    metrics: Arc<Metrics>,
    pub tuning: Tuning,
}

/// The reqwest client behind the pipeline, when extra roots must be trusted.
fn transport(extra_roots: &[String]) -> Result<Option<azure_core::http::Transport>, ProviderError> {
    if extra_roots.is_empty() {
        return Ok(None);
    }
    let mut certs = Vec::new();
    for pem in extra_roots {
        certs.push(
            reqwest::Certificate::from_pem(pem.as_bytes())
                .map_err(|e| ProviderError::Config(format!("extra root certificate: {e}")))?,
        );
    }
    let client = reqwest::Client::builder()
        .tls_certs_merge(certs)
        .build()
        .map_err(|e| ProviderError::Config(format!("HTTPS client: {e}")))?;
    Ok(Some(azure_core::http::Transport::new(Arc::new(client))))
}

/// ClientOptions for the credential's own token requests: same trust, and no
/// retries of its own (ours are counted).
pub fn client_options(tuning: &Tuning) -> Result<ClientOptions, ProviderError> {
    Ok(ClientOptions {
        retry: RetryOptions::none(),
        transport: transport(&tuning.extra_roots)?,
        ..Default::default()
    })
}

impl Arm {
    pub fn new(
        endpoint: &str,
        credential: Arc<dyn TokenCredential>,
        metrics: Arc<Metrics>,
        tuning: Tuning,
    ) -> Result<Arm, ProviderError> {
        let endpoint = Url::parse(endpoint)
            .map_err(|e| ProviderError::Config(format!("resourceManagerEndpoint {endpoint}: {e}")))?;
        if endpoint.scheme() != "https" {
            return Err(ProviderError::Config(format!(
                "resourceManagerEndpoint {endpoint} is not https: zerofn never sends a token over plain HTTP"
            )));
        }
        let scope = format!("{}/.default", endpoint.as_str().trim_end_matches('/'));
        let auth: Arc<dyn Policy> = Arc::new(BearerTokenAuthorizationPolicy::new(credential, [scope]));
        let pipeline = Pipeline::new(
            Some("zerofn"),
            Some(env!("CARGO_PKG_VERSION")),
            client_options(&tuning)?,
            Vec::new(),
            vec![auth],
            None,
        );
        Ok(Arm {
            pipeline,
            endpoint,
            metrics,
            tuning,
        })
    }

    /// `path` (absolute ARM path) on the endpoint, with api-version and
    /// further query parameters.
    pub fn url(&self, path: &str, api_version: &str, query: &[(&str, &str)]) -> Result<Url, ArmError> {
        let mut url = self.endpoint.join(path).map_err(|e| ArmError {
            status: 0,
            code: "InvalidPath".into(),
            message: format!("{path}: {e}"),
            op: String::new(),
        })?;
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("api-version", api_version);
            for (k, v) in query {
                q.append_pair(k, v);
            }
        }
        Ok(url)
    }

    /// A URL ARM handed us (nextLink, operation status): only followed on
    /// the ARM host itself.
    fn trusted(&self, link: &str, op: &str) -> Result<Url, ArmError> {
        let refuse = |why: String| ArmError {
            status: 0,
            code: "UntrustedLink".into(),
            message: why,
            op: op.to_string(),
        };
        let url = Url::parse(link).map_err(|e| refuse(format!("{link}: {e}")))?;
        if url.scheme() != "https"
            || url.host_str() != self.endpoint.host_str()
            || url.port_or_known_default() != self.endpoint.port_or_known_default()
        {
            return Err(refuse(format!(
                "{link} is not on the ARM endpoint {}; not followed",
                self.endpoint
            )));
        }
        Ok(url)
    }

    fn record(&self, op: &str, outcome: Outcome) {
        self.metrics.cloud_call("azure", op, outcome);
    }

    /// One call, retried on throttling (obeying `Retry-After`), on conflicts
    /// with an operation in progress, on server errors and on transport
    /// failures. Every attempt is counted.
    pub async fn send(&self, op: &str, method: Method, url: Url, body: Option<&Value>) -> Result<Reply, ArmError> {
        let mut attempt = 0;
        let deadline = Instant::now() + self.tuning.call_deadline;
        loop {
            attempt += 1;
            let mut req = Request::new(url.clone(), method);
            if let Some(b) = body {
                req.insert_header("content-type", "application/json");
                req.set_body(serde_json::to_vec(b).unwrap_or_default());
            }
            let sent = tokio::time::timeout(
                self.tuning.attempt_timeout,
                self.pipeline.send(
                    &Context::new(),
                    &mut req,
                    Some(PipelineSendOptions {
                        skip_checks: true,
                        ..Default::default()
                    }),
                ),
            )
            .await;
            let Ok(sent) = sent else {
                self.record(op, Outcome::transport_error);
                let err = ArmError {
                    status: 0,
                    code: "Timeout".into(),
                    message: format!("no answer within {:?}", self.tuning.attempt_timeout),
                    op: op.to_string(),
                };
                let wait = self.backoff(attempt);
                if attempt >= self.tuning.max_attempts || Instant::now() + wait >= deadline {
                    return Err(err);
                }
                tokio::time::sleep(wait).await;
                continue;
            };
            let retry_in = match sent {
                Err(e) => {
                    self.record(op, Outcome::transport_error);
                    let err = ArmError {
                        status: 0,
                        code: format!("{:?}", e.kind()),
                        message: e.to_string(),
                        op: op.to_string(),
                    };
                    // A credential failure is not transient: no retry.
                    if matches!(e.kind(), azure_core::error::ErrorKind::Credential)
                        || attempt >= self.tuning.max_attempts
                    {
                        return Err(ArmError {
                            status: if matches!(e.kind(), azure_core::error::ErrorKind::Credential) {
                                401
                            } else {
                                0
                            },
                            ..err
                        });
                    }
                    self.backoff(attempt)
                }
                Ok(resp) => {
                    let (status, headers, raw) = resp.deconstruct();
                    let status = u16::from(status);
                    let body: Value = if raw.is_empty() {
                        Value::Null
                    } else {
                        serde_json::from_slice(&raw).unwrap_or(Value::Null)
                    };
                    if (200..300).contains(&status) {
                        self.record(op, Outcome::ok);
                        return Ok(Reply { status, headers, body });
                    }
                    let code = body["error"]["code"].as_str().unwrap_or_default().to_string();
                    let err = ArmError {
                        status,
                        message: body["error"]["message"]
                            .as_str()
                            .map(str::to_string)
                            .unwrap_or_else(|| String::from_utf8_lossy(&raw).chars().take(300).collect()),
                        code,
                        op: op.to_string(),
                    };
                    let outcome = match status {
                        429 => Outcome::throttled,
                        s if s >= 500 => Outcome::server_error,
                        // A 404 without an ARM error code (a wrong
                        // endpoint) is not an answer.
                        s => Outcome::refused(op, s == 404 && !err.code.is_empty()),
                    };
                    self.record(op, outcome);
                    let transient = status == 429
                        || status >= 500
                        || (status == 409 && matches!(err.code.as_str(), "Conflict" | "AnotherOperationInProgress"));
                    if !transient || attempt >= self.tuning.max_attempts {
                        return Err(err);
                    }
                    match retry_after(&headers) {
                        Some(d) if d > self.tuning.max_retry_after => return Err(err),
                        Some(d) => d,
                        None => self.backoff(attempt),
                    }
                }
            };
            if Instant::now() + retry_in >= deadline {
                return Err(ArmError {
                    status: 0,
                    code: "Timeout".into(),
                    message: format!("{op} did not succeed within {:?}", self.tuning.call_deadline),
                    op: op.to_string(),
                });
            }
            tokio::time::sleep(retry_in).await;
        }
    }

    fn backoff(&self, attempt: u32) -> Duration {
        self.tuning
            .initial_backoff
            .saturating_mul(1 << attempt.min(10))
            .min(Duration::from_secs(30))
            .mul_f64(0.5 + fastrand::f64() * 0.5)
    }

    pub async fn get(&self, op: &str, path: &str, api: &str, query: &[(&str, &str)]) -> Result<Value, ArmError> {
        let url = self
            .url(path, api, query)
            .map_err(|e| ArmError { op: op.into(), ..e })?;
        Ok(self.send(op, Method::Get, url, None).await?.body)
    }

    /// Every item of a list, following `nextLink` on the ARM host.
    pub async fn list(&self, op: &str, path: &str, api: &str, query: &[(&str, &str)]) -> Result<Vec<Value>, ArmError> {
        let mut url = self
            .url(path, api, query)
            .map_err(|e| ArmError { op: op.into(), ..e })?;
        let mut out = Vec::new();
        loop {
            let page = self.send(op, Method::Get, url, None).await?.body;
            if let Some(items) = page["value"].as_array() {
                out.extend(items.iter().cloned());
            }
            match page["nextLink"].as_str().filter(|l| !l.is_empty()) {
                Some(link) => url = self.trusted(link, op)?,
                None => return Ok(out),
            }
        }
    }

    /// A write; a `201`/`202` naming an operation is polled to completion,
    /// so the change is in place when this returns.
    pub async fn write(
        &self,
        op: &str,
        method: Method,
        path: &str,
        api: &str,
        body: Option<&Value>,
    ) -> Result<Value, ArmError> {
        let url = self.url(path, api, &[]).map_err(|e| ArmError { op: op.into(), ..e })?;
        let reply = self.send(op, method, url, body).await?;
        if reply.status == 201 || reply.status == 202 {
            let header = |n: &'static str| reply.headers.get_optional_string(&HeaderName::from_static(n));
            if let Some(link) = header("azure-asyncoperation") {
                return self
                    .poll(op, &link, Tracking::AsyncOperation, retry_after(&reply.headers))
                    .await;
            }
            if let Some(link) = header("location") {
                return self
                    .poll(op, &link, Tracking::Location, retry_after(&reply.headers))
                    .await;
            }
        }
        Ok(reply.body)
    }

    fn timeout(&self, op: &str, link: &str) -> ArmError {
        ArmError {
            status: 0,
            code: "Timeout".into(),
            message: format!("operation {link} not done after {:?}", self.tuning.operation_wait),
            op: op.to_string(),
        }
    }

    /// Poll an operation until it is done: an `Azure-AsyncOperation` URL
    /// reports `status`; a `Location` URL answers 202 until then.
    async fn poll(&self, op: &str, link: &str, how: Tracking, first: Option<Duration>) -> Result<Value, ArmError> {
        let url = self.trusted(link, op)?;
        let deadline = Instant::now() + self.tuning.operation_wait;
        let mut wait = first.unwrap_or(self.tuning.poll_interval);
        loop {
            tokio::time::sleep(wait.min(self.tuning.max_retry_after)).await;
            let reply = self.send("GetOperationStatus", Method::Get, url.clone(), None).await?;
            match how {
                Tracking::Location if reply.status != 202 => return Ok(reply.body),
                Tracking::Location => {}
                Tracking::AsyncOperation => match reply.body["status"].as_str().unwrap_or_default() {
                    "Succeeded" => return Ok(reply.body),
                    s @ ("Failed" | "Canceled") => {
                        return Err(ArmError {
                            status: 200,
                            code: reply.body["error"]["code"].as_str().unwrap_or(s).to_string(),
                            message: reply.body["error"]["message"]
                                .as_str()
                                .unwrap_or("the operation did not succeed")
                                .to_string(),
                            op: op.to_string(),
                        });
                    }
                    _ => {}
                },
            }
            if Instant::now() > deadline {
                return Err(self.timeout(op, link));
            }
            wait = retry_after(&reply.headers).unwrap_or(self.tuning.poll_interval);
        }
    }
}

/// `Retry-After` in seconds (ARM never sends the HTTP-date form), or the
/// millisecond variants.
fn retry_after(headers: &Headers) -> Option<Duration> {
    let get = |n: &'static str| headers.get_optional_str(&HeaderName::from_static(n));
    if let Some(ms) = get("retry-after-ms").or_else(|| get("x-ms-retry-after-ms")) {
        return ms.trim().parse::<u64>().ok().map(Duration::from_millis);
    }
    get("retry-after")?.trim().parse::<u64>().ok().map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_map_to_stable_categories() {
        let e = |status: u16, code: &str| ArmError {
            status,
            code: code.into(),
            message: "m".into(),
            op: "GetSite".into(),
        };
        assert_eq!(e(404, "ResourceNotFound").provider().category(), "not_found");
        assert_eq!(e(429, "TooManyRequests").provider().category(), "throttled");
        assert_eq!(e(403, "AuthorizationFailed").provider().category(), "auth");
        assert_eq!(e(400, "InvalidRequestContent").provider().category(), "refused");
        assert_eq!(e(0, "Io").provider().category(), "unreachable");
        assert_eq!(e(0, "Timeout").provider().category(), "timeout");
    }

    #[test]
    fn retry_after_reads_seconds_and_milliseconds() {
        let mut h = Headers::new();
        h.insert("retry-after", "3");
        assert_eq!(retry_after(&h), Some(Duration::from_secs(3)));
        h.insert("retry-after-ms", "250");
        assert_eq!(retry_after(&h), Some(Duration::from_millis(250)));
    }
}
