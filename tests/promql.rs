//! Hearth's own PromQL cases (tests/promql/*.test, in Prometheus' promqltest
//! format) run through the script runner.

use std::path::{Path, PathBuf};

use hearth::promql::promqltest::{run_file, run_file_with};
use hearth::promql::{EngineOptions, Parallelism};

fn scripts() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/promql");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "test"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no scripts in {}", dir.display());
    files
}

/// Every script parses and its data loads, whatever the evaluator returns.
#[test]
fn scripts_are_well_formed() {
    let errors: Vec<String> = scripts().iter().filter_map(|f| run_file(f, false).err()).collect();
    assert!(errors.is_empty(), "{}", errors.join("\n"));
}

#[test]
fn scripts_pass() {
    let mut problems = Vec::new();
    let mut passed = 0;
    for f in scripts() {
        match run_file(&f, false) {
            Ok(o) => {
                passed += o.passed;
                problems.extend(o.details);
            }
            Err(e) => problems.push(e),
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert!(passed > 0);
}

/// The upstream conformance scripts the evaluator must pass (shared/ beside
/// the checkout; never copied into the repository). Evals that need native
/// histograms count as skipped; nothing may fail.
#[test]
fn upstream_conformance_scripts_pass() {
    conformance(EngineOptions::default());
}

/// Every range query split into runs of single steps on three threads gives
/// the same results, errors and annotations as one thread.
#[test]
fn scripts_pass_with_every_range_query_split_across_threads() {
    let split = || EngineOptions { parallelism: Parallelism { threads: 3, min_work: 0, min_steps: 1 }, ..EngineOptions::default() };
    let mut problems = Vec::new();
    for f in scripts() {
        match run_file_with(&f, false, split()) {
            Ok(o) => problems.extend(o.details),
            Err(e) => problems.push(e),
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    conformance(split());
}

fn conformance(opts: EngineOptions) {
    const FILES: [&str; 10] = [
        "functions",
        "operators",
        "histograms",
        "at_modifier",
        "literals",
        "staleness",
        "range_queries",
        "collision",
        "limit",
        "name_label_dropping",
    ];
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/conformance/promql");
    if !dir.exists() {
        eprintln!("SKIPPING upstream PromQL conformance: {} is not present", dir.display());
        return;
    }
    let (mut passed, mut skipped, mut problems) = (0, 0, Vec::new());
    for f in FILES {
        match run_file_with(&dir.join(format!("{f}.test")), false, opts.clone()) {
            Ok(o) => {
                passed += o.passed;
                skipped += o.skipped;
                problems.extend(o.details);
            }
            Err(e) => problems.push(e),
        }
    }
    eprintln!("upstream PromQL conformance: {passed} passed, {} failed, {skipped} skipped", problems.len());
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert!(passed > 500, "only {passed} evals passed");
}
