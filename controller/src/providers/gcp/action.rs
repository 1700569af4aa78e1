//! The writes the GCP provider makes. IAM changes are deltas applied to the
//! policy read at write time (with its etag), so concurrent changes to other
//! members survive.

use super::names;
use crate::providers::ActionSummary;
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
    PatchFunction {
        name: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        service_account: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        ingress: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        vpc_connector: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        egress: Option<String>,
        /// Claim the function: set the ownership label to this value.
        #[serde(skip_serializing_if = "Option::is_none")]
        claim: Option<String>,
        /// Release the function: drop the ownership label if it still holds
        /// this value.
        #[serde(skip_serializing_if = "Option::is_none")]
        release: Option<String>,
    },
    /// Grant roles/run.invoker to declared invokers and remove undeclared
    /// members from the invoke-granting bindings of the function's service.
    UpdateInvokers {
        service: String,
        add: Vec<String>,
        remove: Vec<MemberRole>,
    },
}

/// One member of one unconditional binding.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct MemberRole {
    pub member: String,
    pub role: String,
}

impl GcpAction {
    pub fn op(&self) -> &'static str {
        match self {
            GcpAction::CreateServiceAccount { .. } => "CreateServiceAccount",
            GcpAction::UpdateProjectRoles { .. } => "SetIamPolicy(project)",
            GcpAction::PatchFunction { .. } => "UpdateFunction",
            GcpAction::UpdateInvokers { .. } => "SetIamPolicy(service)",
        }
    }

    /// The update mask a PatchFunction sends.
    pub fn mask(&self) -> Vec<&'static str> {
        let GcpAction::PatchFunction {
            service_account,
            ingress,
            vpc_connector,
            egress,
            claim,
            release,
            ..
        } = self
        else {
            return Vec::new();
        };
        [
            service_account
                .is_some()
                .then_some("service_config.service_account_email"),
            ingress.is_some().then_some("service_config.ingress_settings"),
            vpc_connector.is_some().then_some("service_config.vpc_connector"),
            egress
                .is_some()
                .then_some("service_config.vpc_connector_egress_settings"),
            (claim.is_some() || release.is_some()).then_some("labels"),
        ]
        .into_iter()
        .flatten()
        .collect()
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
            GcpAction::PatchFunction {
                name,
                service_account,
                ingress,
                vpc_connector,
                egress,
                claim,
                release,
            } => {
                let mut parts = Vec::new();
                if let Some(v) = service_account {
                    parts.push(format!("serviceConfig.serviceAccountEmail={v}"));
                }
                if let Some(v) = ingress {
                    parts.push(format!("serviceConfig.ingressSettings={v}"));
                }
                if let Some(v) = vpc_connector {
                    parts.push(format!("serviceConfig.vpcConnector={v}"));
                }
                if let Some(v) = egress {
                    parts.push(format!("serviceConfig.vpcConnectorEgressSettings={v}"));
                }
                if let Some(v) = claim {
                    parts.push(format!("labels.{}={v}", names::OWNER_LABEL));
                }
                if let Some(v) = release {
                    parts.push(format!("labels.{} removed (was {v})", names::OWNER_LABEL));
                }
                (
                    name.clone(),
                    format!("{} (updateMask {})", parts.join(" "), self.mask().join(",")),
                )
            }
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
        };
        ActionSummary {
            op: self.op().to_string(),
            target,
            detail,
        }
    }
}
