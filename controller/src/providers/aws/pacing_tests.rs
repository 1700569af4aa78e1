//! Lambda's request quotas are the account's, so every provider of one
//! account id must draw on one pacer, whichever CloudAccount it serves.

use super::quota::Quota;
use super::{AccountContext, AwsProvider, StaticCredentials};
use crate::api::AwsAccount;
use crate::metrics::Metrics;
use crate::providers::Tuning;
use std::sync::Arc;
use std::time::Duration;

/// A provider for a CloudAccount of `rate` requests per second whose
/// credentials reached `account_id` (as STS would have said).
async fn provider(endpoint: &str, rate: u32, account_id: &str) -> AwsProvider {
    let account = AwsAccount {
        account_id: Some(account_id.into()),
        region: "eu-west-1".into(),
        endpoint: Some(endpoint.into()),
        max_requests_per_second: Some(rate),
        ..AwsAccount::default()
    };
    let creds = StaticCredentials {
        access_key_id: "test".into(),
        secret_access_key: "test".into(),
        session_token: None,
    };
    let p = AwsProvider::new(
        account,
        Some(creds),
        Arc::new(Metrics::default()),
        Tuning::default(),
        Duration::from_secs(30),
    )
    .await;
    let reached = AccountContext {
        account_id: account_id.into(),
        partition: "aws".into(),
    };
    p.context.set(reached).expect("a fresh provider has no context yet");
    p
}

#[tokio::test]
async fn two_cloud_accounts_on_one_account_id_share_one_pacer() {
    let a = provider("http://127.0.0.1:1", 10, "314159265358").await;
    let b = provider("http://127.0.0.1:2", 5, "314159265358").await;
    let other = provider("http://127.0.0.1:1", 10, "271828182845").await;
    let (ctx_a, ctx_b, ctx_other) = (
        a.context.get().expect("context"),
        b.context.get().expect("context"),
        other.context.get().expect("context"),
    );
    for q in [Quota::GetPolicy, Quota::LambdaControlPlane, Quota::Tagging, Quota::Iam] {
        assert!(
            Arc::ptr_eq(
                &a.pacers(ctx_a).get(q, "eu-west-1"),
                &b.pacers(ctx_b).get(q, "eu-west-1")
            ),
            "two CloudAccounts reaching one account id pace {q:?} on one pacer"
        );
        assert!(
            !Arc::ptr_eq(
                &a.pacers(ctx_a).get(q, "eu-west-1"),
                &other.pacers(ctx_other).get(q, "eu-west-1")
            ),
            "another account id has a {q:?} pacer of its own"
        );
    }
}
