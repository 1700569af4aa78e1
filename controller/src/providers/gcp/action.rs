//! The writes the GCP provider makes. IAM changes are deltas applied to the
//! policy read at write time (with its etag), so concurrent changes to other
//! members survive.

use crate::providers::ActionSummary;
use serde::Serialize;
use std::collections::BTreeMap;

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
    /// One PATCH with an update mask naming exactly the fields set here.
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
        /// The whole label map (GCP masks labels as one field).
        #[serde(skip_serializing_if = "Option::is_none")]
        labels: Option<BTreeMap<String, String>>,
    },
    /// Change the members of roles/run.invoker on the function's service.
    UpdateInvokers {
        service: String,
        add: Vec<String>,
        remove: Vec<String>,
    },
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
            labels,
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
            labels.is_some().then_some("labels"),
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
                labels,
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
                if let Some(l) = labels {
                    parts.push(format!(
                        "labels={}",
                        l.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",")
                    ));
                }
                (
                    name.clone(),
                    format!("{} (updateMask {})", parts.join(" "), self.mask().join(",")),
                )
            }
            GcpAction::UpdateInvokers { service, add, remove } => (
                service.clone(),
                format!(
                    "roles/run.invoker: add [{}] remove [{}]",
                    add.join(","),
                    remove.join(",")
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
