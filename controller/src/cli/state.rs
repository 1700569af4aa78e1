//! `--state FILE`: where the CLI keeps the identities it minted, so a later
//! run can prove them (the controller keeps them in the posture's status).
//!
//! The file is JSON, `{"postures": {"<owner>": [{"principal", "uniqueId"}]},
//! "intents": {"<owner>": [{"principal", "nonce", "at"}]}}` keyed by the
//! posture's owner marker (the intents are the write-ahead records of
//! identities about to be created, as in the posture's status). Every record is written before the
//! next action runs (`engine::MintLog`), atomically: a temporary file in the
//! same directory, flushed to disk, then renamed over the old one, so a crash
//! leaves the old file or the new one, never half of one.

use crate::engine::{MintLog, record_intents, record_minted};
use crate::providers::{MintIntent, MintedIdentity};
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

#[derive(Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Stored {
    postures: BTreeMap<String, Vec<MintedIdentity>>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    intents: BTreeMap<String, Vec<MintIntent>>,
}

pub struct StateFile {
    path: PathBuf,
    records: Mutex<Stored>,
}

impl StateFile {
    /// Read the records; a file that does not exist yet holds none. An
    /// unreadable or malformed file is an error naming it and the field.
    pub fn open(path: &Path) -> Result<StateFile, String> {
        let stored = match std::fs::read(path) {
            Ok(bytes) => {
                let de = &mut serde_json::Deserializer::from_slice(&bytes);
                serde_path_to_error::deserialize(de)
                    .map_err(|e| format!("{}: {}: {}", path.display(), e.path(), e.inner()))?
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Stored::default(),
            Err(e) => return Err(format!("{}: {e}", path.display())),
        };
        Ok(StateFile {
            path: path.to_path_buf(),
            records: Mutex::new(stored),
        })
    }

    /// What zerofn minted for the posture with this owner marker.
    pub fn minted(&self, owner: &str) -> Vec<MintedIdentity> {
        self.lock().postures.get(owner).cloned().unwrap_or_default()
    }

    /// The write-ahead records kept for the posture with this owner marker.
    pub fn intents(&self, owner: &str) -> Vec<MintIntent> {
        self.lock().intents.get(owner).cloned().unwrap_or_default()
    }

    /// The log one posture's enforcement records its mints in.
    pub fn log(self: &Arc<Self>, owner: &str) -> PostureLog {
        PostureLog {
            file: self.clone(),
            owner: owner.to_string(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Stored> {
        self.records.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Add records and write the whole file; the records stay in memory
    /// only once they are on disk.
    fn record(&self, owner: &str, new: &[MintedIdentity]) -> Result<(), String> {
        self.update(|s| record_minted(s.postures.entry(owner.to_string()).or_default(), new))
    }

    fn intend(&self, owner: &str, intent: &MintIntent) -> Result<(), String> {
        self.update(|s| {
            record_intents(
                s.intents.entry(owner.to_string()).or_default(),
                std::slice::from_ref(intent),
            )
        })
    }

    /// Change a copy of the records and write the whole file; the change is
    /// kept in memory only once it is on disk.
    fn update(&self, change: impl FnOnce(&mut Stored)) -> Result<(), String> {
        let mut stored = self.lock();
        let mut next = Stored {
            postures: stored.postures.clone(),
            intents: stored.intents.clone(),
        };
        change(&mut next);
        let text = serde_json::to_vec_pretty(&next).map_err(|e| e.to_string())?;
        write_atomically(&self.path, &text).map_err(|e| format!("{}: {e}", self.path.display()))?;
        *stored = next;
        Ok(())
    }
}

fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let written = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        // The rename itself is durable once the directory is.
        std::fs::File::open(dir)?.sync_all()
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

/// One posture's view of the state file.
pub struct PostureLog {
    file: Arc<StateFile>,
    owner: String,
}

impl MintLog for PostureLog {
    fn record<'a>(&'a self, minted: &'a [MintedIdentity]) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move { self.file.record(&self.owner, minted) })
    }

    fn intend<'a>(&'a self, intent: &'a MintIntent) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move { self.file.intend(&self.owner, intent) })
    }

    // The CLI deletes nothing: no ownership marker needs a record.
    fn writing(&self) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async { Ok(()) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::FutureExt;

    fn id(n: u8) -> MintedIdentity {
        MintedIdentity {
            principal: format!("arn:aws:iam::123456789012:role/zerofn/r{n}"),
            unique_id: format!("AROA{n}"),
        }
    }

    /// A fresh directory (removed when the guard drops) and the state file's path in it.
    fn temp() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        (dir, path)
    }

    #[test]
    fn records_survive_a_reopen_and_leave_no_temporary_file() {
        let (_dir, path) = temp();
        let file = Arc::new(StateFile::open(&path).unwrap());
        assert!(file.minted("c/ns/a").is_empty());
        file.log("c/ns/a").record(&[id(1)]).now_or_never().unwrap().unwrap();
        file.log("c/ns/a")
            .record(&[id(1), id(2)])
            .now_or_never()
            .unwrap()
            .unwrap();
        file.log("c/ns/b").record(&[id(3)]).now_or_never().unwrap().unwrap();
        let intent = MintIntent {
            principal: "arn:aws:iam::123456789012:role/zerofn/r4".into(),
            nonce: "n".into(),
            at: "2026-12-03T00:00:00Z".into(),
        };
        file.log("c/ns/a").intend(&intent).now_or_never().unwrap().unwrap();
        let again = StateFile::open(&path).unwrap();
        assert_eq!(again.intents("c/ns/a"), vec![intent]);
        assert_eq!(again.minted("c/ns/a"), vec![id(1), id(2)]);
        assert_eq!(again.minted("c/ns/b"), vec![id(3)]);
        let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("state.json")]);
    }

    #[test]
    fn a_malformed_file_is_refused_naming_the_file_and_field() {
        let (_dir, path) = temp();
        std::fs::write(&path, r#"{"postures": {"c/ns/a": [{"principal": "r"}]}}"#).unwrap();
        let Err(e) = StateFile::open(&path) else {
            panic!("a record without uniqueId was accepted")
        };
        assert!(
            e.contains("state.json") && e.contains("postures.c/ns/a[0]") && e.contains("uniqueId"),
            "{e}"
        );
    }

    #[test]
    fn a_failed_write_keeps_nothing_in_memory() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing-dir").join("state.json");
        let file = Arc::new(StateFile::open(&path).unwrap());
        assert!(file.log("c/ns/a").record(&[id(1)]).now_or_never().unwrap().is_err());
        assert!(file.minted("c/ns/a").is_empty());
    }
}
