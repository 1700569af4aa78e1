//! cel-go's static cost estimator (checker/cost.go) over the types the
//! schema declares: the walk over the expression, sizes and paths.

use super::RuleError;
use super::decl::{Decl, Kind, MAP_KEY};
use super::functions::UNMODELLED;
use super::range::Range;
use super::types::{Ty, TyKind};
use kube_cel::cel::common::ast::{ComprehensionExpr, EntryExpr, Expr, IdedExpr, LiteralValue};
use std::collections::HashMap;

const LIST_CREATE_COST: u64 = 10;
const MAP_CREATE_COST: u64 = 30;
const STRUCT_CREATE_COST: u64 = 40;

/// Sizes of a literal container's entries (cel-go's entrySizeEstimate).
#[derive(Debug, Clone, Copy)]
pub(super) struct Entry {
    pub(super) list: bool,
    pub(super) key: Range,
    pub(super) val: Range,
}

pub(super) struct Local<'d> {
    pub(super) path: Vec<String>,
    pub(super) size: Option<Range>,
    pub(super) entry: Option<Entry>,
    pub(super) ty: Ty<'d>,
}

pub(super) struct Coster<'d> {
    pub(super) root: &'d Decl,
    pub(super) paths: HashMap<u64, Vec<String>>,
    pub(super) sizes: HashMap<u64, Range>,
    pub(super) entries: HashMap<u64, Entry>,
    pub(super) types: HashMap<u64, Ty<'d>>,
    pub(super) locals: HashMap<String, Vec<Local<'d>>>,
}

pub(super) type Cost = Result<Range, RuleError>;

impl<'d> Coster<'d> {
    pub(super) fn new(root: &'d Decl) -> Self {
        Coster {
            root,
            paths: HashMap::new(),
            sizes: HashMap::new(),
            entries: HashMap::new(),
            types: HashMap::new(),
            locals: HashMap::new(),
        }
    }

    pub(super) fn ty(&self, e: &IdedExpr) -> Ty<'d> {
        self.types.get(&e.id).cloned().unwrap_or(Ty::Dyn)
    }

    pub(super) fn path(&self, e: &IdedExpr) -> Vec<String> {
        if let Expr::Ident(name) = &e.expr
            && let Some(v) = self.locals.get(name).and_then(|s| s.last())
        {
            return v.path.clone();
        }
        self.paths.get(&e.id).cloned().unwrap_or_default()
    }

    /// The schema's size bound for the value at `path` (the apiextensions
    /// sizeEstimator: the first element is the variable, always `self`'s type).
    pub(super) fn estimate(&self, path: &[String]) -> Option<Range> {
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

    pub(super) fn compute_size(&mut self, e: &IdedExpr) -> Option<Range> {
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

    pub(super) fn size(&mut self, e: &IdedExpr) -> Range {
        self.compute_size(e).unwrap_or(Range::UNKNOWN)
    }

    pub(super) fn entry(&self, e: &IdedExpr) -> Option<Entry> {
        if let Some(s) = self.entries.get(&e.id) {
            return Some(*s);
        }
        if let Expr::Ident(name) = &e.expr {
            return self.locals.get(name).and_then(|s| s.last()).and_then(|v| v.entry);
        }
        None
    }

    pub(super) fn push_local(&mut self, name: &str, local: Local<'d>) {
        self.locals.entry(name.to_string()).or_default().push(local);
    }

    pub(super) fn pop_local(&mut self, name: &str) {
        if let Some(s) = self.locals.get_mut(name) {
            s.pop();
        }
    }

    pub(super) fn cost(&mut self, e: &IdedExpr) -> Cost {
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

    pub(super) fn ident(&mut self, id: u64, name: &str) -> Cost {
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

    pub(super) fn select_type(&self, operand: &IdedExpr, field: &str) -> Result<Ty<'d>, RuleError> {
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

    pub(super) fn comprehension(&mut self, e: &IdedExpr, c: &ComprehensionExpr) -> Cost {
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

    pub(super) fn call(&mut self, e: &IdedExpr, name: &str, target: Option<&IdedExpr>, args: &[IdedExpr]) -> Cost {
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
}

/// Sizes CEL knows from the expression itself (cel-go's computeExprSize).
pub(super) fn literal_size(e: &IdedExpr) -> Option<Range> {
    match &e.expr {
        Expr::Literal(LiteralValue::String(s)) => Some(Range::fixed(s.chars().count() as u64)),
        Expr::Literal(LiteralValue::Bytes(b)) => Some(Range::fixed(b.len() as u64)),
        Expr::Literal(_) => Some(Range::fixed(1)),
        Expr::List(l) => Some(Range::fixed(l.elements.len() as u64)),
        Expr::Map(m) => Some(Range::fixed(m.entries.len() as u64)),
        _ => None,
    }
}
