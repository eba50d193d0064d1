//! Killing the process with SIGKILL never loses an acknowledged sample.
//!
//! `hearth tsdb append-loop` prints `acked T` after each commit returns. The
//! test kills it at a random moment, reopens the directory and checks every
//! series has every acknowledged timestamp, then repeats on the same
//! directory so later rounds also replay checkpoints and earlier repairs.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use hearth::model::Matcher;
use hearth::tsdb::metrics::TsdbMetrics;
use hearth::tsdb::{Db, Options};

const SERIES: usize = 50;
const ROUNDS: usize = 20;

#[test]
fn sigkill_during_appends_loses_no_acknowledged_sample() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    for round in 0..ROUNDS {
        let mut child = Command::new(env!("CARGO_BIN_EXE_hearth"))
            .args(["tsdb", "append-loop", "--series", &SERIES.to_string(), "--wal-sync-interval", "1s"])
            .arg(dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn hearth");
        let stdout = child.stdout.take().expect("stdout");
        // Kill after a pseudo-random number of acknowledgements (xorshift).
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let kill_after = 20 + (seed % 400) as usize;
        let mut last_acked = None;
        let deadline = Instant::now() + Duration::from_secs(30);
        for (n, line) in BufReader::new(stdout).lines().enumerate() {
            let Ok(line) = line else { break };
            if let Some(t) = line.strip_prefix("acked ") {
                last_acked = t.parse::<i64>().ok();
            }
            if n + 1 >= kill_after || Instant::now() > deadline {
                break;
            }
        }
        child.kill().expect("SIGKILL");
        let _ = child.wait();
        let last = last_acked.unwrap_or_else(|| panic!("round {round}: nothing was acknowledged"));

        let db = Db::open(dir.path(), Options::default(), TsdbMetrics::default()).expect("reopen after kill");
        let got = db.querier().select(&[Matcher::equal("__name__", "crash_test")], i64::MIN, i64::MAX).expect("select");
        assert_eq!(got.len(), SERIES, "round {round}: every series survives");
        for s in &got {
            let ts: Vec<i64> = s.samples.iter().map(|x| x.t).collect();
            let max = *ts.last().expect("samples");
            assert!(max >= last, "round {round}: {} lost acknowledged samples: newest {max} < acked {last}", s.labels);
            let want: Vec<i64> = (1..=max).collect();
            assert_eq!(ts, want, "round {round}: {} has a gap", s.labels);
            assert!(s.samples.iter().all(|x| x.v == x.t as f64), "round {round}: values intact");
        }
        db.close().expect("close");
    }
}
