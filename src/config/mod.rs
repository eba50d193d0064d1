//! Configuration: command-line values in Prometheus' notation (and, later,
//! Prometheus' YAML configuration file).

pub mod units;
