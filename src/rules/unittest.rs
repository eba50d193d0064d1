//! `hearth test rules`: promtool's rule unit-test format. Each test group
//! loads its input series into a fresh storage, evaluates the rule groups
//! from time 0 every `evaluation_interval` up to the last time a test asks
//! about, and compares the firing alerts and PromQL results with the
//! expected ones. Output and exit status follow `promtool test rules`.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use super::alerting::AlertState;
use super::expand::TemplateEnv;
use super::group::{EvalEnv, Group, RuleKind};
use super::metrics::RuleMetrics;
use super::query::QueryContext;
use crate::config::{de_duration, de_opt_duration, format_duration};
use crate::model::Labels;
use crate::promql::gofmt::{format_float_e, go_quote};
use crate::promql::promqltest::parse_series;
use crate::promql::{Engine, EngineOptions};
use crate::tsdb::metrics::TsdbMetrics;
use crate::tsdb::{Db, Options};

/// Relative tolerance of value comparisons (promtool's default).
const EPSILON: f64 = 1e-6;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TestFile {
    #[serde(default)]
    rule_files: Vec<String>,
    #[serde(default, deserialize_with = "de_opt_duration")]
    evaluation_interval: Option<Duration>,
    #[serde(default)]
    group_eval_order: Vec<String>,
    #[serde(default)]
    tests: Vec<TestGroup>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TestGroup {
    #[serde(default, deserialize_with = "de_opt_duration")]
    interval: Option<Duration>,
    #[serde(default)]
    input_series: Vec<InputSeries>,
    #[serde(default)]
    alert_rule_test: Vec<AlertTest>,
    #[serde(default)]
    promql_expr_test: Vec<ExprTest>,
    #[serde(default)]
    external_labels: BTreeMap<String, String>,
    #[serde(default)]
    external_url: String,
    #[serde(default)]
    name: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InputSeries {
    series: String,
    #[serde(default)]
    values: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AlertTest {
    #[serde(deserialize_with = "de_duration")]
    eval_time: Duration,
    alertname: String,
    #[serde(default)]
    exp_alerts: Vec<ExpAlert>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpAlert {
    #[serde(default)]
    exp_labels: BTreeMap<String, String>,
    #[serde(default)]
    exp_annotations: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExprTest {
    expr: String,
    #[serde(deserialize_with = "de_duration")]
    eval_time: Duration,
    #[serde(default)]
    exp_samples: Vec<ExpSample>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpSample {
    #[serde(default)]
    labels: String,
    value: f64,
}

/// An alert as compared: labels and annotations.
type LabelsAndAnnotations = (Labels, Labels);

/// Runs the test files; writes promtool's report (progress to `out`,
/// failures to `err`, as promtool splits them). Returns whether every test
/// passed.
pub fn run_files(files: &[PathBuf], out: &mut dyn Write, err: &mut dyn Write) -> io::Result<bool> {
    let mut ok = true;
    for f in files {
        writeln!(out, "Unit Testing:  {}", f.display())?;
        out.flush()?;
        let errors = run_file(f);
        if errors.is_empty() {
            writeln!(out, "  SUCCESS")?;
        } else {
            ok = false;
            writeln!(err, "  FAILED:")?;
            for e in errors {
                writeln!(err, "{}", indent(&e, "    "))?;
            }
            err.flush()?;
            writeln!(out)?;
            writeln!(out)?;
        }
        writeln!(out)?;
    }
    Ok(ok)
}

fn indent(text: &str, by: &str) -> String {
    text.lines().map(|l| format!("{by}{l}")).collect::<Vec<_>>().join("\n")
}

/// The problems found in one test file (empty: it passed).
fn run_file(path: &Path) -> Vec<String> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => return vec![format!("{}: {e}", path.display())],
    };
    let file: TestFile = match crate::config::yaml::from_str(&text) {
        Ok(f) => f,
        Err(e) => return vec![format!("{}: {e}", path.display())],
    };
    let base = path.parent().unwrap_or(Path::new("."));
    let eval_interval = file.evaluation_interval.unwrap_or(Duration::from_secs(60));
    let mut groups = Vec::new();
    for pattern in &file.rule_files {
        let full = if Path::new(pattern).is_absolute() { PathBuf::from(pattern) } else { base.join(pattern) };
        let found = crate::discovery::glob::expand(&full.to_string_lossy());
        if found.is_empty() {
            return vec![format!("{}: no rule file matches {pattern:?}", path.display())];
        }
        for rf in found {
            match super::load_rule_file(&rf) {
                Ok(f) => groups.extend(f.groups.into_iter().map(|g| (rf.display().to_string(), g))),
                Err(errs) => return errs.iter().map(ToString::to_string).collect(),
            }
        }
    }
    if !file.group_eval_order.is_empty() {
        let mut ordered = Vec::with_capacity(groups.len());
        for name in &file.group_eval_order {
            match groups.iter().position(|(_, g)| &g.name == name) {
                Some(i) => ordered.push(groups.remove(i)),
                None => return vec![format!("group {name:?} in group_eval_order not found")],
            }
        }
        if let Some((_, g)) = groups.first() {
            return vec![format!("group {:?} is missing from group_eval_order", g.name)];
        }
        groups = ordered;
    }
    let mut errors = Vec::new();
    for (i, tg) in file.tests.iter().enumerate() {
        let name = if tg.name.is_empty() { format!("test group {}", i + 1) } else { tg.name.clone() };
        if let Err(errs) = run_group(tg, &groups, eval_interval) {
            errors.extend(errs.into_iter().map(|e| if tg.name.is_empty() { e } else { format!("name: {name},\n{e}") }));
        }
    }
    errors
}

/// Runs one test group on a fresh storage.
fn run_group(tg: &TestGroup, groups: &[(String, super::RuleGroup)], eval_interval: Duration) -> Result<(), Vec<String>> {
    let dir = tempdir().map_err(|e| vec![e])?;
    let result = run_group_in(tg, groups, eval_interval, &dir);
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn run_group_in(tg: &TestGroup, groups: &[(String, super::RuleGroup)], eval_interval: Duration, dir: &Path) -> Result<(), Vec<String>> {
    let db = Arc::new(Db::open(dir, Options::default(), TsdbMetrics::default()).map_err(|e| vec![format!("opening storage: {e}")])?);
    let interval = tg.interval.unwrap_or(eval_interval).as_millis().max(1) as i64;
    load_series(&db, &tg.input_series, interval).map_err(|e| vec![e])?;

    let env = EvalEnv {
        engine: Arc::new(Engine::new(EngineOptions::default())),
        db: db.clone(),
        templates: TemplateEnv { external_labels: tg.external_labels.clone(), external_url: tg.external_url.clone() },
        resend_delay: Duration::from_secs(60),
        metrics: RuleMetrics::default(),
    };
    let groups: Vec<Group> = groups.iter().map(|(file, g)| Group::new(file, g, eval_interval, Duration::ZERO, true)).collect();
    let step = eval_interval.as_millis().max(1) as i64;
    let ms = |d: Duration| d.as_millis() as i64;
    let mut alert_times: Vec<i64> = tg.alert_rule_test.iter().map(|t| ms(t.eval_time)).collect();
    alert_times.sort_unstable();
    alert_times.dedup();
    let last = alert_times.iter().copied().chain(tg.promql_expr_test.iter().map(|t| ms(t.eval_time))).max().unwrap_or(0);

    // Firing alerts per (eval time, alert name), as of the last evaluation at or before that time.
    let mut seen: BTreeMap<(i64, String), Vec<LabelsAndAnnotations>> = BTreeMap::new();
    let mut next_alert = 0;
    let mut ts = 0;
    while ts <= last {
        for g in &groups {
            g.eval(&env, ts);
        }
        while next_alert < alert_times.len() && alert_times[next_alert] >= ts && alert_times[next_alert] < ts + step {
            for g in &groups {
                for entry in &g.rules {
                    if let RuleKind::Alerting(r) = &entry.rule {
                        let firing = r.alerts().into_iter().filter(|a| a.state == AlertState::Firing).map(|a| (a.labels, a.annotations));
                        seen.entry((alert_times[next_alert], r.name.clone())).or_default().extend(firing);
                    }
                }
            }
            next_alert += 1;
        }
        ts += step;
    }

    let mut errors = Vec::new();
    for t in &tg.alert_rule_test {
        let mut want: Vec<LabelsAndAnnotations> = t
            .exp_alerts
            .iter()
            .map(|a| {
                let mut labels = a.exp_labels.clone();
                labels.insert("alertname".into(), t.alertname.clone());
                (Labels::from_pairs(labels), Labels::from_pairs(a.exp_annotations.clone()))
            })
            .collect();
        let mut got = seen.get(&(ms(t.eval_time), t.alertname.clone())).cloned().unwrap_or_default();
        want.sort();
        got.sort();
        if want != got {
            errors.push(format!(
                "alertname: {}, time: {}, \n    exp:{}, \n    got:{}",
                t.alertname,
                format_duration(t.eval_time),
                alerts_text(&want),
                alerts_text(&got)
            ));
        }
    }
    let querier = db.querier();
    let q = QueryContext { engine: &env.engine, querier: &querier };
    for t in &tg.promql_expr_test {
        if let Err(e) = check_expr(&q, t) {
            errors.push(format!("expr: {}, time: {},\n{e}", go_quote(&t.expr), format_duration(t.eval_time)));
        }
    }
    if errors.is_empty() { Ok(()) } else { Err(errors) }
}

/// Loads input series: value `i` at `i * interval`, `_` skipped.
fn load_series(db: &Db, series: &[InputSeries], interval: i64) -> Result<(), String> {
    let mut app = db.appender();
    for s in series {
        let (labels, values) =
            parse_series(&format!("{} {}", s.series, s.values)).map_err(|e| format!("input series {:?}: {e}", s.series))?;
        for (i, v) in values.iter().enumerate() {
            if let Some(v) = v {
                app.append(None, &labels, i as i64 * interval, *v).map_err(|e| format!("input series {:?}: {e}", s.series))?;
            }
        }
    }
    app.commit().map_err(|e| format!("loading input series: {e}"))?;
    Ok(())
}

/// Compares an expression's result with the expected samples (any order).
fn check_expr(q: &QueryContext<'_>, t: &ExprTest) -> Result<(), String> {
    let got = q.vector(&t.expr, t.eval_time.as_millis() as i64).map_err(|e| format!("    error: {e}"))?;
    let mut got: Vec<(Labels, f64)> = got.into_iter().map(|s| (s.metric, s.v)).collect();
    let mut want = Vec::with_capacity(t.exp_samples.len());
    for s in &t.exp_samples {
        let labels = if s.labels.trim().is_empty() {
            Labels::empty()
        } else {
            parse_series(&s.labels).map_err(|e| format!("    expected labels {:?}: {e}", s.labels))?.0
        };
        want.push((labels, s.value));
    }
    got.sort_by(|a, b| a.0.cmp(&b.0));
    want.sort_by(|a, b| a.0.cmp(&b.0));
    let same =
        got.len() == want.len() && got.iter().zip(&want).all(|(g, w)| g.0 == w.0 && crate::promql::float::almost_equal(g.1, w.1, EPSILON));
    if same {
        return Ok(());
    }
    Err(format!("    exp: {}\n    got: {}", samples_text(&want), samples_text(&got)))
}

/// promtool's rendering of samples: Go's `labels.String()` and `%E`-like values.
fn samples_text(v: &[(Labels, f64)]) -> String {
    if v.is_empty() {
        return "nil".into();
    }
    v.iter().map(|(l, x)| format!("{} {}", go_labels(l), format_float_e(*x, true))).collect::<Vec<_>>().join(", ")
}

/// Go's `labels.Labels.String()`: every label, values quoted.
fn go_labels(l: &Labels) -> String {
    let pairs: Vec<String> = l.iter().map(|l| format!("{}={}", l.name, go_quote(&l.value))).collect();
    format!("{{{}}}", pairs.join(", "))
}

fn alerts_text(v: &[LabelsAndAnnotations]) -> String {
    if v.is_empty() {
        return "[]".into();
    }
    let mut s = String::from("[\n");
    for (i, (l, a)) in v.iter().enumerate() {
        s.push_str(&format!("        {i}:\n          Labels:{}\n          Annotations:{}\n", go_labels(l), go_labels(a)));
    }
    s.push_str("        ]");
    s
}

/// A fresh private directory for one test group's storage.
fn tempdir() -> Result<PathBuf, String> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let dir = std::env::temp_dir().join(format!("hearth-test-rules-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed)));
    std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    Ok(dir)
}
