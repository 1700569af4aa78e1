//! Lambda's API request quotas, enforced in front of the AWS stand-in.
//!
//! LocalStack enforces no request quota, so a test against it cannot show
//! that zerofn stays under them. [`QuotaProxy`] forwards every request to
//! LocalStack and throttles Lambda's read and write API the way AWS documents
//! it in "Lambda quotas" (API requests, per account and Region, none of them
//! adjustable):
//!
//! - GetPolicy: 15 requests per second;
//! - GetFunction: 100 requests per second;
//! - the rest of the control plane (GetFunctionUrlConfig,
//!   ListFunctionUrlConfigs, ListAliases, ListTags, every write, ...): 15
//!   requests per second across all of those APIs, not per API.
//!
//! Invocations are limited by concurrency, not by these quotas, and other
//! services (IAM, STS, EC2) are passed through untouched. A request over its
//! quota gets Lambda's `TooManyRequestsException` as the Lambda API reference
//! describes it: HTTP 429, `x-amzn-ErrorType`, `x-amzn-RequestId`, the
//! `retryAfterSeconds` member in the `Retry-After` header, and a JSON body
//! with `Type`, `message` and `Reason` (`CallerRateLimitExceeded`).

use crate::scaffold::{Listener, Server, lock, mutating_method};
use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Requests per second per account and Region, by quota.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Quotas {
    pub get_policy: usize,
    pub get_function: usize,
    pub control_plane: usize,
}

impl Default for Quotas {
    /// The documented defaults.
    fn default() -> Self {
        Quotas {
            get_policy: 15,
            get_function: 100,
            control_plane: 15,
        }
    }
}

/// Which quota a Lambda request counts against.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Quota {
    GetPolicy,
    GetFunction,
    ControlPlane,
}

/// What the proxy let through and what it throttled, by quota.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub passed: BTreeMap<Quota, u64>,
    pub throttled: BTreeMap<Quota, u64>,
}

impl Counts {
    pub fn throttled_total(&self) -> u64 {
        self.throttled.values().sum()
    }
}

/// The requests each quota admitted in the last second, per Region: a
/// sliding window, so no second anywhere holds more than the quota.
struct Windows {
    quotas: Quotas,
    admitted: HashMap<(String, Quota), VecDeque<Instant>>,
    counts: Counts,
}

impl Windows {
    fn admit(&mut self, region: &str, quota: Quota, now: Instant) -> bool {
        let limit = match quota {
            Quota::GetPolicy => self.quotas.get_policy,
            Quota::GetFunction => self.quotas.get_function,
            Quota::ControlPlane => self.quotas.control_plane,
        };
        let window = self.admitted.entry((region.to_string(), quota)).or_default();
        while window
            .front()
            .is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(1))
        {
            window.pop_front();
        }
        let admitted = window.len() < limit;
        if admitted {
            window.push_back(now);
        }
        let tally = if admitted {
            &mut self.counts.passed
        } else {
            &mut self.counts.throttled
        };
        *tally.entry(quota).or_default() += 1;
        admitted
    }
}

#[derive(Clone)]
struct Shared {
    upstream: SocketAddr,
    windows: Arc<Mutex<Windows>>,
}

/// A loopback HTTP proxy to the AWS stand-in that enforces [`Quotas`]; it
/// stops when dropped.
pub struct QuotaProxy {
    server: Server,
    windows: Arc<Mutex<Windows>>,
}

impl QuotaProxy {
    /// Serve on a free port of 127.0.0.1, forwarding to `upstream` (an
    /// `http://127.0.0.1:PORT` endpoint).
    pub async fn start(upstream: &str, quotas: Quotas) -> std::io::Result<QuotaProxy> {
        let upstream: SocketAddr = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .parse()
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        let windows = Arc::new(Mutex::new(Windows {
            quotas,
            admitted: HashMap::new(),
            counts: Counts::default(),
        }));
        let app = Router::new().fallback(handle).with_state(Shared {
            upstream,
            windows: windows.clone(),
        });
        let server = Listener::http().await?.serve(app, mutating_method);
        Ok(QuotaProxy { server, windows })
    }

    /// `http://127.0.0.1:PORT`: the endpoint to give the clients.
    pub fn endpoint(&self) -> String {
        self.server.url().to_string()
    }

    pub fn counts(&self) -> Counts {
        lock(&self.windows).counts.clone()
    }
}

/// The service and Region a SigV4-signed request is for, from the
/// credential scope of its `Authorization` header
/// (`Credential=AKID/DATE/REGION/SERVICE/aws4_request`).
fn scope(req: &Request) -> Option<(String, String)> {
    let auth = req.headers().get("authorization")?.to_str().ok()?;
    let credential = auth.split("Credential=").nth(1)?.split([',', ' ']).next()?;
    let mut parts = credential.split('/').skip(2);
    let region = parts.next()?.to_string();
    let service = parts.next()?.to_string();
    Some((service, region))
}

/// The quota a Lambda REST request counts against, from its method and path;
/// `None` for invocations.
pub fn quota_of(method: &str, path: &str) -> Option<Quota> {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    match (method, segments.as_slice()) {
        ("POST", [_, "functions", _, "invocations"]) | ("POST", [_, "functions", _, "invoke-async", ..]) => None,
        ("GET", [_, "functions", _, "policy"]) => Some(Quota::GetPolicy),
        ("GET", [_, "functions", _]) => Some(Quota::GetFunction),
        _ => Some(Quota::ControlPlane),
    }
}

/// Lambda's answer to a request over its quota.
pub fn too_many_requests() -> Response {
    let body = serde_json::json!({
        "Type": "User",
        "message": "Rate exceeded",
        "Reason": "CallerRateLimitExceeded",
    });
    let mut response = Response::new(Body::from(body.to_string()));
    *response.status_mut() = StatusCode::TOO_MANY_REQUESTS;
    let request_id = format!(
        "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
        fastrand::u32(..),
        fastrand::u16(..),
        fastrand::u16(..0x1000),
        fastrand::u16(..0x1000),
        fastrand::u64(..1 << 48)
    );
    let headers = response.headers_mut();
    headers.insert("content-type", HeaderValue::from_static("application/json"));
    headers.insert("x-amzn-errortype", HeaderValue::from_static("TooManyRequestsException"));
    headers.insert("retry-after", HeaderValue::from_static("1"));
    if let Ok(id) = HeaderValue::from_str(&request_id) {
        headers.insert("x-amzn-requestid", id);
    }
    response
}

async fn handle(State(shared): State<Shared>, req: Request) -> Response {
    if let Some((service, region)) = scope(&req)
        && service == "lambda"
        && let Some(quota) = quota_of(req.method().as_str(), req.uri().path())
    {
        let admitted = lock(&shared.windows).admit(&region, quota, Instant::now());
        if !admitted {
            return too_many_requests();
        }
    }
    forward(shared.upstream, req).await.unwrap_or_else(|e| {
        let mut response = Response::new(Body::from(format!("quota proxy: upstream: {e}")));
        *response.status_mut() = StatusCode::BAD_GATEWAY;
        response
    })
}

/// Send `req` to the stand-in on a connection of its own and relay the answer.
async fn forward(upstream: SocketAddr, req: Request) -> Result<Response, Box<dyn std::error::Error + Send + Sync>> {
    let stream = tokio::net::TcpStream::connect(upstream).await?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    let response = sender.send_request(req).await?;
    Ok(response.map(Body::new))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_count_against_the_documented_quota() {
        assert_eq!(
            quota_of("GET", "/2015-03-31/functions/f/policy"),
            Some(Quota::GetPolicy)
        );
        assert_eq!(quota_of("GET", "/2015-03-31/functions/f"), Some(Quota::GetFunction));
        for (method, path) in [
            ("GET", "/2021-10-31/functions/f/url"),
            ("GET", "/2021-10-31/functions/f/urls"),
            ("GET", "/2015-03-31/functions/f/aliases"),
            ("GET", "/2015-03-31/functions/f/configuration"),
            ("PUT", "/2015-03-31/functions/f/configuration"),
            ("DELETE", "/2015-03-31/functions/f/policy/sid"),
            ("GET", "/2017-03-31/tags/arn"),
            ("GET", "/2015-03-31/functions/"),
        ] {
            assert_eq!(quota_of(method, path), Some(Quota::ControlPlane), "{method} {path}");
        }
        assert_eq!(quota_of("POST", "/2015-03-31/functions/f/invocations"), None);
    }

    #[test]
    fn a_window_admits_the_quota_per_second_and_region() {
        let mut w = Windows {
            quotas: Quotas::default(),
            admitted: HashMap::new(),
            counts: Counts::default(),
        };
        let t0 = Instant::now();
        let admitted = (0..20)
            .filter(|_| w.admit("eu-west-1", Quota::ControlPlane, t0))
            .count();
        assert_eq!(admitted, 15);
        assert!(
            w.admit("eu-west-1", Quota::GetPolicy, t0),
            "GetPolicy has a quota of its own"
        );
        assert!(w.admit("us-east-1", Quota::ControlPlane, t0), "quotas are per Region");
        assert!(!w.admit("eu-west-1", Quota::ControlPlane, t0 + Duration::from_millis(999)));
        assert!(w.admit("eu-west-1", Quota::ControlPlane, t0 + Duration::from_secs(1)));
        assert_eq!(w.counts.throttled.get(&Quota::ControlPlane), Some(&6));
    }
}
