//! `target_label` and `replacement` templates, expanded by the rules of Go's
//! `Regexp.Expand`, which is what Prometheus calls.
//!
//! `$1`, `${1}`, `$name` and `${name}` insert a group (nothing when the group
//! does not exist or did not take part in the match); `$$` is a `$`; a `$`
//! not followed by a name is kept as text. A name is the longest run of
//! letters, digits and `_`, so `$1x` is the group *named* `1x` (usually
//! nothing), which is why configurations write `${1}x`.
//!
//! Templates are parsed once per configuration, with group names already
//! resolved to indices, so expansion only copies text.

use std::borrow::Cow;
use std::sync::LazyLock;

use regex::{CaptureLocations, Regex};

/// A parsed template.
#[derive(Debug, Clone)]
pub struct Template {
    parts: Vec<Part>,
}

#[derive(Debug, Clone)]
enum Part {
    Text(String),
    /// A group by number (an index that exists in the regex).
    Group(usize),
    /// A group by name: the groups with that name, the first one that took
    /// part in the match is used (Go allows repeating a name).
    Named(Vec<usize>),
}

/// Where a regex matched: the spans of its groups in the haystack.
pub enum Groups<'h> {
    /// Every group covers the whole haystack (`(.*)` matching, without
    /// running the regex).
    Whole(&'h str),
    /// The spans found by the regex.
    Spans(&'h str, &'h CaptureLocations),
}

impl<'h> Groups<'h> {
    fn get(&self, i: usize) -> Option<&'h str> {
        match self {
            Groups::Whole(s) => Some(s),
            Groups::Spans(s, locs) => locs.get(i).map(|(a, b)| &s[a..b]),
        }
    }
}

/// Letters and decimal digits as Go's `unicode.IsLetter`/`IsDigit` see them
/// (general categories L and Nd), for names beyond ASCII.
static GO_LETTER_OR_DIGIT: LazyLock<Option<Regex>> = LazyLock::new(|| Regex::new(r"\A[\p{L}\p{Nd}]\z").ok());

fn is_name_char(c: char) -> bool {
    if c.is_ascii() {
        c.is_ascii_alphanumeric() || c == '_'
    } else {
        let mut buf = [0u8; 4];
        GO_LETTER_OR_DIGIT.as_ref().is_some_and(|re| re.is_match(c.encode_utf8(&mut buf)))
    }
}

/// A `$` reference after the `$`: the name and the text after it, or `None`
/// when malformed (then the `$` is literal text).
fn reference(s: &str) -> Option<(&str, &str)> {
    let (brace, body) = match s.strip_prefix('{') {
        Some(body) => (true, body),
        None => (false, s),
    };
    let end = body.char_indices().find(|&(_, c)| !is_name_char(c)).map_or(body.len(), |(i, _)| i);
    if end == 0 {
        return None;
    }
    let (name, after) = body.split_at(end);
    if brace { after.strip_prefix('}').map(|after| (name, after)) } else { Some((name, after)) }
}

impl Template {
    /// Parses `template` against a regex whose groups are named
    /// `group_names` (index 0 being the whole match).
    pub fn parse(template: &str, group_names: &[Option<String>]) -> Template {
        let mut parts = Vec::new();
        let mut text = String::new();
        let mut rest = template;
        while let Some(i) = rest.find('$') {
            text.push_str(&rest[..i]);
            rest = &rest[i + 1..];
            if let Some(after) = rest.strip_prefix('$') {
                text.push('$');
                rest = after;
                continue;
            }
            let Some((name, after)) = reference(rest) else {
                text.push('$');
                continue;
            };
            rest = after;
            let part = if name.bytes().all(|b| b.is_ascii_digit()) && !(name.len() > 1 && name.starts_with('0')) {
                // A number; one too large for any regex is simply absent.
                name.parse::<usize>().ok().filter(|&n| n < group_names.len()).map(Part::Group)
            } else {
                let indices: Vec<usize> = (0..group_names.len()).filter(|&i| group_names[i].as_deref() == Some(name)).collect();
                (!indices.is_empty()).then_some(Part::Named(indices))
            };
            if let Some(part) = part {
                if !text.is_empty() {
                    parts.push(Part::Text(std::mem::take(&mut text)));
                }
                parts.push(part);
            }
        }
        text.push_str(rest);
        if !text.is_empty() {
            parts.push(Part::Text(text));
        }
        Template { parts }
    }

    /// Whether expanding needs the match's groups.
    pub fn uses_groups(&self) -> bool {
        self.parts.iter().any(|p| !matches!(p, Part::Text(_)))
    }

    /// The template filled in from `groups`; borrowed when it is plain text.
    pub fn expand(&self, groups: &Groups<'_>) -> Cow<'_, str> {
        match self.parts.as_slice() {
            [] => Cow::Borrowed(""),
            [Part::Text(t)] => Cow::Borrowed(t),
            parts => {
                let mut out = String::new();
                for part in parts {
                    match part {
                        Part::Text(t) => out.push_str(t),
                        Part::Group(i) => out.push_str(groups.get(*i).unwrap_or("")),
                        Part::Named(indices) => out.push_str(indices.iter().find_map(|&i| groups.get(i)).unwrap_or("")),
                    }
                }
                Cow::Owned(out)
            }
        }
    }

    /// Go's `regex.ReplaceAllString(src, template)`, which `labelmap` uses.
    /// With the anchored regex there is one match, the whole string, unless
    /// the pattern's own parentheses undo the anchoring.
    pub fn replace_all(&self, regex: &Regex, src: &str) -> String {
        let mut out = String::new();
        let mut locs = regex.capture_locations();
        let (mut search, mut last_end) = (0, 0);
        while search <= src.len() {
            let Some(m) = regex.captures_read_at(&mut locs, src, search) else {
                break;
            };
            out.push_str(&src[last_end..m.start()]);
            // No replacement for an empty match right after the previous one.
            if m.end() > last_end || m.start() == 0 {
                out.push_str(&self.expand(&Groups::Spans(src, &locs)));
            }
            last_end = m.end();
            // Advance past the match, and at least one character.
            let width = src[search..].chars().next().map_or(0, char::len_utf8);
            search = if search + width > m.end() {
                search + width
            } else if search + 1 > m.end() {
                search + 1
            } else {
                m.end()
            };
        }
        out.push_str(&src[last_end..]);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::{Groups, Template};
    use crate::relabel::goregex::compile_anchored;

    /// Expands `template` for `regex` matching `input` (which must match).
    fn expand(regex: &str, template: &str, input: &str) -> String {
        let re = compile_anchored(regex).expect("valid regex");
        let mut locs = re.regex.capture_locations();
        re.regex.captures_read(&mut locs, input).expect("regex matches the input");
        Template::parse(template, &re.group_names).expand(&Groups::Spans(input, &locs)).into_owned()
    }

    #[test]
    fn numbered_and_braced_references() {
        assert_eq!(expand("(a)(b)", "$2$1", "ab"), "ba");
        assert_eq!(expand("(a)(b)", "${2}-${1}", "ab"), "b-a");
        assert_eq!(expand("(a)(b)", "$0", "ab"), "ab");
        assert_eq!(expand("(a)(b)", "x$1y", "ab"), "x"); // `$1y` is the group named "1y": nothing
        assert_eq!(expand("(a)(b)", "x${1}y", "ab"), "xay");
        assert_eq!(expand("(a)(b)", "$1.$2", "ab"), "a.b");
        assert_eq!(expand("(a)(b)", "$01", "ab"), ""); // leading zero: a name, not a number
        assert_eq!(expand("(a)(b)", "$3|$99999999999", "ab"), "|"); // absent groups
    }

    #[test]
    fn named_references() {
        assert_eq!(expand("(?P<first>a)(?<second>b)", "$second$first", "ab"), "ba");
        assert_eq!(expand("(?P<first>a)(?<second>b)", "${first}_x", "ab"), "a_x");
        assert_eq!(expand("(?P<first>a)(?<second>b)", "$first_x", "ab"), ""); // the group `first_x`
        assert_eq!(expand("(?P<x>a)|(?P<x>b)", "[$x]", "b"), "[b]"); // the repeated name that matched
        assert_eq!(expand("(?P<1x>a)", "$1x", "a"), "a");
    }

    #[test]
    fn dollars_and_malformed_references() {
        assert_eq!(expand("(a)", "$$1", "a"), "$1");
        assert_eq!(expand("(a)", "$", "a"), "$");
        assert_eq!(expand("(a)", "a$", "a"), "a$");
        assert_eq!(expand("(a)", "${1", "a"), "${1");
        assert_eq!(expand("(a)", "${}", "a"), "${}");
        assert_eq!(expand("(a)", "$-", "a"), "$-");
        assert_eq!(expand("(a)", "$é", "a"), ""); // é is a letter: the group named "é"
        assert_eq!(expand("(a)", "$1²", "a"), "a²"); // ² is not a decimal digit (category No)
    }

    #[test]
    fn unmatched_optional_group_is_empty() {
        assert_eq!(expand("(a)|(b)", "[$1][$2]", "b"), "[][b]");
    }

    #[test]
    fn whole_groups_without_running_the_regex() {
        let re = compile_anchored("(.*)").expect("valid");
        let t = Template::parse("<$1|$0|$2>", &re.group_names);
        assert!(t.uses_groups());
        assert_eq!(t.expand(&Groups::Whole("v")), "<v|v|>");
        assert!(!Template::parse("plain $$", &re.group_names).uses_groups());
    }
}
