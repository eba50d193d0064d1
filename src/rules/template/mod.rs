//! Go `text/template` with Prometheus' template functions, used to expand alerting rule
//! labels and annotations exactly as Prometheus does (same syntax, output and error texts).
//!
//! Entry points: [`expand_alert_template`] (what Prometheus does per alert), [`check`] (what
//! `promtool check rules` does), and [`Template`] for other templates.
//!
//! Known differences from Go are documented on the modules that implement the behaviour;
//! the main ones: no method calls on values (e.g. `(toTime 0).Unix`), complex number literals
//! are rejected, recursion limits are lower than Go's.

mod escape;
mod exec;
mod ftoa;
mod funcs;
mod gofmt;
mod gotime;
mod humanize;
mod lex;
mod node;
mod parse;
mod prom_funcs;
mod strconv;
mod textfuncs;
mod value;

#[cfg(test)]
mod api_tests;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;

pub use value::{Sample, Value};

use node::List;
use value::{AlertData, Val};

/// Runs PromQL for the `query` template function; returns an instant vector (scalars as one
/// sample with no labels) or an error message.
pub trait QueryRunner {
    /// Evaluates `expr` at the evaluation time; the error text is what templates report.
    fn query(&self, expr: &str) -> Result<Vec<Sample>, String>;

    /// The evaluation timestamp (seconds since the epoch) queries run at, returned by the
    /// `now` template function; `None` makes `now` fail.
    fn now(&self) -> Option<f64> {
        None
    }
}

/// What template functions may use from the server: the query engine and the external URL.
pub struct ExecContext<'a> {
    /// Backs the `query` function; `None` makes `query` fail.
    pub query: Option<&'a dyn QueryRunner>,
    /// Returned by `externalURL` (Go's `url.URL.String()` of the external URL).
    pub external_url: String,
    /// Returned by `pathPrefix` (the external URL's path).
    pub path_prefix: String,
}

/// A template error, displayed exactly as Go's error text.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    /// The template text does not parse, e.g. `template: __alert_Foo:1: function "nope" not defined`.
    #[error("{message}")]
    Parse {
        /// The template's name.
        template: String,
        /// Go's error text.
        message: String,
    },
    /// Execution failed, e.g. `template: __alert_Foo:1:115: executing "__alert_Foo" at <humanize "x">: error calling humanize: ...`.
    #[error("{message}")]
    Exec {
        /// The template's name.
        template: String,
        /// Go's error text.
        message: String,
    },
}

impl TemplateError {
    /// The text Prometheus' expander reports for this error (`error parsing template NAME: ...`
    /// or `error executing template NAME: ...`); Prometheus puts it in the label or annotation
    /// as `<error expanding template: TEXT>`.
    pub fn expander_message(&self) -> String {
        match self {
            TemplateError::Parse { template, message } => format!("error parsing template {template}: {message}"),
            TemplateError::Exec { template, message } => format!("error executing template {template}: {message}"),
        }
    }
}

/// A parsed template: the top-level template plus those it defines with `define`/`block`.
pub struct Template {
    name: String,
    text: String,
    trees: HashMap<String, List>,
}

impl Template {
    /// Parses `text` as the template `name`; the name appears in error messages.
    pub fn parse(name: &str, text: &str) -> Result<Template, TemplateError> {
        let trees =
            parse::parse(name, text, funcs::is_defined).map_err(|message| TemplateError::Parse { template: name.to_string(), message })?;
        Ok(Template { name: name.to_string(), text: text.to_string(), trees })
    }

    /// Executes the template with `data` as dot and `$` (see [`Value`] for how data maps to Go types).
    pub fn execute(&self, data: &Value, ctx: &ExecContext) -> Result<String, TemplateError> {
        self.execute_val(Val::from_value(data), ctx)
    }

    fn execute_val(&self, data: Val, ctx: &ExecContext) -> Result<String, TemplateError> {
        exec::execute(&self.name, &self.text, &self.trees, data, ctx)
            .map_err(|message| TemplateError::Exec { template: self.name.clone(), message })
    }
}

/// The variable definitions Prometheus prepends to every alert template.
const ALERT_PREFIX: &str =
    "{{$labels := .Labels}}{{$externalLabels := .ExternalLabels}}{{$externalURL := .ExternalURL}}{{$value := .Value}}";

/// Prometheus' template name for an alerting rule's labels and annotations.
fn alert_template_name(rule_name: &str) -> String {
    format!("__alert_{rule_name}")
}

/// Prometheus' alert template expansion: prepends the same variable definitions Prometheus does
/// ("{{$labels := .Labels}}{{$externalLabels := .ExternalLabels}}{{$externalURL := .ExternalURL}}{{$value := .Value}}")
/// and executes with data {Labels, ExternalLabels, ExternalURL, Value}.
///
/// `name` is the alerting rule's name; the template is named `__alert_<name>` as in Prometheus,
/// so error positions and names match Prometheus' messages.
pub fn expand_alert_template(
    name: &str,
    text: &str,
    labels: &BTreeMap<String, String>,
    external_labels: &BTreeMap<String, String>,
    external_url: &str,
    value: f64,
    ctx: &ExecContext,
) -> Result<String, TemplateError> {
    let tmpl = Template::parse(&alert_template_name(name), &format!("{ALERT_PREFIX}{text}"))?;
    let data = AlertData {
        labels: Rc::new(labels.clone()),
        external_labels: Rc::new(external_labels.clone()),
        external_url: external_url.to_string(),
        value,
    };
    tmpl.execute_val(Val::Alert(Rc::new(data)), ctx)
}

/// Validates an alert label or annotation template the way `promtool check rules` does:
/// parses it (with Prometheus' variable definitions prepended) without executing it.
/// `name` is the alerting rule's name.
pub fn check(name: &str, text: &str) -> Result<(), TemplateError> {
    Template::parse(&alert_template_name(name), &format!("{ALERT_PREFIX}{text}")).map(|_| ())
}
