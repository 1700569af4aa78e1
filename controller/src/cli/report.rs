//! What `plan` and `enforce` print: a table for people, JSON for machines.

use super::{EXIT_COMPLIANT, EXIT_DRIFT, EXIT_ERROR, FailOn};
use crate::api::Mode;
use crate::engine::Applied;
use crate::findings::Finding;
use crate::providers::{ActionSummary, Blocked, Plan, Posture, ProviderError};
use serde::Serialize;
use std::fmt::Write as _;

#[derive(Serialize, Debug, Clone)]
pub struct ErrorView {
    pub category: &'static str,
    pub message: String,
}

impl From<&ProviderError> for ErrorView {
    fn from(e: &ProviderError) -> Self {
        ErrorView {
            category: e.category(),
            message: e.to_string(),
        }
    }
}

#[derive(Serialize, Debug)]
#[serde(rename_all = "camelCase")]
pub struct Row {
    pub posture: String,
    pub cloud: String,
    pub function: String,
    pub mode: Mode,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub principal: Option<String>,
    pub compliant: bool,
    pub findings: Vec<Finding>,
    /// Writes enforcement would make (plan), or still would (enforce, after).
    pub actions: Vec<ActionSummary>,
    /// Writes made (enforce).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub applied: Vec<ActionSummary>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blocked: Option<Blocked>,
    /// Declared controls that do not apply on this cloud.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<crate::providers::Note>,
    /// Narrower declarations proposed from evidence, never applied.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub proposals: Vec<crate::findings::Proposal>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorView>,
    /// Identities this run minted, with the unique id that proves it: what
    /// the controller keeps in the posture's status.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub minted_identities: Vec<crate::providers::MintedIdentity>,
}

impl Row {
    pub fn new(label: &str, p: &Posture) -> Row {
        let cloud = p.spec.function.cloud().map(|c| c.to_string()).unwrap_or_default();
        Row {
            posture: label.to_string(),
            cloud,
            function: String::new(),
            mode: p.mode(),
            principal: None,
            compliant: false,
            findings: Vec::new(),
            actions: Vec::new(),
            applied: Vec::new(),
            blocked: None,
            notes: Vec::new(),
            proposals: Vec::new(),
            error: None,
            minted_identities: Vec::new(),
        }
    }

    pub fn record_plan(&mut self, plan: Result<Plan, ProviderError>) {
        match plan {
            Ok(p) => {
                self.function = p.function.clone();
                self.principal = p.principal.clone();
                self.compliant = p.compliant();
                self.actions = p.actions.iter().map(|a| a.summary()).collect();
                self.findings = p.findings;
                self.blocked = p.blocked;
                self.notes = p.notes;
                self.proposals = p.proposals;
            }
            Err(e) => self.error = Some(ErrorView::from(&e)),
        }
    }

    pub fn record_enforced(
        &mut self,
        before: &Result<Plan, ProviderError>,
        applied: Applied,
        after: Result<Plan, ProviderError>,
    ) {
        if let Err(e) = before {
            self.error = Some(ErrorView::from(e));
            return;
        }
        self.applied = applied.done;
        self.minted_identities = applied.minted;
        self.record_plan(after);
        if let Some((action, e)) = applied.failed {
            self.error = Some(ErrorView {
                category: e.category(),
                message: format!("{} failed: {e}", action.op),
            });
        }
    }
}

#[derive(Serialize, Debug)]
pub struct Summary {
    pub postures: usize,
    pub compliant: usize,
    pub drifted: usize,
    pub errors: usize,
}

#[derive(Serialize, Debug)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub postures: Vec<Row>,
    pub summary: Summary,
    /// Write calls made to the clouds (enforce only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub write_calls: Option<u64>,
    /// Every cloud call this run made (attempts, retries included), by
    /// `cloud operation`.
    pub cloud_calls: std::collections::BTreeMap<String, u64>,
    /// Of those, the calls a cloud refused by throttling: waited out and
    /// retried, so a posture shows one only when its retries ran out.
    pub throttled_calls: u64,
}

/// One line of the table. Whatever came from a manifest or the cloud is
/// escaped, so it can neither steer the terminal nor forge a line.
macro_rules! line {
    ($out:expr, $($arg:tt)*) => {{
        let text = format!($($arg)*);
        $out.push_str(&super::terminal::safe(&text));
        $out.push('\n');
    }};
}

impl Report {
    pub fn new(
        postures: Vec<Row>,
        write_calls: Option<u64>,
        cloud_calls: std::collections::BTreeMap<String, u64>,
    ) -> Report {
        let errors = postures.iter().filter(|r| r.error.is_some()).count();
        let compliant = postures.iter().filter(|r| r.error.is_none() && r.compliant).count();
        let drifted = postures.iter().filter(|r| r.error.is_none() && !r.compliant).count();
        Report {
            summary: Summary {
                postures: postures.len(),
                compliant,
                drifted,
                errors,
            },
            postures,
            write_calls,
            cloud_calls,
            throttled_calls: 0,
        }
    }

    /// 2 on any error whatever `fail_on` says (nothing was judged); 1 when
    /// a posture `fail_on` counts has drift; 0 otherwise.
    pub fn exit_code(&self, fail_on: FailOn) -> u8 {
        let counts = |r: &&Row| match fail_on {
            FailOn::Drift => true,
            FailOn::EnforceDrift => r.mode == Mode::Enforce,
            FailOn::Never => false,
        };
        if self.summary.errors > 0 {
            EXIT_ERROR
        } else if self.postures.iter().filter(counts).any(|r| !r.compliant) {
            EXIT_DRIFT
        } else {
            EXIT_COMPLIANT
        }
    }

    pub fn json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    pub fn table(&self, enforced: bool) -> String {
        let mut out = String::new();
        for r in &self.postures {
            let state = if r.error.is_some() {
                "ERROR"
            } else if r.compliant {
                "COMPLIANT"
            } else {
                "DRIFT"
            };
            line!(
                out,
                "{}  {} {}  {:?}  {state}",
                r.posture,
                r.cloud,
                if r.function.is_empty() { "-" } else { &r.function },
                r.mode
            );
            if let Some(p) = &r.principal {
                line!(out, "  principal: {p}");
            }
            for f in &r.findings {
                let fix = if f.remediable { "fixable" } else { "report-only" };
                line!(out, "  {:<8}  {:<13}  {:<11}  {}", f.severity, f.control, fix, f.field);
                line!(out, "            {}", f.message);
            }
            for n in &r.notes {
                line!(out, "  {:<8}  {:<13}  {}", "n/a", n.control, n.message);
            }
            for p in &r.proposals {
                line!(out, "  proposed {} (never applied; {}):", p.field, p.message);
                for l in p.declaration.lines() {
                    line!(out, "    {l}");
                }
            }
            if !r.applied.is_empty() {
                line!(out, "  applied:");
                for (i, a) in r.applied.iter().enumerate() {
                    line!(out, "    {}. {a}", i + 1);
                }
            }
            if !r.actions.is_empty() {
                let head = match (enforced, r.mode) {
                    (_, Mode::Audit) => "enforce would apply (Audit: never applied):",
                    (true, Mode::Enforce) => "still to apply:",
                    (false, Mode::Enforce) => "enforce would apply:",
                };
                line!(out, "  {head}");
                for (i, a) in r.actions.iter().enumerate() {
                    line!(out, "    {}. {a}", i + 1);
                }
            }
            if let Some(b) = &r.blocked {
                line!(out, "  blocked: {b}");
            }
            if let Some(e) = &r.error {
                line!(out, "  error ({}): {}", e.category, e.message);
            }
            out.push('\n');
        }
        let s = &self.summary;
        let _ = write!(
            out,
            "{} postures: {} compliant, {} with drift, {} errors",
            s.postures, s.compliant, s.drifted, s.errors
        );
        if let Some(w) = self.write_calls {
            let _ = write!(out, "; {w} write calls made");
        }
        out.push('\n');
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{SpecExt, aws_spec};

    fn row(name: &str, mode: Mode, compliant: bool, error: bool) -> Row {
        let spec = aws_spec(name).with_mode(mode);
        let mut r = Row::new(name, &Posture::new("c", "ns", name, spec));
        r.compliant = compliant;
        r.error = error.then(|| ErrorView {
            category: "unreachable",
            message: "down".into(),
        });
        r
    }

    fn code(rows: Vec<Row>, fail_on: FailOn) -> u8 {
        Report::new(rows, None, Default::default()).exit_code(fail_on)
    }

    #[test]
    fn fail_on_chooses_which_drift_fails_and_errors_always_do() {
        let audit_drift = || {
            vec![
                row("a", Mode::Audit, false, false),
                row("e", Mode::Enforce, true, false),
            ]
        };
        let enforce_drift = || {
            vec![
                row("a", Mode::Audit, true, false),
                row("e", Mode::Enforce, false, false),
            ]
        };
        let clean = || vec![row("a", Mode::Audit, true, false), row("e", Mode::Enforce, true, false)];
        let error = || vec![row("a", Mode::Audit, true, true), row("e", Mode::Enforce, true, false)];
        for (rows, drift, enforce, never) in [
            (audit_drift as fn() -> Vec<Row>, 1, 0, 0),
            (enforce_drift, 1, 1, 0),
            (clean, 0, 0, 0),
            (error, 2, 2, 2),
        ] {
            assert_eq!(
                [
                    code(rows(), FailOn::Drift),
                    code(rows(), FailOn::EnforceDrift),
                    code(rows(), FailOn::Never)
                ],
                [drift, enforce, never]
            );
        }
    }
}
