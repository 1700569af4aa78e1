//! Azure Resource Manager events as an Event Grid system topic on the
//! subscription delivers them to a Storage queue: the message text is one
//! event (Event Grid schema or CloudEvents 1.0), Base64-encoded by Event
//! Grid and decoded by the feed.

use super::{Decoded, Touched, Undecodable, parse, timestamp};
use crate::api::{AzureFunctionRef, FunctionTarget};

const WATCHED: [&str; 3] = [
    "Microsoft.Resources.ResourceWriteSuccess",
    "Microsoft.Resources.ResourceDeleteSuccess",
    "Microsoft.Resources.ResourceActionSuccess",
];

/// Decode one event.
pub fn decode(text: &str) -> Result<Decoded, Undecodable> {
    let event = parse(text)?;
    let kind = event["eventType"]
        .as_str()
        .or(event["type"].as_str())
        .unwrap_or_default();
    if kind.is_empty() {
        return Err(Undecodable("neither eventType nor type is set".into()));
    }
    if !WATCHED.contains(&kind) {
        return Ok(Decoded::Unwatched(kind.to_string()));
    }
    let data = &event["data"];
    let uri = data["resourceUri"]
        .as_str()
        .or(event["subject"].as_str())
        .unwrap_or_default();
    let operation = data["operationName"].as_str().unwrap_or_default();
    let mut touched = Touched {
        actor: data["claims"]["appid"].as_str().map(str::to_string),
        time: timestamp(event["eventTime"].as_str().or(event["time"].as_str())),
        ..Touched::default()
    };
    if let Some(f) = function(uri) {
        touched.functions.push(f);
    } else if prefix_eq(operation, "Microsoft.Authorization/") {
        // A role assignment names its principal only by object id, which
        // the inventory does not hold: every identity may be reached.
        touched.identity_wide = true;
    } else {
        return Ok(Decoded::Unwatched(format!("{kind} {operation}")));
    }
    Ok(Decoded::Change(touched))
}

fn prefix_eq(text: &str, prefix: &str) -> bool {
    text.get(..prefix.len()).is_some_and(|p| p.eq_ignore_ascii_case(prefix))
}

/// The function app a resource id lies in:
/// `/subscriptions/S/resourceGroups/G/providers/Microsoft.Web/sites/N[/...]`.
/// ARM ids compare without case.
fn function(uri: &str) -> Option<FunctionTarget> {
    let parts: Vec<&str> = uri.trim_start_matches('/').split('/').collect();
    let at = |i: usize, want: &str| parts.get(i).is_some_and(|p| p.eq_ignore_ascii_case(want));
    let ok = at(0, "subscriptions")
        && at(2, "resourceGroups")
        && at(4, "providers")
        && at(5, "Microsoft.Web")
        && at(6, "sites");
    let (group, name) = (parts.get(3)?, parts.get(7)?);
    (ok && !group.is_empty() && !name.is_empty()).then(|| FunctionTarget {
        aws: None,
        azure: Some(AzureFunctionRef {
            resource_group: group.to_string(),
            name: name.to_string(),
        }),
        gcp: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    const SUB: &str = "/subscriptions/00000000-0000-0000-0000-000000000001";

    /// An Event Grid event of a subscription's system topic, shaped as the
    /// "Azure subscription as an Event Grid source" reference shows it.
    fn event(kind: &str, uri: &str, operation: &str) -> Value {
        serde_json::json!({
            "subject": uri,
            "eventType": kind,
            "eventTime": "2026-12-04T10:00:00.1234567Z",
            "id": "4f1b3c2a-0000-0000-0000-000000000000",
            "data": {
                "authorization": {"scope": uri, "action": operation, "evidence": {"role": "Owner"}},
                "claims": {"appid": "11111111-2222-3333-4444-555555555555"},
                "correlationId": "a1b2",
                "resourceProvider": operation.split('/').next().unwrap_or_default(),
                "resourceUri": uri,
                "operationName": operation,
                "status": "Succeeded",
                "subscriptionId": "00000000-0000-0000-0000-000000000001",
                "tenantId": "00000000-0000-0000-0000-0000000000aa"
            },
            "dataVersion": "2",
            "metadataVersion": "1",
            "topic": SUB
        })
    }

    fn change(v: &Value) -> Touched {
        match decode(&v.to_string()) {
            Ok(Decoded::Change(t)) => t,
            other => panic!("not a change: {other:?}"),
        }
    }

    #[test]
    fn a_site_or_anything_under_it_names_the_function_app() {
        for uri in [
            format!("{SUB}/resourceGroups/rg-a/providers/Microsoft.Web/sites/app-a"),
            format!("{SUB}/resourcegroups/rg-a/providers/microsoft.web/sites/app-a/config/web"),
        ] {
            let t = change(&event(
                "Microsoft.Resources.ResourceWriteSuccess",
                &uri,
                "Microsoft.Web/sites/config/write",
            ));
            let f = t.functions[0].azure.clone().expect("azure");
            assert_eq!((f.resource_group.as_str(), f.name.as_str()), ("rg-a", "app-a"));
            assert_eq!(t.actor.as_deref(), Some("11111111-2222-3333-4444-555555555555"));
            assert!(t.time.is_some());
        }
    }

    #[test]
    fn a_role_assignment_reaches_every_identity() {
        let t = change(&event(
            "Microsoft.Resources.ResourceWriteSuccess",
            &format!("{SUB}/resourceGroups/rg-a/providers/Microsoft.Authorization/roleAssignments/abc"),
            "Microsoft.Authorization/roleAssignments/write",
        ));
        assert!(t.identity_wide && t.functions.is_empty());
    }

    #[test]
    fn cloudevents_schema_reads_alike() {
        let mut v = event(
            "x",
            &format!("{SUB}/resourceGroups/rg-a/providers/Microsoft.Web/sites/app-a"),
            "Microsoft.Web/sites/write",
        );
        let o = v.as_object_mut().expect("object");
        o.remove("eventType");
        o.insert("type".into(), "Microsoft.Resources.ResourceWriteSuccess".into());
        o.insert("specversion".into(), "1.0".into());
        assert_eq!(change(&v).functions.len(), 1);
    }

    #[test]
    fn other_events_are_unwatched_and_garbage_is_undecodable() {
        let other = event(
            "Microsoft.Resources.ResourceWriteSuccess",
            &format!("{SUB}/resourceGroups/rg-a/providers/Microsoft.Storage/storageAccounts/s"),
            "Microsoft.Storage/storageAccounts/write",
        );
        assert!(matches!(decode(&other.to_string()), Ok(Decoded::Unwatched(_))));
        let failed = event("Microsoft.Resources.ResourceWriteFailure", SUB, "x");
        assert!(matches!(decode(&failed.to_string()), Ok(Decoded::Unwatched(_))));
        assert!(decode("{}").is_err());
    }
}
