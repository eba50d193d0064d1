//! Sample encodings.
//!
//! - [`xor`]: Gorilla-style bit-packed chunks for the head, appendable one
//!   sample at a time (delta-of-delta timestamps, XOR'd floats).
//! - [`decimal`]: the denser block encoding written once at compaction:
//!   values as scaled integers with delta coding, byte-aligned so that the
//!   general-purpose compressor over block pages can squeeze it further.

pub mod decimal;
pub mod xor;

pub use xor::{XorChunk, XorIter};
