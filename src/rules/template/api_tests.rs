//! Tests of behaviour specific to this implementation: the public API, and recursion limits
//! that keep hostile templates from overflowing a small (async runtime worker) thread stack.

use std::collections::BTreeMap;

use super::*;

fn no_query_ctx() -> ExecContext<'static> {
    ExecContext { query: None, external_url: "http://localhost:9090".to_string(), path_prefix: String::new() }
}

fn run(text: &str) -> Result<String, String> {
    Template::parse("t", text).and_then(|t| t.execute(&Value::Nil, &no_query_ctx())).map_err(|e| e.to_string())
}

/// Runs `text` on a thread with a 2 MiB stack, the default for Rust threads and tokio workers.
/// (Measured worst cases need about 1 MiB in debug builds and under 256 KiB in release builds.)
fn run_on_small_stack(text: String) -> Result<String, String> {
    std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(move || run(&text))
        .map_err(|e| e.to_string())?
        .join()
        .map_err(|_| "thread panicked".to_string())?
}

#[test]
fn deep_nesting_within_limits_runs_on_small_stack() {
    let ifs = format!("{}x{}", "{{if 1}}".repeat(99), "{{end}}".repeat(99));
    assert_eq!(run_on_small_stack(ifs), Ok("x".to_string()));
    let parens = format!("{{{{print {}1{}}}}}", "(print ".repeat(98), ")".repeat(98));
    assert_eq!(run_on_small_stack(parens), Ok("1".to_string()));
}

#[test]
fn excessive_nesting_is_a_parse_error() {
    let ifs = format!("{}x{}", "{{if 1}}".repeat(101), "{{end}}".repeat(101));
    assert_eq!(run_on_small_stack(ifs), Err("template: t:1: max nesting depth exceeded".to_string()));
    let parens = format!("{{{{{}1{}}}}}", "(".repeat(101), ")".repeat(101));
    assert_eq!(run_on_small_stack(parens), Err("template: t:1: max expression depth exceeded".to_string()));
}

#[test]
fn unbounded_recursion_is_an_exec_error() {
    let body = format!("{}{{{{template \"r\" 1}}}}{}", "{{if 1}}".repeat(98), "{{end}}".repeat(98));
    let text = format!("{{{{define \"r\"}}}}{body}{{{{end}}}}{{{{template \"r\" 1}}}}");
    let err = run_on_small_stack(text).expect_err("recursion must fail");
    assert!(err.ends_with("exceeded maximum template depth (200)"), "{err}");
    let parens = format!(
        "{{{{define \"r\"}}}}{{{{template \"r\" {}1{}}}}}{{{{end}}}}{{{{template \"r\" 1}}}}",
        "(print ".repeat(98),
        ")".repeat(98)
    );
    let err = run_on_small_stack(parens).expect_err("recursion must fail");
    assert!(err.ends_with("exceeded maximum template depth (200)"), "{err}");
}

#[test]
fn error_variants_and_expander_message() {
    let labels = BTreeMap::new();
    let ctx = no_query_ctx();
    let parse = expand_alert_template("Foo", "{{ nope }}", &labels, &labels, "", 0.0, &ctx).expect_err("parse error");
    assert!(matches!(parse, TemplateError::Parse { .. }));
    assert_eq!(parse.expander_message(), r#"error parsing template __alert_Foo: template: __alert_Foo:1: function "nope" not defined"#);
    let exec = expand_alert_template("Foo", r#"{{ humanize "x" }}"#, &labels, &labels, "", 0.0, &ctx).expect_err("exec error");
    assert!(matches!(exec, TemplateError::Exec { .. }));
    assert_eq!(
        exec.expander_message(),
        r#"error executing template __alert_Foo: template: __alert_Foo:1:115: executing "__alert_Foo" at <humanize "x">: error calling humanize: strconv.ParseFloat: parsing "x": invalid syntax"#
    );
}

#[test]
fn query_without_runner_fails() {
    assert_eq!(
        run(r#"{{ query "up" }}"#),
        Err(r#"template: t:1:3: executing "t" at <query "up">: error calling query: no query engine is available to templates"#.to_string())
    );
}

#[test]
fn check_accepts_valid_and_reports_parse_errors_only() {
    assert!(check("Foo", r#"{{ humanize "not a number" }}"#).is_ok());
    assert_eq!(check("Foo", "{{ if }}").map_err(|e| e.to_string()), Err("template: __alert_Foo:1: missing value for if".to_string()));
}

#[test]
fn template_is_reusable_and_takes_value_data() {
    let t = Template::parse(
        "t",
        r#"{{ define "item" }}<{{ . }}>{{ end }}{{ range .items }}{{ template "item" . }}{{ end }} {{ .s.Labels.a }} {{ .s }}"#,
    )
    .expect("parses");
    let sample = Sample { labels: BTreeMap::from([("a".to_string(), "b".to_string())]), value: 2.5 };
    let data = Value::Map(BTreeMap::from([
        ("items".to_string(), Value::List(vec![Value::Int(1), Value::Str("x".into())])),
        ("s".to_string(), Value::Sample(sample)),
    ]));
    let ctx = no_query_ctx();
    assert_eq!(t.execute(&data, &ctx).as_deref().ok(), Some("<1><x> b {map[a:b] 2.5}"));
    assert_eq!(t.execute(&Value::Nil, &ctx).as_deref().ok(), Some(" <no value> <no value>"));
}

#[test]
fn parsed_templates_and_errors_can_cross_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Template>();
    assert_send_sync::<TemplateError>();
}
