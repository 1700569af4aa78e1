//! The child FunctionPostures a policy should have, against those it has:
//! what to create, update and delete. Pure; the controller applies it.

use crate::api::{FunctionPostureSpec, FunctionTarget, PosturePolicySpec};
use std::collections::BTreeMap;

/// Label on every child, naming its policy (children are listed by it).
pub const POLICY_LABEL: &str = "zerofn.dev/policy";

/// A child the policy should have: its name, its function and a digest of
/// the spec the policy gives it (the spec itself is built when written).
#[derive(Clone, Debug, PartialEq)]
pub struct Child {
    pub name: String,
    pub target: FunctionTarget,
    pub digest: u64,
}

/// A child the policy has, as the API server holds it.
#[derive(Clone, Debug, PartialEq)]
pub struct Existing {
    pub name: String,
    /// `spec_digest` of its spec; None when it does not deserialize.
    pub digest: Option<u64>,
    /// Being deleted already: nothing more to do for it.
    pub deleting: bool,
}

/// What to write so the children match what the policy governs.
#[derive(Debug, Default, PartialEq)]
pub struct Changes {
    pub create: Vec<Child>,
    /// Children whose spec differs from the policy's for their function.
    pub update: Vec<Child>,
    /// Children of functions the policy no longer governs.
    pub delete: Vec<String>,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        self.create.is_empty() && self.update.is_empty() && self.delete.is_empty()
    }
}

/// A digest of a spec, to compare a child with what the policy gives it
/// without keeping 10,000 specs. Stable within a process: the API types
/// hold no hash maps, so equal specs serialize alike.
pub fn spec_digest(spec: &FunctionPostureSpec) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    serde_json::to_vec(spec).unwrap_or_default().hash(&mut h);
    h.finish()
}

/// One child per governed function, named as the CLI names it.
pub fn desired(
    policy: &str,
    spec: &PosturePolicySpec,
    governed: impl IntoIterator<Item = FunctionTarget>,
) -> Vec<Child> {
    governed
        .into_iter()
        .map(|target| Child {
            name: super::child_name(policy, &target),
            digest: spec_digest(&spec.posture_for(target.clone())),
            target,
        })
        .collect()
}

/// Compare. A child being deleted is left to finish (its finalizer
/// releases the ownership marker); one that should exist again is created
/// once it is gone.
pub fn changes(desired: Vec<Child>, existing: &[Existing]) -> Changes {
    let have: BTreeMap<&str, &Existing> = existing.iter().map(|e| (e.name.as_str(), e)).collect();
    let mut out = Changes::default();
    let mut wanted = std::collections::BTreeSet::new();
    for child in desired {
        wanted.insert(child.name.clone());
        match have.get(child.name.as_str()) {
            None => out.create.push(child),
            Some(e) if e.deleting => {}
            Some(e) if e.digest != Some(child.digest) => out.update.push(child),
            Some(_) => {}
        }
    }
    out.delete = existing
        .iter()
        .filter(|e| !e.deleting && !wanted.contains(&e.name))
        .map(|e| e.name.clone())
        .collect();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fleet::tests::aws;

    fn policy(mode: &str) -> PosturePolicySpec {
        serde_saphyr::from_str(&format!(
            "accountRef: {{name: prod}}\nselector: {{aws: {{}}}}\ntemplate: {{mode: {mode}, triggers: {{publicAccess: Deny}}}}\n"
        ))
        .expect("parses")
    }

    fn existing(c: &Child) -> Existing {
        Existing {
            name: c.name.clone(),
            digest: Some(c.digest),
            deleting: false,
        }
    }

    #[test]
    fn new_functions_are_created_gone_ones_deleted_and_the_rest_left_alone() {
        let p = policy("Enforce");
        let before = desired("fleet", &p, [aws("a"), aws("b")]);
        let have: Vec<Existing> = before.iter().map(existing).collect();
        let after = desired("fleet", &p, [aws("b"), aws("c")]);
        let c = changes(after.clone(), &have);
        assert_eq!(c.create, vec![after[1].clone()]);
        assert!(c.update.is_empty());
        assert_eq!(c.delete, vec![before[0].name.clone()]);
        let settled: Vec<Existing> = after.iter().map(existing).collect();
        assert!(changes(after, &settled).is_empty(), "a second pass writes nothing");
    }

    #[test]
    fn a_changed_template_updates_every_child() {
        let have: Vec<Existing> = desired("fleet", &policy("Audit"), [aws("a"), aws("b")])
            .iter()
            .map(existing)
            .collect();
        let c = changes(desired("fleet", &policy("Enforce"), [aws("a"), aws("b")]), &have);
        assert_eq!(c.update.len(), 2);
        assert!(c.create.is_empty() && c.delete.is_empty());
    }

    #[test]
    fn a_child_being_deleted_is_neither_deleted_again_nor_recreated_yet() {
        let want = desired("fleet", &policy("Enforce"), [aws("a")]);
        let mut have = existing(&want[0]);
        have.deleting = true;
        let gone = Existing {
            name: "fleet-old".into(),
            digest: None,
            deleting: true,
        };
        assert!(changes(want, &[have, gone]).is_empty());
    }
}
