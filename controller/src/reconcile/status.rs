//! Building a FunctionPosture's status from what a reconcile learned. Pure:
//! table-tested without a cluster.
//!
//! Conditions follow metav1.Condition: `lastTransitionTime` only moves when
//! `status` changes. `Ready` = `Synced` and every declared control compliant;
//! one `<Control>Compliant` condition per declared control.

use crate::api::{Condition, FunctionPostureStatus};
use crate::findings::{Control, Finding, non_compliant_controls};
use crate::providers::{Blocked, Plan};
use crate::reason::Reason;

/// Most findings kept in status (the rest are counted): objects live in etcd.
pub const MAX_FINDINGS: usize = 50;

/// What a reconcile concluded, before it becomes status.
#[derive(Debug, Clone)]
pub enum Observation<'a> {
    /// The cloud was observed; `plan` is the truth now.
    Observed {
        plan: &'a Plan,
        enforced_writes: Option<u64>,
        /// An action that failed while enforcing, as (reason, message).
        enforce_error: Option<(Reason, String)>,
    },
    /// Nothing was observed: the spec, the account or the cloud refused.
    /// Previous findings and control conditions are kept (they say when they
    /// were observed); Synced and Ready go False with this reason.
    NotSynced { reason: Reason, message: String },
}

pub struct Input<'a> {
    pub generation: Option<i64>,
    pub declared: &'a [Control],
    pub cloud: Option<String>,
    pub now: &'a str,
    pub previous: Option<&'a FunctionPostureStatus>,
    pub observation: Observation<'a>,
}

/// Put `c` in `conditions`, keeping the transition time `previous` had for
/// the same status.
pub(super) fn set(conditions: &mut Vec<Condition>, previous: &[Condition], c: Condition) {
    let last = previous
        .iter()
        .find(|p| p.type_ == c.type_)
        .filter(|p| p.status == c.status)
        .map(|p| p.last_transition_time.clone());
    let c = Condition {
        last_transition_time: last.unwrap_or(c.last_transition_time),
        ..c
    };
    conditions.retain(|x| x.type_ != c.type_);
    conditions.push(c);
}

fn condition(
    type_: &str,
    ok: bool,
    reason: Reason,
    message: impl Into<String>,
    now: &str,
    generation: Option<i64>,
) -> Condition {
    Condition {
        type_: type_.to_string(),
        status: if ok { "True" } else { "False" }.to_string(),
        observed_generation: generation,
        last_transition_time: now.to_string(),
        reason: reason.to_string(),
        message: message.into(),
    }
}

fn summarize(findings: &[&Finding]) -> String {
    match findings {
        [] => String::new(),
        [one] => one.message.clone(),
        [first, rest @ ..] => format!("{} (and {} more findings)", first.message, rest.len()),
    }
}

pub fn build(input: Input<'_>) -> FunctionPostureStatus {
    let prev = input.previous.cloned().unwrap_or_default();
    let mut status = FunctionPostureStatus {
        observed_generation: input.generation,
        cloud: input.cloud.clone().or(prev.cloud.clone()),
        ..prev.clone()
    };
    let mut conditions = Conditions {
        list: kept_conditions(&prev.conditions, input.declared),
        previous: &prev.conditions,
        now: input.now,
        generation: input.generation,
    };
    match &input.observation {
        Observation::Observed {
            plan,
            enforced_writes,
            enforce_error,
        } => {
            if !new_findings(&plan.findings, &prev.findings).is_empty() {
                status.last_drift_time = Some(input.now.to_string());
            }
            record_observation(&mut status, plan, *enforced_writes, input.now);
            control_conditions(&mut conditions, plan, input.declared);
            let synced = synced_condition(plan, enforce_error.as_ref(), input.now);
            let ready = ready_condition(&synced, plan);
            let failing = non_compliant_controls(&plan.findings);
            let compliant = input.declared.iter().filter(|c| !failing.contains(c)).count();
            status.compliance = Some(format!("{compliant}/{}", input.declared.len()));
            conditions.set("Synced", synced);
            conditions.set("Ready", ready);
        }
        Observation::NotSynced { reason, message } => {
            conditions.set("Synced", (false, *reason, message.clone()));
            conditions.set("Ready", (false, *reason, NOT_SYNCED.to_string()));
        }
    }
    status.conditions = conditions.sorted();
    status
}

/// A condition as (status, reason, message).
type Verdict = (bool, Reason, String);

const NOT_SYNCED: &str = "not synced: see the Synced condition";

/// The conditions being built, and what each is built against.
struct Conditions<'a> {
    list: Vec<Condition>,
    previous: &'a [Condition],
    now: &'a str,
    generation: Option<i64>,
}

impl Conditions<'_> {
    fn set(&mut self, type_: &str, (ok, reason, message): Verdict) {
        set(
            &mut self.list,
            self.previous,
            condition(type_, ok, reason, message, self.now, self.generation),
        );
    }

    /// A stable order reads well in `kubectl describe` and keeps applies
    /// small.
    fn sorted(mut self) -> Vec<Condition> {
        let rank = |t: &str| match t {
            "Ready" => 0,
            "Synced" => 1,
            _ => 2,
        };
        self.list
            .sort_by(|a, b| rank(&a.type_).cmp(&rank(&b.type_)).then(a.type_.cmp(&b.type_)));
        self.list
    }
}

/// The previous conditions of still-declared controls (and Ready, Synced);
/// conditions of controls no longer declared are dropped.
fn kept_conditions(previous: &[Condition], declared: &[Control]) -> Vec<Condition> {
    previous
        .iter()
        .filter(|c| c.type_ == "Ready" || c.type_ == "Synced" || declared.iter().any(|d| d.condition_type() == c.type_))
        .cloned()
        .collect()
}

/// What was observed: the function, its principal, the findings (most
/// severe first, capped), and when it was enforced.
fn record_observation(status: &mut FunctionPostureStatus, plan: &Plan, enforced_writes: Option<u64>, now: &str) {
    status.function = Some(plan.function.clone());
    status.principal = plan.principal.clone();
    status.last_observed_time = Some(now.to_string());
    if let Some(w) = enforced_writes {
        status.last_enforced_time = Some(now.to_string());
        status.last_enforced_writes = Some(w);
    }
    let mut findings = plan.findings.clone();
    findings.sort_by(|a, b| b.severity.cmp(&a.severity).then(a.control.cmp(&b.control)));
    status.findings_truncated = findings.len().saturating_sub(MAX_FINDINGS) as u32;
    findings.truncate(MAX_FINDINGS);
    status.findings = findings;
    status.proposals = plan.proposals.clone();
}

/// One `<Control>Compliant` condition per declared control.
fn control_conditions(conditions: &mut Conditions<'_>, plan: &Plan, declared: &[Control]) {
    for c in declared {
        let mine: Vec<&Finding> = plan.findings.iter().filter(|f| f.control == *c).collect();
        let note = plan.notes.iter().find(|n| n.control == *c);
        let verdict = match (mine.is_empty(), note) {
            (false, _) => (false, Reason::Drift, summarize(&mine)),
            (true, Some(n)) => (true, n.reason, n.message.clone()),
            (true, None) => (true, Reason::Compliant, format!("{c} is as declared")),
        };
        conditions.set(c.condition_type(), verdict);
    }
}

fn synced_condition(plan: &Plan, enforce_error: Option<&(Reason, String)>, now: &str) -> Verdict {
    match (enforce_error, &plan.blocked) {
        (Some((reason, msg)), _) => (false, *reason, msg.clone()),
        (None, Some(b @ Blocked::Conflict { .. })) => (false, Reason::Conflict, b.to_string()),
        (None, None) => (true, Reason::Synced, format!("observed {} at {now}", plan.function)),
    }
}

fn ready_condition(synced: &Verdict, plan: &Plan) -> Verdict {
    let failing = non_compliant_controls(&plan.findings);
    if !synced.0 {
        (false, synced.1, NOT_SYNCED.to_string())
    } else if failing.is_empty() {
        (
            true,
            Reason::Compliant,
            "every declared control is compliant".to_string(),
        )
    } else {
        let names: Vec<&str> = failing.iter().map(|c| c.as_str()).collect();
        (
            false,
            Reason::Drift,
            format!("{} finding(s) in {}", plan.findings.len(), names.join(", ")),
        )
    }
}

/// The findings whose (check, field) the earlier findings do not have:
/// drift that appeared since.
pub fn new_findings<'f>(findings: &'f [Finding], earlier: &[Finding]) -> Vec<&'f Finding> {
    let before = finding_keys(earlier);
    findings
        .iter()
        .filter(|f| before.binary_search(&(f.check.clone(), f.field.clone())).is_err())
        .collect()
}

/// The (check, field) pairs of the findings: a change here is worth an event.
pub fn finding_keys(findings: &[Finding]) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = findings.iter().map(|f| (f.check.clone(), f.field.clone())).collect();
    v.sort();
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::findings::Severity;

    fn finding(c: Control, check: &str) -> Finding {
        Finding::builder(c, check, "f")
            .severity(Severity::High)
            .message(format!("{check} is off"))
    }

    fn plan(findings: Vec<Finding>) -> Plan {
        Plan {
            function: "eu-west-1/f".into(),
            principal: Some("role".into()),
            findings,
            ..Plan::default()
        }
    }

    fn cond<'a>(s: &'a FunctionPostureStatus, t: &str) -> &'a Condition {
        s.conditions
            .iter()
            .find(|c| c.type_ == t)
            .unwrap_or_else(|| panic!("no {t}: {:?}", s.conditions))
    }

    const DECLARED: &[Control] = &[Control::Identity, Control::Triggers];

    fn observed<'a>(p: &'a Plan, now: &'a str, prev: Option<&'a FunctionPostureStatus>) -> FunctionPostureStatus {
        build(Input {
            generation: Some(2),
            declared: DECLARED,
            cloud: Some("aws".into()),
            now,
            previous: prev,
            observation: Observation::Observed {
                plan: p,
                enforced_writes: None,
                enforce_error: None,
            },
        })
    }

    #[test]
    fn compliant_posture_is_ready_with_a_condition_per_declared_control() {
        let p = plan(vec![]);
        let s = observed(&p, "t1", None);
        assert_eq!(cond(&s, "Ready").status, "True");
        assert_eq!(cond(&s, "Synced").status, "True");
        assert_eq!(cond(&s, "IdentityCompliant").status, "True");
        assert_eq!(cond(&s, "TriggersCompliant").status, "True");
        assert!(
            s.conditions.iter().all(|c| c.type_ != "NetworkCompliant"),
            "undeclared controls have no condition"
        );
        assert_eq!(s.compliance.as_deref(), Some("2/2"));
        assert_eq!(s.observed_generation, Some(2));
        assert_eq!(s.conditions[0].type_, "Ready");
    }

    #[test]
    fn drift_names_the_control_and_the_finding() {
        let p = plan(vec![finding(Control::Triggers, "aws.triggers.publicUrl")]);
        let s = observed(&p, "t1", None);
        assert_eq!(cond(&s, "Ready").status, "False");
        assert_eq!(cond(&s, "Ready").reason, "Drift");
        let t = cond(&s, "TriggersCompliant");
        assert_eq!((t.status.as_str(), t.reason.as_str()), ("False", "Drift"));
        assert_eq!(t.message, "aws.triggers.publicUrl is off");
        assert_eq!(cond(&s, "IdentityCompliant").status, "True");
        assert_eq!(s.compliance.as_deref(), Some("1/2"));
        assert_eq!(s.findings.len(), 1);
    }

    #[test]
    fn transition_time_moves_only_when_status_changes() {
        let drift = plan(vec![finding(Control::Triggers, "x")]);
        let s1 = observed(&drift, "t1", None);
        let s2 = observed(&drift, "t2", Some(&s1));
        assert_eq!(cond(&s2, "Ready").last_transition_time, "t1");
        assert_eq!(s2.last_observed_time.as_deref(), Some("t2"));
        let fixed = plan(vec![]);
        let s3 = observed(&fixed, "t3", Some(&s2));
        assert_eq!(cond(&s3, "Ready").last_transition_time, "t3");
        assert_eq!(
            cond(&s3, "IdentityCompliant").last_transition_time,
            "t1",
            "unchanged control keeps its time"
        );
    }

    #[test]
    fn a_failed_sync_keeps_what_was_observed_and_is_not_ready() {
        let p = plan(vec![]);
        let s1 = observed(&p, "t1", None);
        let s2 = build(Input {
            generation: Some(2),
            declared: DECLARED,
            cloud: None,
            now: "t2",
            previous: Some(&s1),
            observation: Observation::NotSynced {
                reason: Reason::CloudUnreachable,
                message: "dial tcp".into(),
            },
        });
        assert_eq!(cond(&s2, "Synced").reason, "CloudUnreachable");
        assert_eq!(cond(&s2, "Ready").status, "False");
        assert_eq!(
            cond(&s2, "IdentityCompliant").status,
            "True",
            "last observation stays, with its time"
        );
        assert_eq!(s2.last_observed_time.as_deref(), Some("t1"));
        assert_eq!(s2.cloud.as_deref(), Some("aws"));
    }

    #[test]
    fn minted_identities_survive_every_later_status() {
        let p = plan(vec![]);
        let mut s1 = observed(&p, "t1", None);
        s1.minted_identities = vec![crate::providers::MintedIdentity {
            principal: "arn:aws:iam::1:role/zerofn/zerofn-f-0".into(),
            unique_id: "AROAEXAMPLE".into(),
        }];
        let s2 = observed(&p, "t2", Some(&s1));
        assert_eq!(s2.minted_identities, s1.minted_identities);
        let s3 = build(Input {
            generation: Some(3),
            declared: DECLARED,
            cloud: None,
            now: "t3",
            previous: Some(&s2),
            observation: Observation::NotSynced {
                reason: Reason::CloudUnreachable,
                message: "dial tcp".into(),
            },
        });
        assert_eq!(s3.minted_identities, s1.minted_identities);
        let wire = serde_json::to_value(&s3).unwrap();
        assert_eq!(wire["mintedIdentities"][0]["uniqueId"], "AROAEXAMPLE");
    }

    #[test]
    fn ownership_marked_survives_every_later_status_and_old_statuses_count_as_marked() {
        let p = plan(vec![]);
        let s1 = observed(&p, "t1", None);
        assert!(!s1.may_hold_marker(), "observed only: zerofn never wrote");
        assert!(serde_json::to_value(&s1).unwrap().get("ownershipMarked").is_none());
        let marked = FunctionPostureStatus {
            ownership_marked: true,
            ..s1.clone()
        };
        let s2 = observed(&p, "t2", Some(&marked));
        assert!(s2.ownership_marked);
        assert_eq!(serde_json::to_value(&s2).unwrap()["ownershipMarked"], true);
        // Written before the field existed: a write or a mint shows it.
        let old = FunctionPostureStatus {
            last_enforced_time: Some("t0".into()),
            ..s1.clone()
        };
        assert!(old.may_hold_marker());
    }

    #[test]
    fn conflicts_and_enforce_failures_are_not_synced() {
        let mut p = plan(vec![]);
        p.blocked = Some(Blocked::Conflict {
            owner: "c/ns/other".into(),
        });
        let s = observed(&p, "t1", None);
        assert_eq!(cond(&s, "Synced").reason, "Conflict");
        assert_eq!(cond(&s, "Ready").status, "False");
        let p = plan(vec![finding(Control::Identity, "x")]);
        let s = build(Input {
            generation: Some(1),
            declared: DECLARED,
            cloud: None,
            now: "t",
            previous: None,
            observation: Observation::Observed {
                plan: &p,
                enforced_writes: Some(2),
                enforce_error: Some((Reason::CloudRefused, "PutRolePolicy failed".into())),
            },
        });
        assert_eq!(cond(&s, "Synced").reason, "CloudRefused");
        assert_eq!(s.last_enforced_writes, Some(2));
    }

    #[test]
    fn findings_are_capped_most_severe_first() {
        let mut many: Vec<Finding> = (0..60).map(|i| finding(Control::Identity, &format!("c{i}"))).collect();
        many.push(
            Finding::builder(Control::Triggers, "worst", "f")
                .severity(Severity::Critical)
                .message("m"),
        );
        let p = plan(many);
        let s = observed(&p, "t", None);
        assert_eq!(s.findings.len(), MAX_FINDINGS);
        assert_eq!(s.findings_truncated, 11);
        assert_eq!(s.findings[0].check, "worst");
    }

    #[test]
    fn a_control_that_does_not_apply_is_true_with_its_reason() {
        let mut p = plan(vec![]);
        p.notes.push(crate::providers::Note {
            control: Control::Triggers,
            reason: Reason::NotApplicable,
            message: "no such thing here".into(),
        });
        let s = observed(&p, "t", None);
        let t = cond(&s, "TriggersCompliant");
        assert_eq!((t.status.as_str(), t.reason.as_str()), ("True", "NotApplicable"));
        assert_eq!(cond(&s, "Ready").status, "True");
    }

    #[test]
    fn conditions_of_controls_no_longer_declared_are_dropped() {
        let p = plan(vec![]);
        let s1 = observed(&p, "t1", None);
        let s2 = build(Input {
            generation: Some(3),
            declared: &[Control::Identity],
            cloud: None,
            now: "t2",
            previous: Some(&s1),
            observation: Observation::Observed {
                plan: &p,
                enforced_writes: None,
                enforce_error: None,
            },
        });
        assert!(s2.conditions.iter().all(|c| c.type_ != "TriggersCompliant"));
        assert_eq!(s2.compliance.as_deref(), Some("1/1"));
    }
}
