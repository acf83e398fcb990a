//! Outlier ejection: a circuit breaker per peer, so a dead peer costs the fixes nothing.
//!
//! A peer whose last [`EjectOptions::after`] attempts in a row failed (timed out at a
//! deadline, refused the connection, or broke the protocol) is **ejected** for a
//! cooldown: calls open no connection to it and count it as no vote at once, so a fix
//! decides as soon as the live peers have answered. When the cooldown is over the peer is
//! **half-open**: the next call that wants it asks it as a **probe**, and only that call
//! (every other call still counts it as no vote). The first valid answer from the peer
//! (a vote, or a well-formed refusal such as 43) **restores** it; a probe that fails
//! ejects it again for twice the previous cooldown, up to [`EjectOptions::max`]. A
//! probe that ends without a verdict (the fix was decided first, or no slot was free)
//! leaves the peer half-open for the next call.
//!
//! **The breaker remembers.** A restored peer keeps its count of ejections in a row until
//! it has **stayed healthy for as long as its last cooldown** (`min(max, cooldown x
//! 2^(n-1))` after its n-th ejection in a row): valid answers only, from its first answer
//! after its last failure until at least that long after. A peer that answers the probe
//! and fails again before then goes back out for twice its last cooldown, as if it had
//! never come back, so a peer that answers only probes (and stalls everything else) is
//! asked less and less often (10 s, 20 s, ... 5 minutes at the defaults), instead of
//! costing the fixes a deadline every 10 s forever. Any failure restarts the healthy time.
//!
//! This is the pattern of Envoy's outlier detection (consecutive failures, an ejection
//! time that grows with each ejection) and of a circuit breaker's single half-open
//! trial.

use std::time::{Duration, Instant};

/// When peers are ejected and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EjectOptions {
    /// Failed attempts in a row that eject a peer; 0 never ejects.
    pub after: u32,
    /// The first cooldown; each further ejection without an answer in between doubles it.
    pub cooldown: Duration,
    /// The longest cooldown.
    pub max: Duration,
}

impl Default for EjectOptions {
    /// Three failures in a row (three fixes that each waited their deadline for the
    /// peer, so a flaky network link is not ejected), a first cooldown of 10 s, at most
    /// 5 minutes: in a network of 25 RAIDAs a dead peer costs one fix in 10 s at first,
    /// one in 5 minutes when it stays dead, and a returning peer votes again within
    /// 5 minutes.
    fn default() -> Self {
        EjectOptions {
            after: 3,
            cooldown: Duration::from_secs(10),
            max: Duration::from_secs(300),
        }
    }
}

impl EjectOptions {
    /// The cooldown of the `n`th ejection in a row (1 for the first):
    /// `min(max, cooldown x 2^(n-1))`.
    pub fn cooldown_of(&self, n: u32) -> Duration {
        let doublings = n.saturating_sub(1).min(32);
        self.cooldown
            .checked_mul(1u32 << doublings.min(31))
            .unwrap_or(self.max)
            .min(self.max.max(self.cooldown))
    }
}

/// What a call may do with a peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Not ejected: ask it.
    Ask,
    /// Half-open and this call is its one probe: ask it.
    Probe,
    /// Ejected (or another call is probing it): do not connect, no vote.
    Ejected,
}

/// One peer's breaker.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Breaker {
    /// Failed attempts since its last valid answer.
    pub consecutive_failures: u32,
    /// Ejections not yet forgiven (the cooldown doubles with each): forgotten once the
    /// peer has stayed healthy for its last cooldown.
    pub ejections_in_a_row: u32,
    /// Since when it has answered validly without a failure, while it has ejections to
    /// live down.
    pub healthy_since: Option<Instant>,
    /// While ejected: when its next probe may start.
    pub next_probe: Option<Instant>,
    /// While a probe runs: when that probe is over at the latest (its call's deadline);
    /// a probe whose call never reported back (a bug) cannot block the peer for longer.
    pub probing_until: Option<Instant>,
}

impl Breaker {
    /// True while the peer is ejected (including while half-open).
    pub fn is_ejected(&self) -> bool {
        self.next_probe.is_some()
    }

    /// Whether a call starting `now` (ending at the latest at `call_deadline`) may ask
    /// the peer; makes the call the probe when the peer is half-open and nobody probes.
    pub fn admit(&mut self, now: Instant, call_deadline: Instant) -> Admission {
        let Some(next_probe) = self.next_probe else {
            return Admission::Ask;
        };
        let probing = self.probing_until.is_some_and(|until| now < until);
        if now < next_probe || probing {
            return Admission::Ejected;
        }
        self.probing_until = Some(call_deadline);
        Admission::Probe
    }

    /// A valid answer at `now`: the peer is restored (no longer ejected, its failures in a
    /// row forgotten); its ejections in a row are forgiven once it has stayed healthy for
    /// its last cooldown.
    pub fn answered(&mut self, now: Instant, options: &EjectOptions) {
        self.consecutive_failures = 0;
        self.next_probe = None;
        self.probing_until = None;
        if self.ejections_in_a_row == 0 {
            self.healthy_since = None;
            return;
        }
        let since = *self.healthy_since.get_or_insert(now);
        if now.saturating_duration_since(since) >= options.cooldown_of(self.ejections_in_a_row) {
            self.ejections_in_a_row = 0;
            self.healthy_since = None;
        }
    }

    /// A failed attempt at `now` (timed out, refused, invalid); ejects the peer when it
    /// reaches the threshold, or ejects it again when it was `probe`. True when this
    /// failure ejected it.
    pub fn failed(&mut self, now: Instant, probe: bool, options: &EjectOptions) -> bool {
        self.consecutive_failures = self.consecutive_failures.saturating_add(1);
        self.healthy_since = None;
        let eject = if probe {
            true
        } else {
            // Connections opened before the ejection that fail later add nothing more.
            !self.is_ejected() && options.after > 0 && self.consecutive_failures >= options.after
        };
        if probe {
            self.probing_until = None;
        }
        if eject {
            self.ejections_in_a_row = self.ejections_in_a_row.saturating_add(1);
            self.next_probe = Some(now + options.cooldown_of(self.ejections_in_a_row));
        }
        eject
    }

    /// The probe ended without a verdict (decided without it, no slot): the next call
    /// may probe at once.
    pub fn probe_inconclusive(&mut self) {
        self.probing_until = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn cooldown_doubles_up_to_the_max() {
        let o = EjectOptions::default();
        let got: Vec<u64> = (1..=7).map(|n| o.cooldown_of(n).as_secs()).collect();
        assert_eq!(got, [10, 20, 40, 80, 160, 300, 300]);
        assert_eq!(o.cooldown_of(u32::MAX), s(300));
        let odd = EjectOptions {
            after: 1,
            cooldown: s(50),
            max: s(10),
        };
        // A max below the first cooldown: the first cooldown.
        assert_eq!(odd.cooldown_of(3), s(50));
    }

    #[test]
    fn ejected_after_consecutive_failures_probed_once_restored_by_an_answer() {
        let o = EjectOptions::default();
        let t0 = Instant::now();
        let end = t0 + s(8);
        let mut b = Breaker::default();
        for _ in 0..2 {
            assert_eq!(b.admit(t0, end), Admission::Ask);
            b.failed(t0, false, &o);
        }
        // An answer in between starts the count again.
        b.answered(t0, &o);
        for _ in 0..3 {
            assert_eq!(b.admit(t0, end), Admission::Ask);
            b.failed(t0, false, &o);
        }
        assert!(b.is_ejected());
        assert_eq!(b.next_probe, Some(t0 + s(10)));
        // Late failures of connections opened before the ejection do not extend it.
        b.failed(t0 + s(1), false, &o);
        assert_eq!(b.next_probe, Some(t0 + s(10)));
        assert_eq!(b.admit(t0 + s(9), end), Admission::Ejected);
        // Half-open: one probe, every other call still treats it as ejected.
        let t1 = t0 + s(10);
        assert_eq!(b.admit(t1, t1 + s(8)), Admission::Probe);
        assert_eq!(b.admit(t1 + s(1), t1 + s(9)), Admission::Ejected);
        // The probe fails: ejected again for twice as long.
        b.failed(t1 + s(8), true, &o);
        assert_eq!(b.next_probe, Some(t1 + s(8) + s(20)));
        let t2 = t1 + s(28);
        assert_eq!(b.admit(t2, t2 + s(8)), Admission::Probe);
        // A probe without a verdict: the next call probes.
        b.probe_inconclusive();
        assert_eq!(b.admit(t2, t2 + s(8)), Admission::Probe);
        // A probe that never reports back stops blocking others at its deadline.
        assert_eq!(b.admit(t2 + s(8), t2 + s(16)), Admission::Probe);
        let t3 = t2 + s(8);
        b.answered(t3, &o);
        assert_eq!(b.admit(t3, end), Admission::Ask);
        assert!(!b.is_ejected());
        // Restored, but it has not yet lived its two ejections down (20 s of health).
        assert_eq!((b.consecutive_failures, b.ejections_in_a_row), (0, 2));
        b.answered(t3 + s(19), &o);
        assert_eq!(b.ejections_in_a_row, 2);
        b.answered(t3 + s(20), &o);
        assert_eq!(b, Breaker::default());
    }

    /// A peer that answers only its probe and fails everything else: each ejection's
    /// cooldown doubles as if it had never come back; once it stays healthy for its
    /// last cooldown, the next ejection starts again from the first.
    #[test]
    fn a_flapping_peer_stays_out_longer_each_time_until_it_stays_healthy() {
        let o = EjectOptions::default();
        let mut now = Instant::now();
        let mut b = Breaker::default();
        let mut cooldowns = Vec::new();
        for _ in 0..7 {
            // Three fixes wait their deadline for it (2 s each) and eject it.
            for _ in 0..3 {
                now += s(2);
                b.failed(now, false, &o);
            }
            let next_probe = b.next_probe.expect("ejected");
            cooldowns.push((next_probe - now).as_secs());
            // Its probe, at the end of the cooldown, answers: restored.
            now = next_probe;
            assert_eq!(b.admit(now, now + s(2)), Admission::Probe);
            b.answered(now, &o);
            assert!(!b.is_ejected());
        }
        assert_eq!(cooldowns, [10, 20, 40, 80, 160, 300, 300]);
        // Healthy answers for 299 s: not yet forgiven; one failure restarts the clock.
        b.answered(now + s(299), &o);
        assert_eq!(b.ejections_in_a_row, 7);
        b.failed(now + s(299), false, &o);
        b.answered(now + s(300), &o);
        b.answered(now + s(599), &o);
        assert_eq!(b.ejections_in_a_row, 7);
        // 300 s of answers with no failure (its last cooldown): forgiven.
        b.answered(now + s(600), &o);
        assert_eq!(b, Breaker::default());
        for _ in 0..3 {
            b.failed(now + s(601), false, &o);
        }
        assert_eq!(b.next_probe, Some(now + s(601) + s(10)));
    }

    #[test]
    fn zero_never_ejects() {
        let o = EjectOptions {
            after: 0,
            ..EjectOptions::default()
        };
        let mut b = Breaker::default();
        let t0 = Instant::now();
        for _ in 0..100 {
            b.failed(t0, false, &o);
        }
        assert!(!b.is_ejected());
        assert_eq!(b.admit(t0, t0), Admission::Ask);
    }
}
