//! WAL record payloads: series, samples and tombstones.
//!
//! Each record on disk is `type u8 | len u32 LE | crc32c u32 LE | payload`, the
//! checksum covering the type byte and the payload.

use crate::model::{Label, Labels};
use crate::tsdb::encoding::{DecodeError, Reader, put_str, put_uvarint, put_varint};

pub const HEADER_LEN: usize = 9;

/// What a record holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum RecordType {
    Series = 1,
    Samples = 2,
    Tombstones = 3,
}

impl RecordType {
    pub fn from_u8(b: u8) -> Option<Self> {
        match b {
            1 => Some(RecordType::Series),
            2 => Some(RecordType::Samples),
            3 => Some(RecordType::Tombstones),
            _ => None,
        }
    }
}

/// One sample addressed by series id.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RefSample {
    pub id: u32,
    pub t: i64,
    pub v: f64,
}

/// A deletion of `[mint, maxt]` in one series.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tombstone {
    pub id: u32,
    pub mint: i64,
    pub maxt: i64,
}

/// Appends a framed record to `out`.
pub fn frame(out: &mut Vec<u8>, typ: RecordType, payload: &[u8]) {
    out.push(typ as u8);
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    let crc = crc32c::crc32c_append(crc32c::crc32c(&[typ as u8]), payload);
    out.extend_from_slice(&crc.to_le_bytes());
    out.extend_from_slice(payload);
}

/// Checks the checksum of a framed record.
pub fn crc_ok(typ: u8, payload: &[u8], crc: u32) -> bool {
    crc32c::crc32c_append(crc32c::crc32c(&[typ]), payload) == crc
}

pub fn encode_series(out: &mut Vec<u8>, id: u32, labels: &Labels) {
    put_uvarint(out, u64::from(id));
    put_uvarint(out, labels.len() as u64);
    for l in labels {
        put_str(out, &l.name);
        put_str(out, &l.value);
    }
}

/// Decodes series records without allocating: `f` gets the label pairs as
/// borrowed strings, sorted by name with non-empty values (records written
/// otherwise are normalised through [`Labels`]).
pub fn decode_series_pairs(payload: &[u8], mut f: impl FnMut(u32, &[(&str, &str)])) -> Result<(), DecodeError> {
    let mut r = Reader::new(payload);
    let mut pairs: Vec<(&str, &str)> = Vec::with_capacity(16);
    while !r.is_empty() {
        let id = r.uvarint()? as u32;
        let n = r.len_prefix()?;
        pairs.clear();
        for _ in 0..n {
            pairs.push((r.str()?, r.str()?));
        }
        if pairs.windows(2).all(|w| w[0].0 < w[1].0) && pairs.iter().all(|p| !p.1.is_empty()) {
            f(id, &pairs);
        } else {
            let l = Labels::from_pairs(pairs.iter().copied());
            let norm: Vec<(&str, &str)> = l.iter().map(|l| (l.name.as_str(), l.value.as_str())).collect();
            f(id, &norm);
        }
    }
    Ok(())
}

pub fn decode_series(payload: &[u8], mut f: impl FnMut(u32, Labels)) -> Result<(), DecodeError> {
    let mut r = Reader::new(payload);
    while !r.is_empty() {
        let id = r.uvarint()? as u32;
        let n = r.len_prefix()?;
        let mut ls = Vec::with_capacity(n.min(64));
        for _ in 0..n {
            let name = r.str()?.to_string();
            let value = r.str()?.to_string();
            ls.push(Label { name, value });
        }
        let sorted = ls.windows(2).all(|w| w[0].name < w[1].name) && ls.iter().all(|l| !l.value.is_empty());
        let labels = if sorted { Labels::from_sorted(ls) } else { Labels::from_pairs(ls.into_iter().map(|l| (l.name, l.value))) };
        f(id, labels);
    }
    Ok(())
}

/// Samples: the first id and time are absolute, later ones relative to them.
pub fn encode_samples(out: &mut Vec<u8>, samples: &[RefSample]) {
    let Some(first) = samples.first() else { return };
    put_uvarint(out, u64::from(first.id));
    put_varint(out, first.t);
    for s in samples {
        put_varint(out, i64::from(s.id) - i64::from(first.id));
        put_varint(out, s.t.wrapping_sub(first.t));
        out.extend_from_slice(&s.v.to_bits().to_le_bytes());
    }
}

pub fn decode_samples(payload: &[u8], mut f: impl FnMut(RefSample)) -> Result<(), DecodeError> {
    let mut r = Reader::new(payload);
    if r.is_empty() {
        return Ok(());
    }
    let base_id = r.uvarint()? as i64;
    let base_t = r.varint()?;
    while !r.is_empty() {
        let id = base_id + r.varint()?;
        let t = base_t.wrapping_add(r.varint()?);
        let v = f64::from_bits(r.u64_le()?);
        let id = u32::try_from(id).map_err(|_| DecodeError { offset: r.pos() })?;
        f(RefSample { id, t, v });
    }
    Ok(())
}

pub fn encode_tombstones(out: &mut Vec<u8>, ts: &[Tombstone]) {
    for t in ts {
        put_uvarint(out, u64::from(t.id));
        put_varint(out, t.mint);
        put_varint(out, t.maxt);
    }
}

pub fn decode_tombstones(payload: &[u8], mut f: impl FnMut(Tombstone)) -> Result<(), DecodeError> {
    let mut r = Reader::new(payload);
    while !r.is_empty() {
        let id = r.uvarint()? as u32;
        let mint = r.varint()?;
        let maxt = r.varint()?;
        f(Tombstone { id, mint, maxt });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip() {
        let mut p = Vec::new();
        let l = Labels::from_pairs([("__name__", "up"), ("job", "x")]);
        encode_series(&mut p, 7, &l);
        let mut got = Vec::new();
        decode_series(&p, |id, l| got.push((id, l))).expect("decodes");
        assert_eq!(got, vec![(7, l)]);

        let s = vec![RefSample { id: 9, t: 100, v: 1.5 }, RefSample { id: 3, t: 90, v: f64::NAN }];
        let mut p = Vec::new();
        encode_samples(&mut p, &s);
        let mut got = Vec::new();
        decode_samples(&p, |s| got.push(s)).expect("decodes");
        assert_eq!(got.len(), 2);
        assert_eq!((got[1].id, got[1].t, got[1].v.to_bits()), (3, 90, f64::NAN.to_bits()));
    }
}
