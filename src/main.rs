//! The `hearth` command line: a thin layer over the library.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use hearth::config::units::{parse_duration_ms, parse_size_bytes};
use hearth::promql::promqltest;
use hearth::server::config_secret::SecretRef;
use hearth::server::{self, ServerConfig};
use hearth::tsdb::{self, Options};

#[derive(Parser)]
#[command(name = "hearth", version, about = "Kubernetes-native monitoring: a Prometheus-compatible time-series server and operator")]
struct Cli {
    /// Log level filter (error, warn, info, debug, trace or a tracing directive).
    #[arg(long = "log.level", global = true, default_value = "info")]
    log_level: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the time-series server (scrapes itself and stores in ./data with no flags).
    Server(Box<ServerArgs>),
    /// Storage tools: backfill, benchmarks, analysis.
    Tsdb {
        #[command(subcommand)]
        command: TsdbCommand,
    },
    /// Check configuration and rule files, like promtool (exit status 1 on failure).
    Check {
        #[command(subcommand)]
        command: CheckCommand,
    },
    /// The Kubernetes operator.
    Operator {
        #[command(subcommand)]
        command: OperatorCommand,
    },
    /// Write the CustomResourceDefinitions (Prometheus, ServiceMonitor, AlertRule) as YAML files.
    Crds {
        /// Directories to write them to (repeatable); by default crds/ and the Helm chart's copy.
        #[arg(long = "output-dir", default_values = ["crds", "charts/hearth/crds"])]
        output_dirs: Vec<PathBuf>,
    },
    /// Render a Jsonnet file into validated Kubernetes YAML (the library in jsonnet/ is built in; see docs/jsonnet.md).
    Render {
        /// The Jsonnet file, e.g. jsonnet/main.jsonnet.
        file: PathBuf,
        /// Library directory searched after the importing file's directory (repeatable).
        #[arg(short = 'J', long = "jpath")]
        jpaths: Vec<PathBuf>,
        /// External string variable NAME=VALUE, read with std.extVar (repeatable).
        #[arg(long = "ext-str", value_parser = parse_ext_str)]
        ext_strs: Vec<(String, String)>,
        /// Write one file per object into this directory (and its setup/), removing stale *.yaml; default: a YAML stream on stdout.
        #[arg(short = 'm', long = "output-dir")]
        output: Option<PathBuf>,
    },
    /// Run unit tests, like promtool (exit status 1 on failure).
    Test {
        #[command(subcommand)]
        command: TestCommand,
    },
    /// Run PromQL test scripts (Prometheus' promqltest format) against the evaluator.
    Promqltest {
        /// Also list the evals that were skipped, and why.
        #[arg(long)]
        verbose: bool,
        /// Script files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

#[derive(clap::Args)]
struct ServerArgs {
    /// Address to serve the HTTP API, UI and /metrics on.
    #[arg(long = "web.listen-address", default_value = "0.0.0.0:9090")]
    listen: SocketAddr,
    /// Directory for the WAL and blocks.
    #[arg(long = "storage.tsdb.path", default_value = "data/")]
    path: PathBuf,
    /// How long to keep blocks (Prometheus duration, e.g. 15d; 0 keeps them forever unless a size is set).
    #[arg(long = "storage.tsdb.retention.time", value_parser = parse_duration_ms)]
    retention_time: Option<i64>,
    /// Largest size of storage before the oldest blocks are deleted (e.g. 512MB, 10GB).
    #[arg(long = "storage.tsdb.retention.size", value_parser = parse_size_bytes)]
    retention_size: Option<u64>,
    /// Time range of blocks cut from the head; shorten only for testing.
    #[arg(long = "storage.tsdb.min-block-duration", default_value = "2h", value_parser = parse_duration_ms)]
    min_block: i64,
    /// Largest block compaction produces (default: 10% of retention, at most 31d).
    #[arg(long = "storage.tsdb.max-block-duration", value_parser = parse_duration_ms)]
    max_block: Option<i64>,
    /// How often the WAL is fsynced in the background; 0s fsyncs every commit.
    #[arg(long = "storage.tsdb.wal-sync-interval", default_value = "1s", value_parser = parse_duration_ms)]
    wal_sync: i64,
    /// Samples a query may select before it fails (protects memory).
    #[arg(long = "query.max-samples", default_value_t = 50_000_000)]
    max_samples: usize,
    /// Longest a query may run before it fails.
    #[arg(long = "query.timeout", default_value = "2m", value_parser = parse_duration_ms)]
    query_timeout: i64,
    /// How far back a selector looks for a sample.
    #[arg(long = "query.lookback-delta", default_value = "5m", value_parser = parse_duration_ms)]
    lookback: i64,
    /// Prometheus web configuration file: TLS and basic-auth users (re-read on change).
    #[arg(long = "web.config.file")]
    web_config: Option<PathBuf>,
    /// Serve /api/v1/admin/tsdb/* (snapshot, delete_series, clean_tombstones).
    #[arg(long = "web.enable-admin-api")]
    admin_api: bool,
    /// Queries that may run at once; more wait.
    #[arg(long = "query.max-concurrency", default_value_t = 20)]
    max_concurrency: usize,
    /// Scrape interval of the built-in self-scrape, used when no --config.file is given.
    #[arg(long = "self-scrape-interval", default_value = "15s", value_parser = parse_duration_ms)]
    self_scrape: i64,
    /// Prometheus configuration file (scrape_configs, rule_files, ...). Without one the server scrapes itself.
    #[arg(long = "config.file")]
    config_file: Option<PathBuf>,
    /// NAMESPACE/NAME of a Secret whose keys are written as files beside --config.file, read through the Kubernetes API at
    /// startup and watched for changes (in-cluster credentials or KUBECONFIG).
    #[arg(long = "config.kubernetes-secret", requires = "config_file", value_parser = parse_secret_ref)]
    config_secret: Option<SecretRef>,
    /// How long startup waits for the --config.kubernetes-secret Secret to be readable before failing.
    #[arg(long = "config.kubernetes-secret-timeout", default_value = "60s", value_parser = parse_duration_ms)]
    config_secret_wait: i64,
    /// How often the configuration file is checked for changes (it is reloaded when its content changes).
    #[arg(long = "config.auto-reload-interval", default_value = "3s", value_parser = parse_duration_ms)]
    config_watch: i64,
    /// Enable /-/reload and /-/quit (POST or PUT).
    #[arg(long = "web.enable-lifecycle")]
    lifecycle: bool,
    /// The URL under which Hearth is reached from outside (alert links, $externalURL). Default: http://<hostname>:<port>/.
    #[arg(long = "web.external-url")]
    external_url: Option<String>,
    /// Minimum time between resends of a firing alert to Alertmanager.
    #[arg(long = "rules.alert.resend-delay", default_value = "1m", value_parser = parse_duration_ms)]
    resend_delay: i64,
    /// Longest downtime after which alerts' `for` state is still restored.
    #[arg(long = "rules.alert.for-outage-tolerance", default_value = "1h", value_parser = parse_duration_ms)]
    outage_tolerance: i64,
    /// Least time a restored alert still waits before firing.
    #[arg(long = "rules.alert.for-grace-period", default_value = "10m", value_parser = parse_duration_ms)]
    grace_period: i64,
    /// Alerts waiting for Alertmanager beyond this many are dropped, oldest first.
    #[arg(long = "alertmanager.notification-queue-capacity", default_value_t = 10_000)]
    notification_queue_capacity: usize,
    /// Accept remote write (POST /api/v1/write) from Prometheus or another Hearth.
    #[arg(long = "web.enable-remote-write-receiver")]
    remote_write_receiver: bool,
    /// Longest a serving thread keeps polling for the next request after an answer instead of sleeping; it polls only as long as
    /// recent gaps between requests call for, yielding the CPU to other work. 0s turns polling off.
    #[arg(long = "web.busy-poll", default_value = "1ms", value_parser = parse_duration_ms)]
    busy_poll: i64,
}

#[derive(Subcommand)]
enum OperatorCommand {
    /// Render offline what the operator would generate for Prometheus, ServiceMonitor and AlertRule objects.
    Preview {
        /// YAML files or directories (Namespaces in them are used for namespace selectors).
        #[arg(short = 'f', long = "filename", required = true)]
        files: Vec<PathBuf>,
        /// Where to write <namespace>/<name>/prometheus.yaml and rules/.
        #[arg(short = 'o', long = "output-dir")]
        output: PathBuf,
    },
    /// Run the operator against the cluster (in-cluster, or $KUBECONFIG): applies the CRDs, then reconciles.
    Run {
        /// Address of /metrics and /healthz.
        #[arg(long = "metrics-address", default_value = "0.0.0.0:8080")]
        metrics_address: SocketAddr,
        /// `hearth server` image for Prometheus objects that name none.
        #[arg(long = "server-image", env = "HEARTH_SERVER_IMAGE", default_value = concat!("ghcr.io/hearth-dev/hearth:", env!("CARGO_PKG_VERSION")))]
        image: String,
        /// Take the hearth-operator Lease first, so that only one of several replicas reconciles.
        #[arg(long = "leader-election", default_value_t = true, action = clap::ArgAction::Set)]
        leader_election: bool,
        /// Namespace of the Lease.
        #[arg(long = "namespace", env = "POD_NAMESPACE", default_value = "default")]
        namespace: String,
        /// This replica's identity in the Lease and in Events (default: the pod name, else the host name).
        #[arg(long = "identity", env = "POD_NAME")]
        identity: Option<String>,
    },
}

#[derive(Subcommand)]
enum TestCommand {
    /// Run rule unit tests in promtool's format (input series, expected alerts and PromQL results).
    Rules {
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

#[derive(Subcommand)]
enum CheckCommand {
    /// Check Prometheus configuration files and the rule files they reference.
    Config {
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Check rule files.
    Rules {
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

#[derive(Subcommand)]
enum TsdbCommand {
    /// Create blocks from historical data.
    CreateBlocksFrom {
        #[command(subcommand)]
        format: BackfillFormat,
    },
    /// Benchmarks.
    Bench {
        #[command(subcommand)]
        command: BenchCommand,
    },
    /// Report blocks, samples, bytes per sample and the highest-cardinality labels and metrics.
    Analyze {
        /// A data directory or a backfill output directory.
        dir: PathBuf,
        /// How many entries to list per ranking.
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// Append forever, printing each acknowledged timestamp (used by crash tests).
    #[command(hide = true)]
    AppendLoop {
        dir: PathBuf,
        #[arg(long, default_value_t = 100)]
        series: usize,
        #[arg(long = "wal-sync-interval", default_value = "1s", value_parser = parse_duration_ms)]
        wal_sync: i64,
    },
}

#[derive(Subcommand)]
enum BackfillFormat {
    /// From an OpenMetrics text file whose samples all carry timestamps.
    Openmetrics {
        input: PathBuf,
        #[arg(default_value = "data/")]
        output: PathBuf,
        /// Time range of each output block.
        #[arg(long = "max-block-duration", default_value = "2h", value_parser = parse_duration_ms)]
        block: i64,
    },
}

#[derive(Subcommand)]
enum BenchCommand {
    /// Append benchmark shaped like `promtool tsdb bench write`.
    Write {
        /// Number of series.
        #[arg(long, default_value_t = 10_000)]
        metrics: usize,
        /// Number of scrapes per series.
        #[arg(long, default_value_t = 3000)]
        scrapes: usize,
        /// Working directory (deleted first).
        #[arg(long, default_value = "benchout")]
        out: PathBuf,
        /// Value pattern.
        #[arg(long, value_enum, default_value = "realistic")]
        values: tsdb::bench::Values,
        /// After ingesting, reopen the directory and time the WAL replay instead of persisting blocks.
        #[arg(long)]
        replay: bool,
        /// promtool's label file format: one JSON object of labels per line.
        file: Option<PathBuf>,
    },
    /// Time the WAL replay of an existing data directory (restart time).
    Replay { dir: PathBuf },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Test runs open a database per load; keep their routine logs quiet.
    let level = match cli.command {
        Command::Promqltest { .. } | Command::Test { .. } if cli.log_level == "info" => "warn",
        _ => cli.log_level.as_str(),
    };
    let filter = tracing_subscriber::EnvFilter::try_new(level).unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    if let Command::Promqltest { verbose, files } = &cli.command {
        let mut out = std::io::stdout().lock();
        return match promqltest::run_files(files, *verbose, &mut out) {
            Ok(true) => ExitCode::SUCCESS,
            Ok(false) => ExitCode::FAILURE,
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        };
    }
    if let Command::Check { command } = &cli.command {
        let (out, err) = (&mut std::io::stdout().lock(), &mut std::io::stderr().lock());
        let passed = match command {
            CheckCommand::Config { files } => hearth::config::check::run_check_config(files, out, err),
            CheckCommand::Rules { files } => hearth::config::check::run_check_rules(files, out, err),
        };
        return if matches!(passed, Ok(true)) { ExitCode::SUCCESS } else { ExitCode::FAILURE };
    }
    if let Command::Test { command: TestCommand::Rules { files } } = &cli.command {
        let passed = hearth::rules::unittest::run_files(files, &mut std::io::stdout().lock(), &mut std::io::stderr().lock());
        return if matches!(passed, Ok(true)) { ExitCode::SUCCESS } else { ExitCode::FAILURE };
    }
    match run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(cmd: Command) -> Result<(), String> {
    match cmd {
        Command::Server(a) => {
            let mut storage = Options {
                retention_ms: match (a.retention_time, a.retention_size) {
                    (Some(0), _) | (None, Some(_)) => None,
                    (Some(t), _) => Some(t),
                    (None, None) => Options::default().retention_ms,
                },
                retention_bytes: a.retention_size,
                min_block_ms: a.min_block.max(1),
                wal_sync_interval: Duration::from_millis(a.wal_sync as u64),
                ..Options::default()
            };
            storage = storage.with_derived_max_block();
            if let Some(m) = a.max_block {
                storage.max_block_ms = m.max(storage.min_block_ms);
            }
            // Flags as given, for /api/v1/status/flags.
            let flags = std::env::args()
                .skip(2)
                .filter_map(|a| {
                    let f = a.strip_prefix("--")?;
                    Some(f.split_once('=').map_or((f.to_string(), String::new()), |(k, v)| (k.to_string(), v.to_string())))
                })
                .collect();
            let engine = hearth::promql::EngineOptions {
                lookback_ms: a.lookback.max(1),
                max_samples: a.max_samples,
                timeout: Duration::from_millis(a.query_timeout.max(1) as u64),
                max_concurrent: a.max_concurrency.max(1),
                ..Default::default()
            };
            let cfg = ServerConfig {
                listen: a.listen,
                data_dir: a.path,
                storage,
                self_scrape_interval: Duration::from_millis(a.self_scrape.max(1) as u64),
                config_file: a.config_file,
                config_secret: a.config_secret,
                config_secret_wait: ms(a.config_secret_wait),
                config_watch_interval: Duration::from_millis(a.config_watch.max(100) as u64),
                lifecycle: a.lifecycle,
                engine,
                flags,
                admin_api: a.admin_api,
                web_config_file: a.web_config,
                rules: hearth::rules::manager::RuleOptions {
                    resend_delay: ms(a.resend_delay),
                    outage_tolerance: ms(a.outage_tolerance),
                    grace_period: ms(a.grace_period),
                    external_url: a.external_url.unwrap_or_else(|| server::default_external_url(a.listen)),
                },
                notification_queue_capacity: a.notification_queue_capacity,
                remote_write_receiver: a.remote_write_receiver,
                busy_poll: ms(a.busy_poll),
            };
            let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(|e| e.to_string())?;
            rt.block_on(server::run(cfg)).map_err(|e| e.to_string())
        }
        Command::Tsdb { command } => match command {
            TsdbCommand::CreateBlocksFrom { format: BackfillFormat::Openmetrics { input, output, block } } => {
                let s = tsdb::backfill::create_blocks_from_openmetrics(&input, &output, block.max(1), Options::default().zstd_level)
                    .map_err(|e| e.to_string())?;
                println!(
                    "wrote {} blocks, {} series, {} samples, {} bytes ({:.3} bytes/sample) to {}",
                    s.blocks,
                    s.series,
                    s.samples,
                    s.bytes,
                    s.bytes as f64 / s.samples.max(1) as f64,
                    output.display()
                );
                Ok(())
            }
            TsdbCommand::Bench { command: BenchCommand::Write { metrics, scrapes, out, values, replay, file } } => {
                tsdb::bench::run(&tsdb::bench::WriteBench { metrics, scrapes, labels_file: file, out, values, replay })
            }
            TsdbCommand::Bench { command: BenchCommand::Replay { dir } } => tsdb::bench::replay(&dir),
            TsdbCommand::Analyze { dir, limit } => {
                print!("{}", tsdb::analyze::report(&dir, limit)?);
                Ok(())
            }
            TsdbCommand::AppendLoop { dir, series, wal_sync } => {
                tsdb::bench::append_loop(&dir, series, Duration::from_millis(wal_sync as u64))
            }
        },
        Command::Render { file, jpaths, ext_strs, output } => {
            let opts = hearth::render::EvalOptions { jpaths, ext_strs };
            match output {
                Some(dir) => {
                    let files = hearth::render::render_to_dir(&file, &opts, &dir).map_err(|e| e.to_string())?;
                    eprintln!("wrote {} files to {}", files.len(), dir.display());
                    Ok(())
                }
                None => {
                    let stream = hearth::render::render_to_stream(&file, &opts).map_err(|e| e.to_string())?;
                    std::io::Write::write_all(&mut std::io::stdout().lock(), stream.as_bytes()).map_err(|e| format!("stdout: {e}"))
                }
            }
        }
        // Handled in main, which owns the exit status.
        Command::Crds { output_dirs } => output_dirs.iter().try_for_each(|d| write_crds(d)),
        Command::Operator { command: OperatorCommand::Preview { files, output } } => {
            match hearth::operator::preview::run(&files, &output, &mut std::io::stdout().lock())? {
                true => Ok(()),
                false => Err("some Prometheus objects could not be generated".to_string()),
            }
        }
        Command::Operator { command: OperatorCommand::Run { metrics_address, image, leader_election, namespace, identity } } => {
            let identity = identity.unwrap_or_else(|| {
                std::fs::read_to_string("/proc/sys/kernel/hostname")
                    .map(|h| h.trim().to_string())
                    .unwrap_or_else(|_| "hearth-operator".into())
            });
            let cfg = hearth::operator::controller::OperatorConfig { metrics_address, image, leader_election, namespace, identity };
            let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(|e| e.to_string())?;
            rt.block_on(hearth::operator::controller::run(cfg))
        }
        Command::Promqltest { .. } | Command::Check { .. } | Command::Test { .. } => Ok(()),
    }
}

/// `hearth crds`: one YAML file per CRD, replacing what is there.
fn write_crds(dir: &std::path::Path) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for (file, crd) in hearth::operator::crd::definitions() {
        let path = dir.join(file);
        std::fs::write(&path, hearth::operator::crd::to_yaml(&crd)?).map_err(|e| format!("{}: {e}", path.display()))?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

/// A non-negative millisecond count as a duration.
fn ms(v: i64) -> Duration {
    Duration::from_millis(v.max(0) as u64)
}

/// `--ext-str NAME=VALUE`.
fn parse_ext_str(s: &str) -> Result<(String, String), String> {
    s.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())).ok_or_else(|| format!("{s:?}: expected NAME=VALUE"))
}

/// `--config.kubernetes-secret`: `NAMESPACE/NAME`.
fn parse_secret_ref(s: &str) -> Result<SecretRef, String> {
    s.parse()
}
