//! Kubernetes service discovery (`kubernetes_sd_configs`).
//!
//! (Being written: role conversions in their own files, the shared watch
//! layer in `watch.rs`.)

pub mod endpoints;
pub mod endpointslice;
pub mod ingress;
pub mod meta;
pub mod node;
pub mod pod;
pub mod service;

pub mod client;
pub mod provider;
pub mod watch;
