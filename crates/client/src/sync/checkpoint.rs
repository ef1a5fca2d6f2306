//! The collector's checkpoint: everything it needs to resume with nothing lost or repeated,
//! saved atomically after every page.

use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};

/// A window of `viewed` times being collected, both ends inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    /// First second.
    pub start: i64,
    /// Last second.
    pub end: i64,
}

/// How far the walk through the current window has come (records arrive newest first).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    /// The `viewed` second of the oldest record handled so far.
    pub viewed: i64,
    /// Fingerprints of the records handled at exactly that second.
    pub fingerprints: Vec<String>,
}

/// Where the file output stood when the checkpoint was saved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputPosition {
    /// The file written to.
    pub file: PathBuf,
    /// Its length after the last saved page; anything beyond is a page in flight.
    pub len: u64,
    /// How many times it has been rotated.
    pub rotation: u64,
    /// Set while a rotation is under way (the file is being renamed to `.{rotation}`).
    #[serde(default)]
    pub rotating: bool,
}

/// A fingerprint remembered for de-duplication across overlapping windows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seen {
    /// The record's `viewed` second.
    pub viewed: i64,
    /// Its fingerprint.
    pub fingerprint: String,
}

/// The whole saved state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Checkpoint {
    /// The format's version.
    pub version: u32,
    /// The base URL and query this checkpoint belongs to (a checkpoint is not reused for another).
    pub source: String,
    /// The end of the last completed window: every record viewed up to it was collected
    /// (apart from late events outside the overlap). `None` until the first window completes.
    pub high_water: Option<i64>,
    /// The window in progress.
    pub window: Option<Window>,
    /// The page token of the next page of the window in progress.
    pub page_token: Option<String>,
    /// The walk's position within the window in progress.
    pub cursor: Option<Cursor>,
    /// Fingerprints of records written whose `viewed` falls in the overlap of the next window.
    pub recent: Vec<Seen>,
    /// The file output's position.
    pub output: Option<OutputPosition>,
    /// Records written in all.
    pub written: u64,
    /// Records dropped as repeats in all.
    pub repeats: u64,
}

/// The checkpoint file's format version.
pub const VERSION: u32 = 1;

impl Checkpoint {
    /// Reads a checkpoint; `None` if the file does not exist.
    pub fn load(path: &Path) -> std::io::Result<Option<Checkpoint>> {
        match std::fs::read(path) {
            Ok(bytes) => {
                let cp: Checkpoint = serde_json::from_slice(&bytes).map_err(|e| {
                    std::io::Error::new(std::io::ErrorKind::InvalidData, format!("checkpoint {}: {e}", path.display()))
                })?;
                if cp.version != VERSION {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!("checkpoint {} has version {}, expected {VERSION}", path.display(), cp.version),
                    ));
                }
                Ok(Some(cp))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Saves atomically: written to a temporary file, flushed to disk, renamed over the old one,
    /// and the directory flushed, so a crash leaves either the old or the new checkpoint.
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        let tmp = tmp_path(path);
        {
            let mut file = std::fs::File::create(&tmp)?;
            file.write_all(&serde_json::to_vec(self).map_err(std::io::Error::other)?)?;
            file.sync_all()?;
        }
        std::fs::rename(&tmp, path)?;
        sync_dir(path)
    }
}

fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".tmp");
    path.with_file_name(name)
}

/// Flushes the directory holding `path`, so a rename in it is durable.
pub fn sync_dir(path: &Path) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    #[cfg(unix)]
    std::fs::File::open(dir)?.sync_all()?;
    let _ = dir;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saves_and_loads_atomically() {
        let dir = std::env::temp_dir().join(format!("viewlog-cp-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("sync.checkpoint");
        assert_eq!(Checkpoint::load(&path).unwrap(), None);
        let cp = Checkpoint { version: VERSION, high_water: Some(5), written: 3, ..Default::default() };
        cp.save(&path).unwrap();
        assert_eq!(Checkpoint::load(&path).unwrap(), Some(cp));
        assert!(!tmp_path(&path).exists());
        std::fs::write(&path, b"{not json").unwrap();
        assert!(Checkpoint::load(&path).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
