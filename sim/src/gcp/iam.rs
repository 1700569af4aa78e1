//! IAM v1 service accounts (`iam.projects.serviceAccounts.{create,get,list}`).

use super::errors::{Code, GcpError, GcpResult};
use super::policy::{Policy, check_requested_version, parse_json};
use super::request::{Query, is_resource_id, list_page, page_offset};
use super::schema::{self, Kind, Msg, OutputOnly, f, out};
use super::world::{Project, ServiceAccount, State};
use serde_json::{Value, json};

/// Every service account JSON carries this etag; IAM no longer uses it.
const SERVICE_ACCOUNT_ETAG: &str = "MDEwMjE5MjA=";

static SERVICE_ACCOUNT: Msg = Msg {
    name: "google.iam.admin.v1.ServiceAccount",
    fields: &[
        out("name", Kind::Str),
        out("projectId", Kind::Str),
        out("uniqueId", Kind::Str),
        out("email", Kind::Str),
        f("displayName", Kind::Str),
        out("etag", Kind::Str),
        f("description", Kind::Str),
        out("oauth2ClientId", Kind::Str),
        out("disabled", Kind::Bool),
    ],
};
static CREATE_SERVICE_ACCOUNT_REQUEST: Msg = Msg {
    name: "google.iam.admin.v1.CreateServiceAccountRequest",
    fields: &[
        f("accountId", Kind::Str),
        f("serviceAccount", Kind::Msg(&SERVICE_ACCOUNT)),
    ],
};

fn unique_id() -> String {
    // 21 decimal digits, like the ids IAM assigns.
    let mut s = String::from("1");
    s.extend((0..20).map(|_| char::from(b'0' + fastrand::u8(0..10))));
    s
}

/// The Compute Engine and App Engine default service accounts every project has.
pub(crate) fn default_accounts(project: &Project) -> Vec<ServiceAccount> {
    vec![
        ServiceAccount {
            project: project.id.clone(),
            email: format!("{}-compute@developer.gserviceaccount.com", project.number),
            unique_id: unique_id(),
            display_name: "Compute Engine default service account".into(),
            description: String::new(),
        },
        ServiceAccount {
            project: project.id.clone(),
            email: format!("{}@appspot.gserviceaccount.com", project.id),
            unique_id: unique_id(),
            display_name: "App Engine default service account".into(),
            description: String::new(),
        },
    ]
}

/// accountId: 6–30 characters matching `[a-z]([-a-z0-9]*[a-z0-9])`.
fn check_account_id(id: &str) -> GcpResult<()> {
    if is_resource_id(id, 6..=30) {
        Ok(())
    } else {
        Err(GcpError::invalid(format!(
            "Invalid account_id {id:?}: it must be 6-30 characters long and match the regular expression \
             [a-z]([-a-z0-9]*[a-z0-9])."
        )))
    }
}

/// A new user-managed account, checked as CreateServiceAccount checks it.
pub(crate) fn create(
    state: &State,
    project: &str,
    account_id: &str,
    display_name: &str,
    description: &str,
) -> GcpResult<ServiceAccount> {
    let p = state
        .project(project)
        .ok_or_else(|| GcpError::project_denied("iam.serviceAccounts.create", &format!("projects/{project}")))?;
    check_account_id(account_id)?;
    if display_name.chars().count() > 100 {
        return Err(GcpError::invalid("display_name must be at most 100 characters."));
    }
    if description.chars().count() > 256 {
        return Err(GcpError::invalid("description must be at most 256 characters."));
    }
    let email = format!("{account_id}@{}.iam.gserviceaccount.com", p.id);
    if state.service_accounts.contains_key(&email) {
        return Err(GcpError::new(
            Code::AlreadyExists,
            format!(
                "Service account {account_id} already exists within project projects/{}.",
                p.id
            ),
        ));
    }
    Ok(ServiceAccount {
        project: p.id.clone(),
        email,
        unique_id: unique_id(),
        display_name: display_name.to_string(),
        description: description.to_string(),
    })
}

pub(crate) fn to_json(sa: &ServiceAccount) -> Value {
    let mut v = json!({
        "name": format!("projects/{}/serviceAccounts/{}", sa.project, sa.email),
        "projectId": sa.project,
        "uniqueId": sa.unique_id,
        "email": sa.email,
        "etag": SERVICE_ACCOUNT_ETAG,
        "oauth2ClientId": sa.unique_id,
    });
    if !sa.display_name.is_empty() {
        v["displayName"] = json!(sa.display_name);
    }
    if !sa.description.is_empty() {
        v["description"] = json!(sa.description);
    }
    v
}

/// POST v1/projects/{p}/serviceAccounts
pub(crate) fn handle_create(state: &mut State, query: &Query, project: &str, body: &[u8]) -> GcpResult<Value> {
    query.check(&[])?;
    let v = parse_json(body)?;
    let req = schema::normalize(
        &CREATE_SERVICE_ACCOUNT_REQUEST,
        &v,
        "create_service_account_request",
        OutputOnly::Drop,
    )?;
    let text = |v: Option<&Value>| v.and_then(Value::as_str).unwrap_or_default().to_string();
    let account_id = text(req.get("accountId"));
    let sa = req.get("serviceAccount");
    let sa = create(
        state,
        project,
        &account_id,
        &text(sa.and_then(|s| s.get("displayName"))),
        &text(sa.and_then(|s| s.get("description"))),
    )?;
    let out = to_json(&sa);
    state.service_accounts.insert(sa.email.clone(), sa);
    Ok(out)
}

/// GET v1/projects/{p}/serviceAccounts/{email or uniqueId}; `-` as the
/// project infers it from the account.
pub(crate) fn handle_get(state: &State, query: &Query, project: &str, account: &str) -> GcpResult<Value> {
    query.check(&[])?;
    let resource = format!("projects/{project}/serviceAccounts/{account}");
    let wanted_project = if project == "-" {
        None
    } else {
        let p = state
            .project(project)
            .ok_or_else(|| GcpError::project_denied("iam.serviceAccounts.get", &resource))?;
        Some(p.id.clone())
    };
    state
        .service_accounts
        .values()
        .find(|sa| {
            (sa.email == account || sa.unique_id == account) && wanted_project.as_ref().is_none_or(|p| *p == sa.project)
        })
        .map(to_json)
        .ok_or_else(|| GcpError::not_found(format!("Service account {resource} does not exist.")))
}

/// POST v1/projects/{p}/serviceAccounts/{email or uniqueId}:getIamPolicy,
/// `options.requestedPolicyVersion` in the query: who may act as the
/// account. An account nobody was granted anything on has an empty policy.
pub(crate) fn handle_get_policy(state: &mut State, query: &Query, project: &str, account: &str) -> GcpResult<Value> {
    query.check(&["options.requestedPolicyVersion"])?;
    let found = handle_get(state, &Query::default(), project, account)?;
    let requested = query.int32("options.requestedPolicyVersion")?;
    let email = found.get("email").and_then(Value::as_str).unwrap_or_default();
    let sa_project = found.get("projectId").and_then(Value::as_str).unwrap_or_default();
    let key = format!("projects/{sa_project}/serviceAccounts/{email}");
    let policy = match state.policies.get(&key) {
        Some(p) => p.clone(),
        None => Policy::seeded(vec![])?,
    };
    check_requested_version(requested, &policy)?;
    let answer = policy.to_json();
    state.fire_hook(&key);
    Ok(answer)
}

/// GET v1/projects/{p}/serviceAccounts: 20 a page unless asked, 100 at most.
pub(crate) fn handle_list(state: &State, query: &Query, project: &str) -> GcpResult<Value> {
    query.check(&["pageSize", "pageToken"])?;
    let p = state
        .project(project)
        .ok_or_else(|| GcpError::project_denied("iam.serviceAccounts.list", &format!("projects/{project}")))?;
    let size = query.page_size(20, 100)?;
    let scope = format!("serviceAccounts:{}", p.id);
    let offset = page_offset(query.get("pageToken"), &scope)?;
    let all: Vec<Value> = state
        .service_accounts
        .values()
        .filter(|sa| sa.project == p.id)
        .map(to_json)
        .collect();
    Ok(list_page("accounts", &all, offset, size, &scope))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_ids_follow_rfc1035() {
        for ok in ["abcdef", "zerofn-fn-a1", "a23456789012345678901234567890"] {
            assert!(check_account_id(ok).is_ok(), "{ok}");
        }
        for bad in [
            "abcde",
            "1abcdef",
            "abcdef-",
            "Abcdef",
            "abc_def",
            "a234567890123456789012345678901",
        ] {
            assert!(check_account_id(bad).is_err(), "{bad}");
        }
    }
}
