//! The web UI in a real browser. Starts `hearth server` on 127.0.0.1 with a
//! configuration that scrapes itself (job `hearth`), one target on a closed
//! port (job `broken`, whose pool also drops a discovered target by
//! relabeling) and a rules file with a firing, a pending and an inactive
//! alert; then drives headless Chromium through chromedriver (W3C
//! WebDriver, tests/support/webdriver.rs) over every page and compares what
//! the pages show with what the HTTP API answers:
//! - query page: the graph's plotted points equal /api/v1/query_range for
//!   the same expression, start, end and step; the copied URL reproduces
//!   the view in a new tab; the table tab shows the instant result; an
//!   invalid expression shows the API's error inline; history is kept;
//! - targets: the down target is red (`health-down`, computed color) with
//!   its last error, the self target green;
//! - alerts, rules, status (build, config, TSDB top-10), service discovery.
//!
//! Needs Debian's `chromium` and `chromium-driver` (tests/support/install_peers.sh
//! installs them; CI runs it). Without them, and when they cannot be
//! installed, the browser test says SKIPPED and passes.

#[allow(dead_code)]
mod support;
#[path = "support/webdriver.rs"]
mod webdriver;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use support::http;
use support::procs::{Proc, free_ports, wait_for};
use webdriver::{Browser, ENTER};

const WAIT: Duration = Duration::from_secs(30);

/// A running `hearth server` and what the test configured it with.
struct Server {
    addr: String,
    /// The port of the `broken` target, on which nothing listens.
    closed_port: u16,
    proc: Proc,
    dir: tempfile::TempDir,
}

impl Server {
    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn api(&self, path: &str) -> Value {
        self.proc.check_alive().unwrap_or_else(|e| panic!("{e}"));
        http::api_get(&self.addr, path).unwrap_or_else(|e| panic!("{e}"))
    }
}

const RULES: &str = "groups:
- name: ui-test
  interval: 1s
  rules:
  - alert: AlwaysFiring
    expr: vector(1)
    labels: {severity: page}
    annotations: {summary: always firing}
  - alert: SlowToFire
    expr: vector(1)
    for: 1h
  - alert: NeverFires
    expr: vector(1) == 2
  - record: job:up:sum
    expr: sum by (job) (up)
";

/// Starts `hearth server` with `config` and `extra` flags and waits until it
/// is ready (asking with `headers`).
fn spawn_hearth(dir: &Path, config: &Path, port: u16, extra: &[String], headers: &[(&str, &str)]) -> Proc {
    let mut c = Command::new(env!("CARGO_BIN_EXE_hearth"));
    c.arg("server")
        .arg(format!("--config.file={}", config.display()))
        .arg(format!("--storage.tsdb.path={}", dir.join("data").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .args(extra);
    let proc = Proc::spawn("hearth", c, &dir.join("hearth.log"));
    let addr = format!("127.0.0.1:{port}");
    wait_for("hearth ready", WAIT, || {
        proc.check_alive()?;
        http::get(&addr, "/-/ready", headers).and_then(|r| if r.status == 200 { Ok(()) } else { Err(format!("status {}", r.status)) })
    });
    proc
}

/// Starts the server and waits until both targets were scraped six times
/// and the alert fires.
fn start_server() -> Server {
    let dir = tempfile::tempdir().expect("tempdir");
    let ports = free_ports(2);
    let (port, closed_port) = (ports[0], ports[1]);
    let rules = dir.path().join("rules.yml");
    std::fs::write(&rules, RULES).expect("rules");
    let config = dir.path().join("hearth.yml");
    std::fs::write(
        &config,
        format!(
            "global: {{scrape_interval: 1s, evaluation_interval: 1s}}
rule_files: [{rules:?}]
scrape_configs:
- job_name: hearth
  static_configs: [{{targets: ['127.0.0.1:{port}']}}]
- job_name: broken
  static_configs: [{{targets: ['127.0.0.1:{closed_port}', '127.0.0.1:9'], labels: {{team: web}}}}]
  relabel_configs:
  - {{source_labels: [__address__], regex: '127\\.0\\.0\\.1:9', action: drop}}
  - {{target_label: env, replacement: test}}
",
            rules = rules.display().to_string()
        ),
    )
    .expect("config");
    let proc = spawn_hearth(dir.path(), &config, port, &[], &[]);
    let addr = format!("127.0.0.1:{port}");
    wait_for("six scrapes of both targets and a firing alert", WAIT, || {
        proc.check_alive()?;
        let scrapes = http::api_get(&addr, "/api/v1/query?query=count_over_time(up%5B1m%5D)%20%3E%3D%206")?;
        let n = scrapes["result"].as_array().map_or(0, Vec::len);
        let alerts = http::api_get(&addr, "/api/v1/alerts")?;
        let firing = alerts["alerts"].as_array().is_some_and(|a| a.iter().any(|a| a["state"] == "firing"));
        if n == 2 && firing { Ok(()) } else { Err(format!("{n} targets scraped 6 times; alerts: {alerts}")) }
    });
    Server { addr, closed_port, proc, dir }
}

/// Percent-encodes a query parameter value.
fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Unix seconds as "YYYY-MM-DD HH:MM:SS" in UTC, the UI's time format.
fn utc(secs: i64) -> String {
    let (days, sod) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = hearth::model::time::civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}", sod / 3600, sod % 3600 / 60, sod % 60)
}

/// "rgb(r, g, b)" or "rgba(r, g, b, a)" as (r, g, b).
fn rgb(css: &str) -> (u32, u32, u32) {
    let inner = css.split_once('(').and_then(|(_, r)| r.strip_suffix(')')).unwrap_or_else(|| panic!("not a color: {css:?}"));
    let n: Vec<u32> = inner.split(',').take(3).map(|x| x.trim().parse().unwrap_or_else(|_| panic!("not a color: {css:?}"))).collect();
    (n[0], n[1], n[2])
}

fn is_red(c: (u32, u32, u32)) -> bool {
    c.0 >= 150 && c.1 <= 100 && c.2 <= 100
}

fn is_green(c: (u32, u32, u32)) -> bool {
    c.1 >= 100 && c.1 > c.0 + 40 && c.1 > c.2 + 40
}

/// Waits until the page's renderer finished (`main[data-state=ready]`).
fn wait_page(b: &Browser, what: &str) {
    b.wait(what, WAIT, |b| {
        let state = b.exec("return document.getElementById('main').dataset.state", vec![])?;
        match state.as_str() {
            Some("ready") => Ok(()),
            Some("error") => panic!("{what}: the page shows an error: {}", b.text(&b.find("main")?)?),
            other => Err(format!("state {other:?}")),
        }
    });
}

/// What the graph shows: the range parameters it queried and each series'
/// labels, points and path.
#[derive(Debug, PartialEq)]
struct Plot {
    expr: String,
    start: String,
    end: String,
    step: String,
    series: BTreeMap<String, (Value, String)>,
}

const READ_PLOT: &str = "
const wrap = document.getElementById('graph-wrap');
const svg = document.getElementById('graph');
if (!wrap || wrap.dataset.state !== 'ready' || !svg) return null;
return {expr: svg.dataset.expr, start: svg.dataset.start, end: svg.dataset.end, step: svg.dataset.step,
  series: [...svg.querySelectorAll('path.series')].map(p => ({labels: p.dataset.series, points: JSON.parse(p.dataset.points), d: p.getAttribute('d')}))};
";

fn read_plot(b: &Browser, expr: &str) -> Plot {
    b.wait("the graph of the query", WAIT, |b| {
        let v = b.exec(READ_PLOT, vec![])?;
        if v.is_null() || v["expr"] != expr {
            return Err(format!("not drawn yet: {v}"));
        }
        let s = |k: &str| v[k].as_str().unwrap_or_default().to_string();
        let mut series = BTreeMap::new();
        for p in v["series"].as_array().into_iter().flatten() {
            let labels: Value = serde_json::from_str(p["labels"].as_str().unwrap_or("null")).map_err(|e| e.to_string())?;
            series.insert(labels.to_string(), (p["points"].clone(), p["d"].as_str().unwrap_or_default().to_string()));
        }
        Ok(Plot { expr: s("expr"), start: s("start"), end: s("end"), step: s("step"), series })
    })
}

/// The vertices of an SVG path made of M and L commands.
fn vertices(d: &str) -> Vec<(f64, f64)> {
    d.split(['M', 'L'])
        .filter(|s| !s.is_empty())
        .map(|p| {
            let (x, y) = p.trim().split_once(' ').unwrap_or_else(|| panic!("bad path segment {p:?} in {d:?}"));
            (x.parse().expect("x"), y.parse().expect("y"))
        })
        .collect()
}

fn query_page(b: &Browser, s: &Server) {
    let expr = "prometheus_tsdb_head_samples_appended_total";
    b.goto(&s.url("/graph")).expect("open the query page");
    wait_page(b, "the query page");
    b.click(&b.find("#tab-graph").expect("graph tab")).expect("choose the graph tab");
    let range = b.find("#range-input").expect("range input");
    b.clear(&range).expect("clear range");
    b.send_keys(&range, "2m").expect("type range");
    // An end in the past whose samples are all in, so the API answers the same later.
    let now = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_secs() as i64;
    let end_secs = now - 2;
    let end = b.find("#end-input").expect("end input");
    b.send_keys(&end, &utc(end_secs)).expect("type end");
    let expr_box = b.find("#expr").expect("expression box");
    b.send_keys(&expr_box, &format!("{expr}{ENTER}")).expect("type the expression and press Enter");

    let plot = read_plot(b, expr);
    assert_eq!(plot.end, end_secs.to_string(), "end time typed into the page");
    assert_eq!(plot.start, (end_secs - 120).to_string(), "start = end - range");
    assert_eq!(plot.step, "1", "auto step for 2m is max(120 s / 250, 1 s)");
    let api = s.api(&format!("/api/v1/query_range?query={}&start={}&end={}&step={}", enc(expr), plot.start, plot.end, plot.step));
    let want: BTreeMap<String, Value> =
        api["result"].as_array().expect("matrix").iter().map(|r| (r["metric"].to_string(), r["values"].clone())).collect();
    let got: BTreeMap<String, Value> = plot.series.iter().map(|(k, (points, _))| (k.clone(), points.clone())).collect();
    assert_eq!(got, want, "plotted points differ from /api/v1/query_range");
    assert_eq!(got.len(), 1, "one series: {got:?}");
    let (points, d) = plot.series.values().next().expect("a series");
    let points = points.as_array().expect("points");
    assert!(points.len() >= 3, "a line needs points: {points:?}");
    // Drawn as one line through every point, left to right, rising with the counter.
    let v = vertices(d);
    assert_eq!(v.len(), points.len(), "one vertex per point: {d}");
    for (w, p) in v.windows(2).zip(points.windows(2)) {
        assert!(w[1].0 > w[0].0, "x must grow with time: {d}");
        let (a, c): (f64, f64) =
            (p[0][1].as_str().unwrap_or("").parse().expect("value"), p[1][1].as_str().unwrap_or("").parse().expect("value"));
        assert_eq!(w[1].1 < w[0].1, c > a, "y must follow the values {a} -> {c}: {d}");
    }
    let legend = b.text(&b.find("ul.legend").expect("legend")).expect("legend text");
    assert!(legend.contains(&format!("{expr}{{instance=\"{}\", job=\"hearth\"}}", s.addr)), "legend: {legend}");

    // The URL reproduces the view in a new tab: same expression, same points.
    let url = b.current_url().expect("url");
    assert!(url.contains("g0.expr=prometheus_tsdb_head_samples_appended_total") && url.contains("g0.tab=0"), "{url}");
    b.new_tab().expect("new tab");
    b.goto(&url).expect("open the copied URL");
    let again = read_plot(b, expr);
    assert_eq!(again, plot, "the copied URL shows another graph");
    let typed = b.exec("return document.getElementById('expr').value", vec![]).expect("expression");
    assert_eq!(typed, json!(expr));

    // Hovering a point shows its time, value and labels.
    let tip = b
        .exec(
            "const o = document.querySelector('#graph .overlay').getBoundingClientRect();
             document.querySelector('#graph .overlay').dispatchEvent(new MouseEvent('mousemove', {clientX: o.right - 2, clientY: o.top + o.height / 2, bubbles: true}));
             const t = document.querySelector('.tooltip'); return t.hidden ? null : t.textContent;",
            vec![],
        )
        .expect("hover");
    let last = &points[points.len() - 1];
    let tip = tip.as_str().unwrap_or_else(|| panic!("no tooltip: {tip}"));
    assert!(tip.contains(last[1].as_str().expect("value")) && tip.contains("job=\"hearth\"") && tip.contains("UTC"), "tooltip: {tip}");

    // Stacking is a view setting: kept in the URL, no new query.
    b.click(&b.find("#stacked").expect("stacked")).expect("stack");
    b.wait("the stacked graph", WAIT, |b| {
        let v = b.exec("return document.getElementById('graph').dataset.stacked", vec![])?;
        if v == "1" && b.current_url()?.contains("g0.stacked=1") { Ok(()) } else { Err(format!("{v}")) }
    });
    // A click on a legend entry hides its line.
    b.click(&b.find("ul.legend li").expect("legend entry")).expect("hide");
    let hidden = b.exec("return document.querySelector('#graph path.series').classList.contains('hidden')", vec![]).expect("class");
    assert_eq!(hidden, json!(true));
    graph_drawing(b);

    // Table tab: the instant result of `up`, one row per target.
    let expr_box = b.find("#expr").expect("expression box");
    b.click(&b.find("#tab-table").expect("table tab")).expect("choose the table tab");
    b.clear(&expr_box).expect("clear");
    b.send_keys(&expr_box, "up").expect("type");
    b.click(&b.find("#execute").expect("execute")).expect("execute");
    let rows = b.wait("the table of `up`", WAIT, |b| {
        let v = b.exec(
            "const t = document.getElementById('table-result');
             if (t.dataset.state !== 'ready' || !document.querySelector('#table-result table[data-time]')) return null;
             return [...t.querySelectorAll('tr.sample')].map(r => [r.cells[0].textContent, r.cells[1].textContent]);",
            vec![],
        )?;
        let rows: Vec<(String, String)> = serde_json::from_value(v.clone()).map_err(|e| format!("{e}: {v}"))?;
        if rows.len() == 2 { Ok(rows) } else { Err(format!("rows {rows:?}")) }
    });
    let up = format!("up{{instance=\"{}\", job=\"hearth\"}}", s.addr);
    let down = format!("up{{env=\"test\", instance=\"127.0.0.1:{}\", job=\"broken\", team=\"web\"}}", s.closed_port);
    assert!(rows.contains(&(up.clone(), "1".into())) && rows.contains(&(down.clone(), "0".into())), "{rows:?}, want {up} 1 and {down} 0");
    assert!(b.current_url().expect("url").contains("g0.tab=1"), "the table tab is in the URL");

    // An invalid expression: the API's error, inline under the box.
    let bad = "sum(rate(up[1m])";
    let r = http::get(&s.addr, &format!("/api/v1/query?query={}", enc(bad)), &[]).expect("query");
    let api_err: Value = serde_json::from_str(r.text().expect("text")).expect("json");
    let api_err = api_err["error"].as_str().expect("an error").to_string();
    b.clear(&expr_box).expect("clear");
    b.send_keys(&expr_box, &format!("{bad}{ENTER}")).expect("type");
    let shown = b.wait("the error under the expression", WAIT, |b| {
        let el = b.find("#query-error")?;
        let t = b.text(&el)?;
        if t.is_empty() { Err("no error shown".into()) } else { Ok(t) }
    });
    assert!(shown.contains(&api_err), "shown {shown:?}, the API said {api_err:?}");
    assert!(is_red(rgb(&b.css(&b.find("#query-error").expect("error"), "color").expect("color"))), "errors are red");

    // History: newest first, and a click puts an expression back.
    let history = b.exec("return JSON.parse(localStorage.getItem('hearth.history'))", vec![]).expect("history");
    assert_eq!(history, json!([bad, "up", expr]));
    b.click(&b.find("#history summary").expect("history")).expect("open history");
    b.click(&b.find("#history li:nth-child(3) .history-item").expect("an entry")).expect("reuse");
    b.wait("the reused expression", WAIT, |b| {
        let v = b.exec("return document.getElementById('expr').value", vec![])?;
        if v == json!(expr) { Ok(()) } else { Err(format!("{v}")) }
    });
}

const DRAW_SYNTHETIC: &str = "
const wrap = document.createElement('div');
document.body.appendChild(wrap);
const series = [
  {metric: {__name__: 'a'}, values: [[100, '2'], [101, '2'], [103, '2'], [104, '2'], [106, '2']]},
  {metric: {__name__: 'b', x: 'y'}, values: [[100, '1'], [101, 'NaN'], [102, '1'], [103, '1'], [104, '1'], [105, '1'], [106, '1']]},
];
const draw = (stacked) => {
  H.drawGraph(wrap, series, {startMs: 100000, endMs: 106000, stepMs: 1000, stacked, expr: 'x', params: {start: '100', end: '106', step: '1'}});
  return {paths: [...wrap.querySelectorAll('path.series')].map(p => p.getAttribute('d')),
    dots: wrap.querySelectorAll('circle[data-index]').length, areas: wrap.querySelectorAll('path.area').length,
    legend: [...wrap.querySelectorAll('ul.legend li')].map(l => l.textContent)};
};
const r = {lines: draw(false), stacked: draw(true)};
wrap.remove();
return r;
";

/// The graph's drawing rules on made-up data: gaps where steps are missing
/// or values are not numbers, single points as dots, stacking.
fn graph_drawing(b: &Browser) {
    let r = b.exec(DRAW_SYNTHETIC, vec![]).expect("draw");
    let paths = |mode: &str| -> Vec<String> { serde_json::from_value(r[mode]["paths"].clone()).expect("paths") };
    let (lines, stacked) = (paths("lines"), paths("stacked"));
    // a: runs 100-101, 103-104 and 106 alone; b: 100 alone, then 102-106.
    assert_eq!(lines.iter().map(|d| d.matches('M').count()).collect::<Vec<_>>(), [3, 2], "{lines:?}");
    assert_eq!(r["lines"]["dots"], 2, "isolated points are dots");
    assert_eq!(r["lines"]["areas"], 0);
    assert_eq!(r["stacked"]["areas"], 2);
    assert_eq!(r["lines"]["legend"], json!(["a", "b{x=\"y\"}"]));
    let y_at = |d: &str, i: usize| vertices(d)[i].1;
    // At t=103 (a's 3rd vertex, b's 3rd): unstacked b (1) is below a (2); stacked b (1+2) is above it.
    assert!(y_at(&lines[1], 2) > y_at(&lines[0], 2), "{lines:?}");
    assert!(y_at(&stacked[1], 2) < y_at(&stacked[0], 2), "{stacked:?}");
    assert_eq!(vertices(&lines[0])[2].0, vertices(&lines[1])[2].0, "same time, same x");
}

fn targets_page(b: &Browser, s: &Server) {
    b.goto(&s.url("/targets")).expect("open targets");
    wait_page(b, "the targets page");
    let api = s.api("/api/v1/targets?state=active");
    let down_url = format!("http://127.0.0.1:{}/metrics", s.closed_port);
    let api_down =
        api["activeTargets"].as_array().expect("targets").iter().find(|t| t["scrapeUrl"] == down_url.as_str()).expect("down target");
    assert_eq!(api_down["health"], "down");

    let row = b.find(&format!("tr.target[data-url='{down_url}']")).expect("the down target's row");
    let class = b.exec("return arguments[0].className", vec![row.arg()]).expect("class");
    assert!(class.as_str().unwrap_or("").split(' ').any(|c| c == "health-down"), "class {class}");
    let badge = b.find(&format!("tr.target[data-url='{down_url}'] .health")).expect("health badge");
    assert_eq!(b.text(&badge).expect("text"), "DOWN");
    let color = b.css(&badge, "color").expect("color");
    assert!(is_red(rgb(&color)), "down target's color {color} is not red");
    let err = b.text(&b.find(&format!("tr.target[data-url='{down_url}'] td.last-error")).expect("error cell")).expect("text");
    assert_eq!(err, api_down["lastError"].as_str().expect("lastError"));
    assert!(!err.is_empty());
    let labels = b.text(&b.find(&format!("tr.target[data-url='{down_url}'] td.target-labels > .labels")).expect("labels")).expect("text");
    assert!(
        labels.contains("env=test") && labels.contains("team=web") && !labels.contains("__address__"),
        "labels after relabeling: {labels}"
    );
    let before = b
        .exec(&format!("return document.querySelector(\"tr.target[data-url='{down_url}'] details.discovered\").textContent"), vec![])
        .expect("discovered");
    let before = before.as_str().unwrap_or("");
    assert!(before.contains(&format!("__address__=127.0.0.1:{}", s.closed_port)) && !before.contains("env=test"), "before: {before}");
    let pool = b.text(&b.find("section.pool[data-pool='broken'] summary").expect("pool")).expect("text");
    assert!(pool.contains("0/1 up"), "pool header {pool}");

    let self_url = format!("http://{}/metrics", s.addr);
    let up = b.find(&format!("tr.target[data-url='{self_url}'] .health")).expect("self target badge");
    assert_eq!(b.text(&up).expect("text"), "UP");
    let color = b.css(&up, "color").expect("color");
    assert!(is_green(rgb(&color)), "up target's color {color} is not green");
    let scraped = b.text(&b.find(&format!("tr.target[data-url='{self_url}'] td.last-scrape")).expect("last scrape")).expect("text");
    assert!(scraped.contains("s ago"), "last scrape {scraped:?}");

    // "Unhealthy only" hides the healthy target.
    b.click(&b.find("#unhealthy-only").expect("filter")).expect("filter");
    let shown =
        b.exec("return [...document.querySelectorAll('tr.target')].filter(r => !r.hidden).map(r => r.dataset.url)", vec![]).expect("rows");
    assert_eq!(shown, json!([down_url]));
}

/// A two-column table's rows as name -> value.
fn table_pairs(b: &Browser, css: &str) -> BTreeMap<String, String> {
    let v = b
        .exec(
            &format!(
                "return [...document.querySelectorAll(\"{css} tbody tr\")].map(r => [r.cells[0].textContent, r.cells[1].textContent])"
            ),
            vec![],
        )
        .expect("table");
    serde_json::from_value::<Vec<(String, String)>>(v).expect("rows").into_iter().collect()
}

fn alerts_and_rules_pages(b: &Browser, s: &Server) {
    b.goto(&s.url("/alerts")).expect("open alerts");
    wait_page(b, "the alerts page");
    for (name, state) in [("AlwaysFiring", "firing"), ("SlowToFire", "pending"), ("NeverFires", "inactive")] {
        let sel = format!(".alert-rule[data-name='{name}']");
        let got = b.exec(&format!("return document.querySelector(\"{sel}\").dataset.state"), vec![]).expect("state");
        assert_eq!(got, json!(state), "{name}");
        let badge = b.find(&format!("{sel} summary .badge")).expect("badge");
        assert_eq!(b.text(&badge).expect("text"), state.to_uppercase());
        let c = rgb(&b.css(&badge, "color").expect("color"));
        match state {
            "firing" => assert!(is_red(c), "firing is red: {c:?}"),
            "pending" => assert!(c.0 >= 180 && c.2 <= 80 && c.1 > c.2, "pending is orange: {c:?}"),
            _ => assert!(is_green(c), "inactive is green: {c:?}"),
        }
        assert_eq!(b.text(&b.find(&format!("#count-{state}")).expect("count")).expect("text"), "1", "count of {state}");
    }
    let alert = b.text(&b.find(".alert-rule[data-name='AlwaysFiring'] tr.alert").expect("the firing alert")).expect("text");
    let api = s.api("/api/v1/alerts");
    let firing =
        api["alerts"].as_array().expect("alerts").iter().find(|a| a["labels"]["alertname"] == "AlwaysFiring").expect("firing alert");
    let active_at = firing["activeAt"].as_str().expect("activeAt");
    // The page shows activeAt as "YYYY-MM-DD HH:MM:SS(.mmm) UTC".
    let shown_at = active_at.replace('T', " ").trim_end_matches('Z').to_string();
    for want in ["alertname=AlwaysFiring", "severity=page", "FIRING", "summary", "always firing", &shown_at] {
        assert!(alert.contains(want), "alert row lacks {want:?}: {alert}");
    }

    b.goto(&s.url("/rules")).expect("open rules");
    wait_page(b, "the rules page");
    let text = b.text(&b.find("section.group[data-group='ui-test']").expect("group")).expect("text");
    for want in ["record: job:up:sum", "expr: sum by (job) (up)", "alert: SlowToFire", "for: 1h", "every 1s"] {
        assert!(text.contains(want), "rules page lacks {want:?}: {text}");
    }
    let health = b.exec("return [...document.querySelectorAll('tr.rule .badge')].map(e => e.textContent)", vec![]).expect("health");
    assert_eq!(health, json!(["ok", "ok", "ok", "ok"]));
}

fn status_page(b: &Browser, s: &Server) {
    let build = s.api("/api/v1/status/buildinfo");
    let config = s.api("/api/v1/status/config");
    b.goto(&s.url("/status")).expect("open status");
    wait_page(b, "the status page");
    let info = table_pairs(b, "#build-info");
    for key in ["version", "revision"] {
        assert_eq!(info.get(key).map(String::as_str), build[key].as_str(), "{key} in {info:?}");
    }
    let yaml = b.exec("return document.getElementById('config-yaml').textContent", vec![]).expect("config");
    assert_eq!(yaml, config["yaml"]);
    let flags = table_pairs(b, "#flags-table");
    assert_eq!(flags.get("web.listen-address"), Some(&s.addr), "{flags:?}");

    // The top-10 tables match the API (read again if a series appeared in between).
    b.wait("the TSDB top-10 tables to match the API", WAIT, |b| {
        b.goto(&s.url("/status"))?;
        wait_page(b, "the status page");
        let shown = b.exec(
            "return Object.fromEntries(['tsdb-metrics','tsdb-label-pairs'].map(id => [id,
               [...document.querySelectorAll('#' + id + ' tbody tr')].map(r => ({name: r.cells[0].textContent, value: Number(r.cells[1].textContent)}))]))",
            vec![],
        )?;
        let api = s.api("/api/v1/status/tsdb");
        let want = json!({"tsdb-metrics": api["seriesCountByMetricName"], "tsdb-label-pairs": api["seriesCountByLabelValuePair"]});
        let n = want["tsdb-metrics"].as_array().map_or(0, Vec::len);
        if shown == want && n == 10 { Ok(()) } else { Err(format!("page {shown}\napi {want}")) }
    });
    let head = b.text(&b.find("#tsdb-head").expect("head stats")).expect("text");
    assert!(head.contains("UTC"), "head stats show the time range: {head}");
}

fn service_discovery_page(b: &Browser, s: &Server) {
    b.goto(&s.url("/service-discovery")).expect("open service discovery");
    wait_page(b, "the service discovery page");
    let pool = b.text(&b.find("section.sd-pool[data-pool='broken']").expect("pool")).expect("text");
    assert!(pool.contains("(1 active / 1 dropped)"), "{pool}");
    let row = b.text(&b.find("section.sd-pool[data-pool='broken'] tr.sd-target.dropped").expect("dropped row")).expect("text");
    assert!(row.contains("__address__=127.0.0.1:9") && row.contains("Dropped"), "{row}");
    let row = b.text(&b.find("section.sd-pool[data-pool='broken'] tr.sd-target.active").expect("active row")).expect("text");
    assert!(row.contains(&format!("__address__=127.0.0.1:{}", s.closed_port)) && row.contains("env=test"), "{row}");
}

/// The OpenBSD bcrypt test vector: the hash of "U*U".
const BCRYPT_U_STAR_U: &str = "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW";

/// Behind the server's own basic auth, opened as http://user:password@host/,
/// the pages still reach the API.
fn behind_basic_auth(b: &Browser) {
    let dir = tempfile::tempdir().expect("tempdir");
    let (config, web) = (dir.path().join("hearth.yml"), dir.path().join("web.yml"));
    std::fs::write(&config, "global: {scrape_interval: 1s}\n").expect("config");
    std::fs::write(&web, format!("basic_auth_users:\n  admin: {BCRYPT_U_STAR_U}\n")).expect("web config");
    let port = free_ports(1)[0];
    let auth = [("Authorization", "Basic YWRtaW46VSpV")];
    let _server = spawn_hearth(dir.path(), &config, port, &[format!("--web.config.file={}", web.display())], &auth);
    assert_eq!(http::get(&format!("127.0.0.1:{port}"), "/status", &[]).expect("get").status, 401, "the UI asks for the password");
    b.goto(&format!("http://admin:U*U@127.0.0.1:{port}/status")).expect("open status with credentials");
    wait_page(b, "the status page behind basic auth");
    assert!(table_pairs(b, "#build-info").contains_key("version"));
}

/// Says loudly, past the test harness' capture, that the browser test did not run.
fn skipped(why: &str) {
    let _ = writeln!(std::io::stderr(), "\n######## ui.rs: SKIPPED the browser test: {why} ########\n");
}

/// Chromium and chromedriver, installing them (install_peers.sh) if missing;
/// `Err` says why they are not there.
fn browser_available() -> Result<(), String> {
    let Some(missing) = webdriver::missing_binaries() else { return Ok(()) };
    let said = std::panic::catch_unwind(|| support::peers::install(|l| println!("{l}")));
    match (said, webdriver::missing_binaries()) {
        (_, None) => Ok(()),
        (Err(_), Some(m)) => Err(format!("{m} missing and tests/support/install_peers.sh failed (was: {missing})")),
        (Ok(_), Some(m)) => Err(format!("{m} still missing after tests/support/install_peers.sh")),
    }
}

#[test]
fn web_ui_in_headless_chromium() {
    if let Err(why) = browser_available() {
        return skipped(&why);
    }
    let server = start_server();
    let browser = Browser::start(server.dir.path()).unwrap_or_else(|e| panic!("start the browser: {e}"));
    query_page(&browser, &server);
    targets_page(&browser, &server);
    alerts_and_rules_pages(&browser, &server);
    status_page(&browser, &server);
    service_discovery_page(&browser, &server);
    behind_basic_auth(&browser);
    drop(browser);
    server.proc.check_alive().unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn hearth_server_serves_the_ui() {
    let server = start_server();
    let page = http::get(&server.addr, "/", &[]).expect("GET /");
    assert_eq!(page.status, 200);
    assert_eq!(page.header("content-type"), Some("text/html; charset=utf-8"));
    assert!(page.header("content-security-policy").is_some_and(|c| c.starts_with("default-src 'self'")));
    let html = page.text().expect("text").to_string();
    let mut total = html.len();
    for src in html.split("static/").skip(1).filter_map(|s| s.split('"').next()) {
        let r = http::get(&server.addr, &format!("/static/{src}"), &[]).expect("asset");
        assert_eq!(r.status, 200, "{src}");
        assert!(r.header("cache-control").is_some_and(|c| c.contains("immutable")), "{src}");
        total += r.body.len();
    }
    assert!(total < 100 * 1024, "the UI weighs {total} bytes");
    for p in ["/graph", "/alerts", "/rules", "/targets", "/service-discovery", "/status"] {
        assert_eq!(http::get(&server.addr, p, &[]).expect("page").status, 200, "{p}");
    }
    assert_eq!(http::get(&server.addr, "/static/missing.js", &[]).expect("asset").status, 404);
    assert_eq!(http::get(&server.addr, "/nothing-here", &[]).expect("page").status, 404);

    // The service discovery page groups dropped targets by their pool.
    let api = server.api("/api/v1/targets");
    let dropped = api["droppedTargets"].as_array().expect("dropped");
    assert_eq!(dropped.len(), 1, "{dropped:?}");
    assert_eq!(dropped[0]["scrapePool"], "broken", "dropped targets name their pool");
    assert_eq!(dropped[0]["discoveredLabels"]["__address__"], "127.0.0.1:9");
}
