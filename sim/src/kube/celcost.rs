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

use kube_cel::cel::common::ast::{EntryExpr, Expr, IdedExpr, LiteralValue};
use kube_cel::cel::parser::Parser;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};

/// `StaticEstimatedCostLimit`: the most one rule may cost, cardinality included.
pub const PER_EXPRESSION_LIMIT: u64 = 10_000_000;
/// `StaticEstimatedCRDCostLimit`: the most all rules of one schema may cost together.
pub const PER_CRD_LIMIT: u64 = 100_000_000;
/// `DefaultMaxRequestSizeBytes`: sizes without a declared bound are what fits in one request.
const MAX_REQUEST_SIZE_BYTES: u64 = 3 * 1024 * 1024;
const STRING_TRAVERSAL_FACTOR: f64 = 0.1;
const REGEX_LENGTH_FACTOR: f64 = 0.25;
const LIST_CREATE_COST: u64 = 10;
const MAP_CREATE_COST: u64 = 30;
const STRUCT_CREATE_COST: u64 = 40;
/// Minimum JSON sizes of the typed string formats (apiserver's cel limits).
const MIN_DURATION_SIZE: u64 = 3;
const DATE_SIZE: u64 = 12;
const MIN_DATETIME_SIZE: u64 = 21;

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

// ---------------------------------------------------------------- sizes and costs

/// A `[min, max]` range, saturating at `u64::MAX` (cel-go's SizeEstimate and CostEstimate).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Range {
    min: u64,
    max: u64,
}

impl Range {
    const UNKNOWN: Range = Range { min: 0, max: u64::MAX };
    fn fixed(n: u64) -> Range {
        Range { min: n, max: n }
    }
    fn add(self, o: Range) -> Range {
        Range {
            min: self.min.saturating_add(o.min),
            max: self.max.saturating_add(o.max),
        }
    }
    fn mul(self, o: Range) -> Range {
        Range {
            min: self.min.saturating_mul(o.min),
            max: self.max.saturating_mul(o.max),
        }
    }
    fn factor(self, f: f64) -> Range {
        Range {
            min: by_factor(self.min, f),
            max: by_factor(self.max, f),
        }
    }
    fn union(self, o: Range) -> Range {
        Range {
            min: self.min.min(o.min),
            max: self.max.max(o.max),
        }
    }
}

/// x * f rounded up, saturating (cel-go's multiplyByCostFactor).
fn by_factor(x: u64, f: f64) -> u64 {
    let v = (x as f64 * f).ceil();
    if v >= 18_446_744_073_709_551_616.0 {
        u64::MAX
    } else {
        v as u64
    }
}

// ---------------------------------------------------------------- declared types

/// The CEL view of a schema node (apiserver's DeclType): its kind, how many
/// elements it may hold (list items, map entries, string bytes; 0 for
/// scalars and objects) and its smallest JSON encoding.
#[derive(Debug, Clone)]
pub struct Decl {
    kind: Kind,
    max_elements: u64,
    min_size: u64,
}

#[derive(Debug, Clone)]
enum Kind {
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
static MAP_KEY: Decl = Decl {
    kind: Kind::Str,
    max_elements: 0,
    min_size: 2,
};

fn decl(kind: Kind, max_elements: u64, min_size: u64) -> Decl {
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

fn object(schema: &Value, resource_root: bool) -> Decl {
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
fn escape(name: &str) -> Option<String> {
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

// ---------------------------------------------------------------- inferred types

/// The type of an expression, as far as the cost model needs it.
#[derive(Debug, Clone)]
enum Ty<'d> {
    Decl(&'d Decl),
    Bool,
    Int,
    Double,
    Str,
    Bytes,
    Null,
    List(Box<Ty<'d>>),
    Map(Box<Ty<'d>>),
    Type,
    Dyn,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TyKind {
    Bool,
    Int,
    Double,
    Str,
    Bytes,
    Null,
    List,
    Map,
    Object,
    Duration,
    Timestamp,
    Type,
    Dyn,
}

impl<'d> Ty<'d> {
    fn kind(&self) -> TyKind {
        match self {
            Ty::Decl(d) => match d.kind {
                Kind::Object(_) => TyKind::Object,
                Kind::List(_) => TyKind::List,
                Kind::Map(_) => TyKind::Map,
                Kind::Str => TyKind::Str,
                Kind::Bytes => TyKind::Bytes,
                Kind::Bool => TyKind::Bool,
                Kind::Int => TyKind::Int,
                Kind::Double => TyKind::Double,
                Kind::Duration => TyKind::Duration,
                Kind::Timestamp => TyKind::Timestamp,
                Kind::Dyn => TyKind::Dyn,
            },
            Ty::Bool => TyKind::Bool,
            Ty::Int => TyKind::Int,
            Ty::Double => TyKind::Double,
            Ty::Str => TyKind::Str,
            Ty::Bytes => TyKind::Bytes,
            Ty::Null => TyKind::Null,
            Ty::List(_) => TyKind::List,
            Ty::Map(_) => TyKind::Map,
            Ty::Type => TyKind::Type,
            Ty::Dyn => TyKind::Dyn,
        }
    }

    /// List items, or map keys (what a comprehension binds).
    fn iterated(&self) -> Ty<'d> {
        match self {
            Ty::Decl(d) => match &d.kind {
                Kind::List(items) => Ty::Decl(items),
                Kind::Map(_) => Ty::Decl(&MAP_KEY),
                _ => Ty::Dyn,
            },
            Ty::List(t) => (**t).clone(),
            Ty::Map(_) => Ty::Str,
            _ => Ty::Dyn,
        }
    }

    /// List items, or map values (what an index yields).
    fn element(&self) -> Ty<'d> {
        match self {
            Ty::Decl(d) => match &d.kind {
                Kind::List(items) => Ty::Decl(items),
                Kind::Map(values) => Ty::Decl(values),
                _ => Ty::Dyn,
            },
            Ty::List(t) | Ty::Map(t) => (**t).clone(),
            _ => Ty::Dyn,
        }
    }

    fn is_scalar(&self) -> bool {
        matches!(
            self.kind(),
            TyKind::Bool | TyKind::Int | TyKind::Double | TyKind::Duration | TyKind::Timestamp
        )
    }
}

// ---------------------------------------------------------------- the estimator

/// Sizes of a literal container's entries (cel-go's entrySizeEstimate).
#[derive(Debug, Clone, Copy)]
struct Entry {
    list: bool,
    key: Range,
    val: Range,
}

struct Local<'d> {
    path: Vec<String>,
    size: Option<Range>,
    entry: Option<Entry>,
    ty: Ty<'d>,
}

struct Coster<'d> {
    root: &'d Decl,
    paths: HashMap<u64, Vec<String>>,
    sizes: HashMap<u64, Range>,
    entries: HashMap<u64, Entry>,
    types: HashMap<u64, Ty<'d>>,
    locals: HashMap<String, Vec<Local<'d>>>,
}

/// Functions the Kubernetes CEL libraries and cel-go's extensions price on
/// their own.
const UNMODELLED: [&str; 34] = [
    "isSorted",
    "sum",
    "max",
    "min",
    "indexOf",
    "lastIndexOf",
    "url",
    "lowerAscii",
    "upperAscii",
    "substring",
    "trim",
    "replace",
    "split",
    "join",
    "find",
    "findAll",
    "cidr",
    "isIP",
    "isCIDR",
    "ip",
    "ip.isCanonical",
    "containsIP",
    "containsCIDR",
    "quantity",
    "isQuantity",
    "format",
    "quote",
    "check",
    "charAt",
    "reverse",
    "sets.contains",
    "sets.equivalent",
    "sets.intersects",
    "format.named",
];

type Cost = Result<Range, RuleError>;

impl<'d> Coster<'d> {
    fn new(root: &'d Decl) -> Self {
        Coster {
            root,
            paths: HashMap::new(),
            sizes: HashMap::new(),
            entries: HashMap::new(),
            types: HashMap::new(),
            locals: HashMap::new(),
        }
    }

    fn ty(&self, e: &IdedExpr) -> Ty<'d> {
        self.types.get(&e.id).cloned().unwrap_or(Ty::Dyn)
    }

    fn path(&self, e: &IdedExpr) -> Vec<String> {
        if let Expr::Ident(name) = &e.expr
            && let Some(v) = self.locals.get(name).and_then(|s| s.last())
        {
            return v.path.clone();
        }
        self.paths.get(&e.id).cloned().unwrap_or_default()
    }

    /// The schema's size bound for the value at `path` (the apiextensions
    /// sizeEstimator: the first element is the variable, always `self`'s type).
    fn estimate(&self, path: &[String]) -> Option<Range> {
        let mut node = self.root;
        for name in path.get(1..)? {
            node = match (name.as_str(), &node.kind) {
                ("@items" | "@values", Kind::List(e) | Kind::Map(e)) => e,
                ("@keys", Kind::Map(_)) => &MAP_KEY,
                (field, Kind::Object(fields)) => fields.get(field)?,
                _ => return None,
            };
        }
        Some(Range {
            min: 0,
            max: node.max_elements,
        })
    }

    fn compute_size(&mut self, e: &IdedExpr) -> Option<Range> {
        if let Some(s) = self.sizes.get(&e.id) {
            return Some(*s);
        }
        if let Some(s) = literal_size(e) {
            return Some(s);
        }
        let path = self.path(e);
        if !path.is_empty()
            && let Some(s) = self.estimate(&path)
        {
            self.sizes.insert(e.id, s);
            return Some(s);
        }
        if self.ty(e).is_scalar() {
            return Some(Range::fixed(1));
        }
        if let Expr::Ident(name) = &e.expr {
            return self.locals.get(name).and_then(|s| s.last()).and_then(|v| v.size);
        }
        None
    }

    fn size(&mut self, e: &IdedExpr) -> Range {
        self.compute_size(e).unwrap_or(Range::UNKNOWN)
    }

    fn entry(&self, e: &IdedExpr) -> Option<Entry> {
        if let Some(s) = self.entries.get(&e.id) {
            return Some(*s);
        }
        if let Expr::Ident(name) = &e.expr {
            return self.locals.get(name).and_then(|s| s.last()).and_then(|v| v.entry);
        }
        None
    }

    fn push_local(&mut self, name: &str, local: Local<'d>) {
        self.locals.entry(name.to_string()).or_default().push(local);
    }

    fn pop_local(&mut self, name: &str) {
        if let Some(s) = self.locals.get_mut(name) {
            s.pop();
        }
    }

    fn cost(&mut self, e: &IdedExpr) -> Cost {
        match &e.expr {
            Expr::Literal(l) => {
                let ty = match l {
                    LiteralValue::Boolean(_) => Ty::Bool,
                    LiteralValue::Bytes(_) => Ty::Bytes,
                    LiteralValue::Double(_) => Ty::Double,
                    LiteralValue::Int(_) | LiteralValue::UInt(_) => Ty::Int,
                    LiteralValue::Null => Ty::Null,
                    LiteralValue::String(_) => Ty::Str,
                };
                self.types.insert(e.id, ty);
                Ok(Range::fixed(0))
            }
            Expr::Ident(name) => self.ident(e.id, name),
            Expr::Select(sel) => {
                let operand = self.cost(&sel.operand)?;
                let ty = self.select_type(&sel.operand, &sel.field)?;
                self.types.insert(e.id, if sel.test { Ty::Bool } else { ty });
                if sel.test {
                    // Kubernetes keeps has() free (PresenceTestHasCost(false)).
                    return Ok(operand);
                }
                let mut path = self.path(&sel.operand);
                path.push(sel.field.clone());
                self.paths.insert(e.id, path);
                let lookup = match self.ty(&sel.operand).kind() {
                    TyKind::Map | TyKind::Object => 1,
                    _ => 0,
                };
                Ok(operand.add(Range::fixed(lookup)))
            }
            Expr::Call(call) => self.call(e, &call.func_name, call.target.as_deref(), &call.args),
            Expr::List(list) => {
                let mut sum = Range::fixed(LIST_CREATE_COST);
                let mut item = if list.elements.is_empty() {
                    Range::fixed(0)
                } else {
                    Range { min: u64::MAX, max: 0 }
                };
                for el in &list.elements {
                    sum = sum.add(self.cost(el)?);
                    item = item.union(self.size(el));
                }
                let elem = list.elements.first().map(|f| self.ty(f)).unwrap_or(Ty::Dyn);
                self.types.insert(e.id, Ty::List(Box::new(elem)));
                self.entries.insert(
                    e.id,
                    Entry {
                        list: true,
                        key: Range::fixed(1),
                        val: item,
                    },
                );
                Ok(sum)
            }
            Expr::Map(map) => {
                let mut sum = Range::fixed(MAP_CREATE_COST);
                let empty = map.entries.is_empty();
                let start = if empty {
                    Range::fixed(0)
                } else {
                    Range { min: u64::MAX, max: 0 }
                };
                let (mut keys, mut vals, mut val_ty) = (start, start, Ty::Dyn);
                for entry in &map.entries {
                    if let EntryExpr::MapEntry(m) = &entry.expr {
                        sum = sum.add(self.cost(&m.key)?).add(self.cost(&m.value)?);
                        keys = keys.union(self.size(&m.key));
                        vals = vals.union(self.size(&m.value));
                        val_ty = self.ty(&m.value);
                    }
                }
                self.types.insert(e.id, Ty::Map(Box::new(val_ty)));
                self.entries.insert(
                    e.id,
                    Entry {
                        list: false,
                        key: keys,
                        val: vals,
                    },
                );
                Ok(sum)
            }
            Expr::Struct(s) => {
                let mut sum = Range::fixed(STRUCT_CREATE_COST);
                for entry in &s.entries {
                    if let EntryExpr::StructField(f) = &entry.expr {
                        sum = sum.add(self.cost(&f.value)?);
                    }
                }
                Ok(sum)
            }
            Expr::Comprehension(c) => self.comprehension(e, c),
            Expr::Unspecified => Ok(Range::fixed(0)),
        }
    }

    fn ident(&mut self, id: u64, name: &str) -> Cost {
        if let Some(v) = self.locals.get(name).and_then(|s| s.last()) {
            let (path, ty) = (v.path.clone(), v.ty.clone());
            self.paths.insert(id, path);
            self.types.insert(id, ty);
            return Ok(Range::fixed(1));
        }
        let ty = match name {
            "self" | "oldSelf" => Ty::Decl(self.root),
            "int" | "uint" | "double" | "bool" | "string" | "bytes" | "list" | "map" | "null_type" | "type" => Ty::Type,
            _ => {
                return Err(RuleError::Compile(format!(
                    "undeclared reference to '{name}' (in container '')"
                )));
            }
        };
        self.paths.insert(id, vec![name.to_string()]);
        self.types.insert(id, ty);
        Ok(Range::fixed(1))
    }

    fn select_type(&self, operand: &IdedExpr, field: &str) -> Result<Ty<'d>, RuleError> {
        match self.ty(operand) {
            Ty::Decl(d) => match &d.kind {
                Kind::Object(fields) => fields
                    .get(field)
                    .map(Ty::Decl)
                    .ok_or_else(|| RuleError::Compile(format!("undefined field '{field}'"))),
                Kind::Map(values) => Ok(Ty::Decl(values)),
                Kind::Dyn => Ok(Ty::Dyn),
                _ => Err(RuleError::Compile(format!(
                    "type does not support field selection: '{field}'"
                ))),
            },
            Ty::Map(values) => Ok(*values),
            _ => Ok(Ty::Dyn),
        }
    }

    fn comprehension(&mut self, e: &IdedExpr, c: &kube_cel::cel::common::ast::ComprehensionExpr) -> Cost {
        let mut sum = self.cost(&c.iter_range)?.add(self.cost(&c.accu_init)?);
        let accu = Local {
            path: self.path(&c.accu_init),
            size: self.compute_size(&c.accu_init),
            entry: self.entry(&c.accu_init),
            ty: self.ty(&c.accu_init),
        };
        self.push_local(&c.accu_var, accu);
        if c.iter_var2.is_some() {
            return Err(RuleError::Unsupported("two-variable comprehension".into()));
        }
        let range_ty = self.ty(&c.iter_range);
        let entry = self.entry(&c.iter_range);
        let is_list = entry.map_or(range_ty.kind() == TyKind::List, |en| en.list);
        let (sub, size) = if is_list {
            ("@items", entry.map(|en| en.val))
        } else {
            ("@keys", entry.map(|en| en.key))
        };
        let mut path = self.path(&c.iter_range);
        path.push(sub.to_string());
        let iter = Local {
            path,
            size,
            entry: None,
            ty: range_ty.iterated(),
        };
        self.push_local(&c.iter_var, iter);
        let loop_cost = self.cost(&c.loop_cond)?;
        let step_cost = self.cost(&c.loop_step)?;
        self.pop_local(&c.iter_var);
        sum = sum.add(self.cost(&c.result)?);
        let result_ty = self.ty(&c.result);
        self.pop_local(&c.accu_var);
        let count = self.size(&c.iter_range);
        sum = sum.add(count.mul(step_cost.add(loop_cost)));
        match &c.accu_init.expr {
            Expr::Literal(_) => {
                if let Some(s) = self.compute_size(&c.accu_init) {
                    self.sizes.insert(e.id, s);
                }
            }
            Expr::List(_) | Expr::Map(_) => {
                self.sizes.insert(e.id, count);
            }
            _ => {}
        }
        self.types.insert(e.id, result_ty);
        Ok(sum)
    }

    fn call(&mut self, e: &IdedExpr, name: &str, target: Option<&IdedExpr>, args: &[IdedExpr]) -> Cost {
        if name == "dyn" && args.len() == 1 {
            let c = self.cost(&args[0])?;
            if let Some(s) = self.compute_size(&args[0]) {
                self.sizes.insert(e.id, s);
            }
            self.types.insert(e.id, Ty::Dyn);
            return Ok(Range::fixed(1).add(c));
        }
        let mut arg_costs = Vec::with_capacity(args.len());
        for a in args {
            arg_costs.push(self.cost(a)?);
        }
        let target_cost = match target {
            Some(t) => self.cost(t)?,
            None => Range::fixed(0),
        };
        if UNMODELLED.contains(&name) {
            return Err(RuleError::Unsupported(name.to_string()));
        }
        let args_sum = arg_costs.iter().fold(Range::fixed(0), |s, c| s.add(*c));
        let (fn_cost, ty, result_size) = self.function(e, name, target, args, &arg_costs, args_sum);
        self.types.insert(e.id, ty);
        let result_size = result_size.or_else(|| self.compute_size(e));
        if let Some(s) = result_size {
            self.sizes.insert(e.id, s);
        }
        Ok(target_cost.add(fn_cost))
    }

    /// cel-go's functionCost for the overloads CRD rules use; everything else
    /// is O(1), as there.
    fn function(
        &mut self,
        e: &IdedExpr,
        name: &str,
        target: Option<&IdedExpr>,
        args: &[IdedExpr],
        arg_costs: &[Range],
        args_sum: Range,
    ) -> (Range, Ty<'d>, Option<Range>) {
        let o1 = Range::fixed(1).add(args_sum);
        let first = args.first().map(|a| self.ty(a)).unwrap_or(Ty::Dyn);
        match (name, target, args) {
            ("_&&_" | "_||_", None, [_, _]) => {
                let (l, r) = (arg_costs[0], arg_costs[1]);
                (
                    Range {
                        min: l.min,
                        max: l.add(r).max,
                    },
                    Ty::Bool,
                    None,
                )
            }
            ("_?_:_", None, [_, a, b]) => {
                let size = self.size(a).union(self.size(b));
                if let (Some(x), Some(y)) = (self.entry(a), self.entry(b)) {
                    let u = Entry {
                        list: x.list,
                        key: x.key.union(y.key),
                        val: x.val.union(y.val),
                    };
                    self.entries.insert(e.id, u);
                }
                let ty = match self.ty(a).kind() {
                    TyKind::Null | TyKind::Dyn => self.ty(b),
                    _ => self.ty(a),
                };
                (arg_costs[0].add(arg_costs[1].union(arg_costs[2])), ty, Some(size))
            }
            ("_==_" | "_!=_", None, [a, b]) => (self.compare(a, b).add(args_sum), Ty::Bool, None),
            ("_<_" | "_<=_" | "_>_" | "_>=_", None, [a, b]) => {
                let cost = if matches!(first.kind(), TyKind::Str | TyKind::Bytes) {
                    self.compare(a, b).add(args_sum)
                } else {
                    o1
                };
                (cost, Ty::Bool, None)
            }
            ("_+_", None, [a, b]) => match first.kind() {
                TyKind::Str | TyKind::Bytes | TyKind::List => {
                    let size = self.size(a).add(self.size(b));
                    if let (Some(x), Some(y)) = (self.entry(a), self.entry(b)) {
                        let u = Entry {
                            list: true,
                            key: x.key.union(y.key),
                            val: x.val.union(y.val),
                        };
                        self.entries.insert(e.id, u);
                    }
                    let cost = if first.kind() == TyKind::List {
                        o1
                    } else {
                        size.factor(STRING_TRAVERSAL_FACTOR).add(args_sum)
                    };
                    (cost, first, Some(size))
                }
                _ => (o1, first, None),
            },
            ("@in", None, [_, container]) => {
                let ty = self.ty(container);
                let cost = match ty.kind() {
                    // A map lookup is O(1); a list (or a value that may be one) O(n).
                    TyKind::Map | TyKind::Object => o1,
                    _ => self.size(container).factor(1.0).add(args_sum),
                };
                (cost, Ty::Bool, None)
            }
            ("_[_]", None, [container, _]) => {
                let ty = self.ty(container);
                let sub = if ty.kind() == TyKind::List { "@items" } else { "@values" };
                let mut path = self.path(container);
                path.push(sub.to_string());
                self.paths.insert(e.id, path);
                let size = self.entry(container).map(|en| en.val);
                (o1, ty.element(), size)
            }
            ("size", _, _) => (o1, Ty::Int, None),
            ("startsWith" | "endsWith", Some(_), [a]) => (
                self.size(a).factor(STRING_TRAVERSAL_FACTOR).add(args_sum),
                Ty::Bool,
                None,
            ),
            ("contains", Some(t), [a]) => {
                let s = self.size(t).factor(STRING_TRAVERSAL_FACTOR);
                let sub = self.size(a).factor(STRING_TRAVERSAL_FACTOR);
                (s.mul(sub).add(args_sum), Ty::Bool, None)
            }
            ("matches", Some(t), [re]) => {
                // The regex's length stands in for its complexity (cel-go's guess:
                // an expression per 4 characters).
                let s = self.size(t).add(Range::fixed(1)).factor(STRING_TRAVERSAL_FACTOR);
                let r = self.size(re).factor(REGEX_LENGTH_FACTOR);
                (s.mul(r).add(args_sum), Ty::Bool, None)
            }
            ("bytes", None, [a]) if self.ty(a).kind() == TyKind::Str => {
                let sz = self.size(a);
                let out = Range {
                    min: sz.min,
                    max: sz.max.saturating_mul(4),
                };
                (sz.factor(STRING_TRAVERSAL_FACTOR).add(args_sum), Ty::Bytes, Some(out))
            }
            ("string", None, [a]) if self.ty(a).kind() == TyKind::Bytes => {
                let sz = self.size(a);
                let out = Range {
                    min: sz.min / 4,
                    max: sz.max,
                };
                (sz.factor(STRING_TRAVERSAL_FACTOR).add(args_sum), Ty::Str, Some(out))
            }
            ("!_" | "@not_strictly_false", None, _) => (o1, Ty::Bool, None),
            ("int", None, _) => (o1, Ty::Int, None),
            ("double", None, _) => (o1, Ty::Double, None),
            ("string", None, _) => (o1, Ty::Str, None),
            ("type", None, _) => (o1, Ty::Type, None),
            ("-_" | "_-_" | "_*_" | "_/_" | "_%_", None, _) => (o1, first, None),
            _ => (o1, Ty::Dyn, None),
        }
    }

    /// Equality and ordering: O(the shorter operand), 1 for scalars.
    fn compare(&mut self, a: &IdedExpr, b: &IdedExpr) -> Range {
        let (l, r) = (self.size(a), self.size(b));
        let max = l.max.min(r.max);
        Range {
            min: u64::from(max > 0),
            max,
        }
        .factor(STRING_TRAVERSAL_FACTOR)
    }
}

/// Sizes CEL knows from the expression itself (cel-go's computeExprSize).
fn literal_size(e: &IdedExpr) -> Option<Range> {
    match &e.expr {
        Expr::Literal(LiteralValue::String(s)) => Some(Range::fixed(s.chars().count() as u64)),
        Expr::Literal(LiteralValue::Bytes(b)) => Some(Range::fixed(b.len() as u64)),
        Expr::Literal(_) => Some(Range::fixed(1)),
        Expr::List(l) => Some(Range::fixed(l.elements.len() as u64)),
        Expr::Map(m) => Some(Range::fixed(m.entries.len() as u64)),
        _ => None,
    }
}

// ---------------------------------------------------------------- rules and schemas

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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cost(schema: Value, rule: &str) -> u64 {
        let d = Decl::from_schema(&schema, false).expect("schema has a CEL type");
        rule_cost(&d, rule).expect("rule is priced")
    }

    fn array(item: &str, max: Option<u64>) -> Value {
        let mut s = json!({"type": "array", "items": {"type": item}});
        if let Some(m) = max {
            s["maxItems"] = json!(m);
        }
        s
    }

    fn string(max: Option<u64>) -> Value {
        let mut s = json!({"type": "string"});
        if let Some(m) = max {
            s["maxLength"] = json!(m);
        }
        s
    }

    fn map(value: &str, max: Option<u64>) -> Value {
        let mut s = json!({"type": "object", "additionalProperties": {"type": value}});
        if let Some(m) = max {
            s["maxProperties"] = json!(m);
        }
        s
    }

    /// Expected figures from the API server's own cost tests
    /// (apiextensions-apiserver, TestCostEstimation): unbounded, then bounded.
    #[test]
    fn costs_match_the_api_servers_estimates() {
        let cases: [(&str, Value, Value, &str, u64, u64); 11] = [
            (
                "number array",
                array("number", None),
                array("number", Some(10)),
                "self.all(x, true)",
                4718591,
                32,
            ),
            (
                "string array",
                array("string", None),
                array("string", Some(20)),
                "self.all(x, true)",
                3145727,
                62,
            ),
            (
                "boolean array",
                array("boolean", None),
                array("boolean", Some(5)),
                "self.all(x, true)",
                1887437,
                17,
            ),
            (
                "map of strings",
                map("string", None),
                map("string", Some(3)),
                "self.all(x, true)",
                1179647,
                11,
            ),
            (
                "contains",
                string(None),
                string(Some(10)),
                "self.contains('test')",
                314574,
                5,
            ),
            (
                "endsWith",
                string(None),
                string(Some(30)),
                "self.endsWith('test')",
                2,
                2,
            ),
            (
                "concat",
                string(None),
                string(Some(4)),
                r#"size(self + "hello") > size("hello")"#,
                314578,
                7,
            ),
            (
                "index of strings",
                array("string", None),
                array("string", Some(8)),
                "self[1] == self[1]",
                314577,
                314577,
            ),
            (
                "matches",
                string(None),
                string(Some(50)),
                r#"self.matches("x")"#,
                314574,
                22,
            ),
            ("string equality", string(None), string(Some(0)), r#"self == "x""#, 2, 1),
            (
                "O(n^2)",
                array("number", None),
                array("number", Some(10)),
                "self.all(x, self.all(y, true))",
                0,
                352,
            ),
        ];
        for (name, unbounded, bounded, rule, calc, set) in cases {
            // The O(n^2) rule has no unbounded figure there, only "over the limit".
            if calc > 0 {
                assert_eq!(cost(unbounded, rule), calc, "{name}, unbounded");
            }
            assert_eq!(cost(bounded, rule), set, "{name}, bounded");
        }
    }

    #[test]
    fn map_values_and_keys_follow_the_schema() {
        let nested = json!({"type": "object", "maxProperties": 10, "additionalProperties": {"type": "string"}});
        assert_eq!(cost(nested, "self.all(x, x.contains(self[x]))"), 72);
    }

    fn crd(schema: Value) -> Value {
        json!({"spec": {"versions": [{"name": "v1", "schema": {"openAPIV3Schema": schema}}]}})
    }

    /// A deliberately unbounded rule: an unbounded list of unbounded strings,
    /// under an unbounded list. The same rule with bounds passes.
    #[test]
    fn an_unbounded_rule_is_over_budget_and_bounds_bring_it_under() {
        let statement = |bounded: bool| {
            let mut actions = json!({"type": "array", "items": {"type": "string"}});
            let mut statements = json!({"type": "array", "items": {
                "type": "object", "required": ["actions"],
                "properties": {"actions": actions.clone()},
                "x-kubernetes-validations": [{"rule": "!self.actions.exists(a, a.endsWith('*') || a == 'iam:PassRole')"}],
            }});
            if bounded {
                actions["maxItems"] = json!(100);
                actions["items"]["maxLength"] = json!(128);
                statements["maxItems"] = json!(100);
                statements["items"]["properties"]["actions"] = actions;
            }
            crd(
                json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {"statements": statements}}}}),
            )
        };
        let refused = crd_refusals(&statement(false));
        let field = "spec.validation.openAPIV3Schema.properties[spec].properties[statements].items.x-kubernetes-validations[0].rule";
        assert!(
            refused.iter().any(|r| r.field == field
                && r.reason == "FieldValueForbidden"
                && r.message
                    .contains("estimated rule cost exceeds budget by factor of more than 100x")),
            "{refused:?}"
        );
        assert!(
            refused.iter().any(|r| r.field == "spec.validation.openAPIV3Schema"),
            "the total is over too: {refused:?}"
        );
        assert_eq!(crd_refusals(&statement(true)), Vec::new());
        let rules = schema_rules(
            &statement(true)["spec"]["versions"][0]["schema"]["openAPIV3Schema"],
            "s",
        );
        assert_eq!(rules.len(), 1);
        assert_eq!(rules[0].cardinality, 100);
    }

    #[test]
    fn syntax_errors_and_unknown_fields_do_not_compile() {
        let schema = json!({"type": "object", "properties": {"spec": {"type": "object",
            "properties": {"a": {"type": "string", "maxLength": 5}},
            "x-kubernetes-validations": [{"rule": "self.a == "}, {"rule": "self.b == 'x'"}, {"rule": "self.a"}, {"rule": "self.a.lowerAscii() == 'x'"}]}}});
        let refused = crd_refusals(&crd(schema));
        let fields: Vec<&str> = refused.iter().map(|r| r.field.as_str()).collect();
        let at =
            |i: usize| format!("spec.validation.openAPIV3Schema.properties[spec].x-kubernetes-validations[{i}].rule");
        assert_eq!(fields, vec![at(0), at(1), at(2), at(3)]);
        assert!(
            refused[0].message.contains("compilation failed: ERROR: <input>:1:"),
            "{}",
            refused[0].message
        );
        assert!(
            refused[1].message.contains("undefined field 'b'"),
            "{}",
            refused[1].message
        );
        assert!(refused[2].message.contains("must evaluate to a bool"));
        assert!(refused[3].message.contains("cannot estimate the cost of `lowerAscii`"));
        assert!(refused.iter().all(|r| r.reason == "FieldValueInvalid"));
    }

    #[test]
    fn reserved_words_are_escaped_and_cost_factors_are_worded_as_the_api_server_does() {
        let s = json!({"type": "object", "properties": {"function": {"type": "object", "properties": {"aws": {"type": "string"}}}}});
        // has() is free; reaching the field costs the variable and one lookup.
        assert_eq!(cost(s, "has(self.__function__.aws)"), 2);
        assert_eq!(
            escape("x-azure.id/a__b"),
            Some("x__dash__azure__dot__id__slash__a__underscores__b".into())
        );
        assert!(over_budget("c", 12_000_000, 10_000_000).contains("by factor of 1.200000x"));
        assert!(over_budget("c", 25_000_000, 10_000_000).contains("by factor of 2.5x"));
    }
}
