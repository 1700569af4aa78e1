//! A full resync under Lambda's API request quotas, against LocalStack
//! behind the quota-enforcing proxy (`zerofn_sim::quota`).
//!
//! `cargo bench -p zerofn-tests --bench aws_quota` seeds N functions
//! (ZEROFN_BENCH_FUNCTIONS, default 300) and runs `zerofn plan` over one
//! posture each (public invoke and function URL declared), twice:
//!
//! 1. one CloudAccount: the resync should take at most 1.1 × N/15 s (GetPolicy
//!    and the rest of the control plane each allow 15 requests per second),
//!    with no posture in error and every throttle the proxy sent counted in
//!    zerofn's metrics;
//! 2. the same postures split over two CloudAccounts of the same account id:
//!    they share one pacer, so the resync takes as long as run 1 (two pacers
//!    would each spend the quota in full and take about half as long).
//!
//! ZEROFN_BENCH_RATE sets `maxRequestsPerSecond` (default 15).
#![forbid(unsafe_code)]

use futures::StreamExt;
use std::time::Instant;
use zerofn_sim::aws::Aws;
use zerofn_sim::localstack::{ACCOUNT_ID, LocalStack, REGION};
use zerofn_sim::quota::{QuotaProxy, Quotas};
use zerofn_tests::{TempDir, zerofn};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn account(name: &str, endpoint: &str, rate: usize) -> String {
    format!(
        "apiVersion: zerofn.dev/v1alpha1\nkind: CloudAccount\nmetadata: {{name: {name}, namespace: bench}}\nspec:\n  aws: {{accountId: \"{ACCOUNT_ID}\", region: {REGION}, endpoint: \"{endpoint}\", credentialsSecretRef: {{name: c}}, maxRequestsPerSecond: {rate}}}\n---\n"
    )
}

fn posture(name: &str, account: &str) -> String {
    format!(
        "apiVersion: zerofn.dev/v1alpha1\nkind: FunctionPosture\nmetadata: {{name: {name}, namespace: bench}}\nspec:\n  accountRef: {{name: {account}}}\n  function: {{aws: {{name: {name}}}}}\n  mode: Audit\n  triggers: {{publicAccess: RequireAuth}}\n"
    )
}

const SECRET: &str = "apiVersion: v1\nkind: Secret\nmetadata: {name: c, namespace: bench}\nstringData: {aws_access_key_id: test, aws_secret_access_key: test}\n";

async fn seed(aws: &Aws, names: &[String]) {
    let role = aws.create_role("bench-quota-role").await.expect("role");
    futures::stream::iter(names)
        .for_each_concurrent(8, |name| {
            let (aws, role) = (aws, &role);
            async move {
                aws.create_function(name, role).await.expect("function");
            }
        })
        .await;
}

/// One `zerofn plan` over `yaml` through `proxy`; prints its figures and
/// returns its wall time in seconds.
async fn resync(label: &str, yaml: &str, proxy: &QuotaProxy, n: usize) -> f64 {
    let dir = TempDir::new("bench-quota");
    let file = dir.write("bench.yaml", yaml);
    let before = proxy.counts();
    let started = Instant::now();
    let plan = zerofn(&["plan", "-o", "json", "-f", file.to_str().expect("utf-8")]).await;
    let secs = started.elapsed().as_secs_f64();
    let after = proxy.counts();
    let report = plan.json();
    let errors = report["summary"]["errors"].as_u64().unwrap_or(u64::MAX);
    let counted = report["throttledCalls"].as_u64().unwrap_or(0);
    let sent = after.throttled_total() - before.throttled_total();
    let budget = 1.1 * n as f64 / 15.0;
    println!("{label}: {n} functions, exit {}", plan.code);
    println!(
        "  wall {secs:.1}s (budget 1.1 × N/15 = {budget:.1}s: {})",
        if secs <= budget { "met" } else { "MISSED" }
    );
    let throttled_errors = report["postures"].as_array().map_or(0, |rows| {
        rows.iter().filter(|r| r["error"]["category"] == "throttled").count()
    });
    println!("  postures in error: {errors} (throttling: {throttled_errors})");
    println!("  throttles sent by the proxy: {sent}; counted in zerofn's metrics: {counted}");
    for (quota, passed) in &after.passed {
        let passed = passed - before.passed.get(quota).copied().unwrap_or(0);
        let throttled =
            after.throttled.get(quota).copied().unwrap_or(0) - before.throttled.get(quota).copied().unwrap_or(0);
        println!(
            "    {quota:?}: {passed} passed ({:.1}/s), {throttled} throttled",
            passed as f64 / secs
        );
    }
    if let Some(calls) = report["cloudCalls"].as_object() {
        for (op, c) in calls {
            println!("    {op:<40} {c}");
        }
    }
    if errors != 0 {
        eprintln!("{}", plan.stdout);
    }
    secs
}

#[tokio::main]
async fn main() {
    let n = env("ZEROFN_BENCH_FUNCTIONS", 300);
    let rate = env("ZEROFN_BENCH_RATE", 15);
    let ls = LocalStack::start().expect("AWS stand-in");
    let aws = Aws::new(&ls.endpoint(), REGION).await;
    let names: Vec<String> = (0..n).map(|i| format!("quota-{i:04}")).collect();
    let seeded = Instant::now();
    seed(&aws, &names).await;
    eprintln!("seeded {n} functions in {:.1}s", seeded.elapsed().as_secs_f64());
    let proxy = QuotaProxy::start(&ls.endpoint(), Quotas::default())
        .await
        .expect("quota proxy");
    let endpoint = proxy.endpoint();

    let mut one = account("a", &endpoint, rate) + SECRET;
    for name in &names {
        one.push_str(&format!("---\n{}", posture(name, "a")));
    }
    let single = resync("one CloudAccount", &one, &proxy, n).await;

    let mut two = account("a", &endpoint, rate) + &account("b", &endpoint, rate) + SECRET;
    for (i, name) in names.iter().enumerate() {
        two.push_str(&format!("---\n{}", posture(name, if i % 2 == 0 { "a" } else { "b" })));
    }
    let split = resync("two CloudAccounts, one account id", &two, &proxy, n).await;
    // Two pacers would each spend the quota in full: the split resync would
    // take about half as long (and be throttled far more).
    println!(
        "  one pacer for both: {} (wall {split:.1}s with two CloudAccounts, {single:.1}s with one)",
        if split >= 0.9 * single { "yes" } else { "NO" }
    );
}
