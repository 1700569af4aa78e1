//! What each function costs (cel-go's functionCost), for the overloads CRD
//! rules use; everything else is O(1), as there, except the functions the
//! Kubernetes libraries price on their own, which are refused as not modelled.

use super::coster::{Coster, Entry};
use super::range::Range;
use super::types::{Ty, TyKind};
use kube_cel::cel::common::ast::IdedExpr;

const STRING_TRAVERSAL_FACTOR: f64 = 0.1;
const REGEX_LENGTH_FACTOR: f64 = 0.25;

/// Functions the Kubernetes CEL libraries and cel-go's extensions price on
/// their own.
pub(super) const UNMODELLED: [&str; 34] = [
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

impl<'d> Coster<'d> {
    /// cel-go's functionCost for the overloads CRD rules use; everything else
    /// is O(1), as there.
    pub(super) fn function(
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
    pub(super) fn compare(&mut self, a: &IdedExpr, b: &IdedExpr) -> Range {
        let (l, r) = (self.size(a), self.size(b));
        let max = l.max.min(r.max);
        Range {
            min: u64::from(max > 0),
            max,
        }
        .factor(STRING_TRAVERSAL_FACTOR)
    }
}
