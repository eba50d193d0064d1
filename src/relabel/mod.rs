//! Relabeling: rewriting target and series labels by Prometheus' rules.
//!
//! (Being written; see `config.rs` for the configuration shape.)

pub mod config;

pub use config::{Action, RelabelConfig};
