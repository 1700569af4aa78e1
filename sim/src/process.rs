//! Stand-ins that run as separate processes (LocalStack): started on a free
//! loopback port, in their own process group, and stopped with the whole
//! group when dropped — or when the test process dies without dropping them
//! (the group watches its stdin, which closes when we exit).

use std::io::Read;
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The zerofn binary a test or bench runs: `ZEROFN_BIN`, or the one cargo
/// built in the same profile (`target/<profile>/zerofn`, next to the running
/// `target/<profile>/deps/<test>-<hash>`).
pub fn zerofn_bin() -> Result<PathBuf, String> {
    if let Some(p) = std::env::var_os("ZEROFN_BIN") {
        return Ok(PathBuf::from(p));
    }
    let exe = std::env::current_exe().map_err(|e| format!("where is this program: {e}"))?;
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .map(|d| d.join("zerofn"))
        .unwrap_or_default();
    if bin.is_file() {
        Ok(bin)
    } else {
        Err(format!(
            "{} is missing: build it first (`cargo test --workspace` does; for benches `cargo build --release --workspace --bins`) or set ZEROFN_BIN",
            bin.display()
        ))
    }
}

/// A free TCP port on 127.0.0.1 (released before returning; the stand-in
/// binds it right after).
pub fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

pub struct Managed {
    name: String,
    child: Child,
    log: PathBuf,
    cleanup: Option<PathBuf>,
}

impl Managed {
    /// Run `program args` in a new process group, with only `envs` in its
    /// environment, under a small shell that stops the group (and removes
    /// `cleanup`) as soon as our end of its stdin closes.
    pub fn spawn(
        name: &str,
        program: &Path,
        args: &[&str],
        envs: &[(&str, String)],
        log: PathBuf,
        cleanup: Option<PathBuf>,
    ) -> std::io::Result<Managed> {
        let out = std::fs::File::create(&log)?;
        let err = out.try_clone()?;
        let mut cmd = Command::new("/bin/sh");
        // Background jobs read /dev/null, so the watchdog reads a copy (fd 3)
        // of the real stdin; it ignores TERM so it outlives `kill 0` (our
        // whole group) long enough to remove the stand-in's files.
        cmd.arg("-c")
            .arg(concat!(
                "exec 3<&0; \"$@\" </dev/null & child=$!; ",
                "(trap '' TERM; cat <&3 >/dev/null; kill -TERM 0; sleep 2; ",
                "[ -n \"$ZEROFN_CLEANUP\" ] && rm -rf \"$ZEROFN_CLEANUP\"; kill -KILL 0) & ",
                "exec 3<&-; wait $child"
            ))
            .arg("sh")
            .arg(program)
            .args(args)
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .envs(envs.iter().map(|(k, v)| (k, v)))
            .env(
                "ZEROFN_CLEANUP",
                cleanup.as_deref().map(|p| p.as_os_str()).unwrap_or_default(),
            )
            .stdin(Stdio::piped())
            .stdout(out)
            .stderr(err)
            .process_group(0);
        let child = cmd.spawn()?;
        Ok(Managed {
            name: name.to_string(),
            child,
            log,
            cleanup,
        })
    }

    pub fn log(&self) -> String {
        let mut s = String::new();
        if let Ok(mut f) = std::fs::File::open(&self.log) {
            let _ = f.read_to_string(&mut s);
        }
        s
    }

    /// Wait until `ready()` holds, failing with the process log if it exits
    /// or the deadline passes.
    pub fn wait_until(&mut self, timeout: Duration, mut ready: impl FnMut() -> bool) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        loop {
            if ready() {
                return Ok(());
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!(
                    "{} exited ({status}) before it was ready:\n{}",
                    self.name,
                    tail(&self.log())
                ));
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "{} not ready after {timeout:?}:\n{}",
                    self.name,
                    tail(&self.log())
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// SIGKILL the whole group now and reap it: a crash, not a shutdown.
    pub fn kill(&mut self) {
        self.signal_group("KILL");
        let _ = self.child.wait();
    }

    /// Whether the process is still running.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    fn signal_group(&self, signal: &str) {
        let _ = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg("--")
            .arg(format!("-{}", self.child.id()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

fn tail(s: &str) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

impl Drop for Managed {
    fn drop(&mut self) {
        self.signal_group("TERM");
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut exited = false;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                exited = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        if !exited {
            self.signal_group("KILL");
            let _ = self.child.wait();
        }
        if let Some(dir) = &self.cleanup {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Running (a zombie waiting for a parent that does not reap is dead).
    fn alive(pid: u32) -> bool {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|s| s.rsplit(')').next().map(|r| !r.trim_start().starts_with('Z')))
            .unwrap_or(false)
    }

    #[test]
    fn drop_stops_the_whole_group() {
        let log = std::env::temp_dir().join(format!("zerofn-proc-{}.log", free_port().unwrap()));
        // The stand-in spawns a grandchild; both must go.
        let mut m = Managed::spawn(
            "sleeper",
            Path::new("/bin/sh"),
            &[
                "-c",
                "sleep 300 & echo $! > \"$0\"; wait",
                log.with_extension("pid").to_str().unwrap(),
            ],
            &[],
            log.clone(),
            None,
        )
        .unwrap();
        let pidfile = log.with_extension("pid");
        m.wait_until(Duration::from_secs(5), || {
            pidfile.exists() && std::fs::read_to_string(&pidfile).is_ok_and(|s| !s.trim().is_empty())
        })
        .unwrap();
        let grandchild: u32 = std::fs::read_to_string(&pidfile).unwrap().trim().parse().unwrap();
        assert!(alive(grandchild));
        drop(m);
        std::thread::sleep(Duration::from_millis(200));
        assert!(!alive(grandchild), "grandchild {grandchild} survived");
        let _ = std::fs::remove_file(pidfile);
        let _ = std::fs::remove_file(log);
    }

    #[test]
    fn the_group_stops_when_its_owner_goes_away() {
        let log = std::env::temp_dir().join(format!("zerofn-proc-{}.log", free_port().unwrap()));
        let dir = std::env::temp_dir().join(format!("zerofn-proc-dir-{}", free_port().unwrap()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut m = Managed::spawn(
            "sleeper",
            Path::new("/bin/sleep"),
            &["300"],
            &[],
            log.clone(),
            Some(dir.clone()),
        )
        .unwrap();
        let leader = m.child.id();
        // What the kernel does when the test process exits: our end of the
        // stand-in's stdin closes.
        drop(m.child.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(5);
        while m.child.try_wait().unwrap().is_none() {
            assert!(Instant::now() < deadline, "group leader {leader} still running");
            std::thread::sleep(Duration::from_millis(50));
        }
        let deadline = Instant::now() + Duration::from_secs(6);
        while dir.exists() {
            assert!(Instant::now() < deadline, "{} was not removed", dir.display());
            std::thread::sleep(Duration::from_millis(100));
        }
        std::mem::forget(m); // its owner is "gone": no Drop cleanup
        let _ = std::fs::remove_file(log);
    }
}
