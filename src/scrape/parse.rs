//! Parser for the text a scrape target answers with: the Prometheus text
//! format 0.0.4 and OpenMetrics 1.0.
//!
//! Both formats are line based, so the parser walks the input one line at a
//! time over its bytes and allocates only for the names and values it hands
//! out. Where the specifications leave room it behaves like Prometheus' own
//! parser (whitespace tolerance in the text format, trailing commas in label
//! sets, Go's float syntax), so that any target Prometheus can scrape can be
//! scraped here too.

use std::fmt;

use crate::model::labels::METRIC_NAME;
use crate::model::{Label, Labels};

/// Prometheus' canonical NaN (`value.NormalNaN`).
///
/// Every parsed NaN is stored with these bits so that stored data matches
/// upstream bit for bit and can never be mistaken for the staleness marker.
const NORMAL_NAN_BITS: u64 = 0x7ff8_0000_0000_0001;

/// The exposition format of a scrape response, chosen from its Content-Type,
/// because the two formats differ in timestamp units and strictness.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// The Prometheus text format 0.0.4 (`text/plain; version=0.0.4`).
    PrometheusText,
    /// OpenMetrics 1.0 text (`application/openmetrics-text`).
    OpenMetrics,
}

impl Format {
    /// Picks the format from a response's Content-Type header.
    ///
    /// Anything that is not OpenMetrics falls back to the Prometheus text
    /// format, as Prometheus does, because many targets send `text/plain`
    /// without a version or no Content-Type at all.
    pub fn from_content_type(ct: &str) -> Format {
        let media = ct.split(';').next().unwrap_or("").trim();
        if media.eq_ignore_ascii_case("application/openmetrics-text") { Format::OpenMetrics } else { Format::PrometheusText }
    }
}

/// The type a `# TYPE` line declares for a metric family. Kept so metadata
/// can be served and histograms/summaries recognised; `untyped` in the text
/// format maps to [`MetricType::Unknown`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MetricType {
    Counter,
    Gauge,
    Histogram,
    GaugeHistogram,
    Summary,
    Info,
    StateSet,
    Unknown,
}

impl MetricType {
    /// The OpenMetrics spelling, which is also what Prometheus' metadata API
    /// reports (so `untyped` comes out as `unknown`).
    pub fn as_str(self) -> &'static str {
        match self {
            MetricType::Counter => "counter",
            MetricType::Gauge => "gauge",
            MetricType::Histogram => "histogram",
            MetricType::GaugeHistogram => "gaugehistogram",
            MetricType::Summary => "summary",
            MetricType::Info => "info",
            MetricType::StateSet => "stateset",
            MetricType::Unknown => "unknown",
        }
    }

    fn from_text(s: &str) -> Option<MetricType> {
        Some(match s {
            "counter" => MetricType::Counter,
            "gauge" => MetricType::Gauge,
            "histogram" => MetricType::Histogram,
            "summary" => MetricType::Summary,
            "untyped" => MetricType::Unknown,
            _ => return None,
        })
    }

    fn from_openmetrics(s: &str) -> Option<MetricType> {
        Some(match s {
            "counter" => MetricType::Counter,
            "gauge" => MetricType::Gauge,
            "histogram" => MetricType::Histogram,
            "gaugehistogram" => MetricType::GaugeHistogram,
            "summary" => MetricType::Summary,
            "info" => MetricType::Info,
            "stateset" => MetricType::StateSet,
            "unknown" => MetricType::Unknown,
            _ => return None,
        })
    }
}

impl fmt::Display for MetricType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One parsed item.
///
/// Metadata lines are passed through in input order rather than attached to
/// samples, so callers that only want samples pay nothing for them.
#[derive(Debug, Clone, PartialEq)]
pub enum Entry {
    /// `# HELP family text`, with escapes resolved.
    Help { family: String, text: String },
    /// `# TYPE family kind`.
    Type { family: String, kind: MetricType },
    /// `# UNIT family unit` (OpenMetrics only).
    Unit { family: String, unit: String },
    /// One sample. `labels` includes `__name__` set to the name as written
    /// (e.g. `foo_bucket`); labels with empty values are dropped, as
    /// Prometheus treats them as absent. `timestamp_ms` is milliseconds since
    /// the epoch in both formats.
    Sample { labels: Labels, timestamp_ms: Option<i64>, value: f64 },
}

/// Why an exposition could not be parsed, with the position to fix.
///
/// `line` and `column` are 1-based; the column counts characters, not bytes,
/// so it matches what an editor shows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}, column {column}: {message}")]
pub struct ParseError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// Parses a whole exposition into entries, in input order.
///
/// Scrapes are all-or-nothing in Prometheus, so the first error fails the
/// whole input.
pub fn parse(input: &str, format: Format) -> Result<Vec<Entry>, ParseError> {
    let mut out = Vec::new();
    parse_each(input, format, |e| out.push(e))?;
    Ok(out)
}

/// Streaming form used by large backfills: calls `f` per entry, stops at first error.
///
/// Entries before the failing line have already been passed to `f` when the
/// error is returned.
pub fn parse_each(input: &str, format: Format, f: impl FnMut(Entry)) -> Result<(), ParseError> {
    parse_scrape(input, format, &mut EachEntry(f))
}

/// Adapts a per-entry callback to [`ScrapeSink`], for callers without a cache.
struct EachEntry<F>(F);

impl<F: FnMut(Entry)> ScrapeSink for EachEntry<F> {
    fn skims(&self) -> bool {
        false
    }
    fn known_sample(&mut self, _: &str, _: Option<i64>, _: f64) -> bool {
        false
    }
    fn new_sample(&mut self, _: &str, labels: Labels, _: &[String], timestamp_ms: Option<i64>, value: f64) {
        (self.0)(Entry::Sample { labels, timestamp_ms, value })
    }
    fn metadata(&mut self, entry: Entry) {
        (self.0)(entry)
    }
}

/// Receives a scrape's content. Splitting known from new series lets a
/// per-target cache skip label parsing, hashing and allocation for series
/// text it saw in an earlier scrape.
pub trait ScrapeSink {
    /// A sample whose series text (name and label set as written) is passed
    /// raw. Returns false when the text is unknown; the parser then parses
    /// the labels and calls [`ScrapeSink::new_sample`].
    fn known_sample(&mut self, series: &str, timestamp_ms: Option<i64>, value: f64) -> bool;
    /// A sample whose series text was not known, with its parsed labels.
    /// `empty` names labels written with an empty value: absent from
    /// `labels`, but `honor_labels` must still let them hide target labels.
    fn new_sample(&mut self, series: &str, labels: Labels, empty: &[String], timestamp_ms: Option<i64>, value: f64);
    /// HELP, TYPE and UNIT lines.
    fn metadata(&mut self, entry: Entry);
    /// Whether sample lines are skimmed for [`ScrapeSink::known_sample`]
    /// first; a sink without a cache saves the work.
    fn skims(&self) -> bool {
        true
    }
}

/// Parses a scrape body for a [`ScrapeSink`]. Same grammar and errors as
/// [`parse_each`]; every line is fully validated the first time its series
/// text is seen.
pub fn parse_scrape(input: &str, format: Format, sink: &mut impl ScrapeSink) -> Result<(), ParseError> {
    let mut p = Parser { label_hint: 4, exemplar: Vec::new(), empty: Vec::new() };
    let om = format == Format::OpenMetrics;
    let mut rest = input;
    let mut line_no = 0;
    let mut last = "";
    let skims = sink.skims();
    while !rest.is_empty() {
        line_no += 1;
        let (text, next) = rest.split_once('\n').unwrap_or((rest, ""));
        rest = next;
        last = text;
        let mut line = Line { text, b: text.as_bytes(), i: 0, no: line_no };
        // A line the skim rejects is parsed fully, which reports the error
        // exactly as a plain parse would.
        let skimmed = if skims { p.skim_sample(&mut line, om).ok().flatten() } else { None };
        if let Some((series, value, ts)) = skimmed
            && sink.known_sample(series, ts, value)
        {
            continue;
        }
        line.i = 0;
        let step = if om { p.om_line(&mut line)? } else { p.text_line(&mut line)? };
        match step {
            Step::Entry(Entry::Sample { labels, timestamp_ms, value }) => {
                let series = skimmed.map_or("", |s| s.0);
                sink.new_sample(series, labels, &p.empty, timestamp_ms, value);
            }
            Step::Entry(e) => sink.metadata(e),
            Step::Skip => {}
            Step::Eof => {
                if !rest.is_empty() {
                    return Err(ParseError { line: line_no + 1, column: 1, message: "unexpected content after # EOF".to_owned() });
                }
                return Ok(());
            }
        }
    }
    if om {
        let (line, column) = if input.is_empty() || input.ends_with('\n') { (line_no + 1, 1) } else { (line_no, last.chars().count() + 1) };
        return Err(ParseError { line, column, message: "missing # EOF".to_owned() });
    }
    Ok(())
}

/// A sample line read up to its value: series text, value, timestamp.
type Skimmed<'a> = (&'a str, f64, Option<i64>);

/// What one line produced.
enum Step {
    Entry(Entry),
    Skip,
    Eof,
}

/// State carried across lines.
struct Parser {
    /// Label count of the previous sample, to size the next label vector.
    label_hint: usize,
    /// Reused buffer for exemplar labels, which are validated and dropped.
    exemplar: Vec<Label>,
    /// Names the last sample gave explicitly empty values (dropped from its labels).
    empty: Vec<String>,
}

impl Parser {
    /// One line of the Prometheus text format.
    fn text_line(&mut self, line: &mut Line<'_>) -> Result<Step, ParseError> {
        line.skip_ws();
        match line.peek() {
            None => Ok(Step::Skip),
            Some(b'#') => text_comment(line),
            Some(_) => {
                let mut labels = self.sample_labels(line, |c| is_ws(c) || c == b'{')?;
                line.skip_ws();
                if line.eat(b'{') {
                    line.label_set(true, &mut labels)?;
                    line.skip_ws();
                }
                let (value, timestamp_ms) = text_tail(line)?;
                Ok(Step::Entry(self.sample(labels, timestamp_ms, value)))
            }
        }
    }

    /// One line of OpenMetrics, which allows no optional whitespace.
    fn om_line(&mut self, line: &mut Line<'_>) -> Result<Step, ParseError> {
        match line.peek() {
            None => Err(line.error(0, "blank lines are not allowed in OpenMetrics")),
            Some(b'#') => om_comment(line),
            Some(_) => {
                let mut labels = self.sample_labels(line, |c| c == b' ' || c == b'{')?;
                if line.eat(b'{') {
                    line.label_set(false, &mut labels)?;
                }
                let (value, timestamp_ms) = self.om_tail(line)?;
                Ok(Step::Entry(self.sample(labels, timestamp_ms, value)))
            }
        }
    }

    /// The rest of an OpenMetrics sample line after the series: ` value [timestamp] [# exemplar]`.
    fn om_tail(&mut self, line: &mut Line<'_>) -> Result<(f64, Option<i64>), ParseError> {
        line.expect(b' ', "' ' and a value")?;
        let (at, tok) = line.word(|c| c == b' ');
        if tok.is_empty() {
            return Err(line.expected("value"));
        }
        let value = parse_float(tok).map_err(|m| line.error(at, m))?;
        let mut timestamp_ms = None;
        if line.eat(b' ') {
            if line.peek() != Some(b'#') {
                timestamp_ms = Some(line.om_timestamp()?);
                if line.eat(b' ') {
                    self.exemplar(line)?;
                }
            } else {
                self.exemplar(line)?;
            }
        }
        if !line.at_end() {
            return Err(line.expected("end of line"));
        }
        Ok((value, timestamp_ms))
    }

    /// Reads a sample line up to its value without building labels: the
    /// series text as written, value and timestamp. The label set is only
    /// checked for balanced quotes and braces here; a caller that has not
    /// seen this exact series text before parses the line fully.
    /// `None` when the line is not a sample or cannot be skimmed.
    fn skim_sample<'a>(&mut self, line: &mut Line<'a>, om: bool) -> Result<Option<Skimmed<'a>>, ParseError> {
        if !om {
            line.skip_ws();
        }
        if line.peek().is_none_or(|c| c == b'#') {
            return Ok(None);
        }
        // The name is not validated here: only a line that parsed fully
        // before can be a known series, and others are parsed fully now.
        let start = line.i;
        let name_len = line.b.get(start..).and_then(|b| b.iter().position(|&c| c == b' ' || c == b'{' || (!om && c == b'\t')));
        let Some(name_len @ 1..) = name_len else { return Ok(None) };
        line.i = start + name_len;
        let mut end = line.i;
        if !om {
            line.skip_ws();
        }
        if line.peek() == Some(b'{') {
            match label_set_end(line.text, line.i) {
                Some(e) => {
                    line.i = e;
                    end = e;
                }
                None => return Ok(None),
            }
            if !om {
                line.skip_ws();
            }
        } else {
            line.i = end;
            if !om {
                line.skip_ws();
            }
        }
        let series = line.text.get(start..end).unwrap_or("");
        let (value, ts) = if om { self.om_tail(line)? } else { text_tail(line)? };
        Ok(Some((series, value, ts)))
    }

    /// Reads the metric name and starts the label vector with `__name__`.
    fn sample_labels(&self, line: &mut Line<'_>, stop: BytePred) -> Result<Vec<Label>, ParseError> {
        let (_, name) = line.name(true, stop, "metric name")?;
        let mut labels = Vec::with_capacity(self.label_hint);
        labels.push(Label { name: METRIC_NAME.to_owned(), value: name.to_owned() });
        Ok(labels)
    }

    fn sample(&mut self, mut labels: Vec<Label>, timestamp_ms: Option<i64>, value: f64) -> Entry {
        self.label_hint = labels.len();
        self.empty.clear();
        if labels.iter().any(|l| l.value.is_empty()) {
            self.empty.extend(labels.iter().filter(|l| l.value.is_empty()).map(|l| l.name.clone()));
            labels.retain(|l| !l.value.is_empty());
        }
        labels.sort_unstable_by(|a, b| a.name.cmp(&b.name));
        Entry::Sample { labels: Labels::from_sorted(labels), timestamp_ms, value }
    }

    /// Validates and drops an exemplar: `# {labels} value [timestamp]`.
    fn exemplar(&mut self, line: &mut Line<'_>) -> Result<(), ParseError> {
        line.expect(b'#', "'#' starting an exemplar")?;
        line.expect(b' ', "' ' after '#'")?;
        line.expect(b'{', "'{' starting the exemplar's labels")?;
        self.exemplar.clear();
        line.label_set(false, &mut self.exemplar)?;
        line.expect(b' ', "' ' and an exemplar value")?;
        let (at, tok) = line.word(|c| c == b' ');
        if tok.is_empty() {
            return Err(line.expected("exemplar value"));
        }
        parse_float(tok).map_err(|m| line.error(at, m))?;
        if line.eat(b' ') {
            line.om_timestamp()?;
        }
        Ok(())
    }
}

/// The rest of a text-format sample line after the series: `value [timestamp]`.
fn text_tail(line: &mut Line<'_>) -> Result<(f64, Option<i64>), ParseError> {
    let (at, tok) = line.word(is_ws);
    if tok.is_empty() {
        return Err(line.expected("value"));
    }
    let value = parse_float(tok).map_err(|m| line.error(at, m))?;
    line.skip_ws();
    if line.at_end() {
        return Ok((value, None));
    }
    let (at, tok) = line.word(is_ws);
    let ts = tok.parse::<i64>().map_err(|_| line.error(at, format!("invalid timestamp {tok:?}")))?;
    line.skip_ws();
    if !line.at_end() {
        return Err(line.expected("end of line after timestamp"));
    }
    Ok((value, Some(ts)))
}

/// The byte just past the `}` closing the label set that opens at `open`,
/// stepping over quoted values and their escapes.
fn label_set_end(text: &str, open: usize) -> Option<usize> {
    let b = text.as_bytes();
    // Usually the first `}` closes the set: then the values before it hold
    // an even number of quotes. Checked with memchr-speed scans; escapes
    // take the byte-by-byte way.
    if let Some(rel) = text.get(open + 1..).and_then(|t| t.find('}')) {
        let seg = b.get(open + 1..open + 1 + rel).unwrap_or(&[]);
        if !seg.contains(&b'\\') && seg.iter().filter(|&&c| c == b'"').count() % 2 == 0 {
            return Some(open + 2 + rel);
        }
    }
    let mut i = open + 1;
    let mut quoted = false;
    while let Some(&c) = b.get(i) {
        match c {
            b'\\' if quoted => i += 1,
            b'"' => quoted = !quoted,
            b'}' if !quoted => return Some(i + 1),
            _ => {}
        }
        i += 1;
    }
    None
}

/// A `#` line in the text format: HELP and TYPE are metadata, anything else
/// is a comment and ignored.
fn text_comment(line: &mut Line<'_>) -> Result<Step, ParseError> {
    line.i += 1;
    if !line.peek().is_some_and(is_ws) {
        return Ok(Step::Skip);
    }
    line.skip_ws();
    let (_, keyword) = line.word(is_ws);
    let what = match keyword {
        "HELP" => "metric name after HELP",
        "TYPE" => "metric name after TYPE",
        _ => return Ok(Step::Skip),
    };
    if line.at_end() {
        // Prometheus needs whitespace after the keyword to take it as one.
        return Ok(Step::Skip);
    }
    line.skip_ws();
    let (_, family) = line.name(true, is_ws, what)?;
    let family = family.to_owned();
    // Exactly one separator goes; the rest belongs to the text.
    line.i += usize::from(!line.at_end());
    let start = line.i;
    let text = line.rest();
    if keyword == "HELP" {
        return Ok(Step::Entry(Entry::Help { family, text: unescape(text, false) }));
    }
    let kind = text.trim_start_matches([' ', '\t']);
    let at = start + (text.len() - kind.len());
    let kind = kind.trim_end_matches([' ', '\t']);
    if kind.is_empty() {
        line.i = at;
        return Err(line.expected("metric type"));
    }
    match MetricType::from_text(kind) {
        Some(kind) => Ok(Step::Entry(Entry::Type { family, kind })),
        None => Err(line.error(at, format!("invalid metric type {kind:?}"))),
    }
}

/// A `#` line in OpenMetrics: only HELP, TYPE, UNIT and EOF are allowed.
fn om_comment(line: &mut Line<'_>) -> Result<Step, ParseError> {
    line.i += 1;
    line.expect(b' ', "' ' after '#'")?;
    let (at, keyword) = line.word(|c| c == b' ');
    match keyword {
        "EOF" => {
            if !line.at_end() {
                return Err(line.expected("end of line after # EOF"));
            }
            return Ok(Step::Eof);
        }
        "HELP" | "TYPE" | "UNIT" => {}
        _ => {
            return Err(line.error(at, format!("expected HELP, TYPE, UNIT or EOF after '# ', found {keyword:?}")));
        }
    }
    line.expect(b' ', "' ' and a metric name")?;
    let (_, family) = line.name(true, |c| c == b' ', "metric name")?;
    let family = family.to_owned();
    match keyword {
        "HELP" => {
            let text = if line.at_end() {
                String::new()
            } else {
                line.expect(b' ', "' ' and help text")?;
                unescape(line.rest(), true)
            };
            Ok(Step::Entry(Entry::Help { family, text }))
        }
        "TYPE" => {
            line.expect(b' ', "' ' and a metric type")?;
            let at = line.i;
            let kind = line.rest();
            match MetricType::from_openmetrics(kind) {
                Some(kind) => Ok(Step::Entry(Entry::Type { family, kind })),
                None if kind.is_empty() => {
                    line.i = at;
                    Err(line.expected("metric type"))
                }
                None => Err(line.error(at, format!("invalid metric type {kind:?}"))),
            }
        }
        _ => {
            let (at, unit) = if line.at_end() {
                (line.i, "")
            } else {
                line.expect(b' ', "' ' and a unit")?;
                (line.i, line.rest())
            };
            if !unit.bytes().all(is_metric_char) {
                return Err(line.error(at, format!("invalid unit {unit:?}")));
            }
            if !unit.is_empty() && !family.strip_suffix(unit).is_some_and(|p| p.ends_with('_')) {
                return Err(line.error(at, format!("unit {unit:?} is not a suffix of metric {family:?}")));
            }
            Ok(Step::Entry(Entry::Unit { family, unit: unit.to_owned() }))
        }
    }
}

/// A cursor over one line (without its `\n`).
///
/// Positions only ever stop on ASCII delimiters or the line's ends, so they
/// are always valid `str` boundaries; slicing still goes through `get` so a
/// mistake could never panic on hostile input.
struct Line<'a> {
    text: &'a str,
    b: &'a [u8],
    i: usize,
    no: usize,
}

impl<'a> Line<'a> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn at_end(&self) -> bool {
        self.i >= self.b.len()
    }

    fn eat(&mut self, c: u8) -> bool {
        let hit = self.peek() == Some(c);
        self.i += usize::from(hit);
        hit
    }

    fn expect(&mut self, c: u8, what: &str) -> Result<(), ParseError> {
        if self.eat(c) { Ok(()) } else { Err(self.expected(what)) }
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(is_ws) {
            self.i += 1;
        }
    }

    /// Everything from the cursor to the end of the line.
    fn rest(&mut self) -> &'a str {
        let s = self.text.get(self.i..).unwrap_or("");
        self.i = self.b.len();
        s
    }

    /// Advances to the next byte matching `stop` (or the end) and returns the
    /// start position and the text passed over.
    fn word(&mut self, stop: impl Fn(u8) -> bool) -> (usize, &'a str) {
        let start = self.i;
        let len = self.b.get(start..).map_or(0, |s| s.iter().position(|&c| stop(c)).unwrap_or(s.len()));
        self.i = start + len;
        (start, self.text.get(start..self.i).unwrap_or(""))
    }

    /// Reads a metric name (`metric`) or label name that must end at a byte
    /// matching `stop` or the end of the line.
    fn name(&mut self, metric: bool, stop: BytePred, what: &str) -> Result<(usize, &'a str), ParseError> {
        let (first, rest): (BytePred, BytePred) = if metric { (is_metric_start, is_metric_char) } else { (is_label_start, is_label_char) };
        let start = self.i;
        if self.peek().is_some_and(first) {
            let mut j = start + 1;
            while self.b.get(j).is_some_and(|&c| rest(c)) {
                j += 1;
            }
            if self.b.get(j).is_none_or(|&c| stop(c)) {
                self.i = j;
                return Ok((start, self.text.get(start..j).unwrap_or("")));
            }
        }
        let (_, word) = self.word(stop);
        if word.is_empty() {
            return Err(self.expected(what));
        }
        let kind = if metric { "metric" } else { "label" };
        Err(self.error(start, format!("invalid {kind} name {word:?}")))
    }

    /// Reads `name="value", ...}` after the opening brace into `out`.
    /// `lenient` allows whitespace between tokens (text format only).
    fn label_set(&mut self, lenient: bool, out: &mut Vec<Label>) -> Result<(), ParseError> {
        loop {
            if lenient {
                self.skip_ws();
            }
            if self.eat(b'}') {
                return Ok(());
            }
            let (at, name) = self.name(false, is_label_stop, "label name or '}'")?;
            if lenient {
                self.skip_ws();
            }
            self.expect(b'=', "'=' after label name")?;
            if lenient {
                self.skip_ws();
            }
            let value = self.label_value()?;
            if out.iter().any(|l| l.name == name) {
                return Err(self.error(at, format!("duplicate label {name:?}")));
            }
            out.push(Label { name: name.to_owned(), value });
            if lenient {
                self.skip_ws();
            }
            // A trailing comma before '}' is allowed, as in Prometheus.
            if !self.eat(b',') {
                if self.eat(b'}') {
                    return Ok(());
                }
                return Err(self.expected("',' or '}' after label value"));
            }
        }
    }

    /// Reads a quoted label value and resolves `\\`, `\"` and `\n`.
    fn label_value(&mut self) -> Result<String, ParseError> {
        if !self.eat(b'"') {
            return Err(self.expected("label value in quotes"));
        }
        let start = self.i;
        let mut j = start;
        let mut escaped = false;
        loop {
            match self.b.get(j..).and_then(|s| s.iter().position(|&c| c == b'"' || c == b'\\')) {
                None => {
                    self.i = self.b.len();
                    return Err(self.expected("'\"' closing the label value"));
                }
                Some(p) if self.b.get(j + p) == Some(&b'"') => {
                    j += p;
                    break;
                }
                Some(p) => {
                    escaped = true;
                    j += p + 2;
                }
            }
        }
        self.i = j + 1;
        let raw = self.text.get(start..j).unwrap_or("");
        Ok(if escaped { unescape(raw, true) } else { raw.to_owned() })
    }

    /// Reads an OpenMetrics timestamp (seconds, possibly fractional) as
    /// milliseconds, rounded to the nearest.
    fn om_timestamp(&mut self) -> Result<i64, ParseError> {
        let (at, tok) = self.word(|c| c == b' ');
        if tok.is_empty() {
            return Err(self.expected("timestamp"));
        }
        let invalid = || self.error(at, format!("invalid timestamp {tok:?}"));
        let secs = parse_float(tok).map_err(|_| invalid())?;
        if !secs.is_finite() {
            return Err(invalid());
        }
        let ms = (secs * 1000.0).round();
        // i64::MIN is exactly -2^63; i64::MAX rounds up to 2^63 as a float.
        if !(ms >= i64::MIN as f64 && ms < i64::MAX as f64) {
            return Err(self.error(at, format!("timestamp {tok:?} out of range")));
        }
        Ok(ms as i64)
    }

    /// An error at byte offset `at` of this line.
    fn error(&self, at: usize, message: impl Into<String>) -> ParseError {
        let column = self.text.get(..at).map_or(at, |s| s.chars().count()) + 1;
        ParseError { line: self.no, column, message: message.into() }
    }

    /// "expected X, found Y" at the cursor.
    fn expected(&self, what: &str) -> ParseError {
        let found = match self.text.get(self.i..).and_then(|s| s.chars().next()) {
            Some(c) => format!("{c:?}"),
            None => "end of line".to_owned(),
        };
        self.error(self.i, format!("expected {what}, found {found}"))
    }
}

/// A byte class; the name tables are chosen at run time by the caller.
type BytePred = fn(u8) -> bool;

fn is_ws(c: u8) -> bool {
    c == b' ' || c == b'\t'
}

fn is_metric_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_' || c == b':'
}

fn is_metric_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b':'
}

fn is_label_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_'
}

fn is_label_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

/// Where a label name ends, so a bad one is reported whole.
fn is_label_stop(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'=' | b',' | b'}' | b'{' | b'"')
}

/// Parses a sample value the way Prometheus does (Go's `ParseFloat` without
/// hex floats or underscores): decimal floats, case-insensitive `Inf`,
/// `Infinity` and `NaN`, an optional sign except on NaN, and an error rather
/// than infinity when a finite literal overflows.
fn parse_float(tok: &str) -> Result<f64, String> {
    let unsigned = tok.strip_prefix(['+', '-']).unwrap_or(tok);
    if unsigned.eq_ignore_ascii_case("nan") {
        if unsigned.len() == tok.len() {
            return Ok(f64::from_bits(NORMAL_NAN_BITS));
        }
        return Err(format!("invalid value {tok:?}"));
    }
    match tok.parse::<f64>() {
        Ok(v) if v.is_infinite() && !unsigned.eq_ignore_ascii_case("inf") && !unsigned.eq_ignore_ascii_case("infinity") => {
            Err(format!("invalid value {tok:?}: out of range"))
        }
        Ok(v) => Ok(v),
        Err(_) => Err(format!("invalid value {tok:?}")),
    }
}

/// Resolves `\\` and `\n`, and `\"` when `quote` is set. Other backslashes are
/// kept as written, as Prometheus does.
fn unescape(raw: &str, quote: bool) -> String {
    if !raw.contains('\\') {
        return raw.to_owned();
    }
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some((before, after)) = rest.split_once('\\') {
        out.push_str(before);
        rest = if let Some(r) = after.strip_prefix('\\') {
            out.push('\\');
            r
        } else if let Some(r) = after.strip_prefix('n') {
            out.push('\n');
            r
        } else if let Some(r) = after.strip_prefix('"').filter(|_| quote) {
            out.push('"');
            r
        } else {
            out.push('\\');
            after
        };
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::labels::escape_label_value;
    use proptest::prelude::*;

    fn samples(entries: &[Entry]) -> Vec<(String, Option<i64>, f64)> {
        entries
            .iter()
            .filter_map(|e| match e {
                Entry::Sample { labels, timestamp_ms, value } => Some((labels.to_string(), *timestamp_ms, *value)),
                _ => None,
            })
            .collect()
    }

    fn err(input: &str, format: Format) -> ParseError {
        match parse(input, format) {
            Ok(entries) => panic!("expected an error for {input:?}, got {entries:?}"),
            Err(e) => e,
        }
    }

    fn err_at(input: &str, format: Format) -> (usize, usize, String) {
        let e = err(input, format);
        (e.line, e.column, e.message)
    }

    fn value(tok: &str) -> Result<f64, ParseError> {
        let input = format!("m {tok}\n");
        match parse(&input, Format::PrometheusText)?.pop() {
            Some(Entry::Sample { value, .. }) => Ok(value),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn content_type_selects_format() {
        use Format::*;
        assert_eq!(Format::from_content_type("application/openmetrics-text; version=1.0.0; charset=utf-8"), OpenMetrics);
        assert_eq!(Format::from_content_type(" Application/OpenMetrics-Text"), OpenMetrics);
        assert_eq!(Format::from_content_type("text/plain; version=0.0.4"), PrometheusText);
        assert_eq!(Format::from_content_type(""), PrometheusText);
        assert_eq!(Format::from_content_type("application/openmetrics-textual"), PrometheusText);
    }

    #[test]
    fn prometheus_text_basic() {
        let input = "# HELP http_requests_total The total number of HTTP requests.\n\
                     # TYPE http_requests_total counter\n\
                     http_requests_total{method=\"post\",code=\"200\"} 1027 1395066363000\n\
                     http_requests_total{method=\"post\",code=\"400\"}    3 1395066363000\n\
                     \n\
                     # A normal comment.\n\
                     #no space: also a comment\n\
                     # HELP\n\
                     metric_without_timestamp_and_labels 12.47\n\
                     # TYPE rpc_duration_seconds summary\n\
                     rpc_duration_seconds{quantile=\"0.99\"} 76656\n\
                     rpc_duration_seconds_sum 1.7560473e+07\n\
                     # TYPE x untyped\n\
                     x 1";
        let entries = parse(input, Format::PrometheusText).unwrap();
        assert_eq!(entries[0], Entry::Help { family: "http_requests_total".into(), text: "The total number of HTTP requests.".into() });
        assert_eq!(entries[1], Entry::Type { family: "http_requests_total".into(), kind: MetricType::Counter });
        assert_eq!(
            entries[2],
            Entry::Sample {
                labels: Labels::from_pairs([("__name__", "http_requests_total"), ("method", "post"), ("code", "200")]),
                timestamp_ms: Some(1395066363000),
                value: 1027.0,
            }
        );
        assert_eq!(entries[5], Entry::Type { family: "rpc_duration_seconds".into(), kind: MetricType::Summary });
        assert_eq!(entries[8], Entry::Type { family: "x".into(), kind: MetricType::Unknown });
        assert_eq!(
            samples(&entries),
            vec![
                (r#"http_requests_total{code="200", method="post"}"#.into(), Some(1395066363000), 1027.0),
                (r#"http_requests_total{code="400", method="post"}"#.into(), Some(1395066363000), 3.0),
                ("metric_without_timestamp_and_labels".into(), None, 12.47),
                (r#"rpc_duration_seconds{quantile="0.99"}"#.into(), None, 76656.0),
                ("rpc_duration_seconds_sum".into(), None, 1.7560473e7),
                ("x".into(), None, 1.0),
            ]
        );
        assert_eq!(entries.len(), 10);
    }

    #[test]
    fn prometheus_text_whitespace_tolerance() {
        let input = "  \t\n\
                     \t# \tTYPE   foo\tgauge \n\
                     \x20 foo { a = \"1\" ,\tb=\"2\", } \t 5 \t 17 \t\n\
                     foo{a=\"3\"}6\n\
                     bar {} 7\n\
                     baz 8 ";
        let entries = parse(input, Format::PrometheusText).unwrap();
        assert_eq!(entries[0], Entry::Type { family: "foo".into(), kind: MetricType::Gauge });
        assert_eq!(
            samples(&entries),
            vec![
                (r#"foo{a="1", b="2"}"#.into(), Some(17), 5.0),
                (r#"foo{a="3"}"#.into(), None, 6.0),
                ("bar".into(), None, 7.0),
                ("baz".into(), None, 8.0),
            ]
        );
    }

    #[test]
    fn help_text_keeps_all_but_one_separator() {
        let entries = parse("# HELP a  two spaces \n# HELP b\n# HELP c \n", Format::PrometheusText).unwrap();
        assert_eq!(entries[0], Entry::Help { family: "a".into(), text: " two spaces ".into() });
        assert_eq!(entries[1], Entry::Help { family: "b".into(), text: "".into() });
        assert_eq!(entries[2], Entry::Help { family: "c".into(), text: "".into() });
    }

    #[test]
    fn label_and_help_escapes() {
        let input = r#"# HELP m a\\b\nc \"q\" \t
m{a="x\\y",b="say \"hi\"",c="l1\nl2",d="\t",e="ünï"} 1
"#;
        let entries = parse(input, Format::PrometheusText).unwrap();
        // The text format resolves only \\ and \n in HELP.
        assert_eq!(entries[0], Entry::Help { family: "m".into(), text: "a\\b\nc \\\"q\\\" \\t".into() });
        let Entry::Sample { labels, .. } = &entries[1] else { panic!() };
        assert_eq!(labels.get("a"), "x\\y");
        assert_eq!(labels.get("b"), "say \"hi\"");
        assert_eq!(labels.get("c"), "l1\nl2");
        assert_eq!(labels.get("d"), "\\t");
        assert_eq!(labels.get("e"), "ünï");

        let om = "# HELP m say \\\"hi\\\"\\n\\\\\n# EOF\n";
        let entries = parse(om, Format::OpenMetrics).unwrap();
        assert_eq!(entries[0], Entry::Help { family: "m".into(), text: "say \"hi\"\n\\".into() });
    }

    #[test]
    fn empty_label_values_are_dropped() {
        let entries = parse("m{a=\"\",b=\"1\"} 1\n", Format::PrometheusText).unwrap();
        let Entry::Sample { labels, .. } = &entries[0] else { panic!() };
        assert_eq!(labels, &Labels::from_pairs([("__name__", "m"), ("b", "1")]));
        assert!(!labels.has("a"));
    }

    #[test]
    fn values_follow_go_syntax() {
        assert!(value("NaN").unwrap().is_nan());
        assert_eq!(value("nan").unwrap().to_bits(), NORMAL_NAN_BITS);
        assert_eq!(value("+Inf").unwrap(), f64::INFINITY);
        assert_eq!(value("-Inf").unwrap(), f64::NEG_INFINITY);
        assert_eq!(value("Inf").unwrap(), f64::INFINITY);
        assert_eq!(value("-infinity").unwrap(), f64::NEG_INFINITY);
        assert_eq!(value("1e3").unwrap(), 1000.0);
        assert_eq!(value("1E-3").unwrap(), 0.001);
        assert_eq!(value("-0").unwrap().to_bits(), (-0.0f64).to_bits());
        assert_eq!(value(".5").unwrap(), 0.5);
        assert_eq!(value("5.").unwrap(), 5.0);
        assert_eq!(value("+7").unwrap(), 7.0);
        assert_eq!(value("1e-400").unwrap(), 0.0);
        assert_eq!(value("18446744073709551617").unwrap(), 18446744073709551616.0);
        for bad in ["abc", "+NaN", "-nan", "0x1p3", "0x10", "1_000", "1e", ".", "+", "e5", "1,5", "Infin"] {
            let e = value(bad).unwrap_err();
            assert_eq!(e.message, format!("invalid value {bad:?}"), "{bad}");
            assert_eq!((e.line, e.column), (1, 3));
        }
        assert_eq!(value("1e999").unwrap_err().message, "invalid value \"1e999\": out of range");
    }

    #[test]
    fn prometheus_timestamps_are_integer_milliseconds() {
        let entries = parse("a 1 1700000000123\nb 1 -5\n", Format::PrometheusText).unwrap();
        let got: Vec<_> = samples(&entries).into_iter().map(|s| s.1).collect();
        assert_eq!(got, [Some(1700000000123), Some(-5)]);
        assert_eq!(err_at("a 1 1.5\n", Format::PrometheusText), (1, 5, "invalid timestamp \"1.5\"".into()));
        assert_eq!(
            err_at("a 1 99999999999999999999\n", Format::PrometheusText),
            (1, 5, "invalid timestamp \"99999999999999999999\"".into())
        );
        assert_eq!(err_at("a 1 2 3\n", Format::PrometheusText), (1, 7, "expected end of line after timestamp, found '3'".into()));
    }

    #[test]
    fn openmetrics_basic() {
        let input = "# TYPE foo_seconds counter\n\
                     # UNIT foo_seconds seconds\n\
                     # HELP foo_seconds Time spent.\n\
                     foo_seconds_total{a=\"b\"} 17.5 1520879607.789\n\
                     foo_seconds_created{a=\"b\"} 1520430000.123\n\
                     # TYPE h histogram\n\
                     h_bucket{le=\"0.5\"} 1 # {trace_id=\"KOO5S4vxi0o\"} 0.37 1520879607.7\n\
                     h_bucket{le=\"+Inf\"} 2 123.5 # {} 0.67\n\
                     h_count 2\n\
                     h_sum 1.04\n\
                     # TYPE s stateset\n\
                     s{s=\"a\"} 1\n\
                     # TYPE i info\n\
                     i_info{v=\"1\"} 1\n\
                     # TYPE g gaugehistogram\n\
                     # TYPE u unknown\n\
                     # HELP u\n\
                     # EOF\n";
        let entries = parse(input, Format::OpenMetrics).unwrap();
        assert_eq!(entries[0], Entry::Type { family: "foo_seconds".into(), kind: MetricType::Counter });
        assert_eq!(entries[1], Entry::Unit { family: "foo_seconds".into(), unit: "seconds".into() });
        assert_eq!(entries[2], Entry::Help { family: "foo_seconds".into(), text: "Time spent.".into() });
        let kinds: Vec<_> = entries
            .iter()
            .filter_map(|e| match e {
                Entry::Type { kind, .. } => Some(*kind),
                _ => None,
            })
            .collect();
        use MetricType::*;
        assert_eq!(kinds, [Counter, Histogram, StateSet, Info, GaugeHistogram, Unknown]);
        assert_eq!(entries.last(), Some(&Entry::Help { family: "u".into(), text: String::new() }));
        assert_eq!(
            samples(&entries),
            vec![
                (r#"foo_seconds_total{a="b"}"#.into(), Some(1520879607789), 17.5),
                (r#"foo_seconds_created{a="b"}"#.into(), None, 1520430000.123),
                (r#"h_bucket{le="0.5"}"#.into(), None, 1.0),
                (r#"h_bucket{le="+Inf"}"#.into(), Some(123500), 2.0),
                ("h_count".into(), None, 2.0),
                ("h_sum".into(), None, 1.04),
                (r#"s{s="a"}"#.into(), None, 1.0),
                (r#"i_info{v="1"}"#.into(), None, 1.0),
            ]
        );
    }

    #[test]
    fn openmetrics_timestamps_are_seconds_rounded_to_ms() {
        let cases = [
            ("1", 1000),
            ("1.5", 1500),
            ("1.001", 1001),
            ("0.0005", 1),
            ("0.0004", 0),
            ("-1.25", -1250),
            ("1e3", 1_000_000),
            ("1700000000.999", 1_700_000_000_999),
        ];
        for (tok, ms) in cases {
            let entries = parse(&format!("m 1 {tok}\n# EOF"), Format::OpenMetrics).unwrap();
            assert_eq!(samples(&entries)[0].1, Some(ms), "{tok}");
        }
        for bad in ["NaN", "Inf", "x", "1,5"] {
            let e = err(&format!("m 1 {bad}\n# EOF"), Format::OpenMetrics);
            assert_eq!((e.column, e.message), (5, format!("invalid timestamp {bad:?}")));
        }
        let e = err("m 1 1e300\n# EOF", Format::OpenMetrics);
        assert_eq!(e.message, "timestamp \"1e300\" out of range");
    }

    #[test]
    fn openmetrics_exemplar_errors() {
        let om = Format::OpenMetrics;
        assert_eq!(err_at("m 1 # {a=\"b\"}\n# EOF", om), (1, 14, "expected ' ' and an exemplar value, found end of line".into()));
        assert_eq!(err_at("m 1 # {a=\"b\"} x\n# EOF", om), (1, 15, "invalid value \"x\"".into()));
        assert_eq!(err_at("m 1 # a\n# EOF", om), (1, 7, "expected '{' starting the exemplar's labels, found 'a'".into()));
        assert_eq!(err_at("m 1 2 #{} 1\n# EOF", om), (1, 8, "expected ' ' after '#', found '{'".into()));
        assert_eq!(err_at("m 1 2 3\n# EOF", om), (1, 7, "expected '#' starting an exemplar, found '3'".into()));
        assert_eq!(err_at("m 1 # {a=\"b\"} 1 2 3\n# EOF", om), (1, 18, "expected end of line, found ' '".into()));
        assert_eq!(err_at("m 1 # {a=\"1\",a=\"2\"} 1\n# EOF", om), (1, 14, "duplicate label \"a\"".into()));
    }

    #[test]
    fn openmetrics_eof_rules() {
        let om = Format::OpenMetrics;
        assert_eq!(parse("# EOF", om).unwrap(), vec![]);
        assert_eq!(parse("# EOF\n", om).unwrap(), vec![]);
        assert_eq!(err_at("", om), (1, 1, "missing # EOF".into()));
        assert_eq!(err_at("m 1\n", om), (2, 1, "missing # EOF".into()));
        assert_eq!(err_at("m 1\nm{a=\"ü\"} 2", om), (2, 11, "missing # EOF".into()));
        assert_eq!(err_at("# EOF\n\n", om), (2, 1, "unexpected content after # EOF".into()));
        assert_eq!(err_at("# EOF\nm 1\n", om), (2, 1, "unexpected content after # EOF".into()));
        assert_eq!(err_at("# EOF\n# EOF", om), (2, 1, "unexpected content after # EOF".into()));
        assert_eq!(err_at("# EOF \n", om), (1, 6, "expected end of line after # EOF, found ' '".into()));
        assert_eq!(err_at("m 1\n\n# EOF", om), (2, 1, "blank lines are not allowed in OpenMetrics".into()));
        // In the text format "# EOF" is only a comment.
        assert_eq!(parse("# EOF\nm 1\n", Format::PrometheusText).unwrap().len(), 1);
    }

    #[test]
    fn openmetrics_is_strict_about_spacing_and_comments() {
        let om = Format::OpenMetrics;
        let cases: &[(&str, (usize, usize, &str))] = &[
            ("m  1\n# EOF", (1, 3, "expected value, found ' '")),
            ("m 1 \n# EOF", (1, 5, "expected timestamp, found end of line")),
            (" m 1\n# EOF", (1, 1, "expected metric name, found ' '")),
            ("m\t1\n# EOF", (1, 1, "invalid metric name \"m\\t1\"")),
            ("m{a = \"b\"} 1\n# EOF", (1, 4, "expected '=' after label name, found ' '")),
            ("m {a=\"b\"} 1\n# EOF", (1, 3, "invalid value \"{a=\\\"b\\\"}\"")),
            ("m{a=\"b\"}1\n# EOF", (1, 9, "expected ' ' and a value, found '1'")),
            ("m\n# EOF", (1, 2, "expected ' ' and a value, found end of line")),
            ("# a comment\n# EOF", (1, 3, "expected HELP, TYPE, UNIT or EOF after '# ', found \"a\"")),
            ("#EOF", (1, 2, "expected ' ' after '#', found 'E'")),
            ("# TYPE m\n# EOF", (1, 9, "expected ' ' and a metric type, found end of line")),
            ("# TYPE m untyped\n# EOF", (1, 10, "invalid metric type \"untyped\"")),
            ("# TYPE m counter \n# EOF", (1, 10, "invalid metric type \"counter \"")),
            ("# TYPE  m counter\n# EOF", (1, 8, "expected metric name, found ' '")),
            ("# UNIT m_seconds bytes\n# EOF", (1, 18, "unit \"bytes\" is not a suffix of metric \"m_seconds\"")),
            ("# UNIT seconds seconds\n# EOF", (1, 16, "unit \"seconds\" is not a suffix of metric \"seconds\"")),
            ("# UNIT m_s s-\n# EOF", (1, 12, "invalid unit \"s-\"")),
        ];
        for (input, want) in cases {
            let got = err_at(input, om);
            assert_eq!((got.0, got.1, got.2.as_str()), *want, "{input:?}");
        }
        // Trailing commas and empty units are accepted, as in Prometheus.
        let entries = parse("m{a=\"b\",} 1\n# UNIT m\n# UNIT m \n# EOF\n", om).unwrap();
        assert_eq!(samples(&entries)[0].0, r#"m{a="b"}"#);
        assert_eq!(entries[1], Entry::Unit { family: "m".into(), unit: String::new() });
        assert_eq!(entries[2], Entry::Unit { family: "m".into(), unit: String::new() });
    }

    #[test]
    fn error_positions_and_messages() {
        let text = Format::PrometheusText;
        let cases: &[(&str, (usize, usize, &str))] = &[
            ("ok 1\nm{a=b} 1\n", (2, 5, "expected label value in quotes, found 'b'")),
            ("m abc\n", (1, 3, "invalid value \"abc\"")),
            ("m{a=\"1\",a=\"2\"} 1\n", (1, 9, "duplicate label \"a\"")),
            ("m{__name__=\"x\"} 1\n", (1, 3, "duplicate label \"__name__\"")),
            ("0m 1\n", (1, 1, "invalid metric name \"0m\"")),
            ("m-x 1\n", (1, 1, "invalid metric name \"m-x\"")),
            ("m{a-b=\"1\"} 1\n", (1, 3, "invalid label name \"a-b\"")),
            ("m{1a=\"1\"} 1\n", (1, 3, "invalid label name \"1a\"")),
            ("m{a:b=\"1\"} 1\n", (1, 3, "invalid label name \"a:b\"")),
            ("m{,} 1\n", (1, 3, "expected label name or '}', found ','")),
            ("m{a=\"1\",,} 1\n", (1, 9, "expected label name or '}', found ','")),
            ("m{a=\"1\" b=\"2\"} 1\n", (1, 9, "expected ',' or '}' after label value, found 'b'")),
            ("m{a=\"1\n", (1, 7, "expected '\"' closing the label value, found end of line")),
            ("m{a=\"1\\\"} 1\n", (1, 12, "expected '\"' closing the label value, found end of line")),
            ("m{a=\"1\"\n", (1, 8, "expected ',' or '}' after label value, found end of line")),
            ("m{a\n", (1, 4, "expected '=' after label name, found end of line")),
            ("m\n", (1, 2, "expected value, found end of line")),
            ("m{} \n", (1, 5, "expected value, found end of line")),
            ("{a=\"b\"} 1\n", (1, 1, "expected metric name, found '{'")),
            ("\"m\" 1\n", (1, 1, "invalid metric name \"\\\"m\\\"\"")),
            ("# HELP \n", (1, 8, "expected metric name after HELP, found end of line")),
            ("# TYPE 1m counter\n", (1, 8, "invalid metric name \"1m\"")),
            ("# TYPE m\n", (1, 9, "expected metric type, found end of line")),
            ("# TYPE m  \n", (1, 11, "expected metric type, found end of line")),
            ("# TYPE m stateset\n", (1, 10, "invalid metric type \"stateset\"")),
            ("# TYPE m\t\tcounter  x\n", (1, 11, "invalid metric type \"counter  x\"")),
            // Columns count characters, not bytes.
            ("m{a=\"ü\",b=x} 1\n", (1, 11, "expected label value in quotes, found 'x'")),
            ("m 1\r\n", (1, 3, "invalid value \"1\\r\"")),
        ];
        for (input, want) in cases {
            let got = err_at(input, text);
            assert_eq!((got.0, got.1, got.2.as_str()), *want, "{input:?}");
        }
    }

    #[test]
    fn error_display_names_line_and_column() {
        let e = err("m 1\nm{a=b} 1\n", Format::PrometheusText);
        assert_eq!(e.to_string(), "line 2, column 5: expected label value in quotes, found 'b'");
    }

    #[test]
    fn parse_each_streams_until_the_first_error() {
        let mut seen = Vec::new();
        let res = parse_each("a 1\nb 2\nc x\nd 4\n", Format::PrometheusText, |e| seen.push(e));
        assert_eq!(res.unwrap_err().line, 3);
        assert_eq!(samples(&seen).len(), 2);
    }

    #[test]
    fn metric_type_names() {
        assert_eq!(MetricType::GaugeHistogram.to_string(), "gaugehistogram");
        assert_eq!(MetricType::Unknown.as_str(), "unknown");
    }

    // ---- property tests ----

    /// A value written the way exporters do, in one of several styles, all of
    /// which must read back to the same bits.
    fn render_value(v: f64, style: usize) -> String {
        if v.is_nan() {
            ["NaN", "nan", "NaN"][style % 3].to_owned()
        } else if v.is_infinite() {
            let s = if v > 0.0 { ["+Inf", "Inf", "+inf"] } else { ["-Inf", "-Inf", "-infinity"] };
            s[style % 3].to_owned()
        } else {
            match style % 3 {
                0 => format!("{v}"),
                1 => format!("{v:e}"),
                _ => format!("{v:?}"),
            }
        }
    }

    fn escape_help(s: &str, om: bool) -> String {
        let mut out = String::new();
        for c in s.chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '"' if om => out.push_str("\\\""),
                c => out.push(c),
            }
        }
        out
    }

    type Series = (String, Vec<(String, String)>, f64, Option<i64>, usize);

    fn series() -> impl Strategy<Value = Series> {
        (
            "[a-zA-Z_:][a-zA-Z0-9_:]{0,10}",
            prop::collection::btree_map("[a-zA-Z_][a-zA-Z0-9_]{0,6}", "(?s).{0,8}", 0..4)
                .prop_map(|m| m.into_iter().filter(|(k, _)| k != METRIC_NAME).collect()),
            any::<f64>(),
            prop::option::of(0i64..4_000_000_000_000),
            0usize..3,
        )
    }

    fn render(series: &[Series], help: &str, om: bool) -> String {
        let mut out = format!("# HELP fam {}\n", escape_help(help, om));
        for (name, labels, v, ts, style) in series {
            out.push_str(name);
            if !labels.is_empty() || *style == 1 {
                out.push('{');
                for (k, lv) in labels {
                    out.push_str(&format!("{k}=\"{}\",", escape_label_value(lv)));
                }
                if (om || *style != 2) && out.ends_with(',') {
                    out.pop();
                }
                out.push('}');
            }
            out.push(' ');
            out.push_str(&render_value(*v, *style));
            if let Some(ts) = ts {
                if om {
                    out.push_str(&format!(" {}.{:03}", ts / 1000, ts % 1000));
                } else {
                    out.push_str(&format!(" {ts}"));
                }
            }
            if om && *style == 0 {
                out.push_str(" # {trace_id=\"abc\"} 0.5 1.25");
            }
            out.push('\n');
        }
        if om {
            out.push_str("# EOF\n");
        }
        out
    }

    fn check_round_trip(series: &[Series], help: &str, format: Format) -> Result<(), TestCaseError> {
        let om = format == Format::OpenMetrics;
        let input = render(series, help, om);
        let entries = parse(&input, format).map_err(|e| TestCaseError::fail(format!("{e} in {input:?}")))?;
        prop_assert_eq!(entries.len(), series.len() + 1);
        prop_assert_eq!(&entries[0], &Entry::Help { family: "fam".into(), text: help.to_owned() });
        for ((name, labels, v, ts, _), entry) in series.iter().zip(&entries[1..]) {
            let Entry::Sample { labels: got, timestamp_ms, value } = entry else {
                return Err(TestCaseError::fail(format!("not a sample: {entry:?}")));
            };
            let want = Labels::from_pairs(labels.iter().map(|(k, v)| (k.as_str(), v.as_str())).chain([(METRIC_NAME, name.as_str())]));
            prop_assert_eq!(got, &want);
            prop_assert_eq!(timestamp_ms, ts);
            if v.is_nan() {
                prop_assert_eq!(value.to_bits(), NORMAL_NAN_BITS);
            } else {
                prop_assert_eq!(value.to_bits(), v.to_bits(), "{} vs {}", value, v);
            }
        }
        Ok(())
    }

    /// A sink with a series cache, as a scrape uses: samples come back as
    /// entries whether they were parsed or found in the cache.
    #[derive(Default)]
    struct Caching {
        cache: std::collections::HashMap<String, Labels>,
        out: Vec<Entry>,
    }

    impl ScrapeSink for Caching {
        fn known_sample(&mut self, series: &str, timestamp_ms: Option<i64>, value: f64) -> bool {
            let Some(labels) = self.cache.get(series) else { return false };
            self.out.push(Entry::Sample { labels: labels.clone(), timestamp_ms, value });
            true
        }
        fn new_sample(&mut self, series: &str, labels: Labels, _: &[String], timestamp_ms: Option<i64>, value: f64) {
            self.cache.insert(series.to_owned(), labels.clone());
            self.out.push(Entry::Sample { labels, timestamp_ms, value });
        }
        fn metadata(&mut self, entry: Entry) {
            self.out.push(entry);
        }
    }

    /// Parsing with a cache, cold and then warm, gives what a plain parse gives.
    fn check_cached_equals_plain(input: &str) -> Result<(), TestCaseError> {
        for format in [Format::PrometheusText, Format::OpenMetrics] {
            let plain = parse(input, format);
            let mut sink = Caching::default();
            let cold = parse_scrape(input, format, &mut sink).map(|()| std::mem::take(&mut sink.out));
            let warm = parse_scrape(input, format, &mut sink).map(|()| std::mem::take(&mut sink.out));
            let bits = |r: &Result<Vec<Entry>, ParseError>| -> Result<Vec<String>, ParseError> {
                r.clone().map(|v| {
                    v.iter()
                        .map(|e| match e {
                            Entry::Sample { labels, timestamp_ms, value } => format!("{labels} {timestamp_ms:?} {:x}", value.to_bits()),
                            other => format!("{other:?}"),
                        })
                        .collect::<Vec<_>>()
                })
            };
            prop_assert_eq!(bits(&cold), bits(&plain), "cold cache, {:?}: {:?}", format, input);
            prop_assert_eq!(bits(&warm), bits(&plain), "warm cache, {:?}: {:?}", format, input);
        }
        Ok(())
    }

    #[test]
    fn cached_parse_matches_plain_parse_on_tricky_lines() {
        for input in [
            "a{b=\"}\"} 1\na{b=\"}\"} 2\n",
            "a {b=\"x\"} 1 5\na {b=\"x\"}   2\n",
            "a{b=\"x\\\"\"} 1\n",
            "a{b=\"x\"} 1\na{b=\"x\"} bad\n",
            "a{b=\"\"} 1\na{b=\"\"} 1\n",
            "a{1b=\"x\"} 1\n",
            "a{b=\"x\"} 1 # {t=\"1\"} 2\n# EOF\n",
        ] {
            check_cached_equals_plain(input).unwrap_or_else(|e| panic!("{e}"));
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
            let s = String::from_utf8_lossy(&bytes);
            let _ = parse(&s, Format::PrometheusText);
            let _ = parse(&s, Format::OpenMetrics);
        }

        #[test]
        fn exposition_like_noise_never_panics(s in "[a-z_:{}=\",# \t\n\\\\.0-9eEInfNa+ü-]{0,120}") {
            let _ = parse(&s, Format::PrometheusText);
            let _ = parse(&s, Format::OpenMetrics);
            let _ = parse(&format!("{s}\n# EOF\n"), Format::OpenMetrics);
        }

        #[test]
        fn valid_expositions_round_trip(
            series in prop::collection::vec(series(), 0..8),
            help in "(?s).{0,20}",
        ) {
            check_round_trip(&series, &help, Format::PrometheusText)?;
            check_round_trip(&series, &help, Format::OpenMetrics)?;
        }

        #[test]
        fn mangled_expositions_never_panic(
            series in prop::collection::vec(series(), 1..4),
            cut in any::<prop::sample::Index>(),
            insert in any::<prop::sample::Index>(),
            junk in "[{}=\",# \n\\\\]{0,3}",
        ) {
            for om in [false, true] {
                let input = render(&series, "h", om);
                let chars: Vec<char> = input.chars().collect();
                let cut = cut.index(chars.len() + 1);
                let at = insert.index(cut + 1);
                let mut s: String = chars[..at].iter().collect();
                s.push_str(&junk);
                s.extend(&chars[at..cut]);
                check_cached_equals_plain(&s)?;
            }
        }

        #[test]
        fn cached_parse_matches_plain_parse(
            series in prop::collection::vec(series(), 0..6),
            noise in "[a-z_:{}=\",# \t\n\\\\.0-9eEInfNa+ü-]{0,80}",
        ) {
            check_cached_equals_plain(&render(&series, "h", false))?;
            check_cached_equals_plain(&render(&series, "h", true))?;
            check_cached_equals_plain(&noise)?;
            check_cached_equals_plain(&format!("{noise}\n# EOF\n"))?;
        }
    }
}
