//! Change detection for one file by polling, without inotify.
//!
//! Kubernetes mounts a ConfigMap or Secret key as a symlink chain
//! (`file -> ..data/file`, `..data -> ..2024_xx`) and updates it by swapping
//! `..data` atomically, so watching the path's own inode misses updates and
//! directory events are noisy. Polling the metadata of the file the chain
//! resolves to catches every swap cheaply; hashing the content then confirms
//! that something really changed, so a `touch` or a swap to identical content
//! reports nothing.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use xxhash_rust::xxh3::xxh3_64;

/// A file modified this recently may change again without its metadata
/// changing (coarse timestamps: a few ms on Linux, 2 s on FAT), so its content
/// is re-hashed on every poll until it is older than this.
const RACY_WINDOW: Duration = Duration::from_secs(2);

/// Polls one path (following symlinks) for content changes.
#[derive(Debug)]
pub struct FileWatch {
    path: PathBuf,
    /// `None` until the first call records the baseline.
    last: Option<Seen>,
}

/// What the last poll saw.
#[derive(Debug)]
struct Seen {
    /// Metadata of the resolved file; `None` when the path did not resolve.
    stamp: Option<Stamp>,
    /// Hash of the content; `None` when it could not be read.
    hash: Option<u64>,
    /// The stamp is too recent to prove that the content did not change since.
    racy: bool,
}

/// Metadata that changes whenever the content does (save within one timestamp tick).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp {
    /// Device and inode: a different file after a rename or symlink swap.
    #[cfg(unix)]
    file_id: (u64, u64),
    len: u64,
    modified: Option<SystemTime>,
    /// Inode change time: catches writers that restore mtime (`cp -p`, `rsync -t`).
    #[cfg(unix)]
    changed: Option<SystemTime>,
}

impl Stamp {
    fn of(meta: &std::fs::Metadata) -> Stamp {
        #[cfg(unix)]
        use std::os::unix::fs::MetadataExt;
        Stamp {
            #[cfg(unix)]
            file_id: (meta.dev(), meta.ino()),
            len: meta.len(),
            modified: meta.modified().ok(),
            #[cfg(unix)]
            changed: u64::try_from(meta.ctime())
                .ok()
                .zip(u32::try_from(meta.ctime_nsec()).ok())
                .and_then(|(secs, nanos)| SystemTime::UNIX_EPOCH.checked_add(Duration::new(secs, nanos))),
        }
    }

    /// Whether a write may still follow without changing this stamp: some
    /// timestamp is within one (coarse) tick of now, in the future (clock
    /// skew), or unknown.
    fn is_racy(&self, now: SystemTime) -> bool {
        let recent = |t: Option<SystemTime>| t.is_none_or(|t| now.duration_since(t).map_or(true, |age| age < RACY_WINDOW));
        #[cfg(unix)]
        if recent(self.changed) {
            return true;
        }
        recent(self.modified)
    }
}

impl FileWatch {
    /// Watches `path`; nothing is read until the first [`FileWatch::changed`].
    pub fn new(path: PathBuf) -> FileWatch {
        FileWatch { path, last: None }
    }

    /// True when the content differs from what the previous call saw (a file
    /// appearing or disappearing counts); the first call records the baseline
    /// and returns false. Unchanged metadata costs one `stat`.
    pub fn changed(&mut self) -> bool {
        let now = SystemTime::now();
        let stamp = std::fs::metadata(&self.path).ok().map(|m| Stamp::of(&m));
        if self.last.as_ref().is_some_and(|last| !last.racy && last.stamp == stamp) {
            return false;
        }
        let hash = std::fs::read(&self.path).ok().map(|content| xxh3_64(&content));
        let racy = stamp.as_ref().is_some_and(|s| s.is_racy(now));
        let previous = self.last.replace(Seen { stamp, hash, racy });
        previous.is_some_and(|p| p.hash != hash)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_content_changes_only() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("targets.json");
        std::fs::write(&path, "[1]").expect("write");
        let mut watch = FileWatch::new(path.clone());
        assert!(!watch.changed(), "the first call is the baseline");
        assert!(!watch.changed());
        // Same length, written right away: only the content hash can tell.
        std::fs::write(&path, "[2]").expect("write");
        assert!(watch.changed());
        assert!(!watch.changed());
        std::fs::write(&path, "[2]").expect("rewrite identical");
        assert!(!watch.changed(), "rewriting identical content is no change");
        std::fs::remove_file(&path).expect("remove");
        assert!(watch.changed(), "disappearing is a change");
        assert!(!watch.changed());
        std::fs::write(&path, "[2]").expect("recreate");
        assert!(watch.changed(), "appearing is a change");
    }

    #[test]
    fn baseline_of_a_missing_file_is_absence() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut watch = FileWatch::new(dir.path().join("later.yml"));
        assert!(!watch.changed());
        assert!(!watch.changed());
    }

    #[test]
    fn recent_or_future_timestamps_are_racy() {
        let now = SystemTime::now();
        let hour = Duration::from_secs(3600);
        let stamp = |modified, changed| Stamp {
            #[cfg(unix)]
            file_id: (1, 1),
            len: 1,
            modified: Some(modified),
            #[cfg(unix)]
            changed: Some(changed),
        };
        assert!(!stamp(now - hour, now - hour).is_racy(now));
        assert!(stamp(now, now).is_racy(now));
        assert!(stamp(now + hour, now + hour).is_racy(now));
        #[cfg(unix)]
        assert!(stamp(now - hour, now).is_racy(now), "mtime put back, but the inode just changed");
    }
}
