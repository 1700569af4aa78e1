//! Findings: what differs between the declared posture and the cloud.
//!
//! A finding is the unit a person acts on: it names the control, the exact
//! cloud field, what was seen, what was declared, how bad it is, and whether
//! zerofn can fix it (and if not, why). Every provider produces the same shape
//! so status, events, metrics and the CLI treat all clouds alike.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::fmt;

/// The Zero Trust controls a posture can declare. Each has its own status
/// condition (`<Control>Compliant`).
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Control {
    Identity,
    Triggers,
    Network,
    SupplyChain,
    Observability,
}

impl Control {
    pub const ALL: [Control; 5] = [
        Control::Identity,
        Control::Triggers,
        Control::Network,
        Control::SupplyChain,
        Control::Observability,
    ];

    /// The status condition type reporting this control.
    pub fn condition_type(self) -> &'static str {
        match self {
            Control::Identity => "IdentityCompliant",
            Control::Triggers => "TriggersCompliant",
            Control::Network => "NetworkCompliant",
            Control::SupplyChain => "SupplyChainCompliant",
            Control::Observability => "ObservabilityCompliant",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Control::Identity => "Identity",
            Control::Triggers => "Triggers",
            Control::Network => "Network",
            Control::SupplyChain => "SupplyChain",
            Control::Observability => "Observability",
        }
    }
}

impl fmt::Display for Control {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    Low,
    Medium,
    High,
    Critical,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(match self {
            Severity::Low => "Low",
            Severity::Medium => "Medium",
            Severity::High => "High",
            Severity::Critical => "Critical",
        })
    }
}

/// One difference between the declared posture and what the cloud holds.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Finding {
    /// The control this finding belongs to.
    pub control: Control,
    /// A stable identifier of the check, e.g. `aws.identity.sharedRole`.
    pub check: String,
    /// The cloud API field that differs, e.g. `Configuration.TracingConfig.Mode`.
    pub field: String,
    /// What the cloud holds now.
    pub observed: String,
    /// What the posture declares.
    pub desired: String,
    /// Critical, High, Medium or Low.
    pub severity: Severity,
    /// Whether zerofn fixes this in Enforce mode. Report-only findings say why
    /// in `message`.
    pub remediable: bool,
    /// A sentence a person can act on.
    pub message: String,
}

/// A narrower declaration zerofn proposes from the cloud's evidence and never
/// applies: a person reads it and pastes it into the posture.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Proposal {
    /// The control the declaration belongs to.
    pub control: Control,
    /// The posture field the declaration replaces, e.g.
    /// `spec.identity.aws.permissions`.
    pub field: String,
    /// The declaration, as YAML to paste under that field.
    pub declaration: String,
    /// What it is based on and what it leaves out.
    pub message: String,
}

/// Longest declaration kept in a proposal: past it the declaration is not
/// shown (a clipped YAML document would paste as something else).
const MAX_PROPOSAL_LEN: usize = 16 * 1024;

impl Proposal {
    pub fn new(control: Control, field: &str, declaration: String, message: String) -> Proposal {
        let (declaration, message) = if declaration.len() > MAX_PROPOSAL_LEN {
            (
                String::new(),
                format!(
                    "{message}; the declaration is longer than {MAX_PROPOSAL_LEN} bytes and is not shown here: run `zerofn plan` on the posture"
                ),
            )
        } else {
            (declaration, message)
        };
        Proposal {
            control,
            field: field.to_string(),
            declaration,
            message,
        }
    }
}

/// Longest text kept in a finding's observed/desired fields: status objects
/// live in etcd and policy documents can be large.
const MAX_VALUE_LEN: usize = 1024;

impl Finding {
    pub fn builder(control: Control, check: &str, field: impl Into<String>) -> FindingBuilder {
        FindingBuilder(Finding {
            control,
            check: check.to_string(),
            field: field.into(),
            observed: String::new(),
            desired: String::new(),
            severity: Severity::Medium,
            remediable: true,
            message: String::new(),
        })
    }
}

/// Builder so plan code reads as a sentence and no field is forgotten silently.
pub struct FindingBuilder(Finding);

impl FindingBuilder {
    pub fn observed(mut self, v: impl fmt::Display) -> Self {
        self.0.observed = clip(v.to_string());
        self
    }
    pub fn desired(mut self, v: impl fmt::Display) -> Self {
        self.0.desired = clip(v.to_string());
        self
    }
    pub fn severity(mut self, s: Severity) -> Self {
        self.0.severity = s;
        self
    }
    pub fn remediable(mut self, r: bool) -> Self {
        self.0.remediable = r;
        self
    }
    pub fn message(mut self, m: impl Into<String>) -> Finding {
        self.0.message = m.into();
        self.0
    }
}

fn clip(mut s: String) -> String {
    if s.len() > MAX_VALUE_LEN {
        let mut cut = MAX_VALUE_LEN;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push('…');
    }
    s
}

/// Summary of findings per control, for conditions, metrics and the CLI.
pub fn non_compliant_controls(findings: &[Finding]) -> Vec<Control> {
    let mut v: Vec<Control> = findings.iter().map(|f| f.control).collect();
    v.sort();
    v.dedup();
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_values_are_clipped_on_a_char_boundary() {
        let f = Finding::builder(Control::Identity, "x", "f")
            .observed("é".repeat(MAX_VALUE_LEN))
            .message("m");
        assert!(f.observed.len() <= MAX_VALUE_LEN + '…'.len_utf8());
        assert!(f.observed.ends_with('…'));
    }

    #[test]
    fn controls_are_reported_once_each_in_order() {
        let f = |c| Finding::builder(c, "x", "f").message("m");
        let v = non_compliant_controls(&[f(Control::Network), f(Control::Identity), f(Control::Network)]);
        assert_eq!(v, vec![Control::Identity, Control::Network]);
    }
}
