//! The API front doors planner: table cases per edge, and a sweep applying
//! each plan to a model of the APIs: no write ever lowers an authorization,
//! replaces or removes a validator, touches a method declared public or a
//! stage not observed, no deployment publishes a method more open than its
//! stage serves, no stage serving the function's method open is passed,
//! and a second plan writes nothing.

use super::*;
use crate::api::*;
use crate::fixtures::{SpecExt, aws_spec, sweep};
use crate::providers::aws::front_doors::{api_of, invokes, named_apis};
use crate::providers::aws::model::*;
use crate::providers::aws::policy::parse_resource_policy;
use proptest::prelude::*;
use proptest::sample::select;

const FN_ARN: &str = "arn:aws:lambda:eu-west-1:123456789012:function:orders";

fn ctx() -> AccountContext {
    AccountContext {
        account_id: "123456789012".into(),
        partition: "aws".into(),
    }
}

fn gateway(require_authorizer: bool, require_validation: bool) -> AwsApiGateway {
    AwsApiGateway {
        require_authorizer,
        require_request_validation: require_validation,
        public_methods: vec![ApiMethodRef {
            path: "/health".into(),
            method: "GET".into(),
        }],
        apis: vec![AwsApiSettings {
            api_id: "rest1".into(),
            authorizer_id: None,
            authorizer_type: None,
            request_validator_id: Some("vall".into()),
        }],
    }
}

fn spec_with(g: AwsApiGateway) -> FunctionPostureSpec {
    aws_spec("orders").with_triggers(TriggerControl {
        public_access: PublicAccess::Deny,
        remove_unlisted: true,
        aws: Some(AwsTriggers {
            api_gateway: Some(g),
            ..AwsTriggers::default()
        }),
        azure: None,
        gcp: None,
    })
}

fn method(path: &str, verb: &str, auth: &str) -> RestMethod {
    RestMethod {
        resource_id: format!("r{}", path.len()),
        path: path.into(),
        http_method: verb.into(),
        authorization_type: auth.into(),
        ..RestMethod::default()
    }
}

fn guard(auth: &str) -> MethodGuard {
    MethodGuard {
        authorization_type: auth.into(),
        api_key_required: false,
    }
}

/// The API's methods as a deployment would publish them.
fn draft_of(methods: &[RestMethod]) -> BTreeMap<MethodKey, MethodGuard> {
    methods
        .iter()
        .map(|m| ((m.path.clone(), m.http_method.clone()), guard(&m.authorization_type)))
        .collect()
}

/// Stage `prod`, serving `served`.
fn stage(served: Served) -> ApiStage {
    ApiStage {
        name: "prod".into(),
        deployment_id: "d1".into(),
        served,
    }
}

/// A REST API whose methods all reach the function, stage `prod` serving
/// them as they are.
fn rest(methods: Vec<RestMethod>) -> ObservedApi {
    let draft = draft_of(&methods);
    rest_with(methods, draft.clone(), vec![stage(Served::Summary(draft))])
}

fn rest_with(methods: Vec<RestMethod>, draft: BTreeMap<MethodKey, MethodGuard>, stages: Vec<ApiStage>) -> ObservedApi {
    ObservedApi {
        id: "rest1".into(),
        region: "eu-west-1".into(),
        read: ApiRead::Rest(RestApi {
            methods,
            stages,
            draft,
            validators: [
                (
                    "vall".to_string(),
                    RequestValidator {
                        body: true,
                        parameters: true,
                    },
                ),
                (
                    "vparams".to_string(),
                    RequestValidator {
                        body: false,
                        parameters: true,
                    },
                ),
            ]
            .into(),
        }),
    }
}

fn observed(apis: Vec<ObservedApi>) -> ObservedFunction {
    ObservedFunction {
        arn: FN_ARN.into(),
        name: "orders".into(),
        region: "eu-west-1".into(),
        front_doors: Some(FrontDoors { apis, unnamed: vec![] }),
        ..ObservedFunction::default()
    }
}

fn run(g: AwsApiGateway, o: &ObservedFunction) -> Plan<AwsAction> {
    plan(&Posture::new("test", "team", "orders", spec_with(g)), &ctx(), o)
}

fn checks(p: &Plan<AwsAction>) -> Vec<&str> {
    p.findings.iter().map(|f| f.check.as_str()).collect()
}

#[test]
fn an_unauthenticated_method_gets_aws_iam_and_its_stage_is_redeployed() {
    let o = observed(vec![rest(vec![
        method("/orders", "GET", "NONE"),
        method("/admin", "GET", "AWS_IAM"),
    ])]);
    let p = run(gateway(true, false), &o);
    assert_eq!(checks(&p), vec!["aws.triggers.apiGateway.unauthenticatedMethod"]);
    assert_eq!(
        p.actions,
        vec![
            AwsAction::AuthorizeApiMethod {
                region: "eu-west-1".into(),
                api_id: "rest1".into(),
                resource_id: "r7".into(),
                http_method: "GET".into(),
                authorization_type: "AWS_IAM".into(),
                authorizer_id: None,
            },
            AwsAction::DeployApiStage {
                region: "eu-west-1".into(),
                api_id: "rest1".into(),
                stage_name: "prod".into(),
                may_serve_open: BTreeSet::new(),
            },
        ]
    );
}

/// A redeploy that failed after the method was fixed: the API's method
/// holds AWS_IAM, the stage still serves the older, open deployment. That
/// is High, never compliant, and the stage (only) is redeployed.
#[test]
fn a_stage_serving_an_older_open_deployment_is_found_and_redeployed() {
    let methods = vec![method("/orders", "GET", "AWS_IAM")];
    let draft = draft_of(&methods);
    let older: BTreeMap<MethodKey, MethodGuard> = [(("/orders".to_string(), "GET".to_string()), guard("NONE"))].into();
    let o = observed(vec![rest_with(methods, draft, vec![stage(Served::Summary(older))])]);
    let p = run(gateway(true, false), &o);
    assert_eq!(checks(&p), vec!["aws.triggers.apiGateway.staleStage"]);
    assert_eq!(p.findings[0].field, "ApiGateway[rest1].stages[prod].GET /orders");
    assert_eq!(p.findings[0].severity, Severity::High);
    assert!(p.findings[0].remediable);
    assert_eq!(
        p.actions,
        vec![AwsAction::DeployApiStage {
            region: "eu-west-1".into(),
            api_id: "rest1".into(),
            stage_name: "prod".into(),
            may_serve_open: BTreeSet::new(),
        }]
    );
}

/// A method the deployment may serve open (declared public, or open in
/// the stage already) travels with the deploy: the applier reads the API
/// again and deploys only if nothing else would be served open.
#[test]
fn what_a_deploy_may_serve_open_goes_with_it() {
    let methods = vec![method("/orders", "GET", "NONE"), method("/health", "GET", "NONE")];
    let p = run(gateway(true, false), &observed(vec![rest(methods)]));
    let deploy = p.actions.iter().find_map(|a| match a {
        AwsAction::DeployApiStage { may_serve_open, .. } => Some(may_serve_open.clone()),
        _ => None,
    });
    assert_eq!(deploy, Some(BTreeSet::from(["GET /health".to_string()])));
}

/// A method deleted from the API but still served open by the stage: its
/// integration is gone, so whether it reaches the function is not judged,
/// and that is said, not passed; nothing is redeployed on that guess.
#[test]
fn an_open_method_the_api_no_longer_has_is_not_passed() {
    let methods = vec![method("/orders", "GET", "AWS_IAM")];
    let draft = draft_of(&methods);
    let mut served = draft.clone();
    served.insert(("/legacy".into(), "POST".into()), guard("NONE"));
    let o = observed(vec![rest_with(methods, draft, vec![stage(Served::Summary(served))])]);
    let p = run(gateway(true, false), &o);
    assert_eq!(checks(&p), vec!["aws.triggers.apiGateway.removedMethodServed"]);
    assert_eq!(p.findings[0].field, "ApiGateway[rest1].stages[prod].POST /legacy");
    assert!(p.actions.is_empty());
}

/// Someone opened another method and did not deploy: redeploying would
/// publish it. The method reaching the function is still fixed in the
/// API, the stage is not redeployed, and that is reported, not passed.
#[test]
fn a_redeploy_that_would_publish_an_undeployed_opening_is_not_made() {
    let methods = vec![method("/orders", "GET", "NONE")];
    let mut draft = draft_of(&methods);
    let served = draft.clone();
    draft.insert(("/other".into(), "GET".into()), guard("NONE"));
    let o = observed(vec![rest_with(methods, draft, vec![stage(Served::Summary(served))])]);
    let p = run(gateway(true, false), &o);
    assert_eq!(
        checks(&p),
        vec![
            "aws.triggers.apiGateway.unauthenticatedMethod",
            "aws.triggers.apiGateway.unsafeRedeploy"
        ]
    );
    assert_eq!(p.findings[1].observed, "GET /other without authorization");
    assert!(p.actions.iter().all(|a| !matches!(a, AwsAction::DeployApiStage { .. })));
    assert!(
        p.actions
            .iter()
            .any(|a| matches!(a, AwsAction::AuthorizeApiMethod { .. }))
    );
}

/// A stage whose deployment cannot be read is not judged; it is still
/// redeployed after zerofn's own method write when the API would then
/// serve nothing open, and not when it would.
#[test]
fn an_unread_stage_is_not_judged_and_redeployed_only_when_nothing_would_open() {
    let unread = || {
        stage(Served::NotObserved(
            "GetDeployment answered without its apiSummary".into(),
        ))
    };
    let methods = vec![method("/orders", "GET", "NONE")];
    let o = observed(vec![rest_with(methods.clone(), draft_of(&methods), vec![unread()])]);
    let p = run(gateway(true, false), &o);
    assert_eq!(
        checks(&p),
        vec![
            "aws.triggers.apiGateway.stageNotObserved",
            "aws.triggers.apiGateway.unauthenticatedMethod"
        ]
    );
    assert!(p.actions.iter().any(|a| matches!(a, AwsAction::DeployApiStage { .. })));

    let mut draft = draft_of(&methods);
    draft.insert(("/other".into(), "GET".into()), guard("NONE"));
    let o = observed(vec![rest_with(methods, draft, vec![unread()])]);
    let p = run(gateway(true, false), &o);
    assert!(checks(&p).contains(&"aws.triggers.apiGateway.unsafeRedeploy"));
    assert!(p.actions.iter().all(|a| !matches!(a, AwsAction::DeployApiStage { .. })));

    let fixed = vec![method("/orders", "GET", "AWS_IAM")];
    let o = observed(vec![rest_with(fixed.clone(), draft_of(&fixed), vec![unread()])]);
    let p = run(gateway(true, false), &o);
    assert_eq!(checks(&p), vec!["aws.triggers.apiGateway.stageNotObserved"]);
    assert!(p.actions.is_empty(), "no evidence of a stale stage: no redeploy");
}

#[test]
fn a_declared_authorizer_is_set_with_its_type() {
    let mut g = gateway(true, false);
    g.apis[0].authorizer_id = Some("auth1".into());
    g.apis[0].authorizer_type = Some(ApiAuthorizerType::Custom);
    let p = run(g, &observed(vec![rest(vec![method("/orders", "POST", "NONE")])]));
    assert!(matches!(
        &p.actions[0],
        AwsAction::AuthorizeApiMethod { authorization_type, authorizer_id: Some(id), .. }
            if authorization_type == "CUSTOM" && id == "auth1"
    ));
}

#[test]
fn a_method_public_by_declaration_passes_and_is_shown() {
    let o = observed(vec![rest(vec![method("/health", "GET", "NONE")])]);
    let p = run(gateway(true, false), &o);
    assert!(p.findings.is_empty(), "{:#?}", p.findings);
    assert!(p.actions.is_empty());
    assert_eq!(p.notes.len(), 1);
    assert!(
        p.notes[0].message.contains("GET /health of API rest1"),
        "{}",
        p.notes[0].message
    );
    // The same path with another verb is not declared public.
    let o = observed(vec![rest(vec![method("/health", "DELETE", "NONE")])]);
    assert_eq!(
        checks(&run(gateway(true, false), &o)),
        vec!["aws.triggers.apiGateway.unauthenticatedMethod"]
    );
}

#[test]
fn an_http_api_route_without_authorizer_is_reported_not_written() {
    let routes = vec![
        ApiRoute {
            route_id: "rt1".into(),
            route_key: "POST /orders".into(),
            authorization_type: "NONE".into(),
            authorizer_id: None,
        },
        ApiRoute {
            route_id: "rt2".into(),
            route_key: "GET /health".into(),
            authorization_type: "NONE".into(),
            authorizer_id: None,
        },
        ApiRoute {
            route_id: "rt3".into(),
            route_key: "GET /me".into(),
            authorization_type: "JWT".into(),
            authorizer_id: Some("jwt1".into()),
        },
    ];
    let o = observed(vec![ObservedApi {
        id: "http1".into(),
        region: "eu-west-1".into(),
        read: ApiRead::Http(routes),
    }]);
    let p = run(gateway(true, true), &o);
    assert_eq!(checks(&p), vec!["aws.triggers.apiGateway.unauthenticatedRoute"]);
    assert_eq!(p.findings[0].field, "ApiGateway[http1].POST /orders");
    assert!(!p.findings[0].remediable);
    assert!(p.actions.is_empty());
    assert_eq!(p.notes.len(), 1, "GET /health is public by declaration");
}

#[test]
fn an_api_not_observed_never_passes() {
    let o = observed(vec![ObservedApi {
        id: "rest1".into(),
        region: "eu-west-1".into(),
        read: ApiRead::NotObserved("GetResources rest1: AccessDeniedException".into()),
    }]);
    let p = run(gateway(true, true), &o);
    assert_eq!(checks(&p), vec!["aws.triggers.apiGateway.apiNotObserved"]);
    assert!(p.findings[0].message.contains("AccessDeniedException"));
    // Nothing read at all.
    let mut o = observed(vec![]);
    o.front_doors = None;
    assert_eq!(
        checks(&run(gateway(true, false), &o)),
        vec!["aws.triggers.apiGateway.notObserved"]
    );
    // A statement that names no API.
    let mut o = observed(vec![]);
    o.front_doors.as_mut().unwrap().unnamed = vec!["the function: apigw-any".into()];
    assert_eq!(
        checks(&run(gateway(true, false), &o)),
        vec!["aws.triggers.apiGateway.unnamedApi"]
    );
}

#[test]
fn request_validation_attaches_only_a_declared_validator_that_suffices() {
    let mut post = method("/orders", "POST", "AWS_IAM");
    post.request_models.insert("application/json".into());
    let mut get = method("/orders/{id}", "GET", "AWS_IAM");
    get.request_parameters.insert("method.request.path.id".into());
    let mut weak = method("/refunds", "PUT", "AWS_IAM");
    weak.request_validator_id = Some("vparams".into());
    let o = observed(vec![rest(vec![post, get, weak])]);
    let p = run(gateway(false, true), &o);
    let mut found = checks(&p);
    found.sort();
    assert_eq!(
        found,
        vec![
            "aws.triggers.apiGateway.noRequestModel",
            "aws.triggers.apiGateway.noValidator",
            "aws.triggers.apiGateway.noValidator",
            "aws.triggers.apiGateway.weakValidator",
        ]
    );
    let ops: Vec<&str> = p.actions.iter().map(|a| a.op()).collect();
    assert_eq!(ops, vec!["UpdateMethod", "UpdateMethod", "CreateDeployment"]);
    // No declared validator: reported, nothing written.
    let mut g = gateway(false, true);
    g.apis.clear();
    let p = run(g, &o);
    assert!(p.actions.is_empty());
    assert!(p.findings.iter().all(|f| !f.remediable));
}

#[test]
fn apis_are_found_by_the_source_arn_of_api_gateway_statements() {
    let policy = parse_resource_policy(&format!(
        r#"{{"Statement":[
        {{"Sid":"named","Effect":"Allow","Principal":{{"Service":"apigateway.amazonaws.com"}},"Action":"lambda:InvokeFunction","Resource":"{FN_ARN}","Condition":{{"ArnLike":{{"AWS:SourceArn":"arn:aws:execute-api:eu-west-1:123456789012:abc123/*/GET/orders"}}}}}},
        {{"Sid":"open","Effect":"Allow","Principal":{{"Service":"apigateway.amazonaws.com"}},"Action":"lambda:InvokeFunction","Resource":"{FN_ARN}"}},
        {{"Sid":"anyapi","Effect":"Allow","Principal":{{"Service":"apigateway.amazonaws.com"}},"Action":"lambda:InvokeFunction","Resource":"{FN_ARN}","Condition":{{"ArnLike":{{"AWS:SourceArn":"arn:aws:execute-api:eu-west-1:123456789012:*"}}}}}},
        {{"Sid":"s3","Effect":"Allow","Principal":{{"Service":"s3.amazonaws.com"}},"Action":"lambda:InvokeFunction","Resource":"{FN_ARN}"}}
        ]}}"#
    ))
    .unwrap();
    let (named, unnamed) = named_apis([("the function", policy.as_slice())]);
    assert_eq!(named, [("eu-west-1".to_string(), "abc123".to_string())].into());
    assert_eq!(unnamed, vec!["the function: open", "the function: anyapi"]);
    assert_eq!(api_of("arn:aws:execute-api:eu-west-1:1:a?c/prod"), None);
}

#[test]
fn an_unnamed_api_statement_is_also_an_unscoped_invoker() {
    // The resource-policy rules already judge it: an API Gateway statement
    // without AWS:SourceArn lets any API invoke the function.
    let mut o = observed(vec![]);
    o.resource_policy = Some(
        parse_resource_policy(&format!(
            r#"{{"Statement":[{{"Sid":"open","Effect":"Allow","Principal":{{"Service":"apigateway.amazonaws.com"}},"Action":"lambda:InvokeFunction","Resource":"{FN_ARN}"}}]}}"#
        ))
        .unwrap(),
    );
    o.front_doors.as_mut().unwrap().unnamed = vec!["the function: open".into()];
    let p = run(gateway(true, false), &o);
    let c = checks(&p);
    assert!(c.contains(&"aws.triggers.unscopedInvoker"), "{c:?}");
    assert!(c.contains(&"aws.triggers.apiGateway.unnamedApi"), "{c:?}");
    assert!(p.actions.iter().any(|a| a.op() == "RemovePermission"));
}

#[test]
fn integration_uris_name_the_function_or_its_qualifiers_only() {
    let uri =
        |target: &str| format!("arn:aws:apigateway:eu-west-1:lambda:path/2015-03-31/functions/{target}/invocations");
    assert!(invokes(&uri(FN_ARN), FN_ARN));
    assert!(invokes(&uri(&format!("{FN_ARN}:live")), FN_ARN));
    assert!(invokes(&uri(&format!("{FN_ARN}:${{stageVariables.alias}}")), FN_ARN));
    assert!(invokes(FN_ARN, FN_ARN), "an HTTP API may name the function itself");
    assert!(!invokes(&uri(&format!("{FN_ARN}-v2")), FN_ARN));
    assert!(!invokes(
        &uri("arn:aws:lambda:eu-west-1:123456789012:function:other"),
        FN_ARN
    ));
    assert!(!invokes("http://example.com/orders", FN_ARN));
}

// ------------------------------------------------------------ the sweep

/// Whether a front-door write only adds authorization or validation to
/// something observed: used by the planner's own sweep as well.
pub(super) fn narrows(a: &AwsAction, doors: Option<&FrontDoors>) -> Result<(), String> {
    let rest = |api_id: &str| {
        doors
            .into_iter()
            .flat_map(|d| &d.apis)
            .find_map(|api| match &api.read {
                ApiRead::Rest(r) if api.id == api_id => Some(r),
                _ => None,
            })
            .ok_or(format!("wrote to API {api_id}, which was not observed"))
    };
    let find = |r: &'_ RestApi, resource_id: &str, verb: &str| {
        r.methods
            .iter()
            .find(|m| m.resource_id == resource_id && m.http_method == verb)
            .cloned()
            .ok_or("wrote to a method not observed".to_string())
    };
    match a {
        AwsAction::AuthorizeApiMethod {
            api_id,
            resource_id,
            http_method,
            authorization_type,
            ..
        } => {
            let m = find(rest(api_id)?, resource_id, http_method)?;
            if m.authorization_type != "NONE" {
                return Err(format!("changed authorization {}", m.authorization_type));
            }
            if !["AWS_IAM", "CUSTOM", "COGNITO_USER_POOLS"].contains(&authorization_type.as_str()) {
                return Err(format!("set authorization {authorization_type}"));
            }
            Ok(())
        }
        AwsAction::AttachRequestValidator {
            api_id,
            resource_id,
            http_method,
            request_validator_id,
            ..
        } => {
            let r = rest(api_id)?;
            let m = find(r, resource_id, http_method)?;
            if m.request_validator_id.is_some() {
                return Err("replaced a validator".into());
            }
            r.validators
                .contains_key(request_validator_id)
                .then_some(())
                .ok_or("attached a validator the API does not have".into())
        }
        AwsAction::DeployApiStage { api_id, stage_name, .. } => rest(api_id)?
            .stages
            .iter()
            .any(|s| s.name == *stage_name)
            .then_some(())
            .ok_or("deployed a stage not observed".into()),
        other => Err(format!("not a front-door write: {}", other.op())),
    }
}

/// Apply the planned front-door writes to the observed APIs: a method
/// write changes the API (its draft), a deployment publishes the draft to
/// its stage.
fn apply(doors: &mut FrontDoors, actions: &[AwsAction]) {
    for a in actions {
        for api in &mut doors.apis {
            let ApiRead::Rest(r) = &mut api.read else { continue };
            if let AwsAction::DeployApiStage { api_id, stage_name, .. } = a
                && *api_id == api.id
            {
                for s in r.stages.iter_mut().filter(|s| s.name == *stage_name) {
                    s.served = Served::Summary(r.draft.clone());
                }
            }
            for m in &mut r.methods {
                match a {
                    AwsAction::AuthorizeApiMethod {
                        api_id,
                        resource_id,
                        http_method,
                        authorization_type,
                        authorizer_id,
                        ..
                    } if *api_id == api.id && *resource_id == m.resource_id && *http_method == m.http_method => {
                        m.authorization_type = authorization_type.clone();
                        m.authorizer_id = authorizer_id.clone();
                        r.draft
                            .insert((m.path.clone(), m.http_method.clone()), guard(authorization_type));
                    }
                    AwsAction::AttachRequestValidator {
                        api_id,
                        resource_id,
                        http_method,
                        request_validator_id,
                        ..
                    } if *api_id == api.id && *resource_id == m.resource_id && *http_method == m.http_method => {
                        m.request_validator_id = Some(request_validator_id.clone());
                    }
                    _ => {}
                }
            }
        }
    }
}

fn any_method() -> impl Strategy<Value = RestMethod> {
    (
        select(vec!["/health", "/orders", "/orders/{id}"]),
        select(vec!["GET", "POST", "PUT", "DELETE", "ANY"]),
        select(vec!["NONE", "AWS_IAM", "CUSTOM", "COGNITO_USER_POOLS"]),
        select(vec![None, Some("vall"), Some("vparams"), Some("gone")]),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(path, verb, auth, validator, model, param)| {
            let mut m = method(path, verb, auth);
            m.resource_id = format!("{path}#{verb}");
            m.request_validator_id = validator.map(str::to_string);
            if model {
                m.request_models.insert("application/json".into());
            }
            if param {
                m.request_parameters.insert("method.request.header.x".into());
            }
            m
        })
}

fn any_gateway() -> impl Strategy<Value = AwsApiGateway> {
    (
        any::<bool>(),
        any::<bool>(),
        select(vec![None, Some("vall"), Some("vparams"), Some("gone")]),
        any::<bool>(),
    )
        .prop_map(|(auth, validation, validator, custom)| {
            let mut g = gateway(auth, validation);
            g.apis[0].request_validator_id = validator.map(str::to_string);
            if custom {
                g.apis[0].authorizer_id = Some("auth1".into());
                g.apis[0].authorizer_type = Some(ApiAuthorizerType::CognitoUserPools);
            }
            g
        })
}

/// Which kind of front-door write an action is.
fn kind(a: &AwsAction) -> &'static str {
    match a {
        AwsAction::AuthorizeApiMethod { .. } => "authorize",
        AwsAction::AttachRequestValidator { .. } => "validator",
        AwsAction::DeployApiStage { .. } => "deploy",
        _ => "other",
    }
}

/// What stage `prod` serves, from the API's methods: as they are; an
/// older deployment (each method as it is or open, and perhaps an open
/// method the API has since lost); one without some methods; or not read.
fn any_served(draft: BTreeMap<MethodKey, MethodGuard>) -> impl Strategy<Value = Served> {
    let n = draft.len();
    (0..4u8, proptest::collection::vec(0..3u8, n), any::<bool>()).prop_map(move |(kind, each, lost)| match kind {
        0 => Served::Summary(draft.clone()),
        3 => Served::NotObserved("AccessDeniedException".into()),
        _ => {
            let mut served: BTreeMap<MethodKey, MethodGuard> = draft
                .iter()
                .zip(&each)
                .filter(|(_, e)| kind == 1 || **e != 2)
                .map(|((k, g), e)| (k.clone(), if *e == 1 { guard("NONE") } else { g.clone() }))
                .collect();
            if lost {
                served
                    .entry(("/legacy".into(), "POST".into()))
                    .or_insert_with(|| guard("NONE"));
            }
            Served::Summary(served)
        }
    })
}

/// The API: methods reaching the function, methods that do not (in the
/// draft only), and what stage `prod` serves.
fn any_api() -> impl Strategy<Value = ObservedApi> {
    (
        proptest::collection::vec(any_method(), 0..6),
        proptest::collection::vec(
            (
                select(vec!["/other", "/orders", "/admin"]),
                select(vec!["GET", "PATCH"]),
                select(vec!["NONE", "AWS_IAM"]),
                any::<bool>(),
            ),
            0..3,
        ),
    )
        .prop_flat_map(|(mut methods, others)| {
            methods.sort_by(|a, b| a.resource_id.cmp(&b.resource_id));
            methods.dedup_by(|a, b| a.resource_id == b.resource_id);
            let mut draft = draft_of(&methods);
            for (path, verb, auth, key) in others {
                draft
                    .entry((path.to_string(), verb.to_string()))
                    .or_insert(MethodGuard {
                        authorization_type: auth.into(),
                        api_key_required: key,
                    });
            }
            any_served(draft.clone())
                .prop_map(move |served| rest_with(methods.clone(), draft.clone(), vec![stage(served)]))
        })
}

/// The evaluator's own reading of `publicMethods`: path and verb, or ANY.
fn declared_public(g: &AwsApiGateway, path: &str, verb: &str) -> bool {
    g.public_methods
        .iter()
        .any(|m| m.path == path && (m.method == verb || m.method == "ANY"))
}

/// The evaluator's own check of a deployment: it publishes the API as the
/// writes leave it; nothing may be served without authorization (unless
/// declared public) that the stage did not already serve so, and nothing
/// may lose its API key.
fn deployment_opens_nothing(g: &AwsApiGateway, before: &ObservedApi, after: &ObservedApi) -> Result<(), String> {
    let (ApiRead::Rest(b), ApiRead::Rest(a)) = (&before.read, &after.read) else {
        return Ok(());
    };
    for (s_before, s_after) in b.stages.iter().zip(&a.stages) {
        if s_before.served == s_after.served {
            continue;
        }
        let Served::Summary(now) = &s_after.served else {
            continue;
        };
        for ((path, verb), guard) in now {
            let was = match &s_before.served {
                Served::Summary(w) => w.get(&(path.clone(), verb.clone())),
                Served::NotObserved(_) => None,
            };
            let public = declared_public(g, path, verb);
            let open = |x: &MethodGuard| x.authorization_type == "NONE";
            if open(guard) && !public && !was.is_some_and(open) {
                return Err(format!("the deployment opened {verb} {path}"));
            }
            if was.is_some_and(|w| w.api_key_required) && !guard.api_key_required {
                return Err(format!("the deployment dropped the API key of {verb} {path}"));
            }
        }
    }
    Ok(())
}

/// A stage that serves a method reaching the function without
/// authorization (not declared public) is never passed.
fn open_stage_is_reported(g: &AwsApiGateway, api: &ObservedApi, p: &Plan<AwsAction>) -> Result<(), String> {
    let ApiRead::Rest(r) = &api.read else { return Ok(()) };
    if !g.require_authorizer {
        return Ok(());
    }
    for s in &r.stages {
        let Served::Summary(served) = &s.served else {
            if !p
                .findings
                .iter()
                .any(|f| f.field.contains(&format!("stages[{}]", s.name)))
            {
                return Err(format!("unread stage {} passed", s.name));
            }
            continue;
        };
        // An open method the API no longer has may reach the function.
        for ((path, verb), x) in served {
            let named = format!("{verb} {path}");
            let lost = !r.draft.contains_key(&(path.clone(), verb.clone()));
            if lost
                && x.authorization_type == "NONE"
                && !declared_public(g, path, verb)
                && !p.findings.iter().any(|f| f.field.ends_with(&named))
            {
                return Err(format!(
                    "stage {} serves {named}, which the API lost, and nothing says so",
                    s.name
                ));
            }
        }
        for m in &r.methods {
            let public = declared_public(g, &m.path, &m.http_method);
            let open = served
                .get(&(m.path.clone(), m.http_method.clone()))
                .is_some_and(|x| x.authorization_type == "NONE");
            let named = format!("{} {}", m.http_method, m.path);
            if open && !public && !p.findings.iter().any(|f| f.field.ends_with(&named)) {
                return Err(format!("stage {} serves {named} open and nothing says so", s.name));
            }
        }
    }
    Ok(())
}

#[test]
fn front_door_writes_only_narrow_and_a_second_plan_writes_nothing() {
    let seen = std::cell::RefCell::new(std::collections::BTreeSet::new());
    sweep(3000, (any_gateway(), any_api()), |(g, api)| {
        let o = observed(vec![api]);
        let p = run(g.clone(), &o);
        let fail = |e: String| TestCaseError::fail(e);
        open_stage_is_reported(&g, &o.front_doors.as_ref().unwrap().apis[0], &p).map_err(fail)?;
        for a in &p.actions {
            seen.borrow_mut().insert(kind(a));
            narrows(a, o.front_doors.as_ref()).map_err(|e| TestCaseError::fail(format!("{e}: {a:?}")))?;
            if let AwsAction::AuthorizeApiMethod {
                resource_id,
                http_method,
                ..
            } = a
            {
                prop_assert!(
                    !(resource_id.starts_with("/health#") && http_method == "GET"),
                    "a method public by declaration was changed"
                );
            }
        }
        let mut after = o.clone();
        apply(after.front_doors.as_mut().unwrap(), &p.actions);
        let (before_api, after_api) = (
            &o.front_doors.as_ref().unwrap().apis[0],
            &after.front_doors.as_ref().unwrap().apis[0],
        );
        deployment_opens_nothing(&g, before_api, after_api).map_err(fail)?;
        let again = run(g, &after);
        prop_assert!(again.actions.is_empty(), "second plan writes: {:?}", again.actions);
        Ok(())
    });
    assert_eq!(
        seen.into_inner().len(),
        3,
        "the sweep must produce every kind of front-door write"
    );
}
