//! The function registry and Go's text/template builtins (`and`, `or`, `not`, `len`, `index`,
//! `slice`, `eq`..`ge`, `print*`, `html`, `js`, `urlquery`, `call`), with Go's error texts.
//! Each function declares Go parameter types because argument checking (and its error
//! messages) depends on them.

use std::rc::Rc;

use super::ExecContext;
use super::value::{Kind, Val};
use super::{escape, gofmt, prom_funcs};

/// The Go parameter types used by the supported functions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Param {
    /// `interface{}` or `reflect.Value`: anything, including no value.
    Any,
    Str,
    /// Prometheus' `queryResult`.
    Samples,
    /// Prometheus' `*sample`.
    SamplePtr,
}

impl Param {
    /// Go's name for the type, as argument errors print it.
    pub(super) fn type_name(self) -> &'static str {
        match self {
            Param::Any => "interface {}",
            Param::Str => "string",
            Param::Samples => "template.queryResult",
            Param::SamplePtr => "*template.sample",
        }
    }

    /// Go's zero value for the type when given no value, or None if nil is not assignable.
    pub(super) fn zero(self) -> Option<Val> {
        match self {
            Param::Str => None,
            Param::Samples => Some(Val::Samples(Rc::new(Vec::new()))),
            Param::Any | Param::SamplePtr => Some(Val::Nil),
        }
    }
}

/// A function implementation: receives arguments already checked against its parameter types
/// and returns the result or the error text Go's function would return.
pub(super) type Impl = fn(&ExecContext<'_>, Vec<Val>) -> Result<Val, String>;

/// How a function is evaluated.
pub(super) enum FuncKind {
    /// `and`/`or`: short-circuit evaluation, done by the executor.
    AndOr {
        is_or: bool,
    },
    /// `call`: there are no function values to call, so it always fails as Go would.
    Call,
    /// Also sees which arguments have static type `interface{}`, which Go's `len` and
    /// `slice` builtins treat differently from the dynamic type.
    Typed(fn(&[Val], &[bool]) -> Result<Val, String>),
    Plain(Impl),
}

/// A template function with its Go signature.
pub(super) struct Func {
    pub(super) name: &'static str,
    pub(super) params: &'static [Param],
    pub(super) variadic: Option<Param>,
    pub(super) kind: FuncKind,
}

/// Finds a function by name: Prometheus' functions, then Go's builtins.
pub(super) fn lookup(name: &str) -> Option<&'static Func> {
    prom_funcs::FUNCS.iter().chain(BUILTINS).find(|f| f.name == name)
}

/// Whether a function name is defined (the parser rejects calls to anything else).
pub(super) fn is_defined(name: &str) -> bool {
    lookup(name).is_some()
}

const ANY: &[Param] = &[Param::Any];
const ANY2: &[Param] = &[Param::Any, Param::Any];

/// A function evaluated by calling its implementation.
pub(super) const fn plain(name: &'static str, params: &'static [Param], variadic: Option<Param>, f: Impl) -> Func {
    Func { name, params, variadic, kind: FuncKind::Plain(f) }
}

static BUILTINS: &[Func] = &[
    Func { name: "and", params: ANY, variadic: Some(Param::Any), kind: FuncKind::AndOr { is_or: false } },
    Func { name: "or", params: ANY, variadic: Some(Param::Any), kind: FuncKind::AndOr { is_or: true } },
    Func { name: "call", params: ANY, variadic: Some(Param::Any), kind: FuncKind::Call },
    plain("html", &[], Some(Param::Any), |_, a| Ok(Val::Str(escape::html(&gofmt::sprint_eval_args(&a))))),
    plain("js", &[], Some(Param::Any), |_, a| Ok(Val::Str(escape::js(&gofmt::sprint_eval_args(&a))))),
    plain("urlquery", &[], Some(Param::Any), |_, a| Ok(Val::Str(escape::query(&gofmt::sprint_eval_args(&a))))),
    plain("print", &[], Some(Param::Any), |_, a| Ok(Val::Str(gofmt::sprint(&a)))),
    plain("println", &[], Some(Param::Any), |_, a| Ok(Val::Str(gofmt::sprintln(&a)))),
    plain("printf", &[Param::Str], Some(Param::Any), printf),
    plain("index", ANY, Some(Param::Any), index),
    Func { name: "slice", params: ANY, variadic: Some(Param::Any), kind: FuncKind::Typed(slice) },
    Func { name: "len", params: ANY, variadic: None, kind: FuncKind::Typed(len) },
    plain("not", ANY, None, |_, a| Ok(Val::Bool(!a.first().is_some_and(Val::is_true)))),
    plain("eq", ANY, Some(Param::Any), |_, a| eq(&a).map(Val::Bool)),
    plain("ne", ANY2, None, |_, a| eq(&a).map(|b| Val::Bool(!b))),
    plain("lt", ANY2, None, |_, a| two(&a, lt).map(Val::Bool)),
    plain("le", ANY2, None, |_, a| two(&a, le).map(Val::Bool)),
    plain("gt", ANY2, None, |_, a| two(&a, le).map(|b| Val::Bool(!b))),
    plain("ge", ANY2, None, |_, a| two(&a, lt).map(|b| Val::Bool(!b))),
];

fn printf(_: &ExecContext<'_>, args: Vec<Val>) -> Result<Val, String> {
    match args.split_first() {
        Some((format, rest)) => Ok(Val::Str(gofmt::sprintf(format.as_str().unwrap_or_default(), rest))),
        None => Ok(Val::Str(String::new())),
    }
}

fn two(args: &[Val], f: fn(&Val, &Val) -> Result<bool, String>) -> Result<bool, String> {
    match args {
        [a, b] => f(a, b),
        _ => Err("missing argument for comparison".to_string()),
    }
}

/// Go's `len` builtin; `iface[0]` says the argument has static type `interface{}`.
fn len(args: &[Val], iface: &[bool]) -> Result<Val, String> {
    match args.first() {
        Some(Val::Nil) if iface.first().copied().unwrap_or(false) => Err("len of nil pointer".to_string()),
        None | Some(Val::Nil) => Err("reflect: call of reflect.Value.Type on zero Value".to_string()),
        Some(v) => match v.length() {
            Some(n) => Ok(Val::Int(n as i64)),
            None => Err(format!("len of type {}", v.indirect_type_name())),
        },
    }
}

/// Go's `indexArg`: an integer index within `0..=cap`.
fn index_arg(index: &Val, cap: usize) -> Result<usize, String> {
    let x = match index {
        Val::Int(x) => *x,
        Val::Nil => return Err("cannot index slice/array with nil".to_string()),
        other => return Err(format!("cannot index slice/array with type {}", other.type_name())),
    };
    match usize::try_from(x) {
        Ok(i) if i <= cap => Ok(i),
        _ => Err(format!("index out of range: {x}")),
    }
}

/// Go's `prepareArg` for a `string` map key.
fn map_key(index: &Val) -> Result<&str, String> {
    match index {
        Val::Str(s) => Ok(s),
        Val::Nil => Err("value is nil; should be of type string".to_string()),
        other => Err(format!("value has type {}; should be string", other.type_name())),
    }
}

fn index(_: &ExecContext<'_>, args: Vec<Val>) -> Result<Val, String> {
    let mut args = args.into_iter();
    let mut item = match args.next() {
        None | Some(Val::Nil) => return Err("index of untyped nil".to_string()),
        Some(v) => v,
    };
    // Indexing a string yields a byte, Go's uint8 (represented here as an int).
    let mut is_byte = false;
    for idx in args {
        if is_byte {
            return Err("can't index item of type uint8".to_string());
        }
        is_byte = matches!(item, Val::Str(_) | Val::Html(_));
        item = match &item {
            Val::Nil => return Err("index of nil pointer".to_string()),
            Val::Str(s) | Val::Html(s) => {
                let i = index_arg(&idx, s.len())?;
                Val::Int(i64::from(*s.as_bytes().get(i).ok_or("reflect: string index out of range")?))
            }
            Val::List(l) => l.get(index_arg(&idx, l.len())?).cloned().ok_or("reflect: slice index out of range")?,
            Val::Samples(l) => Val::Sample(l.get(index_arg(&idx, l.len())?).cloned().ok_or("reflect: slice index out of range")?),
            Val::StrMap(m) => Val::Str(m.get(map_key(&idx)?).cloned().unwrap_or_default()),
            Val::AnyMap(m) => m.get(map_key(&idx)?).cloned().unwrap_or(Val::Nil),
            other => return Err(format!("can't index item of type {}", other.indirect_type_name())),
        };
    }
    Ok(item)
}

/// Go's `slice` builtin; `iface[i]` says argument `i` has static type `interface{}`.
fn slice(args: &[Val], iface: &[bool]) -> Result<Val, String> {
    let Some((item, indexes)) = args.split_first() else {
        return Err("slice of untyped nil".to_string());
    };
    if matches!(item, Val::Nil) {
        return Err("slice of untyped nil".to_string());
    }
    if indexes.len() > 3 {
        return Err(format!("too many slice indexes: {}", indexes.len()));
    }
    let len = match item {
        Val::Str(_) | Val::Html(_) if indexes.len() == 3 => return Err("cannot 3-index slice a string".to_string()),
        Val::Str(_) | Val::Html(_) | Val::List(_) | Val::Samples(_) => item.length().unwrap_or(0),
        other => return Err(format!("can't slice item of type {}", other.indirect_type_name())),
    };
    let mut idx = [0, len, 0];
    for (i, index) in indexes.iter().enumerate() {
        if iface.get(i + 1).copied().unwrap_or(false) {
            return Err("cannot index slice/array with type interface {}".to_string());
        }
        idx[i] = index_arg(index, len)?;
    }
    if idx[0] > idx[1] {
        return Err(format!("invalid slice index: {} > {}", idx[0], idx[1]));
    }
    if indexes.len() == 3 && idx[1] > idx[2] {
        return Err(format!("invalid slice index: {} > {}", idx[1], idx[2]));
    }
    let (from, to) = (idx[0], idx[1]);
    Ok(match item {
        Val::Str(s) => Val::Str(String::from_utf8_lossy(&s.as_bytes()[from..to]).into_owned()),
        Val::Html(s) => Val::Html(String::from_utf8_lossy(&s.as_bytes()[from..to]).into_owned()),
        Val::List(l) => Val::List(Rc::new(l[from..to].to_vec())),
        Val::Samples(l) => Val::Samples(Rc::new(l[from..to].to_vec())),
        _ => Val::Nil,
    })
}

/// A value of one of Go's basic kinds, for comparisons.
#[derive(Clone, Copy)]
enum Basic<'a> {
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(&'a str),
}

fn basic(v: &Val) -> Option<Basic<'_>> {
    match v {
        Val::Bool(b) => Some(Basic::Bool(*b)),
        Val::Int(i) => Some(Basic::Int(*i)),
        Val::Float(f) => Some(Basic::Float(*f)),
        Val::Str(s) | Val::Html(s) => Some(Basic::Str(s)),
        _ => None,
    }
}

fn incompatible(a: &Val, b: &Val) -> String {
    format!("incompatible types for comparison: {} and {}", a.type_name(), b.type_name())
}

/// Go's `eq`: arg1 == arg2 || arg1 == arg3 || ...
fn eq(args: &[Val]) -> Result<bool, String> {
    let Some((a, rest)) = args.split_first() else {
        return Err("missing argument for comparison".to_string());
    };
    if rest.is_empty() {
        return Err("missing argument for comparison".to_string());
    }
    for b in rest {
        let truth = match (basic(a), basic(b)) {
            (Some(Basic::Bool(x)), Some(Basic::Bool(y))) => x == y,
            (Some(Basic::Int(x)), Some(Basic::Int(y))) => x == y,
            (Some(Basic::Float(x)), Some(Basic::Float(y))) => x == y,
            (Some(Basic::Str(x)), Some(Basic::Str(y))) => x == y,
            (None, None) => eq_non_basic(a, b)?,
            _ if !matches!(a, Val::Nil) && !matches!(b, Val::Nil) => return Err(incompatible(a, b)),
            _ => false,
        };
        if truth {
            return Ok(true);
        }
    }
    Ok(false)
}

fn eq_non_basic(a: &Val, b: &Val) -> Result<bool, String> {
    let (ka, kb) = (a.kind(), b.kind());
    if ka != kb && ka != Kind::Invalid && kb != Kind::Invalid {
        return Err(format!(
            "non-comparable types {}: {}, {}: {}",
            gofmt::sprintf("%s", std::slice::from_ref(a)),
            a.type_name(),
            b.type_name(),
            gofmt::sprint(std::slice::from_ref(b))
        ));
    }
    if ka == Kind::Invalid || kb == Kind::Invalid {
        return Ok(ka == kb);
    }
    Ok(match (a, b) {
        (Val::Sample(x), Val::Sample(y)) => Rc::ptr_eq(x, y),
        (Val::Time(x), Val::Time(y)) => x == y,
        (Val::Duration(x), Val::Duration(y)) => x == y,
        _ => return Err(format!("non-comparable type {}: {}", gofmt::sprintf("%s", std::slice::from_ref(b)), b.type_name())),
    })
}

/// Go's `lt`: only same-kind ints, floats and strings can be ordered.
fn lt(a: &Val, b: &Val) -> Result<bool, String> {
    const BAD: &str = "invalid type for comparison";
    let (x, y) = (basic(a).ok_or(BAD)?, basic(b).ok_or(BAD)?);
    match (x, y) {
        (Basic::Int(x), Basic::Int(y)) => Ok(x < y),
        (Basic::Float(x), Basic::Float(y)) => Ok(x < y),
        (Basic::Str(x), Basic::Str(y)) => Ok(x < y),
        (Basic::Bool(_), Basic::Bool(_)) => Err(BAD.to_string()),
        _ => Err(incompatible(a, b)),
    }
}

/// Go's `le`: `lt` or `eq`.
fn le(a: &Val, b: &Val) -> Result<bool, String> {
    if lt(a, b)? {
        return Ok(true);
    }
    eq(&[a.clone(), b.clone()])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(x: &str) -> Val {
        Val::Str(x.to_string())
    }

    #[test]
    fn comparisons() {
        assert_eq!(eq(&[Val::Int(1), Val::Int(2), Val::Int(1)]), Ok(true));
        assert_eq!(eq(&[s("a"), Val::Nil]), Ok(false));
        assert_eq!(eq(&[Val::Nil, Val::Nil]), Ok(true));
        assert_eq!(eq(&[Val::Float(1.0), Val::Int(1)]), Err("incompatible types for comparison: float64 and int".to_string()));
        assert_eq!(lt(&Val::Float(0.5), &Val::Int(1)), Err("incompatible types for comparison: float64 and int".to_string()));
        assert_eq!(lt(&Val::Bool(true), &Val::Bool(false)), Err("invalid type for comparison".to_string()));
        assert_eq!(lt(&Val::Nil, &Val::Int(1)), Err("invalid type for comparison".to_string()));
        assert_eq!(le(&s("a"), &s("a")), Ok(true));
    }
}
