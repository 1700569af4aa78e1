//! `FunctionPosture`: the declared Zero Trust posture of one serverless function.
//!
//! A control left out of the spec is not checked. Every per-cloud block must
//! match the cloud of `function` (CEL on the CRD, `validate` in the CLI).

// kube's `printcolumn(...)` repeats `type_ = ...` by design; clippy reads that as
// a duplicated attribute.
#![allow(clippy::duplicated_attributes)]

use super::patterns;
use super::status::FunctionPostureStatus;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The declared Zero Trust posture of one serverless function.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "zerofn.dev",
    version = "v1alpha1",
    kind = "FunctionPosture",
    plural = "functionpostures",
    shortname = "fp",
    category = "zerofn",
    namespaced,
    status = "FunctionPostureStatus",
    doc = "The declared Zero Trust posture of one serverless function. zerofn observes the function, reports how it differs from the posture in status, and in Enforce mode fixes the difference.",
    printcolumn(name = "Cloud", type_ = "string", json_path = ".status.cloud"),
    printcolumn(name = "Function", type_ = "string", json_path = ".status.function"),
    printcolumn(name = "Mode", type_ = "string", json_path = ".spec.mode"),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(name = "Compliant", type_ = "string", json_path = ".status.compliance"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[x_kube(validation = Rule::new("!has(self.identity) || !has(self.identity.aws) || has(self.__function__.aws)").message("identity.aws is set but the function is not on AWS").field_path(".identity.aws"))]
#[x_kube(validation = Rule::new("!has(self.identity) || !has(self.identity.azure) || has(self.__function__.azure)").message("identity.azure is set but the function is not on Azure").field_path(".identity.azure"))]
#[x_kube(validation = Rule::new("!has(self.identity) || !has(self.identity.gcp) || has(self.__function__.gcp)").message("identity.gcp is set but the function is not on GCP").field_path(".identity.gcp"))]
#[x_kube(validation = Rule::new("!has(self.triggers) || !has(self.triggers.aws) || has(self.__function__.aws)").message("triggers.aws is set but the function is not on AWS").field_path(".triggers.aws"))]
#[x_kube(validation = Rule::new("!has(self.triggers) || !has(self.triggers.azure) || has(self.__function__.azure)").message("triggers.azure is set but the function is not on Azure").field_path(".triggers.azure"))]
#[x_kube(validation = Rule::new("!has(self.triggers) || !has(self.triggers.gcp) || has(self.__function__.gcp)").message("triggers.gcp is set but the function is not on GCP").field_path(".triggers.gcp"))]
#[x_kube(validation = Rule::new("!has(self.network) || !has(self.network.aws) || has(self.__function__.aws)").message("network.aws is set but the function is not on AWS").field_path(".network.aws"))]
#[x_kube(validation = Rule::new("!has(self.network) || !has(self.network.azure) || has(self.__function__.azure)").message("network.azure is set but the function is not on Azure").field_path(".network.azure"))]
#[x_kube(validation = Rule::new("!has(self.network) || !has(self.network.gcp) || has(self.__function__.gcp)").message("network.gcp is set but the function is not on GCP").field_path(".network.gcp"))]
#[x_kube(validation = Rule::new("!has(self.supplyChain) || !has(self.supplyChain.aws) || has(self.__function__.aws)").message("supplyChain.aws is set but the function is not on AWS").field_path(".supplyChain.aws"))]
#[x_kube(validation = Rule::new("!has(self.supplyChain) || !has(self.supplyChain.azure) || has(self.__function__.azure)").message("supplyChain.azure is set but the function is not on Azure").field_path(".supplyChain.azure"))]
#[x_kube(validation = Rule::new("!has(self.supplyChain) || !has(self.supplyChain.gcp) || has(self.__function__.gcp)").message("supplyChain.gcp is set but the function is not on GCP").field_path(".supplyChain.gcp"))]
#[x_kube(validation = Rule::new("!has(self.observability) || !has(self.observability.aws) || has(self.__function__.aws)").message("observability.aws is set but the function is not on AWS").field_path(".observability.aws"))]
#[x_kube(validation = Rule::new("!has(self.observability) || !has(self.observability.azure) || has(self.__function__.azure)").message("observability.azure is set but the function is not on Azure").field_path(".observability.azure"))]
#[x_kube(validation = Rule::new("!has(self.observability) || !has(self.observability.gcp) || has(self.__function__.gcp)").message("observability.gcp is set but the function is not on GCP").field_path(".observability.gcp"))]
#[x_kube(validation = Rule::new("!has(self.identity) || !(has(self.identity.createIfShared) && self.identity.createIfShared) || !has(self.__function__.aws) || (has(self.identity.aws) && has(self.identity.aws.permissions))").message("identity.createIfShared on AWS needs identity.aws.permissions: the new role gets exactly the declared permissions").field_path(".identity.aws"))]
#[x_kube(validation = Rule::new("!has(self.identity) || !(has(self.identity.createIfShared) && self.identity.createIfShared) || !has(self.__function__.gcp) || (has(self.identity.gcp) && has(self.identity.gcp.roles))").message("identity.createIfShared on GCP needs identity.gcp.roles: the new service account gets exactly the declared roles").field_path(".identity.gcp"))]
#[x_kube(validation = Rule::new("!has(self.identity) || !has(self.identity.unusedPermissions) || (has(self.__function__.aws) && has(self.identity.aws) && has(self.identity.aws.permissions)) || (has(self.__function__.gcp) && has(self.identity.gcp) && has(self.identity.gcp.roles))").message("identity.unusedPermissions compares declared permissions with their recorded use: declare identity.aws.permissions (AWS) or identity.gcp.roles (GCP); not observable on Azure, where role assignments carry no record of use").field_path(".identity.unusedPermissions"))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FunctionPostureSpec {
    /// The CloudAccount (same namespace) or ClusterCloudAccount that reaches
    /// the function's cloud.
    pub account_ref: AccountRef,
    /// The function this posture governs. Exactly one of aws, azure or gcp;
    /// immutable once created.
    #[x_kube(validation = Rule::new("self == oldSelf").message("function is immutable: create a new FunctionPosture to govern another function"))]
    pub function: FunctionTarget,
    /// Enforce fixes drift; Audit only reports it and never writes to the
    /// cloud. Defaults to Audit so a new posture is safe to apply.
    #[serde(default)]
    pub mode: Mode,
    /// Which identity the function runs as and what it may do.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<IdentityControl>,
    /// Who may invoke the function.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub triggers: Option<TriggerControl>,
    /// Which network the function sits in and how its egress leaves.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<NetworkControl>,
    /// Code signing and dependency provenance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub supply_chain: Option<SupplyChainControl>,
    /// Tracing and structured logs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observability: Option<ObservabilityControl>,
    /// How often the controller re-observes the function when nothing
    /// changes (Go duration, e.g. `5m`). Defaults to the controller's
    /// `--resync-interval`. Jitter is added.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = patterns::DURATION), length(max = 32))]
    pub resync_interval: Option<String>,
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AccountRef {
    /// CloudAccount (namespaced, the posture's own namespace) or
    /// ClusterCloudAccount (cluster-scoped, must admit the namespace).
    #[serde(default)]
    pub kind: AccountKind,
    /// Name of the account object.
    #[schemars(regex(pattern = patterns::K8S_NAME), length(min = 1, max = 253))]
    pub name: String,
}

#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum AccountKind {
    #[default]
    CloudAccount,
    ClusterCloudAccount,
}

#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Mode {
    Enforce,
    #[default]
    Audit,
}

/// The function, in exactly one cloud.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Hash)]
#[x_kube(validation = Rule::new("(has(self.aws) ? 1 : 0) + (has(self.azure) ? 1 : 0) + (has(self.gcp) ? 1 : 0) == 1").message("exactly one of function.aws, function.azure or function.gcp must be set"))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FunctionTarget {
    /// A Lambda function.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aws: Option<AwsFunctionRef>,
    /// A function app (Azure Functions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub azure: Option<AzureFunctionRef>,
    /// A Cloud Functions (2nd gen) function.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gcp: Option<GcpFunctionRef>,
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AwsFunctionRef {
    /// The Lambda function name (not its ARN).
    #[schemars(regex(pattern = patterns::AWS_FUNCTION_NAME), length(max = 64))]
    pub name: String,
    /// Region of the function; defaults to the account's region.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = patterns::AWS_REGION))]
    pub region: Option<String>,
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AzureFunctionRef {
    /// The resource group holding the function app.
    #[schemars(regex(pattern = patterns::AZURE_RESOURCE_GROUP), length(max = 90))]
    pub resource_group: String,
    /// The function app (Microsoft.Web/sites) name.
    #[schemars(regex(pattern = patterns::AZURE_NAME), length(max = 60))]
    pub name: String,
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GcpFunctionRef {
    /// Region of the function, e.g. europe-west1.
    #[schemars(regex(pattern = patterns::GCP_LOCATION), length(max = 64))]
    pub location: String,
    /// The function's name (the last segment of its resource name).
    #[schemars(regex(pattern = patterns::GCP_FUNCTION_NAME), length(max = 63))]
    pub name: String,
}

// ---------------------------------------------------------------- identity

/// The identity the function runs as, and what it may do.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IdentityControl {
    /// No other function may run as the same principal (AWS role, GCP
    /// service account; on Azure a system-assigned identity and no shared
    /// user-assigned identity).
    #[serde(default = "yes")]
    pub dedicated: bool,
    /// In Enforce mode, when the identity is shared or a default one, mint a
    /// dedicated identity holding exactly the declared permissions and switch
    /// the function to it. The old identity is never deleted.
    #[serde(default)]
    pub create_if_shared: bool,
    /// Let zerofn change the permissions of the identity the function already
    /// runs as, when that identity's own evidence proves it exclusive to this
    /// function (AWS: trusted by lambda.amazonaws.com only, in no instance
    /// profile, used by no other function or version in any enabled region;
    /// GCP: a user-managed service account of this project that no other
    /// workload runs as). Off by default: zerofn then only changes
    /// identities it minted itself, and otherwise mints one (createIfShared).
    #[serde(default)]
    pub edit_in_place_if_exclusive: bool,
    /// Report the declared permissions the function has not used within a
    /// window, from the cloud's own evidence (AWS: IAM last-accessed
    /// details of the role; GCP: the IAM recommender's policy insights for
    /// the service account), with the narrower declaration that covers what
    /// was used. Report-only: zerofn never removes a declared permission.
    /// Not observable on Azure (refused there).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unused_permissions: Option<UnusedPermissions>,
    /// The execution role's permissions (AWS functions only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aws: Option<AwsIdentity>,
    /// The role assignments of the app's identity (Azure functions only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub azure: Option<AzureIdentity>,
    /// The project roles of the service account (GCP functions only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gcp: Option<GcpIdentity>,
}

fn yes() -> bool {
    true
}

/// Which declared permissions count as unused, and how often the evidence
/// is read again.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UnusedPermissions {
    /// A permission not used within this long before the evidence was
    /// gathered is unused, e.g. `90d` (days, hours, minutes or seconds;
    /// every part more than zero).
    #[schemars(regex(pattern = patterns::WINDOW), length(max = 12))]
    pub window: String,
    /// How long the evidence read for one identity is reused (an AWS
    /// last-accessed report is a job IAM runs). Defaults to `24h`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = patterns::WINDOW), length(max = 12))]
    pub refresh_interval: Option<String>,
}

/// How long evidence of use is reused when the posture does not say.
pub const DEFAULT_USAGE_REFRESH: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

impl UnusedPermissions {
    /// The window; None only for a value too large to count (the schema
    /// refuses zero).
    pub fn window(&self) -> Option<std::time::Duration> {
        super::duration::parse(&self.window)
    }

    pub fn refresh(&self) -> std::time::Duration {
        self.refresh_interval
            .as_deref()
            .and_then(super::duration::parse)
            .unwrap_or(DEFAULT_USAGE_REFRESH)
    }
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AwsIdentity {
    /// The least-privilege allowlist: the role's only inline policy holds
    /// exactly these statements (plus the generated baseline). Left out, the
    /// role's policies are not checked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 100))]
    pub permissions: Option<Vec<PolicyStatement>>,
    /// Add what the function itself needs: logs on its own log group, X-Ray
    /// writes when tracing is declared, ENI management when a VPC is declared.
    #[serde(default = "yes")]
    pub baseline: bool,
    /// Managed policies that may stay attached; any other is detached.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 20), inner(regex(pattern = patterns::IAM_POLICY_ARN), length(max = 2048)))]
    pub managed_policies: Vec<String>,
    /// A permissions boundary the role must carry. A boundary is never
    /// removed (that would widen the role).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = patterns::IAM_POLICY_ARN), length(max = 2048))]
    pub permissions_boundary: Option<String>,
}

/// One IAM policy statement.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[x_kube(validation = Rule::new("(has(self.effect) && self.effect == 'Deny') || !self.actions.exists(a, a == '*')").message("action '*' grants every action of every service: declare the actions the function needs").field_path(".actions"))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PolicyStatement {
    /// Statement id, unique within the policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[A-Za-z0-9]{1,64}$"), length(max = 64))]
    pub sid: Option<String>,
    /// Allow (default) or Deny.
    #[serde(default)]
    pub effect: Effect,
    /// Actions such as `dynamodb:GetItem` or `s3:Get*`. `*` alone is refused.
    #[schemars(length(min = 1, max = 100), inner(regex(pattern = patterns::IAM_ACTION), length(max = 128)))]
    pub actions: Vec<String>,
    /// Resource ARNs (wildcards allowed inside an ARN).
    #[schemars(length(min = 1, max = 100), inner(length(min = 1, max = 2048)))]
    pub resources: Vec<String>,
    /// IAM condition block: operator → key → values.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub conditions: BTreeMap<String, BTreeMap<String, Vec<String>>>,
}

#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Effect {
    #[default]
    Allow,
    Deny,
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AzureIdentity {
    /// The role assignments the function's identity must hold, exactly.
    /// Left out, role assignments are not checked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 100))]
    pub role_assignments: Option<Vec<AzureRoleAssignment>>,
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AzureRoleAssignment {
    /// Role name (e.g. `Storage Blob Data Reader`) or role definition GUID.
    #[schemars(length(min = 1, max = 512))]
    pub role: String,
    /// ARM scope: a subscription, resource group or resource id.
    #[schemars(regex(pattern = patterns::AZURE_RESOURCE_ID), length(max = 2048))]
    pub scope: String,
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GcpIdentity {
    /// The project roles the service account must hold, exactly. Left out,
    /// the project IAM policy is not checked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 100), inner(regex(pattern = patterns::GCP_ROLE), length(max = 256)))]
    pub roles: Option<Vec<String>>,
}

// ---------------------------------------------------------------- triggers

/// Who may invoke the function.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TriggerControl {
    /// Deny: no anonymous or public path at all. RequireAuth: reachable from
    /// the internet only with authentication.
    #[serde(default)]
    pub public_access: PublicAccess,
    /// Remove (AWS: RemovePermission, GCP/Azure: drop the binding) invoke
    /// grants and disable event sources that are not declared. When false,
    /// undeclared grants are only reported — public ones are always removed
    /// when publicAccess is Deny or RequireAuth.
    #[serde(default = "yes")]
    pub remove_unlisted: bool,
    /// Resource policy grants, event sources and function URLs (AWS functions only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aws: Option<AwsTriggers>,
    /// Network access, access restrictions and authentication (Azure functions only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub azure: Option<AzureTriggers>,
    /// Ingress, invokers and the event trigger (GCP functions only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gcp: Option<GcpTriggers>,
}

#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PublicAccess {
    #[default]
    Deny,
    RequireAuth,
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AwsTriggers {
    /// The only principals the resource policy may admit.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 100))]
    pub invokers: Vec<AwsInvoker>,
    /// Event source ARNs whose event source mappings may stay enabled; any
    /// other mapping is disabled (never deleted).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 100), inner(regex(pattern = patterns::ARN), length(max = 2048)))]
    pub event_sources: Vec<String>,
    /// Allowed: a function URL may exist, with AuthType AWS_IAM. Forbidden:
    /// any function URL is deleted. Left out: Forbidden when publicAccess is
    /// Deny, Allowed when it is RequireAuth.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function_url: Option<FunctionUrlPolicy>,
    /// The API Gateway REST and HTTP APIs in front of the function: found
    /// through the `apigateway.amazonaws.com` statements of its resource
    /// policy, whose AWS:SourceArn names each API.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_gateway: Option<AwsApiGateway>,
}

/// What every API method or route that reaches the function must require.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AwsApiGateway {
    /// Every method (REST) or route (HTTP API) whose integration invokes the
    /// function has an authorization type other than NONE, except the
    /// declared `publicMethods`. Enforce sets AWS_IAM (or the API's declared
    /// authorizer) on REST methods and redeploys their stages; HTTP API
    /// routes are reported.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub require_authorizer: bool,
    /// REST only: every method taking a body or parameters has a request
    /// validator that validates them, and a model for the body. Enforce
    /// attaches the API's declared validator to a method that has none.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub require_request_validation: bool,
    /// Methods meant to be reachable without authorization, by path and
    /// verb: reported as public by declaration, never changed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 100))]
    pub public_methods: Vec<ApiMethodRef>,
    /// Per API: the authorizer and the request validator Enforce attaches.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 50))]
    pub apis: Vec<AwsApiSettings>,
}

/// One method of an API, by resource path and HTTP verb.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ApiMethodRef {
    /// The resource path (`/health`, `/orders/{id}`).
    #[schemars(regex(pattern = patterns::API_PATH), length(max = 1024))]
    pub path: String,
    /// The HTTP verb, or ANY.
    #[schemars(regex(pattern = patterns::HTTP_METHOD), length(max = 7))]
    pub method: String,
}

/// What Enforce attaches to the methods of one REST API.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[x_kube(validation = Rule::new("has(self.authorizerId) == has(self.authorizerType)").message("authorizerId and authorizerType go together: the method's authorizationType must match the authorizer's type").field_path(".authorizerId"))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AwsApiSettings {
    /// The REST API id (the first part of its execute-api ARN resource).
    #[schemars(regex(pattern = patterns::API_ID), length(max = 64))]
    pub api_id: String,
    /// The authorizer set on a method without authorization. Left out:
    /// AWS_IAM.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = patterns::API_ID), length(max = 64))]
    pub authorizer_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorizer_type: Option<ApiAuthorizerType>,
    /// The request validator attached to a method without one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = patterns::API_ID), length(max = 64))]
    pub request_validator_id: Option<String>,
}

/// A method's authorizationType for an authorizer of that kind.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ApiAuthorizerType {
    #[serde(rename = "CUSTOM")]
    Custom,
    #[serde(rename = "COGNITO_USER_POOLS")]
    CognitoUserPools,
}

impl ApiAuthorizerType {
    pub fn as_str(self) -> &'static str {
        match self {
            ApiAuthorizerType::Custom => "CUSTOM",
            ApiAuthorizerType::CognitoUserPools => "COGNITO_USER_POOLS",
        }
    }
}

#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum FunctionUrlPolicy {
    Allowed,
    Forbidden,
}

/// A principal that may invoke the function, and from where.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[x_kube(validation = Rule::new("!(self.principal.endsWith('.amazonaws.com') || self.principal.endsWith('.amazonaws.com.cn')) || (has(self.sourceArn) && has(self.sourceAccount))").message("a service principal must be narrowed by sourceArn and sourceAccount, or any account's resource could invoke the function").field_path(".sourceArn"))]
#[x_kube(validation = Rule::new("!has(self.sourceArn) || !self.sourceArn.matches('^arn:[^:]*:[^:]*:[^:]*:.*[*?]')").message("sourceArn must name one resource: a wildcard in its account or resource part lets other resources invoke the function").field_path(".sourceArn"))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AwsInvoker {
    /// A service principal (`s3.amazonaws.com`), an account id, or an IAM
    /// role/user/account-root ARN. `*` is refused.
    #[schemars(regex(pattern = patterns::AWS_PRINCIPAL), length(max = 2048))]
    pub principal: String,
    /// Required for service principals: the resource that may invoke
    /// (`AWS:SourceArn`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = patterns::ARN), length(max = 2048))]
    pub source_arn: Option<String>,
    /// Required for service principals: the account that owns the source
    /// (`AWS:SourceAccount`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = patterns::AWS_ACCOUNT_ID), length(max = 12))]
    pub source_account: Option<String>,
    /// The action granted: lambda:InvokeFunction (default) or
    /// lambda:InvokeFunctionUrl.
    #[serde(default)]
    pub action: InvokeAction,
}

#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum InvokeAction {
    #[default]
    #[serde(rename = "lambda:InvokeFunction")]
    InvokeFunction,
    #[serde(rename = "lambda:InvokeFunctionUrl")]
    InvokeFunctionUrl,
}

impl InvokeAction {
    pub fn as_str(self) -> &'static str {
        match self {
            InvokeAction::InvokeFunction => "lambda:InvokeFunction",
            InvokeAction::InvokeFunctionUrl => "lambda:InvokeFunctionUrl",
        }
    }
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AzureTriggers {
    /// Disabled closes the public endpoint (private endpoints only). Left
    /// out: Disabled when publicAccess is Deny, not checked otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_network_access: Option<AzurePublicNetworkAccess>,
    /// Access restrictions (siteConfig.ipSecurityRestrictions) that must be
    /// in place, with default action Deny.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 512))]
    pub access_restrictions: Option<Vec<AzureAccessRestriction>>,
    /// Require authentication through App Service authentication
    /// (authsettingsV2).
    #[serde(default = "yes")]
    pub require_authentication: bool,
    /// httpsOnly: true, minTlsVersion at least 1.2, ftpsState Disabled and
    /// basic publishing credentials (FTP, SCM) disabled.
    #[serde(default = "yes")]
    pub harden_transport: bool,
}

/// What `triggers: {}` means on Azure: the same as the serde defaults.
impl Default for AzureTriggers {
    fn default() -> Self {
        AzureTriggers {
            public_network_access: None,
            access_restrictions: None,
            require_authentication: true,
            harden_transport: true,
        }
    }
}

#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum AzurePublicNetworkAccess {
    Enabled,
    Disabled,
}

/// One access restriction rule (siteConfig.ipSecurityRestrictions): exactly
/// one source, optional header pins.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[x_kube(validation = Rule::new("(has(self.ipAddress) ? 1 : 0) + (has(self.vnetSubnetResourceId) ? 1 : 0) + (has(self.serviceTag) ? 1 : 0) == 1").message("exactly one of ipAddress, vnetSubnetResourceId or serviceTag"))]
#[x_kube(validation = Rule::new("!has(self.headers) || self.headers.all(h, h in ['x-azure-fdid', 'x-fd-healthprobe', 'x-forwarded-for', 'x-forwarded-host'] && size(self.headers[h]) >= 1 && size(self.headers[h]) <= 8)").message("headers: x-azure-fdid, x-fd-healthprobe, x-forwarded-for or x-forwarded-host (lowercase), each with 1 to 8 values").field_path(".headers"))]
pub struct AzureAccessRestriction {
    /// The rule's name.
    #[schemars(length(min = 1, max = 32))]
    pub name: String,
    /// CIDR, e.g. 203.0.113.0/24.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    pub ip_address: Option<String>,
    /// A subnet of a virtual network, by ARM resource id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = patterns::AZURE_SUBNET_ID), length(max = 2048))]
    pub vnet_subnet_resource_id: Option<String>,
    /// e.g. AzureFrontDoor.Backend.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 128))]
    pub service_tag: Option<String>,
    /// HTTP header pins the rule also requires (x-azure-fdid,
    /// x-fd-healthprobe, x-forwarded-for, x-forwarded-host → allowed values),
    /// e.g. the one Front Door instance allowed in front of the app. A rule
    /// with pins is a different rule from the same source without them.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(schema_with = "header_pins")]
    pub headers: BTreeMap<String, Vec<String>>,
    /// Rules are applied in ascending priority.
    #[schemars(range(min = 1, max = 2147483647))]
    pub priority: i32,
}

/// The four headers App Service pins, each with at most 8 values (what the
/// CEL rule allows) of at most 256 characters (a host name is at most 253).
/// schemars' `inner` bounds do not reach a map's values, hence by hand.
fn header_pins(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "object",
        "maxProperties": 4,
        "additionalProperties": {"type": "array", "maxItems": 8, "items": {"type": "string", "maxLength": 256}},
    })
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[x_kube(validation = Rule::new("!has(self.requirePrivateIngress) || !self.requirePrivateIngress || !has(self.ingress) || self.ingress != 'ALLOW_ALL'").message("requirePrivateIngress refuses ALLOW_ALL: declare ALLOW_INTERNAL_ONLY or ALLOW_INTERNAL_AND_GCLB, or leave ingress out").field_path(".ingress"))]
pub struct GcpTriggers {
    /// serviceConfig.ingressSettings. Left out: ALLOW_INTERNAL_ONLY when
    /// publicAccess is Deny, not checked otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingress: Option<GcpIngress>,
    /// The function is reachable only from inside the project's networks
    /// or through a Google Cloud load balancer: its Cloud Run service's
    /// ingress (what Google enforces, which can be changed on the service
    /// behind the function's back) is not INGRESS_TRAFFIC_ALL, and the
    /// function's ingressSettings (what its next deploy applies again) is
    /// not ALLOW_ALL. Enforce narrows either to internal and Cloud Load
    /// Balancing; a narrower setting is kept.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub require_private_ingress: bool,
    /// Members that hold roles/run.invoker on the function's Cloud Run
    /// service, exactly. allUsers and allAuthenticatedUsers are refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1500), inner(regex(pattern = patterns::GCP_MEMBER), length(max = 1024)))]
    pub invokers: Option<Vec<String>>,
    /// Allowlist for the event trigger (reported, not changed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_trigger: Option<GcpEventTriggerAllowlist>,
}

#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[allow(clippy::enum_variant_names)]
pub enum GcpIngress {
    #[serde(rename = "ALLOW_INTERNAL_ONLY")]
    AllowInternalOnly,
    #[serde(rename = "ALLOW_INTERNAL_AND_GCLB")]
    AllowInternalAndGclb,
    #[serde(rename = "ALLOW_ALL")]
    AllowAll,
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GcpEventTriggerAllowlist {
    /// Service accounts the event trigger may run as.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 100), inner(regex(pattern = patterns::GCP_SERVICE_ACCOUNT_EMAIL), length(max = 254)))]
    pub service_accounts: Vec<String>,
    /// Full topic names, projects/P/topics/T.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 100), inner(length(max = 512)))]
    pub pubsub_topics: Vec<String>,
    /// Event types, e.g. google.cloud.storage.object.v1.finalized.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 100), inner(length(max = 256)))]
    pub event_types: Vec<String>,
}

// ---------------------------------------------------------------- network

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NetworkControl {
    /// The function's VPC configuration (AWS functions only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aws: Option<AwsNetwork>,
    /// Regional VNet integration (Azure functions only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub azure: Option<AzureNetwork>,
    /// The Serverless VPC Access connector (GCP functions only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gcp: Option<GcpNetwork>,
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AwsNetwork {
    /// The function's VpcConfig.SubnetIds, exactly.
    #[schemars(length(min = 1, max = 16), inner(regex(pattern = patterns::AWS_SUBNET_ID), length(max = 24)))]
    pub subnet_ids: Vec<String>,
    /// The function's VpcConfig.SecurityGroupIds, exactly.
    #[schemars(length(min = 1, max = 5), inner(regex(pattern = patterns::AWS_SECURITY_GROUP_ID), length(max = 20)))]
    pub security_group_ids: Vec<String>,
    /// Each subnet the function is attached to routes nothing to an internet
    /// gateway: its route table (its own, or the VPC's main table) has no
    /// 0.0.0.0/0 or ::/0 route to an igw-. NAT gateways and endpoints are
    /// fine. A public subnet is a High finding naming the route; report-only.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub require_private_subnets: bool,
    /// The function's traffic is recorded: its VPC, or each subnet it is
    /// attached to, has an active flow log. Report-only unless
    /// `flowLogDestination` is declared.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub require_flow_logs: bool,
    /// Where a flow log zerofn creates delivers: with it, Enforce creates a
    /// flow log of all traffic on the function's VPC when nothing records
    /// it. An existing flow log is never changed or deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flow_log_destination: Option<FlowLogDestination>,
    /// What the function may reach: each attached security group's egress
    /// rules allow only these destinations and ports. An undeclared rule is
    /// a finding (all traffic to 0.0.0.0/0 or ::/0 is High). Enforce
    /// narrows only the groups listed in `exclusiveSecurityGroups`, and only
    /// while the account shows nothing else uses them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub egress: Option<AwsEgress>,
}

/// A flow log's destination: a CloudWatch Logs group with the role that
/// delivers to it, or an S3 bucket (ARN).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[x_kube(validation = Rule::new("has(self.s3Arn) != has(self.logGroup)").message("name either logGroup (with deliveryRoleArn) or s3Arn"))]
#[x_kube(validation = Rule::new("!has(self.logGroup) || has(self.deliveryRoleArn)").message("a CloudWatch Logs destination needs deliveryRoleArn").field_path(".deliveryRoleArn"))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FlowLogDestination {
    /// The CloudWatch Logs group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = patterns::LOG_GROUP), length(max = 512))]
    pub log_group: Option<String>,
    /// The IAM role flow logs assume to deliver to `logGroup`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = patterns::IAM_ROLE_ARN), length(max = 2048))]
    pub delivery_role_arn: Option<String>,
    /// An S3 bucket (or folder) ARN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = patterns::ARN), length(max = 2048))]
    pub s3_arn: Option<String>,
}

/// The egress a VPC-attached function needs.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AwsEgress {
    /// Destination CIDRs (IPv4 or IPv6). A rule to a CIDR inside one of
    /// them is declared.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 50), inner(regex(pattern = patterns::CIDR), length(max = 43)))]
    pub cidrs: Vec<String>,
    /// Managed prefix lists (`pl-...`), e.g. an S3 or DynamoDB gateway
    /// endpoint's.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 20), inner(regex(pattern = patterns::AWS_PREFIX_LIST_ID), length(max = 32)))]
    pub prefix_lists: Vec<String>,
    /// TCP ports the function connects to. Empty: any port to the declared
    /// destinations.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 50), inner(range(min = 1, max = 65535)))]
    pub ports: Vec<u16>,
    /// Attached security groups that are the function's own: Enforce adds
    /// the declared rules to them, then revokes the undeclared ones. A group
    /// another function or any other network interface uses is never
    /// changed (reported instead), whatever this list says.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 5), inner(regex(pattern = patterns::AWS_SECURITY_GROUP_ID), length(max = 20)))]
    pub exclusive_security_groups: Vec<String>,
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AzureNetwork {
    /// virtualNetworkSubnetId (regional VNet integration).
    #[schemars(regex(pattern = patterns::AZURE_SUBNET_ID), length(max = 2048))]
    pub subnet_id: String,
    /// siteConfig.vnetRouteAllEnabled: all outbound traffic through the VNet.
    #[serde(default = "yes")]
    pub route_all_egress: bool,
    /// The integration subnet controls the way out: its network security
    /// group denies outbound traffic to the internet ahead of any rule
    /// that allows it, or its route table sends 0.0.0.0/0 to a virtual
    /// appliance (a firewall). Report-only: a subnet's NSG and routes serve
    /// everything in it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub require_egress_control: bool,
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GcpNetwork {
    /// serviceConfig.vpcConnector, projects/P/locations/L/connectors/C.
    #[schemars(regex(pattern = patterns::GCP_CONNECTOR), length(max = 512))]
    pub vpc_connector: String,
    /// serviceConfig.vpcConnectorEgressSettings.
    #[serde(default)]
    pub egress: GcpEgress,
}

#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum GcpEgress {
    #[default]
    #[serde(rename = "ALL_TRAFFIC")]
    AllTraffic,
    #[serde(rename = "PRIVATE_RANGES_ONLY")]
    PrivateRangesOnly,
}

// ---------------------------------------------------------------- supply chain

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SupplyChainControl {
    /// Code signing and layers (AWS functions only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aws: Option<AwsSupplyChain>,
    /// Deployment packages (Azure functions only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub azure: Option<AzureSupplyChain>,
    /// Build repositories and build identities (GCP functions only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gcp: Option<GcpSupplyChain>,
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AwsSupplyChain {
    /// The code signing config the function must use; attached in Enforce
    /// mode. Its UntrustedArtifactOnDeployment policy must be Enforce (reported:
    /// a code signing config is shared, zerofn does not change it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = patterns::LAMBDA_CSC_ARN), length(max = 200))]
    pub code_signing_config_arn: Option<String>,
    /// Layer ARNs the function may use. With a version the layer is pinned to
    /// it; without, any explicit version of that layer is allowed. Layers are
    /// reported, never removed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 100), inner(regex(pattern = patterns::LAMBDA_LAYER_ARN), length(max = 140)))]
    pub allowed_layers: Option<Vec<String>>,
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AzureSupplyChain {
    /// Report apps that are not run from a package (WEBSITE_RUN_FROM_PACKAGE).
    #[serde(default)]
    pub require_run_from_package: bool,
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GcpSupplyChain {
    /// Artifact Registry repositories builds may push to
    /// (buildConfig.dockerRepository), reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 100), inner(length(max = 512)))]
    pub allowed_docker_repositories: Option<Vec<String>>,
    /// Service accounts builds may run as (buildConfig.serviceAccount), reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 100), inner(length(max = 512)))]
    pub allowed_build_service_accounts: Option<Vec<String>>,
    /// Binary Authorization on the function's Cloud Run service: `default`
    /// (the project's default policy, binaryAuthorization.useDefault) or a
    /// named platform policy, projects/P/platforms/cloudrun/policies/NAME.
    /// A service without any is a High finding; in Enforce mode the declared
    /// one is set with a service update whose updateMask names only
    /// binaryAuthorization. A service enforcing another policy is reported,
    /// never switched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = patterns::GCP_BINAUTHZ), length(max = 256))]
    pub require_binary_authorization: Option<String>,
}

// ---------------------------------------------------------------- observability

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ObservabilityControl {
    /// AWS: TracingConfig.Mode. Azure: Application Insights connected
    /// (reported). GCP: not applicable (reported).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracing: Option<TracingMode>,
    /// AWS: LoggingConfig.LogFormat JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub structured_logs: Option<bool>,
    /// Runtime protection and logs (AWS functions only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aws: Option<AwsObservability>,
    /// Where the app's logs go (Azure functions only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub azure: Option<AzureObservability>,
    /// Whether the function's logs are kept (GCP functions only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gcp: Option<GcpObservability>,
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GcpObservability {
    /// No enabled exclusion of the project's `_Default` log sink drops the
    /// function's logs (its Cloud Run revision's or its Cloud Functions
    /// resource). An exclusion whose filter zerofn does not evaluate is
    /// reported as not judged. Report-only.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub require_logs_kept: bool,
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AzureObservability {
    /// A diagnostic setting of the app sends its FunctionAppLogs to this
    /// Log Analytics workspace (ARM resource id). Report-only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = patterns::AZURE_RESOURCE_ID), length(max = 2048))]
    pub log_analytics_workspace: Option<String>,
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AwsObservability {
    /// Runtime protection: layer ARN patterns (`*` matches any run of
    /// characters; a pattern without a version matches every version) of
    /// which the function must carry at least one layer each, e.g. a
    /// security agent's extension. A function without one is a High
    /// finding. In Enforce mode a missing extension is attached only when
    /// the pattern is an exact layer version ARN (with its version, in the
    /// function's Region): the function's layers are kept and never removed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 5), inner(regex(pattern = patterns::LAMBDA_LAYER_PATTERN), length(max = 200)))]
    pub required_extensions: Vec<String>,
    /// The function's log group (`/aws/lambda/<name>`, or its
    /// LoggingConfig.LogGroup) keeps its events at least this many days
    /// (one of the values CloudWatch Logs accepts). In Enforce mode a
    /// shorter retention is raised to it, and a log group that does not
    /// exist yet is created with it; a longer one, or none (never expire),
    /// is left alone: zerofn never shortens retention.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "retention_days")]
    pub log_retention_days: Option<i32>,
    /// The function's log group has a subscription filter delivering to
    /// this destination (a Kinesis stream, Firehose or Lambda ARN, or a
    /// cross-account CloudWatch Logs destination). Report-only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = patterns::ARN), length(max = 2048))]
    pub central_destination: Option<String>,
}

/// The retention periods CloudWatch Logs accepts (PutRetentionPolicy).
pub const LOG_RETENTION_DAYS: [i32; 22] = [
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653,
];

fn retention_days(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({"type": "integer", "enum": LOG_RETENTION_DAYS})
}

#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum TracingMode {
    Active,
    PassThrough,
}

impl FunctionTarget {
    pub fn cloud(&self) -> Option<Cloud> {
        match (&self.aws, &self.azure, &self.gcp) {
            (Some(_), None, None) => Some(Cloud::Aws),
            (None, Some(_), None) => Some(Cloud::Azure),
            (None, None, Some(_)) => Some(Cloud::Gcp),
            _ => None,
        }
    }
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Cloud {
    Aws,
    Azure,
    Gcp,
}

impl Cloud {
    pub fn as_str(self) -> &'static str {
        match self {
            Cloud::Aws => "aws",
            Cloud::Azure => "azure",
            Cloud::Gcp => "gcp",
        }
    }
}

impl std::fmt::Display for Cloud {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
