//! Reads per compliant function per resync, against LocalStack.
//!
//! `cargo bench -p zerofn-tests --bench aws_reads` seeds N compliant
//! functions (ZEROFN_BENCH_FUNCTIONS, default 40), then runs `zerofn plan` and
//! `zerofn enforce --once` on their postures and prints the cloud calls by
//! operation, the per-function and account-wide reads, the wall time, and the
//! writes made (0 on a compliant estate).
#![forbid(unsafe_code)]

use futures::StreamExt;
use std::time::Instant;
use zerofn_sim::aws::Aws;
use zerofn_sim::localstack::{ACCOUNT_ID, LocalStack, REGION};
use zerofn_tests::{TempDir, zerofn};

/// Every read zerofn may make per function (ListVersionsByFunction only for
/// a function created after the inventory was taken).
const PER_FUNCTION: [&str; 6] = [
    "GetPolicy",
    "ListFunctionUrlConfigs",
    "ListAliases",
    "ListVersionsByFunction",
    "ListTags",
    "GetFunctionCodeSigningConfig",
];

#[tokio::main]
async fn main() {
    let n: usize = std::env::var("ZEROFN_BENCH_FUNCTIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(40);
    let ls = LocalStack::start().expect("AWS stand-in");
    let aws = Aws::new(&ls.endpoint(), REGION).await;
    let seeded = Instant::now();
    let names: Vec<String> = (0..n).map(|i| format!("bench-{i:04}")).collect();
    futures::stream::iter(names.iter())
        .for_each_concurrent(8, |name| {
            let aws = &aws;
            async move {
                let role = aws.create_role(&format!("{name}-role")).await.expect("role");
                let arn = aws.create_function(name, &role).await.expect("function");
                aws.lambda
                    .update_function_configuration()
                    .function_name(name)
                    .tracing_config(
                        aws_sdk_lambda::types::TracingConfig::builder()
                            .mode("Active".into())
                            .build(),
                    )
                    .logging_config(
                        aws_sdk_lambda::types::LoggingConfig::builder()
                            .log_format("JSON".into())
                            .build(),
                    )
                    .send()
                    .await
                    .expect("configure");
                aws.wait_ready(name).await.expect("ready");
                aws.lambda
                    .tag_resource()
                    .resource(arn)
                    .tags("zerofn.dev/owner", format!("default/bench/{name}"))
                    .send()
                    .await
                    .expect("tag");
            }
        })
        .await;
    eprintln!("seeded {n} functions in {:.1}s", seeded.elapsed().as_secs_f64());

    let dir = TempDir::new("bench");
    let mut yaml = format!(
        "apiVersion: zerofn.dev/v1alpha1\nkind: CloudAccount\nmetadata: {{name: a, namespace: bench}}\nspec:\n  aws: {{accountId: \"{ACCOUNT_ID}\", region: {REGION}, endpoint: \"{}\", credentialsSecretRef: {{name: c}}, maxRequestsPerSecond: 100}}\n---\napiVersion: v1\nkind: Secret\nmetadata: {{name: c, namespace: bench}}\nstringData: {{aws_access_key_id: test, aws_secret_access_key: test}}\n",
        ls.endpoint()
    );
    for name in &names {
        yaml.push_str(&format!(
            "---\napiVersion: zerofn.dev/v1alpha1\nkind: FunctionPosture\nmetadata: {{name: {name}, namespace: bench}}\nspec:\n  accountRef: {{name: a}}\n  function: {{aws: {{name: {name}}}}}\n  mode: Enforce\n  identity: {{dedicated: true}}\n  triggers: {{publicAccess: Deny}}\n  observability: {{tracing: Active, structuredLogs: true}}\n"
        ));
    }
    let file = dir.write("bench.yaml", &yaml);
    let path = file.to_str().expect("utf-8");

    let started = Instant::now();
    let plan = zerofn(&["plan", "-o", "json", "-f", path]).await;
    let plan_secs = started.elapsed().as_secs_f64();
    assert_eq!(
        plan.code, 0,
        "the seeded estate must be compliant:\n{}{}",
        plan.stdout, plan.stderr
    );
    let calls = plan.json()["cloudCalls"].clone();
    let count = |op: &str| calls[format!("aws {op}")].as_u64().unwrap_or(0);
    let per_function: u64 = PER_FUNCTION.iter().map(|op| count(op)).sum();
    let total: u64 = calls
        .as_object()
        .map(|m| m.values().filter_map(|v| v.as_u64()).sum())
        .unwrap_or(0);

    let started = Instant::now();
    let enforce = zerofn(&["enforce", "--once", "-o", "json", "-f", path]).await;
    let enforce_secs = started.elapsed().as_secs_f64();
    assert_eq!(enforce.code, 0, "{}{}", enforce.stdout, enforce.stderr);
    let writes = enforce.json()["writeCalls"].as_u64().unwrap_or(u64::MAX);

    println!("aws_reads: {n} compliant functions (Enforce; identity, triggers, observability declared)");
    println!("  plan: {plan_secs:.2}s wall, {total} cloud calls");
    if let Some(m) = calls.as_object() {
        for (op, c) in m {
            println!("    {op:<40} {c}");
        }
    }
    println!(
        "  per-function reads: {per_function} ({:.2} per function); account-wide reads: {} (shared by all {n})",
        per_function as f64 / n as f64,
        total - per_function
    );
    println!("  enforce --once on the compliant estate: {enforce_secs:.2}s wall, {writes} write calls");
}
