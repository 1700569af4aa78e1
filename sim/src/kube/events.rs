//! core/v1 and events.k8s.io/v1 Events are one resource on the API server:
//! stored in the core shape and converted on the way in and out.

use serde_json::{Map, Value, json};

fn copy(from: &Value, to: &mut Map<String, Value>, src: &str, dst: &str) {
    if let Some(v) = from.get(src).filter(|v| !v.is_null()) {
        to.insert(dst.to_string(), v.clone());
    }
}

/// events.k8s.io/v1 → core/v1.
pub fn to_core(ev: &Value) -> Value {
    let mut m = Map::new();
    m.insert("apiVersion".into(), json!("v1"));
    m.insert("kind".into(), json!("Event"));
    copy(ev, &mut m, "metadata", "metadata");
    copy(ev, &mut m, "regarding", "involvedObject");
    copy(ev, &mut m, "related", "related");
    copy(ev, &mut m, "note", "message");
    for k in ["reason", "type", "action", "eventTime", "series", "reportingInstance"] {
        copy(ev, &mut m, k, k);
    }
    copy(ev, &mut m, "reportingController", "reportingComponent");
    copy(ev, &mut m, "deprecatedFirstTimestamp", "firstTimestamp");
    copy(ev, &mut m, "deprecatedLastTimestamp", "lastTimestamp");
    copy(ev, &mut m, "deprecatedCount", "count");
    let source = ev
        .get("deprecatedSource")
        .cloned()
        .filter(|s| s.get("component").is_some())
        .or_else(|| ev.get("reportingController").map(|c| json!({ "component": c })));
    if let Some(s) = source {
        m.insert("source".into(), s);
    }
    Value::Object(m)
}

/// core/v1 → events.k8s.io/v1.
pub fn to_events_v1(core: &Value) -> Value {
    let mut m = Map::new();
    m.insert("apiVersion".into(), json!("events.k8s.io/v1"));
    m.insert("kind".into(), json!("Event"));
    copy(core, &mut m, "metadata", "metadata");
    copy(core, &mut m, "involvedObject", "regarding");
    copy(core, &mut m, "related", "related");
    copy(core, &mut m, "message", "note");
    for k in ["reason", "type", "action", "eventTime", "series", "reportingInstance"] {
        copy(core, &mut m, k, k);
    }
    copy(core, &mut m, "reportingComponent", "reportingController");
    copy(core, &mut m, "source", "deprecatedSource");
    copy(core, &mut m, "firstTimestamp", "deprecatedFirstTimestamp");
    copy(core, &mut m, "lastTimestamp", "deprecatedLastTimestamp");
    copy(core, &mut m, "count", "deprecatedCount");
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversion_round_trips_what_describe_reads() {
        let ev = json!({"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "e", "namespace": "ns"},
                        "regarding": {"kind": "FunctionPosture", "name": "orders", "namespace": "ns", "uid": "u"},
                        "note": "fixed it", "reason": "Enforced", "type": "Normal", "action": "Enforce",
                        "eventTime": "2026-01-01T00:00:00.000000Z", "reportingController": "zerofn", "reportingInstance": "pod-1"});
        let core = to_core(&ev);
        assert_eq!(core["involvedObject"]["uid"], "u");
        assert_eq!(core["message"], "fixed it");
        assert_eq!(core["source"]["component"], "zerofn");
        assert_eq!(to_events_v1(&core)["note"], "fixed it");
        assert_eq!(to_events_v1(&core)["regarding"]["name"], "orders");
    }
}
