//! Azure Resource Manager over azure_core's pipeline: the bearer-token
//! policy of azure_identity's credential (which refuses plain HTTP), and
//! our own retries so every attempt is counted and `Retry-After` is obeyed.
//!
//! Only `https` URLs on the configured ARM host are ever called: a
//! `nextLink` or an operation URL pointing elsewhere is refused, so the
//! token never leaves for another host.

use crate::metrics::{Metrics, Outcome};
use crate::providers::retry::{Cause, GaveUp, Progress, TimedOut, Unfinished, Verdict};
use crate::providers::{ProviderError, Tuning};
use azure_core::credentials::TokenCredential;
use azure_core::http::headers::{HeaderName, Headers};
use azure_core::http::policies::Policy;
use azure_core::http::policies::auth::BearerTokenAuthorizationPolicy;
use azure_core::http::{
    ClientOptions, Context, Method, Pipeline, PipelineSendOptions, RawResponse, Request, RetryOptions, Url,
};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

pub const WEB_API: &str = "2024-04-01";
pub const AUTHZ_API: &str = "2022-04-01";
/// Microsoft.Resources, for the tags API.
pub const RESOURCES_API: &str = "2021-04-01";

/// A failed ARM call: the HTTP status (0 when no answer came) and the ARM
/// error code and message.
#[derive(Debug, Clone)]
pub struct ArmError {
    pub status: u16,
    pub code: String,
    pub message: String,
    pub op: String,
    /// The `Retry-After` of the answer, if it had one.
    pub retry_after: Option<Duration>,
    /// Why no answer came, when none did.
    pub unanswered: Option<NoAnswer>,
}

/// Why an ARM call got no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoAnswer {
    /// Nothing within the attempt timeout or the call deadline.
    Timeout,
    /// The connection, TLS or I/O failed.
    Transport,
    /// The connection was refused: nothing listens there.
    Refused,
    /// A link ARM handed us leads elsewhere: it is never followed.
    UntrustedLink,
    /// The path makes no URL: nothing was sent.
    InvalidPath,
}

impl ArmError {
    pub fn provider(&self) -> ProviderError {
        let msg = format!("{}: {} {}: {}", self.op, self.status, self.code, self.message);
        match (self.unanswered, self.status) {
            (Some(NoAnswer::Timeout), _) => ProviderError::Timeout(msg),
            (Some(NoAnswer::Transport | NoAnswer::Refused), _) => ProviderError::Unreachable(msg),
            (Some(NoAnswer::UntrustedLink | NoAnswer::InvalidPath), _) => ProviderError::Cloud(msg),
            (None, 401 | 403) => ProviderError::Auth(msg),
            (None, 404) => ProviderError::NotFound(msg),
            (None, 409) => ProviderError::Conflict(msg),
            (None, 429) => ProviderError::Throttled(msg),
            (None, 400 | 422) => ProviderError::Refused(msg),
            (None, s) if s >= 500 => ProviderError::Unreachable(msg),
            (None, _) => ProviderError::Cloud(msg),
        }
    }

    /// Whether another attempt may succeed: throttling (obeying
    /// `Retry-After`), a conflict with an operation in progress, a server
    /// error, or no answer in time. A refused credential is answered 401,
    /// and a link or path zerofn will not send to stays so: never.
    fn verdict(&self) -> Verdict {
        let cause = match (self.unanswered, self.status, self.code.as_str()) {
            (Some(NoAnswer::Timeout | NoAnswer::Transport | NoAnswer::Refused), _, _) => Cause::unavailable,
            (Some(NoAnswer::UntrustedLink | NoAnswer::InvalidPath), _, _) => return Verdict::Fail,
            (None, 429, _) => Cause::throttled,
            (None, 409, "Conflict" | "AnotherOperationInProgress") => Cause::conflict,
            (None, s, _) if s >= 500 => Cause::unavailable,
            _ => return Verdict::Fail,
        };
        match self.retry_after {
            Some(d) => Verdict::RetryAfter(cause, d),
            None => Verdict::Retry(cause),
        }
    }

    /// A call that got no answer; `code` names the cause in messages.
    fn no_answer(op: &str, why: NoAnswer, code: &str, message: String) -> ArmError {
        ArmError {
            status: 0,
            code: code.into(),
            message,
            op: op.to_string(),
            retry_after: None,
            unanswered: Some(why),
        }
    }
}

/// What one send got back, short of an answer.
enum Unsent {
    Failed(azure_core::Error),
    Silent(Duration),
}

impl From<TimedOut> for Unsent {
    fn from(t: TimedOut) -> Self {
        Unsent::Silent(t.0)
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
    let client = crate::providers::https::client(extra_roots, None)?;
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
        let mut url = self
            .endpoint
            .join(path)
            .map_err(|e| ArmError::no_answer("", NoAnswer::InvalidPath, "InvalidPath", format!("{path}: {e}")))?;
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
        let refuse = |why: String| ArmError::no_answer(op, NoAnswer::UntrustedLink, "UntrustedLink", why);
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

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// One call, retried on throttling (obeying `Retry-After`), on conflicts
    /// with an operation in progress, on server errors and on transport
    /// failures. Every attempt is counted.
    pub async fn send(&self, op: &str, method: Method, url: Url, body: Option<&Value>) -> Result<Reply, ArmError> {
        self.send_classified(op, method, url, body, ArmError::verdict).await
    }

    /// A GET as the account's probe makes it: a refused connection is not
    /// retried, so an account nothing answers for is reported at once.
    pub async fn probe(&self, op: &str, path: &str, api: &str, query: &[(&str, &str)]) -> Result<(), ArmError> {
        let url = self
            .url(path, api, query)
            .map_err(|e| ArmError { op: op.into(), ..e })?;
        let verdict = |e: &ArmError| match e.unanswered {
            Some(NoAnswer::Refused) => Verdict::Fail,
            _ => e.verdict(),
        };
        self.send_classified(op, Method::Get, url, None, verdict)
            .await
            .map(drop)
    }

    async fn send_classified(
        &self,
        op: &str,
        method: Method,
        url: Url,
        body: Option<&Value>,
        verdict: impl Fn(&ArmError) -> Verdict,
    ) -> Result<Reply, ArmError> {
        let policy = &self.tuning.call("azure", &self.metrics);
        let url = &url;
        let attempt = move || async move {
            let mut req = Request::new(url.clone(), method);
            if let Some(b) = body {
                req.insert_header("content-type", "application/json");
                req.set_body(serde_json::to_vec(b).unwrap_or_default());
            }
            let options = PipelineSendOptions {
                skip_checks: true,
                ..Default::default()
            };
            let sent = policy.bounded(async {
                let sent = self.pipeline.send(&Context::new(), &mut req, Some(options)).await;
                sent.map_err(Unsent::Failed)
            });
            match sent.await {
                Ok(resp) => self.answer(op, resp),
                Err(unsent) => Err(self.unanswered(op, unsent)),
            }
        };
        policy.run(attempt, verdict).await.map_err(|gave_up| match gave_up {
            GaveUp::Failed(e) => e,
            GaveUp::Deadline(_) => ArmError::no_answer(
                op,
                NoAnswer::Timeout,
                "Timeout",
                format!("{op} did not succeed within {:?}", self.tuning.call_deadline),
            ),
        })
    }

    /// A send that got no answer, counted.
    fn unanswered(&self, op: &str, unsent: Unsent) -> ArmError {
        self.record(op, Outcome::transport_error);
        match unsent {
            Unsent::Silent(limit) => {
                ArmError::no_answer(op, NoAnswer::Timeout, "Timeout", format!("no answer within {limit:?}"))
            }
            // Nothing listens there (ARM, or the authority a token comes
            // from): no answer, of its own kind.
            Unsent::Failed(e) if crate::providers::retry::connection_refused(&e) => {
                ArmError::no_answer(op, NoAnswer::Refused, "ConnectionRefused", e.to_string())
            }
            // A credential the authority refused: as ARM would answer it.
            Unsent::Failed(e) if matches!(e.kind(), azure_core::error::ErrorKind::Credential) => ArmError {
                status: 401,
                code: format!("{:?}", e.kind()),
                message: e.to_string(),
                op: op.to_string(),
                retry_after: None,
                unanswered: None,
            },
            Unsent::Failed(e) => {
                ArmError::no_answer(op, NoAnswer::Transport, &format!("{:?}", e.kind()), e.to_string())
            }
        }
    }

    /// The answer to a send, counted: the reply, or ARM's error.
    fn answer(&self, op: &str, resp: RawResponse) -> Result<Reply, ArmError> {
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
        let err = ArmError {
            status,
            code: body["error"]["code"].as_str().unwrap_or_default().to_string(),
            message: body["error"]["message"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| String::from_utf8_lossy(&raw).chars().take(300).collect()),
            op: op.to_string(),
            retry_after: retry_after(&headers),
            unanswered: None,
        };
        let outcome = match status {
            429 => Outcome::throttled,
            s if s >= 500 => Outcome::server_error,
            // A 404 without an ARM error code (a wrong endpoint) is not an
            // answer.
            s => Outcome::refused(op, s == 404 && !err.code.is_empty()),
        };
        self.record(op, outcome);
        Err(err)
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

    /// Poll an operation until it is done: an `Azure-AsyncOperation` URL
    /// reports `status`; a `Location` URL answers 202 until then.
    async fn poll(&self, op: &str, link: &str, how: Tracking, first: Option<Duration>) -> Result<Value, ArmError> {
        let url = &self.trusted(link, op)?;
        let check = move || async move {
            let reply = self.send("GetOperationStatus", Method::Get, url.clone(), None).await?;
            let pending = Progress::Pending(retry_after(&reply.headers));
            match how {
                Tracking::Location if reply.status != 202 => Ok(Progress::Done(reply.body)),
                Tracking::Location => Ok(pending),
                Tracking::AsyncOperation => match reply.body["status"].as_str().unwrap_or_default() {
                    "Succeeded" => Ok(Progress::Done(reply.body)),
                    s @ ("Failed" | "Canceled") => Err(ArmError {
                        status: 200,
                        code: reply.body["error"]["code"].as_str().unwrap_or(s).to_string(),
                        message: reply.body["error"]["message"]
                            .as_str()
                            .unwrap_or("the operation did not succeed")
                            .to_string(),
                        op: op.to_string(),
                        retry_after: None,
                        unanswered: None,
                    }),
                    _ => Ok(pending),
                },
            }
        };
        let first = first.unwrap_or(self.tuning.poll_interval);
        let polls = self.tuning.operation("azure", &self.metrics);
        polls.poll(Some(first), check).await.map_err(|u| match u {
            Unfinished::Failed(e) => e,
            Unfinished::Deadline => ArmError::no_answer(
                op,
                NoAnswer::Timeout,
                "Timeout",
                format!("operation {link} not done after {:?}", self.tuning.operation_wait),
            ),
        })
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

    fn failure(status: u16, code: &str, retry_after: Option<u64>) -> ArmError {
        ArmError {
            status,
            code: code.into(),
            message: "m".into(),
            op: "PutSite".into(),
            retry_after: retry_after.map(Duration::from_secs),
            unanswered: None,
        }
    }

    fn unanswered(why: NoAnswer) -> ArmError {
        ArmError::no_answer("PutSite", why, "", "m".into())
    }

    #[test]
    fn errors_map_to_stable_categories() {
        let e = |status: u16, code: &str| failure(status, code, None);
        assert!(matches!(
            e(404, "ResourceNotFound").provider(),
            ProviderError::NotFound(_)
        ));
        assert!(matches!(
            e(429, "TooManyRequests").provider(),
            ProviderError::Throttled(_)
        ));
        assert!(matches!(
            e(403, "AuthorizationFailed").provider(),
            ProviderError::Auth(_)
        ));
        assert!(matches!(
            e(400, "InvalidRequestContent").provider(),
            ProviderError::Refused(_)
        ));
        let no = |why| unanswered(why).provider();
        assert!(matches!(no(NoAnswer::Transport), ProviderError::Unreachable(_)));
        assert!(matches!(no(NoAnswer::Timeout), ProviderError::Timeout(_)));
        assert!(matches!(no(NoAnswer::UntrustedLink), ProviderError::Cloud(_)));
        assert!(matches!(no(NoAnswer::InvalidPath), ProviderError::Cloud(_)));
    }

    #[test]
    fn what_is_worth_another_attempt() {
        let e = failure;
        let throttled = Verdict::RetryAfter(Cause::throttled, Duration::from_secs(3));
        assert_eq!(e(429, "TooManyRequests", Some(3)).verdict(), throttled);
        assert_eq!(
            e(429, "TooManyRequests", None).verdict(),
            Verdict::Retry(Cause::throttled)
        );
        let busy = e(409, "AnotherOperationInProgress", None);
        assert_eq!(busy.verdict(), Verdict::Retry(Cause::conflict));
        assert_eq!(e(409, "RoleAssignmentExists", None).verdict(), Verdict::Fail);
        assert_eq!(e(503, "", None).verdict(), Verdict::Retry(Cause::unavailable));
        let no = |why| unanswered(why).verdict();
        assert_eq!(no(NoAnswer::Timeout), Verdict::Retry(Cause::unavailable));
        assert_eq!(no(NoAnswer::Transport), Verdict::Retry(Cause::unavailable));
        assert_eq!(
            no(NoAnswer::UntrustedLink),
            Verdict::Fail,
            "a link elsewhere stays elsewhere"
        );
        assert_eq!(no(NoAnswer::InvalidPath), Verdict::Fail);
        assert_eq!(e(401, "Credential", None).verdict(), Verdict::Fail);
        assert_eq!(e(400, "InvalidRequestContent", None).verdict(), Verdict::Fail);
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
