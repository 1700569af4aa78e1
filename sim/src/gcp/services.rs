//! Cloud Run v2 services as far as zerofn reads and writes them
//! (`run.projects.locations.services.get` and `.patch`, discovery document
//! `run.v2.json`): a service exists when its function (or
//! [`super::GcpWorld::run_service`]) seeded it, and carries its
//! `binaryAuthorization` (`useDefault` or `policy`, a oneof, plus
//! `breakglassJustification`) and its `ingress`: the function's
//! `ingressSettings` as its deploy applied it, or one set on the service
//! itself since (which the function's next deploy replaces).
//!
//! PATCH is served only with an `updateMask` whose paths stay inside
//! `binaryAuthorization` or name `ingress`: a mask-less PATCH replaces the whole service
//! (template included), which the stand-in does not model, so it answers
//! INVALID_ARGUMENT naming that instead of pretending. The update answers
//! with an operation that is already done, its response the service.

use super::errors::{GcpError, GcpResult};
use super::request::{Query, now_rfc3339};
use super::world::State;
use serde_json::{Map, Value, json};

const SERVICE_TYPE: &str = "type.googleapis.com/google.cloud.run.v2.Service";
/// The mask paths served, as camelCase JSON names.
const MASKABLE: [&str; 5] = [
    "ingress",
    "binaryAuthorization",
    "binaryAuthorization.useDefault",
    "binaryAuthorization.policy",
    "binaryAuthorization.breakglassJustification",
];

fn key(state: &State, project: &str, location: &str, service: &str, permission: &str) -> GcpResult<String> {
    super::run::existing_service(state, project, location, service, permission)?.ok_or_else(|| {
        GcpError::not_found(format!(
            "Resource 'projects/{project}/locations/{location}/services/{service}' was not found"
        ))
    })
}

/// The service as `services.get` answers it.
fn to_json(state: &State, key: &str) -> Value {
    let mut s = Map::new();
    s.insert("name".into(), json!(key));
    s.insert("uid".into(), json!(format!("{:x}", fnv(key))));
    let generation = state.service_generations.get(key).copied().unwrap_or(1);
    s.insert("generation".into(), json!(generation.to_string()));
    s.insert("ingress".into(), json!(ingress(state, key)));
    s.insert("launchStage".into(), json!("GA"));
    if let Some(b) = state.binary_authorization.get(key).filter(|b| !b.is_empty()) {
        s.insert("binaryAuthorization".into(), Value::Object(b.clone()));
    }
    s.insert("etag".into(), json!(format!("\"{generation}\"")));
    Value::Object(s)
}

/// `IngressTraffic` as `run.v2.json` lists it, in the order of its numbers.
const INGRESS: [&str; 5] = [
    "INGRESS_TRAFFIC_UNSPECIFIED",
    "INGRESS_TRAFFIC_ALL",
    "INGRESS_TRAFFIC_INTERNAL_ONLY",
    "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER",
    "INGRESS_TRAFFIC_NONE",
];

/// The service's ingress: set on the service itself, else what its
/// function's deploy applied, else Cloud Run's default (all traffic).
pub(crate) fn ingress(state: &State, key: &str) -> String {
    if let Some(i) = state.service_ingress.get(key) {
        return i.clone();
    }
    let of_function = state.functions.values().find_map(|f| {
        let config = f.value.get("serviceConfig")?;
        (config.get("service")?.as_str()? == key).then(|| config.get("ingressSettings")?.as_str())?
    });
    match of_function {
        Some("ALLOW_INTERNAL_ONLY") => "INGRESS_TRAFFIC_INTERNAL_ONLY",
        Some("ALLOW_INTERNAL_AND_GCLB") => "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER",
        _ => "INGRESS_TRAFFIC_ALL",
    }
    .to_string()
}

/// The `ingress` of a request body, None when it leaves it out.
fn requested_ingress(body: &Map<String, Value>) -> GcpResult<Option<String>> {
    match body.get("ingress") {
        None => Ok(None),
        Some(Value::String(i)) if INGRESS.contains(&i.as_str()) => Ok(Some(i.clone())),
        // Proto JSON allows an enum's number; the official clients send it.
        Some(Value::Number(n)) if n.as_u64().is_some_and(|n| n < INGRESS.len() as u64) => {
            Ok(n.as_u64().and_then(|n| INGRESS.get(n as usize)).map(|i| i.to_string()))
        }
        Some(other) => Err(GcpError::invalid(format!(
            "Invalid value at 'service.ingress' (type.googleapis.com/google.cloud.run.v2.IngressTraffic), {other}"
        ))),
    }
}

fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

/// GET v2/projects/{p}/locations/{l}/services/{s}
pub(crate) fn handle_get(
    state: &State,
    query: &Query,
    project: &str,
    location: &str,
    service: &str,
) -> GcpResult<Value> {
    query.check(&[])?;
    let key = key(state, project, location, service, "run.services.get")?;
    Ok(to_json(state, &key))
}

/// The `binaryAuthorization` of a request body, checked as the API reads
/// it: known fields only, `useDefault` and `policy` a oneof.
fn binary_authorization(body: &Map<String, Value>) -> GcpResult<Map<String, Value>> {
    let Some(b) = body.get("binaryAuthorization") else {
        return Ok(Map::new());
    };
    let Value::Object(b) = b else {
        return Err(GcpError::invalid(
            "Invalid JSON payload received. binaryAuthorization must be an object",
        ));
    };
    let mut out = Map::new();
    for (k, v) in b {
        match (k.as_str(), v) {
            ("useDefault" | "use_default", Value::Bool(true)) => {
                out.insert("useDefault".into(), json!(true));
            }
            ("useDefault" | "use_default", Value::Bool(false)) => {}
            ("policy" | "breakglassJustification" | "breakglass_justification", Value::String(s)) => {
                if !s.is_empty() {
                    let name = if k == "policy" {
                        "policy"
                    } else {
                        "breakglassJustification"
                    };
                    out.insert(name.into(), json!(s));
                }
            }
            _ => {
                return Err(GcpError::invalid(format!(
                    "Invalid JSON payload received. Unknown name or wrong type \"{k}\" at 'service.binary_authorization'"
                )));
            }
        }
    }
    if out.contains_key("useDefault") && out.contains_key("policy") {
        return Err(GcpError::invalid(
            "Invalid JSON payload received. Oneof field 'binauthz_method' is already set: useDefault and policy",
        ));
    }
    if let Some(policy) = out.get("policy").and_then(Value::as_str)
        && !(policy.starts_with("projects/") && policy.contains("/platforms/cloudrun/policies/"))
    {
        return Err(GcpError::invalid(format!(
            "binaryAuthorization.policy {policy:?} is not projects/PROJECT/platforms/cloudrun/policies/POLICY"
        )));
    }
    Ok(out)
}

/// PATCH v2/projects/{p}/locations/{l}/services/{s}?updateMask=...
pub(crate) fn handle_patch(
    state: &mut State,
    query: &Query,
    project: &str,
    location: &str,
    service: &str,
    body: &[u8],
) -> GcpResult<Value> {
    query.check(&["updateMask", "validateOnly", "allowMissing"])?;
    let key = key(state, project, location, service, "run.services.update")?;
    let Some(mask) = query.get("updateMask").filter(|m| !m.is_empty()) else {
        return Err(GcpError::invalid(
            "the GCP stand-in serves only masked service updates (updateMask ingress or within binaryAuthorization): without a mask the whole service, template included, is replaced",
        ));
    };
    let paths: Vec<&str> = mask.split(',').map(str::trim).collect();
    if let Some(p) = paths.iter().find(|p| !MASKABLE.contains(p)) {
        return Err(GcpError::invalid(format!(
            "Invalid field mask path \"{p}\": the GCP stand-in updates only ingress and binaryAuthorization"
        )));
    }
    let body: Value =
        serde_json::from_slice(body).map_err(|e| GcpError::invalid(format!("Invalid JSON payload received. {e}")))?;
    let Value::Object(body) = body else {
        return Err(GcpError::invalid("Invalid JSON payload received. Expected an object"));
    };
    if let Some(n) = body.get("name").and_then(Value::as_str).filter(|n| !n.is_empty())
        && !n.ends_with(&format!("/locations/{location}/services/{service}"))
    {
        return Err(GcpError::invalid(format!(
            "service.name {n:?} does not match the service in the URL"
        )));
    }
    let wanted = binary_authorization(&body)?;
    let wanted_ingress = requested_ingress(&body)?;
    if query.get("validateOnly") != Some("true") {
        if paths.contains(&"ingress") {
            // A masked field the body leaves out is cleared: Cloud Run's
            // default, all traffic.
            let ingress = wanted_ingress.unwrap_or_else(|| "INGRESS_TRAFFIC_ALL".into());
            state.service_ingress.insert(key.clone(), ingress);
        }
        let current = state.binary_authorization.entry(key.clone()).or_default();
        for path in paths.iter().filter(|p| p.starts_with("binaryAuthorization")) {
            match path.strip_prefix("binaryAuthorization.") {
                None => *current = wanted.clone(),
                Some(field) => match wanted.get(field) {
                    Some(v) => {
                        // Setting one member of the oneof clears the other.
                        if field == "useDefault" {
                            current.remove("policy");
                        } else if field == "policy" {
                            current.remove("useDefault");
                        }
                        current.insert(field.to_string(), v.clone());
                    }
                    None => {
                        current.remove(field);
                    }
                },
            }
        }
        *state.service_generations.entry(key.clone()).or_insert(1) += 1;
    }
    let mut response = match to_json(state, &key) {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    response.insert("@type".into(), json!(SERVICE_TYPE));
    let mut metadata = response.clone();
    metadata.insert("updateTime".into(), json!(now_rfc3339()));
    Ok(json!({
        "name": format!("projects/{project}/locations/{location}/operations/{:016x}", fnv(&format!("{key}{}", now_rfc3339()))),
        "metadata": metadata,
        "done": true,
        "response": response,
    }))
}
