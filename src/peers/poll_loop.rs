//! The loop of a call: every peer asked at once from the calling thread, one `poll(2)`
//! over the call's sockets, budget slots, ejection and hedges, until the collector is
//! decided, every peer is settled, or the deadline passes.
//!
//! Split the way mio's event loop is: each turn of [`drive`] first opens what is due
//! ([`Call::open_due`]: first connections, each waiting in its peer's queue for a budget
//! slot, and hedges whose timer has run out), then waits in one `poll(2)` for readiness or
//! the next timer ([`wait`]), then routes each ready socket to its connection and what the
//! connection concluded to its peer ([`Call::route`]).
//!
//! Words: a **peer** is one of the call's targets, by its index in them; a **slot** is
//! always a slot of the peer client's connection budget ([`budget`](super::budget)).

use std::time::{Duration, Instant};

use rustix::event::{poll, PollFd, PollFlags, Timespec};

use super::budget::{Budget, Place};
use super::connection::{Challenges, Connection, Failure, Stage, Step};
use super::ejection::Admission;
use super::health;
use super::PeerClient;
use super::outcome::{Collector, LocalCause, PeerOutcome, PeerReport};
use super::settings::{PeerOptions, MAX_SETTING_MS};
use super::wire::{AnswerError, Claimer, Target};
use crate::protocol::{Coin, Status};

/// The status a peer answers when the ticket was claimed already: on one connection it
/// may mean this call's own claim won on the other.
const ALREADY_CLAIMED: u8 = Status::TicketClaimedAlready as u8;

/// Where one peer stands during [`ask_peers`].
#[derive(Default)]
pub(super) struct PeerState {
    /// Ejected: never asked in this call, no vote.
    pub(super) ejected: bool,
    /// The collector would not let a claim go to it: never asked, no vote.
    pub(super) withheld: bool,
    /// This call is the peer's half-open probe.
    pub(super) probe: bool,
    /// Its place in the queue for a slot of the peer's share of the budget, while waiting.
    pub(super) place: Option<Place>,
    /// Its first connection was opened (or failed to open for a reason of its own).
    pub(super) started: bool,
    /// Connections still open.
    pub(super) open: u8,
    pub(super) hedged: bool,
    /// When its first connection opened plus its hedge limit ([`health`]).
    pub(super) hedge_at: Option<Instant>,
    /// Its first well-formed answer (a vote, or a refusal such as 43) came: it has said
    /// all it will say in this call, so nothing more is waited for and its other
    /// connection is closed.
    pub(super) settled: bool,
    /// Its hedge was still open when it settled, and was closed unneeded.
    pub(super) hedge_closed: bool,
    /// Coins listed in its vote, once it has voted.
    pub(super) voted: Option<usize>,
    /// Time from opening the connection to its first well-formed answer.
    pub(super) answered_in: Option<Duration>,
    pub(super) first_failure: Option<Failure>,
    pub(super) hedge_failure: Option<Failure>,
}

impl PeerState {
    /// Still to be heard from: asked (or to be asked) and neither settled nor given up.
    fn is_pending(&self) -> bool {
        !self.ejected && !self.withheld && !self.settled && (self.open > 0 || !self.started)
    }
}

/// How long to wait between tries when the connection budget is used up: other calls
/// give slots back without telling this one (there is no descriptor to wake it). The wait
/// doubles while the budget stays full, from the first to the last value, so a hundred
/// waiting fixes do not spin.
pub(super) const SLOT_RETRY_FIRST: Duration = Duration::from_millis(5);
pub(super) const SLOT_RETRY_LAST: Duration = Duration::from_millis(80);

/// Asks every target at once to validate its ticket, feeding valid answers to
/// `collector` as they arrive, until the collector is decided, every peer is settled,
/// or the deadline passes. Returns one report per target, in `targets` order.
///
/// Runs entirely on the calling thread: non-blocking sockets and one `poll(2)` over
/// them. Every connection holds a slot of `client`'s budget ([`budget`]), granted
/// per peer in arrival order; a peer that cannot get one before the deadline is reported
/// [`PeerOutcome::NoConnection`]. An ejected peer ([`ejection`]) is not asked and is no
/// vote from the start ([`PeerOutcome::Ejected`]), unless this call is its probe. A
/// peer's first well-formed answer settles it (its hedge is closed), and when every
/// attempt fails on this host (no descriptor, port or route) the call ends at once.
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
    let mut states: Vec<PeerState> = client
        .health
        .admit(&keys, deadline)
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
    hedge_limits: &[Duration],
    peers: &mut [PeerState],
    collector: &mut C,
) -> bool {
    let mut call = Call {
        budget: &client.budget,
        targets,
        claimer,
        hedge_limits,
        peers,
        connections: Vec::with_capacity(targets.len()),
        challenges: Challenges::new(2 * targets.len(), client.auth.as_deref()),
        slot_retry: SLOT_RETRY_FIRST,
        ready: Vec::with_capacity(targets.len()),
    };
    loop {
        if call.is_over(collector) {
            return false;
        }
        let now = Instant::now();
        if now >= deadline {
            return true;
        }
        let opened_before = call.connections.len();
        let wake = call.open_due(now, deadline, collector);
        // Opening may have settled everything: when every attempt failed at once (on this
        // host: no descriptor, no port, no route), the call answers now, not at its deadline.
        if call.is_over(collector) {
            return false;
        }
        if !call.sends_at_once(opened_before) {
            if let Err(cause) = wait(&call.connections, wake, &mut call.ready) {
                call.fail_all(cause);
                continue;
            }
        }
        call.route(collector);
    }
}

/// One call's connections and timers while [`drive`] runs.
struct Call<'a> {
    /// The budget every connection holds a slot of.
    budget: &'a Budget,
    targets: &'a [Target],
    claimer: Claimer,
    /// Per peer: the silence after which it gets a hedge.
    hedge_limits: &'a [Duration],
    peers: &'a mut [PeerState],
    connections: Vec<Connection>,
    /// The challenge (with a claim key, the tag) of each connection.
    challenges: Challenges<'a>,
    /// The wait before asking the budget again while it is short of slots.
    slot_retry: Duration,
    /// Per connection (same order): what the last poll reported.
    ready: Vec<PollFlags>,
}

impl Call<'_> {
    /// True once the collector is decided or no peer is pending.
    fn is_over<C: Collector + ?Sized>(&self, collector: &C) -> bool {
        let pending = self.peers.iter().filter(|s| s.is_pending()).count();
        pending == 0 || collector.is_decided(pending)
    }

    /// Admission and hedge timing: opens every first connection that gets a slot and
    /// every hedge that is due; returns when to wake next (the earliest hedge timer, a
    /// retry while short of slots, else the deadline).
    fn open_due<C: Collector + ?Sized>(
        &mut self,
        now: Instant,
        deadline: Instant,
        collector: &mut C,
    ) -> Instant {
        let mut wake = deadline;
        let mut short_of_slots = false;
        for peer in 0..self.peers.len() {
            let state = &self.peers[peer];
            if state.ejected || state.withheld {
                continue;
            }
            if !state.started {
                short_of_slots |= !self.open(peer, false, collector);
            } else if state.is_pending() && !state.hedged {
                let Some(hedge_at) = state.hedge_at else {
                    continue;
                };
                if now < hedge_at {
                    wake = wake.min(hedge_at);
                    continue;
                }
                short_of_slots |= !self.open(peer, true, collector);
            }
        }
        if short_of_slots {
            wake = wake.min(now + self.slot_retry);
            self.slot_retry = (self.slot_retry * 2).min(SLOT_RETRY_LAST);
        } else {
            self.slot_retry = SLOT_RETRY_FIRST;
        }
        wake
    }

    /// Opens `peer`'s first connection, or with `hedge` its second, when the budget has a
    /// slot for it and the collector lets the claim go (else the peer is withheld, or its
    /// hedge given up); false when the budget had no slot (the first connection keeps its
    /// place in the peer's queue until a slot is its turn).
    fn open<C: Collector + ?Sized>(&mut self, peer: usize, hedge: bool, collector: &mut C) -> bool {
        let state = &mut self.peers[peer];
        let raida = self.targets[peer].raida;
        let permit = if hedge {
            self.budget.hedge(raida)
        } else {
            let taken = match state.place.take() {
                Some(place) => place.take(),
                None => self.budget.first(raida),
            };
            taken.map_err(|place| state.place = Some(place)).ok()
        };
        let Some(permit) = permit else {
            return false;
        };
        if !collector.may_send(raida) {
            // The slot goes back with the permit; the peer is not asked again.
            if hedge {
                state.hedged = true;
            } else {
                state.withheld = true;
            }
            return true;
        }
        if hedge {
            state.hedged = true;
        } else {
            state.started = true;
        }
        let opened = self.challenges.next(self.targets[peer], self.claimer).and_then(|challenge| {
            Connection::open(self.targets[peer], self.claimer, peer, hedge, permit, challenge)
        });
        match opened {
            Ok(connection) => {
                if hedge {
                    state.open += 1;
                } else {
                    state.open = 1;
                    state.hedge_at = connection.opened.checked_add(self.hedge_limits[peer]);
                }
                self.connections.push(connection);
            }
            Err(failure) => record_failure(state, hedge, failure),
        }
        true
    }

    /// Marks the connections opened this turn (from `opened_before` on) that connected at
    /// once as ready to send, so they send without a poll; true when there is any.
    fn sends_at_once(&mut self, opened_before: usize) -> bool {
        self.ready.clear();
        self.ready
            .extend(self.connections.iter().enumerate().map(|(i, c)| {
                if i >= opened_before && matches!(c.stage, Stage::Sending { .. }) {
                    PollFlags::OUT
                } else {
                    PollFlags::empty()
                }
            }));
        self.ready.iter().any(|r| !r.is_empty())
    }

    /// poll itself failed: every open connection ends with that local error.
    fn fail_all(&mut self, cause: LocalCause) {
        for connection in self.connections.drain(..) {
            let state = &mut self.peers[connection.peer];
            state.open -= 1;
            record_failure(state, connection.hedge, Failure::Local(cause));
        }
    }

    /// Routing: advances every connection poll reported ready, hands what each concluded
    /// to its peer ([`Call::conclude`]), then closes the connections of peers that settled.
    fn route<C: Collector + ?Sized>(&mut self, collector: &mut C) {
        // Back to front, so removing a finished connection leaves the rest in place.
        for i in (0..self.connections.len()).rev() {
            if self.ready[i].is_empty() {
                continue;
            }
            let peer = self.connections[i].peer;
            match self.connections[i].advance(self.targets[peer].raida, self.ready[i]) {
                Step::Wait(flags) => self.connections[i].waits_for = flags,
                Step::Done(result) => {
                    let connection = self.connections.swap_remove(i);
                    self.conclude(connection, result, collector);
                }
            }
        }
        self.close_settled();
    }

    /// What one finished connection means for its peer: a vote goes to the collector; a
    /// well-formed refusal is an answer too. Either settles the peer, except a 44 while
    /// its other connection is open (that one may carry this call's own claim's 250).
    fn conclude<C: Collector + ?Sized>(
        &mut self,
        connection: Connection,
        result: Result<Vec<Coin>, Failure>,
        collector: &mut C,
    ) {
        let took = connection.opened.elapsed();
        let raida = self.targets[connection.peer].raida;
        let state = &mut self.peers[connection.peer];
        state.open -= 1;
        match result {
            Ok(coins) => {
                if state.voted.is_none() {
                    state.voted = Some(coins.len());
                    state.answered_in.get_or_insert(took);
                    state.settled = true;
                    collector.answer(raida, &coins);
                }
            }
            Err(failure) => {
                if let Failure::Answer(AnswerError::Status(status)) = failure {
                    state.answered_in.get_or_insert(took);
                    collector.declined(raida, status);
                    state.settled |= status != ALREADY_CLAIMED || state.open == 0;
                }
                record_failure(state, connection.hedge, failure);
            }
        }
    }

    /// Closes what is still open of every settled peer (its hedge, or the first
    /// connection a hedge outran), giving the budget slots back at once.
    fn close_settled(&mut self) {
        let peers = &mut *self.peers;
        self.connections.retain(|connection| {
            let state = &mut peers[connection.peer];
            if !state.settled {
                return true;
            }
            state.open -= 1;
            state.hedge_closed |= connection.hedge;
            false
        });
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
/// (all empty on a timeout). Why, when poll itself fails.
pub(super) fn wait(
    connections: &[Connection],
    wake: Instant,
    ready: &mut [PollFlags],
) -> Result<(), LocalCause> {
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
        Err(e) => Err(LocalCause::Os(e.raw_os_error())),
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
    if state.withheld {
        return PeerReport {
            target,
            outcome: PeerOutcome::Withheld,
            hedged: false,
            hedge_outcome: None,
        };
    }
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
    let hedge_outcome = match state.hedge_failure {
        Some(failure) => Some(failure.outcome()),
        None if state.hedge_closed => Some(PeerOutcome::Unneeded),
        None => None,
    };
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
