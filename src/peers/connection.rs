//! One connection to one peer: the non-blocking state machine from connect through send
//! and the strictly read answer, and how an attempt failed.

use std::io::{self, Read};
use std::net::{SocketAddr, SocketAddrV4};
use std::time::Instant;

use rustix::event::PollFlags;
use socket2::{Domain, Protocol, Socket, Type};

use super::budget::Permit;
use super::outcome::{LocalCause, PeerOutcome};
use super::wire::{
    challenge_for, check_response_header, parse_response_body, request_frame, AnswerError,
    Claimer, Part, Target, CHALLENGE_BYTES, REQUEST_BYTES, RESPONSE_HEADER_BYTES,
};
use crate::claim_auth::{ClaimAuth, ClaimFields};
use crate::protocol::{ChallengeCore, Coin, CHALLENGE_CORE_BYTES};

/// How one connection attempt ended.
#[derive(Debug)]
pub(super) enum Failure {
    Connect(io::ErrorKind),
    Answer(AnswerError),
    Local(LocalCause),
}

impl Failure {
    pub(super) fn outcome(self) -> PeerOutcome {
        match self {
            Failure::Connect(kind) => PeerOutcome::Refused(kind),
            Failure::Answer(AnswerError::Status(status)) => PeerOutcome::Declined(status),
            Failure::Answer(why) => PeerOutcome::Invalid(why),
            Failure::Local(cause) => PeerOutcome::LocalError(cause),
        }
    }
}

/// The challenges of one call's connections. With a claim key, each is the tag of its
/// claim (`src/claim_auth.rs`: this server, the peer, the ticket, the coin id, the time
/// window), so a keyed peer knows the claim is this RAIDA's whatever address it comes
/// from. Without one, fresh random bytes: one read of the OS's randomness for a batch
/// (every first connection and hedge of a call), instead of one per connection. The one
/// place peer challenges are made.
pub(super) struct Challenges<'a> {
    auth: Option<&'a ClaimAuth>,
    random: Vec<u8>,
    used: usize,
}

impl<'a> Challenges<'a> {
    /// Room for `count` random challenges per batch (none is read with `auth`, nor until
    /// the first is needed).
    pub(super) fn new(count: usize, auth: Option<&'a ClaimAuth>) -> Challenges<'a> {
        let bytes = CHALLENGE_CORE_BYTES * count.max(1);
        Challenges {
            auth,
            random: vec![0; bytes],
            used: bytes,
        }
    }

    /// The challenge of `claimer`'s claim of `target`'s ticket.
    pub(super) fn next(
        &mut self,
        target: Target,
        claimer: Claimer,
    ) -> Result<[u8; CHALLENGE_BYTES], Failure> {
        if let Some(auth) = self.auth {
            return Ok(challenge_for(&auth.challenge(ClaimFields {
                claimer: claimer.raida_no,
                peer: target.raida,
                coin_id: claimer.coin_id,
                ticket: target.ticket,
            })));
        }
        if self.used == self.random.len() {
            // No challenge from a predictable source: when the OS cannot give random
            // bytes, the peer is not asked at all (and the next call tries again).
            crate::random::fill(&mut self.random)
                .map_err(|_| Failure::Local(LocalCause::NoRandomness))?;
            self.used = 0;
        }
        let mut core: ChallengeCore = [0u8; CHALLENGE_CORE_BYTES];
        core.copy_from_slice(&self.random[self.used..self.used + CHALLENGE_CORE_BYTES]);
        self.used += CHALLENGE_CORE_BYTES;
        Ok(challenge_for(&core))
    }
}

/// Bytes one read of an answer asks for: a whole small answer (header and up to about
/// 800 coins) arrives in one system call.
const READ_CHUNK: usize = 4096;

/// How far one connection has got.
pub(super) enum Stage {
    Connecting,
    Sending {
        sent: usize,
    },
    /// Reading the answer: what arrived so far, and the body size once the header has
    /// been checked.
    Receiving {
        answer: Vec<u8>,
        body: Option<usize>,
    },
}

/// What a connection waits for next, or how it ended.
pub(super) enum Step {
    Wait(PollFlags),
    Done(Result<Vec<Coin>, Failure>),
}

/// One non-blocking connection to one peer, driven by [`ask_peers`]' readiness loop.
pub(super) struct Connection {
    // Declared before `_permit`: the socket is closed before its budget slot is returned.
    pub(super) socket: Socket,
    _permit: Permit,
    /// The peer it asks: its index in the call's targets.
    pub(super) peer: usize,
    pub(super) hedge: bool,
    pub(super) opened: Instant,
    challenge: [u8; CHALLENGE_BYTES],
    frame: [u8; REQUEST_BYTES],
    pub(super) stage: Stage,
    pub(super) waits_for: PollFlags,
}

impl Connection {
    /// Opens a connection to `target` under `permit` and starts a non-blocking connect.
    pub(super) fn open(
        target: Target,
        claimer: Claimer,
        peer: usize,
        hedge: bool,
        permit: Permit,
        challenge: [u8; CHALLENGE_BYTES],
    ) -> Result<Connection, Failure> {
        let frame = request_frame(target.raida, claimer, target.ticket, &challenge);
        let socket = Socket::new(
            Domain::IPV4,
            Type::STREAM.nonblocking(),
            Some(Protocol::TCP),
        )
        .map_err(|e| Failure::Local(LocalCause::of(&e)))?;
        // Leave from the address the peers list for this server (peers/source.rs), unless
        // that is a loopback address and the peer's is not (a loopback source cannot reach
        // another host). A bind that fails (no free port there) is this host's trouble.
        let source = claimer
            .source
            .filter(|source| !source.is_loopback() || target.addr.ip().is_loopback());
        if let Some(source) = source {
            socket
                .set_reuse_address(true)
                .and_then(|()| socket.bind(&SocketAddr::V4(SocketAddrV4::new(source, 0)).into()))
                .map_err(|e| Failure::Local(LocalCause::of(&e)))?;
        }
        let stage = match socket.connect(&SocketAddr::V4(target.addr).into()) {
            Ok(()) => Stage::Sending { sent: 0 },
            // EINTR on a non-blocking connect: the handshake goes on, as for EINPROGRESS.
            Err(e)
                if e.raw_os_error() == Some(libc::EINPROGRESS)
                    || e.kind() == io::ErrorKind::Interrupted =>
            {
                Stage::Connecting
            }
            // Out of local ports or kernel memory, or no route from here: this host's
            // trouble, not the peer's, so it must not count towards ejecting the peer.
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(
                        libc::EADDRNOTAVAIL
                            | libc::EADDRINUSE
                            | libc::ENOBUFS
                            | libc::EAGAIN
                            | libc::ENOMEM
                            | libc::ENETUNREACH
                    )
                ) =>
            {
                return Err(Failure::Local(LocalCause::of(&e)))
            }
            Err(e) => return Err(Failure::Connect(e.kind())),
        };
        Ok(Connection {
            socket,
            _permit: permit,
            peer,
            hedge,
            opened: Instant::now(),
            challenge,
            frame,
            stage,
            waits_for: PollFlags::OUT,
        })
    }

    /// Makes every step the socket allows now (`ready`: what poll reported), reading
    /// the answer strictly.
    pub(super) fn advance(&mut self, raida: u8, ready: PollFlags) -> Step {
        loop {
            match &mut self.stage {
                Stage::Connecting => {
                    if ready.intersects(PollFlags::ERR | PollFlags::HUP) {
                        match self.socket.take_error() {
                            Ok(Some(e)) => return Step::Done(Err(Failure::Connect(e.kind()))),
                            Ok(None) => {}
                            Err(e) => return Step::Done(Err(Failure::Local(LocalCause::of(&e)))),
                        }
                    } else if !ready.contains(PollFlags::OUT) {
                        return Step::Wait(PollFlags::OUT);
                    }
                    self.stage = Stage::Sending { sent: 0 };
                }
                Stage::Sending { sent } => {
                    match self
                        .socket
                        .send_with_flags(&self.frame[*sent..], libc::MSG_NOSIGNAL)
                    {
                        Ok(0) => return Step::Done(Err(io_failure(io::ErrorKind::WriteZero))),
                        Ok(n) => {
                            *sent += n;
                            if *sent == REQUEST_BYTES {
                                self.stage = Stage::Receiving {
                                    answer: Vec::new(),
                                    body: None,
                                };
                                // The answer takes a round trip: wait for it.
                                return Step::Wait(PollFlags::IN);
                            }
                        }
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                            return Step::Wait(PollFlags::OUT)
                        }
                        Err(e) => return Step::Done(Err(io_failure(e.kind()))),
                    }
                }
                Stage::Receiving { answer, body } => {
                    // The header comes in a chunk that usually holds the whole answer;
                    // once the body size is known, the rest goes straight into the
                    // answer, up to its announced end and no further.
                    let got = answer.len();
                    let mut reader: &Socket = &self.socket;
                    let read = match *body {
                        Some(size) => {
                            answer.resize(RESPONSE_HEADER_BYTES + size, 0);
                            let read = reader.read(&mut answer[got..]);
                            answer.truncate(got + read.as_ref().map_or(0, |&n| n));
                            read
                        }
                        None => {
                            let mut chunk = [0u8; READ_CHUNK];
                            let read = reader.read(&mut chunk);
                            if let Ok(n) = read {
                                answer.extend_from_slice(&chunk[..n]);
                            }
                            read
                        }
                    };
                    match read {
                        Ok(0) => {
                            let closed = match *body {
                                None => AnswerError::Closed {
                                    part: Part::Header,
                                    received: got,
                                    expected: RESPONSE_HEADER_BYTES,
                                },
                                Some(size) => AnswerError::Closed {
                                    part: Part::Body,
                                    received: got - RESPONSE_HEADER_BYTES,
                                    expected: size,
                                },
                            };
                            return Step::Done(Err(Failure::Answer(closed)));
                        }
                        Ok(_) => {}
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                            return Step::Wait(PollFlags::IN)
                        }
                        Err(e) => return Step::Done(Err(io_failure(e.kind()))),
                    }
                    if body.is_none() && answer.len() >= RESPONSE_HEADER_BYTES {
                        let mut header = [0u8; RESPONSE_HEADER_BYTES];
                        header.copy_from_slice(&answer[..RESPONSE_HEADER_BYTES]);
                        match check_response_header(&header, raida, &self.challenge) {
                            Ok(size) => *body = Some(size),
                            Err(why) => return Step::Done(Err(Failure::Answer(why))),
                        }
                    }
                    if let Some(size) = *body {
                        let end = RESPONSE_HEADER_BYTES + size;
                        if answer.len() >= end {
                            // Bytes after the announced body, if any, are not part of it.
                            return Step::Done(
                                parse_response_body(&answer[RESPONSE_HEADER_BYTES..end])
                                    .map_err(Failure::Answer),
                            );
                        }
                    }
                }
            }
        }
    }
}

fn io_failure(kind: io::ErrorKind) -> Failure {
    Failure::Answer(AnswerError::Io(kind))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::claim_auth::{ClaimKeys, ManualWallClock};

    const CLAIMER: Claimer = crate::peers::wire::TEST_CLAIMER;

    /// With a claim key every challenge is its claim's tag (and its CRC); without one,
    /// fresh random bytes per connection.
    #[test]
    fn challenges_are_tags_with_a_key_and_random_without() {
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
}
