//! A damaged WAL never stops the server: damaged records are skipped and
//! counted, everything before (and, for bit flips, after) them is kept.

use hearth::model::{Labels, Matcher};
use hearth::tsdb::metrics::TsdbMetrics;
use hearth::tsdb::{Db, Options};

fn write(dir: &std::path::Path, commits: i64) {
    let db = Db::open(dir, Options::default(), TsdbMetrics::default()).expect("open");
    let l = Labels::from_pairs([("__name__", "x")]);
    let mut r = None;
    for t in 1..=commits {
        let mut app = db.appender();
        r = Some(app.append(r, &l, t * 1000, t as f64).expect("append"));
        app.commit().expect("commit");
    }
    db.close().expect("close");
}

fn last_segment(dir: &std::path::Path) -> std::path::PathBuf {
    let mut segs: Vec<_> = std::fs::read_dir(dir.join("wal"))
        .expect("wal")
        .flatten()
        .map(|e| e.path())
        .filter(|p| std::fs::metadata(p).map(|m| m.is_file() && m.len() > 0).unwrap_or(false))
        .collect();
    segs.sort();
    segs.pop().expect("a segment with data")
}

fn stored(db: &Db) -> Vec<i64> {
    db.querier()
        .select(&[Matcher::equal("__name__", "x")], i64::MIN, i64::MAX)
        .expect("select")
        .first()
        .map(|s| s.samples.iter().map(|x| x.t / 1000).collect())
        .unwrap_or_default()
}

#[test]
fn truncated_final_segment_starts_with_every_complete_record() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), 100);
    let seg = last_segment(dir.path());
    let len = std::fs::metadata(&seg).expect("meta").len();
    let f = std::fs::OpenOptions::new().write(true).open(&seg).expect("open");
    f.set_len(len - 5).expect("truncate");
    let metrics = TsdbMetrics::default();
    let db = Db::open(dir.path(), Options::default(), metrics.clone()).expect("starts despite a torn tail");
    assert_eq!(stored(&db), (1..=99).collect::<Vec<_>>());
    assert_eq!(metrics.wal_corruptions.get(), 1);
    // New appends after the repair replay cleanly next time.
    let mut app = db.appender();
    app.append(None, &Labels::from_pairs([("__name__", "x")]), 200_000, 1.0).expect("append");
    app.commit().expect("commit");
    db.close().expect("close");
    let metrics = TsdbMetrics::default();
    let db = Db::open(dir.path(), Options::default(), metrics.clone()).expect("reopen");
    assert_eq!(stored(&db).last(), Some(&200));
    assert_eq!(metrics.wal_corruptions.get(), 0, "the torn tail was cut, not met again");
}

#[test]
fn bit_flip_in_final_segment_skips_only_the_damaged_record() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), 100);
    let seg = last_segment(dir.path());
    let mut bytes = std::fs::read(&seg).expect("read");
    let at = bytes.len() / 2;
    bytes[at] ^= 0x04;
    std::fs::write(&seg, &bytes).expect("write");
    let metrics = TsdbMetrics::default();
    let db = Db::open(dir.path(), Options::default(), metrics.clone()).expect("starts despite a flipped bit");
    let got = stored(&db);
    assert_eq!(metrics.wal_corruptions.get(), 1);
    assert_eq!(got.len(), 99, "exactly one commit lost: {got:?}");
    assert_eq!(got.last(), Some(&100), "records after the damage are kept");
}

#[test]
fn garbage_appended_to_the_final_segment_is_cut() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), 10);
    let seg = last_segment(dir.path());
    let mut bytes = std::fs::read(&seg).expect("read");
    bytes.extend((0..4096u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8));
    std::fs::write(&seg, &bytes).expect("write");
    let metrics = TsdbMetrics::default();
    let db = Db::open(dir.path(), Options::default(), metrics.clone()).expect("starts");
    assert_eq!(stored(&db), (1..=10).collect::<Vec<_>>());
    assert!(metrics.wal_corruptions.get() >= 1);
}
