//! Reading WAL files back, tolerating damage.
//!
//! A crash can leave a torn record at the end of the last segment, and disks
//! can flip bits. Records that fail their length or checksum check are
//! skipped: the reader searches forward for the next record that verifies and
//! carries on from there, counting what it skipped. A damaged tail of the
//! newest segment is cut off so new records never follow garbage.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

use memmap2::Mmap;

use super::record::{HEADER_LEN, RecordType, crc_ok};

/// A verified record's location.
#[derive(Debug, Clone, Copy)]
pub struct RecordRef {
    pub file: usize,
    pub typ: RecordType,
    pub start: usize,
    pub len: usize,
}

/// Damage met while scanning.
#[derive(Debug, Default, Clone)]
pub struct Damage {
    /// Damaged regions skipped (each may have held one or more records).
    pub regions: u64,
    pub bytes: u64,
    /// Human-readable description of each region, for the log.
    pub details: Vec<String>,
}

/// Every verified record of a list of files, in order.
pub struct Scan {
    maps: Vec<Option<Mmap>>,
    pub records: Vec<RecordRef>,
    pub damage: Damage,
}

impl Scan {
    pub fn payload(&self, r: &RecordRef) -> &[u8] {
        match &self.maps[r.file] {
            Some(m) => &m[r.start..r.start + r.len],
            None => &[],
        }
    }

    /// Total bytes scanned.
    pub fn bytes(&self) -> u64 {
        self.maps.iter().flatten().map(|m| m.len() as u64).sum()
    }
}

/// Whether a verified record starts at `off`; returns its payload length.
pub(crate) fn record_at(buf: &[u8], off: usize) -> Option<(RecordType, usize)> {
    let h = buf.get(off..off + HEADER_LEN)?;
    let typ = RecordType::from_u8(h[0])?;
    let len = u32::from_le_bytes([h[1], h[2], h[3], h[4]]) as usize;
    let crc = u32::from_le_bytes([h[5], h[6], h[7], h[8]]);
    let payload = buf.get(off + HEADER_LEN..(off + HEADER_LEN).checked_add(len)?)?;
    crc_ok(h[0], payload, crc).then_some((typ, len))
}

/// Scans `paths` in order. With `repair_last`, a damaged tail of the last file
/// is truncated at the end of its last good record.
pub fn scan(paths: &[PathBuf], repair_last: bool) -> io::Result<Scan> {
    let mut out = Scan { maps: Vec::with_capacity(paths.len()), records: Vec::new(), damage: Damage::default() };
    for (fi, path) in paths.iter().enumerate() {
        let file = File::open(path)?;
        let len = file.metadata()?.len();
        if len == 0 {
            out.maps.push(None);
            continue;
        }
        // SAFETY: WAL files being replayed are not modified concurrently; only
        // bytes before a truncation point are ever read.
        let map = unsafe { Mmap::map(&file)? };
        let buf: &[u8] = &map;
        let mut off = 0usize;
        let mut good_end = 0usize;
        while off < buf.len() {
            if let Some((typ, plen)) = record_at(buf, off) {
                out.records.push(RecordRef { file: fi, typ, start: off + HEADER_LEN, len: plen });
                off += HEADER_LEN + plen;
                good_end = off;
                continue;
            }
            // Damaged: look for the next record that verifies.
            let resume = (off + 1..buf.len()).find(|&o| record_at(buf, o).is_some());
            let skipped = resume.unwrap_or(buf.len()) - off;
            out.damage.regions += 1;
            out.damage.bytes += skipped as u64;
            out.damage.details.push(format!("{}: {} damaged bytes at offset {}", path.display(), skipped, off));
            match resume {
                Some(o) => off = o,
                None => break,
            }
        }
        let is_last = fi + 1 == paths.len();
        out.maps.push(Some(map));
        if is_last && repair_last && good_end < buf_len(&out, fi) {
            truncate(path, good_end as u64)?;
        }
    }
    Ok(out)
}

fn buf_len(s: &Scan, fi: usize) -> usize {
    s.maps[fi].as_ref().map_or(0, |m| m.len())
}

fn truncate(path: &Path, len: u64) -> io::Result<()> {
    let f = OpenOptions::new().write(true).open(path)?;
    f.set_len(len)?;
    f.sync_all()
}

#[cfg(test)]
mod tests {
    use super::super::record::{RecordType, frame};
    use super::*;

    fn write(dir: &Path, name: &str, payloads: &[&[u8]]) -> (PathBuf, Vec<u8>) {
        let mut buf = Vec::new();
        for p in payloads {
            frame(&mut buf, RecordType::Samples, p);
        }
        let path = dir.join(name);
        std::fs::write(&path, &buf).expect("write");
        (path, buf)
    }

    #[test]
    fn flipped_bit_skips_one_record_and_keeps_the_rest() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (path, mut buf) = write(dir.path(), "00000001", &[b"aaaa", b"bbbbbbbb", b"cc"]);
        buf[HEADER_LEN + 4 + HEADER_LEN + 3] ^= 0x10; // inside the second payload
        std::fs::write(&path, &buf).expect("write");
        let s = scan(std::slice::from_ref(&path), true).expect("scan");
        let got: Vec<&[u8]> = s.records.iter().map(|r| s.payload(r)).collect();
        assert_eq!(got, vec![&b"aaaa"[..], &b"cc"[..]]);
        assert_eq!(s.damage.regions, 1);
    }

    #[test]
    fn torn_tail_is_cut_at_the_last_good_record() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (path, buf) = write(dir.path(), "00000001", &[b"aaaa", b"bbbbbbbb"]);
        let cut = buf.len() - 3;
        std::fs::write(&path, &buf[..cut]).expect("write");
        let s = scan(std::slice::from_ref(&path), true).expect("scan");
        assert_eq!(s.records.len(), 1);
        assert_eq!(s.damage.regions, 1);
        assert_eq!(std::fs::metadata(&path).expect("meta").len(), (HEADER_LEN + 4) as u64);
    }
}
