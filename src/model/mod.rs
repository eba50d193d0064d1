//! The data model every other part shares: label sets, label matchers and samples.
//!
//! These types are deliberately plain so that the TSDB, PromQL, scraping and
//! relabeling can pass them around without converting between representations.

pub mod labels;
pub mod matcher;
pub mod sample;
pub mod time;

pub use labels::{Label, Labels, LabelsBuilder};
pub use matcher::{MatchOp, Matcher, MatcherError};
pub use sample::{STALE_NAN_BITS, Sample, is_stale_nan, stale_nan};
