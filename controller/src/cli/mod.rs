//! The `zerofn` command line: `plan`, `enforce --once`, `crds`.

mod fleet;
mod report;
mod scan;
pub mod state;
pub mod terminal;

use crate::accounts::{self, ResolvedAccount};
use crate::api::{self, FunctionPostureSpec};
use crate::engine::{self, Bound};
use crate::manifests::{self, ManifestError, Object};
use crate::metrics::Metrics;
use crate::providers::circuit::Circuit;
use crate::providers::registry::{self, ConnectOptions};
use crate::providers::{Posture, Provider, ProviderError};
use clap::{Parser, Subcommand, ValueEnum};
use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

/// Exit codes shared by plan and enforce.
pub const EXIT_COMPLIANT: u8 = 0;
pub const EXIT_DRIFT: u8 = 1;
pub const EXIT_ERROR: u8 = 2;

#[derive(Parser, Debug)]
#[command(
    name = "zerofn",
    version,
    about = "Declared, continuously enforced Zero Trust posture for serverless functions"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// More log output on stderr (-v info, -vv debug).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Show each posture's findings and the writes enforcement would make.
    /// Exit 0 when compliant, 1 on drift, 2 on invalid input or a cloud error.
    Plan(RunArgs),
    /// Apply what the plan says (Audit postures are only reported), then
    /// re-observe and report what is true. Same exit codes as plan.
    Enforce {
        #[command(flatten)]
        args: RunArgs,
        /// Enforce once and exit (continuous enforcement is `zerofn run`, in a cluster).
        #[arg(long)]
        once: bool,
    },
    /// List every function of the given accounts with what governs it (a
    /// FunctionPosture or PosturePolicy of the files, or another zerofn's
    /// ownership marker) and, against an optional baseline posture, its
    /// findings. Writes nothing. Exit 0 when every function is governed
    /// (and compliant with the baseline), 1 otherwise, 2 on invalid input
    /// or an account that could not be listed.
    Scan {
        #[command(flatten)]
        args: RunArgs,
        /// A file holding one FunctionPosture whose controls every function
        /// of its cloud is judged against, in Audit mode (its function
        /// names only the cloud; its account is ignored). Functions of
        /// other clouds are reported not judged, never compliant.
        #[arg(long)]
        baseline: Option<PathBuf>,
    },
    /// Run the controller (the container's entrypoint): reconcile every
    /// FunctionPosture in the cluster continuously.
    Run(ControllerArgs),
    /// Print the CustomResourceDefinitions as YAML, or write one file per CRD.
    Crds {
        /// Write `<plural>.<group>.yaml` files into this directory instead.
        #[arg(long)]
        out_dir: Option<PathBuf>,
    },
}

#[derive(clap::Args, Debug, Clone)]
pub struct RunArgs {
    /// A YAML file or a directory of them (CloudAccounts, ClusterCloudAccounts,
    /// FunctionPostures, and the Secrets they name). Repeatable.
    #[arg(short = 'f', long = "filename", required = true)]
    pub paths: Vec<PathBuf>,
    #[arg(short, long, value_enum, default_value_t = Output::Table)]
    pub output: Output,
    /// Which drift exits 1: any (`drift`), only an Enforce posture's
    /// (`enforce-drift`: a CI gate that lets Audit postures report), or none
    /// (`never`). Invalid input and cloud errors exit 2 whatever it says.
    #[arg(long, value_enum, default_value_t = FailOn::Drift)]
    pub fail_on: FailOn,
    /// Identifies this zerofn in the `zerofn.dev/owner` marker
    /// (`<cluster id>/<namespace>/<name>`); use the controller's cluster id to
    /// act as the same owner.
    #[arg(long, env = "ZEROFN_CLUSTER_ID", default_value = "default")]
    pub cluster_id: String,
    /// Namespace whose Secrets ClusterCloudAccounts read (the controller's).
    #[arg(long, env = "ZEROFN_NAMESPACE", default_value = "zerofn-system")]
    pub controller_namespace: String,
    /// Postures observed at once (per-account pacing still applies).
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,
    /// PEM file of root certificates trusted, in addition to the system's,
    /// for Azure endpoints (a private ARM endpoint, a TLS-inspecting proxy,
    /// a stand-in).
    #[arg(long, env = "ZEROFN_AZURE_CA_FILE")]
    pub azure_ca_file: Option<PathBuf>,
    /// How long each account has to answer its first call. An account that
    /// does not fails all its postures at once (exit 2).
    #[arg(long, default_value = "5s", value_parser = parse_duration_arg)]
    pub probe_timeout: Duration,
    /// JSON file of the identities zerofn minted: `enforce` records each
    /// one there before the function is switched to it, and `plan` and
    /// `enforce` read it. Without it a later run cannot prove that zerofn
    /// minted a role, so it never changes one.
    #[arg(long)]
    pub state: Option<PathBuf>,
}

/// How the controller writes its log lines.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// JSON lines, for log pipelines.
    Json,
    /// Human-readable lines; coloured only on a terminal.
    Text,
}

#[derive(clap::Args, Debug, Clone)]
pub struct ControllerArgs {
    /// Identifies this installation in the cloud ownership marker; two
    /// clusters governing one estate need different ids.
    #[arg(long, env = "ZEROFN_CLUSTER_ID", default_value = "default")]
    pub cluster_id: String,
    /// The controller's namespace: its Lease, and the Secrets of
    /// ClusterCloudAccounts.
    #[arg(long, env = "ZEROFN_NAMESPACE", default_value = "zerofn-system")]
    pub namespace: String,
    /// How often each posture is re-observed when nothing changes (jittered);
    /// a posture's spec.resyncInterval wins.
    #[arg(long, default_value = "5m", value_parser = parse_duration_arg)]
    pub resync_interval: Duration,
    /// How long account-wide observations (function lists, role policies)
    /// and the Secret an account names are shared between postures before
    /// they are read again.
    #[arg(long, default_value = "30s", value_parser = parse_duration_arg)]
    pub inventory_ttl: Duration,
    /// How long a deleted posture waits for the cloud to release its
    /// ownership marker before giving up. A posture zerofn never wrote for
    /// has no marker and is deleted at once.
    #[arg(long, default_value = "60s", value_parser = parse_duration_arg)]
    pub release_timeout: Duration,
    /// Postures reconciled at once.
    #[arg(long, default_value_t = 16)]
    pub concurrency: u16,
    /// Address of /livez, /readyz and /metrics.
    #[arg(long, default_value = "0.0.0.0:8080")]
    pub probe_addr: std::net::SocketAddr,
    /// Elect a leader through a Lease so only one replica writes.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub leader_elect: bool,
    #[arg(long, default_value = "zerofn-leader")]
    pub lease_name: String,
    /// This replica's identity in the Lease (the pod name).
    #[arg(long, env = "POD_NAME")]
    pub identity: Option<String>,
    #[arg(long, default_value = "15s", value_parser = parse_duration_arg)]
    pub lease_duration: Duration,
    #[arg(long, default_value = "10s", value_parser = parse_duration_arg)]
    pub renew_deadline: Duration,
    #[arg(long, default_value = "2s", value_parser = parse_duration_arg)]
    pub retry_period: Duration,
    /// json (default, for log pipelines) or text.
    #[arg(long, value_enum, default_value_t = LogFormat::Json)]
    pub log_format: LogFormat,
    /// PEM file of root certificates trusted, in addition to the system's,
    /// for Azure endpoints (a private ARM endpoint, a TLS-inspecting proxy,
    /// a stand-in).
    #[arg(long, env = "ZEROFN_AZURE_CA_FILE")]
    pub azure_ca_file: Option<PathBuf>,
}

fn parse_duration_arg(s: &str) -> Result<Duration, String> {
    crate::api::duration::parse(s).ok_or_else(|| format!("{s}: expected a duration such as 30s, 5m, 1h"))
}

/// `--fail-on`: which drift makes plan and enforce exit 1.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailOn {
    Drift,
    EnforceDrift,
    Never,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Output {
    Table,
    Json,
}

pub async fn run(cli: Cli) -> ExitCode {
    let code = execute(cli, &mut std::io::stdout(), &mut std::io::stderr()).await;
    ExitCode::from(code)
}

async fn run_controller(args: ControllerArgs, err: &mut dyn Write) -> u8 {
    // aws-lc-rs for every TLS connection (kube, the clouds): with more than
    // one provider linked, rustls would refuse to pick one.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let client = match kube::Client::try_default().await {
        Ok(c) => c,
        Err(e) => {
            let _ = writeln!(err, "zerofn run: no Kubernetes API to talk to: {e}");
            return EXIT_ERROR;
        }
    };
    let identity = args.identity.clone().unwrap_or_else(|| {
        std::fs::read_to_string("/etc/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_else(|_| format!("zerofn-{}", std::process::id()))
    });
    let extra_roots = match extra_roots(args.azure_ca_file.as_deref()) {
        Ok(roots) => roots,
        Err(e) => {
            let _ = writeln!(err, "zerofn run: {e}");
            return EXIT_ERROR;
        }
    };
    let leader = args.leader_elect.then(|| crate::reconcile::leader::LeaderConfig {
        lease_duration: args.lease_duration,
        renew_deadline: args.renew_deadline,
        retry_period: args.retry_period,
        ..crate::reconcile::leader::LeaderConfig::new(&args.namespace, &args.lease_name, &identity)
    });
    let opts = crate::reconcile::RunOptions {
        settings: crate::reconcile::context::Settings {
            cluster_id: args.cluster_id,
            namespace: args.namespace,
            resync: args.resync_interval,
            release_timeout: args.release_timeout,
            // Credentials are refreshed as often as the account's inventory.
            secret_refresh: args.inventory_ttl,
        },
        probe_addr: args.probe_addr,
        concurrency: args.concurrency,
        connect: ConnectOptions {
            metrics: Arc::new(Metrics::default()),
            extra_roots,
            inventory_ttl: args.inventory_ttl,
        },
        leader,
    };
    match crate::reconcile::run(client, opts).await {
        Ok(()) => EXIT_COMPLIANT,
        Err(e) => {
            tracing::error!(error = %e, "controller stopped");
            let _ = writeln!(err, "zerofn run: {e}");
            EXIT_DRIFT
        }
    }
}

/// Run a command, writing its report to `out` and errors to `err`; returns
/// the exit code. (Tests run the CLI in-process through this.)
pub async fn execute(cli: Cli, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    match cli.command {
        Command::Crds { out_dir: None } => {
            let _ = write!(out, "{}", crds_yaml());
            EXIT_COMPLIANT
        }
        Command::Crds { out_dir: Some(dir) } => {
            for (file, yaml) in crd_files() {
                let path = dir.join(file);
                if let Err(e) = std::fs::write(&path, yaml) {
                    let _ = writeln!(err, "zerofn crds: {}: {e}", path.display());
                    return EXIT_ERROR;
                }
            }
            EXIT_COMPLIANT
        }
        Command::Plan(args) => plan_or_enforce(&args, false, out, err).await,
        Command::Scan { args, baseline } => scan::scan(&args, baseline.as_deref(), out, err).await,
        Command::Run(args) => run_controller(args, err).await,
        Command::Enforce { args, once } => {
            if !once {
                let _ = writeln!(
                    err,
                    "zerofn enforce: --once is required (continuous enforcement runs in a cluster: `zerofn run`, installed by the Helm chart)"
                );
                return EXIT_ERROR;
            }
            plan_or_enforce(&args, true, out, err).await
        }
    }
}

/// The CRDs as one multi-document YAML stream.
pub fn crds_yaml() -> String {
    crd_files().into_iter().map(|(_, yaml)| yaml).collect()
}

/// One YAML file per CRD, named `<plural>.<group>.yaml`: what `crds/` and the
/// Helm chart hold.
pub fn crd_files() -> Vec<(String, String)> {
    api::crds()
        .into_iter()
        .map(|crd| {
            let name = format!("{}.yaml", crd.metadata.name.clone().unwrap_or_default());
            // Serializing our own CRD types cannot fail.
            let yaml = format!(
                "# Generated by `zerofn crds --out-dir crds`; do not edit.\n---\n{}",
                serde_saphyr::to_string(&crd).unwrap_or_default()
            );
            (name, yaml)
        })
        .collect()
}

fn print_manifest_errors(errors: &[ManifestError], err: &mut dyn Write) {
    for e in errors {
        let _ = writeln!(err, "error: {}", terminal::safe(&e.to_string()));
    }
    let _ = writeln!(err, "{} error(s); nothing was sent to any cloud", errors.len());
}

/// The extra roots of `--azure-ca-file`, trusted on top of each cloud's
/// default tuning (only Azure's HTTPS client takes extra roots today).
fn extra_roots(ca_file: Option<&std::path::Path>) -> Result<Vec<String>, String> {
    let Some(path) = ca_file else {
        return Ok(Vec::new());
    };
    let pem = std::fs::read_to_string(path).map_err(|e| format!("--azure-ca-file {}: {e}", path.display()))?;
    if !pem.contains("-----BEGIN CERTIFICATE-----") {
        return Err(format!("--azure-ca-file {}: no PEM certificate in it", path.display()));
    }
    Ok(vec![pem])
}

/// Longer than any CLI run: an account marked down stays down for the run.
const RUN_LONG: Duration = Duration::from_secs(24 * 3600);

/// Probe every account once, all at once, each within `deadline`. An account
/// that does not answer in time is marked down, so its postures fail at once.
async fn probe_accounts(circuits: &[Arc<Circuit>], deadline: Duration) {
    futures::future::join_all(circuits.iter().map(|c| async move {
        if tokio::time::timeout(deadline, c.probe()).await.is_err() {
            // Said as unreachable: for this run, it is.
            c.trip(&ProviderError::Unreachable(format!(
                "the account did not answer within {deadline:?}"
            )));
        }
    }))
    .await;
}

/// A posture the CLI will run, or why it cannot.
struct Item {
    label: String,
    posture: Posture,
    provider: Result<Arc<dyn Provider>, ProviderError>,
}

/// The postures to run, one circuit per account that could be built, and
/// how many policies the files held.
struct Prepared {
    items: Vec<Item>,
    circuits: Vec<Arc<Circuit>>,
    policies: usize,
}

async fn prepare(args: &RunArgs, metrics: &Arc<Metrics>) -> Result<Prepared, Vec<ManifestError>> {
    let m = manifests::load(&args.paths)?;
    let (resolved, policies) = match (
        resolve_all(&m, &args.controller_namespace),
        fleet::resolve_policies(&m, &args.controller_namespace),
    ) {
        (Ok(r), Ok(p)) => (r, p),
        (r, p) => return Err(r.err().into_iter().chain(p.err()).flatten().collect()),
    };
    let extra_roots = extra_roots(args.azure_ca_file.as_deref()).map_err(|message| {
        vec![ManifestError {
            source: None,
            object: None,
            field: Some("--azure-ca-file".into()),
            message,
        }]
    })?;
    let opts = ConnectOptions {
        metrics: metrics.clone(),
        extra_roots,
        // One CLI run reads each account once (and once more after enforcing).
        inventory_ttl: Duration::from_secs(3600),
    };
    let mut connections = Connections {
        opts,
        providers: HashMap::new(),
    };
    // Listing the functions is the first call: each policy's account that
    // does not answer is marked down before it is asked, all at once and
    // once per account, not once per policy in turn.
    let mut policy_accounts = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for p in &policies {
        if seen.insert(p.account.key.as_str())
            && let Ok(c) = connections.provider(&m, &p.account).await
        {
            policy_accounts.push(c);
        }
    }
    probe_accounts(&policy_accounts, args.probe_timeout).await;
    let expanded = fleet::expand(&m, &policies, &resolved, &mut connections).await;
    let (items, circuits) = connect_all(&m, resolved, expanded, connections, &args.cluster_id).await;
    Ok(Prepared {
        items,
        circuits,
        policies: policies.len(),
    })
}

/// Why `spec` may not run through `account` as the files stand, by field:
/// the Secret the account names is not in the files, or the spec asks for
/// more than the account's permission ceiling.
fn account_use_errors(
    m: &manifests::Manifests,
    account: &ResolvedAccount,
    spec: &FunctionPostureSpec,
) -> Vec<(String, String)> {
    let mut errors = Vec::new();
    if let Some(secret) = registry::secret_name(&account.config)
        && m.secret(&account.secret_namespace, secret).is_none()
    {
        let message = format!(
            "{} names Secret {}/{secret}, which is not in the given files",
            account.key, account.secret_namespace
        );
        errors.push(("spec.accountRef".into(), message));
    }
    for e in crate::ceiling::check(spec, &account.config) {
        let message = format!("exceeds the permission ceiling of {}: {}", account.key, e.message);
        errors.push((e.path, message));
    }
    errors
}

/// One provider (behind a circuit) per account, built on first use; an
/// account that could not be connected keeps its error.
pub(crate) struct Connections {
    opts: ConnectOptions,
    providers: HashMap<String, Result<Arc<Circuit>, String>>,
}

impl Connections {
    pub(crate) async fn provider(
        &mut self,
        m: &manifests::Manifests,
        account: &ResolvedAccount,
    ) -> Result<Arc<Circuit>, ProviderError> {
        if !self.providers.contains_key(&account.key) {
            let secret =
                registry::secret_name(&account.config).and_then(|name| m.secret(&account.secret_namespace, name));
            let p = accounts::connect(account, secret, &self.opts)
                .await
                .map(|p| Arc::new(Circuit::new(p, RUN_LONG)))
                .map_err(|e| e.to_string());
            self.providers.insert(account.key.clone(), p);
        }
        match &self.providers[&account.key] {
            Ok(p) => Ok(p.clone()),
            Err(e) => Err(ProviderError::Config(e.clone())),
        }
    }
}

/// Every posture's account, resolved before anything is connected: a
/// refused reference is invalid input, and nothing is sent to a cloud while
/// any input is invalid.
fn resolve_all<'m>(
    m: &'m manifests::Manifests,
    controller_namespace: &str,
) -> Result<Vec<(&'m Object<FunctionPostureSpec>, ResolvedAccount)>, Vec<ManifestError>> {
    let mut resolved = Vec::new();
    let mut errors = Vec::new();
    for o in &m.postures {
        let posture_error = |field: String, message: String| ManifestError {
            source: Some(o.source.clone()),
            object: Some(format!("FunctionPosture {}/{}", o.namespace, o.name)),
            field: Some(field),
            message,
        };
        let account = accounts::resolve(
            &o.namespace,
            &o.spec.account_ref,
            o.spec.function.cloud(),
            |ns, name| m.account(ns, name).cloned(),
            |name| m.cluster_account(name).cloned(),
            controller_namespace,
        );
        let a = match account {
            Ok(a) => a,
            Err(refusal) => {
                errors.push(posture_error("spec.accountRef".into(), refusal.message));
                continue;
            }
        };
        for (field, message) in account_use_errors(m, &a, &o.spec) {
            errors.push(posture_error(field, message));
        }
        resolved.push((o, a));
    }
    if errors.is_empty() { Ok(resolved) } else { Err(errors) }
}

/// Every posture, hand-written or a policy's child, with its provider; a
/// posture whose account could not be connected carries the error.
async fn connect_all(
    m: &manifests::Manifests,
    resolved: Vec<(&Object<FunctionPostureSpec>, ResolvedAccount)>,
    expanded: Vec<fleet::Expanded>,
    mut connections: Connections,
    cluster_id: &str,
) -> (Vec<Item>, Vec<Arc<Circuit>>) {
    let mut items = Vec::new();
    let hand_written = resolved
        .into_iter()
        .map(|(o, a)| (format!("{}/{}", o.namespace, o.name), o.clone(), a));
    let children = expanded.into_iter().filter_map(|e| match e {
        fleet::Expanded::Child { label, object, account } => Some((label, *object, *account)),
        fleet::Expanded::Failed { label, spec, error } => {
            items.push(Item {
                label: label.clone(),
                posture: Posture::new(cluster_id, "", &label, *spec),
                provider: Err(error),
            });
            None
        }
    });
    let all: Vec<_> = hand_written.chain(children).collect();
    for (label, o, account) in all {
        let provider = connections.provider(m, &account).await.map(|p| p as Arc<dyn Provider>);
        items.push(Item {
            label,
            posture: Posture::new(cluster_id, &o.namespace, &o.name, o.spec),
            provider,
        });
    }
    let circuits = connections.providers.into_values().filter_map(Result::ok).collect();
    (items, circuits)
}

async fn plan_or_enforce(args: &RunArgs, enforce: bool, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    let state = match args.state.as_deref().map(state::StateFile::open).transpose() {
        Ok(s) => s.map(Arc::new),
        Err(e) => {
            let _ = writeln!(err, "--state: {e}\nnothing was sent to any cloud");
            return EXIT_ERROR;
        }
    };
    let metrics = Arc::new(Metrics::default());
    let Prepared {
        items,
        circuits,
        policies,
    } = match prepare(args, &metrics).await {
        Ok(i) => i,
        Err(errors) => {
            print_manifest_errors(&errors, err);
            return EXIT_ERROR;
        }
    };
    if items.is_empty() && policies == 0 {
        let _ = writeln!(err, "no FunctionPosture or PosturePolicy found in the given files");
        return EXIT_ERROR;
    }
    if items.is_empty() {
        // A fleet gate on an account where no function matches yet passes:
        // nothing is governed, so nothing is out of posture.
        let _ = writeln!(
            err,
            "no function is selected by the {policies} PosturePolicy(ies) given, and no FunctionPosture was given: nothing to {}",
            if enforce { "enforce" } else { "plan" }
        );
        return EXIT_COMPLIANT;
    }
    let mut rows: Vec<report::Row> = Vec::new();
    let mut bound = Vec::new();
    let mut bound_index = Vec::new();
    for (i, item) in items.iter().enumerate() {
        rows.push(report::Row::new(&item.label, &item.posture));
        match &item.provider {
            Ok(p) => {
                let mut posture = item.posture.clone();
                if let Some(s) = &state {
                    posture.minted = s.minted(&posture.owner);
                    posture.intents = s.intents(&posture.owner);
                }
                bound.push(Bound {
                    posture,
                    provider: p.clone(),
                });
                bound_index.push(i);
            }
            Err(e) => rows[i].error = Some(report::ErrorView::from(e)),
        }
    }
    probe_accounts(&circuits, args.probe_timeout).await;
    let writes_before = metrics.writes();
    let plans = engine::assess_all(&bound, args.concurrency).await;
    if enforce {
        let log_for = |p: &Posture| -> Box<dyn engine::MintLog> {
            match &state {
                Some(s) => Box::new(s.log(&p.owner)),
                None => Box::new(engine::InMemory),
            }
        };
        let (applied, after) = engine::enforce_all(&bound, &plans, args.concurrency, &log_for).await;
        for (((i, before), applied), after) in bound_index.iter().zip(&plans).zip(applied).zip(after) {
            rows[*i].record_enforced(before, applied, after);
        }
    } else {
        for (i, plan) in bound_index.iter().zip(plans) {
            rows[*i].record_plan(plan);
        }
    }
    let writes = enforce.then(|| metrics.writes() - writes_before);
    let mut report = report::Report::new(rows, writes, metrics.calls_by_op());
    report.throttled_calls = ["aws", "gcp", "azure"].into_iter().map(|c| metrics.throttled(c)).sum();
    let _ = match args.output {
        Output::Json => writeln!(out, "{}", report.json()),
        Output::Table => write!(out, "{}", report.table(enforce)),
    };
    report.exit_code(args.fail_on)
}
