//! What zerofn observes of one Lambda function, as plain data: no SDK types,
//! so `plan` is pure and table-testable.

use super::policy::{PolicyDocument, ResourceStatement};
use std::collections::{BTreeMap, BTreeSet};

#[derive(Clone, Debug, Default, PartialEq)]
pub struct ObservedFunction {
    pub arn: String,
    pub name: String,
    pub region: String,
    pub role_arn: String,
    /// Other functions of the account (in the regions in scope) that run as
    /// the same role.
    pub role_shared_with: Vec<String>,
    /// Who else runs as the role, across published versions and regions:
    /// observed only when the posture opts in to editing the role in place.
    pub role_users: Option<RoleUsers>,
    pub vpc: Option<Vpc>,
    pub tracing_mode: Option<String>,
    pub logging: Logging,
    /// Layer version ARNs as the function reports them.
    pub layers: Vec<String>,
    /// The role the function runs as, from the account inventory. None when
    /// it is not in the account (cross-account role) or could not be read.
    pub role: Option<ObservedRole>,
    /// The dedicated role zerofn would create, if it exists already.
    pub dedicated_role: Option<ObservedRole>,
    /// Resource-based policy statements (None: no policy at all).
    pub resource_policy: Option<Vec<ResourceStatement>>,
    pub url: Option<FunctionUrl>,
    pub event_source_mappings: Vec<EventSourceMapping>,
    /// Observed only when the posture declares a code signing config.
    pub code_signing: Option<CodeSigning>,
    /// Observed only for Enforce postures (the ownership marker).
    pub tags: Option<BTreeMap<String, String>>,
    /// The tags came from the tagging API's index, which may lag behind a
    /// TagResource: a write must not be decided on them.
    pub tags_may_lag: bool,
    /// Every alias and published version (never `$LATEST`, which is the
    /// function itself), each an invocation path with its own resource
    /// policy and function URL. Observed with the triggers control.
    pub qualifiers: Vec<ObservedQualifier>,
    /// What the attached subnets route to the internet: observed only when
    /// the posture requires private subnets.
    pub subnet_routes: Option<SubnetRoutes>,
    /// Which of the VPC and the attached subnets have an active flow log:
    /// observed only when the posture requires flow logs.
    pub flow_logs: Option<FlowLogs>,
    /// The attached security groups' egress rules and who else uses each
    /// group: observed only when the posture declares egress.
    pub egress: Option<Egress>,
    /// What IAM's last-accessed report says the role used: observed only
    /// when the posture asks about unused permissions.
    pub last_accessed: Option<LastAccessed>,
    /// The function's log group: observed only when the posture declares a
    /// retention or a central destination.
    pub log_group: Option<LogGroupState>,
    /// The API Gateway APIs whose integrations invoke the function:
    /// observed only when the posture declares `triggers.aws.apiGateway`.
    pub front_doors: Option<FrontDoors>,
}

/// The egress of the function's security groups.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Egress {
    Observed(Vec<GroupEgress>),
    /// Why the groups could not be read: not judged.
    NotObserved(String),
}

/// One security group attached to the function.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GroupEgress {
    pub group_id: String,
    pub rules: Vec<EgressRule>,
    /// Whatever else uses the group (another function, a network interface
    /// that is not a Lambda one), as evidence says. Empty: the function's
    /// own, as far as the account shows.
    pub also_used_by: Vec<String>,
}

/// One egress permission: a protocol and port range to one destination.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct EgressRule {
    /// `-1` (every protocol), `tcp`, `udp`, `icmp` or a protocol number.
    pub protocol: String,
    /// The port range; None for every port.
    pub ports: Option<(i32, i32)>,
    pub destination: Destination,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub enum Destination {
    Cidr(String),
    PrefixList(String),
    Group(String),
}

impl std::fmt::Display for EgressRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let to = match &self.destination {
            Destination::Cidr(c) | Destination::PrefixList(c) | Destination::Group(c) => c,
        };
        match (self.protocol.as_str(), self.ports) {
            ("-1", _) => write!(f, "all traffic to {to}"),
            (p, Some((a, b))) if a == b => write!(f, "{p}/{a} to {to}"),
            (p, Some((a, b))) => write!(f, "{p}/{a}-{b} to {to}"),
            (p, None) => write!(f, "{p} to {to}"),
        }
    }
}

/// The function's CloudWatch Logs group, or why it could not be read.
#[derive(Clone, Debug, PartialEq)]
pub enum LogGroupState {
    Observed(LogGroup),
    NotObserved(crate::providers::ProviderError),
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LogGroup {
    pub name: String,
    /// Lambda creates it at the first invocation.
    pub exists: bool,
    /// None: its events never expire.
    pub retention_days: Option<i32>,
    /// Where its subscription filters deliver (read only when a central
    /// destination is declared).
    pub destinations: Vec<String>,
}

/// IAM's last-accessed report of a role (GenerateServiceLastAccessedDetails
/// at action level), or why there is none.
#[derive(Clone, Debug, PartialEq)]
pub enum LastAccessed {
    Observed(AccessReport),
    /// The job failed, did not complete by its deadline, or could not be
    /// asked for: nothing is judged.
    NotObserved(crate::providers::ProviderError),
}

/// The services (and, where IAM tracks them, the actions) the role's
/// policies allow, each with when it was last used.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AccessReport {
    /// When IAM completed the report: the window ends here.
    pub as_of: jiff::Timestamp,
    /// By service namespace, lowercase (`s3`, `dynamodb`).
    pub services: BTreeMap<String, ServiceAccess>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServiceAccess {
    /// The last time any action of the service was used with the role.
    pub last_authenticated: Option<jiff::Timestamp>,
    /// The actions IAM tracks for the service (as IAM spells them, without
    /// the prefix), each with its last use. Empty: IAM tracks none of this
    /// service's actions, so it is judged as a whole only.
    pub actions: Vec<TrackedAction>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrackedAction {
    pub name: String,
    pub last_accessed: Option<jiff::Timestamp>,
}

/// The APIs in front of the function, found through the
/// `apigateway.amazonaws.com` statements of its resource policies.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FrontDoors {
    /// Each API a statement names, with what was read of it.
    pub apis: Vec<ObservedApi>,
    /// Statements for API Gateway that name no single API (no
    /// AWS:SourceArn, or a wildcard in its API id), as `path label: Sid`:
    /// the APIs behind them cannot be found, so they are never judged.
    pub unnamed: Vec<String>,
}

/// One API named by a statement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObservedApi {
    pub id: String,
    /// The Region of its execute-api ARN.
    pub region: String,
    pub read: ApiRead,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ApiRead {
    /// A REST API (API Gateway v1).
    Rest(RestApi),
    /// An HTTP API (API Gateway v2): its routes that reach the function.
    Http(Vec<ApiRoute>),
    /// Why it could not be read: nothing about it is judged.
    NotObserved(String),
}

/// What a REST API holds that reaches the function.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RestApi {
    /// The methods whose integration URI names the function or one of its
    /// aliases.
    pub methods: Vec<RestMethod>,
    /// Its stages, each with what its deployment serves: a method change
    /// takes effect in a stage only when the stage is redeployed.
    pub stages: Vec<ApiStage>,
    /// Request validators by id.
    pub validators: BTreeMap<String, RequestValidator>,
    /// Every method of the API (reaching the function or not) as the API
    /// holds it now: what a new deployment would publish.
    pub draft: BTreeMap<MethodKey, MethodGuard>,
}

/// (resource path, HTTP verb), as a deployment's apiSummary keys them.
pub type MethodKey = (String, String);

/// How a method is guarded, as far as zerofn judges it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MethodGuard {
    /// NONE, AWS_IAM, CUSTOM or COGNITO_USER_POOLS.
    pub authorization_type: String,
    pub api_key_required: bool,
}

/// One stage of a REST API.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiStage {
    pub name: String,
    pub deployment_id: String,
    pub served: Served,
}

/// What a stage's deployment serves: its apiSummary (GetDeployment with
/// `embed=apisummary`), or why it could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Served {
    Summary(BTreeMap<MethodKey, MethodGuard>),
    NotObserved(String),
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RestMethod {
    pub resource_id: String,
    pub path: String,
    pub http_method: String,
    /// NONE, AWS_IAM, CUSTOM or COGNITO_USER_POOLS.
    pub authorization_type: String,
    pub authorizer_id: Option<String>,
    pub request_validator_id: Option<String>,
    /// Content types with a model.
    pub request_models: BTreeSet<String>,
    /// `method.request.querystring.x`, `method.request.header.y`, ...
    pub request_parameters: BTreeSet<String>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RequestValidator {
    pub body: bool,
    pub parameters: bool,
}

/// An HTTP API route whose integration targets the function.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ApiRoute {
    pub route_id: String,
    /// `GET /health`, `ANY /{proxy+}` or `$default`.
    pub route_key: String,
    /// NONE, AWS_IAM, JWT or CUSTOM.
    pub authorization_type: String,
    pub authorizer_id: Option<String>,
}

/// The active flow logs over the function's network.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FlowLogs {
    /// The resources (the VPC id, subnet ids) with an active flow log.
    Observed(BTreeSet<String>),
    /// Why the flow logs could not be read: not judged.
    NotObserved(String),
}

/// The routes of the function's subnets to an internet gateway.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SubnetRoutes {
    /// Subnet id → its routes to an internet gateway (none: private).
    Observed(BTreeMap<String, Vec<InternetRoute>>),
    /// Why the route tables could not be read: the subnets are not judged.
    NotObserved(String),
}

/// A route that sends traffic for everything to an internet gateway.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InternetRoute {
    pub route_table: String,
    /// 0.0.0.0/0 or ::/0.
    pub destination: String,
    /// The igw- it goes to.
    pub gateway: String,
}

/// An alias or a published version of the function.
#[derive(Clone, Debug, PartialEq)]
pub struct ObservedQualifier {
    pub kind: QualifierKind,
    /// The alias name or the version number, as `Qualifier` takes it.
    pub name: String,
    /// Its resource-based policy statements (None: no policy).
    pub resource_policy: Option<Vec<ResourceStatement>>,
    /// Its function URL (aliases only: versions cannot have one).
    pub url: Option<FunctionUrl>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QualifierKind {
    Alias,
    Version,
}

impl QualifierKind {
    pub fn as_str(self) -> &'static str {
        match self {
            QualifierKind::Alias => "Alias",
            QualifierKind::Version => "Version",
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Vpc {
    pub vpc_id: Option<String>,
    pub subnet_ids: BTreeSet<String>,
    pub security_group_ids: BTreeSet<String>,
    pub ipv6_allowed_for_dual_stack: Option<bool>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Logging {
    pub log_format: Option<String>,
    pub log_group: Option<String>,
    pub application_log_level: Option<String>,
    pub system_log_level: Option<String>,
}

/// Every Lambda function version of the account that runs as one role, and
/// how much of the account that covers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoleUsers {
    /// Function and version ARNs (qualified) other than the function's own
    /// `$LATEST` that run as the role.
    pub others: Vec<String>,
    /// Regions whose functions were listed.
    pub regions_scanned: std::collections::BTreeSet<String>,
    /// Regions enabled for the account, or why they could not be listed.
    pub regions_enabled: Result<std::collections::BTreeSet<String>, String>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct ObservedRole {
    pub arn: String,
    pub name: String,
    /// The role's immutable unique id (`AROA…`): the proof that zerofn
    /// created it, when it matches a recorded one.
    pub role_id: String,
    /// ARNs of the instance profiles holding the role (EC2 can use it).
    pub instance_profiles: Vec<String>,
    /// Inline policies by name.
    pub inline_policies: BTreeMap<String, PolicyDocument>,
    /// Attached managed policy ARNs.
    pub attached_policies: BTreeSet<String>,
    /// The default-version document of each attached managed policy, by
    /// ARN, as far as it could be read. One missing from the map was not
    /// read: like an unreadable one, it may hold a Deny.
    pub managed_documents: BTreeMap<String, ManagedDocument>,
    pub permissions_boundary: Option<String>,
    pub tags: BTreeMap<String, String>,
    /// Principals the trust policy lets assume the role.
    pub trust: PolicyDocument,
}

/// A managed policy's default-version document, or why it could not be read.
#[derive(Clone, Debug, PartialEq)]
pub enum ManagedDocument {
    Read(PolicyDocument),
    Unreadable(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FunctionUrl {
    pub auth_type: String,
    pub url: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventSourceMapping {
    pub uuid: String,
    pub event_source_arn: Option<String>,
    pub state: String,
}

impl EventSourceMapping {
    /// Enabled, or on its way to being enabled.
    pub fn active(&self) -> bool {
        matches!(self.state.as_str(), "Enabled" | "Enabling" | "Creating" | "Updating")
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CodeSigning {
    /// The config attached to the function.
    pub attached_arn: Option<String>,
    /// UntrustedArtifactOnDeployment of the declared config.
    pub declared_policy: Option<String>,
    /// Whether the declared config exists.
    pub declared_exists: bool,
}
