//! Tailing our own WAL for a remote-write queue, and the queue's persisted
//! read position.
//!
//! A queue reads every record after its position: series records (id →
//! labels) and sample records, from live segments in `wal/` or segments
//! kept for it in `wal/remote_hold/` (see [`crate::tsdb::wal::hold`]). The
//! position saved in `<data>/remote_write/<queue>.position` is that of the
//! last record whose samples were all delivered (sent, or dropped for
//! good), so a restart resumes exactly there: samples sent are not sent
//! again after a clean stop, and none are skipped after any stop. After a
//! crash, what was sent since the last save (at most one save interval) is
//! sent again.
//!
//! The labels of series created before the position come from the newest
//! checkpoint and the segments before the position ([`load_series`]).

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::model::Labels;
use crate::tsdb::wal::checkpoint;
use crate::tsdb::wal::hold::SegmentHold;
use crate::tsdb::wal::reader::{self, record_at};
use crate::tsdb::wal::record::{self, HEADER_LEN, RecordType, RefSample};
use crate::tsdb::wal::{list_segments, segment_path};

/// Bytes read from a segment at a time (grown for a larger record).
const READ_WINDOW: usize = 4 << 20;

/// A place in the WAL: a segment and a byte offset in it, always at a
/// record boundary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Position {
    pub segment: u32,
    pub offset: u64,
}

/// The saved position of one queue.
pub struct PositionFile {
    path: PathBuf,
}

impl PositionFile {
    /// The position file of queue `name` under the data directory.
    pub fn new(data_dir: &Path, name: &str) -> PositionFile {
        // Queue names may hold any character; the file name is a hash.
        let hash = xxhash_rust::xxh3::xxh3_64(name.as_bytes());
        PositionFile { path: data_dir.join("remote_write").join(format!("{hash:016x}.position")) }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The saved position, if any. A damaged file counts as none.
    pub fn load(&self) -> Option<Position> {
        let text = fs::read_to_string(&self.path).ok()?;
        let mut f = text.split_whitespace();
        let pos = Position { segment: f.next()?.parse().ok()?, offset: f.next()?.parse().ok()? };
        if pos.segment == 0 {
            return None;
        }
        Some(pos)
    }

    /// Saves atomically (write aside, sync, then rename).
    pub fn store(&self, pos: Position) -> io::Result<()> {
        if let Some(dir) = self.path.parent() {
            fs::create_dir_all(dir)?;
        }
        let tmp = self.path.with_extension("position.tmp");
        let mut f = File::create(&tmp)?;
        f.write_all(format!("{} {}\n", pos.segment, pos.offset).as_bytes())?;
        // Synced before the rename: after a power loss the file holds an old
        // position or the new one, never nothing.
        f.sync_data()?;
        fs::rename(&tmp, &self.path)
    }

    /// Deletes the file (the queue was removed from the configuration).
    pub fn remove(&self) {
        let _ = fs::remove_file(&self.path);
    }
}

/// The end of the WAL now: where a new queue starts (like Prometheus, a new
/// queue sends what is written from its start on).
pub fn wal_end(hold: &SegmentHold) -> io::Result<Position> {
    let Some(&segment) = hold.segments()?.last() else {
        return Ok(Position { segment: 1, offset: 0 });
    };
    let offset = hold.segment_file(segment).and_then(|p| fs::metadata(p).ok()).map_or(0, |m| m.len());
    Ok(Position { segment, offset })
}

/// What the tail read.
pub enum Event<'a> {
    /// A series record: its id, labels and segment.
    Series(u32, Labels, u32),
    /// The samples of one record.
    Samples(&'a [RefSample]),
    /// A checkpoint up to segment `upto` was found, holding the series in
    /// `live`; series read from segments up to `upto` and missing from it
    /// are gone from the head.
    Checkpoint { upto: u32, live: HashSet<u32> },
}

/// Calls `f` for every series record before `upto`: in the newest
/// checkpoint, then in the segments before it. Returns how many it found.
pub fn load_series(hold: &SegmentHold, upto: Position, mut f: impl FnMut(u32, Labels, u32)) -> io::Result<usize> {
    let mut files: Vec<(PathBuf, u32, u64)> = Vec::new();
    if let Some((n, dir)) = checkpoint::last(hold.wal_dir())? {
        for s in list_segments(&dir)? {
            files.push((segment_path(&dir, s), n, u64::MAX));
        }
    }
    for s in hold.segments()?.into_iter().filter(|&s| s <= upto.segment) {
        let limit = if s == upto.segment { upto.offset } else { u64::MAX };
        if let Some(p) = hold.segment_file(s) {
            files.push((p, s, limit));
        }
    }
    let mut n = 0;
    for (path, seg, limit) in files {
        let scan = match reader::scan(std::slice::from_ref(&path), false) {
            Ok(s) => s,
            // Deleted between listing and reading: a checkpoint replaced it.
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        for r in scan.records.iter().filter(|r| r.typ == RecordType::Series && (r.start as u64) < limit) {
            let _ = record::decode_series(scan.payload(r), |id, l| {
                n += 1;
                f(id, l, seg);
            });
        }
    }
    Ok(n)
}

/// Reads the WAL forward from a position.
pub struct Tail {
    hold: Arc<SegmentHold>,
    pos: Position,
    file: Option<(u32, File)>,
    buf: Vec<u8>,
    samples: Vec<RefSample>,
    last_checkpoint: Option<u32>,
}

/// Whether a poll reached the end of what has been written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// Stopped after the byte budget; more is waiting.
    More,
    /// Caught up with the writer.
    CaughtUp,
}

impl Tail {
    pub fn new(hold: Arc<SegmentHold>, pos: Position) -> Tail {
        let last_checkpoint = checkpoint::last(hold.wal_dir()).ok().flatten().map(|(n, _)| n);
        Tail { hold, pos, file: None, buf: Vec::new(), samples: Vec::new(), last_checkpoint }
    }

    /// Where the next read starts.
    pub fn position(&self) -> Position {
        self.pos
    }

    /// Reads up to about `budget` bytes of records, calling `f` with each
    /// and the position right after it.
    pub fn poll(&mut self, budget: usize, mut f: impl FnMut(Event<'_>, Position)) -> io::Result<Progress> {
        let mut used = 0usize;
        loop {
            if used >= budget {
                return Ok(Progress::More);
            }
            let segments = self.hold.segments()?;
            // A newer segment means this one is complete: the writer finishes
            // a segment before creating the next.
            let next = segments.iter().copied().find(|&s| s > self.pos.segment);
            if !self.open()? {
                match next {
                    Some(n) => {
                        tracing::warn!(
                            missing = self.pos.segment,
                            resume = n,
                            "WAL segment gone before remote write sent it; skipping to the next"
                        );
                        self.move_to(n, &mut f);
                        continue;
                    }
                    None => return Ok(Progress::CaughtUp),
                }
            }
            let Some((_, file)) = &self.file else { return Ok(Progress::CaughtUp) };
            let len = file.metadata()?.len();
            if self.pos.offset >= len {
                match next {
                    Some(n) => {
                        self.move_to(n, &mut f);
                        continue;
                    }
                    None => return Ok(Progress::CaughtUp),
                }
            }
            let left = len - self.pos.offset;
            let want = (left as usize).min(READ_WINDOW.max(self.buf.capacity()));
            self.buf.resize(want, 0);
            let got = read_full_at(file, &mut self.buf, self.pos.offset)?;
            self.buf.truncate(got);
            let consumed = self.parse(&mut f);
            used += consumed.max(1);
            if consumed > 0 {
                continue;
            }
            // Nothing complete at the position. A record larger than the
            // window needs a larger one.
            let buf = &self.buf;
            let needed = (buf.len() >= HEADER_LEN).then(|| HEADER_LEN + u32::from_le_bytes([buf[1], buf[2], buf[3], buf[4]]) as usize);
            if let Some(n) = needed
                && n > buf.len()
                && (n as u64) <= left
            {
                self.buf.reserve(n);
                continue;
            }
            if next.is_none() {
                // The writer may be mid-record.
                return Ok(Progress::CaughtUp);
            }
            // A complete segment with damage: skip to the next record that verifies.
            let skip = (1..self.buf.len()).find(|&o| record_at(&self.buf, o).is_some()).unwrap_or((self.buf.len() / 2).max(1));
            tracing::warn!(segment = self.pos.segment, offset = self.pos.offset, bytes = skip, "skipping damaged WAL bytes");
            self.pos.offset += skip as u64;
        }
    }

    /// Hands out the complete records at the start of the buffer; returns the bytes consumed.
    fn parse(&mut self, f: &mut impl FnMut(Event<'_>, Position)) -> usize {
        let mut off = 0;
        let seg = self.pos.segment;
        while let Some((typ, len)) = record_at(&self.buf, off) {
            let payload = &self.buf[off + HEADER_LEN..off + HEADER_LEN + len];
            off += HEADER_LEN + len;
            let after = Position { segment: seg, offset: self.pos.offset + off as u64 };
            match typ {
                RecordType::Series => {
                    let mut series = Vec::new();
                    if let Err(e) = record::decode_series(payload, |id, l| series.push((id, l))) {
                        tracing::warn!(segment = seg, error = %e, "undecodable series record in the WAL");
                    }
                    if series.is_empty() {
                        f(Event::Samples(&[]), after);
                    }
                    for (id, l) in series {
                        f(Event::Series(id, l, seg), after);
                    }
                }
                RecordType::Samples => {
                    self.samples.clear();
                    if let Err(e) = record::decode_samples(payload, |s| self.samples.push(s)) {
                        tracing::warn!(segment = seg, error = %e, "undecodable samples record in the WAL");
                    }
                    f(Event::Samples(&self.samples), after);
                }
                RecordType::Tombstones => f(Event::Samples(&[]), after),
            }
        }
        self.pos.offset += off as u64;
        off
    }

    /// Opens the segment at the position unless open; false if it is gone.
    fn open(&mut self) -> io::Result<bool> {
        if self.file.as_ref().is_none_or(|(s, _)| *s != self.pos.segment) {
            self.file = None;
            let Some(path) = self.hold.segment_file(self.pos.segment) else { return Ok(false) };
            match File::open(&path) {
                Ok(f) => self.file = Some((self.pos.segment, f)),
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }

    /// Moves to segment `n`, first reporting a checkpoint that appeared.
    fn move_to(&mut self, n: u32, f: &mut impl FnMut(Event<'_>, Position)) {
        self.pos = Position { segment: n, offset: 0 };
        self.file = None;
        let Ok(Some((cp, dir))) = checkpoint::last(self.hold.wal_dir()) else { return };
        if self.last_checkpoint.is_some_and(|l| l >= cp) || cp >= n {
            return;
        }
        self.last_checkpoint = Some(cp);
        let mut live = HashSet::new();
        let files: Vec<PathBuf> = list_segments(&dir).unwrap_or_default().into_iter().map(|s| segment_path(&dir, s)).collect();
        let Ok(scan) = reader::scan(&files, false) else { return };
        for r in scan.records.iter().filter(|r| r.typ == RecordType::Series) {
            let _ = record::decode_series_pairs(scan.payload(r), |id, _| {
                live.insert(id);
            });
        }
        f(Event::Checkpoint { upto: cp, live }, self.pos);
    }
}

/// Reads until `buf` is full or the end of the file.
fn read_full_at(file: &File, buf: &mut [u8], mut off: u64) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match file.read_at(&mut buf[got..], off) {
            Ok(0) => break,
            Ok(n) => {
                got += n;
                off += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tsdb::wal::{Wal, WalObserver};

    struct NoObserver;
    impl WalObserver for NoObserver {
        fn fsync_done(&self, _: f64) {}
        fn segment_cut(&self) {}
    }

    fn wal(dir: &Path) -> Wal {
        Wal::open(dir, 1 << 20, false, Box::new(NoObserver)).expect("open wal")
    }

    /// Reads everything from `pos`: (series ids seen, sample timestamps, end position).
    fn drain(hold: &Arc<SegmentHold>, pos: Position) -> (Vec<u32>, Vec<i64>, Position) {
        let mut tail = Tail::new(hold.clone(), pos);
        let (mut ids, mut ts) = (Vec::new(), Vec::new());
        while tail
            .poll(1 << 20, |e, _| match e {
                Event::Series(id, _, _) => ids.push(id),
                Event::Samples(s) => ts.extend(s.iter().map(|s| s.t)),
                Event::Checkpoint { .. } => {}
            })
            .expect("poll")
            == Progress::More
        {}
        (ids, ts, tail.position())
    }

    #[test]
    fn resumes_from_a_saved_position_without_loss_or_repeat() {
        let dir = tempfile::tempdir().expect("tempdir");
        let wal_dir = dir.path().join("wal");
        let w = wal(&wal_dir);
        let hold = Arc::new(SegmentHold::new(&wal_dir, 1 << 30));
        let up = Labels::from_pairs([("__name__", "up")]);
        w.log_series(1, &up).expect("series");
        w.log_samples(&[RefSample { id: 1, t: 1, v: 1.0 }, RefSample { id: 1, t: 2, v: 1.0 }]).expect("samples");
        let (ids, ts, pos) = drain(&hold, Position { segment: 1, offset: 0 });
        assert_eq!((ids, ts), (vec![1], vec![1, 2]));

        // Save, "restart" (new WAL segment as after a restart, new tail), resume.
        let file = PositionFile::new(dir.path(), "q");
        file.store(pos).expect("store");
        w.log_samples(&[RefSample { id: 1, t: 3, v: 1.0 }]).expect("samples");
        drop(w);
        let w = wal(&wal_dir);
        w.log_samples(&[RefSample { id: 1, t: 4, v: 1.0 }]).expect("samples");
        let resumed = file.load().expect("saved position");
        assert_eq!(resumed, pos);
        let (ids, ts, _) = drain(&hold, resumed);
        assert_eq!((ids, ts), (vec![], vec![3, 4]), "exactly the samples after the position, across segments");

        // The labels of series logged before the position are found.
        let mut known = Vec::new();
        load_series(&hold, resumed, |id, l, _| known.push((id, l))).expect("load series");
        assert_eq!(known, vec![(1, up)]);
    }

    #[test]
    fn a_partly_written_record_is_read_once_complete() {
        let dir = tempfile::tempdir().expect("tempdir");
        let wal_dir = dir.path().join("wal");
        fs::create_dir_all(&wal_dir).expect("mkdir");
        let mut rec = Vec::new();
        let mut payload = Vec::new();
        record::encode_samples(&mut payload, &[RefSample { id: 1, t: 7, v: 1.0 }]);
        record::frame(&mut rec, RecordType::Samples, &payload);
        let path = segment_path(&wal_dir, 1);
        fs::write(&path, &rec[..rec.len() - 3]).expect("write half");
        let hold = Arc::new(SegmentHold::new(&wal_dir, 1 << 30));
        let (_, ts, pos) = drain(&hold, Position { segment: 1, offset: 0 });
        assert_eq!((ts, pos.offset), (vec![], 0));
        fs::write(&path, &rec).expect("complete it");
        let (_, ts, pos) = drain(&hold, pos);
        assert_eq!((ts, pos.offset), (vec![7], rec.len() as u64));
    }
}
