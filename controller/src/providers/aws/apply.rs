//! Applying one AWS action, safely.
//!
//! - Lambda applies configuration asynchronously: before and after a change
//!   to the function we wait until `LastUpdateStatus` leaves `InProgress`.
//! - `ResourceConflictException` (an update in flight) is waited out and
//!   retried, never reported as drift.
//! - A role created a moment ago can be refused by Lambda while IAM
//!   propagates; that refusal is retried with backoff for a bounded time.
//! - Removals are idempotent: "already gone" is success.
//! - Throttling is retried with jittered backoff by the SDK's retry policy;
//!   zerofn's own waits and retries follow `providers::retry`.

use super::action::{AwsAction, ConfigField};
use super::client::{Clients, code, map_err, message};
use super::names;
use crate::providers::patch::Patch;
use crate::providers::retry::{Backoff, Cause, Policy, Progress, Unfinished, Verdict};
use crate::providers::{ProviderError, Tuning};
use aws_sdk_lambda::operation::update_function_configuration::builders::UpdateFunctionConfigurationFluentBuilder as ConfigRequest;
use aws_sdk_lambda::types::{
    ApplicationLogLevel, FunctionUrlAuthType, LastUpdateStatus, LogFormat, LoggingConfig, State, SystemLogLevel,
    TracingConfig, TracingMode, VpcConfig,
};
use std::future::Future;
use std::time::Duration;

pub struct Applier<'a> {
    pub clients: &'a Clients,
    pub tuning: &'a Tuning,
    /// Region of the function the actions belong to.
    pub region: &'a str,
}

/// Retries of a write refused because another update is in flight.
const CONFLICT_RETRIES: u32 = 6;

/// A write whose refusal `already` says it holds already (a rule present,
/// a rule gone): that is success.
fn settled<T, E, R>(
    op: &str,
    target: &str,
    sent: Result<T, aws_smithy_runtime_api::client::result::SdkError<E, R>>,
    already: &str,
) -> Result<(), ProviderError>
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    match sent {
        Ok(_) => Ok(()),
        Err(e) if code(&e) == Some(already) => Ok(()),
        Err(e) => Err(map_err(op, target, e)),
    }
}

impl Applier<'_> {
    fn lambda(&self) -> Result<&aws_sdk_lambda::Client, ProviderError> {
        self.clients.lambda(self.region)
    }

    /// Retrying a write while another change to the same thing is in
    /// flight: a few times, each wait growing to 10 s, within the longest
    /// wait for an update.
    fn conflicts(&self) -> Policy<'_> {
        Policy {
            attempts: CONFLICT_RETRIES + 1,
            backoff: Backoff::new(self.tuning.initial_backoff, Duration::from_secs(10)),
            ..self.tuning.operation("aws", &self.clients.metrics)
        }
    }

    pub async fn apply(&self, action: &AwsAction) -> Result<(), ProviderError> {
        match action {
            AwsAction::TagFunction {
                function_arn,
                key,
                value,
            } => {
                let lambda = self.lambda()?;
                self.function_write(action.op(), function_arn, false, || {
                    lambda.tag_resource().resource(function_arn).tags(key, value).send()
                })
                .await
            }
            AwsAction::UntagFunction { function_arn, key } => {
                let lambda = self.lambda()?;
                self.function_write(action.op(), function_arn, false, || {
                    lambda.untag_resource().resource(function_arn).tag_keys(key).send()
                })
                .await
            }
            // Only the provider creates roles: it stamps the nonce of the
            // write-ahead record it kept and records the RoleId.
            AwsAction::CreateRole { role_name, .. } => Err(ProviderError::Unrecorded(format!(
                "CreateRole {role_name}: roles are created only with a write-ahead record"
            ))),
            AwsAction::PutRolePolicy { .. }
            | AwsAction::DeleteRolePolicy { .. }
            | AwsAction::DetachRolePolicy { .. }
            | AwsAction::PutRolePermissionsBoundary { .. } => self.role_write(action).await,
            AwsAction::UpdateFunctionConfiguration { function_arn, fields } => {
                self.update_configuration(function_arn, fields).await
            }
            AwsAction::AddPermission { .. } | AwsAction::RemovePermission { .. } => self.permission_write(action).await,
            AwsAction::UpdateFunctionUrlAuthType { .. } | AwsAction::DeleteFunctionUrl { .. } => {
                self.url_write(action).await
            }
            AwsAction::DisableEventSourceMapping { uuid, .. } => self.disable_mapping(uuid).await,
            AwsAction::AttachLayers { function_arn, layers } => self.attach_layers(function_arn, layers).await,
            AwsAction::SetLogRetention {
                region,
                log_group,
                days,
            } => self.set_log_retention(region, log_group, *days).await,
            AwsAction::AuthorizeApiMethod { .. }
            | AwsAction::AttachRequestValidator { .. }
            | AwsAction::DeployApiStage { .. } => self.api_write(action).await,
            AwsAction::PutFunctionCodeSigningConfig {
                function_arn,
                code_signing_config_arn,
            } => {
                let lambda = self.lambda()?;
                self.function_write(action.op(), function_arn, true, || {
                    lambda
                        .put_function_code_signing_config()
                        .function_name(function_arn)
                        .code_signing_config_arn(code_signing_config_arn)
                        .send()
                })
                .await
            }
            AwsAction::AuthorizeEgress { group_id, rule } => {
                let sent = self
                    .clients
                    .ec2(self.region)?
                    .authorize_security_group_egress()
                    .group_id(group_id)
                    .ip_permissions(super::routes::ip_permission(rule))
                    .send()
                    .await;
                settled(action.op(), group_id, sent, "InvalidPermission.Duplicate")
            }
            AwsAction::CreateFlowLog { vpc_id, destination } => self.create_flow_log(vpc_id, destination).await,
            AwsAction::RevokeEgress { group_id, rule } => {
                let sent = self
                    .clients
                    .ec2(self.region)?
                    .revoke_security_group_egress()
                    .group_id(group_id)
                    .ip_permissions(super::routes::ip_permission(rule))
                    .send()
                    .await;
                settled(action.op(), group_id, sent, "InvalidPermission.NotFound")
            }
        }
    }

    /// A flow log of all the VPC's traffic. EC2 reports a refused resource
    /// in the answer, not as an error.
    async fn create_flow_log(
        &self,
        vpc_id: &str,
        destination: &crate::api::FlowLogDestination,
    ) -> Result<(), ProviderError> {
        use aws_sdk_ec2::types::{FlowLogsResourceType, LogDestinationType, TrafficType};
        let ec2 = self.clients.ec2(self.region)?;
        let mut request = ec2
            .create_flow_logs()
            .resource_type(FlowLogsResourceType::Vpc)
            .resource_ids(vpc_id)
            .traffic_type(TrafficType::All);
        request = match (&destination.s3_arn, &destination.log_group) {
            (Some(bucket), _) => request
                .log_destination_type(LogDestinationType::S3)
                .log_destination(bucket),
            (None, Some(group)) => request
                .log_destination_type(LogDestinationType::CloudWatchLogs)
                .log_group_name(group)
                .set_deliver_logs_permission_arn(destination.delivery_role_arn.clone()),
            (None, None) => {
                return Err(ProviderError::Config(
                    "flowLogDestination names neither logGroup nor s3Arn".into(),
                ));
            }
        };
        let answer = request.send().await.map_err(|e| map_err("CreateFlowLogs", vpc_id, e))?;
        match answer.unsuccessful().first() {
            None => Ok(()),
            Some(u) => Err(ProviderError::Refused(format!(
                "CreateFlowLogs {vpc_id}: {}",
                u.error().and_then(|e| e.message()).unwrap_or("refused")
            ))),
        }
    }

    /// A write to a role's permissions. Removing what is gone already is
    /// success.
    async fn role_write(&self, action: &AwsAction) -> Result<(), ProviderError> {
        let iam = &self.clients.iam;
        let op = action.op();
        match action {
            AwsAction::PutRolePolicy {
                role_name,
                policy_name,
                document,
            } => iam_done(
                op,
                role_name,
                iam.put_role_policy()
                    .role_name(role_name)
                    .policy_name(policy_name)
                    .policy_document(document)
                    .send()
                    .await,
            ),
            AwsAction::DeleteRolePolicy { role_name, policy_name } => gone_is_ok(iam_done(
                op,
                role_name,
                iam.delete_role_policy()
                    .role_name(role_name)
                    .policy_name(policy_name)
                    .send()
                    .await,
            )),
            AwsAction::DetachRolePolicy { role_name, policy_arn } => gone_is_ok(iam_done(
                op,
                role_name,
                iam.detach_role_policy()
                    .role_name(role_name)
                    .policy_arn(policy_arn)
                    .send()
                    .await,
            )),
            AwsAction::PutRolePermissionsBoundary {
                role_name,
                boundary_arn,
            } => iam_done(
                op,
                role_name,
                iam.put_role_permissions_boundary()
                    .role_name(role_name)
                    .permissions_boundary(boundary_arn)
                    .send()
                    .await,
            ),
            other => Err(misrouted(other)),
        }
    }

    /// Add or remove one statement of a function's (or an alias's, a
    /// version's) resource policy. Both are idempotent.
    async fn permission_write(&self, action: &AwsAction) -> Result<(), ProviderError> {
        let lambda = self.lambda()?;
        match action {
            AwsAction::AddPermission {
                function_arn,
                qualifier,
                statement_id,
                principal,
                action: invoke,
                source_arn,
                source_account,
            } => {
                let res = self
                    .function_write(action.op(), function_arn, false, || {
                        let req = lambda
                            .add_permission()
                            .function_name(function_arn)
                            .set_qualifier(qualifier.clone())
                            .statement_id(statement_id)
                            .action(invoke)
                            .principal(principal)
                            .set_source_arn(source_arn.clone())
                            .set_source_account(source_account.clone());
                        let url_only = invoke == "lambda:InvokeFunctionUrl";
                        req.set_function_url_auth_type(url_only.then_some(FunctionUrlAuthType::AwsIam))
                            .send()
                    })
                    .await;
                match res {
                    // The Sid is derived from what it grants: an existing
                    // statement with it is this grant, added by an earlier run.
                    Err(ProviderError::Conflict(m)) if m.contains("already exists") => Ok(()),
                    other => other,
                }
            }
            AwsAction::RemovePermission {
                function_arn,
                qualifier,
                statement_id,
            } => gone_is_ok(
                self.function_write(action.op(), function_arn, false, || {
                    lambda
                        .remove_permission()
                        .function_name(function_arn)
                        .set_qualifier(qualifier.clone())
                        .statement_id(statement_id)
                        .send()
                })
                .await,
            ),
            other => Err(misrouted(other)),
        }
    }

    /// Require IAM authentication on a function URL, or delete the URL.
    async fn url_write(&self, action: &AwsAction) -> Result<(), ProviderError> {
        let lambda = self.lambda()?;
        match action {
            AwsAction::UpdateFunctionUrlAuthType {
                function_arn,
                qualifier,
                auth_type,
            } => {
                self.function_write(action.op(), function_arn, false, || {
                    lambda
                        .update_function_url_config()
                        .function_name(function_arn)
                        .set_qualifier(qualifier.clone())
                        .auth_type(FunctionUrlAuthType::from(auth_type.as_str()))
                        .send()
                })
                .await
            }
            AwsAction::DeleteFunctionUrl {
                function_arn,
                qualifier,
            } => gone_is_ok(
                self.function_write(action.op(), function_arn, false, || {
                    lambda
                        .delete_function_url_config()
                        .function_name(function_arn)
                        .set_qualifier(qualifier.clone())
                        .send()
                })
                .await,
            ),
            other => Err(misrouted(other)),
        }
    }

    /// A write on a function: retried while another update is in flight.
    /// `settles` waits for the function to be idle before and after.
    async fn function_write<T, E, F, Fut>(
        &self,
        op: &str,
        arn: &str,
        settles: bool,
        call: F,
    ) -> Result<(), ProviderError>
    where
        F: Fn() -> Fut,
        Fut: Future<
            Output = Result<
                T,
                aws_smithy_runtime_api::client::result::SdkError<E, aws_smithy_runtime_api::http::Response>,
            >,
        >,
        E: aws_smithy_types::error::metadata::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        // A retry waits for the function to be idle first, whatever `settles`.
        let retries = &std::sync::atomic::AtomicU32::new(0);
        let call = &call;
        self.conflicts()
            .run(
                move || async move {
                    if settles || retries.fetch_add(1, std::sync::atomic::Ordering::Relaxed) > 0 {
                        self.wait_idle(arn).await?;
                    }
                    call().await.map_err(|e| map_err(op, arn, e))?;
                    if settles {
                        self.wait_idle(arn).await?;
                    }
                    Ok::<(), ProviderError>(())
                },
                |e| match e {
                    ProviderError::Conflict(m) if !m.contains("already exists") => Verdict::Retry(Cause::conflict),
                    _ => Verdict::Fail,
                },
            )
            .await
            .map_err(|e| e.into_error())
    }

    /// Wait until the function is not being updated (LastUpdateStatus is not
    /// InProgress and State is not Pending).
    async fn wait_idle(&self, arn: &str) -> Result<(), ProviderError> {
        let polls = Policy {
            backoff: Backoff::new(Duration::from_millis(250), Duration::from_secs(5)),
            ..self.tuning.operation("aws", &self.clients.metrics)
        };
        let idle = polls.poll(None, move || async move {
            let out = self
                .lambda()?
                .get_function_configuration()
                .function_name(arn)
                .send()
                .await
                .map_err(|e| map_err("GetFunctionConfiguration", arn, e))?;
            if out.last_update_status() == Some(&LastUpdateStatus::InProgress) || out.state() == Some(&State::Pending) {
                return Ok(Progress::Pending(None));
            }
            if out.last_update_status() == Some(&LastUpdateStatus::Failed) {
                return Err(ProviderError::Refused(format!(
                    "{arn}: last update failed: {}",
                    out.last_update_status_reason().unwrap_or("no reason given")
                )));
            }
            Ok::<_, ProviderError>(Progress::Done(()))
        });
        idle.await.map_err(|e| match e {
            Unfinished::Failed(e) => e,
            Unfinished::Deadline => {
                ProviderError::Timeout(format!("{arn} stayed InProgress for {:?}", self.tuning.operation_wait))
            }
        })
    }

    async fn update_configuration(&self, arn: &str, fields: &Patch<ConfigField>) -> Result<(), ProviderError> {
        let lambda = self.lambda()?;
        let write = move || {
            self.function_write("UpdateFunctionConfiguration", arn, true, move || {
                configuration_request(lambda, arn, fields).send()
            })
        };
        let propagation = Policy {
            backoff: Backoff::new(Duration::from_secs(1), Duration::from_secs(15)),
            ..self.tuning.propagation("aws", &self.clients.metrics)
        };
        let refused_for_now = |e: &ProviderError| match e {
            ProviderError::Refused(m) if is_iam_propagation(m) => {
                tracing::info!(arn, "Lambda cannot use the role yet (IAM propagation); retrying");
                Verdict::Retry(Cause::propagation)
            }
            _ => Verdict::Fail,
        };
        propagation
            .run(write, refused_for_now)
            .await
            .map_err(|e| e.into_error())
    }

    /// Add `layers` to the function's layers as they are right now: read
    /// with GetFunctionConfiguration and written with its RevisionId, so a
    /// layer added meanwhile is never dropped (a stale revision is a
    /// conflict: read again and retried). Nothing is sent when every layer
    /// is there already.
    async fn attach_layers(&self, arn: &str, layers: &[String]) -> Result<(), ProviderError> {
        let lambda = self.lambda()?;
        self.conflicts()
            .run(
                move || async move {
                    self.wait_idle(arn).await?;
                    let current = lambda
                        .get_function_configuration()
                        .function_name(arn)
                        .send()
                        .await
                        .map_err(|e| map_err("GetFunctionConfiguration", arn, e))?;
                    let mut merged: Vec<String> = current
                        .layers()
                        .iter()
                        .filter_map(|l| l.arn().map(str::to_string))
                        .collect();
                    let missing: Vec<String> = layers.iter().filter(|l| !merged.contains(l)).cloned().collect();
                    if missing.is_empty() {
                        return Ok(());
                    }
                    merged.extend(missing);
                    lambda
                        .update_function_configuration()
                        .function_name(arn)
                        .set_layers(Some(merged))
                        .set_revision_id(current.revision_id().map(str::to_string))
                        .send()
                        .await
                        .map_err(|e| map_err("UpdateFunctionConfiguration", arn, e))?;
                    self.wait_idle(arn).await
                },
                |e| match e {
                    ProviderError::Conflict(m) if !m.contains("already exists") => Verdict::Retry(Cause::conflict),
                    _ => Verdict::Fail,
                },
            )
            .await
            .map_err(|e| e.into_error())
    }

    /// Raise the log group's retention to `days`, creating the group when
    /// it does not exist. The retention is read right before the write, so
    /// one raised meanwhile, or none (never expire), is never shortened.
    async fn set_log_retention(&self, region: &str, group: &str, days: i32) -> Result<(), ProviderError> {
        let logs = self.clients.logs(region)?;
        match super::logs::retention(logs, group).await? {
            None => match logs.create_log_group().log_group_name(group).send().await {
                Ok(_) => {}
                // Lambda (or someone) created it meanwhile: judge it again.
                Err(e) => match map_err("CreateLogGroup", group, e) {
                    ProviderError::Conflict(_) => {
                        if super::logs::retention(logs, group)
                            .await?
                            .is_some_and(|r| r.is_none_or(|d| d >= days))
                        {
                            return Ok(());
                        }
                    }
                    other => return Err(other),
                },
            },
            Some(current) if current.is_none_or(|d| d >= days) => return Ok(()),
            Some(_) => {}
        }
        logs.put_retention_policy()
            .log_group_name(group)
            .retention_in_days(days)
            .send()
            .await
            .map_err(|e| map_err("PutRetentionPolicy", group, e))
            .map(drop)
    }

    /// CreateRole, reporting the RoleId IAM assigned: the proof of ownership
    /// zerofn records. A role of that name that exists already is reported
    /// with its RoleId, for the caller to check against its records.
    pub async fn create_role(
        &self,
        role_name: &str,
        path: &str,
        trust_policy: &str,
        description: &str,
        tags: &std::collections::BTreeMap<String, String>,
    ) -> Result<RoleCreation, ProviderError> {
        let tag_list: Vec<aws_sdk_iam::types::Tag> = tags
            .iter()
            .filter_map(|(k, v)| aws_sdk_iam::types::Tag::builder().key(k).value(v).build().ok())
            .collect();
        let res = self
            .clients
            .iam
            .create_role()
            .role_name(role_name)
            .path(path)
            .assume_role_policy_document(trust_policy)
            .description(description)
            .set_tags(Some(tag_list))
            .send()
            .await;
        match res {
            Ok(out) => match out.role() {
                Some(r) if !r.role_id().is_empty() => Ok(RoleCreation::Created {
                    arn: r.arn().to_string(),
                    role_id: r.role_id().to_string(),
                }),
                _ => Err(ProviderError::Cloud(format!(
                    "CreateRole {role_name}: the answer carries no RoleId"
                ))),
            },
            Err(e) if code(&e) == Some("EntityAlreadyExists") => {
                // Whether it is ours is decided by its RoleId, never by its
                // name or tags.
                let existing = self
                    .clients
                    .iam
                    .get_role()
                    .role_name(role_name)
                    .send()
                    .await
                    .map_err(|e| map_err("GetRole", role_name, e))?;
                let role = existing
                    .role()
                    .ok_or_else(|| ProviderError::Cloud(format!("GetRole {role_name}: no role in the answer")))?;
                Ok(RoleCreation::Exists {
                    arn: role.arn().to_string(),
                    role_id: role.role_id().to_string(),
                    nonce: role
                        .tags()
                        .iter()
                        .find(|t| t.key() == names::MINT_NONCE_TAG)
                        .map(|t| t.value().to_string()),
                    created: jiff::Timestamp::from_second(role.create_date().secs()).ok(),
                })
            }
            Err(e) => {
                let msg = message(&e).unwrap_or_default().to_string();
                Err(match map_err("CreateRole", role_name, e) {
                    ProviderError::Refused(_) => ProviderError::Refused(format!("CreateRole {role_name}: {msg}")),
                    other => other,
                })
            }
        }
    }

    /// A write to a REST API: UpdateMethod patches only the fields the
    /// action names (an API zerofn does not own is never restructured), and
    /// CreateDeployment redeploys one observed stage. API Gateway refuses a
    /// change racing another with ConflictException: waited out.
    async fn api_write(&self, action: &AwsAction) -> Result<(), ProviderError> {
        use aws_sdk_apigateway::types::{Op, PatchOperation};
        let replace = |path: &str, value: &str| {
            PatchOperation::builder()
                .op(Op::Replace)
                .path(path)
                .value(value)
                .build()
        };
        let (region, api_id, ops, stage) = match action {
            AwsAction::AuthorizeApiMethod {
                region,
                api_id,
                authorization_type,
                authorizer_id,
                ..
            } => {
                let mut ops = vec![replace("/authorizationType", authorization_type)];
                ops.extend(authorizer_id.as_deref().map(|id| replace("/authorizerId", id)));
                (region, api_id, ops, None)
            }
            AwsAction::AttachRequestValidator {
                region,
                api_id,
                request_validator_id,
                ..
            } => (
                region,
                api_id,
                vec![replace("/requestValidatorId", request_validator_id)],
                None,
            ),
            AwsAction::DeployApiStage {
                region,
                api_id,
                stage_name,
                ..
            } => (region, api_id, Vec::new(), Some(stage_name)),
            other => return Err(misrouted(other)),
        };
        let client = self.clients.apigateway.get(region.as_str()).ok_or_else(|| {
            ProviderError::Config(format!(
                "region {region} is not in the account's regions; add it to spec.aws.regions"
            ))
        })?;
        let target = action.summary().target;
        if let Some(stage) = stage {
            return self
                .conflicts()
                .run(
                    || {
                        client
                            .create_deployment()
                            .rest_api_id(api_id)
                            .stage_name(stage)
                            .description("zerofn: publish the methods' authorization and validation")
                            .send()
                    },
                    api_conflict,
                )
                .await
                .map(drop)
                .map_err(|e| map_err("CreateDeployment", &target, e.into_error()));
        }
        let (resource_id, http_method) = match action {
            AwsAction::AuthorizeApiMethod {
                resource_id,
                http_method,
                ..
            }
            | AwsAction::AttachRequestValidator {
                resource_id,
                http_method,
                ..
            } => (resource_id, http_method),
            other => return Err(misrouted(other)),
        };
        self.conflicts()
            .run(
                || {
                    client
                        .update_method()
                        .rest_api_id(api_id)
                        .resource_id(resource_id)
                        .http_method(http_method)
                        .set_patch_operations(Some(ops.clone()))
                        .send()
                },
                api_conflict,
            )
            .await
            .map(drop)
            .map_err(|e| map_err("UpdateMethod", &target, e.into_error()))
    }

    async fn disable_mapping(&self, uuid: &str) -> Result<(), ProviderError> {
        let lambda = self.lambda()?;
        self.conflicts()
            .run(
                || lambda.update_event_source_mapping().uuid(uuid).enabled(false).send(),
                // A mapping in transition (Creating, Updating) refuses updates.
                |e| match code(e) {
                    Some("ResourceInUseException") => Verdict::Retry(Cause::conflict),
                    _ => Verdict::Fail,
                },
            )
            .await
            .map(drop)
            .map_err(|e| map_err("UpdateEventSourceMapping", uuid, e.into_error()))
    }
}

/// What CreateRole found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RoleCreation {
    Created {
        arn: String,
        role_id: String,
    },
    /// A role of that name existed already.
    Exists {
        arn: String,
        role_id: String,
        /// Its `zerofn.dev/mint-nonce` tag.
        nonce: Option<String>,
        /// Its CreateDate.
        created: Option<jiff::Timestamp>,
    },
}

/// The refusal for a role of zerofn's name that zerofn cannot prove it made.
pub fn name_taken(role_name: &str, role_id: &str) -> ProviderError {
    ProviderError::Refused(format!(
        "CreateRole {role_name}: a role of that name exists (RoleId {role_id}) and no record proves zerofn created it; zerofn does not write to it"
    ))
}

/// The UpdateFunctionConfiguration request: the patch's fields, in order,
/// and nothing else, so what is sent is what the summary says.
fn configuration_request(lambda: &aws_sdk_lambda::Client, arn: &str, fields: &Patch<ConfigField>) -> ConfigRequest {
    let req = lambda.update_function_configuration().function_name(arn);
    fields.fields().iter().fold(req, set_field)
}

fn set_field(req: ConfigRequest, field: &ConfigField) -> ConfigRequest {
    match field {
        ConfigField::Role(r) => req.role(r),
        ConfigField::Vpc(v) => req.vpc_config(
            VpcConfig::builder()
                .set_subnet_ids(Some(v.subnet_ids.iter().cloned().collect()))
                .set_security_group_ids(Some(v.security_group_ids.iter().cloned().collect()))
                .set_ipv6_allowed_for_dual_stack(v.ipv6_allowed_for_dual_stack)
                .build(),
        ),
        ConfigField::TracingMode(t) => {
            req.tracing_config(TracingConfig::builder().mode(TracingMode::from(t.as_str())).build())
        }
        ConfigField::Logging(l) => req.logging_config(
            LoggingConfig::builder()
                .log_format(LogFormat::from(l.log_format.as_str()))
                .set_log_group(l.log_group.clone())
                .set_application_log_level(l.application_log_level.as_deref().map(ApplicationLogLevel::from))
                .set_system_log_level(l.system_log_level.as_deref().map(SystemLogLevel::from))
                .build(),
        ),
    }
}

/// An IAM write's outcome, named by its operation and role.
fn iam_done<T, E>(
    op: &str,
    role_name: &str,
    res: Result<T, aws_smithy_runtime_api::client::result::SdkError<E, aws_smithy_runtime_api::http::Response>>,
) -> Result<(), ProviderError>
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    res.map(drop).map_err(|e| map_err(op, role_name, e))
}

/// An action handed to a writer that does not make it: a mistake in
/// `Applier::apply`'s routing, refused rather than skipped.
/// API Gateway refuses a change racing another with ConflictException.
fn api_conflict<E: aws_smithy_types::error::metadata::ProvideErrorMetadata, R>(
    e: &aws_smithy_runtime_api::client::result::SdkError<E, R>,
) -> Verdict {
    match code(e) {
        Some("ConflictException") => Verdict::Retry(Cause::conflict),
        _ => Verdict::Fail,
    }
}

fn misrouted(action: &AwsAction) -> ProviderError {
    ProviderError::Refused(format!("{}: routed to the wrong writer (a zerofn bug)", action.op()))
}

fn gone_is_ok(r: Result<(), ProviderError>) -> Result<(), ProviderError> {
    match r {
        Err(ProviderError::NotFound(_)) => Ok(()),
        other => other,
    }
}

/// Lambda's refusals while a new role (or its new policy) is still
/// propagating through IAM.
fn is_iam_propagation(message: &str) -> bool {
    message.contains("cannot be assumed by Lambda")
        || message.contains("does not have permissions to call CreateNetworkInterface")
        || message.contains("The role defined for the function cannot be assumed")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_configuration_request_sends_the_patched_fields_and_nothing_else() {
        let conf = aws_sdk_lambda::Config::builder()
            .behavior_version(aws_sdk_lambda::config::BehaviorVersion::latest())
            .region(aws_sdk_lambda::config::Region::new("eu-west-1"))
            .build();
        let lambda = aws_sdk_lambda::Client::from_conf(conf);
        let fields: Patch<ConfigField> = [
            ConfigField::TracingMode("Active".into()),
            ConfigField::Role("arn:aws:iam::123456789012:role/zerofn/r".into()),
        ]
        .into_iter()
        .collect();
        let req = configuration_request(&lambda, "arn:f", &fields);
        let input = req.as_input();
        assert_eq!(input.get_function_name().as_deref(), Some("arn:f"));
        assert_eq!(
            input.get_role().as_deref(),
            Some("arn:aws:iam::123456789012:role/zerofn/r")
        );
        assert_eq!(
            input.get_tracing_config().as_ref().and_then(|t| t.mode()),
            Some(&TracingMode::Active)
        );
        assert!(input.get_vpc_config().is_none(), "a field not planned is not sent");
        assert!(input.get_logging_config().is_none(), "a field not planned is not sent");
    }

    #[test]
    fn iam_propagation_refusals_are_recognised() {
        assert!(is_iam_propagation(
            "UpdateFunctionConfiguration x: InvalidParameterValueException: The role defined for the function cannot be assumed by Lambda."
        ));
        assert!(is_iam_propagation(
            "The provided execution role does not have permissions to call CreateNetworkInterface on EC2"
        ));
        assert!(!is_iam_propagation("Security group sg-1 does not exist"));
    }
}
