//! Reaching a GCP project: its Secret's service account key, and how its
//! functions are keyed.

use super::GcpProvider;
use crate::api::{FunctionTarget, GcpAccount};
use crate::providers::cloud::Secret;
use crate::providers::registry::ConnectOptions;
use crate::providers::{ProviderError, Tuning};

/// The Secret key holding the service account key when the account names
/// none.
const DEFAULT_KEY: &str = "key.json";

pub(super) fn secret_name(account: &GcpAccount) -> Option<&str> {
    account.credentials_secret_ref.as_ref().map(|s| s.name.as_str())
}

/// The service account key (JSON) from the account's Secret.
fn key(account: &GcpAccount, secret: Secret<'_>) -> Result<serde_json::Value, ProviderError> {
    let field = account
        .credentials_secret_ref
        .as_ref()
        .and_then(|r| r.key.as_deref())
        .unwrap_or(DEFAULT_KEY);
    serde_json::from_slice(secret.bytes(field)?)
        .map_err(|e| ProviderError::Config(format!("Secret {} key {field} is not a JSON key: {e}", secret.name)))
}

/// GCP's pace is what the clouds' defaults share.
pub(super) fn tuning() -> Tuning {
    Tuning::default()
}

pub(super) async fn connect(
    account: &GcpAccount,
    secret: Option<Secret<'_>>,
    tuning: Tuning,
    opts: &ConnectOptions,
) -> Result<GcpProvider, ProviderError> {
    let key = secret.map(|s| key(account, s)).transpose()?;
    GcpProvider::new(account.clone(), key, opts.metrics.clone(), tuning, opts.inventory_ttl).await
}

/// `gcp/<project>/<location>/<name>`.
pub(super) fn function_key(account: &GcpAccount, target: &FunctionTarget) -> Option<String> {
    let f = target.gcp.as_ref()?;
    Some(format!("gcp/{}/{}/{}", account.project_id, f.location, f.name))
}
