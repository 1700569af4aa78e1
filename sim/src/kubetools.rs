//! kubectl and helm: installed on first use by the checkout's
//! `testworld/kube/install.sh` into its test world, and run against a
//! stand-in with a kubeconfig.

use std::path::{Path, PathBuf};

/// The directory holding `helm` and `kubectl`, installing them if needed,
/// in the checkout found at run time ([`crate::repo::locate`]).
pub fn install() -> Result<PathBuf, String> {
    install_in(&crate::repo::locate(None)?)
}

/// The same, in the checkout at `root`.
pub fn install_in(root: &Path) -> Result<PathBuf, String> {
    crate::repo::run_installer(root, "testworld/kube/install.sh")
}

/// `kubectl` from `PATH` if there is one, else the test world's (installing
/// it into the checkout at `root`).
pub fn kubectl_program(root: &Path) -> Result<PathBuf, String> {
    let on_path = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|d| d.join("kubectl"))
            .find(|p| p.is_file())
    });
    match on_path {
        Some(p) => Ok(p),
        None => Ok(install_in(root)?.join("kubectl")),
    }
}

/// What kubectl printed (stdout, then stderr) and whether it succeeded.
pub struct Kubectl {
    pub ok: bool,
    pub out: String,
}

/// Run `program` (kubectl) with `kubeconfig` and `args`, `stdin` as its
/// input. `home` keeps its caches out of the user's home.
pub async fn kubectl(program: &Path, kubeconfig: &Path, home: &Path, args: &[&str], stdin: Option<&str>) -> Kubectl {
    let mut cmd = tokio::process::Command::new(program);
    cmd.arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .env("HOME", home)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            return Kubectl {
                ok: false,
                out: format!("{}: {e}", program.display()),
            };
        }
    };
    if let (Some(mut pipe), Some(input)) = (child.stdin.take(), stdin) {
        use tokio::io::AsyncWriteExt;
        if let Err(e) = pipe.write_all(input.as_bytes()).await {
            return Kubectl {
                ok: false,
                out: format!("writing to kubectl: {e}"),
            };
        }
    }
    match child.wait_with_output().await {
        Ok(out) => Kubectl {
            ok: out.status.success(),
            out: format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        },
        Err(e) => Kubectl {
            ok: false,
            out: format!("{}: {e}", program.display()),
        },
    }
}
