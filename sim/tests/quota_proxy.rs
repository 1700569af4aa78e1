//! The quota-enforcing front of the AWS stand-in answers a request over its
//! quota as Lambda does: the AWS SDK, whose error parsing is generated from
//! Lambda's own API model, must read `TooManyRequestsException` with every
//! member Lambda sends.

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_credential_types::Credentials;
use aws_sdk_lambda::error::ProvideErrorMetadata;
use aws_sdk_lambda::operation::get_function_url_config::GetFunctionUrlConfigError;
use aws_sdk_lambda::operation::get_policy::GetPolicyError;
use aws_sdk_lambda::types::ThrottleReason;
use zerofn_sim::quota::{Quota, QuotaProxy, Quotas};
use zerofn_sim::scaffold::{Listener, Server, mutating_method};

/// An upstream that answers every request with an empty JSON object.
async fn upstream() -> Server {
    let app = axum::Router::new().fallback(|| async { "{}" });
    Listener::http().await.expect("bind").serve(app, mutating_method)
}

async fn lambda(endpoint: &str) -> aws_sdk_lambda::Client {
    let conf = aws_config::defaults(BehaviorVersion::latest())
        .region(aws_config::Region::new("eu-west-1"))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new("test", "test", None, None, "test"))
        .retry_config(RetryConfig::disabled())
        .load()
        .await;
    aws_sdk_lambda::Client::new(&conf)
}

/// Small quotas, so that a burst of a few requests goes over them however
/// slowly this machine runs.
const SMALL: Quotas = Quotas {
    get_policy: 2,
    get_function: 2,
    control_plane: 2,
};

/// A proxy with [`SMALL`] quotas in front of [`upstream`], and a Lambda
/// client of it; the upstream answers as long as it is held.
async fn proxied() -> (Server, QuotaProxy, aws_sdk_lambda::Client) {
    let upstream = upstream().await;
    let proxy = QuotaProxy::start(upstream.url(), SMALL).await.expect("proxy");
    let client = lambda(&proxy.endpoint()).await;
    (upstream, proxy, client)
}

#[tokio::test]
async fn over_quota_get_policy_is_lambdas_too_many_requests() {
    let (_upstream, proxy, client) = proxied().await;
    let mut throttled = None;
    for _ in 0..50 {
        if let Err(e) = client.get_policy().function_name("f").send().await {
            throttled = Some(e);
            break;
        }
    }
    let err = throttled.expect("a burst over the quota is throttled");
    let raw = err.raw_response().expect("an HTTP answer");
    assert_eq!(raw.status().as_u16(), 429);
    assert_eq!(raw.headers().get("x-amzn-ErrorType"), Some("TooManyRequestsException"));
    assert_eq!(raw.headers().get("Content-Type"), Some("application/json"));
    assert!(raw.headers().get("x-amzn-RequestId").is_some_and(|id| id.len() == 36));
    match err.into_service_error() {
        GetPolicyError::TooManyRequestsException(e) => {
            assert_eq!(e.reason(), Some(&ThrottleReason::CallerRateLimitExceeded));
            assert_eq!(e.r#type(), Some("User"));
            assert_eq!(e.retry_after_seconds(), Some("1"));
            assert_eq!(e.message(), Some("Rate exceeded"));
            assert_eq!(e.code(), Some("TooManyRequestsException"));
        }
        other => panic!("expected TooManyRequestsException, got {other:?}"),
    }
    let counts = proxy.counts();
    assert_eq!(counts.throttled.get(&Quota::GetPolicy), Some(&1));
    assert!(counts.passed.get(&Quota::GetPolicy).is_some_and(|n| *n >= 2));
}

#[tokio::test]
async fn get_function_url_config_is_throttled_by_the_control_plane_quota() {
    let (_upstream, proxy, client) = proxied().await;
    let mut throttled = None;
    for _ in 0..50 {
        // Throttled or not, ListAliases uses up the same quota.
        let _ = client.list_aliases().function_name("f").send().await;
        if let Err(e) = client.get_function_url_config().function_name("f").send().await {
            throttled = Some(e);
            break;
        }
    }
    match throttled
        .expect("a burst over the quota is throttled")
        .into_service_error()
    {
        GetFunctionUrlConfigError::TooManyRequestsException(e) => {
            assert_eq!(e.reason(), Some(&ThrottleReason::CallerRateLimitExceeded));
        }
        other => panic!("expected TooManyRequestsException, got {other:?}"),
    }
    // GetPolicy counts against a quota of its own, still unused.
    client
        .get_policy()
        .function_name("f")
        .send()
        .await
        .expect("GetPolicy is not throttled");
    assert_eq!(proxy.counts().throttled.get(&Quota::GetPolicy), None);
}
