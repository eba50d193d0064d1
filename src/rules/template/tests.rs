//! End-to-end tests. Every expected string was produced by Go 1.26 `text/template` running
//! Prometheus' text-mode function map (a reference harness mirroring
//! `template.NewTemplateExpander` and `rules/alerting.go`, with the same fake query results,
//! external labels and external URL as below).

use std::collections::BTreeMap;

use super::*;

/// Labels used by most alert cases.
const L: &[(&str, &str)] = &[
    ("instance", "node1.example.com:9100"),
    ("job", "node"),
    ("namespace", "prod"),
    ("pod", "api-7d9f"),
    ("container", "app"),
    ("severity", "critical"),
];

struct FakeRunner;

impl QueryRunner for FakeRunner {
    fn query(&self, expr: &str) -> Result<Vec<Sample>, String> {
        let s = |value: f64, labels: &[(&str, &str)]| Sample { labels: to_map(labels), value };
        match expr {
            "up" => Ok(vec![
                s(1.0, &[("__name__", "up"), ("instance", "b:9090"), ("job", "prom")]),
                s(0.0, &[("__name__", "up"), ("instance", "a:9100"), ("job", "node")]),
            ]),
            "x" => Ok(vec![s(3.0, &[("instance", "c")]), s(1.5, &[("instance", "a")]), s(2.0, &[("instance", "b")])]),
            "scalar(1)" => Ok(vec![s(42.0, &[])]),
            "strv" => Ok(vec![s(0.0, &[("__value__", "hello")])]),
            "empty" => Ok(vec![]),
            other => Err(format!("query failed: {other}")),
        }
    }

    fn now(&self) -> Option<f64> {
        Some(1700000000.5)
    }
}

fn to_map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn ctx(runner: &FakeRunner) -> ExecContext<'_> {
    ExecContext { query: Some(runner), external_url: "http://prom.example.com:9090/prefix".to_string(), path_prefix: "/prefix".to_string() }
}

#[derive(Debug)]
enum Want {
    Out(&'static str),
    Parse(&'static str),
    Exec(&'static str),
}

fn matches(got: Result<String, TemplateError>, want: &Want) -> Result<(), String> {
    match (&got, want) {
        (Ok(out), Want::Out(w)) if out == w => Ok(()),
        (Err(TemplateError::Parse { message, .. }), Want::Parse(w)) if message == w => Ok(()),
        (Err(TemplateError::Exec { message, .. }), Want::Exec(w)) if message == w => Ok(()),
        _ => Err(format!("got {got:?}\n   want {want:?}")),
    }
}

/// An alert case: name, template, labels, value, expected result.
type AlertCase = (&'static str, &'static str, &'static [(&'static str, &'static str)], f64, Want);

/// Runs alert cases and reports every mismatch.
fn check_alerts(cases: &[AlertCase]) {
    let runner = FakeRunner;
    let external = to_map(&[("cluster", "eu1")]);
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|(name, text, labels, value, want)| {
            let got = expand_alert_template(
                "Foo",
                text,
                &to_map(labels),
                &external,
                "http://prom.example.com:9090/prefix",
                *value,
                &ctx(&runner),
            );
            matches(got, want).err().map(|e| format!("{name}: {e}"))
        })
        .collect();
    assert!(failures.is_empty(), "{} failing cases:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn basics() {
    check_alerts(&[
        ("plain text", "hello world", L, 0.5, Want::Out("hello world")),
        ("label", "{{ $labels.instance }}", L, 0.5, Want::Out("node1.example.com:9100")),
        ("dot labels", "{{ .Labels.job }}/{{ .Labels.namespace }}", L, 0.5, Want::Out("node/prod")),
        ("missing label", "[{{ $labels.missing }}]", L, 0.5, Want::Out("[]")),
        ("missing label dot", "[{{ .Labels.missing }}]", L, 0.5, Want::Out("[]")),
        ("value half", "{{ $value }}", L, 0.5, Want::Out("0.5")),
        ("value big", "{{ $value }}", L, 1000000.0, Want::Out("1e+06")),
        ("value int", "{{ $value }}", L, 3.0, Want::Out("3")),
        ("value frac", "{{ $value }}", L, 1234567.891, Want::Out("1.234567891e+06")),
        ("value tiny", "{{ $value }}", L, 1e-05, Want::Out("1e-05")),
        ("value neg", "{{ .Value }}", L, -2.5, Want::Out("-2.5")),
        (
            "external",
            "{{ $externalLabels.cluster }} {{ $externalURL }} {{ .ExternalURL }}",
            L,
            1.0,
            Want::Out("eu1 http://prom.example.com:9090/prefix http://prom.example.com:9090/prefix"),
        ),
        ("whole labels", "{{ $labels }}", &[("a", "1"), ("b", "x y")], 1.0, Want::Out("map[a:1 b:x y]")),
        ("whole data", "{{ . }}", &[("a", "1")], 2.0, Want::Out("{map[a:1] map[cluster:eu1] http://prom.example.com:9090/prefix 2}")),
        ("dollar", "{{ $.Labels.a }}", &[("a", "1")], 2.0, Want::Out("1")),
        ("trim", "a  {{- 1 -}}  b\n{{- 2 }}\n  {{3 -}}\n c", L, 1.0, Want::Out("a1b2\n  3c")),
        ("comment", "x{{/* a comment */}}y{{- /* trimmed */ -}} z", L, 1.0, Want::Out("xyz")),
        ("multiline comment", "x{{/* a\ncomment */}}y", L, 1.0, Want::Out("xy")),
        ("pipeline", "{{ $value | humanize }} {{ \"x\" | printf \"%s-%s\" \"a\" }}", L, 12345.0, Want::Out("12.35k a-x")),
        (
            "paren",
            "{{ (printf \"%s\" \"x\") }} {{ len (query \"up\") }} {{ (query \"up\" | first).Labels.job }}",
            L,
            1.0,
            Want::Out("x 2 prom"),
        ),
        (
            "variables",
            "{{ $x := 1 }}{{ $x }}{{ $x = 2 }}{{ $x }}{{ if true }}{{ $x = 3 }}{{ $y := 4 }}{{ $y }}{{ end }}{{ $x }}",
            L,
            1.0,
            Want::Out("1243"),
        ),
        ("variable shadow", "{{ $x := 1 }}{{ with 5 }}{{ $x := . }}{{ $x }}{{ end }}{{ $x }}", L, 1.0, Want::Out("51")),
        ("decl not printed", "{{ $a := \"x\" }}{{ $b := $a }}[{{ $b }}]", L, 1.0, Want::Out("[x]")),
    ]);
}

#[test]
fn control() {
    check_alerts(&[
        ("if high", "{{ if gt $value 0.5 }}high{{ else }}low{{ end }}", L, 0.7, Want::Out("high")),
        ("if low", "{{ if gt $value 0.5 }}high{{ else }}low{{ end }}", L, 0.3, Want::Out("low")),
        (
            "else if",
            "{{ if eq $labels.severity \"warning\" }}W{{ else if eq $labels.severity \"critical\" }}C{{ else }}O{{ end }}",
            L,
            1.0,
            Want::Out("C"),
        ),
        (
            "if truthiness",
            "{{ if \"\" }}a{{ end }}{{ if 0 }}b{{ end }}{{ if 0.0 }}c{{ end }}{{ if $labels }}d{{ end }}{{ if $labels.missing }}e{{ end }}{{ if query \"empty\" }}f{{ end }}{{ if query \"up\" }}g{{ end }}{{ if . }}h{{ end }}",
            L,
            0.0,
            Want::Out("dgh"),
        ),
        (
            "with",
            "{{ with $labels.pod }}pod={{ . }}{{ else }}nopod{{ end }}|{{ with $labels.nothing }}x{{ else }}none{{ end }}",
            L,
            1.0,
            Want::Out("pod=api-7d9f|none"),
        ),
        ("else with", "{{ with $labels.nope }}A{{ else with $labels.job }}J={{ . }}{{ else }}N{{ end }}", L, 1.0, Want::Out("J=node")),
        (
            "range map",
            "{{ range $k, $v := $labels }}{{ $k }}={{ $v }};{{ end }}",
            &[("b", "2"), ("a", "1"), ("c", "3")],
            1.0,
            Want::Out("a=1;b=2;c=3;"),
        ),
        ("range map values", "{{ range $labels }}{{ . }},{{ end }}", &[("b", "2"), ("a", "1")], 1.0, Want::Out("1,2,")),
        ("range one var", "{{ range $v := $labels }}{{ $v }}.{{ end }}", &[("b", "2"), ("a", "1")], 1.0, Want::Out("1.2.")),
        (
            "range query",
            "{{ range query \"x\" | sortByLabel \"instance\" }}{{ .Labels.instance }}={{ .Value }} {{ end }}",
            L,
            1.0,
            Want::Out("a=1.5 b=2 c=3 "),
        ),
        ("range index", "{{ range $i, $s := query \"x\" }}{{ $i }}:{{ $s.Labels.instance }} {{ end }}", L, 1.0, Want::Out("0:c 1:a 2:b ")),
        ("range else", "{{ range query \"empty\" }}x{{ else }}none{{ end }}", L, 1.0, Want::Out("none")),
        (
            "range break continue",
            "{{ range $i, $s := query \"x\" }}{{ if eq $i 1 }}{{ continue }}{{ end }}{{ $s.Value }};{{ if eq $i 2 }}{{ break }}{{ end }}{{ end }}",
            L,
            1.0,
            Want::Out("3;2;"),
        ),
        (
            "range break in if",
            "{{ range $k, $v := $labels }}{{ if eq $k \"b\" }}{{ break }}{{ end }}{{ $k }}{{ end }}",
            &[("a", "1"), ("b", "2"), ("c", "3")],
            1.0,
            Want::Out("a"),
        ),
        (
            "range int",
            "{{ range 3 }}{{ . }}{{ end }}|{{ range $i := 2 }}{{ $i }}{{ end }}|{{ range 0 }}x{{ else }}empty{{ end }}",
            L,
            1.0,
            Want::Out("012|01|empty"),
        ),
        ("range assign", "{{ $x := 0 }}{{ range $x = $labels }}{{ end }}{{ $x }}", &[("a", "1"), ("b", "2")], 1.0, Want::Out("2")),
        (
            "range nested dot",
            "{{ range query \"up\" }}{{ $.Labels.job }}/{{ .Labels.job }} {{ end }}",
            &[("job", "outer")],
            1.0,
            Want::Out("outer/prom outer/node "),
        ),
        (
            "define template",
            "{{ define \"x\" }}[{{ . }}]{{ end }}{{ template \"x\" $labels.job }}{{ template \"x\" }}",
            L,
            1.0,
            Want::Out("[node][<no value>]"),
        ),
        ("block", "{{ block \"b\" $value }}<{{ . }}>{{ end }}-{{ template \"b\" 7 }}", L, 2.5, Want::Out("<2.5>-<7>")),
        ("define uses dollar", "{{ define \"y\" }}{{ $.a }}{{ end }}{{ template \"y\" $labels }}", &[("a", "z")], 1.0, Want::Out("z")),
    ]);
}

#[test]
fn literals() {
    check_alerts(&[
        ("strings", "{{ \"a\\tb\\u00e9\\x41\\101\" }}|{{ `raw\\n` }}|{{ \"q\\\"q\" }}", L, 1.0, Want::Out("a\tbéAA|raw\\n|q\"q")),
        (
            "numbers",
            "{{ 'a' }} {{ 0x1F }} {{ 1e3 }} {{ 1.5 }} {{ -5 }} {{ 0o17 }} {{ 017 }} {{ 1_000 }} {{ 0b101 }} {{ .5 }} {{ 0x1p-2 }} {{ '\\n' }}",
            L,
            1.0,
            Want::Out("97 31 1000 1.5 -5 15 15 1000 5 0.5 0.25 10"),
        ),
        ("bools", "{{ true }} {{ false }} {{ not true }} {{ not 0 }}", L, 1.0, Want::Out("true false false true")),
        (
            "printf types",
            "{{ printf \"%T %T %T %T %T %T\" 1 1.5 \"s\" true $labels $value }}",
            L,
            1.0,
            Want::Out("int float64 string bool map[string]string float64"),
        ),
    ]);
}

#[test]
fn builtins() {
    check_alerts(&[
        (
            "and or",
            "{{ and 1 0 }} {{ and 1 \"x\" }} {{ or 0 \"\" \"x\" }} {{ or 0 \"\" }} {{ and $labels.job $labels.instance }} {{ or $labels.nope \"default\" }}",
            L,
            1.0,
            Want::Out("0 x x  node1.example.com:9100 default"),
        ),
        ("and short circuit", "{{ and false (humanize \"bad\") }} {{ or true (humanize \"bad\") }}", L, 1.0, Want::Out("false true")),
        ("not len", "{{ not \"\" }} {{ len \"héllo\" }} {{ len $labels }} {{ len (query \"x\") }}", L, 1.0, Want::Out("true 6 6 3")),
        (
            "index",
            "{{ index $labels \"job\" }} [{{ index $labels \"nope\" }}] {{ index \"abc\" 1 }} {{ (index (query \"x\") 1).Value }}",
            L,
            1.0,
            Want::Out("node [] 98 1.5"),
        ),
        (
            "slice",
            "{{ slice \"abcdef\" 1 3 }} {{ slice \"abcdef\" 2 }} {{ slice \"abc\" }} {{ len (slice (query \"x\") 1) }}",
            L,
            1.0,
            Want::Out("bc cdef abc 2"),
        ),
        (
            "eq ne",
            "{{ eq $labels.job \"a\" \"node\" }} {{ eq 1 2 }} {{ ne \"a\" \"b\" }} {{ eq $value 1.0 }} {{ eq $labels.nope \"\" }}",
            L,
            1.0,
            Want::Out("true false true true true"),
        ),
        (
            "comparisons",
            "{{ lt 1 2 }} {{ le 2 2 }} {{ gt \"b\" \"a\" }} {{ ge 1.5 2.5 }} {{ lt $value 10.0 }} {{ gt 3 2 }}",
            L,
            1.0,
            Want::Out("true true true false true true"),
        ),
        (
            "print",
            "{{ print 1 2 \"a\" 3 \"b\" \"c\" }}|{{ println \"a\" 1 }}|{{ print $value nil }}|{{ print }}",
            L,
            0.5,
            Want::Out("1 2a3bc|a 1\n|0.5 <nil>|"),
        ),
        (
            "printf",
            "{{ printf \"%.2f\" $value }} {{ printf \"%5.1f|%-6s|%05d|%x|%q\" 3.14159 \"ab\" 42 255 \"hi\" }} {{ printf \"%d%%\" 50 }}",
            L,
            0.6666666666666666,
            Want::Out("0.67   3.1|ab    |00042|ff|\"hi\" 50%"),
        ),
        (
            "printf mismatch",
            "{{ printf \"%d\" \"x\" }} {{ printf \"%s %s\" \"a\" }} {{ printf \"%s\" \"a\" 1 }} {{ printf \"%.2f\" 5 }} {{ printf \"%v\" nil }} {{ printf \"%d\" $labels }}",
            L,
            1.0,
            Want::Out(
                "%!d(string=x) a %!s(MISSING) a%!(EXTRA int=1) %!f(int=05) <nil> map[%!d(string=container):%!d(string=app) %!d(string=instance):%!d(string=node1.example.com:9100) %!d(string=job):%!d(string=node) %!d(string=namespace):%!d(string=prod) %!d(string=pod):%!d(string=api-7d9f) %!d(string=severity):%!d(string=critical)]",
            ),
        ),
        (
            "printf values",
            "{{ printf \"%v|%s|%+v\" $labels.job (query \"scalar(1)\" | first) (query \"up\" | first) }}",
            L,
            1.0,
            Want::Out("node|&{map[] %!s(float64=42)}|&{Labels:map[__name__:up instance:b:9090 job:prom] Value:1}"),
        ),
        (
            "printf float formats",
            "{{ printf \"%e %E %g %G %.3g %8.3f %-8.2e| %v %v %v\" 1234.5678 0.000123 1e21 1e-7 123456.0 3.14159 2.5 1e20 1e21 123456789.0 }}",
            L,
            1.0,
            Want::Out("1.234568e+03 1.230000E-04 1e+21 1E-07 1.23e+05    3.142 2.50e+00| 1e+20 1e+21 1.23456789e+08"),
        ),
        (
            "escapers",
            "{{ html \"<a href=\\\"x\\\">&</a>\" }} {{ js \"it's <b>\" }} {{ urlquery \"a b&c=d/é\" }} {{ html 1 \"<\" }}",
            L,
            1.0,
            Want::Out("&lt;a href=&#34;x&#34;&gt;&amp;&lt;/a&gt; it\\'s \\u003Cb\\u003E a+b%26c%3Dd%2F%C3%A9 1&lt;"),
        ),
        ("html nil", "{{ html nil }} {{ html .Labels.nope }}", L, 1.0, Want::Out("&lt;no value&gt; ")),
    ]);
}

#[test]
fn prometheus() {
    check_alerts(&[
        (
            "query first value",
            "{{ with query \"up\" }}{{ . | first | value }}{{ end }} {{ query \"up\" | first | label \"instance\" }} {{ (query \"strv\" | first) | strvalue }}",
            L,
            1.0,
            Want::Out("1 b:9090 hello"),
        ),
        ("query scalar", "{{ with query \"scalar(1)\" }}{{ . | first | value | humanize }}{{ end }}", L, 1.0, Want::Out("42")),
        ("query print", "{{ query \"up\" | first }}", L, 1.0, Want::Out("{map[__name__:up instance:b:9090 job:prom] 1}")),
        ("sortByLabel", "{{ range sortByLabel \"job\" (query \"up\") }}{{ .Labels.job }} {{ end }}", L, 1.0, Want::Out("node prom ")),
        (
            "humanize",
            "{{ humanize 1234567 }} {{ humanize 0.001234 }} {{ humanize 0 }} {{ humanize \"1e3\" }} {{ humanize -123456 }} {{ humanize 999.99 }} {{ humanize 1e30 }} {{ humanize 1e-30 }} {{ humanize \"NaN\" }} {{ humanize \"+Inf\" }} {{ humanize \"-Inf\" }} {{ humanize 5 }}",
            L,
            1.0,
            Want::Out("1.235M 1.234m 0 1k -123.5k 1000 1e+06Y 1e-06y NaN +Inf -Inf 5"),
        ),
        (
            "humanize1024",
            "{{ humanize1024 1048576 }} {{ humanize1024 1 }} {{ humanize1024 1023.5 }} {{ humanize1024 -2048 }} {{ humanize1024 1e30 }} {{ humanize1024 \"NaN\" }} {{ humanize1024 0.5 }}",
            L,
            1.0,
            Want::Out("1Mi 1 1024 -2ki 8.272e+05Yi NaN 0.5"),
        ),
        (
            "humanizeDuration",
            "{{ humanizeDuration 3661 }} {{ humanizeDuration 0.5 }} {{ humanizeDuration 0 }} {{ humanizeDuration 86400 }} {{ humanizeDuration -90061 }} {{ humanizeDuration 1.2345 }} {{ humanizeDuration 0.000123 }} {{ humanizeDuration \"60.5\" }} {{ humanizeDuration \"NaN\" }} {{ humanizeDuration 899.99 }}",
            L,
            1.0,
            Want::Out("1h 1m 1s 500ms 0s 1d 0h 0m 0s -1d 1h 1m 1s 1.234s 123us 1m 0s NaN 14m 59s"),
        ),
        (
            "humanizePercentage",
            "{{ humanizePercentage 0.1234 }} {{ humanizePercentage 1 }} {{ humanizePercentage 0.000012345 }} {{ $value | humanizePercentage }} {{ humanizePercentage \"0.5\" }}",
            L,
            0.98765,
            Want::Out("12.34% 100% 0.001234% 98.77% 50%"),
        ),
        (
            "humanizeTimestamp",
            "{{ humanizeTimestamp 1700000000 }} {{ humanizeTimestamp 1435065584.128 }} {{ humanizeTimestamp 0 }} {{ humanizeTimestamp -1.5 }} {{ humanizeTimestamp \"+Inf\" }} {{ humanizeTimestamp \"NaN\" }}",
            L,
            1.0,
            Want::Out(
                "2023-11-14 22:13:20 +0000 UTC 2015-06-23 13:19:44.128 +0000 UTC 1970-01-01 00:00:00 +0000 UTC 1969-12-31 23:59:58.5 +0000 UTC +Inf NaN",
            ),
        ),
        (
            "toTime toDuration",
            "{{ toTime 1700000000 }}|{{ toTime 1.5 }}|{{ toDuration 3723.5 }}|{{ toDuration 0.0015 }}|{{ toDuration 0 }}|{{ printf \"%s\" (toTime 0) }}",
            L,
            1.0,
            Want::Out("2023-11-14 22:13:20 +0000 UTC|1970-01-01 00:00:01.5 +0000 UTC|1h2m3.5s|1.5ms|0s|1970-01-01 00:00:00 +0000 UTC"),
        ),
        (
            "strings",
            "{{ title \"hello world foo-bar o'neil 1st\" }} {{ toUpper \"abc é\" }} {{ toLower \"ABC É\" }}",
            L,
            1.0,
            Want::Out("Hello World Foo-Bar O'neil 1St ABC É abc é"),
        ),
        (
            "match",
            "{{ match \"^node\" $labels.job }} {{ match \"a.c\" \"xyz\" }} {{ if match \"^prod\" $labels.namespace }}P{{ end }}",
            L,
            1.0,
            Want::Out("true false P"),
        ),
        (
            "reReplaceAll",
            "{{ reReplaceAll \"(.*):.*\" \"$1\" $labels.instance }} {{ reReplaceAll \":[0-9]+$\" \"\" $labels.instance }} {{ reReplaceAll \"(?P<h>[a-z0-9]+)\\\\..*\" \"${h}!\" $labels.instance }} {{ reReplaceAll \"o\" \"0\" \"foo boo\" }}",
            L,
            1.0,
            Want::Out("node1.example.com node1.example.com node1! f00 b00"),
        ),
        (
            "reReplaceAll go expand",
            "{{ reReplaceAll \"(\\\\w+)-(\\\\w+)\" \"$2x$1\" \"ab-cd\" }}|{{ reReplaceAll \"(\\\\w+)-(\\\\w+)\" \"${2}x$1\" \"ab-cd\" }}|{{ reReplaceAll \"a\" \"$$\" \"banana\" }}",
            L,
            1.0,
            Want::Out("ab|cdxab|b$n$n$"),
        ),
        (
            "safeHtml",
            "{{ safeHtml \"<b>x</b>\" }} {{ printf \"%T\" (safeHtml \"x\") }} {{ eq (safeHtml \"x\") \"x\" }}",
            L,
            1.0,
            Want::Out("<b>x</b> template.HTML true"),
        ),
        (
            "host funcs",
            "{{ stripPort $labels.instance }} {{ stripPort \"[::1]:9090\" }} {{ stripPort \"nohost\" }} {{ stripDomain $labels.instance }} {{ stripDomain \"10.1.2.3:80\" }} {{ stripDomain \"a.b.c\" }} {{ stripDomain \"[fe80::1]:80\" }}",
            L,
            1.0,
            Want::Out("node1.example.com ::1 nohost node1:9100 10.1.2.3:80 a [fe80::1]:80"),
        ),
        (
            "links",
            "{{ externalURL }} {{ pathPrefix }} {{ graphLink \"rate(x[5m]) > 0\" }} {{ tableLink \"up{job=\\\"a\\\"}\" }} {{ urlQueryEscape \"a b+c\" }}",
            L,
            1.0,
            Want::Out(
                "http://prom.example.com:9090/prefix /prefix /graph?g0.expr=rate%28x%5B5m%5D%29+%3E+0&g0.tab=0 /graph?g0.expr=up%7Bjob%3D%22a%22%7D&g0.tab=1 a+b%2Bc",
            ),
        ),
        (
            "args",
            "{{ define \"t\" }}{{ .arg0 }}-{{ .arg1 }}-{{ .arg2 }}{{ end }}{{ template \"t\" (args \"a\" 2) }}|{{ args 1 \"x\" nil }}|{{ len (args) }}",
            L,
            1.0,
            Want::Out("a-2-<no value>|map[arg0:1 arg1:x arg2:<nil>]|0"),
        ),
        (
            "now",
            "{{ now }} {{ now | humanizeTimestamp }} {{ printf \"%.1f\" now }}",
            L,
            1.0,
            Want::Out("1.7000000005e+09 2023-11-14 22:13:20.5 +0000 UTC 1700000000.5"),
        ),
        (
            "parseDuration",
            "{{ parseDuration \"1h30m\" }} {{ parseDuration \"-5m\" }} {{ parseDuration \"100ms\" }} {{ parseDuration \"1w\" }} {{ parseDuration \"0\" }}",
            L,
            1.0,
            Want::Out("5400 -300 0.1 604800 0"),
        ),
    ]);
}

#[test]
fn mixins() {
    check_alerts(&[
        (
            "k8s restarting",
            "{{ $labels.namespace }}/{{ $labels.pod }} ({{ $labels.container }}) is restarting {{ printf \"%.2f\" $value }} times / 10 minutes.",
            L,
            1.5,
            Want::Out("prod/api-7d9f (app) is restarting 1.50 times / 10 minutes."),
        ),
        (
            "k8s cpu overcommit",
            "Cluster has overcommitted CPU resource requests for Pods by {{ $value }} CPU shares and cannot tolerate node failure.",
            L,
            0.5,
            Want::Out("Cluster has overcommitted CPU resource requests for Pods by 0.5 CPU shares and cannot tolerate node failure."),
        ),
        (
            "k8s percent",
            "{{ $value | humanizePercentage }} of the {{ $labels.job }}/{{ $labels.instance }} targets in {{ $labels.namespace }} namespace are down.",
            L,
            0.333333,
            Want::Out("33.33% of the node/node1.example.com:9100 targets in prod namespace are down."),
        ),
        (
            "node fs",
            "Filesystem on {{ $labels.device }}, mounted on {{ $labels.mountpoint }}, at {{ $labels.instance }} has only {{ printf \"%.2f\" $value }}% available space left and is filling up.",
            &[("device", "/dev/sda1"), ("mountpoint", "/"), ("instance", "n1:9100")],
            4.567,
            Want::Out("Filesystem on /dev/sda1, mounted on /, at n1:9100 has only 4.57% available space left and is filling up."),
        ),
        (
            "node clock",
            "Clock at {{ $labels.instance }} is out of sync by more than 0.05s. Ensure NTP is configured correctly on this host.",
            L,
            1.0,
            Want::Out(
                "Clock at node1.example.com:9100 is out of sync by more than 0.05s. Ensure NTP is configured correctly on this host.",
            ),
        ),
        (
            "node network",
            "{{ $labels.instance }} interface {{ $labels.device }} has encountered {{ printf \"%.0f\" $value }} receive errors in the last two minutes.",
            &[("instance", "n1"), ("device", "eth0")],
            12.5,
            Want::Out("n1 interface eth0 has encountered 12 receive errors in the last two minutes."),
        ),
        (
            "prometheus rule",
            "Prometheus {{$labels.instance}} has failed to evaluate {{ printf \"%.0f\" $value }} rules in the last 5m.",
            L,
            3.0,
            Want::Out("Prometheus node1.example.com:9100 has failed to evaluate 3 rules in the last 5m."),
        ),
        (
            "alertmanager",
            "{{ $value | humanizePercentage }} of Alertmanager instances within the {{$labels.job}} cluster have failed to send {{ printf \"%.1f\" $value }}% of notifications.",
            L,
            0.125,
            Want::Out("12.5% of Alertmanager instances within the node cluster have failed to send 0.1% of notifications."),
        ),
        (
            "disk humanize",
            "{{ $labels.instance }} has {{ humanize1024 $value }}B free ({{ $value | humanize }})",
            L,
            123456789.0,
            Want::Out("node1.example.com:9100 has 117.7MiB free (123.5M)"),
        ),
        ("latency", "p99 latency is {{ humanizeDuration $value }}", L, 0.2345, Want::Out("p99 latency is 234.5ms")),
        (
            "multi-line",
            "Summary:\n{{- range $k, $v := $labels }}\n  - {{ $k }}: {{ $v }}\n{{- end }}\nValue: {{ $value }}",
            &[("alertname", "X"), ("job", "j")],
            42.0,
            Want::Out("Summary:\n  - alertname: X\n  - job: j\nValue: 42"),
        ),
        (
            "with query",
            "Current: {{ with query \"scalar(1)\" }}{{ . | first | value | humanize }}{{ end }}",
            L,
            1.0,
            Want::Out("Current: 42"),
        ),
        (
            "title severity",
            "{{ $labels.severity | title }} alert on {{ $labels.instance | stripPort }}",
            L,
            1.0,
            Want::Out("Critical alert on node1.example.com"),
        ),
    ]);
}

#[test]
fn parse_errors() {
    check_alerts(&[
        ("unclosed action", "{{ $labels.x ", L, 1.0, Want::Parse("template: __alert_Foo:1: unclosed action")),
        (
            "unclosed action nl",
            "{{ $labels.x \n\n",
            L,
            1.0,
            Want::Parse("template: __alert_Foo:3: unclosed action started at __alert_Foo:1"),
        ),
        ("unexpected eof", "{{ if true }}x", L, 1.0, Want::Parse("template: __alert_Foo:1: unexpected EOF")),
        ("unexpected eof line", "a\nb\n{{ range $labels }}x\n", L, 1.0, Want::Parse("template: __alert_Foo:4: unexpected EOF")),
        ("undefined function", "{{ nope }}", L, 1.0, Want::Parse("template: __alert_Foo:1: function \"nope\" not defined")),
        (
            "undefined function line",
            "line1\nline2 {{ humanise $value }}",
            L,
            1.0,
            Want::Parse("template: __alert_Foo:2: function \"humanise\" not defined"),
        ),
        ("undefined variable", "{{ $nope }}", L, 1.0, Want::Parse("template: __alert_Foo:1: undefined variable \"$nope\"")),
        (
            "scoped variable",
            "{{ if true }}{{ $y := 1 }}{{ end }}{{ $y }}",
            L,
            1.0,
            Want::Parse("template: __alert_Foo:1: undefined variable \"$y\""),
        ),
        (
            "define no outer vars",
            "{{ define \"y\" }}{{ $labels }}{{ end }}",
            L,
            1.0,
            Want::Parse("template: __alert_Foo:1: undefined variable \"$labels\""),
        ),
        ("unexpected end", "x{{ end }}", L, 1.0, Want::Parse("template: __alert_Foo:1: unexpected {{end}}")),
        ("unexpected else", "{{ else }}", L, 1.0, Want::Parse("template: __alert_Foo:1: unexpected {{else}}")),
        ("unterminated string", "{{ \"abc }}", L, 1.0, Want::Parse("template: __alert_Foo:1: unterminated quoted string")),
        ("unterminated raw", "{{ `abc }}", L, 1.0, Want::Parse("template: __alert_Foo:1: unterminated raw quoted string")),
        ("bad number", "{{ 3x }}", L, 1.0, Want::Parse("template: __alert_Foo:1: bad number syntax: \"3x\"")),
        (
            "integer overflow",
            "{{ 99999999999999999999 }}",
            L,
            1.0,
            Want::Parse("template: __alert_Foo:1: integer overflow: \"99999999999999999999\""),
        ),
        ("illegal number", "{{ 1e400 }}", L, 1.0, Want::Parse("template: __alert_Foo:1: illegal number syntax: \"1e400\"")),
        ("missing value", "{{ if }}x{{ end }}", L, 1.0, Want::Parse("template: __alert_Foo:1: missing value for if")),
        (
            "non executable",
            "{{ $value | \"x\" }}",
            L,
            1.0,
            Want::Parse("template: __alert_Foo:1: non executable command in pipeline stage 2"),
        ),
        ("unclosed paren", "{{ (1 }}", L, 1.0, Want::Parse("template: __alert_Foo:1: unclosed left paren")),
        ("unexpected paren", "{{ 1) }}", L, 1.0, Want::Parse("template: __alert_Foo:1: unexpected right paren")),
        ("bad char", "{{ $x# }}", L, 1.0, Want::Parse("template: __alert_Foo:1: bad character U+0023 '#'")),
        ("unrecognized", "{{ \u{1} }}", L, 1.0, Want::Parse("template: __alert_Foo:1: unrecognized character in action: U+0001")),
        ("break outside", "{{ break }}", L, 1.0, Want::Parse("template: __alert_Foo:1: {{break}} outside {{range}}")),
        ("empty action", "{{ }}", L, 1.0, Want::Parse("template: __alert_Foo:1: missing value for command")),
        ("empty pipe", "{{ 1 | }}", L, 1.0, Want::Out("1")),
        ("unclosed comment", "{{/* abc", L, 1.0, Want::Parse("template: __alert_Foo:1: unclosed comment")),
        ("comment no delim", "{{/* abc */ x}}", L, 1.0, Want::Parse("template: __alert_Foo:1: comment ends before closing delimiter")),
        ("field after literal", "{{ \"a\".b }}", L, 1.0, Want::Parse("template: __alert_Foo:1: unexpected . after term \"\\\"a\\\"\"")),
        ("too many decls", "{{ $a, $b := 1 }}", L, 1.0, Want::Parse("template: __alert_Foo:1: too many declarations in command")),
        (
            "range decls",
            "{{ range $a, $b, $c := . }}{{ end }}",
            L,
            1.0,
            Want::Parse("template: __alert_Foo:1: too many declarations in range"),
        ),
        ("expected colon", "{{ $a : 1 }}", L, 1.0, Want::Parse("template: __alert_Foo:1: undefined variable \"$a\"")),
        (
            "else twice",
            "{{ if 1 }}{{ else }}{{ else }}{{ end }}",
            L,
            1.0,
            Want::Parse("template: __alert_Foo:1: expected end; found {{else}}"),
        ),
        ("define bad", "{{ define x }}{{ end }}", L, 1.0, Want::Parse("template: __alert_Foo:1: unexpected \"x\" in define clause")),
        (
            "define else",
            "{{ define \"x\" }}{{ else }}{{ end }}",
            L,
            1.0,
            Want::Parse("template: __alert_Foo:1: unexpected {{else}} in define clause"),
        ),
        (
            "multiple definition",
            "{{ define \"a\" }}1{{ end }}{{ define \"a\" }}2{{ end }}",
            L,
            1.0,
            Want::Parse("template: __alert_Foo:1: template: multiple definition of template \"a\""),
        ),
        ("template bad name", "{{ template x }}", L, 1.0, Want::Parse("template: __alert_Foo:1: unexpected \"x\" in template clause")),
        (
            "define in action",
            "{{ if 1 }}{{ define \"x\" }}{{ end }}{{ end }}",
            L,
            1.0,
            Want::Parse("template: __alert_Foo:1: unexpected <define> in command"),
        ),
        (
            "unclosed action multiline",
            "{{ if\n\n true",
            L,
            1.0,
            Want::Parse("template: __alert_Foo:3: unclosed action started at __alert_Foo:1"),
        ),
        ("char constant", "{{ 'ab' }}", L, 1.0, Want::Parse("template: __alert_Foo:1: malformed character constant: 'ab'")),
        ("char empty", "{{ '' }}", L, 1.0, Want::Parse("template: __alert_Foo:1: invalid syntax")),
        ("bad escape", "{{ \"\\q\" }}", L, 1.0, Want::Parse("template: __alert_Foo:1: invalid syntax")),
        ("tmpl undefined", "{{ tmpl \"x\" . }}", L, 1.0, Want::Parse("template: __alert_Foo:1: function \"tmpl\" not defined")),
    ]);
}

#[test]
fn exec_errors() {
    check_alerts(&[
        (
            "humanize abc",
            "{{ humanize \"abc\" }}",
            L,
            1.0,
            Want::Exec(
                "template: __alert_Foo:1:115: executing \"__alert_Foo\" at <humanize \"abc\">: error calling humanize: strconv.ParseFloat: parsing \"abc\": invalid syntax",
            ),
        ),
        (
            "humanize pipe",
            "{{ \"abc\" | humanize }}",
            L,
            1.0,
            Want::Exec(
                "template: __alert_Foo:1:123: executing \"__alert_Foo\" at <humanize>: error calling humanize: strconv.ParseFloat: parsing \"abc\": invalid syntax",
            ),
        ),
        (
            "humanize label",
            "{{ humanize $labels.job }}",
            L,
            1.0,
            Want::Exec(
                "template: __alert_Foo:1:115: executing \"__alert_Foo\" at <humanize $labels.job>: error calling humanize: strconv.ParseFloat: parsing \"node\": invalid syntax",
            ),
        ),
        (
            "humanize bool",
            "{{ humanize true }}",
            L,
            1.0,
            Want::Exec(
                "template: __alert_Foo:1:115: executing \"__alert_Foo\" at <humanize true>: error calling humanize: can't convert bool to float",
            ),
        ),
        (
            "humanize map",
            "{{ humanize $labels }}",
            L,
            1.0,
            Want::Exec(
                "template: __alert_Foo:1:115: executing \"__alert_Foo\" at <humanize $labels>: error calling humanize: can't convert map[string]string to float",
            ),
        ),
        (
            "humanizeDuration bad",
            "{{ humanizeDuration \"1h\" }}",
            L,
            1.0,
            Want::Exec(
                "template: __alert_Foo:1:115: executing \"__alert_Foo\" at <humanizeDuration \"1h\">: error calling humanizeDuration: strconv.ParseFloat: parsing \"1h\": invalid syntax",
            ),
        ),
        (
            "first empty",
            "{{ query \"empty\" | first }}",
            L,
            1.0,
            Want::Exec(
                "template: __alert_Foo:1:131: executing \"__alert_Foo\" at <first>: error calling first: first() called on vector with no elements",
            ),
        ),
        (
            "query error",
            "{{ query \"bad query\" }}",
            L,
            1.0,
            Want::Exec(
                "template: __alert_Foo:1:115: executing \"__alert_Foo\" at <query \"bad query\">: error calling query: query failed: bad query",
            ),
        ),
        (
            "gt int float",
            "{{ if gt $value 1 }}x{{ end }}",
            L,
            2.0,
            Want::Exec(
                "template: __alert_Foo:1:118: executing \"__alert_Foo\" at <gt $value 1>: error calling gt: incompatible types for comparison: float64 and int",
            ),
        ),
        (
            "eq incompatible",
            "{{ eq $value \"x\" }}",
            L,
            2.0,
            Want::Exec(
                "template: __alert_Foo:1:115: executing \"__alert_Foo\" at <eq $value \"x\">: error calling eq: incompatible types for comparison: float64 and string",
            ),
        ),
        (
            "lt bool",
            "{{ lt true false }}",
            L,
            2.0,
            Want::Exec(
                "template: __alert_Foo:1:115: executing \"__alert_Foo\" at <lt true false>: error calling lt: invalid type for comparison",
            ),
        ),
        (
            "eq maps",
            "{{ eq $labels $labels }}",
            L,
            2.0,
            Want::Exec(
                "template: __alert_Foo:1:115: executing \"__alert_Foo\" at <eq $labels $labels>: error calling eq: non-comparable type map[container:app instance:node1.example.com:9100 job:node namespace:prod pod:api-7d9f severity:critical]: map[string]string",
            ),
        ),
        (
            "eq missing",
            "{{ eq 1 }}",
            L,
            2.0,
            Want::Exec(
                "template: __alert_Foo:1:115: executing \"__alert_Foo\" at <eq 1>: error calling eq: missing argument for comparison",
            ),
        ),
        (
            "toUpper int",
            "{{ toUpper 1 }}",
            L,
            1.0,
            Want::Exec("template: __alert_Foo:1:123: executing \"__alert_Foo\" at <1>: expected string; found 1"),
        ),
        (
            "toUpper value",
            "{{ $value | toUpper }}",
            L,
            1.0,
            Want::Exec(
                "template: __alert_Foo:1:124: executing \"__alert_Foo\" at <toUpper>: wrong type for value; expected string; got float64",
            ),
        ),
        (
            "toUpper var",
            "{{ toUpper $value }}",
            L,
            1.0,
            Want::Exec(
                "template: __alert_Foo:1:123: executing \"__alert_Foo\" at <$value>: wrong type for value; expected string; got float64",
            ),
        ),
        (
            "toUpper nil",
            "{{ toUpper nil }}",
            L,
            1.0,
            Want::Exec("template: __alert_Foo:1:123: executing \"__alert_Foo\" at <nil>: cannot assign nil to string"),
        ),
        (
            "toUpper html",
            "{{ toUpper (safeHtml \"x\") }}",
            L,
            1.0,
            Want::Exec(
                "template: __alert_Foo:1:133: executing \"__alert_Foo\" at <\"x\">: wrong type for value; expected string; got template.HTML",
            ),
        ),
        ("toUpper missing", "{{ toUpper .Labels.nope }}", L, 1.0, Want::Out("")),
        (
            "first wrong",
            "{{ first 1 }}",
            L,
            1.0,
            Want::Exec(
                "template: __alert_Foo:1:121: executing \"__alert_Foo\" at <1>: can't handle 1 for arg of type template.queryResult",
            ),
        ),
        (
            "first label",
            "{{ first $labels }}",
            L,
            1.0,
            Want::Exec(
                "template: __alert_Foo:1:121: executing \"__alert_Foo\" at <$labels>: wrong type for value; expected template.queryResult; got map[string]string",
            ),
        ),
        (
            "value nil",
            "{{ value nil }}",
            L,
            1.0,
            Want::Exec(
                "template: __alert_Foo:1:115: executing \"__alert_Foo\" at <value nil>: error calling value: runtime error: invalid memory address or nil pointer dereference",
            ),
        ),
        (
            "label nil",
            "{{ label \"x\" nil }}",
            L,
            1.0,
            Want::Exec(
                "template: __alert_Foo:1:115: executing \"__alert_Foo\" at <label \"x\" nil>: error calling label: runtime error: invalid memory address or nil pointer dereference",
            ),
        ),
        (
            "first nil",
            "{{ first nil }}",
            L,
            1.0,
            Want::Exec(
                "template: __alert_Foo:1:115: executing \"__alert_Foo\" at <first nil>: error calling first: first() called on vector with no elements",
            ),
        ),
        (
            "wrong args",
            "{{ humanize }}",
            L,
            1.0,
            Want::Exec(
                "template: __alert_Foo:1:115: executing \"__alert_Foo\" at <humanize>: wrong number of args for humanize: want 1 got 0",
            ),
        ),
        (
            "wrong args 2",
            "{{ humanize 1 2 }}",
            L,
            1.0,
            Want::Exec(
                "template: __alert_Foo:1:115: executing \"__alert_Foo\" at <humanize>: wrong number of args for humanize: want 1 got 2",
            ),
        ),
        (
            "wrong args pipe",
            "{{ 1 | humanize 2 }}",
            L,
            1.0,
            Want::Exec(
                "template: __alert_Foo:1:119: executing \"__alert_Foo\" at <humanize>: wrong number of args for humanize: want 1 got 2",
            ),
        ),
        (
            "printf no args",
            "{{ printf }}",
            L,
            1.0,
            Want::Exec(
                "template: __alert_Foo:1:115: executing \"__alert_Foo\" at <printf>: wrong number of args for printf: want at least 1 got 0",
            ),
        ),
        (
            "index wrong key",
            "{{ index $labels 1 }}",
            L,
            1.0,
            Want::Exec(
                "template: __alert_Foo:1:115: executing \"__alert_Foo\" at <index $labels 1>: error calling index: value has type int; should be string",
            ),
        ),
        (
            "index out of range",
            "{{ index (query \"x\") 5 }}",
            L,
            1.0,
            Want::Exec(
                "template: __alert_Foo:1:115: executing \"__alert_Foo\" at <index (query \"x\") 5>: error calling index: index out of range: 5",
            ),
        ),
        (
            "index nil",
            "{{ index nil 1 }}",
            L,
            1.0,
            Want::Exec(
                "template: __alert_Foo:1:115: executing \"__alert_Foo\" at <index nil 1>: error calling index: index of untyped nil",
            ),
        ),
        (
            "index int",
            "{{ index 5 1 }}",
            L,
            1.0,
            Want::Exec(
                "template: __alert_Foo:1:115: executing \"__alert_Foo\" at <index 5 1>: error calling index: can't index item of type int",
            ),
        ),
        (
            "slice bad",
            "{{ slice \"abc\" 2 1 }}",
            L,
            1.0,
            Want::Exec(
                "template: __alert_Foo:1:115: executing \"__alert_Foo\" at <slice \"abc\" 2 1>: error calling slice: invalid slice index: 2 > 1",
            ),
        ),
        (
            "len int",
            "{{ len 3 }}",
            L,
            1.0,
            Want::Exec("template: __alert_Foo:1:115: executing \"__alert_Foo\" at <len 3>: error calling len: len of type int"),
        ),
        (
            "len nil",
            "{{ len nil }}",
            L,
            1.0,
            Want::Exec(
                "template: __alert_Foo:1:115: executing \"__alert_Foo\" at <len nil>: error calling len: reflect: call of reflect.Value.Type on zero Value",
            ),
        ),
        ("len missing", "{{ len .Labels.nope }}", L, 1.0, Want::Out("0")),
        (
            "template undefined",
            "{{ template \"nope\" }}",
            L,
            1.0,
            Want::Exec("template: __alert_Foo:1:124: executing \"__alert_Foo\" at <{{template \"nope\"}}>: template \"nope\" not defined"),
        ),
        (
            "struct field",
            "{{ .Foo }}",
            L,
            1.0,
            Want::Exec(
                "template: __alert_Foo:1:115: executing \"__alert_Foo\" at <.Foo>: can't evaluate field Foo in type struct { Labels map[string]string; ExternalLabels map[string]string; ExternalURL string; Value interface {} }",
            ),
        ),
        (
            "struct field lower",
            "{{ .labels.job }}",
            L,
            1.0,
            Want::Exec(
                "template: __alert_Foo:1:122: executing \"__alert_Foo\" at <.labels.job>: can't evaluate field labels in type struct { Labels map[string]string; ExternalLabels map[string]string; ExternalURL string; Value interface {} }",
            ),
        ),
        (
            "field of string",
            "{{ $labels.job.x }}",
            L,
            1.0,
            Want::Exec("template: __alert_Foo:1:122: executing \"__alert_Foo\" at <$labels.job.x>: can't evaluate field x in type string"),
        ),
        (
            "field of float",
            "{{ $value.x }}",
            L,
            1.0,
            Want::Exec("template: __alert_Foo:1:121: executing \"__alert_Foo\" at <$value.x>: can't evaluate field x in type float64"),
        ),
        (
            "field of interface",
            "{{ .Value.x }}",
            L,
            1.0,
            Want::Exec("template: __alert_Foo:1:121: executing \"__alert_Foo\" at <.Value.x>: can't evaluate field x in type interface {}"),
        ),
        (
            "field of sample value",
            "{{ (query \"up\" | first).Value.x }}",
            L,
            1.0,
            Want::Exec("template: __alert_Foo:1:129: executing \"__alert_Foo\" at <first>: can't evaluate field x in type interface {}"),
        ),
        (
            "field of args",
            "{{ (args 1).arg0.x }}",
            L,
            1.0,
            Want::Exec("template: __alert_Foo:1:121: executing \"__alert_Foo\" at <1>: can't evaluate field x in type interface {}"),
        ),
        (
            "field of args nil",
            "{{ (args 1).arg5.x }}",
            L,
            1.0,
            Want::Exec("template: __alert_Foo:1:121: executing \"__alert_Foo\" at <1>: nil pointer evaluating interface {}.x"),
        ),
        (
            "field args",
            "{{ .Labels.job \"x\" }}",
            L,
            1.0,
            Want::Exec("template: __alert_Foo:1:122: executing \"__alert_Foo\" at <.Labels.job>: job is not a method but has arguments"),
        ),
        (
            "struct field args",
            "{{ .Value 1 }}",
            L,
            1.0,
            Want::Exec(
                "template: __alert_Foo:1:115: executing \"__alert_Foo\" at <.Value>: Value has arguments but cannot be invoked as function",
            ),
        ),
        (
            "non function",
            "{{ $value \"x\" }}",
            L,
            1.0,
            Want::Exec("template: __alert_Foo:1:115: executing \"__alert_Foo\" at <$value>: can't give argument to non-function $value"),
        ),
        (
            "non function pipe",
            "{{ 1 | $value }}",
            L,
            1.0,
            Want::Exec("template: __alert_Foo:1:119: executing \"__alert_Foo\" at <$value>: can't give argument to non-function $value"),
        ),
        (
            "nil command",
            "{{ nil }}",
            L,
            1.0,
            Want::Exec("template: __alert_Foo:1:115: executing \"__alert_Foo\" at <nil>: nil is not a command"),
        ),
        (
            "range float",
            "{{ range $value }}x{{ end }}",
            L,
            1.5,
            Want::Exec("template: __alert_Foo:1:121: executing \"__alert_Foo\" at <$value>: range can't iterate over 1.5"),
        ),
        (
            "range string",
            "{{ range \"abc\" }}x{{ end }}",
            L,
            1.5,
            Want::Exec("template: __alert_Foo:1:121: executing \"__alert_Foo\" at <\"abc\">: range can't iterate over abc"),
        ),
        (
            "range int two vars",
            "{{ range $i, $e := 3 }}x{{ end }}",
            L,
            1.5,
            Want::Exec("template: __alert_Foo:1:131: executing \"__alert_Foo\" at <3>: can't use 3 to iterate over more than one variable"),
        ),
        (
            "reReplaceAll bad",
            "{{ reReplaceAll \"(\" \"x\" \"y\" }}",
            L,
            1.0,
            Want::Exec(
                "template: __alert_Foo:1:115: executing \"__alert_Foo\" at <reReplaceAll \"(\" \"x\" \"y\">: error calling reReplaceAll: regexp: Compile(`(`): error parsing regexp: missing closing ): `(`",
            ),
        ),
        (
            "match bad",
            "{{ match \"[a\" \"x\" }}",
            L,
            1.0,
            Want::Exec(
                "template: __alert_Foo:1:115: executing \"__alert_Foo\" at <match \"[a\" \"x\">: error calling match: error parsing regexp: missing closing ]: `[a`",
            ),
        ),
        (
            "call",
            "{{ call .Labels.job }}",
            L,
            1.0,
            Want::Exec(
                "template: __alert_Foo:1:115: executing \"__alert_Foo\" at <call .Labels.job>: error calling call: non-function .Labels.job of type string",
            ),
        ),
        (
            "call nil",
            "{{ call nil }}",
            L,
            1.0,
            Want::Exec("template: __alert_Foo:1:115: executing \"__alert_Foo\" at <call nil>: error calling call: call of nil"),
        ),
        (
            "overflow int",
            "{{ 18446744073709551615 }}",
            L,
            1.0,
            Want::Exec(
                "template: __alert_Foo:1:115: executing \"__alert_Foo\" at <18446744073709551615>: 18446744073709551615 overflows int",
            ),
        ),
        (
            "parseDuration bad",
            "{{ parseDuration \"5x\" }}",
            L,
            1.0,
            Want::Exec(
                "template: __alert_Foo:1:115: executing \"__alert_Foo\" at <parseDuration \"5x\">: error calling parseDuration: unknown unit \"x\" in duration \"5x\"",
            ),
        ),
        (
            "parseDuration order",
            "{{ parseDuration \"1m1h\" }}",
            L,
            1.0,
            Want::Exec(
                "template: __alert_Foo:1:115: executing \"__alert_Foo\" at <parseDuration \"1m1h\">: error calling parseDuration: not a valid duration string: \"1m1h\"",
            ),
        ),
        (
            "toTime nan",
            "{{ toTime \"NaN\" }}",
            L,
            1.0,
            Want::Exec(
                "template: __alert_Foo:1:115: executing \"__alert_Foo\" at <toTime \"NaN\">: error calling toTime: value is NaN or Inf",
            ),
        ),
        (
            "toTime overflow",
            "{{ toTime 1e19 }}",
            L,
            1.0,
            Want::Exec(
                "template: __alert_Foo:1:115: executing \"__alert_Foo\" at <toTime 1e19>: error calling toTime: 1e+19 cannot be represented as a nanoseconds timestamp since it overflows int64",
            ),
        ),
        (
            "error in define",
            "{{ define \"d\" }}\n{{ humanize \"q\" }}{{ end }}x{{ template \"d\" . }}",
            L,
            1.0,
            Want::Exec(
                "template: __alert_Foo:2:3: executing \"d\" at <humanize \"q\">: error calling humanize: strconv.ParseFloat: parsing \"q\": invalid syntax",
            ),
        ),
        (
            "error line 2",
            "ok\n  {{ humanize \"q\" }}",
            L,
            1.0,
            Want::Exec(
                "template: __alert_Foo:2:5: executing \"__alert_Foo\" at <humanize \"q\">: error calling humanize: strconv.ParseFloat: parsing \"q\": invalid syntax",
            ),
        ),
        (
            "chain nil",
            "{{ (nil).x }}",
            L,
            1.0,
            Want::Exec("template: __alert_Foo:1:116: executing \"__alert_Foo\" at <nil>: nil is not a command"),
        ),
        (
            "ideal float to str",
            "{{ toUpper 1.5 }}",
            L,
            1.0,
            Want::Exec("template: __alert_Foo:1:123: executing \"__alert_Foo\" at <1.5>: expected string; found 1.5"),
        ),
        (
            "sample field",
            "{{ (query \"up\" | first).Foo }}",
            L,
            1.0,
            Want::Exec(
                "template: __alert_Foo:1:129: executing \"__alert_Foo\" at <first>: can't evaluate field Foo in type *template.sample",
            ),
        ),
        (
            "index sample",
            "{{ index (query \"up\" | first) \"x\" }}",
            L,
            1.0,
            Want::Exec(
                "template: __alert_Foo:1:115: executing \"__alert_Foo\" at <index (query \"up\" | first) \"x\">: error calling index: can't index item of type template.sample",
            ),
        ),
        (
            "len sample",
            "{{ len (query \"up\" | first) }}",
            L,
            1.0,
            Want::Exec(
                "template: __alert_Foo:1:115: executing \"__alert_Foo\" at <len (query \"up\" | first)>: error calling len: len of type template.sample",
            ),
        ),
        (
            "range sample",
            "{{ range (query \"up\" | first) }}{{ end }}",
            L,
            1.0,
            Want::Exec(
                "template: __alert_Foo:1:135: executing \"__alert_Foo\" at <first>: range can't iterate over {map[__name__:up instance:b:9090 job:prom] 1}",
            ),
        ),
        ("undefined var assign", "{{ $x := 1 }}{{ if true }}{{ $y := 2 }}{{ end }}{{ $x }}", L, 1.0, Want::Out("1")),
    ]);
}

#[test]
fn more() {
    check_alerts(&[
        (
            "with decl",
            "{{ with $x := $labels.job }}{{ $x }}{{ end }}|{{ if $y := $labels.pod }}{{ $y }}{{ end }}",
            L,
            1.0,
            Want::Out("node|api-7d9f"),
        ),
        ("range comma", "{{ range $i, $e := query \"x\" }}{{ if $i }},{{ end }}{{ $e.Value }}{{ end }}", L, 1.0, Want::Out("3,1.5,2")),
        (
            "printf final format",
            "{{ \"50%\" | printf }} {{ $labels.nope | or \"default\" }} {{ 0 | and 1 }}",
            L,
            1.0,
            Want::Out("50%!(NOVERB) default 0"),
        ),
        ("index no args", "{{ index $labels }}", &[("a", "b")], 1.0, Want::Out("map[a:b]")),
        (
            "slice 3 string",
            "{{ slice \"abc\" 1 2 3 }}",
            L,
            1.0,
            Want::Exec(
                "template: __alert_Foo:1:115: executing \"__alert_Foo\" at <slice \"abc\" 1 2 3>: error calling slice: cannot 3-index slice a string",
            ),
        ),
        ("eq nil", "{{ eq .Labels.nope nil }} {{ eq nil nil }}", L, 1.0, Want::Out("false true")),
        (
            "len value",
            "{{ len $value }}",
            L,
            1.0,
            Want::Exec("template: __alert_Foo:1:115: executing \"__alert_Foo\" at <len $value>: error calling len: len of type float64"),
        ),
        ("trim newline literal", "a\n{{- \"\n\" -}}\nb", L, 1.0, Want::Parse("template: __alert_Foo:2: unterminated quoted string")),
        ("template defined later", "{{ template \"later\" . }}{{ define \"later\" }}L={{ .Value }}{{ end }}", L, 4.0, Want::Out("L=4")),
        ("reReplaceAll pipe", "{{ $labels.instance | reReplaceAll \":.*\" \"\" }}", L, 1.0, Want::Out("node1.example.com")),
        ("printf map", "{{ printf \"%s\" $labels }}", &[("a", "b"), ("c", "d")], 1.0, Want::Out("map[a:b c:d]")),
        ("printf bad verb string", "{{ printf \"%.1f%%\" (humanizePercentage 0.5) }}", L, 1.0, Want::Out("%!f(string=5)%")),
        (
            "float literals",
            "{{ 1.0 }} {{ 1e100 }} {{ -0.0 }} {{ 0.1 }} {{ 100000.0 }} {{ 1000000.0 }}",
            L,
            1.0,
            Want::Out("1 1e+100 -0 0.1 100000 1e+06"),
        ),
        ("unicode label", "{{ $labels.ümlaut }}|{{ index $labels \"ümlaut\" }}", &[("ümlaut", "ja")], 1.0, Want::Out("ja|ja")),
        ("len pipe", "{{ .Labels.job | len }}", L, 1.0, Want::Out("4")),
        ("with query else", "{{ with query \"empty\" }}{{ . | first | value }}{{ else }}no data{{ end }}", L, 1.0, Want::Out("no data")),
        (
            "range query lines",
            "{{ range query \"up\" }}{{ .Labels.instance }}: {{ .Value | humanize }}{{ \"\\n\" }}{{ end }}",
            L,
            1.0,
            Want::Out("b:9090: 1\na:9100: 0\n"),
        ),
        (
            "chained funcs",
            "{{ \"2h\" | parseDuration | humanizeDuration }} {{ toUpper $labels.severity }} {{ $labels.instance | stripDomain }} {{ slice $labels.instance 0 5 }}",
            L,
            1.0,
            Want::Out("2h 0m 0s CRITICAL node1:9100 node1"),
        ),
        (
            "printf strings",
            "{{ printf \"%q|%+q|%x|% X|%#q|%-4q|\" \"é\t\" \"é\" \"é\" \"ab\" \"a`b\" \"x\" }}",
            L,
            1.0,
            Want::Out("\"é\\t\"|\"\\u00e9\"|c3a9|61 62|\"a`b\"|\"x\" |"),
        ),
        (
            "printf ints",
            "{{ printf \"%c|%U|%#U|%08b|%o|%O|%#x|%+d|% d|%x\" 233 233 233 5 64 64 -255 3 3 -1 }}",
            L,
            1.0,
            Want::Out("é|U+00E9|U+00E9 'é'|00000101|100|0o100|-0xff|+3| 3|-1"),
        ),
        (
            "printf floats",
            "{{ printf \"%08.3f|%+.2e|%G|%g|%.0f|%5.1f%%|%-8.2f|%+v\" -3.14159 12345.678 1e-10 100000.0 0.5 99.95 1.5 2.5 }}",
            L,
            1.0,
            Want::Out("-003.142|+1.23e+04|1E-10|100000|0|100.0%|1.50    |2.5"),
        ),
        (
            "printf sharp v",
            "{{ printf \"%#v|%#v|%#v|%#v|%#v\" $labels (args 1 \"a\" nil) 1.5 \"s\" true }}",
            &[("a", "b")],
            1.0,
            Want::Out(
                "map[string]string{\"a\":\"b\"}|map[string]interface {}{\"arg0\":1, \"arg1\":\"a\", \"arg2\":interface {}(nil)}|1.5|\"s\"|true",
            ),
        ),
        (
            "printf types more",
            "{{ printf \"%T %T %T %T %T\" (query \"x\") (query \"x\" | first) (toTime 0) (toDuration 1) (args) }}",
            L,
            1.0,
            Want::Out("template.queryResult *template.sample *time.Time *time.Duration map[string]interface {}"),
        ),
        (
            "printf struct",
            "{{ printf \"%v|%+v\" . . }}",
            &[("a", "b")],
            1.0,
            Want::Out(
                "{map[a:b] map[cluster:eu1] http://prom.example.com:9090/prefix 1}|{Labels:map[a:b] ExternalLabels:map[cluster:eu1] ExternalURL:http://prom.example.com:9090/prefix Value:1}",
            ),
        ),
        ("printf width args", "{{ printf \"%*s|%-*s|%.*f\" 5 \"a\" 4 \"b\" 2 3.14159 }}", L, 1.0, Want::Out("    a|b   |3.14")),
        (
            "print mixed",
            "{{ print \"a\" 1 2 \"b\" $value true nil }} {{ println 1 \"a\" }}",
            L,
            0.25,
            Want::Out("a1 2b0.25 true <nil> 1 a\n"),
        ),
        ("js unicode", "{{ js \"é \u{1}\" }}", L, 1.0, Want::Out("é\\u2028\\u0001")),
        (
            "urlquery multi",
            "{{ urlquery \"a\" 1 \"b c\" }} {{ urlquery $labels.instance }}",
            L,
            1.0,
            Want::Out("a1b+c node1.example.com%3A9100"),
        ),
        ("html multi", "{{ html 1 2 \"<\" 3 }}", L, 1.0, Want::Out("1 2&lt;3")),
        (
            "not of values",
            "{{ not $labels }} {{ not $value }} {{ not nil }} {{ not (query \"empty\") }}",
            L,
            0.0,
            Want::Out("false true true true"),
        ),
        (
            "and or values",
            "{{ and $labels.job 0 \"x\" }} {{ or \"\" 0 nil }} {{ or (query \"empty\") \"fallback\" }}",
            L,
            1.0,
            Want::Out("0 <no value> fallback"),
        ),
        (
            "compare strings ints",
            "{{ lt \"a\" \"b\" }} {{ ge 3 3 }} {{ le 1.5 1.5 }} {{ gt -1 -2 }} {{ ne 1 2 }} {{ eq \"\" \"\" }}",
            L,
            1.0,
            Want::Out("true true true true true true"),
        ),
        ("compare int vs float var", "{{ gt $value 0.0 }} {{ lt $value 1e3 }}", L, 5.0, Want::Out("true true")),
        (
            "nested templates",
            "{{ define \"a\" }}A({{ template \"b\" . }}){{ end }}{{ define \"b\" }}B{{ . }}{{ end }}{{ template \"a\" 1 }}",
            L,
            1.0,
            Want::Out("A(B1)"),
        ),
        (
            "block override",
            "{{ define \"b\" }}override{{ end }}{{ block \"b\" . }}default{{ end }}",
            L,
            1.0,
            Want::Parse("template: __alert_Foo:1: template: multiple definition of template \"b\""),
        ),
        (
            "variables in range body",
            "{{ range $i, $e := query \"x\" }}{{ $s := printf \"%d\" $i }}{{ $s }}{{ end }}",
            L,
            1.0,
            Want::Out("012"),
        ),
        ("dollar in range", "{{ range query \"up\" }}{{ $.Value }}{{ end }}", L, 9.0, Want::Out("99")),
        ("space in action", "{{   $labels.job   }}|{{$labels.job}}|{{\t$labels.job\n}}", L, 1.0, Want::Out("node|node|node")),
        ("newline in action", "{{ if\n  true\n}}yes{{\nend }}", L, 1.0, Want::Out("yes")),
    ]);
}

/// The data most plain-template cases run with.
fn data() -> Value {
    Value::Map(BTreeMap::from([
        ("name".to_string(), Value::Str("x".into())),
        ("n".to_string(), Value::Int(3)),
        ("f".to_string(), Value::Float(1.5)),
        ("ok".to_string(), Value::Bool(true)),
        ("nothing".to_string(), Value::Nil),
        ("list".to_string(), Value::List(vec![Value::Int(1), Value::Str("two".into()), Value::Float(3.5), Value::Nil])),
        ("m".to_string(), Value::Map(BTreeMap::from([("a".to_string(), Value::Int(1)), ("b".to_string(), Value::Str("B".into()))]))),
        ("sm".to_string(), Value::Map(BTreeMap::from([("k".to_string(), Value::Str("v".into()))]))),
        ("empty".to_string(), Value::Map(BTreeMap::from([]))),
    ]))
}

#[test]
fn plain_templates() {
    let runner = FakeRunner;
    let cases: Vec<(&str, &str, Value, Want)> = vec![
        (
            "plain fields",
            "{{ .name }} {{ .n }} {{ .f }} {{ .ok }} {{ .nothing }} {{ .list }} {{ .m }} {{ .sm }}",
            data(),
            Want::Out("x 3 1.5 true <no value> [1 two 3.5 <nil>] map[a:1 b:B] map[k:v]"),
        ),
        (
            "plain missing",
            "[{{ .missing }}] [{{ .m.missing }}] [{{ .sm.missing }}] [{{ .empty.missing }}] [{{ .missing.deeper }}]",
            data(),
            Want::Exec(
                "template: plain missing:1:91: executing \"plain missing\" at <.missing.deeper>: nil pointer evaluating interface {}.deeper",
            ),
        ),
        ("plain range list", "{{ range $i, $e := .list }}{{ $i }}={{ $e }} {{ end }}", data(), Want::Out("0=1 1=two 2=3.5 3=<no value> ")),
        (
            "plain index",
            "{{ index .list 1 }} {{ index .m \"a\" }} {{ index .m \"zz\" }} {{ len .list }}",
            data(),
            Want::Out("two 1 <no value> 4"),
        ),
        ("plain compare", "{{ eq .n 3 }} {{ lt .f 2.0 }} {{ eq .nothing nil }}", data(), Want::Out("true true true")),
        (
            "plain printf",
            "{{ printf \"%v %d %s\" .list .m .sm }}",
            data(),
            Want::Out("[1 two 3.5 <nil>] map[%!d(string=a):1 %!d(string=b):%!d(string=B)] map[k:v]"),
        ),
        ("plain nil data", "{{ . }} {{ .x }} {{ .x.y }}", Value::Nil, Want::Out("<no value> <no value> <no value>")),
        (
            "plain iface field",
            "{{ .m.a.x }}",
            data(),
            Want::Exec(
                "template: plain iface field:1:5: executing \"plain iface field\" at <.m.a.x>: can't evaluate field x in type interface {}",
            ),
        ),
        (
            "plain iface len",
            "{{ len .m.zz }}",
            data(),
            Want::Exec(
                "template: plain iface len:1:3: executing \"plain iface len\" at <len .m.zz>: error calling len: len of nil pointer",
            ),
        ),
        (
            "plain iface string param",
            "{{ toUpper .nothing }}",
            data(),
            Want::Exec(
                "template: plain iface string param:1:11: executing \"plain iface string param\" at <.nothing>: wrong type for value; expected string; got interface {}",
            ),
        ),
        (
            "plain range elem field",
            "{{ range .list }}{{ .x }}{{ end }}",
            data(),
            Want::Exec(
                "template: plain range elem field:1:20: executing \"plain range elem field\" at <.x>: can't evaluate field x in type interface {}",
            ),
        ),
        (
            "plain range var field",
            "{{ range $k, $e := .m }}{{ $e.q }}{{ end }}",
            data(),
            Want::Exec(
                "template: plain range var field:1:29: executing \"plain range var field\" at <$e.q>: can't evaluate field q in type interface {}",
            ),
        ),
        (
            "plain slice iface index",
            "{{ slice .list .m.a }}",
            data(),
            Want::Exec(
                "template: plain slice iface index:1:3: executing \"plain slice iface index\" at <slice .list .m.a>: error calling slice: cannot index slice/array with type interface {}",
            ),
        ),
        (
            "plain iface to queryResult",
            "{{ first .m.zz }}",
            data(),
            Want::Exec(
                "template: plain iface to queryResult:1:11: executing \"plain iface to queryResult\" at <.m.zz>: wrong type for value; expected template.queryResult; got interface {}",
            ),
        ),
        (
            "plain index byte",
            "{{ index .name 0 0 }}",
            data(),
            Want::Exec(
                "template: plain index byte:1:3: executing \"plain index byte\" at <index .name 0 0>: error calling index: can't index item of type uint8",
            ),
        ),
        (
            "plain list data",
            "{{ range . }}[{{ . }}]{{ end }} {{ index . 0 }}",
            Value::List(vec![Value::Int(1), Value::Int(2)]),
            Want::Out("[1][2] 1"),
        ),
    ];
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|(name, text, data, want)| {
            let got = Template::parse(name, text).and_then(|t| t.execute(data, &ctx(&runner)));
            matches(got, want).err().map(|e| format!("{name}: {e}"))
        })
        .collect();
    assert!(failures.is_empty(), "{} failing cases:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn check_parses_only() {
    assert!(check("Foo", "{{ $labels.instance }} {{ humanize $value }} {{ query \"up\" }}").is_ok());
    assert_eq!(
        check("Foo", "{{ humanise $value }}").map_err(|e| e.to_string()),
        Err("template: __alert_Foo:1: function \"humanise\" not defined".to_string())
    );
    assert_eq!(
        check("Foo", "{{ $lables.instance }}").map_err(|e| e.to_string()),
        Err("template: __alert_Foo:1: undefined variable \"$lables\"".to_string())
    );
    assert!(check("Foo", "{{ humanize \"abc\" }}").is_ok());
}
