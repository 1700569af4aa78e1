//! Which permissions a role used, from IAM's last-accessed report: a job
//! (`GenerateServiceLastAccessedDetails`, `Granularity=ACTION_LEVEL`) polled
//! with `GetServiceLastAccessedDetails` until it is `COMPLETED` or `FAILED`,
//! within the provider's operation deadline.
//!
//! Never an error to the caller: a report that could not be had is
//! `NotObserved` with the error, so the posture's other controls are still
//! judged and the unused-permission check is reported as not judged.

use super::client::map_err;
use super::model::{AccessReport, LastAccessed, ServiceAccess, TrackedAction};
use crate::providers::ProviderError;
use crate::providers::retry::{Policy, Progress, Unfinished};
use aws_sdk_iam::operation::get_service_last_accessed_details::GetServiceLastAccessedDetailsOutput;
use aws_sdk_iam::types::{AccessAdvisorUsageGranularityType, JobStatusType, ServiceLastAccessed};
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Pages of one report read at most: a marker that never ends is an error,
/// not a loop.
const MAX_PAGES: usize = 100;

/// Completed reports by role ARN, with when they were read. A job is work
/// IAM does for minutes and its data changes by the hour at most, so a
/// report is reused for the posture's refresh interval. Only completed
/// reports are kept: a failure is asked again at the next observation.
#[derive(Default)]
pub struct ReportCache(Mutex<HashMap<String, (Instant, AccessReport)>>);

impl ReportCache {
    pub fn fresh(&self, role_arn: &str, refresh: Duration) -> Option<AccessReport> {
        let held = self.0.lock().unwrap_or_else(|e| e.into_inner());
        held.get(role_arn)
            .filter(|(at, _)| at.elapsed() < refresh)
            .map(|(_, r)| r.clone())
    }

    pub fn keep(&self, role_arn: &str, report: &AccessReport) {
        let mut held = self.0.lock().unwrap_or_else(|e| e.into_inner());
        held.insert(role_arn.to_string(), (Instant::now(), report.clone()));
    }
}

/// The role's last-accessed report: from the cache while fresh, otherwise
/// from a new job.
pub async fn last_accessed(
    iam: &aws_sdk_iam::Client,
    cache: &ReportCache,
    role_arn: &str,
    refresh: Duration,
    wait: Policy<'_>,
) -> LastAccessed {
    if let Some(r) = cache.fresh(role_arn, refresh) {
        return LastAccessed::Observed(r);
    }
    match report(iam, role_arn, wait).await {
        Ok(r) => {
            cache.keep(role_arn, &r);
            LastAccessed::Observed(r)
        }
        Err(e) => LastAccessed::NotObserved(e),
    }
}

/// Start the job and wait for it until the deadline of `wait`.
pub async fn report(
    iam: &aws_sdk_iam::Client,
    role_arn: &str,
    wait: Policy<'_>,
) -> Result<AccessReport, ProviderError> {
    // Each call is bounded by the client's own timeouts (attempt and call
    // deadline, `client::build`); `wait` bounds the waiting for the job.
    let started = iam
        .generate_service_last_accessed_details()
        .arn(role_arn)
        .granularity(AccessAdvisorUsageGranularityType::ActionLevel)
        .send()
        .await
        .map_err(|e| map_err("GenerateServiceLastAccessedDetails", role_arn, e))?;
    let Some(job) = started.job_id().filter(|j| !j.is_empty()) else {
        return Err(ProviderError::Cloud(format!(
            "GenerateServiceLastAccessedDetails {role_arn}: the answer names no JobId"
        )));
    };
    wait.poll(None, || check(iam, job)).await.map_err(|u| match u {
        Unfinished::Failed(e) => e,
        // The job never finished: not judged, reported with the job named
        // so it can be looked up.
        Unfinished::Deadline => ProviderError::Cloud(format!(
            "last-accessed job {job} for {role_arn} was still IN_PROGRESS at its deadline"
        )),
    })
}

/// One look at the job: pending, failed, or done with every page read.
async fn check(iam: &aws_sdk_iam::Client, job: &str) -> Result<Progress<AccessReport>, ProviderError> {
    let first = page(iam, job, None).await?;
    match first.job_status() {
        JobStatusType::InProgress => Ok(Progress::Pending(None)),
        JobStatusType::Completed => collect(iam, job, first).await.map(Progress::Done),
        JobStatusType::Failed => {
            let why = first
                .error()
                .map(|e| format!("{}: {}", e.code(), e.message()))
                .unwrap_or_else(|| "IAM gave no reason".into());
            Err(ProviderError::Cloud(format!("last-accessed job {job} FAILED: {why}")))
        }
        other => Err(ProviderError::Cloud(format!(
            "last-accessed job {job}: unknown JobStatus {}",
            other.as_str()
        ))),
    }
}

async fn page(
    iam: &aws_sdk_iam::Client,
    job: &str,
    marker: Option<String>,
) -> Result<GetServiceLastAccessedDetailsOutput, ProviderError> {
    iam.get_service_last_accessed_details()
        .job_id(job)
        .set_marker(marker)
        .send()
        .await
        .map_err(|e| map_err("GetServiceLastAccessedDetails", job, e))
}

/// The completed report, every page of it.
async fn collect(
    iam: &aws_sdk_iam::Client,
    job: &str,
    first: GetServiceLastAccessedDetailsOutput,
) -> Result<AccessReport, ProviderError> {
    let as_of = timestamp(first.job_completion_date())
        .filter(|t| t.as_second() > 0)
        .ok_or_else(|| {
            ProviderError::Cloud(format!(
                "last-accessed job {job}: COMPLETED without a JobCompletionDate"
            ))
        })?;
    let mut services = BTreeMap::new();
    let mut current = first;
    for _ in 0..MAX_PAGES {
        for s in current.services_last_accessed() {
            services.insert(s.service_namespace().to_ascii_lowercase(), service(s));
        }
        let next = current
            .marker()
            .filter(|m| current.is_truncated() && !m.is_empty())
            .map(str::to_string);
        let Some(marker) = next else {
            return Ok(AccessReport { as_of, services });
        };
        current = page(iam, job, Some(marker)).await?;
    }
    Err(ProviderError::Cloud(format!(
        "last-accessed job {job}: more than {MAX_PAGES} pages"
    )))
}

fn service(s: &ServiceLastAccessed) -> ServiceAccess {
    ServiceAccess {
        last_authenticated: s.last_authenticated().and_then(timestamp),
        actions: s
            .tracked_actions_last_accessed()
            .iter()
            .filter_map(|a| {
                Some(TrackedAction {
                    name: a.action_name()?.to_string(),
                    last_accessed: a.last_accessed_time().and_then(timestamp),
                })
            })
            .collect(),
    }
}

fn timestamp(t: &aws_smithy_types::DateTime) -> Option<jiff::Timestamp> {
    jiff::Timestamp::from_second(t.secs()).ok()
}
