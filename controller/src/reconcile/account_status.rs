//! The status of CloudAccounts and ClusterCloudAccounts: which cloud, which
//! account the credentials actually reach, and whether they work. Written
//! only when it changes (many postures share one account).

use super::context::{Context, MANAGER};
use super::secrets::SecretError;
use super::status::set;
use crate::accounts::ResolvedAccount;
use crate::api::{
    API_VERSION, AccountKind, CloudAccount, CloudAccountStatus, ClusterCloudAccount, Condition, FunctionCounts,
};
use crate::providers::ProviderError;
use crate::reason::Reason;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::reflector::ObjectRef;

/// What a reconcile learned about the account.
pub enum Reach<'a> {
    Reached(Option<String>),
    Failed(&'a ProviderError),
    /// The account's credentials could not be read (its Secret is missing
    /// or the controller may not read it): no cloud was asked.
    SecretUnusable(&'a SecretError),
    /// The account may not be used as written (tenancy rules).
    Refused(&'a crate::accounts::Refusal),
}

/// Errors that say something about the account rather than one function.
pub fn is_account_error(e: &ProviderError) -> bool {
    matches!(
        e,
        ProviderError::Auth(_) | ProviderError::Config(_) | ProviderError::Unreachable(_) | ProviderError::Timeout(_)
    )
}

pub async fn report(ctx: &Context, account: &ResolvedAccount, reach: Reach<'_>) {
    let current = match account.kind {
        AccountKind::CloudAccount => ctx
            .accounts
            .get(&ObjectRef::new(&account.name).within(account.namespace.as_deref().unwrap_or_default()))
            .map(|a| (a.status.clone(), a.metadata.generation)),
        AccountKind::ClusterCloudAccount => ctx
            .cluster_accounts
            .get(&ObjectRef::new(&account.name))
            .map(|a| (a.status.clone(), a.metadata.generation)),
    };
    let Some((current, generation)) = current else { return };
    let current = current.unwrap_or_default();
    let (ok, reason, message, reached) = match reach {
        Reach::Reached(id) => {
            let what = id.clone().unwrap_or_else(|| "the account".into());
            (true, Reason::Reachable, format!("credentials reach {what}"), id)
        }
        Reach::Failed(e) => (false, e.reason(), e.to_string(), current.account.clone()),
        Reach::SecretUnusable(e) => (false, e.reason(), e.to_string(), current.account.clone()),
        Reach::Refused(r) => (false, r.reason, r.message.clone(), current.account.clone()),
    };
    let now = jiff::Timestamp::now().to_string();
    let mut conditions = Vec::new();
    let ready = Condition {
        type_: "Ready".into(),
        status: if ok { "True" } else { "False" }.into(),
        observed_generation: generation,
        last_transition_time: now.clone(),
        reason: reason.to_string(),
        message,
    };
    set(&mut conditions, &current.conditions, ready);
    let feed = account.config.declares_events().then(|| ctx.feeds.health(&account.key));
    if let Some(health) = &feed {
        set(&mut conditions, &current.conditions, health.condition(generation, &now));
    }
    let status = CloudAccountStatus {
        observed_generation: generation,
        conditions,
        cloud: Some(account.config.cloud().to_string()),
        account: reached,
        // Written by `report_counts`, under its own field manager.
        functions: None,
        events: feed.map(|h| h.counts),
    };
    if same(&current, &status) {
        return;
    }
    apply_status(ctx, account, MANAGER, serde_json::to_value(&status).unwrap_or_default()).await;
}

/// Whether `next` says what `current` says (transition times aside).
fn same(current: &CloudAccountStatus, next: &CloudAccountStatus) -> bool {
    let said = |s: &CloudAccountStatus| {
        s.conditions
            .iter()
            .map(|c| (c.type_.clone(), c.status.clone(), c.reason.clone(), c.message.clone()))
            .collect::<Vec<_>>()
    };
    said(current) == said(next)
        && current.account == next.account
        && current.cloud == next.cloud
        && current.observed_generation == next.observed_generation
        && current.events == next.events
}

/// Field manager of `status.functions`: apart from the reachability
/// fields, so neither write drops the other's fields.
const INVENTORY_MANAGER: &str = "zerofn-inventory";

/// How many of the account's functions are governed; written when it
/// changes.
pub async fn report_counts(ctx: &Context, account: &ResolvedAccount, counts: FunctionCounts) {
    let current = match account.kind {
        AccountKind::CloudAccount => ctx
            .accounts
            .get(&ObjectRef::new(&account.name).within(account.namespace.as_deref().unwrap_or_default()))
            .map(|a| a.status.clone().and_then(|s| s.functions)),
        AccountKind::ClusterCloudAccount => ctx
            .cluster_accounts
            .get(&ObjectRef::new(&account.name))
            .map(|a| a.status.clone().and_then(|s| s.functions)),
    };
    let Some(current) = current else { return };
    if current.as_ref() == Some(&counts) {
        return;
    }
    apply_status(
        ctx,
        account,
        INVENTORY_MANAGER,
        serde_json::json!({ "functions": counts }),
    )
    .await;
}

async fn apply_status(ctx: &Context, account: &ResolvedAccount, manager: &str, status: serde_json::Value) {
    let params = PatchParams::apply(manager).force();
    let result = match account.kind {
        AccountKind::CloudAccount => {
            let patch = serde_json::json!({ "apiVersion": API_VERSION, "kind": "CloudAccount", "status": status });
            let api: Api<CloudAccount> =
                Api::namespaced(ctx.client.clone(), account.namespace.as_deref().unwrap_or_default());
            api.patch_status(&account.name, &params, &Patch::Apply(&patch))
                .await
                .map(drop)
        }
        AccountKind::ClusterCloudAccount => {
            let patch =
                serde_json::json!({ "apiVersion": API_VERSION, "kind": "ClusterCloudAccount", "status": status });
            let api: Api<ClusterCloudAccount> = Api::all(ctx.client.clone());
            api.patch_status(&account.name, &params, &Patch::Apply(&patch))
                .await
                .map(drop)
        }
    };
    if let Err(e) = result {
        tracing::warn!(account = %account.key, error = %e, "could not update the account's status");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Only what says something about the account reaches its status; one
    /// function's trouble does not mark a shared account broken.
    #[test]
    fn account_errors_are_known_by_variant() {
        let s = || "x".to_string();
        let account = [
            ProviderError::Auth(s()),
            ProviderError::Config(s()),
            ProviderError::Unreachable(s()),
            ProviderError::Timeout(s()),
        ];
        let function = [
            ProviderError::Throttled(s()),
            ProviderError::NotFound(s()),
            ProviderError::Refused(s()),
            ProviderError::Conflict(s()),
            ProviderError::Cloud(s()),
            ProviderError::Unrecorded(s()),
            ProviderError::MarkUnrecorded(s()),
        ];
        assert!(account.iter().all(is_account_error));
        assert!(!function.iter().any(is_account_error));
    }
}
