//! The writes the AWS provider makes. Each one either removes access or adds
//! exactly what the posture declares (see `plan` and its no-widening test).

use crate::providers::ActionSummary;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "op")]
pub enum AwsAction {
    /// Claim the function for this posture (ownership marker).
    TagFunction {
        function_arn: String,
        key: String,
        value: String,
    },
    /// Release the ownership marker (posture deleted).
    UntagFunction {
        function_arn: String,
        key: String,
    },
    /// A dedicated execution role that only Lambda can assume.
    CreateRole {
        role_name: String,
        path: String,
        trust_policy: String,
        description: String,
        tags: BTreeMap<String, String>,
    },
    PutRolePolicy {
        role_name: String,
        policy_name: String,
        document: String,
    },
    DeleteRolePolicy {
        role_name: String,
        policy_name: String,
    },
    DetachRolePolicy {
        role_name: String,
        policy_arn: String,
    },
    PutRolePermissionsBoundary {
        role_name: String,
        boundary_arn: String,
    },
    /// One call for every configuration field that drifted.
    UpdateFunctionConfiguration {
        function_arn: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        role: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        vpc: Option<VpcUpdate>,
        #[serde(skip_serializing_if = "Option::is_none")]
        tracing_mode: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        logging: Option<LoggingUpdate>,
    },
    /// `qualifier`: the alias or version whose policy it writes (None: the
    /// function's own).
    AddPermission {
        function_arn: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        qualifier: Option<String>,
        statement_id: String,
        principal: String,
        action: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        source_arn: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        source_account: Option<String>,
    },
    RemovePermission {
        function_arn: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        qualifier: Option<String>,
        statement_id: String,
    },
    UpdateFunctionUrlAuthType {
        function_arn: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        qualifier: Option<String>,
        auth_type: String,
    },
    DeleteFunctionUrl {
        function_arn: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        qualifier: Option<String>,
    },
    /// Disabled, never deleted: its configuration stays for a person to review.
    DisableEventSourceMapping {
        uuid: String,
        event_source_arn: String,
    },
    PutFunctionCodeSigningConfig {
        function_arn: String,
        code_signing_config_arn: String,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct VpcUpdate {
    pub subnet_ids: BTreeSet<String>,
    pub security_group_ids: BTreeSet<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ipv6_allowed_for_dual_stack: Option<bool>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LoggingUpdate {
    pub log_format: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_group: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub application_log_level: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub system_log_level: Option<String>,
}

/// The ARN of the alias or version an action writes to.
fn qualified(function_arn: &str, qualifier: &Option<String>) -> String {
    match qualifier {
        Some(q) => format!("{function_arn}:{q}"),
        None => function_arn.to_string(),
    }
}

fn join(s: &BTreeSet<String>) -> String {
    s.iter().cloned().collect::<Vec<_>>().join(",")
}

impl AwsAction {
    pub fn op(&self) -> &'static str {
        match self {
            AwsAction::TagFunction { .. } => "TagResource",
            AwsAction::UntagFunction { .. } => "UntagResource",
            AwsAction::CreateRole { .. } => "CreateRole",
            AwsAction::PutRolePolicy { .. } => "PutRolePolicy",
            AwsAction::DeleteRolePolicy { .. } => "DeleteRolePolicy",
            AwsAction::DetachRolePolicy { .. } => "DetachRolePolicy",
            AwsAction::PutRolePermissionsBoundary { .. } => "PutRolePermissionsBoundary",
            AwsAction::UpdateFunctionConfiguration { .. } => "UpdateFunctionConfiguration",
            AwsAction::AddPermission { .. } => "AddPermission",
            AwsAction::RemovePermission { .. } => "RemovePermission",
            AwsAction::UpdateFunctionUrlAuthType { .. } => "UpdateFunctionUrlConfig",
            AwsAction::DeleteFunctionUrl { .. } => "DeleteFunctionUrlConfig",
            AwsAction::DisableEventSourceMapping { .. } => "UpdateEventSourceMapping",
            AwsAction::PutFunctionCodeSigningConfig { .. } => "PutFunctionCodeSigningConfig",
        }
    }

    pub fn summary(&self) -> ActionSummary {
        let (target, detail) = match self {
            AwsAction::TagFunction {
                function_arn,
                key,
                value,
            } => (function_arn.clone(), format!("{key}={value}")),
            AwsAction::UntagFunction { function_arn, key } => (function_arn.clone(), format!("remove tag {key}")),
            AwsAction::CreateRole { role_name, path, .. } => (
                format!("{path}{role_name}"),
                "new execution role, trusted by lambda.amazonaws.com only".to_string(),
            ),
            AwsAction::PutRolePolicy {
                role_name,
                policy_name,
                document,
            } => {
                let actions = super::policy::PolicyDocument::parse(document)
                    .map(|d| join(&d.allowed_actions()))
                    .unwrap_or_default();
                (
                    role_name.clone(),
                    format!("inline policy {policy_name} = declared + baseline [{actions}]"),
                )
            }
            AwsAction::DeleteRolePolicy { role_name, policy_name } => {
                (role_name.clone(), format!("delete inline policy {policy_name}"))
            }
            AwsAction::DetachRolePolicy { role_name, policy_arn } => {
                (role_name.clone(), format!("detach managed policy {policy_arn}"))
            }
            AwsAction::PutRolePermissionsBoundary {
                role_name,
                boundary_arn,
            } => (role_name.clone(), format!("permissions boundary {boundary_arn}")),
            AwsAction::UpdateFunctionConfiguration {
                function_arn,
                role,
                vpc,
                tracing_mode,
                logging,
            } => {
                let mut parts = Vec::new();
                if let Some(r) = role {
                    parts.push(format!("Role={r}"));
                }
                if let Some(v) = vpc {
                    parts.push(format!(
                        "VpcConfig.SubnetIds=[{}] VpcConfig.SecurityGroupIds=[{}]",
                        join(&v.subnet_ids),
                        join(&v.security_group_ids)
                    ));
                }
                if let Some(t) = tracing_mode {
                    parts.push(format!("TracingConfig.Mode={t}"));
                }
                if let Some(l) = logging {
                    parts.push(format!("LoggingConfig.LogFormat={}", l.log_format));
                }
                (function_arn.clone(), parts.join(" "))
            }
            AwsAction::AddPermission {
                function_arn,
                qualifier,
                statement_id,
                principal,
                action,
                source_arn,
                source_account,
            } => (
                qualified(function_arn, qualifier),
                format!(
                    "allow {principal} {action} (Sid {statement_id}, AWS:SourceArn={}, AWS:SourceAccount={})",
                    source_arn.as_deref().unwrap_or("-"),
                    source_account.as_deref().unwrap_or("-")
                ),
            ),
            AwsAction::RemovePermission {
                function_arn,
                qualifier,
                statement_id,
            } => (
                qualified(function_arn, qualifier),
                format!("remove statement {statement_id}"),
            ),
            AwsAction::UpdateFunctionUrlAuthType {
                function_arn,
                qualifier,
                auth_type,
            } => (
                qualified(function_arn, qualifier),
                format!("function URL AuthType={auth_type}"),
            ),
            AwsAction::DeleteFunctionUrl {
                function_arn,
                qualifier,
            } => (qualified(function_arn, qualifier), "delete function URL".to_string()),
            AwsAction::DisableEventSourceMapping { uuid, event_source_arn } => {
                (uuid.clone(), format!("disable mapping from {event_source_arn}"))
            }
            AwsAction::PutFunctionCodeSigningConfig {
                function_arn,
                code_signing_config_arn,
            } => (
                function_arn.clone(),
                format!("code signing config {code_signing_config_arn}"),
            ),
        };
        ActionSummary {
            op: self.op().to_string(),
            target,
            detail,
        }
    }
}
