//! The vote tally of a fix: which coins enough RAIDAs vouch for.
//!
//! A coin's votes are this server's own (its page exists, or fix would not ask) plus one
//! per DISTINCT peer whose validate-ticket answer lists it, however often that peer lists
//! it (the legacy module counted listings, so one faulty peer could outvote everyone).
//!
//! Listed coins are matched against the request through a sorted table built once
//! ([`SortedKeys`]), so a match costs at most one comparison and one binary search,
//! whatever coin values a client or a peer chooses (a hash map with a fixed hash could be
//! flooded with colliding coins; std's keyed SipHash was half the instructions of a
//! 3000-coin fix, BENCHMARKS.md). A peer lists its ticket's coins in the order the client
//! sent them, which is usually the fix request's order, so each match first tries the
//! request coin after the previous match: one comparison for an answer in request order.
//!
//! The tally also knows when every coin's fate is settled: a coin is decided once it has
//! [`THRESHOLD`] votes, or once the peers still pending could no longer lift it there.

use crate::protocol::{Coin, TOTAL_RAIDA_SERVERS};

/// Votes a coin needs to be fixed: more than `25 / 2 + 1`, that is 14, this server's
/// own vote included.
pub const THRESHOLD: usize = TOTAL_RAIDA_SERVERS / 2 + 2;

/// Distinct keys in ascending order, found by binary search within a bucket.
///
/// Buckets split the keys' range into at most twice as many equal spans as there are
/// keys (by a shift, no division), so evenly spread keys are found in a bucket of one or
/// two, and keys crowded into one bucket cost one binary search over them: never more
/// than a binary search over all keys.
#[derive(Debug, Clone)]
struct SortedKeys {
    keys: Vec<u64>,
    min: u64,
    shift: u32,
    /// `bucket_starts[b]..bucket_starts[b + 1]`: the keys whose `(key - min) >> shift`
    /// is `b`.
    bucket_starts: Vec<u32>,
}

impl SortedKeys {
    /// Indexes `keys`, which must be ascending and distinct.
    fn new(keys: Vec<u64>) -> SortedKeys {
        let (Some(&min), Some(&max)) = (keys.first(), keys.last()) else {
            return SortedKeys {
                keys,
                min: 0,
                shift: 0,
                bucket_starts: vec![0],
            };
        };
        let most_buckets = 2 * keys.len() as u64;
        let shift = (0..u64::BITS)
            .find(|&shift| (max - min) >> shift < most_buckets)
            .unwrap_or(u64::BITS - 1);
        let buckets = ((max - min) >> shift) as usize + 1;
        let mut bucket_starts = Vec::with_capacity(buckets + 1);
        let mut at = 0;
        for bucket in 0..buckets as u64 {
            while keys
                .get(at)
                .is_some_and(|&key| (key - min) >> shift < bucket)
            {
                at += 1;
            }
            bucket_starts.push(at as u32);
        }
        bucket_starts.push(keys.len() as u32);
        SortedKeys {
            keys,
            min,
            shift,
            bucket_starts,
        }
    }

    /// The position of `key`, if it is one of the keys.
    #[inline]
    fn position(&self, key: u64) -> Option<usize> {
        let bucket = (key.checked_sub(self.min)? >> self.shift) as usize;
        let start = *self.bucket_starts.get(bucket)? as usize;
        let end = *self.bucket_starts.get(bucket + 1)? as usize;
        let at = self.keys[start..end].binary_search(&key).ok()?;
        Some(start + at)
    }

    fn len(&self) -> usize {
        self.keys.len()
    }
}

/// Votes for the distinct coins of one fix request.
#[derive(Debug, Clone)]
pub struct Tally {
    /// The distinct requested coins' keys, ascending; a coin's id is its index here.
    keys: SortedKeys,
    /// For each id: the request position after the coin's first appearance, where the
    /// next listed coin is looked for first.
    after_first: Vec<u32>,
    /// Each request position's key and id, for the look-ahead.
    request_keys: Vec<u64>,
    request_ids: Vec<u32>,
    /// Votes per distinct coin, this server's included.
    votes: Vec<u8>,
    /// The peer (index + 1) that last voted for each coin: a peer listing a coin again
    /// within its answer finds itself here and adds nothing.
    last_voter: Vec<u8>,
    /// Peers whose answer has been counted, one bit per RAIDA index.
    voted_peers: u32,
    /// How many distinct coins have exactly `v` votes, for every `v` below the threshold.
    below: [usize; THRESHOLD],
}

impl Tally {
    /// A tally for `coins` (duplicates share one entry), each starting with this server's
    /// own vote.
    pub fn new(coins: &[Coin]) -> Tally {
        let request_keys: Vec<u64> = coins.iter().map(|&c| c.key()).collect();
        let mut keys = request_keys.clone();
        keys.sort_unstable();
        keys.dedup();
        let keys = SortedKeys::new(keys);
        let request_ids: Vec<u32> = request_keys
            .iter()
            .map(|&key| keys.position(key).expect("every request key is in keys") as u32)
            .collect();
        let mut after_first = vec![0u32; keys.len()];
        for (pos, &id) in request_ids.iter().enumerate().rev() {
            after_first[id as usize] = pos as u32 + 1;
        }
        let distinct = keys.len();
        let mut below = [0; THRESHOLD];
        below[1] = distinct;
        Tally {
            keys,
            after_first,
            request_keys,
            request_ids,
            votes: vec![1; distinct],
            last_voter: vec![0; distinct],
            voted_peers: 0,
            below,
        }
    }

    /// The id of the requested coin with `key`: first the request position `*next`,
    /// else a binary search. Leaves `*next` after the request position found.
    #[inline]
    fn find(&self, key: u64, next: &mut usize) -> Option<usize> {
        if self.request_keys.get(*next) == Some(&key) {
            let id = self.request_ids[*next];
            *next += 1;
            return Some(id as usize);
        }
        let id = self.keys.position(key)?;
        *next = self.after_first[id] as usize;
        Some(id)
    }

    /// Counts peer `peer`'s answer: one vote for each requested coin it lists, ignoring
    /// repeats and coins that were not requested. A peer counts once: a second answer
    /// from the same index (or an index outside 0..25) adds nothing and returns false.
    pub fn add_answer(&mut self, peer: u8, listed: &[Coin]) -> bool {
        if usize::from(peer) >= TOTAL_RAIDA_SERVERS || self.voted_peers & (1 << peer) != 0 {
            return false;
        }
        self.voted_peers |= 1 << peer;
        let marker = peer + 1;
        let mut next = 0;
        for &coin in listed {
            let Some(id) = self.find(coin.key(), &mut next) else {
                continue;
            };
            if self.last_voter[id] == marker {
                continue;
            }
            self.last_voter[id] = marker;
            let before = usize::from(self.votes[id]);
            self.votes[id] += 1;
            if before < THRESHOLD {
                self.below[before] -= 1;
                if before + 1 < THRESHOLD {
                    self.below[before + 1] += 1;
                }
            }
        }
        true
    }

    /// True when every coin is settled while `pending` peers may still answer: each has
    /// reached [`THRESHOLD`] or could not reach it even if all of them listed it.
    pub fn is_decided(&self, pending: usize) -> bool {
        match self.below.iter().rposition(|&count| count > 0) {
            None => true,
            Some(most) => most + pending < THRESHOLD,
        }
    }

    /// The votes `coin` has (0 for a coin that was not requested).
    pub fn votes(&self, coin: Coin) -> usize {
        self.id_of(coin).map_or(0, |id| usize::from(self.votes[id]))
    }

    /// Whether `coin` has enough votes to be fixed.
    pub fn is_confirmed(&self, coin: Coin) -> bool {
        self.votes(coin) >= THRESHOLD
    }

    /// The distinct coin's id, in `0..distinct_coins()` (its rank among them, stable for
    /// the tally's life), for callers that keep per-coin state alongside: `None` for a
    /// coin that was not requested.
    pub fn id_of(&self, coin: Coin) -> Option<usize> {
        self.keys.position(coin.key())
    }

    /// The id of the request's coin at `position` (in the order given to [`Tally::new`]),
    /// without a search: what [`Tally::id_of`] answers for that coin.
    pub fn id_at(&self, position: usize) -> usize {
        self.request_ids[position] as usize
    }

    /// Whether the distinct coin `id` has enough votes to be fixed.
    pub fn is_confirmed_id(&self, id: usize) -> bool {
        usize::from(self.votes[id]) >= THRESHOLD
    }

    /// Number of distinct coins.
    pub fn distinct_coins(&self) -> usize {
        self.keys.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn coin(sn: u32) -> Coin {
        Coin { den: 1, sn }
    }

    #[test]
    fn ids_by_request_position_match_ids_by_coin() {
        let coins = [coin(9), coin(1), coin(9), coin(4000), coin(1)];
        let mut tally = Tally::new(&coins);
        for (position, &c) in coins.iter().enumerate() {
            assert_eq!(Some(tally.id_at(position)), tally.id_of(c));
        }
        for peer in 0..13 {
            tally.add_answer(peer, &[coin(1)]);
        }
        assert!(tally.is_confirmed_id(tally.id_at(1)));
        assert!(tally.is_confirmed_id(tally.id_at(4)));
        assert!(!tally.is_confirmed_id(tally.id_at(0)));
        assert!(!tally.is_confirmed_id(tally.id_at(3)));
    }

    #[test]
    fn threshold_is_fourteen() {
        assert_eq!(THRESHOLD, 14);
    }

    #[test]
    fn one_vote_per_peer_however_often_it_lists_a_coin() {
        let mut tally = Tally::new(&[coin(1), coin(2)]);
        let liar = vec![coin(1); 20];
        assert!(tally.add_answer(3, &liar));
        assert_eq!(tally.votes(coin(1)), 2);
        assert_eq!(tally.votes(coin(2)), 1);
        // The same peer again (e.g. its hedge connection also answered): nothing.
        assert!(!tally.add_answer(3, &[coin(1), coin(2)]));
        assert_eq!(tally.votes(coin(1)), 2);
        assert_eq!(tally.votes(coin(2)), 1);
        assert!(!tally.add_answer(25, &[coin(2)]));
        assert_eq!(tally.votes(coin(2)), 1);
    }

    #[test]
    fn unrequested_coins_are_ignored_and_duplicates_share_votes() {
        let mut tally = Tally::new(&[coin(1), coin(1), coin(2)]);
        assert_eq!(tally.distinct_coins(), 2);
        tally.add_answer(0, &[coin(9), coin(1)]);
        assert_eq!(tally.votes(coin(1)), 2);
        assert_eq!(tally.votes(coin(9)), 0);
        assert_eq!(tally.id_of(coin(1)), Some(0));
        assert_eq!(tally.id_of(coin(2)), Some(1));
        assert_eq!(tally.id_of(coin(9)), None);
    }

    #[test]
    fn thirteen_peers_fix_twelve_do_not() {
        let mut tally = Tally::new(&[coin(1), coin(2)]);
        for peer in 0..12 {
            tally.add_answer(peer, &[coin(1), coin(2)]);
        }
        tally.add_answer(12, &[coin(1)]);
        assert_eq!(tally.votes(coin(1)), 14);
        assert!(tally.is_confirmed(coin(1)));
        assert_eq!(tally.votes(coin(2)), 13);
        assert!(!tally.is_confirmed(coin(2)));
    }

    #[test]
    fn decided_when_reached_or_out_of_reach() {
        let mut tally = Tally::new(&[coin(1), coin(2)]);
        // Nobody has answered: 1 vote each; 13 pending peers could still make 14.
        assert!(!tally.is_decided(13));
        // 12 pending peers cannot.
        assert!(tally.is_decided(12));
        for peer in 0..13 {
            tally.add_answer(peer, &[coin(1)]);
        }
        // coin 1 has 14; coin 2 has 1 and needs 13 more.
        assert!(tally.is_confirmed(coin(1)));
        assert!(!tally.is_decided(13));
        assert!(tally.is_decided(11));
        // A coin at 13 stays open while one peer is pending.
        let mut tally = Tally::new(&[coin(1)]);
        for peer in 0..12 {
            tally.add_answer(peer, &[coin(1)]);
        }
        assert!(!tally.is_decided(1));
        assert!(tally.is_decided(0));
        tally.add_answer(12, &[coin(1)]);
        assert!(tally.is_decided(5));
    }

    #[test]
    fn votes_past_the_threshold_keep_counting() {
        let mut tally = Tally::new(&[coin(1)]);
        for peer in 0..24 {
            tally.add_answer(peer, &[coin(1)]);
        }
        assert_eq!(tally.votes(coin(1)), 25);
        assert!(tally.is_decided(24));
    }

    #[test]
    fn listings_in_any_order_count_like_a_naive_model() {
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = |modulus: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % modulus
        };
        // Coins from a small pool, so requests and listings repeat coins; dens span the
        // whole range, so keys differ in their high bits too.
        let pool: Vec<Coin> = (0..40u32)
            .map(|i| Coin {
                den: (i % 15) as i8 - 8,
                sn: i * 977,
            })
            .collect();
        for round in 0..200 {
            let n = next(30) as usize;
            let requested: Vec<Coin> = (0..n).map(|_| pool[next(40) as usize]).collect();
            let mut tally = Tally::new(&requested);
            let mut model: Vec<(Coin, std::collections::BTreeSet<u8>)> = Vec::new();
            for &c in &requested {
                if !model.iter().any(|(m, _)| *m == c) {
                    model.push((c, Default::default()));
                }
            }
            assert_eq!(tally.distinct_coins(), model.len());
            let mut ids: Vec<usize> = model
                .iter()
                .map(|(c, _)| tally.id_of(*c).unwrap())
                .collect();
            ids.sort();
            assert_eq!(ids, (0..model.len()).collect::<Vec<_>>(), "one id per coin");
            for peer in 0..25u8 {
                let listed: Vec<Coin> = match next(3) {
                    // the request in order, some coins left out (failed at that peer)
                    0 => requested.iter().copied().filter(|_| next(4) != 0).collect(),
                    // the request backwards
                    1 => requested.iter().rev().copied().collect(),
                    // anything from the pool, requested or not, repeats included
                    _ => (0..next(50)).map(|_| pool[next(40) as usize]).collect(),
                };
                assert!(tally.add_answer(peer, &listed));
                for c in &listed {
                    if let Some((_, voters)) = model.iter_mut().find(|(m, _)| m == c) {
                        voters.insert(peer);
                    }
                }
            }
            for (c, voters) in &model {
                assert_eq!(tally.votes(*c), 1 + voters.len(), "round {round}, {c:?}");
            }
            for c in &pool {
                if !requested.contains(c) {
                    assert_eq!(tally.votes(*c), 0);
                    assert_eq!(tally.id_of(*c), None);
                }
            }
        }
    }

    #[test]
    fn coins_differing_only_in_denomination_are_apart() {
        let a = Coin { den: -1, sn: 5 };
        let b = Coin { den: 1, sn: 5 };
        let mut tally = Tally::new(&[a, b]);
        tally.add_answer(0, &[b]);
        assert_eq!(tally.votes(a), 1);
        assert_eq!(tally.votes(b), 2);
        assert_eq!(tally.votes(Coin { den: 0, sn: 5 }), 0);
    }

    #[test]
    fn sorted_keys_find_every_key_and_nothing_else() {
        let spreads: [Vec<u64>; 5] = [
            vec![],
            vec![7],
            (0..1000).map(|i| i * 1021 + 5).collect(),
            // crowded: all in the first bucket but one far away
            (0..1000).chain([u64::MAX - 1]).collect(),
            // the whole key range
            vec![0, 1, 1 << 39, u64::MAX],
        ];
        for keys in spreads {
            let sorted = SortedKeys::new(keys.clone());
            assert!(sorted.bucket_starts.len() <= 2 * keys.len() + 2);
            for (i, &key) in keys.iter().enumerate() {
                assert_eq!(sorted.position(key), Some(i), "{key}");
                for near in [key.wrapping_sub(1), key.wrapping_add(1)] {
                    assert_eq!(sorted.position(near), keys.binary_search(&near).ok());
                }
            }
            assert_eq!(sorted.position(u64::MAX - 2), None);
        }
    }

    #[test]
    fn empty_request_is_decided() {
        let tally = Tally::new(&[]);
        assert!(tally.is_decided(24));
    }
}
