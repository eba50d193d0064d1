//! The Kubernetes operator: custom resources (`crd/`), which objects a
//! Prometheus selects (`select.rs`), what it generates from them
//! (`scrape.rs`, `rules.rs`, `generate.rs`, previewed offline by `hearth
//! operator preview` in `preview.rs`), the objects that run it
//! (`workload.rs`), and the controller that keeps them in place
//! (`controller.rs`, `reconcile.rs`, `apply.rs`, `status.rs`,
//! `propagation.rs`, `metrics.rs`).

pub mod apply;
pub mod controller;
pub mod crd;
pub mod generate;
pub mod metrics;
pub mod preview;
pub mod propagation;
pub mod reconcile;
pub mod rules;
pub mod scrape;
pub mod secret_cache;
pub mod secrets;
pub mod select;
pub mod status;
pub mod workload;
