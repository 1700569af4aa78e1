//! `identity.unusedPermissions` on AWS, pure: each declared Allow action
//! judged against IAM's last-accessed report of the role, and the narrower
//! declaration that covers what was used. Report-only: nothing here plans
//! a write, and a Deny statement is never narrowed.
//!
//! What counts as unused, and what is left alone:
//! - a service IAM names as not used since the window began: every declared
//!   action of it is unused;
//! - a service used within the window: an action IAM tracks is judged on its
//!   own; an action IAM does not track is kept (not judged);
//! - a wildcard (`s3:Get*`) is expanded only against the actions the report
//!   names; when some it names went unused, the proposal holds the used ones;
//! - a service the report does not name at all (the role does not allow it)
//!   is kept: nothing says it is unused.

use super::model::{AccessReport, LastAccessed, TrackedAction};
use crate::api::{Effect, PolicyStatement, UnusedPermissions};
use crate::findings::{Control, Finding, Proposal, Severity};
use crate::providers::ProviderError;

/// The posture field a proposal replaces.
pub const FIELD: &str = "spec.identity.aws.permissions";

/// What the report says of one declared action.
#[derive(Debug, Default, PartialEq, Eq)]
struct Judgement {
    /// What the proposal keeps in its place.
    keep: Vec<String>,
    /// The actions (the declared one, or those a wildcard expands to) not
    /// used within the window, with their last use.
    unused: Vec<(String, Option<jiff::Timestamp>)>,
}

impl Judgement {
    fn kept(action: &str) -> Judgement {
        Judgement {
            keep: vec![action.to_string()],
            unused: Vec::new(),
        }
    }
}

/// The findings and the proposal for the declared statements.
pub fn judge(
    declared: &[PolicyStatement],
    wanted: &UnusedPermissions,
    evidence: Option<&LastAccessed>,
) -> (Vec<Finding>, Option<Proposal>) {
    let report = match (evidence, wanted.window()) {
        (Some(LastAccessed::Observed(r)), Some(_)) => r,
        (Some(LastAccessed::NotObserved(e)), _) => return (vec![not_judged(e)], None),
        (None, _) => return (vec![not_judged(&ProviderError::Cloud("it was not read".into()))], None),
        (_, None) => {
            let e = ProviderError::Config(format!("window {} is too long to count", wanted.window));
            return (vec![not_judged(&e)], None);
        }
    };
    let window = wanted.window().unwrap_or_default();
    let since = report
        .as_of
        .checked_sub(jiff::SignedDuration::try_from(window).unwrap_or(jiff::SignedDuration::MAX))
        .unwrap_or(jiff::Timestamp::MIN);
    let mut findings = Vec::new();
    let mut proposed = Vec::new();
    for (i, st) in declared.iter().enumerate() {
        if st.effect == Effect::Deny {
            proposed.push(st.clone());
            continue;
        }
        let mut keep: Vec<String> = Vec::new();
        for (j, action) in st.actions.iter().enumerate() {
            let verdict = judge_action(action, report, since);
            for (name, last) in &verdict.unused {
                findings.push(unused_finding(i, j, action, name, *last, wanted, report));
            }
            for k in verdict.keep {
                if !keep.iter().any(|h| h.eq_ignore_ascii_case(&k)) {
                    keep.push(k);
                }
            }
        }
        if !keep.is_empty() {
            proposed.push(PolicyStatement {
                actions: keep,
                ..st.clone()
            });
        }
    }
    if findings.is_empty() {
        return (findings, None);
    }
    let proposal = proposal(&proposed, findings.len(), wanted, report);
    (findings, proposal)
}

/// One declared action against the report.
fn judge_action(action: &str, report: &AccessReport, since: jiff::Timestamp) -> Judgement {
    let Some((prefix, pattern)) = action.split_once(':') else {
        return Judgement::kept(action);
    };
    let Some(service) = report.services.get(&prefix.to_ascii_lowercase()) else {
        return Judgement::kept(action);
    };
    let recent = |t: Option<jiff::Timestamp>| t.is_some_and(|t| t >= since);
    if !recent(service.last_authenticated) {
        return Judgement {
            keep: Vec::new(),
            unused: vec![(action.to_string(), service.last_authenticated)],
        };
    }
    let pattern = pattern.to_ascii_lowercase();
    let named: Vec<&TrackedAction> = service
        .actions
        .iter()
        .filter(|a| super::policy::wildcard_match(&pattern, &a.name.to_ascii_lowercase()))
        .collect();
    let (used, unused): (Vec<&TrackedAction>, Vec<&TrackedAction>) =
        named.iter().partition(|a| recent(a.last_accessed));
    if unused.is_empty() {
        // Used, or not tracked by IAM at action level: not judged.
        return Judgement::kept(action);
    }
    let literal = !action.contains(['*', '?']);
    Judgement {
        keep: used.iter().map(|a| format!("{prefix}:{}", a.name)).collect(),
        unused: unused
            .iter()
            .map(|a| {
                let name = if literal {
                    action.to_string()
                } else {
                    format!("{prefix}:{}", a.name)
                };
                (name, a.last_accessed)
            })
            .collect(),
    }
}

fn unused_finding(
    i: usize,
    j: usize,
    declared: &str,
    action: &str,
    last: Option<jiff::Timestamp>,
    wanted: &UnusedPermissions,
    report: &AccessReport,
) -> Finding {
    let mut field = format!("identity.aws.permissions[{i}].actions[{j}]");
    if declared != action {
        field.push_str(&format!(" ({action})"));
    }
    let observed = match last {
        Some(t) => format!("last used {t}"),
        None => "not used in IAM's tracking period".to_string(),
    };
    Finding::builder(Control::Identity, "aws.identity.unusedPermission", field)
        .observed(observed)
        .desired(format!("used within {}", wanted.window))
        .severity(Severity::Low)
        .remediable(false)
        .message(format!(
            "{action} was not used in the {} before {} (IAM last-accessed data); the proposed declaration leaves it out, zerofn never removes it itself",
            wanted.window, report.as_of
        ))
}

/// The report could not be had: said, with the error's kind, never passed.
fn not_judged(e: &ProviderError) -> Finding {
    Finding::builder(
        Control::Identity,
        "aws.identity.unusedPermissionsNotJudged",
        "identity.unusedPermissions",
    )
    .observed(format!("{}: {e}", e.reason().as_str()))
    .desired("IAM last-accessed details of the role")
    .severity(Severity::Low)
    .remediable(false)
    .message(format!(
        "which declared permissions went unused could not be judged: {e}; zerofn needs iam:GenerateServiceLastAccessedDetails and iam:GetServiceLastAccessedDetails"
    ))
}

fn proposal(
    statements: &[PolicyStatement],
    unused: usize,
    wanted: &UnusedPermissions,
    report: &AccessReport,
) -> Option<Proposal> {
    let yaml = serde_saphyr::to_string(&statements.to_vec()).ok()?;
    Some(Proposal::new(
        Control::Identity,
        FIELD,
        yaml,
        format!(
            "the declared permissions without the {unused} action(s) not used in the {} before {}; actions IAM does not track at action level are kept as declared",
            wanted.window, report.as_of
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::super::model::ServiceAccess;
    use super::*;
    use std::collections::BTreeMap;

    const AS_OF: &str = "2026-12-01T00:00:00Z";

    fn at(s: &str) -> Option<jiff::Timestamp> {
        s.parse().ok()
    }

    fn tracked(name: &str, last: Option<&str>) -> TrackedAction {
        TrackedAction {
            name: name.into(),
            last_accessed: last.and_then(at),
        }
    }

    fn report(services: Vec<(&str, Option<&str>, Vec<TrackedAction>)>) -> LastAccessed {
        LastAccessed::Observed(AccessReport {
            as_of: at(AS_OF).unwrap_or_default(),
            services: services
                .into_iter()
                .map(|(ns, last, actions)| {
                    (
                        ns.to_string(),
                        ServiceAccess {
                            last_authenticated: last.and_then(at),
                            actions,
                        },
                    )
                })
                .collect::<BTreeMap<_, _>>(),
        })
    }

    fn wanted() -> UnusedPermissions {
        UnusedPermissions {
            window: "90d".into(),
            refresh_interval: None,
        }
    }

    fn allow(actions: &[&str]) -> PolicyStatement {
        PolicyStatement {
            sid: None,
            effect: Effect::Allow,
            actions: actions.iter().map(|a| a.to_string()).collect(),
            resources: vec!["*".into()],
            conditions: BTreeMap::new(),
        }
    }

    const TEN: [&str; 10] = [
        "s3:GetObject",
        "s3:PutObject",
        "s3:DeleteObject",
        "s3:ListBucket",
        "s3:GetBucketPolicy",
        "s3:PutBucketPolicy",
        "s3:GetBucketTagging",
        "s3:PutBucketTagging",
        "s3:GetBucketAcl",
        "s3:PutBucketAcl",
    ];

    /// Ten declared actions, three used within the window (one of them
    /// only 10 days ago, one 89 days ago), seven not: seven Low findings
    /// and a proposal holding exactly the three.
    #[test]
    fn ten_declared_three_used_gives_seven_low_findings_and_a_proposal_of_three() {
        let used = [
            ("GetObject", "2026-11-21T00:00:00Z"),
            ("PutObject", "2026-09-03T00:00:00Z"),
            ("ListBucket", "2026-11-30T00:00:00Z"),
        ];
        let actions = TEN
            .iter()
            .map(|a| {
                let name = a.trim_start_matches("s3:");
                let last = used.iter().find(|(n, _)| *n == name).map(|(_, t)| *t);
                // Some of the unused ones were used, long ago.
                tracked(
                    name,
                    last.or((name == "GetBucketAcl").then_some("2026-01-01T00:00:00Z")),
                )
            })
            .collect();
        let evidence = report(vec![("s3", Some("2026-11-30T00:00:00Z"), actions)]);
        let (findings, proposal) = judge(&[allow(&TEN)], &wanted(), Some(&evidence));
        assert_eq!(findings.len(), 7, "{findings:#?}");
        assert!(findings.iter().all(|f| f.severity == Severity::Low && !f.remediable));
        assert!(findings.iter().all(|f| f.check == "aws.identity.unusedPermission"));
        let acl = findings
            .iter()
            .find(|f| f.field.ends_with("actions[8]"))
            .map(|f| &f.observed);
        assert_eq!(acl.map(String::as_str), Some("last used 2026-01-01T00:00:00Z"));
        let proposal = proposal.expect("a proposal");
        assert_eq!(proposal.field, FIELD);
        let back: Vec<PolicyStatement> = serde_saphyr::from_str(&proposal.declaration).expect("pasteable YAML");
        assert_eq!(back, vec![allow(&["s3:GetObject", "s3:PutObject", "s3:ListBucket"])]);
    }

    #[test]
    fn a_service_unused_since_the_window_began_makes_each_of_its_actions_unused() {
        let evidence = report(vec![
            ("dynamodb", Some("2026-03-01T00:00:00Z"), vec![]),
            ("sqs", None, vec![]),
            (
                "s3",
                Some("2026-11-30T00:00:00Z"),
                vec![tracked("GetObject", Some("2026-11-30T00:00:00Z"))],
            ),
        ]);
        let declared = [
            allow(&["dynamodb:GetItem", "dynamodb:Query"]),
            allow(&["sqs:SendMessage", "s3:GetObject"]),
        ];
        let (findings, proposal) = judge(&declared, &wanted(), Some(&evidence));
        assert_eq!(findings.len(), 3, "{findings:#?}");
        let back: Vec<PolicyStatement> =
            serde_saphyr::from_str(&proposal.expect("a proposal").declaration).expect("YAML");
        assert_eq!(back, vec![allow(&["s3:GetObject"])], "an emptied statement is dropped");
    }

    #[test]
    fn what_the_report_cannot_judge_is_kept_and_raises_nothing() {
        let evidence = report(vec![
            // Used recently, but IAM tracks none of its actions.
            ("dynamodb", Some("2026-11-30T00:00:00Z"), vec![]),
            // Tracked, but not the declared action.
            (
                "s3",
                Some("2026-11-30T00:00:00Z"),
                vec![tracked("GetObject", Some("2026-11-30T00:00:00Z"))],
            ),
        ]);
        let declared = [allow(&[
            "dynamodb:GetItem",
            "s3:GetObjectTagging",
            "kms:Decrypt", // not in the report: the role may not allow it
            "s3:Get*",     // every action it names was used
        ])];
        let (findings, proposal) = judge(&declared, &wanted(), Some(&evidence));
        assert!(findings.is_empty(), "{findings:#?}");
        assert!(proposal.is_none(), "nothing to narrow");
    }

    #[test]
    fn a_wildcard_is_expanded_only_against_the_actions_the_report_names() {
        let evidence = report(vec![(
            "s3",
            Some("2026-11-30T00:00:00Z"),
            vec![
                tracked("GetObject", Some("2026-11-30T00:00:00Z")),
                tracked("GetBucketPolicy", None),
                tracked("PutObject", None),
            ],
        )]);
        let (findings, proposal) = judge(&[allow(&["s3:Get*"])], &wanted(), Some(&evidence));
        assert_eq!(findings.len(), 1, "{findings:#?}");
        assert_eq!(
            findings[0].field,
            "identity.aws.permissions[0].actions[0] (s3:GetBucketPolicy)"
        );
        let back: Vec<PolicyStatement> =
            serde_saphyr::from_str(&proposal.expect("a proposal").declaration).expect("YAML");
        assert_eq!(back, vec![allow(&["s3:GetObject"])]);
    }

    #[test]
    fn a_deny_is_never_judged_or_narrowed() {
        let evidence = report(vec![("s3", None, vec![])]);
        let deny = PolicyStatement {
            effect: Effect::Deny,
            ..allow(&["s3:DeleteBucket"])
        };
        let (findings, proposal) = judge(&[allow(&["s3:GetObject"]), deny.clone()], &wanted(), Some(&evidence));
        assert_eq!(findings.len(), 1);
        let back: Vec<PolicyStatement> =
            serde_saphyr::from_str(&proposal.expect("a proposal").declaration).expect("YAML");
        assert_eq!(back, vec![deny]);
    }

    /// A FAILED or never-completing job: one finding of the error's kind,
    /// never a pass and never a proposal.
    #[test]
    fn a_report_that_could_not_be_had_is_reported_with_its_kind() {
        let failed = LastAccessed::NotObserved(ProviderError::Cloud("last-accessed job j FAILED: x".into()));
        let (findings, proposal) = judge(&[allow(&TEN)], &wanted(), Some(&failed));
        assert_eq!(findings.len(), 1);
        assert_eq!(findings[0].check, "aws.identity.unusedPermissionsNotJudged");
        assert!(
            findings[0].observed.starts_with("CloudError: "),
            "{}",
            findings[0].observed
        );
        assert!(proposal.is_none());
        let (unread, _) = judge(&[allow(&TEN)], &wanted(), None);
        assert_eq!(unread.len(), 1, "evidence never read is not a pass");
    }
}
