//! Microsoft.Authorization: role assignments at any scope of the
//! subscription, and the built-in role definitions.

use super::errors::{ArmError, ArmResult};
use super::ids::{eq_ci, is_guid, now, scope_contains};
use super::roles;
use super::server::{Reply, Req};
use super::world::{Assignment, State};
use serde_json::{Value, json};
use std::time::Instant;

const PRINCIPAL_TYPES: &[&str] = &["User", "Group", "ServicePrincipal", "ForeignGroup", "Device"];

/// `at` is the index of the `providers` segment; what precedes it is the scope.
pub(crate) fn route(state: &mut State, req: &Req, at: usize) -> ArmResult<Reply> {
    let scope = format!("/{}", req.segs[..at].join("/"));
    let rest: Vec<String> = req.segs[at + 2..].iter().map(|s| s.to_ascii_lowercase()).collect();
    let rest: Vec<&str> = rest.iter().map(String::as_str).collect();
    match (rest.as_slice(), req.method) {
        (["roleassignments"], "GET") => {
            state.check_scope(&scope)?;
            list_assignments(state, req, &scope)
        }
        (["roleassignments", _], "GET" | "PUT" | "DELETE") => {
            state.check_scope(&scope)?;
            let name = req.segs[at + 3];
            match req.method {
                "GET" => {
                    let a = find(state, &scope, name).ok_or_else(|| {
                        ArmError::new(
                            404,
                            "RoleAssignmentNotFound",
                            format!("The role assignment '{name}' is not found."),
                        )
                    })?;
                    Ok(Reply::ok(assignment_json(state, a)))
                }
                "PUT" => create(state, req, &scope, name),
                _ => {
                    let Some(i) = state
                        .assignments
                        .iter()
                        .position(|a| eq_ci(&a.name, name) && eq_ci(&a.scope, &scope))
                    else {
                        return Ok(Reply {
                            status: 204,
                            body: None,
                            headers: Vec::new(),
                        });
                    };
                    let gone = state.assignments.remove(i);
                    Ok(Reply::ok(assignment_json(state, &gone)))
                }
            }
        }
        (["roledefinitions"], "GET") => {
            if scope != "/" {
                state.check_scope(&scope)?;
            }
            list_definitions(state, req)
        }
        (["roledefinitions", _], "GET") => {
            if scope != "/" {
                state.check_scope(&scope)?;
            }
            let guid = req.segs[at + 3];
            let role = roles::by_guid(guid).ok_or_else(|| role_missing(guid))?;
            Ok(Reply::ok(roles::definition_json(&state.sub, role)))
        }
        (["roleassignments"] | ["roleassignments", _] | ["roledefinitions"] | ["roledefinitions", _], _) => {
            Err(req.not_allowed())
        }
        _ => Err(req.no_route()),
    }
}

fn role_missing(guid: &str) -> ArmError {
    ArmError::new(
        400,
        "RoleDefinitionDoesNotExist",
        format!("The specified role definition with ID '{guid}' does not exist."),
    )
}

fn find<'a>(state: &'a State, scope: &str, name: &str) -> Option<&'a Assignment> {
    state
        .assignments
        .iter()
        .find(|a| eq_ci(&a.name, name) && eq_ci(&a.scope, scope))
}

pub(crate) fn assignment_json(state: &State, a: &Assignment) -> Value {
    json!({
        "id": format!("{}/providers/Microsoft.Authorization/roleAssignments/{}", a.scope, a.name),
        "name": a.name,
        "type": "Microsoft.Authorization/roleAssignments",
        "properties": {
            "roleDefinitionId": roles::definition_id(&state.sub, &a.role_guid),
            "principalId": a.principal_id,
            "principalType": a.principal_type,
            "scope": a.scope,
            "condition": null,
            "conditionVersion": null,
            "createdOn": a.created_on,
            "updatedOn": a.created_on,
            "createdBy": null,
            "updatedBy": null,
            "delegatedManagedIdentityResourceId": null,
            "description": null
        }
    })
}

/// The value between the quotes of `prefix'...'suffix`, keywords matched
/// case-insensitively and spaces around them tolerated.
fn quoted_arg(filter: &str, prefix: &str, suffix: &str) -> Option<String> {
    let f = filter.trim();
    let squeezed: String = f.split_whitespace().collect::<Vec<_>>().join(" ");
    let lower = squeezed.to_ascii_lowercase();
    let rest = lower.strip_prefix(prefix)?;
    let start = squeezed.len() - rest.len();
    let inner = squeezed[start..]
        .strip_prefix('\'')?
        .strip_suffix(suffix)?
        .strip_suffix('\'')?;
    (!inner.contains('\'')).then(|| inner.to_string())
}

fn invalid_filter(filter: &str) -> ArmError {
    ArmError::new(
        400,
        "InvalidFilter",
        format!(
            "The filter '{filter}' is not supported. Supported filters: atScope(), principalId eq '{{id}}', assignedTo('{{id}}')."
        ),
    )
}

/// Like ARM: no filter lists assignments at, above and below the scope;
/// atScope() those at or above; a principal filter that principal's at,
/// above and below.
fn list_assignments(state: &State, req: &Req, scope: &str) -> ArmResult<Reply> {
    let related = |a: &Assignment| scope_contains(&a.scope, scope) || scope_contains(scope, &a.scope);
    let keep: Box<dyn Fn(&Assignment) -> bool> = match req.query.get("$filter").map(String::as_str) {
        None | Some("") => Box::new(related),
        Some(f) if f.trim().eq_ignore_ascii_case("atScope()") => Box::new(|a| scope_contains(&a.scope, scope)),
        Some(f) => {
            let principal = quoted_arg(f, "principalid eq ", "")
                .or_else(|| quoted_arg(f, "assignedto(", ")"))
                .ok_or_else(|| invalid_filter(f))?;
            if !is_guid(&principal) {
                return Err(invalid_filter(f));
            }
            Box::new(move |a| related(a) && eq_ci(&a.principal_id, &principal))
        }
    };
    let value: Vec<Value> = state
        .assignments
        .iter()
        .filter(|a| keep(a))
        .map(|a| assignment_json(state, a))
        .collect();
    Ok(Reply::ok(json!({"value": value})))
}

fn list_definitions(state: &State, req: &Req) -> ArmResult<Reply> {
    let name = match req.query.get("$filter").map(String::as_str) {
        None | Some("") => None,
        Some(f) if quoted_arg(f, "type eq ", "").is_some_and(|t| t == "BuiltInRole") => None,
        Some(f) => Some(quoted_arg(f, "rolename eq ", "").ok_or_else(|| {
            ArmError::new(
                400,
                "InvalidFilter",
                format!("The filter '{f}' is not supported. Supported: roleName eq '{{name}}', type eq 'BuiltInRole'."),
            )
        })?),
    };
    let value: Vec<Value> = roles::BUILTIN_ROLES
        .iter()
        .filter(|(n, _)| name.as_deref().is_none_or(|want| n.eq_ignore_ascii_case(want)))
        .map(|r| roles::definition_json(&state.sub, *r))
        .collect();
    Ok(Reply::ok(json!({"value": value})))
}

fn create(state: &mut State, req: &Req, scope: &str, name: &str) -> ArmResult<Reply> {
    if !is_guid(name) {
        return Err(ArmError::new(
            400,
            "InvalidRoleAssignmentId",
            format!("The role assignment ID '{name}' is not valid. The role assignment ID must be a GUID."),
        ));
    }
    let body = req.json()?;
    let Some(props) = body.get("properties").and_then(Value::as_object) else {
        return Err(ArmError::invalid_content("properties", "expected an object"));
    };
    let field = |n: &str| -> ArmResult<Option<&str>> {
        match props.get(n) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(v) => Err(ArmError::invalid_content(
                &format!("properties.{n}"),
                format!("expected a string, got {v}"),
            )),
        }
    };
    let role_id = field("roleDefinitionId")?
        .ok_or_else(|| ArmError::invalid_content("properties.roleDefinitionId", "required"))?;
    let principal_id =
        field("principalId")?.ok_or_else(|| ArmError::invalid_content("properties.principalId", "required"))?;
    let principal_type = field("principalType")?;
    let guid = roles::guid_of_definition_id(role_id).ok_or_else(|| role_missing(role_id))?;
    let (_, role_guid) = roles::by_guid(guid).ok_or_else(|| role_missing(guid))?;
    if let Some(t) = principal_type
        && !PRINCIPAL_TYPES.contains(&t)
    {
        return Err(ArmError::invalid_content(
            "properties.principalType",
            format!("'{t}' is not one of {}", PRINCIPAL_TYPES.join(", ")),
        ));
    }
    let known = state.principal(principal_id).filter(|p| p.visible_at <= Instant::now());
    let Some(principal) = known else {
        return Err(ArmError::new(
            400,
            "PrincipalNotFound",
            format!(
                "Principal {principal_id} does not exist in the directory {}. Check that you have the correct principal ID. If you are creating this principal and then immediately assigning a role, this error might be related to a replication delay.",
                state.tenant
            ),
        ));
    };
    let kind = principal_type.unwrap_or(principal.kind).to_string();
    let same = |a: &Assignment| {
        eq_ci(&a.principal_id, principal_id) && eq_ci(&a.role_guid, role_guid) && eq_ci(&a.scope, scope)
    };
    if let Some(existing) = state.assignments.iter().find(|a| eq_ci(&a.name, name)) {
        // Assignments are immutable: the same PUT again is fine, a changed one is not.
        return if same(existing) {
            Ok(Reply::new(201, assignment_json(state, existing)))
        } else {
            Err(ArmError::new(
                400,
                "RoleAssignmentUpdateNotPermitted",
                "Tenant ID, application ID, principal ID, and scope are not allowed to be updated.",
            ))
        };
    }
    if let Some(dup) = state.assignments.iter().find(|a| same(a)) {
        return Err(ArmError::new(
            409,
            "RoleAssignmentExists",
            format!(
                "The role assignment already exists. The ID of the existing role assignment is {}.",
                dup.name
            ),
        ));
    }
    let a = Assignment {
        name: name.to_ascii_lowercase(),
        scope: scope.to_string(),
        role_guid: role_guid.to_string(),
        principal_id: principal_id.to_string(),
        principal_type: kind,
        created_on: now(),
    };
    let out = assignment_json(state, &a);
    state.assignments.push(a);
    Ok(Reply::new(201, out))
}
