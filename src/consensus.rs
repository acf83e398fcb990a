//! The vote tally of a fix: which coins enough RAIDAs vouch for.
//!
//! A coin's votes are this server's own (its page exists, or fix would not ask) plus one
//! per DISTINCT peer whose validate-ticket answer lists it, however often that peer lists
//! it (the legacy module counted listings, so one faulty peer could outvote everyone).
//! Coins are matched through a hash map built once from the request, so counting is
//! linear in what peers return.
//!
//! The tally also knows when every coin's fate is settled: a coin is decided once it has
//! [`THRESHOLD`] votes, or once the peers still pending could no longer lift it there.

use std::collections::HashMap;

use crate::protocol::{Coin, TOTAL_RAIDA_SERVERS};

/// Votes a coin needs to be fixed: more than `25 / 2 + 1`, that is 14, this server's
/// own vote included.
pub const THRESHOLD: usize = TOTAL_RAIDA_SERVERS / 2 + 2;

/// Votes for the distinct coins of one fix request.
#[derive(Debug, Clone)]
pub struct Tally {
    /// Each distinct requested coin's position in `votes`.
    ids: HashMap<Coin, u32>,
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
        let mut ids = HashMap::with_capacity(coins.len());
        for &coin in coins {
            let next = ids.len() as u32;
            ids.entry(coin).or_insert(next);
        }
        let distinct = ids.len();
        let mut below = [0; THRESHOLD];
        below[1] = distinct;
        Tally {
            ids,
            votes: vec![1; distinct],
            last_voter: vec![0; distinct],
            voted_peers: 0,
            below,
        }
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
        for coin in listed {
            let Some(&id) = self.ids.get(coin) else {
                continue;
            };
            let id = id as usize;
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
        self.ids
            .get(&coin)
            .map_or(0, |&id| usize::from(self.votes[id as usize]))
    }

    /// Whether `coin` has enough votes to be fixed.
    pub fn is_confirmed(&self, coin: Coin) -> bool {
        self.votes(coin) >= THRESHOLD
    }

    /// The distinct coins' positions (stable for the tally's life), for callers that keep
    /// per-coin state alongside: `None` for a coin that was not requested.
    pub fn id_of(&self, coin: Coin) -> Option<usize> {
        self.ids.get(&coin).map(|&id| id as usize)
    }

    /// Number of distinct coins.
    pub fn distinct_coins(&self) -> usize {
        self.votes.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn coin(sn: u32) -> Coin {
        Coin { den: 1, sn }
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
    fn empty_request_is_decided() {
        let tally = Tally::new(&[]);
        assert!(tally.is_decided(24));
    }
}
