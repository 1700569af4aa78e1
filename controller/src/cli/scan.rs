//! `zerofn scan`: every function of the given accounts, what governs it,
//! and, against an optional baseline posture, its findings. Reads only.
//!
//! A function is governed by a FunctionPosture of the files, by a
//! PosturePolicy of the files (the same precedence as everywhere,
//! `fleet::assign`), or by an ownership marker some zerofn set on it (a
//! posture in a cluster); otherwise it is ungoverned. Exit 0 when every
//! function is governed (and, with a baseline, compliant), 1 otherwise, 2
//! on invalid input or an account that could not be listed.

use super::fleet::{govern, resolve_policies};
use super::terminal::safe;
use super::{Connections, EXIT_COMPLIANT, EXIT_DRIFT, EXIT_ERROR, Output, RunArgs, probe_accounts, resolve_all};
use crate::accounts::{self, ResolvedAccount};
use crate::api::{AccountKind, FunctionPostureSpec, Mode};
use crate::engine::{self, Bound};
use crate::findings::Finding;
use crate::fleet;
use crate::manifests::{self, ManifestError, Manifests};
use crate::metrics::Metrics;
use crate::providers::registry::{self, ConnectOptions};
use crate::providers::{Posture, Provider};
use serde::Serialize;
use std::collections::HashMap;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// One function of an account, as the scan reports it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct FunctionRow {
    account: String,
    cloud: String,
    function: String,
    /// `FunctionPosture ns/name`, `PosturePolicy ns/name`, `marker <owner>`;
    /// absent: ungoverned.
    #[serde(skip_serializing_if = "Option::is_none")]
    governed_by: Option<String>,
    /// Against the baseline; absent without one or when it could not be
    /// judged (then `error` says why).
    #[serde(skip_serializing_if = "Option::is_none")]
    compliant: Option<bool>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    findings: Vec<Finding>,
    /// Why the baseline did not judge the function (it declares another
    /// cloud's posture): never counted compliant.
    #[serde(skip_serializing_if = "Option::is_none")]
    not_judged: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct AccountError {
    account: String,
    error: String,
}

#[derive(Serialize, Default)]
#[serde(rename_all = "camelCase")]
struct Summary {
    functions: usize,
    governed: usize,
    ungoverned: usize,
    /// With a baseline: functions compliant with it.
    #[serde(skip_serializing_if = "Option::is_none")]
    compliant: Option<usize>,
    errors: usize,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ScanReport {
    summary: Summary,
    /// Cloud writes made: a scan makes none.
    write_calls: u64,
    functions: Vec<FunctionRow>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    accounts_not_listed: Vec<AccountError>,
}

fn input_error(field: &str, message: String) -> Vec<ManifestError> {
    vec![ManifestError {
        source: None,
        object: None,
        field: Some(field.into()),
        message,
    }]
}

/// The baseline: the one FunctionPosture of the file, judged in Audit mode.
/// Its `function` says only which cloud's functions it judges; its
/// `accountRef` is ignored.
fn load_baseline(path: &Path) -> Result<FunctionPostureSpec, Vec<ManifestError>> {
    let m = manifests::load(&[path.to_path_buf()])?;
    match m.postures.as_slice() {
        [one] => Ok(FunctionPostureSpec {
            mode: Mode::Audit,
            ..one.spec.clone()
        }),
        other => Err(input_error(
            "--baseline",
            format!(
                "{} holds {} FunctionPostures; a baseline is exactly one",
                path.display(),
                other.len()
            ),
        )),
    }
}

/// Every account of the files, as the person running the scan uses it:
/// directly, under the tenancy rules of the account itself (`permit`).
fn scanned_accounts(m: &Manifests, controller_namespace: &str) -> Result<Vec<ResolvedAccount>, Vec<ManifestError>> {
    let mut out = Vec::new();
    let mut errors = Vec::new();
    let namespaced = m.accounts.iter().map(|a| {
        (
            &a.source,
            format!("CloudAccount/{}/{}", a.namespace, a.name),
            AccountKind::CloudAccount,
            Some(a.namespace.clone()),
            &a.name,
            a.spec.config(),
            a.namespace.clone(),
        )
    });
    let cluster = m.cluster_accounts.iter().map(|a| {
        (
            &a.source,
            format!("ClusterCloudAccount/{}", a.name),
            AccountKind::ClusterCloudAccount,
            None,
            &a.name,
            a.spec.config(),
            controller_namespace.to_string(),
        )
    });
    for (source, key, kind, namespace, name, config, secret_namespace) in namespaced.chain(cluster) {
        let error = |message: String| ManifestError {
            source: Some(source.clone()),
            object: Some(key.replacen('/', " ", 1)),
            field: Some("spec".into()),
            message,
        };
        let Some(config) = config else {
            errors.push(error(format!("{key} must set exactly one of aws, azure or gcp")));
            continue;
        };
        if let Err(refusal) = accounts::permit(&key, kind, &config) {
            errors.push(error(refusal.message));
            continue;
        }
        if let Some(secret) = registry::secret_name(&config)
            && m.secret(&secret_namespace, secret).is_none()
        {
            errors.push(error(format!(
                "{key} names Secret {secret_namespace}/{secret}, which is not in the given files"
            )));
            continue;
        }
        out.push(ResolvedAccount {
            key,
            kind,
            namespace,
            name: name.clone(),
            config,
            secret_namespace,
        });
    }
    if errors.is_empty() { Ok(out) } else { Err(errors) }
}

pub async fn scan(args: &RunArgs, baseline: Option<&Path>, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    let prepared = (|| {
        let m = manifests::load(&args.paths)?;
        let baseline = baseline.map(load_baseline).transpose()?;
        Ok::<_, Vec<ManifestError>>((m, baseline))
    })();
    let (m, baseline) = match prepared {
        Ok(p) => p,
        Err(errors) => {
            super::print_manifest_errors(&errors, err);
            return EXIT_ERROR;
        }
    };
    let resolved = (
        scanned_accounts(&m, &args.controller_namespace),
        resolve_all(&m, &args.controller_namespace),
        resolve_policies(&m, &args.controller_namespace),
    );
    let (accounts, postures, policies) = match resolved {
        (Ok(a), Ok(p), Ok(q)) => (a, p, q),
        (a, p, q) => {
            let errors: Vec<_> = a.err().into_iter().chain(p.err()).chain(q.err()).flatten().collect();
            super::print_manifest_errors(&errors, err);
            return EXIT_ERROR;
        }
    };
    if accounts.is_empty() {
        let _ = writeln!(err, "no CloudAccount or ClusterCloudAccount found in the given files");
        return EXIT_ERROR;
    }
    let extra_roots = match super::extra_roots(args.azure_ca_file.as_deref()) {
        Ok(r) => r,
        Err(message) => {
            super::print_manifest_errors(&input_error("--azure-ca-file", message), err);
            return EXIT_ERROR;
        }
    };
    let metrics = Arc::new(Metrics::default());
    let mut connections = Connections {
        opts: ConnectOptions {
            metrics: metrics.clone(),
            extra_roots,
            inventory_ttl: Duration::from_secs(3600),
        },
        providers: HashMap::new(),
    };
    let mut report = ScanReport {
        summary: Summary::default(),
        write_calls: 0,
        functions: Vec::new(),
        accounts_not_listed: Vec::new(),
    };
    let mut listings = Vec::new();
    let mut providers = Vec::new();
    for account in &accounts {
        let listed = match connections.provider(&m, account).await {
            Ok(p) => {
                probe_accounts(std::slice::from_ref(&p), args.probe_timeout).await;
                p.functions().await.map(|l| (p, l))
            }
            Err(e) => Err(e),
        };
        match listed {
            Ok((provider, listed)) => {
                listings.push((account, listed));
                providers.push(provider);
            }
            Err(e) => report.accounts_not_listed.push(AccountError {
                account: account.key.clone(),
                error: e.to_string(),
            }),
        }
    }
    let governance = govern(&listings, &postures, &policies);
    let mut to_judge: Vec<(usize, Bound)> = Vec::new();
    for ((account, listed), provider) in listings.iter().zip(&providers) {
        for f in listed {
            let cloud = f.target.cloud();
            let not_judged = baseline.as_ref().filter(|b| b.function.cloud() != cloud).map(|b| {
                format!(
                    "the baseline is a posture for {}",
                    b.function.cloud().map(|c| c.to_string()).unwrap_or_default()
                )
            });
            if let Some(b) = baseline.as_ref().filter(|_| not_judged.is_none()) {
                let spec = FunctionPostureSpec {
                    function: f.target.clone(),
                    ..b.clone()
                };
                let name = fleet::child_name("baseline", &f.target);
                to_judge.push((
                    report.functions.len(),
                    Bound {
                        posture: Posture::new(&args.cluster_id, "scan", &name, spec),
                        provider: provider.clone() as Arc<dyn Provider>,
                    },
                ));
            }
            report.functions.push(FunctionRow {
                account: account.key.clone(),
                cloud: f.target.cloud().map(|c| c.to_string()).unwrap_or_default(),
                function: fleet::function_label(&f.target),
                governed_by: governance
                    .index_of(account, &f.target)
                    .and_then(|i| governance.governed_by(i)),
                compliant: None,
                findings: Vec::new(),
                not_judged,
                error: None,
            });
        }
    }
    let bound: Vec<Bound> = to_judge.iter().map(|(_, b)| b.clone()).collect();
    let plans = engine::assess_all(&bound, args.concurrency).await;
    for ((i, _), plan) in to_judge.iter().zip(plans) {
        let row = &mut report.functions[*i];
        match plan {
            Ok(p) => {
                row.compliant = Some(p.compliant());
                row.findings = p.findings;
            }
            Err(e) => row.error = Some(e.to_string()),
        }
    }
    summarize(&mut report, baseline.is_some());
    report.write_calls = metrics.writes();
    let _ = match args.output {
        Output::Json => writeln!(out, "{}", serde_json::to_string_pretty(&report).unwrap_or_default()),
        Output::Table => write!(out, "{}", table(&report)),
    };
    exit_code(&report, baseline.is_some())
}

fn summarize(report: &mut ScanReport, judged: bool) {
    let s = &mut report.summary;
    s.functions = report.functions.len();
    s.governed = report.functions.iter().filter(|f| f.governed_by.is_some()).count();
    s.ungoverned = s.functions - s.governed;
    s.compliant = judged.then(|| report.functions.iter().filter(|f| f.compliant == Some(true)).count());
    s.errors = report.functions.iter().filter(|f| f.error.is_some()).count() + report.accounts_not_listed.len();
}

fn exit_code(report: &ScanReport, judged: bool) -> u8 {
    let s = &report.summary;
    if s.errors > 0 {
        EXIT_ERROR
    } else if s.ungoverned > 0 || (judged && s.compliant != Some(s.functions)) {
        EXIT_DRIFT
    } else {
        EXIT_COMPLIANT
    }
}

fn table(report: &ScanReport) -> String {
    let mut t = String::new();
    for f in &report.functions {
        let governed = f.governed_by.as_deref().unwrap_or("UNGOVERNED");
        let judged = match (&f.error, f.compliant) {
            (Some(e), _) => format!("  ERROR {e}"),
            (None, None) if f.not_judged.is_some() => {
                format!("  not judged: {}", f.not_judged.as_deref().unwrap_or_default())
            }
            (None, Some(true)) => "  compliant".into(),
            (None, Some(false)) => match f.findings.len() {
                1 => "  1 finding".into(),
                n => format!("  {n} findings"),
            },
            (None, None) => String::new(),
        };
        t.push_str(&format!(
            "{}  {} {}  {}{}\n",
            safe(&f.account),
            f.cloud,
            safe(&f.function),
            safe(governed),
            safe(&judged)
        ));
        for finding in &f.findings {
            t.push_str(&format!(
                "    {:?}  {}  {}\n",
                finding.severity,
                safe(&finding.check),
                safe(&finding.message)
            ));
        }
    }
    for a in &report.accounts_not_listed {
        t.push_str(&format!("{}  ERROR {}\n", safe(&a.account), safe(&a.error)));
    }
    let s = &report.summary;
    t.push_str(&format!(
        "{} functions: {} governed, {} ungoverned{}, {} errors\n",
        s.functions,
        s.governed,
        s.ungoverned,
        s.compliant
            .map(|c| format!(", {c} compliant with the baseline"))
            .unwrap_or_default(),
        s.errors
    ));
    t
}
