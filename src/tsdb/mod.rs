//! Hearth's time-series database.
//!
//! Recent data lives in the [`head`] (in memory, made durable by the [`wal`]);
//! older data in immutable [`block`]s on disk that [`compact`] produces and
//! merges and that retention deletes. A [`querier::Querier`] reads across all
//! of them. The mechanisms live one per module, as in Prometheus' `tsdb/`.

pub mod analyze;
pub mod backfill;
pub mod bench;
pub mod block;
pub mod chunkenc;
pub mod compact;
pub mod db;
pub mod encoding;
pub mod head;
pub mod idhash;
pub mod index;
pub mod metrics;
pub mod postings;
pub mod querier;
pub mod replay;
pub mod symbols;
pub mod tombstones;
pub mod wal;

pub use db::{Db, DbError, Options};
pub use head::{AppendError, Appender, SeriesRef};
pub use querier::{Querier, Series};
