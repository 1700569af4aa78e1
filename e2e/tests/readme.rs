//! The README's sample outputs, from real runs: "A first posture" against
//! the fleet's orders-api (the posture at the top of the README declares the
//! same five controls), and the worked example as written.
#![forbid(unsafe_code)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;
use zerofn_e2e::readme::{matches, readme, same_table, sample, session};
use zerofn_e2e::{World, eventually, temp_dir, zerofn_bin};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_first_posture_shows_what_the_readme_shows() {
    let world = World::start("first").await;
    let c = world.single_controller(&[]);
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

/// `zerofn-sim aws-demo`; SIGINT when dropped (it stops LocalStack then).
struct AwsDemo(std::process::Child);

impl Drop for AwsDemo {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = Command::new("kill").arg("-INT").arg(self.0.id().to_string()).status();
            let _ = self.0.wait();
        }
    }
}

/// The port the README's samples show for the AWS stand-in.
const README_PORT: &str = "33129";

/// The README's worked example, run as written: `zerofn-sim aws-demo`, then
/// each `$ zerofn ...` of the section's text blocks in turn, in the
/// manifests' directory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worked_example_prints_what_the_readme_shows() {
    let readme = readme();
    let scratch = temp_dir("worked");
    let dir = scratch.path().join("zerofn-demo");
    let sim = zerofn_bin().with_file_name("zerofn-sim");
    let mut demo = AwsDemo(
        Command::new(&sim)
            .args(["aws-demo", "--dir"])
            .arg(&dir)
            .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join(".."))
            .env("TMPDIR", scratch.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("zerofn-sim aws-demo starts"),
    );
    let stdout = demo.0.stdout.take().expect("stdout");
    let printed: Vec<String> = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .take_while(|l| !l.starts_with("Ctrl-C"))
        .collect();
    let port = printed
        .first()
        .and_then(|l| l.split_once("127.0.0.1:"))
        .map(|(_, r)| r.chars().take_while(char::is_ascii_digit).collect::<String>())
        .unwrap_or_else(|| panic!("no endpoint in {printed:?}"));
    // The port shows in the endpoint and in function URLs.
    let as_shown = |text: &str| text.replace(&format!(":{port}"), &format!(":{README_PORT}"));
    let shown = sample(&readme, "./target/debug/zerofn-sim aws-demo --dir /tmp/zerofn-demo &");
    let head = printed.iter().take(shown.len()).cloned().collect::<Vec<_>>().join("\n");
    if let Err(e) = matches(&shown, &as_shown(&head)) {
        panic!("zerofn-sim aws-demo: {e}");
    }

    let run = |args: &[&str]| {
        let out = Command::new(zerofn_bin())
            .args(args)
            .current_dir(&dir)
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .env("HOME", scratch.path())
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .output()
            .expect("zerofn runs");
        (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let steps = session(&readme, "A worked example against the stand-in");
    let mut codes = Vec::new();
    for (command, shown) in &steps {
        let (command, last_line) = match command.strip_suffix(" | tail -1") {
            Some(c) => (c, true),
            None => (command.as_str(), false),
        };
        let args: Vec<&str> = command.split_whitespace().collect();
        assert_eq!(args.first(), Some(&"zerofn"), "{command}");
        let (code, out) = run(&args[1..]);
        let out = if last_line {
            out.lines().last().unwrap_or_default().to_string()
        } else {
            out
        };
        if let Err(e) = matches(shown, &as_shown(&out)) {
            panic!("$ {command}\n{e}");
        }
        codes.push(code);
    }
    // What the prose says: drift exits 1, compliant 0.
    assert_eq!(codes, [Some(1), Some(0), Some(0), Some(0)], "{steps:?}");
    // "An Audit posture ... exits 1 with `0 write calls made`".
    let (code, out) = run(&["enforce", "--once", "-f", "account.yaml", "-f", "audit.yaml"]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.trim_end().ends_with("0 write calls made"), "{out}");
}
