//! Stand-ins for trying zerofn by hand.
//!
//! `zerofn-sim aws-demo [--dir DIR]` starts LocalStack on a free loopback
//! port, seeds the misconfigured fleet of the acceptance tests, writes the
//! manifests declaring its posture into DIR, and keeps running until Ctrl-C.

use std::path::PathBuf;
use zerofn_sim::aws::{Aws, Fleet};
use zerofn_sim::localstack::{LocalStack, REGION};

fn usage() -> ! {
    eprintln!("usage: zerofn-sim aws-demo [--dir DIR]");
    std::process::exit(2)
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut dir = std::env::temp_dir().join("zerofn-demo");
    match args.first().map(String::as_str) {
        Some("aws-demo") => {}
        _ => usage(),
    }
    let mut rest = args[1..].iter();
    while let Some(a) = rest.next() {
        match (a.as_str(), rest.next()) {
            ("--dir", Some(d)) => dir = PathBuf::from(d),
            _ => usage(),
        }
    }
    eprintln!("starting LocalStack (installing it first if needed)...");
    let ls = match tokio::task::spawn_blocking(LocalStack::start).await {
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
