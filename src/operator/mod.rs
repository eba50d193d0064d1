//! The Kubernetes operator: custom resources (`crd/`), which objects a
//! Prometheus selects (`select.rs`), and what it generates from them
//! (`scrape.rs`, `rules.rs`, `generate.rs`), previewed offline by
//! `hearth operator preview` (`preview.rs`).

pub mod crd;
pub mod generate;
pub mod preview;
pub mod rules;
pub mod scrape;
pub mod select;
