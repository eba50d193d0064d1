//! The Kubernetes operator: custom resources (`crd/`) and, as it grows,
//! their reconciliation into `hearth server` StatefulSets.

pub mod crd;
