//! Durations (`15d`, `1h30m`, `500ms`) and sizes (`512MB`, `10GiB`) written the
//! way Prometheus flags and configuration files write them.

/// A duration string could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid duration {input:?}: {reason}")]
pub struct DurationError {
    pub input: String,
    pub reason: &'static str,
}

/// Parses a Prometheus duration into milliseconds: one or more `<int><unit>`
/// terms with units `y`, `w`, `d`, `h`, `m`, `s`, `ms` in decreasing order.
pub fn parse_duration_ms(s: &str) -> Result<i64, DurationError> {
    let err = |reason| DurationError { input: s.to_string(), reason };
    if s == "0" {
        return Ok(0);
    }
    if s.is_empty() {
        return Err(err("empty"));
    }
    let units: [(&str, i64); 7] =
        [("y", 365 * 86_400_000), ("w", 7 * 86_400_000), ("d", 86_400_000), ("h", 3_600_000), ("ms", 1), ("m", 60_000), ("s", 1000)];
    let order = ["y", "w", "d", "h", "m", "s", "ms"];
    let mut rest = s;
    let mut total: i64 = 0;
    let mut last_rank = None;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(err("expected a number"));
        }
        let n: i64 = rest[..digits].parse().map_err(|_| err("number too large"))?;
        rest = &rest[digits..];
        let (unit, mult) = units.iter().find(|(u, _)| rest.starts_with(u)).ok_or_else(|| err("expected a unit (y, w, d, h, m, s, ms)"))?;
        let rank = order.iter().position(|o| o == unit);
        if last_rank.is_some_and(|l| rank <= Some(l)) {
            return Err(err("units must appear once each, largest first"));
        }
        last_rank = rank;
        rest = &rest[unit.len()..];
        total = n.checked_mul(*mult).and_then(|v| total.checked_add(v)).ok_or_else(|| err("duration too large"))?;
    }
    Ok(total)
}

/// A size string could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid size {input:?}: expected a number followed by B, KB, MB, GB, TB, PB or EB")]
pub struct SizeError {
    pub input: String,
}

/// Parses a byte size like Prometheus' `--storage.tsdb.retention.size`
/// (units are powers of 1024; `KiB`-style spellings are accepted too).
pub fn parse_size_bytes(s: &str) -> Result<u64, SizeError> {
    let err = || SizeError { input: s.to_string() };
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return Err(err());
    }
    let n: u64 = s[..digits].parse().map_err(|_| err())?;
    let unit = s[digits..].trim().to_ascii_uppercase().replace("IB", "B");
    let shift = match unit.as_str() {
        "" | "B" => 0,
        "KB" => 10,
        "MB" => 20,
        "GB" => 30,
        "TB" => 40,
        "PB" => 50,
        "EB" => 60,
        _ => return Err(err()),
    };
    n.checked_mul(1u64 << shift).ok_or_else(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_like_prometheus() {
        assert_eq!(parse_duration_ms("15d"), Ok(15 * 86_400_000));
        assert_eq!(parse_duration_ms("1h30m"), Ok(5_400_000));
        assert_eq!(parse_duration_ms("500ms"), Ok(500));
        assert_eq!(parse_duration_ms("1m5s"), Ok(65_000));
        assert_eq!(parse_duration_ms("0"), Ok(0));
        assert!(parse_duration_ms("5").is_err());
        assert!(parse_duration_ms("1s1m").is_err());
        assert!(parse_duration_ms("1x").is_err());
        assert!(parse_duration_ms("").is_err());
    }

    #[test]
    fn sizes_parse_in_powers_of_1024() {
        assert_eq!(parse_size_bytes("512MB"), Ok(512 << 20));
        assert_eq!(parse_size_bytes("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size_bytes("100"), Ok(100));
        assert!(parse_size_bytes("MB").is_err());
        assert!(parse_size_bytes("5XB").is_err());
    }
}
