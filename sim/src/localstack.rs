//! LocalStack, the AWS stand-in: installed on first use by the checkout's
//! `testworld/aws/install.sh` (repo-local, pinned; the checkout is found at
//! run time, see [`crate::repo`]), started per test process on a free
//! loopback port, stopped with its process group.

use crate::process::{Managed, free_port};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

/// The account id LocalStack answers with.
pub const ACCOUNT_ID: &str = "000000000000";
pub const REGION: &str = "eu-west-1";

pub struct LocalStack {
    pub port: u16,
    _process: Managed,
}

/// The LocalStack virtualenv of the checkout at `root`, installing it if
/// needed.
pub fn install(root: &Path) -> Result<PathBuf, String> {
    crate::repo::run_installer(root, "testworld/aws/install.sh")
}

fn health(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(200)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let req = format!("GET /_localstack/health HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
    if s.write_all(req.as_bytes()).is_err() {
        return false;
    }
    let mut body = String::new();
    let _ = s.read_to_string(&mut body);
    body.starts_with("HTTP/1.1 200") && body.contains("\"lambda\"")
}

impl LocalStack {
    /// Start it from the checkout found at run time ([`crate::repo::locate`]).
    pub fn start() -> Result<LocalStack, String> {
        LocalStack::start_in(&crate::repo::locate(None)?)
    }

    /// Start it from the checkout at `root`, installing it there first if
    /// needed.
    pub fn start_in(root: &Path) -> Result<LocalStack, String> {
        let venv = install(root)?;
        let port = free_port().map_err(|e| e.to_string())?;
        let dir = std::env::temp_dir().join(format!("zerofn-localstack-{port}-{}", std::process::id()));
        for sub in ["tmp", "fs", "s3"] {
            std::fs::create_dir_all(dir.join(sub)).map_err(|e| e.to_string())?;
        }
        let d = |s: &str| dir.join(s).to_string_lossy().into_owned();
        let envs = [
            ("HOME", dir.to_string_lossy().into_owned()),
            ("TMPDIR", d("tmp")),
            ("FILESYSTEM_ROOT", d("fs")),
            ("ZEROFN_S3_STORAGE_DIR", d("s3")),
            // hypercorn binds the given interface (twisted binds 0.0.0.0).
            ("GATEWAY_SERVER", "hypercorn".into()),
            ("GATEWAY_LISTEN", format!("127.0.0.1:{port}")),
            (
                "SERVICES",
                "lambda,iam,sts,ec2,sqs,resourcegroupstaggingapi,logs,apigateway".into(),
            ),
            ("LAMBDA_RUNTIME_EXECUTOR", "zerofn-noop".into()),
            // No DNS server, no analytics, no update checks: loopback only.
            ("DNS_ADDRESS", "0".into()),
            ("DISABLE_EVENTS", "1".into()),
            ("LOCALSTACK_TELEMETRY", "0".into()),
            ("SKIP_SSL_CERT_DOWNLOAD", "1".into()),
        ];
        let python = venv.join("bin/python");
        let mut process = Managed::spawn(
            "localstack",
            &python,
            &["-m", "zerofn_localstack_plugin.launch"],
            &envs,
            dir.join("localstack.log"),
            Some(dir.clone()),
        )
        .map_err(|e| format!("starting LocalStack: {e}"))?;
        process.wait_until(Duration::from_secs(90), || health(port))?;
        Ok(LocalStack {
            port,
            _process: process,
        })
    }

    /// One LocalStack per test process, started on first use. Tests share it
    /// and keep apart by naming their resources uniquely.
    pub fn shared() -> &'static LocalStack {
        static SHARED: OnceLock<LocalStack> = OnceLock::new();
        SHARED.get_or_init(|| LocalStack::start().unwrap_or_else(|e| panic!("AWS stand-in: {e}")))
    }

    /// Stop it at once: SIGKILL to its process group (it keeps no state, and
    /// SIGTERM takes ~5 s), then remove its files.
    pub fn stop(mut self) {
        self._process.kill();
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}
