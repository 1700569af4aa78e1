//! Test fixtures: one way to write a posture spec, so each test names only
//! the fields it is about, and the runner of the generated sweeps.

use crate::api::*;
use proptest::strategy::Strategy;
use proptest::test_runner::{Config, FileFailurePersistence, TestCaseError, TestRunner};

/// A posture of the AWS function `name` in eu-west-1, account `prod`,
/// Enforce, with no control declared.
pub(crate) fn aws_spec(name: &str) -> FunctionPostureSpec {
    spec_of(FunctionTarget {
        aws: Some(AwsFunctionRef {
            name: name.into(),
            region: Some("eu-west-1".into()),
        }),
        azure: None,
        gcp: None,
    })
}

/// A posture of the GCP function `location/name`, account `prod`, Enforce,
/// with no control declared.
pub(crate) fn gcp_spec(location: &str, name: &str) -> FunctionPostureSpec {
    spec_of(FunctionTarget {
        aws: None,
        azure: None,
        gcp: Some(GcpFunctionRef {
            location: location.into(),
            name: name.into(),
        }),
    })
}

fn spec_of(function: FunctionTarget) -> FunctionPostureSpec {
    FunctionPostureSpec {
        account_ref: AccountRef {
            kind: AccountKind::CloudAccount,
            name: "prod".into(),
        },
        function,
        mode: Mode::Enforce,
        identity: None,
        triggers: None,
        network: None,
        supply_chain: None,
        observability: None,
        resync_interval: None,
    }
}

/// Builder steps on a spec: `aws_spec("orders").with_mode(Mode::Audit)`.
pub(crate) trait SpecExt: Sized {
    fn with_account(self, kind: AccountKind, name: &str) -> Self;
    fn with_mode(self, mode: Mode) -> Self;
    fn with_identity(self, identity: IdentityControl) -> Self;
    fn with_triggers(self, triggers: TriggerControl) -> Self;
    fn with_network(self, network: NetworkControl) -> Self;
}

impl SpecExt for FunctionPostureSpec {
    fn with_account(mut self, kind: AccountKind, name: &str) -> Self {
        self.account_ref = AccountRef {
            kind,
            name: name.into(),
        };
        self
    }
    fn with_mode(mut self, mode: Mode) -> Self {
        self.mode = mode;
        self
    }
    fn with_identity(mut self, identity: IdentityControl) -> Self {
        self.identity = Some(identity);
        self
    }
    fn with_triggers(mut self, triggers: TriggerControl) -> Self {
        self.triggers = Some(triggers);
        self
    }
    fn with_network(mut self, network: NetworkControl) -> Self {
        self.network = Some(network);
        self
    }
}

/// Runs a generated sweep of `cases` cases, shrinks a failing one to a
/// minimal case, and keeps its seed in `proptest-regressions/` beside the
/// calling test's source (replayed first on every later run; commit it).
/// `check` may fail by `prop_assert!` or by panicking.
#[track_caller]
pub(crate) fn sweep<S: Strategy>(cases: u32, strategy: S, check: impl Fn(S::Value) -> Result<(), TestCaseError>) {
    let config = Config {
        cases,
        source_file: Some(std::panic::Location::caller().file()),
        failure_persistence: Some(Box::new(FileFailurePersistence::SourceParallel("proptest-regressions"))),
        ..Config::default()
    };
    if let Err(e) = TestRunner::new(config).run(&strategy, check) {
        panic!("{e}");
    }
}
