//! AWS SDK clients for one account: credentials, endpoints, retries, and the
//! interceptor that counts every call.

use crate::api::AwsAccount;
use crate::metrics::{Metrics, Outcome};
use crate::providers::{ProviderError, Tuning};
use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_credential_types::Credentials;
use aws_sdk_lambda::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_smithy_runtime_api::client::interceptors::context::{FinalizerInterceptorContextRef, InterceptorContext};
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_runtime_api::client::retries::classifiers::{ClassifyRetry, RetryAction};
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// Static credentials read from a Secret by the caller (CLI: manifests;
/// controller: the account's namespace). `Debug` shows none of them.
#[derive(Clone, PartialEq, Eq)]
pub struct StaticCredentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
}

impl std::fmt::Debug for StaticCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StaticCredentials")
            .field("access_key_id", &"<redacted>")
            .field("secret_access_key", &"<redacted>")
            .field("session_token", &self.session_token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

#[derive(Clone, Debug)]
pub struct Clients {
    pub lambda: HashMap<String, aws_sdk_lambda::Client>,
    /// The Resource Groups Tagging API, in the same Regions as Lambda.
    pub tagging: HashMap<String, aws_sdk_resourcegroupstagging::Client>,
    pub iam: aws_sdk_iam::Client,
    pub sts: aws_sdk_sts::Client,
    /// In the account's home region: to list the enabled regions.
    pub ec2_home: aws_sdk_ec2::Client,
    /// In each region of the account: the route tables of the functions'
    /// subnets.
    pub ec2: HashMap<String, aws_sdk_ec2::Client>,
    /// In each region of the account: the functions' log groups.
    pub logs: HashMap<String, aws_sdk_cloudwatchlogs::Client>,
    /// In each region of the account: the REST APIs (v1) and HTTP APIs
    /// (v2) the functions' resource policies name.
    pub apigateway: HashMap<String, aws_sdk_apigateway::Client>,
    pub apigatewayv2: HashMap<String, aws_sdk_apigatewayv2::Client>,
    /// Where the retries of zerofn's own wait loops are counted.
    pub metrics: Arc<Metrics>,
    /// The account's change-event queue, in the queue's Region, when the
    /// account declares one.
    pub sqs: Option<aws_sdk_sqs::Client>,
}

impl Clients {
    pub fn lambda(&self, region: &str) -> Result<&aws_sdk_lambda::Client, ProviderError> {
        self.lambda.get(region).ok_or_else(|| not_in_regions(region))
    }

    pub fn ec2(&self, region: &str) -> Result<&aws_sdk_ec2::Client, ProviderError> {
        self.ec2.get(region).ok_or_else(|| not_in_regions(region))
    }

    pub fn logs(&self, region: &str) -> Result<&aws_sdk_cloudwatchlogs::Client, ProviderError> {
        self.logs.get(region).ok_or_else(|| not_in_regions(region))
    }
}

fn not_in_regions(region: &str) -> ProviderError {
    ProviderError::Config(format!(
        "region {region} is not in the account's region or regions; add it to spec.aws.regions"
    ))
}

/// Counts each attempt by operation and outcome (`zerofn_cloud_requests_total`).
#[derive(Debug, Clone)]
pub struct CallCounter(pub Arc<Metrics>);

impl Intercept for CallCounter {
    fn name(&self) -> &'static str {
        "zerofn-call-counter"
    }

    fn read_after_attempt(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), aws_smithy_runtime_api::box_error::BoxError> {
        let op = cfg
            .load::<Metadata>()
            .map(|m| m.name().to_string())
            .unwrap_or_else(|| "unknown".into());
        let outcome = match context.response() {
            None => Outcome::transport_error,
            Some(resp) => {
                let status = resp.status().as_u16();
                let body = resp.body().bytes().unwrap_or_default();
                if status == 429 || (status >= 400 && is_throttling_body(body)) {
                    Outcome::throttled
                } else if status >= 500 {
                    Outcome::server_error
                } else if status >= 400 {
                    let code = resp.headers().get("x-amzn-errortype").unwrap_or_default();
                    Outcome::refused(&op, status == 404 && is_not_found(code, body))
                } else {
                    Outcome::ok
                }
            }
        };
        tracing::debug!(cloud = "aws", op = %op, outcome = ?outcome, "cloud call done");
        self.0.cloud_call("aws", &op, outcome);
        Ok(())
    }

    fn read_before_transmit(
        &self,
        _context: &aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), aws_smithy_runtime_api::box_error::BoxError> {
        // With the "done" line, a call that never returns shows in the log.
        if tracing::enabled!(tracing::Level::DEBUG) {
            let op = cfg.load::<Metadata>().map(|m| m.name()).unwrap_or("unknown");
            tracing::debug!(cloud = "aws", op, "cloud call sent");
        }
        Ok(())
    }
}

/// A connection the endpoint refused is not retried by the STS client,
/// whose GetCallerIdentity is the account's probe: an endpoint that is not
/// listening refuses again a moment later, and the account is then
/// reported unreachable at once, with that reason, instead of after the
/// probe's deadline with none. Throttling and timeouts are still retried.
#[derive(Debug)]
pub struct RefusedIsFinal;

impl ClassifyRetry for RefusedIsFinal {
    fn classify_retry(&self, ctx: &InterceptorContext) -> RetryAction {
        let refused = ctx
            .output_or_error()
            .and_then(Result::err)
            .and_then(|e| e.as_connector_error())
            .is_some_and(|e| crate::providers::retry::connection_refused(e));
        if refused {
            RetryAction::RetryForbidden
        } else {
            RetryAction::NoActionIndicated
        }
    }

    fn name(&self) -> &'static str {
        "zerofn-refused-is-final"
    }
}

/// IAM (query protocol) reports throttling as HTTP 400 with a code in the body.
fn is_throttling_body(body: &[u8]) -> bool {
    let text = String::from_utf8_lossy(&body[..body.len().min(2048)]);
    ["Throttling", "TooManyRequests", "RequestLimitExceeded", "SlowDown"]
        .iter()
        .any(|c| text.contains(c))
}

/// Lambda (`ResourceNotFoundException`, in the `x-amzn-ErrorType` header)
/// and IAM (`NoSuchEntity`, in the XML body) say "absent" with an error
/// code; a 404 without one (a wrong endpoint) is not an answer.
fn is_not_found(header_code: &str, body: &[u8]) -> bool {
    let text = String::from_utf8_lossy(&body[..body.len().min(2048)]);
    ["ResourceNotFoundException", "NoSuchEntity"]
        .iter()
        .any(|c| header_code.starts_with(c) || text.contains(c))
}

/// The region IAM and STS are called in, per partition.
fn global_region(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "cn-north-1"
    } else if region.starts_with("us-gov-") {
        "us-gov-west-1"
    } else {
        "us-east-1"
    }
}

pub fn partition_of(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else {
        "aws"
    }
}

/// The shared SDK configuration of the account: region, retries and
/// timeouts, credentials (the Secret's, or the ambient chain), endpoint, and
/// the role to assume.
async fn base_config(account: &AwsAccount, creds: Option<StaticCredentials>, tuning: &Tuning) -> aws_config::SdkConfig {
    let retry = RetryConfig::standard()
        .with_max_attempts(tuning.max_attempts)
        .with_initial_backoff(tuning.initial_backoff);
    let timeouts = TimeoutConfig::builder()
        .operation_timeout(tuning.call_deadline)
        .operation_attempt_timeout(tuning.attempt_timeout)
        .connect_timeout(Duration::from_secs(5))
        .build();
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .region(aws_config::Region::new(account.region.clone()))
        .retry_config(retry)
        .timeout_config(timeouts);
    if let Some(c) = creds {
        loader = loader.credentials_provider(Credentials::new(
            c.access_key_id,
            c.secret_access_key,
            c.session_token,
            None,
            "zerofn-secret",
        ));
    }
    if let Some(url) = &account.endpoint {
        loader = loader.endpoint_url(url.clone());
    }
    let base = loader.load().await;
    let Some(assume) = &account.assume_role else {
        return base;
    };
    let mut b = aws_config::sts::AssumeRoleProvider::builder(assume.role_arn.clone())
        .session_name(assume.session_name.clone().unwrap_or_else(|| "zerofn".into()))
        .configure(&base);
    if let Some(id) = &assume.external_id {
        b = b.external_id(id.clone());
    }
    let provider = b.build().await;
    base.into_builder()
        .credentials_provider(aws_credential_types::provider::SharedCredentialsProvider::new(provider))
        .build()
}

/// The account's shared configuration in each of its Regions, with the
/// service's endpoint where the account names one.
fn per_region<'a>(
    base: &'a aws_config::SdkConfig,
    regions: &'a [String],
    endpoint: Option<&'a String>,
) -> impl Iterator<Item = (String, aws_config::SdkConfig)> + 'a {
    regions.iter().map(move |r| {
        let mut b = base.to_builder().region(aws_config::Region::new(r.clone()));
        if let Some(url) = endpoint {
            b = b.endpoint_url(url.clone());
        }
        (r.clone(), b.build())
    })
}

pub async fn build(
    account: &AwsAccount,
    creds: Option<StaticCredentials>,
    metrics: Arc<Metrics>,
    tuning: &Tuning,
) -> Clients {
    let base = base_config(account, creds, tuning).await;
    let endpoints = account.endpoints.clone().unwrap_or_default();
    let counter = CallCounter(metrics.clone());

    let mut regions: Vec<String> = vec![account.region.clone()];
    regions.extend(account.regions.iter().cloned());
    regions.sort();
    regions.dedup();
    let tagging = per_region(&base, &regions, endpoints.tagging.as_ref())
        .map(|(r, conf)| {
            let b = aws_sdk_resourcegroupstagging::config::Builder::from(&conf).interceptor(counter.clone());
            (r, aws_sdk_resourcegroupstagging::Client::from_conf(b.build()))
        })
        .collect();
    let lambda = per_region(&base, &regions, endpoints.lambda.as_ref())
        .map(|(r, conf)| {
            let b = aws_sdk_lambda::config::Builder::from(&conf).interceptor(counter.clone());
            (r, aws_sdk_lambda::Client::from_conf(b.build()))
        })
        .collect();
    let ec2 = per_region(&base, &regions, None)
        .map(|(r, conf)| {
            let b = aws_sdk_ec2::config::Builder::from(&conf).interceptor(counter.clone());
            (r, aws_sdk_ec2::Client::from_conf(b.build()))
        })
        .collect();
    let logs = per_region(&base, &regions, None)
        .map(|(r, conf)| {
            let b = aws_sdk_cloudwatchlogs::config::Builder::from(&conf).interceptor(counter.clone());
            (r, aws_sdk_cloudwatchlogs::Client::from_conf(b.build()))
        })
        .collect();
    let apigateway = per_region(&base, &regions, None)
        .map(|(r, conf)| {
            let b = aws_sdk_apigateway::config::Builder::from(&conf).interceptor(counter.clone());
            (r, aws_sdk_apigateway::Client::from_conf(b.build()))
        })
        .collect();
    let apigatewayv2 = per_region(&base, &regions, None)
        .map(|(r, conf)| {
            let b = aws_sdk_apigatewayv2::config::Builder::from(&conf).interceptor(counter.clone());
            (r, aws_sdk_apigatewayv2::Client::from_conf(b.build()))
        })
        .collect();
    let global = aws_config::Region::new(global_region(&account.region));
    let mut iam = aws_sdk_iam::config::Builder::from(&base)
        .region(global.clone())
        .interceptor(counter.clone());
    if let Some(url) = &endpoints.iam {
        iam = iam.endpoint_url(url.clone());
    }
    let ec2_home = aws_sdk_ec2::config::Builder::from(&base)
        .region(aws_config::Region::new(account.region.clone()))
        .interceptor(counter.clone());
    let mut sts = aws_sdk_sts::config::Builder::from(&base)
        .region(aws_config::Region::new(account.region.clone()))
        .interceptor(counter)
        .retry_classifier(RefusedIsFinal);
    if let Some(url) = &endpoints.sts {
        sts = sts.endpoint_url(url.clone());
    }
    let sqs = account
        .events
        .as_ref()
        .map(|events| events_client(&base, account, &events.queue_url, tuning));
    Clients {
        sqs,
        lambda,
        tagging,
        iam: aws_sdk_iam::Client::from_conf(iam.build()),
        sts: aws_sdk_sts::Client::from_conf(sts.build()),
        ec2_home: aws_sdk_ec2::Client::from_conf(ec2_home.build()),
        ec2,
        logs,
        apigateway,
        apigatewayv2,
        metrics,
    }
}

/// SQS for the change-event queue, in the queue's Region. A long poll
/// holds the call open for its whole wait, so an attempt may take that
/// long plus the account's usual attempt timeout. Its calls are not cloud
/// calls of a posture: they are counted by the event metrics, never as
/// reads or writes of the estate.
fn events_client(
    base: &aws_config::SdkConfig,
    account: &AwsAccount,
    queue_url: &str,
    tuning: &Tuning,
) -> aws_sdk_sqs::Client {
    let region = super::feed::queue_region(queue_url).unwrap_or(&account.region);
    let wait = Duration::from_secs(super::feed::WAIT_SECONDS.unsigned_abs().into());
    let timeouts = TimeoutConfig::builder()
        .operation_timeout(tuning.call_deadline.max(wait + tuning.attempt_timeout))
        .operation_attempt_timeout(wait + tuning.attempt_timeout)
        .connect_timeout(Duration::from_secs(5))
        .build();
    let conf = aws_sdk_sqs::config::Builder::from(base)
        .region(aws_config::Region::new(region.to_string()))
        .timeout_config(timeouts);
    aws_sdk_sqs::Client::from_conf(conf.build())
}

/// The error code of a failed call, if the service sent one.
pub fn code<E: ProvideErrorMetadata, R>(e: &SdkError<E, R>) -> Option<&str> {
    match e {
        SdkError::ServiceError(se) => se.err().code(),
        _ => None,
    }
}

pub fn message<E: ProvideErrorMetadata, R>(e: &SdkError<E, R>) -> Option<&str> {
    match e {
        SdkError::ServiceError(se) => se.err().message(),
        _ => None,
    }
}

/// Map an SDK failure of `op` on `target` to a categorised error.
pub fn map_err<E, R>(op: &str, target: &str, e: SdkError<E, R>) -> ProviderError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    let detail = |e: &SdkError<E, R>| {
        let code = code(e).unwrap_or("");
        let msg = message(e).map(str::to_string).unwrap_or_else(|| {
            // The SDK's Display is terse; the source chain says what failed.
            let mut s = e.to_string();
            let mut src = std::error::Error::source(e);
            while let Some(inner) = src {
                s.push_str(": ");
                s.push_str(&inner.to_string());
                src = inner.source();
            }
            s
        });
        format!("{op} {target}: {code}{}{msg}", if code.is_empty() { "" } else { ": " })
    };
    let text = detail(&e);
    match &e {
        SdkError::DispatchFailure(_) => ProviderError::Unreachable(text),
        SdkError::TimeoutError(_) => ProviderError::Timeout(text),
        SdkError::ConstructionFailure(_) => ProviderError::Config(text),
        SdkError::ResponseError(_) => ProviderError::Cloud(text),
        SdkError::ServiceError(_) => match code(&e).unwrap_or("") {
            // API Gateway says NotFoundException.
            "ResourceNotFoundException" | "NoSuchEntity" | "NoSuchEntityException" | "NotFoundException" => {
                ProviderError::NotFound(text)
            }
            "ResourceAlreadyExistsException" => ProviderError::Conflict(text),
            // PreconditionFailed: a RevisionId that is no longer the latest.
            "ResourceConflictException"
            | "ConcurrentModification"
            | "ConcurrentModificationException"
            | "PreconditionFailedException" => ProviderError::Conflict(text),
            "TooManyRequestsException" | "Throttling" | "ThrottlingException" | "RequestLimitExceeded" => {
                ProviderError::Throttled(text)
            }
            "AccessDenied"
            | "AccessDeniedException"
            | "UnrecognizedClientException"
            | "InvalidClientTokenId"
            | "ExpiredToken"
            | "ExpiredTokenException"
            | "SignatureDoesNotMatch"
            | "InvalidSignatureException"
            | "AuthFailure"
            | "UnauthorizedException" => ProviderError::Auth(text),
            _ => ProviderError::Refused(text),
        },
        _ => ProviderError::Cloud(text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_shows_no_credential() {
        let c = StaticCredentials {
            access_key_id: "AKIAEXAMPLEKEYID1234".into(),
            secret_access_key: "wJalrXUtnFEMIexamplesecret".into(),
            session_token: Some("FwoGZXIvYXdzEXAMPLETOKEN".into()),
        };
        let shown = format!("{c:?} {c:#?}");
        for secret in [
            "AKIAEXAMPLEKEYID1234",
            "wJalrXUtnFEMIexamplesecret",
            "FwoGZXIvYXdzEXAMPLETOKEN",
        ] {
            assert!(!shown.contains(secret), "{shown}");
        }
    }

    #[test]
    fn partitions_and_global_regions() {
        assert_eq!(partition_of("eu-west-1"), "aws");
        assert_eq!(partition_of("cn-northwest-1"), "aws-cn");
        assert_eq!(partition_of("us-gov-east-1"), "aws-us-gov");
        assert_eq!(global_region("us-gov-east-1"), "us-gov-west-1");
        assert_eq!(global_region("ap-south-1"), "us-east-1");
    }

    #[test]
    fn iam_throttling_is_recognised_in_the_body() {
        assert!(is_throttling_body(
            b"<ErrorResponse><Error><Code>Throttling</Code></Error></ErrorResponse>"
        ));
        assert!(!is_throttling_body(
            b"<ErrorResponse><Error><Code>NoSuchEntity</Code></Error></ErrorResponse>"
        ));
    }
}
