//! What CEL sees of a schema node (apiserver's DeclType), and how property
//! names are spelt in CEL.

use super::MAX_REQUEST_SIZE_BYTES;
use serde_json::Value;
use std::collections::BTreeMap;

/// Minimum JSON sizes of the typed string formats (apiserver's cel limits).
const MIN_DURATION_SIZE: u64 = 3;
const DATE_SIZE: u64 = 12;
const MIN_DATETIME_SIZE: u64 = 21;

/// The CEL view of a schema node (apiserver's DeclType): its kind, how many
/// elements it may hold (list items, map entries, string bytes; 0 for
/// scalars and objects) and its smallest JSON encoding.
#[derive(Debug, Clone)]
pub struct Decl {
    pub(super) kind: Kind,
    pub(super) max_elements: u64,
    pub(super) min_size: u64,
}

#[derive(Debug, Clone)]
pub(super) enum Kind {
    Object(BTreeMap<String, Decl>),
    List(Box<Decl>),
    Map(Box<Decl>),
    Str,
    Bytes,
    Bool,
    Int,
    Double,
    Duration,
    Timestamp,
    Dyn,
}

/// Map keys: a plain string type, which declares no size.
pub(super) static MAP_KEY: Decl = Decl {
    kind: Kind::Str,
    max_elements: 0,
    min_size: 2,
};

pub(super) fn decl(kind: Kind, max_elements: u64, min_size: u64) -> Decl {
    Decl {
        kind,
        max_elements,
        min_size,
    }
}

impl Decl {
    /// The declared type of `schema` (apiserver's SchemaDeclType); None where
    /// CEL sees nothing. `resource_root`: the root of a custom resource,
    /// where apiVersion, kind and metadata.name are always visible.
    pub fn from_schema(schema: &Value, resource_root: bool) -> Option<Decl> {
        let get_u64 = |k: &str| schema.get(k).and_then(Value::as_i64).map(|n| n.max(0) as u64);
        if schema.get("x-kubernetes-int-or-string").and_then(Value::as_bool) == Some(true) {
            return Some(decl(Kind::Dyn, MAX_REQUEST_SIZE_BYTES - 2, 1));
        }
        let unbounded_string = MAX_REQUEST_SIZE_BYTES - 2;
        match schema.get("type").and_then(Value::as_str)? {
            "array" => {
                let items = Decl::from_schema(schema.get("items")?, false)?;
                let max = get_u64("maxItems").unwrap_or((MAX_REQUEST_SIZE_BYTES - 2) / (items.min_size + 1));
                Some(decl(Kind::List(Box::new(items)), max, 2))
            }
            "object" => {
                if let Some(values) = schema.get("additionalProperties").filter(|v| v.is_object()) {
                    let values = Decl::from_schema(values, false)?;
                    let max = get_u64("maxProperties").unwrap_or((MAX_REQUEST_SIZE_BYTES - 2) / (values.min_size + 6));
                    return Some(decl(Kind::Map(Box::new(values)), max, 2));
                }
                Some(object(schema, resource_root))
            }
            "string" => Some(match schema.get("format").and_then(Value::as_str) {
                Some("byte") => decl(Kind::Bytes, get_u64("maxLength").unwrap_or(unbounded_string), 2),
                // No tighter bound is known here: the longest string a request holds.
                Some("duration") => decl(Kind::Duration, unbounded_string, MIN_DURATION_SIZE),
                Some("date") => decl(Kind::Timestamp, unbounded_string, DATE_SIZE),
                Some("date-time") => decl(Kind::Timestamp, unbounded_string, MIN_DATETIME_SIZE),
                _ => decl(
                    Kind::Str,
                    get_u64("maxLength").map_or(unbounded_string, |n| n.saturating_mul(4)),
                    2,
                ),
            }),
            "boolean" => Some(decl(Kind::Bool, 0, 4)),
            "number" => Some(decl(Kind::Double, 0, 1)),
            "integer" => Some(decl(Kind::Int, 0, 1)),
            _ => None,
        }
    }
}

pub(super) fn object(schema: &Value, resource_root: bool) -> Decl {
    let mut props: BTreeMap<String, Value> = schema
        .get("properties")
        .and_then(Value::as_object)
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default();
    if resource_root {
        let s = serde_json::json!({"type": "string"});
        props.insert("kind".into(), s.clone());
        props.insert("apiVersion".into(), s.clone());
        props.insert(
            "metadata".into(),
            serde_json::json!({"type": "object", "properties": {"name": s, "generateName": s}}),
        );
    }
    let required: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let mut fields = BTreeMap::new();
    let mut min_size = 2;
    for (name, prop) in &props {
        let Some(field) = Decl::from_schema(
            prop,
            prop.get("x-kubernetes-embedded-resource") == Some(&Value::Bool(true)),
        ) else {
            continue;
        };
        if required.contains(&name.as_str()) && prop.get("default").is_none() {
            min_size += name.len() as u64 + field.min_size + 4;
        }
        if let Some(escaped) = escape(name) {
            fields.insert(escaped, field);
        }
    }
    decl(Kind::Object(fields), 0, min_size)
}

/// How a property name is spelt in CEL (apiserver's cel.Escape); None when
/// it cannot be.
pub(super) fn escape(name: &str) -> Option<String> {
    const RESERVED: [&str; 21] = [
        "true",
        "false",
        "null",
        "in",
        "as",
        "break",
        "const",
        "continue",
        "else",
        "for",
        "function",
        "if",
        "import",
        "let",
        "loop",
        "package",
        "namespace",
        "return",
        "var",
        "void",
        "while",
    ];
    if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
        return None;
    }
    if RESERVED.contains(&name) {
        return Some(format!("__{name}__"));
    }
    let mut out = String::new();
    let mut chars = name.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '_' if chars.peek() == Some(&'_') => {
                chars.next();
                out.push_str("__underscores__");
            }
            '.' => out.push_str("__dot__"),
            '-' => out.push_str("__dash__"),
            '/' => out.push_str("__slash__"),
            c if c.is_ascii_alphanumeric() || c == '_' => out.push(c),
            _ => return None,
        }
    }
    Some(out)
}
