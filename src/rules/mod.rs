//! Recording and alerting rules.
//!
//! For now the rule file format (`file.rs`), which `hearth check rules` and
//! `hearth check config` validate like promtool; the evaluator reads the
//! same types.

pub mod file;

pub use file::{Rule, RuleFile, RuleFileError, RuleGroup, duplicate_rules, load_rule_file, parse_rule_file};
