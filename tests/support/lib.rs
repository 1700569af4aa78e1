//! Shared helpers for zerofn's integration tests.
#![forbid(unsafe_code)]

use clap::Parser;
use serde_json::Value;
use std::path::{Path, PathBuf};

/// What one CLI run printed and returned.
#[derive(Debug)]
pub struct Run {
    pub code: u8,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// The `-o json` report.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}\n{}", self.stdout, self.stderr))
    }

    /// The postures of a `-o json` report, as it names them, sorted.
    pub fn postures(&self) -> Vec<String> {
        let report = self.json();
        let mut v: Vec<String> = report["postures"]
            .as_array()
            .unwrap_or_else(|| panic!("no postures in {report:#}"))
            .iter()
            .filter_map(|r| r["posture"].as_str().map(str::to_string))
            .collect();
        v.sort();
        v
    }

    /// Finding checks of one posture (`namespace/name`), sorted.
    pub fn checks(&self, posture: &str) -> Vec<String> {
        let report = self.json();
        let row = report["postures"]
            .as_array()
            .and_then(|a| a.iter().find(|r| r["posture"] == posture))
            .unwrap_or_else(|| panic!("no posture {posture} in {report:#}"));
        let mut v: Vec<String> = row["findings"]
            .as_array()
            .map(|f| {
                f.iter()
                    .map(|f| f["check"].as_str().unwrap_or_default().to_string())
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }
}

/// Run `zerofn <args>` in-process.
pub async fn zerofn(args: &[&str]) -> Run {
    let cli = zerofn::cli::Cli::try_parse_from(std::iter::once("zerofn").chain(args.iter().copied()))
        .unwrap_or_else(|e| panic!("bad test arguments {args:?}: {e}"));
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = zerofn::cli::execute(cli, &mut out, &mut err).await;
    Run {
        code,
        stdout: String::from_utf8_lossy(&out).into_owned(),
        stderr: String::from_utf8_lossy(&err).into_owned(),
    }
}

/// A temporary directory, removed when dropped.
pub struct TempDir(tempfile::TempDir);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        let dir = tempfile::Builder::new()
            .prefix(&format!("zerofn-test-{name}-"))
            .tempdir()
            .expect("temp dir");
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        self.0.path()
    }

    pub fn write(&self, name: &str, content: &str) -> PathBuf {
        let p = self.path().join(name);
        std::fs::write(&p, content).expect("write test file");
        p
    }
}

/// A name prefix unique to this test process, so tests sharing a stand-in
/// never touch each other's resources.
pub fn prefix(test: &str) -> String {
    format!("{test}-{:04x}-", fastrand::u16(..))
}
