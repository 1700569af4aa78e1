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

use super::action::AwsAction;
use super::client::{Clients, code, map_err, message};
use super::names;
use crate::providers::retry::{Backoff, Cause, Policy, Progress, Unfinished, Verdict};
use crate::providers::{ProviderError, Tuning};
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
        let lambda = self.lambda()?;
        match action {
            AwsAction::TagFunction {
                function_arn,
                key,
                value,
            } => {
                self.function_write("TagResource", function_arn, false, || {
                    lambda.tag_resource().resource(function_arn).tags(key, value).send()
                })
                .await
            }
            AwsAction::UntagFunction { function_arn, key } => {
                self.function_write("UntagResource", function_arn, false, || {
                    lambda.untag_resource().resource(function_arn).tag_keys(key).send()
                })
                .await
            }
            // Only the provider creates roles: it stamps the nonce of the
            // write-ahead record it kept and records the RoleId.
            AwsAction::CreateRole { role_name, .. } => Err(ProviderError::Unrecorded(format!(
                "CreateRole {role_name}: roles are created only with a write-ahead record"
            ))),
            AwsAction::PutRolePolicy {
                role_name,
                policy_name,
                document,
            } => self
                .clients
                .iam
                .put_role_policy()
                .role_name(role_name)
                .policy_name(policy_name)
                .policy_document(document)
                .send()
                .await
                .map(drop)
                .map_err(|e| map_err("PutRolePolicy", role_name, e)),
            AwsAction::DeleteRolePolicy { role_name, policy_name } => gone_is_ok(
                self.clients
                    .iam
                    .delete_role_policy()
                    .role_name(role_name)
                    .policy_name(policy_name)
                    .send()
                    .await
                    .map(drop)
                    .map_err(|e| map_err("DeleteRolePolicy", role_name, e)),
            ),
            AwsAction::DetachRolePolicy { role_name, policy_arn } => gone_is_ok(
                self.clients
                    .iam
                    .detach_role_policy()
                    .role_name(role_name)
                    .policy_arn(policy_arn)
                    .send()
                    .await
                    .map(drop)
                    .map_err(|e| map_err("DetachRolePolicy", role_name, e)),
            ),
            AwsAction::PutRolePermissionsBoundary {
                role_name,
                boundary_arn,
            } => self
                .clients
                .iam
                .put_role_permissions_boundary()
                .role_name(role_name)
                .permissions_boundary(boundary_arn)
                .send()
                .await
                .map(drop)
                .map_err(|e| map_err("PutRolePermissionsBoundary", role_name, e)),
            AwsAction::UpdateFunctionConfiguration {
                function_arn,
                role,
                vpc,
                tracing_mode,
                logging,
            } => {
                self.update_configuration(
                    function_arn,
                    role.as_deref(),
                    vpc.as_ref(),
                    tracing_mode.as_deref(),
                    logging.as_ref(),
                )
                .await
            }
            AwsAction::AddPermission {
                function_arn,
                qualifier,
                statement_id,
                principal,
                action,
                source_arn,
                source_account,
            } => {
                let res = self
                    .function_write("AddPermission", function_arn, false, || {
                        let mut req = lambda
                            .add_permission()
                            .function_name(function_arn)
                            .set_qualifier(qualifier.clone())
                            .statement_id(statement_id)
                            .action(action)
                            .principal(principal)
                            .set_source_arn(source_arn.clone())
                            .set_source_account(source_account.clone());
                        if action == "lambda:InvokeFunctionUrl" {
                            req = req.function_url_auth_type(FunctionUrlAuthType::AwsIam);
                        }
                        req.send()
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
                self.function_write("RemovePermission", function_arn, false, || {
                    lambda
                        .remove_permission()
                        .function_name(function_arn)
                        .set_qualifier(qualifier.clone())
                        .statement_id(statement_id)
                        .send()
                })
                .await,
            ),
            AwsAction::UpdateFunctionUrlAuthType {
                function_arn,
                qualifier,
                auth_type,
            } => {
                self.function_write("UpdateFunctionUrlConfig", function_arn, false, || {
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
                self.function_write("DeleteFunctionUrlConfig", function_arn, false, || {
                    lambda
                        .delete_function_url_config()
                        .function_name(function_arn)
                        .set_qualifier(qualifier.clone())
                        .send()
                })
                .await,
            ),
            AwsAction::DisableEventSourceMapping { uuid, .. } => self.disable_mapping(uuid).await,
            AwsAction::PutFunctionCodeSigningConfig {
                function_arn,
                code_signing_config_arn,
            } => {
                self.function_write("PutFunctionCodeSigningConfig", function_arn, true, || {
                    lambda
                        .put_function_code_signing_config()
                        .function_name(function_arn)
                        .code_signing_config_arn(code_signing_config_arn)
                        .send()
                })
                .await
            }
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

    async fn update_configuration(
        &self,
        arn: &str,
        role: Option<&str>,
        vpc: Option<&super::action::VpcUpdate>,
        tracing_mode: Option<&str>,
        logging: Option<&super::action::LoggingUpdate>,
    ) -> Result<(), ProviderError> {
        let lambda = self.lambda()?;
        let write = move || {
            self.function_write("UpdateFunctionConfiguration", arn, true, move || {
                let mut req = lambda.update_function_configuration().function_name(arn);
                if let Some(r) = role {
                    req = req.role(r);
                }
                if let Some(v) = vpc {
                    req = req.vpc_config(
                        VpcConfig::builder()
                            .set_subnet_ids(Some(v.subnet_ids.iter().cloned().collect()))
                            .set_security_group_ids(Some(v.security_group_ids.iter().cloned().collect()))
                            .set_ipv6_allowed_for_dual_stack(v.ipv6_allowed_for_dual_stack)
                            .build(),
                    );
                }
                if let Some(t) = tracing_mode {
                    req = req.tracing_config(TracingConfig::builder().mode(TracingMode::from(t)).build());
                }
                if let Some(l) = logging {
                    req = req.logging_config(
                        LoggingConfig::builder()
                            .log_format(LogFormat::from(l.log_format.as_str()))
                            .set_log_group(l.log_group.clone())
                            .set_application_log_level(
                                l.application_log_level.as_deref().map(ApplicationLogLevel::from),
                            )
                            .set_system_log_level(l.system_log_level.as_deref().map(SystemLogLevel::from))
                            .build(),
                    );
                }
                req.send()
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
