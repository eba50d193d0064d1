//! Go's text formatting (`%q`, `%g`), so messages read exactly like
//! Prometheus' (functions and aggregations both quote it).

/// Quotes like Go's `%q`: double quotes, backslash escapes for quotes,
/// backslashes and control characters.
pub(crate) fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Formats like Go's `%g` (`prec` None: shortest round-trip digits) or
/// `%.<prec>g`.
pub(crate) fn go_fmt_g(f: f64, prec: Option<usize>) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "+Inf" } else { "-Inf" }.into();
    }
    let neg = f.is_sign_negative();
    let a = f.abs();
    // Decimal digits and the decimal point's position (value = 0.d1d2... * 10^dp).
    let (digits, dp): (Vec<u8>, i64) = if a == 0.0 {
        (Vec::new(), 0)
    } else {
        let s = match prec {
            None => format!("{a:e}"),
            Some(p) => format!("{a:.*e}", p.max(1) - 1),
        };
        let (mant, exp) = s.split_once('e').unwrap_or((&s, "0"));
        let exp: i64 = exp.parse().unwrap_or(0);
        let mut d: Vec<u8> = mant.bytes().filter(u8::is_ascii_digit).collect();
        while d.len() > 1 && d.last() == Some(&b'0') {
            d.pop();
        }
        (d, exp + 1)
    };
    let nd = digits.len() as i64;
    let mut p = match prec {
        None => nd,
        Some(p) => p.max(1) as i64,
    };
    let mut eprec = p;
    if eprec > nd && nd >= dp {
        eprec = nd;
    }
    if prec.is_none() {
        eprec = 6;
    }
    let exp = dp - 1;
    let mut out = String::new();
    if neg {
        out.push('-');
    }
    let digit = |i: i64| -> char { if i >= 0 && i < nd { digits[i as usize] as char } else { '0' } };
    if exp < -4 || exp >= eprec {
        if p > nd {
            p = nd;
        }
        out.push(digit(0));
        if p > 1 {
            out.push('.');
            for i in 1..p {
                out.push(digit(i));
            }
        }
        let e = if nd == 0 { 0 } else { exp };
        out.push('e');
        out.push(if e < 0 { '-' } else { '+' });
        let e = e.unsigned_abs();
        if e < 10 {
            out.push('0');
        }
        out.push_str(&e.to_string());
    } else {
        if p > dp {
            p = nd;
        }
        let decimals = (p - dp).max(0);
        if dp > 0 {
            for i in 0..dp {
                out.push(digit(i));
            }
        } else {
            out.push('0');
        }
        if decimals > 0 {
            out.push('.');
            for i in 1..=decimals {
                out.push(digit(dp + i - 1));
            }
        }
    }
    out
}

/// Go's `strconv.FormatFloat(v, 'e', -1, 64)` (or `'E'` with `upper`): the
/// shortest exponent form, exponent signed and at least two digits. The
/// rules API shows alert values so; promtool prints expected samples so.
pub(crate) fn format_float_e(v: f64, upper: bool) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "+Inf".into() } else { "-Inf".into() };
    }
    let s = format!("{v:e}");
    let (mantissa, exp) = s.split_once('e').unwrap_or((&s, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let e = if upper { 'E' } else { 'e' };
    format!("{mantissa}{e}{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs())
}
