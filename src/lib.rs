//! Hearth: a Kubernetes-native, Prometheus-compatible monitoring system.
//!
//! One folder per concern; see the README for the map.

pub mod config;
pub mod discovery;
pub mod model;
pub mod notify;
pub mod operator;
pub mod promql;
pub mod relabel;
pub mod remote;
pub mod render;
pub mod rules;
pub mod scrape;
pub mod server;
pub mod tsdb;
pub mod web;
