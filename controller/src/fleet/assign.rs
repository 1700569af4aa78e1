//! Who governs each function of an account: a hand-written FunctionPosture,
//! one policy, or nothing. Never two.
//!
//! Precedence: a hand-written FunctionPosture always wins; between
//! policies, the higher `priority`, then the older, then the lower
//! namespace/name (so a tie on the same second is still decided the same
//! way everywhere). Every other policy that selects the function is
//! superseded for it, naming the winner.

use super::select::{Listed, selects};
use crate::api::FunctionSelector;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// A policy by namespace and name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PolicyId {
    pub namespace: String,
    pub name: String,
}

impl fmt::Display for PolicyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// What `assign` needs of a policy.
#[derive(Clone, Debug)]
pub struct Candidate<'a> {
    pub id: PolicyId,
    pub priority: i32,
    /// RFC 3339 creation time; RFC 3339 UTC times order as strings. A
    /// policy not yet created (CLI input) has none and counts as newest.
    pub created: Option<String>,
    pub selector: &'a FunctionSelector,
    /// The functions the policy's account reaches, as indexes, when the
    /// listed functions come from several accounts; None: all of them.
    pub scope: Option<&'a BTreeSet<usize>>,
}

/// What governs a function.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Governor {
    /// A hand-written FunctionPosture.
    Posture,
    Policy(PolicyId),
}

impl fmt::Display for Governor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Governor::Posture => write!(f, "a FunctionPosture"),
            Governor::Policy(id) => write!(f, "PosturePolicy {id}"),
        }
    }
}

/// A policy that selects a function another governs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Superseded {
    pub policy: PolicyId,
    /// Index into the listed functions.
    pub function: usize,
    pub winner: Governor,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Assignment {
    /// Function index → what governs it; absent: ungoverned.
    pub governed: BTreeMap<usize, Governor>,
    pub superseded: Vec<Superseded>,
}

impl Assignment {
    /// The functions `policy` governs (its children), as indexes.
    pub fn children_of<'s>(&'s self, policy: &'s PolicyId) -> impl Iterator<Item = usize> + 's {
        self.governed
            .iter()
            .filter(move |(_, g)| matches!(g, Governor::Policy(p) if p == policy))
            .map(|(i, _)| *i)
    }
}

/// Decide, for every listed function, what governs it. `hand_written` holds
/// the indexes of the functions a FunctionPosture (not a policy's child)
/// targets.
pub fn assign(functions: &[Listed], hand_written: &BTreeSet<usize>, policies: &[Candidate<'_>]) -> Assignment {
    let mut ranked: Vec<&Candidate<'_>> = policies.iter().collect();
    ranked.sort_by(|a, b| {
        b.priority
            .cmp(&a.priority)
            .then_with(|| match (&a.created, &b.created) {
                (Some(x), Some(y)) => x.cmp(y),
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                (None, None) => std::cmp::Ordering::Equal,
            })
            .then_with(|| a.id.cmp(&b.id))
    });
    let mut out = Assignment::default();
    for (i, f) in functions.iter().enumerate() {
        let mut winner = hand_written.contains(&i).then_some(Governor::Posture);
        let eligible = |p: &&&Candidate<'_>| p.scope.is_none_or(|s| s.contains(&i)) && selects(p.selector, f);
        for p in ranked.iter().filter(eligible) {
            match &winner {
                None => winner = Some(Governor::Policy(p.id.clone())),
                Some(w) => out.superseded.push(Superseded {
                    policy: p.id.clone(),
                    function: i,
                    winner: w.clone(),
                }),
            }
        }
        if let Some(w) = winner {
            out.governed.insert(i, w);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::*;

    fn listed(name: &str, tags: &[(&str, &str)]) -> Listed {
        Listed {
            target: FunctionTarget {
                aws: Some(AwsFunctionRef {
                    name: name.into(),
                    region: Some("eu-west-1".into()),
                }),
                azure: None,
                gcp: None,
            },
            tags: tags.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            owner: None,
            identity: None,
        }
    }

    fn tagged(key: &str) -> FunctionSelector {
        FunctionSelector {
            aws: Some(AwsSelector {
                tags: TagSelector {
                    match_expressions: vec![TagRequirement {
                        key: key.into(),
                        operator: TagOperator::Exists,
                        values: vec![],
                    }],
                    ..TagSelector::default()
                },
                ..AwsSelector::default()
            }),
            azure: None,
            gcp: None,
        }
    }

    fn candidate<'a>(name: &str, priority: i32, created: Option<&str>, s: &'a FunctionSelector) -> Candidate<'a> {
        Candidate {
            id: PolicyId {
                namespace: "shop".into(),
                name: name.into(),
            },
            priority,
            created: created.map(str::to_string),
            selector: s,
            scope: None,
        }
    }

    fn policy(name: &str) -> Governor {
        Governor::Policy(PolicyId {
            namespace: "shop".into(),
            name: name.into(),
        })
    }

    #[test]
    fn a_policy_governs_what_it_selects_and_nothing_else() {
        let fns = [listed("a", &[("zt", "")]), listed("b", &[]), listed("c", &[("zt", "")])];
        let s = tagged("zt");
        let a = assign(
            &fns,
            &BTreeSet::new(),
            &[candidate("p", 0, Some("2026-01-01T00:00:00Z"), &s)],
        );
        assert_eq!(a.governed.len(), 2);
        assert_eq!(a.governed.get(&0), Some(&policy("p")));
        assert_eq!(a.governed.get(&1), None);
        assert_eq!(
            a.children_of(&PolicyId {
                namespace: "shop".into(),
                name: "p".into()
            })
            .collect::<Vec<_>>(),
            [0, 2]
        );
        assert!(a.superseded.is_empty());
    }

    #[test]
    fn a_hand_written_posture_wins_over_every_policy() {
        let fns = [listed("a", &[("zt", "")])];
        let s = tagged("zt");
        let a = assign(
            &fns,
            &BTreeSet::from([0]),
            &[candidate("high", 1000, Some("2020-01-01T00:00:00Z"), &s)],
        );
        assert_eq!(a.governed.get(&0), Some(&Governor::Posture));
        assert_eq!(a.superseded.len(), 1);
        assert_eq!(a.superseded[0].winner, Governor::Posture);
    }

    #[test]
    fn higher_priority_wins_then_the_older_then_the_name() {
        let fns = [listed("a", &[("zt", "")])];
        let s = tagged("zt");
        let old = Some("2026-01-01T00:00:00Z");
        let new = Some("2026-06-01T00:00:00Z");
        let winner = |ps: &[Candidate<'_>]| assign(&fns, &BTreeSet::new(), ps).governed[&0].clone();
        assert_eq!(
            winner(&[candidate("low", 1, old, &s), candidate("high", 2, new, &s)]),
            policy("high")
        );
        assert_eq!(
            winner(&[candidate("young", 1, new, &s), candidate("old", 1, old, &s)]),
            policy("old")
        );
        assert_eq!(
            winner(&[candidate("b", 1, old, &s), candidate("a", 1, old, &s)]),
            policy("a")
        );
        assert_eq!(
            winner(&[candidate("unborn", 1, None, &s), candidate("born", 1, new, &s)]),
            policy("born")
        );
    }

    #[test]
    fn a_policy_governs_only_what_its_account_reaches() {
        let fns = [listed("a", &[("zt", "")]), listed("b", &[("zt", "")])];
        let s = tagged("zt");
        let t = Some("2026-01-01T00:00:00Z");
        let only_b = BTreeSet::from([1]);
        let mut high = candidate("high", 9, t, &s);
        high.scope = Some(&only_b);
        let a = assign(&fns, &BTreeSet::new(), &[high, candidate("low", 1, t, &s)]);
        assert_eq!(a.governed[&0], policy("low"), "outside high's account");
        assert_eq!(a.governed[&1], policy("high"));
    }

    #[test]
    fn every_loser_is_superseded_naming_the_winner_and_nothing_is_governed_twice() {
        let fns = [listed("a", &[("zt", "")]), listed("b", &[("zt", "")])];
        let s = tagged("zt");
        let t = Some("2026-01-01T00:00:00Z");
        let ps = [
            candidate("p1", 3, t, &s),
            candidate("p2", 2, t, &s),
            candidate("p3", 1, t, &s),
        ];
        let a = assign(&fns, &BTreeSet::from([1]), &ps);
        assert_eq!(a.governed.len(), 2, "one governor per function");
        assert_eq!(a.governed[&0], policy("p1"));
        assert_eq!(a.governed[&1], Governor::Posture);
        let losers: Vec<_> = a
            .superseded
            .iter()
            .map(|s| (s.function, s.policy.name.as_str(), s.winner.clone()))
            .collect();
        assert_eq!(
            losers,
            [
                (0, "p2", policy("p1")),
                (0, "p3", policy("p1")),
                (1, "p1", Governor::Posture),
                (1, "p2", Governor::Posture),
                (1, "p3", Governor::Posture),
            ]
        );
    }
}
