//! The configuration corpus (`tests/config_corpus/`): each file's verdict is
//! in its name (`valid_*`, `invalid_*`, `rules_valid_*`, `rules_invalid_*`),
//! and an invalid file's first line `# expect: TEXT` is text our error must
//! contain (it names the YAML path). When `promtool` is installed, it must
//! reach the same verdict and print the same standard output as
//! `hearth check`.

use std::path::{Path, PathBuf};
use std::process::Command;

use hearth::config::check::{run_check_config, run_check_rules};

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/config_corpus")
}

/// Corpus file names (not paths) starting with `prefix`, sorted.
fn corpus(prefix: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(corpus_dir())
        .expect("corpus directory")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with(prefix) && n.ends_with(".yml"))
        .collect();
    names.sort();
    names
}

fn expected_text(name: &str) -> Option<String> {
    let text = std::fs::read_to_string(corpus_dir().join(name)).expect("corpus file");
    text.lines().next()?.strip_prefix("# expect: ").map(str::to_string)
}

/// Runs a check with the corpus as working directory (as promtool is run),
/// returning (passed, stdout, stderr).
fn check(rules: bool, name: &str) -> (bool, String, String) {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let files = [PathBuf::from(name)];
    let passed = if rules { run_check_rules(&files, &mut out, &mut err) } else { run_check_config(&files, &mut out, &mut err) };
    (passed.expect("writing to memory"), String::from_utf8_lossy(&out).into_owned(), String::from_utf8_lossy(&err).into_owned())
}

fn verdicts(rules: bool) {
    let valid_prefix = if rules { "rules_valid_" } else { "valid_" };
    let invalid_prefix = if rules { "rules_invalid_" } else { "invalid_" };
    let (valid, invalid) = (corpus(valid_prefix), corpus(invalid_prefix));
    assert!(!valid.is_empty() && !invalid.is_empty(), "corpus missing");
    let mut failures = Vec::new();
    for name in valid.iter().chain(&invalid) {
        let (passed, _, err) = check(rules, name);
        let want_valid = name.starts_with(valid_prefix);
        if passed != want_valid {
            failures.push(format!(
                "{name}: expected {}, got {}: {err}",
                if want_valid { "valid" } else { "invalid" },
                if passed { "valid" } else { "invalid" }
            ));
            continue;
        }
        if !want_valid {
            let want = expected_text(name).unwrap_or_else(|| panic!("{name}: first line must be `# expect: TEXT`"));
            if !err.contains(&want) {
                failures.push(format!("{name}: error does not contain {want:?}:\n{err}"));
            }
        }
    }
    assert!(failures.is_empty(), "{} corpus failures:\n{}", failures.len(), failures.join("\n"));
}

// Working directory changes are process-wide: the tests that need the
// corpus as working directory run in one test function.
#[test]
fn config_corpus_verdicts_and_promtool_agreement() {
    assert!(corpus("valid_").len() + corpus("invalid_").len() >= 30, "the corpus should hold at least 30 configurations");
    std::env::set_current_dir(corpus_dir()).expect("cd corpus");
    verdicts(false);
    verdicts(true);
    compare_with_promtool();
}

fn compare_with_promtool() {
    if Command::new("promtool").arg("--version").output().is_err() {
        println!("\n********************************************************");
        println!("SKIPPED: promtool not installed; corpus not compared with promtool");
        println!("(apt-get install prometheus provides it)");
        println!("********************************************************\n");
        return;
    }
    let hearth = env!("CARGO_BIN_EXE_hearth");
    let mut failures = Vec::new();
    let mut compared = 0;
    for (sub, prefix) in [("config", "valid_"), ("config", "invalid_"), ("rules", "rules_")] {
        for name in corpus(prefix) {
            let run = |bin: &str| Command::new(bin).args(["check", sub, &name]).output().expect("run checker");
            let (ours, theirs) = (run(hearth), run("promtool"));
            let their_err = String::from_utf8_lossy(&theirs.stderr);
            // Debian's promtool is built without Kubernetes discovery.
            if their_err.contains("field kubernetes_sd_configs not found") {
                println!("not compared with promtool (its build lacks kubernetes_sd_configs): {name}");
                continue;
            }
            compared += 1;
            let ok = |o: &std::process::Output| o.status.success();
            if ok(&ours) != ok(&theirs) {
                failures.push(format!(
                    "{name}: promtool {} but hearth {}\npromtool: {their_err}\nhearth: {}",
                    if ok(&theirs) { "accepts" } else { "rejects" },
                    if ok(&ours) { "accepts" } else { "rejects" },
                    String::from_utf8_lossy(&ours.stderr)
                ));
            } else if ours.stdout != theirs.stdout {
                failures.push(format!(
                    "{name}: standard output differs\npromtool:\n{}\nhearth:\n{}",
                    String::from_utf8_lossy(&theirs.stdout),
                    String::from_utf8_lossy(&ours.stdout)
                ));
            }
        }
    }
    println!("compared {compared} corpus files with promtool");
    assert!(failures.is_empty(), "{} disagreements with promtool:\n{}", failures.len(), failures.join("\n\n"));
}

#[test]
fn config_check_output_has_promtool_shape() {
    let dir = corpus_dir();
    let hearth = env!("CARGO_BIN_EXE_hearth");
    let out = Command::new(hearth)
        .current_dir(&dir)
        .args(["check", "config", "valid_rule_files.yml", "invalid_duplicate_job.yml"])
        .output()
        .expect("run hearth");
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        stdout,
        "Checking valid_rule_files.yml\n  SUCCESS: 3 rule files found\n SUCCESS: valid_rule_files.yml is valid prometheus config file syntax\n\n\
         Checking support/rules/recording.yml\n  SUCCESS: 2 rules found\n\n\
         Checking support/rules/alerting.yml\n  SUCCESS: 1 rules found\n\n\
         Checking support/rules/recording.yml\n  SUCCESS: 2 rules found\n\n\
         Checking invalid_duplicate_job.yml\n\n"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr,
        "  FAILED: parsing YAML file invalid_duplicate_job.yml:6:15: scrape_configs[1].job_name: found multiple scrape configs with job name \"node\"\n"
    );
    let ok = Command::new(hearth).current_dir(&dir).args(["check", "rules", "rules_valid_example.yml"]).output().expect("run hearth");
    assert!(ok.status.success());
    assert_eq!(String::from_utf8_lossy(&ok.stdout), "Checking rules_valid_example.yml\n  SUCCESS: 3 rules found\n\n");
}
