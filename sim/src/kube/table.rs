//! meta.k8s.io/v1 Tables, which `kubectl get` asks for: the CRD's
//! additionalPrinterColumns, evaluated with JSONPath on each object, and the
//! API server's own columns for Events.

use super::registry::ResourceType;
use jsonpath_rust::JsonPath;
use serde_json::{Value, json};

fn column(name: &str, ty: &str, format: &str, description: &str) -> Value {
    json!({"name": name, "type": ty, "format": format, "description": description, "priority": 0})
}

fn columns(t: &ResourceType) -> Vec<Value> {
    let mut cols = vec![column(
        "Name",
        "string",
        "name",
        "Name must be unique within a namespace.",
    )];
    if t.printer_columns.is_empty() {
        cols.push(column("Age", "date", "", "CreationTimestamp of the object."));
    } else {
        for c in &t.printer_columns {
            cols.push(json!({
                "name": c["name"], "type": c["type"], "format": c.get("format").cloned().unwrap_or(json!("")),
                "description": c.get("description").cloned().unwrap_or(json!("")),
                "priority": c.get("priority").cloned().unwrap_or(json!(0)),
            }));
        }
    }
    cols
}

/// Age as kubectl shows it (the API server renders `date` columns so).
pub fn human_age(timestamp: &str) -> String {
    let Ok(t) = timestamp.parse::<jiff::Timestamp>() else {
        return "<invalid>".into();
    };
    let s = jiff::Timestamp::now().duration_since(t).as_secs().max(0);
    let (m, h, d) = (s / 60, s / 3600, s / 86400);
    match s {
        _ if s < 120 => format!("{s}s"),
        _ if m < 10 => format!("{m}m{}s", s % 60),
        _ if h < 3 => format!("{m}m"),
        _ if h < 8 => format!("{h}h{}m", m % 60),
        _ if h < 48 => format!("{h}h"),
        _ if d < 8 => format!("{d}d{}h", h % 24),
        _ => format!("{d}d"),
    }
}

/// One cell: the JSONPath's results (several are joined with commas, as
/// kubectl shows them); null when it matches nothing.
fn cell(obj: &Value, path: &str, ty: &str) -> Value {
    let query = format!("${path}");
    let found: Vec<&Value> = obj.query(&query).unwrap_or_default();
    match found.as_slice() {
        [] => Value::Null,
        [one] => match (ty, one) {
            ("date", Value::String(s)) => json!(human_age(s)),
            ("integer" | "number" | "boolean", v) => (*v).clone(),
            (_, Value::String(s)) => json!(s),
            (_, v) => json!(v.to_string()),
        },
        many => json!(
            many.iter()
                .map(|v| v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string()))
                .collect::<Vec<_>>()
                .join(",")
        ),
    }
}

fn metadata_only(obj: &Value) -> Value {
    json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj.get("metadata").cloned().unwrap_or(json!({}))})
}

fn is_event(t: &ResourceType) -> bool {
    t.plural == "events" && (t.group.is_empty() || t.group == "events.k8s.io")
}

/// The core/v1 Event columns of the API server's table convertor (the
/// server always renders the wide set; kubectl hides priority 1 unless
/// `-o wide`).
fn event_columns() -> Vec<Value> {
    let col = |name: &str, priority: u8, format: &str, description: &str| json!({"name": name, "type": "string", "format": format, "description": description, "priority": priority});
    vec![
        col(
            "Last Seen",
            0,
            "",
            "The time at which the most recent occurrence of this event was recorded.",
        ),
        col(
            "Type",
            0,
            "",
            "Type of this event (Normal, Warning), new types could be added in the future",
        ),
        col(
            "Reason",
            0,
            "",
            "This should be a short, machine understandable string that gives the reason for the transition into the object's current status.",
        ),
        col("Object", 0, "", "The object that this event is about."),
        col(
            "Subobject",
            1,
            "",
            "If referring to a piece of an object instead of an entire object, this string should contain a valid JSON/Go field access statement.",
        ),
        col(
            "Source",
            1,
            "",
            "The component reporting this event. Should be a short machine understandable string.",
        ),
        col(
            "Message",
            0,
            "",
            "A human-readable description of the status of this operation.",
        ),
        col(
            "First Seen",
            1,
            "",
            "The time at which the event was first recorded. (Time of server receipt is in TypeMeta.)",
        ),
        col("Count", 1, "", "The number of times this event has occurred."),
        col("Name", 1, "name", "Name must be unique within a namespace."),
    ]
}

/// One Event's cells (core shape), as the API server's printer fills them.
fn event_cells(ev: &Value) -> Vec<Value> {
    let s = |p: &str| ev.pointer(p).and_then(Value::as_str).filter(|x| !x.is_empty());
    let since = |p: &str| s(p).map(human_age);
    let first = since("/firstTimestamp")
        .or_else(|| since("/eventTime"))
        .unwrap_or_else(|| "<unknown>".into());
    let (last, count) = match ev.get("series").filter(|x| x.is_object()) {
        Some(series) => (
            since("/series/lastObservedTime").unwrap_or_else(|| "<unknown>".into()),
            series.get("count").and_then(Value::as_i64).unwrap_or_default(),
        ),
        None => (
            since("/lastTimestamp").unwrap_or_else(|| first.clone()),
            // Singleton events of the events.k8s.io API have no count.
            ev.get("count").and_then(Value::as_i64).filter(|c| *c != 0).unwrap_or(1),
        ),
    };
    let kind = s("/involvedObject/kind").unwrap_or_default().to_ascii_lowercase();
    let object = match s("/involvedObject/name") {
        Some(name) => format!("{kind}/{name}"),
        None => kind,
    };
    let component = s("/source/component").or(s("/reportingComponent")).unwrap_or_default();
    let source = match s("/source/host").or(s("/reportingInstance")) {
        Some(instance) => format!("{component}, {instance}"),
        None => component.to_string(),
    };
    vec![
        json!(last),
        json!(s("/type").unwrap_or_default()),
        json!(s("/reason").unwrap_or_default()),
        json!(object),
        json!(s("/involvedObject/fieldPath").unwrap_or_default()),
        json!(source),
        json!(s("/message").unwrap_or_default().trim()),
        json!(first),
        json!(count),
        json!(s("/metadata/name").unwrap_or_default()),
    ]
}

pub fn table(t: &ResourceType, objects: &[Value], list_meta: Value, include_object: &str) -> Value {
    if is_event(t) {
        return events_table(t, objects, list_meta, include_object);
    }
    let rows: Vec<Value> = objects
        .iter()
        .map(|o| {
            let mut cells = vec![o.pointer("/metadata/name").cloned().unwrap_or(Value::Null)];
            if t.printer_columns.is_empty() {
                cells.push(
                    o.pointer("/metadata/creationTimestamp")
                        .and_then(Value::as_str)
                        .map(|t| json!(human_age(t)))
                        .unwrap_or(Value::Null),
                );
            } else {
                for c in &t.printer_columns {
                    cells.push(cell(
                        o,
                        c["jsonPath"].as_str().unwrap_or_default(),
                        c["type"].as_str().unwrap_or_default(),
                    ));
                }
            }
            json!({"cells": cells, "object": row_object(o, include_object)})
        })
        .collect();
    json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": list_meta,
           "columnDefinitions": columns(t), "rows": rows})
}

fn row_object(o: &Value, include_object: &str) -> Value {
    match include_object {
        "None" => Value::Null,
        "Object" => o.clone(),
        _ => metadata_only(o),
    }
}

/// Both Event APIs share one store and one printer (the core shape's).
fn events_table(t: &ResourceType, objects: &[Value], list_meta: Value, include_object: &str) -> Value {
    let rows: Vec<Value> = objects
        .iter()
        .map(|o| {
            let core = if t.group.is_empty() {
                o.clone()
            } else {
                super::events::to_core(o)
            };
            json!({"cells": event_cells(&core), "object": row_object(o, include_object)})
        })
        .collect();
    json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": list_meta,
           "columnDefinitions": event_columns(), "rows": rows})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printer_columns_follow_jsonpath_filters() {
        let t = ResourceType {
            group: "g".into(),
            version: "v1".into(),
            plural: "ws".into(),
            singular: "w".into(),
            kind: "W".into(),
            namespaced: true,
            short_names: vec![],
            categories: vec![],
            status_subresource: true,
            schema: None,
            printer_columns: vec![
                json!({"name": "Ready", "type": "string", "jsonPath": ".status.conditions[?(@.type==\"Ready\")].status"}),
                json!({"name": "Count", "type": "integer", "jsonPath": ".spec.count"}),
                json!({"name": "Missing", "type": "string", "jsonPath": ".status.nothing"}),
            ],
            crd: None,
        };
        let o = json!({"metadata": {"name": "a"}, "spec": {"count": 3},
                       "status": {"conditions": [{"type": "Synced", "status": "False"}, {"type": "Ready", "status": "True"}]}});
        let tb = table(&t, &[o], json!({}), "Metadata");
        assert_eq!(tb["rows"][0]["cells"], json!(["a", "True", 3, null]));
        assert_eq!(tb["columnDefinitions"][1]["name"], "Ready");
        assert_eq!(tb["rows"][0]["object"]["kind"], "PartialObjectMetadata");
    }

    fn events(group: &str) -> ResourceType {
        let mut t = super::super::registry::builtins()
            .into_iter()
            .find(|t| t.plural == "events" && t.group == group)
            .expect("events are built in");
        t.printer_columns.clear();
        t
    }

    #[test]
    fn events_have_the_api_servers_columns() {
        let now = jiff::Timestamp::now();
        let ago = |s: i64| (now - jiff::SignedDuration::from_secs(s)).to_string();
        let recorded = json!({"metadata": {"name": "orders.1"}, "type": "Warning", "reason": "EnforceFailed",
            "involvedObject": {"kind": "FunctionPosture", "name": "orders", "fieldPath": "spec.identity"},
            "message": " denied \n", "firstTimestamp": ago(300), "lastTimestamp": ago(30), "count": 4,
            "source": {"component": "zerofn"}, "reportingInstance": "pod-1"});
        let tb = table(&events(""), &[recorded], json!({}), "Metadata");
        let names: Vec<&str> = tb["columnDefinitions"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|c| c["name"].as_str())
            .collect();
        assert_eq!(
            names,
            [
                "Last Seen",
                "Type",
                "Reason",
                "Object",
                "Subobject",
                "Source",
                "Message",
                "First Seen",
                "Count",
                "Name"
            ]
        );
        let shown: Vec<&str> = tb["columnDefinitions"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["priority"] == 0)
            .filter_map(|c| c["name"].as_str())
            .collect();
        assert_eq!(shown, ["Last Seen", "Type", "Reason", "Object", "Message"]);
        assert_eq!(
            tb["rows"][0]["cells"],
            json!([
                "30s",
                "Warning",
                "EnforceFailed",
                "functionposture/orders",
                "spec.identity",
                "zerofn, pod-1",
                "denied",
                "5m0s",
                4,
                "orders.1"
            ])
        );
        // events.k8s.io/v1: a singleton with only eventTime, and a series.
        let single = json!({"metadata": {"name": "e"}, "type": "Normal", "reason": "Enforced", "note": "ok",
            "regarding": {"kind": "FunctionPosture", "name": "orders"}, "eventTime": ago(10),
            "reportingController": "zerofn"});
        let mut series = single.clone();
        series["series"] = json!({"count": 7, "lastObservedTime": ago(5)});
        let tb = table(&events("events.k8s.io"), &[single, series], json!({}), "None");
        let cells = &tb["rows"][0]["cells"];
        assert_eq!(
            (&cells[0], &cells[7], &cells[8], &cells[5]),
            (&json!("10s"), &json!("10s"), &json!(1), &json!("zerofn"))
        );
        let cells = &tb["rows"][1]["cells"];
        assert_eq!((&cells[0], &cells[8]), (&json!("5s"), &json!(7)));
    }
}
