//! `zerofn plan -f` over PosturePolicies: each policy is expanded against
//! its account's live inventory into one child posture per function it
//! governs, named as the controller names its children.

use super::Connections;
use crate::accounts::{self, ResolvedAccount};
use crate::api::{FunctionPostureSpec, FunctionTarget, PosturePolicySpec};
use crate::fleet::{self, Candidate, Listed, PolicyId};
use crate::manifests::{ManifestError, Manifests, Object};
use crate::providers::{Provider, ProviderError, registry};
use std::collections::{BTreeMap, BTreeSet, HashSet};

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

/// A stand-in function of the policy's cloud, for the checks that need a
/// posture before any function is known.
fn placeholder(spec: &PosturePolicySpec) -> FunctionTarget {
    let mut t = FunctionTarget {
        aws: None,
        azure: None,
        gcp: None,
    };
    if spec.selector.aws.is_some() {
        t.aws = Some(crate::api::AwsFunctionRef {
            name: "*".into(),
            region: None,
        });
    } else if spec.selector.azure.is_some() {
        t.azure = Some(crate::api::AzureFunctionRef {
            resource_group: "*".into(),
            name: "*".into(),
        });
    } else {
        t.gcp = Some(crate::api::GcpFunctionRef {
            location: "*".into(),
            name: "*".into(),
        });
    }
    t
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
        if let Some(secret) = registry::secret_name(&account.config)
            && m.secret(&account.secret_namespace, secret).is_none()
        {
            let message = format!(
                "{} names Secret {}/{secret}, which is not in the given files",
                account.key, account.secret_namespace
            );
            errors.push(error("spec.accountRef".into(), message));
        }
        let child = o.spec.posture_for(placeholder(&o.spec));
        for e in crate::ceiling::check(&child, &account.config) {
            let message = format!("exceeds the permission ceiling of {}: {}", account.key, e.message);
            errors.push(error(e.path.replacen("spec.", "spec.template.", 1), message));
        }
        resolved.push(ResolvedPolicy { object: o, account });
    }
    if errors.is_empty() { Ok(resolved) } else { Err(errors) }
}

/// Expand every policy against its account's functions. A function a
/// hand-written posture targets, or that a policy already governs, gets no
/// child: nothing is governed twice.
pub async fn expand(
    m: &Manifests,
    policies: &[ResolvedPolicy<'_>],
    postures: &[(&Object<FunctionPostureSpec>, ResolvedAccount)],
    connections: &mut Connections,
) -> Vec<Expanded> {
    let mut taken: HashSet<String> = postures
        .iter()
        .filter_map(|(o, a)| registry::function_key(&a.key, &a.config, &o.spec.function))
        .collect();
    let mut by_account: BTreeMap<&str, Vec<&ResolvedPolicy<'_>>> = BTreeMap::new();
    for p in policies {
        by_account.entry(p.account.key.as_str()).or_default().push(p);
    }
    let mut out = Vec::new();
    for group in by_account.into_values() {
        let account = &group[0].account;
        let listed = match connections.provider(m, account).await {
            Ok(p) => p.functions().await,
            Err(e) => Err(e),
        };
        match listed {
            Ok(listed) => out.extend(children(&group, &listed, &mut taken)),
            Err(error) => out.extend(group.iter().map(|p| Expanded::Failed {
                label: format!("{}/{}", p.object.namespace, p.object.name),
                spec: Box::new(p.object.spec.posture_for(placeholder(&p.object.spec))),
                error: error.clone(),
            })),
        }
    }
    out
}

/// The children of one account's policies, given its functions.
fn children(group: &[&ResolvedPolicy<'_>], listed: &[Listed], taken: &mut HashSet<String>) -> Vec<Expanded> {
    let account = &group[0].account;
    let key = |t: &FunctionTarget| registry::function_key(&account.key, &account.config, t);
    let hand_written: BTreeSet<usize> = listed
        .iter()
        .enumerate()
        .filter(|(_, f)| key(&f.target).is_some_and(|k| taken.contains(&k)))
        .map(|(i, _)| i)
        .collect();
    let candidates: Vec<Candidate<'_>> = group
        .iter()
        .map(|p| Candidate {
            id: PolicyId {
                namespace: p.object.namespace.clone(),
                name: p.object.name.clone(),
            },
            priority: p.object.spec.priority,
            created: None,
            selector: &p.object.spec.selector,
        })
        .collect();
    let assignment = fleet::assign(listed, &hand_written, &candidates);
    let mut out = Vec::new();
    for p in group {
        let id = PolicyId {
            namespace: p.object.namespace.clone(),
            name: p.object.name.clone(),
        };
        for i in assignment.children_of(&id) {
            let target = listed[i].target.clone();
            if let Some(k) = key(&target) {
                taken.insert(k);
            }
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
