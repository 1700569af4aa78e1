//! How the AWS provider behaves when AWS pushes back: throttling is backed
//! off and counted, an update in flight is waited out, and a role that IAM
//! has not propagated yet is retried. LocalStack cannot produce these on
//! demand, so a scripted stand-in answers in order.
#![forbid(unsafe_code)]

use std::sync::Arc;
use std::time::Duration;
use zerofn::api::{AwsAccount, FunctionPostureSpec};
use zerofn::metrics::{Metrics, Outcome};
use zerofn::providers::aws::action::ConfigField;
use zerofn::providers::aws::{AwsAction, AwsProvider, StaticCredentials, client};
use zerofn::providers::{Cloud, Posture, ProviderError, Tuning};
use zerofn_sim::scripted::{Reply, Scripted};

const FN: &str = "arn:aws:lambda:eu-west-1:123456789012:function:orders";

fn account(url: &str) -> AwsAccount {
    AwsAccount {
        region: "eu-west-1".into(),
        endpoint: Some(url.into()),
        ..AwsAccount::default()
    }
}

fn creds() -> Option<StaticCredentials> {
    Some(StaticCredentials {
        access_key_id: "test".into(),
        secret_access_key: "test".into(),
        session_token: None,
    })
}

fn tuning() -> Tuning {
    Tuning {
        max_attempts: 4,
        initial_backoff: Duration::from_millis(20),
        operation_wait: Duration::from_secs(10),
        propagation: Duration::from_secs(20),
        call_deadline: Duration::from_secs(10),
        attempt_timeout: Duration::from_secs(5),
        ..AwsProvider::default_tuning()
    }
}

fn lambda_error(status: u16, code: &str, message: &str) -> Reply {
    Reply::new(status, format!(r#"{{"Type":"User","message":"{message}"}}"#))
        .header("x-amzn-errortype", code)
        .header("content-type", "application/json")
}

fn config(status: &str) -> Reply {
    Reply::new(
        200,
        format!(r#"{{"FunctionName":"orders","FunctionArn":"{FN}","State":"Active","LastUpdateStatus":"{status}"}}"#),
    )
    .header("content-type", "application/json")
}

fn posture() -> Posture {
    let spec: FunctionPostureSpec =
        serde_saphyr::from_str("accountRef: {name: a}\nfunction: {aws: {name: orders}}\nmode: Enforce")
            .expect("test posture parses");
    Posture::new("test", "ns", "orders", spec)
}

fn tracing_update() -> AwsAction {
    AwsAction::UpdateFunctionConfiguration {
        function_arn: FN.into(),
        fields: [ConfigField::TracingMode("Active".into())].into_iter().collect(),
    }
}

#[tokio::test]
async fn throttled_calls_back_off_with_jitter_and_are_counted() {
    let throttled = || lambda_error(429, "TooManyRequestsException", "Rate exceeded");
    let server = Scripted::start(
        vec![throttled(), throttled()],
        Reply::new(200, r#"{"Functions":[]}"#).header("content-type", "application/json"),
    )
    .await
    .unwrap();
    let metrics = Arc::new(Metrics::default());
    let clients = client::build(&account(&server.url()), creds(), metrics.clone(), &tuning()).await;
    let out = clients.lambda("eu-west-1").unwrap().list_functions().send().await;
    assert!(out.is_ok(), "{out:?}");
    let reqs = server.requests();
    assert_eq!(reqs.len(), 3, "two throttled attempts, then success");
    assert!(
        reqs[1].at > reqs[0].at + Duration::from_millis(1),
        "retries wait before trying again"
    );
    assert_eq!(metrics.cloud_requests("aws", "ListFunctions", Outcome::throttled), 2);
    assert_eq!(metrics.cloud_requests("aws", "ListFunctions", Outcome::ok), 1);
    assert_eq!(metrics.throttled("aws"), 2);
}

/// GetPolicy's "not found" is how Lambda says a function has no resource
/// policy: an answer (`ok`), not a refusal that would trip alerts. A write's
/// not-found, and a 404 that names no missing resource, stay client errors.
#[tokio::test]
async fn a_read_answered_not_found_counts_as_ok() {
    let server = Scripted::start(
        vec![
            lambda_error(404, "ResourceNotFoundException", "The resource you requested does not exist."),
            lambda_error(404, "ResourceNotFoundException", "The resource you requested does not exist."),
            Reply::new(404, "<html>no such page</html>"),
            Reply::new(
                404,
                r#"<ErrorResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/"><Error><Type>Sender</Type><Code>NoSuchEntity</Code><Message>The role with name orders cannot be found.</Message></Error><RequestId>1</RequestId></ErrorResponse>"#,
            )
            .header("content-type", "text/xml"),
        ],
        Reply::new(500, ""),
    )
    .await
    .unwrap();
    let metrics = Arc::new(Metrics::default());
    let clients = client::build(&account(&server.url()), creds(), metrics.clone(), &tuning()).await;
    let lambda = clients.lambda("eu-west-1").unwrap();
    assert!(lambda.get_policy().function_name(FN).send().await.is_err());
    assert!(
        lambda
            .delete_function_url_config()
            .function_name(FN)
            .send()
            .await
            .is_err()
    );
    assert!(lambda.get_function_url_config().function_name(FN).send().await.is_err());
    assert!(clients.iam.get_role().role_name("orders").send().await.is_err());
    assert_eq!(metrics.cloud_requests("aws", "GetPolicy", Outcome::ok), 1);
    assert_eq!(metrics.cloud_requests("aws", "GetPolicy", Outcome::client_error), 0);
    assert_eq!(
        metrics.cloud_requests("aws", "DeleteFunctionUrlConfig", Outcome::client_error),
        1
    );
    assert_eq!(
        metrics.cloud_requests("aws", "GetFunctionUrlConfig", Outcome::client_error),
        1,
        "a 404 naming no missing resource is not an answer"
    );
    assert_eq!(metrics.cloud_requests("aws", "GetRole", Outcome::ok), 1);
}

#[tokio::test]
async fn persistent_throttling_is_an_error_in_its_category_not_a_crash() {
    let server = Scripted::start(vec![], lambda_error(429, "TooManyRequestsException", "Rate exceeded"))
        .await
        .unwrap();
    let metrics = Arc::new(Metrics::default());
    let provider = AwsProvider::new(
        account(&server.url()),
        creds(),
        metrics.clone(),
        tuning(),
        Duration::from_secs(60),
    )
    .await;
    let err = provider.apply(&posture(), &tracing_update()).await.unwrap_err();
    assert!(matches!(err, ProviderError::Throttled(_)), "{err}");
    assert_eq!(server.requests().len(), 4, "max_attempts bounds the retries");
}

#[tokio::test]
async fn an_update_in_flight_is_waited_out_and_retried_not_reported() {
    let server = Scripted::start(
        vec![
            config("Successful"), // idle before the update
            lambda_error(
                409,
                "ResourceConflictException",
                "An update is in progress for resource",
            ),
            config("InProgress"), // waited out before the retry...
            config("Successful"),
            config("Successful").header("x-note", "update accepted"),
            config("Successful"), // idle after
        ],
        config("Successful"),
    )
    .await
    .unwrap();
    let metrics = Arc::new(Metrics::default());
    let provider = AwsProvider::new(
        account(&server.url()),
        creds(),
        metrics.clone(),
        tuning(),
        Duration::from_secs(60),
    )
    .await;
    provider
        .apply(&posture(), &tracing_update())
        .await
        .expect("conflict is retried");
    let updates: Vec<_> = server.requests().into_iter().filter(|r| r.method == "PUT").collect();
    assert_eq!(updates.len(), 2, "the update was sent again after the conflict");
    assert!(updates[1].body.contains(r#""Mode":"Active""#), "{}", updates[1].body);
}

#[tokio::test]
async fn a_role_not_yet_propagated_is_retried() {
    let refused = lambda_error(
        400,
        "InvalidParameterValueException",
        "The role defined for the function cannot be assumed by Lambda.",
    );
    let server = Scripted::start(
        vec![
            config("Successful"),
            refused.clone(),
            config("Successful"),
            refused,
            config("Successful"),
        ],
        config("Successful"),
    )
    .await
    .unwrap();
    let metrics = Arc::new(Metrics::default());
    let provider = AwsProvider::new(
        account(&server.url()),
        creds(),
        metrics.clone(),
        tuning(),
        Duration::from_secs(60),
    )
    .await;
    let switch = AwsAction::UpdateFunctionConfiguration {
        function_arn: FN.into(),
        fields: [ConfigField::Role(
            "arn:aws:iam::123456789012:role/zerofn/zerofn-orders-0a1b2c3d".into(),
        )]
        .into_iter()
        .collect(),
    };
    provider
        .apply(&posture(), &switch)
        .await
        .expect("propagation refusals are retried");
    let puts = server.requests().into_iter().filter(|r| r.method == "PUT").count();
    assert_eq!(puts, 3);
}

#[tokio::test]
async fn other_refusals_are_reported_at_once() {
    let server = Scripted::start(
        vec![config("Successful")],
        lambda_error(
            400,
            "InvalidParameterValueException",
            "Security group sg-0a1b2c3d does not exist",
        ),
    )
    .await
    .unwrap();
    let provider = AwsProvider::new(
        account(&server.url()),
        creds(),
        Arc::new(Metrics::default()),
        tuning(),
        Duration::from_secs(60),
    )
    .await;
    let err = provider.apply(&posture(), &tracing_update()).await.unwrap_err();
    assert!(matches!(err, ProviderError::Refused(_)), "{err}");
    assert!(err.to_string().contains("does not exist"), "{err}");
    assert_eq!(server.requests().iter().filter(|r| r.method == "PUT").count(), 1);
}

/// The paths of the requests a scripted server saw, in order.
fn paths(reqs: &[zerofn_sim::scaffold::Recorded]) -> Vec<&str> {
    reqs.iter().map(|r| r.path.as_str()).collect()
}

// ------------------------------------------------------------ REST API stages
// LocalStack answers GetDeployment without the apiSummary that `embed=
// apisummary` asks for: the answers are scripted here in the shapes of the
// API Gateway REST reference (`GetResources` and `GetStages`: `item`;
// `GetDeployment`: `apiSummary` keyed by resource path, then verb, each a
// `MethodSnapshot` of `authorizationType` and `apiKeyRequired`).

/// Each stage is read through its deployment's apiSummary: what it serves,
/// which can differ from the API's methods; a deployment answered without
/// its summary is kept as not observed. Every method of the API is in the
/// draft, only those reaching the function in `methods`.
#[tokio::test]
async fn a_rest_apis_stages_are_read_through_their_deployments_summaries() {
    use zerofn::providers::aws::model::{ApiRead, MethodGuard, Served};
    let uri = format!("arn:aws:apigateway:eu-west-1:lambda:path/2015-03-31/functions/{FN}/invocations");
    let server = Scripted::start(
        vec![
            json(&format!(
                r#"{{"item":[
                {{"id":"r1","path":"/orders","resourceMethods":{{"POST":{{"httpMethod":"POST","authorizationType":"AWS_IAM","apiKeyRequired":false,"methodIntegration":{{"type":"AWS_PROXY","uri":"{uri}"}}}}}}}},
                {{"id":"r2","path":"/other","resourceMethods":{{"GET":{{"httpMethod":"GET","authorizationType":"NONE","apiKeyRequired":true,"methodIntegration":{{"type":"HTTP_PROXY","uri":"https://example.com"}}}}}}}}]}}"#
            )),
            json(r#"{"item":[{"stageName":"prod","deploymentId":"d1"},{"stageName":"beta","deploymentId":"d2"}]}"#),
            json(
                r#"{"id":"d1","createdDate":1700000000,"apiSummary":{"/orders":{"POST":{"authorizationType":"NONE","apiKeyRequired":false}},"/other":{"GET":{"authorizationType":"NONE","apiKeyRequired":true}}}}"#,
            ),
            json(r#"{"id":"d2","createdDate":1700000100}"#),
            json(r#"{"item":[]}"#),
        ],
        api_error(500, "InternalFailure"),
    )
    .await
    .unwrap();
    let ApiRead::Rest(api) = read_api(&server).await else {
        panic!("a REST API");
    };
    assert_eq!(
        api.methods.len(),
        1,
        "only the method reaching the function: {:?}",
        api.methods
    );
    assert_eq!(api.methods[0].authorization_type, "AWS_IAM");
    let key = |p: &str, v: &str| (p.to_string(), v.to_string());
    assert_eq!(api.draft.len(), 2);
    assert!(api.draft[&key("/other", "GET")].api_key_required);
    let names: Vec<&str> = api.stages.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, vec!["beta", "prod"]);
    match &api.stages[1].served {
        Served::Summary(s) => assert_eq!(
            s[&key("/orders", "POST")],
            MethodGuard {
                authorization_type: "NONE".into(),
                api_key_required: false
            },
            "the stage serves the older, open deployment"
        ),
        other => panic!("prod's summary was read: {other:?}"),
    }
    match &api.stages[0].served {
        Served::NotObserved(why) => assert!(why.contains("apiSummary"), "{why}"),
        other => panic!("a deployment without its summary is not observed: {other:?}"),
    }
    let reqs = server.requests();
    assert_eq!(
        paths(&reqs),
        vec![
            "/restapis/abc123/resources",
            "/restapis/abc123/stages",
            "/restapis/abc123/deployments/d1",
            "/restapis/abc123/deployments/d2",
            "/restapis/abc123/requestvalidators",
        ]
    );
    assert!(reqs[2].query.contains("embed=apisummary"), "{}", reqs[2].query);
    assert!(reqs.iter().all(|r| r.method == "GET"), "reads only");
}

/// Two stages serving one deployment: it is read once, and both stages
/// are judged by it.
#[tokio::test]
async fn a_deployment_two_stages_share_is_read_once() {
    use zerofn::providers::aws::model::{ApiRead, Served};
    let server = Scripted::start(
        vec![
            json(r#"{"item":[]}"#),
            json(r#"{"item":[{"stageName":"prod","deploymentId":"d1"},{"stageName":"beta","deploymentId":"d1"}]}"#),
            json(r#"{"id":"d1","createdDate":1700000000,"apiSummary":{}}"#),
            json(r#"{"item":[]}"#),
        ],
        api_error(500, "InternalFailure"),
    )
    .await
    .unwrap();
    let ApiRead::Rest(api) = read_api(&server).await else {
        panic!("a REST API");
    };
    assert_eq!(api.stages.len(), 2);
    assert!(
        api.stages
            .iter()
            .all(|s| matches!(&s.served, Served::Summary(m) if m.is_empty()))
    );
    let reqs = server.requests();
    assert_eq!(
        paths(&reqs),
        vec![
            "/restapis/abc123/resources",
            "/restapis/abc123/stages",
            "/restapis/abc123/deployments/d1",
            "/restapis/abc123/requestvalidators",
        ]
    );
}

/// STS's answer to GetCallerIdentity (query protocol, XML), which the
/// provider asks once for the account it reaches.
fn caller_identity() -> Reply {
    Reply::new(
        200,
        r#"<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><GetCallerIdentityResult><Arn>arn:aws:iam::123456789012:user/zerofn</Arn><UserId>AIDAEXAMPLE</UserId><Account>123456789012</Account></GetCallerIdentityResult><ResponseMetadata><RequestId>1</RequestId></ResponseMetadata></GetCallerIdentityResponse>"#,
    )
    .header("content-type", "text/xml")
}

/// The API as read right before a deployment: /orders guarded, /other open.
fn api_with_an_open_method() -> Reply {
    json(
        r#"{"item":[
        {"id":"r1","path":"/orders","resourceMethods":{"POST":{"httpMethod":"POST","authorizationType":"AWS_IAM","apiKeyRequired":false}}},
        {"id":"r2","path":"/other","resourceMethods":{"GET":{"httpMethod":"GET","authorizationType":"NONE","apiKeyRequired":false}}}]}"#,
    )
}

fn deploy(may_serve_open: &[&str]) -> AwsAction {
    AwsAction::DeployApiStage {
        region: "eu-west-1".into(),
        api_id: "abc123".into(),
        stage_name: "prod".into(),
        may_serve_open: may_serve_open.iter().map(|m| m.to_string()).collect(),
    }
}

/// Right before a stage is deployed, the API is read again: a method
/// opened since the plan read it (one the plan did not allow open) stops
/// the deployment as a conflict, planned afresh next time; the same API
/// with that method allowed is deployed.
#[tokio::test]
async fn a_stage_is_not_deployed_when_the_api_opened_since_it_was_read() {
    let provider = |url: String| async move {
        AwsProvider::new(
            account(&url),
            creds(),
            Arc::new(Metrics::default()),
            tuning(),
            Duration::from_secs(60),
        )
        .await
    };
    let server = Scripted::start(
        vec![caller_identity(), api_with_an_open_method()],
        api_error(500, "InternalFailure"),
    )
    .await
    .unwrap();
    let err = provider(server.url())
        .await
        .apply(&posture(), &deploy(&[]))
        .await
        .unwrap_err();
    assert!(matches!(err, ProviderError::Conflict(_)), "{err}");
    assert!(err.to_string().contains("GET /other"), "{err}");
    assert!(
        !server.requests().iter().any(|r| r.path.contains("/deployments")),
        "nothing deployed"
    );

    let server = Scripted::start(
        vec![
            caller_identity(),
            api_with_an_open_method(),
            Reply::new(201, r#"{"id":"d9","createdDate":1700000000}"#).header("content-type", "application/json"),
        ],
        api_error(500, "InternalFailure"),
    )
    .await
    .unwrap();
    provider(server.url())
        .await
        .apply(&posture(), &deploy(&["GET /other"]))
        .await
        .expect("deployed");
    let last = server.requests().pop().expect("requests");
    assert_eq!(
        (last.method.as_str(), last.path.as_str()),
        ("POST", "/restapis/abc123/deployments")
    );
}

// ------------------------------------------------------------ HTTP APIs
// LocalStack community does not serve API Gateway v2: its answers are
// scripted here in the shapes of the API Gateway v2 API reference
// (`Routes` and `Integrations`: `items`, `nextToken`; a route's `target`
// is `integrations/<id>`).

fn json(body: &str) -> Reply {
    Reply::new(200, body).header("content-type", "application/json")
}

fn api_error(status: u16, code: &str) -> Reply {
    Reply::new(status, r#"{"message":"scripted"}"#)
        .header("x-amzn-errortype", code)
        .header("content-type", "application/json")
}

async fn read_api(server: &Scripted) -> zerofn::providers::aws::model::ApiRead {
    let clients = client::build(
        &account(&server.url()),
        creds(),
        Arc::new(Metrics::default()),
        &tuning(),
    )
    .await;
    let pace = zerofn::providers::pace::shared("test:apigw-v2", 1000);
    zerofn::providers::aws::apigw::read(&clients, &pace, "eu-west-1", "abc123", FN).await
}

/// An id REST does not know is read as an HTTP API: every integrations
/// page, then the routes; only routes whose integration targets the
/// function count, with their authorization.
#[tokio::test]
async fn an_http_api_is_read_through_its_integrations_and_routes() {
    use zerofn::providers::aws::model::{ApiRead, ApiRoute};
    let server = Scripted::start(
        vec![
            api_error(404, "NotFoundException"),
            json(&format!(
                r#"{{"items":[{{"integrationId":"i1","integrationType":"AWS_PROXY","integrationUri":"{FN}","payloadFormatVersion":"2.0"}}],"nextToken":"t2"}}"#
            )),
            json(r#"{"items":[{"integrationId":"i2","integrationType":"HTTP_PROXY","integrationUri":"https://example.com","integrationMethod":"ANY"}]}"#),
            json(
                r#"{"items":[
                {"routeId":"r1","routeKey":"POST /orders","target":"integrations/i1","authorizationType":"NONE","apiKeyRequired":false},
                {"routeId":"r2","routeKey":"GET /me","target":"integrations/i1","authorizationType":"JWT","authorizerId":"a1"},
                {"routeId":"r3","routeKey":"GET /other","target":"integrations/i2","authorizationType":"NONE"}]}"#,
            ),
        ],
        api_error(500, "InternalFailure"),
    )
    .await
    .unwrap();
    let read = read_api(&server).await;
    assert_eq!(
        read,
        ApiRead::Http(vec![
            ApiRoute {
                route_id: "r1".into(),
                route_key: "POST /orders".into(),
                authorization_type: "NONE".into(),
                authorizer_id: None,
            },
            ApiRoute {
                route_id: "r2".into(),
                route_key: "GET /me".into(),
                authorization_type: "JWT".into(),
                authorizer_id: Some("a1".into()),
            },
        ])
    );
    let reqs = server.requests();
    assert_eq!(
        paths(&reqs),
        vec![
            "/restapis/abc123/resources",
            "/v2/apis/abc123/integrations",
            "/v2/apis/abc123/integrations",
            "/v2/apis/abc123/routes",
        ]
    );
    assert!(reqs[0].query.contains("embed=methods"), "{}", reqs[0].query);
    assert!(reqs[2].query.contains("nextToken=t2"), "{}", reqs[2].query);
    assert!(reqs.iter().all(|r| r.method == "GET"), "reads only");
}

/// A denied read is kept with its reason: the API is not observed, never
/// taken as having no routes.
#[tokio::test]
async fn an_http_api_that_cannot_be_read_is_not_observed() {
    use zerofn::providers::aws::model::ApiRead;
    let server = Scripted::start(
        vec![
            api_error(404, "NotFoundException"),
            api_error(403, "AccessDeniedException"),
        ],
        api_error(403, "AccessDeniedException"),
    )
    .await
    .unwrap();
    match read_api(&server).await {
        ApiRead::NotObserved(why) => assert!(why.contains("AccessDeniedException"), "{why}"),
        other => panic!("a denied read must not be observed: {other:?}"),
    }
}
