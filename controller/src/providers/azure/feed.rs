//! The subscription's change events: a Storage queue fed by an Event Grid
//! system topic (README, "Drift in seconds"), read with the official Queue
//! Storage client and the account's own credential.

use crate::events::azure::decode;
use crate::events::{Decoded, Undecodable};
use crate::providers::ProviderError;
use crate::providers::feed::{EventFeed, Received};
use azure_storage_queue::models::QueueClientReceiveMessagesOptions;
use azure_storage_queue::{QueueClient, QueueClientOptions};
use base64::Engine;
use futures::FutureExt;
use futures::future::BoxFuture;
use std::time::{Duration, Instant};

/// Get Messages' largest batch.
const BATCH: i32 = 32;
/// A Storage queue has no long poll: an empty queue is asked again after
/// this pause, for at most `WAIT` per receive.
const POLL: Duration = Duration::from_secs(1);
const WAIT: Duration = Duration::from_secs(20);
/// How long a received message stays invisible to other readers: long
/// enough to requeue its postures and delete it.
const VISIBILITY_SECONDS: i32 = 60;

pub struct AzureFeed {
    pub(super) queue: QueueClient,
    pub(super) url: String,
    /// The client id zerofn acts as (`appid` in the event's claims).
    pub(super) client_id: Option<String>,
}

impl AzureFeed {
    pub(super) fn new(
        url: &str,
        credential: std::sync::Arc<dyn azure_core::credentials::TokenCredential>,
        client_options: azure_core::http::ClientOptions,
        client_id: Option<String>,
    ) -> Result<AzureFeed, ProviderError> {
        let parsed = azure_core::http::Url::parse(url)
            .map_err(|e| ProviderError::Config(format!("azure.events.queue {url}: {e}")))?;
        // The client refuses a credential over anything but https too.
        if parsed.scheme() != "https" {
            return Err(ProviderError::Config(format!(
                "azure.events.queue {url} is not https: zerofn never sends a token over plain HTTP"
            )));
        }
        let options = QueueClientOptions {
            client_options,
            ..Default::default()
        };
        let queue = QueueClient::new(parsed, Some(credential), Some(options))
            .map_err(|e| ProviderError::Config(format!("azure.events.queue {url}: {e}")))?;
        Ok(AzureFeed {
            queue,
            url: url.to_string(),
            client_id,
        })
    }

    async fn receive_batch(&self) -> Result<Vec<Received>, ProviderError> {
        let started = Instant::now();
        loop {
            let options = QueueClientReceiveMessagesOptions {
                number_of_messages: Some(BATCH),
                visibility_timeout: Some(VISIBILITY_SECONDS),
                ..Default::default()
            };
            let answer = self
                .queue
                .receive_messages(Some(options))
                .await
                .map_err(|e| map_err("ReceiveMessages", &self.url, &e))?;
            let list = answer
                .into_model()
                .map_err(|e| ProviderError::Cloud(format!("ReceiveMessages {}: {e}", self.url)))?;
            let received: Vec<Received> = list
                .items
                .unwrap_or_default()
                .into_iter()
                .filter_map(|m| {
                    Some(Received {
                        receipt: receipt(&m.message_id?, &m.pop_receipt?),
                        event: event(m.message_text.as_deref().unwrap_or_default()),
                    })
                })
                .collect();
            if !received.is_empty() || started.elapsed() >= WAIT {
                return Ok(received);
            }
            tokio::time::sleep(POLL).await;
        }
    }

    async fn delete_all(&self, receipts: &[String]) -> Result<(), ProviderError> {
        for r in receipts {
            let Some((id, pop)) = r.split_once('\n') else { continue };
            match self.queue.delete_message(id, pop, None).await {
                Ok(_) => {}
                // Already gone, or made visible again and taken by another
                // reader: it is handled there.
                Err(e) if e.http_status().is_some_and(|s| u16::from(s) == 404) => {}
                Err(e) => return Err(map_err("DeleteMessage", &self.url, &e)),
            }
        }
        Ok(())
    }
}

/// What deletes a message: its id and pop receipt.
fn receipt(id: &str, pop: &str) -> String {
    format!("{id}\n{pop}")
}

/// Event Grid writes each event to a Storage queue Base64-encoded; a queue
/// written by hand may hold the JSON as it is.
fn event(text: &str) -> Result<Decoded, Undecodable> {
    let trimmed = text.trim_start();
    if trimmed.starts_with('{') {
        return decode(trimmed);
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(trimmed)
        .map_err(|e| Undecodable(format!("message text is neither JSON nor Base64: {e}")))?;
    decode(&String::from_utf8_lossy(&bytes))
}

fn map_err(op: &str, url: &str, e: &azure_core::Error) -> ProviderError {
    let msg = format!("{op} {url}: {e}");
    match e.http_status().map(u16::from) {
        Some(401 | 403) => ProviderError::Auth(msg),
        Some(404) => ProviderError::NotFound(msg),
        Some(429 | 503) => ProviderError::Throttled(msg),
        Some(s) if s >= 500 => ProviderError::Unreachable(msg),
        Some(_) => ProviderError::Refused(msg),
        None => match e.kind() {
            azure_core::error::ErrorKind::Io | azure_core::error::ErrorKind::Connection => {
                ProviderError::Unreachable(msg)
            }
            azure_core::error::ErrorKind::Credential => ProviderError::Auth(msg),
            _ => ProviderError::Cloud(msg),
        },
    }
}

impl EventFeed for AzureFeed {
    fn name(&self) -> &str {
        &self.url
    }

    fn receive(&self) -> BoxFuture<'_, Result<Vec<Received>, ProviderError>> {
        self.receive_batch().boxed()
    }

    fn delete<'a>(&'a self, receipts: &'a [String]) -> BoxFuture<'a, Result<(), ProviderError>> {
        self.delete_all(receipts).boxed()
    }

    fn is_own<'a>(&'a self, actor: &'a str) -> BoxFuture<'a, bool> {
        let own = self
            .client_id
            .as_deref()
            .is_some_and(|id| id.eq_ignore_ascii_case(actor));
        async move { own }.boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_is_read_as_event_grid_writes_it_or_as_plain_json() {
        let json = r#"{"eventType":"Microsoft.Resources.ResourceWriteFailure","data":{}}"#;
        let encoded = base64::engine::general_purpose::STANDARD.encode(json);
        for text in [json.to_string(), encoded] {
            assert!(matches!(event(&text), Ok(Decoded::Unwatched(_))), "{text}");
        }
        assert!(event("%%%").is_err());
    }
}
