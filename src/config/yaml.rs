//! YAML decoding that says where a problem is.
//!
//! serde-saphyr reports a line and column but not which field of which list
//! entry failed, and validation that runs after decoding has no position at
//! all. Users of a long Prometheus configuration need both, so decoding runs
//! through `serde_path_to_error` (the path), and a validation error's path is
//! mapped back to a line and column by walking the YAML events ([`locate`]).

use std::fmt;

use serde::de::DeserializeOwned;
use serde_saphyr::granit_parser::{Event, Parser};
use serde_saphyr::{MessageFormatter, UserMessageFormatter};

/// One step from a YAML node to a child: a mapping key or a sequence index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    Key(String),
    Index(usize),
}

/// A place in a YAML document, written `scrape_configs[0].static_configs[1].targets`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct YamlPath(Vec<Segment>);

impl YamlPath {
    /// The document root.
    pub fn root() -> Self {
        YamlPath::default()
    }

    /// This path extended by a mapping key.
    pub fn key(&self, key: &str) -> Self {
        let mut p = self.clone();
        p.0.push(Segment::Key(key.to_string()));
        p
    }

    /// This path extended by a sequence index.
    pub fn index(&self, i: usize) -> Self {
        let mut p = self.clone();
        p.0.push(Segment::Index(i));
        p
    }

    /// The steps from the root.
    pub fn segments(&self) -> &[Segment] {
        &self.0
    }

    fn from_serde(path: &serde_path_to_error::Path) -> Self {
        use serde_path_to_error::Segment as S;
        YamlPath(
            path.iter()
                .filter_map(|s| match s {
                    S::Seq { index } => Some(Segment::Index(*index)),
                    S::Map { key } => Some(Segment::Key(key.clone())),
                    S::Enum { variant } => Some(Segment::Key(variant.clone())),
                    S::Unknown => None,
                })
                .collect(),
        )
    }
}

impl fmt::Display for YamlPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, s) in self.0.iter().enumerate() {
            match s {
                Segment::Key(k) if i == 0 => write!(f, "{k}")?,
                Segment::Key(k) => write!(f, ".{k}")?,
                Segment::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

/// A problem at a place in a YAML document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YamlError {
    /// Where, as a path from the root (empty when the document itself is malformed).
    pub path: YamlPath,
    /// 1-based line and column, when known.
    pub line_col: Option<(usize, usize)>,
    /// What is wrong, without the position.
    pub message: String,
}

impl fmt::Display for YamlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some((l, c)) = self.line_col {
            write!(f, "{l}:{c}: ")?;
        }
        if !self.path.segments().is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        f.write_str(&self.message)
    }
}

/// Parser limits for configuration and rule files. serde-saphyr's defaults
/// (250k nodes, 1M events) guard against hostile input, but a generated
/// configuration with a few thousand jobs is larger than that; these files
/// come from the operator of the server, so the node and event caps are
/// raised while the alias limits (billion laughs) stay.
fn options() -> serde_saphyr::Options {
    let mut budget = serde_saphyr::budget::Budget::default();
    budget.max_nodes = 50_000_000;
    budget.max_events = 200_000_000;
    let mut o = serde_saphyr::Options::default();
    o.budget = Some(budget);
    o
}

/// Decodes one YAML document; an empty document decodes as `T::default()`
/// would for a struct whose fields are all defaulted.
pub fn from_str<T: DeserializeOwned>(yaml: &str) -> Result<T, YamlError> {
    let mut failed_at = None;
    serde_saphyr::with_deserializer_from_str_with_options(yaml, options(), |de| {
        let mut track = serde_path_to_error::Track::new();
        let tracked = serde_path_to_error::Deserializer::new(de, &mut track);
        T::deserialize(tracked).inspect_err(|_| failed_at = Some(track.path()))
    })
    .map_err(|e| {
        let e = e.without_snippet();
        let line_col = e.location().map(|l| (l.line() as usize, l.column() as usize));
        let message = UserMessageFormatter.format_message(e);
        let message = match message.as_ref() {
            "expected sequence start" => "expected a list".to_string(),
            "expected mapping start" => "expected a mapping".to_string(),
            "invalid u64" => "expected a non-negative integer".to_string(),
            "invalid i64" => "expected an integer".to_string(),
            "invalid boolean" => "expected true or false".to_string(),
            m => m.to_string(),
        };
        let path = failed_at.as_ref().map(YamlPath::from_serde).unwrap_or_default();
        YamlError { path, line_col, message }
    })
}

/// A validation error at `path`, with the line and column looked up in `yaml`.
pub fn error_at(yaml: &str, path: YamlPath, message: impl Into<String>) -> YamlError {
    YamlError { line_col: locate(yaml, &path), path, message: message.into() }
}

/// The 1-based line and column of the node at `path` (for a key, its value),
/// or `None` when the path is not in the document (a defaulted field).
pub fn locate(yaml: &str, path: &YamlPath) -> Option<(usize, usize)> {
    let mut events = Parser::new_from_str(yaml).filter_map(Result::ok).filter(|(e, _)| !matches!(e, Event::Comment(..)));
    // Skip to the document's root node.
    loop {
        let (e, _) = events.next()?;
        if matches!(e, Event::DocumentStart(..)) {
            break;
        }
    }
    find(&mut events, path.segments())
}

type Spanned<'a> = (Event<'a>, serde_saphyr::granit_parser::Span);

/// Consumes one node from `events`; returns the position of the descendant at `rest`.
fn find<'a>(events: &mut impl Iterator<Item = Spanned<'a>>, rest: &[Segment]) -> Option<(usize, usize)> {
    let (event, span) = events.next()?;
    if matches!(event, Event::MappingEnd | Event::SequenceEnd) {
        return None;
    }
    let here = (span.start.line(), span.start.col() + 1);
    let Some((first, rest)) = rest.split_first() else {
        return Some(here);
    };
    match (event, first) {
        (Event::MappingStart(..), Segment::Key(want)) => loop {
            let (key, _) = events.next()?;
            match key {
                Event::MappingEnd => return None,
                Event::Scalar(k, ..) if k == want.as_str() => return find(events, rest),
                Event::Scalar(..) | Event::Alias(_) => {}
                // A complex key: skip it.
                Event::MappingStart(..) | Event::SequenceStart(..) => skip_rest(events)?,
                _ => return None,
            }
            skip(events)?;
        },
        (Event::SequenceStart(..), Segment::Index(want)) => {
            for _ in 0..*want {
                if !skip(events)? {
                    return None;
                }
            }
            find(events, rest)
        }
        _ => None,
    }
}

/// Consumes one node; `Some(false)` when a container ended instead.
fn skip<'a>(events: &mut impl Iterator<Item = Spanned<'a>>) -> Option<bool> {
    match events.next()?.0 {
        Event::MappingStart(..) | Event::SequenceStart(..) => skip_rest(events).map(|_| true),
        Event::MappingEnd | Event::SequenceEnd => Some(false),
        _ => Some(true),
    }
}

/// Consumes the rest of a container whose start was just read.
fn skip_rest<'a>(events: &mut impl Iterator<Item = Spanned<'a>>) -> Option<()> {
    let mut depth = 1usize;
    while depth > 0 {
        match events.next()?.0 {
            Event::MappingStart(..) | Event::SequenceStart(..) => depth += 1,
            Event::MappingEnd | Event::SequenceEnd => depth -= 1,
            _ => {}
        }
    }
    Some(())
}

#[cfg(test)]
mod tests {

    #[test]
    fn large_generated_files_are_within_the_parser_budget() {
        // Over serde-saphyr's default 250k-node cap, as a configuration
        // generated for a few thousand ServiceMonitors is.
        let yaml = "- 1\n".repeat(400_000);
        let v: Vec<u8> = from_str(&yaml).expect("a large file parses");
        assert_eq!(v.len(), 400_000);
    }

    use super::*;

    const DOC: &str = "# comment\nscrape_configs:\n  - job_name: a\n  - job_name: b\n    static_configs:\n      - targets: [x, 'y']\n";

    #[test]
    fn locates_values_by_path() {
        let p = YamlPath::root().key("scrape_configs").index(1).key("static_configs").index(0).key("targets").index(1);
        assert_eq!(p.to_string(), "scrape_configs[1].static_configs[0].targets[1]");
        assert_eq!(locate(DOC, &p), Some((6, 22)));
        assert_eq!(locate(DOC, &YamlPath::root().key("scrape_configs").index(1).key("job_name")), Some((4, 15)));
        assert_eq!(locate(DOC, &YamlPath::root().key("scrape_configs").index(2)), None);
        assert_eq!(locate(DOC, &YamlPath::root().key("global")), None);
    }

    #[test]
    fn decode_errors_carry_path_and_position() {
        #[derive(Debug, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct S {
            job_name: String,
        }
        #[derive(Debug, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct C {
            scrape_configs: Vec<S>,
        }
        let e = from_str::<C>("scrape_configs:\n  - job_name: a\n    jobname: b\n").unwrap_err();
        assert_eq!(e.path.to_string(), "scrape_configs[0].jobname");
        assert_eq!(e.line_col, Some((3, 5)));
        assert!(e.message.starts_with("unknown field `jobname`"), "{}", e.message);
    }
}
