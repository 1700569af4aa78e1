//! The account's change events: an SQS queue fed by an EventBridge rule on
//! CloudTrail management events (README, "Drift in seconds").

use super::client::map_err;
use crate::events::aws::decode;
use crate::providers::ProviderError;
use crate::providers::feed::{EventFeed, Received};
use futures::FutureExt;
use futures::future::BoxFuture;
use tokio::sync::OnceCell;

/// SQS's longest long poll, and its largest batch.
pub(super) const WAIT_SECONDS: i32 = 20;
const BATCH: i32 = 10;

pub struct AwsFeed {
    pub(super) sqs: aws_sdk_sqs::Client,
    pub(super) sts: aws_sdk_sts::Client,
    pub(super) queue_url: String,
    /// The Region a function named without an ARN is in.
    pub(super) home_region: String,
    /// The caller's ARN, as CloudTrail's `userIdentity.arn` shows it.
    pub(super) caller: OnceCell<Option<String>>,
}

/// The Region of a queue URL (`https://sqs.<region>.amazonaws.com/...`);
/// None for a stand-in's URL.
pub fn queue_region(url: &str) -> Option<&str> {
    let host = url.strip_prefix("https://sqs.")?;
    let (region, _) = host.split_once(".amazonaws.com")?;
    Some(region)
}

/// An assumed role's sessions (`.../assumed-role/<role>/<session>`) all
/// belong to the role: credentials refreshed under a new session name are
/// still zerofn.
fn principal(arn: &str) -> &str {
    match arn.find(":assumed-role/") {
        Some(at) => {
            let rest = &arn[at + ":assumed-role/".len()..];
            match rest.find('/') {
                Some(slash) => &arn[..at + ":assumed-role/".len() + slash + 1],
                None => arn,
            }
        }
        None => arn,
    }
}

impl AwsFeed {
    async fn receive_batch(&self) -> Result<Vec<Received>, ProviderError> {
        let out = self
            .sqs
            .receive_message()
            .queue_url(&self.queue_url)
            .max_number_of_messages(BATCH)
            .wait_time_seconds(WAIT_SECONDS)
            .send()
            .await
            .map_err(|e| map_err("ReceiveMessage", &self.queue_url, e))?;
        Ok(out
            .messages()
            .iter()
            .filter_map(|m| {
                Some(Received {
                    receipt: m.receipt_handle()?.to_string(),
                    event: decode(m.body().unwrap_or_default(), &self.home_region),
                })
            })
            .collect())
    }

    async fn delete_batch(&self, receipts: &[String]) -> Result<(), ProviderError> {
        for chunk in receipts.chunks(BATCH as usize) {
            let entries = chunk
                .iter()
                .enumerate()
                .map(|(i, r)| {
                    aws_sdk_sqs::types::DeleteMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(r)
                        .build()
                        .map_err(|e| ProviderError::Cloud(format!("DeleteMessageBatch entry: {e}")))
                })
                .collect::<Result<Vec<_>, _>>()?;
            let out = self
                .sqs
                .delete_message_batch()
                .queue_url(&self.queue_url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| map_err("DeleteMessageBatch", &self.queue_url, e))?;
            // A message not deleted comes back after its visibility timeout
            // and is handled again: harmless, but worth a line.
            for failed in out.failed() {
                tracing::debug!(queue = %self.queue_url, code = %failed.code(), "a message was not deleted");
            }
        }
        Ok(())
    }

    async fn caller(&self) -> Option<&str> {
        self.caller
            .get_or_init(|| async {
                match self.sts.get_caller_identity().send().await {
                    Ok(who) => who.arn().map(|a| principal(a).to_string()),
                    Err(e) => {
                        tracing::debug!(error = %map_err("GetCallerIdentity", "sts", e), "own identity unknown");
                        None
                    }
                }
            })
            .await
            .as_deref()
    }
}

impl EventFeed for AwsFeed {
    fn name(&self) -> &str {
        &self.queue_url
    }

    fn receive(&self) -> BoxFuture<'_, Result<Vec<Received>, ProviderError>> {
        self.receive_batch().boxed()
    }

    fn delete<'a>(&'a self, receipts: &'a [String]) -> BoxFuture<'a, Result<(), ProviderError>> {
        self.delete_batch(receipts).boxed()
    }

    fn is_own<'a>(&'a self, actor: &'a str) -> BoxFuture<'a, bool> {
        async move { self.caller().await.is_some_and(|own| principal(actor) == own) }.boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_queue_url_names_its_region() {
        assert_eq!(
            queue_region("https://sqs.eu-west-1.amazonaws.com/123456789012/zerofn-events"),
            Some("eu-west-1")
        );
        assert_eq!(queue_region("http://127.0.0.1:4566/000000000000/zerofn-events"), None);
    }

    #[test]
    fn every_session_of_a_role_is_the_role() {
        let a = "arn:aws:sts::123456789012:assumed-role/zerofn-controller/botocore-session-1";
        let b = "arn:aws:sts::123456789012:assumed-role/zerofn-controller/botocore-session-2";
        let other = "arn:aws:sts::123456789012:assumed-role/zerofn-controller-2/s";
        assert_eq!(principal(a), principal(b));
        assert_ne!(principal(a), principal(other));
        assert_eq!(
            principal("arn:aws:iam::000000000000:root"),
            "arn:aws:iam::000000000000:root"
        );
    }
}
