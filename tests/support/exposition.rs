//! An independent, deliberately small parser for what scrape targets serve:
//! the Prometheus text format 0.0.4 and OpenMetrics 1.0 text. It does not
//! share code with the crate's own parsers (src/scrape), so the real-target
//! test compares the server against a second reading of the same bytes.
//!
//! Handled: `# HELP` / `# TYPE` / `# UNIT` (to know each sample's family),
//! other comments, label values with `\\`, `\"` and `\n` escapes, trailing
//! commas in label sets, `NaN` / `+Inf` / `-Inf` values, optional timestamps,
//! OpenMetrics exemplars (` # {…} value [ts]`, skipped) and `# EOF`.
//! A sample that appears twice, an unknown escape or a malformed line is an
//! error: the test should notice a target that serves something odd.

use std::collections::{BTreeMap, HashSet};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Text,
    OpenMetrics,
}

impl Format {
    /// The format a response's Content-Type announces (text 0.0.4 by default,
    /// as Prometheus assumes).
    pub fn from_content_type(ct: Option<&str>) -> Format {
        match ct {
            Some(ct) if ct.trim_start().to_ascii_lowercase().starts_with("application/openmetrics-text") => Format::OpenMetrics,
            _ => Format::Text,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    /// The family the sample belongs to (the `# TYPE` name), or the sample's
    /// own name when it has no metadata.
    pub family: String,
    pub name: String,
    /// Labels in exposition order, values unescaped.
    pub labels: Vec<(String, String)>,
    pub value: f64,
    pub timestamp_ms: Option<i64>,
}

impl Sample {
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

#[derive(Debug, Default)]
pub struct Exposition {
    pub samples: Vec<Sample>,
    /// Family name → type (`counter`, `gauge`, `histogram`, …).
    pub types: BTreeMap<String, String>,
}

/// Suffixes a sample name may add to its family's name, per family type.
fn suffixes(typ: &str) -> &'static [&'static str] {
    match typ {
        "counter" => &["_total", "_created", ""],
        "histogram" => &["_bucket", "_count", "_sum", "_created"],
        "gaugehistogram" => &["_bucket", "_gcount", "_gsum"],
        "summary" => &["_count", "_sum", "_created", ""],
        "info" => &["_info", ""],
        _ => &[""],
    }
}

pub fn parse(text: &str, format: Format) -> Result<Exposition, String> {
    let mut out = Exposition::default();
    let mut current: Option<(String, String)> = None; // (family, type) of the latest metadata
    let mut seen = HashSet::new();
    let mut eof = false;
    let n_lines = text.split('\n').count();
    for (i, line) in text.split('\n').enumerate() {
        let at = |e: String| format!("line {}: {e}: {line:?}", i + 1);
        if eof {
            if line.is_empty() && i + 1 == n_lines {
                continue;
            }
            return Err(at("content after # EOF".into()));
        }
        if format == Format::OpenMetrics && line == "# EOF" {
            eof = true;
            continue;
        }
        let trimmed = line.trim_matches(|c| c == ' ' || c == '\t');
        if trimmed.is_empty() {
            if format == Format::OpenMetrics && i + 1 != n_lines {
                return Err(at("empty line in OpenMetrics".into()));
            }
            continue;
        }
        if let Some(comment) = trimmed.strip_prefix('#') {
            let mut words = comment.trim_start().splitn(3, [' ', '\t']);
            let kw = words.next().unwrap_or_default();
            if matches!(kw, "HELP" | "TYPE" | "UNIT") {
                let name = words.next().ok_or_else(|| at("metadata without a metric name".into()))?;
                if !is_metric_name(name) {
                    return Err(at(format!("bad metric name {name:?}")));
                }
                let rest = words.next().unwrap_or_default().trim();
                if kw == "TYPE" {
                    let t = rest.to_ascii_lowercase();
                    if !matches!(
                        t.as_str(),
                        "counter" | "gauge" | "histogram" | "summary" | "untyped" | "unknown" | "info" | "stateset" | "gaugehistogram"
                    ) {
                        return Err(at(format!("unknown type {rest:?}")));
                    }
                    if out.types.insert(name.to_string(), t.clone()).is_some() {
                        return Err(at(format!("second TYPE line for {name}")));
                    }
                    current = Some((name.to_string(), t));
                } else if current.as_ref().is_none_or(|(f, _)| f != name) {
                    current = Some((name.to_string(), out.types.get(name).cloned().unwrap_or_else(|| "untyped".into())));
                }
            } else if format == Format::OpenMetrics {
                return Err(at("unknown comment in OpenMetrics".into()));
            }
            continue;
        }
        let mut s = parse_sample(trimmed, format).map_err(at)?;
        s.family = match &current {
            Some((fam, typ)) if suffixes(typ).iter().any(|suf| s.name.strip_prefix(fam.as_str()) == Some(*suf)) => fam.clone(),
            _ => s.name.clone(),
        };
        let mut key: Vec<(String, String)> = s.labels.clone();
        key.sort();
        if key.windows(2).any(|w| w[0].0 == w[1].0) {
            return Err(at("label name repeated".into()));
        }
        if !seen.insert((s.name.clone(), key)) {
            return Err(at("duplicate sample".into()));
        }
        out.samples.push(s);
    }
    if format == Format::OpenMetrics && !eof {
        return Err("OpenMetrics exposition without # EOF".into());
    }
    Ok(out)
}

fn is_metric_name(s: &str) -> bool {
    let mut cs = s.chars();
    cs.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && cs.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn is_label_name(s: &str) -> bool {
    let mut cs = s.chars();
    cs.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_') && cs.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

struct Cursor<'a> {
    s: &'a str,
    pos: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<char> {
        self.s[self.pos..].chars().next()
    }
    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }
    fn skip_blanks(&mut self) -> usize {
        let start = self.pos;
        while matches!(self.peek(), Some(' ' | '\t')) {
            self.pos += 1;
        }
        self.pos - start
    }
    fn take_while(&mut self, f: impl Fn(char) -> bool) -> &str {
        let start = self.pos;
        while self.peek().is_some_and(&f) {
            self.bump();
        }
        &self.s[start..self.pos]
    }
    fn expect(&mut self, c: char) -> Result<(), String> {
        match self.bump() {
            Some(got) if got == c => Ok(()),
            got => Err(format!("expected {c:?} at byte {}, got {got:?}", self.pos)),
        }
    }
    fn token(&mut self) -> &str {
        self.take_while(|c| c != ' ' && c != '\t')
    }
}

fn parse_labels(c: &mut Cursor, format: Format) -> Result<Vec<(String, String)>, String> {
    c.expect('{')?;
    let mut labels = Vec::new();
    loop {
        if format == Format::Text {
            c.skip_blanks();
        }
        if c.peek() == Some('}') {
            c.bump();
            return Ok(labels);
        }
        let name = c.take_while(|ch| ch.is_ascii_alphanumeric() || ch == '_').to_string();
        if !is_label_name(&name) {
            return Err(format!("bad label name {name:?}"));
        }
        if format == Format::Text {
            c.skip_blanks();
        }
        c.expect('=')?;
        if format == Format::Text {
            c.skip_blanks();
        }
        c.expect('"')?;
        let mut value = String::new();
        loop {
            match c.bump().ok_or("unterminated label value")? {
                '"' => break,
                '\\' => match c.bump().ok_or("unterminated escape")? {
                    '\\' => value.push('\\'),
                    '"' => value.push('"'),
                    'n' => value.push('\n'),
                    other => return Err(format!("unknown escape \\{other}")),
                },
                ch => value.push(ch),
            }
        }
        labels.push((name, value));
        if format == Format::Text {
            c.skip_blanks();
        }
        match c.bump() {
            Some(',') => {}
            Some('}') => return Ok(labels),
            other => return Err(format!("expected ',' or '}}' after a label, got {other:?}")),
        }
        if format == Format::OpenMetrics && c.peek() == Some('}') {
            return Err("trailing comma in OpenMetrics label set".into());
        }
    }
}

/// Parses a sample value the way Prometheus does (Go's ParseFloat, which
/// also takes `NaN`, `Inf`, `+Inf`, `-Inf` in any case).
pub fn parse_value(tok: &str) -> Result<f64, String> {
    let lower = tok.to_ascii_lowercase();
    let (sign, body) = match lower.strip_prefix('-') {
        Some(b) => (-1.0, b),
        None => (1.0, lower.strip_prefix('+').unwrap_or(&lower)),
    };
    match body {
        "nan" => return Ok(f64::NAN),
        "inf" | "infinity" => return Ok(sign * f64::INFINITY),
        _ => {}
    }
    if body.is_empty() || !body.chars().all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | '+' | '-' | '_')) {
        return Err(format!("bad value {tok:?}"));
    }
    tok.replace('_', "").parse::<f64>().map_err(|_| format!("bad value {tok:?}"))
}

fn parse_timestamp(tok: &str, format: Format) -> Result<i64, String> {
    match format {
        // Text 0.0.4: integer milliseconds.
        Format::Text => tok.parse::<i64>().map_err(|_| format!("bad timestamp {tok:?}")),
        // OpenMetrics: (possibly fractional) seconds.
        Format::OpenMetrics => {
            let secs = parse_value(tok)?;
            if !secs.is_finite() {
                return Err(format!("bad timestamp {tok:?}"));
            }
            Ok((secs * 1000.0).round() as i64)
        }
    }
}

fn parse_sample(line: &str, format: Format) -> Result<Sample, String> {
    let mut c = Cursor { s: line, pos: 0 };
    let name = c.take_while(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == ':').to_string();
    if !is_metric_name(&name) {
        return Err(format!("bad metric name {name:?}"));
    }
    // The text format allows blanks between the name and `{`.
    let after_name = c.pos;
    if format == Format::Text {
        c.skip_blanks();
    }
    let labels = if c.peek() == Some('{') {
        parse_labels(&mut c, format)?
    } else {
        c.pos = after_name;
        Vec::new()
    };
    if c.skip_blanks() == 0 {
        return Err("no blank before the value".into());
    }
    let value = parse_value(c.token())?;
    c.skip_blanks();
    let mut timestamp_ms = None;
    if c.peek().is_some() && c.peek() != Some('#') {
        timestamp_ms = Some(parse_timestamp(c.token(), format)?);
        c.skip_blanks();
    }
    if c.peek() == Some('#') {
        if format != Format::OpenMetrics {
            return Err("exemplar in the text format".into());
        }
        // Exemplar: `# {labels} value [timestamp]`, validated and dropped.
        c.bump();
        c.skip_blanks();
        parse_labels(&mut c, format)?;
        c.skip_blanks();
        parse_value(c.token())?;
        c.skip_blanks();
        if c.peek().is_some() {
            parse_timestamp(c.token(), format)?;
        }
        c.skip_blanks();
    }
    if c.peek().is_some() {
        return Err(format!("trailing characters {:?}", &line[c.pos..]));
    }
    Ok(Sample { family: String::new(), name, labels, value, timestamp_ms })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_format_escapes_special_values_and_families() {
        let text = "# HELP req_total Requests \\\\ with \\n escapes.\n\
                    # TYPE req_total counter\n\
                    req_total{path=\"/a,b}\",msg=\"say \\\"hi\\\"\\\\\\n\"} 3 1700000000000\n\
                    req_total { path = \"/c\" , } 1e3\n\
                    # TYPE lat histogram\n\
                    lat_bucket{le=\"0.5\"} 1\n\
                    lat_bucket{le=\"+Inf\"} 2\n\
                    lat_sum 0.75\n\
                    lat_count 2\n\
                    odd NaN\n\
                    up_inf +Inf\n\
                    down_inf -Inf\n\
                    \n";
        let e = parse(text, Format::Text).unwrap();
        let names: Vec<_> = e.samples.iter().map(|s| (s.family.as_str(), s.name.as_str())).collect();
        assert_eq!(
            names,
            [
                ("req_total", "req_total"),
                ("req_total", "req_total"),
                ("lat", "lat_bucket"),
                ("lat", "lat_bucket"),
                ("lat", "lat_sum"),
                ("lat", "lat_count"),
                ("odd", "odd"),
                ("up_inf", "up_inf"),
                ("down_inf", "down_inf"),
            ]
        );
        let first = &e.samples[0];
        assert_eq!(first.label("path"), Some("/a,b}"));
        assert_eq!(first.label("msg"), Some("say \"hi\"\\\n"));
        assert_eq!(first.timestamp_ms, Some(1_700_000_000_000));
        assert_eq!(e.samples[1].labels, [("path".to_string(), "/c".to_string())]);
        assert_eq!(e.samples[1].value, 1000.0);
        assert!(e.samples[6].value.is_nan());
        assert_eq!(e.samples[7].value, f64::INFINITY);
        assert_eq!(e.samples[8].value, f64::NEG_INFINITY);
        assert_eq!(e.types.get("lat").map(String::as_str), Some("histogram"));
    }

    #[test]
    fn openmetrics_created_exemplars_and_eof() {
        let text = "# TYPE c counter\n# HELP c Help.\nc_total 1.0 # {trace_id=\"abc\"} 1.0 1700000000.5\nc_created 1.7e9\n\
                    # TYPE i info\ni_info{v=\"1\"} 1\n# EOF\n";
        let e = parse(text, Format::OpenMetrics).unwrap();
        let fams: Vec<_> = e.samples.iter().map(|s| (s.family.as_str(), s.name.as_str(), s.value)).collect();
        assert_eq!(fams, [("c", "c_total", 1.0), ("c", "c_created", 1.7e9), ("i", "i_info", 1.0)]);
        assert!(parse("a 1\n", Format::OpenMetrics).is_err(), "missing # EOF");
        assert!(parse("a 1\n# EOF\nb 2\n", Format::OpenMetrics).is_err(), "content after # EOF");
    }

    #[test]
    fn rejects_malformed_input() {
        for bad in [
            "a{x=\"\\t\"} 1",       // unknown escape
            "a{x=\"1\"",            // unterminated
            "a 1\na 2",             // duplicate sample
            "a{x=\"1\",x=\"2\"} 1", // repeated label
            "a one",                // bad value
            "a 1 2 3",              // trailing garbage
            "a{1x=\"1\"} 1",        // bad label name
        ] {
            assert!(parse(bad, Format::Text).is_err(), "{bad:?} should not parse");
        }
        assert_eq!(parse_value("-inf").unwrap(), f64::NEG_INFINITY);
        assert_eq!(parse_value("1.5e-3").unwrap(), 0.0015);
    }
}
