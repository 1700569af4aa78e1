//! The e2e harness: a Kubernetes API stand-in (in this process), the AWS
//! stand-in (LocalStack, one per test binary) seeded with a misconfigured
//! fleet, the real `kubectl`, and the built `zerofn` binary running as the
//! controller — as many replicas as a test wants, each killable.
//!
//! Everything listens on 127.0.0.1 and goes away when the test's values drop.
#![forbid(unsafe_code)]

pub mod readme;

use serde_json::Value;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use zerofn_sim::aws::{Aws, Fleet, FleetManifests};
use zerofn_sim::kube::{KubeApi, KubeApiOptions};
use zerofn_sim::localstack::{LocalStack, REGION};
use zerofn_sim::process::{Managed, free_port};

/// kubectl as the issue names it: the machine's own.
pub const KUBECTL: &str = "/usr/bin/kubectl";

/// The zerofn binary under test (see [`zerofn_sim::process::zerofn_bin`]).
pub fn zerofn_bin() -> PathBuf {
    zerofn_sim::process::zerofn_bin().unwrap_or_else(|e| panic!("{e}"))
}

/// A temporary directory, removed when dropped.
pub fn temp_dir(name: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("zerofn-e2e-{name}-"))
        .tempdir()
        .expect("temp dir")
}

pub use zerofn_sim::kubetools::Kubectl;

/// The namespace the chart is installed in.
pub const CONTROLLER_NAMESPACE: &str = "zerofn-system";
/// The chart's ServiceAccount (release `zerofn`).
pub const SERVICE_ACCOUNT: &str = "zerofn";
/// The user the controller authenticates as.
pub const CONTROLLER_USER: &str = "system:serviceaccount:zerofn-system:zerofn";

/// A Kubernetes API stand-in with zerofn's CRDs, the `shop` and
/// `zerofn-system` namespaces and the chart's RBAC; kubectl runs as the
/// admin (`kubeconfig`), the controller as the chart's ServiceAccount
/// (`controller_kubeconfig`), so it can do exactly what the chart grants.
pub struct Cluster {
    pub kube: KubeApi,
    pub kubeconfig: PathBuf,
    pub controller_kubeconfig: PathBuf,
    pub dir: tempfile::TempDir,
}

/// The chart's ServiceAccount and RBAC objects, rendered by `helm template`
/// with `values` (`--set` expressions).
pub fn chart_rbac(values: &[&str]) -> String {
    let helm = zerofn_sim::kubetools::install().expect("helm installs").join("helm");
    let chart = Path::new(env!("CARGO_MANIFEST_DIR")).join("../charts/zerofn");
    let mut cmd = std::process::Command::new(helm);
    cmd.args(["template", "zerofn"])
        .arg(&chart)
        .args(["--namespace", CONTROLLER_NAMESPACE])
        .args(["--show-only", "templates/serviceaccount.yaml"])
        .args(["--show-only", "templates/rbac.yaml"]);
    for v in values {
        cmd.args(["--set", v]);
    }
    let out = cmd.output().expect("helm runs");
    assert!(
        out.status.success(),
        "helm template failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A cluster and an AWS estate with the misconfigured fleet.
pub struct World {
    pub cluster: Cluster,
    pub aws: Aws,
    pub fleet: Fleet,
    pub manifests: FleetManifests,
}

impl std::ops::Deref for World {
    type Target = Cluster;
    fn deref(&self) -> &Cluster {
        &self.cluster
    }
}

impl World {
    /// The cluster, and the fleet (named after `test`) seeded in LocalStack
    /// with the manifests declaring its posture written — not applied.
    pub async fn start(test: &str) -> World {
        let cluster = Cluster::start(test).await;
        let localstack = tokio::task::spawn_blocking(LocalStack::shared)
            .await
            .expect("LocalStack starts");
        let aws = Aws::new(&localstack.endpoint(), REGION).await;
        let prefix = format!("{test}-{:04x}-", fastrand::u16(..));
        let fleet = Fleet::seed(&aws, &prefix).await.expect("fleet seeded");
        let manifests = fleet
            .write_manifests(&cluster.dir.path().join("manifests"), &localstack.endpoint())
            .expect("manifests written");
        World {
            cluster,
            aws,
            fleet,
            manifests,
        }
    }

    /// The Lambda configuration of `function`.
    pub async fn function(
        &self,
        function: &str,
    ) -> aws_sdk_lambda::operation::get_function_configuration::GetFunctionConfigurationOutput {
        self.aws
            .lambda
            .get_function_configuration()
            .function_name(function)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{function}: {}", aws_sdk_lambda::error::DisplayErrorContext(e)))
    }

    pub async fn tags(&self, function: &str) -> std::collections::HashMap<String, String> {
        let arn = self.function(function).await.function_arn.unwrap_or_default();
        self.aws
            .lambda
            .list_tags()
            .resource(arn)
            .send()
            .await
            .map(|t| t.tags.unwrap_or_default())
            .unwrap_or_default()
    }

    /// The resource policy of `function`, `None` when it has none.
    pub async fn resource_policy(&self, function: &str) -> Option<Value> {
        let p = self.aws.lambda.get_policy().function_name(function).send().await.ok()?;
        serde_json::from_str(p.policy()?).ok()
    }
}

impl Cluster {
    /// The CRDs, the `shop` and `zerofn-system` namespaces and the chart's
    /// RBAC applied with kubectl.
    pub async fn start(test: &str) -> Cluster {
        let cluster = Cluster::bare(test).await;
        let crds = Path::new(env!("CARGO_MANIFEST_DIR")).join("../crds");
        cluster
            .kubectl_ok(&["apply", "-f", crds.to_str().unwrap_or_default()])
            .await;
        cluster
            .apply("apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: zerofn-system}\n")
            .await;
        // The chart's RBAC, with `shop` as the one tenant namespace.
        cluster.apply(&chart_rbac(&["tenantNamespaces={shop}"])).await;
        cluster
    }

    /// A stand-in with only its built-in namespaces: nothing of zerofn's
    /// yet (what `helm install` finds on a new cluster).
    pub async fn bare(test: &str) -> Cluster {
        let dir = temp_dir(test);
        let kube = KubeApi::start(KubeApiOptions::default())
            .await
            .expect("Kubernetes stand-in starts");
        let kubeconfig = dir.path().join("kubeconfig");
        kube.write_kubeconfig(&kubeconfig, "shop").expect("kubeconfig");
        let token = kube.service_account_token(CONTROLLER_NAMESPACE, SERVICE_ACCOUNT);
        let controller_kubeconfig = dir.path().join("controller-kubeconfig");
        std::fs::write(&controller_kubeconfig, kube.kubeconfig_with_token("shop", &token))
            .expect("controller kubeconfig");
        Cluster {
            kube,
            kubeconfig,
            controller_kubeconfig,
            dir,
        }
    }

    /// Run helm (from the test world) against the stand-in as the admin,
    /// with its cache and config in the test's directory.
    pub async fn helm(&self, args: &[&str]) -> Kubectl {
        let helm = zerofn_sim::kubetools::install().expect("helm installs").join("helm");
        let home = self.dir.path();
        let out = tokio::process::Command::new(helm)
            .args(args)
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .env("HOME", home)
            .env("HELM_CACHE_HOME", home.join("helm-cache"))
            .env("HELM_CONFIG_HOME", home.join("helm-config"))
            .env("HELM_DATA_HOME", home.join("helm-data"))
            .kill_on_drop(true)
            .output()
            .await
            .expect("helm runs");
        Kubectl {
            ok: out.status.success(),
            out: format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        }
    }

    /// Requests the controller made that the API server refused with 403:
    /// a permission the chart lacks.
    pub fn controller_forbidden(&self) -> Vec<String> {
        self.kube
            .requests()
            .into_iter()
            .filter(|r| r.user == CONTROLLER_USER && r.status == 403)
            .map(|r| format!("{} {}?{}", r.method, r.path, r.query))
            .collect()
    }

    /// Run kubectl against the stand-in.
    pub async fn kubectl(&self, args: &[&str]) -> Kubectl {
        self.kubectl_in(args, None).await
    }

    pub async fn kubectl_ok(&self, args: &[&str]) -> String {
        let r = self.kubectl(args).await;
        assert!(r.ok, "kubectl {args:?} failed:\n{}", r.out);
        r.out
    }

    /// `kubectl apply -f -` of `yaml`.
    pub async fn apply(&self, yaml: &str) -> String {
        let r = self.kubectl_in(&["apply", "-f", "-"], Some(yaml)).await;
        assert!(r.ok, "kubectl apply failed:\n{}\n---\n{yaml}", r.out);
        r.out
    }

    pub async fn apply_file(&self, file: &Path) -> String {
        self.kubectl_ok(&["apply", "-f", file.to_str().unwrap_or_default()])
            .await
    }

    /// Run kubectl as the controller's ServiceAccount.
    pub async fn kubectl_as_controller(&self, args: &[&str]) -> Kubectl {
        self.kubectl_with(&self.controller_kubeconfig, args, None).await
    }

    async fn kubectl_in(&self, args: &[&str], stdin: Option<&str>) -> Kubectl {
        self.kubectl_with(&self.kubeconfig, args, stdin).await
    }

    async fn kubectl_with(&self, kubeconfig: &Path, args: &[&str], stdin: Option<&str>) -> Kubectl {
        zerofn_sim::kubetools::kubectl(Path::new(KUBECTL), kubeconfig, self.dir.path(), args, stdin).await
    }

    /// `kubectl wait --for=condition=<cond> fp/<name>` in `ns`.
    pub async fn wait_for(&self, ns: &str, name: &str, condition: &str, timeout: Duration) -> Kubectl {
        self.kubectl(&[
            "wait",
            "-n",
            ns,
            &format!("--for=condition={condition}"),
            &format!("fp/{name}"),
            &format!("--timeout={}s", timeout.as_secs()),
        ])
        .await
    }

    /// A FunctionPosture as the API server holds it.
    pub fn posture(&self, ns: &str, name: &str) -> Option<Value> {
        self.kube.get("zerofn.dev", "v1alpha1", "functionpostures", ns, name)
    }

    /// A PosturePolicy as the API server holds it.
    pub fn policy(&self, ns: &str, name: &str) -> Option<Value> {
        self.kube.get("zerofn.dev", "v1alpha1", "posturepolicies", ns, name)
    }

    /// The child FunctionPostures of policy `ns/name`, by their label, as
    /// (child name, function it targets, Ready status).
    pub fn children(&self, ns: &str, policy: &str) -> Vec<(String, Value, String)> {
        self.kube
            .list("zerofn.dev", "v1alpha1", "functionpostures", Some(ns))
            .into_iter()
            .filter(|p| p["metadata"]["labels"]["zerofn.dev/policy"] == policy)
            .map(|p| {
                let ready = p["status"]["conditions"]
                    .as_array()
                    .and_then(|c| c.iter().find(|c| c["type"] == "Ready"))
                    .and_then(|c| c["status"].as_str())
                    .unwrap_or_default()
                    .to_string();
                (
                    p["metadata"]["name"].as_str().unwrap_or_default().to_string(),
                    p["spec"]["function"].clone(),
                    ready,
                )
            })
            .collect()
    }

    /// One condition of a posture: (status, reason).
    pub fn condition(&self, ns: &str, name: &str, type_: &str) -> Option<(String, String)> {
        let p = self.posture(ns, name)?;
        p["status"]["conditions"].as_array()?.iter().find_map(|c| {
            (c["type"] == type_).then(|| {
                (
                    c["status"].as_str().unwrap_or_default().to_string(),
                    c["reason"].as_str().unwrap_or_default().to_string(),
                )
            })
        })
    }

    /// Start a controller replica named `identity`.
    pub fn controller(&self, identity: &str, extra: &[&str]) -> Controller {
        Controller::start(self, identity, extra)
    }

    /// The one replica `zerofn-0`, without leader election, with the
    /// [`FAST`] flags and `extra`.
    pub fn single_controller(&self, extra: &[&str]) -> Controller {
        let mut args = FAST.to_vec();
        args.extend_from_slice(&["--leader-elect", "false"]);
        args.extend_from_slice(extra);
        Controller::start(self, "zerofn-0", &args)
    }
}

/// A CloudAccount `shop/gcp` for project `shop-prod` (number 424242424242)
/// of the GCP stand-in at `url`, anonymous, every endpoint at the stand-in.
pub fn gcp_account(url: &str) -> String {
    format!(
        "apiVersion: zerofn.dev/v1alpha1\nkind: CloudAccount\nmetadata: {{name: gcp, namespace: shop}}\nspec:\n  gcp:\n    projectId: shop-prod\n    projectNumber: \"424242424242\"\n    anonymous: true\n    endpoints: {{functions: \"{url}\", run: \"{url}\", iam: \"{url}\", resourceManager: \"{url}\"}}\n"
    )
}

/// The Azure stand-in's directory, subscription and app registration the
/// e2e scenarios use.
pub const AZURE_TENANT: &str = "0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0";
pub const AZURE_SUBSCRIPTION: &str = "5e6f7a8b-9c0d-4e1f-8a2b-3c4d5e6f7a8b";
pub const AZURE_CLIENT: &str = "c1c1c1c1-0000-4000-8000-000000000001";
pub const AZURE_CLIENT_SECRET: &str = "s3cret";

/// A CloudAccount `shop/azure` for the ARM stand-in at `url` (ARM and
/// authority host), with its client secret in `shop/azure-credentials`;
/// `extra` is appended to the `azure:` block (indented four spaces).
pub fn azure_account(url: &str, extra: &str) -> String {
    format!(
        "apiVersion: zerofn.dev/v1alpha1\nkind: CloudAccount\nmetadata: {{name: azure, namespace: shop}}\nspec:\n  azure:\n    tenantId: {AZURE_TENANT}\n    subscriptionId: {AZURE_SUBSCRIPTION}\n    clientId: {AZURE_CLIENT}\n    credential: ClientSecret\n    clientSecretRef: {{name: azure-credentials}}\n    resourceManagerEndpoint: {url}\n    authorityHost: {url}\n{extra}---\napiVersion: v1\nkind: Secret\nmetadata: {{name: azure-credentials, namespace: shop}}\nstringData: {{client_secret: {AZURE_CLIENT_SECRET}}}\n"
    )
}

/// Controller flags fast enough for tests; the defaults (5m resync, 30s
/// inventory, 60s release timeout) are for real quotas.
pub const FAST: &[&str] = &[
    "--namespace",
    "zerofn-system",
    "--resync-interval",
    "4s",
    "--inventory-ttl",
    "1s",
    "--release-timeout",
    "30s",
];

/// Poll `check` every 250 ms until it holds or `timeout` passes.
pub async fn eventually<F, Fut>(timeout: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if check().await {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// One `zerofn run` process, authenticated as the chart's ServiceAccount.
pub struct Controller {
    pub identity: String,
    pub probe_port: u16,
    process: Managed,
}

impl Controller {
    fn start(world: &Cluster, identity: &str, extra: &[&str]) -> Controller {
        let probe_port = free_port().expect("free port");
        let probe = format!("127.0.0.1:{probe_port}");
        let mut args = vec![
            "run",
            "--log-format",
            "json",
            "--probe-addr",
            probe.as_str(),
            "--identity",
            identity,
        ];
        args.extend_from_slice(extra);
        let log = world.dir.path().join(format!("{identity}-{}.log", fastrand::u32(..)));
        let mut env = vec![
            ("KUBECONFIG", world.controller_kubeconfig.to_string_lossy().into_owned()),
            ("HOME", world.dir.path().to_string_lossy().into_owned()),
            ("AWS_EC2_METADATA_DISABLED", "true".into()),
            (
                "RUST_LOG",
                std::env::var("ZEROFN_E2E_LOG").unwrap_or_else(|_| "info,zerofn=debug".into()),
            ),
        ];
        // Allocator tuning under measurement (the bench) passes through.
        if let Ok(v) = std::env::var("MALLOC_ARENA_MAX") {
            env.push(("MALLOC_ARENA_MAX", v));
        }
        let process = Managed::spawn(identity, &zerofn_bin(), &args, &env, log, None).expect("zerofn run starts");
        Controller {
            identity: identity.to_string(),
            probe_port,
            process,
        }
    }

    /// GET a path of the probe server; (status, body).
    pub fn probe(&self, path: &str) -> Option<(u16, String)> {
        let mut s =
            TcpStream::connect_timeout(&([127, 0, 0, 1], self.probe_port).into(), Duration::from_millis(500)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        let req = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
        s.write_all(req.as_bytes()).ok()?;
        let mut raw = String::new();
        s.read_to_string(&mut raw).ok()?;
        let status = raw.split_whitespace().nth(1)?.parse().ok()?;
        let body = raw
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default();
        Some((status, body))
    }

    /// Cloud calls this replica made, by (op, outcome), from /metrics.
    pub fn cloud_calls(&self) -> Vec<(String, String, u64)> {
        let Some((200, body)) = self.probe("/metrics") else {
            return Vec::new();
        };
        body.lines()
            .filter(|l| l.starts_with("zerofn_cloud_requests_total{"))
            .filter_map(|l| {
                let (labels, value) = l.rsplit_once(' ')?;
                let label = |k: &str| {
                    labels
                        .split_once(&format!("{k}=\""))
                        .and_then(|(_, r)| r.split_once('"'))
                        .map(|(v, _)| v.to_string())
                };
                Some((
                    label("op")?,
                    label("outcome")?,
                    value.trim().parse::<f64>().ok()? as u64,
                ))
            })
            .collect()
    }

    /// Successful write calls this replica made.
    pub fn writes(&self) -> u64 {
        self.cloud_calls()
            .iter()
            .filter(|(op, outcome, _)| zerofn::metrics::is_write(op) && outcome == "ok")
            .map(|(_, _, n)| n)
            .sum()
    }

    /// Every cloud call this replica made, of any kind and outcome.
    pub fn total_calls(&self) -> u64 {
        self.cloud_calls().iter().map(|(_, _, n)| n).sum()
    }

    /// A metric's value summed over its label sets.
    pub fn metric(&self, name: &str) -> f64 {
        let Some((200, body)) = self.probe("/metrics") else {
            return 0.0;
        };
        body.lines()
            .filter(|l| l.starts_with(name) && (l[name.len()..].starts_with('{') || l[name.len()..].starts_with(' ')))
            .filter_map(|l| l.rsplit_once(' ')?.1.trim().parse::<f64>().ok())
            .sum()
    }

    pub fn ready(&self) -> bool {
        matches!(self.probe("/readyz"), Some((200, _)))
    }

    pub fn running(&mut self) -> bool {
        self.process.running()
    }

    /// SIGKILL: the process dies mid-whatever, as in an OOM kill or node loss.
    pub fn kill(&mut self) {
        self.process.kill();
    }

    pub fn log(&self) -> String {
        self.process.log()
    }
}
