//! API front doors: the API Gateway REST and HTTP APIs whose integrations
//! invoke the function (`triggers.aws.apiGateway`). Pure: which APIs the
//! resource policy names, whether an integration targets the function, and
//! the findings and writes for what was observed. No I/O.
//!
//! Safety rules:
//! - a write only adds authorization (over NONE) or a validator (where
//!   there is none); nothing is ever removed or lowered, and an API is
//!   never deleted or restructured;
//! - a stage is judged by what its deployment serves, not by the API's
//!   methods (they differ until the stage is redeployed);
//! - a stage is redeployed only when the deployment would publish no
//!   method more open than the stage serves now: a redeploy publishes the
//!   whole API, including changes someone made and did not deploy;
//! - an API or a stage that could not be read, or a statement that names
//!   no single API, is a finding with the reason: never a pass.

use super::action::AwsAction;
use super::model::{
    ApiRead, ApiRoute, ApiStage, FrontDoors, MethodGuard, MethodKey, ObservedApi, RestApi, RestMethod, Served,
};
use super::policy::{Principal, ResourceStatement};
use crate::api::{ApiMethodRef, AwsApiGateway, AwsApiSettings, Effect};
use crate::findings::{Control, Finding, FindingBuilder, Severity};
use crate::providers::assemble::{Phase, PlanBuilder};
use std::collections::{BTreeMap, BTreeSet};

/// The service principal API Gateway invokes functions as (any partition).
pub fn is_api_gateway(service: &str) -> bool {
    service == "apigateway.amazonaws.com" || service == "apigateway.amazonaws.com.cn"
}

/// An API named by a statement: (Region, API id).
pub type ApiKey = (String, String);

/// The APIs the `apigateway.amazonaws.com` Allow statements name through
/// AWS:SourceArn (`arn:<p>:execute-api:<region>:<account>:<api-id>/<stage>/…`),
/// under any operator: a wide or unpinned one is still a door to look at
/// (the resource-policy rules judge the statement itself). A statement
/// naming no literal API id is returned in the second list, as `label: Sid`.
pub fn named_apis<'a>(
    paths: impl IntoIterator<Item = (&'a str, &'a [ResourceStatement])>,
) -> (BTreeSet<ApiKey>, Vec<String>) {
    let mut named = BTreeSet::new();
    let mut unnamed = Vec::new();
    for (label, statements) in paths {
        for st in statements.iter().filter(|st| for_api_gateway(st)) {
            let apis: Vec<ApiKey> = source_arns(st).filter_map(api_of).collect();
            if apis.is_empty() {
                unnamed.push(format!("{label}: {}", st.sid.as_deref().unwrap_or("(no Sid)")));
            }
            named.extend(apis);
        }
    }
    (named, unnamed)
}

fn for_api_gateway(st: &ResourceStatement) -> bool {
    st.effect == Effect::Allow
        && matches!(&st.principal, Some(Principal::Service(s)) if s.iter().any(|s| is_api_gateway(s)))
}

fn source_arns(st: &ResourceStatement) -> impl Iterator<Item = &str> {
    st.conditions
        .values()
        .filter_map(|keys| keys.get(super::policy::SOURCE_ARN))
        .flatten()
        .map(String::as_str)
}

/// The Region and API id of an execute-api ARN, when both are literal.
pub fn api_of(arn: &str) -> Option<ApiKey> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let [_, _, "execute-api", region, _, resource] = parts.as_slice() else {
        return None;
    };
    let id = resource.split('/').next()?;
    let literal = |s: &str| !s.is_empty() && !s.contains(['*', '?']);
    (literal(region) && literal(id) && id.bytes().all(|b| b.is_ascii_alphanumeric()))
        .then(|| (region.to_string(), id.to_string()))
}

/// Whether an integration URI invokes the function or one of its aliases
/// or versions: `arn:<p>:apigateway:<r>:lambda:path/2015-03-31/functions/
/// <function arn>[:qualifier]/invocations` (REST and HTTP APIs), or the
/// bare function ARN (HTTP APIs).
pub fn invokes(uri: &str, function_arn: &str) -> bool {
    let target = match uri.split_once("/functions/") {
        Some((_, rest)) => rest.strip_suffix("/invocations").unwrap_or(rest),
        None => uri,
    };
    target == function_arn
        || target
            .strip_prefix(function_arn)
            .is_some_and(|q| q.starts_with(':') && !q[1..].contains(':'))
}

/// `GET /health` → (GET, /health); `$default` has no verb or path.
pub fn split_route_key(key: &str) -> Option<(&str, &str)> {
    key.split_once(' ')
}

fn declared_public(cfg: &AwsApiGateway, path: &str, method: &str) -> bool {
    cfg.public_methods
        .iter()
        .any(|m: &ApiMethodRef| m.path == path && (m.method == method || m.method == "ANY"))
}

fn unauthenticated(authorization_type: &str) -> bool {
    authorization_type.is_empty() || authorization_type.eq_ignore_ascii_case("NONE")
}

/// The findings and writes for the APIs in front of the function. Returns
/// the methods left public by declaration, for a note: they pass, and are
/// shown.
pub fn plan(cfg: &AwsApiGateway, doors: Option<&FrontDoors>, b: &mut PlanBuilder<AwsAction>) -> Vec<String> {
    let Some(doors) = doors else {
        b.finding(
            on("aws.triggers.apiGateway.notObserved", "ApiGateway")
                .observed("not read")
                .desired("every API in front of the function judged")
                .severity(Severity::Medium)
                .remediable(false)
                .message("the APIs in front of the function were not read: nothing about them is judged"),
        );
        return Vec::new();
    };
    for label in &doors.unnamed {
        b.finding(
            on("aws.triggers.apiGateway.unnamedApi", "ApiGateway")
                .observed(label)
                .desired("AWS:SourceArn naming the API id and stage")
                .severity(Severity::High)
                .remediable(false)
                .message(format!(
                    "{label} lets API Gateway invoke the function without naming the API in AWS:SourceArn: which API is in front of the function cannot be found, so its methods are not judged"
                )),
        );
    }
    let mut public = Vec::new();
    for api in &doors.apis {
        match &api.read {
            ApiRead::NotObserved(why) => b.finding(
                on(
                    "aws.triggers.apiGateway.apiNotObserved",
                    &format!("ApiGateway[{}]", api.id),
                )
                .observed("not read")
                .desired("every method reaching the function judged")
                .severity(Severity::Medium)
                .remediable(false)
                .message(format!(
                    "API {} ({}) in front of the function could not be read: {why}; grant apigateway:GET",
                    api.id, api.region
                )),
            ),
            ApiRead::Rest(rest) => public.extend(rest_api(cfg, api, rest, b)),
            ApiRead::Http(routes) => public.extend(http_api(cfg, api, routes, b)),
        }
    }
    public
}

fn on(check: &str, field: &str) -> FindingBuilder {
    Finding::builder(Control::Triggers, check, field)
}

fn settings<'a>(cfg: &'a AwsApiGateway, api: &ObservedApi) -> Option<&'a AwsApiSettings> {
    cfg.apis.iter().find(|s| s.api_id == api.id)
}

/// One REST API: methods without authorization get the declared authorizer
/// (or AWS_IAM), methods without a validator the declared one; a stage is
/// redeployed after those writes, or when its deployment still serves a
/// method reaching the function without the authorization the API now
/// holds, but only when the deployment would open nothing.
fn rest_api(cfg: &AwsApiGateway, api: &ObservedApi, rest: &RestApi, b: &mut PlanBuilder<AwsAction>) -> Vec<String> {
    let mut public = Vec::new();
    let mut changed = false;
    // What a deployment would publish once zerofn's writes are made.
    let mut draft = rest.draft.clone();
    for m in &rest.methods {
        let field = format!("ApiGateway[{}].{} {}", api.id, m.http_method, m.path);
        if cfg.require_authorizer && unauthenticated(&m.authorization_type) {
            if declared_public(cfg, &m.path, &m.http_method) {
                public.push(format!("{} {} of API {}", m.http_method, m.path, api.id));
            } else {
                let guard = authorize(settings(cfg, api), api, m, &field, b);
                draft
                    .entry((m.path.clone(), m.http_method.clone()))
                    .or_default()
                    .authorization_type = guard;
                changed = true;
            }
        }
        if cfg.require_request_validation {
            changed |= validation(settings(cfg, api), api, rest, m, &field, b);
        }
    }
    for stage in &rest.stages {
        let opened = widenings(cfg, stage, &draft);
        let stale = cfg.require_authorizer && stage_serves_open(cfg, api, rest, stage, opened.is_empty(), b);
        if !(changed || stale) {
            continue;
        }
        if opened.is_empty() {
            // A method change reaches callers only through a deployment,
            // after every method write. What it may serve open (declared
            // public, or open in the stage already) goes with it: the API
            // is read again right before deploying.
            b.push(
                Phase::Revoke,
                AwsAction::DeployApiStage {
                    region: api.region.clone(),
                    api_id: api.id.clone(),
                    stage_name: stage.name.clone(),
                    may_serve_open: open_methods(&draft),
                },
            );
        } else {
            unsafe_redeploy(api, stage, &opened, b);
        }
    }
    public
}

/// Whether the stage's deployment serves a method reaching the function
/// without authorization while the API's method holds it (the stage was
/// not redeployed since): each such method is High. A stage whose
/// deployment could not be read is reported as not judged.
fn stage_serves_open(
    cfg: &AwsApiGateway,
    api: &ObservedApi,
    rest: &RestApi,
    stage: &ApiStage,
    redeployable: bool,
    b: &mut PlanBuilder<AwsAction>,
) -> bool {
    let summary = match &stage.served {
        Served::Summary(s) => s,
        Served::NotObserved(why) => {
            b.finding(
                on(
                    "aws.triggers.apiGateway.stageNotObserved",
                    &format!("ApiGateway[{}].stages[{}]", api.id, stage.name),
                )
                .observed("not read")
                .desired("what the stage serves judged")
                .severity(Severity::Medium)
                .remediable(false)
                .message(format!(
                    "what stage {} of API {} serves could not be read: {why}; whether it serves the function's methods with their authorization is not judged",
                    stage.name, api.id
                )),
            );
            return false;
        }
    };
    removed_but_served(cfg, api, rest, stage, summary, b);
    let mut stale = false;
    for m in rest.methods.iter().filter(|m| !unauthenticated(&m.authorization_type)) {
        let key = (m.path.clone(), m.http_method.clone());
        if declared_public(cfg, &m.path, &m.http_method)
            || !summary
                .get(&key)
                .is_some_and(|g| unauthenticated(&g.authorization_type))
        {
            continue;
        }
        stale = true;
        b.finding(
            on(
                "aws.triggers.apiGateway.staleStage",
                &format!("ApiGateway[{}].stages[{}].{} {}", api.id, stage.name, m.http_method, m.path),
            )
            .observed(format!("deployment {} serves authorizationType NONE", stage.deployment_id))
            .desired(&m.authorization_type)
            .severity(Severity::High)
            .remediable(redeployable)
            .message(format!(
                "stage {} of API {} still serves {} {} without authorization: the method holds {}, but the stage's deployment {} predates it; {}",
                stage.name,
                api.id,
                m.http_method,
                m.path,
                m.authorization_type,
                stage.deployment_id,
                if redeployable { "the stage is redeployed" } else { "see why it is not redeployed" }
            )),
        );
    }
    stale
}

/// Methods the stage serves without authorization that the API no longer
/// has: their integrations are gone from the API, so whether they reach
/// the function cannot be read. Reported as not judged, never passed, and
/// not redeployed on that guess.
fn removed_but_served(
    cfg: &AwsApiGateway,
    api: &ObservedApi,
    rest: &RestApi,
    stage: &ApiStage,
    summary: &BTreeMap<MethodKey, MethodGuard>,
    b: &mut PlanBuilder<AwsAction>,
) {
    let removed = summary.iter().filter(|((path, verb), g)| {
        unauthenticated(&g.authorization_type)
            && !declared_public(cfg, path, verb)
            && !rest.draft.contains_key(&(path.clone(), verb.clone()))
    });
    for ((path, verb), _) in removed {
        b.finding(
            on(
                "aws.triggers.apiGateway.removedMethodServed",
                &format!("ApiGateway[{}].stages[{}].{verb} {path}", api.id, stage.name),
            )
            .observed(format!("deployment {} serves authorizationType NONE", stage.deployment_id))
            .desired("a method the API has, judged")
            .severity(Severity::Medium)
            .remediable(false)
            .message(format!(
                "stage {} of API {} still serves {verb} {path} without authorization, a method the API no longer has: whether it reaches the function cannot be read, so it is not judged; redeploy the stage to drop it",
                stage.name, api.id
            )),
        );
    }
}

/// What deploying `draft` to the stage would open: a method it would serve
/// without authorization that the stage does not serve so now (or that
/// cannot be compared, the stage being unread), or without the API key the
/// stage asks for. Methods declared public are what the posture asks.
fn widenings(cfg: &AwsApiGateway, stage: &ApiStage, draft: &BTreeMap<MethodKey, MethodGuard>) -> Vec<String> {
    let served = |key: &MethodKey| match &stage.served {
        Served::Summary(s) => Some(s.get(key)),
        Served::NotObserved(_) => None,
    };
    let mut opened = Vec::new();
    for (key @ (path, verb), guard) in draft {
        let now = served(key);
        let opens = unauthenticated(&guard.authorization_type)
            && !declared_public(cfg, path, verb)
            && now.is_none_or(|g| g.is_none_or(|g| !unauthenticated(&g.authorization_type)));
        let drops_key = !guard.api_key_required && now.flatten().is_some_and(|g| g.api_key_required);
        if opens {
            opened.push(format!("{verb} {path} without authorization"));
        } else if drops_key {
            opened.push(format!("{verb} {path} without its API key"));
        }
    }
    opened
}

/// The methods a draft serves without authorization, as `VERB path`.
pub fn open_methods(draft: &BTreeMap<MethodKey, MethodGuard>) -> BTreeSet<String> {
    draft
        .iter()
        .filter(|(_, g)| unauthenticated(&g.authorization_type))
        .map(|((path, verb), _)| format!("{verb} {path}"))
        .collect()
}

/// A redeploy that would open something is not made: reported, for a
/// person to review the API's undeployed changes.
fn unsafe_redeploy(api: &ObservedApi, stage: &ApiStage, opened: &[String], b: &mut PlanBuilder<AwsAction>) {
    let unread = matches!(stage.served, Served::NotObserved(_));
    b.finding(
        on(
            "aws.triggers.apiGateway.unsafeRedeploy",
            &format!("ApiGateway[{}].stages[{}]", api.id, stage.name),
        )
        .observed(opened.join(", "))
        .desired("a deployment that opens nothing")
        .severity(Severity::High)
        .remediable(false)
        .message(format!(
            "stage {} of API {} needs a redeploy, but deploying the API now would also publish {} ({}); zerofn does not deploy it: review the API's changes and deploy the stage",
            stage.name,
            api.id,
            opened.join(", "),
            if unread {
                "what the stage serves now could not be read to compare"
            } else {
                "changes made to the API and not deployed"
            }
        )),
    );
}

/// A method without authorization: reported, and given the declared
/// authorizer or AWS_IAM. Returns the authorization type it will hold.
fn authorize(
    s: Option<&AwsApiSettings>,
    api: &ObservedApi,
    m: &RestMethod,
    field: &str,
    b: &mut PlanBuilder<AwsAction>,
) -> String {
    let (authorization_type, authorizer_id) = match s.and_then(|s| s.authorizer_id.clone().zip(s.authorizer_type)) {
        Some((id, kind)) => (kind.as_str().to_string(), Some(id)),
        None => ("AWS_IAM".to_string(), None),
    };
    b.finding(
        on("aws.triggers.apiGateway.unauthenticatedMethod", field)
            .observed("authorizationType NONE")
            .desired(&authorization_type)
            .severity(Severity::High)
            .remediable(true)
            .message(format!(
                "{} {} of API {} invokes the function without authorization: anyone who reaches the API can call it",
                m.http_method, m.path, api.id
            )),
    );
    b.push(
        Phase::Revoke,
        AwsAction::AuthorizeApiMethod {
            region: api.region.clone(),
            api_id: api.id.clone(),
            resource_id: m.resource_id.clone(),
            http_method: m.http_method.clone(),
            authorization_type: authorization_type.clone(),
            authorizer_id,
        },
    );
    authorization_type
}

/// What a method's request must be validated for: a body (a verb that
/// carries one, or a declared model) and parameters (declared ones).
fn needs(m: &RestMethod) -> (bool, bool) {
    let body = matches!(m.http_method.as_str(), "POST" | "PUT" | "PATCH" | "ANY") || !m.request_models.is_empty();
    (body, !m.request_parameters.is_empty())
}

/// A method taking a body or parameters has a validator that validates
/// them and a model for its body. Only a missing validator is fixed, with
/// the declared one when it validates what the method needs; a validator
/// in place is never replaced. Returns whether a write was planned.
fn validation(
    s: Option<&AwsApiSettings>,
    api: &ObservedApi,
    rest: &RestApi,
    m: &RestMethod,
    field: &str,
    b: &mut PlanBuilder<AwsAction>,
) -> bool {
    let (body, params) = needs(m);
    if !body && !params {
        return false;
    }
    let what = match (body, params) {
        (true, true) => "body and parameters",
        (true, false) => "body",
        _ => "parameters",
    };
    let enough = |v: &super::model::RequestValidator| (!body || v.body) && (!params || v.parameters);
    let label = format!("{} {} of API {}", m.http_method, m.path, api.id);
    let mut planned = false;
    match m.request_validator_id.as_deref() {
        Some(id) if rest.validators.get(id).is_some_and(enough) => {}
        Some(id) => b.finding(
            on("aws.triggers.apiGateway.weakValidator", field)
                .observed(format!("requestValidatorId {id}"))
                .desired(format!("a validator of the {what}"))
                .severity(Severity::Medium)
                .remediable(false)
                .message(format!(
                    "{label}: validator {id} does not validate the request {what}; zerofn never replaces a validator"
                )),
        ),
        None => {
            let declared = s
                .and_then(|s| s.request_validator_id.as_deref())
                .filter(|id| rest.validators.get(*id).is_some_and(enough));
            b.finding(
                on("aws.triggers.apiGateway.noValidator", field)
                    .observed("no request validator")
                    .desired(format!("a validator of the {what}"))
                    .severity(Severity::Medium)
                    .remediable(declared.is_some())
                    .message(match declared {
                        Some(id) => format!("{label} takes a {what} it does not validate; validator {id} is attached"),
                        None => format!(
                            "{label} takes a {what} it does not validate; declare a requestValidatorId for API {} that validates it",
                            api.id
                        ),
                    }),
            );
            if let Some(id) = declared {
                b.push(
                    Phase::Revoke,
                    AwsAction::AttachRequestValidator {
                        region: api.region.clone(),
                        api_id: api.id.clone(),
                        resource_id: m.resource_id.clone(),
                        http_method: m.http_method.clone(),
                        request_validator_id: id.to_string(),
                    },
                );
                planned = true;
            }
        }
    }
    if body && m.request_models.is_empty() {
        b.finding(
            on("aws.triggers.apiGateway.noRequestModel", field)
                .observed("no request model")
                .desired("a model for the body")
                .severity(Severity::Low)
                .remediable(false)
                .message(format!(
                    "{label} takes a body with no model to validate it against; add requestModels (zerofn does not write models)"
                )),
        );
    }
    planned
}

/// One HTTP API: a route without authorization is reported (report-only:
/// zerofn does not write HTTP APIs).
fn http_api(
    cfg: &AwsApiGateway,
    api: &ObservedApi,
    routes: &[ApiRoute],
    b: &mut PlanBuilder<AwsAction>,
) -> Vec<String> {
    let mut public = Vec::new();
    if !cfg.require_authorizer {
        return public;
    }
    for r in routes.iter().filter(|r| unauthenticated(&r.authorization_type)) {
        let declared = split_route_key(&r.route_key).is_some_and(|(verb, path)| declared_public(cfg, path, verb));
        if declared {
            public.push(format!("{} of API {}", r.route_key, api.id));
            continue;
        }
        b.finding(
            on(
                "aws.triggers.apiGateway.unauthenticatedRoute",
                &format!("ApiGateway[{}].{}", api.id, r.route_key),
            )
            .observed("authorizationType NONE")
            .desired("AWS_IAM, JWT or CUSTOM")
            .severity(Severity::High)
            .remediable(false)
            .message(format!(
                "route {} of HTTP API {} invokes the function without authorization; attach an authorizer (zerofn reports HTTP API routes, it does not change them)",
                r.route_key, api.id
            )),
        );
    }
    public
}
