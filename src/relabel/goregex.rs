//! Relabel regexes: Go RE2 syntax, run on the `regex` crate.
//!
//! Prometheus compiles `^(?s:REGEX)$` with Go's `regexp`. The `regex` crate
//! reads almost the same language, but not quite: in Go `\d`, `\w`, `\s` and
//! `\b` are ASCII-only, `{` that does not start a valid repeat is a literal,
//! `[` inside a class is a literal, `\Q…\E` and octal escapes exist, and some
//! things Rust accepts Go rejects (`(?x)`, `a**`, `{1001}`, `\<`). Rules that
//! meant one thing to Prometheus must mean the same here, and a config that
//! Prometheus rejects must be rejected, so the whole anchored expression is
//! parsed the way Go's `regexp/syntax` parses it and re-emitted in an
//! unambiguous form (punctuation as `\x{..}`, classes spelled out). Errors
//! found on the way use Go's wording (`error parsing regexp: missing closing
//! ): ...`).

use regex::{Regex, RegexBuilder};

const MISSING_PAREN: &str = "missing closing )";
const UNEXPECTED_PAREN: &str = "unexpected )";
const MISSING_BRACKET: &str = "missing closing ]";
const INVALID_ESCAPE: &str = "invalid escape sequence";
const INVALID_CHAR_RANGE: &str = "invalid character class range";
const INVALID_NAMED_CAPTURE: &str = "invalid named capture";
const INVALID_PERL_OP: &str = "invalid or unsupported Perl syntax";
const INVALID_REPEAT_OP: &str = "invalid nested repetition operator";
const INVALID_REPEAT_SIZE: &str = "invalid repeat count";
const MISSING_REPEAT_ARGUMENT: &str = "missing argument to repetition operator";
const TRAILING_BACKSLASH: &str = "trailing backslash at end of expression";

/// Go's `\d`, `\s`, `\w` (ASCII only, and `\s` without `\v`).
const PERL_CLASSES: [(char, &str); 6] = [
    ('d', "[0-9]"),
    ('D', "[^0-9]"),
    ('s', r"[\t\n\x0C\r\x20]"),
    ('S', r"[^\t\n\x0C\r\x20]"),
    ('w', "[0-9A-Za-z_]"),
    ('W', "[^0-9A-Za-z_]"),
];

/// The POSIX classes Go knows; the `regex` crate spells them the same way.
const POSIX_CLASSES: [&str; 14] =
    ["alnum", "alpha", "ascii", "blank", "cntrl", "digit", "graph", "lower", "print", "punct", "space", "upper", "word", "xdigit"];

/// A compiled relabel regex with Go's view of its groups.
#[derive(Debug, Clone)]
pub struct GoRegex {
    pub regex: Regex,
    /// Go's `SubexpNames`: one entry per group, index 0 being the whole
    /// match. Kept here rather than in the `regex` crate's pattern because Go
    /// accepts names Rust does not (`(?P<1x>`) and repeated names.
    pub group_names: Vec<Option<String>>,
}

/// Compiles a relabel regex exactly as Prometheus does (`^(?s:REGEX)$` in
/// Go syntax). The error is Go's message.
pub fn compile_anchored(pattern: &str) -> Result<GoRegex, String> {
    compile(&format!("^(?s:{pattern})$"))
}

/// Compiled regexes by pattern. Configurations repeat the same few
/// patterns thousands of times (an operator-generated file has ~20 per job),
/// and compiling one costs far more than looking it up; bounded so that a
/// long-running server's reloads cannot grow it without end.
static CACHE: std::sync::LazyLock<std::sync::Mutex<std::collections::HashMap<String, Result<GoRegex, String>>>> =
    std::sync::LazyLock::new(Default::default);
const CACHE_MAX: usize = 8192;

/// Compiles a Go regex as written (unanchored: Go's `regexp.Compile`, which
/// alert templates' `match` and `reReplaceAll` use). The error is Go's message.
pub fn compile(whole: &str) -> Result<GoRegex, String> {
    if let Some(hit) = CACHE.lock().unwrap_or_else(|p| p.into_inner()).get(whole) {
        return hit.clone();
    }
    let compiled = compile_uncached(whole);
    let mut cache = CACHE.lock().unwrap_or_else(|p| p.into_inner());
    if cache.len() >= CACHE_MAX {
        cache.clear();
    }
    cache.insert(whole.to_string(), compiled.clone());
    compiled
}

fn compile_uncached(whole: &str) -> Result<GoRegex, String> {
    let (translated, group_names) = Translator::new(whole).run().map_err(|e| format!("error parsing regexp: {}: `{}`", e.0, e.1))?;
    let regex = RegexBuilder::new(&translated)
        // Go allows nesting 1000 deep; the translation adds at most two levels.
        .nest_limit(1002)
        .build()
        .map_err(|e| format!("error parsing regexp: {}: `{whole}`", rust_reason(&e)))?;
    Ok(GoRegex { regex, group_names })
}

/// The one-line reason of a `regex` error (its message is a multi-line
/// picture of the pattern).
fn rust_reason(e: &regex::Error) -> String {
    match e {
        regex::Error::CompiledTooBig(_) => "expression too large".to_string(),
        other => {
            let text = other.to_string();
            let last = text.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("invalid regexp");
            last.trim().trim_start_matches("error: ").to_string()
        }
    }
}

/// A Go parse error: its code and the offending text.
struct GoError(&'static str, String);

impl GoError {
    fn new(code: &'static str, expr: &str) -> GoError {
        GoError(code, expr.to_string())
    }
}

/// One pass over a Go regex, emitting the equivalent `regex`-crate syntax.
struct Translator<'a> {
    whole: &'a str,
    pos: usize,
    out: String,
    /// Open groups, for Go's paren errors.
    depth: usize,
    /// Whether a repetition operator has something to apply to (Go's parse
    /// stack top is not a `(` or `|`).
    operand: bool,
    /// Where the previous token started, when it was a repetition (Go rejects
    /// stacked repetitions such as `a**`).
    last_repeat: Option<usize>,
    /// Go's name of each group so far (index 0: the whole match).
    group_names: Vec<Option<String>>,
    /// Whether the `U` (ungreedy) flag is on, and its value outside each
    /// open group (Go restores flags at `)`).
    ungreedy: bool,
    saved_ungreedy: Vec<bool>,
    /// Where flag changes such as `(?i)` began, when only flag changes have
    /// come since the last token, and `ungreedy` there. Go applies a
    /// repetition after them to the token before them (`a(?i)+` is `a+`),
    /// which the `regex` crate rejects, so the operator goes there instead.
    flag_gap: Option<(usize, bool)>,
    /// The current token was a flag change only.
    token_was_flags: bool,
}

impl<'a> Translator<'a> {
    fn new(whole: &'a str) -> Self {
        Translator {
            whole,
            pos: 0,
            out: String::with_capacity(whole.len() * 2),
            depth: 0,
            operand: false,
            last_repeat: None,
            group_names: vec![None],
            ungreedy: false,
            saved_ungreedy: Vec::new(),
            flag_gap: None,
            token_was_flags: false,
        }
    }

    fn rest(&self) -> &'a str {
        &self.whole[self.pos..]
    }

    fn run(mut self) -> Result<(String, Vec<Option<String>>), GoError> {
        while let Some(c) = self.rest().chars().next() {
            let start = self.pos;
            let mut repeat = None;
            self.token_was_flags = false;
            match c {
                '(' => self.group()?,
                '|' => {
                    self.pos += 1;
                    self.out.push('|');
                    self.operand = false;
                }
                ')' => {
                    if self.depth == 0 {
                        return Err(GoError::new(UNEXPECTED_PAREN, self.whole));
                    }
                    self.depth -= 1;
                    self.ungreedy = self.saved_ungreedy.pop().unwrap_or(false);
                    self.pos += 1;
                    self.out.push(')');
                    self.operand = true;
                }
                '^' | '$' | '.' => {
                    self.pos += 1;
                    self.out.push(c);
                    self.operand = true;
                }
                '[' => self.class()?,
                '*' | '+' | '?' => {
                    self.pos += 1;
                    self.repetition(start, c.encode_utf8(&mut [0; 4]))?;
                    repeat = Some(start);
                }
                '{' => match parse_repeat(self.rest()) {
                    None => {
                        // Not a valid repeat: a literal brace.
                        self.pos += 1;
                        push_literal(&mut self.out, '{');
                        self.operand = true;
                    }
                    Some((min, max, len)) => {
                        let text = &self.whole[start..start + len];
                        if !(0..=1000).contains(&min) || max > 1000 || (max >= 0 && min > max) {
                            return Err(GoError::new(INVALID_REPEAT_SIZE, text));
                        }
                        self.pos += len;
                        self.repetition(start, text)?;
                        repeat = Some(start);
                    }
                },
                '\\' => self.escape()?,
                _ => {
                    self.pos += c.len_utf8();
                    push_literal(&mut self.out, c);
                    self.operand = true;
                }
            }
            self.last_repeat = repeat;
            if !self.token_was_flags {
                self.flag_gap = None;
            }
        }
        if self.depth != 0 {
            return Err(GoError::new(MISSING_PAREN, self.whole));
        }
        Ok((self.out, self.group_names))
    }

    /// Emits a repetition operator whose text (`*`, `{2,3}`) was just
    /// consumed, with its optional non-greedy `?`.
    fn repetition(&mut self, start: usize, op: &str) -> Result<(), GoError> {
        let lazy = self.rest().starts_with('?');
        if lazy {
            self.pos += 1;
        }
        if let Some(prev) = self.last_repeat {
            return Err(GoError::new(INVALID_REPEAT_OP, &self.whole[prev..self.pos]));
        }
        if !self.operand {
            return Err(GoError::new(MISSING_REPEAT_ARGUMENT, &self.whole[start..self.pos]));
        }
        match self.flag_gap.take() {
            None => {
                self.out.push_str(op);
                if lazy {
                    self.out.push('?');
                }
            }
            Some((at, ungreedy_there)) => {
                // Go takes greediness from the flags in force now.
                let mut text = op.to_string();
                if self.ungreedy ^ lazy != ungreedy_there {
                    text.push('?');
                }
                self.out.insert_str(at, &text);
            }
        }
        Ok(())
    }

    /// `(`, `(?:`, `(?flags)`, `(?flags:`, `(?P<name>` and `(?<name>`.
    fn group(&mut self) -> Result<(), GoError> {
        let rest = self.rest();
        let bytes = rest.as_bytes();
        if !rest.starts_with("(?") {
            self.group_names.push(None);
            self.open("(", 1, self.ungreedy);
            return Ok(());
        }
        let with_p = bytes.len() > 4 && bytes[2] == b'P' && bytes[3] == b'<';
        if with_p || (bytes.len() > 3 && bytes[2] == b'<') {
            let name_start = if with_p { 4 } else { 3 };
            let Some(end) = rest.find('>') else {
                return Err(GoError::new(INVALID_NAMED_CAPTURE, rest));
            };
            let name = &rest[name_start..end];
            if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                return Err(GoError::new(INVALID_NAMED_CAPTURE, &rest[..=end]));
            }
            // Emitted unnamed: the names live in `group_names`.
            self.group_names.push(Some(name.to_string()));
            self.open("(", end + 1, self.ungreedy);
            return Ok(());
        }
        // Flags: Go knows i, m, s and U; a later setting of a flag wins.
        let mut flags: Vec<(char, bool)> = Vec::new();
        let mut negated = false;
        let mut saw_flag = false;
        for (i, c) in rest.char_indices().skip(2) {
            match c {
                'i' | 'm' | 's' | 'U' => {
                    flags.retain(|&(f, _)| f != c);
                    flags.push((c, !negated));
                    saw_flag = true;
                }
                '-' if !negated => {
                    negated = true;
                    saw_flag = false;
                }
                ':' | ')' if !negated || saw_flag => {
                    let on: String = flags.iter().filter(|f| f.1).map(|f| f.0).collect();
                    let off: String = flags.iter().filter(|f| !f.1).map(|f| f.0).collect();
                    let mut text = format!("(?{on}");
                    if !off.is_empty() {
                        text.push('-');
                        text.push_str(&off);
                    }
                    let ungreedy = flags.iter().find(|f| f.0 == 'U').map_or(self.ungreedy, |f| f.1);
                    if c == ':' {
                        text.push(':');
                        self.open(&text, i + 1, ungreedy);
                    } else {
                        // A flag change without a group leaves the parse
                        // state as it was; `(?)` changes nothing at all.
                        self.token_was_flags = true;
                        if self.operand && self.flag_gap.is_none() {
                            self.flag_gap = Some((self.out.len(), self.ungreedy));
                        }
                        if text.len() > 2 {
                            text.push(')');
                            self.out.push_str(&text);
                        }
                        self.ungreedy = ungreedy;
                        self.pos += i + 1;
                    }
                    return Ok(());
                }
                _ => return Err(GoError::new(INVALID_PERL_OP, &rest[..i + c.len_utf8()])),
            }
        }
        Err(GoError::new(INVALID_PERL_OP, rest))
    }

    /// Opens a group written as `text`, consuming `len` bytes of input, with
    /// `ungreedy` in force inside it.
    fn open(&mut self, text: &str, len: usize, ungreedy: bool) {
        self.saved_ungreedy.push(self.ungreedy);
        self.ungreedy = ungreedy;
        self.out.push_str(text);
        self.pos += len;
        self.depth += 1;
        self.operand = false;
    }

    /// A backslash outside a character class.
    fn escape(&mut self) -> Result<(), GoError> {
        let rest = self.rest();
        let next = rest[1..].chars().next();
        let fixed = match next {
            Some('A') => Some(r"\A"),
            Some('z') => Some(r"\z"),
            Some('b') => Some(r"(?-u:\b)"),
            Some('B') => Some(r"(?-u:\B)"),
            Some('C') => return Err(GoError::new(INVALID_ESCAPE, r"\C")),
            _ => None,
        };
        if let Some(text) = fixed {
            self.out.push_str(text);
            self.pos += 2;
            self.operand = true;
            return Ok(());
        }
        if next == Some('Q') {
            // `\Q...\E`: everything up to `\E` (or the end) is literal.
            let body = &rest[2..];
            let (literal, len) = match body.find(r"\E") {
                Some(i) => (&body[..i], 2 + i + 2),
                None => (body, rest.len()),
            };
            for c in literal.chars() {
                push_literal(&mut self.out, c);
            }
            self.operand |= !literal.is_empty();
            self.pos += len;
            return Ok(());
        }
        if let Some((text, len)) = unicode_class(rest)? {
            self.out.push_str(&text);
            self.pos += len;
        } else if let Some(class) = perl_class(rest) {
            self.out.push_str(class);
            self.pos += 2;
        } else {
            let (c, len) = parse_escape(rest)?;
            push_literal(&mut self.out, c);
            self.pos += len;
        }
        self.operand = true;
        Ok(())
    }

    /// A bracketed character class, parsed as Go does and re-emitted with
    /// every literal spelled as `\x{..}` (so `[`, `&&`, `--` and `~~` keep
    /// Go's meaning).
    fn class(&mut self) -> Result<(), GoError> {
        let class_start = self.pos;
        let missing = |t: &Translator| GoError::new(MISSING_BRACKET, &t.whole[class_start..]);
        self.pos += 1;
        self.out.push('[');
        if self.rest().starts_with('^') {
            self.pos += 1;
            self.out.push('^');
        }
        let mut first = true;
        loop {
            let rest = self.rest();
            if rest.is_empty() {
                return Err(missing(self));
            }
            if rest.starts_with(']') && !first {
                break;
            }
            first = false;
            if let Some(len) = posix_class(rest)? {
                self.out.push_str(&rest[..len]);
                self.pos += len;
                continue;
            }
            if let Some((text, len)) = unicode_class(rest)? {
                self.out.push_str(&text);
                self.pos += len;
                continue;
            }
            if let Some(class) = perl_class(rest) {
                self.out.push_str(class);
                self.pos += 2;
                continue;
            }
            let (lo, lo_len) = class_char(rest).ok_or_else(|| missing(self))??;
            let mut len = lo_len;
            let after = &rest[lo_len..];
            if after.len() >= 2 && after.starts_with('-') && !after[1..].starts_with(']') {
                let (hi, hi_len) = class_char(&after[1..]).ok_or_else(|| missing(self))??;
                len += 1 + hi_len;
                if hi < lo {
                    return Err(GoError::new(INVALID_CHAR_RANGE, &rest[..len]));
                }
                push_literal(&mut self.out, lo);
                self.out.push('-');
                push_literal(&mut self.out, hi);
            } else {
                push_literal(&mut self.out, lo);
            }
            self.pos += len;
        }
        self.pos += 1;
        self.out.push(']');
        self.operand = true;
        Ok(())
    }
}

/// Writes one literal character so that it means itself in any context.
fn push_literal(out: &mut String, c: char) {
    if c.is_ascii_alphanumeric() || !c.is_ascii() {
        out.push(c);
    } else {
        out.push_str(&format!("\\x{{{:X}}}", c as u32));
    }
}

/// `\d`, `\D`, `\s`, `\S`, `\w`, `\W` at the start of `s`, as an explicit class.
fn perl_class(s: &str) -> Option<&'static str> {
    let mut chars = s.chars();
    if chars.next() != Some('\\') {
        return None;
    }
    let c = chars.next()?;
    PERL_CLASSES.iter().find(|(k, _)| *k == c).map(|(_, class)| *class)
}

/// A `[:name:]` class inside brackets: its length, or Go's error for an
/// unknown name. `None` when `s` does not hold one (then `[` is a literal).
fn posix_class(s: &str) -> Result<Option<usize>, GoError> {
    if s.len() <= 2 || !s.starts_with("[:") {
        return Ok(None);
    }
    let Some(i) = s[2..].find(":]") else {
        return Ok(None);
    };
    let text = &s[..i + 4];
    let name = &text[2..text.len() - 2];
    if POSIX_CLASSES.contains(&name.strip_prefix('^').unwrap_or(name)) {
        Ok(Some(text.len()))
    } else {
        Err(GoError::new(INVALID_CHAR_RANGE, text))
    }
}

/// `\pL`, `\p{Greek}`, `\P{^Greek}` at the start of `s`: the equivalent text
/// and the length consumed. Names are left for the `regex` crate to resolve.
fn unicode_class(s: &str) -> Result<Option<(String, usize)>, GoError> {
    let mut negated = if s.starts_with(r"\p") {
        false
    } else if s.starts_with(r"\P") {
        true
    } else {
        return Ok(None);
    };
    let Some(c) = s[2..].chars().next() else {
        return Ok(None);
    };
    let (mut name, len) = if c == '{' {
        let Some(end) = s.find('}') else {
            return Err(GoError::new(INVALID_CHAR_RANGE, s));
        };
        (&s[3..end], end + 1)
    } else {
        (&s[2..2 + c.len_utf8()], 2 + c.len_utf8())
    };
    if let Some(n) = name.strip_prefix('^') {
        negated = !negated;
        name = n;
    }
    Ok(Some((format!("{}{{{name}}}", if negated { r"\P" } else { r"\p" }), len)))
}

/// One character inside a class (possibly escaped): `None` at the end of
/// the input.
fn class_char(s: &str) -> Option<Result<(char, usize), GoError>> {
    let c = s.chars().next()?;
    if c == '\\' { Some(parse_escape(s)) } else { Some(Ok((c, c.len_utf8()))) }
}

/// A single-character escape (`s` starts with the backslash): the character
/// and the bytes consumed, following Go's `parseEscape`.
fn parse_escape(s: &str) -> Result<(char, usize), GoError> {
    let invalid = |len: usize| GoError::new(INVALID_ESCAPE, &s[..char_end(s, len)]);
    let Some(c) = s[1..].chars().next() else {
        return Err(GoError::new(TRAILING_BACKSLASH, ""));
    };
    let len = 1 + c.len_utf8();
    let octal = |i: usize| s.as_bytes().get(i).filter(|b| (b'0'..=b'7').contains(b)).map(|b| u32::from(b - b'0'));
    match c {
        // A lone non-zero digit would be a backreference: not supported.
        '1'..='7' if octal(2).is_none() => Err(invalid(len)),
        '0'..='7' => {
            let mut r = u32::from(c) - u32::from('0');
            let mut len = len;
            while len < 4 {
                let Some(d) = octal(len) else { break };
                r = r * 8 + d;
                len += 1;
            }
            char::from_u32(r).map(|r| (r, len)).ok_or_else(|| invalid(len))
        }
        'x' => {
            let hex = &s[2..];
            if let Some(body) = hex.strip_prefix('{') {
                let digits = body.find(|c: char| !c.is_ascii_hexdigit()).unwrap_or(body.len());
                let value = u32::from_str_radix(&body[..digits], 16).ok().and_then(char::from_u32);
                match (body[digits..].starts_with('}'), value) {
                    (true, Some(v)) if digits > 0 => Ok((v, 2 + 1 + digits + 1)),
                    _ => Err(invalid(2 + 1 + digits + 1)),
                }
            } else {
                let two: Vec<char> = hex.chars().take(2).collect();
                let used: usize = two.iter().map(|c| c.len_utf8()).sum();
                match (two.first().and_then(|c| c.to_digit(16)), two.get(1).and_then(|c| c.to_digit(16))) {
                    (Some(x), Some(y)) => char::from_u32(x * 16 + y).map(|c| (c, 4)).ok_or_else(|| invalid(4)),
                    _ => Err(invalid(2 + used)),
                }
            }
        }
        'a' => Ok(('\u{7}', len)),
        'f' => Ok(('\u{c}', len)),
        'n' => Ok(('\n', len)),
        'r' => Ok(('\r', len)),
        't' => Ok(('\t', len)),
        'v' => Ok(('\u{b}', len)),
        // Escaped ASCII punctuation (and `_`, space, controls) is itself.
        c if c.is_ascii() && !c.is_ascii_alphanumeric() => Ok((c, len)),
        _ => Err(invalid(len)),
    }
}

/// `len` moved forward to a character boundary of `s` (error snippets end
/// after the character Go stopped at).
fn char_end(s: &str, len: usize) -> usize {
    let mut end = len.min(s.len());
    while !s.is_char_boundary(end) {
        end += 1;
    }
    end
}

/// Go's `{min}`, `{min,}`, `{min,max}` at the start of `s`: min, max (-1
/// for open-ended) and the length; `None` when it is not a repeat (then `{`
/// is a literal). An over-large number makes min -1, as in Go.
fn parse_repeat(s: &str) -> Option<(i64, i64, usize)> {
    let body = s.strip_prefix('{')?;
    let (mut min, mut len) = parse_int(body)?;
    let max = match body[len..].strip_prefix(',') {
        None => min,
        Some(rest) if rest.starts_with('}') => {
            len += 1;
            -1
        }
        Some(rest) => {
            let (max, max_len) = parse_int(rest)?;
            len += 1 + max_len;
            if max < 0 {
                min = -1;
            }
            max
        }
    };
    body[len..].starts_with('}').then_some((min, max, len + 2))
}

/// A decimal without leading zeros: its value (-1 when above 1e8, as Go
/// caps it) and length.
fn parse_int(s: &str) -> Option<(i64, usize)> {
    let len = s.bytes().take_while(u8::is_ascii_digit).count();
    if len == 0 || (len >= 2 && s.starts_with('0')) {
        return None;
    }
    let mut n: i64 = 0;
    for b in s[..len].bytes() {
        if n >= 100_000_000 {
            return Some((-1, len));
        }
        n = n * 10 + i64::from(b - b'0');
    }
    Some((n, len))
}

#[cfg(test)]
mod tests {
    use super::compile_anchored;

    fn is_match(pattern: &str, s: &str) -> bool {
        compile_anchored(pattern).expect("valid pattern").regex.is_match(s)
    }

    fn error(pattern: &str) -> String {
        compile_anchored(pattern).expect_err("must be rejected")
    }

    #[test]
    fn anchored_and_dot_matches_newline() {
        assert!(is_match("a.c", "a\nc"));
        assert!(!is_match("b", "abc"));
        assert!(is_match("", ""));
        assert!(!is_match("", "x"));
        // An unbalanced pattern escapes the anchors, exactly as in Go:
        // `^(?s:a)|(b)$` is "starts with a" or "ends with b".
        assert!(!is_match("a)|(b", "bxa"));
        assert!(is_match("a)|(b", "ab"));
        assert!(is_match("a)|(b", "xb"));
    }

    #[test]
    fn perl_classes_and_word_boundaries_are_ascii() {
        assert!(is_match(r"\d+", "123"));
        assert!(!is_match(r"\d", "٣")); // ARABIC-INDIC DIGIT THREE
        assert!(!is_match(r"\w", "é"));
        assert!(is_match(r"\W", "é"));
        assert!(!is_match(r"\s", "\u{b}")); // Go's \s has no \v
        assert!(is_match(r"\s", "\u{c}"));
        assert!(is_match(r"[\d\s]+", "1 2"));
        assert!(!is_match(r"[\w]", "é"));
        assert!(is_match(r"[^\D]", "7"));
        // `é` is not an ASCII word character, so `a` then `é` is a boundary.
        assert!(is_match(r"a\bé", "aé"));
        assert!(is_match(r"(?i)\w", "\u{212a}")); // KELVIN SIGN folds to k, as in Go
    }

    #[test]
    fn literal_brace_and_bracket_as_in_go() {
        assert!(is_match("a{", "a{"));
        assert!(is_match("a{x}", "a{x}"));
        assert!(is_match("a{01}", "a{01}"));
        assert!(is_match("a{,2}", "a{,2}"));
        assert!(is_match("a{2}", "aa"));
        assert!(is_match("a{2,}", "aaaa"));
        assert!(is_match("a{1,2}?", "a"));
        assert!(is_match("[[]", "["));
        assert!(is_match("[a&&b]+", "a&b"));
        assert!(is_match("[a~~b]+", "~"));
        assert!(is_match("[]a]+", "]a"));
        assert!(is_match("[^]a]", "b"));
        assert!(is_match("[+--]", ","));
        assert!(is_match("[a-]+", "-a"));
        assert!(is_match("[[:alpha:][:digit:]]+", "ab12"));
        assert!(is_match("[[:^alpha:]]", "1"));
        assert!(is_match(r"[\pL]", "é"));
        assert!(is_match(r"\p{Greek}+", "αβ"));
        assert!(is_match(r"\p{^Greek}", "a"));
    }

    #[test]
    fn go_escapes() {
        assert!(is_match(r"\Q.*+\E+", ".*++"));
        assert!(is_match(r"\101\0", "A\0"));
        assert!(is_match(r"\x41\x{42}", "AB"));
        assert!(is_match(r"\.\-\_\ \<\>", ".-_ <>")); // `\<` is `<` in Go, not a word boundary
        assert!(is_match(r"\a\f\t\n\r\v", "\u{7}\u{c}\t\n\r\u{b}"));
        assert!(is_match(r"\Aa\z", "a"));
    }

    #[test]
    fn flags() {
        assert!(is_match("(?i)abc", "ABC"));
        assert!(is_match("(?i:a)b", "Ab"));
        assert!(!is_match("(?i:a)b", "AB"));
        assert!(is_match("(?i-i)a", "a"));
        assert!(!is_match("(?i-i)a", "A"));
        assert!(is_match("(?U)a+", "aa"));
        assert!(!is_match("(?-s:.)", "\n"));
        assert!(is_match("(?)a", "a"));
        assert!(is_match("(?P<x>a)(?<y>b)", "ab"));
    }

    #[test]
    fn group_names_as_go_sees_them() {
        // Go accepts names starting with a digit and repeated names.
        let re = compile_anchored("(?P<x>a)|(?P<x>b)(c)(?<1y>d)").expect("valid in Go");
        let names: Vec<Option<&str>> = re.group_names.iter().map(|n| n.as_deref()).collect();
        assert_eq!(names, [None, Some("x"), Some("x"), None, Some("1y")]);
        assert_eq!(re.regex.captures_len(), names.len());
    }

    /// Messages as Go's `regexp.Compile` gives them for the anchored
    /// expression (checked against Go's `regexp/syntax`).
    #[test]
    fn go_error_messages() {
        assert_eq!(error("a("), "error parsing regexp: missing closing ): `^(?s:a()$`");
        assert_eq!(error("a))"), "error parsing regexp: unexpected ): `^(?s:a)))$`");
        assert_eq!(error("[a"), "error parsing regexp: missing closing ]: `[a)$`");
        assert_eq!(error("*"), "error parsing regexp: missing argument to repetition operator: `*`");
        assert_eq!(error("a**"), "error parsing regexp: invalid nested repetition operator: `**`");
        assert_eq!(error("a*?+"), "error parsing regexp: invalid nested repetition operator: `*?+`");
        assert_eq!(error("a{1001}"), "error parsing regexp: invalid repeat count: `{1001}`");
        assert_eq!(error("a{2,1}"), "error parsing regexp: invalid repeat count: `{2,1}`");
        assert_eq!(error(r"\8"), r"error parsing regexp: invalid escape sequence: `\8`");
        assert_eq!(error(r"\1"), r"error parsing regexp: invalid escape sequence: `\1`");
        assert_eq!(error(r"\e"), r"error parsing regexp: invalid escape sequence: `\e`");
        // `\Q` without `\E` swallows the closing `)$` of the anchoring.
        assert_eq!(error(r"a\Q"), r"error parsing regexp: missing closing ): `^(?s:a\Q)$`");
        assert_eq!(error(r"\x{4G}"), r"error parsing regexp: invalid escape sequence: `\x{4G`");
        assert_eq!(error(r"\xZ1"), r"error parsing regexp: invalid escape sequence: `\xZ1`");
        assert_eq!(error(r"[\b]"), r"error parsing regexp: invalid escape sequence: `\b`");
        assert_eq!(error("(?x)a"), "error parsing regexp: invalid or unsupported Perl syntax: `(?x`");
        assert_eq!(error("(?i-)a"), "error parsing regexp: invalid or unsupported Perl syntax: `(?i-)`");
        assert_eq!(error("(?=a)"), "error parsing regexp: invalid or unsupported Perl syntax: `(?=`");
        assert_eq!(error("(?P<a-b>x)"), "error parsing regexp: invalid named capture: `(?P<a-b>`");
        assert_eq!(error("[z-a]"), "error parsing regexp: invalid character class range: `z-a`");
        assert_eq!(error("[[:foo:]]"), "error parsing regexp: invalid character class range: `[:foo:]`");
    }
}
