//! Kubernetes service discovery (`kubernetes_sd_configs`).
//!
//! (Being written: role conversions in their own files, the shared watch
//! layer in `watch.rs`.)
