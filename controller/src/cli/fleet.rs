//! `zerofn plan -f` over PosturePolicies: each policy is expanded against
//! its account's live inventory into one child posture per function it
//! governs, named as the controller names its children.

use super::Connections;
use crate::accounts::{self, ResolvedAccount};
use crate::api::{FunctionPostureSpec, FunctionTarget, PosturePolicySpec};
use crate::fleet::{self, Assignment, Candidate, Governor, Listed, PolicyId};
use crate::manifests::{ManifestError, Manifests, Object};
use crate::providers::{Provider, ProviderError};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// A policy whose account resolved under the tenancy rules.
pub struct ResolvedPolicy<'m> {
    pub object: &'m Object<PosturePolicySpec>,
    pub account: ResolvedAccount,
}

/// What a policy became: its children, or why its functions could not be
/// listed.
pub enum Expanded {
    Child {
        /// `namespace/policy → function`, as the report names it.
        label: String,
        object: Box<Object<FunctionPostureSpec>>,
        account: Box<ResolvedAccount>,
    },
    Failed {
        label: String,
        spec: Box<FunctionPostureSpec>,
        error: ProviderError,
    },
}

/// Every policy's account, resolved before anything is connected, under
/// the same rules as a posture's: tenancy, the named Secret, the ceiling.
pub fn resolve_policies<'m>(
    m: &'m Manifests,
    controller_namespace: &str,
) -> Result<Vec<ResolvedPolicy<'m>>, Vec<ManifestError>> {
    let mut resolved = Vec::new();
    let mut errors = Vec::new();
    for o in &m.policies {
        let error = |field: String, message: String| ManifestError {
            source: Some(o.source.clone()),
            object: Some(format!("PosturePolicy {}/{}", o.namespace, o.name)),
            field: Some(field),
            message,
        };
        let account = accounts::resolve(
            &o.namespace,
            &o.spec.account_ref,
            o.spec.cloud(),
            |ns, name| m.account(ns, name).cloned(),
            |name| m.cluster_account(name).cloned(),
            controller_namespace,
        );
        let account = match account {
            Ok(a) => a,
            Err(refusal) => {
                errors.push(error("spec.accountRef".into(), refusal.message));
                continue;
            }
        };
        let child = o.spec.posture_for(fleet::placeholder(&o.spec));
        for (field, message) in super::account_use_errors(m, &account, &child) {
            // The child's control fields are the policy's template fields.
            let field = match field.as_str() {
                "spec.accountRef" => field,
                _ => field.replacen("spec.", "spec.template.", 1),
            };
            errors.push(error(field, message));
        }
        resolved.push(ResolvedPolicy { object: o, account });
    }
    if errors.is_empty() { Ok(resolved) } else { Err(errors) }
}

/// The functions the accounts listed, once per real function (two account
/// objects may reach one account), and what governs each: one assignment
/// over all of them, so precedence does not depend on which account object
/// a policy names.
pub struct Governance {
    pub functions: Vec<Listed>,
    /// Conflict-index key (`registry::function_key`) → function.
    pub index: HashMap<String, usize>,
    /// The hand-written posture targeting each function, as
    /// `FunctionPosture ns/name`.
    pub postures: Vec<Option<String>>,
    pub assignment: Assignment,
}

impl Governance {
    /// The function `target` as listed through `account`, by its key.
    pub fn index_of(&self, account: &ResolvedAccount, target: &FunctionTarget) -> Option<usize> {
        let key = fleet::function_key(account, target);
        self.index.get(&key).copied()
    }

    /// What governs function `i`, as people read it; None: ungoverned.
    pub fn governed_by(&self, i: usize) -> Option<String> {
        match self.assignment.governed.get(&i) {
            Some(Governor::Posture) => self.postures[i].clone(),
            Some(Governor::Policy(id)) => Some(format!("PosturePolicy {id}")),
            None => self.functions[i].owner.as_ref().map(|o| format!("marker {o}")),
        }
    }
}

pub fn govern(
    listings: &[(&ResolvedAccount, Vec<Listed>)],
    postures: &[(&Object<FunctionPostureSpec>, ResolvedAccount)],
    policies: &[ResolvedPolicy<'_>],
) -> Governance {
    let by_posture: HashMap<String, String> = postures
        .iter()
        .map(|(o, a)| {
            let label = format!("FunctionPosture {}/{}", o.namespace, o.name);
            (fleet::function_key(a, &o.spec.function), label)
        })
        .collect();
    let mut g = Governance {
        functions: Vec::new(),
        index: HashMap::new(),
        postures: Vec::new(),
        assignment: Assignment::default(),
    };
    let mut scopes: HashMap<&str, BTreeSet<usize>> = HashMap::new();
    for (account, listed) in listings {
        for f in listed {
            let key = fleet::function_key(account, &f.target);
            let i = *g.index.entry(key).or_insert_with_key(|key| {
                g.postures.push(by_posture.get(key).cloned());
                g.functions.push(f.clone());
                g.functions.len() - 1
            });
            scopes.entry(account.key.as_str()).or_default().insert(i);
        }
    }
    let hand_written: BTreeSet<usize> = (0..g.functions.len()).filter(|i| g.postures[*i].is_some()).collect();
    let nothing = BTreeSet::new();
    let candidates: Vec<Candidate<'_>> = policies
        .iter()
        .map(|p| Candidate {
            id: policy_id(p),
            priority: p.object.spec.priority,
            created: None,
            selector: &p.object.spec.selector,
            scope: Some(scopes.get(p.account.key.as_str()).unwrap_or(&nothing)),
        })
        .collect();
    g.assignment = fleet::assign(&g.functions, &hand_written, &candidates);
    g
}

fn policy_id(p: &ResolvedPolicy<'_>) -> PolicyId {
    PolicyId {
        namespace: p.object.namespace.clone(),
        name: p.object.name.clone(),
    }
}

/// Expand every policy against the functions its account lists. A function
/// a hand-written posture targets, or that a policy of higher precedence
/// governs, gets no child: nothing is governed twice.
pub async fn expand(
    m: &Manifests,
    policies: &[ResolvedPolicy<'_>],
    postures: &[(&Object<FunctionPostureSpec>, ResolvedAccount)],
    connections: &mut Connections,
) -> Vec<Expanded> {
    let mut accounts: BTreeMap<&str, &ResolvedAccount> = BTreeMap::new();
    for p in policies {
        accounts.entry(p.account.key.as_str()).or_insert(&p.account);
    }
    let mut listings = Vec::new();
    let mut out = Vec::new();
    for account in accounts.into_values() {
        let listed = match connections.provider(m, account).await {
            Ok(p) => p.functions().await,
            Err(e) => Err(e),
        };
        match listed {
            Ok(listed) => listings.push((account, listed)),
            Err(error) => {
                out.extend(
                    policies
                        .iter()
                        .filter(|p| p.account.key == account.key)
                        .map(|p| Expanded::Failed {
                            label: format!("{}/{}", p.object.namespace, p.object.name),
                            spec: Box::new(p.object.spec.posture_for(fleet::placeholder(&p.object.spec))),
                            error: error.clone(),
                        }),
                )
            }
        }
    }
    let g = govern(&listings, postures, policies);
    for p in policies {
        for i in g.assignment.children_of(&policy_id(p)) {
            let target = g.functions[i].target.clone();
            out.push(Expanded::Child {
                label: format!(
                    "{}/{} → {}",
                    p.object.namespace,
                    p.object.name,
                    fleet::function_label(&target)
                ),
                object: Box::new(Object {
                    source: p.object.source.clone(),
                    namespace: p.object.namespace.clone(),
                    name: fleet::child_name(&p.object.name, &target),
                    spec: p.object.spec.posture_for(target),
                }),
                account: Box::new(p.account.clone()),
            });
        }
    }
    out
}
