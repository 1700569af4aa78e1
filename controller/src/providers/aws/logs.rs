//! The function's CloudWatch Logs group: its retention and where its
//! subscription filters deliver (`observability.aws.logRetentionDays`,
//! `centralDestination`), read only when declared, in the function's Region.

use super::client::map_err;
use super::model::{LogGroup, LogGroupState, ObservedFunction};
use crate::providers::ProviderError;

/// Pages of one listing read at most.
const MAX_PAGES: usize = 50;

/// The log group Lambda writes the function's logs to.
pub fn group_name(o: &ObservedFunction) -> String {
    o.logging
        .log_group
        .clone()
        .filter(|g| !g.is_empty())
        .unwrap_or_else(|| format!("/aws/lambda/{}", o.name))
}

/// The group as CloudWatch Logs reports it, or why it could not be read:
/// never a guess.
pub async fn observe(logs: &aws_sdk_cloudwatchlogs::Client, name: &str, destinations: bool) -> LogGroupState {
    match read(logs, name, destinations).await {
        Ok(g) => LogGroupState::Observed(g),
        Err(e) => LogGroupState::NotObserved(e),
    }
}

async fn read(
    logs: &aws_sdk_cloudwatchlogs::Client,
    name: &str,
    destinations: bool,
) -> Result<LogGroup, ProviderError> {
    let mut group = LogGroup {
        name: name.to_string(),
        ..LogGroup::default()
    };
    let Some(retention) = retention(logs, name).await? else {
        return Ok(group);
    };
    group.exists = true;
    group.retention_days = retention;
    if destinations {
        group.destinations = subscription_destinations(logs, name).await?;
    }
    Ok(group)
}

/// None: no such group. Some(None): it exists and never expires.
pub async fn retention(
    logs: &aws_sdk_cloudwatchlogs::Client,
    name: &str,
) -> Result<Option<Option<i32>>, ProviderError> {
    let mut token = None;
    for _ in 0..MAX_PAGES {
        let page = logs
            .describe_log_groups()
            .log_group_name_prefix(name)
            .set_next_token(token)
            .send()
            .await
            .map_err(|e| map_err("DescribeLogGroups", name, e))?;
        if let Some(g) = page.log_groups().iter().find(|g| g.log_group_name() == Some(name)) {
            return Ok(Some(g.retention_in_days()));
        }
        token = page.next_token().filter(|t| !t.is_empty()).map(str::to_string);
        if token.is_none() {
            return Ok(None);
        }
    }
    Err(ProviderError::Cloud(format!(
        "DescribeLogGroups {name}: more than {MAX_PAGES} pages"
    )))
}

async fn subscription_destinations(
    logs: &aws_sdk_cloudwatchlogs::Client,
    name: &str,
) -> Result<Vec<String>, ProviderError> {
    let mut out = Vec::new();
    let mut token = None;
    for _ in 0..MAX_PAGES {
        let page = logs
            .describe_subscription_filters()
            .log_group_name(name)
            .set_next_token(token)
            .send()
            .await
            .map_err(|e| map_err("DescribeSubscriptionFilters", name, e))?;
        out.extend(
            page.subscription_filters()
                .iter()
                .filter_map(|f| f.destination_arn().map(str::to_string)),
        );
        token = page.next_token().filter(|t| !t.is_empty()).map(str::to_string);
        if token.is_none() {
            return Ok(out);
        }
    }
    Err(ProviderError::Cloud(format!(
        "DescribeSubscriptionFilters {name}: more than {MAX_PAGES} pages"
    )))
}
