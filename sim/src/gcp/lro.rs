//! Cloud Functions long-running operations (`google.longrunning.Operation`):
//! an update answers with an operation that is not done; polling it with
//! `GET v2/{name}` completes it after the configured number of polls, and
//! only then does the function change.

use super::errors::{GcpError, GcpResult};
use super::request::{Query, now_rfc3339};
use super::world::{Operation, State};
use serde_json::{Map, Value, json};
use std::time::{SystemTime, UNIX_EPOCH};

pub(crate) const METADATA_TYPE: &str = "type.googleapis.com/google.cloud.functions.v2.OperationMetadata";
pub(crate) const FUNCTION_TYPE: &str = "type.googleapis.com/google.cloud.functions.v2.Function";

fn hex(n: usize) -> String {
    (0..n)
        .map(|_| char::from(b"0123456789abcdef"[fastrand::usize(0..16)]))
        .collect()
}

/// Starts an UpdateFunction operation that will leave `function` as `result`.
pub(crate) fn start_update(
    state: &mut State,
    project: &str,
    location: &str,
    function: &str,
    request: &Map<String, Value>,
    result: Map<String, Value>,
) -> Value {
    let millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or_default();
    let name = format!(
        "projects/{project}/locations/{location}/operations/operation-{millis}-{}-{}-{}",
        hex(13),
        hex(8),
        hex(8)
    );
    let mut request_resource = request.clone();
    request_resource.insert("@type".into(), json!(FUNCTION_TYPE));
    let metadata = json!({
        "@type": METADATA_TYPE,
        "createTime": now_rfc3339(),
        "target": function,
        "verb": "update",
        "apiVersion": "v2",
        "requestResource": request_resource,
        "stages": [
            {"name": "BUILD", "state": "NOT_STARTED"},
            {"name": "SERVICE", "state": "NOT_STARTED"},
        ],
        "operationType": "UPDATE_FUNCTION",
    });
    let mut op = Map::new();
    op.insert("name".into(), json!(name));
    op.insert("metadata".into(), metadata);
    op.insert("done".into(), json!(false));
    let answer = Value::Object(op.clone());
    state.operations.insert(
        name,
        Operation {
            json: op,
            function: function.to_string(),
            result,
            polls: 0,
        },
    );
    answer
}

/// GET v2/projects/{p}/locations/{l}/operations/{id}
pub(crate) fn handle_get(
    state: &mut State,
    query: &Query,
    project: &str,
    location: &str,
    id: &str,
) -> GcpResult<Value> {
    query.check(&[])?;
    let resource = format!("projects/{project}/locations/{location}/operations/{id}");
    let p = state
        .project(project)
        .ok_or_else(|| GcpError::project_denied("cloudfunctions.operations.get", &resource))?;
    let name = format!("projects/{}/locations/{location}/operations/{id}", p.id);
    let polls_needed = state.operation_polls;
    let op = state
        .operations
        .get_mut(&name)
        .ok_or_else(|| GcpError::not_found(format!("Operation {resource} not found.")))?;
    if op.json.get("done") == Some(&json!(true)) {
        return Ok(Value::Object(op.json.clone()));
    }
    op.polls += 1;
    if op.polls < polls_needed {
        if let Some(stages) = op.json.get_mut("metadata").and_then(|m| m.get_mut("stages")) {
            *stages = json!([
                {"name": "BUILD", "state": "COMPLETE"},
                {"name": "SERVICE", "state": "IN_PROGRESS"},
            ]);
        }
        return Ok(Value::Object(op.json.clone()));
    }
    let mut function = std::mem::take(&mut op.result);
    let now = now_rfc3339();
    function.insert("state".into(), json!("ACTIVE"));
    function.insert("updateTime".into(), json!(now));
    let mut response = function.clone();
    response.insert("@type".into(), json!(FUNCTION_TYPE));
    op.json.insert("done".into(), json!(true));
    op.json.insert("response".into(), Value::Object(response));
    if let Some(Value::Object(m)) = op.json.get_mut("metadata") {
        m.insert("endTime".into(), json!(now));
        m.insert(
            "stages".into(),
            json!([
                {"name": "BUILD", "state": "COMPLETE"},
                {"name": "SERVICE", "state": "COMPLETE"},
            ]),
        );
    }
    let answer = Value::Object(op.json.clone());
    let target = op.function.clone();
    // The deploy applies the function's settings to its Cloud Run service
    // again: an ingress set on the service alone gives way.
    if let Some(service) = function
        .get("serviceConfig")
        .and_then(|c| c.get("service"))
        .and_then(Value::as_str)
    {
        state.service_ingress.remove(service);
    }
    if let Some(entry) = state.functions.get_mut(&target) {
        entry.value = function;
        entry.pending = None;
    }
    Ok(answer)
}
