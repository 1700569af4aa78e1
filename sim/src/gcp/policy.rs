//! `google.iam.v1.Policy` as Cloud Run and Resource Manager serve it:
//! bindings of members to roles (optionally conditional), an etag for
//! optimistic concurrency, and getIamPolicy/setIamPolicy semantics shared by
//! both services.

use super::errors::{Code, GcpError, GcpResult};
use super::schema::{self, Kind, Msg, OutputOnly, f};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value, json};

/// A resource whose IAM policy the stand-in keeps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IamResource {
    /// A project (Resource Manager), by id or number.
    Project(String),
    /// A Cloud Run service, e.g. a 2nd gen function's.
    RunService {
        project: String,
        location: String,
        service: String,
    },
}

impl IamResource {
    pub fn project(project: &str) -> IamResource {
        IamResource::Project(project.to_string())
    }

    pub fn run_service(project: &str, location: &str, service: &str) -> IamResource {
        IamResource::RunService {
            project: project.to_string(),
            location: location.to_string(),
            service: service.to_string(),
        }
    }
}

/// A condition on a binding (`google.type.Expr`).
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Condition {
    pub expression: String,
    pub title: String,
    pub description: String,
    pub location: String,
}

/// One role granted to members, maybe under a condition.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Binding {
    pub role: String,
    pub members: Vec<String>,
    pub condition: Option<Condition>,
}

impl Binding {
    pub fn new<I, S>(role: impl Into<String>, members: I) -> Binding
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Binding {
            role: role.into(),
            members: members.into_iter().map(Into::into).collect(),
            condition: None,
        }
    }

    pub fn with_condition(mut self, condition: Condition) -> Binding {
        self.condition = Some(condition);
        self
    }
}

/// An IAM policy as stored by the stand-in.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Policy {
    /// 3 when any binding is conditional, else 1 (what IAM reports).
    pub version: i32,
    pub bindings: Vec<Binding>,
    /// Opaque bytes; changes on every write.
    pub etag: Vec<u8>,
    /// `auditConfigs` as proto3 JSON (projects only).
    pub audit_configs: Vec<Value>,
}

impl Policy {
    /// Members granted `role` without a condition.
    pub fn members(&self, role: &str) -> Vec<String> {
        self.bindings
            .iter()
            .filter(|b| b.role == role && b.condition.is_none())
            .flat_map(|b| b.members.iter().cloned())
            .collect()
    }

    /// Roles granted to `member` without a condition, sorted.
    pub fn roles_of(&self, member: &str) -> Vec<String> {
        let mut roles: Vec<String> = self
            .bindings
            .iter()
            .filter(|b| b.condition.is_none() && b.members.iter().any(|m| m == member))
            .map(|b| b.role.clone())
            .collect();
        roles.sort();
        roles.dedup();
        roles
    }

    pub fn etag_base64(&self) -> String {
        STANDARD.encode(&self.etag)
    }

    /// A policy holding `bindings`, normalized as IAM stores it.
    pub(crate) fn seeded(bindings: Vec<Binding>) -> GcpResult<Policy> {
        for b in &bindings {
            check_role(&b.role)?;
            for m in &b.members {
                check_member(m)?;
            }
        }
        let mut p = Policy {
            bindings,
            etag: new_etag(&[]),
            ..Policy::default()
        };
        p.normalize();
        Ok(p)
    }

    /// IAM merges bindings of the same role and condition, drops empty ones
    /// and returns roles and members sorted.
    pub(crate) fn normalize(&mut self) {
        let mut merged: Vec<Binding> = Vec::new();
        for b in self.bindings.drain(..) {
            match merged
                .iter_mut()
                .find(|m| m.role == b.role && m.condition == b.condition)
            {
                Some(m) => m.members.extend(b.members),
                None => merged.push(b),
            }
        }
        for b in &mut merged {
            b.members.sort();
            b.members.dedup();
        }
        merged.retain(|b| !b.members.is_empty());
        merged.sort_by(|a, b| (&a.role, &a.condition).cmp(&(&b.role, &b.condition)));
        self.bindings = merged;
        self.version = if self.bindings.iter().any(|b| b.condition.is_some()) {
            3
        } else {
            1
        };
    }

    /// Records a write: a new etag, different from the old one.
    pub(crate) fn bump(&mut self) {
        self.etag = new_etag(&self.etag);
    }

    pub(crate) fn to_json(&self) -> Value {
        let mut out = Map::new();
        out.insert("version".into(), json!(self.version));
        if !self.bindings.is_empty() {
            let bindings: Vec<Value> = self.bindings.iter().map(binding_json).collect();
            out.insert("bindings".into(), Value::Array(bindings));
        }
        if !self.audit_configs.is_empty() {
            out.insert("auditConfigs".into(), Value::Array(self.audit_configs.clone()));
        }
        out.insert("etag".into(), json!(self.etag_base64()));
        Value::Object(out)
    }
}

fn binding_json(b: &Binding) -> Value {
    let mut out = json!({"role": b.role, "members": b.members});
    if let Some(c) = &b.condition {
        let mut cond = Map::new();
        for (k, v) in [
            ("expression", &c.expression),
            ("title", &c.title),
            ("description", &c.description),
            ("location", &c.location),
        ] {
            if !v.is_empty() {
                cond.insert(k.into(), json!(v));
            }
        }
        out["condition"] = Value::Object(cond);
    }
    out
}

fn new_etag(old: &[u8]) -> Vec<u8> {
    loop {
        // Real etags are 8 bytes and start with 0x07 ("BwY..." in base64).
        let mut e = vec![0x07];
        e.extend((0..7).map(|_| fastrand::u8(..)));
        if e != old {
            return e;
        }
    }
}

static EXPR: Msg = Msg {
    name: "google.type.Expr",
    fields: &[
        f("expression", Kind::Str),
        f("title", Kind::Str),
        f("description", Kind::Str),
        f("location", Kind::Str),
    ],
};
static BINDING: Msg = Msg {
    name: "google.iam.v1.Binding",
    fields: &[
        f("role", Kind::Str),
        f("members", Kind::Strs),
        f("condition", Kind::Msg(&EXPR)),
    ],
};
static LOG_TYPE: schema::EnumType = schema::EnumType {
    name: "google.iam.v1.AuditLogConfig.LogType",
    values: &["LOG_TYPE_UNSPECIFIED", "ADMIN_READ", "DATA_WRITE", "DATA_READ"],
};
static AUDIT_LOG_CONFIG: Msg = Msg {
    name: "google.iam.v1.AuditLogConfig",
    fields: &[f("logType", Kind::Enum(&LOG_TYPE)), f("exemptedMembers", Kind::Strs)],
};
static AUDIT_CONFIG: Msg = Msg {
    name: "google.iam.v1.AuditConfig",
    fields: &[
        f("service", Kind::Str),
        f("auditLogConfigs", Kind::Msgs(&AUDIT_LOG_CONFIG)),
    ],
};
static POLICY: Msg = Msg {
    name: "google.iam.v1.Policy",
    fields: &[
        f("version", Kind::Int32),
        f("bindings", Kind::Msgs(&BINDING)),
        f("auditConfigs", Kind::Msgs(&AUDIT_CONFIG)),
        // bytes: base64 in JSON, checked below.
        f("etag", Kind::Str),
    ],
};
static SET_IAM_POLICY_REQUEST: Msg = Msg {
    name: "google.iam.v1.SetIamPolicyRequest",
    fields: &[f("policy", Kind::Msg(&POLICY)), f("updateMask", Kind::Str)],
};
static GET_POLICY_OPTIONS: Msg = Msg {
    name: "google.iam.v1.GetPolicyOptions",
    fields: &[f("requestedPolicyVersion", Kind::Int32)],
};
static GET_IAM_POLICY_REQUEST: Msg = Msg {
    name: "google.iam.v1.GetIamPolicyRequest",
    fields: &[f("options", Kind::Msg(&GET_POLICY_OPTIONS))],
};

fn check_role(role: &str) -> GcpResult<()> {
    let parts: Vec<&str> = role.split('/').collect();
    let ok = match parts.as_slice() {
        ["roles", r] => !r.is_empty(),
        ["projects" | "organizations", p, "roles", r] => !p.is_empty() && !r.is_empty(),
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(GcpError::invalid(format!(
            "Role {role} is not supported for this resource."
        )))
    }
}

/// The principal forms IAM accepts in `members`.
fn check_member(m: &str) -> GcpResult<()> {
    let email = |rest: &str| {
        rest.split_once('@')
            .is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.'))
    };
    let ok = match m {
        "allUsers" | "allAuthenticatedUsers" => true,
        _ => {
            if let Some(rest) = m.strip_prefix("user:").or(m.strip_prefix("group:")) {
                email(rest)
            } else if let Some(rest) = m.strip_prefix("serviceAccount:") {
                email(rest) || rest.contains(".svc.id.goog[")
            } else if let Some(rest) = m.strip_prefix("domain:") {
                rest.contains('.')
            } else if let Some(rest) = m.strip_prefix("deleted:") {
                rest.split_once("?uid=").is_some_and(|(who, uid)| {
                    !uid.is_empty()
                        && (who.starts_with("user:") || who.starts_with("group:") || who.starts_with("serviceAccount:"))
                })
            } else {
                m.starts_with("principal://")
                    || m.starts_with("principalSet://")
                    || ["projectOwner:", "projectEditor:", "projectViewer:"]
                        .iter()
                        .any(|p| m.strip_prefix(p).is_some_and(|r| !r.is_empty()))
            }
        }
    };
    if ok {
        Ok(())
    } else {
        Err(GcpError::invalid(format!(
            "Invalid principal {m:?}: the member is of an unknown type or malformed. \
             Please set a valid type prefix (user:, serviceAccount:, group:, domain:, ...)."
        )))
    }
}

/// `options.requestedPolicyVersion`: only 0, 1 and 3 exist, and a policy with
/// conditions must be asked for as version 3.
pub(crate) fn check_requested_version(requested: Option<i32>, policy: &Policy) -> GcpResult<()> {
    let v = requested.unwrap_or(0);
    if ![0, 1, 3].contains(&v) {
        return Err(GcpError::invalid(format!(
            "Invalid requested policy version {v}: valid values are 0, 1 and 3."
        )));
    }
    if policy.version == 3 && v < 3 {
        return Err(GcpError::invalid(
            "The policy has conditional role bindings: request policy version 3 to read it.",
        ));
    }
    Ok(())
}

/// The body of a Resource Manager getIamPolicy (a POST): its requested version.
pub(crate) fn parse_get_request(body: &[u8]) -> GcpResult<Option<i32>> {
    let v = parse_json(body)?;
    let req = schema::normalize(&GET_IAM_POLICY_REQUEST, &v, "get_iam_policy_request", OutputOnly::Keep)?;
    Ok(req
        .get("options")
        .and_then(|o| o.get("requestedPolicyVersion"))
        .and_then(Value::as_i64)
        .and_then(|n| i32::try_from(n).ok()))
}

pub(crate) fn parse_json(body: &[u8]) -> GcpResult<Value> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(json!({}));
    }
    serde_json::from_slice(body).map_err(|e| GcpError::invalid(format!("Invalid JSON payload received. {e}")))
}

/// What a resource's policy forbids beyond the general rules.
pub(crate) struct Rules {
    /// Projects refuse allUsers and allAuthenticatedUsers.
    pub public_members: bool,
    /// Only projects keep audit configs.
    pub audit_configs: bool,
    /// Projects refuse a policy with no bindings at all.
    pub empty_policy: bool,
}

/// setIamPolicy: checks the request and the etag, writes the policy with a
/// new etag, and returns it. `service_account_exists` answers for emails of
/// service accounts the stand-in knows the project of, None for others.
pub(crate) fn set(
    current: &mut Policy,
    body: &[u8],
    rules: &Rules,
    service_account_exists: &dyn Fn(&str) -> Option<bool>,
) -> GcpResult<Policy> {
    let v = parse_json(body)?;
    let req = schema::normalize(&SET_IAM_POLICY_REQUEST, &v, "set_iam_policy_request", OutputOnly::Keep)?;
    let Some(Value::Object(policy)) = req.get("policy") else {
        return Err(GcpError::invalid("policy is required"));
    };
    let mask: Vec<String> = match req.get("updateMask").and_then(Value::as_str) {
        // The default mask SetIamPolicyRequest documents.
        None => vec!["bindings".into(), "etag".into()],
        Some(m) => m.split(',').map(|p| p.trim().to_string()).collect(),
    };
    for p in &mask {
        if !["bindings", "etag", "auditConfigs", "audit_configs", "version"].contains(&p.as_str()) {
            return Err(GcpError::invalid(format!(
                "Invalid update_mask path \"{p}\" for google.iam.v1.Policy"
            )));
        }
    }
    let masked = |name: &str| mask.iter().any(|p| p == name || schema::snake(name) == *p);

    if masked("etag")
        && let Some(etag) = policy.get("etag").and_then(Value::as_str)
    {
        let bytes = decode_bytes(etag)
            .ok_or_else(|| GcpError::invalid(format!("Invalid value at 'policy.etag' (TYPE_BYTES), {etag:?}")))?;
        if bytes != current.etag {
            return Err(GcpError::new(
                Code::Aborted,
                "There were concurrent policy changes. Please retry the whole read-modify-write with exponential backoff.",
            ));
        }
    }

    let mut next = current.clone();
    if masked("bindings") {
        next.bindings = read_bindings(policy.get("bindings"))?;
        for b in &next.bindings {
            check_role(&b.role)?;
            if b.condition.as_ref().is_some_and(|c| c.expression.is_empty()) {
                return Err(GcpError::invalid(format!(
                    "The condition of the binding for {} has no expression.",
                    b.role
                )));
            }
            for m in &b.members {
                check_member(m)?;
                if !rules.public_members && (m == "allUsers" || m == "allAuthenticatedUsers") {
                    return Err(GcpError::invalid(format!(
                        "Policy members must be of the form \"<type>:<value>\"; {m} is not supported for this resource."
                    )));
                }
                if let Some(email) = m.strip_prefix("serviceAccount:")
                    && service_account_exists(email) == Some(false)
                {
                    return Err(GcpError::invalid(format!("Service account {email} does not exist.")));
                }
            }
        }
        let conditional = next.bindings.iter().any(|b| b.condition.is_some());
        let version = policy.get("version").and_then(Value::as_i64).unwrap_or(0);
        if conditional && version != 3 {
            return Err(GcpError::invalid(
                "The policy has conditional role bindings: set version 3 to write it.",
            ));
        }
        if ![0, 1, 3].contains(&version) {
            return Err(GcpError::invalid(format!(
                "Invalid policy version {version}: valid values are 0, 1 and 3."
            )));
        }
    }
    if masked("auditConfigs") {
        let configs = match policy.get("auditConfigs") {
            Some(Value::Array(a)) => a.clone(),
            _ => Vec::new(),
        };
        if !configs.is_empty() && !rules.audit_configs {
            return Err(GcpError::invalid("Audit configs are not supported for this resource."));
        }
        next.audit_configs = configs;
    }
    next.normalize();
    if !rules.empty_policy && next.bindings.is_empty() {
        return Err(GcpError::invalid(
            "The policy would leave the resource with no bindings at all; an empty policy is refused for this resource.",
        ));
    }
    next.bump();
    *current = next.clone();
    Ok(next)
}

/// proto3 JSON `bytes`: standard or URL-safe base64, padded or not.
fn decode_bytes(s: &str) -> Option<Vec<u8>> {
    use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD]
        .iter()
        .find_map(|engine| engine.decode(s).ok())
}

fn read_bindings(v: Option<&Value>) -> GcpResult<Vec<Binding>> {
    let Some(Value::Array(items)) = v else {
        return Ok(Vec::new());
    };
    let text = |o: &Map<String, Value>, k: &str| o.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
    let mut out = Vec::new();
    for item in items {
        let Value::Object(b) = item else { continue };
        let role = text(b, "role");
        if role.is_empty() {
            return Err(GcpError::invalid("Every binding must name a role."));
        }
        let members = match b.get("members") {
            Some(Value::Array(m)) => m.iter().filter_map(Value::as_str).map(String::from).collect(),
            _ => Vec::new(),
        };
        let condition = match b.get("condition") {
            Some(Value::Object(c)) => Some(Condition {
                expression: text(c, "expression"),
                title: text(c, "title"),
                description: text(c, "description"),
                location: text(c, "location"),
            }),
            _ => None,
        };
        out.push(Binding {
            role,
            members,
            condition,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPEN: Rules = Rules {
        public_members: true,
        audit_configs: false,
        empty_policy: true,
    };

    fn body(v: Value) -> Vec<u8> {
        v.to_string().into_bytes()
    }

    #[test]
    fn stale_etag_is_aborted_and_a_write_changes_the_etag() -> GcpResult<()> {
        let mut p = Policy::seeded(vec![Binding::new("roles/run.invoker", ["user:a@x.com"])])?;
        let etag = p.etag_base64();
        let stale = STANDARD.encode([0x07, 1, 2, 3]);
        let req = json!({"policy": {"bindings": [], "etag": stale}});
        let e = set(&mut p, &body(req), &OPEN, &|_| None);
        assert!(e.is_err_and(|e| e.code == Code::Aborted));
        let req =
            json!({"policy": {"bindings": [{"role": "roles/run.invoker", "members": ["allUsers"]}], "etag": etag}});
        let written = set(&mut p, &body(req), &OPEN, &|_| None)?;
        assert_ne!(written.etag_base64(), etag);
        assert_eq!(p.members("roles/run.invoker"), ["allUsers"]);
        // No etag: the write overwrites whatever is there.
        let written = set(&mut p, &body(json!({"policy": {}})), &OPEN, &|_| None)?;
        assert!(written.bindings.is_empty());
        Ok(())
    }

    #[test]
    fn bindings_are_merged_sorted_and_checked() -> GcpResult<()> {
        let mut p = Policy::seeded(vec![])?;
        let req = json!({"policy": {"bindings": [
            {"role": "roles/viewer", "members": ["user:b@x.com", "user:a@x.com"]},
            {"role": "roles/editor", "members": ["group:g@x.com"]},
            {"role": "roles/viewer", "members": ["user:a@x.com"]},
            {"role": "roles/owner", "members": []}
        ]}});
        let written = set(&mut p, &body(req), &OPEN, &|_| None)?;
        assert_eq!(
            written.bindings,
            vec![
                Binding::new("roles/editor", ["group:g@x.com"]),
                Binding::new("roles/viewer", ["user:a@x.com", "user:b@x.com"]),
            ]
        );
        for bad in [
            json!({"policy": {"bindings": [{"role": "viewer", "members": ["user:a@x.com"]}]}}),
            json!({"policy": {"bindings": [{"role": "roles/viewer", "members": ["a@x.com"]}]}}),
            json!({"policy": {"bindings": [{"role": "roles/viewer", "members": ["user:a@x.com"], "condition": {"expression": "true"}}]}}),
            json!({"policy": {"bindings": [], "etag": "%%%"}}),
            json!({"policy": {"bogus": 1}}),
            json!({"policy": {}, "updateMask": "owners"}),
        ] {
            assert!(set(&mut p, &body(bad.clone()), &OPEN, &|_| None).is_err(), "{bad}");
        }
        Ok(())
    }

    #[test]
    fn project_rules_and_unknown_service_accounts() -> GcpResult<()> {
        let project = Rules {
            public_members: false,
            audit_configs: true,
            empty_policy: false,
        };
        let mut p = Policy::seeded(vec![Binding::new("roles/owner", ["user:o@x.com"])])?;
        let public = json!({"policy": {"bindings": [{"role": "roles/viewer", "members": ["allUsers"]}]}});
        assert!(set(&mut p, &body(public), &project, &|_| None).is_err());
        assert!(set(&mut p, &body(json!({"policy": {}})), &project, &|_| None).is_err());
        let ghost = json!({"policy": {"bindings": [{"role": "roles/viewer", "members": ["serviceAccount:ghost@p.iam.gserviceaccount.com"]}]}});
        let e = set(&mut p, &body(ghost), &project, &|_| Some(false));
        assert!(e.is_err_and(|e| e.message.contains("does not exist")));
        let conditional = json!({"policy": {"version": 3, "bindings": [
            {"role": "roles/viewer", "members": ["user:a@x.com"], "condition": {"expression": "true", "title": "t"}}
        ]}});
        let written = set(&mut p, &body(conditional), &project, &|_| None)?;
        assert_eq!(written.version, 3);
        assert!(check_requested_version(Some(1), &written).is_err());
        assert!(check_requested_version(Some(3), &written).is_ok());
        assert!(check_requested_version(Some(2), &Policy::default()).is_err());
        Ok(())
    }
}
