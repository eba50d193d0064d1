//! One lock stripe's series, stored as a slab indexed by `id / STRIPES`.
//!
//! Ids are handed out in increasing order, so the series one target creates
//! together sit next to each other in memory and a commit walks them in
//! order, without hashing. Removed series leave an empty slot (8 bytes);
//! leading empty slots are released, which reclaims the common case of old
//! series going away first.

use std::collections::VecDeque;

use super::STRIPES;
use super::series::MemSeries;

/// The series of one stripe.
pub struct Stripe {
    /// This stripe's number (`id % STRIPES`).
    k: u32,
    /// Slot number (`id / STRIPES`) of `slots[0]`.
    base: u32,
    slots: VecDeque<Option<Box<MemSeries>>>,
    len: usize,
}

fn slot_of(id: u32) -> u32 {
    id / STRIPES as u32
}

impl Stripe {
    pub fn new(k: usize) -> Self {
        Stripe { k: k as u32, base: 0, slots: VecDeque::new(), len: 0 }
    }

    fn index(&self, id: u32) -> Option<usize> {
        let s = slot_of(id).checked_sub(self.base)? as usize;
        (s < self.slots.len()).then_some(s)
    }

    pub fn get(&self, id: &u32) -> Option<&MemSeries> {
        self.index(*id).and_then(|i| self.slots[i].as_deref())
    }

    pub fn get_mut(&mut self, id: &u32) -> Option<&mut MemSeries> {
        let i = self.index(*id)?;
        self.slots[i].as_deref_mut()
    }

    pub fn contains_key(&self, id: &u32) -> bool {
        self.get(id).is_some()
    }

    /// Stores a series under `id`, replacing any previous one.
    pub fn insert(&mut self, id: u32, s: MemSeries) {
        let slot = slot_of(id);
        if self.slots.is_empty() {
            self.base = slot;
        }
        while slot < self.base {
            self.slots.push_front(None);
            self.base -= 1;
        }
        let i = (slot - self.base) as usize;
        while self.slots.len() <= i {
            self.slots.push_back(None);
        }
        if self.slots[i].replace(Box::new(s)).is_none() {
            self.len += 1;
        }
    }

    pub fn remove(&mut self, id: &u32) -> Option<MemSeries> {
        let i = self.index(*id)?;
        let s = self.slots[i].take()?;
        self.len -= 1;
        while let Some(None) = self.slots.front() {
            self.slots.pop_front();
            self.base += 1;
        }
        Some(*s)
    }

    /// Every series with its id.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (u32, &mut MemSeries)> {
        let (base, k) = (self.base, self.k);
        self.slots.iter_mut().enumerate().filter_map(move |(i, s)| s.as_deref_mut().map(|s| ((base + i as u32) * STRIPES as u32 + k, s)))
    }

    pub fn values(&self) -> impl Iterator<Item = &MemSeries> {
        self.slots.iter().filter_map(|s| s.as_deref())
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}
