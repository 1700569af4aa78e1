//! The `google.cloud.functions.v2.Function` message as the API defines it,
//! field by field, and its proto3 JSON reading: unknown names refused, enums
//! as names or numbers, int64 as strings, a oneof set at most once, and
//! default values left out the way Google's JSON answers leave them out.
//!
//! Field names, enum spellings and output-only markers follow
//! cloudfunctions.v2 (discovery revision 20230420) plus the fields the
//! current API added since (`url`, `createTime`, `satisfiesPzs`,
//! `buildConfig.serviceAccount`, runtime update policies,
//! `serviceConfig.binaryAuthorizationPolicy`), which the 1.15 client knows.

use super::errors::{GcpError, GcpResult};
use super::request::is_rfc3339;
use serde_json::{Map, Value};

#[derive(Clone, Copy)]
pub(crate) enum Kind {
    Str,
    Int32,
    Int64,
    Bool,
    Timestamp,
    Enum(&'static EnumType),
    StrMap,
    Msg(&'static Msg),
    Msgs(&'static Msg),
    Strs,
}

pub(crate) struct EnumType {
    pub name: &'static str,
    /// Index is the enum number; index 0 is the `*_UNSPECIFIED` default.
    pub values: &'static [&'static str],
}

pub(crate) struct Field {
    pub json: &'static str,
    pub kind: Kind,
    pub output_only: bool,
    pub oneof: Option<&'static str>,
}

pub(crate) struct Msg {
    pub name: &'static str,
    pub fields: &'static [Field],
}

impl Msg {
    pub fn field(&self, name: &str) -> Option<&'static Field> {
        self.fields.iter().find(|f| f.json == name || snake(f.json) == name)
    }
}

pub(crate) const fn f(json: &'static str, kind: Kind) -> Field {
    Field {
        json,
        kind,
        output_only: false,
        oneof: None,
    }
}

pub(crate) const fn out(json: &'static str, kind: Kind) -> Field {
    Field {
        json,
        kind,
        output_only: true,
        oneof: None,
    }
}

pub(crate) const fn one(json: &'static str, kind: Kind, group: &'static str) -> Field {
    Field {
        json,
        kind,
        output_only: false,
        oneof: Some(group),
    }
}

use Kind::{Bool, Int32, Int64, Str, StrMap, Timestamp};

pub(crate) static STATE: EnumType = EnumType {
    name: "google.cloud.functions.v2.Function.State",
    values: &[
        "STATE_UNSPECIFIED",
        "ACTIVE",
        "FAILED",
        "DEPLOYING",
        "DELETING",
        "UNKNOWN",
    ],
};
pub(crate) static ENVIRONMENT: EnumType = EnumType {
    name: "google.cloud.functions.v2.Environment",
    values: &["ENVIRONMENT_UNSPECIFIED", "GEN_1", "GEN_2"],
};
static SEVERITY: EnumType = EnumType {
    name: "google.cloud.functions.v2.StateMessage.Severity",
    values: &["SEVERITY_UNSPECIFIED", "ERROR", "WARNING", "INFO"],
};
static DOCKER_REGISTRY: EnumType = EnumType {
    name: "google.cloud.functions.v2.BuildConfig.DockerRegistry",
    values: &["DOCKER_REGISTRY_UNSPECIFIED", "CONTAINER_REGISTRY", "ARTIFACT_REGISTRY"],
};
pub(crate) static EGRESS: EnumType = EnumType {
    name: "google.cloud.functions.v2.ServiceConfig.VpcConnectorEgressSettings",
    values: &[
        "VPC_CONNECTOR_EGRESS_SETTINGS_UNSPECIFIED",
        "PRIVATE_RANGES_ONLY",
        "ALL_TRAFFIC",
    ],
};
pub(crate) static INGRESS: EnumType = EnumType {
    name: "google.cloud.functions.v2.ServiceConfig.IngressSettings",
    values: &[
        "INGRESS_SETTINGS_UNSPECIFIED",
        "ALLOW_ALL",
        "ALLOW_INTERNAL_ONLY",
        "ALLOW_INTERNAL_AND_GCLB",
    ],
};
static SECURITY_LEVEL: EnumType = EnumType {
    name: "google.cloud.functions.v2.ServiceConfig.SecurityLevel",
    values: &["SECURITY_LEVEL_UNSPECIFIED", "SECURE_ALWAYS", "SECURE_OPTIONAL"],
};
static RETRY_POLICY: EnumType = EnumType {
    name: "google.cloud.functions.v2.EventTrigger.RetryPolicy",
    values: &[
        "RETRY_POLICY_UNSPECIFIED",
        "RETRY_POLICY_DO_NOT_RETRY",
        "RETRY_POLICY_RETRY",
    ],
};

static STATE_MESSAGE: Msg = Msg {
    name: "google.cloud.functions.v2.StateMessage",
    fields: &[f("severity", Kind::Enum(&SEVERITY)), f("type", Str), f("message", Str)],
};
static STORAGE_SOURCE: Msg = Msg {
    name: "google.cloud.functions.v2.StorageSource",
    fields: &[
        f("bucket", Str),
        f("object", Str),
        f("generation", Int64),
        f("sourceUploadUrl", Str),
    ],
};
static REPO_SOURCE: Msg = Msg {
    name: "google.cloud.functions.v2.RepoSource",
    fields: &[
        one("branchName", Str, "revision"),
        one("tagName", Str, "revision"),
        one("commitSha", Str, "revision"),
        f("projectId", Str),
        f("repoName", Str),
        f("dir", Str),
        f("invertRegex", Bool),
    ],
};
static SOURCE: Msg = Msg {
    name: "google.cloud.functions.v2.Source",
    fields: &[
        one("storageSource", Kind::Msg(&STORAGE_SOURCE), "source"),
        one("repoSource", Kind::Msg(&REPO_SOURCE), "source"),
        one("gitUri", Str, "source"),
    ],
};
static SOURCE_PROVENANCE: Msg = Msg {
    name: "google.cloud.functions.v2.SourceProvenance",
    fields: &[
        f("resolvedStorageSource", Kind::Msg(&STORAGE_SOURCE)),
        f("resolvedRepoSource", Kind::Msg(&REPO_SOURCE)),
        f("gitUri", Str),
    ],
};
static AUTOMATIC_UPDATE_POLICY: Msg = Msg {
    name: "google.cloud.functions.v2.AutomaticUpdatePolicy",
    fields: &[],
};
static ON_DEPLOY_UPDATE_POLICY: Msg = Msg {
    name: "google.cloud.functions.v2.OnDeployUpdatePolicy",
    fields: &[out("runtimeVersion", Str)],
};
static BUILD_CONFIG: Msg = Msg {
    name: "google.cloud.functions.v2.BuildConfig",
    fields: &[
        one(
            "automaticUpdatePolicy",
            Kind::Msg(&AUTOMATIC_UPDATE_POLICY),
            "runtime_update_policy",
        ),
        one(
            "onDeployUpdatePolicy",
            Kind::Msg(&ON_DEPLOY_UPDATE_POLICY),
            "runtime_update_policy",
        ),
        out("build", Str),
        f("runtime", Str),
        f("entryPoint", Str),
        f("source", Kind::Msg(&SOURCE)),
        out("sourceProvenance", Kind::Msg(&SOURCE_PROVENANCE)),
        f("workerPool", Str),
        f("environmentVariables", StrMap),
        f("dockerRegistry", Kind::Enum(&DOCKER_REGISTRY)),
        f("dockerRepository", Str),
        f("serviceAccount", Str),
    ],
};
static SECRET_ENV_VAR: Msg = Msg {
    name: "google.cloud.functions.v2.SecretEnvVar",
    fields: &[f("key", Str), f("projectId", Str), f("secret", Str), f("version", Str)],
};
static SECRET_VERSION: Msg = Msg {
    name: "google.cloud.functions.v2.SecretVolume.SecretVersion",
    fields: &[f("version", Str), f("path", Str)],
};
static SECRET_VOLUME: Msg = Msg {
    name: "google.cloud.functions.v2.SecretVolume",
    fields: &[
        f("mountPath", Str),
        f("projectId", Str),
        f("secret", Str),
        f("versions", Kind::Msgs(&SECRET_VERSION)),
    ],
};
static SERVICE_CONFIG: Msg = Msg {
    name: "google.cloud.functions.v2.ServiceConfig",
    fields: &[
        out("service", Str),
        f("timeoutSeconds", Int32),
        f("availableMemory", Str),
        f("availableCpu", Str),
        f("environmentVariables", StrMap),
        f("maxInstanceCount", Int32),
        f("minInstanceCount", Int32),
        f("vpcConnector", Str),
        f("vpcConnectorEgressSettings", Kind::Enum(&EGRESS)),
        f("ingressSettings", Kind::Enum(&INGRESS)),
        out("uri", Str),
        f("serviceAccountEmail", Str),
        f("allTrafficOnLatestRevision", Bool),
        f("secretEnvironmentVariables", Kind::Msgs(&SECRET_ENV_VAR)),
        f("secretVolumes", Kind::Msgs(&SECRET_VOLUME)),
        out("revision", Str),
        f("maxInstanceRequestConcurrency", Int32),
        f("securityLevel", Kind::Enum(&SECURITY_LEVEL)),
        f("binaryAuthorizationPolicy", Str),
    ],
};
static EVENT_FILTER: Msg = Msg {
    name: "google.cloud.functions.v2.EventFilter",
    fields: &[f("attribute", Str), f("value", Str), f("operator", Str)],
};
static EVENT_TRIGGER: Msg = Msg {
    name: "google.cloud.functions.v2.EventTrigger",
    fields: &[
        out("trigger", Str),
        f("triggerRegion", Str),
        f("eventType", Str),
        f("eventFilters", Kind::Msgs(&EVENT_FILTER)),
        f("pubsubTopic", Str),
        f("serviceAccountEmail", Str),
        f("retryPolicy", Kind::Enum(&RETRY_POLICY)),
        f("channel", Str),
        f("service", Str),
    ],
};
pub(crate) static FUNCTION: Msg = Msg {
    name: "google.cloud.functions.v2.Function",
    fields: &[
        f("name", Str),
        f("description", Str),
        f("buildConfig", Kind::Msg(&BUILD_CONFIG)),
        f("serviceConfig", Kind::Msg(&SERVICE_CONFIG)),
        f("eventTrigger", Kind::Msg(&EVENT_TRIGGER)),
        out("state", Kind::Enum(&STATE)),
        out("updateTime", Timestamp),
        f("labels", StrMap),
        out("stateMessages", Kind::Msgs(&STATE_MESSAGE)),
        f("environment", Kind::Enum(&ENVIRONMENT)),
        out("url", Str),
        f("kmsKeyName", Str),
        out("satisfiesPzs", Bool),
        out("createTime", Timestamp),
    ],
};

/// `serviceAccountEmail` → `service_account_email`, the proto name the
/// front end also accepts and names in its error messages.
pub(crate) fn snake(json: &str) -> String {
    let mut s = String::with_capacity(json.len() + 4);
    for c in json.chars() {
        if c.is_ascii_uppercase() {
            s.push('_');
            s.push(c.to_ascii_lowercase());
        } else {
            s.push(c);
        }
    }
    s
}

/// What to do with output-only fields found in the input.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum OutputOnly {
    /// A request body: the API ignores them, which lets callers send back a
    /// resource they read.
    Drop,
    /// Seeds and stored state, which own those fields.
    Keep,
}

/// Reads `value` as the proto3 JSON of `msg` and returns its canonical form:
/// camelCase names, enum names, int64 as strings, defaults left out (a set
/// message stays, even empty, since its presence is meaningful).
pub(crate) fn normalize(msg: &'static Msg, value: &Value, at: &str, oo: OutputOnly) -> GcpResult<Map<String, Value>> {
    let Value::Object(obj) = value else {
        return Err(GcpError::invalid(format!(
            "Invalid JSON payload received. Expected an object for '{at}' ({}), got {value}",
            msg.name
        )));
    };
    let mut out = Map::new();
    let mut oneofs: Vec<(&str, &str)> = Vec::new();
    for (k, v) in obj {
        let field = msg.field(k).ok_or_else(|| {
            GcpError::invalid(format!(
                "Invalid JSON payload received. Unknown name \"{k}\" at '{at}': Cannot find field."
            ))
        })?;
        if out.contains_key(field.json) || obj.contains_key(field.json) && k != field.json {
            return Err(GcpError::invalid(format!(
                "Invalid JSON payload received. Field '{at}.{}' is given more than once.",
                snake(field.json)
            )));
        }
        if v.is_null() {
            continue;
        }
        let here = format!("{at}.{}", snake(field.json));
        if let Some(group) = field.oneof {
            if let Some((_, other)) = oneofs.iter().find(|(g, _)| *g == group) {
                return Err(GcpError::invalid(format!(
                    "Invalid JSON payload received. Oneof field '{group}' is already set. \
                     Cannot set '{}' at '{at}' (already set: '{other}').",
                    field.json
                )));
            }
            oneofs.push((group, field.json));
        }
        let converted = convert(field.kind, v, &here, oo)?;
        if field.output_only && oo == OutputOnly::Drop {
            continue;
        }
        if let Some(c) = converted {
            out.insert(field.json.to_string(), c);
        }
    }
    Ok(out)
}

fn bad_value(at: &str, ty: &str, v: &Value) -> GcpError {
    GcpError::invalid(format!("Invalid value at '{at}' ({ty}), {v}"))
}

/// One field's value in canonical form, or None when it is the default.
fn convert(kind: Kind, v: &Value, at: &str, oo: OutputOnly) -> GcpResult<Option<Value>> {
    Ok(match kind {
        Kind::Str => {
            let s = v.as_str().ok_or_else(|| bad_value(at, "TYPE_STRING", v))?;
            (!s.is_empty()).then(|| Value::from(s))
        }
        Kind::Bool => {
            let b = v.as_bool().ok_or_else(|| bad_value(at, "TYPE_BOOL", v))?;
            b.then_some(Value::Bool(true))
        }
        Kind::Int32 => {
            let n = match v {
                Value::Number(n) => n.as_i64(),
                Value::String(s) => s.parse::<i64>().ok(),
                _ => None,
            }
            .and_then(|n| i32::try_from(n).ok())
            .ok_or_else(|| bad_value(at, "TYPE_INT32", v))?;
            (n != 0).then(|| Value::from(n))
        }
        Kind::Int64 => {
            let n = match v {
                Value::Number(n) => n.as_i64(),
                Value::String(s) => s.parse::<i64>().ok(),
                _ => None,
            }
            .ok_or_else(|| bad_value(at, "TYPE_INT64", v))?;
            (n != 0).then(|| Value::from(n.to_string()))
        }
        Kind::Timestamp => {
            let s = v
                .as_str()
                .filter(|s| is_rfc3339(s))
                .ok_or_else(|| bad_value(at, "type.googleapis.com/google.protobuf.Timestamp", v))?;
            Some(Value::from(s))
        }
        Kind::Enum(e) => {
            let ty = format!("type.googleapis.com/{}", e.name);
            let index = match v {
                Value::String(s) => e.values.iter().position(|name| name == s),
                Value::Number(n) => n
                    .as_u64()
                    .and_then(|n| usize::try_from(n).ok())
                    .filter(|&n| n < e.values.len()),
                _ => None,
            }
            .ok_or_else(|| bad_value(at, &ty, v))?;
            (index != 0).then(|| Value::from(e.values[index]))
        }
        Kind::StrMap => {
            let Value::Object(m) = v else {
                return Err(bad_value(at, "map<string, string>", v));
            };
            for (k, val) in m {
                if !val.is_string() {
                    return Err(bad_value(&format!("{at}[{k}]"), "TYPE_STRING", val));
                }
            }
            (!m.is_empty()).then(|| v.clone())
        }
        Kind::Msg(msg) => Some(Value::Object(normalize(msg, v, at, oo)?)),
        Kind::Strs => {
            let Value::Array(items) = v else {
                return Err(bad_value(at, "repeated TYPE_STRING", v));
            };
            for (i, item) in items.iter().enumerate() {
                if !item.is_string() {
                    return Err(bad_value(&format!("{at}[{i}]"), "TYPE_STRING", item));
                }
            }
            (!items.is_empty()).then(|| v.clone())
        }
        Kind::Msgs(msg) => {
            let Value::Array(items) = v else {
                return Err(bad_value(at, &format!("repeated {}", msg.name), v));
            };
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                out.push(Value::Object(normalize(msg, item, &format!("{at}[{i}]"), oo)?));
            }
            (!out.is_empty()).then_some(Value::Array(out))
        }
    })
}

/// Copies every output-only field of `old` into `new` (and removes those
/// `old` lacks), descending into singular messages, creating them in `new`
/// when only `old` has them: updates never change what only the server sets.
pub(crate) fn restore_output_only(msg: &'static Msg, new: &mut Map<String, Value>, old: &Map<String, Value>) {
    for field in msg.fields {
        if field.output_only {
            match old.get(field.json) {
                Some(v) => new.insert(field.json.to_string(), v.clone()),
                None => new.remove(field.json),
            };
        } else if let Kind::Msg(sub) = field.kind {
            let Some(Value::Object(old_sub)) = old.get(field.json) else {
                continue;
            };
            if !has_output_only(sub, old_sub) {
                continue;
            }
            let entry = new
                .entry(field.json.to_string())
                .or_insert_with(|| Value::Object(Map::new()));
            if let Value::Object(new_sub) = entry {
                restore_output_only(sub, new_sub, old_sub);
            }
        }
    }
}

fn has_output_only(msg: &'static Msg, value: &Map<String, Value>) -> bool {
    msg.fields
        .iter()
        .any(|f| match (f.output_only, f.kind, value.get(f.json)) {
            (true, _, Some(_)) => true,
            (false, Kind::Msg(sub), Some(Value::Object(v))) => has_output_only(sub, v),
            _ => false,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn norm(v: Value) -> GcpResult<Value> {
        normalize(&FUNCTION, &v, "function", OutputOnly::Drop).map(Value::Object)
    }

    #[test]
    fn enums_arrive_as_numbers_or_names_and_leave_as_names() -> GcpResult<()> {
        let v = norm(json!({
            "serviceConfig": {"ingressSettings": 2, "vpcConnectorEgressSettings": "ALL_TRAFFIC"},
            "environment": 0
        }))?;
        assert_eq!(
            v,
            json!({"serviceConfig": {"ingressSettings": "ALLOW_INTERNAL_ONLY", "vpcConnectorEgressSettings": "ALL_TRAFFIC"}})
        );
        let e = norm(json!({"serviceConfig": {"ingressSettings": "ALLOW_SOME"}}));
        assert!(e.is_err_and(|e| e.message.contains("function.service_config.ingress_settings")));
        assert!(norm(json!({"serviceConfig": {"ingressSettings": 9}})).is_err());
        Ok(())
    }

    #[test]
    fn unknown_names_and_wrong_types_are_refused() {
        let e = norm(json!({"serviceConfig": {"serviceAccount": "x"}}));
        assert!(e.is_err_and(|e| {
            e.message
                .contains("Unknown name \"serviceAccount\" at 'function.service_config'")
        }));
        assert!(norm(json!({"labels": {"a": 1}})).is_err());
        assert!(norm(json!({"serviceConfig": {"timeoutSeconds": "sixty"}})).is_err());
        assert!(norm(json!({"serviceConfig": {"timeoutSeconds": 4_000_000_000u64}})).is_err());
        assert!(norm(json!({"labels": ["a"]})).is_err());
        assert!(norm(json!("function")).is_err());
    }

    #[test]
    fn snake_case_names_are_read_and_defaults_dropped() -> GcpResult<()> {
        let v = norm(json!({
            "service_config": {"service_account_email": "a@b", "timeout_seconds": "60", "uri": "https://x"},
            "build_config": {"source": {"storage_source": {"generation": 7}}},
            "description": "",
            "labels": {},
            "state": "ACTIVE"
        }))?;
        assert_eq!(
            v,
            json!({
                "serviceConfig": {"serviceAccountEmail": "a@b", "timeoutSeconds": 60},
                "buildConfig": {"source": {"storageSource": {"generation": "7"}}}
            })
        );
        assert!(norm(json!({"serviceConfig": {"timeoutSeconds": 1, "timeout_seconds": 2}})).is_err());
        Ok(())
    }

    #[test]
    fn a_oneof_takes_one_member() {
        let e = norm(json!({"buildConfig": {"source": {"gitUri": "g", "storageSource": {}}}}));
        assert!(e.is_err_and(|e| e.message.contains("Oneof field 'source'")));
    }

    #[test]
    fn output_only_fields_survive_a_replacement() -> GcpResult<()> {
        let old = normalize(
            &FUNCTION,
            &json!({"state": "ACTIVE", "serviceConfig": {"service": "s", "uri": "u", "timeoutSeconds": 9}}),
            "function",
            OutputOnly::Keep,
        )?;
        let mut new = normalize(&FUNCTION, &json!({"labels": {"a": "b"}}), "function", OutputOnly::Drop)?;
        restore_output_only(&FUNCTION, &mut new, &old);
        assert_eq!(
            Value::Object(new),
            json!({"labels": {"a": "b"}, "state": "ACTIVE", "serviceConfig": {"service": "s", "uri": "u"}})
        );
        Ok(())
    }
}
