//! The built `zerofn` binary itself: exit codes and messages as a user's
//! shell sees them (the CLI's logic is tested in-process in `tests/`; this
//! checks the wiring through `main`). Building this test also builds the
//! binary the e2e suite drives.
#![forbid(unsafe_code)]

use std::process::Command;

fn zerofn(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_zerofn"))
        .args(args)
        .env_clear()
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .output()
        .expect("the zerofn binary runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_malformed_manifest_exits_2_naming_the_file_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.yaml");
    std::fs::write(
        &file,
        "apiVersion: zerofn.dev/v1alpha1\nkind: FunctionPosture\nmetadata: {name: x, namespace: shop}\n\
         spec:\n  accountRef: {name: a}\n  function: {aws: {name: f}}\n  mood: Enforce\n",
    )
    .unwrap();
    let (code, _, err) = zerofn(&["plan", "-f", file.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("bad.yaml") && err.contains("mood"), "{err}");
}

#[test]
fn an_unknown_log_format_exits_2_naming_the_flag() {
    let (code, _, err) = zerofn(&["run", "--log-format", "jsn"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--log-format") && err.contains("jsn"), "{err}");
}

#[test]
fn crds_prints_every_kind() {
    let (code, out, err) = zerofn(&["crds"]);
    assert_eq!(code, 0, "{err}");
    for kind in ["FunctionPosture", "CloudAccount", "ClusterCloudAccount"] {
        assert!(out.contains(&format!("kind: {kind}")), "{kind} missing");
    }
}

#[test]
fn enforce_without_once_is_refused() {
    let (code, _, err) = zerofn(&["enforce", "-f", "/nonexistent"]);
    assert_eq!(code, 2);
    assert!(err.contains("--once"), "{err}");
}
