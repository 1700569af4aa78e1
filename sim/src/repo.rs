//! The checkout the stand-ins' installers (`testworld/`) live in, found when
//! the program runs. Never a path compiled in: a `zerofn-sim` built in one
//! tree and run in another (a copy, a CI cache, another clone) must install
//! into the checkout it is run from, or say plainly that it found none.

use std::path::{Path, PathBuf};

/// Names the checkout explicitly, like the `--repo` flag.
pub const ENV: &str = "ZEROFN_REPO";

/// A file every checkout has and nothing else is likely to.
const MARKER: &str = "testworld/aws/install.sh";

fn is_repo(dir: &Path) -> bool {
    dir.join(MARKER).is_file()
}

/// The checkout: `explicit` (a flag) if given, else `$ZEROFN_REPO`, else the
/// nearest directory holding `testworld/` above the current directory, else
/// above the running executable (`target/<profile>/` sits in the checkout).
/// A path given explicitly must be a checkout; nothing else is tried then.
pub fn locate(explicit: Option<&Path>) -> Result<PathBuf, String> {
    let named = explicit
        .map(|p| (p.to_path_buf(), "--repo".to_string()))
        .or_else(|| std::env::var_os(ENV).map(|p| (PathBuf::from(p), format!("${ENV}"))));
    if let Some((dir, source)) = named {
        return if is_repo(&dir) {
            Ok(dir)
        } else {
            Err(format!("{source}: {} holds no {MARKER}", dir.display()))
        };
    }
    let cwd = std::env::current_dir().ok();
    let exe = std::env::current_exe().ok();
    search([cwd.as_deref(), exe.as_deref()]).ok_or_else(|| {
        format!(
            "no zerofn checkout (a directory holding {MARKER}) above the current directory or this program; \
             run from the checkout, or name it with --repo or ${ENV}"
        )
    })
}

fn search<'a>(starts: impl IntoIterator<Item = Option<&'a Path>>) -> Option<PathBuf> {
    starts
        .into_iter()
        .flatten()
        .find_map(|start| start.ancestors().find(|d| is_repo(d)).map(Path::to_path_buf))
}

/// Run one of the checkout's installers (`bash <root>/<script>`), which
/// prints what it installed as its last line of stdout.
pub fn run_installer(root: &Path, script: &str) -> Result<PathBuf, String> {
    let script = root.join(script);
    let out = std::process::Command::new("bash")
        .arg(&script)
        .output()
        .map_err(|e| format!("{}: {e}", script.display()))?;
    if !out.status.success() {
        return Err(format!(
            "{} failed:\n{}{}",
            script.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let last = String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .unwrap_or_default()
        .trim()
        .to_string();
    if last.is_empty() {
        return Err(format!("{} printed no path", script.display()));
    }
    Ok(PathBuf::from(last))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake_checkout(name: &str) -> PathBuf {
        let root = std::env::temp_dir().join(format!(
            "zerofn-repo-{name}-{}-{:08x}",
            std::process::id(),
            fastrand::u32(..)
        ));
        std::fs::create_dir_all(root.join("testworld/aws")).unwrap();
        std::fs::create_dir_all(root.join("target/debug/deps")).unwrap();
        std::fs::write(root.join(MARKER), "").unwrap();
        root
    }

    #[test]
    fn the_nearest_checkout_above_a_start_is_found() {
        let root = fake_checkout("found");
        let deep = root.join("target/debug/deps");
        assert_eq!(search([None, Some(deep.as_path())]), Some(root.clone()));
        // The first start that lies in a checkout wins.
        let elsewhere = std::env::temp_dir();
        assert_eq!(
            search([Some(deep.as_path()), Some(elsewhere.as_path())]),
            Some(root.clone())
        );
        std::fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn no_checkout_above_the_starts_is_none() {
        let root = fake_checkout("none");
        std::fs::remove_file(root.join(MARKER)).unwrap();
        assert_eq!(search([Some(root.join("target/debug").as_path())]), None);
        std::fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn an_explicit_path_must_be_a_checkout() {
        let root = fake_checkout("explicit");
        assert_eq!(locate(Some(&root)), Ok(root.clone()));
        let sub = root.join("target");
        let e = locate(Some(&sub)).unwrap_err();
        assert!(e.starts_with("--repo: ") && e.contains(MARKER), "{e}");
        std::fs::remove_dir_all(root).unwrap();
    }
}
