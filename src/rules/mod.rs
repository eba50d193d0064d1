//! Recording and alerting rules: the rule file format (`file.rs`, also
//! checked by `hearth check rules`), their evaluation (`recording.rs`,
//! `alerting.rs`, grouped in `group.rs`), alert templates (`template/`,
//! `expand.rs`) and the manager that runs the configured groups.

pub mod alerting;
pub mod expand;
pub mod file;
pub mod group;
pub mod manager;
pub mod metrics;
pub mod query;
pub mod recording;
pub mod template;
pub mod unittest;

pub use file::{Rule, RuleFile, RuleFileError, RuleGroup, duplicate_rules, load_rule_file, parse_rule_file};
