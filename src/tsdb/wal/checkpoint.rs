//! WAL checkpoints: how the WAL stays bounded.
//!
//! After the head drops data that now lives in blocks, the segments up to a
//! point are condensed into `checkpoint.NNNNNNNN/`: the series records of
//! series still in the head, their samples not yet in a block, and their
//! tombstones. The checkpoint is written under a temporary name, synced and
//! renamed into place before the segments it replaces are deleted, so a crash
//! at any moment leaves a WAL that replays to the same head.

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use super::reader;
use super::record::{self, RecordType, RefSample, Tombstone, frame};
use super::{list_segments, segment_path};

const PREFIX: &str = "checkpoint.";

/// The newest checkpoint: its number and directory.
pub fn last(wal_dir: &Path) -> io::Result<Option<(u32, PathBuf)>> {
    let mut best: Option<(u32, PathBuf)> = None;
    for e in fs::read_dir(wal_dir)? {
        let e = e?;
        let name = e.file_name();
        let Some(n) = name.to_str().and_then(|s| s.strip_prefix(PREFIX)).and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        if best.as_ref().is_none_or(|(b, _)| n > *b) {
            best = Some((n, e.path()));
        }
    }
    Ok(best)
}

/// The files to replay, in order: the newest checkpoint's, then later segments.
/// Segments already covered by the checkpoint (left by a crash) are deleted.
pub fn replay_files(wal_dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let mut after = 0;
    if let Some((n, cp)) = last(wal_dir)? {
        after = n;
        files.extend(list_segments(&cp)?.into_iter().map(|s| segment_path(&cp, s)));
    }
    for s in list_segments(wal_dir)? {
        if s <= after {
            fs::remove_file(segment_path(wal_dir, s))?;
        } else {
            files.push(segment_path(wal_dir, s));
        }
    }
    Ok(files)
}

/// What a checkpoint kept.
#[derive(Debug, Default)]
pub struct Stats {
    pub series: u64,
    pub samples: u64,
    pub dropped_samples: u64,
}

/// Condenses everything up to segment `upto` into a checkpoint, keeping
/// series for which `keep` is true and their samples at or after `mint`.
pub fn create(wal_dir: &Path, upto: u32, keep: impl Fn(u32) -> bool, mint: i64) -> io::Result<Stats> {
    let mut files = Vec::new();
    let prev = last(wal_dir)?;
    if let Some((_, cp)) = &prev {
        files.extend(list_segments(cp)?.into_iter().map(|s| segment_path(cp, s)));
    }
    let segs: Vec<u32> = list_segments(wal_dir)?.into_iter().filter(|&s| s <= upto).collect();
    files.extend(segs.iter().map(|&s| segment_path(wal_dir, s)));
    let scan = reader::scan(&files, false)?;

    let final_dir = wal_dir.join(format!("{PREFIX}{upto:08}"));
    let tmp = wal_dir.join(format!("{PREFIX}{upto:08}.tmp"));
    if tmp.exists() {
        fs::remove_dir_all(&tmp)?;
    }
    fs::create_dir_all(&tmp)?;
    let mut w = BufWriter::with_capacity(1 << 20, File::create(segment_path(&tmp, 0))?);
    let mut stats = Stats::default();
    let mut rec = Vec::new();
    let mut payload = Vec::new();
    let mut samples: Vec<RefSample> = Vec::new();
    for r in &scan.records {
        let p = scan.payload(r);
        rec.clear();
        payload.clear();
        match r.typ {
            RecordType::Series => {
                let _ = record::decode_series(p, |id, l| {
                    if keep(id) {
                        record::encode_series(&mut payload, id, &l);
                        stats.series += 1;
                    }
                });
                if !payload.is_empty() {
                    frame(&mut rec, RecordType::Series, &payload);
                }
            }
            RecordType::Samples => {
                samples.clear();
                let _ = record::decode_samples(p, |s| {
                    if s.t >= mint && keep(s.id) {
                        samples.push(s);
                    } else {
                        stats.dropped_samples += 1;
                    }
                });
                if !samples.is_empty() {
                    stats.samples += samples.len() as u64;
                    record::encode_samples(&mut payload, &samples);
                    frame(&mut rec, RecordType::Samples, &payload);
                }
            }
            RecordType::Tombstones => {
                let mut ts: Vec<Tombstone> = Vec::new();
                let _ = record::decode_tombstones(p, |t| {
                    if keep(t.id) {
                        ts.push(t);
                    }
                });
                if !ts.is_empty() {
                    record::encode_tombstones(&mut payload, &ts);
                    frame(&mut rec, RecordType::Tombstones, &payload);
                }
            }
        }
        w.write_all(&rec)?;
    }
    let f = w.into_inner().map_err(|e| e.into_error())?;
    f.sync_all()?;
    drop(scan);
    fs::rename(&tmp, &final_dir)?;
    File::open(wal_dir)?.sync_all()?;
    for s in segs {
        fs::remove_file(segment_path(wal_dir, s))?;
    }
    if let Some((_, cp)) = prev {
        fs::remove_dir_all(cp)?;
    }
    Ok(stats)
}
