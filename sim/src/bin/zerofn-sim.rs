//! Stand-ins for trying zerofn by hand.
//!
//! `zerofn-sim demo [--repo DIR]` is the first run in one command: both
//! stand-ins, demo functions and postures, and the built `zerofn run` as the
//! controller, until Ctrl-C; it prints the kubectl commands to watch it.
//!
//! `zerofn-sim aws-demo [--dir DIR] [--repo DIR]` starts LocalStack on a free loopback
//! port, seeds the misconfigured fleet of the acceptance tests, writes the
//! manifests declaring its posture into DIR, and keeps running until Ctrl-C.
//!
//! `zerofn-sim kube-api [--kubeconfig PATH]` serves the Kubernetes API
//! stand-in and writes a kubeconfig for kubectl and `zerofn run`.
#![forbid(unsafe_code)]

use std::path::PathBuf;
use zerofn_sim::aws::{Aws, Fleet};
use zerofn_sim::localstack::{LocalStack, REGION};

fn usage() -> ! {
    eprintln!(
        "usage: zerofn-sim demo [--repo DIR] | zerofn-sim aws-demo [--dir DIR] [--repo DIR] | zerofn-sim kube-api [--kubeconfig PATH]\n\
         --repo: the zerofn checkout whose testworld/ installs LocalStack (default: $ZEROFN_REPO, \
         else the checkout holding the current directory or this program)"
    );
    std::process::exit(2)
}

async fn demo(args: &[String]) {
    let mut repo = None;
    let mut rest = args.iter();
    while let Some(a) = rest.next() {
        match (a.as_str(), rest.next()) {
            ("--repo", Some(p)) => repo = Some(PathBuf::from(p)),
            _ => usage(),
        }
    }
    // Exit at once: a signal during start-up may leave LocalStack's start
    // on a blocking thread, which the runtime would wait out (a minute or
    // more on a first install); its process group stops when we exit.
    match zerofn_sim::demo::run(zerofn_sim::demo::Options { repo }).await {
        Ok(()) => std::process::exit(0),
        Err(e) => {
            eprintln!("zerofn-sim demo: {e}");
            std::process::exit(1)
        }
    }
}

async fn kube_api(args: &[String]) {
    let mut path = std::env::temp_dir().join("zerofn-sim.kubeconfig");
    let mut rest = args.iter();
    while let Some(a) = rest.next() {
        match (a.as_str(), rest.next()) {
            ("--kubeconfig", Some(p)) => path = PathBuf::from(p),
            _ => usage(),
        }
    }
    let api = match zerofn_sim::kube::KubeApi::start(Default::default()).await {
        Ok(a) => a,
        Err(e) => {
            eprintln!("starting the Kubernetes API stand-in: {e}");
            std::process::exit(1)
        }
    };
    if let Err(e) = api.write_kubeconfig(&path, "default") {
        eprintln!("{}: {e}", path.display());
        std::process::exit(1)
    }
    println!("Kubernetes API stand-in at {}", api.url());
    println!("export KUBECONFIG={}", path.display());
    println!("Ctrl-C stops it.");
    let _ = tokio::signal::ctrl_c().await;
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut dir = std::env::temp_dir().join("zerofn-demo");
    match args.first().map(String::as_str) {
        Some("aws-demo") => {}
        Some("kube-api") => return kube_api(&args[1..]).await,
        Some("demo") => return demo(&args[1..]).await,
        _ => usage(),
    }
    let mut repo = None;
    let mut rest = args[1..].iter();
    while let Some(a) = rest.next() {
        match (a.as_str(), rest.next()) {
            ("--dir", Some(d)) => dir = PathBuf::from(d),
            ("--repo", Some(p)) => repo = Some(PathBuf::from(p)),
            _ => usage(),
        }
    }
    let root = match zerofn_sim::repo::locate(repo.as_deref()) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("zerofn-sim: {e}");
            std::process::exit(2)
        }
    };
    eprintln!("starting LocalStack (installing it first if needed)...");
    let ls = match tokio::task::spawn_blocking(move || LocalStack::start_in(&root)).await {
        Ok(Ok(ls)) => ls,
        Ok(Err(e)) => {
            eprintln!("{e}");
            std::process::exit(1)
        }
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1)
        }
    };
    let aws = Aws::new(&ls.endpoint(), REGION).await;
    let fleet = match Fleet::seed(&aws, "demo-").await {
        Ok(f) => f,
        Err(e) => {
            eprintln!("seeding the fleet: {e}");
            std::process::exit(1)
        }
    };
    let files = match fleet.write_manifests(&dir, &ls.endpoint()) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("{}: {e}", dir.display());
            std::process::exit(1)
        }
    };
    println!("AWS stand-in at {} with a misconfigured fleet:", ls.endpoint());
    println!(
        "  {} and {} share role {}",
        fleet.orders, fleet.billing, fleet.shared_role
    );
    println!("manifests:");
    println!("  {}", files.account.display());
    println!("  {}  (Enforce)", files.enforce.display());
    println!("  {}  (Audit)", files.audit.display());
    println!("Ctrl-C stops the stand-in.");
    let _ = tokio::signal::ctrl_c().await;
}
