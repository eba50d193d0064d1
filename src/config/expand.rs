//! Environment references in `global.external_labels` values, expanded when
//! the configuration is parsed, as Prometheus 3 does (Go's `os.Expand`): so
//! one generated configuration serves every replica, each filling in its own
//! `prometheus_replica: ${POD_NAME}`.

/// Replaces `${VAR}` and `$VAR` with `lookup(VAR)` (empty when `None`) and
/// `$$` with a literal `$`. Edge cases follow `os.Expand`: a `$` that no name
/// follows is kept, malformed `${` / `${}` are dropped, and one-character
/// shell specials (`$1`, `$@`, ...) are names of their own.
pub fn expand(s: &str, lookup: impl Fn(&str) -> Option<String>) -> String {
    let bytes = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    // Start of the text not yet copied.
    let mut copied = 0;
    let mut j = 0;
    while j < bytes.len() {
        if bytes[j] != b'$' || j + 1 >= bytes.len() {
            j += 1;
            continue;
        }
        out.push_str(&s[copied..j]);
        let (name, width) = shell_name(&s[j + 1..]);
        match name {
            "" if width > 0 => {} // invalid syntax: dropped
            "" => out.push('$'),
            "$" => out.push('$'),
            name => out.push_str(&lookup(name).unwrap_or_default()),
        }
        j += width + 1;
        copied = j;
    }
    out.push_str(&s[copied..]);
    out
}

/// The variable name at the start of `s` (the text after a `$`) and how
/// many bytes of `s` the reference takes; `("", n > 0)` is bad syntax.
/// Every boundary it returns follows an ASCII byte, so slicing is safe.
fn shell_name(s: &str) -> (&str, usize) {
    let b = s.as_bytes();
    if b[0] == b'{' {
        if b.len() > 2 && is_special(b[1]) && b[2] == b'}' {
            return (&s[1..2], 3);
        }
        return match b.iter().skip(1).position(|&c| c == b'}') {
            Some(0) => ("", 2),
            Some(i) => (&s[1..i + 1], i + 2),
            None => ("", 1),
        };
    }
    if is_special(b[0]) {
        return (&s[..1], 1);
    }
    let n = b.iter().take_while(|c| c.is_ascii_alphanumeric() || **c == b'_').count();
    (&s[..n], n)
}

/// Go's one-character shell variables.
fn is_special(c: u8) -> bool {
    matches!(c, b'*' | b'#' | b'$' | b'@' | b'!' | b'?' | b'-') || c.is_ascii_digit()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "POD_NAME" => Some("prom-0".to_string()),
            "A" => Some("x".to_string()),
            "A_1" => Some("y".to_string()),
            "weird name" => Some("w".to_string()),
            "1" => Some("one".to_string()),
            _ => None,
        }
    }

    #[test]
    fn braces_and_bare_names_are_replaced() {
        assert_eq!(expand("${POD_NAME}", env), "prom-0");
        assert_eq!(expand("$POD_NAME", env), "prom-0");
        assert_eq!(expand("replica-${POD_NAME}-x", env), "replica-prom-0-x");
        // A bare name takes every following letter, digit and underscore.
        assert_eq!(expand("$A_1.$A", env), "y.x");
        assert_eq!(expand("${A}_1", env), "x_1");
        assert_eq!(expand("${weird name}", env), "w");
    }

    #[test]
    fn unset_variables_are_empty() {
        assert_eq!(expand("${MISSING}", env), "");
        assert_eq!(expand("a-$MISSING-b", env), "a--b");
    }

    #[test]
    fn double_dollar_is_a_literal_dollar() {
        assert_eq!(expand("$$", env), "$");
        assert_eq!(expand("cost: $$5", env), "cost: $5");
        assert_eq!(expand("$${POD_NAME}", env), "${POD_NAME}");
        assert_eq!(expand("$$$A", env), "$x");
    }

    #[test]
    fn text_without_references_is_unchanged() {
        for s in ["", "plain", "eu-west-1", "ünïcödé ✓", "$", "a$", "50$ off$"] {
            assert_eq!(expand(s, env), s);
        }
        // A `$` followed by something that is not a name stays.
        assert_eq!(expand("$.x", env), "$.x");
        assert_eq!(expand("$ü", env), "$ü");
    }

    #[test]
    fn malformed_references_follow_go() {
        assert_eq!(expand("a${}b", env), "ab");
        assert_eq!(expand("a${POD_NAME", env), "aPOD_NAME");
        assert_eq!(expand("$1x", env), "onex");
        assert_eq!(expand("${1}", env), "one");
    }
}
