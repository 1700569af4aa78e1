//! Applying one GCP action, safely.
//!
//! - IAM policies are read-modify-written with their etag: a concurrent
//!   change makes the write fail with ABORTED, and the delta is applied again
//!   to the fresh policy, so neither change is lost. Only the one member's
//!   unconditional bindings are touched.
//! - A function PATCH always names its fields in an update mask (without one
//!   the API replaces the whole function) and is polled to completion.
//! - A service account created a moment ago may be refused for a while
//!   (propagation): such refusals are retried for a bounded time.

use super::action::{FunctionField, GcpAction};
use super::client::{Caller, Clients, code, map_err};
use super::model::BinAuthz;
use super::names;
use super::observe::{INVOKER, project_policy_request, service_policy_request};
use crate::providers::patch::Field;
use crate::providers::retry::{Backoff, Cause, GaveUp, Policy as RetryPolicy, Progress, Unfinished, Verdict};
use crate::providers::{MintedIdentity, ProviderError};
use google_cloud_functions_v2::model::service_config::{IngressSettings, VpcConnectorEgressSettings};
use google_cloud_functions_v2::model::{Function, ServiceConfig};
use google_cloud_gax::error::Error as GaxError;
use google_cloud_gax::error::rpc::Code;
use google_cloud_iam_v1::model::{Binding, Policy};
use google_cloud_lro::{Poller, PollingResult};
use google_cloud_run_v2::model::{BinaryAuthorization, IngressTraffic, Service};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Add and remove `member` on unconditional bindings of `policy`; every
/// other member and every conditional binding is left as it is.
pub fn apply_delta(policy: &mut Policy, member: &str, add: &[String], remove: &[String]) {
    for b in policy.bindings.iter_mut().filter(|b| b.condition.is_none()) {
        if remove.contains(&b.role) {
            b.members.retain(|m| m != member);
        }
    }
    for role in add {
        match policy
            .bindings
            .iter_mut()
            .find(|b| b.condition.is_none() && &b.role == role)
        {
            Some(b) if b.members.iter().any(|m| m == member) => {}
            Some(b) => b.members.push(member.to_string()),
            None => policy
                .bindings
                .push(Binding::new().set_role(role).set_members([member])),
        }
    }
    // A binding left without members is dropped, as the API itself does.
    policy.bindings.retain(|b| !b.members.is_empty());
    if policy.bindings.iter().any(|b| b.condition.is_some()) {
        policy.version = 3;
    }
}

/// A service account that is not visible yet to the service being asked.
fn not_propagated(e: &google_cloud_gax::error::Error) -> bool {
    code(e) == Some(Code::InvalidArgument)
        && e.to_string().contains("does not exist")
        && e.to_string().contains("serviceAccount")
}

pub struct Applier<'a> {
    pub clients: &'a Clients,
    pub caller: &'a Caller,
}

/// Why one round of a function PATCH failed: only the PATCH's own refusals
/// are worth another round.
enum Round {
    /// Reading the function, or deciding what to send.
    Final(ProviderError),
    /// The PATCH was refused; nothing started.
    Patch(GaxError),
    /// The update's operation failed or could not be followed.
    Operation(GaxError),
}

/// A new service account not visible yet: retried while it propagates.
fn unpropagated(e: &GaxError) -> Verdict {
    if not_propagated(e) {
        tracing::info!("the new service account is not visible yet; retrying");
        Verdict::Retry(Cause::propagation)
    } else {
        Verdict::Fail
    }
}

impl Applier<'_> {
    /// Apply one action. Creating a service account returns the proof that
    /// zerofn minted it (its uniqueId), for the caller to record.
    pub async fn apply(&self, action: &GcpAction) -> Result<Option<MintedIdentity>, ProviderError> {
        match action {
            GcpAction::CreateServiceAccount {
                project,
                account_id,
                display_name,
            } => self.create_account(project, account_id, display_name).await.map(Some),
            GcpAction::UpdateProjectRoles {
                project,
                member,
                add,
                remove,
            } => self
                .update_policy("project", project, member, add, remove)
                .await
                .map(|_| None),
            GcpAction::UpdateInvokers { service, add, remove } => {
                // Every change is attempted, so one refusal does not keep a
                // public member in place; the first error is reported.
                let mut ok = Ok(None);
                for m in add {
                    let r = self
                        .update_policy("service", service, m, std::slice::from_ref(&INVOKER.to_string()), &[])
                        .await;
                    ok = ok.and(r.map(|_| None));
                }
                for r in remove {
                    let res = self
                        .update_policy("service", service, &r.member, &[], std::slice::from_ref(&r.role))
                        .await;
                    ok = ok.and(res.map(|_| None));
                }
                ok
            }
            GcpAction::PatchFunction { .. } => self.patch(action).await.map(|_| None),
            GcpAction::SetBinaryAuthorization { service, method } => {
                self.set_binary_authorization(service, method).await.map(|_| None)
            }
            GcpAction::NarrowServiceIngress { service, ingress } => {
                self.narrow_service_ingress(service, ingress).await.map(|_| None)
            }
        }
    }

    /// Set Binary Authorization on a Cloud Run service that has none when
    /// it is read right before the write (one set meanwhile is not
    /// switched).
    async fn set_binary_authorization(&self, service: &str, method: &BinAuthz) -> Result<(), ProviderError> {
        let current = self.read_service(service).await?;
        if current.binary_authorization.as_ref().and_then(BinAuthz::of).is_some() {
            return Ok(());
        }
        let wanted = match method {
            BinAuthz::UseDefault => BinaryAuthorization::new().set_use_default(true),
            BinAuthz::Policy(p) => BinaryAuthorization::new().set_policy(p.clone()),
        };
        let update = Service::new().set_name(service).set_binary_authorization(wanted);
        self.update_service(service, update, "binary_authorization").await
    }

    /// Narrow a Cloud Run service's ingress when, read right before the
    /// write, it is still wider (one narrowed meanwhile, or by more, is
    /// kept).
    async fn narrow_service_ingress(&self, service: &str, ingress: &str) -> Result<(), ProviderError> {
        use super::ingress::Reach;
        let current = self.read_service(service).await?;
        let have = current.ingress.name().and_then(Reach::of_service);
        let want = Reach::of_service(ingress);
        if have.is_none() || want.is_none() || have <= want {
            return Ok(());
        }
        let update = Service::new()
            .set_name(service)
            .set_ingress(IngressTraffic::from(ingress));
        self.update_service(service, update, "ingress").await
    }

    async fn read_service(&self, service: &str) -> Result<Service, ProviderError> {
        self.caller
            .call("GetService", service, || {
                self.clients.run.get_service().set_name(service).send()
            })
            .await
    }

    /// One service update with an update mask naming only `path` (without
    /// a mask the service, template included, would be replaced), waited
    /// for within the operation deadline.
    async fn update_service(&self, service: &str, update: Service, path: &str) -> Result<(), ProviderError> {
        let mask = google_cloud_wkt::FieldMask::default().set_paths([path]);
        let wait = self.caller.tuning.operation_wait;
        let done = tokio::time::timeout(
            wait,
            self.clients
                .run
                .update_service()
                .set_service(update)
                .set_update_mask(mask)
                .poller()
                .until_done(),
        )
        .await
        .map_err(|_| ProviderError::Timeout(format!("UpdateService {service}: not done within {wait:?}")))?;
        self.caller.record("UpdateService", done.as_ref().map(drop));
        done.map(drop).map_err(|e| map_err("UpdateService", service, &e))
    }

    async fn create_account(
        &self,
        project: &str,
        account_id: &str,
        display_name: &str,
    ) -> Result<MintedIdentity, ProviderError> {
        let parent = format!("projects/{project}");
        let result = self
            .caller
            .raw("CreateServiceAccount", || {
                self.clients
                    .iam
                    .create_service_account()
                    .set_name(&parent)
                    .set_account_id(account_id)
                    .set_service_account(
                        google_cloud_iam_admin_v1::model::ServiceAccount::new()
                            .set_display_name(display_name)
                            .set_description("Created by zerofn: runs exactly one function with the declared roles"),
                    )
                    .send()
            })
            .await;
        match result {
            Ok(sa) if !sa.unique_id.is_empty() => Ok(MintedIdentity {
                principal: sa.email,
                unique_id: sa.unique_id,
            }),
            Ok(_) => Err(ProviderError::Cloud(format!(
                "CreateServiceAccount {account_id}: the answer carries no uniqueId, so zerofn cannot prove it minted the account"
            ))),
            // A name proves nothing: an account someone else created (or
            // one zerofn created without recording it) is never adopted.
            Err(e) if code(&e) == Some(Code::AlreadyExists) => Err(ProviderError::Conflict(format!(
                "CreateServiceAccount {account_id}: an account of that id already exists and zerofn has no record of creating it, so it is not adopted"
            ))),
            Err(e) => Err(map_err("CreateServiceAccount", account_id, &e)),
        }
    }

    async fn read_policy(&self, kind: &str, resource: &str) -> Result<Policy, google_cloud_gax::error::Error> {
        match kind {
            "project" => {
                self.caller
                    .raw("GetIamPolicy(project)", || {
                        project_policy_request(self.clients, resource).send()
                    })
                    .await
            }
            _ => {
                self.caller
                    .raw("GetIamPolicy(service)", || {
                        service_policy_request(self.clients, resource).send()
                    })
                    .await
            }
        }
    }

    async fn write_policy(
        &self,
        kind: &str,
        resource: &str,
        policy: &Policy,
    ) -> Result<Policy, google_cloud_gax::error::Error> {
        match kind {
            "project" => {
                let name = format!("projects/{resource}");
                self.caller
                    .raw("SetIamPolicy(project)", || {
                        self.clients
                            .projects
                            .set_iam_policy()
                            .set_resource(&name)
                            .set_policy(policy.clone())
                            .send()
                    })
                    .await
            }
            _ => {
                self.caller
                    .raw("SetIamPolicy(service)", || {
                        self.clients
                            .run
                            .set_iam_policy()
                            .set_resource(resource)
                            .set_policy(policy.clone())
                            .send()
                    })
                    .await
            }
        }
    }

    /// Read-modify-write with the etag until it sticks.
    async fn update_policy(
        &self,
        kind: &str,
        resource: &str,
        member: &str,
        add: &[String],
        remove: &[String],
    ) -> Result<(), ProviderError> {
        let op = format!("SetIamPolicy({kind})");
        let tuning = &self.caller.tuning;
        let rounds = &RetryPolicy {
            attempts: tuning.etag_rounds + 1,
            // Several writers racing on one policy must not retry in lockstep.
            backoff: Backoff::new(tuning.initial_backoff / 10, Duration::from_secs(5)),
            ..tuning.operation("gcp", &self.caller.metrics)
        };
        let round = move || async move {
            let mut policy = self.read_policy(kind, resource).await?;
            let before = policy.clone();
            apply_delta(&mut policy, member, add, remove);
            if policy.bindings != before.bindings {
                self.write_policy(kind, resource, &policy).await?;
            }
            Ok::<(), GaxError>(())
        };
        let stale = |e: &GaxError| match code(e) {
            Some(Code::Aborted) => {
                tracing::info!(
                    resource,
                    "IAM policy changed since it was read; applying the change again"
                );
                Verdict::Retry(Cause::conflict)
            }
            _ => Verdict::Fail,
        };
        tuning
            .propagation("gcp", &self.caller.metrics)
            .run(
                move || async move { rounds.run(round, stale).await.map_err(GaveUp::into_error) },
                unpropagated,
            )
            .await
            .map_err(|e| map_err(&op, resource, &e.into_error()))
    }

    /// Read the function, change only what still differs (zerofn's label
    /// merged into the labels just read), and send it as one PATCH whose
    /// mask names exactly those fields. An update already in flight
    /// (ABORTED) is waited out with jittered backoff and the read repeated.
    async fn patch(&self, action: &GcpAction) -> Result<(), ProviderError> {
        let GcpAction::PatchFunction { name, .. } = action else {
            return Ok(());
        };
        let tuning = &self.caller.tuning;
        let aborted = &RetryPolicy {
            attempts: tuning.max_attempts + 1,
            backoff: Backoff::new(tuning.poll_interval, Duration::from_secs(30)),
            ..tuning.operation("gcp", &self.caller.metrics)
        };
        let round = move || async move {
            let f = self
                .caller
                .call("GetFunction", name, || {
                    self.clients.functions.get_function().set_name(name).send()
                })
                .await
                .map_err(Round::Final)?;
            let Some((f, mask)) = patched(f, action).map_err(Round::Final)? else {
                return Ok(());
            };
            let mask = google_cloud_wkt::FieldMask::default().set_paths(mask);
            self.run_update(name, f, mask).await.map_err(|(e, patch)| match patch {
                true => Round::Patch(e),
                false => Round::Operation(e),
            })
        };
        let in_flight = |r: &Round| match r {
            Round::Patch(e) if code(e) == Some(Code::Aborted) => Verdict::Retry(Cause::conflict),
            _ => Verdict::Fail,
        };
        let not_visible = |r: &Round| match r {
            Round::Patch(e) => unpropagated(e),
            _ => Verdict::Fail,
        };
        let result = tuning
            .propagation("gcp", &self.caller.metrics)
            .run(
                move || async move { aborted.run(round, in_flight).await.map_err(GaveUp::into_error) },
                not_visible,
            )
            .await;
        match result.map_err(GaveUp::into_error) {
            Ok(()) => Ok(()),
            Err(Round::Final(e)) => Err(e),
            Err(Round::Patch(e) | Round::Operation(e)) => Err(map_err("UpdateFunction", name, &e)),
        }
    }

    /// Send the PATCH and poll its operation to the end. The error says
    /// whether it came from the PATCH itself (true: nothing started).
    async fn run_update(
        &self,
        name: &str,
        f: google_cloud_functions_v2::model::Function,
        mask: google_cloud_wkt::FieldMask,
    ) -> Result<(), (google_cloud_gax::error::Error, bool)> {
        let poller = &tokio::sync::Mutex::new(
            self.clients
                .functions
                .update_function()
                .set_function(f)
                .set_update_mask(mask)
                .poller(),
        );
        // The first poll sends the PATCH; the later ones read the operation.
        let first = &AtomicBool::new(true);
        let check = move || async move {
            let first = first.swap(false, Ordering::Relaxed);
            let op = if first { "UpdateFunction" } else { "GetOperation" };
            match poller.lock().await.poll().await {
                None => Ok(Progress::Done(())),
                Some(PollingResult::Completed(Ok(_))) => {
                    self.caller.record(op, Ok(()));
                    Ok(Progress::Done(()))
                }
                Some(PollingResult::Completed(Err(e))) => {
                    self.caller.record(op, Err(&e));
                    Err((e, first))
                }
                Some(PollingResult::InProgress(_)) => {
                    self.caller.record(op, Ok(()));
                    Ok(Progress::Pending(None))
                }
                Some(PollingResult::PollingError(e)) => {
                    self.caller.record(op, Err(&e));
                    // Transient polling failures are retried; the operation
                    // runs on regardless.
                    if first || !matches!(code(&e), Some(Code::Unavailable | Code::ResourceExhausted) | None) {
                        return Err((e, first));
                    }
                    Ok(Progress::Pending(None))
                }
            }
        };
        let tuning = &self.caller.tuning;
        tuning
            .operation("gcp", &self.caller.metrics)
            .poll(None, check)
            .await
            .map_err(|u| match u {
                Unfinished::Failed(e) => e,
                Unfinished::Deadline => {
                    let status = google_cloud_gax::error::rpc::Status::default()
                        .set_code(Code::DeadlineExceeded)
                        .set_message(format!(
                            "the update of {name} did not finish within {:?}",
                            tuning.operation_wait
                        ));
                    (GaxError::service(status), false)
                }
            })
    }
}

/// The function as the PATCH sends it and the update mask naming the fields
/// that differ from `current` (None: nothing differs, nothing to send). The
/// labels are `current`'s with only zerofn's ownership label changed; a
/// claim on a function another owner labelled meanwhile is refused.
pub fn patched(current: Function, action: &GcpAction) -> Result<Option<(Function, Vec<&'static str>)>, ProviderError> {
    let GcpAction::PatchFunction { name, patch } = action else {
        return Ok(None);
    };
    let mut f = current;
    // Sent whole, as read, with the fields below changed.
    service_config(&mut f);
    let mut mask = Vec::new();
    for field in patch.fields() {
        match set_field(&mut f, field) {
            Ok(true) => mask.push(field.path()),
            Ok(false) => {}
            Err(Claimed(other)) => {
                return Err(ProviderError::Conflict(format!(
                    "{name}: label {}={other} was set by another owner since it was observed; nothing is written",
                    names::OWNER_LABEL
                )));
            }
        }
    }
    Ok((!mask.is_empty()).then_some((f, mask)))
}

/// The ownership label holds another owner's value.
struct Claimed(String);

/// Set one field on the function as read at write time. Ok(true): it
/// changed, so the mask names it.
fn set_field(f: &mut Function, field: &FunctionField) -> Result<bool, Claimed> {
    let changed = match field {
        FunctionField::ServiceAccount(v) => assign(&mut service_config(f).service_account_email, v.clone()),
        FunctionField::Ingress(v) => assign(
            &mut service_config(f).ingress_settings,
            IngressSettings::from(v.as_str()),
        ),
        FunctionField::VpcConnector(v) => assign(&mut service_config(f).vpc_connector, v.clone()),
        FunctionField::Egress(v) => assign(
            &mut service_config(f).vpc_connector_egress_settings,
            VpcConnectorEgressSettings::from(v.as_str()),
        ),
        FunctionField::Claim(mine) => match f.labels.get(names::OWNER_LABEL) {
            Some(v) if v == mine => false,
            Some(v) => return Err(Claimed(v.clone())),
            None => {
                f.labels.insert(names::OWNER_LABEL.to_string(), mine.clone());
                true
            }
        },
        FunctionField::Release(mine) => {
            f.labels.get(names::OWNER_LABEL) == Some(mine) && f.labels.remove(names::OWNER_LABEL).is_some()
        }
    };
    Ok(changed)
}

fn service_config(f: &mut Function) -> &mut ServiceConfig {
    f.service_config.get_or_insert_with(ServiceConfig::default)
}

/// Put `want` in `slot`; whether that changed it.
fn assign<T: PartialEq>(slot: &mut T, want: T) -> bool {
    let changed = *slot != want;
    *slot = want;
    changed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(bindings: Vec<Binding>) -> Policy {
        Policy::new()
            .set_bindings(bindings)
            .set_etag(bytes::Bytes::from_static(b"e1"))
    }

    #[test]
    fn deltas_touch_only_the_member_and_only_unconditional_bindings() {
        let me = "serviceAccount:fn@p.iam.gserviceaccount.com";
        let cond =
            google_cloud_type::model::Expr::new().set_expression("request.time < timestamp('2030-01-01T00:00:00Z')");
        let mut p = policy(vec![
            Binding::new()
                .set_role("roles/editor")
                .set_members([me, "user:alice@example.com"]),
            Binding::new()
                .set_role("roles/viewer")
                .set_members([me])
                .set_condition(cond),
            Binding::new()
                .set_role("roles/owner")
                .set_members(["user:root@example.com"]),
        ]);
        apply_delta(
            &mut p,
            me,
            &["roles/datastore.user".into()],
            &["roles/editor".into(), "roles/viewer".into()],
        );
        let members = |role: &str, conditional: bool| -> Vec<String> {
            p.bindings
                .iter()
                .filter(|b| b.role == role && b.condition.is_some() == conditional)
                .flat_map(|b| b.members.clone())
                .collect()
        };
        assert_eq!(members("roles/editor", false), ["user:alice@example.com"]);
        assert_eq!(
            members("roles/viewer", true),
            [me],
            "conditional bindings are never changed"
        );
        assert_eq!(members("roles/owner", false), ["user:root@example.com"]);
        assert_eq!(members("roles/datastore.user", false), [me]);
        assert_eq!(p.version, 3, "a policy with conditions is written as version 3");
        assert_eq!(p.etag, bytes::Bytes::from_static(b"e1"), "the etag read is sent back");
    }

    fn function(labels: &[(&str, &str)]) -> google_cloud_functions_v2::model::Function {
        google_cloud_functions_v2::model::Function::new()
            .set_name("projects/p/locations/l/functions/f")
            .set_labels(labels.iter().map(|(k, v)| (k.to_string(), v.to_string())))
            .set_service_config(
                google_cloud_functions_v2::model::ServiceConfig::new()
                    .set_ingress_settings(IngressSettings::AllowAll)
                    .set_service_account_email("a@p.iam.gserviceaccount.com"),
            )
    }

    fn patch(claim: Option<&str>, ingress: Option<&str>) -> GcpAction {
        let fields = [
            Some(FunctionField::ServiceAccount("a@p.iam.gserviceaccount.com".into())),
            ingress.map(|v| FunctionField::Ingress(v.into())),
            claim.map(|v| FunctionField::Claim(v.into())),
        ];
        GcpAction::PatchFunction {
            name: "projects/p/locations/l/functions/f".into(),
            patch: fields.into_iter().flatten().collect(),
        }
    }

    #[test]
    fn one_patch_merges_the_claim_into_the_labels_read_at_write_time() {
        // A label someone added after zerofn observed the function survives.
        let now = function(&[("team", "checkout"), ("added-later", "yes")]);
        let (f, mask) = patched(now, &patch(Some("me"), Some("ALLOW_INTERNAL_ONLY")))
            .unwrap()
            .unwrap();
        assert_eq!(mask, vec!["service_config.ingress_settings", "labels"]);
        assert_eq!(f.labels.get("added-later").map(String::as_str), Some("yes"));
        assert_eq!(f.labels.get("team").map(String::as_str), Some("checkout"));
        assert_eq!(f.labels.get(names::OWNER_LABEL).map(String::as_str), Some("me"));
    }

    #[test]
    fn the_mask_names_only_fields_that_still_differ() {
        let now = function(&[(names::OWNER_LABEL, "me")]);
        // Service account already right, claim already held: only ingress.
        let (_, mask) = patched(now.clone(), &patch(Some("me"), Some("ALLOW_INTERNAL_ONLY")))
            .unwrap()
            .unwrap();
        assert_eq!(mask, vec!["service_config.ingress_settings"]);
        assert!(patched(now, &patch(Some("me"), Some("ALLOW_ALL"))).unwrap().is_none());
    }

    #[test]
    fn a_claim_racing_another_owner_is_refused() {
        let now = function(&[(names::OWNER_LABEL, "someone-else")]);
        let e = patched(now, &patch(Some("me"), None)).unwrap_err();
        assert!(matches!(e, ProviderError::Conflict(_)), "{e:?}");
    }

    #[test]
    fn release_drops_only_our_own_label() {
        let release = |held: &str| GcpAction::release("projects/p/locations/l/functions/f".into(), held.into());
        let now = function(&[(names::OWNER_LABEL, "me"), ("team", "x")]);
        let (f, mask) = patched(now.clone(), &release("me")).unwrap().unwrap();
        assert_eq!(mask, vec!["labels"]);
        assert!(!f.labels.contains_key(names::OWNER_LABEL));
        assert_eq!(f.labels.len(), 1);
        assert!(patched(now, &release("other")).unwrap().is_none());
    }

    #[test]
    fn emptied_bindings_are_dropped_and_adding_twice_is_idempotent() {
        let me = "serviceAccount:fn@p.iam.gserviceaccount.com";
        let mut p = policy(vec![Binding::new().set_role("roles/editor").set_members([me])]);
        apply_delta(&mut p, me, &[], &["roles/editor".into()]);
        assert!(p.bindings.is_empty());
        apply_delta(&mut p, me, &["roles/a".into()], &[]);
        apply_delta(&mut p, me, &["roles/a".into()], &[]);
        assert_eq!(p.bindings.len(), 1);
        assert_eq!(p.bindings[0].members, [me]);
    }
}
