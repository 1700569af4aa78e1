//! A policy's status, summed over its children. Pure.

use crate::api::{ChildFinding, Condition, FunctionPostureStatus, PosturePolicyStatus, SupersededFunction};
use crate::reason::Reason;

/// Superseded functions named in status; the count covers all of them.
pub const SUPERSEDED_SHOWN: usize = 20;
/// Findings named in status, most severe first.
pub const FINDINGS_SHOWN: usize = 5;

/// What a policy's children say, summed one child at a time: a policy of
/// 10,000 children is read page by page, and only this is kept.
#[derive(Debug, Default)]
pub struct Tally {
    pub children: usize,
    pub compliant: usize,
    pub drifted: usize,
    pub errors: usize,
    /// The most severe findings so far, at most `FINDINGS_SHOWN`.
    pub worst: Vec<ChildFinding>,
}

impl Tally {
    /// Count one child at `generation` (`status` None: not judged yet). A
    /// status written for an older spec (the policy's template just
    /// changed) says nothing about the spec the child has now: it counts
    /// as not yet judged, never as compliant.
    pub fn add(&mut self, name: &str, generation: Option<i64>, status: Option<&FunctionPostureStatus>) {
        self.children += 1;
        let Some(s) = status.filter(|s| s.observed_generation == generation) else {
            return;
        };
        self.compliant += usize::from(condition_is(s, "Ready", "True"));
        self.drifted += usize::from(!s.findings.is_empty());
        self.errors += usize::from(condition_is(s, "Synced", "False"));
        self.worst.extend(s.findings.iter().map(|f| ChildFinding {
            posture: name.to_string(),
            function: s.function.clone().unwrap_or_default(),
            severity: f.severity,
            field: f.field.clone(),
            message: f.message.clone(),
        }));
        self.worst
            .sort_by(|a, b| b.severity.cmp(&a.severity).then_with(|| a.posture.cmp(&b.posture)));
        self.worst.truncate(FINDINGS_SHOWN);
    }
}

/// What the policy's reconcile learned.
pub struct Input<'a> {
    pub generation: Option<i64>,
    pub now: &'a str,
    pub previous: Option<&'a PosturePolicyStatus>,
    /// Functions the selector matches (governed or superseded).
    pub matched: usize,
    /// Children the policy should have.
    pub governed: usize,
    pub superseded: Vec<SupersededFunction>,
    /// The children the API server holds, summed.
    pub children: Tally,
}

fn condition_is(s: &FunctionPostureStatus, type_: &str, status: &str) -> bool {
    s.conditions.iter().any(|c| c.type_ == type_ && c.status == status)
}

/// The status of a policy whose functions were listed.
pub fn build(input: Input<'_>) -> PosturePolicyStatus {
    let Tally {
        children,
        compliant,
        drifted,
        errors,
        worst,
    } = input.children;
    let ready = children == input.governed && compliant == input.governed;
    let message = if ready {
        format!("{compliant} of {} governed functions are compliant", input.governed)
    } else {
        format!(
            "{compliant} of {} governed functions are compliant ({children} children exist, {errors} could not be judged, {drifted} drifted)",
            input.governed,
        )
    };
    let reason = if ready {
        Reason::ChildrenReady
    } else {
        Reason::ChildrenNotReady
    };
    let mut superseded = input.superseded;
    let superseded_count = superseded.len();
    superseded.truncate(SUPERSEDED_SHOWN);
    PosturePolicyStatus {
        observed_generation: input.generation,
        conditions: vec![ready_condition(
            input.previous,
            input.generation,
            input.now,
            ready,
            reason,
            message,
        )],
        matched: count(input.matched),
        governed: count(input.governed),
        compliant: count(compliant),
        drifted: count(drifted),
        errors: count(errors),
        superseded_count: count(superseded_count),
        superseded_by: superseded,
        worst_findings: worst,
        last_listed_time: Some(input.now.to_string()),
    }
}

/// The status of a policy whose functions could not be listed (or whose
/// account may not be used): what it knew before stays, Ready goes False
/// with the reason. Nothing is passed that was not observed.
pub fn not_listed(
    previous: Option<&PosturePolicyStatus>,
    generation: Option<i64>,
    now: &str,
    reason: Reason,
    message: String,
) -> PosturePolicyStatus {
    let mut s = previous.cloned().unwrap_or_default();
    s.conditions = vec![ready_condition(previous, generation, now, false, reason, message)];
    s.observed_generation = generation;
    s
}

fn ready_condition(
    previous: Option<&PosturePolicyStatus>,
    generation: Option<i64>,
    now: &str,
    ready: bool,
    reason: Reason,
    message: String,
) -> Condition {
    let status = if ready { "True" } else { "False" };
    let since = previous
        .and_then(|p| p.conditions.iter().find(|c| c.type_ == "Ready"))
        .filter(|c| c.status == status)
        .map(|c| c.last_transition_time.clone())
        .unwrap_or_else(|| now.to_string());
    Condition {
        type_: "Ready".into(),
        status: status.into(),
        observed_generation: generation,
        last_transition_time: since,
        reason: reason.to_string(),
        message,
    }
}

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Whether two statuses say the same, apart from when the functions were
/// listed: a policy whose children did not change writes nothing.
pub fn same(a: &PosturePolicyStatus, b: &PosturePolicyStatus) -> bool {
    let strip = |s: &PosturePolicyStatus| PosturePolicyStatus {
        last_listed_time: None,
        ..s.clone()
    };
    strip(a) == strip(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::findings::{Control, Finding, Severity};

    fn child(ready: bool, synced: bool, findings: &[Severity]) -> Option<FunctionPostureStatus> {
        let c = |t: &str, ok: bool| Condition {
            type_: t.into(),
            status: if ok { "True" } else { "False" }.into(),
            observed_generation: Some(1),
            last_transition_time: "t".into(),
            reason: "r".into(),
            message: "m".into(),
        };
        Some(FunctionPostureStatus {
            observed_generation: Some(1),
            conditions: vec![c("Ready", ready), c("Synced", synced)],
            function: Some("eu-west-1/f".into()),
            findings: findings
                .iter()
                .map(|s| Finding::builder(Control::Triggers, "c", "F").severity(*s).message("m"))
                .collect(),
            ..Default::default()
        })
    }

    fn input(children: &[(String, Option<FunctionPostureStatus>)], governed: usize) -> Input<'static> {
        let mut tally = Tally::default();
        for (name, status) in children {
            tally.add(name, Some(1), status.as_ref());
        }
        Input {
            generation: Some(2),
            now: "2026-12-04T00:00:00Z",
            previous: None,
            matched: governed + 1,
            governed,
            superseded: vec![SupersededFunction {
                function: "eu-west-1/x".into(),
                governed_by: "FunctionPosture shop/x".into(),
            }],
            children: tally,
        }
    }

    #[test]
    fn counts_come_from_the_children_and_the_worst_finding_leads() {
        let children = vec![
            ("a".to_string(), child(true, true, &[])),
            (
                "b".to_string(),
                child(false, true, &[Severity::Low, Severity::Critical]),
            ),
            ("c".to_string(), child(false, false, &[])),
        ];
        let s = build(input(&children, 3));
        assert_eq!(
            (s.matched, s.governed, s.compliant, s.drifted, s.errors),
            (4, 3, 1, 1, 1)
        );
        assert_eq!(s.superseded_count, 1);
        assert_eq!(s.worst_findings[0].severity, Severity::Critical);
        assert_eq!(s.worst_findings[0].posture, "b");
        assert_eq!(s.conditions[0].status, "False");
    }

    #[test]
    fn ready_only_when_every_governed_function_has_a_ready_child() {
        let children = vec![("a".to_string(), child(true, true, &[]))];
        assert_eq!(build(input(&children, 1)).conditions[0].status, "True");
        // A child not created yet, or created but without status, is not
        // passed.
        assert_eq!(build(input(&children, 2)).conditions[0].status, "False");
        let unjudged = vec![("a".to_string(), None)];
        assert_eq!(build(input(&unjudged, 1)).conditions[0].status, "False");
    }

    /// Right after a template change a child's status still describes its
    /// old spec: it is not counted compliant, and the policy is not Ready.
    #[test]
    fn a_status_for_an_older_spec_is_not_counted_compliant() {
        let mut tally = Tally::default();
        tally.add("a", Some(2), child(true, true, &[]).as_ref());
        assert_eq!(tally.compliant, 0);
        let mut i = input(&[], 1);
        i.children = tally;
        assert_eq!(build(i).conditions[0].status, "False");
    }

    #[test]
    fn a_policy_that_could_not_list_keeps_its_counts_and_is_not_ready() {
        let children = vec![("a".to_string(), child(true, true, &[]))];
        let before = build(input(&children, 1));
        let s = not_listed(Some(&before), Some(3), "later", Reason::CloudUnreachable, "down".into());
        assert_eq!(s.conditions[0].status, "False");
        assert_eq!(s.conditions[0].reason, "CloudUnreachable");
        assert_eq!(s.compliant, 1);
        assert!(same(&build(input(&children, 1)), &before));
    }
}
