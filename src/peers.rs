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
    pub health: HealthTable,
    pub source: SourceCheck,
    /// The claim key: with one, every claim's challenge is its tag.
    pub auth: Option<Arc<ClaimAuth>>,
}

impl PeerClient {
    /// A client with a budget of `max_connections`, no peer history and no claim key.
    pub fn new(max_connections: usize) -> PeerClient {
        PeerClient {
            budget: Budget::new(max_connections),
            health: HealthTable::default(),
            source: SourceCheck::new(),
            auth: None,
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
    use std::io;

    use super::connection::*;
    use super::poll_loop::*;
    use super::wire::*;
    use super::*;
    use crate::protocol::{Coin, TRAILER};

    const CLAIMER: Claimer = Claimer {
        raida_no: 7,
        coin_id: 6,
        source: None,
    };

    fn challenge() -> [u8; 16] {
        let random: [u8; 12] = core::array::from_fn(|i| i as u8);
        challenge_for(&random)
    }

    fn header(peer: u8, status: u8, size: usize, challenge: &[u8; 16]) -> [u8; 32] {
        let mut h = [0u8; 32];
        h[0] = peer;
        h[2] = status;
        h[3] = 2;
        h[5] = 1;
        h[9] = (size >> 16) as u8;
        h[10] = (size >> 8) as u8;
        h[11] = size as u8;
        h[12..16].copy_from_slice(&[0xde, 0xad, 0xbe, 0xef]);
        h[16..].copy_from_slice(challenge);
        h
    }

    #[test]
    fn challenge_carries_its_crc() {
        let c = challenge();
        assert_eq!(&c[12..], &[0x92, 0x70, 0xc9, 0x65]);
    }

    /// With a claim key every challenge is its claim's tag (and its CRC); without one,
    /// fresh random bytes per connection.
    #[test]
    fn challenges_are_tags_with_a_key_and_random_without() {
        use crate::claim_auth::{ClaimAuth, ClaimFields, ClaimKeys, ManualWallClock};
        let target = |raida, ticket| Target {
            raida,
            addr: "127.0.0.1:1".parse().unwrap(),
            ticket,
        };
        let clock = ManualWallClock::default();
        clock.0.store(1_800_000_000, std::sync::atomic::Ordering::SeqCst);
        let keys = ClaimKeys::new(&[0x42; 32], None);
        let auth = ClaimAuth::with_clock(keys.clone(), Box::new(clock));
        let mut tagged = Challenges::new(4, Some(&auth));
        for (raida, ticket) in [(4, 0x0102_0304), (9, 77)] {
            let fields = ClaimFields {
                claimer: CLAIMER.raida_no,
                peer: raida,
                coin_id: CLAIMER.coin_id,
                ticket,
            };
            let made = tagged.next(target(raida, ticket), CLAIMER).ok().unwrap();
            assert_eq!(made, challenge_for(&keys.challenge(fields, 1_800_000_000)));
        }
        let mut random = Challenges::new(4, None);
        let a = random.next(target(4, 1), CLAIMER).ok().unwrap();
        let b = random.next(target(4, 1), CLAIMER).ok().unwrap();
        assert_ne!(a, b);
        assert_eq!(&a[12..], &crate::protocol::challenge_crc(&a[..12]).to_be_bytes());
    }

    #[test]
    fn request_frame_is_the_legacy_55_bytes() {
        let frame = request_frame(12, CLAIMER, 0x0102_0304, &challenge());
        let mut expected = vec![1, 0, 12, 0, 2, 50, 0, 6, 1];
        expected.extend([0; 13]);
        expected.extend([0, 23]);
        expected.extend([0; 8]);
        expected.extend(0..12u8);
        expected.extend([0x92, 0x70, 0xc9, 0x65]);
        expected.push(7);
        expected.extend([1, 2, 3, 4]);
        expected.extend([0x3e, 0x3e]);
        assert_eq!(frame.len(), 55);
        assert_eq!(frame.to_vec(), expected);
    }

    #[test]
    fn header_checks_in_order() {
        let c = challenge();
        assert_eq!(
            check_response_header(&header(4, 250, 12, &c), 4, &c),
            Ok(12)
        );
        assert_eq!(check_response_header(&header(4, 250, 2, &c), 4, &c), Ok(2));
        assert_eq!(
            check_response_header(&header(4, 250, MAX_RESPONSE_BODY, &c), 4, &c),
            Ok(20_482)
        );
        assert_eq!(
            check_response_header(&header(5, 43, 99, &c), 4, &c),
            Err(AnswerError::WrongRaida {
                expected: 4,
                got: 5
            })
        );
        assert_eq!(
            check_response_header(&header(4, 44, 0, &c), 4, &c),
            Err(AnswerError::Status(44))
        );
        let mut other = c;
        other[15] ^= 1;
        assert_eq!(
            check_response_header(&header(4, 250, 12, &other), 4, &c),
            Err(AnswerError::ChallengeNotEchoed)
        );
        for size in [0, 1, 3, 11, 13, MAX_RESPONSE_BODY + 5, 0xff_ffff] {
            assert_eq!(
                check_response_header(&header(4, 250, size, &c), 4, &c),
                Err(AnswerError::BadBodySize(size)),
                "size {size}"
            );
        }
    }

    #[test]
    fn body_parsing_is_strict() {
        assert_eq!(parse_response_body(&[0x3e, 0x3e]), Ok(vec![]));
        assert_eq!(
            parse_response_body(&[0xff, 0, 0, 1, 0, 6, 0, 0, 0, 9, 0x3e, 0x3e]),
            Ok(vec![Coin { den: -1, sn: 256 }, Coin { den: 6, sn: 9 }])
        );
        assert_eq!(
            parse_response_body(&[1, 0, 0, 0, 9, 0x3e, 0x3f]),
            Err(AnswerError::BadTrailer([0x3e, 0x3f]))
        );
        assert_eq!(
            parse_response_body(&[1, 0, 0, 0, 0x3e, 0x3e]),
            Err(AnswerError::BadBodySize(6))
        );
        assert_eq!(
            parse_response_body(&[0x3e]),
            Err(AnswerError::BadBodySize(1))
        );
        let mut big = vec![0u8; MAX_RESPONSE_BODY + 5];
        let n = big.len();
        big[n - 2..].copy_from_slice(&TRAILER);
        assert_eq!(parse_response_body(&big), Err(AnswerError::BadBodySize(n)));
        big.truncate(MAX_RESPONSE_BODY);
        big[MAX_RESPONSE_BODY - 2..].copy_from_slice(&TRAILER);
        assert_eq!(parse_response_body(&big).map(|c| c.len()), Ok(4096));
    }

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
