//! Which account a posture may use, where its credentials come from, and the
//! provider that reaches it. The rules are the same for the CLI (objects from
//! manifest files) and the controller (objects from the API server):
//!
//! - a posture uses a CloudAccount of its own namespace, or a
//!   ClusterCloudAccount whose `allowedNamespaces` admits its namespace;
//! - a Secret is read only from the account's own namespace (for a
//!   ClusterCloudAccount, the controller's namespace);
//! - only a ClusterCloudAccount (granted by the platform admin) may use the
//!   controller's ambient identity or override an endpoint; a CloudAccount
//!   brings a Secret of its own namespace and uses public endpoints (a
//!   loopback stand-in with static test credentials excepted);
//! - a posture declares no more than its account's permission ceiling;
//! - a refusal is an error with a reason, never a fallback to other
//!   credentials.

use crate::api::validate::{self, AccountRule};
use crate::api::{
    AccountConfig, AccountKind, AccountRef, Cloud, CloudAccountSpec, ClusterCloudAccountSpec, FunctionPostureSpec,
};
use crate::providers::cloud::SecretData;
use crate::providers::registry::{self, ConnectOptions, secret_name};
use crate::providers::{Provider, ProviderError};
use crate::reason::Reason;
use std::sync::Arc;

/// An account a posture may use, with where its Secret must live.
#[derive(Clone, Debug, PartialEq)]
pub struct ResolvedAccount {
    /// Stable key: `CloudAccount/<ns>/<name>` or `ClusterCloudAccount/<name>`.
    pub key: String,
    pub kind: AccountKind,
    /// The CloudAccount's namespace (None for a ClusterCloudAccount).
    pub namespace: Option<String>,
    pub name: String,
    pub config: AccountConfig,
    /// Namespace the account's Secret is read from.
    pub secret_namespace: String,
}

/// Why a posture may not use the account it names. `reason` is a stable
/// CamelCase status reason.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Refusal {
    pub reason: Reason,
    pub message: String,
}

fn refuse(reason: Reason, message: String) -> Refusal {
    Refusal { reason, message }
}

/// Resolve a posture's `accountRef` against the accounts that exist, and
/// refuse an account that breaks the tenancy rules.
pub fn resolve(
    posture_namespace: &str,
    account_ref: &AccountRef,
    function_cloud: Option<Cloud>,
    namespaced: impl Fn(&str, &str) -> Option<CloudAccountSpec>,
    cluster: impl Fn(&str) -> Option<ClusterCloudAccountSpec>,
    controller_namespace: &str,
) -> Result<ResolvedAccount, Refusal> {
    let account = locate(
        posture_namespace,
        account_ref,
        function_cloud,
        namespaced,
        cluster,
        controller_namespace,
    )?;
    permit(&account.key, account.kind, &account.config)?;
    Ok(account)
}

/// The account a posture's `accountRef` names, if the posture may use it;
/// the tenancy rules are not checked yet (see `permit`).
pub fn locate(
    posture_namespace: &str,
    account_ref: &AccountRef,
    function_cloud: Option<Cloud>,
    namespaced: impl Fn(&str, &str) -> Option<CloudAccountSpec>,
    cluster: impl Fn(&str) -> Option<ClusterCloudAccountSpec>,
    controller_namespace: &str,
) -> Result<ResolvedAccount, Refusal> {
    let name = &account_ref.name;
    let (key, config, secret_namespace, namespace) = match account_ref.kind {
        AccountKind::CloudAccount => {
            let spec = namespaced(posture_namespace, name).ok_or_else(|| {
                refuse(
                    Reason::AccountNotFound,
                    format!("CloudAccount {posture_namespace}/{name} does not exist (a posture can only use a CloudAccount of its own namespace)"),
                )
            })?;
            (
                format!("CloudAccount/{posture_namespace}/{name}"),
                spec.config(),
                posture_namespace.to_string(),
                Some(posture_namespace.to_string()),
            )
        }
        AccountKind::ClusterCloudAccount => {
            let spec = cluster(name).ok_or_else(|| {
                refuse(
                    Reason::AccountNotFound,
                    format!("ClusterCloudAccount {name} does not exist"),
                )
            })?;
            if !spec.admits(posture_namespace) {
                return Err(refuse(
                    Reason::AccountNotAllowed,
                    format!(
                        "ClusterCloudAccount {name} does not admit namespace {posture_namespace} (spec.allowedNamespaces)"
                    ),
                ));
            }
            (
                format!("ClusterCloudAccount/{name}"),
                spec.config(),
                controller_namespace.to_string(),
                None,
            )
        }
    };
    let config = config.ok_or_else(|| {
        refuse(
            Reason::AccountInvalid,
            format!("{key} must set exactly one of aws, azure or gcp"),
        )
    })?;
    if let Some(cloud) = function_cloud
        && config.cloud() != cloud
    {
        return Err(refuse(
            Reason::AccountCloudMismatch,
            format!("{key} is a {} account but the function is on {cloud}", config.cloud()),
        ));
    }
    Ok(ResolvedAccount {
        key,
        kind: account_ref.kind,
        namespace,
        name: name.clone(),
        config,
        secret_namespace,
    })
}

/// The tenancy rules, at use time: the CRD states them too, but an object
/// stored before the CRD did (or written past it) must not reach a cloud.
pub fn permit(key: &str, kind: AccountKind, config: &AccountConfig) -> Result<(), Refusal> {
    let violations = validate::account_violations(config, kind == AccountKind::CloudAccount);
    if violations.is_empty() {
        return Ok(());
    }
    let reason = if violations.iter().any(|v| v.rule == AccountRule::CredentialsRequired) {
        Reason::CredentialsRequired
    } else {
        Reason::AccountNotPermitted
    };
    let detail = violations
        .iter()
        .map(|v| v.error.to_string())
        .collect::<Vec<_>>()
        .join("; ");
    Err(refuse(reason, format!("{key} may not be used: {detail}")))
}

/// The posture declares no more than the account's permission ceiling.
pub fn within_ceiling(account: &ResolvedAccount, spec: &FunctionPostureSpec) -> Result<(), Refusal> {
    let errors = crate::ceiling::check(spec, &account.config);
    if errors.is_empty() {
        return Ok(());
    }
    let detail = errors.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("; ");
    Err(refuse(
        Reason::CeilingExceeded,
        format!("the posture declares more than {} allows: {detail}", account.key),
    ))
}

/// Build the provider that reaches an account. `secret` is the account's
/// Secret (already read from `secret_namespace`), when it names one.
pub async fn connect(
    account: &ResolvedAccount,
    secret: Option<&SecretData>,
    opts: &ConnectOptions,
) -> Result<Arc<dyn Provider>, ProviderError> {
    // Checked again here, right before any client exists: nothing that
    // builds a provider can skip it.
    permit(&account.key, account.kind, &account.config).map_err(|r| ProviderError::Config(r.message))?;
    let secret = match (secret_name(&account.config), secret) {
        (Some(name), None) => {
            return Err(ProviderError::Config(format!(
                "{} names Secret {}/{name}, which does not exist",
                account.key, account.secret_namespace
            )));
        }
        (Some(name), Some(s)) => Some((name, s)),
        (None, _) => None,
    };
    registry::connect(&account.config, secret, opts).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{AwsAccount, AzureAccount};

    fn aws() -> CloudAccountSpec {
        CloudAccountSpec {
            aws: Some(AwsAccount {
                region: "eu-west-1".into(),
                credentials_secret_ref: Some(crate::api::SecretRef { name: "creds".into() }),
                ..AwsAccount::default()
            }),
            azure: None,
            gcp: None,
        }
    }

    fn cluster(ns: &[&str]) -> ClusterCloudAccountSpec {
        ClusterCloudAccountSpec {
            allowed_namespaces: ns.iter().map(|s| s.to_string()).collect(),
            aws: Some(AwsAccount {
                region: "eu-west-1".into(),
                ..AwsAccount::default()
            }),
            azure: None,
            gcp: None,
        }
    }

    fn r(kind: AccountKind, name: &str) -> AccountRef {
        AccountRef {
            kind,
            name: name.into(),
        }
    }

    #[test]
    fn namespaced_account_only_from_the_posture_namespace() {
        let acct = aws();
        let lookup = |ns: &str, name: &str| (ns == "team-a" && name == "prod").then(|| acct.clone());
        let ok = resolve(
            "team-a",
            &r(AccountKind::CloudAccount, "prod"),
            Some(Cloud::Aws),
            lookup,
            |_| None,
            "zerofn",
        )
        .unwrap();
        assert_eq!(ok.key, "CloudAccount/team-a/prod");
        assert_eq!(ok.secret_namespace, "team-a");
        let refused = resolve(
            "team-b",
            &r(AccountKind::CloudAccount, "prod"),
            Some(Cloud::Aws),
            lookup,
            |_| None,
            "zerofn",
        )
        .unwrap_err();
        assert_eq!(refused.reason, "AccountNotFound");
    }

    #[test]
    fn cluster_account_admits_listed_namespaces_and_reads_secrets_from_the_controller_namespace() {
        let c = cluster(&["team-a"]);
        let get = |name: &str| (name == "shared").then(|| c.clone());
        let ok = resolve(
            "team-a",
            &r(AccountKind::ClusterCloudAccount, "shared"),
            None,
            |_, _| None,
            get,
            "zerofn",
        )
        .unwrap();
        assert_eq!(ok.secret_namespace, "zerofn");
        let refused = resolve(
            "team-b",
            &r(AccountKind::ClusterCloudAccount, "shared"),
            None,
            |_, _| None,
            get,
            "zerofn",
        )
        .unwrap_err();
        assert_eq!(refused.reason, "AccountNotAllowed");
        let star = cluster(&["*"]);
        assert!(
            resolve(
                "any",
                &r(AccountKind::ClusterCloudAccount, "s"),
                None,
                |_, _| None,
                |_| Some(star.clone()),
                "z"
            )
            .is_ok()
        );
    }

    #[test]
    fn cloud_mismatch_is_refused() {
        let azure = CloudAccountSpec {
            aws: None,
            azure: Some(AzureAccount::default()),
            gcp: None,
        };
        let refused = resolve(
            "ns",
            &r(AccountKind::CloudAccount, "a"),
            Some(Cloud::Aws),
            |_, _| Some(azure.clone()),
            |_| None,
            "z",
        )
        .unwrap_err();
        assert_eq!(refused.reason, "AccountCloudMismatch");
    }

    fn aws_with(endpoint: Option<&str>, secret: bool) -> AccountConfig {
        AccountConfig::Aws(AwsAccount {
            region: "eu-west-1".into(),
            endpoint: endpoint.map(Into::into),
            credentials_secret_ref: secret.then(|| crate::api::SecretRef { name: "creds".into() }),
            ..AwsAccount::default()
        })
    }

    /// (case, kind, account, expected refusal reason): a table, long because
    /// every tenancy rule has its rows here, side by side.
    fn tenancy_cases() -> Vec<(&'static str, AccountKind, AccountConfig, Option<Reason>)> {
        use AccountKind::{CloudAccount as Ns, ClusterCloudAccount as Cluster};
        let gcp = |endpoint: Option<&str>, anonymous: bool| {
            AccountConfig::Gcp(crate::api::GcpAccount {
                project_id: "my-project".into(),
                anonymous,
                endpoints: endpoint.map(|u| crate::api::GcpEndpoints {
                    functions: Some(u.into()),
                    ..Default::default()
                }),
                ..Default::default()
            })
        };
        let azure = |kind: crate::api::AzureCredentialKind, host: Option<&str>| {
            AccountConfig::Azure(AzureAccount {
                credential: kind,
                client_secret_ref: (kind == crate::api::AzureCredentialKind::ClientSecret).then(|| {
                    crate::api::SecretKeyRef {
                        name: "c".into(),
                        key: None,
                    }
                }),
                authority_host: host.map(Into::into),
                ..AzureAccount::default()
            })
        };
        use crate::api::AzureCredentialKind::{ClientSecret, ManagedIdentity, WorkloadIdentity};
        vec![
            ("tenant with its own Secret", Ns, aws_with(None, true), None),
            (
                "tenant without a Secret",
                Ns,
                aws_with(None, false),
                Some(Reason::CredentialsRequired),
            ),
            (
                "tenant redirecting AWS",
                Ns,
                aws_with(Some("https://collector.example"), true),
                Some(Reason::AccountNotPermitted),
            ),
            (
                "tenant on a loopback stand-in",
                Ns,
                aws_with(Some("http://127.0.0.1:4566"), true),
                None,
            ),
            ("admin's ambient identity", Cluster, aws_with(None, false), None),
            (
                "admin's VPC endpoint",
                Cluster,
                aws_with(Some("https://vpce.example"), false),
                None,
            ),
            (
                "ambient identity on loopback",
                Cluster,
                aws_with(Some("http://127.0.0.1:4566"), false),
                Some(Reason::AccountNotPermitted),
            ),
            (
                "signatures over plain http",
                Cluster,
                aws_with(Some("http://vpce.example"), true),
                Some(Reason::AccountNotPermitted),
            ),
            (
                "tenant GCP with ADC",
                Ns,
                gcp(None, false),
                Some(Reason::CredentialsRequired),
            ),
            (
                "tenant GCP redirected",
                Ns,
                gcp(Some("https://collector.example"), false),
                Some(Reason::CredentialsRequired),
            ),
            (
                "tenant GCP anonymous stand-in",
                Ns,
                gcp(Some("http://127.0.0.1:9"), true),
                None,
            ),
            (
                "admin ADC over plain http",
                Cluster,
                gcp(Some("http://collector.example"), false),
                Some(Reason::AccountNotPermitted),
            ),
            (
                "admin ADC on loopback",
                Cluster,
                gcp(Some("http://127.0.0.1:9"), false),
                Some(Reason::AccountNotPermitted),
            ),
            (
                "tenant Azure workload identity",
                Ns,
                azure(WorkloadIdentity, None),
                Some(Reason::CredentialsRequired),
            ),
            (
                "tenant Azure authority host",
                Ns,
                azure(ClientSecret, Some("https://login.collector.example")),
                Some(Reason::AccountNotPermitted),
            ),
            (
                "tenant Azure stand-in",
                Ns,
                azure(ClientSecret, Some("https://127.0.0.1:8443")),
                None,
            ),
            (
                "admin sovereign cloud",
                Cluster,
                azure(WorkloadIdentity, Some("https://login.chinacloudapi.cn")),
                None,
            ),
            (
                "admin managed identity on loopback",
                Cluster,
                azure(ManagedIdentity, Some("https://127.0.0.1:8443")),
                Some(Reason::AccountNotPermitted),
            ),
        ]
    }

    #[test]
    fn only_admin_accounts_use_ambient_identity_or_redirect_endpoints() {
        for (case, kind, config, expected) in tenancy_cases() {
            let got = permit("k", kind, &config).err().map(|r| r.reason);
            assert_eq!(got, expected, "{case}");
        }
    }

    #[test]
    fn resolve_refuses_a_stored_account_that_breaks_the_rules() {
        // As if stored before the CRD carried the rules: no Secret.
        let spec = CloudAccountSpec {
            aws: Some(AwsAccount {
                region: "eu-west-1".into(),
                ..AwsAccount::default()
            }),
            azure: None,
            gcp: None,
        };
        let refused = resolve(
            "team-a",
            &r(AccountKind::CloudAccount, "prod"),
            Some(Cloud::Aws),
            |_, _| Some(spec.clone()),
            |_| None,
            "zerofn",
        )
        .unwrap_err();
        assert_eq!(refused.reason, Reason::CredentialsRequired);
        assert!(
            refused.message.contains("spec.aws.credentialsSecretRef"),
            "{}",
            refused.message
        );
    }
}
