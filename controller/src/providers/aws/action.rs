//! The writes the AWS provider makes. Each one either removes access or adds
//! exactly what the posture declares (see `plan` and its no-widening test).

use crate::providers::ActionSummary;
use crate::providers::patch::{Field, Patch};
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
        fields: Patch<ConfigField>,
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
    /// A declared egress rule, on a security group that is the function's
    /// own.
    AuthorizeEgress {
        group_id: String,
        rule: super::model::EgressRule,
    },
    /// A flow log of all the VPC's traffic, to the declared destination.
    CreateFlowLog {
        vpc_id: String,
        destination: crate::api::FlowLogDestination,
    },
    /// An undeclared egress rule, from a security group that is the
    /// function's own.
    RevokeEgress {
        group_id: String,
        rule: super::model::EgressRule,
    },
    /// Add declared layer versions (required extensions) to the layers the
    /// function has when the write is made: read right before it, sent
    /// with its RevisionId, so a layer is never removed.
    AttachLayers {
        function_arn: String,
        layers: Vec<String>,
    },
    /// Raise the retention of the function's log group to the declared
    /// days, creating the group when it does not exist. Read right before
    /// the write: a retention as long or longer (or none: never expire) is
    /// left alone.
    SetLogRetention {
        region: String,
        log_group: String,
        days: i32,
    },
    /// Require authorization on a REST API method that has none
    /// (UpdateMethod patching `/authorizationType` and `/authorizerId`
    /// only): it only ever replaces NONE.
    AuthorizeApiMethod {
        region: String,
        api_id: String,
        resource_id: String,
        http_method: String,
        authorization_type: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        authorizer_id: Option<String>,
    },
    /// Attach the declared request validator to a method that has none
    /// (UpdateMethod patching `/requestValidatorId` only).
    AttachRequestValidator {
        region: String,
        api_id: String,
        resource_id: String,
        http_method: String,
        request_validator_id: String,
    },
    /// Redeploy a stage zerofn observed, so a method change takes effect
    /// there (CreateDeployment with `stageName`). `may_serve_open` names
    /// the methods (`VERB path`) the plan found the deployment may serve
    /// without authorization; the API is read again right before the
    /// deployment, which is not made if any other method would be.
    DeployApiStage {
        region: String,
        api_id: String,
        stage_name: String,
        may_serve_open: std::collections::BTreeSet<String>,
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

/// One field UpdateFunctionConfiguration sets. The summary and the request
/// are both derived from a `Patch` of these.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ConfigField {
    /// The execution role's ARN.
    Role(String),
    Vpc(VpcUpdate),
    /// `Active` or `PassThrough`.
    TracingMode(String),
    Logging(LoggingUpdate),
}

impl Field for ConfigField {
    fn path(&self) -> &'static str {
        match self {
            ConfigField::Role(_) => "Role",
            ConfigField::Vpc(_) => "VpcConfig",
            ConfigField::TracingMode(_) => "TracingConfig",
            ConfigField::Logging(_) => "LoggingConfig",
        }
    }

    fn describe(&self) -> String {
        match self {
            ConfigField::Role(r) => format!("Role={r}"),
            ConfigField::Vpc(v) => format!(
                "VpcConfig.SubnetIds=[{}] VpcConfig.SecurityGroupIds=[{}]",
                join(&v.subnet_ids),
                join(&v.security_group_ids)
            ),
            ConfigField::TracingMode(t) => format!("TracingConfig.Mode={t}"),
            ConfigField::Logging(l) => format!("LoggingConfig.LogFormat={}", l.log_format),
        }
    }
}

/// What a configuration patch sets, field by field.
impl Patch<ConfigField> {
    pub fn role(&self) -> Option<&str> {
        self.find(|f| match f {
            ConfigField::Role(r) => Some(r.as_str()),
            _ => None,
        })
    }

    pub fn vpc(&self) -> Option<&VpcUpdate> {
        self.find(|f| match f {
            ConfigField::Vpc(v) => Some(v),
            _ => None,
        })
    }

    pub fn tracing_mode(&self) -> Option<&str> {
        self.find(|f| match f {
            ConfigField::TracingMode(t) => Some(t.as_str()),
            _ => None,
        })
    }

    pub fn logging(&self) -> Option<&LoggingUpdate> {
        self.find(|f| match f {
            ConfigField::Logging(l) => Some(l),
            _ => None,
        })
    }
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
            AwsAction::AuthorizeEgress { .. } => "AuthorizeSecurityGroupEgress",
            AwsAction::CreateFlowLog { .. } => "CreateFlowLogs",
            AwsAction::RevokeEgress { .. } => "RevokeSecurityGroupEgress",
            AwsAction::AttachLayers { .. } => "UpdateFunctionConfiguration",
            AwsAction::SetLogRetention { .. } => "PutRetentionPolicy",
            AwsAction::AuthorizeApiMethod { .. } | AwsAction::AttachRequestValidator { .. } => "UpdateMethod",
            AwsAction::DeployApiStage { .. } => "CreateDeployment",
        }
    }

    pub fn summary(&self) -> ActionSummary {
        ActionSummary {
            op: self.op().to_string(),
            target: self.target(),
            detail: self.detail(),
        }
    }

    /// What the action writes to: a function (or one of its aliases and
    /// versions), a role, or an event source mapping.
    fn target(&self) -> String {
        match self {
            AwsAction::TagFunction { function_arn, .. }
            | AwsAction::UntagFunction { function_arn, .. }
            | AwsAction::UpdateFunctionConfiguration { function_arn, .. }
            | AwsAction::PutFunctionCodeSigningConfig { function_arn, .. }
            | AwsAction::AttachLayers { function_arn, .. } => function_arn.clone(),
            AwsAction::AddPermission {
                function_arn,
                qualifier,
                ..
            }
            | AwsAction::RemovePermission {
                function_arn,
                qualifier,
                ..
            }
            | AwsAction::UpdateFunctionUrlAuthType {
                function_arn,
                qualifier,
                ..
            }
            | AwsAction::DeleteFunctionUrl {
                function_arn,
                qualifier,
                ..
            } => qualified(function_arn, qualifier),
            AwsAction::CreateRole { role_name, path, .. } => format!("{path}{role_name}"),
            AwsAction::PutRolePolicy { role_name, .. }
            | AwsAction::DeleteRolePolicy { role_name, .. }
            | AwsAction::DetachRolePolicy { role_name, .. }
            | AwsAction::PutRolePermissionsBoundary { role_name, .. } => role_name.clone(),
            AwsAction::DisableEventSourceMapping { uuid, .. } => uuid.clone(),
            AwsAction::AuthorizeEgress { group_id, .. } | AwsAction::RevokeEgress { group_id, .. } => group_id.clone(),
            AwsAction::CreateFlowLog { vpc_id, .. } => vpc_id.clone(),
            AwsAction::SetLogRetention { region, log_group, .. } => format!("{region}:{log_group}"),
            AwsAction::AuthorizeApiMethod {
                region,
                api_id,
                resource_id,
                http_method,
                ..
            }
            | AwsAction::AttachRequestValidator {
                region,
                api_id,
                resource_id,
                http_method,
                ..
            } => format!("{region}/apis/{api_id}/resources/{resource_id}/methods/{http_method}"),
            AwsAction::DeployApiStage {
                region,
                api_id,
                stage_name,
                ..
            } => format!("{region}/apis/{api_id}/stages/{stage_name}"),
        }
    }

    /// What changes, as a person reads it.
    fn detail(&self) -> String {
        match self {
            AwsAction::TagFunction { key, value, .. } => format!("{key}={value}"),
            AwsAction::UntagFunction { key, .. } => format!("remove tag {key}"),
            AwsAction::CreateRole { .. } => "new execution role, trusted by lambda.amazonaws.com only".to_string(),
            AwsAction::PutRolePolicy {
                policy_name, document, ..
            } => {
                let actions = super::policy::PolicyDocument::parse(document)
                    .map(|d| join(&d.allowed_actions()))
                    .unwrap_or_default();
                format!("inline policy {policy_name} = declared + baseline [{actions}]")
            }
            AwsAction::DeleteRolePolicy { policy_name, .. } => format!("delete inline policy {policy_name}"),
            AwsAction::DetachRolePolicy { policy_arn, .. } => format!("detach managed policy {policy_arn}"),
            AwsAction::PutRolePermissionsBoundary { boundary_arn, .. } => {
                format!("permissions boundary {boundary_arn}")
            }
            AwsAction::UpdateFunctionConfiguration { fields, .. } => fields.describe(),
            AwsAction::AddPermission {
                statement_id,
                principal,
                action,
                source_arn,
                source_account,
                ..
            } => format!(
                "allow {principal} {action} (Sid {statement_id}, AWS:SourceArn={}, AWS:SourceAccount={})",
                source_arn.as_deref().unwrap_or("-"),
                source_account.as_deref().unwrap_or("-")
            ),
            AwsAction::RemovePermission { statement_id, .. } => format!("remove statement {statement_id}"),
            AwsAction::UpdateFunctionUrlAuthType { auth_type, .. } => format!("function URL AuthType={auth_type}"),
            AwsAction::DeleteFunctionUrl { .. } => "delete function URL".to_string(),
            AwsAction::DisableEventSourceMapping { event_source_arn, .. } => {
                format!("disable mapping from {event_source_arn}")
            }
            AwsAction::PutFunctionCodeSigningConfig {
                code_signing_config_arn,
                ..
            } => format!("code signing config {code_signing_config_arn}"),
            AwsAction::AuthorizeEgress { rule, .. } => format!("allow {rule}"),
            AwsAction::CreateFlowLog { destination, .. } => format!(
                "flow log of all traffic to {}",
                destination
                    .log_group
                    .as_deref()
                    .or(destination.s3_arn.as_deref())
                    .unwrap_or_default()
            ),
            AwsAction::RevokeEgress { rule, .. } => format!("revoke {rule}"),
            AwsAction::AttachLayers { layers, .. } => {
                format!("Layers += [{}] (the function's own layers kept)", layers.join(","))
            }
            AwsAction::SetLogRetention { days, .. } => {
                format!("retentionInDays={days} (raised, or the group created; never shortened)")
            }
            AwsAction::AuthorizeApiMethod {
                authorization_type,
                authorizer_id,
                ..
            } => match authorizer_id {
                Some(id) => format!("authorizationType={authorization_type} authorizerId={id}"),
                None => format!("authorizationType={authorization_type}"),
            },
            AwsAction::AttachRequestValidator {
                request_validator_id, ..
            } => format!("requestValidatorId={request_validator_id}"),
            AwsAction::DeployApiStage { stage_name, .. } => format!("redeploy stage {stage_name}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_configuration_summary_is_its_fields_in_plan_order() {
        let fields: Patch<ConfigField> = [
            ConfigField::Role("arn:aws:iam::123456789012:role/zerofn/r".into()),
            ConfigField::TracingMode("Active".into()),
        ]
        .into_iter()
        .collect();
        let s = AwsAction::UpdateFunctionConfiguration {
            function_arn: "arn:f".into(),
            fields,
        }
        .summary();
        assert_eq!(s.op, "UpdateFunctionConfiguration");
        assert_eq!(s.target, "arn:f");
        assert_eq!(
            s.detail,
            "Role=arn:aws:iam::123456789012:role/zerofn/r TracingConfig.Mode=Active"
        );
    }
}
