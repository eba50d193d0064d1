//! The `process_*` metrics every Prometheus client library exports, so
//! dashboards and alerts written for Prometheus (memory, CPU, open files,
//! restarts through `process_start_time_seconds`) work on Hearth's own
//! `/metrics` (server and operator) unchanged. Read from `/proc` at each
//! scrape; on systems without it the metrics are simply absent.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

/// Registered with `Registry::register_collector`.
#[derive(Debug, Default)]
pub struct ProcessCollector;

/// What /proc/self/stat and friends say about this process.
#[derive(Debug, PartialEq)]
struct Process {
    cpu_seconds: f64,
    start_time_seconds: f64,
    virtual_bytes: f64,
    resident_bytes: f64,
}

/// Parses /proc/self/stat: fields counted after the `)` that ends the
/// command name (which may itself hold spaces and parentheses).
fn parse_stat(stat: &str, ticks_per_second: f64, page_bytes: f64, boot_time: f64) -> Option<Process> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // f[0] is field 3 (state): utime is field 14, stime 15, starttime 22, vsize 23, rss 24.
    let num = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok());
    Some(Process {
        cpu_seconds: (num(11)? + num(12)?) / ticks_per_second,
        start_time_seconds: boot_time + num(19)? / ticks_per_second,
        virtual_bytes: num(20)?,
        resident_bytes: num(21)? * page_bytes,
    })
}

/// `btime` of /proc/stat: the boot time in unix seconds.
fn parse_boot_time(stat: &str) -> Option<f64> {
    stat.lines().find_map(|l| l.strip_prefix("btime ")).and_then(|v| v.trim().parse().ok())
}

fn read_process() -> Option<Process> {
    // SAFETY: sysconf only reads configuration values.
    let (ticks, page) = unsafe { (libc::sysconf(libc::_SC_CLK_TCK), libc::sysconf(libc::_SC_PAGESIZE)) };
    if ticks <= 0 || page <= 0 {
        return None;
    }
    let boot = parse_boot_time(&std::fs::read_to_string("/proc/stat").ok()?)?;
    parse_stat(&std::fs::read_to_string("/proc/self/stat").ok()?, ticks as f64, page as f64, boot)
}

fn open_fds() -> Option<f64> {
    Some(std::fs::read_dir("/proc/self/fd").ok()?.count() as f64)
}

fn max_fds() -> Option<f64> {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes into the struct we pass.
    let ok = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0;
    (ok && limit.rlim_cur != libc::RLIM_INFINITY).then_some(limit.rlim_cur as f64)
}

fn gauge(encoder: &mut DescriptorEncoder, name: &str, help: &str, v: f64) -> Result<(), std::fmt::Error> {
    let g = ConstGauge::new(v);
    g.encode(encoder.encode_descriptor(name, help, None, g.metric_type())?)
}

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        if let Some(p) = read_process() {
            let c = ConstCounter::new(p.cpu_seconds);
            c.encode(encoder.encode_descriptor(
                "process_cpu_seconds",
                "Total user and system CPU time spent in seconds.",
                None,
                c.metric_type(),
            )?)?;
            gauge(
                &mut encoder,
                "process_start_time_seconds",
                "Start time of the process since unix epoch in seconds.",
                p.start_time_seconds,
            )?;
            gauge(&mut encoder, "process_virtual_memory_bytes", "Virtual memory size in bytes.", p.virtual_bytes)?;
            gauge(&mut encoder, "process_resident_memory_bytes", "Resident memory size in bytes.", p.resident_bytes)?;
        }
        if let Some(n) = open_fds() {
            gauge(&mut encoder, "process_open_fds", "Number of open file descriptors.", n)?;
        }
        if let Some(n) = max_fds() {
            gauge(&mut encoder, "process_max_fds", "Maximum number of open file descriptors.", n)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::registry::Registry;

    #[test]
    fn stat_fields_are_taken_after_the_command_name() {
        // A command name with spaces and a parenthesis must not shift fields.
        let stat = "4242 (a (b) c) S 1 4242 4242 0 -1 4194560 900 0 0 0 250 50 0 0 20 0 9 0 1000 123456789 2048 18446744073709551615";
        let p = parse_stat(stat, 100.0, 4096.0, 1_700_000_000.0).expect("parsed");
        assert_eq!(
            p,
            Process {
                cpu_seconds: 3.0,
                start_time_seconds: 1_700_000_010.0,
                virtual_bytes: 123_456_789.0,
                resident_bytes: 2048.0 * 4096.0
            }
        );
        assert_eq!(parse_stat("garbage", 100.0, 4096.0, 0.0), None);
        assert_eq!(parse_boot_time("cpu 1 2\nbtime 1700000000\nprocesses 5\n"), Some(1_700_000_000.0));
    }

    #[test]
    fn this_process_is_described_on_linux() {
        let mut r = Registry::default();
        r.register_collector(Box::new(ProcessCollector));
        let text = crate::web::encode_registry(&r);
        let value = |name: &str| -> f64 {
            let line = text.lines().find(|l| l.starts_with(&format!("{name} "))).unwrap_or_else(|| panic!("{name} missing:\n{text}"));
            line.rsplit(' ').next().and_then(|v| v.parse().ok()).unwrap_or_else(|| panic!("bad line {line}"))
        };
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or_default();
        let start = value("process_start_time_seconds");
        assert!(start <= now + 1.0 && start > now - 86_400.0 * 30.0, "start {start}, now {now}");
        assert!(value("process_resident_memory_bytes") > 1_000_000.0);
        assert!(value("process_virtual_memory_bytes") >= value("process_resident_memory_bytes"));
        assert!(value("process_cpu_seconds_total") >= 0.0);
        assert!(value("process_open_fds") >= 3.0);
        assert!(text.contains("# TYPE process_cpu_seconds counter"), "{text}");
    }
}
