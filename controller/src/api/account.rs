//! `CloudAccount` / `ClusterCloudAccount`: how to reach one AWS account, Azure
//! subscription or GCP project.
//!
//! Credentials come from the SDK's ambient chain by default (IRSA / EKS Pod
//! Identity, Azure workload identity, GCP workload identity / ADC). A Secret is
//! only ever read from the account's own namespace (for a
//! ClusterCloudAccount, the controller's namespace).

// kube's `printcolumn(...)` repeats `type_ = ...` by design; clippy reads that as
// a duplicated attribute.
#![allow(clippy::duplicated_attributes)]

use super::patterns;
use super::posture::Cloud;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// How to reach one AWS account, Azure subscription or GCP project, for the
/// FunctionPostures of this namespace.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "zerofn.dev",
    version = "v1alpha1",
    kind = "CloudAccount",
    plural = "cloudaccounts",
    category = "zerofn",
    namespaced,
    status = "CloudAccountStatus",
    doc = "How the FunctionPostures of this namespace reach one AWS account, Azure subscription or GCP project, with credentials from a Secret of this namespace.",
    printcolumn(name = "Cloud", type_ = "string", json_path = ".status.cloud"),
    printcolumn(name = "Account", type_ = "string", json_path = ".status.account"),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(name = "Functions", type_ = "integer", json_path = ".status.functions.total"),
    printcolumn(name = "Ungoverned", type_ = "integer", json_path = ".status.functions.ungoverned"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[x_kube(validation = Rule::new("(has(self.aws) ? 1 : 0) + (has(self.azure) ? 1 : 0) + (has(self.gcp) ? 1 : 0) == 1").message("exactly one of aws, azure or gcp must be set"))]
#[x_kube(validation = Rule::new(r#"!has(self.aws) || has(self.aws.credentialsSecretRef)"#).message("a CloudAccount brings its own credentials: name a Secret of its namespace (the controller's own identity is only for ClusterCloudAccounts)").field_path(".aws.credentialsSecretRef"))]
#[x_kube(validation = Rule::new(r#"!has(self.aws) || !has(self.aws.endpoint) || self.aws.endpoint.matches(r'^https?://(127\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}|\[::1\]|localhost)(:[0-9]{1,5})?(/\S*)?$')"#).message("a CloudAccount uses the cloud's public endpoints: an endpoint override (other than a loopback test stand-in) is only for ClusterCloudAccounts").field_path(".aws.endpoint"))]
#[x_kube(validation = Rule::new(r#"!has(self.aws) || !has(self.aws.endpoints) || ((!has(self.aws.endpoints.lambda) || self.aws.endpoints.lambda.matches(r'^https?://(127\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}|\[::1\]|localhost)(:[0-9]{1,5})?(/\S*)?$')) && (!has(self.aws.endpoints.iam) || self.aws.endpoints.iam.matches(r'^https?://(127\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}|\[::1\]|localhost)(:[0-9]{1,5})?(/\S*)?$')) && (!has(self.aws.endpoints.sts) || self.aws.endpoints.sts.matches(r'^https?://(127\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}|\[::1\]|localhost)(:[0-9]{1,5})?(/\S*)?$')) && (!has(self.aws.endpoints.tagging) || self.aws.endpoints.tagging.matches(r'^https?://(127\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}|\[::1\]|localhost)(:[0-9]{1,5})?(/\S*)?$')))"#).message("a CloudAccount uses the cloud's public endpoints: an endpoint override (other than a loopback test stand-in) is only for ClusterCloudAccounts").field_path(".aws.endpoints"))]
#[x_kube(validation = Rule::new(r#"!has(self.azure) || (self.azure.credential == 'ClientSecret' && has(self.azure.clientSecretRef))"#).message("a CloudAccount brings its own credentials: credential ClientSecret with clientSecretRef (workload and managed identity are the controller's own, only for ClusterCloudAccounts)").field_path(".azure.credential"))]
#[x_kube(validation = Rule::new(r#"!has(self.azure) || !has(self.azure.resourceManagerEndpoint) || self.azure.resourceManagerEndpoint.matches(r'^https?://(127\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}|\[::1\]|localhost)(:[0-9]{1,5})?(/\S*)?$')"#).message("a CloudAccount uses the cloud's public endpoints: an endpoint override (other than a loopback test stand-in) is only for ClusterCloudAccounts").field_path(".azure.resourceManagerEndpoint"))]
#[x_kube(validation = Rule::new(r#"!has(self.azure) || !has(self.azure.events) || self.azure.events.queue.matches(r'^https://([a-z0-9]{3,24}\.queue\.core\.(windows\.net|chinacloudapi\.cn|usgovcloudapi\.net)|(127\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}|\[::1\]|localhost)(:[0-9]{1,5})?(/[a-z0-9]{3,24})?)/[a-z0-9-]{3,63}$')"#).message("a CloudAccount reads its events from a queue of the public Azure clouds (or a loopback test stand-in): another queue host is only for ClusterCloudAccounts").field_path(".azure.events.queue"))]
#[x_kube(validation = Rule::new(r#"!has(self.azure) || !has(self.azure.authorityHost) || self.azure.authorityHost.matches(r'^https?://(127\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}|\[::1\]|localhost)(:[0-9]{1,5})?(/\S*)?$')"#).message("a CloudAccount uses the public authority host: an override (other than a loopback test stand-in) is only for ClusterCloudAccounts").field_path(".azure.authorityHost"))]
#[x_kube(validation = Rule::new(r#"!has(self.gcp) || has(self.gcp.credentialsSecretRef) || (has(self.gcp.anonymous) && self.gcp.anonymous)"#).message("a CloudAccount brings its own credentials: name a Secret of its namespace (Application Default Credentials are the controller's own, only for ClusterCloudAccounts)").field_path(".gcp.credentialsSecretRef"))]
#[x_kube(validation = Rule::new(r#"!has(self.gcp) || !has(self.gcp.endpoints) || ((!has(self.gcp.endpoints.functions) || self.gcp.endpoints.functions.matches(r'^https?://(127\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}|\[::1\]|localhost)(:[0-9]{1,5})?(/\S*)?$')) && (!has(self.gcp.endpoints.run) || self.gcp.endpoints.run.matches(r'^https?://(127\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}|\[::1\]|localhost)(:[0-9]{1,5})?(/\S*)?$')) && (!has(self.gcp.endpoints.iam) || self.gcp.endpoints.iam.matches(r'^https?://(127\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}|\[::1\]|localhost)(:[0-9]{1,5})?(/\S*)?$')) && (!has(self.gcp.endpoints.resourceManager) || self.gcp.endpoints.resourceManager.matches(r'^https?://(127\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}|\[::1\]|localhost)(:[0-9]{1,5})?(/\S*)?$')) && (!has(self.gcp.endpoints.pubsub) || self.gcp.endpoints.pubsub.matches(r'^https?://(127\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}|\[::1\]|localhost)(:[0-9]{1,5})?(/\S*)?$')) && (!has(self.gcp.endpoints.recommender) || self.gcp.endpoints.recommender.matches(r'^https?://(127\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}|\[::1\]|localhost)(:[0-9]{1,5})?(/\S*)?$')) && (!has(self.gcp.endpoints.logging) || self.gcp.endpoints.logging.matches(r'^https?://(127\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}|\[::1\]|localhost)(:[0-9]{1,5})?(/\S*)?$')))"#).message("a CloudAccount uses the cloud's public endpoints: an endpoint override (other than a loopback test stand-in) is only for ClusterCloudAccounts").field_path(".gcp.endpoints"))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CloudAccountSpec {
    /// An AWS account, reached through STS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aws: Option<AwsAccount>,
    /// An Azure subscription, reached through Entra ID and ARM.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub azure: Option<AzureAccount>,
    /// A GCP project.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gcp: Option<GcpAccount>,
}

/// A cloud account shared by several namespaces: like CloudAccount, plus the
/// namespaces whose FunctionPostures may use it.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "zerofn.dev",
    version = "v1alpha1",
    kind = "ClusterCloudAccount",
    plural = "clustercloudaccounts",
    category = "zerofn",
    status = "CloudAccountStatus",
    doc = "A cloud account shared by several namespaces, reached with the controller's own identity or a Secret of the controller's namespace.",
    printcolumn(name = "Cloud", type_ = "string", json_path = ".status.cloud"),
    printcolumn(name = "Account", type_ = "string", json_path = ".status.account"),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(name = "Functions", type_ = "integer", json_path = ".status.functions.total"),
    printcolumn(name = "Ungoverned", type_ = "integer", json_path = ".status.functions.ungoverned"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[x_kube(validation = Rule::new("(has(self.aws) ? 1 : 0) + (has(self.azure) ? 1 : 0) + (has(self.gcp) ? 1 : 0) == 1").message("exactly one of aws, azure or gcp must be set"))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClusterCloudAccountSpec {
    /// Namespaces whose FunctionPostures may use this account. `*` admits
    /// every namespace. Empty admits none.
    #[serde(default)]
    #[schemars(length(max = 1000), inner(length(max = 63)))]
    pub allowed_namespaces: Vec<String>,
    /// An AWS account, reached through STS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aws: Option<AwsAccount>,
    /// An Azure subscription, reached through Entra ID and ARM.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub azure: Option<AzureAccount>,
    /// A GCP project.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gcp: Option<GcpAccount>,
}

/// What the controller last found when it reached the account.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CloudAccountStatus {
    /// The generation of the spec this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Ready: the account was reached with the configured credentials.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<super::status::Condition>,
    /// aws, azure or gcp.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cloud: Option<String>,
    /// The account id / subscription id / project id actually reached.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// The account's functions (in its regions) and how many of them a
    /// FunctionPosture governs, hand-written or a policy's child.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub functions: Option<FunctionCounts>,
    /// The account's change-event feed, when it declares one (condition
    /// EventsReady says whether it is read).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events: Option<EventFeedStatus>,
}

/// What the account's change-event feed delivered since the controller
/// started leading.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct EventFeedStatus {
    /// Messages read from the feed.
    pub received: u64,
    /// Events that re-checked at least one posture.
    pub mapped: u64,
    /// Events for functions no posture governs, of kinds zerofn does not
    /// watch, or that could not be read.
    pub dropped: u64,
    /// Events caused by zerofn's own writes, skipped.
    pub own: u64,
    /// Seconds between the last event's time in the cloud and its receipt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lag_seconds: Option<u64>,
    /// When the last event was received.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_event_time: Option<String>,
}

/// How much of an account zerofn governs.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct FunctionCounts {
    /// Functions the account lists.
    pub total: u32,
    /// Functions a FunctionPosture targets.
    pub governed: u32,
    /// Functions nothing governs.
    pub ungoverned: u32,
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[x_kube(validation = Rule::new(r#"!has(self.endpoint) || !self.endpoint.matches(r'^https?://(127\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}|\[::1\]|localhost)(:[0-9]{1,5})?(/\S*)?$') || has(self.credentialsSecretRef)"#).message("a loopback endpoint is for test stand-ins: it takes static credentials from credentialsSecretRef, never the controller's own identity").field_path(".endpoint"))]
#[x_kube(validation = Rule::new(r#"!has(self.endpoints) || has(self.credentialsSecretRef) || ((!has(self.endpoints.lambda) || !self.endpoints.lambda.matches(r'^https?://(127\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}|\[::1\]|localhost)(:[0-9]{1,5})?(/\S*)?$')) && (!has(self.endpoints.iam) || !self.endpoints.iam.matches(r'^https?://(127\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}|\[::1\]|localhost)(:[0-9]{1,5})?(/\S*)?$')) && (!has(self.endpoints.sts) || !self.endpoints.sts.matches(r'^https?://(127\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}|\[::1\]|localhost)(:[0-9]{1,5})?(/\S*)?$')) && (!has(self.endpoints.tagging) || !self.endpoints.tagging.matches(r'^https?://(127\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}|\[::1\]|localhost)(:[0-9]{1,5})?(/\S*)?$')))"#).message("a loopback endpoint is for test stand-ins: it takes static credentials from credentialsSecretRef, never the controller's own identity").field_path(".endpoints"))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AwsAccount {
    /// Expected account id. Checked against STS GetCallerIdentity, so a
    /// posture never acts on another account by mistake; looked up if absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = patterns::AWS_ACCOUNT_ID))]
    pub account_id: Option<String>,
    /// Default region for functions that name none.
    #[schemars(regex(pattern = patterns::AWS_REGION))]
    pub region: String,
    /// Further regions scanned when deciding whether a role is shared with
    /// another function of the account.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64), inner(regex(pattern = patterns::AWS_REGION), length(max = 32)))]
    pub regions: Vec<String>,
    /// Static credentials from a Secret (keys `aws_access_key_id`,
    /// `aws_secret_access_key`, optional `aws_session_token`). Without it the
    /// SDK's default chain is used (IRSA, EKS Pod Identity, instance role).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_secret_ref: Option<SecretRef>,
    /// A role to assume with the base credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assume_role: Option<AwsAssumeRole>,
    /// Endpoint for every AWS service (VPC endpoint, test stand-in). The
    /// standard AWS_ENDPOINT_URL variables also apply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = patterns::TOKEN_ENDPOINT), length(max = 2048))]
    pub endpoint: Option<String>,
    /// Per-service endpoint overrides.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoints: Option<AwsEndpoints>,
    /// Pace of per-function reads (GetPolicy, GetFunctionUrlConfig, ...)
    /// against this account, in requests per second. Lambda's control-plane
    /// quotas are small and shared with every other tool of the account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 1000))]
    pub max_requests_per_second: Option<u32>,
    /// The most a FunctionPosture using this account may declare. Left out,
    /// the default ceiling applies (README, "Security model").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ceiling: Option<AwsCeiling>,
    /// Change events that re-check the affected postures within seconds
    /// (README, "Drift in seconds"). The resync stays the safety net.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events: Option<AwsEvents>,
}

/// An SQS queue fed by an EventBridge rule on the CloudTrail management
/// events of Lambda and IAM.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AwsEvents {
    /// The queue's URL, `https://sqs.<region>.amazonaws.com/<account>/<name>`.
    /// It names the queue; requests go to the account's SQS endpoint in that
    /// Region, never to the URL's host.
    #[schemars(regex(pattern = patterns::SQS_QUEUE_URL), length(max = 2048))]
    pub queue_url: String,
}

/// The most a posture may declare on AWS. Each list left out keeps the
/// default ceiling for that part; `*` wildcards are allowed in patterns.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AwsCeiling {
    /// Action patterns (`s3:Get*`, `dynamodb:*`): every action of a declared
    /// Allow statement must fall inside one of them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1000), inner(length(min = 1, max = 256)))]
    pub actions: Option<Vec<String>>,
    /// Resource ARN patterns: every resource of a declared Allow statement
    /// must fall inside one of them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1000), inner(length(min = 1, max = 2048)))]
    pub resources: Option<Vec<String>>,
    /// Policy ARN patterns a declared permissions boundary must match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1000), inner(length(min = 1, max = 2048)))]
    pub permissions_boundaries: Option<Vec<String>>,
    /// Policy ARN patterns a posture may allowlist in managedPolicies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1000), inner(length(min = 1, max = 2048)))]
    pub managed_policies: Option<Vec<String>>,
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AwsAssumeRole {
    /// The role to assume.
    #[schemars(regex(pattern = patterns::IAM_ROLE_ARN), length(max = 2048))]
    pub role_arn: String,
    /// The external id the role's trust policy requires, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 2, max = 1224))]
    pub external_id: Option<String>,
    /// The role session name shown in CloudTrail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[\w+=,.@-]{2,64}$"))]
    pub session_name: Option<String>,
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AwsEndpoints {
    /// Lambda endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = patterns::TOKEN_ENDPOINT), length(max = 2048))]
    pub lambda: Option<String>,
    /// IAM endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = patterns::TOKEN_ENDPOINT), length(max = 2048))]
    pub iam: Option<String>,
    /// STS endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = patterns::TOKEN_ENDPOINT), length(max = 2048))]
    pub sts: Option<String>,
    /// Resource Groups Tagging API endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = patterns::TOKEN_ENDPOINT), length(max = 2048))]
    pub tagging: Option<String>,
}

impl AwsEndpoints {
    /// Every override, by its field name: the one list that validation and
    /// the clients read, so a new service cannot be left unchecked.
    pub fn named(&self) -> [(&'static str, Option<&String>); 4] {
        [
            ("lambda", self.lambda.as_ref()),
            ("iam", self.iam.as_ref()),
            ("sts", self.sts.as_ref()),
            ("tagging", self.tagging.as_ref()),
        ]
    }
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[x_kube(validation = Rule::new(r#"self.credential == 'ClientSecret' || ((!has(self.resourceManagerEndpoint) || !self.resourceManagerEndpoint.matches(r'^https?://(127\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}|\[::1\]|localhost)(:[0-9]{1,5})?(/\S*)?$')) && (!has(self.authorityHost) || !self.authorityHost.matches(r'^https?://(127\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}|\[::1\]|localhost)(:[0-9]{1,5})?(/\S*)?$')))"#).message("a loopback endpoint is for test stand-ins: it takes credential ClientSecret, never the controller's own identity").field_path(".credential"))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AzureAccount {
    /// The Entra ID tenant (directory) id.
    #[schemars(regex(pattern = patterns::UUID), length(max = 36))]
    pub tenant_id: String,
    /// The subscription holding the function apps.
    #[schemars(regex(pattern = patterns::UUID), length(max = 36))]
    pub subscription_id: String,
    /// Client id of the app registration / managed identity to use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = patterns::UUID), length(max = 36))]
    pub client_id: Option<String>,
    /// WorkloadIdentity (default in a cluster), ManagedIdentity, or
    /// ClientSecret with `clientSecretRef`.
    #[serde(default)]
    pub credential: AzureCredentialKind,
    /// Secret holding the client secret (key `client_secret` unless `key` says
    /// otherwise), for credential ClientSecret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret_ref: Option<SecretKeyRef>,
    /// ARM endpoint (sovereign clouds, test stand-in).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^https://.+$"), length(max = 2048))]
    pub resource_manager_endpoint: Option<String>,
    /// Entra ID authority host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^https://.+$"), length(max = 2048))]
    pub authority_host: Option<String>,
    /// The most a FunctionPosture using this account may declare. Left out,
    /// the default ceiling applies (README, "Security model").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ceiling: Option<AzureCeiling>,
    /// Change events that re-check the affected postures within seconds
    /// (README, "Drift in seconds"). The resync stays the safety net.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events: Option<AzureEvents>,
}

/// A Storage queue fed by an Event Grid system topic on the subscription.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AzureEvents {
    /// The queue's URL, `https://<storage account>.queue.core.windows.net/<queue>`.
    /// Read with the account's credential (role Storage Queue Data Message
    /// Processor on the queue).
    #[schemars(regex(pattern = patterns::AZURE_QUEUE_URL), length(max = 2048))]
    pub queue: String,
}

/// The most a posture may declare on Azure. Each list left out keeps the
/// default ceiling for that part.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AzureCeiling {
    /// Role definitions (names such as `Storage Blob Data Reader`, or GUIDs)
    /// a posture may assign.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1000), inner(length(min = 1, max = 512)))]
    pub role_definitions: Option<Vec<String>>,
    /// ARM scopes a role assignment must lie at or under.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1000), inner(regex(pattern = patterns::AZURE_RESOURCE_ID), length(max = 2048)))]
    pub scopes: Option<Vec<String>>,
}

#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AzureCredentialKind {
    #[default]
    WorkloadIdentity,
    ManagedIdentity,
    ClientSecret,
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[x_kube(validation = Rule::new(r#"!has(self.endpoints) || has(self.credentialsSecretRef) || (has(self.anonymous) && self.anonymous) || ((!has(self.endpoints.functions) || !self.endpoints.functions.matches(r'^https?://(127\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}|\[::1\]|localhost)(:[0-9]{1,5})?(/\S*)?$')) && (!has(self.endpoints.run) || !self.endpoints.run.matches(r'^https?://(127\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}|\[::1\]|localhost)(:[0-9]{1,5})?(/\S*)?$')) && (!has(self.endpoints.iam) || !self.endpoints.iam.matches(r'^https?://(127\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}|\[::1\]|localhost)(:[0-9]{1,5})?(/\S*)?$')) && (!has(self.endpoints.resourceManager) || !self.endpoints.resourceManager.matches(r'^https?://(127\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}|\[::1\]|localhost)(:[0-9]{1,5})?(/\S*)?$')) && (!has(self.endpoints.pubsub) || !self.endpoints.pubsub.matches(r'^https?://(127\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}|\[::1\]|localhost)(:[0-9]{1,5})?(/\S*)?$')) && (!has(self.endpoints.recommender) || !self.endpoints.recommender.matches(r'^https?://(127\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}|\[::1\]|localhost)(:[0-9]{1,5})?(/\S*)?$')) && (!has(self.endpoints.logging) || !self.endpoints.logging.matches(r'^https?://(127\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}|\[::1\]|localhost)(:[0-9]{1,5})?(/\S*)?$')))"#).message("a loopback endpoint is for test stand-ins: it takes a key from credentialsSecretRef or anonymous, never the controller's own identity").field_path(".endpoints"))]
#[x_kube(validation = Rule::new("!has(self.anonymous) || !self.anonymous || has(self.endpoints)").message("anonymous is only for emulators: set endpoints too").field_path(".anonymous"))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GcpAccount {
    /// The project holding the functions.
    #[schemars(regex(pattern = patterns::GCP_PROJECT_ID), length(max = 30))]
    pub project_id: String,
    /// Looked up through Cloud Resource Manager when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[0-9]{1,20}$"))]
    pub project_number: Option<String>,
    /// A service account key (JSON) in a Secret. Without it, Application
    /// Default Credentials (GKE workload identity) are used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_secret_ref: Option<SecretKeyRef>,
    /// Per-service endpoint overrides (Private Service Connect, emulators).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoints: Option<GcpEndpoints>,
    /// Send no credentials at all. Only for emulators and test stand-ins, so
    /// it requires `endpoints`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub anonymous: bool,
    /// The most a FunctionPosture using this account may declare. Left out,
    /// the default ceiling applies (README, "Security model").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ceiling: Option<GcpCeiling>,
    /// Change events that re-check the affected postures within seconds
    /// (README, "Drift in seconds"). The resync stays the safety net.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events: Option<GcpEvents>,
}

/// A Pub/Sub subscription fed by a log sink of Cloud Audit Logs.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GcpEvents {
    /// `projects/<project>/subscriptions/<name>`.
    #[schemars(regex(pattern = patterns::GCP_SUBSCRIPTION), length(max = 512))]
    pub subscription: String,
}

/// The most a posture may declare on GCP.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GcpCeiling {
    /// Role patterns (`roles/storage.*`, `roles/pubsub.publisher`) a posture
    /// may grant its service account. Left out, the default ceiling applies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1000), inner(length(min = 1, max = 512)))]
    pub roles: Option<Vec<String>>,
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GcpEndpoints {
    /// Cloud Functions endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = patterns::TOKEN_ENDPOINT), length(max = 2048))]
    pub functions: Option<String>,
    /// Cloud Run endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = patterns::TOKEN_ENDPOINT), length(max = 2048))]
    pub run: Option<String>,
    /// IAM endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = patterns::TOKEN_ENDPOINT), length(max = 2048))]
    pub iam: Option<String>,
    /// Cloud Resource Manager endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = patterns::TOKEN_ENDPOINT), length(max = 2048))]
    pub resource_manager: Option<String>,
    /// Pub/Sub endpoint (the change-event subscription).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = patterns::TOKEN_ENDPOINT), length(max = 2048))]
    pub pubsub: Option<String>,
    /// Recommender endpoint (IAM policy insights, for
    /// identity.unusedPermissions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = patterns::TOKEN_ENDPOINT), length(max = 2048))]
    pub recommender: Option<String>,
    /// Cloud Logging endpoint (the `_Default` sink, for
    /// observability.gcp.requireLogsKept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = patterns::TOKEN_ENDPOINT), length(max = 2048))]
    pub logging: Option<String>,
}

/// A Secret in the account's own namespace.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SecretRef {
    /// The Secret's name.
    #[schemars(regex(pattern = patterns::K8S_NAME), length(max = 253))]
    pub name: String,
}

/// A key of a Secret in the account's own namespace.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SecretKeyRef {
    /// The Secret's name.
    #[schemars(regex(pattern = patterns::K8S_NAME), length(max = 253))]
    pub name: String,
    /// The key within the Secret; each use names its default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253))]
    pub key: Option<String>,
}

/// The cloud-facing part shared by both account kinds.
#[derive(Clone, Debug, PartialEq)]
pub enum AccountConfig {
    Aws(AwsAccount),
    Azure(AzureAccount),
    Gcp(GcpAccount),
}

impl AccountConfig {
    pub fn cloud(&self) -> Cloud {
        match self {
            AccountConfig::Aws(_) => Cloud::Aws,
            AccountConfig::Azure(_) => Cloud::Azure,
            AccountConfig::Gcp(_) => Cloud::Gcp,
        }
    }

    /// Whether the account declares a change-event feed.
    pub fn declares_events(&self) -> bool {
        match self {
            AccountConfig::Aws(a) => a.events.is_some(),
            AccountConfig::Azure(a) => a.events.is_some(),
            AccountConfig::Gcp(a) => a.events.is_some(),
        }
    }

    fn from_parts(aws: &Option<AwsAccount>, azure: &Option<AzureAccount>, gcp: &Option<GcpAccount>) -> Option<Self> {
        match (aws, azure, gcp) {
            (Some(a), None, None) => Some(AccountConfig::Aws(a.clone())),
            (None, Some(a), None) => Some(AccountConfig::Azure(a.clone())),
            (None, None, Some(a)) => Some(AccountConfig::Gcp(a.clone())),
            _ => None,
        }
    }
}

impl CloudAccountSpec {
    /// The one cloud this account reaches; None when zero or several are set
    /// (refused by validation).
    pub fn config(&self) -> Option<AccountConfig> {
        AccountConfig::from_parts(&self.aws, &self.azure, &self.gcp)
    }
}

impl ClusterCloudAccountSpec {
    pub fn config(&self) -> Option<AccountConfig> {
        AccountConfig::from_parts(&self.aws, &self.azure, &self.gcp)
    }

    pub fn admits(&self, namespace: &str) -> bool {
        self.allowed_namespaces.iter().any(|n| n == "*" || n == namespace)
    }
}
