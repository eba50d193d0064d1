//! Label matchers (`=`, `!=`, `=~`, `!~`) with Prometheus' regex semantics.
//!
//! Regexes are fully anchored and `.` matches newlines (`^(?s:re)$`), exactly as
//! Prometheus compiles them. Common shapes are recognised once at construction so
//! the index can answer them without running a regex per label value:
//! literal alternations (`a|b|c`), prefixes (`foo.*`), and `.*` / `.+`.

use std::fmt;

use regex::Regex;

/// The comparison a matcher performs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MatchOp {
    Equal,
    NotEqual,
    Regex,
    NotRegex,
}

impl MatchOp {
    pub fn as_str(self) -> &'static str {
        match self {
            MatchOp::Equal => "=",
            MatchOp::NotEqual => "!=",
            MatchOp::Regex => "=~",
            MatchOp::NotRegex => "!~",
        }
    }
}

/// A matcher could not be built.
#[derive(Debug, thiserror::Error)]
pub enum MatcherError {
    #[error("invalid regular expression {pattern:?} for label {name:?}: {source}")]
    Regex {
        name: String,
        pattern: String,
        #[source]
        source: Box<regex::Error>,
    },
}

/// How a regex matcher is evaluated.
#[derive(Debug, Clone)]
pub enum FastRegex {
    /// `.*`: matches every value, including the empty one.
    Any,
    /// `.+`: matches every non-empty value.
    NonEmpty,
    /// `a|b|c`: one of a fixed set of literal strings (sorted).
    Literals(Vec<String>),
    /// `prefix.*`: values starting with the prefix.
    Prefix(String),
    /// Anything else, compiled fully anchored.
    Compiled(Regex),
}

impl FastRegex {
    fn new(name: &str, pattern: &str) -> Result<Self, MatcherError> {
        // Always compile, so invalid patterns are rejected even when a fast path
        // would accept them syntactically.
        let compiled = Regex::new(&format!("^(?s:{pattern})$")).map_err(|e| MatcherError::Regex {
            name: name.to_string(),
            pattern: pattern.to_string(),
            source: Box::new(e),
        })?;
        Ok(match pattern {
            ".*" => FastRegex::Any,
            ".+" => FastRegex::NonEmpty,
            p if !p.is_empty() && is_plain_literal(p, true) => {
                let mut v: Vec<String> = p.split('|').map(str::to_string).collect();
                v.sort();
                v.dedup();
                FastRegex::Literals(v)
            }
            p if p.ends_with(".*") && is_plain_literal(&p[..p.len() - 2], false) => FastRegex::Prefix(p[..p.len() - 2].to_string()),
            _ => FastRegex::Compiled(compiled),
        })
    }

    pub fn is_match(&self, v: &str) -> bool {
        match self {
            FastRegex::Any => true,
            FastRegex::NonEmpty => !v.is_empty(),
            FastRegex::Literals(set) => set.binary_search_by(|s| s.as_str().cmp(v)).is_ok(),
            FastRegex::Prefix(p) => v.starts_with(p.as_str()),
            FastRegex::Compiled(re) => re.is_match(v),
        }
    }
}

/// True when `s` has no regex metacharacters (allowing `|` when `alternation`).
fn is_plain_literal(s: &str, alternation: bool) -> bool {
    s.chars()
        .all(|c| !matches!(c, '\\' | '.' | '+' | '*' | '?' | '(' | ')' | '[' | ']' | '{' | '}' | '^' | '$') && (alternation || c != '|'))
}

/// A label matcher such as `job=~"api|web"`.
#[derive(Debug, Clone)]
pub struct Matcher {
    pub name: String,
    pub op: MatchOp,
    pub value: String,
    re: Option<FastRegex>,
}

impl Matcher {
    /// Builds a matcher; regex operators compile their pattern here, once.
    pub fn new(op: MatchOp, name: impl Into<String>, value: impl Into<String>) -> Result<Self, MatcherError> {
        let name = name.into();
        let value = value.into();
        let re = match op {
            MatchOp::Regex | MatchOp::NotRegex => Some(FastRegex::new(&name, &value)?),
            _ => None,
        };
        Ok(Matcher { name, op, value, re })
    }

    /// Shorthand for an equality matcher, which cannot fail.
    pub fn equal(name: impl Into<String>, value: impl Into<String>) -> Self {
        Matcher { name: name.into(), op: MatchOp::Equal, value: value.into(), re: None }
    }

    /// Whether a label value (empty when the label is absent) satisfies the matcher.
    pub fn matches(&self, v: &str) -> bool {
        match (self.op, &self.re) {
            (MatchOp::Equal, _) => v == self.value,
            (MatchOp::NotEqual, _) => v != self.value,
            (MatchOp::Regex, Some(re)) => re.is_match(v),
            (MatchOp::NotRegex, Some(re)) => !re.is_match(v),
            (MatchOp::Regex | MatchOp::NotRegex, None) => {
                unreachable!("regex matchers always carry a compiled regex")
            }
        }
    }

    /// The recognised regex shape, for index fast paths.
    pub fn fast_regex(&self) -> Option<&FastRegex> {
        self.re.as_ref()
    }

    /// Whether the empty string matches (such matchers also select series
    /// that lack the label entirely).
    pub fn matches_empty(&self) -> bool {
        self.matches("")
    }
}

impl fmt::Display for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}\"{}\"", self.name, self.op.as_str(), super::labels::escape_label_value(&self.value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn re(p: &str) -> Matcher {
        Matcher::new(MatchOp::Regex, "l", p).expect("valid regex")
    }

    #[test]
    fn regexes_are_fully_anchored_and_dot_matches_newline() {
        assert!(re("fo+").matches("foo"));
        assert!(!re("fo+").matches("xfoo"));
        assert!(!re("fo+").matches("foox"));
        assert!(re("a.b").matches("a\nb"));
    }

    #[test]
    fn fast_paths_agree_with_the_compiled_regex() {
        for (p, kind) in [(".*", "any"), (".+", "nonempty"), ("a|bc|d", "lit"), ("foo.*", "prefix"), ("fo[o]", "re")] {
            let m = re(p);
            let shape = match m.fast_regex() {
                Some(FastRegex::Any) => "any",
                Some(FastRegex::NonEmpty) => "nonempty",
                Some(FastRegex::Literals(_)) => "lit",
                Some(FastRegex::Prefix(_)) => "prefix",
                _ => "re",
            };
            assert_eq!(shape, kind, "{p}");
            let full = Regex::new(&format!("^(?s:{p})$")).expect("valid");
            for v in ["", "a", "bc", "d", "foo", "foobar", "xfoo", "fo", "b\nc"] {
                assert_eq!(m.matches(v), full.is_match(v), "{p} on {v:?}");
            }
        }
    }

    #[test]
    fn invalid_regex_names_label_and_pattern() {
        let err = Matcher::new(MatchOp::Regex, "job", "a(").expect_err("must fail");
        let msg = err.to_string();
        assert!(msg.contains("job") && msg.contains("a("), "{msg}");
    }

    #[test]
    fn negative_matchers_match_empty() {
        assert!(Matcher::new(MatchOp::NotEqual, "a", "x").expect("ok").matches_empty());
        assert!(!re(".+").matches_empty());
    }
}
