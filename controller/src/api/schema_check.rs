//! Structural validation of a manifest against the CRD's own OpenAPI schema.
//!
//! The CLI reads manifests without an API server; checking them against the
//! schema the CRD ships (types, required fields, unknown fields, enums,
//! patterns, lengths, bounds) means a manifest the CLI accepts is one the
//! API server accepts, and the error names the same field.

use super::patterns;
use serde_json::Value;
use std::fmt::Write as _;

/// One schema violation at a JSON path such as `spec.triggers.aws.invokers[0].principal`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaError {
    pub path: String,
    pub message: String,
}

/// Validate `value` against an OpenAPI v3 (Kubernetes structural) schema.
/// `root` is the path prefix of `value` (empty for a whole object).
pub fn check(schema: &Value, value: &Value, root: &str) -> Vec<SchemaError> {
    let mut errors = Vec::new();
    walk(schema, value, root.to_string(), &mut errors);
    errors
}

fn err(errors: &mut Vec<SchemaError>, path: &str, message: String) {
    errors.push(SchemaError {
        path: if path.is_empty() {
            "<root>".into()
        } else {
            path.to_string()
        },
        message,
    });
}

fn child(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn walk(schema: &Value, value: &Value, path: String, errors: &mut Vec<SchemaError>) {
    if !value_allowed(schema, value, &path, errors) {
        return;
    }
    let ty = schema.get("type").and_then(Value::as_str);
    match (ty, value) {
        (Some("object"), Value::Object(map)) => walk_object(schema, map, &path, errors),
        (Some("array"), Value::Array(items)) => walk_array(schema, items, &path, errors),
        (Some("string"), Value::String(s)) => check_string(schema, value, s, &path, errors),
        (Some("integer"), v) if v.is_i64() || v.is_u64() => number_bounds(schema, v, &path, errors),
        (Some("number"), v) if v.is_number() => number_bounds(schema, v, &path, errors),
        (Some("boolean"), Value::Bool(_)) => {}
        (None, _) => {}
        (Some(t), v) => err(errors, &path, format!("Invalid value: {v}: must be of type {t}")),
    }
}

/// The rules that decide a value before its type does: null, int-or-string
/// and enum. False when the value needs no further check (it passed one of
/// them, or failed it).
fn value_allowed(schema: &Value, value: &Value, path: &str, errors: &mut Vec<SchemaError>) -> bool {
    if value.is_null() {
        if schema.get("nullable").and_then(Value::as_bool) != Some(true) {
            err(errors, path, "Invalid value: null: must not be null".into());
        }
        return false;
    }
    if schema.get("x-kubernetes-int-or-string").and_then(Value::as_bool) == Some(true) {
        if !(value.is_i64() || value.is_u64() || value.is_string()) {
            err(
                errors,
                path,
                format!("Invalid value: {value}: must be an integer or a string"),
            );
        }
        return false;
    }
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
        && !allowed.iter().any(|a| a == value)
    {
        let mut list = String::new();
        for (i, a) in allowed.iter().filter(|a| !a.is_null()).enumerate() {
            let _ = write!(list, "{}{a}", if i == 0 { "" } else { ", " });
        }
        err(
            errors,
            path,
            format!("Unsupported value: {value}: supported values: {list}"),
        );
        return false;
    }
    true
}

fn walk_object(schema: &Value, map: &serde_json::Map<String, Value>, path: &str, errors: &mut Vec<SchemaError>) {
    let props = schema.get("properties").and_then(Value::as_object);
    let preserve = schema
        .get("x-kubernetes-preserve-unknown-fields")
        .and_then(Value::as_bool)
        == Some(true);
    let additional = schema.get("additionalProperties");
    bound_max(schema, "maxProperties", map.len(), path, errors, |n| {
        format!("must have at most {n} properties")
    });
    if let Some(required) = schema.get("required").and_then(Value::as_array) {
        for r in required.iter().filter_map(Value::as_str) {
            if !map.contains_key(r) {
                err(errors, &child(path, r), "Required value".into());
            }
        }
    }
    for (k, v) in map {
        match (props.and_then(|p| p.get(k)), additional) {
            (Some(s), _) => walk(s, v, child(path, k), errors),
            (None, Some(s)) if s.is_object() => walk(s, v, child(path, k), errors),
            (None, _) if preserve => {}
            // Typed by the API server itself, not by the CRD schema.
            (None, _) if path.is_empty() && matches!(k.as_str(), "apiVersion" | "kind" | "metadata") => {}
            (None, _) if props.is_none() && additional.is_none() && path_is_metadata(path) => {}
            (None, _) => err(errors, &child(path, k), unknown_field(k, props)),
        }
    }
}

fn walk_array(schema: &Value, items: &[Value], path: &str, errors: &mut Vec<SchemaError>) {
    bound(schema, "minItems", items.len(), path, errors, |n| {
        format!("must have at least {n} items")
    });
    bound_max(schema, "maxItems", items.len(), path, errors, |n| {
        format!("must have at most {n} items")
    });
    if let Some(item_schema) = schema.get("items") {
        for (i, v) in items.iter().enumerate() {
            walk(item_schema, v, format!("{path}[{i}]"), errors);
        }
    }
}

fn check_string(schema: &Value, value: &Value, s: &str, path: &str, errors: &mut Vec<SchemaError>) {
    let n = s.chars().count();
    bound(schema, "minLength", n, path, errors, |m| {
        format!("must be at least {m} characters")
    });
    bound_max(schema, "maxLength", n, path, errors, |m| {
        format!("must be at most {m} characters")
    });
    if let Some(p) = schema.get("pattern").and_then(Value::as_str)
        && !pattern_matches(p, s)
    {
        let hint = patterns::expected(p).map(|e| format!("; {e}")).unwrap_or_default();
        err(
            errors,
            path,
            format!("Invalid value: {value}: should match '{p}'{hint}"),
        );
    }
}

/// "unknown field", with the closest known field when one is near enough
/// to be a typo (`publicAcess` → `publicAccess`).
fn unknown_field(key: &str, props: Option<&serde_json::Map<String, Value>>) -> String {
    let norm = |s: &str| s.to_lowercase().replace(['_', '-'], "");
    let typed = norm(key);
    let near = (typed.chars().count() / 3).max(1);
    let best = props
        .into_iter()
        .flat_map(|p| p.keys())
        .map(|known| (edit_distance(&typed, &norm(known)), known))
        .filter(|(d, _)| *d <= near)
        .min();
    match best {
        Some((_, known)) => format!("unknown field; did you mean `{known}`?"),
        None => "unknown field".into(),
    }
}

/// Levenshtein distance, by characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diag = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let next = (row[j + 1] + 1).min(row[j] + 1).min(diag + usize::from(ca != *cb));
            diag = row[j + 1];
            row[j + 1] = next;
        }
    }
    row[b.len()]
}

/// `metadata` is typed by the API server itself, not by the CRD schema.
fn path_is_metadata(path: &str) -> bool {
    path == "metadata" || path.starts_with("metadata.")
}

fn bound(schema: &Value, key: &str, n: usize, path: &str, errors: &mut Vec<SchemaError>, msg: impl Fn(u64) -> String) {
    if let Some(min) = schema.get(key).and_then(Value::as_u64)
        && (n as u64) < min
    {
        err(errors, path, msg(min));
    }
}

fn bound_max(
    schema: &Value,
    key: &str,
    n: usize,
    path: &str,
    errors: &mut Vec<SchemaError>,
    msg: impl Fn(u64) -> String,
) {
    if let Some(max) = schema.get(key).and_then(Value::as_u64)
        && (n as u64) > max
    {
        err(errors, path, msg(max));
    }
}

fn number_bounds(schema: &Value, v: &Value, path: &str, errors: &mut Vec<SchemaError>) {
    let x = v.as_f64().unwrap_or_default();
    if let Some(min) = schema.get("minimum").and_then(Value::as_f64)
        && x < min
    {
        err(
            errors,
            path,
            format!("Invalid value: {v}: must be greater than or equal to {min}"),
        );
    }
    if let Some(max) = schema.get("maximum").and_then(Value::as_f64)
        && x > max
    {
        err(
            errors,
            path,
            format!("Invalid value: {v}: must be less than or equal to {max}"),
        );
    }
}

fn pattern_matches(pattern: &str, s: &str) -> bool {
    patterns::matches(pattern, s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Value {
        json!({
            "type": "object",
            "required": ["spec"],
            "properties": {
                "metadata": {"type": "object"},
                "spec": {
                    "type": "object",
                    "required": ["name"],
                    "properties": {
                        "name": {"type": "string", "pattern": "^[a-z]+$", "maxLength": 5},
                        "mode": {"type": "string", "enum": ["Enforce", "Audit"]},
                        "ids": {"type": "array", "minItems": 1, "items": {"type": "string", "pattern": "^sg-[0-9]+$"}},
                        "pins": {"type": "object", "maxProperties": 1, "additionalProperties": {"type": "string"}},
                        "n": {"type": "integer", "minimum": 1, "maximum": 10},
                        "opt": {"type": "string", "nullable": true}
                    }
                }
            }
        })
    }

    fn paths(v: Value) -> Vec<String> {
        check(&schema(), &v, "")
            .into_iter()
            .map(|e| format!("{}: {}", e.path, e.message))
            .collect()
    }

    #[test]
    fn valid_object_passes() {
        assert!(paths(json!({"metadata": {"name": "x", "labels": {"a": "b"}}, "spec": {"name": "abc", "mode": "Audit", "ids": ["sg-1"], "n": 3, "opt": null}})).is_empty());
    }

    #[test]
    fn each_violation_names_its_field() {
        let e = paths(
            json!({"spec": {"name": "ABCDEFG", "mode": "Fix", "ids": ["x"], "n": 11, "extra": 1, "pins": {"a": "1", "b": "2"}}}),
        );
        let joined = e.join("\n");
        assert!(
            joined.contains("spec.name: Invalid value: \"ABCDEFG\": should match"),
            "{joined}"
        );
        assert!(joined.contains("spec.name: must be at most 5 characters"), "{joined}");
        assert!(joined.contains("spec.mode: Unsupported value: \"Fix\""), "{joined}");
        assert!(joined.contains("spec.ids[0]: Invalid value"), "{joined}");
        assert!(joined.contains("spec.n: Invalid value: 11"), "{joined}");
        assert!(joined.contains("spec.extra: unknown field"), "{joined}");
        assert!(joined.contains("spec.pins: must have at most 1 properties"), "{joined}");
    }

    #[test]
    fn missing_required_and_wrong_types() {
        let e = paths(json!({"spec": {"ids": "sg-1", "n": "3"}}));
        let joined = e.join("\n");
        assert!(joined.contains("spec.name: Required value"), "{joined}");
        assert!(
            joined.contains("spec.ids: Invalid value: \"sg-1\": must be of type array"),
            "{joined}"
        );
        assert!(
            joined.contains("spec.n: Invalid value: \"3\": must be of type integer"),
            "{joined}"
        );
        assert_eq!(paths(json!({})), vec!["spec: Required value".to_string()]);
    }

    #[test]
    fn empty_array_below_min_items() {
        let e = paths(json!({"spec": {"name": "a", "ids": []}}));
        assert_eq!(e, vec!["spec.ids: must have at least 1 items".to_string()]);
    }
}
