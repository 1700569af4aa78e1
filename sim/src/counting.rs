//! A loopback proxy in front of the AWS stand-in that counts every request
//! by service and operation, and passes everything through untouched: the
//! same tally for any client (zerofn, boto3), whatever it reports itself.
//! [`crate::quota::QuotaProxy`] counts Lambda only, by quota; this counts
//! every service, by operation.
//!
//! A test can also have one operation answered by the proxy instead of the
//! stand-in ([`CountingProxy::answer`]): a tagging index that lags behind
//! a TagResource, or an API the caller's policy denies.

use crate::scaffold::{Listener, Server, lock, mutating_method};
use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

type Tally = Arc<Mutex<BTreeMap<String, u64>>>;
type Answers = Arc<Mutex<BTreeMap<String, Canned>>>;

/// A response the proxy sends itself, in the operation's protocol.
#[derive(Clone, Debug)]
pub struct Canned {
    pub status: u16,
    pub content_type: &'static str,
    pub body: String,
}

impl Canned {
    /// An AWS JSON 1.1 answer (the tagging API's protocol).
    pub fn json(status: u16, body: serde_json::Value) -> Canned {
        Canned {
            status,
            content_type: "application/x-amz-json-1.1",
            body: body.to_string(),
        }
    }
}

#[derive(Clone)]
struct Shared {
    upstream: SocketAddr,
    tally: Tally,
    answers: Answers,
}

/// Counts what passes through; stops when dropped.
pub struct CountingProxy {
    server: Server,
    tally: Tally,
    answers: Answers,
}

impl CountingProxy {
    /// Serve on a free port of 127.0.0.1, forwarding to `upstream` (an
    /// `http://127.0.0.1:PORT` endpoint).
    pub async fn start(upstream: &str) -> std::io::Result<CountingProxy> {
        let upstream: SocketAddr = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .parse()
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        let (tally, answers) = (Tally::default(), Answers::default());
        let app = Router::new().fallback(handle).with_state(Shared {
            upstream,
            tally: tally.clone(),
            answers: answers.clone(),
        });
        let server = Listener::http().await?.serve(app, mutating_method);
        Ok(CountingProxy { server, tally, answers })
    }

    /// From now on, answer `operation` (as [`operation`] names it, e.g.
    /// `tagging GetResources`) with `canned` instead of forwarding it. It
    /// is still counted.
    pub fn answer(&self, operation: &str, canned: Canned) {
        lock(&self.answers).insert(operation.to_string(), canned);
    }

    /// `http://127.0.0.1:PORT`: the endpoint to give the clients.
    pub fn endpoint(&self) -> String {
        self.server.url().to_string()
    }

    /// Requests so far by `service operation` (see [`operation`]).
    pub fn counts(&self) -> BTreeMap<String, u64> {
        lock(&self.tally).clone()
    }

    /// Forget the counts so far; the journal too (it would only grow).
    pub fn reset(&self) {
        lock(&self.tally).clear();
        self.server.journal().clear();
    }
}

/// `service operation` of a SigV4-signed request: the service from the
/// credential scope; the operation from `X-Amz-Target` (JSON protocols),
/// the `Action` form field (query protocols: IAM, STS, EC2), or else the
/// method and the path with its resource names replaced by `*` (REST
/// protocols: Lambda), e.g. `lambda GET /2015-03-31/functions/*/policy`.
pub fn operation(headers: &axum::http::HeaderMap, method: &str, path: &str, body: &[u8]) -> String {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let service = header("authorization")
        .and_then(|auth| auth.split("Credential=").nth(1))
        .and_then(|c| c.split([',', ' ']).next())
        .and_then(|c| c.split('/').nth(3))
        .unwrap_or("unsigned");
    if let Some(target) = header("x-amz-target") {
        let op = target.rsplit('.').next().unwrap_or(target);
        return format!("{service} {op}");
    }
    let action = std::str::from_utf8(body).ok().and_then(|b| {
        b.split('&')
            .find_map(|pair| pair.strip_prefix("Action="))
            .map(str::to_string)
    });
    if let Some(action) = action {
        return format!("{service} {action}");
    }
    format!("{service} {method} {}", path_shape(path))
}

/// The path with the names after `functions` and `tags` (function names,
/// ARNs) replaced by `*`.
fn path_shape(path: &str) -> String {
    let mut out = Vec::new();
    let mut name_next = false;
    for segment in path.split('/') {
        out.push(if name_next { "*" } else { segment });
        name_next = matches!(segment, "functions" | "tags");
    }
    out.join("/")
}

async fn handle(State(shared): State<Shared>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let bytes = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(b) => b,
        Err(e) => return status(StatusCode::BAD_REQUEST, format!("counting proxy: body: {e}")),
    };
    let op = operation(&parts.headers, parts.method.as_str(), parts.uri.path(), &bytes);
    *lock(&shared.tally).entry(op.clone()).or_default() += 1;
    if let Some(canned) = lock(&shared.answers).get(&op).cloned() {
        return canned_response(canned);
    }
    let req = Request::from_parts(parts, Body::from(bytes));
    forward(shared.upstream, req)
        .await
        .unwrap_or_else(|e| status(StatusCode::BAD_GATEWAY, format!("counting proxy: upstream: {e}")))
}

fn canned_response(canned: Canned) -> Response {
    let mut response = Response::new(Body::from(canned.body));
    *response.status_mut() = StatusCode::from_u16(canned.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let headers = response.headers_mut();
    headers.insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static(canned.content_type),
    );
    headers.insert(
        "x-amzn-requestid",
        axum::http::HeaderValue::from_static("zerofn-sim-canned"),
    );
    response
}

fn status(code: StatusCode, text: String) -> Response {
    let mut response = Response::new(Body::from(text));
    *response.status_mut() = code;
    response
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
    use axum::http::HeaderMap;

    fn signed(service: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        let auth = format!(
            "AWS4-HMAC-SHA256 Credential=test/20260101/eu-west-1/{service}/aws4_request, SignedHeaders=host, Signature=0"
        );
        h.insert("authorization", auth.parse().expect("header"));
        h
    }

    #[test]
    fn operations_are_named_by_each_protocol() {
        let lambda = signed("lambda");
        assert_eq!(
            operation(&lambda, "GET", "/2015-03-31/functions/f-1/policy", b""),
            "lambda GET /2015-03-31/functions/*/policy"
        );
        assert_eq!(
            operation(
                &lambda,
                "GET",
                "/2017-03-31/tags/arn:aws:lambda:eu-west-1:0:function:f",
                b""
            ),
            "lambda GET /2017-03-31/tags/*"
        );
        assert_eq!(
            operation(
                &signed("iam"),
                "POST",
                "/",
                b"Action=GetAccountAuthorizationDetails&Version=2010-05-08"
            ),
            "iam GetAccountAuthorizationDetails"
        );
        let mut tagging = signed("tagging");
        tagging.insert(
            "x-amz-target",
            "ResourceGroupsTaggingAPI_20170126.GetResources"
                .parse()
                .expect("header"),
        );
        assert_eq!(operation(&tagging, "POST", "/", b"{}"), "tagging GetResources");
        assert_eq!(operation(&HeaderMap::new(), "GET", "/", b""), "unsigned GET /");
    }

    /// A canned answer goes out with its status, its protocol's content
    /// type and a request id, without reaching the stand-in (here nothing
    /// listens upstream), and is still counted.
    #[tokio::test]
    async fn an_answered_operation_never_reaches_the_stand_in() {
        let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
        let upstream = format!("http://{}", closed.local_addr().expect("address"));
        drop(closed);
        let proxy = CountingProxy::start(&upstream).await.expect("proxy");
        let denied = serde_json::json!({"__type": "AccessDeniedException", "message": "denied"});
        proxy.answer("tagging GetResources", Canned::json(400, denied.clone()));
        let http = reqwest::Client::new();
        let send = |target: &'static str| {
            http.post(proxy.endpoint())
                .header("authorization", "AWS4-HMAC-SHA256 Credential=test/20260101/eu-west-1/tagging/aws4_request, SignedHeaders=host, Signature=0")
                .header("x-amz-target", target)
                .body("{}")
                .send()
        };
        let answered = send("ResourceGroupsTaggingAPI_20170126.GetResources")
            .await
            .expect("answered");
        assert_eq!(answered.status().as_u16(), 400);
        assert_eq!(answered.headers()["content-type"], "application/x-amz-json-1.1");
        assert!(answered.headers().contains_key("x-amzn-requestid"));
        assert_eq!(answered.json::<serde_json::Value>().await.expect("JSON"), denied);
        let forwarded = send("ResourceGroupsTaggingAPI_20170126.GetTagKeys")
            .await
            .expect("relayed");
        assert_eq!(forwarded.status().as_u16(), 502, "forwarded to the closed upstream");
        let counts = proxy.counts();
        assert_eq!(counts.get("tagging GetResources"), Some(&1));
        assert_eq!(counts.get("tagging GetTagKeys"), Some(&1));
    }
}
