//! Cloud Functions v2: `functions.get`, `functions.list` and
//! `functions.patch`, with the defaults the service fills in and the checks
//! it makes on what a function may be.

use super::errors::{Code, GcpError, GcpResult};
use super::fieldmask::{self, Mask};
use super::lro;
use super::policy::parse_json;
use super::request::{Query, is_resource_id, list_page, now_rfc3339, page_offset};
use super::schema::{self, FUNCTION, OutputOnly};
use super::world::{FunctionSeed, Project, State};
use serde_json::{Map, Value, json};

const COMPUTE_SUFFIX: &str = "-compute@developer.gserviceaccount.com";

fn text<'a>(m: &'a Map<String, Value>, path: &[&str]) -> Option<&'a str> {
    let (last, parents) = path.split_last()?;
    let mut here = m;
    for p in parents {
        here = here.get(*p)?.as_object()?;
    }
    here.get(*last)?.as_str()
}

fn sub<'a>(m: &'a mut Map<String, Value>, key: &str) -> &'a mut Map<String, Value> {
    let entry = m.entry(key.to_string()).or_insert_with(|| json!({}));
    if !entry.is_object() {
        *entry = json!({});
    }
    match entry {
        Value::Object(o) => o,
        // Just made an object above.
        _ => unreachable!(),
    }
}

fn default(m: &mut Map<String, Value>, key: &str, value: Value) {
    m.entry(key.to_string()).or_insert(value);
}

fn random_suffix(n: usize) -> String {
    (0..n).map(|_| char::from(b'a' + fastrand::u8(0..26))).collect()
}

/// A seeded function: the seed's fields read like a request body, output-only
/// fields (the service's id) taken from it, and the deploy-time defaults.
pub(crate) fn seed(state: &State, seed: &FunctionSeed) -> GcpResult<Map<String, Value>> {
    let project = state
        .project(&seed.project)
        .ok_or_else(|| GcpError::invalid(format!("function {}: unknown project {}", seed.name, seed.project)))?
        .clone();
    check_id(&seed.name)?;
    check_location(&seed.location)?;
    let mut f = schema::normalize(
        &FUNCTION,
        &Value::Object(seed.json.clone()),
        "function",
        OutputOnly::Keep,
    )?;
    let name = format!(
        "projects/{}/locations/{}/functions/{}",
        project.id, seed.location, seed.name
    );
    f.insert("name".into(), json!(name));
    // The seed may name the service by id or by full resource name.
    let service_id = text(&f, &["serviceConfig", "service"])
        .and_then(|s| s.rsplit('/').next())
        .unwrap_or(&seed.name)
        .to_string();
    let now = now_rfc3339();
    default(&mut f, "state", json!("ACTIVE"));
    default(&mut f, "createTime", json!(now));
    default(&mut f, "updateTime", json!(now));
    default(
        &mut f,
        "url",
        json!(format!(
            "https://{}-{}.cloudfunctions.net/{}",
            seed.location, project.id, seed.name
        )),
    );
    let build = sub(&mut f, "buildConfig");
    default(build, "runtime", json!("nodejs22"));
    default(build, "entryPoint", json!("handler"));
    default(
        build,
        "build",
        json!(format!(
            "projects/{}/locations/{}/builds/{}-{}",
            project.number,
            seed.location,
            random_suffix(8),
            random_suffix(4)
        )),
    );
    let service = sub(&mut f, "serviceConfig");
    service.insert(
        "service".into(),
        json!(format!(
            "projects/{}/locations/{}/services/{service_id}",
            project.id, seed.location
        )),
    );
    default(
        service,
        "uri",
        json!(format!(
            "https://{service_id}-{}.{}.run.app",
            project.number, seed.location
        )),
    );
    default(
        service,
        "revision",
        json!(format!("{service_id}-00001-{}", random_suffix(3))),
    );
    if let Some(Value::Object(t)) = f.get_mut("eventTrigger") {
        default(
            t,
            "trigger",
            json!(format!(
                "projects/{}/locations/{}/triggers/{}-{}",
                project.id,
                seed.location,
                seed.name,
                random_suffix(6)
            )),
        );
    }
    fill_defaults(&mut f, &project, &seed.location);
    validate(state, &f, None, &project, &seed.location)?;
    Ok(f)
}

/// Function ids: lowercase letters, digits and hyphens, 1–63 characters,
/// starting with a letter (Cloud Run service naming, which 2nd gen inherits).
fn check_id(id: &str) -> GcpResult<()> {
    if is_resource_id(id, 1..=63) {
        Ok(())
    } else {
        Err(GcpError::invalid(format!("Invalid function id {id:?}.")))
    }
}

/// Regions look like `europe-west1` or `us-central1`.
fn check_location(location: &str) -> GcpResult<()> {
    let ok = location.split_once('-').is_some_and(|(area, rest)| {
        !area.is_empty()
            && area.chars().all(|c| c.is_ascii_lowercase())
            && rest.ends_with(|c: char| c.is_ascii_digit())
            && rest.starts_with(|c: char| c.is_ascii_lowercase())
            && rest.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
    });
    if ok {
        Ok(())
    } else {
        Err(GcpError::invalid(format!("Invalid location {location:?}.")))
    }
}

/// What the service fills in when a field is left out: the Compute Engine
/// default service account as runtime, build and trigger identity, open
/// ingress, the `gcf-artifacts` repository, and so on.
fn fill_defaults(f: &mut Map<String, Value>, project: &Project, location: &str) {
    let compute = format!("{}{COMPUTE_SUFFIX}", project.number);
    default(f, "environment", json!("GEN_2"));
    let build = sub(f, "buildConfig");
    default(build, "dockerRegistry", json!("ARTIFACT_REGISTRY"));
    default(
        build,
        "dockerRepository",
        json!(format!(
            "projects/{}/locations/{location}/repositories/gcf-artifacts",
            project.id
        )),
    );
    default(
        build,
        "serviceAccount",
        json!(format!("projects/{}/serviceAccounts/{compute}", project.id)),
    );
    let service = sub(f, "serviceConfig");
    default(service, "timeoutSeconds", json!(60));
    default(service, "availableMemory", json!("256M"));
    default(service, "availableCpu", json!("0.1666"));
    default(service, "maxInstanceCount", json!(100));
    default(service, "ingressSettings", json!("ALLOW_ALL"));
    default(service, "serviceAccountEmail", json!(compute));
    default(service, "allTrafficOnLatestRevision", json!(true));
    default(service, "maxInstanceRequestConcurrency", json!(1));
    default(service, "securityLevel", json!("SECURE_ALWAYS"));
    if service.contains_key("vpcConnector") {
        default(service, "vpcConnectorEgressSettings", json!("PRIVATE_RANGES_ONLY"));
    }
    if let Some(Value::Object(t)) = f.get_mut("eventTrigger") {
        default(t, "triggerRegion", json!(location));
        default(t, "serviceAccountEmail", json!(compute));
        default(t, "retryPolicy", json!("RETRY_POLICY_DO_NOT_RETRY"));
    }
}

/// GCP label rules: at most 64; keys 1–63 characters starting with a
/// lowercase letter, values 0–63; both only lowercase letters, digits, `_`
/// and `-` (international lowercase letters included).
pub(crate) fn check_labels(labels: &Map<String, Value>) -> GcpResult<()> {
    if labels.len() > 64 {
        return Err(GcpError::invalid(format!(
            "Invalid labels: {} labels given, at most 64 are allowed.",
            labels.len()
        )));
    }
    let allowed = |c: char| c.is_lowercase() || c.is_ascii_digit() || c == '_' || c == '-';
    for (k, v) in labels {
        let v = v.as_str().unwrap_or_default();
        let key_ok =
            (1..=63).contains(&k.chars().count()) && k.starts_with(char::is_lowercase) && k.chars().all(allowed);
        if !key_ok {
            return Err(GcpError::invalid(format!(
                "Invalid label key {k:?}: keys must be 1-63 characters, start with a lowercase letter and contain \
                 only lowercase letters, digits, underscores and dashes."
            )));
        }
        if v.chars().count() > 63 || !v.chars().all(allowed) {
            return Err(GcpError::invalid(format!(
                "Invalid label value {v:?} for key {k:?}: values must be at most 63 characters and contain only \
                 lowercase letters, digits, underscores and dashes."
            )));
        }
    }
    Ok(())
}

fn matches_pattern(value: &str, pattern: &[Option<&str>]) -> Option<Vec<String>> {
    let parts: Vec<&str> = value.split('/').collect();
    if parts.len() != pattern.len() {
        return None;
    }
    let mut vars = Vec::new();
    for (part, pat) in parts.iter().zip(pattern) {
        match pat {
            Some(lit) if part != lit => return None,
            Some(_) => {}
            None if part.is_empty() => return None,
            None => vars.push(part.to_string()),
        }
    }
    Some(vars)
}

fn check_email(state: &State, field: &str, email: &str) -> GcpResult<()> {
    let well_formed = email
        .split_once('@')
        .is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.'));
    if !well_formed {
        return Err(GcpError::invalid(format!(
            "Invalid value for {field}: {email:?} is not an email address."
        )));
    }
    if state.service_account_exists(email) == Some(false) {
        return Err(GcpError::invalid(format!(
            "Invalid value for {field}: service account {email} does not exist."
        )));
    }
    Ok(())
}

/// What the service refuses about a function, on deploy and on update.
fn validate(
    state: &State,
    f: &Map<String, Value>,
    old: Option<&Map<String, Value>>,
    project: &Project,
    location: &str,
) -> GcpResult<()> {
    if let Some(Value::Object(labels)) = f.get("labels") {
        check_labels(labels)?;
    }
    let same_project = |p: &str| p == project.id || p == project.number.to_string();
    if let Some(email) = text(f, &["serviceConfig", "serviceAccountEmail"]) {
        check_email(state, "service_config.service_account_email", email)?;
    }
    if let Some(email) = text(f, &["eventTrigger", "serviceAccountEmail"]) {
        check_email(state, "event_trigger.service_account_email", email)?;
    }
    if let Some(sa) = text(f, &["buildConfig", "serviceAccount"]) {
        let vars = matches_pattern(sa, &[Some("projects"), None, Some("serviceAccounts"), None]).ok_or_else(|| {
            GcpError::invalid(format!(
                "Invalid value for build_config.service_account: {sa:?} must match projects/*/serviceAccounts/*."
            ))
        })?;
        check_email(state, "build_config.service_account", &vars[1])?;
    }
    if let Some(c) = text(f, &["serviceConfig", "vpcConnector"]) {
        matches_pattern(
            c,
            &[
                Some("projects"),
                None,
                Some("locations"),
                None,
                Some("connectors"),
                None,
            ],
        )
        .ok_or_else(|| {
            GcpError::invalid(format!(
                "Invalid value for service_config.vpc_connector: {c:?} must match projects/*/locations/*/connectors/*."
            ))
        })?;
    } else if text(f, &["serviceConfig", "vpcConnectorEgressSettings"]).is_some() {
        return Err(GcpError::invalid(
            "service_config.vpc_connector_egress_settings can only be set together with service_config.vpc_connector.",
        ));
    }
    if let Some(r) = text(f, &["buildConfig", "dockerRepository"]) {
        let vars = matches_pattern(
            r,
            &[
                Some("projects"),
                None,
                Some("locations"),
                None,
                Some("repositories"),
                None,
            ],
        )
        .ok_or_else(|| {
            GcpError::invalid(format!(
                "Invalid value for build_config.docker_repository: {r:?} must match \
                     projects/*/locations/*/repositories/*."
            ))
        })?;
        if !same_project(&vars[0]) || vars[1] != location {
            return Err(GcpError::invalid(format!(
                "Invalid value for build_config.docker_repository: {r:?}: cross-project and cross-location \
                 repositories are not supported."
            )));
        }
    }
    if let Some(k) = text(f, &["kmsKeyName"]) {
        let pattern = [
            Some("projects"),
            None,
            Some("locations"),
            None,
            Some("keyRings"),
            None,
            Some("cryptoKeys"),
            None,
        ];
        matches_pattern(k, &pattern).ok_or_else(|| {
            GcpError::invalid(format!(
                "Invalid value for kms_key_name: {k:?} must match projects/*/locations/*/keyRings/*/cryptoKeys/*."
            ))
        })?;
    }
    if let Some(Value::Object(sc)) = f.get("serviceConfig") {
        let int = |k: &str| sc.get(k).and_then(Value::as_i64);
        if let Some(t) = int("timeoutSeconds")
            && !(1..=3600).contains(&t)
        {
            return Err(GcpError::invalid(format!(
                "Invalid value for service_config.timeout_seconds: {t}; it must be between 1 and 3600."
            )));
        }
        for k in ["maxInstanceCount", "minInstanceCount", "maxInstanceRequestConcurrency"] {
            if int(k).is_some_and(|n| n < 0) {
                return Err(GcpError::invalid(format!(
                    "Invalid value for service_config.{}: negative.",
                    schema::snake(k)
                )));
            }
        }
        if let (Some(min), Some(max)) = (int("minInstanceCount"), int("maxInstanceCount"))
            && min > max
        {
            return Err(GcpError::invalid(format!(
                "service_config.min_instance_count ({min}) exceeds service_config.max_instance_count ({max})."
            )));
        }
    }
    if let Some(Value::Object(t)) = f.get("eventTrigger") {
        let event_type = t.get("eventType").and_then(Value::as_str).unwrap_or_default();
        if event_type.is_empty() {
            return Err(GcpError::invalid("event_trigger.event_type is required."));
        }
        match t.get("pubsubTopic").and_then(Value::as_str) {
            Some(topic) => {
                matches_pattern(topic, &[Some("projects"), None, Some("topics"), None]).ok_or_else(|| {
                    GcpError::invalid(format!(
                        "Invalid value for event_trigger.pubsub_topic: {topic:?} must match projects/*/topics/*."
                    ))
                })?;
            }
            None if event_type == "google.cloud.pubsub.topic.v1.messagePublished" => {
                return Err(GcpError::invalid(
                    "event_trigger.pubsub_topic is required for google.cloud.pubsub.topic.v1.messagePublished.",
                ));
            }
            None => {}
        }
    }
    if let Some(old) = old {
        if f.get("environment") != old.get("environment") {
            return Err(GcpError::invalid(
                "environment cannot be changed: a 1st gen function cannot become 2nd gen or back.",
            ));
        }
        if f.contains_key("eventTrigger") != old.contains_key("eventTrigger") {
            return Err(GcpError::invalid(
                "The trigger type of a function cannot be changed: an HTTP function cannot gain an event trigger \
                 and an event-triggered function cannot lose it.",
            ));
        }
    }
    Ok(())
}

/// The project of a request, or the PERMISSION_DENIED Google answers for a
/// project that does not exist.
fn require_project(state: &State, project: &str, permission: &str, resource: &str) -> GcpResult<Project> {
    state
        .project(project)
        .cloned()
        .ok_or_else(|| GcpError::project_denied(permission, resource))
}

fn function_json(state: &State, name: &str) -> Option<Value> {
    let entry = state.functions.get(name)?;
    let mut v = entry.value.clone();
    if entry.pending.is_some() {
        v.insert("state".into(), json!("DEPLOYING"));
    }
    Some(Value::Object(v))
}

/// GET v2/projects/{p}/locations/{l}/functions/{f}
pub(crate) fn handle_get(state: &State, query: &Query, project: &str, location: &str, id: &str) -> GcpResult<Value> {
    query.check(&["revision"])?;
    if query.get("revision").is_some() {
        return Err(GcpError::unimplemented("GetFunction for a given revision"));
    }
    let resource = format!("projects/{project}/locations/{location}/functions/{id}");
    let p = require_project(state, project, "cloudfunctions.functions.get", &resource)?;
    let name = format!("projects/{}/locations/{location}/functions/{id}", p.id);
    function_json(state, &name).ok_or_else(|| GcpError::not_found(format!("Resource '{resource}' was not found")))
}

/// GET v2/projects/{p}/locations/{l}/functions, `-` for every location.
pub(crate) fn handle_list(state: &State, query: &Query, project: &str, location: &str) -> GcpResult<Value> {
    query.check(&["pageSize", "pageToken", "filter", "orderBy"])?;
    if query.get("filter").is_some() {
        return Err(GcpError::unimplemented("ListFunctions filter"));
    }
    if query.get("orderBy").is_some() {
        return Err(GcpError::unimplemented("ListFunctions orderBy"));
    }
    let parent = format!("projects/{project}/locations/{location}");
    let p = require_project(state, project, "cloudfunctions.functions.list", &parent)?;
    // The documented maximum (1,000) is also the default.
    let size = query.page_size(1000, 1000)?;
    let scope = format!("functions:{}/{location}", p.id);
    let offset = page_offset(query.get("pageToken"), &scope)?;
    let prefix = if location == "-" {
        format!("projects/{}/locations/", p.id)
    } else {
        format!("projects/{}/locations/{location}/functions/", p.id)
    };
    let all: Vec<Value> = state
        .functions
        .keys()
        .filter(|k| k.starts_with(&prefix))
        .filter_map(|k| function_json(state, k))
        .collect();
    Ok(list_page("functions", &all, offset, size, &scope))
}

/// `{service}-00007-xyz` → `{service}-00008-abc`: every update deploys a revision.
fn next_revision(current: Option<&str>, service_id: &str) -> String {
    let n = current
        .and_then(|r| r.strip_prefix(service_id))
        .and_then(|r| r.strip_prefix('-'))
        .and_then(|r| r.split('-').next())
        .and_then(|n| n.parse::<u32>().ok())
        .unwrap_or(0);
    format!("{service_id}-{:05}-{}", n + 1, random_suffix(3))
}

/// PATCH v2/projects/{p}/locations/{l}/functions/{f}?updateMask=...
///
/// With a mask only the masked fields change; without one (or with `*`) the
/// request replaces every field a caller may set, as the API documents ("If
/// no field mask is provided, all fields will be updated"). Either way
/// output-only fields stay the server's and left-out fields fall back to the
/// service defaults (so clearing the runtime service account means running
/// as the Compute Engine default one).
pub(crate) fn handle_patch(
    state: &mut State,
    query: &Query,
    project: &str,
    location: &str,
    id: &str,
    body: &[u8],
) -> GcpResult<Value> {
    query.check(&["updateMask"])?;
    let resource = format!("projects/{project}/locations/{location}/functions/{id}");
    let p = require_project(state, project, "cloudfunctions.functions.update", &resource)?;
    let name = format!("projects/{}/locations/{location}/functions/{id}", p.id);
    let mask = query
        .get("updateMask")
        .map(|m| fieldmask::parse(&FUNCTION, m, &["name"]))
        .transpose()?;
    let request = schema::normalize(&FUNCTION, &parse_json(body)?, "function", OutputOnly::Drop)?;
    if let Some(n) = request.get("name").and_then(Value::as_str) {
        let same = name_matches(n, &p, location, id);
        if !same {
            return Err(GcpError::invalid(format!(
                "function.name {n:?} does not match the function in the URL, {resource}."
            )));
        }
    }
    let entry = state
        .functions
        .get(&name)
        .ok_or_else(|| GcpError::not_found(format!("Resource '{resource}' was not found")))?;
    if let Some(op) = &entry.pending {
        return Err(GcpError::new(
            Code::Aborted,
            format!("An operation on function {name} is already in progress ({op}). Please try again later."),
        ));
    }
    let old = entry.value.clone();
    let mut new = match &mask {
        Some(Mask::Paths(paths)) => {
            let mut n = old.clone();
            fieldmask::apply(&mut n, &request, paths);
            n
        }
        None | Some(Mask::All) => request.clone(),
    };
    new.insert("name".into(), json!(name));
    schema::restore_output_only(&FUNCTION, &mut new, &old);
    // Left out of an update, the runtime and entry point stay as deployed.
    for key in ["runtime", "entryPoint"] {
        if text(&new, &["buildConfig", key]).is_none()
            && let Some(v) = text(&old, &["buildConfig", key])
        {
            sub(&mut new, "buildConfig").insert(key.into(), json!(v));
        }
    }
    if !new.contains_key("environment")
        && let Some(env) = old.get("environment")
    {
        new.insert("environment".into(), env.clone());
    }
    fill_defaults(&mut new, &p, location);
    validate(state, &new, Some(&old), &p, location)?;
    let service_id = text(&new, &["serviceConfig", "service"])
        .and_then(|s| s.rsplit('/').next())
        .unwrap_or(id)
        .to_string();
    let revision = next_revision(text(&new, &["serviceConfig", "revision"]), &service_id);
    sub(&mut new, "serviceConfig").insert("revision".into(), json!(revision));
    let op = lro::start_update(state, &p.id, location, &name, &request, new);
    let op_name = op.get("name").and_then(Value::as_str).unwrap_or_default().to_string();
    if let Some(entry) = state.functions.get_mut(&name) {
        entry.pending = Some(op_name);
    }
    Ok(op)
}

/// Whether a body's `name` designates the function of the URL (by project id
/// or number).
fn name_matches(n: &str, p: &Project, location: &str, id: &str) -> bool {
    matches_pattern(
        n,
        &[Some("projects"), None, Some("locations"), None, Some("functions"), None],
    )
    .is_some_and(|v| (v[0] == p.id || v[0] == p.number.to_string()) && v[1] == location && v[2] == id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_follow_gcp_rules() {
        let labels = |v: Value| match v {
            Value::Object(m) => m,
            _ => Map::new(),
        };
        assert!(check_labels(&labels(json!({"team": "core", "env_1": "", "ünïcode": "wert-1"}))).is_ok());
        for bad in [
            json!({"Team": "core"}),
            json!({"team": "Core"}),
            json!({"1team": "x"}),
            json!({"": "x"}),
            json!({"team": "a.b"}),
            json!({"k": "v".repeat(64)}),
            json!({"k".repeat(64): "v"}),
        ] {
            assert!(check_labels(&labels(bad.clone())).is_err(), "{bad}");
        }
        let many: Map<String, Value> = (0..65).map(|i| (format!("k{i}"), json!("v"))).collect();
        assert!(check_labels(&many).is_err());
    }

    #[test]
    fn revisions_count_up() {
        assert!(next_revision(Some("svc-00007-abc"), "svc").starts_with("svc-00008-"));
        assert!(next_revision(None, "svc").starts_with("svc-00001-"));
    }
}
