//! Go's `strconv.FormatFloat` (formats `b`, `e`, `E`, `f`, `g`, `G`, `x`, `X`), which `fmt` verbs, `%v`
//! printing of floats and Prometheus' `%.4g` humanizing depend on. Digits come from Rust's
//! correctly rounded float formatting; layout and exponent rules follow Go.

/// Decimal digits of a float: `d` without trailing zeros (empty for zero), decimal point at `dp`.
struct Digits {
    d: Vec<u8>,
    dp: i64,
}

impl Digits {
    fn nd(&self) -> i64 {
        self.d.len() as i64
    }

    /// Parses Rust's `{:e}` output such as `1.2345e-5`.
    fn from_sci(s: &str) -> Digits {
        let (mant, exp) = s.split_once('e').unwrap_or((s, "0"));
        let mut d: Vec<u8> = mant.bytes().filter(u8::is_ascii_digit).collect();
        while d.last() == Some(&b'0') {
            d.pop();
        }
        let exp: i64 = exp.parse().unwrap_or(0);
        if d.is_empty() { Digits { d, dp: 0 } } else { Digits { d, dp: exp + 1 } }
    }

    /// Shortest digits that round-trip (Go's precision -1).
    fn shortest(a: f64) -> Digits {
        Digits::from_sci(&format!("{a:e}"))
    }

    /// Correctly rounded to `n` significant digits (n >= 1).
    fn rounded(a: f64, n: usize) -> Digits {
        Digits::from_sci(&format!("{:.*e}", n.saturating_sub(1), a))
    }

    fn digit(&self, i: i64) -> char {
        usize::try_from(i).ok().and_then(|i| self.d.get(i)).map_or('0', |b| char::from(*b))
    }

    /// Go's `fmtE`: d.ddddde±dd with `prec` digits after the point.
    fn fmt_e(&self, prec: i64, upper: bool) -> String {
        let mut s = String::new();
        s.push(self.digit(0));
        if prec > 0 {
            s.push('.');
            for i in 1..=prec {
                s.push(self.digit(i));
            }
        }
        s.push(if upper { 'E' } else { 'e' });
        let exp = if self.d.is_empty() { 0 } else { self.dp - 1 };
        s.push(if exp < 0 { '-' } else { '+' });
        s.push_str(&format!("{:02}", exp.unsigned_abs()));
        s
    }

    /// Go's `fmtF`: ddd.ddd with `prec` digits after the point.
    fn fmt_f(&self, prec: i64) -> String {
        let mut s = String::new();
        if self.dp > 0 {
            for i in 0..self.dp {
                s.push(self.digit(i));
            }
        } else {
            s.push('0');
        }
        if prec > 0 {
            s.push('.');
            for i in 1..=prec {
                s.push(self.digit(self.dp + i - 1));
            }
        }
        s
    }
}

/// Go's `strconv.FormatFloat(v, fmt, prec, 64)` for formats `b`, `e`, `E`, `f`, `g`, `G`, `x`, `X`;
/// `prec` None means Go's -1 (shortest representation that round-trips).
pub(super) fn format_float(v: f64, fmt: char, prec: Option<usize>) -> String {
    if v.is_nan() {
        return "NaN".to_string();
    }
    if v.is_infinite() {
        return if v > 0.0 { "+Inf" } else { "-Inf" }.to_string();
    }
    let sign = if v.is_sign_negative() { "-" } else { "" };
    let a = v.abs();
    let body = match fmt {
        'b' => return format_binary(v),
        'x' | 'X' => return format_hex(v, fmt == 'X', prec),
        'e' | 'E' => {
            let d = prec.map_or_else(|| Digits::shortest(a), |p| Digits::rounded(a, p + 1));
            let p = prec.map_or(d.nd() - 1, |p| p as i64);
            d.fmt_e(p, fmt == 'E')
        }
        'f' => match prec {
            Some(p) => format!("{a:.p$}"),
            None => {
                let d = Digits::shortest(a);
                d.fmt_f((d.nd() - d.dp).max(0))
            }
        },
        'g' | 'G' => {
            let (d, mut p, shortest) = match prec {
                None => {
                    let d = Digits::shortest(a);
                    let nd = d.nd();
                    (d, nd, true)
                }
                Some(p) => {
                    let p = p.max(1);
                    (Digits::rounded(a, p), p as i64, false)
                }
            };
            let mut eprec = p;
            if eprec > d.nd() && d.nd() >= d.dp {
                eprec = d.nd();
            }
            if shortest {
                eprec = 6;
            }
            let exp = d.dp - 1;
            if exp < -4 || exp >= eprec {
                if p > d.nd() {
                    p = d.nd();
                }
                d.fmt_e(p - 1, fmt == 'G')
            } else {
                if p > d.dp {
                    p = d.nd();
                }
                d.fmt_f((p - d.dp).max(0))
            }
        }
        other => return format!("%{other}"),
    };
    format!("{sign}{body}")
}

/// Go's `%x` for floats: hexadecimal mantissa and binary exponent, e.g. `0x1.8p+01`, rounded
/// to `prec` hex digits when given.
fn format_hex(v: f64, upper: bool, prec: Option<usize>) -> String {
    let bits = v.to_bits();
    let mut exp = ((bits >> 52) & 0x7ff) as i64;
    let mut mant = bits & ((1 << 52) - 1);
    if exp == 0 {
        exp = 1;
    } else {
        mant |= 1 << 52;
    }
    exp -= 1023;
    if mant == 0 {
        exp = 0;
    }
    // Normalise so the leading 1 (if any) is at bit 60.
    mant <<= 60 - 52;
    while mant != 0 && mant & (1 << 60) == 0 {
        mant <<= 1;
        exp -= 1;
    }
    if let Some(p) = prec.filter(|p| *p < 15) {
        let shift = (p * 4) as u32;
        let extra = (mant << shift) & ((1 << 60) - 1);
        mant >>= 60 - shift;
        if extra | (mant & 1) > 1 << 59 {
            mant += 1;
        }
        mant <<= 60 - shift;
        if mant & (1 << 61) != 0 {
            mant >>= 1;
            exp += 1;
        }
    }
    let digit = |d: u64| {
        let c = char::from_digit((d & 15) as u32, 16).unwrap_or('0');
        if upper { c.to_ascii_uppercase() } else { c }
    };
    let mut s = String::new();
    if bits >> 63 == 1 {
        s.push('-');
    }
    s.push_str(if upper { "0X" } else { "0x" });
    s.push(digit(mant >> 60));
    mant <<= 4;
    match prec {
        None if mant != 0 => {
            s.push('.');
            while mant != 0 {
                s.push(digit(mant >> 60));
                mant <<= 4;
            }
        }
        Some(p) if p > 0 => {
            s.push('.');
            for _ in 0..p {
                s.push(digit(mant >> 60));
                mant <<= 4;
            }
        }
        _ => {}
    }
    s.push(if upper { 'P' } else { 'p' });
    s.push(if exp < 0 { '-' } else { '+' });
    s.push_str(&format!("{:02}", exp.unsigned_abs()));
    s
}

/// Go's `%b` for floats: decimal mantissa and binary exponent, e.g. `4503599627370496p-52`.
fn format_binary(v: f64) -> String {
    let bits = v.to_bits();
    let sign = if bits >> 63 == 1 { "-" } else { "" };
    let mut exp = ((bits >> 52) & 0x7ff) as i64;
    let mut mant = bits & ((1 << 52) - 1);
    if exp == 0 {
        exp = 1;
    } else {
        mant |= 1 << 52;
    }
    exp += -1023 - 52;
    let esign = if exp >= 0 { "+" } else { "" };
    format!("{sign}{mant}p{esign}{exp}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_like_strconv() {
        let cases: &[(f64, char, Option<usize>, &str)] = &[
            (1e6, 'g', None, "1e+06"),
            (123456.0, 'g', None, "123456"),
            (0.1, 'g', None, "0.1"),
            (3.0, 'g', None, "3"),
            (1e-5, 'g', None, "1e-05"),
            (0.0001, 'g', None, "0.0001"),
            (1.234567, 'g', Some(4), "1.235"),
            (1.5, 'g', Some(4), "1.5"),
            (1e6, 'g', Some(4), "1e+06"),
            (123456.0, 'g', Some(4), "1.235e+05"),
            (0.0, 'g', Some(4), "0"),
            (-0.0, 'g', None, "-0"),
            (1.0, 'e', Some(6), "1.000000e+00"),
            (0.0, 'e', None, "0e+00"),
            (1e100, 'e', Some(2), "1.00e+100"),
            (3.14659, 'f', Some(2), "3.15"),
            (2.5, 'f', Some(0), "2"),
            (0.125, 'f', Some(2), "0.12"),
            (1.0, 'b', None, "4503599627370496p-52"),
            (f64::INFINITY, 'g', None, "+Inf"),
            (3.0, 'x', None, "0x1.8p+01"),
            (1.0, 'x', None, "0x1p+00"),
            (0.0, 'x', None, "0x0p+00"),
            (1e-7, 'X', None, "0X1.AD7F29ABCAF48P-24"),
            (-0.5, 'x', Some(3), "-0x1.000p-01"),
            (1.0 + 1.0 / 3.0, 'x', Some(2), "0x1.55p+00"),
        ];
        for (v, fmt, prec, want) in cases {
            assert_eq!(format_float(*v, *fmt, *prec), *want, "{v} {fmt} {prec:?}");
        }
    }

    #[test]
    fn shortest_and_precision_edge_cases() {
        assert_eq!(format_float(123456789.0, 'g', None), "1.23456789e+08");
        assert_eq!(format_float(1.0000001e15, 'g', Some(4)), "1e+15");
    }
}
