//! Semantic validation: the rules a schema alone cannot say.
//!
//! Each rule here is also a CEL rule on the CRD (`x-kubernetes-validations`),
//! so `kubectl apply` and `zerofn plan -f` refuse the same input with the same
//! field path. `tests/crd_validation.rs` evaluates the CEL side and proves the
//! two agree.

use super::account::{AwsAccount, CloudAccountSpec, ClusterCloudAccountSpec};
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

pub fn posture(spec: &FunctionPostureSpec) -> Vec<FieldError> {
    let mut e = Errors(Vec::new());
    let f = &spec.function;
    if count(&f.aws, &f.azure, &f.gcp) != 1 {
        e.push(
            "spec.function",
            "exactly one of function.aws, function.azure or function.gcp must be set",
        );
    }
    let (aws, azure, gcp) = (f.aws.is_some(), f.azure.is_some(), f.gcp.is_some());
    let blocks: [(&str, bool, bool, bool); 4] = [
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
    e.0
}

/// The headers App Service access restrictions can pin (ARM's names).
const AZURE_RESTRICTION_HEADERS: [&str; 4] = [
    "x-azure-fdid",
    "x-fd-healthprobe",
    "x-forwarded-for",
    "x-forwarded-host",
];

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

pub fn cloud_account(spec: &CloudAccountSpec) -> Vec<FieldError> {
    let mut e = Errors(Vec::new());
    one_cloud(&spec.aws, &spec.azure, &spec.gcp, &mut e);
    gcp_account(&spec.gcp, &mut e);
    e.0
}

pub fn cluster_cloud_account(spec: &ClusterCloudAccountSpec) -> Vec<FieldError> {
    let mut e = Errors(Vec::new());
    one_cloud(&spec.aws, &spec.azure, &spec.gcp, &mut e);
    gcp_account(&spec.gcp, &mut e);
    e.0
}
