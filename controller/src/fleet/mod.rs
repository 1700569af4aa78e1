//! Fleet policies, pure: which functions a PosturePolicy selects, and what
//! governs each function of an account. No I/O; the listed functions come
//! from a provider's shared inventory.

pub mod assign;
pub mod children;
pub mod select;
pub mod summary;

pub use assign::{Assignment, Candidate, Governor, PolicyId, Superseded, assign};
pub use select::{Listed, selects};

use crate::api::FunctionTarget;
use sha2::{Digest, Sha256};

/// Where a function is and its name, as people read it: `region/name`,
/// `resource-group/name` or `location/name`.
pub fn function_label(target: &FunctionTarget) -> String {
    match (&target.aws, &target.azure, &target.gcp) {
        (Some(f), _, _) => format!("{}/{}", f.region.as_deref().unwrap_or("-"), f.name),
        (_, Some(f), _) => format!("{}/{}", f.resource_group, f.name),
        (_, _, Some(f)) => format!("{}/{}", f.location, f.name),
        _ => String::new(),
    }
}

/// A stand-in function of the policy's cloud, for the checks that need a
/// posture before any function is known.
pub fn placeholder(spec: &crate::api::PosturePolicySpec) -> FunctionTarget {
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

/// The conflict-index key of a function reached through `account`
/// (`registry::function_key`: the real account when the account object
/// declares it); a cloud that cannot key it keys it by the account object
/// and its label.
pub fn function_key(account: &crate::accounts::ResolvedAccount, target: &FunctionTarget) -> String {
    crate::providers::registry::function_key(&account.key, &account.config, target)
        .unwrap_or_else(|| format!("{}/{}", account.key, function_label(target)))
}

/// The name of the child FunctionPosture a policy keeps for a function:
/// the policy's name (cut to fit) and a digest of the function, at most 63
/// characters, so it also fits a label value and an owner marker. Stable:
/// the CLI and the controller name a child alike.
pub fn child_name(policy: &str, target: &FunctionTarget) -> String {
    let cloud = target.cloud().map(|c| c.as_str()).unwrap_or_default();
    let key = match &target.azure {
        // ARM names are case-insensitive: one function, one child.
        Some(_) => function_label(target).to_ascii_lowercase(),
        None => function_label(target),
    };
    let digest = Sha256::digest(format!("{cloud}:{key}").as_bytes());
    let hex: String = digest.iter().take(4).map(|b| format!("{b:02x}")).collect();
    let stem: String = policy.chars().take(54).collect();
    format!("{}-{hex}", stem.trim_end_matches(['-', '.']))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::*;

    /// A Lambda function in eu-west-1, for the fleet's tests.
    pub(super) fn aws(name: &str) -> FunctionTarget {
        FunctionTarget {
            aws: Some(AwsFunctionRef {
                name: name.into(),
                region: Some("eu-west-1".into()),
            }),
            azure: None,
            gcp: None,
        }
    }

    #[test]
    fn a_child_name_is_stable_short_and_one_per_function() {
        assert_eq!(child_name("fleet", &aws("orders")), child_name("fleet", &aws("orders")));
        assert_ne!(
            child_name("fleet", &aws("orders")),
            child_name("fleet", &aws("billing"))
        );
        let long = "p".repeat(253);
        let name = child_name(&long, &aws("orders"));
        assert!(name.len() <= 63, "{name}");
        assert!(
            crate::api::patterns::matches(crate::api::patterns::K8S_NAME, &name),
            "{name}"
        );
        let app = |rg: &str, n: &str| FunctionTarget {
            aws: None,
            azure: Some(AzureFunctionRef {
                resource_group: rg.into(),
                name: n.into(),
            }),
            gcp: None,
        };
        assert_eq!(
            child_name("fleet", &app("RG-Shop", "Orders")),
            child_name("fleet", &app("rg-shop", "orders"))
        );
    }
}
