//! Cloud Run v2 `services.getIamPolicy` (GET, `options.requestedPolicyVersion`
//! in the query) and `services.setIamPolicy` (POST) — who may invoke a 2nd
//! gen function is the IAM policy of its Cloud Run service.

use super::errors::{GcpError, GcpResult};
use super::policy::{self, Rules};
use super::request::Query;
use super::world::State;
use serde_json::Value;

const RULES: Rules = Rules {
    public_members: true,
    audit_configs: false,
    empty_policy: true,
};

/// The stored key of a service (its project by id), None when there is no
/// such service; an unknown project is refused for `permission`. Each API
/// says "not found" in its own words.
pub(super) fn existing_service(
    state: &State,
    project: &str,
    location: &str,
    service: &str,
    permission: &str,
) -> GcpResult<Option<String>> {
    let resource = format!("projects/{project}/locations/{location}/services/{service}");
    let p = state
        .project(project)
        .ok_or_else(|| GcpError::project_denied(permission, &resource))?;
    let key = format!("projects/{}/locations/{location}/services/{service}", p.id);
    Ok(state.policies.contains_key(&key).then_some(key))
}

fn service_key(state: &State, project: &str, location: &str, service: &str, permission: &str) -> GcpResult<String> {
    existing_service(state, project, location, service, permission)?.ok_or_else(|| {
        GcpError::not_found(format!(
            "Resource '{service}' of kind 'SERVICE' in region '{location}' in project '{project}' does not exist."
        ))
    })
}

/// GET v2/projects/{p}/locations/{l}/services/{s}:getIamPolicy
pub(crate) fn handle_get_policy(
    state: &mut State,
    query: &Query,
    project: &str,
    location: &str,
    service: &str,
) -> GcpResult<Value> {
    query.check(&["options.requestedPolicyVersion"])?;
    let key = service_key(state, project, location, service, "run.services.getIamPolicy")?;
    let requested = query.int32("options.requestedPolicyVersion")?;
    let policy = state
        .policies
        .get(&key)
        .ok_or_else(|| GcpError::not_found(format!("Resource '{key}' does not exist.")))?;
    policy::check_requested_version(requested, policy)?;
    let answer = policy.to_json();
    state.fire_hook(&key);
    Ok(answer)
}

/// POST v2/projects/{p}/locations/{l}/services/{s}:setIamPolicy
pub(crate) fn handle_set_policy(
    state: &mut State,
    query: &Query,
    project: &str,
    location: &str,
    service: &str,
    body: &[u8],
) -> GcpResult<Value> {
    query.check(&[])?;
    let key = service_key(state, project, location, service, "run.services.setIamPolicy")?;
    let exists = |email: &str| state.service_account_exists(email);
    let mut current = state
        .policies
        .get(&key)
        .cloned()
        .ok_or_else(|| GcpError::not_found(format!("Resource '{key}' does not exist.")))?;
    let written = policy::set(&mut current, body, &RULES, &exists)?;
    state.policies.insert(key, current);
    Ok(written.to_json())
}
