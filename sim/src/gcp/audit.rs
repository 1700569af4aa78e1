//! Cloud Audit Logs entries as a log sink publishes them to Pub/Sub: what a
//! test publishes to a subscription to play the sink.

use serde_json::json;

/// An Admin Activity `LogEntry` whose `protoPayload` is an `AuditLog`, as
/// the LogEntry and AuditLog references describe them: `service` made
/// `method` on `resource`, called by `principal`.
pub fn audit_entry(project: &str, service: &str, method: &str, resource: &str, principal: &str) -> String {
    let now = jiff::Timestamp::now().to_string();
    json!({
        "protoPayload": {
            "@type": "type.googleapis.com/google.cloud.audit.AuditLog",
            "status": {},
            "authenticationInfo": {"principalEmail": principal},
            "requestMetadata": {"callerIp": "192.0.2.1", "callerSuppliedUserAgent": "google-cloud-sdk"},
            "serviceName": service,
            "methodName": method,
            "resourceName": resource
        },
        "insertId": format!("{:016x}", fastrand::u64(..)),
        "resource": {"type": "audited_resource", "labels": {"project_id": project, "service": service}},
        "timestamp": now,
        "severity": "NOTICE",
        "logName": format!("projects/{project}/logs/cloudaudit.googleapis.com%2Factivity"),
        "receiveTimestamp": now
    })
    .to_string()
}
