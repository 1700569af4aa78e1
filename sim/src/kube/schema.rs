//! Admission of custom resources against their CRD's structural schema, in
//! the API server's order: prune unknown fields (or refuse them when the
//! client asks for strict field validation), apply defaults, validate the
//! schema, then evaluate the CEL rules (`x-kubernetes-validations`, with
//! `oldSelf` on updates).

use serde_json::{Map, Value};

pub type Cause = (String, String);

fn child(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// Remove fields the schema does not declare; return their paths.
fn prune(schema: &Value, v: &mut Value, path: &str, root: bool, unknown: &mut Vec<String>) {
    if schema
        .get("x-kubernetes-preserve-unknown-fields")
        .and_then(Value::as_bool)
        == Some(true)
    {
        return;
    }
    match v {
        Value::Object(map) => {
            let props = schema.get("properties").and_then(Value::as_object);
            let additional = schema.get("additionalProperties").filter(|a| a.is_object());
            if props.is_none() && additional.is_none() {
                // An untyped object (e.g. metadata): the server types it.
                return;
            }
            let keys: Vec<String> = map.keys().cloned().collect();
            for k in keys {
                if root && matches!(k.as_str(), "apiVersion" | "kind" | "metadata") {
                    continue;
                }
                let sub = props.and_then(|p| p.get(&k)).or(additional);
                match sub {
                    Some(s) => {
                        if let Some(x) = map.get_mut(&k) {
                            prune(s, x, &child(path, &k), false, unknown);
                        }
                    }
                    None => {
                        map.remove(&k);
                        unknown.push(child(path, &k));
                    }
                }
            }
        }
        Value::Array(items) => {
            if let Some(s) = schema.get("items") {
                for (i, x) in items.iter_mut().enumerate() {
                    prune(s, x, &format!("{path}[{i}]"), false, unknown);
                }
            }
        }
        _ => {}
    }
}

/// Apply `default`s to absent properties of present objects.
fn default(schema: &Value, v: &mut Value) {
    match v {
        Value::Object(map) => {
            if let Some(props) = schema.get("properties").and_then(Value::as_object) {
                for (k, s) in props {
                    if !map.contains_key(k)
                        && let Some(d) = s.get("default")
                    {
                        map.insert(k.clone(), d.clone());
                    }
                    if let Some(x) = map.get_mut(k) {
                        default(s, x);
                    }
                }
            }
            if let Some(s) = schema.get("additionalProperties").filter(|a| a.is_object()) {
                for x in map.values_mut() {
                    default(s, x);
                }
            }
        }
        Value::Array(items) => {
            if let Some(s) = schema.get("items") {
                for x in items {
                    default(s, x);
                }
            }
        }
        _ => {}
    }
}

fn type_ok(ty: &str, v: &Value) -> bool {
    match ty {
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "integer" => v.is_i64() || v.is_u64(),
        "number" => v.is_number(),
        "boolean" => v.is_boolean(),
        _ => true,
    }
}

fn validate(schema: &Value, v: &Value, path: &str, root: bool, out: &mut Vec<Cause>) {
    let at = |p: &str| {
        if p.is_empty() {
            "<root>".to_string()
        } else {
            p.to_string()
        }
    };
    if v.is_null() {
        if schema.get("nullable").and_then(Value::as_bool) != Some(true) {
            out.push((at(path), "Invalid value: \"null\": must not be null".into()));
        }
        return;
    }
    if schema.get("x-kubernetes-int-or-string").and_then(Value::as_bool) == Some(true) {
        if !(v.is_i64() || v.is_u64() || v.is_string()) {
            out.push((at(path), format!("Invalid value: {v}: must be an integer or a string")));
        }
        return;
    }
    if let Some(ty) = schema.get("type").and_then(Value::as_str)
        && !type_ok(ty, v)
    {
        out.push((at(path), format!("Invalid value: {v}: must be of type {ty}")));
        return;
    }
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
        && !allowed.contains(v)
    {
        let list: Vec<String> = allowed.iter().filter(|a| !a.is_null()).map(|a| a.to_string()).collect();
        out.push((
            at(path),
            format!("Unsupported value: {v}: supported values: {}", list.join(", ")),
        ));
    }
    let num = |k: &str| schema.get(k).and_then(Value::as_f64);
    match v {
        Value::String(s) => {
            let n = s.chars().count() as f64;
            if num("minLength").is_some_and(|m| n < m) {
                out.push((
                    at(path),
                    format!(
                        "Invalid value: {v}: should be at least {} chars long",
                        num("minLength").unwrap_or_default()
                    ),
                ));
            }
            if num("maxLength").is_some_and(|m| n > m) {
                out.push((
                    at(path),
                    format!(
                        "Too long: may not be more than {} bytes",
                        num("maxLength").unwrap_or_default()
                    ),
                ));
            }
            if let Some(p) = schema.get("pattern").and_then(Value::as_str) {
                match regex::Regex::new(p) {
                    Ok(re) if !re.is_match(s) => {
                        out.push((at(path), format!("Invalid value: {v}: should match '{p}'")))
                    }
                    Ok(_) => {}
                    Err(_) => out.push((at(path), format!("schema pattern {p:?} does not compile"))),
                }
            }
        }
        Value::Number(_) => {
            let x = v.as_f64().unwrap_or_default();
            if num("minimum").is_some_and(|m| x < m) {
                out.push((
                    at(path),
                    format!(
                        "Invalid value: {v}: should be greater than or equal to {}",
                        num("minimum").unwrap_or_default()
                    ),
                ));
            }
            if num("maximum").is_some_and(|m| x > m) {
                out.push((
                    at(path),
                    format!(
                        "Invalid value: {v}: should be less than or equal to {}",
                        num("maximum").unwrap_or_default()
                    ),
                ));
            }
        }
        Value::Array(items) => {
            let n = items.len() as f64;
            if num("minItems").is_some_and(|m| n < m) {
                out.push((
                    at(path),
                    format!(
                        "Invalid value: {n}: should have at least {} items",
                        num("minItems").unwrap_or_default()
                    ),
                ));
            }
            if num("maxItems").is_some_and(|m| n > m) {
                out.push((
                    at(path),
                    format!(
                        "Too many: {n}: must have at most {} items",
                        num("maxItems").unwrap_or_default()
                    ),
                ));
            }
            if let Some(s) = schema.get("items") {
                for (i, x) in items.iter().enumerate() {
                    validate(s, x, &format!("{path}[{i}]"), false, out);
                }
            }
        }
        Value::Object(map) => {
            let n = map.len() as f64;
            if num("maxProperties").is_some_and(|m| n > m) {
                out.push((
                    at(path),
                    format!(
                        "Too many: {n}: must have at most {} properties",
                        num("maxProperties").unwrap_or_default()
                    ),
                ));
            }
            if let Some(req) = schema.get("required").and_then(Value::as_array) {
                for r in req.iter().filter_map(Value::as_str) {
                    if !map.contains_key(r) {
                        out.push((child(path, r), "Required value".into()));
                    }
                }
            }
            let props = schema.get("properties").and_then(Value::as_object);
            let additional = schema.get("additionalProperties").filter(|a| a.is_object());
            for (k, x) in map {
                if root && matches!(k.as_str(), "apiVersion" | "kind" | "metadata") {
                    continue;
                }
                if let Some(s) = props.and_then(|p| p.get(k)).or(additional) {
                    validate(s, x, &child(path, k), false, out);
                }
            }
        }
        _ => {}
    }
}

/// Why an object was not admitted.
#[derive(Debug, PartialEq)]
pub enum Refusal {
    /// Strict field validation: the fields the schema does not declare
    /// (found while decoding, before any validation).
    UnknownFields(Vec<String>),
    /// Schema or CEL validation failed.
    Invalid(Vec<Cause>),
}

/// Admit `obj` (with `old` on updates). Returns the object as stored
/// (pruned, defaulted) and the pruned fields, or why it is refused.
pub fn admit(
    schema: &Value,
    mut obj: Value,
    old: Option<&Value>,
    strict: bool,
) -> Result<(Value, Vec<String>), Refusal> {
    let mut unknown = Vec::new();
    prune(schema, &mut obj, "", true, &mut unknown);
    if strict && !unknown.is_empty() {
        return Err(Refusal::UnknownFields(unknown));
    }
    default(schema, &mut obj);
    let mut causes = Vec::new();
    validate(schema, &obj, "", true, &mut causes);
    if causes.is_empty()
        && let Err(errs) = kube_cel::Validator::new().validate(schema, &obj, old)
    {
        for e in errs.iter() {
            let field = if e.field_path.is_empty() {
                "<root>".to_string()
            } else {
                e.field_path.clone()
            };
            causes.push((field, format!("Invalid value: \"object\": {}", e.message)));
        }
    }
    if causes.is_empty() {
        Ok((obj, unknown))
    } else {
        Err(Refusal::Invalid(causes))
    }
}

/// The part of an object that is not metadata or status (a change here
/// bumps `metadata.generation`).
pub fn spec_part(obj: &Value) -> Value {
    let mut m: Map<String, Value> = obj.as_object().cloned().unwrap_or_default();
    for k in ["metadata", "status", "apiVersion", "kind"] {
        m.remove(k);
    }
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Value {
        json!({"type": "object", "properties": {
            "spec": {"type": "object", "required": ["size"],
                     "x-kubernetes-validations": [{"rule": "self.size <= 10 || self.mode == 'Big'", "message": "too big", "fieldPath": ".size"}],
                     "properties": {
                        "size": {"type": "integer", "minimum": 1},
                        "mode": {"type": "string", "enum": ["Small", "Big"], "default": "Small"},
                        "name": {"type": "string", "pattern": "^[a-z]+$"},
                        "tags": {"type": "object", "additionalProperties": {"type": "string"}}}},
            "status": {"type": "object", "properties": {"ok": {"type": "boolean"}}}}})
    }

    #[test]
    fn defaults_are_applied_and_unknown_fields_pruned() {
        let (o, unknown) = admit(
            &schema(),
            json!({"apiVersion": "x/v1", "kind": "W", "metadata": {"name": "a", "labels": {"x": "y"}},
                                                   "spec": {"size": 2, "extra": 1, "tags": {"any": "thing"}}}),
            None,
            false,
        )
        .unwrap();
        assert_eq!(o["spec"]["mode"], "Small");
        assert_eq!(o["metadata"]["labels"]["x"], "y", "metadata is not pruned");
        assert!(o["spec"].get("extra").is_none());
        assert_eq!(unknown, ["spec.extra"]);
        assert_eq!(o["spec"]["tags"]["any"], "thing");
    }

    #[test]
    fn strict_validation_refuses_unknown_fields() {
        // Before validation, as the API server's strict decoder does.
        let e = admit(&schema(), json!({"spec": {"size": 0, "extra": 1}}), None, true).unwrap_err();
        assert_eq!(e, Refusal::UnknownFields(vec!["spec.extra".to_string()]));
    }

    #[test]
    fn schema_and_cel_errors_name_the_field() {
        let invalid = |o: Value| match admit(&schema(), o, None, false) {
            Err(Refusal::Invalid(causes)) => causes,
            other => panic!("not refused as invalid: {other:?}"),
        };
        let e = invalid(json!({"spec": {"size": 0, "name": "A"}}));
        let mut fields: Vec<&str> = e.iter().map(|(f, _)| f.as_str()).collect();
        fields.sort();
        assert_eq!(fields, ["spec.name", "spec.size"]);
        let e = invalid(json!({"spec": {"size": 20}}));
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].0, "spec.size");
        assert!(e[0].1.contains("too big"), "{e:?}");
        assert!(admit(&schema(), json!({"spec": {"size": 20, "mode": "Big"}}), None, false).is_ok());
        let e = invalid(json!({"spec": {}}));
        assert_eq!(e[0], ("spec.size".to_string(), "Required value".to_string()));
    }
}
