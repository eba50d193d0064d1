//! Remote write 1.0, both ways.
//!
//! Sending: each `remote_write` entry is a queue ([`queue`]) that tails our
//! own WAL ([`watcher`]) from a saved position, so nothing is lost across
//! our restarts or the receiver's outages, and sends batches through shards
//! ([`shards`], [`client`]) as snappy-compressed protobuf ([`codec`],
//! [`proto`]); [`manager`] applies the configuration on reload and
//! [`metrics`] reports under Prometheus' names.
//!
//! Receiving: [`receive`] is `POST /api/v1/write`, enabled by
//! `--web.enable-remote-write-receiver`.
//!
//! See docs/remote-write.md for use and limits.

pub mod client;
pub mod codec;
pub mod manager;
pub mod metrics;
pub mod proto;
pub mod queue;
pub mod receive;
pub mod shards;
#[cfg(test)]
mod test_sink;
pub mod watcher;

pub use manager::RemoteStorage;
