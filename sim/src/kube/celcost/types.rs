//! The type of an expression, as far as the cost model needs it.

use super::decl::{Decl, Kind, MAP_KEY};

/// The type of an expression, as far as the cost model needs it.
#[derive(Debug, Clone)]
pub(super) enum Ty<'d> {
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
pub(super) enum TyKind {
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
    pub(super) fn kind(&self) -> TyKind {
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
    pub(super) fn iterated(&self) -> Ty<'d> {
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
    pub(super) fn element(&self) -> Ty<'d> {
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

    pub(super) fn is_scalar(&self) -> bool {
        matches!(
            self.kind(),
            TyKind::Bool | TyKind::Int | TyKind::Double | TyKind::Duration | TyKind::Timestamp
        )
    }
}
