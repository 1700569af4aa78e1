//! The controller at scale, in two shapes (`ZEROFN_BENCH_SHAPE`: `postures`,
//! `policy`, or both by default), each on one GCP project of N compliant
//! functions (default 10,000, set `ZEROFN_BENCH_POSTURES`) in the
//! Kubernetes and GCP stand-ins: N hand-written FunctionPostures, or one
//! PosturePolicy selecting all N functions (then also the time until every
//! child exists). Prints the controller's startup time
//! (spawn → the "caches synced" log line), the time until every posture is
//! Ready, its peak and settled resident memory with the settled set split
//! into anonymous memory (heap, stacks) and file-backed pages (the binary),
//! each region of memory it lives in (smaps), the cloud calls it made, and
//! its Kubernetes requests (writes by kind).
//! `MALLOC_ARENA_MAX` passes through to the controller.
//!
//!     cargo build --release -p zerofn --bin zerofn
//!     cargo bench -p zerofn-e2e --bench scale
//!
//! The bench runs `target/release/zerofn` (or `ZEROFN_BIN`), which `cargo
//! bench` does not rebuild: it refuses a binary older than the sources.
//!
//! DESIGN §7 targets: RSS under 64 MiB at 10,000 postures, startup under 1 s.
#![forbid(unsafe_code)]

use futures::{StreamExt, TryStreamExt};
use kube::api::{Api, PostParams};
use std::time::{Duration, Instant};
use zerofn::api::FunctionPosture;
use zerofn_e2e::{Cluster, Controller};
use zerofn_sim::gcp::{FunctionSeed, GcpStandIn, GcpWorld};

const PROJECT: &str = "shop-prod";
const EU: &str = "europe-west1";
const CONNECTOR: &str = "projects/shop-prod/locations/europe-west1/connectors/egress";

/// The zerofn process behind a controller (its parent is the stand-in
/// shell), found by its probe address.
fn pid_of(c: &Controller) -> Option<u32> {
    let needle = format!("127.0.0.1:{}", c.probe_port);
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let pid: u32 = e.file_name().to_str()?.parse().ok()?;
        let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
        let cmd = String::from_utf8_lossy(&cmd);
        (cmd.contains(&needle) && cmd.split('\0').next()?.ends_with("zerofn")).then_some(pid)
    })
}

/// A field of a /proc file of `name: value kB` lines, in KiB.
fn kib(text: &str, name: &str) -> u64 {
    text.lines()
        .find(|l| l.starts_with(name))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// (Anonymous, file-backed) resident KiB, from smaps_rollup.
fn resident_split(pid: u32) -> (u64, u64) {
    let rollup = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap_or_default();
    let (rss, anon) = (kib(&rollup, "Rss:"), kib(&rollup, "Anonymous:"));
    (anon, rss.saturating_sub(anon))
}

/// Where the resident set lives: resident KiB by region, from smaps. The
/// main heap (`[heap]`, glibc's brk arena), the other anonymous mappings
/// (glibc's per-thread arenas, thread stacks and large allocations, which
/// glibc maps on their own), and each file mapped.
fn resident_by_region(pid: u32) -> Vec<(String, u64, u64)> {
    let smaps = std::fs::read_to_string(format!("/proc/{pid}/smaps")).unwrap_or_default();
    let mut regions: std::collections::BTreeMap<String, (u64, u64)> = Default::default();
    let mut current = String::new();
    for line in smaps.lines() {
        let mut fields = line.split_whitespace();
        let first = fields.next().unwrap_or_default();
        if first.contains('-') && !first.ends_with(':') {
            current = match fields.nth(4) {
                Some(path) if path.starts_with('/') => path.rsplit('/').next().unwrap_or(path).to_string(),
                Some(special) => special.to_string(),
                None => "anonymous mappings".to_string(),
            };
            regions.entry(current.clone()).or_default().0 += 1;
        } else if first == "Rss:" {
            regions.entry(current.clone()).or_default().1 += kib(line, "Rss:");
        }
    }
    let mut by_size: Vec<_> = regions.into_iter().map(|(k, (n, rss))| (k, n, rss)).collect();
    by_size.sort_by_key(|r| std::cmp::Reverse(r.2));
    by_size
}

/// (VmRSS, VmHWM) in KiB.
fn memory(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    (kib(&status, "VmRSS:"), kib(&status, "VmHWM:"))
}

/// How the N functions are governed.
#[derive(Clone, Copy, PartialEq)]
enum Shape {
    /// One hand-written FunctionPosture per function.
    Postures,
    /// One PosturePolicy selecting every function.
    Policy,
}

#[tokio::main]
async fn main() {
    let n: usize = std::env::var("ZEROFN_BENCH_POSTURES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let shapes = match std::env::var("ZEROFN_BENCH_SHAPE").as_deref() {
        Ok("postures") => vec![Shape::Postures],
        Ok("policy") => vec![Shape::Policy],
        _ => vec![Shape::Postures, Shape::Policy],
    };
    refuse_a_stale_binary();
    for shape in shapes {
        run(shape, n).await;
    }
}

/// A controller binary built before the last change of its sources would
/// measure old code (a policy it does not serve waits forever).
fn refuse_a_stale_binary() {
    fn newest(dir: &std::path::Path) -> std::time::SystemTime {
        std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| match e.file_type() {
                Ok(t) if t.is_dir() => newest(&e.path()),
                _ => e.metadata().and_then(|m| m.modified()).unwrap_or(std::time::UNIX_EPOCH),
            })
            .max()
            .unwrap_or(std::time::UNIX_EPOCH)
    }
    if std::env::var_os("ZEROFN_BIN").is_some() {
        return;
    }
    let bin = zerofn_e2e::zerofn_bin();
    let built = std::fs::metadata(&bin)
        .and_then(|m| m.modified())
        .unwrap_or(std::time::UNIX_EPOCH);
    let sources = newest(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../controller/src"));
    assert!(
        built >= sources,
        "{} is older than controller/src: run `cargo build --release -p zerofn --bin zerofn` first",
        bin.display()
    );
}

fn posture_spec(i: usize) -> serde_json::Value {
    serde_json::json!({
        "accountRef": {"name": "gcp"},
        "function": {"gcp": {"location": EU, "name": format!("fn-{i:05}")}},
        "mode": "Audit",
        "network": {"gcp": {"vpcConnector": CONNECTOR, "egress": "ALL_TRAFFIC"}}
    })
}

async fn create_postures(cluster: &Cluster, n: usize) {
    let kubeconfig = kube::config::Kubeconfig::read_from(&cluster.kubeconfig).expect("kubeconfig");
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .expect("client config");
    let client = kube::Client::try_from(config).expect("client");
    let api: Api<FunctionPosture> = Api::namespaced(client, "shop");
    let created = Instant::now();
    futures::stream::iter(0..n)
        .map(|i| {
            let api = api.clone();
            async move {
                let fp: FunctionPosture = serde_json::from_value(serde_json::json!({
                    "apiVersion": "zerofn.dev/v1alpha1",
                    "kind": "FunctionPosture",
                    "metadata": {"name": format!("fn-{i:05}"), "namespace": "shop"},
                    "spec": posture_spec(i)
                }))
                .expect("posture");
                api.create(&PostParams::default(), &fp).await.map(|_| ())
            }
        })
        .buffer_unordered(32)
        .try_collect::<Vec<()>>()
        .await
        .expect("postures created");
    println!("{n} postures created in {:.1} s", created.elapsed().as_secs_f64());
}

fn ready_postures(cluster: &Cluster) -> (usize, usize) {
    let all = cluster
        .kube
        .list("zerofn.dev", "v1alpha1", "functionpostures", Some("shop"));
    let ready = all
        .iter()
        .filter(|p| {
            p["status"]["conditions"]
                .as_array()
                .is_some_and(|cs| cs.iter().any(|c| c["type"] == "Ready" && c["status"] == "True"))
        })
        .count();
    (all.len(), ready)
}

async fn run(shape: Shape, n: usize) {
    let cluster = Cluster::start("scale").await;
    let mut world = GcpWorld::new().project(PROJECT, 424242424242);
    for i in 0..n {
        world = world
            .service_account(PROJECT, &format!("fn-{i:05}"), "runtime")
            .function(
                FunctionSeed::new(PROJECT, EU, &format!("fn-{i:05}"))
                    .service_account(&format!("fn-{i:05}@{PROJECT}.iam.gserviceaccount.com"))
                    .vpc_connector(CONNECTOR, "ALL_TRAFFIC"),
            );
    }
    let gcp = GcpStandIn::start(world).await.expect("GCP stand-in");
    cluster.apply(&zerofn_e2e::gcp_account(&gcp.url())).await;
    match shape {
        Shape::Postures => {
            println!("\n## {n} hand-written FunctionPostures");
            create_postures(&cluster, n).await;
        }
        Shape::Policy => {
            println!("\n## one PosturePolicy selecting {n} functions");
            cluster
                .apply(&format!(
                    "apiVersion: zerofn.dev/v1alpha1\nkind: PosturePolicy\nmetadata: {{name: fleet, namespace: shop}}\nspec:\n  accountRef: {{name: gcp}}\n  selector: {{gcp: {{names: [\"fn-*\"]}}}}\n  template:\n    mode: Audit\n    network: {{gcp: {{vpcConnector: {CONNECTOR}, egress: ALL_TRAFFIC}}}}\n"
                ))
                .await;
        }
    }

    let spawned = Instant::now();
    let c = cluster.controller(
        "zerofn-bench",
        &[
            "--namespace",
            "zerofn-system",
            "--leader-elect",
            "false",
            "--resync-interval",
            "1h",
        ],
    );
    // Polled often: the Ready count below lists every posture each round.
    let synced = loop {
        if c.log().contains("caches synced") {
            break Some(spawned.elapsed());
        }
        if spawned.elapsed() > Duration::from_secs(120) {
            break None;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let mut children_all = None;
    let ready_all = loop {
        let (exist, ready) = ready_postures(&cluster);
        if exist == n && children_all.is_none() {
            children_all = Some(spawned.elapsed());
        }
        if ready == n {
            break spawned.elapsed();
        }
        assert!(
            spawned.elapsed() < Duration::from_secs(1800),
            "only {ready}/{n} Ready after 30 min"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let pid = pid_of(&c).expect("the zerofn process");
    tokio::time::sleep(Duration::from_secs(5)).await;
    let (rss, hwm) = memory(pid);
    let (anon, file) = resident_split(pid);
    let arenas = std::env::var("MALLOC_ARENA_MAX").unwrap_or_else(|_| "glibc's default".into());
    println!(
        "startup (spawn → caches synced): {:.2} s",
        synced.map(|d| d.as_secs_f64()).unwrap_or(f64::NAN)
    );
    if shape == Shape::Policy {
        println!(
            "every child exists after {:.1} s",
            children_all.map(|d| d.as_secs_f64()).unwrap_or(f64::NAN)
        );
    }
    println!("all {n} postures Ready after {:.1} s", ready_all.as_secs_f64());
    println!(
        "controller RSS settled: {:.1} MiB, peak: {:.1} MiB (MALLOC_ARENA_MAX: {arenas})",
        rss as f64 / 1024.0,
        hwm as f64 / 1024.0
    );
    println!(
        "  settled: anonymous (heap, stacks) {:.1} MiB, file-backed (binary, libraries) {:.1} MiB",
        anon as f64 / 1024.0,
        file as f64 / 1024.0
    );
    for (region, mappings, kib) in resident_by_region(pid).iter().filter(|r| r.2 >= 256) {
        println!("    {:>6.1} MiB  {region} ({mappings} mappings)", *kib as f64 / 1024.0);
    }
    let calls: u64 = c.cloud_calls().iter().map(|(_, _, n)| n).sum();
    println!(
        "cloud calls: {calls} ({:.3} per function), writes: {}",
        calls as f64 / n as f64,
        c.writes()
    );
    kubernetes_requests(&cluster, n);
}

/// The controller's Kubernetes requests, writes split by what they wrote.
fn kubernetes_requests(cluster: &Cluster, n: usize) {
    let mine: Vec<_> = cluster
        .kube
        .requests()
        .into_iter()
        .filter(|r| r.user == zerofn_e2e::CONTROLLER_USER)
        .collect();
    let writes = |pred: &dyn Fn(&str, &str) -> bool| mine.iter().filter(|r| pred(&r.method, &r.path)).count();
    let all_writes = writes(&|m, _| m != "GET");
    let creates = writes(&|m, p| m == "POST" && p.ends_with("/functionpostures"));
    let status = writes(&|m, p| m == "PATCH" && p.contains("/functionpostures/") && p.ends_with("/status"));
    let finalizers = writes(&|m, p| m == "PATCH" && p.contains("/functionpostures/") && !p.ends_with("/status"));
    let policy = writes(&|m, p| m != "GET" && p.contains("/posturepolicies/"));
    println!(
        "Kubernetes requests: {} ({} writes, {:.2} per function): children created {creates}, posture finalizers {finalizers}, posture status {status}, policy {policy}, other {}",
        mine.len(),
        all_writes,
        all_writes as f64 / n as f64,
        all_writes - creates - status - finalizers - policy
    );
}
