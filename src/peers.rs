//! The validate-ticket client: asks peer RAIDAs to confirm the tickets a fix carries.
//!
//! Every peer is asked at once from the calling thread: non-blocking connect, send and
//! receive, one `poll(2)` over the call's sockets (no thread, no runtime, no extra
//! descriptor; nothing outlives [`ask_peers`]). One deadline bounds connect plus read for
//! the whole call. Every socket holds a slot of the [`PeerClient`]'s [`budget`], within the
//! peer's share and in arrival order, so no set of calls can starve another. A peer that
//! failed its last attempts is ejected ([`ejection`]): not asked and no vote at once,
//! except by the one call that probes it. A peer
//! silent well beyond its own usual answer time (the rule in [`health`]) gets a second
//! connection, because a legacy listener can leave a connection unaccepted until another
//! one arrives; the first valid answer on either is that peer's one answer. As soon as
//! the caller's [`Collector`] says the outcome is settled, every socket still open is
//! closed and the call returns.
//!
//! Answers are read strictly ([`check_response_header`], [`parse_response_body`]): any
//! deviation is no answer from that peer, reported as a [`PeerOutcome`] that says why.
//! Sends use `MSG_NOSIGNAL`: the legacy server exits on SIGPIPE.

pub mod budget;
mod connection;
pub mod ejection;
pub mod health;
mod outcome;
mod poll_loop;
mod settings;
pub mod source;
mod wire;

use std::sync::Arc;

use crate::claim_auth::ClaimAuth;

pub use budget::Budget;
pub use health::HealthTable;
pub use outcome::{Collector, LocalCause, PeerOutcome, PeerReport};
pub use poll_loop::{ask_one, ask_peers};
pub use settings::{PeerOptions, SourceChoice};
pub use source::SourceCheck;
pub use wire::{
    challenge_for, check_response_header, parse_response_body, request_frame, AnswerError,
    Claimer, Part, Target, CHALLENGE_BYTES, MAX_LISTED_COINS, MAX_RESPONSE_BODY,
    REQUEST_BYTES, RESPONSE_HEADER_BYTES,
};

/// What the peer client keeps between calls: the connection budget every socket holds a
/// slot of, what it has seen of each peer (answer times, ejections), and whether this
/// server's listed address is the host's (where its claims leave from). The process has
/// one, held by the state owner (`src/ffi/state.rs`) and reaching the commands through
/// `commands::Node`, as a connection pool is owned by the agent that uses it; a test
/// builds its own.
#[derive(Default)]
pub struct PeerClient {
    pub budget: Budget,
    pub health: Arc<HealthTable>,
    pub source: Arc<SourceCheck>,
    /// The claim key: with one, every claim's challenge is its tag.
    pub auth: Option<Arc<ClaimAuth>>,
}

impl PeerClient {
    /// A client with a budget of `max_connections`, no peer history and no claim key.
    pub fn new(max_connections: usize) -> PeerClient {
        PeerClient {
            budget: Budget::new(max_connections),
            health: Arc::default(),
            source: Arc::default(),
            auth: None,
        }
    }

    /// The same budget, history, source and key, for a call serving `client`'s fix: its
    /// places in the budget's queues take that client's turns ([`budget`]).
    pub fn serving(&self, client: budget::Waiter) -> PeerClient {
        PeerClient {
            budget: self.budget.serving(client),
            health: Arc::clone(&self.health),
            source: Arc::clone(&self.source),
            auth: self.auth.clone(),
        }
    }

    /// The client tagging its claims with `auth` (`None`: random challenges).
    pub fn with_auth(mut self, auth: Option<Arc<ClaimAuth>>) -> PeerClient {
        self.auth = auth;
        self
    }
}

#[cfg(test)]
mod tests {
    //! The call's outcome per peer (`poll_loop::report`); each other module's unit tests
    //! are beside it.
    use std::io;

    use super::connection::*;
    use super::poll_loop::*;
    use super::wire::*;
    use super::*;

    #[test]
    fn outcome_of_a_peer() {
        let target = Target {
            raida: 3,
            addr: "127.0.0.1:1".parse().unwrap(),
            ticket: 9,
        };
        let state = |open: u8, voted, first, hedge: Option<Failure>| PeerState {
            open,
            hedged: hedge.is_some() || open > 1,
            voted,
            first_failure: first,
            hedge_failure: hedge,
            started: true,
            ..PeerState::default()
        };
        let challenge = || Some(Failure::Answer(AnswerError::ChallengeNotEchoed));
        let refused = || Some(Failure::Connect(io::ErrorKind::ConnectionRefused));
        // (state, deadline passed, expected outcome)
        let cases = [
            (state(1, Some(4), None, None), false, PeerOutcome::Voted { listed: 4 }),
            (state(1, None, None, None), false, PeerOutcome::Unneeded),
            (state(1, None, None, None), true, PeerOutcome::TimedOut),
            // The first connection's bad answer is more telling than a silent hedge.
            (
                state(1, None, challenge(), None),
                false,
                PeerOutcome::Invalid(AnswerError::ChallengeNotEchoed),
            ),
            (state(2, None, None, None), false, PeerOutcome::Unneeded),
            (state(2, None, None, None), true, PeerOutcome::TimedOut),
            (PeerState::default(), true, PeerOutcome::NoConnection),
            (PeerState::default(), false, PeerOutcome::Unneeded),
            (
                state(0, None, refused(), None),
                false,
                PeerOutcome::Refused(io::ErrorKind::ConnectionRefused),
            ),
        ];
        for (i, (peer, deadline, want)) in cases.into_iter().enumerate() {
            assert_eq!(report(target, peer, deadline).outcome, want, "case {i}");
        }
        // A hedge's refusal is reported as the hedge's outcome.
        let r = report(
            target,
            state(1, None, None, Some(Failure::Answer(AnswerError::Status(44)))),
            false,
        );
        assert_eq!(r.outcome, PeerOutcome::Unneeded);
        assert_eq!(r.hedge_outcome, Some(PeerOutcome::Declined(44)));
    }
}
