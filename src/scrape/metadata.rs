//! Metric metadata (HELP, TYPE, UNIT) as each target last exposed it, for
//! `/api/v1/metadata` and `/api/v1/targets/metadata`.

use std::collections::HashMap;
use std::sync::Arc;

use crate::scrape::parse::{Entry, MetricType};

/// What a target says about one metric family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metadata {
    pub kind: MetricType,
    pub help: String,
    pub unit: String,
}

impl Default for Metadata {
    fn default() -> Self {
        Metadata { kind: MetricType::Unknown, help: String::new(), unit: String::new() }
    }
}

/// One target's metadata: the last successful scrape's, so a failed scrape
/// does not wipe what the API shows.
#[derive(Debug, Default)]
pub struct MetadataSet {
    current: Arc<HashMap<String, Metadata>>,
    next: HashMap<String, Metadata>,
}

impl MetadataSet {
    /// Starts collecting a scrape's metadata.
    pub fn begin(&mut self) {
        self.next.clear();
    }

    pub fn add(&mut self, e: Entry) {
        match e {
            Entry::Help { family, text } => self.next.entry(family).or_default().help = text,
            Entry::Type { family, kind } => self.next.entry(family).or_default().kind = kind,
            Entry::Unit { family, unit } => self.next.entry(family).or_default().unit = unit,
            Entry::Sample { .. } => {}
        }
    }

    /// The scrape succeeded: its metadata becomes current.
    pub fn commit(&mut self) {
        self.current = Arc::new(std::mem::take(&mut self.next));
    }

    /// Current metadata by family name; shared, so the API can hold it while
    /// later scrapes replace it.
    pub fn families(&self) -> Arc<HashMap<String, Metadata>> {
        self.current.clone()
    }
}
