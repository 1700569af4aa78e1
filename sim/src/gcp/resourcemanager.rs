//! Cloud Resource Manager v3: `projects.get` and the project IAM policy
//! (`projects.getIamPolicy` and `projects.setIamPolicy`, both POST).

use super::errors::{GcpError, GcpResult};
use super::policy::{self, Rules};
use super::request::Query;
use super::world::State;
use serde_json::{Value, json};

/// Projects refuse public principals, keep audit configs, and refuse a
/// policy that would leave nobody with any role.
const RULES: Rules = Rules {
    public_members: false,
    audit_configs: true,
    empty_policy: false,
};

fn project_key(state: &State, project: &str, permission: &str) -> GcpResult<String> {
    state
        .project(project)
        .map(|p| format!("projects/{}", p.id))
        .ok_or_else(|| GcpError::project_denied(permission, &format!("projects/{project}")))
}

/// GET v3/projects/{p}: the project, named by its number.
pub(crate) fn handle_get_project(state: &State, query: &Query, project: &str) -> GcpResult<Value> {
    query.check(&[])?;
    let p = state
        .project(project)
        .ok_or_else(|| GcpError::project_denied("resourcemanager.projects.get", &format!("projects/{project}")))?;
    Ok(json!({
        "name": format!("projects/{}", p.number),
        "projectId": p.id,
        "state": "ACTIVE",
        "displayName": p.id,
        "createTime": p.create_time,
        "updateTime": p.create_time,
        "etag": format!("W/\"{:x}\"", p.number),
    }))
}

/// POST v3/projects/{p}:getIamPolicy
pub(crate) fn handle_get_policy(state: &mut State, query: &Query, project: &str, body: &[u8]) -> GcpResult<Value> {
    query.check(&[])?;
    let key = project_key(state, project, "resourcemanager.projects.getIamPolicy")?;
    let requested = policy::parse_get_request(body)?;
    let policy = state
        .policies
        .get(&key)
        .ok_or_else(|| GcpError::project_denied("resourcemanager.projects.getIamPolicy", &key))?;
    policy::check_requested_version(requested, policy)?;
    let answer = policy.to_json();
    state.fire_hook(&key);
    Ok(answer)
}

/// POST v3/projects/{p}:setIamPolicy
pub(crate) fn handle_set_policy(state: &mut State, query: &Query, project: &str, body: &[u8]) -> GcpResult<Value> {
    query.check(&[])?;
    let key = project_key(state, project, "resourcemanager.projects.setIamPolicy")?;
    let exists = |email: &str| state.service_account_exists(email);
    let mut current = state
        .policies
        .get(&key)
        .cloned()
        .ok_or_else(|| GcpError::project_denied("resourcemanager.projects.setIamPolicy", &key))?;
    let written = policy::set(&mut current, body, &RULES, &exists)?;
    state.policies.insert(key, current);
    Ok(written.to_json())
}
