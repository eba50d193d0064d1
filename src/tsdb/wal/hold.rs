//! Keeping WAL segments that readers of the WAL (remote-write queues) have
//! not finished with, so a checkpoint does not delete data they still have
//! to send.
//!
//! Each reader registers the lowest segment it still needs. Before a
//! checkpoint deletes segments, those at or above the lowest need are
//! hard-linked into `wal/remote_hold/` (same file system: no copy), where
//! replay never looks; readers find a segment in `wal/` or there. Held
//! segments are deleted as soon as no reader needs them. The held bytes are
//! capped ([`crate::tsdb::Options::wal_hold_max_bytes`]): past the cap the
//! oldest held segments are deleted anyway, and a reader that needed them
//! skips to the oldest segment left (and logs what it lost), so a receiver
//! that stays down forever cannot fill the disk.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::{list_segments, segment_path};

/// The folder under the WAL directory that holds kept segments.
pub const HOLD_DIR: &str = "remote_hold";

/// Segments kept for readers, and what each reader needs.
pub struct SegmentHold {
    wal_dir: PathBuf,
    max_bytes: u64,
    needs: Mutex<BTreeMap<String, u32>>,
}

impl SegmentHold {
    /// A hold for the WAL in `wal_dir`, keeping at most `max_bytes`.
    pub fn new(wal_dir: &Path, max_bytes: u64) -> SegmentHold {
        SegmentHold { wal_dir: wal_dir.to_path_buf(), max_bytes, needs: Mutex::new(BTreeMap::new()) }
    }

    pub fn wal_dir(&self) -> &Path {
        &self.wal_dir
    }

    fn hold_dir(&self) -> PathBuf {
        self.wal_dir.join(HOLD_DIR)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, u32>> {
        self.needs.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records that `reader` needs segments from `segment` on, and deletes
    /// held segments nobody needs any more.
    pub fn set_need(&self, reader: &str, segment: u32) {
        let mut needs = self.lock();
        needs.insert(reader.to_string(), segment);
        self.prune(&needs);
    }

    /// Forgets `reader` (its queue was removed).
    pub fn release(&self, reader: &str) {
        let mut needs = self.lock();
        needs.remove(reader);
        self.prune(&needs);
    }

    /// Called before segments up to `upto` are deleted: links those still
    /// needed into the hold, then applies the size cap.
    pub(crate) fn preserve(&self, upto: u32) -> io::Result<()> {
        let needs = self.lock();
        let Some(&lowest) = needs.values().min() else { return Ok(()) };
        let hold = self.hold_dir();
        for s in list_segments(&self.wal_dir)?.into_iter().filter(|&s| s >= lowest && s <= upto) {
            fs::create_dir_all(&hold)?;
            let to = segment_path(&hold, s);
            if !to.exists() {
                fs::hard_link(segment_path(&self.wal_dir, s), &to)
                    .or_else(|_| fs::copy(segment_path(&self.wal_dir, s), &to).map(|_| ()))?;
            }
        }
        self.prune(&needs);
        Ok(())
    }

    /// Deletes held segments below every need, then the oldest ones while
    /// over the cap.
    fn prune(&self, needs: &BTreeMap<String, u32>) {
        let hold = self.hold_dir();
        let Ok(held) = list_segments(&hold) else { return };
        let lowest = needs.values().min().copied().unwrap_or(u32::MAX);
        let mut kept: Vec<(u32, u64)> = Vec::new();
        for s in held {
            let p = segment_path(&hold, s);
            if s < lowest {
                remove(&p);
            } else {
                kept.push((s, fs::metadata(&p).map_or(0, |m| m.len())));
            }
        }
        let mut total: u64 = kept.iter().map(|k| k.1).sum();
        for (s, size) in kept {
            if total <= self.max_bytes {
                break;
            }
            tracing::warn!(
                segment = s,
                cap_bytes = self.max_bytes,
                "WAL segments held for remote write exceed the cap; deleting the oldest"
            );
            remove(&segment_path(&hold, s));
            total -= size;
        }
    }

    /// The file of segment `s`, live or held.
    pub fn segment_file(&self, s: u32) -> Option<PathBuf> {
        [segment_path(&self.wal_dir, s), segment_path(&self.hold_dir(), s)].into_iter().find(|p| p.exists())
    }

    /// Every segment that can still be read, live or held, in order.
    pub fn segments(&self) -> io::Result<Vec<u32>> {
        let mut all = list_segments(&self.wal_dir)?;
        if let Ok(held) = list_segments(&self.hold_dir()) {
            all.extend(held);
        }
        all.sort_unstable();
        all.dedup();
        Ok(all)
    }
}

fn remove(p: &Path) {
    if let Err(e) = fs::remove_file(p)
        && e.kind() != io::ErrorKind::NotFound
    {
        tracing::warn!(file = %p.display(), error = %e, "cannot delete a held WAL segment");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(dir: &Path, s: u32, bytes: usize) {
        fs::write(segment_path(dir, s), vec![0u8; bytes]).expect("write segment");
    }

    #[test]
    fn needed_segments_survive_deletion_until_released() {
        let dir = tempfile::tempdir().expect("tempdir");
        for s in 1..=4 {
            seg(dir.path(), s, 10);
        }
        let hold = SegmentHold::new(dir.path(), 1 << 20);
        hold.set_need("q", 2);
        hold.preserve(3).expect("preserve");
        for s in 1..=3 {
            fs::remove_file(segment_path(dir.path(), s)).expect("checkpoint deletes");
        }
        assert_eq!(hold.segments().expect("list"), vec![2, 3, 4]);
        assert!(hold.segment_file(2).is_some_and(|p| p.starts_with(dir.path().join(HOLD_DIR))));
        hold.set_need("q", 3);
        assert_eq!(hold.segments().expect("list"), vec![3, 4]);
        hold.release("q");
        assert_eq!(hold.segments().expect("list"), vec![4]);
    }

    #[test]
    fn the_cap_deletes_the_oldest_held_segments() {
        let dir = tempfile::tempdir().expect("tempdir");
        for s in 1..=4 {
            seg(dir.path(), s, 100);
        }
        let hold = SegmentHold::new(dir.path(), 250);
        hold.set_need("q", 1);
        hold.preserve(4).expect("preserve");
        assert_eq!(list_segments(&dir.path().join(HOLD_DIR)).expect("list"), vec![3, 4]);
    }
}
