//! meta.k8s.io/v1 Tables, which `kubectl get` asks for: the CRD's
//! additionalPrinterColumns, evaluated with JSONPath on each object.

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

pub fn table(t: &ResourceType, objects: &[Value], list_meta: Value, include_object: &str) -> Value {
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
            let object = match include_object {
                "None" => Value::Null,
                "Object" => o.clone(),
                _ => metadata_only(o),
            };
            json!({"cells": cells, "object": object})
        })
        .collect();
    json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": list_meta,
           "columnDefinitions": columns(t), "rows": rows})
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
}
