//! Prometheus' template functions (`template.NewTemplateExpander`'s text-mode function map)
//! with their Go signatures. (`tmpl` only exists in Prometheus' HTML mode, so it is absent.)

use std::rc::Rc;

use super::ExecContext;
use super::escape;
use super::funcs::{Func, Param, plain};
use super::gotime::GoTime;
use super::humanize::{
    convert_to_float, humanize, humanize_duration, humanize_percentage, humanize_timestamp, humanize1024, parse_duration_seconds,
    to_duration_nanos,
};
use super::textfuncs::{strip_domain, strip_port, title, to_lower, to_upper};
use super::value::{SampleVal, Val};
use crate::relabel::goregex;
use crate::relabel::template::Template as Replacement;

const STR: &[Param] = &[Param::Str];
const STR2: &[Param] = &[Param::Str, Param::Str];
const ANY: &[Param] = &[Param::Any];
const SAMPLE: &[Param] = &[Param::SamplePtr];

/// What Go reports when a function dereferences a nil `*sample`.
const NIL_DEREF: &str = "runtime error: invalid memory address or nil pointer dereference";

/// Prometheus' text-mode template functions, looked up before Go's builtins.
pub(super) static FUNCS: &[Func] = &[
    plain("query", STR, None, query),
    plain("first", &[Param::Samples], None, first),
    plain("label", &[Param::Str, Param::SamplePtr], None, |_, a| {
        Ok(Val::Str(sample_arg(&a, 1)?.labels.get(str_arg(&a, 0)).cloned().unwrap_or_default()))
    }),
    plain("value", SAMPLE, None, |_, a| Ok(Val::Float(sample_arg(&a, 0)?.value))),
    plain("strvalue", SAMPLE, None, |_, a| Ok(Val::Str(sample_arg(&a, 0)?.labels.get("__value__").cloned().unwrap_or_default()))),
    plain("args", &[], Some(Param::Any), |_, a| {
        Ok(Val::AnyMap(Rc::new(a.into_iter().enumerate().map(|(i, v)| (format!("arg{i}"), v)).collect())))
    }),
    plain("reReplaceAll", &[Param::Str, Param::Str, Param::Str], None, re_replace_all),
    plain("safeHtml", STR, None, |_, a| Ok(Val::Html(str_arg(&a, 0).to_string()))),
    plain("match", STR2, None, |_, a| Ok(Val::Bool(goregex::compile(str_arg(&a, 0))?.regex.is_match(str_arg(&a, 1))))),
    plain("title", STR, None, |_, a| Ok(Val::Str(title(str_arg(&a, 0))))),
    plain("toUpper", STR, None, |_, a| Ok(Val::Str(to_upper(str_arg(&a, 0))))),
    plain("toLower", STR, None, |_, a| Ok(Val::Str(to_lower(str_arg(&a, 0))))),
    plain("graphLink", STR, None, |_, a| Ok(Val::Str(format!("/graph?g0.expr={}&g0.tab=0", escape::query(str_arg(&a, 0)))))),
    plain("tableLink", STR, None, |_, a| Ok(Val::Str(format!("/graph?g0.expr={}&g0.tab=1", escape::query(str_arg(&a, 0)))))),
    plain("sortByLabel", &[Param::Str, Param::Samples], None, sort_by_label),
    plain("stripPort", STR, None, |_, a| Ok(Val::Str(strip_port(str_arg(&a, 0))))),
    plain("stripDomain", STR, None, |_, a| Ok(Val::Str(strip_domain(str_arg(&a, 0))))),
    plain("humanize", ANY, None, |_, a| Ok(Val::Str(humanize(float_arg(&a)?)))),
    plain("humanize1024", ANY, None, |_, a| Ok(Val::Str(humanize1024(float_arg(&a)?)))),
    plain("humanizeDuration", ANY, None, |_, a| Ok(Val::Str(humanize_duration(float_arg(&a)?)))),
    plain("humanizePercentage", ANY, None, |_, a| Ok(Val::Str(humanize_percentage(float_arg(&a)?)))),
    plain("humanizeTimestamp", ANY, None, |_, a| humanize_timestamp(float_arg(&a)?).map(Val::Str)),
    plain("toTime", ANY, None, |_, a| GoTime::from_unix_seconds(float_arg(&a)?).map(Val::Time)),
    plain("toDuration", ANY, None, |_, a| Ok(Val::Duration(to_duration_nanos(float_arg(&a)?)))),
    plain("now", &[], None, |ctx, _| {
        ctx.query.and_then(|q| q.now()).map(Val::Float).ok_or_else(|| "no evaluation time is available to templates".to_string())
    }),
    plain("pathPrefix", &[], None, |ctx, _| Ok(Val::Str(ctx.path_prefix.clone()))),
    plain("externalURL", &[], None, |ctx, _| Ok(Val::Str(ctx.external_url.clone()))),
    plain("parseDuration", STR, None, |_, a| parse_duration_seconds(str_arg(&a, 0)).map(Val::Float)),
    plain("urlQueryEscape", STR, None, |_, a| Ok(Val::Str(escape::query(str_arg(&a, 0))))),
];

/// A `string` argument (already type-checked by the executor).
fn str_arg(args: &[Val], i: usize) -> &str {
    args.get(i).and_then(Val::as_str).unwrap_or_default()
}

/// A `*sample` argument, which may be nil.
fn sample_arg(args: &[Val], i: usize) -> Result<&SampleVal, String> {
    match args.get(i) {
        Some(Val::Sample(s)) => Ok(s),
        _ => Err(NIL_DEREF.to_string()),
    }
}

/// The single `interface{}` argument of the numeric helpers, converted like Prometheus does.
fn float_arg(args: &[Val]) -> Result<f64, String> {
    convert_to_float(args.first().unwrap_or(&Val::Nil))
}

fn query(ctx: &ExecContext<'_>, args: Vec<Val>) -> Result<Val, String> {
    let runner = ctx.query.ok_or("no query engine is available to templates")?;
    let samples = runner.query(str_arg(&args, 0))?;
    Ok(Val::Samples(Rc::new(samples.iter().map(SampleVal::from_sample).collect())))
}

fn first(_: &ExecContext<'_>, args: Vec<Val>) -> Result<Val, String> {
    match args.first() {
        Some(Val::Samples(s)) => s.first().map(|x| Val::Sample(Rc::clone(x))),
        _ => None,
    }
    .ok_or_else(|| "first() called on vector with no elements".to_string())
}

/// Stable sort by one label's value (Go sorts the slice in place; here a sorted copy is returned).
fn sort_by_label(_: &ExecContext<'_>, args: Vec<Val>) -> Result<Val, String> {
    let label = str_arg(&args, 0);
    let mut samples = match args.get(1) {
        Some(Val::Samples(s)) => s.as_ref().clone(),
        _ => Vec::new(),
    };
    samples.sort_by_key(|s| s.labels.get(label).cloned().unwrap_or_default());
    Ok(Val::Samples(Rc::new(samples)))
}

fn re_replace_all(_: &ExecContext<'_>, args: Vec<Val>) -> Result<Val, String> {
    let pattern = str_arg(&args, 0);
    let re = goregex::compile(pattern).map_err(|e| must_compile_message(pattern, &e))?;
    Ok(Val::Str(Replacement::parse(str_arg(&args, 1), &re.group_names).replace_all(&re.regex, str_arg(&args, 2))))
}

/// Go's `regexp.MustCompile` failure text, which Prometheus' `reReplaceAll` reports.
fn must_compile_message(pattern: &str, err: &str) -> String {
    let quoted = if super::strconv::can_backquote(pattern) { format!("`{pattern}`") } else { super::strconv::quote(pattern) };
    format!("regexp: Compile({quoted}): {err}")
}
