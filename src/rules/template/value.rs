//! Values: the public data model callers pass in, and the internal Go-typed value the engine
//! computes with. Go templates behave differently depending on static Go types (a missing key
//! in a `map[string]string` yields `""`, in a `map[string]interface{}` it yields no value; error
//! messages name types), so internally every value remembers the Go type Prometheus would have.

use std::collections::BTreeMap;
use std::rc::Rc;

use super::gotime::GoTime;

/// Dynamic value, Go-like: the data a template is executed with.
///
/// Conversion to Go types: `Int` is Go `int`, `Float` is `float64`, `Str` is `string`. A `Map`
/// whose values are all `Str` (including an empty map) behaves as `map[string]string` (missing
/// keys yield `""`, as with Prometheus' `missingkey=zero`); any other map behaves as
/// `map[string]interface{}` (missing keys print `<no value>`). A non-empty `List` of only
/// `Sample`s behaves as a query result; any other list as `[]interface{}`.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Nil,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Map(BTreeMap<String, Value>),
    List(Vec<Value>),
    Sample(Sample),
}

/// One element of a `query` result, as Prometheus' template `sample` (`{Labels map[string]string, Value float64}`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Sample {
    /// The series labels (`.Labels` in templates; `__value__` holds a string sample's value).
    pub labels: BTreeMap<String, String>,
    /// The sample value (`.Value` in templates).
    pub value: f64,
}

/// Go's `*template.sample` as seen by templates.
#[derive(Debug)]
pub(super) struct SampleVal {
    pub(super) labels: Rc<BTreeMap<String, String>>,
    pub(super) value: f64,
}

impl SampleVal {
    /// Converts a caller's sample (from data or a query result) to its template form.
    pub(super) fn from_sample(s: &Sample) -> Rc<SampleVal> {
        Rc::new(SampleVal { labels: Rc::new(s.labels.clone()), value: s.value })
    }
}

/// The anonymous struct Prometheus passes to alert templates (`template.AlertTemplateData`).
#[derive(Debug)]
pub(super) struct AlertData {
    pub(super) labels: Rc<BTreeMap<String, String>>,
    pub(super) external_labels: Rc<BTreeMap<String, String>>,
    pub(super) external_url: String,
    pub(super) value: f64,
}

/// Go's type string for the alert data struct, as printed in error messages.
pub(super) const ALERT_DATA_TYPE: &str =
    "struct { Labels map[string]string; ExternalLabels map[string]string; ExternalURL string; Value interface {} }";

/// A value with the Go type it would have inside Prometheus' template engine.
#[derive(Debug, Clone)]
pub(super) enum Val {
    /// No value: Go's invalid `reflect.Value` or a nil `interface{}`.
    Nil,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    /// `html/template.HTML`, returned by `safeHtml`.
    Html(String),
    StrMap(Rc<BTreeMap<String, String>>),
    AnyMap(Rc<BTreeMap<String, Val>>),
    List(Rc<Vec<Val>>),
    /// Prometheus' `queryResult` (`[]*sample`).
    Samples(Rc<Vec<Rc<SampleVal>>>),
    /// `*sample`.
    Sample(Rc<SampleVal>),
    /// `*time.Time` (always UTC), returned by `toTime`.
    Time(GoTime),
    /// `*time.Duration` in nanoseconds, returned by `toDuration`.
    Duration(i64),
    /// The alert template data struct.
    Alert(Rc<AlertData>),
}

/// Go's `reflect.Kind`, reduced to the kinds these values can have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Invalid,
    Bool,
    Int,
    Float,
    String,
    Map,
    Slice,
    Pointer,
    Struct,
}

impl Val {
    /// Converts caller data to its Go-typed form (see [`Value`] for the rules).
    pub(super) fn from_value(v: &Value) -> Val {
        match v {
            Value::Nil => Val::Nil,
            Value::Bool(b) => Val::Bool(*b),
            Value::Int(i) => Val::Int(*i),
            Value::Float(f) => Val::Float(*f),
            Value::Str(s) => Val::Str(s.clone()),
            Value::Map(m) => {
                let strings: Option<BTreeMap<String, String>> = m
                    .iter()
                    .map(|(k, v)| match v {
                        Value::Str(s) => Some((k.clone(), s.clone())),
                        _ => None,
                    })
                    .collect();
                match strings {
                    Some(sm) => Val::StrMap(Rc::new(sm)),
                    None => Val::AnyMap(Rc::new(m.iter().map(|(k, v)| (k.clone(), Val::from_value(v))).collect())),
                }
            }
            Value::List(l) => {
                let samples: Option<Vec<Rc<SampleVal>>> = l
                    .iter()
                    .map(|v| match v {
                        Value::Sample(s) => Some(SampleVal::from_sample(s)),
                        _ => None,
                    })
                    .collect();
                match samples {
                    Some(s) if !s.is_empty() => Val::Samples(Rc::new(s)),
                    _ => Val::List(Rc::new(l.iter().map(Val::from_value).collect())),
                }
            }
            Value::Sample(s) => Val::Sample(SampleVal::from_sample(s)),
        }
    }

    /// Go's `reflect.Kind` of the value, which comparisons depend on.
    pub(super) fn kind(&self) -> Kind {
        match self {
            Val::Nil => Kind::Invalid,
            Val::Bool(_) => Kind::Bool,
            Val::Int(_) => Kind::Int,
            Val::Float(_) => Kind::Float,
            Val::Str(_) | Val::Html(_) => Kind::String,
            Val::StrMap(_) | Val::AnyMap(_) => Kind::Map,
            Val::List(_) | Val::Samples(_) => Kind::Slice,
            Val::Sample(_) | Val::Time(_) | Val::Duration(_) => Kind::Pointer,
            Val::Alert(_) => Kind::Struct,
        }
    }

    /// Go's `reflect.Type.String()` of the value (`%T`), `<nil>` for no value.
    pub(super) fn type_name(&self) -> &'static str {
        match self {
            Val::Nil => "<nil>",
            Val::Bool(_) => "bool",
            Val::Int(_) => "int",
            Val::Float(_) => "float64",
            Val::Str(_) => "string",
            Val::Html(_) => "template.HTML",
            Val::StrMap(_) => "map[string]string",
            Val::AnyMap(_) => "map[string]interface {}",
            Val::List(_) => "[]interface {}",
            Val::Samples(_) => "template.queryResult",
            Val::Sample(_) => "*template.sample",
            Val::Time(_) => "*time.Time",
            Val::Duration(_) => "*time.Duration",
            Val::Alert(_) => ALERT_DATA_TYPE,
        }
    }

    /// The type name after Go's pointer indirection (`indirect`), as some errors report it.
    pub(super) fn indirect_type_name(&self) -> &'static str {
        match self {
            Val::Sample(_) => "template.sample",
            Val::Time(_) => "time.Time",
            Val::Duration(_) => "time.Duration",
            other => other.type_name(),
        }
    }

    /// Go template truthiness: the zero value of its type is false; structs and non-nil
    /// pointers are true.
    pub(super) fn is_true(&self) -> bool {
        match self {
            Val::Nil => false,
            Val::Bool(b) => *b,
            Val::Int(i) => *i != 0,
            Val::Float(f) => *f != 0.0,
            Val::Str(s) | Val::Html(s) => !s.is_empty(),
            Val::StrMap(m) => !m.is_empty(),
            Val::AnyMap(m) => !m.is_empty(),
            Val::List(l) => !l.is_empty(),
            Val::Samples(l) => !l.is_empty(),
            Val::Sample(_) | Val::Time(_) | Val::Duration(_) | Val::Alert(_) => true,
        }
    }

    /// The string content of string-kinded values.
    pub(super) fn as_str(&self) -> Option<&str> {
        match self {
            Val::Str(s) | Val::Html(s) => Some(s),
            _ => None,
        }
    }

    /// Length for the `len` builtin and for slicing, if the kind has one (strings count bytes).
    pub(super) fn length(&self) -> Option<usize> {
        match self {
            Val::Str(s) | Val::Html(s) => Some(s.len()),
            Val::StrMap(m) => Some(m.len()),
            Val::AnyMap(m) => Some(m.len()),
            Val::List(l) => Some(l.len()),
            Val::Samples(l) => Some(l.len()),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversion_picks_go_types() {
        let labels = Value::Map(BTreeMap::from([("a".to_string(), Value::Str("b".into()))]));
        assert_eq!(Val::from_value(&labels).type_name(), "map[string]string");
        assert_eq!(Val::from_value(&Value::Map(BTreeMap::new())).type_name(), "map[string]string");
        let mixed = Value::Map(BTreeMap::from([("a".to_string(), Value::Int(1))]));
        assert_eq!(Val::from_value(&mixed).type_name(), "map[string]interface {}");
        let samples = Value::List(vec![Value::Sample(Sample::default())]);
        assert_eq!(Val::from_value(&samples).type_name(), "template.queryResult");
        assert_eq!(Val::from_value(&Value::List(vec![])).type_name(), "[]interface {}");
    }

    #[test]
    fn truthiness() {
        assert!(!Val::Nil.is_true());
        assert!(!Val::Float(0.0).is_true());
        assert!(Val::Str("x".into()).is_true());
        assert!(!Val::List(Rc::new(vec![])).is_true());
        assert!(Val::Sample(SampleVal::from_sample(&Sample::default())).is_true());
    }
}
