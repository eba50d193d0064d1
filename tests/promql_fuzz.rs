//! Fuzzing the evaluator: random well-typed PromQL over random data
//! (NaN, ±Inf, stale markers, gaps) must never panic; errors are fine.

use std::panic::{AssertUnwindSafe, catch_unwind};

use hearth::model::{Labels, stale_nan};
use hearth::promql::{Engine, EngineOptions};
use hearth::tsdb::metrics::TsdbMetrics;
use hearth::tsdb::{Db, Options};
use proptest::prelude::*;

fn selector() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("a".to_string()),
        Just("b".to_string()),
        Just(r#"a{job="x"}"#.to_string()),
        Just(r#"{__name__=~"a|b"}"#.to_string()),
        Just(r#"b{job!="y"}"#.to_string()),
        Just("nonexistent".to_string()),
        Just(r#"h_bucket"#.to_string()),
    ]
}

fn scalar() -> impl Strategy<Value = String> {
    prop_oneof![
        (-3i32..4).prop_map(|n| n.to_string()),
        Just("0.5".to_string()),
        Just("NaN".to_string()),
        Just("Inf".to_string()),
        Just("time()".to_string()),
    ]
}

fn range() -> impl Strategy<Value = &'static str> {
    prop_oneof![Just("1m"), Just("5m"), Just("30s")]
}

/// Instant-vector expressions, nested up to a few levels.
fn vector() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        selector(),
        (selector(), range()).prop_map(|(s, r)| format!("{s} offset {r}")),
        selector().prop_map(|s| format!("{s} @ 60")),
    ];
    leaf.prop_recursive(4, 48, 4, |inner| {
        let range_fn = prop_oneof![
            Just("rate"),
            Just("irate"),
            Just("increase"),
            Just("delta"),
            Just("deriv"),
            Just("changes"),
            Just("resets"),
            Just("avg_over_time"),
            Just("max_over_time"),
            Just("stddev_over_time"),
            Just("last_over_time"),
            Just("present_over_time"),
            Just("count_over_time"),
        ];
        let fn1 = prop_oneof![
            Just("abs"),
            Just("ceil"),
            Just("ln"),
            Just("sqrt"),
            Just("sgn"),
            Just("timestamp"),
            Just("sort_desc"),
            Just("exp")
        ];
        let agg = prop_oneof![Just("sum"), Just("avg"), Just("min"), Just("max"), Just("count"), Just("stddev"), Just("group")];
        let op = prop_oneof![
            Just("+"),
            Just("-"),
            Just("*"),
            Just("/"),
            Just("%"),
            Just("^"),
            Just(">"),
            Just("<= bool"),
            Just("and"),
            Just("or"),
            Just("unless")
        ];
        prop_oneof![
            (range_fn.clone(), selector(), range()).prop_map(|(f, s, r)| format!("{f}({s}[{r}])")),
            (range_fn, inner.clone(), range()).prop_map(|(f, v, r)| format!("{f}(({v})[{r}:30s])")),
            (fn1, inner.clone()).prop_map(|(f, v)| format!("{f}({v})")),
            (agg.clone(), inner.clone()).prop_map(|(a, v)| format!("{a} by (job) ({v})")),
            (agg, inner.clone()).prop_map(|(a, v)| format!("{a} without (job) ({v})")),
            (scalar(), inner.clone()).prop_map(|(k, v)| format!("topk({k}, {v})")),
            (scalar(), inner.clone()).prop_map(|(q, v)| format!("quantile({q}, {v})")),
            (scalar(), inner.clone()).prop_map(|(k, v)| format!("limitk({k}, {v})")),
            (inner.clone(), op.clone(), inner.clone()).prop_map(|(l, o, r)| format!("({l}) {o} ({r})")),
            (inner.clone(), op.clone(), inner.clone()).prop_map(|(l, o, r)| format!("({l}) {o} on(job) ({r})")),
            (inner.clone(), op, scalar()).prop_map(|(l, o, s)| format!("({l}) {o} {s}")),
            inner.clone().prop_map(|v| format!(r#"label_replace({v}, "dst", "$1", "job", "(.*)")"#)),
            inner.clone().prop_map(|v| format!("clamp({v}, -1, 1)")),
            (scalar(), inner.clone()).prop_map(|(q, v)| format!("histogram_quantile({q}, {v})")),
            inner.clone().prop_map(|v| format!("absent({v})")),
            inner.clone().prop_map(|v| format!("count_values(\"value\", {v})")),
            inner.prop_map(|v| format!("-({v})")),
        ]
    })
}

fn value_strategy() -> impl Strategy<Value = Option<f64>> {
    prop_oneof![
        6 => (-1000i32..1000).prop_map(|v| Some(f64::from(v) / 4.0)),
        1 => Just(Some(f64::NAN)),
        1 => Just(Some(f64::INFINITY)),
        1 => Just(Some(f64::NEG_INFINITY)),
        1 => Just(Some(stale_nan())),
        1 => Just(None),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn evaluator_never_panics(
        data in proptest::collection::vec(proptest::collection::vec(value_strategy(), 24), 6),
        query in vector(),
        at in 0i64..400,
    ) {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = Db::open(dir.path(), Options { retention_ms: None, ..Options::default() }, TsdbMetrics::default()).expect("open");
        let names = [("a", "x"), ("a", "y"), ("b", "x"), ("b", "y"), ("h_bucket", "x"), ("h_bucket", "y")];
        let mut app = db.appender();
        for (i, values) in data.iter().enumerate() {
            let (name, job) = names[i];
            let le = (i % 3).to_string();
            let labels = Labels::from_pairs([("__name__", name), ("job", job), ("le", le.as_str())]);
            for (k, v) in values.iter().enumerate() {
                if let Some(v) = v {
                    let _ = app.append(None, &labels, k as i64 * 15_000, *v);
                }
            }
        }
        app.commit().expect("commit");
        let engine = Engine::new(EngineOptions::default());
        let q = db.querier();
        let t = at * 1000;
        let instant = catch_unwind(AssertUnwindSafe(|| engine.instant(&q, &query, t)));
        prop_assert!(instant.is_ok(), "instant query panicked: {query} at {t}");
        let range = catch_unwind(AssertUnwindSafe(|| engine.range(&q, &query, 0, 400_000, 15_000)));
        prop_assert!(range.is_ok(), "range query panicked: {query}");
    }
}

/// The generator must produce queries the parser accepts, or the fuzz test
/// above would only exercise parse errors.
#[test]
fn generated_queries_are_mostly_valid() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let strategy = vector();
    let mut ok = 0;
    let total = 300;
    for _ in 0..total {
        let q = strategy.new_tree(&mut runner).expect("tree").current();
        if promql_parser::parser::parse(&q).is_ok() {
            ok += 1;
        }
    }
    assert!(ok * 10 >= total * 8, "only {ok}/{total} generated queries parse");
}
