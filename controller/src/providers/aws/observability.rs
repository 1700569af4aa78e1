//! Pure planning of what an AWS function leaves behind and carries at run
//! time (`observability.aws`): its log group's retention and where its logs
//! go, and the runtime-protection layers it must carry. No I/O.

use super::action::AwsAction;
use super::model::{LogGroup, LogGroupState, ObservedFunction};
use crate::api::AwsObservability;
use crate::findings::{Control, Finding, Severity};
use crate::providers::assemble::{Phase, PlanBuilder};

/// The declared log-group and extension checks; `allowed` is the
/// supply-chain layer allowlist, which an attached extension must pass.
pub fn plan(aws: &AwsObservability, allowed: Option<&[String]>, o: &ObservedFunction, b: &mut PlanBuilder<AwsAction>) {
    required_extensions(&aws.required_extensions, allowed, o, b);
    if let Some(days) = aws.log_retention_days {
        log_retention(days, o, b);
    }
    if let Some(dest) = &aws.central_destination {
        central_destination(dest, o, b);
    }
}

/// The log group as observed, or the finding that says it was not.
fn observed_group<'o>(o: &'o ObservedFunction, b: &mut PlanBuilder<AwsAction>) -> Option<&'o LogGroup> {
    use LogGroupState;
    let unread = crate::providers::ProviderError::Cloud("it was not read".into());
    let why = match o.log_group.as_ref() {
        Some(LogGroupState::Observed(g)) => return Some(g),
        Some(LogGroupState::NotObserved(e)) => e,
        None => &unread,
    };
    let name = super::logs::group_name(o);
    b.finding(
        Finding::builder(Control::Observability, "aws.observability.logGroupNotObserved", "LoggingConfig.LogGroup")
            .observed(format!("{}: {why}", why.reason().as_str()))
            .desired(format!("{name} readable"))
            .severity(Severity::Medium)
            .remediable(false)
            .message(format!(
                "the log group {name} could not be judged: {why}; grant logs:DescribeLogGroups and logs:DescribeSubscriptionFilters"
            )),
    );
    None
}

/// The log group keeps events at least `days`: raised when shorter, the
/// group created when absent; never shortened (no retention means never
/// expire, which is longer).
fn log_retention(days: i32, o: &ObservedFunction, b: &mut PlanBuilder<AwsAction>) {
    let Some(g) = observed_group(o, b) else { return };
    let observed = match (g.exists, g.retention_days) {
        (false, _) => "no log group yet".to_string(),
        (true, Some(d)) if d < days => format!("{d} days"),
        (true, _) => return,
    };
    b.finding(
        Finding::builder(
            Control::Observability,
            "aws.observability.logRetention",
            format!("LogGroup[{}].retentionInDays", g.name),
        )
        .observed(observed)
        .desired(format!("at least {days} days"))
        .severity(Severity::Medium)
        .remediable(true)
        .message(format!(
            "the function's logs in {} are not kept {days} days; zerofn raises the retention (it never shortens one)",
            g.name
        )),
    );
    b.push(
        Phase::Configure,
        AwsAction::SetLogRetention {
            region: o.region.clone(),
            log_group: g.name.clone(),
            days,
        },
    );
}

/// A subscription filter delivers the function's logs to the declared
/// destination (report-only: a filter on a shared group is not zerofn's).
fn central_destination(dest: &str, o: &ObservedFunction, b: &mut PlanBuilder<AwsAction>) {
    let Some(g) = observed_group(o, b) else { return };
    if g.destinations.iter().any(|d| d == dest) {
        return;
    }
    let observed = if !g.exists {
        "no log group yet".to_string()
    } else if g.destinations.is_empty() {
        "no subscription filter".to_string()
    } else {
        g.destinations.join(",")
    };
    b.finding(
        Finding::builder(Control::Observability, "aws.observability.centralDestination", format!("LogGroup[{}].subscriptionFilters", g.name))
            .observed(observed)
            .desired(dest)
            .severity(Severity::Medium)
            .remediable(false)
            .message(format!(
                "the function's logs in {} do not reach {dest}; add a subscription filter to it (zerofn does not change subscription filters)",
                g.name
            )),
    );
}

/// Lambda's limit of layers per function.
const MAX_LAYERS: usize = 5;

/// Whether a layer version ARN matches a required-extension pattern: the
/// whole ARN, or, for a pattern without a version, the layer's own ARN.
pub fn extension_matches(pattern: &str, layer: &str) -> bool {
    let (base, _) = split_layer(layer);
    super::policy::wildcard_match(pattern, layer) || super::policy::wildcard_match(pattern, &base)
}

/// Runtime protection: each pattern matched by one of the function's
/// layers. A missing one is attached only when the pattern names one exact
/// layer version of the function's Region that the supply-chain allowlist
/// (if declared) admits and that fits Lambda's limit; otherwise it is
/// reported with the reason. Layers are only ever added.
fn required_extensions(
    patterns: &[String],
    allowed: Option<&[String]>,
    o: &ObservedFunction,
    b: &mut PlanBuilder<AwsAction>,
) {
    let mut attach: Vec<String> = Vec::new();
    for pattern in patterns {
        if o.layers.iter().chain(&attach).any(|l| extension_matches(pattern, l)) {
            continue;
        }
        let blocker = attach_blocker(pattern, o, allowed, o.layers.len() + attach.len());
        let observed = if o.layers.is_empty() {
            "no layers".to_string()
        } else {
            o.layers.join(",")
        };
        let why = blocker.clone().map_or_else(
            || format!("zerofn attaches {pattern}, keeping the function's own layers"),
            |r| format!("zerofn does not attach it: {r}"),
        );
        b.finding(
            Finding::builder(Control::Observability, "aws.observability.missingExtension", "Layers")
                .observed(observed)
                .desired(pattern)
                .severity(Severity::High)
                .remediable(blocker.is_none())
                .message(format!(
                    "no layer of the function matches the required extension {pattern}, so its runtime is unprotected; {why}"
                )),
        );
        if blocker.is_none() {
            attach.push(pattern.clone());
        }
    }
    if !attach.is_empty() {
        b.push(
            Phase::Configure,
            AwsAction::AttachLayers {
                function_arn: o.arn.clone(),
                layers: attach,
            },
        );
    }
}

/// Why a missing extension cannot be attached, if it cannot.
fn attach_blocker(pattern: &str, o: &ObservedFunction, allowed: Option<&[String]>, layers: usize) -> Option<String> {
    let (base, version) = split_layer(pattern);
    let region = pattern.split(':').nth(3).unwrap_or_default();
    if pattern.contains('*') || version.is_none() {
        Some(
            "the pattern names no single layer version (declare the exact ARN with its version to have it attached)"
                .into(),
        )
    } else if region != o.region {
        Some(format!("the layer is in {region}, the function in {}", o.region))
    } else if allowed.is_some_and(|a| !a.iter().any(|x| x == pattern || *x == base)) {
        Some("it is not in supplyChain.aws.allowedLayers".into())
    } else if layers >= MAX_LAYERS {
        Some(format!(
            "the function has {layers} layers, Lambda's limit is {MAX_LAYERS}"
        ))
    } else {
        None
    }
}

/// Layer version ARN → (layer ARN, version).
pub(super) fn split_layer(arn: &str) -> (String, Option<String>) {
    let parts: Vec<&str> = arn.split(':').collect();
    // arn:aws:lambda:region:account:layer:name[:version]
    if parts.len() == 8 && parts[7].bytes().all(|c| c.is_ascii_digit()) && !parts[7].is_empty() {
        (parts[..7].join(":"), Some(parts[7].to_string()))
    } else {
        (arn.to_string(), None)
    }
}
