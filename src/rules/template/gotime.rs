//! Go `time` behaviour used by Prometheus' time functions: `time.Time.String()` for UTC instants
//! and `time.Duration.String()`, plus Prometheus' float-seconds to time conversion.

use std::fmt;

use super::ftoa::format_float;

const NANOS_PER_SEC: i64 = 1_000_000_000;

/// A UTC instant, printed like Go's `time.Time` in UTC: `2006-01-02 15:04:05.999999999 +0000 UTC`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct GoTime {
    secs: i64,
    nanos: i64,
}

impl GoTime {
    /// Prometheus' `floatToTime`: seconds since the epoch, truncated to milliseconds
    /// (`model.TimeFromUnixNano`), as UTC time. Errors as Prometheus does for NaN/Inf and overflow.
    pub(super) fn from_unix_seconds(v: f64) -> Result<GoTime, String> {
        if v.is_nan() || v.is_infinite() {
            return Err("value is NaN or Inf".to_string());
        }
        let ns = v * 1e9;
        if ns > i64::MAX as f64 || ns < i64::MIN as f64 {
            return Err(format!(
                "{} cannot be represented as a nanoseconds timestamp since it overflows int64",
                format_float(v, 'g', None)
            ));
        }
        let ms = (ns as i64) / 1_000_000;
        // time.Unix(ms/1000, (ms%1000)*1e6) normalises a negative nanosecond part.
        Ok(GoTime { secs: (ms * 1_000_000).div_euclid(NANOS_PER_SEC), nanos: (ms * 1_000_000).rem_euclid(NANOS_PER_SEC) })
    }
}

impl fmt::Display for GoTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let days = self.secs.div_euclid(86_400);
        let rem = self.secs.rem_euclid(86_400);
        let (y, mo, d) = crate::model::time::civil_from_days(days);
        write!(f, "{y:04}-{mo:02}-{d:02} {:02}:{:02}:{:02}", rem / 3600, rem / 60 % 60, rem % 60)?;
        if self.nanos != 0 {
            let frac = format!("{:09}", self.nanos);
            write!(f, ".{}", frac.trim_end_matches('0'))?;
        }
        f.write_str(" +0000 UTC")
    }
}

/// Go's `time.Duration.String()`, e.g. `1h2m3.5s`, `1.5ms`, `0s`.
pub(super) fn duration_string(nanos: i64) -> String {
    let neg = nanos < 0;
    let mut u = nanos.unsigned_abs();
    let mut out = String::new();
    if u < NANOS_PER_SEC as u64 {
        let (prec, unit) = match u {
            0 => return "0s".to_string(),
            1..1_000 => (0, "ns"),
            1_000..1_000_000 => (3, "µs"),
            _ => (6, "ms"),
        };
        let (frac, int) = fraction(u, prec);
        out.push_str(&int.to_string());
        out.push_str(&frac);
        out.push_str(unit);
    } else {
        let (frac, secs) = fraction(u, 9);
        u = secs;
        let mut s = format!("{}{frac}s", u % 60);
        u /= 60;
        if u > 0 {
            s = format!("{}m{s}", u % 60);
            u /= 60;
            if u > 0 {
                s = format!("{u}h{s}");
            }
        }
        out.push_str(&s);
    }
    if neg { format!("-{out}") } else { out }
}

/// Splits off `prec` decimal digits of `v` as a fraction (trailing zeros and a bare dot
/// omitted, like Go's `fmtFrac`) and returns it with the remaining integer part.
fn fraction(v: u64, prec: u32) -> (String, u64) {
    let div = 10u64.pow(prec);
    let digits = format!("{:0width$}", v % div, width = prec as usize);
    let digits = digits.trim_end_matches('0');
    let frac = if digits.is_empty() { String::new() } else { format!(".{digits}") };
    (frac, v / div)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(v: f64) -> String {
        GoTime::from_unix_seconds(v).map(|t| t.to_string()).unwrap_or_else(|e| e)
    }

    #[test]
    fn times() {
        assert_eq!(t(1700000000.0), "2023-11-14 22:13:20 +0000 UTC");
        assert_eq!(t(0.0), "1970-01-01 00:00:00 +0000 UTC");
        assert_eq!(t(-1.0), "1969-12-31 23:59:59 +0000 UTC");
        assert_eq!(t(-1.5), "1969-12-31 23:59:58.5 +0000 UTC");
        assert_eq!(t(1435065584.128), "2015-06-23 13:19:44.128 +0000 UTC");
        assert_eq!(t(9223372036.0), "2262-04-11 23:47:16 +0000 UTC");
        assert_eq!(t(951782400.0), "2000-02-29 00:00:00 +0000 UTC");
        assert_eq!(t(f64::NAN), "value is NaN or Inf");
        assert_eq!(t(1e19), "1e+19 cannot be represented as a nanoseconds timestamp since it overflows int64");
    }

    #[test]
    fn durations() {
        assert_eq!(duration_string(0), "0s");
        assert_eq!(duration_string(1), "1ns");
        assert_eq!(duration_string(1_500), "1.5µs");
        assert_eq!(duration_string(1_500_000), "1.5ms");
        assert_eq!(duration_string(NANOS_PER_SEC), "1s");
        assert_eq!(duration_string(3_723_500_000_000), "1h2m3.5s");
        assert_eq!(duration_string(-60 * NANOS_PER_SEC), "-1m0s");
        assert_eq!(duration_string(i64::MIN), "-2562047h47m16.854775808s");
    }
}
