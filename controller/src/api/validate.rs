//! Semantic validation: the rules a schema alone cannot say.
//!
//! Each rule here is also a CEL rule on the CRD (`x-kubernetes-validations`),
//! so `kubectl apply` and `zerofn plan -f` refuse the same input with the same
//! field path. `tests/crds.rs` evaluates the CEL side and proves the
//! two agree.

use super::account::{AccountConfig, AwsAccount, AzureCredentialKind, CloudAccountSpec, ClusterCloudAccountSpec};
use super::patterns;
use super::posture::*;
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// JSON path from the object root, e.g. `spec.function`.
    pub path: String,
    pub message: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

struct Errors(Vec<FieldError>);

impl Errors {
    fn push(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.0.push(FieldError {
            path: path.into(),
            message: message.into(),
        });
    }
}

fn count<T>(a: &Option<T>, b: &Option<impl Sized>, c: &Option<impl Sized>) -> usize {
    a.is_some() as usize + b.is_some() as usize + c.is_some() as usize
}

/// The CEL rules of a FunctionPosture, one named rule group at a time (the
/// order is the order errors are reported in).
pub fn posture(spec: &FunctionPostureSpec) -> Vec<FieldError> {
    let mut e = Errors(Vec::new());
    function_on_one_cloud(spec, &mut e);
    blocks_on_the_functions_cloud(spec, &mut e);
    create_if_shared_declares(spec, &mut e);
    unused_permissions_observable(spec, &mut e);
    no_wildcard_action(spec, &mut e);
    aws_invokers_scoped(spec, &mut e);
    api_authorizers_typed(spec, &mut e);
    gcp_private_ingress(spec, &mut e);
    azure_restrictions(spec, &mut e);
    flow_log_destination(spec, &mut e);
    e.0
}

/// A flow log destination names a log group (with its delivery role) or a
/// bucket, not both.
fn flow_log_destination(spec: &FunctionPostureSpec, e: &mut Errors) {
    let Some(d) = spec
        .network
        .as_ref()
        .and_then(|n| n.aws.as_ref())
        .and_then(|a| a.flow_log_destination.as_ref())
    else {
        return;
    };
    let path = "spec.network.aws.flowLogDestination";
    if d.s3_arn.is_some() == d.log_group.is_some() {
        e.push(path, "name either logGroup (with deliveryRoleArn) or s3Arn");
    }
    if d.log_group.is_some() && d.delivery_role_arn.is_none() {
        e.push(
            format!("{path}.deliveryRoleArn"),
            "a CloudWatch Logs destination needs deliveryRoleArn",
        );
    }
}

/// Exactly one of `function.aws|azure|gcp`.
fn function_on_one_cloud(spec: &FunctionPostureSpec, e: &mut Errors) {
    let f = &spec.function;
    if count(&f.aws, &f.azure, &f.gcp) != 1 {
        e.push(
            "spec.function",
            "exactly one of function.aws, function.azure or function.gcp must be set",
        );
    }
}

/// A control's per-cloud block only on the function's own cloud.
fn blocks_on_the_functions_cloud(spec: &FunctionPostureSpec, e: &mut Errors) {
    let f = &spec.function;
    let (aws, azure, gcp) = (f.aws.is_some(), f.azure.is_some(), f.gcp.is_some());
    let blocks: [(&str, bool, bool, bool); 5] = [
        (
            "identity",
            spec.identity.as_ref().is_some_and(|i| i.aws.is_some()),
            spec.identity.as_ref().is_some_and(|i| i.azure.is_some()),
            spec.identity.as_ref().is_some_and(|i| i.gcp.is_some()),
        ),
        (
            "triggers",
            spec.triggers.as_ref().is_some_and(|t| t.aws.is_some()),
            spec.triggers.as_ref().is_some_and(|t| t.azure.is_some()),
            spec.triggers.as_ref().is_some_and(|t| t.gcp.is_some()),
        ),
        (
            "network",
            spec.network.as_ref().is_some_and(|n| n.aws.is_some()),
            spec.network.as_ref().is_some_and(|n| n.azure.is_some()),
            spec.network.as_ref().is_some_and(|n| n.gcp.is_some()),
        ),
        (
            "supplyChain",
            spec.supply_chain.as_ref().is_some_and(|s| s.aws.is_some()),
            spec.supply_chain.as_ref().is_some_and(|s| s.azure.is_some()),
            spec.supply_chain.as_ref().is_some_and(|s| s.gcp.is_some()),
        ),
        (
            "observability",
            spec.observability.as_ref().is_some_and(|o| o.aws.is_some()),
            spec.observability.as_ref().is_some_and(|o| o.azure.is_some()),
            spec.observability.as_ref().is_some_and(|o| o.gcp.is_some()),
        ),
    ];
    for (name, has_aws, has_azure, has_gcp) in blocks {
        if has_aws && !aws {
            e.push(
                format!("spec.{name}.aws"),
                format!("{name}.aws is set but the function is not on AWS"),
            );
        }
        if has_azure && !azure {
            e.push(
                format!("spec.{name}.azure"),
                format!("{name}.azure is set but the function is not on Azure"),
            );
        }
        if has_gcp && !gcp {
            e.push(
                format!("spec.{name}.gcp"),
                format!("{name}.gcp is set but the function is not on GCP"),
            );
        }
    }
}

/// `createIfShared` mints an identity holding exactly what is declared, so
/// something must be declared.
fn create_if_shared_declares(spec: &FunctionPostureSpec, e: &mut Errors) {
    let f = &spec.function;
    let (aws, gcp) = (f.aws.is_some(), f.gcp.is_some());
    if let Some(id) = &spec.identity
        && id.create_if_shared
    {
        if aws && id.aws.as_ref().is_none_or(|a| a.permissions.is_none()) {
            e.push(
                "spec.identity.aws",
                "identity.createIfShared on AWS needs identity.aws.permissions: the new role gets exactly the declared permissions",
            );
        }
        if gcp && id.gcp.as_ref().is_none_or(|g| g.roles.is_none()) {
            e.push(
                "spec.identity.gcp",
                "identity.createIfShared on GCP needs identity.gcp.roles: the new service account gets exactly the declared roles",
            );
        }
    }
}

/// The unused-permission report compares declared permissions with their
/// use, so something must be declared; and Azure keeps no record of which
/// permissions of a role assignment were used. Either way, declaring the
/// report would read as if something had been checked.
fn unused_permissions_observable(spec: &FunctionPostureSpec, e: &mut Errors) {
    let Some(id) = spec.identity.as_ref().filter(|i| i.unused_permissions.is_some()) else {
        return;
    };
    let f = &spec.function;
    let aws = f.aws.is_some() && id.aws.as_ref().is_some_and(|a| a.permissions.is_some());
    let gcp = f.gcp.is_some() && id.gcp.as_ref().is_some_and(|g| g.roles.is_some());
    if !aws && !gcp {
        e.push("spec.identity.unusedPermissions", "identity.unusedPermissions compares declared permissions with their recorded use: declare identity.aws.permissions (AWS) or identity.gcp.roles (GCP); not observable on Azure, where role assignments carry no record of use");
    }
}

/// `*` as an allowed IAM action grants everything.
fn no_wildcard_action(spec: &FunctionPostureSpec, e: &mut Errors) {
    if let Some(perms) = spec
        .identity
        .as_ref()
        .and_then(|i| i.aws.as_ref())
        .and_then(|a| a.permissions.as_ref())
    {
        for (i, st) in perms.iter().enumerate() {
            if st.effect == Effect::Allow && st.actions.iter().any(|a| a == "*") {
                e.push(
                    format!("spec.identity.aws.permissions[{i}].actions"),
                    "action '*' grants every action of every service: declare the actions the function needs",
                );
            }
        }
    }
}

/// A service principal is narrowed to one resource of one account.
fn aws_invokers_scoped(spec: &FunctionPostureSpec, e: &mut Errors) {
    if let Some(t) = spec.triggers.as_ref().and_then(|t| t.aws.as_ref()) {
        for (i, inv) in t.invokers.iter().enumerate() {
            if super::arn::is_service_principal(&inv.principal)
                && (inv.source_arn.is_none() || inv.source_account.is_none())
            {
                e.push(
                    format!("spec.triggers.aws.invokers[{i}].sourceArn"),
                    "a service principal must be narrowed by sourceArn and sourceAccount, or any account's resource could invoke the function",
                );
            }
            if inv.source_arn.as_deref().is_some_and(super::arn::has_wide_part) {
                e.push(
                    format!("spec.triggers.aws.invokers[{i}].sourceArn"),
                    "sourceArn must name one resource: a wildcard in its account or resource part lets other resources invoke the function",
                );
            }
        }
    }
}

/// An API's declared authorizer names its kind: the method's
/// authorizationType must match the authorizer.
fn api_authorizers_typed(spec: &FunctionPostureSpec, e: &mut Errors) {
    let apis = spec
        .triggers
        .as_ref()
        .and_then(|t| t.aws.as_ref())
        .and_then(|a| a.api_gateway.as_ref())
        .map(|g| g.apis.as_slice())
        .unwrap_or_default();
    for (i, api) in apis.iter().enumerate() {
        if api.authorizer_id.is_some() != api.authorizer_type.is_some() {
            e.push(
                format!("spec.triggers.aws.apiGateway.apis[{i}].authorizerId"),
                "authorizerId and authorizerType go together: the method's authorizationType must match the authorizer's type",
            );
        }
    }
}

/// Private ingress cannot be declared alongside an ingress open to all:
/// zerofn would narrow what the posture asks to open.
fn gcp_private_ingress(spec: &FunctionPostureSpec, e: &mut Errors) {
    if let Some(g) = spec.triggers.as_ref().and_then(|t| t.gcp.as_ref())
        && g.require_private_ingress
        && g.ingress == Some(super::posture::GcpIngress::AllowAll)
    {
        e.push(
            "spec.triggers.gcp.ingress",
            "requirePrivateIngress refuses ALLOW_ALL: declare ALLOW_INTERNAL_ONLY or ALLOW_INTERNAL_AND_GCLB, or leave ingress out",
        );
    }
}

/// Each access restriction names one source, and pins only known headers.
fn azure_restrictions(spec: &FunctionPostureSpec, e: &mut Errors) {
    if let Some(rs) = spec
        .triggers
        .as_ref()
        .and_then(|t| t.azure.as_ref())
        .and_then(|a| a.access_restrictions.as_ref())
    {
        for (i, r) in rs.iter().enumerate() {
            if count(&r.ip_address, &r.vnet_subnet_resource_id, &r.service_tag) != 1 {
                e.push(
                    format!("spec.triggers.azure.accessRestrictions[{i}]"),
                    "exactly one of ipAddress, vnetSubnetResourceId or serviceTag",
                );
            }
            if r.headers
                .iter()
                .any(|(h, v)| !AZURE_RESTRICTION_HEADERS.contains(&h.as_str()) || v.is_empty() || v.len() > 8)
            {
                e.push(
                    format!("spec.triggers.azure.accessRestrictions[{i}].headers"),
                    "headers: x-azure-fdid, x-fd-healthprobe, x-forwarded-for or x-forwarded-host (lowercase), each with 1 to 8 values",
                );
            }
        }
    }
}

/// The headers App Service access restrictions can pin (ARM's names).
const AZURE_RESTRICTION_HEADERS: [&str; 4] = [
    "x-azure-fdid",
    "x-fd-healthprobe",
    "x-forwarded-for",
    "x-forwarded-host",
];

/// The CEL rules of a PosturePolicy: exactly one selector cloud, and the
/// template obeys every rule of a FunctionPosture on that cloud (checked on
/// the child the template gives a function of that cloud, with the paths
/// moved under `spec.template`).
pub fn policy(spec: &super::policy::PosturePolicySpec) -> Vec<FieldError> {
    let s = &spec.selector;
    if count(&s.aws, &s.azure, &s.gcp) != 1 {
        return vec![FieldError {
            path: "spec.selector".into(),
            message: "exactly one of selector.aws, selector.azure or selector.gcp must be set".into(),
        }];
    }
    let function = FunctionTarget {
        aws: s.aws.as_ref().map(|_| AwsFunctionRef {
            name: "selected".into(),
            region: None,
        }),
        azure: s.azure.as_ref().map(|_| AzureFunctionRef {
            resource_group: "selected".into(),
            name: "selected".into(),
        }),
        gcp: s.gcp.as_ref().map(|_| GcpFunctionRef {
            location: "selected1".into(),
            name: "selected".into(),
        }),
    };
    let mut errors: Vec<FieldError> = posture(&spec.posture_for(function))
        .into_iter()
        .map(|e| FieldError {
            path: e.path.replacen("spec.", "spec.template.", 1),
            message: e.message,
        })
        .collect();
    let tags = [
        (s.aws.as_ref().map(|a| &a.tags), "spec.selector.aws.tags"),
        (s.azure.as_ref().map(|a| &a.tags), "spec.selector.azure.tags"),
        (s.gcp.as_ref().map(|g| &g.labels), "spec.selector.gcp.labels"),
    ];
    for (selector, path) in tags {
        let Some(selector) = selector else { continue };
        errors.extend(tag_requirements(selector, path));
    }
    errors
}

/// `values` goes with In and NotIn, and only with them (as in a
/// Kubernetes label selector): an In without values would select nothing
/// and read as if it selected something.
fn tag_requirements(selector: &super::policy::TagSelector, path: &str) -> Vec<FieldError> {
    use super::policy::TagOperator;
    selector
        .match_expressions
        .iter()
        .enumerate()
        .filter(|(_, r)| matches!(r.operator, TagOperator::In | TagOperator::NotIn) == r.values.is_empty())
        .map(|(i, _)| FieldError {
            path: format!("{path}.matchExpressions[{i}].values"),
            message: "values: required, and only allowed, with In and NotIn".into(),
        })
        .collect()
}

/// Rules for a transition from `old` to `new` (the CLI never has an old
/// object; the reconciler and the API server do).
pub fn posture_update(new: &FunctionPostureSpec, old: &FunctionPostureSpec) -> Vec<FieldError> {
    let mut e = Errors(posture(new));
    if new.function != old.function {
        e.push(
            "spec.function",
            "function is immutable: create a new FunctionPosture to govern another function",
        );
    }
    e.0
}

fn one_cloud(aws: &Option<AwsAccount>, azure: &Option<impl Sized>, gcp: &Option<impl Sized>, e: &mut Errors) {
    if count(aws, azure, gcp) != 1 {
        e.push("spec", "exactly one of aws, azure or gcp must be set");
    }
}

fn gcp_account(gcp: &Option<super::account::GcpAccount>, e: &mut Errors) {
    if let Some(g) = gcp
        && g.anonymous
        && g.endpoints.is_none()
    {
        e.push(
            "spec.gcp.anonymous",
            "anonymous is only for emulators: set endpoints too",
        );
    }
}

/// Which tenancy rule an account breaks. Callers tell them apart by variant:
/// the controller's status reason depends on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountRule {
    /// A CloudAccount without credentials of its own: it would run as the
    /// controller's ambient identity.
    CredentialsRequired,
    /// A CloudAccount that points an endpoint or authority host somewhere
    /// other than the cloud's public one (or a loopback stand-in).
    EndpointOverride,
    /// A loopback endpoint with the controller's ambient identity: loopback is
    /// for stand-ins, which get static test credentials only.
    LoopbackNeedsStaticCredentials,
    /// A token or signature would travel over plain HTTP to another host. The
    /// schema's pattern says this too; it is checked again at use time for
    /// objects stored before the pattern existed.
    InsecureEndpoint,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountViolation {
    pub rule: AccountRule,
    pub error: FieldError,
}

fn loopback(url: &str) -> bool {
    patterns::matches(patterns::LOOPBACK_URL, url)
}

struct Violations(Vec<AccountViolation>);

impl Violations {
    fn push(&mut self, rule: AccountRule, path: &str, message: &str) {
        self.0.push(AccountViolation {
            rule,
            error: FieldError {
                path: path.to_string(),
                message: message.to_string(),
            },
        });
    }
}

const OWN_CREDENTIALS: &str = "a CloudAccount brings its own credentials: name a Secret of its namespace (the controller's own identity is only for ClusterCloudAccounts)";
const PUBLIC_ENDPOINTS: &str = "a CloudAccount uses the cloud's public endpoints: an endpoint override (other than a loopback test stand-in) is only for ClusterCloudAccounts";
const INSECURE: &str = "a token or signature goes only over https (plain http only to a loopback stand-in)";

/// The tenancy rules for an account's cloud part (README, "Security model").
/// `namespaced`: a CloudAccount (true) or a ClusterCloudAccount (false).
/// Each rule is also a CEL rule on the CRD, at the same field.
pub fn account_violations(config: &AccountConfig, namespaced: bool) -> Vec<AccountViolation> {
    let mut v = Violations(Vec::new());
    match config {
        AccountConfig::Aws(a) => aws_violations(a, namespaced, &mut v),
        AccountConfig::Azure(a) => azure_violations(a, namespaced, &mut v),
        AccountConfig::Gcp(g) => gcp_violations(g, namespaced, &mut v),
    }
    v.0
}

fn insecure(fields: &[(&str, Option<&String>)], prefix: &str, pattern: &str, v: &mut Violations) {
    for (name, url) in fields {
        if let Some(url) = url
            && !patterns::matches(pattern, url)
        {
            v.push(AccountRule::InsecureEndpoint, &format!("{prefix}.{name}"), INSECURE);
        }
    }
}

fn aws_violations(a: &AwsAccount, namespaced: bool, v: &mut Violations) {
    let eps = a.endpoints.clone().unwrap_or_default();
    let per_service: Vec<Option<&String>> = eps.named().into_iter().map(|(_, url)| url).collect();
    let named: Vec<(String, Option<&String>)> = eps
        .named()
        .into_iter()
        .map(|(name, url)| (format!("endpoints.{name}"), url))
        .collect();
    let mut fields = vec![("endpoint", a.endpoint.as_ref())];
    fields.extend(named.iter().map(|(name, url)| (name.as_str(), *url)));
    insecure(&fields, "spec.aws", patterns::TOKEN_ENDPOINT, v);
    let has_secret = a.credentials_secret_ref.is_some();
    if namespaced {
        if !has_secret {
            v.push(
                AccountRule::CredentialsRequired,
                "spec.aws.credentialsSecretRef",
                OWN_CREDENTIALS,
            );
        }
        if a.endpoint.as_deref().is_some_and(|u| !loopback(u)) {
            v.push(AccountRule::EndpointOverride, "spec.aws.endpoint", PUBLIC_ENDPOINTS);
        }
        if per_service.iter().flatten().any(|u| !loopback(u)) {
            v.push(AccountRule::EndpointOverride, "spec.aws.endpoints", PUBLIC_ENDPOINTS);
        }
    }
    const STATIC: &str = "a loopback endpoint is for test stand-ins: it takes static credentials from credentialsSecretRef, never the controller's own identity";
    if !has_secret && a.endpoint.as_deref().is_some_and(loopback) {
        v.push(AccountRule::LoopbackNeedsStaticCredentials, "spec.aws.endpoint", STATIC);
    }
    if !has_secret && per_service.iter().flatten().any(|u| loopback(u)) {
        v.push(
            AccountRule::LoopbackNeedsStaticCredentials,
            "spec.aws.endpoints",
            STATIC,
        );
    }
}

fn azure_violations(a: &super::account::AzureAccount, namespaced: bool, v: &mut Violations) {
    let fields = [
        ("resourceManagerEndpoint", a.resource_manager_endpoint.as_ref()),
        ("authorityHost", a.authority_host.as_ref()),
    ];
    insecure(&fields, "spec.azure", r"^https://\S+$", v);
    let static_secret = a.credential == AzureCredentialKind::ClientSecret;
    if namespaced {
        if !(static_secret && a.client_secret_ref.is_some()) {
            v.push(
                AccountRule::CredentialsRequired,
                "spec.azure.credential",
                "a CloudAccount brings its own credentials: credential ClientSecret with clientSecretRef (workload and managed identity are the controller's own, only for ClusterCloudAccounts)",
            );
        }
        for (name, url) in fields {
            if url.is_some_and(|u| !loopback(u)) {
                v.push(
                    AccountRule::EndpointOverride,
                    &format!("spec.azure.{name}"),
                    PUBLIC_ENDPOINTS,
                );
            }
        }
    }
    if namespaced
        && let Some(events) = &a.events
        && !patterns::matches(patterns::AZURE_PUBLIC_QUEUE, &events.queue)
    {
        v.push(
            AccountRule::EndpointOverride,
            "spec.azure.events.queue",
            "a CloudAccount reads its events from a queue of the public Azure clouds (or a loopback test stand-in): another queue host is only for ClusterCloudAccounts",
        );
    }
    if !static_secret && fields.iter().any(|(_, u)| u.is_some_and(|u| loopback(u))) {
        v.push(
            AccountRule::LoopbackNeedsStaticCredentials,
            "spec.azure.credential",
            "a loopback endpoint is for test stand-ins: it takes credential ClientSecret, never the controller's own identity",
        );
    }
}

fn gcp_violations(g: &super::account::GcpAccount, namespaced: bool, v: &mut Violations) {
    let eps = g.endpoints.clone().unwrap_or_default();
    let fields = [
        ("endpoints.functions", eps.functions.as_ref()),
        ("endpoints.run", eps.run.as_ref()),
        ("endpoints.iam", eps.iam.as_ref()),
        ("endpoints.resourceManager", eps.resource_manager.as_ref()),
        ("endpoints.pubsub", eps.pubsub.as_ref()),
        ("endpoints.recommender", eps.recommender.as_ref()),
        ("endpoints.logging", eps.logging.as_ref()),
    ];
    insecure(&fields, "spec.gcp", patterns::TOKEN_ENDPOINT, v);
    let own = g.credentials_secret_ref.is_some() || g.anonymous;
    if namespaced {
        if !own {
            v.push(
                AccountRule::CredentialsRequired,
                "spec.gcp.credentialsSecretRef",
                "a CloudAccount brings its own credentials: name a Secret of its namespace (Application Default Credentials are the controller's own, only for ClusterCloudAccounts)",
            );
        }
        if fields.iter().any(|(_, u)| u.is_some_and(|u| !loopback(u))) {
            v.push(AccountRule::EndpointOverride, "spec.gcp.endpoints", PUBLIC_ENDPOINTS);
        }
    }
    if !own && fields.iter().any(|(_, u)| u.is_some_and(|u| loopback(u))) {
        v.push(
            AccountRule::LoopbackNeedsStaticCredentials,
            "spec.gcp.endpoints",
            "a loopback endpoint is for test stand-ins: it takes a key from credentialsSecretRef or anonymous, never the controller's own identity",
        );
    }
}

/// The tenancy rules the CRD states in CEL (the https rule is the schema's
/// pattern, reported by the schema check).
fn tenancy(config: Option<AccountConfig>, namespaced: bool, e: &mut Errors) {
    let Some(config) = config else { return };
    for violation in account_violations(&config, namespaced) {
        if violation.rule != AccountRule::InsecureEndpoint {
            e.0.push(violation.error);
        }
    }
}

pub fn cloud_account(spec: &CloudAccountSpec) -> Vec<FieldError> {
    let mut e = Errors(Vec::new());
    one_cloud(&spec.aws, &spec.azure, &spec.gcp, &mut e);
    gcp_account(&spec.gcp, &mut e);
    tenancy(spec.config(), true, &mut e);
    e.0
}

pub fn cluster_cloud_account(spec: &ClusterCloudAccountSpec) -> Vec<FieldError> {
    let mut e = Errors(Vec::new());
    one_cloud(&spec.aws, &spec.azure, &spec.gcp, &mut e);
    gcp_account(&spec.gcp, &mut e);
    tenancy(spec.config(), false, &mut e);
    e.0
}
