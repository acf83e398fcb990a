//! The pool's index of which live tickets hold each coin: an open-addressing table keyed
//! by a coin's packed wire bytes.
//!
//! get_ticket touches one entry per coin, so this is the pool's hot path. Compared with a
//! general hash map it does less per coin: one seeded multiply-xorshift hash, linear
//! probing over 24-byte slots that hold the key and the holders side by side (a lookup
//! reads one or two cache lines), no tombstones (a removal shifts the following entries
//! back). The table is kept at most half full, where a linear probe finds a coin in about
//! 1.5 slots on average (at 7/8 full, a std hash map's limit, it took about 3).
//!
//! Memory: 24 bytes a slot, the slot count a power of two. The pool's largest index,
//! [`MAX_COINS_HELD`](super::MAX_COINS_HELD) distinct coins (2^20), fills exactly half of
//! 2^21 slots: 48 MiB, which is the slot count a std hash map takes for it too (2^21
//! buckets of 25 bytes). Between powers of two the table can be twice a std map's size, but
//! never above that largest figure. Nothing is allocated before the first coin.

use super::{CoinHashing, CoinKey, Holders};

/// Marks a used slot; coin keys use 40 bits, so no key has it.
const USED: u64 = 1 << 63;
/// The first allocation, in slots.
const MIN_SLOTS: usize = 64;

#[derive(Clone, Copy, Default)]
struct Slot {
    /// `USED | key`, or 0 when free.
    tagged_key: u64,
    holders: Holders,
}

/// Coin key → its holders.
#[derive(Default)]
pub(super) struct CoinIndex {
    slots: Vec<Slot>,
    len: usize,
    /// The table grows before an insertion would make `len` exceed this (half the slots).
    max_len: usize,
    hashing: CoinHashing,
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

    #[inline(always)]
    fn home(&self, tagged_key: u64) -> usize {
        // The slot count is a power of two; the hash's low bits are as good as any.
        (self.hashing.hash_key(tagged_key) as usize) & (self.slots.len() - 1)
    }

    /// The slot holding `key`, or the free slot where it would go.
    #[inline(always)]
    fn probe(&self, tagged_key: u64) -> usize {
        let mask = self.slots.len() - 1;
        let mut at = self.home(tagged_key);
        loop {
            let here = self.slots[at].tagged_key;
            if here == tagged_key || here == 0 {
                return at;
            }
            at = (at + 1) & mask;
        }
    }

    /// The holders of `key`, if any ticket holds it.
    pub(super) fn get(&self, key: CoinKey) -> Option<&Holders> {
        if self.len == 0 {
            return None;
        }
        let slot = &self.slots[self.probe(key | USED)];
        (slot.tagged_key != 0).then_some(&slot.holders)
    }

    /// The holders of `key` to change, if any ticket holds it.
    pub(super) fn get_mut(&mut self, key: CoinKey) -> Option<&mut Holders> {
        if self.len == 0 {
            return None;
        }
        let at = self.probe(key | USED);
        let slot = &mut self.slots[at];
        (slot.tagged_key != 0).then_some(&mut slot.holders)
    }

    /// The holders of `key`, inserted empty (all zero) when absent.
    #[inline(always)]
    pub(super) fn get_or_insert(&mut self, key: CoinKey) -> &mut Holders {
        if self.len >= self.max_len {
            self.grow();
        }
        let tagged_key = key | USED;
        let at = self.probe(tagged_key);
        let slot = &mut self.slots[at];
        if slot.tagged_key == 0 {
            *slot = Slot {
                tagged_key,
                holders: Holders::default(),
            };
            self.len += 1;
        }
        &mut slot.holders
    }

    /// Forgets `key`. The entries after it in its probe run move back where their own
    /// probe would find them, so no free slot ever interrupts a run.
    pub(super) fn remove(&mut self, key: CoinKey) {
        if self.len == 0 {
            return;
        }
        let mask = self.slots.len() - 1;
        let mut hole = self.probe(key | USED);
        if self.slots[hole].tagged_key == 0 {
            return;
        }
        self.len -= 1;
        let mut next = hole;
        loop {
            next = (next + 1) & mask;
            let tagged_key = self.slots[next].tagged_key;
            if tagged_key == 0 {
                break;
            }
            // The entry at `next` may fill the hole when the hole is no further from its
            // home than `next` is (cyclically).
            let home = self.home(tagged_key);
            if (next.wrapping_sub(home) & mask) >= (next.wrapping_sub(hole) & mask) {
                self.slots[hole] = self.slots[next];
                hole = next;
            }
        }
        self.slots[hole] = Slot::default();
    }

    #[cold]
    fn grow(&mut self) {
        let count = (self.slots.len() * 2).max(MIN_SLOTS);
        let old = std::mem::replace(&mut self.slots, vec![Slot::default(); count]);
        self.max_len = count / 2;
        for slot in old.into_iter().filter(|slot| slot.tagged_key != 0) {
            let at = self.probe(slot.tagged_key);
            self.slots[at] = slot;
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
        // never more than half full, and no larger than needed for the most ever held
        assert!(index.slots.len() >= index.len() * 2);
        assert!(index.slots.len() <= 8192, "{} slots", index.slots.len());
        for key in 0..3000 {
            index.remove(key);
        }
        assert_eq!(index.len(), 0);
        assert!(index.slots.iter().all(|slot| slot.tagged_key == 0));
    }

    /// The pool's largest index fits the slot count a std map would take, not twice it.
    #[test]
    fn the_largest_index_fills_half_its_slots() {
        let mut index = CoinIndex::default();
        for key in 0..crate::tickets::MAX_COINS_HELD as CoinKey {
            index.get_or_insert(key)[0] = 1;
        }
        assert_eq!(index.slots.len(), 2 * crate::tickets::MAX_COINS_HELD);
        assert_eq!(std::mem::size_of::<Slot>(), 24);
    }

    #[test]
    fn empty_index_allocates_nothing() {
        let index = CoinIndex::default();
        assert_eq!(index.get(5), None);
        assert_eq!(index.slots.capacity(), 0);
    }
}
