//! Scraping: turning a target's metrics exposition into samples for storage.

pub mod parse;
