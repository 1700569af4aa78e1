//! What a declared invoker names, judged the same way the AWS planner judges
//! an observed resource-policy statement (`providers::aws::policy`): a source
//! ARN scopes only when its account and resource parts hold no wildcard, and
//! a service principal is a service principal in every partition.

/// DNS suffixes of AWS service principals, one per partition family
/// (`s3.amazonaws.com`, `s3.amazonaws.com.cn`).
pub const SERVICE_PRINCIPAL_SUFFIXES: [&str; 2] = [".amazonaws.com", ".amazonaws.com.cn"];

/// Whether `principal` names an AWS service rather than an account or an
/// IAM identity.
pub fn is_service_principal(principal: &str) -> bool {
    SERVICE_PRINCIPAL_SUFFIXES.iter().any(|s| principal.ends_with(s))
}

/// Whether an ARN (or an ARN pattern, as `ArnLike` reads it) can match more
/// than one account or resource: a `*` or `?` anywhere from its account part
/// on. A value that is not an ARN at all counts as wide when it holds a
/// wildcard.
pub fn has_wide_part(arn: &str) -> bool {
    // arn:partition:service:region:account:resource — the fifth piece is
    // `account:resource...`.
    let tail = arn.splitn(5, ':').nth(4).unwrap_or(arn);
    tail.contains(['*', '?'])
}

/// Whether `value` is one literal AWS account id (twelve digits).
pub fn is_account_id(value: &str) -> bool {
    value.len() == 12 && value.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_principals_of_every_partition() {
        assert!(is_service_principal("s3.amazonaws.com"));
        assert!(is_service_principal("s3.amazonaws.com.cn"));
        assert!(!is_service_principal("123456789012"));
        assert!(!is_service_principal("arn:aws:iam::123456789012:root"));
    }

    #[test]
    fn wildcards_count_only_from_the_account_part_on() {
        for wide in [
            "arn:aws:s3:::*",
            "arn:aws:s3:::orders-*",
            "arn:aws:s3:::orders-i?",
            "arn:aws:sns:eu-west-1:*:topic",
            "arn:aws:sns:eu-west-1:12345678901?:topic",
            "arn:aws:events:eu-west-1:123456789012:rule/*",
            "*",
        ] {
            assert!(has_wide_part(wide), "{wide}");
        }
        for narrow in [
            "arn:aws:s3:::orders-in",
            "arn:aws-cn:sns:cn-north-1:123456789012:topic",
            "arn:aws:events:eu-west-1:123456789012:rule/nightly",
        ] {
            assert!(!has_wide_part(narrow), "{narrow}");
        }
    }

    #[test]
    fn account_ids_are_twelve_digits() {
        assert!(is_account_id("123456789012"));
        assert!(!is_account_id("12345678901*"));
        assert!(!is_account_id("1234"));
    }
}
