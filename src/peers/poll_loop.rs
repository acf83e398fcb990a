//! The loop of a call: every peer asked at once from the calling thread, one `poll(2)`
//! over the call's sockets, budget slots, ejection and hedges, until the collector is
//! decided, every peer has finished, or the deadline passes.

use std::io;
use std::time::{Duration, Instant};

use rustix::event::{poll, PollFd, PollFlags, Timespec};

use super::budget::Place;
use super::connection::{Challenges, Connection, Failure, Stage, Step};
use super::ejection::Admission;
use super::health;
use super::PeerClient;
use super::outcome::{Collector, PeerOutcome, PeerReport};
use super::settings::{PeerOptions, MAX_SETTING_MS};
use super::wire::{AnswerError, Claimer, Target};
use crate::protocol::Coin;

/// Where one peer stands during [`ask_peers`].
#[derive(Default)]
pub(super) struct PeerState {
    /// Ejected: never asked in this call, no vote.
    pub(super) ejected: bool,
    /// This call is the peer's half-open probe.
    pub(super) probe: bool,
    /// Its place in the queue for the peer's share of the budget, while waiting.
    pub(super) place: Option<Place>,
    /// Its first connection was opened (or failed to open for a reason of its own).
    pub(super) started: bool,
    /// Connections still open.
    pub(super) open: u8,
    pub(super) hedged: bool,
    /// When its first connection opened plus its hedge limit ([`health`]).
    pub(super) hedge_at: Option<Instant>,
    /// Coins listed in its vote, once it has voted.
    pub(super) voted: Option<usize>,
    /// Time from opening the connection to its first well-formed answer.
    pub(super) answered_in: Option<Duration>,
    pub(super) first_failure: Option<Failure>,
    pub(super) hedge_failure: Option<Failure>,
}

impl PeerState {
    fn is_pending(&self) -> bool {
        !self.ejected && self.voted.is_none() && (self.open > 0 || !self.started)
    }
}

/// How long to wait between tries when the connection budget is used up: other calls
/// give slots back without telling this one (there is no descriptor to wake it). The wait
/// doubles while the budget stays full, from the first to the last value, so a hundred
/// waiting fixes do not spin.
pub(super) const SLOT_RETRY_FIRST: Duration = Duration::from_millis(5);
pub(super) const SLOT_RETRY_LAST: Duration = Duration::from_millis(80);

/// Asks every target at once to validate its ticket, feeding valid answers to
/// `collector` as they arrive, until the collector is decided, every peer has finished,
/// or the deadline passes. Returns one report per target, in `targets` order.
///
/// Runs entirely on the calling thread: non-blocking sockets and one `poll(2)` over
/// them. Every connection holds a slot of `client`'s budget ([`budget`]), granted
/// per peer in arrival order; a peer that cannot get one before the deadline is reported
/// [`PeerOutcome::NoConnection`]. An ejected peer ([`ejection`]) is not asked and is no
/// vote from the start ([`PeerOutcome::Ejected`]), unless this call is its probe.
/// No socket it opened is open when it returns.
pub fn ask_peers<C: Collector + ?Sized>(
    client: &PeerClient,
    targets: &[Target],
    claimer: Claimer,
    options: &PeerOptions,
    collector: &mut C,
) -> Vec<PeerReport> {
    let start = Instant::now();
    let far = start + Duration::from_millis(MAX_SETTING_MS);
    let deadline = start.checked_add(options.deadline).unwrap_or(far);
    let keys: Vec<_> = targets.iter().map(|t| (t.raida, t.addr)).collect();
    let mut states: Vec<PeerState> = client.health.admit(&keys, deadline)
        .into_iter()
        .map(|admission| PeerState {
            ejected: admission == Admission::Ejected,
            probe: admission == Admission::Probe,
            ..PeerState::default()
        })
        .collect();
    let ceiling = health::hedge_ceiling(options.deadline);
    let limits: Vec<Duration> = targets
        .iter()
        .map(|t| {
            client.health.estimate_of(t.raida, t.addr).hedge_limit(
                options.hedge_after,
                options.hedge_start,
                ceiling,
            )
        })
        .collect();
    let pending = states.iter().filter(|s| s.is_pending()).count();
    let deadline_passed = !collector.is_decided(pending)
        && drive(
            client,
            targets,
            claimer,
            deadline,
            &limits,
            &mut states,
            collector,
        );
    // A peer never asked (decided without it, no connection slot, ejected) says nothing
    // of its health; a probe always reports back, asked or not.
    let observations: Vec<_> = targets
        .iter()
        .zip(&states)
        .filter(|(_, s)| s.started || s.probe)
        .map(|(t, s)| (t.raida, t.addr, observation(s, deadline_passed)))
        .collect();
    if let Some(line) = client.health.record(&observations, &options.eject) {
        crate::log::warning(&line);
    }
    targets
        .iter()
        .zip(states)
        .map(|(&target, state)| report(target, state, deadline_passed))
        .collect()
}

/// The readiness loop of [`ask_peers`]; true when it ended at the deadline.
pub(super) fn drive<C: Collector + ?Sized>(
    client: &PeerClient,
    targets: &[Target],
    claimer: Claimer,
    deadline: Instant,
    limits: &[Duration],
    states: &mut [PeerState],
    collector: &mut C,
) -> bool {
    let mut connections: Vec<Connection> = Vec::with_capacity(targets.len());
    let budget = &client.budget;
    let mut challenges = Challenges::new(2 * targets.len(), client.auth.as_deref());
    let mut slot_retry = SLOT_RETRY_FIRST;
    let mut ready: Vec<PollFlags> = Vec::with_capacity(targets.len());
    loop {
        let pending = states.iter().filter(|s| s.is_pending()).count();
        if pending == 0 || collector.is_decided(pending) {
            return false;
        }
        let now = Instant::now();
        if now >= deadline {
            return true;
        }
        let mut wake = deadline;
        let mut short_of_slots = false;
        let opened_before = connections.len();
        // Opens `slot`'s first connection, or with `hedge` its second, when the process has
        // a connection slot free (else notes the shortage: retried after `slot_retry`).
        let mut open = |slot: usize, state: &mut PeerState, hedge: bool| {
            let raida = targets[slot].raida;
            let permit = if hedge {
                budget.hedge(raida)
            } else {
                // Keeps its place in the peer's queue until a slot is its turn.
                let taken = match state.place.take() {
                    Some(place) => place.take(),
                    None => budget.first(raida),
                };
                taken.map_err(|place| state.place = Some(place)).ok()
            };
            let Some(permit) = permit else {
                short_of_slots = true;
                return;
            };
            if hedge {
                state.hedged = true;
            } else {
                state.started = true;
            }
            let opened = challenges.next(targets[slot], claimer).and_then(|challenge| {
                Connection::open(targets[slot], claimer, slot, hedge, permit, challenge)
            });
            match opened {
                Ok(connection) => {
                    if hedge {
                        state.open += 1;
                    } else {
                        state.open = 1;
                        state.hedge_at = connection.opened.checked_add(limits[slot]);
                    }
                    connections.push(connection);
                }
                Err(failure) => record_failure(state, hedge, failure),
            }
        };
        for (slot, state) in states.iter_mut().enumerate() {
            if state.ejected {
                continue;
            }
            if !state.started {
                open(slot, state, false);
            } else if state.is_pending() && !state.hedged {
                let Some(hedge_at) = state.hedge_at else {
                    continue;
                };
                if now < hedge_at {
                    wake = wake.min(hedge_at);
                    continue;
                }
                open(slot, state, true);
            }
        }
        if short_of_slots {
            wake = wake.min(now + slot_retry);
            slot_retry = (slot_retry * 2).min(SLOT_RETRY_LAST);
        } else {
            slot_retry = SLOT_RETRY_FIRST;
        }
        // A connect that completed at once can send at once.
        ready.clear();
        ready.extend(connections.iter().enumerate().map(|(i, c)| {
            if i >= opened_before && matches!(c.stage, Stage::Sending { .. }) {
                PollFlags::OUT
            } else {
                PollFlags::empty()
            }
        }));
        if ready.iter().all(|r| r.is_empty()) {
            match wait(&connections, wake, &mut ready) {
                Ok(()) => {}
                Err(kind) => {
                    for connection in connections.drain(..) {
                        let state = &mut states[connection.slot];
                        state.open -= 1;
                        record_failure(state, connection.hedge, Failure::Local(kind));
                    }
                    continue;
                }
            }
        }
        // Back to front, so removing a finished connection leaves the rest in place.
        for i in (0..connections.len()).rev() {
            if ready[i].is_empty() {
                continue;
            }
            let slot = connections[i].slot;
            match connections[i].advance(targets[slot].raida, ready[i]) {
                Step::Wait(flags) => connections[i].waits_for = flags,
                Step::Done(result) => {
                    let connection = connections.swap_remove(i);
                    let took = connection.opened.elapsed();
                    let state = &mut states[slot];
                    state.open -= 1;
                    match result {
                        Ok(coins) => {
                            if state.voted.is_none() {
                                state.voted = Some(coins.len());
                                state.answered_in.get_or_insert(took);
                                collector.answer(targets[slot].raida, &coins);
                            }
                        }
                        Err(failure) => {
                            if matches!(failure, Failure::Answer(AnswerError::Status(_))) {
                                state.answered_in.get_or_insert(took);
                            }
                            record_failure(state, connection.hedge, failure);
                        }
                    }
                }
            }
        }
    }
}

pub(super) fn record_failure(state: &mut PeerState, hedge: bool, failure: Failure) {
    if hedge {
        state.hedge_failure = Some(failure);
    } else {
        state.first_failure = Some(failure);
    }
}

/// One `poll(2)` over `connections` until `wake`; fills `ready` with what each reported
/// (all empty on a timeout). The error kind when poll itself fails.
pub(super) fn wait(
    connections: &[Connection],
    wake: Instant,
    ready: &mut [PollFlags],
) -> Result<(), io::ErrorKind> {
    let mut fds: Vec<PollFd<'_>> = connections
        .iter()
        .map(|c| PollFd::new(&c.socket, c.waits_for))
        .collect();
    let left = wake.saturating_duration_since(Instant::now());
    let timeout = Timespec {
        tv_sec: i64::try_from(left.as_secs()).unwrap_or(i64::MAX),
        tv_nsec: i64::from(left.subsec_nanos()),
    };
    match poll(&mut fds, Some(&timeout)) {
        Ok(_) => {
            for (r, fd) in ready.iter_mut().zip(&fds) {
                *r = fd.revents();
            }
            Ok(())
        }
        // A signal: the loop re-checks the clock and polls again.
        Err(e) if e == rustix::io::Errno::INTR => Ok(()),
        Err(e) => Err(io::Error::from(e).kind()),
    }
}

/// What one call tells [`health`] about a peer.
pub(super) fn observation(state: &PeerState, deadline_passed: bool) -> health::Observation {
    let failed = |f: &Option<Failure>| {
        matches!(
            f,
            Some(Failure::Connect(_))
                | Some(Failure::Answer(
                    AnswerError::WrongRaida { .. }
                        | AnswerError::ChallengeNotEchoed
                        | AnswerError::BadBodySize(_)
                        | AnswerError::BadTrailer(_)
                        | AnswerError::Closed { .. }
                        | AnswerError::Io(_)
                ))
        )
    };
    health::Observation {
        answered_in: state.answered_in,
        failed: state.voted.is_none()
            && (failed(&state.first_failure) || failed(&state.hedge_failure)),
        timed_out: state.voted.is_none() && state.open > 0 && deadline_passed,
        hedged: state.hedged,
        probe: state.probe,
        connected: state.started,
    }
}

/// The one outcome of a peer: its vote; else what its first connection said when that
/// was an answer or a refusal; else silence (timed out at the deadline, or unneeded).
pub(super) fn report(target: Target, state: PeerState, deadline_passed: bool) -> PeerReport {
    let silent = if deadline_passed {
        PeerOutcome::TimedOut
    } else {
        PeerOutcome::Unneeded
    };
    if state.ejected {
        return PeerReport {
            target,
            outcome: PeerOutcome::Ejected,
            hedged: false,
            hedge_outcome: None,
        };
    }
    if !state.started {
        // Never got a connection slot (or was not needed before it could).
        let outcome = if deadline_passed {
            PeerOutcome::NoConnection
        } else {
            PeerOutcome::Unneeded
        };
        return PeerReport {
            target,
            outcome,
            hedged: false,
            hedge_outcome: None,
        };
    }
    let open = state.open > 0;
    let hedge_outcome = state.hedge_failure.map(Failure::outcome);
    let outcome = match (state.voted, state.first_failure) {
        (Some(listed), _) => PeerOutcome::Voted { listed },
        (None, Some(failure)) => failure.outcome(),
        (None, None) if open => silent,
        (None, None) => hedge_outcome.clone().unwrap_or(silent),
    };
    PeerReport {
        target,
        outcome,
        hedged: state.hedged,
        hedge_outcome,
    }
}

/// Asks one peer to validate its ticket (hedged like [`ask_peers`]); the coins it
/// listed, or why there are none.
pub fn ask_one(
    client: &PeerClient,
    target: Target,
    claimer: Claimer,
    options: &PeerOptions,
) -> (PeerReport, Option<Vec<Coin>>) {
    struct One(Option<Vec<Coin>>);
    impl Collector for One {
        fn answer(&mut self, _raida: u8, coins: &[Coin]) {
            self.0 = Some(coins.to_vec());
        }
        fn is_decided(&self, pending: usize) -> bool {
            self.0.is_some() || pending == 0
        }
    }
    let mut one = One(None);
    let report = ask_peers(client, &[target], claimer, options, &mut one)
        .pop()
        .expect("one report per target");
    (report, one.0)
}
