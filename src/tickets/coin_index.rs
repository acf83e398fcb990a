//! The pool's index of which live tickets hold each coin: an open-addressing table keyed
//! by a coin's packed wire bytes, split into [`SEGMENTS`] independent segments.
//!
//! get_ticket touches one entry per coin, so this is the pool's hot path. Compared with a
//! general hash map it does less per coin: one seeded multiply-xorshift hash (its top
//! byte picks the segment, its low bits the home slot), linear probing over 24-byte slots
//! that hold the key and the holders side by side (a lookup reads one or two cache
//! lines), no tombstones (a removal shifts the following entries back). A segment grows
//! from 9/16 full (a probe finds a coin in about 1.6 slots on average), at most a few
//! segments per request ([`CoinIndex::allow_growths`]), and always at 7/8.
//!
//! Why segments: a table grows by rehashing every entry into one twice as large, and it
//! does so under the pool's lock. One table of the pool's largest size (2^21 slots) took
//! tens of milliseconds to grow, stalling every get_ticket and claim of the server; a
//! segment holds a 256th of the coins, so its growth moves at most about 7,200 entries
//! (in the pool's largest index, under 3,600), about 0.1 ms.
//!
//! Memory: 24 bytes a slot, each segment's slot count a power of two. The pool holds at
//! most [`MAX_COINS_HELD`](super::MAX_COINS_HELD) = 2^20 coins, 4,096 a segment on
//! average; the seeded hash spreads coins the requester cannot choose the placement of,
//! so a segment's count stays within a few standard deviations (64) of that, below 4,608
//! (9/16 of 8,192, where it could next grow): the largest index is 256 x 8,192 slots =
//! 48 MiB. A segment keeps its
//! high-water size (it does not shrink when tickets go). Nothing is allocated before the
//! first coin of a segment.

use super::coin_hashing::CoinHashing;
use crate::protocol::CoinKey;

/// The most live tickets one coin sits on (the pool's `MAX_TICKETS_PER_COIN`).
pub(super) const MAX_HOLDERS: usize = 4;

/// The live tickets holding one coin, oldest first, then zeros (an id is never 0).
pub(super) type Holders = [u32; MAX_HOLDERS];

/// Independent tables the coins are spread over (by the hash's top byte).
pub(super) const SEGMENTS: usize = 256;
/// Marks a used slot; coin keys use 40 bits, so no key has it.
const USED: u64 = 1 << 63;
/// A segment's first allocation, in slots.
const MIN_SLOTS: usize = 64;

#[derive(Clone, Copy, Default)]
struct Entry {
    /// `USED | key`, or 0 when free.
    tagged_key: u64,
    holders: Holders,
}

/// One segment: a linear-probing table of its own.
#[derive(Default)]
struct Segment {
    slots: Vec<Entry>,
    len: usize,
    /// From this many entries (9/16 of the slots) the segment grows when the request
    /// still has a growth to spend ([`CoinIndex::allow_growths`]).
    soft_max_len: usize,
    /// From this many (7/8) it grows whatever the request has spent.
    hard_max_len: usize,
}

/// Coin key → its holders.
pub(super) struct CoinIndex {
    segments: Box<[Segment]>,
    len: usize,
    /// Growths the current request may still make at the soft limit.
    spare_growths: usize,
    hashing: CoinHashing,
}

impl Default for CoinIndex {
    fn default() -> Self {
        CoinIndex {
            segments: (0..SEGMENTS).map(|_| Segment::default()).collect(),
            len: 0,
            spare_growths: 0,
            hashing: CoinHashing::default(),
        }
    }
}

/// A key's position: its segment and its hash (whose low bits give the home slot).
#[derive(Clone, Copy)]
struct Position {
    segment: usize,
    hash: u64,
}

impl Segment {
    #[inline(always)]
    fn mask(&self) -> usize {
        self.slots.len() - 1
    }

    /// The slot holding `tagged_key`, or the free slot where it would go.
    #[inline(always)]
    fn probe(&self, tagged_key: u64, hash: u64) -> usize {
        let mask = self.mask();
        let mut at = hash as usize & mask;
        loop {
            let here = self.slots[at].tagged_key;
            if here == tagged_key || here == 0 {
                return at;
            }
            at = (at + 1) & mask;
        }
    }
}

impl CoinIndex {
    /// The seeded hashing, for the pool's other keyed sets.
    pub(super) fn hashing(&self) -> &CoinHashing {
        &self.hashing
    }

    /// Entries in use (tests).
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// Bytes of slots allocated, over all segments (tests).
    #[cfg(test)]
    pub(super) fn slot_bytes(&self) -> usize {
        self.segments
            .iter()
            .map(|s| s.slots.capacity() * std::mem::size_of::<Entry>())
            .sum()
    }

    #[inline(always)]
    fn position(&self, tagged_key: u64) -> Position {
        let hash = self.hashing.hash_key(tagged_key);
        Position {
            segment: (hash >> 56) as usize % SEGMENTS,
            hash,
        }
    }

    /// The holders of `key`, if any ticket holds it.
    pub(super) fn get(&self, key: CoinKey) -> Option<&Holders> {
        let tagged_key = key | USED;
        let place = self.position(tagged_key);
        let segment = &self.segments[place.segment];
        if segment.len == 0 {
            return None;
        }
        let slot = &segment.slots[segment.probe(tagged_key, place.hash)];
        (slot.tagged_key != 0).then_some(&slot.holders)
    }

    /// The holders of `key` to change, if any ticket holds it.
    pub(super) fn get_mut(&mut self, key: CoinKey) -> Option<&mut Holders> {
        let tagged_key = key | USED;
        let place = self.position(tagged_key);
        let segment = &mut self.segments[place.segment];
        if segment.len == 0 {
            return None;
        }
        let at = segment.probe(tagged_key, place.hash);
        let slot = &mut segment.slots[at];
        (slot.tagged_key != 0).then_some(&mut slot.holders)
    }

    /// Lets the coming insertions grow up to `growths` segments that reached 9/16;
    /// beyond that a segment grows only at 7/8. The seeded hash fills every segment at the
    /// same pace, so without this budget a few requests would grow most of the 256
    /// segments at once; with it their growths spread over many requests (between 9/16
    /// and 7/8 a segment takes over 1,200 more coins), and one request grows a few.
    pub(super) fn allow_growths(&mut self, growths: usize) {
        self.spare_growths = growths;
    }

    /// The holders of `key`, inserted empty (all zero) when absent.
    #[inline(always)]
    pub(super) fn get_or_insert(&mut self, key: CoinKey) -> &mut Holders {
        let tagged_key = key | USED;
        let place = self.position(tagged_key);
        let segment = &self.segments[place.segment];
        if segment.len >= segment.soft_max_len
            && (self.spare_growths > 0 || segment.len >= segment.hard_max_len)
        {
            self.spare_growths = self.spare_growths.saturating_sub(1);
            self.grow(place.segment);
        }
        let segment = &mut self.segments[place.segment];
        let at = segment.probe(tagged_key, place.hash);
        let slot = &mut segment.slots[at];
        if slot.tagged_key == 0 {
            *slot = Entry {
                tagged_key,
                holders: Holders::default(),
            };
            segment.len += 1;
            self.len += 1;
        }
        &mut slot.holders
    }

    /// Forgets `key`. The entries after it in its probe run move back where their own
    /// probe would find them, so no free slot ever interrupts a run.
    pub(super) fn remove(&mut self, key: CoinKey) {
        let tagged_key = key | USED;
        let place = self.position(tagged_key);
        let hashing = &self.hashing;
        let segment = &mut self.segments[place.segment];
        if segment.len == 0 {
            return;
        }
        let mask = segment.mask();
        let mut hole = segment.probe(tagged_key, place.hash);
        if segment.slots[hole].tagged_key == 0 {
            return;
        }
        segment.len -= 1;
        self.len -= 1;
        let mut next = hole;
        loop {
            next = (next + 1) & mask;
            let tagged_key = segment.slots[next].tagged_key;
            if tagged_key == 0 {
                break;
            }
            // The entry at `next` may fill the hole when the hole is no further from its
            // home than `next` is (cyclically).
            let home = hashing.hash_key(tagged_key) as usize & mask;
            if (next.wrapping_sub(home) & mask) >= (next.wrapping_sub(hole) & mask) {
                segment.slots[hole] = segment.slots[next];
                hole = next;
            }
        }
        segment.slots[hole] = Entry::default();
    }

    /// Doubles one segment: rehashes only its entries (a 256th of the index).
    #[cold]
    fn grow(&mut self, at: usize) {
        let hashing = &self.hashing;
        let segment = &mut self.segments[at];
        let count = (segment.slots.len() * 2).max(MIN_SLOTS);
        let old = std::mem::replace(&mut segment.slots, vec![Entry::default(); count]);
        segment.soft_max_len = count / 16 * 9;
        segment.hard_max_len = count / 8 * 7;
        for slot in old.into_iter().filter(|slot| slot.tagged_key != 0) {
            let at = segment.probe(slot.tagged_key, hashing.hash_key(slot.tagged_key));
            segment.slots[at] = slot;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// Random inserts and removals against std's map, through several growths; removals
    /// shift runs back, across the table's end too.
    #[test]
    fn agrees_with_a_hash_map() {
        let mut index = CoinIndex::default();
        let mut model: HashMap<CoinKey, Holders> = HashMap::new();
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for step in 0..200_000u32 {
            let key = next() % 3000;
            match next() % 3 {
                0 => {
                    index.remove(key);
                    model.remove(&key);
                }
                _ => {
                    let holders = index.get_or_insert(key);
                    assert_eq!(*holders, model.get(&key).copied().unwrap_or_default());
                    holders[0] = step;
                    model.entry(key).or_default()[0] = step;
                }
            }
            assert_eq!(index.len(), model.len());
        }
        for key in 0..3000 {
            assert_eq!(index.get(key), model.get(&key), "key {key}");
        }
        // no segment more than 7/8 full
        for segment in index.segments.iter() {
            assert!(segment.len * 8 <= segment.slots.len() * 7 || segment.slots.is_empty());
        }
        for key in 0..3000 {
            index.remove(key);
        }
        assert_eq!(index.len(), 0);
        assert!(index
            .segments
            .iter()
            .flat_map(|s| s.slots.iter())
            .all(|slot| slot.tagged_key == 0));
    }

    /// The pool's largest index: every segment at 8,192 slots, 48 MiB in all.
    #[test]
    fn the_largest_index_is_48_mib() {
        let mut index = CoinIndex::default();
        for key in 0..crate::tickets::MAX_COINS_HELD as CoinKey {
            index.get_or_insert(key)[0] = 1;
        }
        assert!(index.segments.iter().all(|s| s.slots.len() == 8192));
        assert_eq!(index.slot_bytes(), 48 << 20);
        assert_eq!(std::mem::size_of::<Entry>(), 24);
    }

    /// A segment's growth moves only that segment's entries.
    #[test]
    fn growth_is_one_segment_at_a_time() {
        let mut index = CoinIndex::default();
        let mut grown = 0;
        for key in 0..100_000 as CoinKey {
            let before = index.slot_bytes();
            index.get_or_insert(key);
            let added = index.slot_bytes() - before;
            // one segment doubled at most: never more than a 256th of the whole
            assert!(added <= 4 * before / SEGMENTS + MIN_SLOTS * 24, "{added} of {before}");
            grown += usize::from(added > 0);
        }
        assert!(grown > SEGMENTS);
    }

    #[test]
    fn empty_index_allocates_nothing() {
        let index = CoinIndex::default();
        assert_eq!(index.get(5), None);
        assert_eq!(index.slot_bytes(), 0);
    }
}
