//! `zerofn-sim demo` as a user runs it: one process that prints a guide
//! whose commands work, and that leaves nothing behind on Ctrl-C.
#![forbid(unsafe_code)]

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use zerofn_e2e::{eventually, temp_dir, zerofn_bin};
use zerofn_sim::demo::{PUBLIC, READY_LINE};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// What the demo printed, line by line, until its ready line.
struct Guide(Vec<String>);

impl Guide {
    /// The indented command lines starting with `prefix`.
    fn command(&self, prefix: &str) -> String {
        self.0
            .iter()
            .map(|l| l.trim())
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no `{prefix}` command in:\n{}", self.0.join("\n")))
            .to_string()
    }

    /// The port of the first `http(s)://127.0.0.1:PORT` after `label`.
    fn port(&self, label: &str) -> u16 {
        let line = self
            .0
            .iter()
            .find(|l| l.contains(label))
            .unwrap_or_else(|| panic!("no {label} line in:\n{}", self.0.join("\n")));
        let after = line.split_once("127.0.0.1:").map(|(_, r)| r).unwrap_or_default();
        let digits: String = after.chars().take_while(char::is_ascii_digit).collect();
        digits.parse().unwrap_or_else(|_| panic!("no port in {line}"))
    }
}

/// Run `command` as printed, after the printed `export KUBECONFIG=...`.
fn shell(guide: &Guide, home: &Path, command: &str) -> (bool, String) {
    let script = format!("{}\n{command}\n", guide.command("export KUBECONFIG="));
    let out = Command::new("/bin/sh")
        .arg("-c")
        .arg(script)
        .env("HOME", home)
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .output()
        .expect("sh runs");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// Processes whose command line or environment names `dir`: what the demo
/// started there (LocalStack's home and the controller's kubeconfig are
/// under it).
fn processes_using(dir: &Path) -> Vec<u32> {
    let needle = dir.to_string_lossy().into_owned();
    let me = std::process::id();
    std::fs::read_dir("/proc")
        .map(|entries| {
            entries
                .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
                .filter(|pid| *pid != me)
                .filter(|pid| {
                    ["cmdline", "environ"].iter().any(|f| {
                        std::fs::read(format!("/proc/{pid}/{f}"))
                            .is_ok_and(|b| String::from_utf8_lossy(&b).contains(&needle))
                    })
                })
                .filter(|pid| alive(*pid))
                .collect()
        })
        .unwrap_or_default()
}

/// Running (a zombie waiting to be reaped is dead).
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit(')').next().map(|r| !r.trim_start().starts_with('Z')))
        .unwrap_or(false)
}

fn listening(port: u16) -> bool {
    TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(300)).is_ok()
}

/// The rows of `kubectl get fp`: (name, mode, ready, compliant).
fn rows(table: &str) -> Vec<(String, String, String, String)> {
    table
        .lines()
        .skip(1)
        .filter_map(|l| {
            let t: Vec<&str> = l.split_whitespace().collect();
            (t.len() == 7).then(|| (t[0].into(), t[3].into(), t[4].into(), t[5].into()))
        })
        .collect()
}

/// The demo process; SIGTERM if a failing test leaves it running.
struct Demo(std::process::Child);

impl Drop for Demo {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = Command::new("kill").arg("-TERM").arg(self.0.id().to_string()).status();
            let _ = self.0.wait();
        }
    }
}

/// The Sids of a GetPolicy answer.
fn sids(answer: &str) -> Vec<String> {
    let policy: serde_json::Value = serde_json::from_str(answer).unwrap_or_default();
    // AddPermission returns one statement, GetPolicy a whole policy, each
    // as a JSON string.
    let inner = policy["Statement"]
        .as_str()
        .or(policy["Policy"].as_str())
        .unwrap_or("{}");
    let inner: serde_json::Value = serde_json::from_str(inner).unwrap_or_default();
    let statements = match &inner["Statement"] {
        serde_json::Value::Array(a) => a.clone(),
        _ => vec![inner.clone()],
    };
    statements
        .iter()
        .filter_map(|s| s["Sid"].as_str().map(str::to_string))
        .collect()
}

/// `zerofn-sim demo` as the README runs it: from the checkout, with the
/// machine's PATH, its home and temporary files under `home` and `tmp`.
fn start_demo(home: &Path, tmp: &Path, stdout: Stdio) -> Demo {
    Demo(
        Command::new(zerofn_bin().with_file_name("zerofn-sim"))
            .arg("demo")
            .current_dir(repo_root())
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .env("HOME", home)
            .env("TMPDIR", tmp)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(Stdio::piped())
            .spawn()
            .expect("zerofn-sim demo starts"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_runs_in_one_command_and_leaves_nothing_behind() {
    let scratch = temp_dir("demo");
    let tmp = scratch.path().join("tmp");
    std::fs::create_dir_all(&tmp).expect("tmp");
    let mut demo = start_demo(scratch.path(), &tmp, Stdio::piped());
    let child = &mut demo.0;
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    let stdout = child.stdout.take().expect("stdout");
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let stderr = child.stderr.take().expect("stderr");
    let errors = std::thread::spawn(move || {
        let mut s = String::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            s.push_str(&line);
            s.push('\n');
        }
        s
    });

    // A first run installs LocalStack (a minute or two); then seconds.
    let deadline = Instant::now() + Duration::from_secs(600);
    let mut lines = Vec::new();
    while !lines.last().is_some_and(|l: &String| l.starts_with(READY_LINE)) {
        match rx.recv_timeout(Duration::from_secs(1)) {
            Ok(l) => lines.push(l),
            Err(mpsc::RecvTimeoutError::Timeout) if Instant::now() < deadline => {
                if let Ok(Some(status)) = child.try_wait() {
                    panic!(
                        "zerofn-sim demo exited ({status}):\n{}",
                        errors.join().unwrap_or_default()
                    );
                }
            }
            Err(e) => panic!("no ready line ({e}); printed:\n{}", lines.join("\n")),
        }
    }
    let guide = Guide(lines);
    let ports = [
        guide.port("Kubernetes API stand-in"),
        guide.port("AWS stand-in"),
        guide.port("metrics:"),
    ];
    assert!(ports.iter().all(|p| listening(*p)), "{ports:?}");
    let started = processes_using(&tmp);
    assert!(started.len() >= 2, "LocalStack and the controller: {started:?}");

    // The printed command shows the postures: the Enforce one fixed, the
    // compliant one Ready, the Audit one with drift reported.
    let get = guide.command("kubectl get fp");
    let want = |r: &[(String, String, String, String)]| {
        r.iter()
            .map(|(n, m, ready, _)| format!("{n} {m} {ready}"))
            .collect::<Vec<_>>()
            == [
                "compliant Audit True",
                "open-url Audit False",
                "public-api Enforce True",
            ]
    };
    let mut table = String::new();
    let shown = eventually(Duration::from_secs(120), || {
        let (ok, out) = shell(&guide, scratch.path(), &get);
        table = out;
        let done = ok && want(&rows(&table));
        async move { done }
    })
    .await;
    assert!(shown, "{get}:\n{table}");
    // ... and is what the README's quick start shows.
    let readme = zerofn_e2e::readme::readme();
    let printed = zerofn_e2e::readme::sample(&readme, &get);
    if let Err(e) = zerofn_e2e::readme::same_table(&printed, &table) {
        panic!("{e}");
    }

    // The printed drift command works, and zerofn removes the grant.
    let (ok, out) = shell(&guide, scratch.path(), &guide.command("curl "));
    assert!(ok && sids(&out) == ["drift"], "{out}");
    let aws = zerofn_sim::aws::Aws::new(
        &format!("http://127.0.0.1:{}", ports[1]),
        zerofn_sim::localstack::REGION,
    )
    .await;
    let policy = || async {
        aws.lambda
            .get_policy()
            .function_name(PUBLIC)
            .send()
            .await
            .ok()
            .and_then(|p| p.policy)
            .map(|p| sids(&serde_json::json!({ "Policy": p }).to_string()))
            .unwrap_or_default()
    };
    assert!(policy().await.contains(&"drift".to_string()));
    let reverted = eventually(Duration::from_secs(60), || async {
        !policy().await.contains(&"drift".to_string())
    })
    .await;
    assert!(reverted, "the drift grant is still there: {:?}", policy().await);

    // Ctrl-C: everything stops and nothing is left.
    let _ = Command::new("kill").arg("-INT").arg(pid.to_string()).status();
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        assert!(Instant::now() < deadline, "zerofn-sim demo still running after SIGINT");
        std::thread::sleep(Duration::from_millis(100));
    };
    let log = errors.join().unwrap_or_default();
    assert!(status.success(), "{status}:\n{log}");
    assert!(log.contains("SIGINT: stopping"), "{log}");
    // The stand-ins' watchdogs finish within a few seconds.
    let gone = eventually(Duration::from_secs(15), || {
        let left: Vec<u32> = started.iter().copied().filter(|p| alive(*p)).collect();
        let done = left.is_empty() && processes_using(&tmp).is_empty();
        async move { done }
    })
    .await;
    assert!(gone, "left running: {:?}", processes_using(&tmp));
    for port in ports {
        assert!(!listening(port), "port {port} still open");
    }
    let files: Vec<_> = std::fs::read_dir(&tmp)
        .expect("tmp")
        .flatten()
        .map(|e| e.path())
        .collect();
    assert!(files.is_empty(), "left behind: {files:?}");
}

/// Ctrl-C while LocalStack is still starting: the demo exits at once, and
/// what it had started goes with it.
#[test]
fn ctrl_c_during_start_up_leaves_nothing_behind() {
    let scratch = temp_dir("demo-early");
    let tmp = scratch.path().join("tmp");
    std::fs::create_dir_all(&tmp).expect("tmp");
    let mut demo = start_demo(scratch.path(), &tmp, Stdio::null());
    let child = &mut demo.0;
    let mut stderr = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let starting = stderr
        .by_ref()
        .map_while(Result::ok)
        .any(|l| l.contains("starting LocalStack"));
    assert!(starting, "no LocalStack step");
    // LocalStack takes seconds to answer: stop it half-way.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !processes_using(&tmp).iter().any(|p| {
        std::fs::read(format!("/proc/{p}/cmdline")).is_ok_and(|c| String::from_utf8_lossy(&c).contains("localstack"))
    }) {
        assert!(Instant::now() < deadline, "LocalStack never started");
        std::thread::sleep(Duration::from_millis(50));
    }
    let started = processes_using(&tmp);

    let _ = Command::new("kill").arg("-INT").arg(child.id().to_string()).status();
    let sent = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        assert!(
            sent.elapsed() < Duration::from_secs(1),
            "still running 1 s after SIGINT"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status}");
    let rest: Vec<String> = stderr.map_while(Result::ok).collect();
    assert!(rest.iter().any(|l| l.contains("SIGINT while starting")), "{rest:?}");
    // The stand-in's watchdog stops its group once we are gone.
    let deadline = Instant::now() + Duration::from_secs(15);
    while started.iter().any(|p| alive(*p)) || !processes_using(&tmp).is_empty() {
        assert!(Instant::now() < deadline, "left running: {:?}", processes_using(&tmp));
        std::thread::sleep(Duration::from_millis(100));
    }
    let files: Vec<_> = std::fs::read_dir(&tmp)
        .expect("tmp")
        .flatten()
        .map(|e| e.path())
        .collect();
    assert!(files.is_empty(), "left behind: {files:?}");
}
