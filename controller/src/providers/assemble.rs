//! One plan assembler for every cloud.
//!
//! A planner pushes each action with the phase it belongs to; the order of a
//! plan is the order of the phases, and within a phase the order of the
//! pushes. So the order is stated where an action is made, never implied by
//! which list it was appended to, and every cloud orders its writes by the
//! same rule:
//!
//! 1. **Claim** the function (the ownership marker), so a second controller
//!    sees it is governed before anything else changes.
//! 2. **Create** the identities the posture needs (a dedicated role or
//!    service account).
//! 3. **Grant** what the posture declares, to the new identity or the
//!    existing one, before anything is switched to it or taken away.
//! 4. **Configure** the function: switch its identity, network, ingress,
//!    tracing and the like.
//! 5. **Revoke** what the posture does not declare, last, so a function never
//!    loses access it needs before what replaces it is in place.

use crate::findings::Finding;
use crate::providers::Blocked;

/// Where an action stands in a plan. The variants are in plan order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Phase {
    Claim,
    Create,
    Grant,
    Configure,
    Revoke,
}

/// Findings and phased actions of one plan, as its planner finds them.
#[derive(Debug)]
pub struct PlanBuilder<A> {
    findings: Vec<Finding>,
    actions: Vec<(Phase, A)>,
}

impl<A> Default for PlanBuilder<A> {
    fn default() -> Self {
        PlanBuilder {
            findings: Vec::new(),
            actions: Vec::new(),
        }
    }
}

/// What a builder assembles: the findings in a stable order, and the actions
/// Enforce would make (none when the plan is blocked).
#[derive(Debug)]
pub struct Assembled<A> {
    pub findings: Vec<Finding>,
    pub actions: Vec<A>,
}

impl<A> PlanBuilder<A> {
    pub fn push(&mut self, phase: Phase, action: A) {
        self.actions.push((phase, action));
    }

    pub fn finding(&mut self, finding: Finding) {
        self.findings.push(finding);
    }

    pub fn findings(&self) -> &[Finding] {
        &self.findings
    }

    /// Actions pushed so far in `phase`, in push order.
    pub fn in_phase(&self, phase: Phase) -> impl Iterator<Item = &A> {
        self.actions.iter().filter(move |(p, _)| *p == phase).map(|(_, a)| a)
    }

    /// The plan's findings (ordered by control, check and field, so output
    /// does not depend on the order the checks ran in) and its actions in
    /// phase order. A blocked plan writes nothing.
    pub fn assemble(self, blocked: Option<&Blocked>) -> Assembled<A> {
        let mut findings = self.findings;
        findings.sort_by(|a, b| (a.control, &a.check, &a.field).cmp(&(b.control, &b.check, &b.field)));
        let actions = if blocked.is_some() {
            Vec::new()
        } else {
            let mut phased = self.actions;
            // Stable: pushes of one phase keep their order.
            phased.sort_by_key(|(phase, _)| *phase);
            phased.into_iter().map(|(_, a)| a).collect()
        };
        Assembled { findings, actions }
    }
}

/// Who holds a function, from the ownership marker a planner read on it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ownership {
    /// The marker names this posture.
    Held,
    /// No marker: Enforce claims the function first.
    Unclaimed,
    /// Another posture (here or in another cluster) holds it.
    Blocked(Blocked),
}

/// The ownership decision every cloud makes the same way. Audit never claims
/// and is never blocked: it writes nothing. `marker` is the value on the
/// function, `mine` this posture's value, `describe` how a refusal names the
/// other owner.
pub fn ownership(enforce: bool, marker: Option<&str>, mine: &str, describe: impl FnOnce(&str) -> String) -> Ownership {
    match marker {
        _ if !enforce => Ownership::Held,
        Some(v) if v != mine => Ownership::Blocked(Blocked::Conflict { owner: describe(v) }),
        Some(_) => Ownership::Held,
        None => Ownership::Unclaimed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::findings::Control;

    #[test]
    fn actions_come_out_in_phase_order_and_push_order_within_a_phase() {
        let mut b = PlanBuilder::default();
        b.push(Phase::Revoke, "remove old grant");
        b.push(Phase::Configure, "switch role");
        b.push(Phase::Grant, "attach policy");
        b.push(Phase::Revoke, "remove old role policy");
        b.push(Phase::Create, "create role");
        b.push(Phase::Claim, "tag function");
        b.push(Phase::Grant, "add statement");
        let got = b.assemble(None).actions;
        assert_eq!(
            got,
            vec![
                "tag function",
                "create role",
                "attach policy",
                "add statement",
                "switch role",
                "remove old grant",
                "remove old role policy",
            ]
        );
    }

    #[test]
    fn a_blocked_plan_keeps_its_findings_and_writes_nothing() {
        let mut b = PlanBuilder::default();
        b.finding(Finding::builder(Control::Network, "b", "x").message("m"));
        b.finding(Finding::builder(Control::Identity, "a", "x").message("m"));
        b.push(Phase::Configure, 1);
        let blocked = Blocked::Conflict { owner: "other".into() };
        let out = b.assemble(Some(&blocked));
        assert!(out.actions.is_empty());
        let order: Vec<Control> = out.findings.iter().map(|f| f.control).collect();
        assert_eq!(
            order,
            vec![Control::Identity, Control::Network],
            "findings sorted by control"
        );
    }

    #[test]
    fn ownership_claims_only_in_enforce_and_yields_to_another_owner() {
        let name = |v: &str| format!("owner {v}");
        assert_eq!(ownership(false, Some("them"), "me", name), Ownership::Held, "Audit");
        assert_eq!(ownership(true, None, "me", name), Ownership::Unclaimed);
        assert_eq!(ownership(true, Some("me"), "me", name), Ownership::Held);
        assert_eq!(
            ownership(true, Some("them"), "me", name),
            Ownership::Blocked(Blocked::Conflict {
                owner: "owner them".into()
            })
        );
    }
}
