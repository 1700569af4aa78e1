//! Reading the APIs in front of a function from API Gateway: only the APIs
//! the function's resource policy names, never a scan of the account. A
//! REST API (v1) is read with GetResources (embed=methods), GetStages, each
//! stage's deployment (GetDeployment, embed=apisummary: what the stage
//! serves, which can differ from the API's methods until it is redeployed)
//! and GetRequestValidators; an id REST does not know is read as an HTTP API
//! (v2: GetRoutes, GetIntegrations). Every page is paced on the API
//! Gateway quota of the API's Region; a failed read is kept as the reason,
//! never a guess.

use super::client::{Clients, map_err};
use super::front_doors::invokes;
use super::model::{
    ApiRead, ApiRoute, ApiStage, MethodGuard, MethodKey, RequestValidator, RestApi, RestMethod, Served,
};
use crate::providers::ProviderError;
use crate::providers::pace::Pacer;
use std::collections::{BTreeMap, HashMap};

/// Pages read of one list before giving up: an API this large is reported
/// as not read rather than read without end.
const MAX_PAGES: usize = 20;

/// What zerofn can see of API `id` in `region` that reaches `function_arn`,
/// every call waiting on `pace` (the API Gateway quota of that Region).
pub async fn read(clients: &Clients, pace: &Pacer, region: &str, id: &str, function_arn: &str) -> ApiRead {
    let (Some(v1), Some(v2)) = (clients.apigateway.get(region), clients.apigatewayv2.get(region)) else {
        return ApiRead::NotObserved(format!(
            "region {region} is not in the account's regions; add it to spec.aws.regions"
        ));
    };
    match rest(v1, pace, id, function_arn).await {
        Ok(api) => ApiRead::Rest(api),
        // Not a REST API: REST and HTTP API ids share the execute-api name.
        Err(ProviderError::NotFound(_)) => match http(v2, pace, id, function_arn).await {
            Ok(routes) => ApiRead::Http(routes),
            Err(e) => ApiRead::NotObserved(e.to_string()),
        },
        Err(e) => ApiRead::NotObserved(e.to_string()),
    }
}

async fn rest(
    c: &aws_sdk_apigateway::Client,
    pace: &Pacer,
    id: &str,
    function_arn: &str,
) -> Result<RestApi, ProviderError> {
    let resources = resources(c, pace, id).await?;
    let mut api = RestApi {
        draft: draft_of(&resources),
        ..RestApi::default()
    };
    for r in &resources {
        for (verb, m) in r.resource_methods().into_iter().flatten() {
            let uri = match m.method_integration().and_then(|i| i.uri()) {
                Some(uri) => Some(uri.to_string()),
                // Not embedded: the integration is read on its own.
                None => integration_uri(c, pace, id, r.id().unwrap_or_default(), verb).await?,
            };
            if uri.is_some_and(|u| invokes(&u, function_arn)) {
                api.methods.push(rest_method(r, verb, m));
            }
        }
    }
    api.stages = stages(c, pace, id).await?;
    api.validators = validators(c, pace, id).await?;
    Ok(api)
}

/// Every method of a REST API as the API holds it now (what a deployment
/// would publish): read again right before zerofn deploys a stage.
pub async fn draft(
    c: &aws_sdk_apigateway::Client,
    pace: &Pacer,
    id: &str,
) -> Result<BTreeMap<MethodKey, MethodGuard>, ProviderError> {
    Ok(draft_of(&resources(c, pace, id).await?))
}

/// Every resource of the API, its methods embedded, every page.
async fn resources(
    c: &aws_sdk_apigateway::Client,
    pace: &Pacer,
    id: &str,
) -> Result<Vec<aws_sdk_apigateway::types::Resource>, ProviderError> {
    let pages = every_page(pace, "GetResources", id, |position| async move {
        let page = c
            .get_resources()
            .rest_api_id(id)
            .embed("methods")
            .limit(500)
            .set_position(position)
            .send()
            .await
            .map_err(|e| map_err("GetResources", id, e))?;
        let next = page.position().map(str::to_string);
        Ok((page.items().to_vec(), next))
    })
    .await?;
    Ok(pages.into_iter().flatten().collect())
}

/// Every page of one list, each paced, the next asked for with the token
/// (REST `position`, HTTP API `nextToken`) the last one gave; a list of more
/// than [`MAX_PAGES`] is refused as too large rather than read without end.
async fn every_page<T, F, Fut>(pace: &Pacer, op: &str, id: &str, mut fetch: F) -> Result<Vec<T>, ProviderError>
where
    F: FnMut(Option<String>) -> Fut,
    Fut: std::future::Future<Output = Result<(T, Option<String>), ProviderError>>,
{
    let mut pages = Vec::new();
    let mut token = None;
    for _ in 0..MAX_PAGES {
        pace.ready().await;
        let (page, next) = fetch(token).await?;
        pages.push(page);
        token = next.filter(|t| !t.is_empty());
        if token.is_none() {
            return Ok(pages);
        }
    }
    Err(too_large(op, id))
}

fn draft_of(resources: &[aws_sdk_apigateway::types::Resource]) -> BTreeMap<MethodKey, MethodGuard> {
    let mut draft = BTreeMap::new();
    for r in resources {
        for (verb, m) in r.resource_methods().into_iter().flatten() {
            draft.insert(
                (
                    r.path().unwrap_or_default().to_string(),
                    m.http_method().unwrap_or(verb).to_string(),
                ),
                MethodGuard {
                    authorization_type: m.authorization_type().unwrap_or("NONE").to_string(),
                    api_key_required: m.api_key_required().unwrap_or(false),
                },
            );
        }
    }
    draft
}

fn too_large(op: &str, id: &str) -> ProviderError {
    ProviderError::Cloud(format!("{op} {id}: more than {MAX_PAGES} pages"))
}

fn rest_method(
    r: &aws_sdk_apigateway::types::Resource,
    verb: &str,
    m: &aws_sdk_apigateway::types::Method,
) -> RestMethod {
    RestMethod {
        resource_id: r.id().unwrap_or_default().to_string(),
        path: r.path().unwrap_or_default().to_string(),
        http_method: m.http_method().unwrap_or(verb).to_string(),
        authorization_type: m.authorization_type().unwrap_or("NONE").to_string(),
        authorizer_id: m.authorizer_id().filter(|a| !a.is_empty()).map(str::to_string),
        request_validator_id: m.request_validator_id().filter(|v| !v.is_empty()).map(str::to_string),
        request_models: m
            .request_models()
            .into_iter()
            .flatten()
            .map(|(k, _)| k.clone())
            .collect(),
        request_parameters: m
            .request_parameters()
            .into_iter()
            .flatten()
            .map(|(k, _)| k.clone())
            .collect(),
    }
}

/// A method's integration URI (None: the method has no integration).
async fn integration_uri(
    c: &aws_sdk_apigateway::Client,
    pace: &Pacer,
    id: &str,
    resource_id: &str,
    verb: &str,
) -> Result<Option<String>, ProviderError> {
    pace.ready().await;
    match c
        .get_integration()
        .rest_api_id(id)
        .resource_id(resource_id)
        .http_method(verb)
        .send()
        .await
    {
        Ok(i) => Ok(i.uri().map(str::to_string)),
        Err(e) => match map_err("GetIntegration", &format!("{id}/{resource_id}/{verb}"), e) {
            ProviderError::NotFound(_) => Ok(None),
            other => Err(other),
        },
    }
}

/// Each stage with what its deployment serves. A deployment that cannot
/// be read, or is answered without its apiSummary, is kept as not observed
/// with the reason: what the stage serves is then not judged.
async fn stages(c: &aws_sdk_apigateway::Client, pace: &Pacer, id: &str) -> Result<Vec<ApiStage>, ProviderError> {
    pace.ready().await;
    let out = c
        .get_stages()
        .rest_api_id(id)
        .send()
        .await
        .map_err(|e| map_err("GetStages", id, e))?;
    let mut stages = Vec::new();
    // Stages often share a deployment: each is read once.
    let mut read: HashMap<&str, Served> = HashMap::new();
    for s in out.item() {
        let (Some(name), deployment) = (s.stage_name(), s.deployment_id().unwrap_or_default()) else {
            continue;
        };
        let served = match read.get(deployment) {
            Some(known) => known.clone(),
            None => {
                let fresh = served(c, pace, id, deployment).await;
                read.insert(deployment, fresh.clone());
                fresh
            }
        };
        stages.push(ApiStage {
            name: name.to_string(),
            deployment_id: deployment.to_string(),
            served,
        });
    }
    stages.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(stages)
}

async fn served(c: &aws_sdk_apigateway::Client, pace: &Pacer, id: &str, deployment: &str) -> Served {
    if deployment.is_empty() {
        return Served::NotObserved("the stage names no deployment".into());
    }
    pace.ready().await;
    let read = c
        .get_deployment()
        .rest_api_id(id)
        .deployment_id(deployment)
        .embed("apisummary")
        .send()
        .await;
    match read {
        Ok(d) => match d.api_summary() {
            Some(summary) => Served::Summary(summary_of(summary)),
            None => Served::NotObserved(format!(
                "GetDeployment {id}/{deployment} answered without its apiSummary"
            )),
        },
        Err(e) => Served::NotObserved(map_err("GetDeployment", &format!("{id}/{deployment}"), e).to_string()),
    }
}

type Summary = HashMap<String, HashMap<String, aws_sdk_apigateway::types::MethodSnapshot>>;

fn summary_of(summary: &Summary) -> BTreeMap<MethodKey, MethodGuard> {
    summary
        .iter()
        .flat_map(|(path, methods)| {
            methods.iter().map(move |(verb, m)| {
                (
                    (path.clone(), verb.clone()),
                    MethodGuard {
                        authorization_type: m.authorization_type().unwrap_or("NONE").to_string(),
                        api_key_required: m.api_key_required(),
                    },
                )
            })
        })
        .collect()
}

async fn validators(
    c: &aws_sdk_apigateway::Client,
    pace: &Pacer,
    id: &str,
) -> Result<BTreeMap<String, RequestValidator>, ProviderError> {
    let pages = every_page(pace, "GetRequestValidators", id, |position| async move {
        let page = c
            .get_request_validators()
            .rest_api_id(id)
            .limit(500)
            .set_position(position)
            .send()
            .await
            .map_err(|e| map_err("GetRequestValidators", id, e))?;
        let next = page.position().map(str::to_string);
        Ok((page.items().to_vec(), next))
    })
    .await?;
    Ok(pages
        .into_iter()
        .flatten()
        .filter_map(|v| {
            let validator = RequestValidator {
                body: v.validate_request_body(),
                parameters: v.validate_request_parameters(),
            };
            v.id.map(|vid| (vid, validator))
        })
        .collect())
}

/// The routes of an HTTP API whose integration invokes the function: the
/// integrations first (a route's target is `integrations/<id>`).
async fn http(
    c: &aws_sdk_apigatewayv2::Client,
    pace: &Pacer,
    id: &str,
    function_arn: &str,
) -> Result<Vec<ApiRoute>, ProviderError> {
    let integrations = every_page(pace, "GetIntegrations", id, |token| async move {
        let page = c
            .get_integrations()
            .api_id(id)
            .set_next_token(token)
            .send()
            .await
            .map_err(|e| map_err("GetIntegrations", id, e))?;
        let next = page.next_token().map(str::to_string);
        Ok((page.items().to_vec(), next))
    })
    .await?;
    let reaching: HashMap<String, bool> = integrations
        .iter()
        .flatten()
        .filter_map(|i| {
            let hit = i.integration_uri().is_some_and(|u| invokes(u, function_arn));
            i.integration_id().map(|iid| (iid.to_string(), hit))
        })
        .collect();
    let routes = every_page(pace, "GetRoutes", id, |token| async move {
        let page = c
            .get_routes()
            .api_id(id)
            .set_next_token(token)
            .send()
            .await
            .map_err(|e| map_err("GetRoutes", id, e))?;
        let next = page.next_token().map(str::to_string);
        Ok((page.items().to_vec(), next))
    })
    .await?;
    Ok(routes
        .iter()
        .flatten()
        .filter(|r| {
            let target = r.target().and_then(|t| t.strip_prefix("integrations/"));
            target.is_some_and(|t| reaching.get(t).copied().unwrap_or(false))
        })
        .map(|r| ApiRoute {
            route_id: r.route_id().unwrap_or_default().to_string(),
            route_key: r.route_key().unwrap_or_default().to_string(),
            authorization_type: r
                .authorization_type()
                .map(|a| a.as_str().to_string())
                .unwrap_or_else(|| "NONE".into()),
            authorizer_id: r.authorizer_id().map(str::to_string),
        })
        .collect())
}
