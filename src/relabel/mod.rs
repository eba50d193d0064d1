//! Relabeling: rewriting target and series labels by Prometheus' rules.
//!
//! A list of [`RelabelConfig`]s (`relabel_configs`, `metric_relabel_configs`)
//! is validated and compiled once into a [`Relabeler`], which then rewrites
//! label sets: target labels after discovery, series labels after a scrape.
//! Every action behaves as in Prometheus 3 (`model/relabel`), down to Go's
//! regex dialect, its `$` template rules and the MD5 arithmetic of
//! `hashmod`, so shards and label sets agree with a Prometheus running the
//! same configuration.

pub mod config;
mod engine;
pub mod goregex;
mod md5;
pub mod template;

pub use config::{Action, NameValidation, RelabelConfig};
pub use engine::{RelabelError, Relabeler};
