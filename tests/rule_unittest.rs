//! `hearth test rules` against promtool's own `test rules` on the same
//! unit-test files (tests/rule_tests/*_test.yml): the same verdict (exit
//! status) for each, and for failing files the same report. promtool 2.42
//! comes from Debian (tests/support/install_peers.sh).

#[allow(dead_code)]
mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

fn say(msg: String) {
    eprintln!("[rule_unittest] {msg}");
}

/// Exit success, stdout and stderr.
fn run(bin: &str, file: &Path) -> (bool, String, String) {
    let out = Command::new(bin)
        .args(["test", "rules"])
        .arg(file.file_name().expect("file name"))
        .current_dir(file.parent().expect("dir"))
        .output()
        .unwrap_or_else(|e| panic!("run {bin}: {e}"));
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn verdicts_and_reports_match_promtool() {
    support::peers::install(say);
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/rule_tests");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("read tests/rule_tests")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().ends_with("_test.yml")))
        .collect();
    files.sort();
    assert!(files.len() >= 2, "unit-test corpus missing");
    let mut passed = 0;
    for f in &files {
        let (ours_ok, ours, ours_err) = run(env!("CARGO_BIN_EXE_hearth"), f);
        let (theirs_ok, theirs, theirs_err) = run("promtool", f);
        assert_eq!(ours_ok, theirs_ok, "{}: verdicts differ\nhearth:\n{ours}{ours_err}\npromtool:\n{theirs}{theirs_err}", f.display());
        assert_eq!(ours, theirs, "{}: reports differ", f.display());
        if !theirs_ok {
            assert_eq!(ours_err, theirs_err, "{}: failure reports differ", f.display());
        }
        passed += usize::from(ours_ok);
    }
    assert!(passed >= 1 && passed < files.len(), "the corpus has both passing and failing files");
}
