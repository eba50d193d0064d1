//! Helpers for tests/real_targets.rs: an HTTP client, an exposition parser
//! of our own (independent of the crate's), and process guards. The peers it
//! runs (install_peers.sh, the Python apps) live beside this file.

pub mod exposition;
pub mod http;
pub mod peers;
pub mod procs;
