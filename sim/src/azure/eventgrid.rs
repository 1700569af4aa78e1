//! Azure Resource Manager events as an Event Grid system topic on a
//! subscription delivers them to a Storage queue: what a test puts on a
//! queue to play the topic.

use base64::Engine;
use serde_json::json;

/// One `Microsoft.Resources.ResourceWriteSuccess` event (Event Grid schema,
/// as the "Azure subscription as an Event Grid source" reference shows it)
/// for `operation` on `resource_uri` by the app `appid`, Base64-encoded as
/// Event Grid writes it to a queue.
pub fn resource_write_event(subscription: &str, resource_uri: &str, operation: &str, appid: &str) -> String {
    let event = json!({
        "subject": resource_uri,
        "eventType": "Microsoft.Resources.ResourceWriteSuccess",
        "eventTime": jiff::Timestamp::now().to_string(),
        "id": format!("{:08x}-0000-4000-8000-{:012x}", fastrand::u32(..), fastrand::u64(..) & 0xffff_ffff_ffff),
        "data": {
            "authorization": {"scope": resource_uri, "action": operation, "evidence": {"role": "Contributor"}},
            "claims": {"appid": appid},
            "correlationId": format!("{:032x}", fastrand::u128(..)),
            "resourceProvider": operation.split('/').next().unwrap_or_default(),
            "resourceUri": resource_uri,
            "operationName": operation,
            "status": "Succeeded",
            "subscriptionId": subscription
        },
        "dataVersion": "2",
        "metadataVersion": "1",
        "topic": format!("/subscriptions/{subscription}")
    });
    base64::engine::general_purpose::STANDARD.encode(event.to_string())
}
