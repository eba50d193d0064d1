//! Parsing with Prometheus-style error positions.
//!
//! promql-parser reports what is wrong but not where. Users (and Grafana's
//! query editor) expect `line:col: parse error: …`, so the position is
//! recovered: from the message where it names the offending text, otherwise
//! by finding the shortest prefix of the query that already fails for a
//! reason other than having ended.

use promql_parser::parser::{self, Expr};

/// Parses `query`, or returns `"<line>:<col>: parse error: <message>"`.
pub fn parse(query: &str) -> Result<Expr, String> {
    parser::parse(query).map_err(|msg| {
        let at = locate(query, &msg);
        let (line, col) = line_col(query, at);
        format!("{line}:{col}: parse error: {msg}")
    })
}

fn line_col(query: &str, at: usize) -> (usize, usize) {
    let at = at.min(query.len());
    let before = &query[..at];
    let line = before.matches('\n').count() + 1;
    let col = before.rfind('\n').map_or(before.chars().count(), |n| before[n + 1..].chars().count()) + 1;
    (line, col)
}

fn is_end_error(msg: &str) -> bool {
    msg.contains("end of input") || msg.contains("unclosed left") || msg.contains("unexpected end") || msg == "invalid promql query"
}

/// Byte offset the error refers to.
fn locate(query: &str, msg: &str) -> usize {
    if msg.contains("unclosed left parenthesis") {
        if let Some(i) = last_unmatched(query, b'(', b')') {
            return i;
        }
    }
    if msg.contains("unclosed left bracket") {
        if let Some(i) = last_unmatched(query, b'[', b']') {
            return i;
        }
    }
    if msg.contains("end of input") {
        return query.trim_end().len();
    }
    // Messages that quote the offending text.
    for (prefix, end) in [("unknown function with name '", "'"), ("bad number or duration syntax: ", ""), ("illegal regex for ", "")] {
        if let Some(rest) = msg.split_once(prefix).map(|x| x.1) {
            let needle = if end.is_empty() { rest } else { rest.split(end).next().unwrap_or(rest) };
            if !needle.is_empty()
                && let Some(i) = query.find(needle)
            {
                return i;
            }
        }
    }
    // The first prefix that fails for a reason other than ending early; the
    // error is at its last character.
    let ends: Vec<usize> = query.char_indices().map(|(i, c)| i + c.len_utf8()).take(2000).collect();
    for &k in &ends {
        if let Err(m) = parser::parse(&query[..k])
            && !is_end_error(&m)
        {
            let last = query[..k].char_indices().last().map_or(0, |(i, _)| i);
            return last;
        }
    }
    // Every prefix only failed for ending early: the input ended too soon.
    query.trim_end().len()
}

/// Position of the last opening bracket without a match (outside strings).
fn last_unmatched(query: &str, open: u8, close: u8) -> Option<usize> {
    let mut stack = Vec::new();
    let mut quote: Option<u8> = None;
    let b = query.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        match quote {
            Some(_) if c == b'\\' => i += 1,
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if matches!(c, b'"' | b'\'' | b'`') => quote = Some(c),
            None if c == open => stack.push(i),
            None if c == close => {
                stack.pop();
            }
            None => {}
        }
        i += 1;
    }
    stack.pop()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(q: &str) -> String {
        parse(q).expect_err("invalid query")
    }

    #[test]
    fn errors_carry_line_and_column() {
        assert_eq!(err("sum("), "1:4: parse error: unclosed left parenthesis");
        assert!(err("rate(foo[5m]").starts_with("1:5: parse error:"), "{}", err("rate(foo[5m]"));
        assert!(err("unknown_fn(x)").starts_with("1:1: parse error: unknown function"), "{}", err("unknown_fn(x)"));
        assert!(err("foo[5x]").starts_with("1:5: parse error:"), "{}", err("foo[5x]"));
        assert!(err("sum(x)\n  + ").starts_with("2:"), "{}", err("sum(x)\n  + "));
        let e = err("foo bar");
        assert!(e.starts_with("1:") && e.contains("parse error"), "{e}");
    }
}
