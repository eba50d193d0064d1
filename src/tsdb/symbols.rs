//! String interning: every distinct label name and value is stored once.
//!
//! Series hold `u32` symbol ids instead of strings, which is most of what keeps
//! the per-series memory small. Symbols are reference-counted so that series
//! churn does not grow the table forever; freed ids are reused.

use std::collections::HashMap;
use std::sync::Arc;

use xxhash_rust::xxh3::Xxh3DefaultBuilder;

/// An interned string table with reference counts.
#[derive(Default)]
pub struct Symbols {
    /// xxh3 rather than SipHash: interning is on the series-creation and
    /// WAL-replay paths, and label strings are hashed once each.
    ids: HashMap<Arc<str>, u32, Xxh3DefaultBuilder>,
    strings: Vec<Option<(Arc<str>, u32)>>,
    free: Vec<u32>,
}

impl Symbols {
    pub fn new() -> Self {
        Self::default()
    }

    /// Interns `s`, taking one reference.
    pub fn intern(&mut self, s: &str) -> u32 {
        if let Some(&id) = self.ids.get(s) {
            if let Some(Some((_, rc))) = self.strings.get_mut(id as usize) {
                *rc += 1;
            }
            return id;
        }
        let a: Arc<str> = Arc::from(s);
        let id = match self.free.pop() {
            Some(id) => {
                self.strings[id as usize] = Some((a.clone(), 1));
                id
            }
            None => {
                self.strings.push(Some((a.clone(), 1)));
                (self.strings.len() - 1) as u32
            }
        };
        self.ids.insert(a, id);
        id
    }

    /// The id of `s` without taking a reference.
    pub fn lookup(&self, s: &str) -> Option<u32> {
        self.ids.get(s).copied()
    }

    /// Drops one reference; the string is freed with its last one.
    pub fn release(&mut self, id: u32) {
        let Some(slot) = self.strings.get_mut(id as usize) else {
            return;
        };
        let Some((s, rc)) = slot else { return };
        *rc -= 1;
        if *rc == 0 {
            self.ids.remove(s);
            *slot = None;
            self.free.push(id);
        }
    }

    /// The string for a live id ("" for an unknown one, which cannot happen
    /// for ids held by live series).
    pub fn get(&self, id: u32) -> &str {
        match self.strings.get(id as usize) {
            Some(Some((s, _))) => s,
            _ => "",
        }
    }

    /// Number of live symbols.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interning_is_shared_and_released_with_the_last_reference() {
        let mut s = Symbols::new();
        let a = s.intern("job");
        assert_eq!(s.intern("job"), a);
        assert_eq!(s.get(a), "job");
        s.release(a);
        assert_eq!(s.lookup("job"), Some(a));
        s.release(a);
        assert_eq!(s.lookup("job"), None);
        let b = s.intern("instance");
        assert_eq!(b, a, "freed ids are reused");
        assert_eq!(s.len(), 1);
    }
}
