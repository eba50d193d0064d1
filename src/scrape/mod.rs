//! Scraping: turning targets' metrics expositions into stored samples.
//!
//! [`manager`] keeps one [`pool`] per scrape config in step with the
//! configuration; a pool keeps one [`scrape_loop`] per discovered
//! [`target`]; each scrape is [`parse`]d and [`ingest`]ed through the
//! target's series [`cache`], and its [`metadata`] kept for the API.

pub mod cache;
pub mod client;
pub mod ingest;
pub mod manager;
pub mod metadata;
pub mod parse;
pub mod pool;
pub mod scrape_loop;
pub mod target;
pub mod tls;
