//! Parser for Go `text/template`: a port of Go's recursive-descent parser (with its three-token
//! lookahead) so that accepted syntax, variable scoping checks, `define`/`block` handling and
//! error messages (`template: NAME:LINE: ...`) match Go.

use std::collections::HashMap;

use super::lex::{Item, ItemType, Lexer};
use super::node::{Arg, Branch, Command, List, Node, Number, Pipe, Variable};
use super::strconv::{self, quote};

/// Limit on nested control structures and parentheses together. Go limits only parentheses
/// (to 10000, on its growable stack); parsing and executing here recurse on the native stack,
/// so nesting is bounded much lower.
const MAX_NESTING_DEPTH: usize = 100;

/// Parses `text` as the template `name`, returning every template it defines (the top level
/// under `name`, plus `define`/`block` templates). `is_func` says which function names exist.
/// The error is Go's full message, e.g. `template: x:1: function "nope" not defined`.
pub(super) fn parse(name: &str, text: &str, is_func: fn(&str) -> bool) -> Result<HashMap<String, List>, String> {
    let mut p =
        Parser { lex: Lexer::new(text), parse_name: name.to_string(), trees: HashMap::new(), is_func, nesting: 0, st: TreeState::new() };
    p.parse_top(name)?;
    Ok(p.trees)
}

/// The `{{end}}` or `{{else}}` that closes a list.
enum Closer {
    End,
    Else,
}

impl Closer {
    fn describe(&self) -> &'static str {
        match self {
            Closer::Else => "{{else}}",
            Closer::End => "{{end}}",
        }
    }
}

/// What `textOrAction` can produce.
enum Parsed {
    Node(Node),
    Close(Closer),
}

/// Per-tree parsing state (Go's `Tree` fields used while parsing); `define` and `block`
/// bodies are parsed with a fresh one, sharing the lexer.
struct TreeState {
    token: [Item; 3],
    peek_count: usize,
    vars: Vec<String>,
    action_line: usize,
    range_depth: usize,
}

impl TreeState {
    fn new() -> Self {
        TreeState { token: Default::default(), peek_count: 0, vars: vec!["$".to_string()], action_line: 0, range_depth: 0 }
    }
}

struct Parser<'a> {
    lex: Lexer<'a>,
    parse_name: String,
    trees: HashMap<String, List>,
    is_func: fn(&str) -> bool,
    nesting: usize,
    st: TreeState,
}

type PResult<T> = Result<T, String>;

fn is_empty_tree(list: &List) -> bool {
    list.nodes.iter().all(|n| matches!(n, Node::Text { text, .. } if text.trim().is_empty()))
}

impl Parser<'_> {
    fn error_at_line<T>(&self, line: usize, msg: impl std::fmt::Display) -> PResult<T> {
        Err(format!("template: {}:{}: {}", self.parse_name, line, msg))
    }

    fn errorf<T>(&self, msg: impl std::fmt::Display) -> PResult<T> {
        self.error_at_line(self.st.token[0].line, msg)
    }

    fn next(&mut self) -> Item {
        if self.st.peek_count > 0 {
            self.st.peek_count -= 1;
        } else {
            self.st.token[0] = self.lex.next_item();
        }
        self.st.token.get(self.st.peek_count).cloned().unwrap_or_default()
    }

    fn backup(&mut self) {
        self.st.peek_count += 1;
    }

    fn backup2(&mut self, t1: Item) {
        self.st.token[1] = t1;
        self.st.peek_count = 2;
    }

    fn backup3(&mut self, t2: Item, t1: Item) {
        self.st.token[1] = t1;
        self.st.token[2] = t2;
        self.st.peek_count = 3;
    }

    fn peek(&mut self) -> Item {
        if self.st.peek_count > 0 {
            return self.st.token.get(self.st.peek_count - 1).cloned().unwrap_or_default();
        }
        self.st.peek_count = 1;
        self.st.token[0] = self.lex.next_item();
        self.st.token[0].clone()
    }

    fn next_non_space(&mut self) -> Item {
        loop {
            let t = self.next();
            if t.typ != ItemType::Space {
                return t;
            }
        }
    }

    fn peek_non_space(&mut self) -> Item {
        let t = self.next_non_space();
        self.backup();
        t
    }

    fn expect(&mut self, expected: ItemType, context: &str) -> PResult<Item> {
        let t = self.next_non_space();
        if t.typ != expected {
            return self.unexpected(&t, context);
        }
        Ok(t)
    }

    fn unexpected<T>(&self, token: &Item, context: &str) -> PResult<T> {
        if token.typ == ItemType::Error {
            let mut extra = String::new();
            if self.st.action_line != 0 && self.st.action_line != token.line {
                extra = format!(" in action started at {}:{}", self.parse_name, self.st.action_line);
                if token.val.ends_with(" action") {
                    extra = extra[" in action".len()..].to_string();
                }
            }
            return self.errorf(format!("{token}{extra}"));
        }
        self.errorf(format!("unexpected {token} in {context}"))
    }

    /// Records a finished tree, as Go's `Tree.add`: an empty tree never replaces a non-empty
    /// one, and two non-empty trees with one name are an error.
    fn add(&mut self, name: String, list: List, err_line: usize) -> PResult<()> {
        match self.trees.get(&name) {
            Some(existing) if !is_empty_tree(existing) => {
                if !is_empty_tree(&list) {
                    return self.error_at_line(err_line, format!("template: multiple definition of template {}", quote(&name)));
                }
            }
            _ => {
                self.trees.insert(name, list);
            }
        }
        Ok(())
    }

    fn parse_top(&mut self, name: &str) -> PResult<()> {
        let mut root = List { nodes: Vec::new() };
        while self.peek().typ != ItemType::Eof {
            if self.peek().typ == ItemType::LeftDelim {
                let delim = self.next();
                if self.next_non_space().typ == ItemType::Define {
                    let saved = std::mem::replace(&mut self.st, TreeState::new());
                    self.parse_definition()?;
                    self.st = saved;
                    continue;
                }
                self.backup2(delim);
            }
            match self.text_or_action()? {
                Parsed::Node(n) => root.nodes.push(n),
                Parsed::Close(c) => return self.errorf(format!("unexpected {}", c.describe())),
            }
        }
        let line = self.st.token[0].line;
        self.add(name.to_string(), root, line)
    }

    fn parse_definition(&mut self) -> PResult<()> {
        const CONTEXT: &str = "define clause";
        let t = self.next_non_space();
        if t.typ != ItemType::String && t.typ != ItemType::RawString {
            return self.unexpected(&t, CONTEXT);
        }
        let name = match strconv::unquote(&t.val) {
            Ok(n) => n,
            Err(e) => return self.errorf(e.message_text()),
        };
        self.expect(ItemType::RightDelim, CONTEXT)?;
        let (root, end) = self.item_list()?;
        if !matches!(end, Closer::End) {
            return self.errorf(format!("unexpected {} in {CONTEXT}", end.describe()));
        }
        let line = self.st.token[0].line;
        self.add(name, root, line)
    }

    fn item_list(&mut self) -> PResult<(List, Closer)> {
        // Peeking skips leading space tokens, as Go's itemList does.
        self.peek_non_space();
        let mut list = List { nodes: Vec::new() };
        while self.peek_non_space().typ != ItemType::Eof {
            match self.text_or_action()? {
                Parsed::Node(n) => list.nodes.push(n),
                Parsed::Close(c) => return Ok((list, c)),
            }
        }
        self.errorf("unexpected EOF")
    }

    fn text_or_action(&mut self) -> PResult<Parsed> {
        let token = self.next_non_space();
        match token.typ {
            ItemType::Text => Ok(Parsed::Node(Node::Text { pos: token.pos, text: token.val })),
            ItemType::LeftDelim => {
                self.st.action_line = token.line;
                let r = self.action();
                self.st.action_line = 0;
                r
            }
            _ => self.unexpected(&token, "input"),
        }
    }

    fn action(&mut self) -> PResult<Parsed> {
        let token = self.next_non_space();
        let node = match token.typ {
            ItemType::Block => self.block_control()?,
            ItemType::Break | ItemType::Continue => return self.loop_control(&token).map(Parsed::Node),
            ItemType::Else => return self.else_control(),
            ItemType::End => {
                self.expect(ItemType::RightDelim, "end")?;
                return Ok(Parsed::Close(Closer::End));
            }
            ItemType::If => Node::If(self.parse_control("if")?),
            ItemType::Range => Node::Range(self.parse_control("range")?),
            ItemType::Template => self.template_control()?,
            ItemType::With => Node::With(self.parse_control("with")?),
            _ => {
                self.backup();
                let pos = self.peek().pos;
                Node::Action { pos, pipe: self.pipeline("command", ItemType::RightDelim)? }
            }
        };
        Ok(Parsed::Node(node))
    }

    fn loop_control(&mut self, keyword: &Item) -> PResult<Node> {
        let is_break = keyword.typ == ItemType::Break;
        let name = if is_break { "{{break}}" } else { "{{continue}}" };
        let t = self.next_non_space();
        if t.typ != ItemType::RightDelim {
            return self.unexpected(&t, name);
        }
        if self.st.range_depth == 0 {
            return self.errorf(format!("{name} outside {{{{range}}}}"));
        }
        Ok(if is_break { Node::Break { pos: keyword.pos } } else { Node::Continue { pos: keyword.pos } })
    }

    fn pipeline(&mut self, context: &str, end: ItemType) -> PResult<Pipe> {
        let pos = self.peek_non_space().pos;
        let mut pipe = Pipe { pos, is_assign: false, decl: Vec::new(), cmds: Vec::new() };
        loop {
            let v = self.peek_non_space();
            if v.typ != ItemType::Variable {
                break;
            }
            self.next();
            // "$x foo" needs three tokens of lookahead to tell an argument from a declaration.
            let after = self.peek();
            let next = self.peek_non_space();
            if next.typ == ItemType::Assign || next.typ == ItemType::Declare {
                pipe.is_assign = next.typ == ItemType::Assign;
                self.next_non_space();
                pipe.decl.push(Variable { pos: v.pos, name: v.val.clone(), fields: Vec::new() });
                self.st.vars.push(v.val);
            } else if next.typ == ItemType::Char && next.val == "," {
                self.next_non_space();
                pipe.decl.push(Variable { pos: v.pos, name: v.val.clone(), fields: Vec::new() });
                self.st.vars.push(v.val);
                if context == "range" && pipe.decl.len() < 2 {
                    match self.peek_non_space().typ {
                        ItemType::Variable | ItemType::RightDelim | ItemType::RightParen => continue,
                        _ => return self.errorf("range can only initialize variables"),
                    }
                }
                return self.errorf(format!("too many declarations in {context}"));
            } else if after.typ == ItemType::Space {
                self.backup3(v, after);
            } else {
                self.backup2(v);
            }
            break;
        }
        loop {
            let token = self.next_non_space();
            if token.typ == end {
                self.check_pipeline(&pipe, context)?;
                return Ok(pipe);
            }
            match token.typ {
                ItemType::Bool
                | ItemType::CharConstant
                | ItemType::Complex
                | ItemType::Dot
                | ItemType::Field
                | ItemType::Identifier
                | ItemType::Number
                | ItemType::Nil
                | ItemType::RawString
                | ItemType::String
                | ItemType::Variable
                | ItemType::LeftParen => {
                    self.backup();
                    let cmd = self.command()?;
                    pipe.cmds.push(cmd);
                }
                _ => return self.unexpected(&token, context),
            }
        }
    }

    fn check_pipeline(&self, pipe: &Pipe, context: &str) -> PResult<()> {
        if pipe.cmds.is_empty() {
            return self.errorf(format!("missing value for {context}"));
        }
        for (i, c) in pipe.cmds.iter().enumerate().skip(1) {
            if c.args.first().is_some_and(Arg::is_literal) {
                return self.errorf(format!("non executable command in pipeline stage {}", i + 1));
            }
        }
        Ok(())
    }

    /// Enters a nested construct, failing with `msg` past the nesting limit.
    fn enter(&mut self, msg: &str) -> PResult<()> {
        if self.nesting >= MAX_NESTING_DEPTH {
            return self.errorf(msg);
        }
        self.nesting += 1;
        Ok(())
    }

    fn parse_control(&mut self, context: &str) -> PResult<Branch> {
        self.enter("max nesting depth exceeded")?;
        let vars = self.st.vars.len();
        let pipe = self.pipeline(context, ItemType::RightDelim)?;
        if context == "range" {
            self.st.range_depth += 1;
        }
        let (list, next) = self.item_list()?;
        if context == "range" {
            self.st.range_depth -= 1;
        }
        let else_list = match next {
            Closer::End => None,
            Closer::Else => {
                // "{{else if x}}" and "{{else with x}}" nest a new if/with that ends at our {{end}}.
                let nested = match self.peek().typ {
                    ItemType::If if context == "if" => Some("if"),
                    ItemType::With if context == "with" => Some("with"),
                    _ => None,
                };
                match nested {
                    Some(kw) => {
                        self.next();
                        let b = self.parse_control(kw)?;
                        Some(List { nodes: vec![if kw == "if" { Node::If(b) } else { Node::With(b) }] })
                    }
                    None => {
                        let (else_list, next) = self.item_list()?;
                        if !matches!(next, Closer::End) {
                            return self.errorf(format!("expected end; found {}", next.describe()));
                        }
                        Some(else_list)
                    }
                }
            }
        };
        self.st.vars.truncate(vars);
        self.nesting -= 1;
        Ok(Branch { pos: pipe.pos, pipe, list, else_list })
    }

    fn else_control(&mut self) -> PResult<Parsed> {
        let peek = self.peek_non_space();
        if peek.typ != ItemType::If && peek.typ != ItemType::With {
            self.expect(ItemType::RightDelim, "else")?;
        }
        Ok(Parsed::Close(Closer::Else))
    }

    fn block_control(&mut self) -> PResult<Node> {
        const CONTEXT: &str = "block clause";
        let token = self.next_non_space();
        let name = self.template_name(&token, CONTEXT)?;
        let pipe = self.pipeline(CONTEXT, ItemType::RightDelim)?;
        self.enter("max nesting depth exceeded")?;
        let saved = std::mem::replace(&mut self.st, TreeState::new());
        let (root, end) = self.item_list()?;
        let block_line = self.st.token[0].line;
        self.st = saved;
        self.nesting -= 1;
        if !matches!(end, Closer::End) {
            return self.errorf(format!("unexpected {} in {CONTEXT}", end.describe()));
        }
        self.add(name.clone(), root, block_line)?;
        Ok(Node::Template { pos: token.pos, name, pipe: Some(pipe) })
    }

    fn template_control(&mut self) -> PResult<Node> {
        const CONTEXT: &str = "template clause";
        let token = self.next_non_space();
        let name = self.template_name(&token, CONTEXT)?;
        let mut pipe = None;
        if self.next_non_space().typ != ItemType::RightDelim {
            self.backup();
            pipe = Some(self.pipeline(CONTEXT, ItemType::RightDelim)?);
        }
        Ok(Node::Template { pos: token.pos, name, pipe })
    }

    fn template_name(&self, token: &Item, context: &str) -> PResult<String> {
        match token.typ {
            ItemType::String | ItemType::RawString => strconv::unquote(&token.val).or_else(|e| self.errorf(e.message_text())),
            _ => self.unexpected(token, context),
        }
    }

    fn command(&mut self) -> PResult<Command> {
        let pos = self.peek_non_space().pos;
        let mut cmd = Command { pos, args: Vec::new() };
        loop {
            self.peek_non_space();
            if let Some(op) = self.operand()? {
                cmd.args.push(op);
            }
            let token = self.next();
            match token.typ {
                ItemType::Space => continue,
                ItemType::RightDelim | ItemType::RightParen => self.backup(),
                ItemType::Pipe => {}
                _ => return self.unexpected(&token, "operand"),
            }
            break;
        }
        if cmd.args.is_empty() {
            return self.errorf("empty command");
        }
        Ok(cmd)
    }

    fn operand(&mut self) -> PResult<Option<Arg>> {
        let Some(node) = self.term()? else {
            return Ok(None);
        };
        if self.peek().typ != ItemType::Field {
            return Ok(Some(node));
        }
        let pos = self.peek().pos;
        let mut fields = Vec::new();
        while self.peek().typ == ItemType::Field {
            fields.push(self.next().val[1..].to_string());
        }
        Ok(Some(match node {
            Arg::Field { mut ident, .. } => {
                ident.extend(fields);
                Arg::Field { pos, ident }
            }
            Arg::Variable(v) => Arg::Variable(Variable { pos, name: v.name, fields: v.fields.into_iter().chain(fields).collect() }),
            n if n.is_literal() => return self.errorf(format!("unexpected . after term {}", quote(&n.to_string()))),
            n => Arg::Chain { pos, node: Box::new(n), fields },
        }))
    }

    fn term(&mut self) -> PResult<Option<Arg>> {
        let token = self.next_non_space();
        let pos = token.pos;
        Ok(Some(match token.typ {
            ItemType::Identifier => {
                if !(self.is_func)(&token.val) {
                    return self.errorf(format!("function {} not defined", quote(&token.val)));
                }
                Arg::Identifier { pos, name: token.val }
            }
            ItemType::Dot => Arg::Dot { pos },
            ItemType::Nil => Arg::Nil { pos },
            ItemType::Variable => Arg::Variable(self.use_var(pos, &token.val)?),
            ItemType::Field => Arg::Field { pos, ident: token.val[1..].split('.').map(str::to_string).collect() },
            ItemType::Bool => Arg::Bool { pos, val: token.val == "true" },
            ItemType::CharConstant | ItemType::Complex | ItemType::Number => match new_number(pos, &token.val, token.typ) {
                Ok(n) => Arg::Number(n),
                Err(e) => return self.errorf(e),
            },
            ItemType::LeftParen => {
                self.enter("max expression depth exceeded")?;
                let p = self.pipeline("parenthesized pipeline", ItemType::RightParen)?;
                self.nesting -= 1;
                Arg::Pipe(Box::new(p))
            }
            ItemType::String | ItemType::RawString => match strconv::unquote(&token.val) {
                Ok(text) => Arg::Str { pos, quoted: token.val, text },
                Err(e) => return self.errorf(e.message_text()),
            },
            _ => {
                self.backup();
                return Ok(None);
            }
        }))
    }

    fn use_var(&self, pos: usize, token: &str) -> PResult<Variable> {
        let mut parts = token.split('.').map(str::to_string);
        let name = parts.next().unwrap_or_default();
        if self.st.vars.contains(&name) {
            return Ok(Variable { pos, name, fields: parts.collect() });
        }
        self.errorf(format!("undefined variable {}", quote(&name)))
    }
}

/// Go's `newNumber`: classifies a numeric literal as int, uint and/or float.
fn new_number(pos: usize, text: &str, typ: ItemType) -> Result<Number, String> {
    let mut n = Number { pos, text: text.to_string(), int: None, uint: None, float: None };
    if typ == ItemType::CharConstant {
        let quote_char = text.chars().next().unwrap_or('\'');
        let u = strconv::unquote_char(&text[quote_char.len_utf8()..], quote_char).map_err(|e| e.message_text().to_string())?;
        if u.rest != "'" {
            return Err(format!("malformed character constant: {text}"));
        }
        n.int = Some(i64::from(u.value));
        n.uint = Some(u64::from(u.value));
        n.float = Some(f64::from(u.value));
        return Ok(n);
    }
    if typ == ItemType::Complex || text.strip_suffix('i').is_some_and(|t| strconv::parse_float(t).is_ok()) {
        return Err(format!("complex number constants are not supported: {}", quote(text)));
    }
    n.uint = strconv::parse_uint_base0(text).ok();
    n.int = strconv::parse_int_base0(text).ok();
    if n.int == Some(0) {
        n.uint = Some(0); // in case of -0
    }
    if let Some(i) = n.int {
        n.float = Some(i as f64);
    } else if let Some(u) = n.uint {
        n.float = Some(u as f64);
    } else if let Ok(f) = strconv::parse_float(text) {
        if !text.contains(['.', 'e', 'E', 'p', 'P']) {
            return Err(format!("integer overflow: {}", quote(text)));
        }
        n.float = Some(f);
        if f.fract() == 0.0 && (-9.223_372_036_854_776e18..9.223_372_036_854_776e18).contains(&f) {
            n.int = Some(f as i64);
        }
        if f.fract() == 0.0 && (0.0..1.844_674_407_370_955_2e19).contains(&f) {
            n.uint = Some(f as u64);
        }
    }
    if n.int.is_none() && n.uint.is_none() && n.float.is_none() {
        return Err(format!("illegal number syntax: {}", quote(text)));
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_err(text: &str) -> String {
        match parse("t", text, |f| f == "printf") {
            Ok(_) => "ok".to_string(),
            Err(e) => e,
        }
    }

    #[test]
    fn round_trips_node_strings() {
        let text = r#"{{if and .a (eq $.b 1)}}x{{else if .c}}y{{else}}{{range $i, $e := .d}}{{$e.f | printf "%v"}}{{end}}{{end}}"#;
        let trees = parse("t", text, |f| matches!(f, "and" | "eq" | "printf")).expect("parses");
        let root = &trees["t"];
        assert_eq!(
            root.to_string(),
            r#"{{if and .a (eq $.b 1)}}x{{else}}{{if .c}}y{{else}}{{range $i, $e := .d}}{{$e.f | printf "%v"}}{{end}}{{end}}{{end}}"#
        );
    }

    #[test]
    fn errors() {
        assert_eq!(parse_err("{{nope}}"), r#"template: t:1: function "nope" not defined"#);
        assert_eq!(parse_err("{{$x}}"), r#"template: t:1: undefined variable "$x""#);
        assert_eq!(parse_err("a\n{{if 1}}"), "template: t:2: unexpected EOF");
        assert_eq!(parse_err("{{end}}"), "template: t:1: unexpected {{end}}");
        assert_eq!(parse_err("{{ 1 | 2 }}"), "template: t:1: non executable command in pipeline stage 2");
        assert_eq!(parse_err("{{break}}"), "template: t:1: {{break}} outside {{range}}");
        assert_eq!(parse_err("{{ 089 }}"), r#"template: t:1: integer overflow: "089""#);
        assert_eq!(parse_err("{{ \"a\".b }}"), r#"template: t:1: unexpected . after term "\"a\"""#);
        assert_eq!(
            parse_err("{{define \"a\"}}x{{end}}{{define \"a\"}}y{{end}}"),
            r#"template: t:1: template: multiple definition of template "a""#
        );
    }

    #[test]
    fn nesting_is_bounded() {
        let deep = "{{if 1}}".repeat(MAX_NESTING_DEPTH + 1);
        assert_eq!(parse_err(&deep), "template: t:1: max nesting depth exceeded");
        let parens = format!("{{{{{}1{}}}}}", "(".repeat(MAX_NESTING_DEPTH + 1), ")".repeat(MAX_NESTING_DEPTH + 1));
        assert_eq!(parse_err(&parens), "template: t:1: max expression depth exceeded");
    }
}
