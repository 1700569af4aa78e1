//! AWS request quotas, each paced on its own.
//!
//! Lambda's API request quotas are per account and Region, and separate
//! ("Lambda quotas", API requests): GetPolicy has its own, and the rest of the
//! control plane (every List call, GetFunctionUrlConfig, ListTags, every
//! write) shares one. A single pacer for both would hold GetPolicy back
//! behind the List calls and spend half of each quota. IAM is global, and
//! the Resource Groups Tagging API has quotas of its own per Region.

use super::AccountContext;
use crate::providers::pace::{self, Pacer};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// A quota zerofn's reads draw on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Quota {
    /// Lambda GetPolicy, per Region.
    GetPolicy,
    /// Every other Lambda control-plane call, per Region.
    LambdaControlPlane,
    /// The Resource Groups Tagging API, per Region.
    Tagging,
    /// IAM, global.
    Iam,
    /// API Gateway (REST and HTTP APIs share the account's request quota),
    /// per Region.
    ApiGateway,
}

impl Quota {
    fn name(self) -> &'static str {
        match self {
            Quota::GetPolicy => "lambda-getpolicy",
            Quota::LambdaControlPlane => "lambda",
            Quota::Tagging => "tagging",
            Quota::Iam => "iam",
            Quota::ApiGateway => "apigateway",
        }
    }
}

/// The pacers of one account, one per quota and Region, each shared with
/// every provider of this process that reaches the same account id (the
/// quota is the account's, whichever CloudAccount spends it).
pub struct Pacers {
    account: String,
    rate: u32,
    held: Mutex<HashMap<(Quota, String), Arc<Pacer>>>,
}

impl Pacers {
    pub fn new(ctx: &AccountContext, rate: u32) -> Self {
        Pacers {
            account: format!("{}:{}", ctx.partition, ctx.account_id),
            rate,
            held: Mutex::new(HashMap::new()),
        }
    }

    /// The pacer of `quota` in `region` (ignored for IAM, which is global).
    pub fn get(&self, quota: Quota, region: &str) -> Arc<Pacer> {
        let region = if quota == Quota::Iam { "global" } else { region };
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        held.entry((quota, region.to_string()))
            .or_insert_with(|| {
                let key = format!("{}:{region}:{}", self.account, quota.name());
                pace::shared(&key, self.rate)
            })
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(account_id: &str) -> AccountContext {
        AccountContext {
            account_id: account_id.into(),
            partition: "aws".into(),
        }
    }

    #[test]
    fn each_quota_and_region_has_its_own_pacer_and_iam_one_for_all_regions() {
        let p = Pacers::new(&ctx("161803398874"), 15);
        let eu = p.get(Quota::GetPolicy, "eu-west-1");
        assert!(Arc::ptr_eq(&eu, &p.get(Quota::GetPolicy, "eu-west-1")));
        assert!(!Arc::ptr_eq(&eu, &p.get(Quota::LambdaControlPlane, "eu-west-1")));
        assert!(!Arc::ptr_eq(&eu, &p.get(Quota::GetPolicy, "us-east-1")));
        assert!(Arc::ptr_eq(
            &p.get(Quota::Iam, "eu-west-1"),
            &p.get(Quota::Iam, "us-east-1")
        ));
    }

    #[test]
    fn two_holders_of_one_account_share_each_pacer() {
        let a = Pacers::new(&ctx("141421356237"), 15);
        let b = Pacers::new(&ctx("141421356237"), 5);
        let other = Pacers::new(&ctx("173205080756"), 15);
        for q in [Quota::GetPolicy, Quota::LambdaControlPlane, Quota::Tagging, Quota::Iam] {
            assert!(Arc::ptr_eq(&a.get(q, "eu-west-1"), &b.get(q, "eu-west-1")), "{q:?}");
            assert!(
                !Arc::ptr_eq(&a.get(q, "eu-west-1"), &other.get(q, "eu-west-1")),
                "{q:?}"
            );
        }
    }
}
