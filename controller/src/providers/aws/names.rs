//! Deterministic names for what zerofn creates, so a rerun finds what an
//! earlier (possibly interrupted) run made instead of making it again.

use sha2::{Digest, Sha256};

/// Tag key marking which posture owns a function.
pub const OWNER_TAG: &str = "zerofn.dev/owner";
/// Tag key marking IAM roles zerofn created.
pub const MANAGED_TAG: &str = "zerofn.dev/managed-by";
pub const MANAGED_VALUE: &str = "zerofn";
/// Tag key CreateRole stamps with the nonce of zerofn's write-ahead record
/// (`status.mintIntents`): with the role's creation time, the proof of a
/// role whose RoleId a crash kept from being recorded.
pub const MINT_NONCE_TAG: &str = "zerofn.dev/mint-nonce";
/// The one inline policy zerofn keeps on a governed role.
pub const INLINE_POLICY_NAME: &str = "zerofn-least-privilege";
/// Path of roles zerofn creates: lets the controller's own IAM policy scope
/// iam:CreateRole / iam:PassRole to `role/zerofn/*`.
pub const ROLE_PATH: &str = "/zerofn/";
const ROLE_PREFIX: &str = "zerofn-";
const MAX_ROLE_NAME: usize = 64;

fn short_hash(input: &str, hex_chars: usize) -> String {
    let digest = Sha256::digest(input.as_bytes());
    let mut s = String::with_capacity(hex_chars);
    for b in digest.iter() {
        s.push_str(&format!("{b:02x}"));
        if s.len() >= hex_chars {
            break;
        }
    }
    s.truncate(hex_chars);
    s
}

/// `zerofn-<function name, truncated>-<8 hex of the function ARN>`: at most
/// 64 characters, unique per function even when two regions hold functions of
/// the same name.
pub fn dedicated_role_name(function_name: &str, function_arn: &str) -> String {
    let hash = short_hash(function_arn, 8);
    let room = MAX_ROLE_NAME - ROLE_PREFIX.len() - 1 - hash.len();
    let name: String = function_name.chars().take(room).collect();
    format!("{ROLE_PREFIX}{name}-{hash}")
}

pub fn role_arn(partition: &str, account_id: &str, path: &str, name: &str) -> String {
    format!("arn:{partition}:iam::{account_id}:role{path}{name}")
}

/// Statement id for an invoke grant zerofn adds: derived from what it grants.
pub fn statement_id(parts: &[&str]) -> String {
    format!("zerofn-{}", short_hash(&parts.join("|"), 16))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_names_fit_iam_limits_and_are_stable() {
        let long = "f".repeat(64);
        let n = dedicated_role_name(&long, "arn:aws:lambda:eu-west-1:123456789012:function:x");
        assert!(n.len() <= 64, "{n}");
        assert!(n.starts_with("zerofn-fff"));
        assert_eq!(
            n,
            dedicated_role_name(&long, "arn:aws:lambda:eu-west-1:123456789012:function:x")
        );
        let a = dedicated_role_name("orders", "arn:aws:lambda:eu-west-1:123456789012:function:orders");
        let b = dedicated_role_name("orders", "arn:aws:lambda:us-east-1:123456789012:function:orders");
        assert_ne!(a, b, "same name in two regions must not collide");
        assert!(a.starts_with("zerofn-orders-"));
    }

    #[test]
    fn statement_ids_are_valid_lambda_sids() {
        let sid = statement_id(&[
            "s3.amazonaws.com",
            "lambda:InvokeFunction",
            "arn:aws:s3:::b",
            "123456789012",
        ]);
        assert!(sid.len() <= 100 && sid.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
    }
}
