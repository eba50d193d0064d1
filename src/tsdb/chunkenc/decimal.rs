//! The block chunk encoding: byte-aligned and written once, at compaction.
//!
//! Scraped values are mostly decimals with few digits (counters, gauges like
//! `0.25`, bucket counts). Storing them as integers `m` with a shared decimal
//! scale `k` (value = m / 10^k) and delta- or delta-of-delta-coding `m` gives
//! small varints that the block's zstd pass compresses much better than XOR
//! bit-packing. Values that do not round-trip bit-exactly this way (NaN, the
//! stale marker, ±Inf, -0.0, too many digits) are kept verbatim as
//! exceptions; when they are too common the chunk falls back to XOR.
//!
//! Layout:
//! ```text
//! uvarint n | varint t0 | varint (t1-t0) | varint dod... | tag u8 | values
//! tag 0 XOR:       uvarint len, XOR chunk bytes
//! tag 1 delta, 2 delta-of-delta: u8 scale, uvarint #exceptions,
//!                  (uvarint index gap, u64 bits)..., varint m0, varint d...
//! tag 3 constant:  u64 bits
//! ```

use super::xor::{XorChunk, XorIter};
use crate::model::Sample;
use crate::tsdb::encoding::{DecodeError, Reader, put_uvarint, put_varint, uvarint_len, zigzag};

const TAG_XOR: u8 = 0;
const TAG_DELTA: u8 = 1;
const TAG_DOD: u8 = 2;
const TAG_CONST: u8 = 3;

/// Largest magnitude of a scaled integer; beyond 2^53 floats are not exact.
const MAX_EXACT: f64 = 9_007_199_254_740_992.0;
const MAX_SCALE: usize = 15;
const POW10: [f64; MAX_SCALE + 1] = [1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15];

/// The scaled integer for `v` at scale `k`, if it decodes back bit-exactly.
#[inline]
fn scaled(v: f64, k: usize) -> Option<i64> {
    let m = (v * POW10[k]).round();
    if m.is_nan() || m.abs() > MAX_EXACT {
        return None;
    }
    // Check exactly what the decoder will compute (an integer, so -0.0 is caught).
    let mi = m as i64;
    let back = mi as f64 / POW10[k];
    (back.to_bits() == v.to_bits()).then_some(mi)
}

/// The smallest scale at which `v` round-trips.
fn min_scale(v: f64) -> Option<usize> {
    (0..=MAX_SCALE).find(|&k| scaled(v, k).is_some())
}

/// Encodes samples (timestamps strictly increasing) and appends them to `out`.
pub fn encode(samples: &[Sample], out: &mut Vec<u8>) {
    put_uvarint(out, samples.len() as u64);
    let Some(first) = samples.first() else { return };
    put_varint(out, first.t);
    let mut prev_t = first.t;
    let mut prev_d = 0i64;
    for (i, s) in samples.iter().enumerate().skip(1) {
        let d = s.t.wrapping_sub(prev_t);
        put_varint(out, if i == 1 { d } else { d.wrapping_sub(prev_d) });
        prev_d = d;
        prev_t = s.t;
    }
    encode_values(samples, out);
}

fn encode_values(samples: &[Sample], out: &mut Vec<u8>) {
    let first_bits = samples[0].v.to_bits();
    if samples.iter().all(|s| s.v.to_bits() == first_bits) {
        out.push(TAG_CONST);
        out.extend_from_slice(&first_bits.to_le_bytes());
        return;
    }
    if let Some(scale) = common_scale(samples) {
        let mut ms = Vec::with_capacity(samples.len());
        let mut exceptions = Vec::new();
        let mut prev = 0i64;
        for (i, s) in samples.iter().enumerate() {
            match scaled(s.v, scale) {
                Some(m) => {
                    ms.push(m);
                    prev = m;
                }
                None => {
                    exceptions.push((i, s.v.to_bits()));
                    ms.push(prev);
                }
            }
        }
        if exceptions.len() * 8 <= samples.len() {
            write_scaled(&ms, scale as u8, &exceptions, out);
            return;
        }
    }
    let mut c = XorChunk::new();
    for s in samples {
        c.append(s.t, s.v);
    }
    out.push(TAG_XOR);
    put_uvarint(out, c.bytes().len() as u64);
    out.extend_from_slice(c.bytes());
}

/// The largest minimal scale over the values that have one, or None when
/// too few values are decimal at all.
fn common_scale(samples: &[Sample]) -> Option<usize> {
    let mut scale = 0;
    let mut misses = 0;
    let mut prev_bits = None;
    for s in samples {
        let bits = s.v.to_bits();
        if prev_bits == Some(bits) {
            continue;
        }
        prev_bits = Some(bits);
        // Most values need no more precision than already found: check that first.
        if scaled(s.v, scale).is_some() {
            continue;
        }
        match min_scale(s.v) {
            Some(k) => scale = scale.max(k),
            None => {
                misses += 1;
                if misses * 8 > samples.len() {
                    return None;
                }
            }
        }
    }
    Some(scale)
}

fn write_scaled(ms: &[i64], scale: u8, exceptions: &[(usize, u64)], out: &mut Vec<u8>) {
    // Pick delta or delta-of-delta by encoded size: counters favour the
    // latter, noisy gauges the former.
    let (mut delta_len, mut dod_len) = (0usize, 0usize);
    for i in 1..ms.len() {
        let d = ms[i].wrapping_sub(ms[i - 1]);
        delta_len += uvarint_len(zigzag(d));
        let dd = if i == 1 { d } else { d.wrapping_sub(ms[i - 1].wrapping_sub(ms[i - 2])) };
        dod_len += uvarint_len(zigzag(dd));
    }
    let dod = dod_len < delta_len;
    out.push(if dod { TAG_DOD } else { TAG_DELTA });
    out.push(scale);
    put_uvarint(out, exceptions.len() as u64);
    let mut last = 0;
    for &(i, bits) in exceptions {
        put_uvarint(out, (i - last) as u64);
        last = i;
        out.extend_from_slice(&bits.to_le_bytes());
    }
    put_varint(out, ms[0]);
    let mut prev_d = 0i64;
    for i in 1..ms.len() {
        let d = ms[i].wrapping_sub(ms[i - 1]);
        put_varint(out, if dod && i > 1 { d.wrapping_sub(prev_d) } else { d });
        prev_d = d;
    }
}

/// Decodes one chunk from `r`, appending its samples to `out`.
pub fn decode(r: &mut Reader<'_>, out: &mut Vec<Sample>) -> Result<(), DecodeError> {
    decode_window(r, i64::MIN, i64::MAX, out)
}

/// Decodes only the samples in `[mint, maxt]`, appending them to `out`.
/// Values after the window are not decoded at all (the reader is then left
/// inside the chunk); values before it are decoded but not kept, as deltas chain.
pub fn decode_window(r: &mut Reader<'_>, mint: i64, maxt: i64, out: &mut Vec<Sample>) -> Result<(), DecodeError> {
    let n = r.len_prefix()?;
    if n == 0 {
        return Ok(());
    }
    let start = out.len();
    out.reserve(n);
    let mut t = r.varint()?;
    out.push(Sample::new(t, 0.0));
    let mut d = 0i64;
    for i in 1..n {
        let x = r.varint()?;
        d = if i == 1 { x } else { d.wrapping_add(x) };
        t = t.wrapping_add(d);
        out.push(Sample::new(t, 0.0));
    }
    let vals = &mut out[start..];
    let lo = vals.partition_point(|s| s.t < mint);
    let hi = vals.partition_point(|s| s.t <= maxt);
    if lo >= hi {
        out.truncate(start);
        return Ok(());
    }
    match r.u8()? {
        TAG_CONST => {
            let v = f64::from_bits(r.u64_le()?);
            vals[lo..hi].iter_mut().for_each(|s| s.v = v);
        }
        TAG_XOR => {
            let len = r.len_prefix()?;
            let bytes = r.bytes(len)?;
            let mut it = XorIter::new(bytes, n);
            for s in vals[..hi].iter_mut() {
                s.v = it.next().ok_or(DecodeError { offset: r.pos() })?.v;
            }
        }
        tag @ (TAG_DELTA | TAG_DOD) => {
            let scale = r.u8()? as usize;
            if scale > MAX_SCALE {
                return Err(DecodeError { offset: r.pos() });
            }
            let div = POW10[scale];
            let nexc = r.len_prefix()?;
            let mut exceptions = Vec::with_capacity(nexc.min(n));
            let mut idx = 0usize;
            for _ in 0..nexc {
                idx = idx.checked_add(r.len_prefix()?).filter(|&i| i < n).ok_or(DecodeError { offset: r.pos() })?;
                exceptions.push((idx, r.u64_le()?));
            }
            let mut m = r.varint()?;
            vals[0].v = m as f64 / div;
            let mut d = 0i64;
            for (i, s) in vals[..hi].iter_mut().enumerate().skip(1) {
                let x = r.varint()?;
                d = if tag == TAG_DOD && i > 1 { d.wrapping_add(x) } else { x };
                m = m.wrapping_add(d);
                s.v = m as f64 / div;
            }
            for (i, bits) in exceptions {
                if i < hi {
                    vals[i].v = f64::from_bits(bits);
                }
            }
        }
        _ => return Err(DecodeError { offset: r.pos() }),
    }
    out.truncate(start + hi);
    out.drain(start..start + lo);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::stale_nan;
    use proptest::prelude::*;

    fn round_trip(samples: &[Sample]) -> usize {
        let mut buf = Vec::new();
        encode(samples, &mut buf);
        let mut out = Vec::new();
        let mut r = Reader::new(&buf);
        decode(&mut r, &mut out).expect("decodes");
        assert!(r.is_empty(), "trailing bytes");
        assert_eq!(out.len(), samples.len());
        for (a, b) in out.iter().zip(samples) {
            assert!(a.bit_eq(b), "{a:?} != {b:?}");
        }
        buf.len()
    }

    #[test]
    fn counters_with_jitter_take_about_two_bytes_a_sample_before_compression() {
        let s: Vec<_> = (0..480).map(|i| Sample::new(1_700_000_000_000 + i * 15_000 + (i * 7) % 5, (1000 + i * 37) as f64)).collect();
        let len = round_trip(&s);
        assert!(len < 480 * 3, "{len}");
    }

    #[test]
    fn decimal_gauges_with_stale_markers_round_trip() {
        let mut s: Vec<_> = (0..200).map(|i| Sample::new(i * 10_000, ((i % 17) as f64) * 0.25 + 0.1)).collect();
        s[50].v = stale_nan();
        s[51].v = f64::NAN;
        s[52].v = -0.0;
        s[53].v = f64::INFINITY;
        round_trip(&s);
    }

    #[test]
    fn window_decoding_keeps_exactly_the_window() {
        let s: Vec<_> = (0..100).map(|i| Sample::new(i * 10, if i == 40 { stale_nan() } else { i as f64 * 0.5 })).collect();
        let mut buf = Vec::new();
        encode(&s, &mut buf);
        for (lo, hi) in [(0, 990), (95, 405), (400, 400), (-50, 5), (991, 2000), (500, 100)] {
            let mut out = vec![Sample::new(-1, -1.0)];
            decode_window(&mut Reader::new(&buf), lo, hi, &mut out).expect("decodes");
            let want: Vec<_> = s.iter().filter(|x| x.t >= lo && x.t <= hi).collect();
            assert_eq!(out.len(), want.len() + 1, "{lo}..{hi}");
            assert!(out[1..].iter().zip(want).all(|(a, b)| a.bit_eq(b)), "{lo}..{hi}");
        }
    }

    #[test]
    fn constant_and_single_series_are_tiny() {
        let s: Vec<_> = (0..100).map(|i| Sample::new(i * 1000, 1.5)).collect();
        assert!(round_trip(&s) < 120);
        round_trip(&[Sample::new(5, 0.1)]);
        round_trip(&[]);
    }

    #[test]
    fn garbage_values_fall_back_to_xor() {
        let s: Vec<_> = (0..64).map(|i| Sample::new(i, f64::from_bits(0x3ff1_2345_6789_abcd_u64.wrapping_mul(i as u64 + 1)))).collect();
        round_trip(&s);
    }

    proptest! {
        #[test]
        fn any_values_round_trip(
            deltas in proptest::collection::vec(1i64..1_000_000, 1..300),
            vals in proptest::collection::vec(prop_oneof![
                any::<u64>().prop_map(f64::from_bits),
                (-1_000_000i64..1_000_000).prop_map(|i| i as f64 / 100.0),
                Just(stale_nan()),
                Just(f64::NAN),
            ], 300),
        ) {
            let mut t = -5_000_000i64;
            let s: Vec<_> = deltas.iter().enumerate().map(|(i, d)| { t += d; Sample::new(t, vals[i]) }).collect();
            round_trip(&s);
        }

        #[test]
        fn decoding_garbage_never_panics(buf in proptest::collection::vec(any::<u8>(), 0..128)) {
            let mut out = Vec::new();
            let _ = decode(&mut Reader::new(&buf), &mut out);
        }
    }
}
