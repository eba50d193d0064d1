//! Prometheus' string helpers with Go semantics: `title` (x/text `cases.Title` with
//! `NoLower`), `toUpper`/`toLower` (Go's per-rune simple case mapping), `stripPort` and
//! `stripDomain` (Go's `net.SplitHostPort`/`net.ParseIP`/`net.JoinHostPort`).

/// Word-break class of an uncased character, as x/text's title caser collapses Unicode's
/// word-break property: `Mid` characters join words unless doubled, `Break` ends a word.
#[derive(Clone, Copy, PartialEq, Eq)]
enum WordClass {
    Letter,
    Mid,
    Break,
}

fn word_class(c: char) -> WordClass {
    match c {
        // MidLetter, MidNumLet and Single_Quote.
        '\'' | '.' | ':' | '\u{b7}' | '\u{387}' | '\u{55f}' | '\u{5f4}' | '\u{2018}' | '\u{2019}' | '\u{2024}' | '\u{2027}'
        | '\u{fe13}' | '\u{fe52}' | '\u{fe55}' | '\u{ff07}' | '\u{ff0e}' | '\u{ff1a}' => WordClass::Mid,
        // ExtendNumLet, ZWJ/ZWNJ and other format characters.
        '_'
        | '\u{202f}'
        | '\u{203f}'
        | '\u{2040}'
        | '\u{2054}'
        | '\u{fe33}'
        | '\u{fe34}'
        | '\u{fe4d}'..='\u{fe4f}'
        | '\u{ff3f}'
        | '\u{ad}'
        | '\u{200c}'
        | '\u{200d}'
        | '\u{2060}'..='\u{2064}' => WordClass::Letter,
        // Scripts whose letters are not word letters (ALetter) in Unicode's word breaking.
        '\u{e00}'..='\u{eff}'
        | '\u{1000}'..='\u{109f}'
        | '\u{1780}'..='\u{17ff}'
        | '\u{3040}'..='\u{30ff}'
        | '\u{31f0}'..='\u{31ff}'
        | '\u{3400}'..='\u{4dbf}'
        | '\u{4e00}'..='\u{9fff}'
        | '\u{f900}'..='\u{faff}'
        | '\u{ff66}'..='\u{ff9f}'
        | '\u{20000}'..='\u{3ffff}' => WordClass::Break,
        c if c.is_alphanumeric() => WordClass::Letter,
        _ => WordClass::Break,
    }
}

fn is_titlecase_letter(c: char) -> bool {
    matches!(c, '\u{1c5}' | '\u{1c8}' | '\u{1cb}' | '\u{1f2}' | '\u{1f88}'..='\u{1f8f}' | '\u{1f98}'..='\u{1f9f}' | '\u{1fa8}'..='\u{1faf}' | '\u{1fbc}' | '\u{1fcc}' | '\u{1ffc}')
}

fn is_cased(c: char) -> bool {
    c.is_lowercase() || c.is_uppercase() || is_titlecase_letter(c)
}

/// Unicode title-case mapping of one character (upper case except for digraphs and ligatures).
fn push_title(out: &mut String, c: char) {
    match c {
        '\u{1c4}'..='\u{1c6}' => out.push('\u{1c5}'),
        '\u{1c7}'..='\u{1c9}' => out.push('\u{1c8}'),
        '\u{1ca}'..='\u{1cc}' => out.push('\u{1cb}'),
        '\u{1f1}'..='\u{1f3}' => out.push('\u{1f2}'),
        'ß' => out.push_str("Ss"),
        '\u{fb00}' => out.push_str("Ff"),
        '\u{fb01}' => out.push_str("Fi"),
        '\u{fb02}' => out.push_str("Fl"),
        '\u{fb03}' => out.push_str("Ffi"),
        '\u{fb04}' => out.push_str("Ffl"),
        '\u{fb05}' | '\u{fb06}' => out.push_str("St"),
        c => out.extend(c.to_uppercase()),
    }
}

/// Prometheus' `title`: `cases.Title(language.AmericanEnglish, cases.NoLower)`. The first cased
/// letter of each word is title-cased; the rest is left alone. Words are split at characters
/// that are neither letters/digits nor word-joining punctuation (`'`, `.`, `:`), e.g.
/// `foo-bar baz.qux` → `Foo-Bar Baz.qux`.
pub(super) fn title(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut mid_word = false;
    let mut prev_mid = false;
    for c in s.chars() {
        let class = word_class(c);
        if prev_mid && class == WordClass::Mid {
            mid_word = false;
        }
        if is_cased(c) {
            if mid_word {
                out.push(c);
            } else {
                push_title(&mut out, c);
                mid_word = true;
            }
        } else {
            out.push(c);
            if class == WordClass::Break {
                mid_word = false;
            }
        }
        prev_mid = class == WordClass::Mid;
    }
    out
}

/// Go's `strings.ToUpper`: per-character simple upper-case mapping.
pub(super) fn to_upper(s: &str) -> String {
    s.chars()
        .map(|c| {
            let mut up = c.to_uppercase();
            match (up.next(), up.next()) {
                (Some(u), None) => u,
                _ => match c {
                    '\u{1f80}'..='\u{1f87}' | '\u{1f90}'..='\u{1f97}' | '\u{1fa0}'..='\u{1fa7}' => {
                        char::from_u32(c as u32 + 8).unwrap_or(c)
                    }
                    '\u{1fb3}' => '\u{1fbc}',
                    '\u{1fc3}' => '\u{1fcc}',
                    '\u{1ff3}' => '\u{1ffc}',
                    _ => c,
                },
            }
        })
        .collect()
}

/// Go's `strings.ToLower`: per-character simple lower-case mapping.
pub(super) fn to_lower(s: &str) -> String {
    s.chars()
        .map(|c| {
            let mut low = c.to_lowercase();
            match (low.next(), low.next()) {
                (Some(l), None) => l,
                _ if c == '\u{130}' => 'i',
                _ => c,
            }
        })
        .collect()
}

/// Go's `net.SplitHostPort`, returning None where Go returns an error.
fn split_host_port(hostport: &str) -> Option<(&str, &str)> {
    let i = hostport.rfind(':')?;
    let (host, j, k) = if hostport.starts_with('[') {
        let end = hostport.find(']')?;
        if end + 1 != i {
            return None;
        }
        (&hostport[1..end], 1, end + 1)
    } else {
        let host = &hostport[..i];
        if host.contains(':') {
            return None;
        }
        (host, 0, 0)
    };
    if hostport[j..].contains('[') || hostport[k..].contains(']') {
        return None;
    }
    Some((host, &hostport[i + 1..]))
}

/// Prometheus' `stripPort`: the host part of host:port, or the input if it has no port.
pub(super) fn strip_port(hostport: &str) -> String {
    split_host_port(hostport).map_or(hostport, |(host, _)| host).to_string()
}

/// Prometheus' `stripDomain`: keeps the first label of a hostname (and the port), leaving
/// IP addresses untouched, e.g. `node1.example.com:9100` → `node1:9100`.
pub(super) fn strip_domain(hostport: &str) -> String {
    let (host, port) = split_host_port(hostport).unwrap_or((hostport, ""));
    if host.parse::<std::net::IpAddr>().is_ok() {
        return hostport.to_string();
    }
    let host = host.split('.').next().unwrap_or(host);
    if port.is_empty() {
        host.to_string()
    } else if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn title_case() {
        // Expected values produced by golang.org/x/text/cases v0.40.0.
        assert_eq!(title("1st o'neil foo:bar a..b foo_bar x-y"), "1St O'neil Foo:bar A..B Foo_bar X-Y");
        assert_eq!(title("hELLO wORLD"), "HELLO WORLD");
    }

    #[test]
    fn case_mapping() {
        assert_eq!(to_upper("straße ǆ"), "STRAßE Ǆ");
        assert_eq!(to_lower("İSTANBUL"), "istanbul");
    }

    #[test]
    fn host_port() {
        assert_eq!(strip_port("host:9090"), "host");
        assert_eq!(strip_port("[::1]:9090"), "::1");
        assert_eq!(strip_port("host"), "host");
        assert_eq!(strip_port("a:b:c"), "a:b:c");
        assert_eq!(strip_domain("node1.example.com:9100"), "node1:9100");
        assert_eq!(strip_domain("node1.example.com"), "node1");
        assert_eq!(strip_domain("10.0.0.1:9100"), "10.0.0.1:9100");
        assert_eq!(strip_domain("[::1]:9100"), "[::1]:9100");
    }
}
