//! The live tickets by id, split into [`SEGMENTS`] std hash maps so that growing the
//! table rehashes a 256th of it under the pool's lock, never the whole (one map of a
//! million tickets took tens of milliseconds to grow).

use std::collections::HashMap;

use super::coin_hashing::CoinHashing;
use super::Ticket;

/// Independent maps the tickets are spread over (by the seeded hash of the id).
const SEGMENTS: usize = 256;

pub(super) struct TicketMap {
    segments: Box<[HashMap<u32, Ticket, CoinHashing>]>,
    len: usize,
    hashing: CoinHashing,
}

impl Default for TicketMap {
    fn default() -> Self {
        let hashing = CoinHashing::default();
        TicketMap {
            segments: (0..SEGMENTS)
                .map(|_| HashMap::with_hasher(hashing.clone()))
                .collect(),
            len: 0,
            hashing,
        }
    }
}

impl TicketMap {
    #[inline]
    fn segment(&self, id: u32) -> usize {
        // Bits 32..40 of the hash: the std table inside the segment takes its bucket from
        // the low bits and its tag from the top 7, so neither is constant within a segment.
        (self.hashing.hash_key(u64::from(id)) >> 32) as usize % SEGMENTS
    }

    /// Live tickets.
    pub(super) fn len(&self) -> usize {
        self.len
    }

    pub(super) fn contains(&self, id: u32) -> bool {
        self.segments[self.segment(id)].contains_key(&id)
    }

    pub(super) fn get(&self, id: u32) -> Option<&Ticket> {
        self.segments[self.segment(id)].get(&id)
    }

    pub(super) fn get_mut(&mut self, id: u32) -> Option<&mut Ticket> {
        let at = self.segment(id);
        self.segments[at].get_mut(&id)
    }

    /// Adds ticket `id` (not live before).
    pub(super) fn insert(&mut self, id: u32, ticket: Ticket) {
        let at = self.segment(id);
        if self.segments[at].insert(id, ticket).is_none() {
            self.len += 1;
        }
    }

    pub(super) fn remove(&mut self, id: u32) -> Option<Ticket> {
        let at = self.segment(id);
        let ticket = self.segments[at].remove(&id)?;
        self.len -= 1;
        Some(ticket)
    }
}
