//! Scrape-body parsing throughput, in samples per second on one thread (so per
//! core), for the Prometheus text format 0.0.4 and OpenMetrics.
//! Run with `cargo bench --bench parse`.
//!
//! The input is one generated 100k-series exposition shaped like a busy
//! target: a request-duration histogram (`le` buckets, `_sum`, `_count`),
//! request counters, node_exporter-style filesystem gauges with long mount
//! points, and kube-state-style pod gauges with UIDs, with HELP and TYPE
//! lines. Each parser entry point is one row of `PARSERS`; add new ones there.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use hearth::model::Labels;
use hearth::scrape::parse::{Entry, Format, ScrapeSink, parse_each, parse_scrape};

const SERIES: usize = 100_000;
const BUCKETS: [&str; 12] = ["0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "+Inf"];
const METHODS: [&str; 4] = ["GET", "POST", "PUT", "DELETE"];
const CODES: [&str; 6] = ["200", "201", "400", "404", "500", "503"];
const PHASES: [&str; 5] = ["Pending", "Running", "Succeeded", "Failed", "Unknown"];

/// A parser entry point: parses the body and returns how many samples it saw.
type Parse = fn(&str, Format) -> usize;

/// The parsers measured, by name.
const PARSERS: &[(&str, Parse)] = &[
    // Every line fully parsed into an `Entry` (labels built and sorted).
    ("parse_each", |body, format| {
        let mut n = 0;
        parse_each(body, format, |e| n += usize::from(matches!(e, Entry::Sample { .. }))).unwrap();
        n
    }),
    // First scrape of a target: every sample line skimmed, found unknown, then parsed.
    ("parse_scrape_first", |body, format| {
        let mut sink = Counting { known: false, n: 0 };
        parse_scrape(body, format, &mut sink).unwrap();
        sink.n
    }),
    // Steady state: every series text already known, so only skimmed (no cache lookup cost).
    ("parse_scrape_known", |body, format| {
        let mut sink = Counting { known: true, n: 0 };
        parse_scrape(body, format, &mut sink).unwrap();
        sink.n
    }),
];

/// A sink that counts samples and answers "known" as configured.
struct Counting {
    known: bool,
    n: usize,
}

impl ScrapeSink for Counting {
    fn known_sample(&mut self, series: &str, timestamp_ms: Option<i64>, value: f64) -> bool {
        black_box((series, timestamp_ms, value));
        self.n += usize::from(self.known);
        self.known
    }
    fn new_sample(&mut self, series: &str, labels: Labels, empty: &[String], timestamp_ms: Option<i64>, value: f64) {
        black_box((series, labels, empty, timestamp_ms, value));
        self.n += 1;
    }
    fn metadata(&mut self, entry: Entry) {
        black_box(entry);
    }
}

/// Deterministic pseudo-random numbers (xorshift64*), so runs compare.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn uid(&mut self) -> String {
        let (a, b) = (self.next(), self.next());
        format!("{:08x}-{:04x}-{:04x}-{:04x}-{:012x}", a >> 32, a & 0xffff, (a >> 16) & 0xffff, b >> 48, b & 0xffff_ffff_ffff)
    }
}

/// Writes a family's HELP and TYPE lines. OpenMetrics names a counter family
/// without its `_total` suffix.
fn family(out: &mut String, name: &str, kind: &str, om: bool) {
    let name = if om && kind == "counter" { name.trim_end_matches("_total") } else { name };
    out.push_str(&format!("# HELP {name} Generated {kind} family for the parse benchmark.\n# TYPE {name} {kind}\n"));
}

/// An exposition being written, with its sample count.
struct Body {
    text: String,
    samples: usize,
}

impl Body {
    fn sample(&mut self, name: &str, labels: &str, value: &str) {
        for part in [name, "{", labels, "} ", value, "\n"] {
            self.text.push_str(part);
        }
        self.samples += 1;
    }
}

/// Generates an exposition of exactly `series` samples.
fn exposition(series: usize, om: bool) -> Body {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut out = Body { text: String::with_capacity(series * 120), samples: 0 };
    // 55%: histogram, one handler x method per 14 series
    family(&mut out.text, "http_request_duration_seconds", "histogram", om);
    for i in 0..series * 55 / 100 / (BUCKETS.len() + 2) {
        let labels = format!("handler=\"/api/v{}/resource{}/:id\",method=\"{}\"", 1 + i % 3, i / 4, METHODS[i % 4]);
        let total = rng.below(10_000_000);
        for (b, le) in BUCKETS.iter().enumerate() {
            let count = total * (b as u64 + 1) / BUCKETS.len() as u64;
            out.sample("http_request_duration_seconds_bucket", &format!("{labels},le=\"{le}\""), &count.to_string());
        }
        out.sample("http_request_duration_seconds_sum", &labels, &format!("{:.6}", total as f64 * 0.0731));
        out.sample("http_request_duration_seconds_count", &labels, &total.to_string());
    }
    // 20%: request counters
    family(&mut out.text, "http_requests_total", "counter", om);
    for i in 0..series * 20 / 100 {
        let labels = format!("code=\"{}\",handler=\"/api/v1/resource{}\",method=\"{}\"", CODES[i % 6], i / 24, METHODS[i / 6 % 4]);
        out.sample("http_requests_total", &labels, &rng.below(1 << 40).to_string());
    }
    // 10%: filesystem gauges, long label values
    family(&mut out.text, "node_filesystem_avail_bytes", "gauge", om);
    for _ in 0..series * 10 / 100 {
        let labels = format!(
            "device=\"tmpfs\",fstype=\"tmpfs\",mountpoint=\"/var/lib/kubelet/pods/{}/volumes/kubernetes.io~projected/kube-api-access-{:05x}\"",
            rng.uid(),
            rng.below(1 << 20)
        );
        out.sample("node_filesystem_avail_bytes", &labels, &format!("{:e}", rng.below(1 << 36) as f64));
    }
    // the rest: pod phases, 0 or 1
    family(&mut out.text, "kube_pod_status_phase", "gauge", om);
    let mut pod = String::new();
    for i in 0..series - out.samples {
        if i % PHASES.len() == 0 {
            pod = format!(
                "namespace=\"ns{}\",pod=\"api-{:010x}-{:05x}\",uid=\"{}\"",
                rng.below(40),
                rng.next() >> 24,
                rng.below(1 << 20),
                rng.uid()
            );
        }
        let phase = PHASES[i % PHASES.len()];
        out.sample("kube_pod_status_phase", &format!("{pod},phase=\"{phase}\""), if phase == "Running" { "1" } else { "0" });
    }
    if om {
        out.text.push_str("# EOF\n");
    }
    out
}

fn parsing(c: &mut Criterion) {
    for (format, om, tag) in [(Format::PrometheusText, false, "text"), (Format::OpenMetrics, true, "openmetrics")] {
        let Body { text: body, samples } = exposition(SERIES, om);
        assert_eq!(samples, SERIES);
        let mut g = c.benchmark_group(format!("scrape_parse_{tag}"));
        g.throughput(Throughput::Elements(samples as u64));
        g.sample_size(20);
        for &(name, parse) in PARSERS {
            assert_eq!(parse(&body, format), samples, "{name} on {tag}");
            g.bench_with_input(BenchmarkId::new(name, format!("{}k_series_{}MB", SERIES / 1000, body.len() >> 20)), &body, |b, body| {
                b.iter(|| parse(body, format))
            });
        }
        g.finish();
    }
}

criterion_group!(benches, parsing);
criterion_main!(benches);
