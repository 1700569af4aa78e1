//! zerofn against Cloud Custodian, the peer: the same four checks over the
//! same estate, timed in turn.
//!
//! ```sh
//! cargo build --release --workspace --bins
//! cargo bench -p zerofn-tests --bench c7n     # ZEROFN_BENCH_FUNCTIONS=1000, ZEROFN_BENCH_RUNS=5
//! ```
//!
//! Seeds LocalStack with N functions (default 1,000): a quarter share one
//! role, a quarter are public (a resource policy statement granting
//! lambda:InvokeFunction to `*`), a quarter have a function URL with AuthType
//! NONE, and the last quarter sit in a VPC with tracing Active (so that the
//! VPC and tracing checks each find three quarters, not everything).
//!
//! zerofn runs `zerofn plan` over one Audit posture per function declaring
//! triggers (publicAccess RequireAuth: public invoke, URL auth), network (the
//! VPC), observability (tracing Active) and identity (a dedicated role: role
//! sharing, read from one account-wide call). Custodian (`c7n`, pinned in
//! `testworld/aws/custodian.sh`, installed into `.testworld/` on first use)
//! runs `benches/c7n_policy.yml`: one policy per check, with its own filters.
//! Both run unpaced: zerofn's account allows 1,000 requests per second.
//!
//! Each tool runs once to warm the stand-in up (LocalStack loads a service
//! on its first request), then the two run in turn, ZEROFN_BENCH_RUNS times
//! each. Every run is a child process measured by `/usr/bin/time` (GNU time:
//! user and system CPU and peak RSS from `wait4`, exact and without sampling;
//! the bench fails if it is missing); wall time is taken around the child.
//! Both talk to LocalStack through `zerofn_sim::counting`, a proxy that
//! counts every request by service and operation, so "cloud reads" is one
//! tally for both. The findings of each check must be the same functions
//! for both tools and as seeded: a mismatch fails the bench.
#![forbid(unsafe_code)]

use futures::StreamExt;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Instant;
use zerofn_sim::aws::Aws;
use zerofn_sim::counting::CountingProxy;
use zerofn_sim::localstack::{ACCOUNT_ID, LocalStack, REGION};
use zerofn_tests::TempDir;

/// Each compared check: its label, zerofn's finding check, and the
/// Custodian policy (in `c7n_policy.yml`) that reports it.
const CHECKS: [(&str, &str, &str); 4] = [
    ("public invoke", "aws.triggers.publicPrincipal", "public-invoke"),
    ("URL auth NONE", "aws.triggers.publicUrl", "url-auth-none"),
    ("no VPC", "aws.network.noVpc", "no-vpc"),
    ("tracing not Active", "aws.observability.tracing", "tracing-not-active"),
];
/// zerofn's role-sharing check, which the Custodian policies do not make.
const SHARED_ROLE: &str = "aws.identity.sharedRole";
const TIME: &str = "/usr/bin/time";

/// Function names by check.
type Findings = BTreeMap<String, BTreeSet<String>>;

/// One run of one tool.
#[derive(Clone, Debug)]
struct Sample {
    wall: f64,
    user: f64,
    system: f64,
    rss_kib: u64,
    requests: BTreeMap<String, u64>,
}

impl Sample {
    fn reads(&self) -> u64 {
        self.requests.values().sum()
    }
}

fn env(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn name(i: usize) -> String {
    format!("c7n-{i:04}")
}

/// What the seeded estate holds: the functions each check must report.
fn expected(n: usize) -> Findings {
    let quarter = |q: usize| (0..n).filter(|i| i % 4 == q).map(name).collect::<BTreeSet<_>>();
    let not_last = (0..n).filter(|i| i % 4 != 3).map(name).collect::<BTreeSet<_>>();
    BTreeMap::from([
        (SHARED_ROLE.to_string(), quarter(0)),
        ("public invoke".to_string(), quarter(1)),
        ("URL auth NONE".to_string(), quarter(2)),
        ("no VPC".to_string(), not_last.clone()),
        ("tracing not Active".to_string(), not_last),
    ])
}

/// One function of the estate, configured by its quarter.
async fn seed_one(aws: &Aws, i: usize, shared_role: &str, network: &(Vec<String>, String)) {
    let name = name(i);
    let role = if i.is_multiple_of(4) {
        shared_role.to_string()
    } else {
        aws.create_role(&format!("{name}-role")).await.expect("role")
    };
    aws.create_function(&name, &role).await.expect("function");
    let lambda = &aws.lambda;
    match i % 4 {
        1 => {
            let grant = lambda.add_permission().function_name(&name).statement_id("public");
            let grant = grant.action("lambda:InvokeFunction").principal("*");
            grant.send().await.expect("public grant");
        }
        2 => {
            let url = lambda.create_function_url_config().function_name(&name);
            let url = url.auth_type(aws_sdk_lambda::types::FunctionUrlAuthType::None);
            url.send().await.expect("function URL");
        }
        3 => {
            let vpc = aws_sdk_lambda::types::VpcConfig::builder()
                .set_subnet_ids(Some(network.0.clone()))
                .security_group_ids(&network.1)
                .build();
            let tracing = aws_sdk_lambda::types::TracingConfig::builder()
                .mode(aws_sdk_lambda::types::TracingMode::Active)
                .build();
            let update = lambda.update_function_configuration().function_name(&name);
            update
                .vpc_config(vpc)
                .tracing_config(tracing)
                .send()
                .await
                .expect("VPC, tracing");
            aws.wait_ready(&name).await.expect("ready");
        }
        _ => {}
    }
}

async fn seed(aws: &Aws, n: usize) -> (Vec<String>, String) {
    let shared_role = aws.create_role("c7n-shared").await.expect("shared role");
    let network = aws.create_network().expect("VPC");
    futures::stream::iter(0..n)
        .for_each_concurrent(8, |i| seed_one(aws, i, &shared_role, &network))
        .await;
    network
}

/// The CloudAccount, its Secret, and one Audit posture per function.
fn manifests(n: usize, endpoint: &str, network: &(Vec<String>, String)) -> String {
    let mut yaml = format!(
        "apiVersion: zerofn.dev/v1alpha1\nkind: CloudAccount\nmetadata: {{name: a, namespace: bench}}\nspec:\n  aws: {{accountId: \"{ACCOUNT_ID}\", region: {REGION}, endpoint: \"{endpoint}\", credentialsSecretRef: {{name: c}}, maxRequestsPerSecond: 1000}}\n---\napiVersion: v1\nkind: Secret\nmetadata: {{name: c, namespace: bench}}\nstringData: {{aws_access_key_id: test, aws_secret_access_key: test}}\n"
    );
    let (subnets, sg) = (network.0.join(", "), &network.1);
    for i in 0..n {
        yaml.push_str(&format!(
            "---\napiVersion: zerofn.dev/v1alpha1\nkind: FunctionPosture\nmetadata: {{name: {name}, namespace: bench}}\nspec:\n  accountRef: {{name: a}}\n  function: {{aws: {{name: {name}}}}}\n  mode: Audit\n  identity: {{dedicated: true}}\n  triggers: {{publicAccess: RequireAuth}}\n  network: {{aws: {{subnetIds: [{subnets}], securityGroupIds: [{sg}]}}}}\n  observability: {{tracing: Active}}\n",
            name = name(i)
        ));
    }
    yaml
}

/// Run `program args` under GNU time with only `envs` in its environment;
/// returns its stdout and the sample (requests left empty). The program
/// must exit with `exit`.
async fn timed(program: &Path, args: &[&str], envs: &[(&str, String)], dir: &Path, exit: i32) -> (String, Sample) {
    let stats = dir.join("time.txt");
    let mut cmd = tokio::process::Command::new(TIME);
    cmd.arg("-f")
        .arg("%U %S %M")
        .arg("-o")
        .arg(&stats)
        .arg(program)
        .args(args);
    cmd.env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .current_dir(dir);
    cmd.envs(envs.iter().map(|(k, v)| (k, v)));
    let started = Instant::now();
    let out = cmd.output().await.expect("run under /usr/bin/time");
    let wall = started.elapsed().as_secs_f64();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.code() == Some(exit),
        "{} {args:?} did not exit {exit} ({}):\n{}\n{}",
        program.display(),
        out.status,
        stdout.chars().take(4000).collect::<String>(),
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&stats).expect("time's figures");
    let fields: Vec<&str> = text.lines().last().unwrap_or_default().split_whitespace().collect();
    let field = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .expect("a figure from time")
    };
    let sample = Sample {
        wall,
        user: field(0),
        system: field(1),
        rss_kib: field(2) as u64,
        requests: BTreeMap::new(),
    };
    (stdout, sample)
}

/// `zerofn plan` over the postures; its findings by check.
async fn run_zerofn(bin: &Path, manifest: &Path) -> (Sample, Findings) {
    let dir = TempDir::new("c7n-zerofn");
    let path = manifest.to_str().expect("utf-8");
    let args = ["plan", "-o", "json", "--fail-on", "never", "-f", path];
    let envs = [("AWS_EC2_METADATA_DISABLED", "true".to_string())];
    let (stdout, sample) = timed(bin, &args, &envs, dir.path(), 0).await;
    let report: serde_json::Value = serde_json::from_str(&stdout).expect("plan's JSON");
    assert_eq!(report["summary"]["errors"], 0, "postures in error:\n{stdout}");
    let mut found = Findings::new();
    for row in report["postures"].as_array().into_iter().flatten() {
        let posture = row["posture"].as_str().unwrap_or_default();
        let function = posture.rsplit('/').next().unwrap_or_default().to_string();
        for f in row["findings"].as_array().into_iter().flatten() {
            let check = f["check"].as_str().unwrap_or_default();
            let label = CHECKS.iter().find(|c| c.1 == check).map_or(check, |c| c.0);
            found.entry(label.to_string()).or_default().insert(function.clone());
        }
    }
    (sample, found)
}

/// `zerofn plan` over the same postures with the account's endpoint on a
/// closed loopback port: what reading and validating the manifests costs,
/// since the unreachable account fails fast (exit 2: a cloud error).
async fn run_zerofn_offline(bin: &Path, manifest: &Path) -> Sample {
    let dir = TempDir::new("c7n-offline");
    let path = manifest.to_str().expect("utf-8");
    let args = ["plan", "-o", "json", "-f", path];
    let envs = [("AWS_EC2_METADATA_DISABLED", "true".to_string())];
    let (stdout, sample) = timed(bin, &args, &envs, dir.path(), 2).await;
    let report: serde_json::Value = serde_json::from_str(&stdout).expect("plan's JSON");
    let postures = report["postures"].as_array().map_or(0, Vec::len);
    assert_eq!(
        report["summary"]["errors"].as_u64(),
        Some(postures as u64),
        "every posture an unreachable-account error"
    );
    sample
}

/// A loopback address nothing listens on.
fn closed_port() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    let port = listener.local_addr().expect("its address").port();
    drop(listener);
    format!("http://127.0.0.1:{port}")
}

/// `custodian run` of the policy file; its findings by check.
async fn run_custodian(venv: &Path, policy: &Path, endpoint: &str) -> (Sample, Findings) {
    let dir = TempDir::new("c7n-custodian");
    let out = dir.path().join("out");
    let (out_s, policy_s) = (out.to_str().expect("utf-8"), policy.to_str().expect("utf-8"));
    let args = ["run", "-s", out_s, "--cache-period", "0", "-r", REGION, policy_s];
    let envs = [
        ("HOME", dir.path().to_string_lossy().into_owned()),
        ("AWS_ENDPOINT_URL", endpoint.to_string()),
        ("AWS_ACCESS_KEY_ID", "test".to_string()),
        ("AWS_SECRET_ACCESS_KEY", "test".to_string()),
        ("AWS_DEFAULT_REGION", REGION.to_string()),
        ("AWS_EC2_METADATA_DISABLED", "true".to_string()),
    ];
    let (_, sample) = timed(&venv.join("bin/custodian"), &args, &envs, dir.path(), 0).await;
    let mut found = Findings::new();
    for (label, _, policy) in CHECKS {
        let file = out.join(policy).join("resources.json");
        let text = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let resources: Vec<serde_json::Value> = serde_json::from_str(&text).expect("resources.json");
        let names = resources
            .iter()
            .filter_map(|r| r["FunctionName"].as_str())
            .map(str::to_string);
        found.insert(label.to_string(), names.collect());
    }
    (sample, found)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

fn medians(samples: &[Sample], n: usize) -> [f64; 5] {
    let of = |f: fn(&Sample) -> f64| median(samples.iter().map(f).collect());
    [
        of(|s| s.wall),
        of(|s| s.user),
        of(|s| s.system),
        of(|s| s.rss_kib as f64 / 1024.0),
        of(|s| s.reads() as f64) / n as f64,
    ]
}

/// The comparison table (Markdown), with each target met or missed.
fn print_table(z: &[Sample], c: &[Sample], n: usize, findings: &(Findings, Findings)) {
    let (zm, cm) = (medians(z, n), medians(c, n));
    let verdict = |ok: bool| if ok { "met" } else { "MISSED" };
    let ratio = |i: usize| zm[i] / cm[i];
    println!("\n| | zerofn | Cloud Custodian | ratio | target |");
    println!("|---|---|---|---|---|");
    println!(
        "| wall, median | {:.2} s | {:.2} s | {:.2} | ≤ 0.8 × ({}) |",
        zm[0],
        cm[0],
        ratio(0),
        verdict(ratio(0) <= 0.8)
    );
    println!(
        "| user CPU, median | {:.2} s | {:.2} s | {:.2} | ≤ 0.25 × ({}) |",
        zm[1],
        cm[1],
        ratio(1),
        verdict(ratio(1) <= 0.25)
    );
    println!(
        "| system CPU, median | {:.2} s | {:.2} s | {:.2} | |",
        zm[2],
        cm[2],
        ratio(2)
    );
    println!(
        "| peak RSS, median | {:.1} MiB | {:.1} MiB | {:.2} | ≤ 0.7 × ({}) |",
        zm[3],
        cm[3],
        ratio(3),
        verdict(ratio(3) <= 0.7)
    );
    println!(
        "| cloud reads (per function) | {:.3} | {:.3} | {:.2} | zerofn ≤ 2.05 ({}) |",
        zm[4],
        cm[4],
        ratio(4),
        verdict(zm[4] <= 2.05)
    );
    let count = |f: &Findings, label: &str| f.get(label).map_or(0, BTreeSet::len);
    let total = |f: &Findings| CHECKS.iter().map(|c| count(f, c.0)).sum::<usize>();
    let (zf, cf) = findings;
    println!("| findings | {} | {} | | equal (met) |", total(zf), total(cf));
    for (label, _, _) in CHECKS {
        println!("| – {label} | {} | {} | | |", count(zf, label), count(cf, label));
    }
    println!("| – role shared (zerofn only) | {} | – | | |", count(zf, SHARED_ROLE));
}

/// Each run's figures, and the requests by operation of the last run.
fn print_runs(tool: &str, samples: &[Sample]) {
    println!("\n{tool}:");
    for (i, s) in samples.iter().enumerate() {
        println!(
            "  run {}: wall {:.2} s, user {:.2} s, system {:.2} s, peak RSS {:.1} MiB, {} requests",
            i + 1,
            s.wall,
            s.user,
            s.system,
            s.rss_kib as f64 / 1024.0,
            s.reads()
        );
    }
    for (op, count) in samples.last().map(|s| &s.requests).into_iter().flatten() {
        println!("    {op:<50} {count}");
    }
}

/// The compared checks must report the same functions, for both tools and
/// as seeded; zerofn's role sharing must be as seeded too.
fn check_findings(zerofn: &Findings, custodian: &Findings, expected: &Findings) {
    let get = |f: &Findings, label: &str| f.get(label).cloned().unwrap_or_default();
    for (label, _, _) in CHECKS {
        let (z, c, e) = (get(zerofn, label), get(custodian, label), get(expected, label));
        assert_eq!(z, c, "{label}: zerofn and Custodian disagree");
        assert_eq!(z, e, "{label}: both differ from the seeded estate");
    }
    assert_eq!(get(zerofn, SHARED_ROLE), get(expected, SHARED_ROLE), "role sharing");
}

struct Setup {
    zerofn: PathBuf,
    venv: PathBuf,
    policy: PathBuf,
}

/// The release zerofn, the time program, and Custodian (installed if need be).
fn prerequisites() -> Setup {
    let zerofn = zerofn_sim::process::zerofn_bin().unwrap_or_else(|e| panic!("{e}"));
    assert!(
        Path::new(TIME).is_file(),
        "{TIME} (GNU time) is missing: the bench measures CPU and peak RSS with it"
    );
    let root = zerofn_sim::repo::locate(None).unwrap_or_else(|e| panic!("{e}"));
    eprintln!("installing Cloud Custodian if needed (testworld/aws/custodian.sh)");
    let venv = zerofn_sim::repo::run_installer(&root, "testworld/aws/custodian.sh").unwrap_or_else(|e| panic!("{e}"));
    let policy = root.join("tests/benches/c7n_policy.yml");
    Setup { zerofn, venv, policy }
}

#[tokio::main]
async fn main() {
    let n = env("ZEROFN_BENCH_FUNCTIONS", 1000);
    let runs = env("ZEROFN_BENCH_RUNS", 5).max(1);
    let setup = prerequisites();
    let ls = LocalStack::start().expect("AWS stand-in");
    let aws = Aws::new(&ls.endpoint(), REGION).await;
    let seeded = Instant::now();
    let network = seed(&aws, n).await;
    eprintln!("seeded {n} functions in {:.1}s", seeded.elapsed().as_secs_f64());

    let proxy = CountingProxy::start(&ls.endpoint()).await.expect("counting proxy");
    let dir = TempDir::new("c7n");
    let manifest = dir.write("postures.yaml", &manifests(n, &proxy.endpoint(), &network));
    let expected = expected(n);
    let (mut z, mut c) = (Vec::new(), Vec::new());
    let mut last = (Findings::new(), Findings::new());
    for run in 0..=runs {
        proxy.reset();
        let (mut zs, zf) = run_zerofn(&setup.zerofn, &manifest).await;
        zs.requests = proxy.counts();
        proxy.reset();
        let (mut cs, cf) = run_custodian(&setup.venv, &setup.policy, &proxy.endpoint()).await;
        cs.requests = proxy.counts();
        check_findings(&zf, &cf, &expected);
        eprintln!(
            "{} {run}: zerofn {:.2} s, Custodian {:.2} s",
            if run == 0 { "warm-up" } else { "run" },
            zs.wall,
            cs.wall
        );
        // The first run of each warms the stand-in up: not counted.
        if run > 0 {
            z.push(zs);
            c.push(cs);
        }
        last = (zf, cf);
    }
    let offline = dir.write("offline.yaml", &manifests(n, &closed_port(), &network));
    let mut v = Vec::new();
    for _ in 0..runs {
        v.push(run_zerofn_offline(&setup.zerofn, &offline).await);
    }
    println!("c7n: {n} functions, {runs} runs each, in turn (medians; ratio = zerofn / Custodian)");
    print_runs("zerofn plan", &z);
    print_runs("custodian run", &c);
    print_table(&z, &c, n, &last);
    print_validation(&v, n);
}

/// What reading and validating the N postures costs, cloud left out.
fn print_validation(samples: &[Sample], n: usize) {
    let m = medians(samples, n);
    let cpu = median(samples.iter().map(|s| s.user + s.system).collect());
    println!(
        "\nzerofn plan over {n} postures, account unreachable (reading and validating only), median: \
         user {:.3} s + system {:.3} s = {cpu:.3} s CPU (target < 0.3 s: {}), wall {:.3} s, peak RSS {:.1} MiB",
        m[1],
        m[2],
        if cpu < 0.3 { "met" } else { "MISSED" },
        m[0],
        m[3]
    );
}
