//! Reaching an AWS account: its Secret's static credentials, and how its
//! functions are keyed.

use super::AwsProvider;
use super::client::StaticCredentials;
use crate::api::{AwsAccount, FunctionTarget};
use crate::providers::cloud::Secret;
use crate::providers::registry::ConnectOptions;
use crate::providers::{ProviderError, Tuning};
use std::time::Duration;

pub(super) fn secret_name(account: &AwsAccount) -> Option<&str> {
    account.credentials_secret_ref.as_ref().map(|s| s.name.as_str())
}

/// Static credentials from the account's Secret.
pub fn credentials(secret: Secret<'_>) -> Result<StaticCredentials, ProviderError> {
    Ok(StaticCredentials {
        access_key_id: secret.text("aws_access_key_id")?,
        secret_access_key: secret.text("aws_secret_access_key")?,
        session_token: secret
            .data
            .contains_key("aws_session_token")
            .then(|| secret.text("aws_session_token"))
            .transpose()?,
    })
}

/// AWS's pace: an attempt is bounded tighter and a call sooner than on the
/// other clouds (the SDK retries within the call), a function update is
/// waited for up to 5 minutes, and a new role may be unknown to Lambda for
/// 90 s (IAM propagation).
pub(super) fn tuning() -> Tuning {
    Tuning {
        attempt_timeout: Duration::from_secs(20),
        call_deadline: Duration::from_secs(60),
        operation_wait: Duration::from_secs(300),
        propagation: Duration::from_secs(90),
        ..Tuning::default()
    }
}

pub(super) async fn connect(
    account: &AwsAccount,
    secret: Option<Secret<'_>>,
    tuning: Tuning,
    opts: &ConnectOptions,
) -> Result<AwsProvider, ProviderError> {
    let creds = secret.map(credentials).transpose()?;
    Ok(AwsProvider::new(account.clone(), creds, opts.metrics.clone(), tuning, opts.inventory_ttl).await)
}

/// `aws/<account id, else the CloudAccount>/<region>/<name>`.
pub(super) fn function_key(account_key: &str, account: &AwsAccount, target: &FunctionTarget) -> Option<String> {
    let f = target.aws.as_ref()?;
    Some(format!(
        "aws/{}/{}/{}",
        account.account_id.as_deref().unwrap_or(account_key),
        f.region.as_deref().unwrap_or(&account.region),
        f.name
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::cloud::SecretData;

    #[test]
    fn credentials_need_both_keys() {
        let mut data = SecretData::new();
        data.insert("aws_access_key_id".into(), b"AKIA\n".to_vec());
        let missing = credentials(Secret { name: "c", data: &data }).unwrap_err();
        assert!(matches!(missing, ProviderError::Config(_)), "{missing:?}");
        data.insert("aws_secret_access_key".into(), b"sk".to_vec());
        let c = credentials(Secret { name: "c", data: &data }).unwrap();
        assert_eq!(c.access_key_id, "AKIA");
        assert_eq!(c.session_token, None);
    }
}
