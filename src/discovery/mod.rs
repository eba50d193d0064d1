//! Service discovery: where scrape targets come from.
//!
//! (Being written.)
