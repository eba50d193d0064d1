//! Parse tree of a template, mirroring Go's `text/template/parse` nodes. Positions are byte
//! offsets into the full template text; `Display` reproduces Go's `String()` forms because
//! execution errors quote the failing node (`executing "x" at <humanize "x">: ...`).

use std::fmt;

use super::strconv::quote;

/// A sequence of nodes.
#[derive(Debug)]
pub(super) struct List {
    pub(super) nodes: Vec<Node>,
}

/// A node that can appear in a list.
#[derive(Debug)]
pub(super) enum Node {
    Text { pos: usize, text: String },
    Action { pos: usize, pipe: Pipe },
    If(Branch),
    Range(Branch),
    With(Branch),
    Template { pos: usize, name: String, pipe: Option<Pipe> },
    Break { pos: usize },
    Continue { pos: usize },
}

/// The shared shape of `if`, `range` and `with`.
#[derive(Debug)]
pub(super) struct Branch {
    pub(super) pos: usize,
    pub(super) pipe: Pipe,
    pub(super) list: List,
    pub(super) else_list: Option<List>,
}

/// A pipeline with optional variable declarations (`$x := ...`) or assignments (`$x = ...`).
#[derive(Debug)]
pub(super) struct Pipe {
    pub(super) pos: usize,
    pub(super) is_assign: bool,
    pub(super) decl: Vec<Variable>,
    pub(super) cmds: Vec<Command>,
}

/// One command of a pipeline: a function call or a single operand.
#[derive(Debug)]
pub(super) struct Command {
    pub(super) pos: usize,
    pub(super) args: Vec<Arg>,
}

/// A variable reference, possibly followed by fields: `$x.a.b` is `$x` with fields `a`, `b`.
#[derive(Debug)]
pub(super) struct Variable {
    pub(super) pos: usize,
    pub(super) name: String,
    pub(super) fields: Vec<String>,
}

/// A numeric literal with every interpretation Go accepts for it.
#[derive(Debug)]
pub(super) struct Number {
    pub(super) pos: usize,
    pub(super) text: String,
    pub(super) int: Option<i64>,
    pub(super) uint: Option<u64>,
    pub(super) float: Option<f64>,
}

/// An operand of a command.
#[derive(Debug)]
pub(super) enum Arg {
    Identifier { pos: usize, name: String },
    Dot { pos: usize },
    Nil { pos: usize },
    Variable(Variable),
    Field { pos: usize, ident: Vec<String> },
    Chain { pos: usize, node: Box<Arg>, fields: Vec<String> },
    Bool { pos: usize, val: bool },
    Number(Number),
    Str { pos: usize, quoted: String, text: String },
    Pipe(Box<Pipe>),
}

impl Node {
    /// Byte offset of the node in the template text, for error locations.
    pub(super) fn pos(&self) -> usize {
        match self {
            Node::Text { pos, .. }
            | Node::Action { pos, .. }
            | Node::Template { pos, .. }
            | Node::Break { pos }
            | Node::Continue { pos } => *pos,
            Node::If(b) | Node::Range(b) | Node::With(b) => b.pos,
        }
    }
}

impl Arg {
    /// Byte offset of the node in the template text, for error locations.
    pub(super) fn pos(&self) -> usize {
        match self {
            Arg::Identifier { pos, .. }
            | Arg::Dot { pos }
            | Arg::Nil { pos }
            | Arg::Field { pos, .. }
            | Arg::Chain { pos, .. }
            | Arg::Bool { pos, .. }
            | Arg::Str { pos, .. } => *pos,
            Arg::Variable(v) => v.pos,
            Arg::Number(n) => n.pos,
            Arg::Pipe(p) => p.pos,
        }
    }

    /// Literal operands cannot start a later pipeline stage (Go's `checkPipeline`).
    pub(super) fn is_literal(&self) -> bool {
        matches!(self, Arg::Bool { .. } | Arg::Dot { .. } | Arg::Nil { .. } | Arg::Number(_) | Arg::Str { .. })
    }
}

impl fmt::Display for List {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.nodes.iter().try_for_each(|n| n.fmt(f))
    }
}

impl fmt::Display for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (kw, b) = match self {
            Node::Text { text, .. } => return f.write_str(text),
            Node::Action { pipe, .. } => return write!(f, "{{{{{pipe}}}}}"),
            Node::Template { name, pipe, .. } => {
                write!(f, "{{{{template {}", quote(name))?;
                if let Some(p) = pipe {
                    write!(f, " {p}")?;
                }
                return f.write_str("}}");
            }
            Node::Break { .. } => return f.write_str("{{break}}"),
            Node::Continue { .. } => return f.write_str("{{continue}}"),
            Node::If(b) => ("if", b),
            Node::Range(b) => ("range", b),
            Node::With(b) => ("with", b),
        };
        write!(f, "{{{{{kw} {}}}}}{}", b.pipe, b.list)?;
        if let Some(e) = &b.else_list {
            write!(f, "{{{{else}}}}{e}")?;
        }
        f.write_str("{{end}}")
    }
}

impl fmt::Display for Pipe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.decl.is_empty() {
            for (i, v) in self.decl.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                v.fmt(f)?;
            }
            f.write_str(if self.is_assign { " = " } else { " := " })?;
        }
        for (i, c) in self.cmds.iter().enumerate() {
            if i > 0 {
                f.write_str(" | ")?;
            }
            c.fmt(f)?;
        }
        Ok(())
    }
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, a) in self.args.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            match a {
                Arg::Pipe(p) => write!(f, "({p})")?,
                _ => a.fmt(f)?,
            }
        }
        Ok(())
    }
}

impl fmt::Display for Variable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)?;
        self.fields.iter().try_for_each(|id| write!(f, ".{id}"))
    }
}

impl fmt::Display for Arg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Arg::Identifier { name, .. } => f.write_str(name),
            Arg::Dot { .. } => f.write_str("."),
            Arg::Nil { .. } => f.write_str("nil"),
            Arg::Variable(v) => v.fmt(f),
            Arg::Field { ident, .. } => ident.iter().try_for_each(|id| write!(f, ".{id}")),
            Arg::Chain { node, fields, .. } => {
                match node.as_ref() {
                    Arg::Pipe(p) => write!(f, "({p})")?,
                    other => other.fmt(f)?,
                }
                fields.iter().try_for_each(|id| write!(f, ".{id}"))
            }
            Arg::Bool { val, .. } => f.write_str(if *val { "true" } else { "false" }),
            Arg::Number(n) => f.write_str(&n.text),
            Arg::Str { quoted, .. } => f.write_str(quoted),
            Arg::Pipe(p) => p.fmt(f),
        }
    }
}
