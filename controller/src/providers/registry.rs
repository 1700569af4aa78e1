//! Every cloud zerofn reaches, registered once: an account config is mapped
//! to its `Cloud` here and nowhere else. Adding a cloud adds one line to
//! `account` below.

use super::adapter;
use super::cloud::{Cloud, Secret, SecretData};
use super::{Provider, ProviderError, Tuning, aws, azure, gcp};
use crate::api::{AccountConfig, FunctionTarget};
use crate::metrics::Metrics;
use futures::FutureExt;
use futures::future::BoxFuture;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

/// How providers are built (shared by every account of a run).
#[derive(Clone, Debug)]
pub struct ConnectOptions {
    pub metrics: Arc<Metrics>,
    /// PEM root certificates trusted in addition to the system's (a private
    /// endpoint, a TLS-inspecting proxy, a stand-in), added to every
    /// cloud's default tuning.
    pub extra_roots: Vec<String>,
    /// How long account-wide observations are reused.
    pub inventory_ttl: Duration,
}

impl ConnectOptions {
    /// Cloud `C`'s tuning: its own defaults, with what this run overrides.
    pub fn tuning<C: Cloud>(&self) -> Tuning {
        let mut tuning = C::default_tuning();
        tuning.extra_roots.extend(self.extra_roots.iter().cloned());
        tuning
    }
}

/// An account config seen through its cloud, with the cloud's types erased.
trait Account<'a>: Send + Sync {
    fn secret_name(&self) -> Option<&'a str>;
    fn function_key(&self, account_key: &str, target: &FunctionTarget) -> Option<String>;
    fn connect(
        &self,
        secret: Option<Secret<'a>>,
        opts: &'a ConnectOptions,
    ) -> BoxFuture<'a, Result<Arc<dyn Provider>, ProviderError>>;
}

struct Of<'a, C: Cloud>(&'a C::Account, PhantomData<C>);

impl<'a, C: Cloud> Account<'a> for Of<'a, C> {
    fn secret_name(&self) -> Option<&'a str> {
        C::secret_name(self.0)
    }

    fn function_key(&self, account_key: &str, target: &FunctionTarget) -> Option<String> {
        C::function_key(account_key, self.0, target)
    }

    fn connect(
        &self,
        secret: Option<Secret<'a>>,
        opts: &'a ConnectOptions,
    ) -> BoxFuture<'a, Result<Arc<dyn Provider>, ProviderError>> {
        adapter::connect::<C>(self.0, secret, opts).boxed()
    }
}

fn of<C: Cloud>(account: &C::Account) -> Box<dyn Account<'_> + '_> {
    Box::new(Of::<C>(account, PhantomData))
}

/// The registration: one line per cloud.
fn account(config: &AccountConfig) -> Box<dyn Account<'_> + '_> {
    match config {
        AccountConfig::Aws(a) => of::<aws::AwsProvider>(a),
        AccountConfig::Azure(a) => of::<azure::AzureProvider>(a),
        AccountConfig::Gcp(a) => of::<gcp::GcpProvider>(a),
    }
}

/// The Secret an account names, if any.
pub fn secret_name(config: &AccountConfig) -> Option<&str> {
    account(config).secret_name()
}

/// The function a posture targets, as the conflict index keys it; None when
/// the target is not on the account's cloud.
pub fn function_key(account_key: &str, config: &AccountConfig, target: &FunctionTarget) -> Option<String> {
    account(config).function_key(account_key, target)
}

/// Build the provider that reaches an account. `secret` is the Secret the
/// account names, already read; the caller has checked the tenancy rules.
pub async fn connect(
    config: &AccountConfig,
    secret: Option<(&str, &SecretData)>,
    opts: &ConnectOptions,
) -> Result<Arc<dyn Provider>, ProviderError> {
    let secret = secret.map(|(name, data)| Secret { name, data });
    account(config).connect(secret, opts).await
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tuning's numbers: attempts, first backoff, longest `Retry-After`,
    /// attempt timeout, call deadline, operation wait, poll interval,
    /// propagation (durations in milliseconds), etag rounds.
    fn timings(t: &Tuning) -> [u128; 9] {
        [
            t.max_attempts.into(),
            t.initial_backoff.as_millis(),
            t.max_retry_after.as_millis(),
            t.attempt_timeout.as_millis(),
            t.call_deadline.as_millis(),
            t.operation_wait.as_millis(),
            t.poll_interval.as_millis(),
            t.propagation.as_millis(),
            t.etag_rounds.into(),
        ]
    }

    /// Each cloud keeps the pace it had when each had a tuning type of its
    /// own: AWS bounds attempts and calls tighter and waits less for an
    /// update and for IAM; Azure gives a call 3 minutes and polls ARM every
    /// 5 s.
    #[test]
    fn each_cloud_keeps_its_own_default_timings() {
        let aws = [6, 500, 60_000, 20_000, 60_000, 300_000, 2_000, 90_000, 8];
        let gcp = [6, 500, 60_000, 30_000, 120_000, 600_000, 2_000, 120_000, 8];
        let azure = [6, 500, 60_000, 30_000, 180_000, 600_000, 5_000, 120_000, 8];
        assert_eq!(timings(&aws::AwsProvider::default_tuning()), aws);
        assert_eq!(timings(&gcp::GcpProvider::default_tuning()), gcp);
        assert_eq!(timings(&azure::AzureProvider::default_tuning()), azure);
    }

    #[test]
    fn the_run_adds_its_roots_to_the_clouds_defaults() {
        let opts = ConnectOptions {
            metrics: Arc::new(Metrics::default()),
            extra_roots: vec!["PEM".into()],
            inventory_ttl: Duration::from_secs(60),
        };
        let tuning = opts.tuning::<azure::AzureProvider>();
        assert_eq!(tuning.extra_roots, ["PEM"]);
        assert_eq!(
            timings(&tuning),
            timings(&azure::AzureProvider::default_tuning()),
            "only the roots are the run's"
        );
    }
}
