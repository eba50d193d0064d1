//! `hearth check config` and `hearth check rules`: promtool's `check config`
//! and `check rules`, with the same output shape and exit status, so scripts
//! and CI jobs written for promtool work with Hearth.
//!
//! Beyond loading the configuration, checking it does what promtool does:
//! referenced rule files, credential and certificate files must exist,
//! file SD files must parse, and targets must be scrapeable addresses.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::model::{Config, ScrapeConfig, StaticConfig, TlsConfig, format_duration, parse_duration};
use super::{check_target_address, is_valid_label_name};
use crate::discovery::glob::expand as glob;
use crate::rules::{self, RuleFile};

/// What checking one configuration file found.
#[derive(Debug)]
pub struct CheckedConfig {
    pub config: Config,
    /// The rule files it references, globs expanded.
    pub rule_files: Vec<PathBuf>,
    /// Problems that do not fail the check (a file SD file that does not exist yet).
    pub warnings: Vec<String>,
}

/// Checks one configuration file like promtool's `checkConfig`; the error is
/// the message promtool would print after `FAILED:`.
pub fn check_config_file(path: &Path) -> Result<CheckedConfig, String> {
    let config = Config::load_file(path).map_err(|e| e.to_string())?;
    let mut rule_files = Vec::new();
    for rf in &config.rule_files {
        let found = glob(rf);
        // An explicit file must exist; a glob may match nothing.
        if !rf.contains('*') {
            let Some(first) = found.first() else {
                return Err(format!("{:?} does not point to an existing file", shown(rf)));
            };
            file_exists(&first.to_string_lossy())
                .map_err(|e| format!("error checking rule file {:?}: {e}", shown(&first.to_string_lossy())))?;
        }
        rule_files.extend(found);
    }

    let mut warnings = Vec::new();
    for sc in &config.scrape_configs {
        if let Some(f) = sc.http_client.authorization.as_ref().and_then(|a| a.credentials_file.as_deref()) {
            file_exists(f).map_err(|e| format!("error checking authorization credentials or bearer token file {:?}: {e}", shown(f)))?;
        }
        check_tls_files(&sc.http_client.tls_config)?;
        for k in &sc.kubernetes_sd_configs {
            check_tls_files(&k.http_client.tls_config)?;
        }
        for fsd in &sc.file_sd_configs {
            for pattern in &fsd.files {
                let files = glob(pattern);
                if files.is_empty() {
                    warnings.push(format!("file {:?} for file_sd in scrape job {:?} does not exist", shown(pattern), sc.job_name));
                }
                for f in files {
                    let groups = load_target_groups(&f).map_err(|e| format!("checking SD file {:?}: {e}", shown(pattern)))?;
                    check_scrape_targets(&groups, sc)?;
                }
            }
        }
        check_scrape_targets(&sc.static_configs, sc)?;
    }
    for am in &config.alerting.alertmanagers {
        for fsd in &am.file_sd_configs {
            for pattern in &fsd.files {
                let files = glob(pattern);
                if files.is_empty() {
                    warnings.push(format!("file {:?} for file_sd in alertmanager config does not exist", shown(pattern)));
                }
                for f in files {
                    let groups = load_target_groups(&f).map_err(|e| format!("checking SD file {:?}: {e}", shown(pattern)))?;
                    if am.relabel_configs.is_empty() {
                        for g in &groups {
                            for t in &g.targets {
                                check_target_address(t)?;
                            }
                        }
                    }
                }
            }
        }
    }
    Ok(CheckedConfig { config, rule_files, warnings })
}

/// A resolved path as the user would write it: relative to the working
/// directory when under it (Prometheus keeps paths relative to a relative
/// config file; Hearth makes them absolute but shows them the same way).
fn shown(path: &str) -> String {
    let cwd = std::env::current_dir().ok();
    cwd.and_then(|d| Path::new(path).strip_prefix(d).ok().map(|p| p.to_string_lossy().into_owned())).unwrap_or_else(|| path.to_string())
}

/// Like Go's `os.Stat` check: nothing configured is fine.
fn file_exists(f: &str) -> Result<(), String> {
    if f.is_empty() {
        return Ok(());
    }
    std::fs::metadata(f).map(|_| ()).map_err(|e| format!("stat {}: {}", shown(f), io_message(&e)))
}

/// The OS message without Rust's " (os error N)" suffix, as Go prints it.
fn io_message(e: &io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_lowercase(),
        None => s,
    }
}

fn check_tls_files(tls: &TlsConfig) -> Result<(), String> {
    if let Some(c) = &tls.cert_file {
        file_exists(c).map_err(|e| format!("error checking client cert file {:?}: {e}", shown(c)))?;
    }
    if let Some(k) = &tls.key_file {
        file_exists(k).map_err(|e| format!("error checking client key file {:?}: {e}", shown(k)))?;
    }
    Ok(())
}

/// Reads a file SD file: a JSON or YAML list of `{targets, labels}` groups,
/// strict about field names and label names as Prometheus is.
pub fn load_target_groups(path: &Path) -> Result<Vec<StaticConfig>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("open {}: {}", path.display(), io_message(&e)))?;
    // YAML is a superset of JSON, so one parser reads both forms.
    let groups: Vec<StaticConfig> = super::yaml::from_str(&text).map_err(|e| e.to_string())?;
    for g in &groups {
        if let Some(bad) = g.labels.keys().find(|n| !is_valid_label_name(n)) {
            return Err(format!("{bad:?} is not a valid label name"));
        }
    }
    Ok(groups)
}

/// What Prometheus' `PopulateLabels` rejects for a target before scraping it.
/// With relabeling configured the final labels are unknown here, so only
/// jobs without `relabel_configs` are checked.
fn check_scrape_targets(groups: &[StaticConfig], sc: &ScrapeConfig) -> Result<(), String> {
    if !sc.relabel_configs.is_empty() {
        return Ok(());
    }
    for g in groups {
        for (i, addr) in g.targets.iter().enumerate() {
            check_scrape_target(addr, &g.labels, sc).map_err(|e| format!("instance {i} in group : {e}"))?;
        }
    }
    Ok(())
}

fn check_scrape_target(addr: &str, labels: &BTreeMap<String, String>, sc: &ScrapeConfig) -> Result<(), String> {
    let label = |name: &str, default: String| labels.get(name).filter(|v| !v.is_empty()).cloned().unwrap_or(default);
    if addr.is_empty() {
        return Err("no address".to_string());
    }
    let scheme = label("__scheme__", sc.scheme.clone());
    let needs_port = split_host_port(addr).is_err() && split_host_port(&format!("{addr}:1234")).is_ok();
    let addr = match (needs_port, scheme.as_str()) {
        (false, _) => addr.to_string(),
        (true, "http" | "") => format!("{addr}:80"),
        (true, "https") => format!("{addr}:443"),
        (true, _) => return Err(format!("invalid scheme: {:?}", sc.scheme)),
    };
    check_target_address(&addr)?;
    let interval = label("__scrape_interval__", format_duration(sc.scrape_interval));
    let timeout = label("__scrape_timeout__", format_duration(sc.scrape_timeout));
    let i = parse_duration(&interval).map_err(|e| format!("error parsing scrape interval: {e}"))?;
    if i.is_zero() {
        return Err("scrape interval cannot be 0".to_string());
    }
    let t = parse_duration(&timeout).map_err(|e| format!("error parsing scrape timeout: {e}"))?;
    if t.is_zero() {
        return Err("scrape timeout cannot be 0".to_string());
    }
    if t > i {
        return Err(format!("scrape timeout cannot be greater than scrape interval ({timeout:?} > {interval:?})"));
    }
    Ok(())
}

/// Go's `net.SplitHostPort`: `host:port` or `[v6]:port`; the port may be empty.
fn split_host_port(s: &str) -> Result<(&str, &str), ()> {
    let i = s.rfind(':').ok_or(())?;
    let (host, j, k) = if s.starts_with('[') {
        let end = s.find(']').ok_or(())?;
        if end + 1 != i {
            return Err(());
        }
        (&s[1..end], 1, end + 1)
    } else {
        let host = &s[..i];
        if host.contains(':') {
            return Err(());
        }
        (host, 0, 0)
    };
    if s[j..].contains('[') || s[k..].contains(']') {
        return Err(());
    }
    Ok((host, &s[i + 1..]))
}

/// Runs `check config` over `files`, writing promtool's output; returns
/// whether all passed (lint findings alone do not fail, as in promtool).
pub fn run_check_config(files: &[PathBuf], out: &mut dyn Write, err: &mut dyn Write) -> io::Result<bool> {
    let mut ok = true;
    for f in files {
        writeln!(out, "Checking {}", f.display())?;
        let rule_files = match check_config_file(f) {
            Ok(checked) => {
                for w in &checked.warnings {
                    writeln!(out, "  WARNING: {w}")?;
                }
                if !checked.rule_files.is_empty() {
                    writeln!(out, "  SUCCESS: {} rule files found", checked.rule_files.len())?;
                }
                writeln!(out, " SUCCESS: {} is valid prometheus config file syntax", f.display())?;
                checked.rule_files
            }
            Err(e) => {
                writeln!(err, "  FAILED: {e}")?;
                ok = false;
                Vec::new()
            }
        };
        writeln!(out)?;
        for rf in rule_files {
            ok &= check_one_rule_file(Path::new(&shown(&rf.to_string_lossy())), out, err, "     ")?;
        }
    }
    Ok(ok)
}

/// Runs `check rules` over `files`, writing promtool's output; returns whether all passed.
pub fn run_check_rules(files: &[PathBuf], out: &mut dyn Write, err: &mut dyn Write) -> io::Result<bool> {
    let mut ok = true;
    for f in files {
        ok &= check_one_rule_file(f, out, err, "")?;
    }
    Ok(ok)
}

/// Checks one rule file; errors are printed with `indent`. Returns false on
/// errors, true on success or lint findings only.
fn check_one_rule_file(path: &Path, out: &mut dyn Write, err: &mut dyn Write, indent: &str) -> io::Result<bool> {
    writeln!(out, "Checking {}", path.display())?;
    let ok = match rules::load_rule_file(path) {
        Ok(file) => match duplicate_rules_message(&file) {
            Some(lint) => {
                writeln!(err, "  FAILED:")?;
                writeln!(err, "{indent}{lint}")?;
                true
            }
            None => {
                let n: usize = file.groups.iter().map(|g| g.rules.len()).sum();
                writeln!(out, "  SUCCESS: {n} rules found")?;
                true
            }
        },
        Err(errors) => {
            writeln!(err, "  FAILED:")?;
            for e in errors {
                writeln!(err, "{indent}{e}")?;
            }
            false
        }
    };
    writeln!(out)?;
    Ok(ok)
}

/// promtool's default `duplicate-rules` lint: rules with the same name and labels.
fn duplicate_rules_message(file: &RuleFile) -> Option<String> {
    let dups = rules::duplicate_rules(file);
    if dups.is_empty() {
        return None;
    }
    let mut msg = format!("lint error {} duplicate rule(s) found.\n", dups.len());
    for (name, labels) in dups {
        msg.push_str(&format!("Metric: {name}\nLabel(s):\n"));
        for (k, v) in labels {
            msg.push_str(&format!("\t{k}: {v}\n"));
        }
    }
    msg.push_str("Might cause inconsistency while recording expressions");
    Some(msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port_splits_like_go() {
        assert_eq!(split_host_port("a:80"), Ok(("a", "80")));
        assert_eq!(split_host_port("[::1]:80"), Ok(("::1", "80")));
        assert_eq!(split_host_port("a:"), Ok(("a", "")));
        assert!(split_host_port("a").is_err());
        assert!(split_host_port("::1").is_err());
        assert!(split_host_port("[::1]").is_err());
        assert!(split_host_port("a:b:c").is_err());
    }

    #[test]
    fn targets_without_port_need_a_known_scheme() {
        let mut sc = Config::parse("scrape_configs: [{job_name: a}]", Path::new("/")).map(|c| c.scrape_configs[0].clone()).unwrap();
        let none = BTreeMap::new();
        assert_eq!(check_scrape_target("host", &none, &sc), Ok(()));
        sc.scheme = "ftp".into();
        assert_eq!(check_scrape_target("host", &none, &sc), Err("invalid scheme: \"ftp\"".into()));
        assert_eq!(check_scrape_target("host:21", &none, &sc), Ok(()));
        let slow = BTreeMap::from([("__scrape_timeout__".to_string(), "2m".to_string())]);
        assert_eq!(
            check_scrape_target("host:21", &slow, &sc),
            Err("scrape timeout cannot be greater than scrape interval (\"2m\" > \"1m\")".into())
        );
    }
}
