//! The project's change events: a Pub/Sub subscription fed by a log sink of
//! Cloud Audit Logs (README, "Drift in seconds"), pulled over Pub/Sub's REST
//! API with the account's own credentials. (The google-cloud-rust Pub/Sub
//! client pulls over gRPC streams; the REST pull is one request per batch.)

use crate::events::gcp::decode;
use crate::events::{Decoded, Undecodable};
use crate::providers::ProviderError;
use crate::providers::feed::{EventFeed, Received};
use base64::Engine;
use futures::FutureExt;
use futures::future::BoxFuture;
use google_cloud_auth::credentials::{CacheableResource, Credentials};
use serde_json::{Value, json};

pub const PUBLIC_ENDPOINT: &str = "https://pubsub.googleapis.com";
/// One pull's timeout: Pub/Sub holds a pull open for a while when the
/// subscription is empty.
pub const PULL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(50);
const BATCH: u32 = 100;

pub struct GcpFeed {
    pub(super) http: reqwest::Client,
    pub(super) credentials: Credentials,
    /// `https://pubsub.googleapis.com/v1/projects/P/subscriptions/S`.
    pub(super) url: String,
    pub(super) subscription: String,
    /// The service account zerofn acts as (its key's `client_email`).
    pub(super) own: Option<String>,
}

impl GcpFeed {
    pub(super) fn new(
        endpoint: Option<&str>,
        subscription: &str,
        credentials: Credentials,
        http: reqwest::Client,
        own: Option<String>,
    ) -> GcpFeed {
        let base = endpoint.unwrap_or(PUBLIC_ENDPOINT).trim_end_matches('/');
        GcpFeed {
            http,
            credentials,
            url: format!("{base}/v1/{subscription}"),
            subscription: subscription.to_string(),
            own,
        }
    }

    async fn call(&self, verb: &str, body: Value) -> Result<Value, ProviderError> {
        let op = format!("{verb} {}", self.subscription);
        let headers = match self.credentials.headers(http::Extensions::new()).await {
            Ok(CacheableResource::New { data, .. }) => data,
            Ok(CacheableResource::NotModified) => http::HeaderMap::new(),
            Err(e) => return Err(ProviderError::Auth(format!("{op}: credentials: {e}"))),
        };
        let answer = self
            .http
            .post(format!("{}:{verb}", self.url))
            .headers(headers)
            .json(&body)
            .send()
            .await
            .map_err(|e| {
                if e.is_timeout() {
                    ProviderError::Timeout(format!("{op}: {e}"))
                } else {
                    ProviderError::Unreachable(format!("{op}: {e}"))
                }
            })?;
        let status = answer.status().as_u16();
        let text = answer
            .text()
            .await
            .map_err(|e| ProviderError::Unreachable(format!("{op}: {e}")))?;
        let value: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if status == 200 {
            return Ok(value);
        }
        let msg = format!(
            "{op}: {status} {}: {}",
            value["error"]["status"].as_str().unwrap_or_default(),
            value["error"]["message"].as_str().unwrap_or(&text)
        );
        Err(match status {
            401 | 403 => ProviderError::Auth(msg),
            404 => ProviderError::NotFound(msg),
            429 => ProviderError::Throttled(msg),
            s if s >= 500 => ProviderError::Unreachable(msg),
            _ => ProviderError::Refused(msg),
        })
    }

    async fn pull(&self) -> Result<Vec<Received>, ProviderError> {
        // Without returnImmediately the server holds the pull until
        // messages arrive or its own wait ends.
        let answer = self.call("pull", json!({ "maxMessages": BATCH })).await?;
        Ok(answer["receivedMessages"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|m| {
                Some(Received {
                    receipt: m["ackId"].as_str()?.to_string(),
                    event: entry(m["message"]["data"].as_str().unwrap_or_default()),
                })
            })
            .collect())
    }

    async fn acknowledge(&self, receipts: &[String]) -> Result<(), ProviderError> {
        for chunk in receipts.chunks(BATCH as usize) {
            self.call("acknowledge", json!({ "ackIds": chunk })).await?;
        }
        Ok(())
    }
}

/// A PubsubMessage's data (Base64) holds the LogEntry.
fn entry(data: &str) -> Result<Decoded, Undecodable> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(data)
        .map_err(|e| Undecodable(format!("message data is not Base64: {e}")))?;
    decode(&String::from_utf8_lossy(&bytes))
}

impl EventFeed for GcpFeed {
    fn name(&self) -> &str {
        &self.subscription
    }

    fn receive(&self) -> BoxFuture<'_, Result<Vec<Received>, ProviderError>> {
        self.pull().boxed()
    }

    fn delete<'a>(&'a self, receipts: &'a [String]) -> BoxFuture<'a, Result<(), ProviderError>> {
        self.acknowledge(receipts).boxed()
    }

    fn is_own<'a>(&'a self, actor: &'a str) -> BoxFuture<'a, bool> {
        let own = self.own.as_deref().is_some_and(|e| e.eq_ignore_ascii_case(actor));
        async move { own }.boxed()
    }
}
