//! The README's "A first posture", run as written against the fleet's
//! orders-api: the posture at the top of the README declares the same five
//! controls.
#![forbid(unsafe_code)]

use std::time::Duration;
use zerofn_e2e::readme::{readme, same_table, sample};
use zerofn_e2e::{World, eventually};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_first_posture_shows_what_the_readme_shows() {
    let world = World::start("first").await;
    let c = world.controller(
        "zerofn-0",
        &[
            "--namespace",
            "zerofn-system",
            "--leader-elect",
            "false",
            "--resync-interval",
            "4s",
            "--inventory-ttl",
            "1s",
        ],
    );
    world.apply_file(&world.manifests.account).await;
    let enforce = std::fs::read_to_string(&world.manifests.enforce).expect("manifests");
    let orders = enforce.split("\n---\n").next().unwrap_or_default();
    assert!(orders.contains("name: orders-api") && orders.contains("mode: Enforce"));
    world.apply(&orders.replace("mode: Enforce", "mode: Audit")).await;

    let drift = eventually(Duration::from_secs(120), || async {
        world.condition("shop", "orders-api", "Ready") == Some(("False".into(), "Drift".into()))
    })
    .await;
    assert!(drift, "no drift reported:\n{}", c.log());
    let command = "kubectl get fp orders-api -n shop";
    let table = world.kubectl_ok(&["get", "fp", "orders-api", "-n", "shop"]).await;
    // The fleet's names carry the test's prefix; the README's do not.
    let table = table.replace(&world.fleet.prefix, "");
    if let Err(e) = same_table(&sample(&readme(), command), &table) {
        panic!("{e}");
    }

    // The README's next steps, as written.
    world
        .kubectl_ok(&[
            "patch",
            "fp",
            "orders-api",
            "-n",
            "shop",
            "--type",
            "merge",
            "-p",
            r#"{"spec":{"mode":"Enforce"}}"#,
        ])
        .await;
    let ready = world
        .wait_for("shop", "orders-api", "Ready", Duration::from_secs(120))
        .await;
    assert!(ready.ok, "{}\n{}", ready.out, c.log());
}
