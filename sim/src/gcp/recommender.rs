//! The Recommender's IAM policy insights
//! (`recommender.projects.locations.insightTypes.insights.list`, discovery
//! document `recommender.v1.json`): `GET
//! v1/projects/{p}/locations/global/insightTypes/google.iam.policy.Insight/insights`,
//! answering the insights seeded with [`InsightSeed`], in the shape the IAM
//! documentation shows for a policy insight on a project role binding.

use super::errors::{GcpError, GcpResult};
use super::request::{Query, list_page, page_offset};
use super::world::State;
use serde_json::{Value, json};

/// The only insight type served: IAM policy insights, kept globally.
pub(crate) const POLICY_INSIGHT: &str = "google.iam.policy.Insight";

/// A permissions-usage insight about one member's binding of one project
/// role.
#[derive(Clone, Debug)]
pub struct InsightSeed {
    pub(crate) project: String,
    pub(crate) member: String,
    pub(crate) role: String,
    pub(crate) exercised: Vec<String>,
    pub(crate) total: u64,
    pub(crate) observation_days: u64,
}

impl InsightSeed {
    /// `member` (e.g. `serviceAccount:fn@p.iam.gserviceaccount.com`) holds
    /// `role`, of `total` permissions, and used `exercised` of them in the
    /// last 90 days.
    pub fn new(project: &str, member: &str, role: &str, exercised: &[&str], total: u64) -> InsightSeed {
        InsightSeed {
            project: project.to_string(),
            member: member.to_string(),
            role: role.to_string(),
            exercised: exercised.iter().map(|p| p.to_string()).collect(),
            total,
            observation_days: 90,
        }
    }

    /// How far back the insight looked (default 90 days).
    pub fn observation_days(mut self, days: u64) -> InsightSeed {
        self.observation_days = days;
        self
    }
}

/// An insight as the API answers it, named under the project's number.
pub(crate) fn to_json(seed: &InsightSeed, number: u64, index: usize) -> Value {
    let used = seed.exercised.len();
    json!({
        "name": format!("projects/{number}/locations/global/insightTypes/{POLICY_INSIGHT}/insights/{index:08x}-0000-4000-8000-000000000000"),
        "description": format!("{used} of the permissions in this role binding were used in the past {} days.", seed.observation_days),
        "content": {
            "role": seed.role,
            "member": seed.member,
            "condition": {"expression": "", "title": "", "description": "", "location": ""},
            "exercisedPermissions": seed.exercised.iter().map(|p| json!({"permission": p})).collect::<Vec<_>>(),
            "inferredPermissions": [],
            // int64 in proto3 JSON: a string.
            "currentTotalPermissionsCount": seed.total.to_string(),
        },
        "lastRefreshTime": "2026-12-01T07:00:00Z",
        "observationPeriod": format!("{}s", seed.observation_days * 86_400),
        "stateInfo": {"state": "ACTIVE"},
        "category": "SECURITY",
        "targetResources": [format!("//cloudresourcemanager.googleapis.com/projects/{number}")],
        "insightSubtype": "PERMISSIONS_USAGE",
        "etag": format!("\"{index:016x}\""),
        "severity": if used == 0 { "HIGH" } else { "LOW" },
    })
}

pub(crate) fn handle_list(
    state: &State,
    query: &Query,
    project: &str,
    location: &str,
    insight_type: &str,
) -> GcpResult<Value> {
    query.check(&["pageSize", "pageToken", "filter"])?;
    if query.get("filter").is_some_and(|f| !f.is_empty()) {
        return Err(GcpError::invalid("the GCP stand-in evaluates no insight filter"));
    }
    let parent = format!("projects/{project}/locations/{location}/insightTypes/{insight_type}");
    let p = state
        .project(project)
        .ok_or_else(|| GcpError::project_denied("recommender.iamPolicyInsights.list", &parent))?;
    if location != "global" || insight_type != POLICY_INSIGHT {
        return Err(GcpError::invalid(format!(
            "the GCP stand-in serves only {POLICY_INSIGHT} insights in location global, not {parent}"
        )));
    }
    let size = query.page_size(10, 1000)?;
    let scope = format!("insights:{}", p.id);
    let offset = page_offset(query.get("pageToken"), &scope)?;
    let all: Vec<Value> = state
        .insights
        .iter()
        .enumerate()
        .filter(|(_, s)| s.project == p.id)
        .map(|(i, s)| to_json(s, p.number, i))
        .collect();
    Ok(list_page("insights", &all, offset, size, &scope))
}
