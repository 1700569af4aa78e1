//! IAM v1 `roles.get`, `projects.roles.get` and `organizations.roles.get`
//! (GET v1/{name}), answering a `google.iam.admin.v1.Role`.

use super::errors::{GcpError, GcpResult};
use super::request::Query;
use super::world::{SeededRole, State};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

pub(crate) fn to_json(role: &SeededRole) -> Value {
    let mut v = json!({
        "name": role.name,
        "title": role.title,
        "includedPermissions": role.permissions,
        "stage": "GA",
        "etag": STANDARD.encode(format!("{}:{}", role.name, role.permissions.len())),
    });
    if role.deleted {
        v["deleted"] = json!(true);
    }
    v
}

/// GET v1/roles/{r}, v1/projects/{p}/roles/{r}, v1/organizations/{o}/roles/{r}.
/// The stand-in knows only the roles a test seeds; any other is 404, as IAM
/// answers for a role that does not exist.
pub(crate) fn handle_get(state: &State, query: &Query, name: &str) -> GcpResult<Value> {
    query.check(&[])?;
    state
        .roles
        .get(name)
        .map(to_json)
        .ok_or_else(|| GcpError::not_found(format!("The role named {name} was not found.")))
}
