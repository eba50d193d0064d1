//! Prometheus' numeric template helpers (`humanize*`, `toTime`, `toDuration`, `parseDuration`)
//! and `ConvertToFloat`, reproducing the Go implementations' output (`%.4g` via Go's
//! float formatting) and error texts.

use super::ftoa::format_float;
use super::gotime::GoTime;
use super::strconv::parse_float;
use super::value::Val;

/// Prometheus' `ConvertToFloat`: floats, ints and numeric strings are accepted.
pub(super) fn convert_to_float(v: &Val) -> Result<f64, String> {
    match v {
        Val::Float(f) => Ok(*f),
        Val::Int(i) => Ok(*i as f64),
        Val::Str(s) => parse_float(s).map_err(|e| e.message("ParseFloat", s)),
        other => Err(format!("can't convert {} to float", other.type_name())),
    }
}

/// Go's `fmt.Sprintf("%.4g", v)`.
fn g4(v: f64) -> String {
    format_float(v, 'g', Some(4))
}

/// Scales `v` by `factor` while the loop condition of Prometheus' prefix loop holds,
/// returning the scaled value and the last prefix applied.
fn scale(mut v: f64, prefixes: &[&'static str], factor: f64, stop: impl Fn(f64) -> bool, up: bool) -> (f64, &'static str) {
    let mut prefix = "";
    for p in prefixes {
        if stop(v) {
            break;
        }
        prefix = p;
        if up { v *= factor } else { v /= factor }
    }
    (v, prefix)
}

const SMALL_PREFIXES: [&str; 8] = ["m", "u", "n", "p", "f", "a", "z", "y"];

/// Prometheus' `humanize`: SI prefixes, e.g. 1234567 → `1.235M`, 0.001234 → `1.234m`.
pub(super) fn humanize(v: f64) -> String {
    if v == 0.0 || v.is_nan() || v.is_infinite() {
        return g4(v);
    }
    let (v, prefix) = if v.abs() >= 1.0 {
        scale(v, &["k", "M", "G", "T", "P", "E", "Z", "Y"], 1000.0, |v| v.abs() < 1000.0, false)
    } else {
        scale(v, &SMALL_PREFIXES, 1000.0, |v| v.abs() >= 1.0, true)
    };
    format!("{}{prefix}", g4(v))
}

/// Prometheus' `humanize1024`: binary prefixes, e.g. 1048576 → `1Mi`.
pub(super) fn humanize1024(v: f64) -> String {
    if v.abs() <= 1.0 || v.is_nan() || v.is_infinite() {
        return g4(v);
    }
    let (v, prefix) = scale(v, &["ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi"], 1024.0, |v| v.abs() < 1024.0, false);
    format!("{}{prefix}", g4(v))
}

/// Prometheus' `humanizeDuration` (seconds), e.g. 3661 → `1h 1m 1s`, 0.5 → `500ms`.
pub(super) fn humanize_duration(v: f64) -> String {
    if v.is_nan() || v.is_infinite() {
        return g4(v);
    }
    if v == 0.0 {
        return format!("{}s", g4(v));
    }
    if v.abs() >= 1.0 {
        let sign = if v < 0.0 { "-" } else { "" };
        let v = v.abs();
        let d = v as i64;
        let (seconds, minutes, hours, days) = (d % 60, d / 60 % 60, d / 3600 % 24, d / 86400);
        return if days != 0 {
            format!("{sign}{days}d {hours}h {minutes}m {seconds}s")
        } else if hours != 0 {
            format!("{sign}{hours}h {minutes}m {seconds}s")
        } else if minutes != 0 {
            format!("{sign}{minutes}m {seconds}s")
        } else {
            format!("{sign}{}s", g4(v))
        };
    }
    let (v, prefix) = scale(v, &SMALL_PREFIXES, 1000.0, |v| v.abs() >= 1.0, true);
    format!("{}{prefix}s", g4(v))
}

/// Prometheus' `humanizePercentage`: 0.1234 → `12.34%`.
pub(super) fn humanize_percentage(v: f64) -> String {
    format!("{}%", g4(v * 100.0))
}

/// Prometheus' `humanizeTimestamp`: seconds since the epoch as Go prints a UTC `time.Time`.
pub(super) fn humanize_timestamp(v: f64) -> Result<String, String> {
    if v.is_nan() || v.is_infinite() {
        return Ok(g4(v));
    }
    GoTime::from_unix_seconds(v).map(|t| t.to_string())
}

/// Prometheus' `toDuration`: `time.Duration(v * 1e9)`; out-of-range values convert as Go on
/// amd64 does (to the minimum duration).
pub(super) fn to_duration_nanos(v: f64) -> i64 {
    let ns = v * 1e9;
    if (-9.223_372_036_854_776e18..9.223_372_036_854_776e18).contains(&ns) { ns as i64 } else { i64::MIN }
}

/// Units of Prometheus durations: name, order (biggest first) and nanoseconds.
const UNITS: [(&str, u8, u64); 7] = [
    ("y", 1, 365 * 86_400_000_000_000),
    ("w", 2, 7 * 86_400_000_000_000),
    ("d", 3, 86_400_000_000_000),
    ("h", 4, 3_600_000_000_000),
    ("m", 5, 60_000_000_000),
    ("s", 6, 1_000_000_000),
    ("ms", 7, 1_000_000),
];

/// Prometheus' `model.ParseDuration` (e.g. `1h30m`, `1w`), in nanoseconds.
fn parse_model_duration(s: &str) -> Result<u64, String> {
    match s {
        "0" => return Ok(0),
        "" => return Err("empty duration string".to_string()),
        _ => {}
    }
    let invalid = || format!("not a valid duration string: {}", super::strconv::quote(s));
    let mut rest = s;
    let mut total: u64 = 0;
    let mut last_order = 0;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(invalid());
        }
        let v: u64 = rest[..digits].parse().map_err(|_| invalid())?;
        rest = &rest[digits..];
        let unit_len = rest.bytes().take_while(|b| !b.is_ascii_digit()).count();
        if unit_len == 0 {
            return Err(invalid());
        }
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let Some(&(_, order, mult)) = UNITS.iter().find(|(name, _, _)| *name == unit) else {
            return Err(format!("unknown unit {} in duration {}", super::strconv::quote(unit), super::strconv::quote(s)));
        };
        if order <= last_order {
            return Err(invalid());
        }
        last_order = order;
        if v > (1u64 << 63) / mult {
            return Err("duration out of range".to_string());
        }
        total += v * mult;
        if total > i64::MAX as u64 {
            return Err("duration out of range".to_string());
        }
    }
    Ok(total)
}

/// Prometheus' `parseDuration` template function: a duration string, possibly negative,
/// as seconds.
pub(super) fn parse_duration_seconds(s: &str) -> Result<f64, String> {
    let (neg, body) = match s.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, s),
    };
    let ns = parse_model_duration(body)? as f64;
    let secs = ns / 1e9;
    Ok(if neg { -secs } else { secs })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn humanize_family() {
        assert_eq!(humanize(1234567.0), "1.235M");
        assert_eq!(humanize(0.001234), "1.234m");
        assert_eq!(humanize(0.0), "0");
        assert_eq!(humanize(-1500.0), "-1.5k");
        assert_eq!(humanize(f64::NAN), "NaN");
        assert_eq!(humanize(f64::INFINITY), "+Inf");
        assert_eq!(humanize1024(1048576.0), "1Mi");
        assert_eq!(humanize1024(0.5), "0.5");
        assert_eq!(humanize_duration(3661.0), "1h 1m 1s");
        assert_eq!(humanize_duration(0.5), "500ms");
        assert_eq!(humanize_duration(0.0), "0s");
        assert_eq!(humanize_duration(-(86400.0 * 2.0 + 3600.0 * 3.0 + 60.0 * 4.0 + 5.0)), "-2d 3h 4m 5s");
        assert_eq!(humanize_duration(12.345), "12.35s");
        assert_eq!(humanize_duration(0.0001), "100us");
        assert_eq!(humanize_percentage(0.1234), "12.34%");
        assert_eq!(humanize_timestamp(1700000000.0), Ok("2023-11-14 22:13:20 +0000 UTC".to_string()));
    }

    #[test]
    fn conversions_and_durations() {
        assert_eq!(convert_to_float(&Val::Str("abc".into())), Err(r#"strconv.ParseFloat: parsing "abc": invalid syntax"#.to_string()));
        assert_eq!(convert_to_float(&Val::Bool(true)), Err("can't convert bool to float".to_string()));
        assert_eq!(convert_to_float(&Val::Nil), Err("can't convert <nil> to float".to_string()));
        assert_eq!(parse_duration_seconds("1h30m"), Ok(5400.0));
        assert_eq!(parse_duration_seconds("-1m"), Ok(-60.0));
        assert_eq!(parse_duration_seconds("100ms"), Ok(0.1));
        assert_eq!(parse_duration_seconds("1m1h"), Err(r#"not a valid duration string: "1m1h""#.to_string()));
        assert_eq!(parse_duration_seconds("5x"), Err(r#"unknown unit "x" in duration "5x""#.to_string()));
        assert_eq!(parse_duration_seconds(""), Err("empty duration string".to_string()));
        assert_eq!(to_duration_nanos(1.5), 1_500_000_000);
    }
}
