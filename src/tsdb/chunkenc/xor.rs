//! Gorilla/XOR chunk: the head's appendable encoding.
//!
//! Timestamps: the first is a zigzag varint, the second a delta, then
//! delta-of-deltas in buckets (`0`, `10`+14 bits, `110`+17, `1110`+20, `1111`+64).
//! Values: the first is 64 raw bits, then XOR with the previous value: `0` for
//! equal, `10` to reuse the previous leading/trailing-zero window, or `11` +
//! 5 bits leading zeros + 6 bits significant length + the bits. Floats are
//! stored bit for bit, so NaN payloads and the stale marker survive.

use crate::model::Sample;

/// An appendable XOR chunk. Kept small: it lives in every active series.
#[derive(Debug, Clone, Default)]
pub struct XorChunk {
    bytes: Vec<u8>,
    /// Valid bits in the last byte of `bytes` (0 means the last byte is full or there is none).
    bit_fill: u8,
    num: u16,
    leading: u8,
    trailing: u8,
    t: i64,
    t_delta: i64,
    v: u64,
    mint: i64,
}

impl XorChunk {
    pub fn new() -> Self {
        XorChunk { leading: 0xff, ..Default::default() }
    }

    /// An empty chunk with room for `bytes`: a series' next chunk is usually
    /// the size of its last, so sizing it so avoids regrowing it.
    pub fn with_capacity(bytes: usize) -> Self {
        XorChunk { bytes: Vec::with_capacity(bytes), ..Self::new() }
    }

    pub fn num_samples(&self) -> usize {
        self.num as usize
    }

    pub fn is_empty(&self) -> bool {
        self.num == 0
    }

    /// Timestamp of the first sample (meaningless when empty).
    pub fn min_time(&self) -> i64 {
        self.mint
    }

    /// Timestamp of the last sample (meaningless when empty).
    pub fn max_time(&self) -> i64 {
        self.t
    }

    /// Value of the last sample.
    pub fn last_value(&self) -> f64 {
        f64::from_bits(self.v)
    }

    /// The encoded bytes; [`XorIter`] decodes them given the sample count.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Heap bytes held, for memory accounting.
    pub fn heap_bytes(&self) -> usize {
        self.bytes.capacity()
    }

    /// Releases spare capacity once the chunk is complete.
    pub fn shrink(&mut self) {
        self.bytes.shrink_to_fit();
    }

    /// Appends a sample. The caller guarantees `t` is greater than the last timestamp.
    pub fn append(&mut self, t: i64, v: f64) {
        let vb = v.to_bits();
        match self.num {
            0 => {
                let mut tmp = Vec::with_capacity(10);
                crate::tsdb::encoding::put_varint(&mut tmp, t);
                for b in tmp {
                    self.write_bits(u64::from(b), 8);
                }
                self.write_bits(vb, 64);
                self.mint = t;
            }
            1 => {
                let delta = t - self.t;
                self.write_dod(delta);
                self.t_delta = delta;
                self.write_value(vb);
            }
            _ => {
                let delta = t - self.t;
                let dod = delta.wrapping_sub(self.t_delta);
                self.write_dod(dod);
                self.t_delta = delta;
                self.write_value(vb);
            }
        }
        self.t = t;
        self.v = vb;
        self.num += 1;
    }

    fn write_dod(&mut self, dod: i64) {
        // Bucket sizes match the chunk format described in the module docs.
        if dod == 0 {
            self.write_bits(0, 1);
        } else if fits_signed(dod, 14) {
            self.write_bits(0b10, 2);
            self.write_bits(dod as u64, 14);
        } else if fits_signed(dod, 17) {
            self.write_bits(0b110, 3);
            self.write_bits(dod as u64, 17);
        } else if fits_signed(dod, 20) {
            self.write_bits(0b1110, 4);
            self.write_bits(dod as u64, 20);
        } else {
            self.write_bits(0b1111, 4);
            self.write_bits(dod as u64, 64);
        }
    }

    fn write_value(&mut self, vb: u64) {
        let x = vb ^ self.v;
        if x == 0 {
            self.write_bits(0, 1);
            return;
        }
        let mut leading = x.leading_zeros() as u8;
        let trailing = x.trailing_zeros() as u8;
        // Leading zeros are stored in 5 bits.
        if leading > 31 {
            leading = 31;
        }
        if self.leading != 0xff && leading >= self.leading && trailing >= self.trailing {
            self.write_bits(0b10, 2);
            let sig = 64 - u32::from(self.leading) - u32::from(self.trailing);
            self.write_bits(x >> self.trailing, sig);
        } else {
            self.leading = leading;
            self.trailing = trailing;
            self.write_bits(0b11, 2);
            self.write_bits(u64::from(leading), 5);
            let sig = 64 - u32::from(leading) - u32::from(trailing);
            // 64 significant bits are stored as 0; they cannot occur as 0.
            self.write_bits(u64::from(sig & 63), 6);
            self.write_bits(x >> trailing, sig);
        }
    }

    /// Appends the low `n` bits of `v` (n ≤ 64), most significant first:
    /// tops up the partial last byte, then emits whole bytes.
    #[inline]
    fn write_bits(&mut self, v: u64, n: u32) {
        if n == 0 {
            return;
        }
        let mut n = n;
        let v = if n == 64 { v } else { v & ((1u64 << n) - 1) };
        if self.bytes.capacity() - self.bytes.len() < 9 {
            // Grow gently: a chunk lives for its whole life in memory.
            let extra = (self.bytes.len() / 2).max(32);
            self.bytes.reserve_exact(extra);
        }
        let fill = u32::from(self.bit_fill);
        if fill != 0 {
            let free = 8 - fill;
            let last = self.bytes.len() - 1;
            if n < free {
                self.bytes[last] |= (v << (free - n)) as u8;
                self.bit_fill = (fill + n) as u8;
                return;
            }
            self.bytes[last] |= (v >> (n - free)) as u8;
            n -= free;
        }
        while n >= 8 {
            n -= 8;
            self.bytes.push((v >> n) as u8);
        }
        if n > 0 {
            self.bytes.push((v << (8 - n)) as u8);
        }
        self.bit_fill = n as u8;
    }

    /// Iterates all samples.
    pub fn iter(&self) -> XorIter<'_> {
        XorIter::new(&self.bytes, self.num as usize)
    }
}

fn fits_signed(v: i64, bits: u32) -> bool {
    let lim = 1i64 << (bits - 1);
    -lim < v && v <= lim
}

/// Decodes an XOR chunk's bytes. Yields `None` at the end or on malformed input.
pub struct XorIter<'a> {
    buf: &'a [u8],
    bitpos: usize,
    remaining: usize,
    read: usize,
    t: i64,
    t_delta: i64,
    v: u64,
    leading: u8,
    trailing: u8,
}

impl<'a> XorIter<'a> {
    pub fn new(buf: &'a [u8], num: usize) -> Self {
        XorIter { buf, bitpos: 0, remaining: num, read: 0, t: 0, t_delta: 0, v: 0, leading: 0, trailing: 0 }
    }

    #[inline]
    fn read_bits(&mut self, n: u32) -> Option<u64> {
        if n == 0 {
            return Some(0);
        }
        let end = self.bitpos + n as usize;
        if end > self.buf.len() * 8 {
            return None;
        }
        let mut out = 0u64;
        let mut left = n;
        while left > 0 {
            let byte = self.buf[self.bitpos / 8];
            let off = (self.bitpos % 8) as u32;
            let avail = 8 - off;
            let take = avail.min(left);
            let bits = (u64::from(byte) >> (avail - take)) & ((1u64 << take) - 1);
            out = (out << take) | bits;
            self.bitpos += take as usize;
            left -= take;
        }
        Some(out)
    }

    fn read_bit(&mut self) -> Option<bool> {
        self.read_bits(1).map(|b| b == 1)
    }

    fn read_dod(&mut self) -> Option<i64> {
        let mut prefix = 0;
        while prefix < 4 {
            if !self.read_bit()? {
                break;
            }
            prefix += 1;
        }
        let bits = match prefix {
            0 => return Some(0),
            1 => 14,
            2 => 17,
            3 => 20,
            _ => 64,
        };
        let raw = self.read_bits(bits)?;
        if bits == 64 {
            return Some(raw as i64);
        }
        // Sign-extend; values in (−2^(b−1), 2^(b−1)] use the top value for +2^(b−1).
        let lim = 1u64 << (bits - 1);
        Some(if raw > lim { raw as i64 - (1i64 << bits) } else { raw as i64 })
    }

    fn read_value(&mut self) -> Option<()> {
        if !self.read_bit()? {
            return Some(());
        }
        if self.read_bit()? {
            self.leading = self.read_bits(5)? as u8;
            let mut sig = self.read_bits(6)? as u8;
            if sig == 0 {
                sig = 64;
            }
            self.trailing = 64u8.checked_sub(self.leading)?.checked_sub(sig)?;
        }
        let sig = 64u32.checked_sub(u32::from(self.leading) + u32::from(self.trailing))?;
        let bits = self.read_bits(sig)?;
        self.v ^= bits.checked_shl(u32::from(self.trailing)).unwrap_or(0);
        Some(())
    }

    fn next_sample(&mut self) -> Option<Sample> {
        match self.read {
            0 => {
                let mut t = 0u64;
                let mut shift = 0;
                loop {
                    let b = self.read_bits(8)?;
                    t |= (b & 0x7f) << shift;
                    if b < 0x80 {
                        break;
                    }
                    shift += 7;
                    if shift > 63 {
                        return None;
                    }
                }
                self.t = crate::tsdb::encoding::unzigzag(t);
                self.v = self.read_bits(64)?;
            }
            1 => {
                self.t_delta = self.read_dod()?;
                self.t = self.t.wrapping_add(self.t_delta);
                self.read_value()?;
            }
            _ => {
                let dod = self.read_dod()?;
                self.t_delta = self.t_delta.wrapping_add(dod);
                self.t = self.t.wrapping_add(self.t_delta);
                self.read_value()?;
            }
        }
        self.read += 1;
        Some(Sample::new(self.t, f64::from_bits(self.v)))
    }
}

impl Iterator for XorIter<'_> {
    type Item = Sample;

    fn next(&mut self) -> Option<Sample> {
        if self.remaining == 0 {
            return None;
        }
        self.remaining -= 1;
        let s = self.next_sample();
        if s.is_none() {
            self.remaining = 0;
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::stale_nan;
    use proptest::prelude::*;

    fn round_trip(samples: &[(i64, f64)]) {
        let mut c = XorChunk::new();
        for &(t, v) in samples {
            c.append(t, v);
        }
        let got: Vec<_> = c.iter().map(|s| (s.t, s.v.to_bits())).collect();
        let want: Vec<_> = samples.iter().map(|&(t, v)| (t, v.to_bits())).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn special_floats_round_trip_bit_exact() {
        round_trip(&[
            (1000, 1.0),
            (2000, f64::NAN),
            (3000, stale_nan()),
            (4000, f64::INFINITY),
            (5000, f64::NEG_INFINITY),
            (6000, -0.0),
            (7000, 0.0),
            (8000, f64::from_bits(0x7ff8_dead_beef_0001)),
            (9000, f64::MIN_POSITIVE),
            (i64::MAX / 2, f64::MAX),
        ]);
    }

    #[test]
    fn regular_scrapes_are_small() {
        let mut c = XorChunk::new();
        for i in 0..120 {
            c.append(1_700_000_000_000 + i * 15_000, (i * 3) as f64);
        }
        assert!(c.bytes().len() < 120 * 3, "{} bytes", c.bytes().len());
    }

    proptest! {
        #[test]
        fn any_floats_and_increasing_times_round_trip(
            start in any::<i64>().prop_map(|t| t / 4),
            deltas in proptest::collection::vec(1i64..i64::MAX / 1024, 0..150),
            bits in proptest::collection::vec(any::<u64>(), 150),
        ) {
            let mut t = start;
            let mut s = Vec::new();
            for (i, d) in deltas.iter().enumerate() {
                s.push((t, f64::from_bits(bits[i])));
                t = t.saturating_add(*d);
                if t == i64::MAX { break; }
            }
            round_trip(&s);
        }

        #[test]
        fn decoding_garbage_never_panics(buf in proptest::collection::vec(any::<u8>(), 0..64), n in 0usize..200) {
            let _ = XorIter::new(&buf, n).count();
        }
    }
}
