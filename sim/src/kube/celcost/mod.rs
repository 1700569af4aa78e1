//! The API server's static cost estimate of CRD validation rules
//! (`x-kubernetes-validations`), so that a CRD the API server would refuse
//! as too expensive is refused here too, and a test can hold the committed
//! CRDs to the published limits.
//!
//! This is the computation of k8s.io/apiextensions-apiserver (the CEL schema
//! context and rule compilation) over cel-go's static cost estimator
//! (checker/cost.go), with the Kubernetes settings: `has()` costs nothing;
//! the size of a value comes from the schema's `maxItems`, `maxProperties`
//! and `maxLength` (times 4: a code point may take 4 bytes) or, where they
//! are missing, from how many would fit in a 3 MiB request; a rule under
//! lists or maps is multiplied by their `maxItems`/`maxProperties` (or, under
//! an unbounded one, by how many copies of its node fit in a request).
//!
//! Rules are parsed with the `cel` parser kube-cel uses; types are inferred
//! from the schema, as far as the cost model needs them. Functions that the
//! Kubernetes libraries price on their own (string extensions, lists, sets,
//! URLs, IPs, quantities, authorization) are reported as unsupported, never
//! priced as cheap.

mod coster;
mod decl;
mod functions;
mod range;
#[cfg(test)]
mod tests;
mod types;

pub use decl::Decl;

use coster::Coster;
use kube_cel::cel::parser::Parser;
use serde_json::Value;
use types::TyKind;

/// `StaticEstimatedCostLimit`: the most one rule may cost, cardinality included.
pub const PER_EXPRESSION_LIMIT: u64 = 10_000_000;
/// `StaticEstimatedCRDCostLimit`: the most all rules of one schema may cost together.
pub const PER_CRD_LIMIT: u64 = 100_000_000;
/// `DefaultMaxRequestSizeBytes`: sizes without a declared bound are what fits in one request.
pub(super) const MAX_REQUEST_SIZE_BYTES: u64 = 3 * 1024 * 1024;

/// Why a rule cannot be compiled or priced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuleError {
    /// The API server would refuse it too (`compilation failed: ...`).
    Compile(String),
    /// It does not evaluate to a bool.
    NotBool,
    /// It uses a function whose cost this module does not model.
    Unsupported(String),
    /// It is declared on a schema CEL cannot see (no type).
    NoType,
}

impl std::fmt::Display for RuleError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RuleError::Compile(m) => write!(f, "compilation failed: {m}"),
            RuleError::NotBool => f.write_str("cel expression must evaluate to a bool"),
            RuleError::Unsupported(name) => write!(
                f,
                "the stand-in cannot estimate the cost of `{name}`: extend celcost from the Kubernetes cost library"
            ),
            RuleError::NoType => f.write_str("rule declared on schema that does not support validation rules"),
        }
    }
}

/// The worst-case cost of one evaluation of `rule` on a value of type
/// `root` (the `MaxCost` of a compiled rule, before cardinality).
pub fn rule_cost(root: &Decl, rule: &str) -> Result<u64, RuleError> {
    let ast = Parser::new()
        .parse(rule)
        .map_err(|e| RuleError::Compile(e.to_string()))?;
    let mut c = Coster::new(root);
    let cost = c.cost(&ast)?;
    match c.ty(&ast).kind() {
        TyKind::Bool | TyKind::Dyn => Ok(cost.max),
        _ => Err(RuleError::NotBool),
    }
}

/// One rule of a schema, priced.
#[derive(Debug, Clone)]
pub struct RuleCost {
    /// `<root>.properties[spec]...x-kubernetes-validations[i].rule`.
    pub path: String,
    pub rule: String,
    /// Worst-case cost of one evaluation.
    pub per_call: Result<u64, RuleError>,
    /// How many times the rule may run per object: the product of the
    /// enclosing lists' maxItems and maps' maxProperties, or, under an
    /// unbounded one, how many copies of the node fit in a request.
    pub cardinality: u64,
}

impl RuleCost {
    /// The cost the API server holds to [`PER_EXPRESSION_LIMIT`].
    pub fn total(&self) -> Option<u64> {
        self.per_call.as_ref().ok().map(|c| c.saturating_mul(self.cardinality))
    }
}

/// Every rule under `schema` (an openAPIV3Schema), priced; `root_path` names
/// the schema in field paths.
pub fn schema_rules(schema: &Value, root_path: &str) -> Vec<RuleCost> {
    let mut out = Vec::new();
    walk(schema, root_path.to_string(), Some(1), true, &mut out);
    out
}

fn walk(schema: &Value, path: String, cardinality: Option<u64>, root: bool, out: &mut Vec<RuleCost>) {
    if let Some(rules) = schema.get("x-kubernetes-validations").and_then(Value::as_array) {
        let declared = Decl::from_schema(schema, root);
        for (i, r) in rules.iter().enumerate() {
            let rule = r.get("rule").and_then(Value::as_str).unwrap_or_default().to_string();
            let (per_call, own) = match &declared {
                Some(d) => (rule_cost(d, &rule), d.min_size),
                None => (Err(RuleError::NoType), 0),
            };
            out.push(RuleCost {
                path: format!("{path}.x-kubernetes-validations[{i}].rule"),
                rule,
                per_call,
                cardinality: cardinality.unwrap_or(MAX_REQUEST_SIZE_BYTES / (own + 1)),
            });
        }
    }
    let factor = children_factor(schema);
    let child = cardinality.zip(factor).map(|(c, f)| c.saturating_mul(f));
    if let Some(props) = schema.get("properties").and_then(Value::as_object) {
        for (name, s) in props {
            walk(s, format!("{path}.properties[{name}]"), child, false, out);
        }
    }
    if let Some(items) = schema.get("items").filter(|v| v.is_object()) {
        walk(items, format!("{path}.items"), child, false, out);
    }
    if let Some(values) = schema.get("additionalProperties").filter(|v| v.is_object()) {
        walk(values, format!("{path}.additionalProperties"), child, false, out);
    }
}

/// How many times each child of `schema` may occur per occurrence of it
/// (apiextensions' extractMaxElements); None when unbounded.
fn children_factor(schema: &Value) -> Option<u64> {
    let bound = |k: &str| schema.get(k).and_then(Value::as_i64).map(|n| n.max(0) as u64);
    match schema.get("type").and_then(Value::as_str) {
        Some("object") if schema.get("additionalProperties").is_some_and(Value::is_object) => bound("maxProperties"),
        Some("array") => bound("maxItems"),
        _ => Some(1),
    }
}

/// Why the API server refuses a CRD's rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub field: String,
    /// `FieldValueInvalid` (the rule does not compile) or
    /// `FieldValueForbidden` (over budget).
    pub reason: &'static str,
    pub message: String,
}

/// Where the API server reports a version's schema: `spec.validation` when
/// every version shares one (its internal form), else per version.
fn schema_paths(crd: &Value) -> Vec<(String, Value)> {
    let versions = crd
        .pointer("/spec/versions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let schemas: Vec<Value> = versions
        .iter()
        .filter_map(|v| v.pointer("/schema/openAPIV3Schema").cloned())
        .collect();
    if !schemas.is_empty() && schemas.iter().all(|s| *s == schemas[0]) && schemas.len() == versions.len() {
        return vec![("spec.validation.openAPIV3Schema".to_string(), schemas[0].clone())];
    }
    versions
        .iter()
        .enumerate()
        .filter_map(|(i, v)| {
            let s = v.pointer("/schema/openAPIV3Schema")?.clone();
            Some((format!("spec.versions[{i}].schema.openAPIV3Schema"), s))
        })
        .collect()
}

/// What the API server would refuse in a CRD's validation rules: rules that
/// do not compile, rules over [`PER_EXPRESSION_LIMIT`], and a schema whose
/// rules together exceed [`PER_CRD_LIMIT`] (naming the costliest rules, as
/// the API server does).
pub fn crd_refusals(crd: &Value) -> Vec<Refusal> {
    let mut out = Vec::new();
    for (root, schema) in schema_paths(crd) {
        let rules = schema_rules(&schema, &root);
        let mut total: u64 = 0;
        let mut costliest: Vec<(u64, String)> = Vec::new();
        for r in &rules {
            match (&r.per_call, r.total()) {
                (Err(err), _) => out.push(Refusal {
                    field: r.path.clone(),
                    reason: "FieldValueInvalid",
                    message: format!("Invalid value: {:?}: {err}", r.rule),
                }),
                (Ok(_), Some(cost)) => {
                    if cost > PER_EXPRESSION_LIMIT {
                        out.push(Refusal {
                            field: r.path.clone(),
                            reason: "FieldValueForbidden",
                            message: format!(
                                "Forbidden: {}",
                                over_budget("estimated rule cost", cost, PER_EXPRESSION_LIMIT)
                            ),
                        });
                    }
                    total = total.saturating_add(cost);
                    if cost >= PER_CRD_LIMIT / 100 {
                        costliest.push((cost, r.path.clone()));
                    }
                }
                (Ok(_), None) => {}
            }
        }
        if total > PER_CRD_LIMIT {
            costliest.sort_by_key(|c| std::cmp::Reverse(c.0));
            for (_, path) in costliest.into_iter().take(4) {
                out.push(Refusal {
                    field: path,
                    reason: "FieldValueForbidden",
                    message: "Forbidden: contributed to estimated rule cost total exceeding cost limit for entire OpenAPIv3 schema".into(),
                });
            }
            out.push(Refusal {
                field: root.clone(),
                reason: "FieldValueForbidden",
                message: format!(
                    "Forbidden: {}",
                    over_budget(
                        "x-kubernetes-validations estimated rule cost total for entire OpenAPIv3 schema",
                        total,
                        PER_CRD_LIMIT
                    )
                ),
            });
        }
    }
    out
}

/// The API server's getCostErrorMessage.
pub fn over_budget(what: &str, cost: u64, limit: u64) -> String {
    let factor = cost as f64 / limit as f64;
    let factor = if factor > 100.0 {
        "more than 100x".to_string()
    } else if factor < 1.5 {
        format!("{factor:.6}x")
    } else {
        format!("{factor:.1}x")
    };
    format!(
        "{what} exceeds budget by factor of {factor} (try simplifying the rule, or adding maxItems, maxProperties, and maxLength where arrays, maps, and strings are declared)"
    )
}
