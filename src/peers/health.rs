//! What this process has seen of each peer: answer counts, failures, timeouts, hedges,
//! and an answer-time estimate that decides when a silent peer gets a hedge.
//!
//! # The hedge rule
//!
//! Each peer (RAIDA index and address) keeps, across calls, an estimate of the time from
//! opening a connection to a well-formed answer, the way TCP estimates a round trip
//! (RFC 6298): `typical` is an EWMA of the answer times (weight 1/8) and `spread` an EWMA
//! of their deviation from it (weight 1/4); the first answer sets `typical` to itself and
//! `spread` to half of it. From those, `high = typical + 4 x spread` (a high percentile).
//!
//! A peer still silent `limit` after its first connection opened gets one second
//! connection, where
//!
//! ```text
//! limit = max(floor, min(2 x high, 8 x typical))   with history
//! limit = max(floor, start)                        without history
//! ```
//!
//! `floor` is `RAIDA_HEALING_HEDGE_MS` (default 300 ms) and `start`
//! `RAIDA_HEALING_HEDGE_START_MS` (default 1000 ms). So a healthy distant peer is not
//! hedged for being distant (it is silent for less than twice its own high answer time),
//! while a peer that usually answers in 50 ms is hedged after at most
//! `max(300, 8 x 50) = 400 ms` of silence: the legacy listener's stranded connection
//! (lazy accept) is still rescued well inside a second.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddrV4;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// How often, at most, the peer health line is logged (and only after traffic).
pub const HEALTH_LOG_INTERVAL: Duration = Duration::from_secs(60);
/// Peers remembered; beyond this (many addresses over a long life, e.g. tests) the
/// least recently used is forgotten.
const MAX_PEERS: usize = 512;

/// Weight of a new answer time in `typical` (1/8) and in `spread` (1/4), as in RFC 6298.
const TYPICAL_WEIGHT: f64 = 1.0 / 8.0;
const SPREAD_WEIGHT: f64 = 1.0 / 4.0;
/// `high = typical + SPREAD_FACTOR x spread`.
const SPREAD_FACTOR: f64 = 4.0;
/// A peer is hedged after `HIGH_FACTOR x high` of silence ...
const HIGH_FACTOR: f64 = 2.0;
/// ... but never later than `TYPICAL_CAP x typical` (noise cannot hide a stranded peer).
const TYPICAL_CAP: f64 = 8.0;

/// The answer-time estimate of one peer, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Estimate {
    /// EWMA of answer times; 0 before the first answer.
    pub typical_ms: f64,
    /// EWMA of the deviation from `typical_ms`.
    pub spread_ms: f64,
    /// Answer times seen.
    pub samples: u64,
}

impl Estimate {
    /// Adds one answer time.
    pub fn add(&mut self, answer: Duration) {
        let r = answer.as_secs_f64() * 1000.0;
        if self.samples == 0 {
            self.typical_ms = r;
            self.spread_ms = r / 2.0;
        } else {
            self.spread_ms += SPREAD_WEIGHT * ((self.typical_ms - r).abs() - self.spread_ms);
            self.typical_ms += TYPICAL_WEIGHT * (r - self.typical_ms);
        }
        self.samples += 1;
    }

    /// The high-percentile answer time: `typical + 4 x spread`.
    pub fn high_ms(&self) -> f64 {
        self.typical_ms + SPREAD_FACTOR * self.spread_ms
    }

    /// How long the peer may stay silent before it is hedged (the rule in the module
    /// documentation).
    pub fn hedge_limit(&self, floor: Duration, start: Duration) -> Duration {
        if self.samples == 0 {
            return floor.max(start);
        }
        let ms = (HIGH_FACTOR * self.high_ms()).min(TYPICAL_CAP * self.typical_ms);
        floor.max(Duration::from_secs_f64(ms.max(0.0) / 1000.0))
    }
}

/// Everything remembered of one peer.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct PeerHealth {
    /// Well-formed answers (a vote or a refusal such as 43/44).
    pub answers: u64,
    /// Refused connections and invalid answers.
    pub failures: u64,
    /// Peers still silent at a call's deadline.
    pub timeouts: u64,
    /// Second connections opened.
    pub hedges: u64,
    pub estimate: Estimate,
}

/// What one call saw of one peer, added by [`record`].
#[derive(Debug, Clone, Copy, Default)]
pub struct Observation {
    pub answered_in: Option<Duration>,
    pub failed: bool,
    pub timed_out: bool,
    pub hedged: bool,
}

struct Table {
    peers: BTreeMap<(u8, SocketAddrV4), (PeerHealth, u64)>,
    /// Bumped on every use, to find the least recently used peer.
    clock: u64,
    /// Observations since the last health line.
    traffic: bool,
    last_line: Option<Instant>,
}

static TABLE: Mutex<Table> = Mutex::new(Table::new());

/// The estimate of peer `raida` at `addr` (empty when never answered).
pub fn estimate_of(raida: u8, addr: SocketAddrV4) -> Estimate {
    TABLE
        .lock()
        .peers
        .get(&(raida, addr))
        .map(|(h, _)| h.estimate)
        .unwrap_or_default()
}

/// Adds what one call saw of each peer; returns the health line when one is due (at most
/// once per [`HEALTH_LOG_INTERVAL`], and only after traffic), for the caller to log.
pub fn record(observations: &[(u8, SocketAddrV4, Observation)]) -> Option<String> {
    TABLE.lock().record(observations, Instant::now())
}

impl Table {
    const fn new() -> Table {
        Table {
            peers: BTreeMap::new(),
            clock: 0,
            traffic: false,
            last_line: None,
        }
    }

    fn record(
        &mut self,
        observations: &[(u8, SocketAddrV4, Observation)],
        now: Instant,
    ) -> Option<String> {
        for &(raida, addr, seen) in observations {
            self.clock += 1;
            let used_now = self.clock;
            if !self.peers.contains_key(&(raida, addr)) && self.peers.len() >= MAX_PEERS {
                let oldest = self
                    .peers
                    .iter()
                    .min_by_key(|(_, (_, used))| *used)
                    .map(|(key, _)| *key);
                if let Some(oldest) = oldest {
                    self.peers.remove(&oldest);
                }
            }
            let (health, used) = self.peers.entry((raida, addr)).or_default();
            *used = used_now;
            if let Some(time) = seen.answered_in {
                health.answers += 1;
                health.estimate.add(time);
            }
            health.failures += u64::from(seen.failed);
            health.timeouts += u64::from(seen.timed_out);
            health.hedges += u64::from(seen.hedged);
            self.traffic = true;
        }
        let due = self.traffic
            && self
                .last_line
                .is_none_or(|at| now.saturating_duration_since(at) >= HEALTH_LOG_INTERVAL);
        if !due {
            return None;
        }
        self.traffic = false;
        self.last_line = Some(now);
        Some(health_line(&self.peers))
    }
}

fn health_line(peers: &BTreeMap<(u8, SocketAddrV4), (PeerHealth, u64)>) -> String {
    let mut line =
        String::from("peer health since start (answers/failures/timeouts/hedges, typical ms):");
    for ((raida, addr), (h, _)) in peers {
        let _ = write!(
            line,
            " {raida}@{addr} {}/{}/{}/{} {:.0};",
            h.answers, h.failures, h.timeouts, h.hedges, h.estimate.typical_ms
        );
    }
    if line.ends_with(';') {
        line.pop();
    }
    line
}

/// Every remembered peer's figures, by RAIDA index then address.
pub fn snapshot() -> Vec<(u8, SocketAddrV4, PeerHealth)> {
    TABLE
        .lock()
        .peers
        .iter()
        .map(|(&(raida, addr), &(health, _))| (raida, addr, health))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const FLOOR: Duration = Duration::from_millis(300);
    const START: Duration = Duration::from_millis(1000);

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn no_history_waits_for_the_conservative_start() {
        let e = Estimate::default();
        assert_eq!(e.hedge_limit(FLOOR, START), START);
        assert_eq!(e.hedge_limit(ms(2000), START), ms(2000));
    }

    #[test]
    fn a_fast_peer_silent_for_a_second_is_hedged_never_before_the_floor() {
        let mut e = Estimate::default();
        for _ in 0..20 {
            e.add(ms(50));
        }
        let limit = e.hedge_limit(FLOOR, START);
        assert_eq!(limit, FLOOR);
        // Even a noisy 50 ms peer is hedged before a second of silence.
        let mut noisy = Estimate::default();
        for i in 0..40 {
            noisy.add(ms(if i % 2 == 0 { 10 } else { 90 }));
        }
        let limit = noisy.hedge_limit(FLOOR, START);
        assert!((40.0..60.0).contains(&noisy.typical_ms), "{noisy:?}");
        // 2 x high would be over 500 ms here: the cap of 8 x typical binds.
        assert!(2.0 * noisy.high_ms() > 8.0 * noisy.typical_ms);
        assert_eq!(
            limit,
            Duration::from_secs_f64(8.0 * noisy.typical_ms / 1000.0)
        );
        assert!(limit < ms(1000), "{limit:?}");
    }

    #[test]
    fn a_distant_peer_is_not_hedged_for_its_distance() {
        let mut e = Estimate::default();
        e.add(ms(1000));
        // One answer: typical 1000, spread 500, high 3000; the cap 8000 does not bind.
        assert_eq!(e.hedge_limit(FLOOR, START), ms(6000));
        for _ in 0..50 {
            e.add(ms(1000));
        }
        let limit = e.hedge_limit(FLOOR, START);
        assert!(limit >= ms(2000) && limit < ms(2100), "{limit:?}");
    }

    #[test]
    fn health_line_at_most_once_a_minute_and_only_after_traffic() {
        let mut table = Table::new();
        let t0 = Instant::now();
        let a: SocketAddrV4 = "10.0.0.1:30001".parse().unwrap();
        let b: SocketAddrV4 = "10.0.0.2:30002".parse().unwrap();
        let answered = Observation {
            answered_in: Some(ms(52)),
            ..Observation::default()
        };
        let slow = Observation {
            timed_out: true,
            hedged: true,
            ..Observation::default()
        };
        let line = table.record(&[(1, a, answered), (2, b, slow)], t0);
        assert_eq!(
            line.as_deref(),
            Some(
                "peer health since start (answers/failures/timeouts/hedges, typical ms): \
                 1@10.0.0.1:30001 1/0/0/0 52; 2@10.0.0.2:30002 0/0/1/1 0"
            )
        );
        // Within the minute: counted, not logged.
        assert_eq!(table.record(&[(1, a, answered)], t0 + ms(30_000)), None);
        // A minute on, with traffic since: logged with the figures so far.
        let line = table.record(&[(1, a, answered)], t0 + ms(60_000)).unwrap();
        assert!(line.contains(" 1@10.0.0.1:30001 3/0/0/0 52;"), "{line}");
        // Another minute with no traffic: nothing.
        assert_eq!(table.record(&[], t0 + ms(125_000)), None);
        // Traffic again, long after: logged.
        assert!(table.record(&[(2, b, slow)], t0 + ms(130_000)).is_some());
    }

    #[test]
    fn ewma_follows_rfc_6298() {
        let mut e = Estimate::default();
        e.add(ms(100));
        assert_eq!((e.typical_ms, e.spread_ms), (100.0, 50.0));
        e.add(ms(200));
        assert_eq!(e.spread_ms, 50.0 + 0.25 * (100.0 - 50.0));
        assert_eq!(e.typical_ms, 100.0 + 0.125 * 100.0);
        assert_eq!(e.samples, 2);
    }
}
