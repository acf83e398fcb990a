//! What this process has seen of each peer: answer counts, failures, timeouts, hedges,
//! an answer-time estimate that decides when a silent peer gets a hedge, and the peer's
//! ejection breaker ([`ejection`](super::ejection)).
//!
//! # The hedge rule
//!
//! Each peer (RAIDA index and address) keeps, across calls, an estimate of the time from
//! opening a connection to a well-formed answer, close to the way TCP estimates a round
//! trip (RFC 6298): `typical` is an EWMA of the answer times and `spread` an EWMA of their
//! deviation from it; the first answer sets `typical` to itself and `spread` to half of
//! it. From those, `high = typical + 4 x spread` (a high percentile).
//!
//! The estimate is quick to come down and slow to go up, so that no run of slow answers
//! can poison it:
//!
//! - an answer slower than `typical` moves it by 1/8 of the difference and `spread` by
//!   1/4 of (deviation - spread), as RFC 6298;
//! - an answer at or below `typical` moves `typical` **half** way down to it, and
//!   `spread` by 1/4 towards the deviation only when that is smaller than `spread`: a
//!   fast answer never raises either, so it never lengthens the hedge delay, and after a
//!   slow period `typical` is back within `2^-k` of the distance after `k` fast answers.
//!
//! A peer still silent `limit` after its first connection opened gets one second
//! connection, where
//!
//! ```text
//! limit = max(floor, min(ceiling, 2 x high, 8 x typical))   with history
//! limit = max(floor, start)                                  without history
//! ceiling = min(2 s, deadline / 4)
//! ```
//!
//! `floor` is `RAIDA_HEALING_HEDGE_MS` (default 300 ms) and `start`
//! `RAIDA_HEALING_HEDGE_START_MS` (default 1000 ms). So a healthy distant peer is not
//! hedged for being distant (it is silent for less than twice its own high answer time),
//! a peer that usually answers in 50 ms is hedged after at most
//! `max(300, 8 x 50) = 400 ms` of silence, and whatever a peer's history its stranded
//! connection (the legacy listener's lazy accept) is rescued after at most 2 s (a quarter
//! of the deadline when that is shorter).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddrV4;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::ejection::{Admission, Breaker, EjectOptions};

/// How often, at most, the peer health line is logged (and only after traffic).
pub(crate) const HEALTH_LOG_INTERVAL: Duration = Duration::from_secs(60);
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
/// Weight of a faster-than-typical answer in `typical`: half way down at once.
const RECOVERY_WEIGHT: f64 = 1.0 / 2.0;
/// Whatever the history, a peer with history is hedged after at most this much silence
/// (or a quarter of the deadline, when that is shorter) ...
pub(crate) const MAX_HEDGE_DELAY: Duration = Duration::from_secs(2);
/// ... the quarter.
const DEADLINE_FRACTION: u32 = 4;

/// The longest silence before a hedge for a peer with history, for a call with
/// `deadline`: `min(2 s, deadline / 4)`.
pub fn hedge_ceiling(deadline: Duration) -> Duration {
    MAX_HEDGE_DELAY.min(deadline / DEADLINE_FRACTION)
}

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
        } else if r > self.typical_ms {
            self.spread_ms += SPREAD_WEIGHT * ((r - self.typical_ms) - self.spread_ms);
            self.typical_ms += TYPICAL_WEIGHT * (r - self.typical_ms);
        } else {
            // A fast answer: never raises the spread, brings typical down quickly.
            let deviation = (self.typical_ms - r).min(self.spread_ms);
            self.spread_ms += SPREAD_WEIGHT * (deviation - self.spread_ms);
            self.typical_ms += RECOVERY_WEIGHT * (r - self.typical_ms);
        }
        self.samples += 1;
    }

    /// The high-percentile answer time: `typical + 4 x spread`.
    pub fn high_ms(&self) -> f64 {
        self.typical_ms + SPREAD_FACTOR * self.spread_ms
    }

    /// How long the peer may stay silent before it is hedged (the rule in the module
    /// documentation), at most `ceiling` ([`hedge_ceiling`]) once it has history.
    pub fn hedge_limit(&self, floor: Duration, start: Duration, ceiling: Duration) -> Duration {
        if self.samples == 0 {
            return floor.max(start);
        }
        let ms = (HIGH_FACTOR * self.high_ms()).min(TYPICAL_CAP * self.typical_ms);
        let rule = Duration::from_secs_f64(ms.clamp(0.0, 3_600_000.0) / 1000.0);
        floor.max(rule.min(ceiling))
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
    /// Times it was ejected (each ejection, the first and every failed probe's).
    pub ejections: u64,
    /// Probes of it while ejected that opened a connection.
    pub probes: u64,
    pub estimate: Estimate,
    /// Its ejection state.
    pub breaker: Breaker,
}

/// What one call saw of one peer, added by [`HealthTable::record`].
#[derive(Debug, Clone, Copy, Default)]
pub struct Observation {
    /// Time to its first well-formed answer (vote or refusal such as 43), if any.
    pub answered_in: Option<Duration>,
    pub failed: bool,
    pub timed_out: bool,
    pub hedged: bool,
    /// This call was the peer's half-open probe ([`HealthTable::admit`] said so).
    pub probe: bool,
    /// A connection to it was opened.
    pub connected: bool,
}

struct PeerTable {
    peers: BTreeMap<(u8, SocketAddrV4), (PeerHealth, u64)>,
    /// Bumped on every use, to find the least recently used peer.
    clock: u64,
    /// Observations since the last health line.
    traffic: bool,
    last_line: Option<Instant>,
}

/// What this process has seen of every peer: one per process, held by the state owner
/// (`src/ffi/state.rs`) and passed to every call through [`PeerClient`](super::PeerClient);
/// a test may build its own.
pub struct HealthTable {
    table: Mutex<PeerTable>,
}

impl Default for HealthTable {
    fn default() -> Self {
        HealthTable {
            table: Mutex::new(PeerTable::new()),
        }
    }
}

impl HealthTable {
    /// The estimate of peer `raida` at `addr` (empty when never answered).
    pub fn estimate_of(&self, raida: u8, addr: SocketAddrV4) -> Estimate {
        self.table
            .lock()
            .peers
            .get(&(raida, addr))
            .map(|(h, _)| h.estimate)
            .unwrap_or_default()
    }

    /// What a call starting now and ending at the latest at `call_deadline` may do with
    /// each of `peers` (in order): ask it, probe it, or count it as ejected. A call told
    /// [`Admission::Probe`] must report the peer to [`record`](Self::record) (with `probe`
    /// set).
    pub fn admit(&self, peers: &[(u8, SocketAddrV4)], call_deadline: Instant) -> Vec<Admission> {
        let now = Instant::now();
        let mut table = self.table.lock();
        peers
            .iter()
            .map(|key| match table.peers.get_mut(key) {
                Some((health, _)) => health.breaker.admit(now, call_deadline),
                None => Admission::Ask,
            })
            .collect()
    }

    /// Adds what one call saw of each peer, ejecting or restoring peers by `eject`;
    /// returns the health line when one is due (at most once per [`HEALTH_LOG_INTERVAL`],
    /// and only after traffic), for the caller to log.
    pub fn record(
        &self,
        observations: &[(u8, SocketAddrV4, Observation)],
        eject: &EjectOptions,
    ) -> Option<String> {
        self.table
            .lock()
            .record(observations, eject, Instant::now())
    }

    /// Every remembered peer's figures, by RAIDA index then address.
    pub fn snapshot(&self) -> Vec<(u8, SocketAddrV4, PeerHealth)> {
        self.table
            .lock()
            .peers
            .iter()
            .map(|(&(raida, addr), &(health, _))| (raida, addr, health))
            .collect()
    }
}

impl PeerTable {
    const fn new() -> PeerTable {
        PeerTable {
            peers: BTreeMap::new(),
            clock: 0,
            traffic: false,
            last_line: None,
        }
    }

    fn record(
        &mut self,
        observations: &[(u8, SocketAddrV4, Observation)],
        eject: &EjectOptions,
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
            health.probes += u64::from(seen.probe && seen.connected);
            let breaker = &mut health.breaker;
            if seen.answered_in.is_some() {
                breaker.answered(now, eject);
            } else if seen.failed || seen.timed_out {
                health.ejections += u64::from(breaker.failed(now, seen.probe, eject));
            } else if seen.probe {
                breaker.probe_inconclusive();
            }
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
        Some(health_line(&self.peers, now))
    }
}

/// The health line: each peer's counts and typical answer time, and for an ejected peer
/// `ejected, probe in N s` (or `ejected, probing` while its probe runs, `ejected, probe
/// due` once the next call may probe it).
fn health_line(peers: &BTreeMap<(u8, SocketAddrV4), (PeerHealth, u64)>, now: Instant) -> String {
    let mut line =
        String::from("peer health since start (answers/failures/timeouts/hedges, typical ms):");
    for ((raida, addr), (h, _)) in peers {
        let _ = write!(
            line,
            " {raida}@{addr} {}/{}/{}/{} {:.0}",
            h.answers, h.failures, h.timeouts, h.hedges, h.estimate.typical_ms
        );
        if let Some(next_probe) = h.breaker.next_probe {
            let probing = h.breaker.probing_until.is_some_and(|until| now < until);
            if probing {
                line.push_str(" ejected, probing");
            } else if now < next_probe {
                let wait = next_probe - now;
                let _ = write!(line, " ejected, probe in {:.1} s", wait.as_secs_f64());
            } else {
                line.push_str(" ejected, probe due");
            }
        }
        line.push(';');
    }
    if line.ends_with(';') {
        line.pop();
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    const FLOOR: Duration = Duration::from_millis(300);
    const START: Duration = Duration::from_millis(1000);
    const CEILING: Duration = MAX_HEDGE_DELAY;

    /// An empty table, the default ejection rule and the time it starts at.
    fn fresh_table() -> (PeerTable, EjectOptions, Instant) {
        (PeerTable::new(), EjectOptions::default(), Instant::now())
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn limit(e: &Estimate) -> Duration {
        e.hedge_limit(FLOOR, START, CEILING)
    }

    #[test]
    fn no_history_waits_for_the_conservative_start() {
        let e = Estimate::default();
        assert_eq!(limit(&e), START);
        assert_eq!(e.hedge_limit(ms(2000), START, CEILING), ms(2000));
    }

    #[test]
    fn the_ceiling_is_two_seconds_or_a_quarter_of_the_deadline() {
        assert_eq!(hedge_ceiling(Duration::from_secs(32)), ms(2000));
        assert_eq!(hedge_ceiling(ms(8000)), ms(2000));
        assert_eq!(hedge_ceiling(ms(2000)), ms(500));
    }

    #[test]
    fn a_fast_peer_silent_for_a_second_is_hedged_never_before_the_floor() {
        let mut e = Estimate::default();
        for _ in 0..20 {
            e.add(ms(50));
        }
        assert_eq!(limit(&e), FLOOR);
        // Even a noisy 10-90 ms peer is hedged before a second of silence.
        let mut noisy = Estimate::default();
        for i in 0..40 {
            noisy.add(ms(if i % 2 == 0 { 10 } else { 90 }));
        }
        assert!((10.0..90.0).contains(&noisy.typical_ms), "{noisy:?}");
        assert!(limit(&noisy) < ms(1000), "{noisy:?}");
    }

    #[test]
    fn a_distant_peer_is_not_hedged_for_its_distance() {
        let mut e = Estimate::default();
        e.add(ms(600));
        // One answer: typical 600, spread 300, high 1800; the ceiling (2 s) binds.
        assert_eq!(limit(&e), ms(2000));
        for _ in 0..50 {
            e.add(ms(600));
        }
        let l = limit(&e);
        assert!(l >= ms(1200) && l < ms(1300), "{l:?}");
    }

    #[test]
    fn ewma_follows_rfc_6298_for_slower_answers() {
        let mut e = Estimate::default();
        e.add(ms(100));
        assert_eq!((e.typical_ms, e.spread_ms), (100.0, 50.0));
        e.add(ms(200));
        assert_eq!(e.spread_ms, 50.0 + 0.25 * (100.0 - 50.0));
        assert_eq!(e.typical_ms, 100.0 + 0.125 * 100.0);
        assert_eq!(e.samples, 2);
    }

    /// Whatever the history, a fast answer never raises the limit; after any number of
    /// slow answers the limit stays within the ceiling; it recovers within a few answers.
    #[test]
    fn slow_answers_cannot_poison_the_hedge_delay() {
        let mut e = Estimate::default();
        for _ in 0..20 {
            e.add(ms(50));
        }
        // A dozen 2 s answers: the ceiling holds.
        for _ in 0..12 {
            e.add(ms(2000));
            assert!(limit(&e) <= CEILING, "{e:?}");
        }
        assert_eq!(limit(&e), CEILING);
        // Fast answers again: each lowers (or keeps) the limit and the spread...
        let mut before = (limit(&e), e.spread_ms, e.typical_ms);
        let mut recovered_after = None;
        for k in 1..=20 {
            e.add(ms(50));
            let now = (limit(&e), e.spread_ms, e.typical_ms);
            assert!(now.0 <= before.0 && now.1 <= before.1 && now.2 <= before.2);
            before = now;
            if recovered_after.is_none() && now.0 < ms(500) {
                recovered_after = Some(k);
            }
        }
        // ... and within 8 answers the peer is hedged in under half a second again.
        assert!(recovered_after.is_some_and(|k| k <= 8), "{recovered_after:?}");
        // A single fast answer after steady ones never raises the limit (the old rule
        // raised the spread with it).
        let mut steady = Estimate::default();
        for _ in 0..30 {
            steady.add(ms(500));
        }
        let l = limit(&steady);
        steady.add(ms(5));
        assert!(limit(&steady) <= l);
    }

    #[test]
    fn health_line_at_most_once_a_minute_and_only_after_traffic() {
        let (mut table, eject, t0) = fresh_table();
        let a: SocketAddrV4 = "10.0.0.1:30001".parse().unwrap();
        let b: SocketAddrV4 = "10.0.0.2:30002".parse().unwrap();
        let answered = Observation {
            answered_in: Some(ms(52)),
            connected: true,
            ..Observation::default()
        };
        let slow = Observation {
            timed_out: true,
            hedged: true,
            connected: true,
            ..Observation::default()
        };
        let line = table.record(&[(1, a, answered), (2, b, slow)], &eject, t0);
        assert_eq!(
            line.as_deref(),
            Some(
                "peer health since start (answers/failures/timeouts/hedges, typical ms): \
                 1@10.0.0.1:30001 1/0/0/0 52; 2@10.0.0.2:30002 0/0/1/1 0"
            )
        );
        // Within the minute: counted, not logged.
        assert_eq!(
            table.record(&[(1, a, answered)], &eject, t0 + ms(30_000)),
            None
        );
        // A minute on, with traffic since: logged with the figures so far; peer 2 has
        // timed out 3 times in a row: ejected until 10 s after its third timeout.
        table.record(&[(2, b, slow)], &eject, t0 + ms(40_000));
        table.record(&[(2, b, slow)], &eject, t0 + ms(55_000));
        let line = table
            .record(&[(1, a, answered)], &eject, t0 + ms(60_000))
            .unwrap();
        assert!(line.contains(" 1@10.0.0.1:30001 3/0/0/0 52;"), "{line}");
        assert!(
            line.ends_with(" 2@10.0.0.2:30002 0/0/3/3 0 ejected, probe in 5.0 s"),
            "{line}"
        );
        // Another minute with no traffic: nothing.
        assert_eq!(table.record(&[], &eject, t0 + ms(125_000)), None);
        // Traffic again, long after: logged.
        let line = table.record(&[(1, a, answered)], &eject, t0 + ms(130_000));
        assert!(line.unwrap().ends_with(" 0/0/3/3 0 ejected, probe due"));
    }

    #[test]
    fn ejection_counts_and_probes_in_the_table() {
        let (mut table, eject, t0) = fresh_table();
        let a: SocketAddrV4 = "10.0.0.1:30001".parse().unwrap();
        let refused = Observation {
            failed: true,
            connected: true,
            ..Observation::default()
        };
        for _ in 0..3 {
            table.record(&[(1, a, refused)], &eject, t0);
        }
        let health = |t: &PeerTable| t.peers[&(1, a)].0;
        assert_eq!(health(&table).ejections, 1);
        assert_eq!(health(&table).breaker.next_probe, Some(t0 + ms(10_000)));
        let t1 = t0 + ms(10_000);
        let admission = |t: &mut PeerTable, now| t.peers.get_mut(&(1, a)).unwrap().0.breaker.admit(now, now + ms(8000));
        assert_eq!(admission(&mut table, t1), Admission::Probe);
        assert_eq!(admission(&mut table, t1), Admission::Ejected);
        let probe = Observation {
            probe: true,
            ..refused
        };
        table.record(&[(1, a, probe)], &eject, t1);
        assert_eq!((health(&table).ejections, health(&table).probes), (2, 1));
        assert_eq!(health(&table).breaker.next_probe, Some(t1 + ms(20_000)));
        let t2 = t1 + ms(20_000);
        assert_eq!(admission(&mut table, t2), Admission::Probe);
        let answered = Observation {
            answered_in: Some(ms(3)),
            probe: true,
            connected: true,
            ..Observation::default()
        };
        table.record(&[(1, a, answered)], &eject, t2);
        // Restored, with its two ejections remembered until it stays healthy for 20 s.
        assert_eq!(
            health(&table).breaker,
            Breaker {
                ejections_in_a_row: 2,
                healthy_since: Some(t2),
                ..Breaker::default()
            }
        );
        table.record(&[(1, a, answered)], &eject, t2 + ms(20_000));
        assert_eq!(health(&table).breaker, Breaker::default());
        assert_eq!((health(&table).ejections, health(&table).probes), (2, 3));
        assert_eq!(admission(&mut table, t2), Admission::Ask);
    }
}
