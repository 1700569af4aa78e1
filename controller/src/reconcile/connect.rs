//! Reaching an account: its tenancy rules, its Secret, its provider. The one
//! path from a resolved account to a provider, for the posture reconcile,
//! its cleanup and the account probe alike.

use super::account_status::Reach;
use super::context::Context;
use super::secrets::SecretError;
use crate::accounts::{self, Refusal, ResolvedAccount};
use crate::providers::cloud::SecretData;
use crate::providers::registry;
use crate::providers::{Provider, ProviderError};
use crate::reason::Reason;
use std::sync::Arc;

/// Why an account gave no provider.
#[derive(Debug)]
pub enum Unusable {
    /// The account may not be used as written (tenancy rules).
    Refused(Refusal),
    /// Its Secret is missing or the controller may not read it.
    Secret(SecretError),
    /// The provider could not be built.
    Cloud(ProviderError),
}

impl Unusable {
    pub fn reason(&self) -> Reason {
        match self {
            Unusable::Refused(r) => r.reason,
            Unusable::Secret(e) => e.reason(),
            Unusable::Cloud(e) => e.reason(),
        }
    }

    /// What the account's status says about it.
    pub fn reach(&self) -> Reach<'_> {
        match self {
            Unusable::Refused(r) => Reach::Refused(r),
            Unusable::Secret(e) => Reach::SecretUnusable(e),
            Unusable::Cloud(e) => Reach::Failed(e),
        }
    }
}

impl std::fmt::Display for Unusable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unusable::Refused(r) => write!(f, "{r}"),
            Unusable::Secret(e) => write!(f, "{e}"),
            Unusable::Cloud(e) => write!(f, "{e}"),
        }
    }
}

/// The account's Secret, when it names one: `(data, resourceVersion)`.
async fn read_secret(ctx: &Context, account: &ResolvedAccount) -> Result<Option<(SecretData, String)>, SecretError> {
    let Some(name) = registry::secret_name(&account.config) else {
        return Ok(None);
    };
    let f = ctx.secrets.get(&ctx.client, &account.secret_namespace, name).await?;
    Ok(Some((f.data.clone(), f.version.clone())))
}

/// The account's provider. The tenancy rules are checked before any Secret
/// is read or any client built, whatever the caller checked before.
pub async fn connect(ctx: &Context, account: &ResolvedAccount) -> Result<Arc<dyn Provider>, Unusable> {
    accounts::permit(&account.key, account.kind, &account.config).map_err(Unusable::Refused)?;
    let secret = read_secret(ctx, account).await.map_err(Unusable::Secret)?;
    ctx.providers
        .get(account, secret.as_ref().map(|(d, v)| (d, v.as_str())))
        .await
        .map_err(Unusable::Cloud)
}
