//! `identity.unusedPermissions` on GCP, pure: each declared project role
//! judged against the IAM recommender's policy insights about the
//! function's service account, and the narrower list of roles that covers
//! what was used. Report-only: nothing here plans a write.
//!
//! A role is unused when an insight about the account's unconditional
//! binding of it looked back at least as far as the window and found no
//! permission of it used or inferred as needed. A role without an insight
//! is kept: Google writes insights for bindings it has judged, and no
//! insight says nothing. An insight that looked back less far than the
//! window cannot say the role went unused for the whole window: reported
//! as not judged, never passed.

use super::model::{RoleInsight, RoleUsage};
use crate::api::UnusedPermissions;
use crate::findings::{Control, Finding, Proposal, Severity};
use crate::providers::ProviderError;

/// The posture field a proposal replaces.
pub const FIELD: &str = "spec.identity.gcp.roles";

pub fn judge(
    declared: &[String],
    wanted: &UnusedPermissions,
    evidence: Option<&RoleUsage>,
) -> (Vec<Finding>, Option<Proposal>) {
    let (insights, window) = match (evidence, wanted.window()) {
        (Some(RoleUsage::Observed(i)), Some(w)) => (i, w),
        (Some(RoleUsage::NotObserved(e)), _) => return (vec![not_judged(e)], None),
        (None, _) => {
            return (
                vec![not_judged(&ProviderError::Cloud("they were not read".into()))],
                None,
            );
        }
        (_, None) => {
            let e = ProviderError::Config(format!("window {} is too long to count", wanted.window));
            return (vec![not_judged(&e)], None);
        }
    };
    let mut findings = Vec::new();
    let mut keep = Vec::new();
    let mut short = Vec::new();
    for (i, role) in declared.iter().enumerate() {
        let idle = insights.iter().find(|r| r.role == *role && r.used_permissions == 0);
        match idle {
            Some(r) if r.observation_period >= window => findings.push(unused_finding(i, r, wanted)),
            Some(r) => {
                short.push(format!("{role} ({}s)", r.observation_period.as_secs()));
                keep.push(role.clone());
            }
            None => keep.push(role.clone()),
        }
    }
    let unused = findings.len();
    if !short.is_empty() {
        findings.push(
            Finding::builder(
                Control::Identity,
                "gcp.identity.unusedPermissionsNotJudged",
                "identity.unusedPermissions.window",
            )
            .observed(format!("insights look back less than {}: {}", wanted.window, short.join(", ")))
            .desired(format!("insights covering {}", wanted.window))
            .severity(Severity::Low)
            .remediable(false)
            .message(format!(
                "the IAM recommender saw no use of {} but looked back less than the window {}; shorten the window to judge them",
                short.join(", "),
                wanted.window
            )),
        );
    }
    if unused == 0 {
        return (findings, None);
    }
    let proposal = serde_saphyr::to_string(&keep).ok().map(|yaml| {
        Proposal::new(
            Control::Identity,
            FIELD,
            yaml,
            format!(
                "the declared roles without the {unused} role(s) the IAM recommender saw unused within {}",
                wanted.window
            ),
        )
    });
    (findings, proposal)
}

fn unused_finding(i: usize, r: &RoleInsight, wanted: &UnusedPermissions) -> Finding {
    let total = r.total_permissions.map_or_else(|| "its".to_string(), |t| t.to_string());
    let until = r
        .last_refresh
        .map_or_else(|| "its last refresh".to_string(), |t| t.to_string());
    Finding::builder(Control::Identity, "gcp.identity.unusedRole", format!("identity.gcp.roles[{i}]"))
        .observed(format!("0 of {total} permissions used in the {}s before {until}", r.observation_period.as_secs()))
        .desired(format!("used within {}", wanted.window))
        .severity(Severity::Low)
        .remediable(false)
        .message(format!(
            "{} was not used by the service account within {} (IAM recommender insight {}); the proposed declaration leaves it out, zerofn never removes it itself",
            r.role, wanted.window, r.name
        ))
}

fn not_judged(e: &ProviderError) -> Finding {
    Finding::builder(
        Control::Identity,
        "gcp.identity.unusedPermissionsNotJudged",
        "identity.unusedPermissions",
    )
    .observed(format!("{}: {e}", e.reason().as_str()))
    .desired("IAM recommender policy insights for the service account")
    .severity(Severity::Low)
    .remediable(false)
    .message(format!(
        "which declared roles went unused could not be judged: {e}; zerofn needs recommender.iamPolicyInsights.list on the project"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const NINETY_DAYS: Duration = Duration::from_secs(90 * 86_400);

    fn insight(role: &str, used: usize, period: Duration) -> RoleInsight {
        RoleInsight {
            name: format!("projects/1/locations/global/insightTypes/google.iam.policy.Insight/insights/{role}"),
            role: role.into(),
            used_permissions: used,
            total_permissions: Some(12),
            observation_period: period,
            last_refresh: "2026-12-01T07:00:00Z".parse().ok(),
        }
    }

    fn wanted(window: &str) -> UnusedPermissions {
        UnusedPermissions {
            window: window.into(),
            refresh_interval: None,
        }
    }

    fn ten() -> Vec<String> {
        (0..10).map(|i| format!("roles/r{i}")).collect()
    }

    /// Ten declared roles, three used: seven Low findings and a proposal
    /// of the three.
    #[test]
    fn ten_declared_three_used_gives_seven_low_findings_and_a_proposal_of_three() {
        let insights = ten()
            .iter()
            .enumerate()
            .map(|(i, r)| insight(r, if i < 3 { 4 } else { 0 }, NINETY_DAYS))
            .collect();
        let (findings, proposal) = judge(&ten(), &wanted("90d"), Some(&RoleUsage::Observed(insights)));
        assert_eq!(findings.len(), 7, "{findings:#?}");
        assert!(
            findings
                .iter()
                .all(|f| f.severity == Severity::Low && f.check == "gcp.identity.unusedRole")
        );
        let proposal = proposal.expect("a proposal");
        assert_eq!(proposal.field, FIELD);
        let back: Vec<String> = serde_saphyr::from_str(&proposal.declaration).expect("pasteable YAML");
        assert_eq!(back, vec!["roles/r0", "roles/r1", "roles/r2"]);
    }

    #[test]
    fn a_role_without_an_insight_is_kept_and_raises_nothing() {
        let (findings, proposal) = judge(&ten(), &wanted("90d"), Some(&RoleUsage::Observed(vec![])));
        assert!(findings.is_empty());
        assert!(proposal.is_none());
    }

    #[test]
    fn an_insight_shorter_than_the_window_is_not_judged_never_passed() {
        let insights = vec![insight("roles/r0", 0, NINETY_DAYS)];
        let (findings, proposal) = judge(&ten(), &wanted("180d"), Some(&RoleUsage::Observed(insights)));
        assert_eq!(findings.len(), 1);
        assert_eq!(findings[0].check, "gcp.identity.unusedPermissionsNotJudged");
        assert!(proposal.is_none());
    }

    #[test]
    fn insights_that_could_not_be_read_are_reported_with_their_kind() {
        let e = RoleUsage::NotObserved(ProviderError::Auth("ListInsights: PERMISSION_DENIED".into()));
        let (findings, proposal) = judge(&ten(), &wanted("90d"), Some(&e));
        assert_eq!(findings.len(), 1);
        assert!(
            findings[0].observed.starts_with("CloudAuthFailed: "),
            "{}",
            findings[0].observed
        );
        assert!(proposal.is_none());
    }
}
