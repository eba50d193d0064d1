//! Go `strconv` behaviour the template engine depends on: quoting (error messages and `%q`),
//! unquoting of template literals, and number parsing with Go's accepted syntax and error texts.

/// Go's `unicode.IsPrint`, approximated with what Rust's standard library can tell: categories
/// Cc/Zs/Zl/Zp are excluded via `is_control`/`is_whitespace`, format and private-use characters
/// via a table. Unassigned code points are treated as printable (Go treats them as not printable).
pub(super) fn is_print(c: char) -> bool {
    if c.is_ascii() {
        return (' '..='~').contains(&c);
    }
    if c.is_control() || c.is_whitespace() {
        return false;
    }
    !matches!(c as u32,
        0xAD | 0x600..=0x605 | 0x61C | 0x6DD | 0x70F | 0x890..=0x891 | 0x8E2 | 0x180E | 0x200B..=0x200F | 0x202A..=0x202E
        | 0x2060..=0x2064 | 0x2066..=0x206F | 0xFEFF | 0xFFF9..=0xFFFB | 0x110BD | 0x110CD | 0x13430..=0x1343F
        | 0x1BCA0..=0x1BCA3 | 0x1D173..=0x1D17A | 0xE0001 | 0xE0020..=0xE007F | 0xE000..=0xF8FF | 0xF0000..=0xFFFFD
        | 0x100000..=0x10FFFD)
}

/// Go's `strconv.Quote`: double-quoted with Go escapes for non-printable characters.
pub(super) fn quote(s: &str) -> String {
    quote_with(s, '"', false)
}

/// Go's `strconv.QuoteToASCII` (used by `%+q`).
pub(super) fn quote_ascii(s: &str) -> String {
    quote_with(s, '"', true)
}

/// Go's `strconv.QuoteRune` / `QuoteRuneToASCII` (used by `%q` on integers).
pub(super) fn quote_rune(c: char, ascii_only: bool) -> String {
    let mut out = String::from('\'');
    push_quoted_char(&mut out, c, '\'', ascii_only);
    out.push('\'');
    out
}

fn quote_with(s: &str, q: char, ascii_only: bool) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push(q);
    for c in s.chars() {
        push_quoted_char(&mut out, c, q, ascii_only);
    }
    out.push(q);
    out
}

fn push_quoted_char(out: &mut String, c: char, q: char, ascii_only: bool) {
    if c == q || c == '\\' {
        out.push('\\');
        out.push(c);
        return;
    }
    let printable = if ascii_only { c.is_ascii() && is_print(c) } else { is_print(c) };
    if printable {
        out.push(c);
        return;
    }
    match c {
        '\x07' => out.push_str("\\a"),
        '\x08' => out.push_str("\\b"),
        '\x0c' => out.push_str("\\f"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        '\x0b' => out.push_str("\\v"),
        c if (c as u32) < 0x20 || c == '\x7f' => out.push_str(&format!("\\x{:02x}", c as u32)),
        c if (c as u32) < 0x10000 => out.push_str(&format!("\\u{:04x}", c as u32)),
        c => out.push_str(&format!("\\U{:08x}", c as u32)),
    }
}

/// Go's `strconv.CanBackquote` (used by `%#q`).
pub(super) fn can_backquote(s: &str) -> bool {
    s.chars().all(|c| c != '\u{feff}' && c != '`' && c != '\x7f' && (c >= ' ' || c == '\t'))
}

/// The error Go's `strconv` returns: `ErrSyntax` or `ErrRange`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum NumError {
    Syntax,
    Range,
}

impl NumError {
    /// The bare error text (`invalid syntax`), as the template parser reports it.
    pub(super) fn message_text(self) -> &'static str {
        match self {
            NumError::Syntax => "invalid syntax",
            NumError::Range => "value out of range",
        }
    }

    /// The message of Go's `*strconv.NumError` for function `func` and input `input`.
    pub(super) fn message(self, func: &str, input: &str) -> String {
        format!("strconv.{func}: parsing {}: {}", quote(input), self.message_text())
    }
}

/// One character decoded by Go's `strconv.UnquoteChar`: the value and whether it came from a byte
/// escape (`\x..` or octal), which Go inserts as a raw byte rather than as UTF-8.
pub(super) struct Unquoted<'a> {
    pub(super) value: u32,
    pub(super) is_byte: bool,
    pub(super) rest: &'a str,
}

/// Go's `strconv.UnquoteChar`: decodes the first character or escape sequence of `s`.
pub(super) fn unquote_char(s: &str, quote: char) -> Result<Unquoted<'_>, NumError> {
    let mut chars = s.chars();
    let c = chars.next().ok_or(NumError::Syntax)?;
    if c == quote && (quote == '\'' || quote == '"') {
        return Err(NumError::Syntax);
    }
    if c != '\\' {
        return Ok(Unquoted { value: c as u32, is_byte: false, rest: chars.as_str() });
    }
    let esc = chars.next().ok_or(NumError::Syntax)?;
    let rest = chars.as_str();
    let simple = |v: u32| Ok(Unquoted { value: v, is_byte: false, rest });
    match esc {
        'a' => simple(7),
        'b' => simple(8),
        'f' => simple(12),
        'n' => simple(10),
        'r' => simple(13),
        't' => simple(9),
        'v' => simple(11),
        '\\' => simple('\\' as u32),
        '\'' | '"' if esc == quote => simple(esc as u32),
        'x' | 'u' | 'U' => {
            let n = match esc {
                'x' => 2,
                'u' => 4,
                _ => 8,
            };
            let digits = rest.get(..n).ok_or(NumError::Syntax)?;
            if !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(NumError::Syntax);
            }
            let v = u32::from_str_radix(digits, 16).map_err(|_| NumError::Syntax)?;
            if esc != 'x' && char::from_u32(v).is_none() {
                return Err(NumError::Syntax);
            }
            Ok(Unquoted { value: v, is_byte: esc == 'x', rest: &rest[n..] })
        }
        '0'..='7' => {
            let digits = s.get(1..4).ok_or(NumError::Syntax)?;
            if !digits.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
                return Err(NumError::Syntax);
            }
            let v = u32::from_str_radix(digits, 8).map_err(|_| NumError::Syntax)?;
            if v > 255 {
                return Err(NumError::Syntax);
            }
            Ok(Unquoted { value: v, is_byte: true, rest: &s[4..] })
        }
        _ => Err(NumError::Syntax),
    }
}

/// Go's `strconv.Unquote` for the string literals the lexer produces ("..." or `...`).
/// Byte escapes above 0x7f cannot be represented in a Rust string and become U+FFFD.
pub(super) fn unquote(lit: &str) -> Result<String, NumError> {
    if let Some(raw) = lit.strip_prefix('`').and_then(|s| s.strip_suffix('`')) {
        return Ok(raw.replace('\r', ""));
    }
    let mut body = lit.strip_prefix('"').and_then(|s| s.strip_suffix('"')).ok_or(NumError::Syntax)?;
    let mut out = String::with_capacity(body.len());
    while !body.is_empty() {
        let u = unquote_char(body, '"')?;
        let c = if u.is_byte && u.value > 0x7f { Some('\u{fffd}') } else { char::from_u32(u.value) };
        out.push(c.ok_or(NumError::Syntax)?);
        body = u.rest;
    }
    Ok(out)
}

/// Go's `underscoreOK` (shared with PromQL's number parsing), after an optional sign.
fn underscore_ok(s: &str) -> bool {
    crate::promql::functions::go_underscores_ok(s.strip_prefix(['+', '-']).unwrap_or(s))
}

/// Go's `strconv.ParseUint(s, 0, 64)`: base prefixes, a leading 0 meaning octal, underscores.
pub(super) fn parse_uint_base0(s: &str) -> Result<u64, NumError> {
    let b = s.as_bytes();
    if b.is_empty() {
        return Err(NumError::Syntax);
    }
    let (base, digits): (u64, &[u8]) = if b[0] == b'0' {
        match b.get(1).map(u8::to_ascii_lowercase) {
            Some(b'b') if b.len() >= 3 => (2, &b[2..]),
            Some(b'o') if b.len() >= 3 => (8, &b[2..]),
            Some(b'x') if b.len() >= 3 => (16, &b[2..]),
            _ => (8, &b[1..]),
        }
    } else {
        (10, b)
    };
    let mut n: u64 = 0;
    let mut underscores = false;
    let mut overflow = false;
    for &c in digits {
        if c == b'_' {
            underscores = true;
            continue;
        }
        let d = match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'z' => c - b'a' + 10,
            b'A'..=b'Z' => c - b'A' + 10,
            _ => return Err(NumError::Syntax),
        };
        if u64::from(d) >= base {
            return Err(NumError::Syntax);
        }
        match n.checked_mul(base).and_then(|m| m.checked_add(u64::from(d))) {
            Some(m) => n = m,
            None => overflow = true,
        }
    }
    if underscores && !underscore_ok(s) {
        return Err(NumError::Syntax);
    }
    if overflow { Err(NumError::Range) } else { Ok(n) }
}

/// Go's `strconv.ParseInt(s, 0, 64)`.
pub(super) fn parse_int_base0(s: &str) -> Result<i64, NumError> {
    let (neg, body) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let u = parse_uint_base0(body)?;
    if neg {
        if u > 1u64 << 63 {
            return Err(NumError::Range);
        }
        Ok(0i64.wrapping_sub_unsigned(u))
    } else {
        i64::try_from(u).map_err(|_| NumError::Range)
    }
}

/// Go's `strconv.ParseFloat(s, 64)`: decimal and hexadecimal syntax, underscores,
/// `inf`/`infinity`/`nan` in any case; overflow is a range error.
pub(super) fn parse_float(s: &str) -> Result<f64, NumError> {
    if let Some(f) = special_float(s) {
        return Ok(f);
    }
    let hex = read_float(s).ok_or(NumError::Syntax)?;
    let f = if hex { hex_float(s) } else { s.replace('_', "").parse::<f64>().map_err(|_| NumError::Syntax)? };
    if f.is_infinite() { Err(NumError::Range) } else { Ok(f) }
}

fn special_float(s: &str) -> Option<f64> {
    let (sign, body) = match s.as_bytes().first() {
        Some(b'-') => (-1.0, &s[1..]),
        Some(b'+') => (1.0, &s[1..]),
        _ => (1.0, s),
    };
    let lower = body.to_ascii_lowercase();
    if lower == "inf" || lower == "infinity" {
        return Some(sign * f64::INFINITY);
    }
    (lower == "nan" && body.len() == s.len()).then_some(f64::NAN)
}

/// Validates Go float syntax over the whole string; returns whether it is hexadecimal.
fn read_float(s: &str) -> Option<bool> {
    let b = s.as_bytes();
    let mut i = 0;
    if matches!(b.first(), Some(b'+' | b'-')) {
        i += 1;
    }
    let hex = i + 2 < b.len() && b[i] == b'0' && b[i + 1].eq_ignore_ascii_case(&b'x');
    if hex {
        i += 2;
    }
    let (mut saw_dot, mut saw_digits, mut underscores) = (false, false, false);
    while i < b.len() {
        let c = b[i];
        if c == b'_' {
            underscores = true;
        } else if c == b'.' {
            if saw_dot {
                break;
            }
            saw_dot = true;
        } else if c.is_ascii_digit() || (hex && c.is_ascii_hexdigit()) {
            saw_digits = true;
        } else {
            break;
        }
        i += 1;
    }
    if !saw_digits {
        return None;
    }
    let exp_char = if hex { b'p' } else { b'e' };
    if i < b.len() && b[i].to_ascii_lowercase() == exp_char {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if !b.get(i).is_some_and(u8::is_ascii_digit) {
            return None;
        }
        while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'_') {
            underscores |= b[i] == b'_';
            i += 1;
        }
    } else if hex {
        return None;
    }
    if i != b.len() || (underscores && !underscore_ok(s)) {
        return None;
    }
    Some(hex)
}

/// Value of a syntactically valid hexadecimal float (validated by `read_float`).
fn hex_float(s: &str) -> f64 {
    let neg = s.starts_with('-');
    let body = s.trim_start_matches(['+', '-']);
    let body = &body[2..];
    let (mant_part, exp_part) = body.split_once(['p', 'P']).unwrap_or((body, "0"));
    let mut mant: u128 = 0;
    let mut exp: i64 = exp_part.replace('_', "").parse::<i64>().unwrap_or(i64::MAX / 2).clamp(-100_000, 100_000);
    let mut after_dot = false;
    for c in mant_part.chars() {
        match c {
            '.' => after_dot = true,
            '_' => {}
            c => {
                let d = u128::from(c.to_digit(16).unwrap_or(0));
                if mant >> 120 == 0 {
                    mant = mant * 16 + d;
                    if after_dot {
                        exp -= 4;
                    }
                } else if !after_dot {
                    exp += 4;
                }
            }
        }
    }
    let mut f = mant as f64;
    while exp > 0 {
        let step = exp.min(512);
        f *= 2f64.powi(step as i32);
        exp -= step;
    }
    while exp < 0 {
        let step = exp.max(-512);
        f *= 2f64.powi(step as i32);
        exp -= step;
    }
    if neg { -f } else { f }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(quote("a\"b\\c\n\t\x01é\u{200b}"), r#""a\"b\\c\n\t\x01é\u200b""#);
        assert_eq!(quote_ascii("é😀"), r#""\u00e9\U0001f600""#);
        assert_eq!(quote_rune('\'', false), r"'\''");
        assert!(can_backquote("a\tb") && !can_backquote("a`b"));
    }

    #[test]
    fn unquoting() {
        assert_eq!(unquote(r#""a\tb\u00e9\101""#), Ok("a\tbéA".to_string()));
        assert_eq!(unquote("`a\r\\n`"), Ok("a\\n".to_string()));
        assert_eq!(unquote(r#""\'""#), Err(NumError::Syntax));
        assert_eq!(unquote(r#""\q""#), Err(NumError::Syntax));
    }

    #[test]
    fn integers() {
        assert_eq!(parse_int_base0("0x1F"), Ok(31));
        assert_eq!(parse_int_base0("017"), Ok(15));
        assert_eq!(parse_int_base0("-1_000"), Ok(-1000));
        assert_eq!(parse_int_base0("089"), Err(NumError::Syntax));
        assert_eq!(parse_int_base0("9223372036854775808"), Err(NumError::Range));
        assert_eq!(parse_int_base0("-9223372036854775808"), Ok(i64::MIN));
        assert_eq!(parse_uint_base0("18446744073709551615"), Ok(u64::MAX));
        assert_eq!(parse_uint_base0("1__0"), Err(NumError::Syntax));
    }

    #[test]
    fn floats() {
        assert_eq!(parse_float("1.5e3"), Ok(1500.0));
        assert_eq!(parse_float("-Inf"), Ok(f64::NEG_INFINITY));
        assert!(parse_float("NaN").is_ok_and(f64::is_nan));
        assert_eq!(parse_float("+nan"), Err(NumError::Syntax));
        assert_eq!(parse_float("0x1p-2"), Ok(0.25));
        assert_eq!(parse_float("0x1.8p1"), Ok(3.0));
        assert_eq!(parse_float("1e400"), Err(NumError::Range));
        assert_eq!(parse_float("abc"), Err(NumError::Syntax));
        assert_eq!(parse_float(""), Err(NumError::Syntax));
        assert_eq!(parse_float(".5"), Ok(0.5));
        assert_eq!(parse_float("1."), Ok(1.0));
        assert_eq!(NumError::Syntax.message("ParseFloat", "x"), r#"strconv.ParseFloat: parsing "x": invalid syntax"#);
    }
}
