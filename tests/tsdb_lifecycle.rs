//! Storage behaviour end to end through the public API: appends, queries
//! across head and blocks, restarts, deletion, retention and rejections.

use hearth::model::{Labels, MatchOp, Matcher, stale_nan};
use hearth::tsdb::metrics::TsdbMetrics;
use hearth::tsdb::{AppendError, Db, Options};

const H: i64 = 3_600_000;

fn opts() -> Options {
    Options { min_block_ms: H, retention_ms: None, wal_segment_bytes: 1 << 20, ..Options::default() }
}

fn series(i: usize) -> Labels {
    Labels::from_pairs([("__name__", "m"), ("i", &i.to_string()), ("parity", if i % 2 == 0 { "even" } else { "odd" })])
}

fn value(i: usize, t: i64) -> f64 {
    if t % 997 == 0 { stale_nan() } else { (i as f64) * 1.5 + (t / 1000) as f64 * 0.25 }
}

/// Appends `n` series every 15s over [from, to).
fn fill(db: &Db, n: usize, from: i64, to: i64) -> u64 {
    let mut total = 0;
    let mut refs = vec![None; n];
    let mut t = from;
    while t < to {
        let mut app = db.appender();
        for (i, r) in refs.iter_mut().enumerate() {
            *r = Some(app.append(*r, &series(i), t, value(i, t)).expect("append"));
            total += 1;
        }
        app.commit().expect("commit");
        t += 15_000;
    }
    total
}

fn all() -> Vec<Matcher> {
    vec![Matcher::equal("__name__", "m")]
}

fn check_all(db: &Db, n: usize, from: i64, to: i64) {
    let got = db.querier().select(&all(), i64::MIN, i64::MAX).expect("select");
    assert_eq!(got.len(), n);
    for s in &got {
        let i: usize = s.labels.get("i").parse().expect("i label");
        let want: Vec<(i64, u64)> = (from..to).step_by(15_000).map(|t| (t, value(i, t).to_bits())).collect();
        let have: Vec<(i64, u64)> = s.samples.iter().map(|x| (x.t, x.v.to_bits())).collect();
        assert_eq!(have, want, "series {}", s.labels);
    }
}

#[test]
fn data_survives_compaction_restart_and_reads_across_head_and_blocks() {
    let dir = tempfile::tempdir().expect("tempdir");
    let n = 50;
    {
        let db = Db::open(dir.path(), opts(), TsdbMetrics::default()).expect("open");
        fill(&db, n, 0, 5 * H);
        db.compact().expect("compact");
        assert!(!db.blocks().is_empty(), "head older than 1.5 block ranges must be persisted");
        assert!(db.head().min_time() >= db.blocks().iter().map(|b| b.meta().max_time).max().unwrap_or(0), "head truncated behind blocks");
        check_all(&db, n, 0, 5 * H);
        db.close().expect("close");
    }
    let db = Db::open(dir.path(), opts(), TsdbMetrics::default()).expect("reopen");
    check_all(&db, n, 0, 5 * H);
    // Stale markers come back bit for bit from blocks as well as the head.
    let q = db.querier().select(&all(), 0, 997 * 15).expect("select");
    assert!(q.iter().all(|s| { s.samples.iter().any(|x| x.v.to_bits() == stale_nan().to_bits()) }));

    let m = Matcher::new(MatchOp::Regex, "parity", "even").expect("matcher");
    let got = db.querier().select(&[m], H, 2 * H).expect("select");
    assert_eq!(got.len(), n / 2);
    assert!(got.iter().all(|s| s.samples.first().is_some_and(|x| x.t >= H) && s.samples.last().is_some_and(|x| x.t <= 2 * H)));
    assert_eq!(db.querier().label_values("parity", &[], i64::MIN, i64::MAX), vec!["even", "odd"]);
}

#[test]
fn a_selection_over_its_sample_limit_gives_up_in_blocks_and_in_the_head() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Db::open(dir.path(), opts(), TsdbMetrics::default()).expect("open");
    fill(&db, 4, 0, 5 * H);
    db.compact().expect("compact");
    let q = db.querier();
    let in_blocks = (0, 2 * H);
    let in_head = (db.head().min_time(), 5 * H);
    assert!(in_head.0 > in_blocks.1, "the head holds only the last hours");
    for (from, to) in [in_blocks, in_head] {
        let all_of = q.select(&all(), from, to).expect("select");
        let total: usize = all_of.iter().map(|s| s.samples.len()).sum();
        // Compared by bits: stale markers are NaN.
        let bits = |v: &[hearth::tsdb::Series]| -> Vec<(String, Vec<(i64, u64)>)> {
            v.iter().map(|s| (s.labels.to_string(), s.samples.iter().map(|x| (x.t, x.v.to_bits())).collect())).collect()
        };
        let exact = q.select_at_most(&all(), from, to, total).expect("select").expect("a limit equal to the samples selected is met");
        assert_eq!(bits(&exact), bits(&all_of));
        assert_eq!(q.select_at_most(&all(), from, to, total - 1).expect("select"), None, "one sample over the limit");
    }
}

#[test]
fn wal_checkpoint_keeps_replay_bounded_and_correct() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Db::open(dir.path(), opts(), TsdbMetrics::default()).expect("open");
    fill(&db, 20, 0, 8 * H);
    db.compact().expect("compact");
    let wal = dir.path().join("wal");
    let has_checkpoint =
        std::fs::read_dir(&wal).expect("wal dir").flatten().any(|e| e.file_name().to_string_lossy().starts_with("checkpoint."));
    assert!(has_checkpoint, "compaction must checkpoint the WAL");
    fill(&db, 20, 8 * H, 9 * H);
    db.close().expect("close");
    let db = Db::open(dir.path(), opts(), TsdbMetrics::default()).expect("reopen");
    check_all(&db, 20, 0, 9 * H);
}

#[test]
fn out_of_order_duplicate_and_out_of_bounds_samples_are_rejected_and_counted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let metrics = TsdbMetrics::default();
    let db = Db::open(dir.path(), opts(), metrics.clone()).expect("open");
    let l = series(0);
    let mut app = db.appender();
    app.append(None, &l, 1000, 1.0).expect("append");
    app.commit().expect("commit");
    let mut app = db.appender();
    assert_eq!(app.append(None, &l, 999, 1.0), Err(AppendError::OutOfOrder));
    assert_eq!(app.append(None, &l, 1000, 2.0), Err(AppendError::Duplicate));
    // Same timestamp and value is accepted silently, as in Prometheus.
    assert!(app.append(None, &l, 1000, 1.0).is_ok());
    app.commit().expect("commit");
    assert_eq!(metrics.out_of_order_samples.get(), 1);
    assert_eq!(metrics.duplicate_samples.get(), 1);

    fill(&db, 1, 2000, 4 * H);
    db.compact().expect("compact");
    let mut app = db.appender();
    assert_eq!(app.append(None, &l, 1500, 1.0), Err(AppendError::OutOfBounds));
    assert_eq!(metrics.out_of_bound_samples.get(), 1);
}

#[test]
fn deletion_hides_data_at_once_and_survives_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let db = Db::open(dir.path(), opts(), TsdbMetrics::default()).expect("open");
        fill(&db, 4, 0, 4 * H);
        db.compact().expect("compact");
        let m = Matcher::equal("i", "1");
        db.delete(std::slice::from_ref(&m), H / 2, 3 * H).expect("delete");
        let s = db.querier().select(&[m], i64::MIN, i64::MAX).expect("select");
        assert!(s[0].samples.iter().all(|x| x.t < H / 2 || x.t > 3 * H), "deleted range in blocks and head is hidden");
        db.close().expect("close");
    }
    let db = Db::open(dir.path(), opts(), TsdbMetrics::default()).expect("reopen");
    let s = db.querier().select(&[Matcher::equal("i", "1")], i64::MIN, i64::MAX).expect("select");
    assert!(!s[0].samples.is_empty());
    assert!(s[0].samples.iter().all(|x| x.t < H / 2 || x.t > 3 * H));
    let other = db.querier().select(&[Matcher::equal("i", "2")], H, 2 * H).expect("select");
    assert_eq!(other[0].samples.len(), 241, "other series untouched");
}

#[test]
fn retention_deletes_whole_old_blocks_and_blocks_merge_by_level() {
    let dir = tempfile::tempdir().expect("tempdir");
    let metrics = TsdbMetrics::default();
    let o = Options { retention_ms: Some(6 * H), max_block_ms: 3 * H, ..opts() };
    let db = Db::open(dir.path(), o, metrics.clone()).expect("open");
    fill(&db, 5, 0, 12 * H);
    db.compact().expect("compact");
    let blocks = db.blocks();
    assert!(metrics.time_retentions.get() > 0, "blocks older than 6h before the newest data were deleted");
    assert!(blocks.iter().all(|b| b.meta().max_time > 12 * H - 15_000 - 6 * H - 1));
    assert!(blocks.iter().any(|b| b.meta().compaction.level > 1), "level-1 blocks were merged into larger ones");
    for w in blocks.windows(2) {
        assert!(w[0].meta().max_time <= w[1].meta().min_time, "no overlaps after compaction");
    }
    let on_disk = std::fs::read_dir(dir.path()).expect("dir").flatten().filter(|e| e.path().join("meta.json").exists()).count();
    assert_eq!(on_disk, blocks.len(), "deleted blocks are gone from disk");
}

#[test]
fn size_retention_removes_oldest_blocks_first() {
    let dir = tempfile::tempdir().expect("tempdir");
    let o = Options { retention_bytes: Some(1), ..opts() };
    let db = Db::open(dir.path(), o, TsdbMetrics::default()).expect("open");
    fill(&db, 5, 0, 6 * H);
    db.compact().expect("compact");
    assert!(db.blocks().is_empty(), "every block exceeds a 1-byte limit");
    let s = db.querier().select(&all(), i64::MIN, i64::MAX).expect("select");
    assert!(s.iter().all(|s| s.samples.first().is_some_and(|x| x.t >= db.head().min_valid_time())), "only head data remains");
}

#[test]
fn a_second_process_cannot_open_the_same_directory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let _db = Db::open(dir.path(), opts(), TsdbMetrics::default()).expect("open");
    let err = Db::open(dir.path(), opts(), TsdbMetrics::default()).err().expect("second open fails");
    assert!(err.to_string().contains("in use"), "{err}");
}
