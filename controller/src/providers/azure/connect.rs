//! Reaching an Azure subscription: its Secret's client secret, and how its
//! function apps are keyed.

use super::AzureProvider;
use crate::api::{AzureAccount, FunctionTarget};
use crate::providers::cloud::Secret;
use crate::providers::registry::ConnectOptions;
use crate::providers::{ProviderError, Tuning};
use std::time::Duration;

/// The Secret key holding the client secret when the account names none.
const DEFAULT_KEY: &str = "client_secret";

pub(super) fn secret_name(account: &AzureAccount) -> Option<&str> {
    account.client_secret_ref.as_ref().map(|s| s.name.as_str())
}

/// Azure's pace: a call may take up to 3 minutes, retries included, and a
/// long-running operation is polled every 5 s when ARM does not say
/// (`Retry-After`).
pub(super) fn tuning() -> Tuning {
    Tuning {
        call_deadline: Duration::from_secs(180),
        poll_interval: Duration::from_secs(5),
        ..Tuning::default()
    }
}

pub(super) fn connect(
    account: &AzureAccount,
    secret: Option<Secret<'_>>,
    tuning: Tuning,
    opts: &ConnectOptions,
) -> Result<AzureProvider, ProviderError> {
    let field = account
        .client_secret_ref
        .as_ref()
        .and_then(|r| r.key.as_deref())
        .unwrap_or(DEFAULT_KEY);
    let client_secret = secret.map(|s| s.text(field)).transpose()?;
    AzureProvider::new(
        account.clone(),
        client_secret,
        opts.metrics.clone(),
        tuning,
        opts.inventory_ttl,
    )
}

/// `azure/<subscription>/<resource group>/<name>`, lowercased: ARM names
/// are case-insensitive.
pub(super) fn function_key(account: &AzureAccount, target: &FunctionTarget) -> Option<String> {
    let f = target.azure.as_ref()?;
    Some(format!(
        "azure/{}/{}/{}",
        account.subscription_id.to_ascii_lowercase(),
        f.resource_group.to_ascii_lowercase(),
        f.name.to_ascii_lowercase()
    ))
}
