//! The official google-cloud-rust clients for one project, and the one place
//! every call goes through: counted by operation and outcome, retried with
//! jittered backoff on throttling (the clients never retry 429) and on
//! transient unavailability.

use crate::api::GcpAccount;
use crate::metrics::{Metrics, Outcome};
use crate::providers::retry::{Cause, GaveUp, TimedOut, Verdict};
use crate::providers::{ProviderError, Tuning};
use google_cloud_gax::error::Error as GaxError;
use google_cloud_gax::error::rpc::Code;
use google_cloud_gax::retry_policy::NeverRetry;
use std::future::Future;
use std::sync::Arc;

pub struct Clients {
    pub functions: google_cloud_functions_v2::client::FunctionService,
    pub run: google_cloud_run_v2::client::Services,
    pub iam: google_cloud_iam_admin_v1::client::Iam,
    pub projects: google_cloud_resourcemanager_v3::client::Projects,
    /// The credentials behind every client (and the change-event feed).
    pub credentials: google_cloud_auth::credentials::Credentials,
    /// IAM policy insights (REST; see `insights`).
    pub recommender: super::insights::RestApi,
    /// Cloud Logging: the `_Default` sink (REST; see `logsink`).
    pub logging: super::insights::RestApi,
}

fn credentials(
    account: &GcpAccount,
    key: Option<serde_json::Value>,
) -> Result<google_cloud_auth::credentials::Credentials, ProviderError> {
    use google_cloud_auth::credentials;
    if account.anonymous {
        return Ok(credentials::anonymous::Builder::new().build());
    }
    match key {
        Some(k) => credentials::service_account::Builder::new(k)
            .build()
            .map_err(|e| ProviderError::Config(format!("the service account key in the account's Secret: {e}"))),
        None => credentials::Builder::default()
            .build()
            .map_err(|e| ProviderError::Auth(format!("no Application Default Credentials: {e}"))),
    }
}

pub async fn build(
    account: &GcpAccount,
    key: Option<serde_json::Value>,
    tuning: &Tuning,
) -> Result<Clients, ProviderError> {
    let creds = credentials(account, key)?;
    let ep = account.endpoints.clone().unwrap_or_default();
    let build_err = |what: &str, e: &dyn std::fmt::Display| ProviderError::Config(format!("{what} client: {e}"));
    // Retries are ours (see `Caller`), so the clients never retry on their own.
    macro_rules! client {
        ($builder:expr, $endpoint:expr, $what:literal) => {{
            let mut b = $builder
                .with_credentials(creds.clone())
                .with_retry_policy(NeverRetry)
                .with_attempt_timeout(tuning.attempt_timeout);
            if let Some(url) = $endpoint {
                b = b.with_endpoint(url);
            }
            b.build().await.map_err(|e| build_err($what, &e))?
        }};
    }
    Ok(Clients {
        credentials: creds.clone(),
        functions: client!(
            google_cloud_functions_v2::client::FunctionService::builder(),
            ep.functions.clone(),
            "Cloud Functions"
        ),
        run: client!(
            google_cloud_run_v2::client::Services::builder(),
            ep.run.clone(),
            "Cloud Run"
        ),
        iam: client!(google_cloud_iam_admin_v1::client::Iam::builder(), ep.iam.clone(), "IAM"),
        projects: client!(
            google_cloud_resourcemanager_v3::client::Projects::builder(),
            ep.resource_manager.clone(),
            "Resource Manager"
        ),
        recommender: super::insights::RestApi::new(
            ep.recommender.clone(),
            super::insights::RECOMMENDER,
            creds.clone(),
            tuning,
        )?,
        logging: super::insights::RestApi::new(ep.logging.clone(), super::logsink::LOGGING, creds, tuning)?,
    })
}

pub fn code(e: &GaxError) -> Option<Code> {
    e.status().map(|s| s.code)
}

fn outcome(op: &str, e: &GaxError) -> Outcome {
    match (code(e), e.http_status_code()) {
        (Some(Code::NotFound), _) => Outcome::refused(op, true),
        (Some(Code::ResourceExhausted), _) | (_, Some(429)) => Outcome::throttled,
        (_, Some(s)) if s >= 500 => Outcome::server_error,
        (Some(Code::Unavailable | Code::Internal | Code::Unknown | Code::DeadlineExceeded), _) => Outcome::server_error,
        (Some(_), _) | (_, Some(_)) => Outcome::client_error,
        (None, None) => Outcome::transport_error,
    }
}

/// Worth another attempt: the request was throttled or not served.
fn transient(e: &GaxError) -> Verdict {
    if matches!(code(e), Some(Code::ResourceExhausted)) || e.http_status_code() == Some(429) {
        Verdict::Retry(Cause::throttled)
    } else if matches!(code(e), Some(Code::Unavailable))
        || matches!(e.http_status_code(), Some(502..=504))
        || e.is_io()
        || e.is_connect()
        || e.is_timeout()
    {
        Verdict::Retry(Cause::unavailable)
    } else {
        Verdict::Fail
    }
}

/// An attempt with no answer in time is the client's own timeout error.
impl From<TimedOut> for GaxError {
    fn from(t: TimedOut) -> Self {
        GaxError::timeout(format!("no answer within {:?}", t.0))
    }
}

pub fn map_err(op: &str, target: &str, e: &GaxError) -> ProviderError {
    // The client's message stops at "cannot connect": say why, when it is
    // that nothing listens there.
    let refused = if crate::providers::retry::connection_refused(e) {
        " (connection refused)"
    } else {
        ""
    };
    let msg = format!("{op} {target}: {e}{refused}");
    match code(e) {
        Some(Code::NotFound) => ProviderError::NotFound(msg),
        Some(Code::PermissionDenied | Code::Unauthenticated) => ProviderError::Auth(msg),
        Some(Code::ResourceExhausted) => ProviderError::Throttled(msg),
        Some(Code::Aborted | Code::AlreadyExists | Code::FailedPrecondition) => ProviderError::Conflict(msg),
        Some(Code::InvalidArgument | Code::OutOfRange) => ProviderError::Refused(msg),
        Some(Code::DeadlineExceeded) => ProviderError::Timeout(msg),
        Some(Code::Unavailable) => ProviderError::Unreachable(msg),
        _ if e.is_connect() || e.is_io() || e.is_transport() => ProviderError::Unreachable(msg),
        _ if e.is_timeout() => ProviderError::Timeout(msg),
        _ => ProviderError::Cloud(msg),
    }
}

/// Counts and retries calls.
#[derive(Clone)]
pub struct Caller {
    pub metrics: Arc<Metrics>,
    pub tuning: Tuning,
    /// A refused connection is final (the account probe's calls): nothing
    /// listens there, and the account is reported unreachable at once.
    pub refused_is_final: bool,
}

impl Caller {
    /// The same caller as the account probe uses it: a refused connection
    /// is not retried.
    pub fn probing(&self) -> Caller {
        Caller {
            refused_is_final: true,
            ..self.clone()
        }
    }

    pub fn record(&self, op: &str, result: Result<(), &GaxError>) {
        self.metrics
            .cloud_call("gcp", op, result.map_or_else(|e| outcome(op, e), |_| Outcome::ok));
    }

    /// One call, retried while it is transient. The error keeps the client's
    /// error so callers can tell ABORTED from the rest.
    pub async fn raw<T, F, Fut>(&self, op: &str, f: F) -> Result<T, GaxError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, GaxError>>,
    {
        let policy = &self.tuning.call("gcp", &self.metrics);
        let f = &f;
        // The clients' own attempt timeout does not cover obtaining a
        // token; this one covers the whole attempt.
        let attempt = move || async move {
            let result = policy.bounded(f()).await;
            self.record(op, result.as_ref().map(drop));
            result
        };
        let classify = |e: &GaxError| {
            if self.refused_is_final && crate::providers::retry::connection_refused(e) {
                Verdict::Fail
            } else {
                transient(e)
            }
        };
        policy.run(attempt, classify).await.map_err(GaveUp::into_error)
    }

    pub async fn call<T, F, Fut>(&self, op: &str, target: &str, f: F) -> Result<T, ProviderError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, GaxError>>,
    {
        self.raw(op, f).await.map_err(|e| map_err(op, target, &e))
    }
}
