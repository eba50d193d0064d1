//! Samples and Prometheus' staleness marker.

/// The exact bit pattern Prometheus uses to mark a series as stale.
///
/// It is a signalling NaN distinct from the NaN an exporter may report, so it
/// must survive storage bit for bit: arithmetic or `f64::NAN` would lose it.
pub const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;

/// The staleness marker as a float.
pub fn stale_nan() -> f64 {
    f64::from_bits(STALE_NAN_BITS)
}

/// Whether `v` is the staleness marker (and not any other NaN).
pub fn is_stale_nan(v: f64) -> bool {
    v.to_bits() == STALE_NAN_BITS
}

/// One float sample: a millisecond timestamp and a value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    /// Milliseconds since the Unix epoch.
    pub t: i64,
    /// The value; compare with `to_bits` when NaN payloads matter.
    pub v: f64,
}

impl Sample {
    pub fn new(t: i64, v: f64) -> Self {
        Sample { t, v }
    }

    /// Bit-exact equality, so NaNs (and the stale marker) compare as stored.
    pub fn bit_eq(&self, other: &Sample) -> bool {
        self.t == other.t && self.v.to_bits() == other.v.to_bits()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_marker_is_distinct_from_plain_nan() {
        assert!(is_stale_nan(stale_nan()));
        assert!(!is_stale_nan(f64::NAN));
        assert!(stale_nan().is_nan());
    }
}
