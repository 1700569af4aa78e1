//! A cloud for tests of the engine and the reconciler, behind the real
//! adapter: its drift is a list of findings, and each action fixes the one it
//! names. It follows the "Adding a cloud" recipe of docs/design.md, apart
//! from the registration: it reaches nothing, so no account maps to it.

use super::cloud::{Cloud, CloudAction, Secret};
use super::registry::ConnectOptions;
use super::{ActionSummary, Blocked, MintIntent, MintedIdentity, Plan, Posture, ProviderError, Tuning};
use crate::api::{self, FunctionTarget};
use crate::findings::{Control, Finding};
use serde::Serialize;
use std::sync::Mutex;

/// Fix the finding of this check.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Fix {
    pub check: String,
}

impl CloudAction for Fix {
    fn summary(&self) -> ActionSummary {
        ActionSummary {
            op: "Fix".into(),
            target: "f".into(),
            detail: self.check.clone(),
        }
    }
}

/// A drift finding of `check`.
pub fn drift(check: &str) -> Finding {
    Finding::builder(Control::Network, check, "x").message("m")
}

/// A role zerofn minted, `n` telling them apart.
pub fn role(n: u8) -> MintedIdentity {
    MintedIdentity {
        principal: format!("arn:aws:iam::1:role/zerofn/r{n}"),
        unique_id: format!("AROA{n}"),
    }
}

/// The identity fixing `mint_on` creates.
pub const MINTED: u8 = 9;

#[derive(Default)]
pub struct TestCloud {
    pub drift: Mutex<Vec<Finding>>,
    /// Fixing this check is refused.
    pub fail_on: Option<String>,
    /// Another posture owns the function.
    pub blocked: bool,
    /// Fixing this check creates `role(MINTED)` (with a write-ahead record).
    pub mint_on: Option<String>,
    /// Identities minted before this process started fixing.
    pub mints: Vec<MintedIdentity>,
    pub reached: Option<String>,
    /// The account's functions, as `functions` lists them.
    pub listed: Vec<crate::fleet::Listed>,
    /// What the tests read back.
    pub assessed: Mutex<u32>,
    pub seen_minted: Mutex<Vec<Vec<MintedIdentity>>>,
    pub applied: Mutex<Vec<String>>,
    pub invalidated: Mutex<u32>,
    pub released: Mutex<u32>,
    pub probes: Mutex<u32>,
    /// Identities this process minted (by fixing `mint_on`).
    pub minted_now: Mutex<Vec<MintedIdentity>>,
}

impl TestCloud {
    /// A cloud whose function drifts on these checks.
    pub fn drifting(checks: &[&str]) -> Self {
        TestCloud {
            drift: Mutex::new(checks.iter().map(|c| drift(c)).collect()),
            ..TestCloud::default()
        }
    }

    /// Checks fixed so far, in order.
    pub fn applied(&self) -> Vec<String> {
        self.applied.lock().unwrap().clone()
    }
}

impl Cloud for TestCloud {
    // The API knows three clouds; this one stands in for an AWS account.
    const KIND: api::Cloud = api::Cloud::Aws;
    type Account = api::AwsAccount;
    type Action = Fix;
    type Observed = Vec<Finding>;

    fn secret_name(_account: &api::AwsAccount) -> Option<&str> {
        None
    }

    fn default_tuning() -> Tuning {
        Tuning::default()
    }

    async fn connect(
        _account: &api::AwsAccount,
        _secret: Option<Secret<'_>>,
        _tuning: Tuning,
        _opts: &ConnectOptions,
    ) -> Result<Self, ProviderError> {
        Ok(TestCloud::default())
    }

    fn function_key(account_key: &str, _account: &api::AwsAccount, target: &FunctionTarget) -> Option<String> {
        Some(format!("test/{account_key}/{}", target.aws.as_ref()?.name))
    }

    fn reached(&self) -> Option<String> {
        self.reached.clone()
    }

    async fn observe(&self, posture: &Posture) -> Result<Vec<Finding>, ProviderError> {
        *self.assessed.lock().unwrap() += 1;
        self.seen_minted.lock().unwrap().push(posture.minted.clone());
        Ok(self.drift.lock().unwrap().clone())
    }

    fn plan(&self, _posture: &Posture, observed: &Vec<Finding>) -> Plan<Fix> {
        Plan {
            function: "f".into(),
            principal: None,
            findings: observed.clone(),
            actions: observed.iter().map(|f| Fix { check: f.check.clone() }).collect(),
            blocked: self.blocked.then(|| Blocked::Conflict { owner: "other".into() }),
            notes: Vec::new(),
            proposals: Vec::new(),
        }
    }

    async fn apply(&self, _posture: &Posture, action: &Fix) -> Result<(), ProviderError> {
        let check = &action.check;
        if self.fail_on.as_ref() == Some(check) {
            return Err(ProviderError::Refused(check.clone()));
        }
        if self.mint_on.as_ref() == Some(check) {
            self.minted_now.lock().unwrap().push(role(MINTED));
        }
        self.applied.lock().unwrap().push(check.clone());
        self.drift.lock().unwrap().retain(|f| f.check != *check);
        Ok(())
    }

    fn invalidate(&self) {
        *self.invalidated.lock().unwrap() += 1;
    }

    async fn release(&self, _posture: &Posture) -> Result<(), ProviderError> {
        *self.released.lock().unwrap() += 1;
        Ok(())
    }

    fn minted(&self, _posture: &Posture) -> Vec<MintedIdentity> {
        let mut all = self.mints.clone();
        all.extend(self.minted_now.lock().unwrap().iter().cloned());
        all
    }

    fn intent(&self, _posture: &Posture, action: &Fix) -> Option<MintIntent> {
        (self.mint_on.as_ref() == Some(&action.check)).then(|| MintIntent {
            principal: role(MINTED).principal,
            nonce: "n".into(),
            at: "t".into(),
        })
    }

    async fn probe(&self) -> Result<(), ProviderError> {
        *self.probes.lock().unwrap() += 1;
        Ok(())
    }

    async fn functions(&self) -> Result<Vec<crate::fleet::Listed>, ProviderError> {
        Ok(self.listed.clone())
    }

    fn feed(&self) -> Option<std::sync::Arc<dyn crate::providers::feed::EventFeed>> {
        None
    }
}
