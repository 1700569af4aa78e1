//! Two FunctionPostures governing one function would fight. A hand-written
//! posture holds the function before any policy's child; between two of a
//! kind, the earlier one (older creationTimestamp; name breaks ties). The
//! other is marked `Conflict` and writes nothing.
//!
//! The index keeps the current holder per function and checks it lazily, so
//! a reconcile costs one lookup instead of a scan of every posture. Across
//! clusters (or postures using different CloudAccounts for one real account)
//! the cloud-side ownership marker does the same job.

use std::collections::HashMap;
use std::sync::Mutex;

/// A posture competing for a function.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claimant {
    pub namespace: String,
    pub name: String,
    /// RFC 3339 creation time (empty when unknown: sorts first).
    pub created: String,
    /// A PosturePolicy's child: yields to any hand-written posture, which
    /// the policy will stop governing the function for.
    pub policy_child: bool,
}

impl Claimant {
    fn earlier_than(&self, other: &Claimant) -> bool {
        (self.policy_child, &self.created, &self.namespace, &self.name)
            < (other.policy_child, &other.created, &other.namespace, &other.name)
    }

    fn same(&self, other: &Claimant) -> bool {
        self.namespace == other.namespace && self.name == other.name
    }
}

#[derive(Default)]
pub struct ConflictIndex {
    holders: Mutex<HashMap<String, Claimant>>,
}

impl ConflictIndex {
    /// Decide who holds `function` (a stable key of the function) when `me`
    /// reconciles. `current_key` tells, for another claimant, the function it
    /// targets now (None: it no longer exists or is being deleted). Returns
    /// the holder when it is someone else.
    pub fn contend(
        &self,
        function: &str,
        me: &Claimant,
        current_key: impl Fn(&Claimant) -> Option<String>,
    ) -> Option<Claimant> {
        let mut holders = self.holders.lock().unwrap_or_else(|e| e.into_inner());
        match holders.get(function) {
            Some(h) if !h.same(me) && current_key(h).as_deref() == Some(function) && h.earlier_than(me) => {
                Some(h.clone())
            }
            _ => {
                holders.insert(function.to_string(), me.clone());
                None
            }
        }
    }

    /// Forget `me` (deleted), wherever it held a function.
    pub fn release(&self, me: &Claimant) {
        self.holders
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|_, h| !h.same(me));
    }
}

/// The function a posture targets, as the index keys it: the real account
/// when the CloudAccount declares it, else the CloudAccount itself (each
/// cloud says how, `providers::registry::function_key`).
pub fn function_key(account: &crate::accounts::ResolvedAccount, target: &crate::api::FunctionTarget) -> Option<String> {
    crate::providers::registry::function_key(&account.key, &account.config, target)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(name: &str, created: &str) -> Claimant {
        Claimant {
            namespace: "ns".into(),
            name: name.into(),
            created: created.into(),
            policy_child: false,
        }
    }

    #[test]
    fn a_hand_written_posture_holds_before_an_older_policy_child() {
        let idx = ConflictIndex::default();
        let child = Claimant {
            policy_child: true,
            ..c("fleet-1a2b3c4d", "2026-01-01T00:00:00Z")
        };
        let hand = c("orders", "2026-06-01T00:00:00Z");
        let alive = |_: &Claimant| Some("fn/f".to_string());
        assert_eq!(idx.contend("fn/f", &child, alive), None);
        assert_eq!(
            idx.contend("fn/f", &hand, alive),
            None,
            "the hand-written one takes over"
        );
        assert_eq!(idx.contend("fn/f", &child, alive), Some(hand));
    }

    #[test]
    fn the_earlier_posture_holds_whoever_reconciles_first() {
        let idx = ConflictIndex::default();
        let (old, new) = (c("old", "2026-01-01T00:00:00Z"), c("new", "2026-02-01T00:00:00Z"));
        let alive = |_: &Claimant| Some("fn/f".to_string());
        // The later one reconciles first and takes the slot...
        assert_eq!(idx.contend("fn/f", &new, alive), None);
        // ...the earlier one takes it over...
        assert_eq!(idx.contend("fn/f", &old, alive), None);
        // ...and from then on the later one is in conflict.
        assert_eq!(idx.contend("fn/f", &new, alive), Some(old.clone()));
        assert_eq!(
            idx.contend("fn/f", &old, alive),
            None,
            "the holder is not in conflict with itself"
        );
    }

    #[test]
    fn a_holder_that_is_gone_or_moved_gives_way() {
        let idx = ConflictIndex::default();
        let (old, new) = (c("old", "1"), c("new", "2"));
        idx.contend("fn/f", &old, |_| None);
        assert_eq!(idx.contend("fn/f", &new, |_| None), None, "holder deleted");
        let idx = ConflictIndex::default();
        idx.contend("fn/f", &old, |_| None);
        assert_eq!(
            idx.contend("fn/f", &new, |_| Some("fn/other".into())),
            None,
            "holder targets another function"
        );
        let idx = ConflictIndex::default();
        idx.contend("fn/f", &old, |_| None);
        idx.release(&old);
        assert_eq!(
            idx.contend("fn/f", &new, |_| Some("fn/f".into())),
            None,
            "holder released"
        );
    }

    #[test]
    fn ties_break_on_name() {
        let idx = ConflictIndex::default();
        let (a, b) = (c("a", "same"), c("b", "same"));
        let alive = |_: &Claimant| Some("k".to_string());
        idx.contend("k", &b, alive);
        idx.contend("k", &a, alive);
        assert_eq!(idx.contend("k", &b, alive), Some(a));
    }
}
