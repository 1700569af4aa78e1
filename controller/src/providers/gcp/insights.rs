//! IAM policy insights (`google.iam.policy.Insight`) of the function's
//! service account: which of its project roles it used, from the
//! Recommender API (`recommender.projects.locations.insightTypes.insights.list`,
//! REST, `GET v1/projects/{p}/locations/global/insightTypes/google.iam.policy.Insight/insights`).
//!
//! There is no google-cloud-rust client for the Recommender in the tree, so
//! the call is made with the HTTP client the other GCP clients ride on,
//! with the same credentials, through the same `Caller` (counted, retried,
//! bounded). Never an error to the caller: insights that could not be read
//! are `NotObserved`, so the posture's other controls are still judged.

use super::client::Caller;
use super::model::{RoleInsight, RoleUsage};
use crate::providers::{ProviderError, Tuning};
use google_cloud_auth::credentials::{CacheableResource, Credentials};
use google_cloud_gax::error::Error as GaxError;
use google_cloud_gax::error::rpc::Status;
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub const RECOMMENDER: &str = "https://recommender.googleapis.com";
/// Pages of one listing read at most: a token that never ends is an error.
const MAX_PAGES: usize = 100;
/// Policy insights are kept for the project as a whole (`locations/global`).
const INSIGHT_TYPE: &str = "locations/global/insightTypes/google.iam.policy.Insight";

/// A Google REST API without a google-cloud-rust client in the tree (the
/// Recommender, Cloud Logging): its endpoint, the account's credentials and
/// an HTTP client bounded by the attempt timeout.
pub struct RestApi {
    http: reqwest::Client,
    pub endpoint: String,
    credentials: Credentials,
}

impl RestApi {
    pub fn new(
        endpoint: Option<String>,
        default_endpoint: &str,
        credentials: Credentials,
        tuning: &Tuning,
    ) -> Result<Self, ProviderError> {
        let mut certs = Vec::new();
        for pem in &tuning.extra_roots {
            certs.push(
                reqwest::Certificate::from_pem(pem.as_bytes())
                    .map_err(|e| ProviderError::Config(format!("extra root certificate: {e}")))?,
            );
        }
        let mut b = reqwest::Client::builder()
            .timeout(tuning.attempt_timeout)
            .connect_timeout(Duration::from_secs(5));
        if !certs.is_empty() {
            b = b.tls_certs_merge(certs);
        }
        let http = b
            .build()
            .map_err(|e| ProviderError::Config(format!("{default_endpoint} client: {e}")))?;
        Ok(RestApi {
            http,
            endpoint: endpoint
                .unwrap_or_else(|| default_endpoint.into())
                .trim_end_matches('/')
                .to_string(),
            credentials,
        })
    }

    /// The credentials' headers; a credential that cannot be had is the
    /// account's failure, not a transient one.
    pub async fn headers(&self) -> Result<reqwest::header::HeaderMap, ProviderError> {
        match self.credentials.headers(http::Extensions::new()).await {
            Ok(CacheableResource::New { data, .. }) => Ok(data),
            Ok(CacheableResource::NotModified) => Ok(reqwest::header::HeaderMap::new()),
            Err(e) => Err(ProviderError::Auth(format!("credentials for {}: {e}", self.endpoint))),
        }
    }

    /// One GET, answered as the google-cloud-rust clients answer: a Google
    /// error body becomes a service error with its code, anything else an
    /// HTTP error with its status.
    pub async fn get<T: serde::de::DeserializeOwned>(
        &self,
        url: &str,
        headers: reqwest::header::HeaderMap,
    ) -> Result<T, GaxError> {
        let response = self.http.get(url).headers(headers).send().await.map_err(transport)?;
        let status = response.status().as_u16();
        let response_headers = response.headers().clone();
        let body = response.bytes().await.map_err(transport)?;
        if (200..300).contains(&status) {
            return serde_json::from_slice(&body).map_err(GaxError::deser);
        }
        Err(match Status::try_from(&body) {
            Ok(s) => GaxError::service(s),
            Err(_) => GaxError::http(status, response_headers, body),
        })
    }
}

fn transport(e: reqwest::Error) -> GaxError {
    if e.is_timeout() {
        GaxError::timeout(e)
    } else if e.is_connect() {
        GaxError::connect(e)
    } else {
        GaxError::io(e)
    }
}

/// One page of `insights.list`, only the fields read.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct Page {
    insights: Vec<Insight>,
    next_page_token: String,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct Insight {
    name: String,
    content: Content,
    last_refresh_time: String,
    /// A protobuf Duration in JSON: seconds with an `s`, e.g. `7776000s`.
    observation_period: String,
    insight_subtype: String,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct Content {
    role: String,
    member: String,
    condition: Option<Condition>,
    exercised_permissions: Vec<serde_json::Value>,
    inferred_permissions: Vec<serde_json::Value>,
    /// An int64, which proto3 JSON writes as a string.
    current_total_permissions_count: Option<serde_json::Value>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Condition {
    expression: String,
}

/// Insights by service account email, with when they were read: reused for
/// the posture's refresh interval (Google refreshes them daily).
#[derive(Default)]
pub struct InsightCache(Mutex<HashMap<String, (Instant, Vec<RoleInsight>)>>);

/// The account's role insights: from the cache while fresh, otherwise read.
pub async fn role_usage(
    recommender: &RestApi,
    caller: &Caller,
    cache: &InsightCache,
    project: &str,
    email: &str,
    refresh: Duration,
) -> RoleUsage {
    let cached = {
        let held = cache.0.lock().unwrap_or_else(|e| e.into_inner());
        held.get(email)
            .filter(|(at, _)| at.elapsed() < refresh)
            .map(|(_, v)| v.clone())
    };
    if let Some(v) = cached {
        return RoleUsage::Observed(v);
    }
    match list(recommender, caller, project, email).await {
        Ok(v) => {
            let mut held = cache.0.lock().unwrap_or_else(|e| e.into_inner());
            held.insert(email.to_string(), (Instant::now(), v.clone()));
            RoleUsage::Observed(v)
        }
        Err(e) => RoleUsage::NotObserved(e),
    }
}

/// Every policy insight of the project about `email`'s unconditional
/// bindings, page by page.
pub async fn list(
    recommender: &RestApi,
    caller: &Caller,
    project: &str,
    email: &str,
) -> Result<Vec<RoleInsight>, ProviderError> {
    let parent = format!("projects/{project}/{INSIGHT_TYPE}");
    let member = format!("serviceAccount:{email}");
    let mut out = Vec::new();
    let mut token = String::new();
    for _ in 0..MAX_PAGES {
        let mut url = format!("{}/v1/{parent}/insights", recommender.endpoint);
        if !token.is_empty() {
            url.push_str("?pageToken=");
            url.extend(percent_encoding::utf8_percent_encode(
                &token,
                percent_encoding::NON_ALPHANUMERIC,
            ));
        }
        let headers = recommender.headers().await?;
        let page: Page = caller
            .call("ListInsights", &parent, || recommender.get(&url, headers.clone()))
            .await?;
        out.extend(
            page.insights
                .iter()
                .filter(|i| i.content.member == member)
                .filter_map(role_insight),
        );
        if page.next_page_token.is_empty() {
            return Ok(out);
        }
        token = page.next_page_token;
    }
    Err(ProviderError::Cloud(format!(
        "ListInsights {parent}: more than {MAX_PAGES} pages"
    )))
}

/// A permissions-usage insight about an unconditional binding, as plain
/// data; anything else (another subtype, a conditional binding, a period
/// that does not parse) says nothing zerofn judges on.
fn role_insight(i: &Insight) -> Option<RoleInsight> {
    let conditional = i.content.condition.as_ref().is_some_and(|c| !c.expression.is_empty());
    if i.insight_subtype != "PERMISSIONS_USAGE" || conditional || i.content.role.is_empty() {
        return None;
    }
    let seconds: u64 = i
        .observation_period
        .strip_suffix('s')?
        .split('.')
        .next()?
        .parse()
        .ok()?;
    let total = match &i.content.current_total_permissions_count {
        Some(serde_json::Value::String(s)) => s.parse().ok(),
        Some(serde_json::Value::Number(n)) => n.as_u64(),
        _ => None,
    };
    Some(RoleInsight {
        name: i.name.clone(),
        role: i.content.role.clone(),
        used_permissions: i.content.exercised_permissions.len() + i.content.inferred_permissions.len(),
        total_permissions: total,
        observation_period: Duration::from_secs(seconds),
        last_refresh: i.last_refresh_time.parse().ok(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shape of an insight as the RestApi documents it (a policy
    /// insight on a project role binding).
    const DOCUMENTED: &str = r#"{
      "insights": [{
        "name": "projects/123456789012/locations/global/insightTypes/google.iam.policy.Insight/insights/07841f74",
        "description": "4 of the permissions in this role binding were used in the past 90 days.",
        "content": {
          "role": "roles/editor",
          "member": "serviceAccount:fn@p.iam.gserviceaccount.com",
          "condition": {"expression": "", "title": "", "description": "", "location": ""},
          "exercisedPermissions": [{"permission": "storage.objects.get"}],
          "inferredPermissions": [{"permission": "resourcemanager.projects.get"}],
          "currentTotalPermissionsCount": "5069"
        },
        "lastRefreshTime": "2026-11-30T07:00:00Z",
        "observationPeriod": "7776000s",
        "stateInfo": {"state": "ACTIVE"},
        "category": "SECURITY",
        "targetResources": ["//cloudresourcemanager.googleapis.com/projects/123456789012"],
        "insightSubtype": "PERMISSIONS_USAGE",
        "etag": "\"d3cdec23cc712bd0\"",
        "severity": "HIGH"
      }],
      "nextPageToken": "t2"
    }"#;

    #[test]
    fn a_documented_insight_reads_as_role_usage() {
        let page: Page = serde_json::from_str(DOCUMENTED).expect("documented shape");
        assert_eq!(page.next_page_token, "t2");
        let r = role_insight(&page.insights[0]).expect("a permissions-usage insight");
        assert_eq!(r.role, "roles/editor");
        assert_eq!(r.used_permissions, 2);
        assert_eq!(r.total_permissions, Some(5069));
        assert_eq!(r.observation_period, Duration::from_secs(90 * 86_400));
        assert_eq!(
            r.last_refresh.map(|t| t.to_string()).as_deref(),
            Some("2026-11-30T07:00:00Z")
        );
    }

    #[test]
    fn conditional_bindings_and_other_subtypes_say_nothing() {
        let mut page: Page = serde_json::from_str(DOCUMENTED).expect("documented shape");
        page.insights[0].content.condition = Some(Condition {
            expression: "request.time < timestamp('2027-01-01T00:00:00Z')".into(),
        });
        assert!(role_insight(&page.insights[0]).is_none());
        let mut page: Page = serde_json::from_str(DOCUMENTED).expect("documented shape");
        page.insights[0].insight_subtype = "PERMISSIONS_USAGE_STORAGE_BUCKET".into();
        assert!(role_insight(&page.insights[0]).is_none());
    }
}
