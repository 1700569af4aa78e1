//! Cloud Audit Logs entries as a log sink publishes them to Pub/Sub: the
//! message data is the `LogEntry` (JSON), whose `protoPayload` is an
//! `AuditLog`.

use super::{Decoded, Touched, Undecodable, parse, timestamp};
use crate::api::{FunctionTarget, GcpFunctionRef};
use serde_json::Value;

const AUDIT_LOG: &str = "type.googleapis.com/google.cloud.audit.AuditLog";

/// Decode one entry.
pub fn decode(entry: &str) -> Result<Decoded, Undecodable> {
    let entry = parse(entry)?;
    let audit = &entry["protoPayload"];
    if audit["@type"].as_str() != Some(AUDIT_LOG) {
        return Err(Undecodable(format!(
            "protoPayload @type {:?}, not an AuditLog",
            audit["@type"].as_str().unwrap_or_default()
        )));
    }
    let service = audit["serviceName"].as_str().unwrap_or_default();
    let method = audit["methodName"].as_str().unwrap_or_default();
    let verb = method.rsplit('.').next().unwrap_or_default();
    let failed = audit["status"]["code"].as_i64().is_some_and(|c| c != 0);
    if failed
        || ["Get", "List", "TestIamPermissions"]
            .iter()
            .any(|r| verb.starts_with(r))
    {
        return Ok(Decoded::Unwatched(format!("{service} {method} (read or failed)")));
    }
    let resource = audit["resourceName"].as_str().unwrap_or_default();
    let location = entry["resource"]["labels"]["location"].as_str();
    let mut touched = Touched {
        actor: audit["authenticationInfo"]["principalEmail"]
            .as_str()
            .map(str::to_string),
        time: timestamp(entry["timestamp"].as_str()),
        ..Touched::default()
    };
    match service {
        "cloudfunctions.googleapis.com" | "run.googleapis.com" => {
            touched.functions.extend(function(resource, location));
        }
        "iam.googleapis.com" => match resource.rsplit('/').next().filter(|id| id.contains('@')) {
            Some(email) => touched.identities.push(email.to_string()),
            // A service account named by its unique id: which one the
            // inventory cannot tell.
            None => touched.identity_wide = resource.contains("/serviceAccounts/"),
        },
        "cloudresourcemanager.googleapis.com" if verb == "SetIamPolicy" => {
            let members = delta_members(audit);
            touched.identity_wide = members.is_empty();
            touched.identities = members;
        }
        _ => {}
    }
    if touched.functions.is_empty() && touched.identities.is_empty() && !touched.identity_wide {
        return Ok(Decoded::Unwatched(format!("{service} {method}")));
    }
    Ok(Decoded::Change(touched))
}

/// `projects/P/locations/L/functions/F`, `projects/P/locations/L/services/S`
/// (a 2nd gen function's service bears its name), or Cloud Run's v1 form
/// `namespaces/P/services/S` with the location in the entry's labels.
fn function(resource: &str, location: Option<&str>) -> Option<FunctionTarget> {
    let parts: Vec<&str> = resource.split('/').collect();
    let (location, name) = match parts.as_slice() {
        ["projects", _, "locations", l, "functions" | "services", n, ..] => (*l, *n),
        ["namespaces", _, "services", n, ..] => (location?, *n),
        _ => return None,
    };
    Some(FunctionTarget {
        aws: None,
        azure: None,
        gcp: Some(GcpFunctionRef {
            location: location.to_string(),
            name: name.to_string(),
        }),
    })
}

/// Service accounts whose project bindings the call changed.
fn delta_members(audit: &Value) -> Vec<String> {
    audit["serviceData"]["policyDelta"]["bindingDeltas"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|d| d["member"].as_str()?.strip_prefix("serviceAccount:"))
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A LogEntry of the Admin Activity audit log, shaped as the LogEntry
    /// and AuditLog references describe it.
    fn entry(service: &str, method: &str, resource: &str, extra: Value) -> String {
        let mut audit = serde_json::json!({
            "@type": AUDIT_LOG,
            "status": {},
            "authenticationInfo": {"principalEmail": "someone@example.com"},
            "requestMetadata": {"callerIp": "192.0.2.1"},
            "serviceName": service,
            "methodName": method,
            "resourceName": resource
        });
        if let (Some(a), Some(e)) = (audit.as_object_mut(), extra.as_object()) {
            a.extend(e.clone());
        }
        serde_json::json!({
            "protoPayload": audit,
            "insertId": "abc123",
            "resource": {"type": "cloud_function", "labels": {"project_id": "zerofn-test", "region": "europe-west1"}},
            "timestamp": "2026-12-04T10:00:00.123456Z",
            "severity": "NOTICE",
            "logName": "projects/zerofn-test/logs/cloudaudit.googleapis.com%2Factivity",
            "receiveTimestamp": "2026-12-04T10:00:01Z"
        })
        .to_string()
    }

    fn change(text: &str) -> Touched {
        match decode(text) {
            Ok(Decoded::Change(t)) => t,
            other => panic!("not a change: {other:?}"),
        }
    }

    fn gcp(t: &Touched) -> Vec<(String, String)> {
        t.functions
            .iter()
            .filter_map(|f| f.gcp.as_ref())
            .map(|g| (g.location.clone(), g.name.clone()))
            .collect()
    }

    #[test]
    fn a_function_or_its_service_is_named() {
        for (service, method, resource) in [
            (
                "cloudfunctions.googleapis.com",
                "google.cloud.functions.v2.FunctionService.UpdateFunction",
                "projects/zerofn-test/locations/europe-west1/functions/fn-a",
            ),
            (
                "run.googleapis.com",
                "google.cloud.run.v2.Services.SetIamPolicy",
                "projects/zerofn-test/locations/europe-west1/services/fn-a",
            ),
        ] {
            let t = change(&entry(service, method, resource, Value::Null));
            assert_eq!(gcp(&t), [("europe-west1".to_string(), "fn-a".to_string())]);
            assert_eq!(t.actor.as_deref(), Some("someone@example.com"));
            assert!(t.time.is_some());
        }
        let mut v1: Value = serde_json::from_str(&entry(
            "run.googleapis.com",
            "google.cloud.run.v1.Services.SetIamPolicy",
            "namespaces/zerofn-test/services/fn-a",
            Value::Null,
        ))
        .expect("json");
        v1["resource"]["labels"]["location"] = "europe-west1".into();
        assert_eq!(
            gcp(&change(&v1.to_string())),
            [("europe-west1".to_string(), "fn-a".to_string())]
        );
    }

    #[test]
    fn identity_changes_name_the_service_account_or_say_they_cannot() {
        let t = change(&entry(
            "iam.googleapis.com",
            "google.iam.admin.v1.SetIAMPolicy",
            "projects/-/serviceAccounts/fn-runtime@zerofn-test.iam.gserviceaccount.com",
            Value::Null,
        ));
        assert_eq!(t.identities, ["fn-runtime@zerofn-test.iam.gserviceaccount.com"]);
        let project = entry(
            "cloudresourcemanager.googleapis.com",
            "SetIamPolicy",
            "projects/zerofn-test",
            serde_json::json!({"serviceData": {
                "@type": "type.googleapis.com/google.iam.v1.logging.AuditData",
                "policyDelta": {"bindingDeltas": [
                    {"action": "ADD", "role": "roles/editor", "member": "serviceAccount:fn-runtime@zerofn-test.iam.gserviceaccount.com"},
                    {"action": "ADD", "role": "roles/viewer", "member": "user:someone@example.com"}
                ]}
            }}),
        );
        let t = change(&project);
        assert_eq!(t.identities, ["fn-runtime@zerofn-test.iam.gserviceaccount.com"]);
        assert!(!t.identity_wide);
        let no_delta = change(&entry(
            "cloudresourcemanager.googleapis.com",
            "SetIamPolicy",
            "projects/zerofn-test",
            Value::Null,
        ));
        assert!(
            no_delta.identity_wide,
            "a project policy change without a delta reaches every identity"
        );
    }

    #[test]
    fn reads_failures_and_other_services_are_unwatched() {
        let get = entry(
            "cloudfunctions.googleapis.com",
            "google.cloud.functions.v2.FunctionService.GetFunction",
            "projects/zerofn-test/locations/europe-west1/functions/fn-a",
            Value::Null,
        );
        assert!(matches!(decode(&get), Ok(Decoded::Unwatched(_))));
        let failed = entry(
            "cloudfunctions.googleapis.com",
            "google.cloud.functions.v2.FunctionService.UpdateFunction",
            "projects/zerofn-test/locations/europe-west1/functions/fn-a",
            serde_json::json!({"status": {"code": 7, "message": "denied"}}),
        );
        assert!(matches!(decode(&failed), Ok(Decoded::Unwatched(_))));
        let storage = entry(
            "storage.googleapis.com",
            "storage.setIamPermissions",
            "projects/_/buckets/b",
            Value::Null,
        );
        assert!(matches!(decode(&storage), Ok(Decoded::Unwatched(_))));
        assert!(decode(r#"{"textPayload":"hello"}"#).is_err());
    }
}
