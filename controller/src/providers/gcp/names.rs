//! Names zerofn gives to what it creates on GCP, and the ownership label.

use sha2::{Digest, Sha256};

/// Label key of the ownership marker (`zerofn.dev/owner` in GCP's alphabet:
/// lowercase letters, digits, `_` and `-`).
pub const OWNER_LABEL: &str = "zerofn_dev-owner";
/// Display name prefix of service accounts zerofn creates, for people: it
/// proves nothing (anyone can set it); the uniqueId recorded at creation does.
pub const MANAGED_DISPLAY_PREFIX: &str = "zerofn: dedicated identity of ";

fn hex(input: &str, n: usize) -> String {
    let d = Sha256::digest(input.as_bytes());
    d.iter().map(|b| format!("{b:02x}")).collect::<String>()[..n].to_string()
}

/// `zf-<function id, truncated>-<6 hex of the full function name>`: 6–30
/// characters, lowercase letters, digits and hyphens, starting with a letter
/// — the service-account id rules — and unique per function even across
/// locations.
pub fn dedicated_account_id(function_id: &str, function_name: &str) -> String {
    let hash = hex(function_name, 6);
    let room = 30 - "zf-".len() - 1 - hash.len();
    let id: String = function_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .take(room)
        .collect();
    let id = id.trim_end_matches('-');
    format!("zf-{id}-{hash}")
}

pub fn account_email(account_id: &str, project: &str) -> String {
    format!("{account_id}@{project}.iam.gserviceaccount.com")
}

/// A label value for the owner `<cluster>/<namespace>/<name>`: GCP values
/// are at most 63 lowercase letters, digits, `_` and `-`, so the readable
/// part is folded and shortened and a hash of the exact owner keeps two
/// owners from ever sharing a value.
pub fn owner_label_value(owner: &str) -> String {
    let hash = hex(owner, 10);
    let readable: String = owner
        .chars()
        .map(|c| match c {
            'a'..='z' | '0'..='9' | '-' => c,
            'A'..='Z' => c.to_ascii_lowercase(),
            _ => '_',
        })
        .take(63 - 1 - hash.len())
        .collect();
    format!("{readable}-{hash}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_ids_follow_the_iam_rules() {
        for id in ["f", "orders-api", &"x".repeat(63), "a-b-"] {
            let a = dedicated_account_id(id, &format!("projects/p/locations/l/functions/{id}"));
            assert!((6..=30).contains(&a.len()), "{a}");
            assert!(
                a.starts_with("zf-")
                    && a.chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            );
            assert!(!a.ends_with('-') && !a.contains("--"), "{a}");
        }
        let eu = dedicated_account_id("orders", "projects/p/locations/europe-west1/functions/orders");
        let us = dedicated_account_id("orders", "projects/p/locations/us-central1/functions/orders");
        assert_ne!(eu, us);
    }

    #[test]
    fn owner_labels_fit_and_never_collide() {
        let a = owner_label_value("prod-cluster/Shop/orders-api");
        assert!(
            a.len() <= 63
                && a.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
        );
        assert!(a.starts_with("prod-cluster_shop_orders-api-"));
        // Folding makes these two readable parts equal; the hash keeps them apart.
        assert_ne!(owner_label_value("c/ns/a.b"), owner_label_value("c/ns/a_b"));
        assert!(owner_label_value(&"n".repeat(300)).len() <= 63);
    }
}
