//! Lexer for Go `text/template` syntax: a port of Go's state-machine lexer so that tokens,
//! trim markers (`{{-`/`-}}`), comments, positions, line numbers and error messages match Go.

use std::fmt;

use super::strconv::{is_print, quote};

const LEFT_DELIM: &str = "{{";
const RIGHT_DELIM: &str = "}}";
const LEFT_COMMENT: &str = "/*";
const RIGHT_COMMENT: &str = "*/";
/// A trim marker plus the space that must accompany it.
const TRIM_MARKER_LEN: usize = 2;

/// Token kinds, as Go's `itemType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ItemType {
    Error,
    Bool,
    Char,
    CharConstant,
    Complex,
    Assign,
    Declare,
    Eof,
    Field,
    Identifier,
    LeftDelim,
    LeftParen,
    Number,
    Pipe,
    RawString,
    RightDelim,
    RightParen,
    Space,
    String,
    Text,
    Variable,
    // Keywords.
    Block,
    Break,
    Continue,
    Dot,
    Define,
    Else,
    End,
    If,
    Nil,
    Range,
    Template,
    With,
}

impl ItemType {
    fn is_keyword(self) -> bool {
        matches!(
            self,
            ItemType::Block
                | ItemType::Break
                | ItemType::Continue
                | ItemType::Dot
                | ItemType::Define
                | ItemType::Else
                | ItemType::End
                | ItemType::If
                | ItemType::Nil
                | ItemType::Range
                | ItemType::Template
                | ItemType::With
        )
    }

    fn keyword(word: &str) -> Option<ItemType> {
        Some(match word {
            "block" => ItemType::Block,
            "break" => ItemType::Break,
            "continue" => ItemType::Continue,
            "define" => ItemType::Define,
            "else" => ItemType::Else,
            "end" => ItemType::End,
            "if" => ItemType::If,
            "range" => ItemType::Range,
            "nil" => ItemType::Nil,
            "template" => ItemType::Template,
            "with" => ItemType::With,
            _ => return None,
        })
    }
}

/// A token: its kind, byte offset, text (the message for errors) and starting line.
#[derive(Debug, Clone)]
pub(super) struct Item {
    pub(super) typ: ItemType,
    pub(super) pos: usize,
    pub(super) val: String,
    pub(super) line: usize,
}

impl Default for Item {
    fn default() -> Self {
        Item { typ: ItemType::Eof, pos: 0, val: String::new(), line: 0 }
    }
}

/// Formats like Go's `item.String()`, which parse errors embed.
impl fmt::Display for Item {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.typ {
            ItemType::Eof => f.write_str("EOF"),
            ItemType::Error => f.write_str(&self.val),
            t if t.is_keyword() => write!(f, "<{}>", self.val),
            _ if self.val.len() > 10 => {
                let head: String = self.val.chars().take(10).collect();
                write!(f, "{}...", quote(&head))
            }
            _ => f.write_str(&quote(&self.val)),
        }
    }
}

/// Go's `%#U` formatting of a character, used in lexer errors.
fn unicode_repr(c: char) -> String {
    if is_print(c) { format!("U+{:04X} '{c}'", c as u32) } else { format!("U+{:04X}", c as u32) }
}

fn is_space(c: Option<char>) -> bool {
    matches!(c, Some(' ' | '\t' | '\r' | '\n'))
}

/// Go's `isAlphaNumeric` (letters approximated by Rust's alphabetic/numeric properties).
fn is_alphanumeric(c: Option<char>) -> bool {
    c.is_some_and(|c| c == '_' || c.is_alphabetic() || c.is_numeric())
}

fn has_left_trim_marker(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 2 && b[0] == b'-' && is_space(Some(char::from(b[1])))
}

fn has_right_trim_marker(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 2 && is_space(Some(char::from(b[0]))) && b[1] == b'-'
}

fn right_trim_length(s: &str) -> usize {
    s.len() - s.trim_end_matches([' ', '\t', '\r', '\n']).len()
}

fn left_trim_length(s: &str) -> usize {
    s.len() - s.trim_start_matches([' ', '\t', '\r', '\n']).len()
}

#[derive(Clone, Copy)]
enum State {
    Text,
    LeftDelim,
    Comment,
    RightDelim,
    InsideAction,
    Space,
    Identifier,
    Field,
    Variable,
    Char,
    Number,
    Quote,
    RawQuote,
}

enum Step {
    Next(State),
    Emit(Item),
}

/// The scanner. The parser pulls tokens with [`Lexer::next_item`].
pub(super) struct Lexer<'a> {
    input: &'a str,
    pos: usize,
    start: usize,
    at_eof: bool,
    paren_depth: i64,
    line: usize,
    start_line: usize,
    inside_action: bool,
}

impl<'a> Lexer<'a> {
    /// Starts scanning `input` outside any action.
    pub(super) fn new(input: &'a str) -> Self {
        Lexer { input, pos: 0, start: 0, at_eof: false, paren_depth: 0, line: 1, start_line: 1, inside_action: false }
    }

    /// Returns the next token; after an error or the end of input, returns EOF forever.
    pub(super) fn next_item(&mut self) -> Item {
        let mut state = if self.inside_action { State::InsideAction } else { State::Text };
        loop {
            let step = match state {
                State::Text => self.lex_text(),
                State::LeftDelim => self.lex_left_delim(),
                State::Comment => self.lex_comment(),
                State::RightDelim => self.lex_right_delim(),
                State::InsideAction => self.lex_inside_action(),
                State::Space => self.lex_space(),
                State::Identifier => self.lex_identifier(),
                State::Field => self.lex_field_or_variable(ItemType::Field),
                State::Variable => self.lex_variable(),
                State::Char => self.lex_char(),
                State::Number => self.lex_number(),
                State::Quote => self.lex_quote(),
                State::RawQuote => self.lex_raw_quote(),
            };
            match step {
                Step::Next(s) => state = s,
                Step::Emit(item) => return item,
            }
        }
    }

    fn next(&mut self) -> Option<char> {
        let Some(c) = self.input[self.pos..].chars().next() else {
            self.at_eof = true;
            return None;
        };
        self.pos += c.len_utf8();
        if c == '\n' {
            self.line += 1;
        }
        Some(c)
    }

    fn peek(&mut self) -> Option<char> {
        let c = self.next();
        self.backup();
        c
    }

    fn backup(&mut self) {
        if !self.at_eof
            && let Some(c) = self.input[..self.pos].chars().next_back()
        {
            self.pos -= c.len_utf8();
            if c == '\n' {
                self.line -= 1;
            }
        }
    }

    fn this_item(&mut self, typ: ItemType) -> Item {
        let item = Item { typ, pos: self.start, val: self.input[self.start..self.pos].to_string(), line: self.start_line };
        self.start = self.pos;
        self.start_line = self.line;
        item
    }

    fn emit(&mut self, typ: ItemType) -> Step {
        Step::Emit(self.this_item(typ))
    }

    fn ignore(&mut self) {
        self.line += self.input[self.start..self.pos].matches('\n').count();
        self.start = self.pos;
        self.start_line = self.line;
    }

    fn accept(&mut self, valid: &str) -> bool {
        if self.next().is_some_and(|c| valid.contains(c)) {
            return true;
        }
        self.backup();
        false
    }

    fn accept_run(&mut self, valid: &str) {
        while self.next().is_some_and(|c| valid.contains(c)) {}
        self.backup();
    }

    fn errorf(&mut self, msg: String) -> Step {
        let item = Item { typ: ItemType::Error, pos: self.start, val: msg, line: self.start_line };
        self.start = 0;
        self.pos = 0;
        self.input = "";
        Step::Emit(item)
    }

    fn lex_text(&mut self) -> Step {
        if let Some(x) = self.input[self.pos..].find(LEFT_DELIM) {
            if x > 0 {
                self.pos += x;
                let delim_end = self.pos + LEFT_DELIM.len();
                let trim =
                    if has_left_trim_marker(&self.input[delim_end..]) { right_trim_length(&self.input[self.start..self.pos]) } else { 0 };
                self.pos -= trim;
                self.line += self.input[self.start..self.pos].matches('\n').count();
                let item = self.this_item(ItemType::Text);
                self.pos += trim;
                self.ignore();
                if !item.val.is_empty() {
                    return Step::Emit(item);
                }
            }
            return Step::Next(State::LeftDelim);
        }
        self.pos = self.input.len();
        if self.pos > self.start {
            self.line += self.input[self.start..self.pos].matches('\n').count();
            return self.emit(ItemType::Text);
        }
        self.emit(ItemType::Eof)
    }

    fn at_right_delim(&self) -> (bool, bool) {
        let rest = &self.input[self.pos..];
        if has_right_trim_marker(rest) && rest[TRIM_MARKER_LEN..].starts_with(RIGHT_DELIM) {
            return (true, true);
        }
        (rest.starts_with(RIGHT_DELIM), false)
    }

    fn lex_left_delim(&mut self) -> Step {
        self.pos += LEFT_DELIM.len();
        let trim = has_left_trim_marker(&self.input[self.pos..]);
        let after_marker = if trim { TRIM_MARKER_LEN } else { 0 };
        if self.input[self.pos + after_marker..].starts_with(LEFT_COMMENT) {
            self.pos += after_marker;
            self.ignore();
            return Step::Next(State::Comment);
        }
        let item = self.this_item(ItemType::LeftDelim);
        self.inside_action = true;
        self.pos += after_marker;
        self.ignore();
        self.paren_depth = 0;
        Step::Emit(item)
    }

    fn lex_comment(&mut self) -> Step {
        self.pos += LEFT_COMMENT.len();
        let Some(x) = self.input[self.pos..].find(RIGHT_COMMENT) else {
            return self.errorf("unclosed comment".to_string());
        };
        self.pos += x + RIGHT_COMMENT.len();
        let (delim, trim) = self.at_right_delim();
        if !delim {
            return self.errorf("comment ends before closing delimiter".to_string());
        }
        self.line += self.input[self.start..self.pos].matches('\n').count();
        // Comments are dropped (Go only emits them in ParseComments mode); consume the text.
        self.start = self.pos;
        self.start_line = self.line;
        if trim {
            self.pos += TRIM_MARKER_LEN;
        }
        self.pos += RIGHT_DELIM.len();
        if trim {
            self.pos += left_trim_length(&self.input[self.pos..]);
        }
        self.ignore();
        Step::Next(State::Text)
    }

    fn lex_right_delim(&mut self) -> Step {
        let (_, trim) = self.at_right_delim();
        if trim {
            self.pos += TRIM_MARKER_LEN;
            self.ignore();
        }
        self.pos += RIGHT_DELIM.len();
        let item = self.this_item(ItemType::RightDelim);
        if trim {
            self.pos += left_trim_length(&self.input[self.pos..]);
            self.ignore();
        }
        self.inside_action = false;
        Step::Emit(item)
    }

    fn lex_inside_action(&mut self) -> Step {
        if self.at_right_delim().0 {
            if self.paren_depth == 0 {
                return Step::Next(State::RightDelim);
            }
            return self.errorf("unclosed left paren".to_string());
        }
        let r = self.next();
        match r {
            None => self.errorf("unclosed action".to_string()),
            Some(' ' | '\t' | '\r' | '\n') => {
                self.backup();
                Step::Next(State::Space)
            }
            Some('=') => self.emit(ItemType::Assign),
            Some(':') => {
                if self.next() != Some('=') {
                    return self.errorf("expected :=".to_string());
                }
                self.emit(ItemType::Declare)
            }
            Some('|') => self.emit(ItemType::Pipe),
            Some('"') => Step::Next(State::Quote),
            Some('`') => Step::Next(State::RawQuote),
            Some('$') => Step::Next(State::Variable),
            Some('\'') => Step::Next(State::Char),
            Some('.') if !self.input.as_bytes().get(self.pos).is_some_and(u8::is_ascii_digit) && self.pos < self.input.len() => {
                Step::Next(State::Field)
            }
            Some('.' | '+' | '-' | '0'..='9') => {
                self.backup();
                Step::Next(State::Number)
            }
            c if is_alphanumeric(c) => {
                self.backup();
                Step::Next(State::Identifier)
            }
            Some('(') => {
                self.paren_depth += 1;
                self.emit(ItemType::LeftParen)
            }
            Some(')') => {
                self.paren_depth -= 1;
                if self.paren_depth < 0 {
                    return self.errorf("unexpected right paren".to_string());
                }
                self.emit(ItemType::RightParen)
            }
            Some(c) if c.is_ascii() && is_print(c) => self.emit(ItemType::Char),
            Some(c) => self.errorf(format!("unrecognized character in action: {}", unicode_repr(c))),
        }
    }

    fn lex_space(&mut self) -> Step {
        let mut num_spaces = 0;
        while is_space(self.peek()) {
            self.next();
            num_spaces += 1;
        }
        let rest = &self.input[self.pos - 1..];
        if has_right_trim_marker(rest) && rest[TRIM_MARKER_LEN..].starts_with(RIGHT_DELIM) {
            self.backup();
            if num_spaces == 1 {
                return Step::Next(State::RightDelim);
            }
        }
        self.emit(ItemType::Space)
    }

    fn lex_identifier(&mut self) -> Step {
        loop {
            let r = self.next();
            if is_alphanumeric(r) {
                continue;
            }
            self.backup();
            if !self.at_terminator() {
                return self.bad_character(r);
            }
            let word = &self.input[self.start..self.pos];
            let typ = match ItemType::keyword(word) {
                Some(kw) => kw,
                None if word == "true" || word == "false" => ItemType::Bool,
                None => ItemType::Identifier,
            };
            return self.emit(typ);
        }
    }

    fn bad_character(&mut self, r: Option<char>) -> Step {
        let repr = r.map_or_else(|| "U+FFFFFFFFFFFFFFFF".to_string(), unicode_repr);
        self.errorf(format!("bad character {repr}"))
    }

    fn lex_variable(&mut self) -> Step {
        if self.at_terminator() {
            return self.emit(ItemType::Variable);
        }
        self.lex_field_or_variable(ItemType::Variable)
    }

    fn lex_field_or_variable(&mut self, typ: ItemType) -> Step {
        if self.at_terminator() {
            return self.emit(if typ == ItemType::Variable { ItemType::Variable } else { ItemType::Dot });
        }
        let mut r;
        loop {
            r = self.next();
            if !is_alphanumeric(r) {
                self.backup();
                break;
            }
        }
        if !self.at_terminator() {
            return self.bad_character(r);
        }
        self.emit(typ)
    }

    /// Whether the input is at a character that may follow an identifier.
    fn at_terminator(&mut self) -> bool {
        let r = self.peek();
        if is_space(r) {
            return true;
        }
        match r {
            None | Some('.' | ',' | '|' | ':' | ')' | '(') => true,
            _ => self.input[self.pos..].starts_with(RIGHT_DELIM),
        }
    }

    fn lex_char(&mut self) -> Step {
        loop {
            match self.next() {
                Some('\\') => {
                    if !matches!(self.next(), None | Some('\n')) {
                        continue;
                    }
                    return self.errorf("unterminated character constant".to_string());
                }
                None | Some('\n') => return self.errorf("unterminated character constant".to_string()),
                Some('\'') => return self.emit(ItemType::CharConstant),
                Some(_) => {}
            }
        }
    }

    fn lex_number(&mut self) -> Step {
        if !self.scan_number() {
            return self.bad_number();
        }
        if matches!(self.peek(), Some('+' | '-')) {
            if !self.scan_number() || !self.input[..self.pos].ends_with('i') {
                return self.bad_number();
            }
            return self.emit(ItemType::Complex);
        }
        self.emit(ItemType::Number)
    }

    fn bad_number(&mut self) -> Step {
        let text = quote(&self.input[self.start..self.pos]);
        self.errorf(format!("bad number syntax: {text}"))
    }

    fn scan_number(&mut self) -> bool {
        const DECIMAL: &str = "0123456789_";
        const HEX: &str = "0123456789abcdefABCDEF_";
        self.accept("+-");
        let mut digits = DECIMAL;
        if self.accept("0") {
            if self.accept("xX") {
                digits = HEX;
            } else if self.accept("oO") {
                digits = "01234567_";
            } else if self.accept("bB") {
                digits = "01_";
            }
        }
        self.accept_run(digits);
        if self.accept(".") {
            self.accept_run(digits);
        }
        if digits == DECIMAL && self.accept("eE") {
            self.accept("+-");
            self.accept_run(DECIMAL);
        }
        if digits == HEX && self.accept("pP") {
            self.accept("+-");
            self.accept_run(DECIMAL);
        }
        self.accept("i");
        if is_alphanumeric(self.peek()) {
            self.next();
            return false;
        }
        true
    }

    fn lex_quote(&mut self) -> Step {
        loop {
            match self.next() {
                Some('\\') => {
                    if !matches!(self.next(), None | Some('\n')) {
                        continue;
                    }
                    return self.errorf("unterminated quoted string".to_string());
                }
                None | Some('\n') => return self.errorf("unterminated quoted string".to_string()),
                Some('"') => return self.emit(ItemType::String),
                Some(_) => {}
            }
        }
    }

    fn lex_raw_quote(&mut self) -> Step {
        loop {
            match self.next() {
                None => return self.errorf("unterminated raw quoted string".to_string()),
                Some('`') => return self.emit(ItemType::RawString),
                Some(_) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lex_all(input: &str) -> Vec<String> {
        let mut l = Lexer::new(input);
        let mut out = Vec::new();
        loop {
            let item = l.next_item();
            let done = matches!(item.typ, ItemType::Eof | ItemType::Error);
            out.push(format!("{:?}:{}", item.typ, item.val));
            if done {
                return out;
            }
        }
    }

    #[test]
    fn tokens() {
        assert_eq!(
            lex_all("a {{- $x := .Foo.bar | printf \"%d\" 1.5 -}} b"),
            [
                "Text:a",
                "LeftDelim:{{",
                "Variable:$x",
                "Space: ",
                "Declare::=",
                "Space: ",
                "Field:.Foo",
                "Field:.bar",
                "Space: ",
                "Pipe:|",
                "Space: ",
                "Identifier:printf",
                "Space: ",
                "String:\"%d\"",
                "Space: ",
                "Number:1.5",
                "RightDelim:}}",
                "Text:b",
                "Eof:"
            ]
        );
    }

    #[test]
    fn comments_and_keywords() {
        assert_eq!(lex_all("x {{- /* c */ -}} y{{end}}"), ["Text:x", "Text:y", "LeftDelim:{{", "End:end", "RightDelim:}}", "Eof:"]);
        assert_eq!(lex_all("{{/* c"), ["Error:unclosed comment"]);
        assert_eq!(lex_all("{{ 3x }}"), ["LeftDelim:{{", "Space: ", "Error:bad number syntax: \"3x\""]);
        assert!(lex_all("{{ # }}").contains(&"Char:#".to_string()));
        assert_eq!(lex_all("{{ \u{1} }}").last().map(String::as_str), Some("Error:unrecognized character in action: U+0001"));
    }

    #[test]
    fn item_display() {
        let item = Item { typ: ItemType::String, pos: 0, val: "\"hello world\"".to_string(), line: 1 };
        assert_eq!(item.to_string(), r#""\"hello wor"..."#);
        let kw = Item { typ: ItemType::End, pos: 0, val: "end".to_string(), line: 1 };
        assert_eq!(kw.to_string(), "<end>");
    }
}
