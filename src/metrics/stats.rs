//! The figures only the C boundary and fix see, kept by the components the state owner
//! holds: [`CommandStats`] (commands answered by command and status, their durations,
//! panics caught per export, page writes the standalone store could not keep) and
//! [`FixStats`] (coins fixed and not, votes per coin, per-peer outcomes). Each is a
//! value behind one short lock; recording costs one lock and a map lookup.

use std::collections::BTreeMap;
use std::time::Duration;

use parking_lot::Mutex;

use super::render::Histogram;

/// Upper bounds (seconds) of the command duration buckets: a get_ticket takes
/// microseconds, a fix up to the peer deadline (32 s by default).
pub const DURATION_BUCKETS: &[f64] = &[
    0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Upper bounds of the votes-per-coin buckets: every count a coin can get (this server's
/// own vote and 24 peers').
pub const VOTE_BUCKETS: &[f64] = &[
    0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0, 13.0, 14.0, 15.0, 16.0,
    17.0, 18.0, 19.0, 20.0, 21.0, 22.0, 23.0, 24.0, 25.0,
];

/// What [`CommandStats`] holds, as a snapshot.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BoundaryFigures {
    /// Per (command, status code): answers and their duration histogram.
    pub commands: BTreeMap<(&'static str, u8), Histogram>,
    /// Panics caught per export name.
    pub panics: BTreeMap<&'static str, u64>,
    /// Commands whose writes the standalone page-file store could not keep (answered 252).
    pub store_write_failures: u64,
}

/// Commands answered, their durations, panics and failed page writes, recorded at the C
/// boundary.
#[derive(Debug, Default)]
pub struct CommandStats {
    figures: Mutex<BoundaryFigures>,
}

impl CommandStats {
    /// One answer of `command` (its name, e.g. `"fix"`) with `status`, after `took`.
    pub fn answered(&self, command: &'static str, status: u8, took: Duration) {
        self.figures
            .lock()
            .commands
            .entry((command, status))
            .or_insert_with(|| Histogram::new(DURATION_BUCKETS))
            .observe(took.as_secs_f64());
    }

    /// A panic caught in `export`.
    pub fn panicked(&self, export: &'static str) {
        *self.figures.lock().panics.entry(export).or_default() += 1;
    }

    /// A command whose page writes the store could not keep.
    pub fn store_write_failed(&self) {
        self.figures.lock().store_write_failures += 1;
    }

    /// The figures now.
    pub fn snapshot(&self) -> BoundaryFigures {
        self.figures.lock().clone()
    }
}

/// What [`FixStats`] holds, as a snapshot.
#[derive(Debug, Clone, PartialEq)]
pub struct FixFigures {
    /// Coins answered as fixed, and as not fixed (repeats in a request included), by
    /// fixes that asked their peers.
    pub coins_fixed: u64,
    pub coins_not_fixed: u64,
    /// Votes each coin got (this server's included).
    pub coin_votes: Histogram,
    /// Per (peer, outcome label): how often that peer ended a fix so.
    pub peer_outcomes: BTreeMap<(u8, &'static str), u64>,
}

impl Default for FixFigures {
    fn default() -> Self {
        FixFigures {
            coins_fixed: 0,
            coins_not_fixed: 0,
            coin_votes: Histogram::new(VOTE_BUCKETS),
            peer_outcomes: BTreeMap::new(),
        }
    }
}

/// What fixes did, recorded from each fix's report.
#[derive(Debug, Default)]
pub struct FixStats {
    figures: Mutex<FixFigures>,
}

impl FixStats {
    /// Adds one fix that asked its peers: coins answered fixed and not fixed, the votes
    /// of each coin, and each peer's outcome (RAIDA index, outcome label; this server
    /// itself left out by the caller).
    pub fn record(
        &self,
        coins_fixed: usize,
        coins_not_fixed: usize,
        coin_votes: &[usize],
        peer_outcomes: impl IntoIterator<Item = (u8, &'static str)>,
    ) {
        let mut figures = self.figures.lock();
        figures.coins_fixed += coins_fixed as u64;
        figures.coins_not_fixed += coins_not_fixed as u64;
        for &votes in coin_votes {
            figures.coin_votes.observe(votes as f64);
        }
        for key in peer_outcomes {
            *figures.peer_outcomes.entry(key).or_default() += 1;
        }
    }

    /// The figures now.
    pub fn snapshot(&self) -> FixFigures {
        self.figures.lock().clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixes_add_coins_votes_and_outcomes() {
        let stats = FixStats::default();
        for _ in 0..2 {
            stats.record(2, 1, &[15, 15, 3], [(4, "timed_out"), (7, "voted"), (5, "no_ticket")]);
        }
        let f = stats.snapshot();
        assert_eq!((f.coins_fixed, f.coins_not_fixed), (4, 2));
        assert_eq!((f.coin_votes.count(), f.coin_votes.sum()), (6, 66.0));
        let below_14: Vec<(f64, u64)> =
            f.coin_votes.cumulative().filter(|&(le, _)| le == 13.0).collect();
        assert_eq!(below_14, vec![(13.0, 2)]);
        let outcomes: Vec<((u8, &str), u64)> = f.peer_outcomes.into_iter().collect();
        assert_eq!(
            outcomes,
            vec![((4, "timed_out"), 2), ((5, "no_ticket"), 2), ((7, "voted"), 2)]
        );
    }

    #[test]
    fn command_stats_count_by_command_and_status() {
        let stats = CommandStats::default();
        stats.answered("fix", 241, Duration::from_micros(300));
        stats.answered("fix", 241, Duration::from_millis(20));
        stats.answered("find", 209, Duration::from_micros(50));
        stats.panicked("cmd_fix");
        stats.store_write_failed();
        let b = stats.snapshot();
        let counts: Vec<((&str, u8), u64)> =
            b.commands.iter().map(|(k, h)| (*k, h.count())).collect();
        assert_eq!(counts, vec![(("find", 209), 1), (("fix", 241), 2)]);
        let fix: Vec<(f64, u64)> = b.commands[&("fix", 241)].cumulative().take(4).collect();
        assert_eq!(fix, vec![(0.0001, 0), (0.0005, 1), (0.001, 1), (0.005, 1)]);
        assert_eq!(b.panics[&"cmd_fix"], 1);
        assert_eq!(b.store_write_failures, 1);
    }
}
