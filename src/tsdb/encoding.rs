//! Byte-level primitives shared by the WAL, chunk and index formats:
//! LEB128 varints, zigzag signed integers and a bounds-checked reader.

/// Appends an unsigned LEB128 varint.
#[inline]
pub fn put_uvarint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Appends a signed integer as a zigzag varint (small magnitudes stay small).
#[inline]
pub fn put_varint(out: &mut Vec<u8>, v: i64) {
    put_uvarint(out, zigzag(v));
}

#[inline]
pub fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

#[inline]
pub fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

/// The encoded length of a varint, for choosing between encodings cheaply.
#[inline]
pub fn uvarint_len(v: u64) -> usize {
    (64 - (v | 1).leading_zeros() as usize).div_ceil(7)
}

/// Decoding ran past the end of the input or met an invalid value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("truncated or malformed data at byte {offset}")]
pub struct DecodeError {
    pub offset: usize,
}

/// A cursor over a byte slice whose reads fail instead of panicking.
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    pub fn pos(&self) -> usize {
        self.pos
    }

    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub fn is_empty(&self) -> bool {
        self.pos >= self.buf.len()
    }

    fn err(&self) -> DecodeError {
        DecodeError { offset: self.pos }
    }

    #[inline]
    pub fn uvarint(&mut self) -> Result<u64, DecodeError> {
        // Most values (delta-of-deltas, small deltas) fit one byte.
        if let Some(&b) = self.buf.get(self.pos)
            && b < 0x80
        {
            self.pos += 1;
            return Ok(u64::from(b));
        }
        let mut v = 0u64;
        let mut shift = 0;
        loop {
            let b = *self.buf.get(self.pos).ok_or_else(|| self.err())?;
            self.pos += 1;
            if shift == 63 && b > 1 {
                return Err(self.err());
            }
            v |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return Ok(v);
            }
            shift += 7;
            if shift > 63 {
                return Err(self.err());
            }
        }
    }

    #[inline]
    pub fn varint(&mut self) -> Result<i64, DecodeError> {
        self.uvarint().map(unzigzag)
    }

    /// A uvarint that must fit a `usize` no larger than what remains (lengths, counts).
    pub fn len_prefix(&mut self) -> Result<usize, DecodeError> {
        let v = self.uvarint()?;
        if v > self.remaining() as u64 * 8 + 64 {
            return Err(self.err());
        }
        Ok(v as usize)
    }

    pub fn u8(&mut self) -> Result<u8, DecodeError> {
        let b = *self.buf.get(self.pos).ok_or_else(|| self.err())?;
        self.pos += 1;
        Ok(b)
    }

    pub fn u64_le(&mut self) -> Result<u64, DecodeError> {
        let b = self.bytes(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }

    pub fn bytes(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.buf.len()).ok_or_else(|| self.err())?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    /// A length-prefixed UTF-8 string.
    pub fn str(&mut self) -> Result<&'a str, DecodeError> {
        let n = self.len_prefix()?;
        let b = self.bytes(n)?;
        std::str::from_utf8(b).map_err(|_| self.err())
    }
}

/// Appends a length-prefixed string.
pub fn put_str(out: &mut Vec<u8>, s: &str) {
    put_uvarint(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn varints_round_trip(vals in proptest::collection::vec(any::<i64>(), 0..50)) {
            let mut out = Vec::new();
            for &v in &vals { put_varint(&mut out, v); put_uvarint(&mut out, v as u64); }
            let mut r = Reader::new(&out);
            for &v in &vals {
                prop_assert_eq!(r.varint().expect("varint"), v);
                prop_assert_eq!(r.uvarint().expect("uvarint"), v as u64);
            }
            prop_assert!(r.is_empty());
        }

        #[test]
        fn uvarint_len_is_exact(v in any::<u64>()) {
            let mut out = Vec::new();
            put_uvarint(&mut out, v);
            prop_assert_eq!(out.len(), uvarint_len(v));
        }

        #[test]
        fn reader_never_panics_on_garbage(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let mut r = Reader::new(&bytes);
            while r.uvarint().is_ok() || r.str().is_ok() {}
        }
    }
}
