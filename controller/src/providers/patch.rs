//! A patch is an ordered list of fields, defined once.
//!
//! Every cloud has a write that changes several fields of one resource at
//! once (Lambda's UpdateFunctionConfiguration, a Cloud Functions PATCH with
//! its update mask, an ARM PATCH of a site's config). Each field says its
//! API path and how a person reads the change; the action's summary, the
//! update mask and the request body are all derived from the same list, so
//! they can never disagree about what a write changes.

use serde::Serialize;

/// One field a patch sets.
pub trait Field {
    /// The field's path in the cloud's API (an update mask entry, a request
    /// member), e.g. `service_config.ingress_settings`.
    fn path(&self) -> &'static str;

    /// The change as a person reads it, e.g. `ingressSettings=ALLOW_INTERNAL_ONLY`.
    fn describe(&self) -> String;
}

/// The fields one write sets, in the order they were planned. A field is
/// listed at most once: a later value of the same path replaces the earlier.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Patch<F>(Vec<F>);

impl<F> Default for Patch<F> {
    fn default() -> Self {
        Patch(Vec::new())
    }
}

impl<F: Field> Patch<F> {
    pub fn set(&mut self, field: F) {
        match self.0.iter_mut().find(|f| f.path() == field.path()) {
            Some(have) => *have = field,
            None => self.0.push(field),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The first field `pick` takes, as it takes it (each field kind is set
    /// at most once, so the first is the one).
    pub fn find<'a, T: ?Sized>(&'a self, pick: impl Fn(&'a F) -> Option<&'a T>) -> Option<&'a T> {
        self.0.iter().find_map(pick)
    }

    pub fn fields(&self) -> &[F] {
        &self.0
    }

    /// The API paths of the fields, in order: an update mask.
    pub fn paths(&self) -> Vec<&'static str> {
        self.0.iter().map(Field::path).collect()
    }

    /// The changes as a person reads them, space separated.
    pub fn describe(&self) -> String {
        self.0.iter().map(Field::describe).collect::<Vec<_>>().join(" ")
    }
}

impl<F: Field> FromIterator<F> for Patch<F> {
    fn from_iter<I: IntoIterator<Item = F>>(iter: I) -> Self {
        let mut p = Patch::default();
        for f in iter {
            p.set(f);
        }
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Debug, PartialEq, Eq, Serialize)]
    enum Demo {
        Ingress(&'static str),
        Label(&'static str),
    }

    impl Field for Demo {
        fn path(&self) -> &'static str {
            match self {
                Demo::Ingress(_) => "service_config.ingress_settings",
                Demo::Label(_) => "labels",
            }
        }
        fn describe(&self) -> String {
            match self {
                Demo::Ingress(v) => format!("ingressSettings={v}"),
                Demo::Label(v) => format!("labels.owner={v}"),
            }
        }
    }

    #[test]
    fn mask_and_summary_come_from_one_ordered_list() {
        let p: Patch<Demo> = [Demo::Label("a"), Demo::Ingress("INTERNAL"), Demo::Label("b")]
            .into_iter()
            .collect();
        assert_eq!(p.paths(), vec!["labels", "service_config.ingress_settings"]);
        assert_eq!(
            p.describe(),
            "labels.owner=b ingressSettings=INTERNAL",
            "a later value replaces"
        );
        assert!(!p.is_empty());
        assert!(Patch::<Demo>::default().is_empty());
    }
}
