//! Template execution: a port of Go's `text/template` executor (`exec.go`) over Go-typed
//! values, keeping Go's evaluation order, variable scoping, argument type checks and the
//! node it reports errors at (`template: NAME:LINE:COL: executing "NAME" at <NODE>: ...`).
//!
//! Differences from Go: values have no methods (Go templates can call methods, e.g. of the
//! `time.Time` returned by `toTime`; here that is a "can't evaluate field" error), `range`
//! over a `toDuration` result is an error (Go iterates over its nanoseconds), and recursion
//! is limited to `MAX_EXEC_DEPTH` levels.

use std::collections::HashMap;
use std::rc::Rc;

use super::ExecContext;
use super::funcs::{self, Func, FuncKind, Param};
use super::gofmt;
use super::node::{Arg, Branch, Command, List, Node, Number, Pipe, Variable};
use super::strconv::quote;
use super::value::Val;

/// Go allows 100000 nested template invocations on its growable stack. Execution here recurses
/// on the native stack, so the limit is lower and counts every level of recursion: template
/// calls, control structure bodies and parenthesized pipelines.
const MAX_EXEC_DEPTH: usize = 200;

/// Runs the template `name` from `trees` (parsed from `text`) with `data` as dot.
/// The error is Go's full message.
pub(super) fn execute(name: &str, text: &str, trees: &HashMap<String, List>, data: Val, ctx: &ExecContext<'_>) -> Result<String, String> {
    let Some(root) = trees.get(name) else {
        return Err(format!("template: {name}: {} is an incomplete or empty template", quote(name)));
    };
    let mut state = State {
        trees,
        parse_name: name,
        text,
        tmpl_name: name,
        out: String::new(),
        vars: vec![("$", Slot::plain(data.clone()))],
        at: At::None,
        depth: 0,
        ctx,
    };
    state.walk_list(&Slot::plain(data), root)?;
    Ok(state.out)
}

type XResult<T> = Result<T, String>;

/// A value as Go's `reflect.Value` holds it: `iface` says its static type is `interface{}`
/// (an element of a `map[string]interface{}` or `[]interface{}`, or an `interface{}` struct
/// field). Go names `interface {}` rather than the dynamic type in some errors, and treats a
/// nil `interface{}` differently from no value when checking argument types.
#[derive(Debug, Clone)]
struct Slot {
    val: Val,
    iface: bool,
}

impl Slot {
    fn plain(val: Val) -> Slot {
        Slot { val, iface: false }
    }

    fn iface(val: Val) -> Slot {
        Slot { val, iface: true }
    }
}

/// Control flow out of a list: normal completion or `{{break}}`/`{{continue}}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    Normal,
    Break,
    Continue,
}

/// The node execution is at, for error messages (Go's `state.node`).
#[derive(Clone, Copy)]
enum At<'t> {
    None,
    Node(&'t Node),
    Pipe(&'t Pipe),
    Cmd(&'t Command),
    Arg(&'t Arg),
}

impl At<'_> {
    fn pos_and_text(&self) -> Option<(usize, String)> {
        match self {
            At::None => None,
            At::Node(n) => Some((n.pos(), n.to_string())),
            At::Pipe(p) => Some((p.pos, p.to_string())),
            At::Cmd(c) => Some((c.pos, c.to_string())),
            At::Arg(a) => Some((a.pos(), a.to_string())),
        }
    }
}

struct State<'t, 'c> {
    trees: &'t HashMap<String, List>,
    /// The top-level template name: error locations are reported against it.
    parse_name: &'t str,
    text: &'t str,
    /// The template currently executing (differs inside `{{template}}` calls).
    tmpl_name: &'t str,
    out: String,
    vars: Vec<(&'t str, Slot)>,
    at: At<'t>,
    depth: usize,
    ctx: &'c ExecContext<'c>,
}

impl<'t> State<'t, '_> {
    /// Go's `state.errorf`: prefixes the location and context of the current node.
    fn errorf<T>(&self, msg: impl std::fmt::Display) -> XResult<T> {
        let Some((pos, context)) = self.at.pos_and_text() else {
            return Err(format!("template: {}: {msg}", self.tmpl_name));
        };
        let before = self.text.get(..pos).unwrap_or(self.text);
        let line = 1 + before.matches('\n').count();
        let col = before.rfind('\n').map_or(pos, |nl| pos - nl - 1);
        Err(format!("template: {}:{line}:{col}: executing {} at <{context}>: {msg}", self.parse_name, quote(self.tmpl_name)))
    }

    fn var_value(&self, name: &str) -> XResult<Slot> {
        match self.vars.iter().rev().find(|(n, _)| *n == name) {
            Some((_, v)) => Ok(v.clone()),
            None => self.errorf(format!("undefined variable: {name}")),
        }
    }

    fn set_var(&mut self, name: &str, value: Slot) -> XResult<()> {
        match self.vars.iter_mut().rev().find(|(n, _)| *n == name) {
            Some(slot) => {
                slot.1 = value;
                Ok(())
            }
            None => self.errorf(format!("undefined variable: {name}")),
        }
    }

    /// Overwrites the n-th variable from the top of the stack (range iteration variables).
    fn set_top_var(&mut self, n: usize, value: Slot) -> XResult<()> {
        let len = self.vars.len();
        match len.checked_sub(n).and_then(|i| self.vars.get_mut(i)) {
            Some(slot) => {
                slot.1 = value;
                Ok(())
            }
            None => self.errorf("internal error: range variable missing"),
        }
    }

    /// Enters one level of recursion, failing past the depth limit.
    fn enter(&mut self) -> XResult<()> {
        if self.depth >= MAX_EXEC_DEPTH {
            return self.errorf(format!("exceeded maximum template depth ({MAX_EXEC_DEPTH})"));
        }
        self.depth += 1;
        Ok(())
    }

    /// Evaluates a parenthesized pipeline as one level of recursion.
    fn eval_nested_pipeline(&mut self, dot: &Slot, pipe: &'t Pipe) -> XResult<Val> {
        self.enter()?;
        let v = self.eval_pipeline(dot, pipe)?;
        self.depth -= 1;
        Ok(v)
    }

    fn walk_list(&mut self, dot: &Slot, list: &'t List) -> XResult<Flow> {
        for node in &list.nodes {
            let flow = self.walk(dot, node)?;
            if flow != Flow::Normal {
                return Ok(flow);
            }
        }
        Ok(Flow::Normal)
    }

    fn walk(&mut self, dot: &Slot, node: &'t Node) -> XResult<Flow> {
        self.at = At::Node(node);
        match node {
            Node::Action { pipe, .. } => {
                // Declarations are not printed; their variables live until the enclosing {{end}}.
                let val = self.eval_pipeline(dot, pipe)?;
                if pipe.decl.is_empty() {
                    self.at = At::Node(node);
                    self.out.push_str(&gofmt::sprint_printable(&val));
                }
            }
            Node::Break { .. } => return Ok(Flow::Break),
            Node::Continue { .. } => return Ok(Flow::Continue),
            Node::If(b) => return self.walk_if_or_with(false, dot, b),
            Node::With(b) => return self.walk_if_or_with(true, dot, b),
            Node::Range(b) => return self.walk_range(dot, node, b),
            Node::Template { name, pipe, .. } => self.walk_template(dot, node, name, pipe.as_ref())?,
            Node::Text { text, .. } => self.out.push_str(text),
        }
        Ok(Flow::Normal)
    }

    fn walk_if_or_with(&mut self, is_with: bool, dot: &Slot, b: &'t Branch) -> XResult<Flow> {
        self.enter()?;
        let mark = self.vars.len();
        let val = self.eval_pipeline(dot, &b.pipe)?;
        let flow = if val.is_true() {
            if is_with { self.walk_list(&Slot::plain(val), &b.list)? } else { self.walk_list(dot, &b.list)? }
        } else if let Some(else_list) = &b.else_list {
            self.walk_list(dot, else_list)?
        } else {
            Flow::Normal
        };
        self.vars.truncate(mark);
        self.depth -= 1;
        Ok(flow)
    }

    fn walk_range(&mut self, dot: &Slot, node: &'t Node, r: &'t Branch) -> XResult<Flow> {
        self.at = At::Node(node);
        self.enter()?;
        let outer_mark = self.vars.len();
        let val = self.eval_pipeline(dot, &r.pipe)?;
        let mark = self.vars.len();
        // (index, element) pairs; elements of interface{} collections keep that static type.
        let items: Box<dyn Iterator<Item = (Slot, Slot)> + '_> = match &val {
            Val::Int(n) => {
                if r.pipe.decl.len() > 1 {
                    return self.errorf(format!("can't use {} to iterate over more than one variable", gofmt::sprint_printable(&val)));
                }
                Box::new((0..*n).map(|i| (Slot::plain(Val::Nil), Slot::plain(Val::Int(i)))))
            }
            Val::List(l) => Box::new(l.iter().enumerate().map(|(i, e)| (Slot::plain(Val::Int(i as i64)), Slot::iface(e.clone())))),
            Val::Samples(l) => {
                Box::new(l.iter().enumerate().map(|(i, s)| (Slot::plain(Val::Int(i as i64)), Slot::plain(Val::Sample(Rc::clone(s))))))
            }
            Val::StrMap(m) => Box::new(m.iter().map(|(k, v)| (Slot::plain(Val::Str(k.clone())), Slot::plain(Val::Str(v.clone()))))),
            Val::AnyMap(m) => Box::new(m.iter().map(|(k, v)| (Slot::plain(Val::Str(k.clone())), Slot::iface(v.clone())))),
            Val::Nil => Box::new(std::iter::empty()),
            other => return self.errorf(format!("range can't iterate over {}", gofmt::sprint_printable(other))),
        };
        let mut ran = false;
        for (index, elem) in items {
            ran = true;
            let decl = &r.pipe.decl;
            if let Some(first) = decl.first() {
                if !r.pipe.is_assign {
                    self.set_top_var(1, elem.clone())?;
                } else if decl.len() > 1 {
                    self.set_var(&first.name, index.clone())?;
                } else {
                    self.set_var(&first.name, elem.clone())?;
                }
            }
            if let Some(second) = decl.get(1) {
                if r.pipe.is_assign {
                    self.set_var(&second.name, elem.clone())?;
                } else {
                    self.set_top_var(2, index)?;
                }
            }
            let flow = self.walk_list(&elem, &r.list)?;
            self.vars.truncate(mark);
            if flow == Flow::Break {
                break;
            }
        }
        let mut flow = Flow::Normal;
        if !ran && let Some(else_list) = &r.else_list {
            flow = self.walk_list(dot, else_list)?;
        }
        self.vars.truncate(outer_mark);
        self.depth -= 1;
        Ok(flow)
    }

    fn walk_template(&mut self, dot: &Slot, node: &'t Node, name: &'t str, pipe: Option<&'t Pipe>) -> XResult<()> {
        self.at = At::Node(node);
        let trees = self.trees;
        let Some(tree) = trees.get(name) else {
            return self.errorf(format!("template {} not defined", quote(name)));
        };
        self.enter()?;
        let new_dot = Slot::plain(match pipe {
            Some(p) => self.eval_pipeline(dot, p)?,
            None => Val::Nil,
        });
        // No dynamic scoping: the invoked template sees only $.
        let saved_vars = std::mem::replace(&mut self.vars, vec![("$", new_dot.clone())]);
        let saved_name = std::mem::replace(&mut self.tmpl_name, name);
        let saved_at = self.at;
        self.walk_list(&new_dot, tree)?;
        self.depth -= 1;
        self.vars = saved_vars;
        self.tmpl_name = saved_name;
        self.at = saved_at;
        Ok(())
    }

    /// Evaluates a pipeline; like Go, the result loses any `interface{}` static type.
    fn eval_pipeline(&mut self, dot: &Slot, pipe: &'t Pipe) -> XResult<Val> {
        self.at = At::Pipe(pipe);
        let mut value = None;
        for cmd in &pipe.cmds {
            value = Some(self.eval_command(dot, cmd, value)?);
        }
        let value = value.unwrap_or(Val::Nil);
        for var in &pipe.decl {
            if pipe.is_assign {
                self.set_var(&var.name, Slot::plain(value.clone()))?;
            } else {
                self.vars.push((&var.name, Slot::plain(value.clone())));
            }
        }
        Ok(value)
    }

    fn not_a_function(&self, args: &[Arg], final_val: &Option<Val>) -> XResult<()> {
        if args.len() > 1 || final_val.is_some() {
            let first = args.first().map(ToString::to_string).unwrap_or_default();
            return self.errorf(format!("can't give argument to non-function {first}"));
        }
        Ok(())
    }

    fn eval_command(&mut self, dot: &Slot, cmd: &'t Command, final_val: Option<Val>) -> XResult<Val> {
        let Some(first) = cmd.args.first() else {
            return self.errorf("empty command");
        };
        match first {
            Arg::Field { ident, .. } => return Ok(self.eval_field_node(dot, first, ident, &cmd.args, final_val)?.val),
            Arg::Chain { node, fields, .. } => return Ok(self.eval_chain_node(dot, first, node, fields, &cmd.args, final_val)?.val),
            Arg::Identifier { name, .. } => return self.eval_function(dot, first, name, At::Cmd(cmd), &cmd.args, final_val),
            Arg::Pipe(p) => {
                self.not_a_function(&cmd.args, &final_val)?;
                return self.eval_nested_pipeline(dot, p);
            }
            Arg::Variable(v) => return Ok(self.eval_variable_node(first, v, &cmd.args, final_val)?.val),
            _ => {}
        }
        self.at = At::Arg(first);
        self.not_a_function(&cmd.args, &final_val)?;
        match first {
            Arg::Bool { val, .. } => Ok(Val::Bool(*val)),
            Arg::Dot { .. } => Ok(dot.val.clone()),
            Arg::Number(n) => self.ideal_constant(first, n),
            Arg::Str { text, .. } => Ok(Val::Str(text.clone())),
            _ => self.errorf("nil is not a command"),
        }
    }

    /// A number literal where no type is expected: float syntax gives float64, else int.
    fn ideal_constant(&mut self, node: &'t Arg, n: &Number) -> XResult<Val> {
        self.at = At::Arg(node);
        let text = &n.text;
        let is_hex_int = text.len() > 2 && text.starts_with('0') && text[1..].starts_with(['x', 'X']) && !text.contains(['p', 'P']);
        if let Some(f) = n.float
            && !is_hex_int
            && !text.starts_with('\'')
            && text.contains(['.', 'e', 'E', 'p', 'P'])
        {
            return Ok(Val::Float(f));
        }
        match (n.int, n.uint) {
            (Some(i), _) => Ok(Val::Int(i)),
            (None, Some(_)) => self.errorf(format!("{text} overflows int")),
            (None, None) => Ok(Val::Nil),
        }
    }

    fn eval_field_node(
        &mut self,
        dot: &Slot,
        node: &'t Arg,
        ident: &'t [String],
        args: &'t [Arg],
        final_val: Option<Val>,
    ) -> XResult<Slot> {
        self.at = At::Arg(node);
        self.eval_field_chain(dot.clone(), ident, args, final_val)
    }

    fn eval_chain_node(
        &mut self,
        dot: &Slot,
        node: &'t Arg,
        inner: &'t Arg,
        fields: &'t [String],
        args: &'t [Arg],
        final_val: Option<Val>,
    ) -> XResult<Slot> {
        self.at = At::Arg(node);
        if fields.is_empty() {
            return self.errorf("internal error: no fields in evalChainNode");
        }
        if matches!(inner, Arg::Nil { .. }) {
            return self.errorf(format!("indirection through explicit nil in {node}"));
        }
        let receiver = self.eval_arg(dot, Param::Any, inner)?;
        self.eval_field_chain(receiver, fields, args, final_val)
    }

    fn eval_variable_node(&mut self, node: &'t Arg, v: &'t Variable, args: &'t [Arg], final_val: Option<Val>) -> XResult<Slot> {
        self.at = At::Arg(node);
        let value = self.var_value(&v.name)?;
        if v.fields.is_empty() {
            self.not_a_function(args, &final_val)?;
            return Ok(value);
        }
        self.eval_field_chain(value, &v.fields, args, final_val)
    }

    fn eval_field_chain(&mut self, mut receiver: Slot, ident: &'t [String], args: &'t [Arg], final_val: Option<Val>) -> XResult<Slot> {
        let Some((last, init)) = ident.split_last() else {
            return Ok(receiver);
        };
        for name in init {
            receiver = self.eval_field(name, &[], None, receiver)?;
        }
        self.eval_field(last, args, final_val, receiver)
    }

    /// Go's `evalField` on the value kinds templates can reach: struct fields and map keys.
    /// Missing map keys give the element type's zero value (Prometheus sets `missingkey=zero`).
    fn eval_field(&mut self, name: &str, args: &[Arg], final_val: Option<Val>, receiver: Slot) -> XResult<Slot> {
        let has_args = args.len() > 1 || final_val.is_some();
        let field = match &receiver.val {
            Val::Nil if receiver.iface => return self.errorf(format!("nil pointer evaluating interface {{}}.{name}")),
            Val::Nil => return Ok(Slot::plain(Val::Nil)),
            Val::Alert(a) => match name {
                "Labels" => Some(Slot::plain(Val::StrMap(Rc::clone(&a.labels)))),
                "ExternalLabels" => Some(Slot::plain(Val::StrMap(Rc::clone(&a.external_labels)))),
                "ExternalURL" => Some(Slot::plain(Val::Str(a.external_url.clone()))),
                "Value" => Some(Slot::iface(Val::Float(a.value))),
                _ => None,
            },
            Val::Sample(s) => match name {
                "Labels" => Some(Slot::plain(Val::StrMap(Rc::clone(&s.labels)))),
                "Value" => Some(Slot::iface(Val::Float(s.value))),
                _ => None,
            },
            Val::StrMap(m) => {
                if has_args {
                    return self.errorf(format!("{name} is not a method but has arguments"));
                }
                return Ok(Slot::plain(Val::Str(m.get(name).cloned().unwrap_or_default())));
            }
            Val::AnyMap(m) => {
                if has_args {
                    return self.errorf(format!("{name} is not a method but has arguments"));
                }
                return Ok(Slot::iface(m.get(name).cloned().unwrap_or(Val::Nil)));
            }
            _ => None,
        };
        let type_name = if receiver.iface { "interface {}" } else { receiver.val.type_name() };
        match field {
            Some(_) if has_args => self.errorf(format!("{name} has arguments but cannot be invoked as function")),
            Some(v) => Ok(v),
            None => self.errorf(format!("can't evaluate field {name} in type {type_name}")),
        }
    }

    fn eval_function(
        &mut self,
        dot: &Slot,
        node: &'t Arg,
        name: &str,
        call_at: At<'t>,
        args: &'t [Arg],
        final_val: Option<Val>,
    ) -> XResult<Val> {
        self.at = At::Arg(node);
        let Some(func) = funcs::lookup(name) else {
            return self.errorf(format!("{} is not a defined function", quote(name)));
        };
        self.eval_call(dot, func, call_at, args, final_val)
    }

    /// Go's `evalCall`. `args`, when non-empty, starts with the function's own node.
    fn eval_call(&mut self, dot: &Slot, func: &Func, call_at: At<'t>, args: &'t [Arg], final_val: Option<Val>) -> XResult<Val> {
        let args = args.get(1..).unwrap_or_default();
        let name = func.name;
        let num_in = args.len() + usize::from(final_val.is_some());
        let num_fixed = func.params.len();
        if func.variadic.is_some() {
            if num_in < num_fixed {
                return self.errorf(format!("wrong number of args for {name}: want at least {num_fixed} got {}", args.len()));
            }
        } else if num_in != num_fixed {
            return self.errorf(format!("wrong number of args for {name}: want {num_fixed} got {num_in}"));
        }
        let param_type = |i: usize| func.params.get(i).copied().or(func.variadic).unwrap_or(Param::Any);

        if let FuncKind::AndOr { is_or } = func.kind {
            let mut v = Val::Nil;
            for arg in args {
                v = self.eval_arg(dot, Param::Any, arg)?.val;
                if v.is_true() == is_or {
                    return Ok(v);
                }
            }
            return Ok(final_val.unwrap_or(v));
        }

        let mut slots = Vec::with_capacity(num_in);
        for (i, arg) in args.iter().enumerate() {
            slots.push(self.eval_arg(dot, param_type(i), arg)?);
        }
        if let Some(fv) = final_val {
            slots.push(self.validate_type(Slot::plain(fv), param_type(num_in - 1))?);
        }
        let ifaces: Vec<bool> = slots.iter().map(|s| s.iface).collect();
        let argv: Vec<Val> = slots.into_iter().map(|s| s.val).collect();

        let result = match func.kind {
            FuncKind::Plain(f) => f(self.ctx, argv),
            FuncKind::Typed(f) => f(&argv, &ifaces),
            _ => Err(call_error(args, &argv)),
        };
        result.or_else(|e| {
            self.at = call_at;
            self.errorf(format!("error calling {name}: {e}"))
        })
    }

    fn eval_arg(&mut self, dot: &Slot, typ: Param, n: &'t Arg) -> XResult<Slot> {
        self.at = At::Arg(n);
        let value = match n {
            Arg::Dot { .. } => dot.clone(),
            Arg::Nil { .. } => {
                return match typ.zero() {
                    Some(z) => Ok(Slot::plain(z)),
                    None => self.errorf(format!("cannot assign nil to {}", typ.type_name())),
                };
            }
            Arg::Field { ident, .. } => self.eval_field_node(dot, n, ident, std::slice::from_ref(n), None)?,
            Arg::Variable(v) => self.eval_variable_node(n, v, &[], None)?,
            Arg::Pipe(p) => Slot::plain(self.eval_nested_pipeline(dot, p)?),
            Arg::Identifier { name, .. } => Slot::plain(self.eval_function(dot, n, name, At::Arg(n), &[], None)?),
            Arg::Chain { node, fields, .. } => self.eval_chain_node(dot, n, node, fields, &[], None)?,
            Arg::Bool { val, .. } if typ == Param::Any => return Ok(Slot::plain(Val::Bool(*val))),
            Arg::Number(num) if typ == Param::Any => return self.ideal_constant(n, num).map(Slot::plain),
            Arg::Str { text, .. } if typ == Param::Any || typ == Param::Str => return Ok(Slot::plain(Val::Str(text.clone()))),
            _ if typ == Param::Str => return self.errorf(format!("expected string; found {n}")),
            _ => return self.errorf(format!("can't handle {n} for arg of type {}", typ.type_name())),
        };
        self.validate_type(value, typ)
    }

    /// Go's `validateType`: checks a computed value against a parameter type. No value becomes
    /// the type's zero value, but a nil `interface{}` is a value of the wrong type.
    fn validate_type(&self, value: Slot, typ: Param) -> XResult<Slot> {
        let ok = match (&value.val, typ) {
            (_, Param::Any) => return Ok(value),
            (Val::Nil, _) if !value.iface => {
                return match typ.zero() {
                    Some(z) => Ok(Slot::plain(z)),
                    None => self.errorf(format!("invalid value; expected {}", typ.type_name())),
                };
            }
            (Val::Str(_), Param::Str) | (Val::Samples(_), Param::Samples) | (Val::Sample(_), Param::SamplePtr) => true,
            _ => false,
        };
        if ok {
            return Ok(Slot::plain(value.val));
        }
        let got = if matches!(value.val, Val::Nil) { "interface {}" } else { value.val.type_name() };
        self.errorf(format!("wrong type for value; expected {}; got {got}", typ.type_name()))
    }
}

/// The error of Go's `call` builtin: no template value is a function.
fn call_error(args: &[Arg], argv: &[Val]) -> String {
    let callee = match (args.first(), argv.first()) {
        (Some(a), _) => a.to_string(),
        (None, Some(Val::Str(s))) => s.clone(),
        (None, Some(v)) => format!("<{} Value>", v.type_name()),
        (None, None) => String::new(),
    };
    match argv.first() {
        None | Some(Val::Nil) => "call of nil".to_string(),
        Some(v) => format!("non-function {callee} of type {}", v.type_name()),
    }
}
