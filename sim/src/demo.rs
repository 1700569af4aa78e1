//! `zerofn-sim demo`: a first run in one command. The Kubernetes API
//! stand-in (in this process) and LocalStack (a child process group), three
//! Lambda functions seeded in it, zerofn's CRDs, a namespace, a CloudAccount
//! and three postures applied with kubectl, and the built `zerofn run` as
//! the controller. Prints how to watch it with kubectl, and on SIGINT or
//! SIGTERM stops every process and removes every file it made.

use crate::aws::Aws;
use crate::kube::{KubeApi, KubeApiOptions};
use crate::kubetools::{Kubectl, kubectl_program};
use crate::localstack::{LocalStack, REGION};
use crate::process::{Managed, free_port};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The namespace the demo's postures live in.
pub const NAMESPACE: &str = "demo";
/// The controller's resync: short, so drift is seen to be reverted.
pub const RESYNC: &str = "10s";
/// The line printed once everything runs.
pub const READY_LINE: &str = "Ready. Ctrl-C stops the demo and removes";

/// The functions seeded, and the posture declared for each.
pub const PUBLIC: &str = "demo-public-api";
pub const OPEN_URL: &str = "demo-open-url";
pub const COMPLIANT: &str = "demo-compliant";

pub struct Options {
    /// The checkout whose `testworld/` installs LocalStack (`--repo`).
    pub repo: Option<PathBuf>,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn sdk<E: std::error::Error + 'static, R: std::fmt::Debug>(e: aws_sdk_lambda::error::SdkError<E, R>) -> BoxError {
    aws_sdk_lambda::error::DisplayErrorContext(e).to_string().into()
}

/// Seed the three functions: one anyone may invoke, one with a function URL
/// that needs no authentication (both with pass-through tracing and text
/// logs, Lambda's defaults), and one that already holds the posture.
pub async fn seed(aws: &Aws) -> Result<(), BoxError> {
    for f in [PUBLIC, OPEN_URL, COMPLIANT] {
        let role = aws.create_role(&format!("{f}-role")).await?;
        aws.create_function(f, &role).await?;
    }
    aws.lambda
        .add_permission()
        .function_name(PUBLIC)
        .statement_id("anyone")
        .action("lambda:InvokeFunction")
        .principal("*")
        .send()
        .await
        .map_err(sdk)?;
    aws.lambda
        .create_function_url_config()
        .function_name(OPEN_URL)
        .auth_type(aws_sdk_lambda::types::FunctionUrlAuthType::None)
        .send()
        .await
        .map_err(sdk)?;
    aws.lambda
        .update_function_configuration()
        .function_name(COMPLIANT)
        .tracing_config(
            aws_sdk_lambda::types::TracingConfig::builder()
                .mode(aws_sdk_lambda::types::TracingMode::Active)
                .build(),
        )
        .logging_config(
            aws_sdk_lambda::types::LoggingConfig::builder()
                .log_format(aws_sdk_lambda::types::LogFormat::Json)
                .build(),
        )
        .send()
        .await
        .map_err(sdk)?;
    aws.wait_ready(COMPLIANT).await
}

/// The namespace, the account (a CloudAccount with the stand-in's static
/// credentials: a tenant may point only at a loopback stand-in, and only
/// with a Secret) and one posture per function, all declaring the same two
/// controls.
pub fn manifests(endpoint: &str) -> String {
    let acct = crate::localstack::ACCOUNT_ID;
    let posture = |name: &str, function: &str, mode: &str| {
        format!(
            "---\napiVersion: zerofn.dev/v1alpha1\nkind: FunctionPosture\nmetadata: {{name: {name}, namespace: {NAMESPACE}}}\n\
             spec:\n  accountRef: {{name: stand-in}}\n  function: {{aws: {{name: {function}}}}}\n  mode: {mode}\n\
             \x20 triggers: {{publicAccess: Deny}}\n  observability: {{tracing: Active, structuredLogs: true}}\n"
        )
    };
    format!(
        "apiVersion: v1\nkind: Namespace\nmetadata: {{name: {NAMESPACE}}}\n\
         ---\napiVersion: v1\nkind: Secret\nmetadata: {{name: stand-in-credentials, namespace: {NAMESPACE}}}\n\
         stringData: {{aws_access_key_id: test, aws_secret_access_key: test}}\n\
         ---\napiVersion: zerofn.dev/v1alpha1\nkind: CloudAccount\nmetadata: {{name: stand-in, namespace: {NAMESPACE}}}\n\
         spec:\n  aws:\n    accountId: \"{acct}\"\n    region: {REGION}\n    endpoint: {endpoint}\n\
         \x20   credentialsSecretRef: {{name: stand-in-credentials}}\n{}{}{}",
        posture("public-api", PUBLIC, "Enforce"),
        posture("open-url", OPEN_URL, "Audit"),
        posture("compliant", COMPLIANT, "Audit"),
    )
}

/// The `curl` that adds a grant to anyone on [`PUBLIC`] behind zerofn's
/// back: Lambda's AddPermission (`POST /2015-03-31/functions/{name}/policy`).
/// The stand-in takes any signature; the credential scope names the region.
pub fn drift_command(endpoint: &str) -> String {
    format!(
        "curl -sS -X POST {endpoint}/2015-03-31/functions/{PUBLIC}/policy \
         -H 'Content-Type: application/json' \
         -H 'Authorization: AWS4-HMAC-SHA256 Credential=test/20260101/{REGION}/lambda/aws4_request, SignedHeaders=host, Signature=0' \
         -d '{{\"StatementId\": \"drift\", \"Action\": \"lambda:InvokeFunction\", \"Principal\": \"*\"}}'"
    )
}

/// A directory under the temporary directory, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> std::io::Result<Scratch> {
        let dir = std::env::temp_dir().join(format!("zerofn-demo-{}-{:08x}", std::process::id(), fastrand::u32(..)));
        std::fs::create_dir_all(&dir)?;
        Ok(Scratch(dir))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Everything the demo runs. Fields drop in order: the controller first (it
/// would only log errors once the stand-ins are gone), the directory last.
struct Demo {
    controller: Managed,
    localstack: LocalStack,
    kube: KubeApi,
    kubectl: PathBuf,
    kubeconfig: PathBuf,
    probe_port: u16,
    zerofn: PathBuf,
    dir: Scratch,
}

/// `zerofn`, next to this program (`target/<profile>/`).
fn zerofn_bin() -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| format!("where is zerofn-sim: {e}"))?;
    let bin = exe.with_file_name("zerofn");
    if bin.is_file() {
        Ok(bin)
    } else {
        Err(format!(
            "{} is missing: build it with `cargo build --workspace --bins`",
            bin.display()
        ))
    }
}

fn step(what: &str) {
    eprintln!("zerofn-sim demo: {what}");
}

impl Demo {
    async fn start(opts: &Options) -> Result<Demo, String> {
        let root = crate::repo::locate(opts.repo.as_deref())?;
        let zerofn = zerofn_bin()?;
        let dir = Scratch::new().map_err(|e| format!("temporary directory: {e}"))?;
        let found = root.clone();
        let kubectl = tokio::task::spawn_blocking(move || kubectl_program(&found))
            .await
            .map_err(|e| e.to_string())??;

        step("starting the Kubernetes API stand-in");
        let kube = KubeApi::start(KubeApiOptions::default())
            .await
            .map_err(|e| format!("Kubernetes API stand-in: {e}"))?;
        let kubeconfig = dir.0.join("kubeconfig");
        kube.write_kubeconfig(&kubeconfig, NAMESPACE)
            .map_err(|e| format!("{}: {e}", kubeconfig.display()))?;

        step("starting LocalStack (installing it first if needed: about a minute, once)");
        let localstack = tokio::task::spawn_blocking(move || LocalStack::start_in(&root))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("AWS stand-in: {e}"))?;
        let endpoint = localstack.endpoint();
        step("seeding the demo functions");
        let aws = Aws::new(&endpoint, REGION).await;
        seed(&aws).await.map_err(|e| format!("seeding LocalStack: {e}"))?;

        step("applying the CRDs, the namespace, the account and the postures");
        let crds = tokio::process::Command::new(&zerofn)
            .arg("crds")
            .output()
            .await
            .map_err(|e| format!("{} crds: {e}", zerofn.display()))?;
        if !crds.status.success() {
            return Err(format!("zerofn crds: {}", String::from_utf8_lossy(&crds.stderr)));
        }
        let apply = |yaml: String| {
            let (kubectl, kubeconfig, home) = (kubectl.clone(), kubeconfig.clone(), dir.0.clone());
            async move {
                let Kubectl { ok, out } = crate::kubetools::kubectl(
                    &kubectl,
                    &kubeconfig,
                    &home,
                    // Bounded: the stand-in answers in milliseconds.
                    &["apply", "--server-side", "--request-timeout=30s", "-f", "-"],
                    Some(&yaml),
                )
                .await;
                if ok {
                    Ok(())
                } else {
                    Err(format!("kubectl apply: {out}"))
                }
            }
        };
        apply(String::from_utf8_lossy(&crds.stdout).into_owned()).await?;
        apply(manifests(&endpoint)).await?;

        step("starting the controller");
        let probe_port = free_port().map_err(|e| e.to_string())?;
        let controller = start_controller(&zerofn, &kubeconfig, &dir.0, probe_port)?;
        let mut demo = Demo {
            controller,
            localstack,
            kube,
            kubectl,
            kubeconfig,
            probe_port,
            zerofn,
            dir,
        };
        demo.wait_ready(Duration::from_secs(60)).await?;
        Ok(demo)
    }

    /// Until the controller's caches are synced (`/readyz`). It has
    /// `timeout`: LocalStack and the stand-in answer in milliseconds.
    async fn wait_ready(&mut self, timeout: Duration) -> Result<(), String> {
        let deadline = tokio::time::Instant::now() + timeout;
        while http_status(self.probe_port, "/readyz") != Some(200) {
            if !self.controller.running() {
                return Err(format!("the controller exited:\n{}", self.controller.log()));
            }
            if tokio::time::Instant::now() > deadline {
                return Err(format!(
                    "the controller is not ready after {timeout:?}:\n{}",
                    self.controller.log()
                ));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Ok(())
    }

    fn guide(&self) -> String {
        let k = if self.kubectl.parent().is_some_and(on_path) {
            "kubectl".to_string()
        } else {
            self.kubectl.display().to_string()
        };
        let endpoint = self.localstack.endpoint();
        format!(
            "\nzerofn demo, on 127.0.0.1 only:\n\
             \x20 Kubernetes API stand-in   {kube}\n\
             \x20 AWS stand-in (LocalStack) {endpoint}  functions {PUBLIC}, {OPEN_URL}, {COMPLIANT}\n\
             \x20 controller                {zerofn} run  (metrics: http://127.0.0.1:{probe}/metrics, log: {log})\n\
             \nIn another terminal:\n\n\
             \x20 export KUBECONFIG={kubeconfig}\n\
             \nThe postures (add -w to follow). public-api is Enforce: zerofn fixes its function.\n\
             open-url is Audit: its drift is reported, nothing is changed. compliant holds already.\n\n\
             \x20 {k} get fp -n {NAMESPACE}\n\
             \nConditions and findings:\n\n\
             \x20 {k} describe fp open-url -n {NAMESPACE}\n\
             \nEvents (Enforced, DriftDetected):\n\n\
             \x20 {k} get events -n {NAMESPACE}\n\
             \nDrift: let anyone invoke {PUBLIC}, behind zerofn's back. zerofn removes the grant\n\
             at its next resync ({RESYNC}):\n\n\
             \x20 {drift}\n\
             \n{READY_LINE} {dir}\n",
            kube = self.kube.url(),
            zerofn = self.zerofn.display(),
            probe = self.probe_port,
            log = self.dir.0.join("controller.log").display(),
            kubeconfig = self.kubeconfig.display(),
            drift = drift_command(&endpoint),
            dir = self.dir.0.display(),
        )
    }

    /// Stop everything, in order, and remove the directory.
    fn stop(self) {
        let Demo {
            controller,
            localstack,
            kube,
            dir,
            ..
        } = self;
        // SIGTERM: the controller finishes the reconciles in flight.
        drop(controller);
        localstack.stop();
        drop(kube);
        drop(dir);
    }
}

fn on_path(dir: &Path) -> bool {
    std::env::var_os("PATH").is_some_and(|p| std::env::split_paths(&p).any(|d| d == dir))
}

fn start_controller(zerofn: &Path, kubeconfig: &Path, dir: &Path, probe_port: u16) -> Result<Managed, String> {
    let probe = format!("127.0.0.1:{probe_port}");
    let args = [
        "run",
        "--leader-elect",
        "false",
        "--log-format",
        "text",
        "--probe-addr",
        &probe,
        "--resync-interval",
        RESYNC,
        "--inventory-ttl",
        "2s",
        "--release-timeout",
        "30s",
    ];
    let env = [
        ("KUBECONFIG", kubeconfig.to_string_lossy().into_owned()),
        ("HOME", dir.to_string_lossy().into_owned()),
        ("AWS_EC2_METADATA_DISABLED", "true".to_string()),
        ("RUST_LOG", "info".to_string()),
    ];
    // The directory is the controller's to remove too: should this process
    // die without cleaning up, the controller's watchdog still does.
    Managed::spawn(
        "zerofn run",
        zerofn,
        &args,
        &env,
        dir.join("controller.log"),
        Some(dir.to_path_buf()),
    )
    .map_err(|e| format!("starting {}: {e}", zerofn.display()))
}

/// The status code of `GET path` on 127.0.0.1:`port`.
fn http_status(port: u16, path: &str) -> Option<u16> {
    let mut s = TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(500)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    let req = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).ok()?;
    let mut head = [0u8; 12];
    s.read_exact(&mut head).ok()?;
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}

/// SIGINT or SIGTERM, by name.
async fn shutdown_signal() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut int), Ok(mut term)) = (signal(SignalKind::interrupt()), signal(SignalKind::terminate())) else {
        // Without handlers the default action (exit) applies; never stop
        // here on our own.
        return std::future::pending().await;
    };
    tokio::select! {
        _ = int.recv() => "SIGINT",
        _ = term.recv() => "SIGTERM",
    }
}

/// Run the demo until SIGINT or SIGTERM, or until the controller exits.
pub async fn run(opts: Options) -> Result<(), String> {
    let stop = shutdown_signal();
    tokio::pin!(stop);
    let mut demo = tokio::select! {
        d = Demo::start(&opts) => d?,
        s = &mut stop => {
            step(&format!("{s} while starting; stopped"));
            return Ok(());
        }
    };
    print!("{}", demo.guide());
    let _ = std::io::stdout().flush();
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    let outcome = loop {
        tokio::select! {
            s = &mut stop => {
                step(&format!("{s}: stopping"));
                break Ok(());
            }
            _ = tick.tick() => {
                if !demo.controller.running() {
                    break Err(format!("the controller exited:\n{}", demo.controller.log()));
                }
            }
        }
    };
    let dir = demo.dir.0.clone();
    demo.stop();
    step(&format!("stopped; removed {}", dir.display()));
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_manifests_declare_one_enforce_and_two_audit_postures() {
        let docs: Vec<serde_json::Value> = manifests("http://127.0.0.1:4566")
            .split("\n---\n")
            .map(|d| serde_saphyr::from_str(d).unwrap())
            .collect();
        let kinds: Vec<&str> = docs.iter().map(|d| d["kind"].as_str().unwrap()).collect();
        assert_eq!(
            kinds,
            [
                "Namespace",
                "Secret",
                "CloudAccount",
                "FunctionPosture",
                "FunctionPosture",
                "FunctionPosture"
            ]
        );
        let modes: Vec<(&str, &str, &str)> = docs[3..]
            .iter()
            .map(|d| {
                (
                    d["metadata"]["name"].as_str().unwrap(),
                    d["spec"]["function"]["aws"]["name"].as_str().unwrap(),
                    d["spec"]["mode"].as_str().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            modes,
            [
                ("public-api", PUBLIC, "Enforce"),
                ("open-url", OPEN_URL, "Audit"),
                ("compliant", COMPLIANT, "Audit")
            ]
        );
        assert_eq!(docs[2]["spec"]["aws"]["endpoint"], "http://127.0.0.1:4566");
        assert!(
            docs.iter()
                .all(|d| d["metadata"]["namespace"] == NAMESPACE || d["kind"] == "Namespace")
        );
    }

    #[test]
    fn the_drift_command_is_lambda_add_permission() {
        let c = drift_command("http://127.0.0.1:4566");
        assert!(c.starts_with(&format!(
            "curl -sS -X POST http://127.0.0.1:4566/2015-03-31/functions/{PUBLIC}/policy "
        )));
        let body = c.rsplit_once("-d '").unwrap().1.trim_end_matches('\'');
        let body: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(body["Principal"], "*");
        assert_eq!(body["Action"], "lambda:InvokeFunction");
        assert!(c.contains(&format!("/{REGION}/lambda/aws4_request")));
    }
}
