//! The file patterns of `file_sd_configs`: a path whose last element may hold
//! `*`, `?` and `[...]`, matched like Go's `filepath.Match` (which Prometheus
//! uses through `filepath.Glob`), so a pattern selects the same files here as
//! there. Wildcards in directories are not expanded: Prometheus' configuration
//! only allows them in the final element.

use std::path::Path;

/// A configured `files` entry, checked once so that polling never re-parses it.
#[derive(Debug, Clone)]
pub(crate) enum FilePattern {
    /// A plain path: it is listed while something (even a dangling symlink) is there.
    Literal(String),
    /// A directory and a pattern for the names in it.
    Glob { dir: String, name: NamePattern },
}

impl FilePattern {
    /// Splits `pattern` at its last `/`; only the part after it may be a wildcard.
    pub(crate) fn parse(pattern: &str) -> Result<FilePattern, BadPattern> {
        let (dir, last) = match pattern.rfind('/') {
            Some(i) => (&pattern[..=i], &pattern[i + 1..]),
            None => ("", pattern),
        };
        if !last.contains(['*', '?', '[', '\\']) {
            return Ok(FilePattern::Literal(pattern.to_string()));
        }
        let name = NamePattern::parse(last).map_err(|reason| BadPattern { pattern: pattern.to_string(), reason })?;
        Ok(FilePattern::Glob { dir: dir.to_string(), name })
    }

    /// The paths this pattern selects now, sorted by name for a glob (as Go
    /// does). A directory that cannot be read selects nothing, like Go's Glob.
    pub(crate) fn list(&self) -> Vec<String> {
        match self {
            FilePattern::Literal(path) => {
                if std::fs::symlink_metadata(path).is_ok() {
                    vec![path.clone()]
                } else {
                    Vec::new()
                }
            }
            FilePattern::Glob { dir, name } => {
                let read_from = if dir.is_empty() { Path::new(".") } else { Path::new(dir) };
                let Ok(entries) = std::fs::read_dir(read_from) else { return Vec::new() };
                let mut names: Vec<String> =
                    entries.filter_map(|e| e.ok()?.file_name().into_string().ok()).filter(|n| name.matches(n)).collect();
                names.sort();
                names.into_iter().map(|n| format!("{dir}{n}")).collect()
            }
        }
    }
}

/// The files `pattern` selects now, sorted; nothing for an invalid pattern.
/// Rule files and `promtool`-style checks use the same rules as file SD.
pub fn expand(pattern: &str) -> Vec<std::path::PathBuf> {
    FilePattern::parse(pattern).map(|p| p.list().into_iter().map(Into::into).collect()).unwrap_or_default()
}

/// Why a `files` entry is not a valid pattern.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid file pattern {pattern:?}: {reason}")]
pub(crate) struct BadPattern {
    pattern: String,
    reason: &'static str,
}

/// One element of a name pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Char(char),
    /// `?`: any one character.
    Any,
    /// `*`: any run of characters.
    Star,
    /// `[...]`: one character in (or, negated, outside) the ranges.
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
}

/// A pattern for one path element, in `filepath.Match` syntax.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NamePattern(Vec<Token>);

impl NamePattern {
    /// Parses the whole pattern up front, so a malformed one is reported even
    /// where Go would only notice it while matching a particular name.
    pub(crate) fn parse(pattern: &str) -> Result<NamePattern, &'static str> {
        let mut chars = pattern.chars().peekable();
        let mut tokens = Vec::new();
        while let Some(c) = chars.next() {
            tokens.push(match c {
                '*' => Token::Star,
                '?' => Token::Any,
                '\\' => Token::Char(chars.next().ok_or("trailing backslash")?),
                '[' => {
                    let negated = chars.next_if_eq(&'^').is_some();
                    let mut ranges = Vec::new();
                    loop {
                        if !ranges.is_empty() && chars.next_if_eq(&']').is_some() {
                            break;
                        }
                        let lo = class_char(&mut chars)?;
                        let hi = if chars.next_if_eq(&'-').is_some() { class_char(&mut chars)? } else { lo };
                        ranges.push((lo, hi));
                    }
                    Token::Class { negated, ranges }
                }
                c => Token::Char(c),
            });
        }
        Ok(NamePattern(tokens))
    }

    /// Whether `name` matches the whole pattern; a `*` retries at each later
    /// position, which suffices because every other token takes one character.
    pub(crate) fn matches(&self, name: &str) -> bool {
        let name: Vec<char> = name.chars().collect();
        let tokens = &self.0;
        let (mut t, mut n) = (0, 0);
        let mut last_star: Option<(usize, usize)> = None;
        while n < name.len() {
            match tokens.get(t) {
                Some(Token::Star) => {
                    last_star = Some((t, n));
                    t += 1;
                    continue;
                }
                Some(token) if token.matches_char(name[n]) => {
                    t += 1;
                    n += 1;
                    continue;
                }
                _ => {}
            }
            match last_star {
                Some((star, from)) => {
                    t = star + 1;
                    n = from + 1;
                    last_star = Some((star, from + 1));
                }
                None => return false,
            }
        }
        tokens[t..].iter().all(|token| *token == Token::Star)
    }
}

impl Token {
    fn matches_char(&self, c: char) -> bool {
        match self {
            Token::Char(want) => *want == c,
            Token::Any => true,
            Token::Star => false,
            Token::Class { negated, ranges } => ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi) != *negated,
        }
    }
}

/// One end of a class range: `-` and `]` must be escaped there, as in Go.
fn class_char(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) -> Result<char, &'static str> {
    match chars.next() {
        None => Err("unterminated character class"),
        Some('-' | ']') => Err("unescaped '-' or ']' in character class"),
        Some('\\') => chars.next().ok_or("trailing backslash"),
        Some(c) => Ok(c),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(pattern: &str, name: &str) -> bool {
        NamePattern::parse(pattern).expect("valid pattern").matches(name)
    }

    #[test]
    fn wildcards_match_like_go_filepath_match() {
        assert!(m("*.json", "a.json"));
        assert!(m("*.json", ".json"));
        assert!(m("*.json", "..data.json"));
        assert!(!m("*.json", "a.json.bak"));
        assert!(!m("*.json", "a.yml"));
        assert!(m("a*b*c", "abc"));
        assert!(m("a*b*c", "axxbyybc"));
        assert!(!m("a*b*c", "axxbyyb"));
        assert!(m("*", ""));
        assert!(!m("?", ""));
        assert!(m("t?.yml", "t1.yml"));
        assert!(!m("t?.yml", "t12.yml"));
        assert!(m("[a-c]x", "bx"));
        assert!(!m("[a-c]x", "dx"));
        assert!(m("[^a-c]x", "dx"));
        assert!(!m("[^a-c]x", "ax"));
        assert!(!m("[z-a]", "m"), "a reversed range is valid but matches nothing");
        assert!(m("[\\]]", "]"));
        assert!(m("\\*.json", "*.json"));
        assert!(!m("\\*.json", "a.json"));
        assert!(m("é*", "été"));
    }

    #[test]
    fn malformed_patterns_are_rejected() {
        for bad in ["[", "[]", "[^]", "[a-", "[a-]", "[ab-]", "[-a]", "a\\", "[a"] {
            assert!(NamePattern::parse(bad).is_err(), "{bad:?} should be rejected");
        }
        let err = FilePattern::parse("/etc/sd/[.json").expect_err("unterminated class");
        assert!(err.to_string().contains("/etc/sd/[.json"), "{err}");
    }

    #[test]
    fn only_the_last_element_is_a_pattern() {
        match FilePattern::parse("/etc/sd[1]/*.json") {
            Ok(FilePattern::Glob { dir, .. }) => assert_eq!(dir, "/etc/sd[1]/"),
            other => panic!("unexpected {other:?}"),
        }
        assert!(matches!(FilePattern::parse("/etc/sd/a.json"), Ok(FilePattern::Literal(p)) if p == "/etc/sd/a.json"));
    }

    #[test]
    fn listing_sorts_matches_and_skips_missing_directories() {
        let dir = tempfile::tempdir().expect("temp dir");
        for name in ["b.json", "a.json", "c.yml", "..data"] {
            std::fs::write(dir.path().join(name), "[]").expect("write");
        }
        let base = dir.path().to_str().expect("utf-8 temp path");
        let glob = FilePattern::parse(&format!("{base}/*.json")).expect("pattern");
        assert_eq!(glob.list(), vec![format!("{base}/a.json"), format!("{base}/b.json")]);
        let literal = FilePattern::parse(&format!("{base}/c.yml")).expect("pattern");
        assert_eq!(literal.list(), vec![format!("{base}/c.yml")]);
        assert!(FilePattern::parse(&format!("{base}/missing.yml")).expect("pattern").list().is_empty());
        assert!(FilePattern::parse(&format!("{base}/nodir/*.yml")).expect("pattern").list().is_empty());
    }
}
