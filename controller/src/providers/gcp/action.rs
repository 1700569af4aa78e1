//! The writes the GCP provider makes. IAM changes are deltas applied to the
//! policy read at write time (with its etag), so concurrent changes to other
//! members survive.

use super::names;
use crate::providers::ActionSummary;
use crate::providers::patch::{Field, Patch};
use serde::Serialize;

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "op")]
pub enum GcpAction {
    CreateServiceAccount {
        project: String,
        account_id: String,
        display_name: String,
    },
    /// Change one member's unconditional project bindings.
    UpdateProjectRoles {
        project: String,
        member: String,
        add: Vec<String>,
        remove: Vec<String>,
    },
    /// One PATCH of the function with an update mask naming exactly the
    /// fields that still differ when it is written. Labels are read right
    /// before the write and only zerofn's ownership label changes.
    PatchFunction { name: String, patch: Patch<FunctionField> },
    /// Grant roles/run.invoker to declared invokers and remove undeclared
    /// members from the invoke-granting bindings of the function's service.
    UpdateInvokers {
        service: String,
        add: Vec<String>,
        remove: Vec<MemberRole>,
    },
    /// Set the declared Binary Authorization on the function's Cloud Run
    /// service (updateMask `binaryAuthorization` only), when the service
    /// has none at write time.
    SetBinaryAuthorization {
        service: String,
        method: super::model::BinAuthz,
    },
    /// Narrow the ingress of the function's Cloud Run service (updateMask
    /// `ingress` only), when it is still wider at write time.
    NarrowServiceIngress { service: String, ingress: String },
}

/// One member of one unconditional binding.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct MemberRole {
    pub member: String,
    pub role: String,
}

/// One field of a function PATCH.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FunctionField {
    ServiceAccount(String),
    Ingress(String),
    VpcConnector(String),
    Egress(String),
    /// Claim the function: set the ownership label to this value.
    Claim(String),
    /// Release the function: drop the ownership label if it still holds
    /// this value.
    Release(String),
}

impl Field for FunctionField {
    fn path(&self) -> &'static str {
        match self {
            FunctionField::ServiceAccount(_) => "service_config.service_account_email",
            FunctionField::Ingress(_) => "service_config.ingress_settings",
            FunctionField::VpcConnector(_) => "service_config.vpc_connector",
            FunctionField::Egress(_) => "service_config.vpc_connector_egress_settings",
            FunctionField::Claim(_) | FunctionField::Release(_) => "labels",
        }
    }

    fn describe(&self) -> String {
        match self {
            FunctionField::ServiceAccount(v) => format!("serviceConfig.serviceAccountEmail={v}"),
            FunctionField::Ingress(v) => format!("serviceConfig.ingressSettings={v}"),
            FunctionField::VpcConnector(v) => format!("serviceConfig.vpcConnector={v}"),
            FunctionField::Egress(v) => format!("serviceConfig.vpcConnectorEgressSettings={v}"),
            FunctionField::Claim(v) => format!("labels.{}={v}", names::OWNER_LABEL),
            FunctionField::Release(v) => format!("labels.{} removed (was {v})", names::OWNER_LABEL),
        }
    }
}

impl GcpAction {
    /// Release a function: drop the ownership label if it still holds `mine`.
    pub fn release(name: String, mine: String) -> GcpAction {
        GcpAction::PatchFunction {
            name,
            patch: Patch::from_iter([FunctionField::Release(mine)]),
        }
    }

    pub fn op(&self) -> &'static str {
        match self {
            GcpAction::CreateServiceAccount { .. } => "CreateServiceAccount",
            GcpAction::UpdateProjectRoles { .. } => "SetIamPolicy(project)",
            GcpAction::PatchFunction { .. } => "UpdateFunction",
            GcpAction::UpdateInvokers { .. } => "SetIamPolicy(service)",
            GcpAction::SetBinaryAuthorization { .. } | GcpAction::NarrowServiceIngress { .. } => "UpdateService",
        }
    }

    /// The update mask a PatchFunction sends (at most: `apply` leaves out
    /// what already holds when it writes).
    pub fn mask(&self) -> Vec<&'static str> {
        match self {
            GcpAction::PatchFunction { patch, .. } => patch.paths(),
            _ => Vec::new(),
        }
    }

    pub fn summary(&self) -> ActionSummary {
        let (target, detail) = match self {
            GcpAction::CreateServiceAccount {
                project, account_id, ..
            } => (
                format!("projects/{project}"),
                format!("new service account {account_id}"),
            ),
            GcpAction::UpdateProjectRoles {
                project,
                member,
                add,
                remove,
            } => (
                format!("projects/{project}"),
                format!("{member}: add [{}] remove [{}]", add.join(","), remove.join(",")),
            ),
            GcpAction::PatchFunction { name, patch } => (
                name.clone(),
                format!("{} (updateMask {})", patch.describe(), patch.paths().join(",")),
            ),
            GcpAction::UpdateInvokers { service, add, remove } => (
                service.clone(),
                format!(
                    "roles/run.invoker: add [{}]; remove [{}]",
                    add.join(","),
                    remove
                        .iter()
                        .map(|r| format!("{} from {}", r.member, r.role))
                        .collect::<Vec<_>>()
                        .join(",")
                ),
            ),
            GcpAction::SetBinaryAuthorization { service, method } => (
                service.clone(),
                format!("binaryAuthorization: {method} (updateMask binaryAuthorization)"),
            ),
            GcpAction::NarrowServiceIngress { service, ingress } => {
                (service.clone(), format!("ingress: {ingress} (updateMask ingress)"))
            }
        };
        ActionSummary {
            op: self.op().to_string(),
            target,
            detail,
        }
    }
}
