//! The validate-ticket client: asks peer RAIDAs to confirm the tickets a fix carries.
//!
//! Every peer is asked at once, each connection on its own short-lived thread scoped to
//! the call (no runtime, nothing outlives [`ask_peers`]). One deadline bounds connect plus
//! read for the whole call. A peer still silent after [`PeerOptions::hedge_after`] gets a
//! second connection, because a legacy listener can leave a connection unaccepted until
//! another one arrives; the first valid answer on either is that peer's one answer. As
//! soon as the caller's [`Collector`] says the outcome is settled, every socket still
//! open is shut down, which wakes its thread, and the call returns once they have ended.
//!
//! Answers are read strictly ([`check_response_header`], [`parse_response_body`]): any
//! deviation is no answer from that peer, reported as a [`PeerOutcome`] that says why.
//! Sends use `MSG_NOSIGNAL`: the legacy server exits on SIGPIPE.

use std::fmt;
use std::io::{self, Read};
use std::net::{Shutdown, SocketAddr, SocketAddrV4};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use socket2::{Domain, Protocol, Socket, Type};

use crate::protocol::{challenge_crc, Coin, Status, COIN_BYTES, TRAILER, TRAILER_BYTES};

/// Bytes of the request sent to a peer: a 32-byte header and a 23-byte body.
pub const REQUEST_BYTES: usize = 55;
/// Bytes of a peer's response header (type 0).
pub const RESPONSE_HEADER_BYTES: usize = 32;
/// Bytes of the challenge a request carries and the response echoes: 12 random bytes
/// and their CRC-32.
pub const CHALLENGE_BYTES: usize = 16;
/// At most this many coins in one answer (a ticket's capacity).
pub const MAX_LISTED_COINS: usize = 4096;
/// The largest body an answer may announce: `2 + 5 * 4096`.
pub const MAX_RESPONSE_BODY: usize = TRAILER_BYTES + COIN_BYTES * MAX_LISTED_COINS;

/// Body length of the request: challenge (16), claimer (1), ticket (4), trailer (2).
const REQUEST_BODY_BYTES: u16 = 23;
/// Command group 2 (healing), command 50 (validate_ticket).
const HEALING_GROUP: u8 = 2;
const VALIDATE_TICKET: u8 = 50;
/// Stack of one connection thread: it only does socket calls on small buffers.
const CONNECTION_STACK_BYTES: usize = 128 * 1024;
/// The longest deadline or hedge delay the environment may set (one hour).
const MAX_SETTING_MS: u64 = 3_600_000;

/// How the client treats slow peers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerOptions {
    /// One deadline for connect plus read over a whole fix (or one job).
    pub deadline: Duration,
    /// A peer silent this long gets a second connection (a hedge); a value at or past
    /// the deadline disables hedging.
    pub hedge_after: Duration,
}

impl Default for PeerOptions {
    fn default() -> Self {
        PeerOptions {
            deadline: Duration::from_secs(32),
            hedge_after: Duration::from_millis(300),
        }
    }
}

impl PeerOptions {
    /// Defaults, overridden by `RAIDA_HEALING_PEER_DEADLINE_MS` (1 ..= 3 600 000) and
    /// `RAIDA_HEALING_HEDGE_MS` (0 ..= 3 600 000) where set to a number of milliseconds;
    /// values outside those ranges are clamped, anything else is ignored.
    pub fn from_env() -> PeerOptions {
        PeerOptions::from_lookup(|name| std::env::var(name).ok())
    }

    /// [`PeerOptions::from_env`] over any variable lookup (for tests).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> PeerOptions {
        let ms = |name: &str, min: u64| {
            lookup(name)
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(|v| Duration::from_millis(v.clamp(min, MAX_SETTING_MS)))
        };
        let defaults = PeerOptions::default();
        PeerOptions {
            deadline: ms("RAIDA_HEALING_PEER_DEADLINE_MS", 1).unwrap_or(defaults.deadline),
            hedge_after: ms("RAIDA_HEALING_HEDGE_MS", 0).unwrap_or(defaults.hedge_after),
        }
    }
}

/// One peer to ask: its RAIDA index, address, and the ticket it issued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target {
    pub raida: u8,
    pub addr: SocketAddrV4,
    pub ticket: u32,
}

/// Who is asking: this server's RAIDA index and the coin id of the fix request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Claimer {
    pub raida_no: u8,
    pub coin_id: u8,
}

/// The 16-byte challenge for 12 random bytes: those bytes, then their CRC-32 big-endian.
pub fn challenge_for(random: &[u8; 12]) -> [u8; CHALLENGE_BYTES] {
    let mut challenge = [0u8; CHALLENGE_BYTES];
    challenge[..12].copy_from_slice(random);
    challenge[12..].copy_from_slice(&challenge_crc(random).to_be_bytes());
    challenge
}

/// The exact 55-byte validate_ticket request to peer `peer`: a type-0 header, then the
/// challenge, the claimer's index, the ticket and `3E 3E`.
pub fn request_frame(
    peer: u8,
    claimer: Claimer,
    ticket: u32,
    challenge: &[u8; CHALLENGE_BYTES],
) -> [u8; REQUEST_BYTES] {
    let mut frame = [0u8; REQUEST_BYTES];
    frame[0] = 1; // cloud id
    frame[2] = peer;
    frame[4] = HEALING_GROUP;
    frame[5] = VALIDATE_TICKET;
    frame[6] = 0; // coin id, high byte
    frame[7] = claimer.coin_id;
    frame[8] = 1;
    frame[22..24].copy_from_slice(&REQUEST_BODY_BYTES.to_be_bytes());
    let body = &mut frame[RESPONSE_HEADER_BYTES..];
    body[..CHALLENGE_BYTES].copy_from_slice(challenge);
    body[16] = claimer.raida_no;
    body[17..21].copy_from_slice(&ticket.to_be_bytes());
    body[21..23].copy_from_slice(&TRAILER);
    frame
}

/// Which part of an answer a connection ended in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    Header,
    Body,
}

/// Why a peer's answer is not a vote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AnswerError {
    /// Byte 0 names another RAIDA than the one asked.
    WrongRaida { expected: u8, got: u8 },
    /// The peer answered a status other than 250 (43: no such ticket, 44: already
    /// claimed, ...): a well-formed "no".
    Status(u8),
    /// Bytes 16-31 are not the challenge this request sent.
    ChallengeNotEchoed,
    /// The announced (or received) body size is not `2 + 5k` with `k <= 4096`.
    BadBodySize(usize),
    /// The body does not end `3E 3E`.
    BadTrailer([u8; 2]),
    /// The connection ended before the whole header or body arrived.
    Closed {
        part: Part,
        received: usize,
        expected: usize,
    },
    /// Sending or receiving failed (e.g. the peer reset the connection).
    Io(io::ErrorKind),
}

impl fmt::Display for AnswerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AnswerError::WrongRaida { expected, got } => {
                write!(f, "answer is from RAIDA {got}, not {expected}")
            }
            AnswerError::Status(status) => write!(f, "status {status}, not 250"),
            AnswerError::ChallengeNotEchoed => write!(f, "challenge not echoed"),
            AnswerError::BadBodySize(size) => {
                write!(
                    f,
                    "body size {size} is not 2 + 5k with k <= {MAX_LISTED_COINS}"
                )
            }
            AnswerError::BadTrailer(t) => {
                write!(f, "body ends {:02X} {:02X}, not 3E 3E", t[0], t[1])
            }
            AnswerError::Closed {
                part,
                received,
                expected,
            } => write!(
                f,
                "connection closed after {received} of {expected} {} bytes",
                match part {
                    Part::Header => "header",
                    Part::Body => "body",
                }
            ),
            AnswerError::Io(kind) => write!(f, "{kind}"),
        }
    }
}

/// Checks a peer's 32-byte response header against the request sent to peer `peer` with
/// `challenge`, and returns the body length to read next.
///
/// Strict, in this order: byte 0 is `peer`; the status (byte 2) is 250; bytes 16-31 echo
/// `challenge`; the 24-bit body size (bytes 9-11) is `2 + 5k` with `k <= 4096`.
pub fn check_response_header(
    header: &[u8; RESPONSE_HEADER_BYTES],
    peer: u8,
    challenge: &[u8; CHALLENGE_BYTES],
) -> Result<usize, AnswerError> {
    if header[0] != peer {
        return Err(AnswerError::WrongRaida {
            expected: peer,
            got: header[0],
        });
    }
    if header[2] != Status::Success.code() {
        return Err(AnswerError::Status(header[2]));
    }
    if header[16..32] != challenge[..] {
        return Err(AnswerError::ChallengeNotEchoed);
    }
    let size =
        usize::from(header[9]) << 16 | usize::from(header[10]) << 8 | usize::from(header[11]);
    check_body_size(size)?;
    Ok(size)
}

/// `Ok` for a body of `2 + 5k` bytes with `k <= 4096`.
fn check_body_size(size: usize) -> Result<(), AnswerError> {
    let fits = (TRAILER_BYTES..=MAX_RESPONSE_BODY).contains(&size)
        && (size - TRAILER_BYTES).is_multiple_of(COIN_BYTES);
    if fits {
        Ok(())
    } else {
        Err(AnswerError::BadBodySize(size))
    }
}

/// Parses the body of a 250 answer: `k` coin records (den, sn) then `3E 3E`, with
/// `k <= 4096`. Coins are returned as listed, repeats included (the tally ignores them).
pub fn parse_response_body(body: &[u8]) -> Result<Vec<Coin>, AnswerError> {
    check_body_size(body.len())?;
    let (records, trailer) = body.split_at(body.len() - TRAILER_BYTES);
    if trailer != TRAILER {
        return Err(AnswerError::BadTrailer([trailer[0], trailer[1]]));
    }
    Ok(records
        .chunks_exact(COIN_BYTES)
        .map(Coin::from_wire)
        .collect())
}

/// What became of one peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerOutcome {
    /// A valid 250 answer listing `listed` coins (repeats included).
    Voted { listed: usize },
    /// The peer is this server: never asked.
    ThisServer,
    /// The request carries ticket 0 for it: never asked.
    NoTicket,
    /// The server's config has no IPv4 address for it: never asked.
    NoAddress,
    /// The connection could not be made (refused, unreachable, ...).
    Refused(io::ErrorKind),
    /// It answered a well-formed status other than 250 (43, 44, ...).
    Declined(u8),
    /// No complete answer before the deadline.
    TimedOut,
    /// Its answer broke the protocol.
    Invalid(AnswerError),
    /// Every coin was decided before it answered (or before it had to be asked).
    Unneeded,
    /// This server could not ask it (no socket or thread available).
    LocalError(io::ErrorKind),
}

impl fmt::Display for PeerOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PeerOutcome::Voted { listed } => write!(f, "voted ({listed} coins listed)"),
            PeerOutcome::ThisServer => write!(f, "this server"),
            PeerOutcome::NoTicket => write!(f, "no ticket"),
            PeerOutcome::NoAddress => write!(f, "no IPv4 address in config"),
            PeerOutcome::Refused(kind) => write!(f, "refused: {kind}"),
            PeerOutcome::Declined(status) => write!(f, "declined: status {status}"),
            PeerOutcome::TimedOut => write!(f, "timed out"),
            PeerOutcome::Invalid(why) => write!(f, "invalid answer: {why}"),
            PeerOutcome::Unneeded => write!(f, "unneeded (decided without it)"),
            PeerOutcome::LocalError(kind) => write!(f, "local error: {kind}"),
        }
    }
}

/// One asked peer's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerReport {
    pub target: Target,
    pub outcome: PeerOutcome,
    /// A second connection was opened because the first stayed silent.
    pub hedged: bool,
    /// How the second connection ended when it did not vote (`None`: no hedge, it voted,
    /// or it was still open at the end).
    pub hedge_outcome: Option<PeerOutcome>,
}

/// What the caller does with answers while peers are asked.
pub trait Collector {
    /// Peer `raida` answered validly, listing `coins`. Called at most once per peer.
    fn answer(&mut self, raida: u8, coins: &[Coin]);
    /// True once nothing `pending` more peers could say would change the outcome.
    fn is_decided(&self, pending: usize) -> bool;
}

/// How one connection attempt ended.
#[derive(Debug)]
enum Failure {
    Connect(io::ErrorKind),
    TimedOut,
    Answer(AnswerError),
    Local(io::ErrorKind),
    /// Shut down by [`ask_peers`] because the outcome was settled.
    Cancelled,
}

impl Failure {
    fn outcome(self) -> PeerOutcome {
        match self {
            Failure::Connect(kind) => PeerOutcome::Refused(kind),
            Failure::TimedOut => PeerOutcome::TimedOut,
            Failure::Answer(AnswerError::Status(status)) => PeerOutcome::Declined(status),
            Failure::Answer(why) => PeerOutcome::Invalid(why),
            Failure::Local(kind) => PeerOutcome::LocalError(kind),
            Failure::Cancelled => PeerOutcome::Unneeded,
        }
    }
}

/// The sockets of one call, so the caller's thread can wake every connection thread by
/// shutting its socket down. Once cancelled, no new socket may start.
#[derive(Default)]
struct Sockets {
    state: Mutex<(bool, Vec<Arc<Socket>>)>,
}

impl Sockets {
    /// Adds `socket`; false once the call is over (the attempt must not start).
    fn register(&self, socket: &Arc<Socket>) -> bool {
        let mut state = self.state.lock();
        if state.0 {
            return false;
        }
        state.1.push(Arc::clone(socket));
        true
    }

    fn is_cancelled(&self) -> bool {
        self.state.lock().0
    }

    /// Shuts every socket down: a blocked connect, send or receive returns at once
    /// (a connect not yet started fails at once too, the socket being shut down).
    fn cancel_all(&self) {
        let mut state = self.state.lock();
        state.0 = true;
        for socket in state.1.drain(..) {
            // ENOTCONN for sockets that never connected is expected and harmless.
            let _ = socket.shutdown(Shutdown::Both);
        }
    }
}

/// Time left before `deadline`, or `None` once it has passed. Never zero: a zero socket
/// timeout would mean "wait forever".
fn time_left(deadline: Instant) -> Option<Duration> {
    let left = deadline.saturating_duration_since(Instant::now());
    (!left.is_zero()).then_some(left.max(Duration::from_millis(1)))
}

fn is_timeout(kind: io::ErrorKind) -> bool {
    matches!(kind, io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut)
}

/// One connection to one peer: connect, send the request, read the answer strictly.
fn attempt(
    target: Target,
    claimer: Claimer,
    deadline: Instant,
    sockets: &Sockets,
) -> Result<Vec<Coin>, Failure> {
    let mut random = [0u8; 12];
    // No challenge from a predictable source: the peer is not asked at all.
    crate::random::fill(&mut random).map_err(|_| Failure::Local(io::ErrorKind::Other))?;
    let challenge = challenge_for(&random);
    let frame = request_frame(target.raida, claimer, target.ticket, &challenge);
    let socket = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP))
        .map_err(|e| Failure::Local(e.kind()))?;
    let socket = Arc::new(socket);
    if !sockets.register(&socket) {
        return Err(Failure::Cancelled);
    }
    let classify = |kind: io::ErrorKind, otherwise: Failure| {
        if sockets.is_cancelled() {
            Failure::Cancelled
        } else if is_timeout(kind) {
            Failure::TimedOut
        } else {
            otherwise
        }
    };
    let left = time_left(deadline).ok_or(Failure::TimedOut)?;
    socket
        .connect_timeout(&SocketAddr::V4(target.addr).into(), left)
        .map_err(|e| classify(e.kind(), Failure::Connect(e.kind())))?;
    // Best effort: the request is one small segment either way.
    let _ = socket.set_nodelay(true);
    let mut sent = 0;
    while sent < frame.len() {
        let left = time_left(deadline).ok_or(Failure::TimedOut)?;
        socket
            .set_write_timeout(Some(left))
            .map_err(|e| Failure::Local(e.kind()))?;
        match socket.send_with_flags(&frame[sent..], libc::MSG_NOSIGNAL) {
            Ok(0) => {
                return Err(classify(
                    io::ErrorKind::WriteZero,
                    io_failure(io::ErrorKind::WriteZero),
                ))
            }
            Ok(n) => sent += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(classify(e.kind(), io_failure(e.kind()))),
        }
    }
    let mut header = [0u8; RESPONSE_HEADER_BYTES];
    receive_exact(&socket, &mut header, Part::Header, deadline, &classify)?;
    let body_len =
        check_response_header(&header, target.raida, &challenge).map_err(Failure::Answer)?;
    let mut body = vec![0u8; body_len];
    receive_exact(&socket, &mut body, Part::Body, deadline, &classify)?;
    parse_response_body(&body).map_err(Failure::Answer)
}

fn io_failure(kind: io::ErrorKind) -> Failure {
    Failure::Answer(AnswerError::Io(kind))
}

/// Fills `buf` from `socket` before `deadline`.
fn receive_exact(
    socket: &Socket,
    buf: &mut [u8],
    part: Part,
    deadline: Instant,
    classify: &impl Fn(io::ErrorKind, Failure) -> Failure,
) -> Result<(), Failure> {
    let mut received = 0;
    while received < buf.len() {
        let left = time_left(deadline).ok_or(Failure::TimedOut)?;
        socket
            .set_read_timeout(Some(left))
            .map_err(|e| Failure::Local(e.kind()))?;
        let mut reader: &Socket = socket;
        match reader.read(&mut buf[received..]) {
            Ok(0) => {
                return Err(classify(
                    io::ErrorKind::UnexpectedEof,
                    Failure::Answer(AnswerError::Closed {
                        part,
                        received,
                        expected: buf.len(),
                    }),
                ))
            }
            Ok(n) => received += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(classify(e.kind(), io_failure(e.kind()))),
        }
    }
    Ok(())
}

/// Where one peer stands during [`ask_peers`].
#[derive(Default)]
struct PeerState {
    /// Connections still open.
    open: u8,
    hedged: bool,
    /// Coins listed in its vote, once it has voted.
    voted: Option<usize>,
    first_failure: Option<Failure>,
    hedge_failure: Option<Failure>,
}

impl PeerState {
    fn is_pending(&self) -> bool {
        self.voted.is_none() && self.open > 0
    }
}

/// A finished connection attempt, sent back to the asking thread.
struct Done {
    slot: usize,
    hedge: bool,
    result: Result<Vec<Coin>, Failure>,
}

/// Asks every target at once to validate its ticket, feeding valid answers to
/// `collector` as they arrive, until the collector is decided, every peer has finished,
/// or the deadline passes. Returns one report per target, in `targets` order. Nothing
/// it started is running, and no socket it opened is open, when it returns.
pub fn ask_peers<C: Collector + ?Sized>(
    targets: &[Target],
    claimer: Claimer,
    options: &PeerOptions,
    collector: &mut C,
) -> Vec<PeerReport> {
    let start = Instant::now();
    let far = start + Duration::from_millis(MAX_SETTING_MS);
    let deadline = start.checked_add(options.deadline).unwrap_or(far);
    let hedge_at = start.checked_add(options.hedge_after).unwrap_or(far);
    let mut states: Vec<PeerState> = targets.iter().map(|_| PeerState::default()).collect();
    let mut deadline_passed = false;
    if !collector.is_decided(targets.len()) {
        let sockets = Sockets::default();
        std::thread::scope(|scope| {
            let (tx, rx) = mpsc::channel::<Done>();
            let launch = |slot: usize, hedge: bool| -> Result<(), Failure> {
                let tx = tx.clone();
                let target = targets[slot];
                let sockets = &sockets;
                std::thread::Builder::new()
                    .name(format!("raida-peer-{}", target.raida))
                    .stack_size(CONNECTION_STACK_BYTES)
                    .spawn_scoped(scope, move || {
                        let result = attempt(target, claimer, deadline, sockets);
                        // The receiver is gone once the call has its answer; fine.
                        let _ = tx.send(Done {
                            slot,
                            hedge,
                            result,
                        });
                    })
                    .map(drop)
                    .map_err(|e| Failure::Local(e.kind()))
            };
            let mut pending = 0;
            for (slot, state) in states.iter_mut().enumerate() {
                match launch(slot, false) {
                    Ok(()) => {
                        state.open = 1;
                        pending += 1;
                    }
                    Err(failure) => state.first_failure = Some(failure),
                }
            }
            let mut hedges_sent = false;
            while pending > 0 && !collector.is_decided(pending) {
                let now = Instant::now();
                if now >= deadline {
                    deadline_passed = true;
                    break;
                }
                if !hedges_sent && now >= hedge_at {
                    hedges_sent = true;
                    for (slot, state) in states.iter_mut().enumerate() {
                        if state.is_pending() {
                            state.hedged = true;
                            match launch(slot, true) {
                                Ok(()) => state.open += 1,
                                Err(failure) => state.hedge_failure = Some(failure),
                            }
                        }
                    }
                    continue;
                }
                let wake = if hedges_sent {
                    deadline
                } else {
                    hedge_at.min(deadline)
                };
                let done = match rx.recv_timeout(wake.saturating_duration_since(now)) {
                    Ok(done) => done,
                    Err(mpsc::RecvTimeoutError::Timeout) => continue,
                    // Unreachable while `tx` lives in this scope; stop rather than spin.
                    Err(mpsc::RecvTimeoutError::Disconnected) => break,
                };
                let state = &mut states[done.slot];
                state.open -= 1;
                match done.result {
                    Ok(coins) => {
                        if state.voted.is_none() {
                            state.voted = Some(coins.len());
                            pending -= 1;
                            collector.answer(targets[done.slot].raida, &coins);
                        }
                    }
                    Err(failure) => {
                        if done.hedge {
                            state.hedge_failure = Some(failure);
                        } else {
                            state.first_failure = Some(failure);
                        }
                        if state.voted.is_none() && state.open == 0 {
                            pending -= 1;
                        }
                    }
                }
            }
            sockets.cancel_all();
            // Leaving the scope joins every connection thread; each returns promptly
            // now that its socket is shut down.
        });
    }
    targets
        .iter()
        .zip(states)
        .map(|(&target, state)| report(target, state, deadline_passed))
        .collect()
}

/// The one outcome of a peer: its vote; else what its first connection said when that
/// was an answer or a refusal; else silence (timed out at the deadline, or unneeded).
fn report(target: Target, state: PeerState, deadline_passed: bool) -> PeerReport {
    let silent = if deadline_passed {
        PeerOutcome::TimedOut
    } else {
        PeerOutcome::Unneeded
    };
    let open = state.open > 0;
    let hedge_outcome = state.hedge_failure.map(Failure::outcome);
    let outcome = match (state.voted, state.first_failure) {
        (Some(listed), _) => PeerOutcome::Voted { listed },
        (None, Some(Failure::TimedOut)) if !open => PeerOutcome::TimedOut,
        (None, Some(Failure::TimedOut) | None) if open => silent,
        (None, Some(failure)) => failure.outcome(),
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
    let report = ask_peers(&[target], claimer, options, &mut one)
        .pop()
        .expect("one report per target");
    (report, one.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLAIMER: Claimer = Claimer {
        raida_no: 7,
        coin_id: 6,
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
    fn options_from_lookup() {
        let none = PeerOptions::from_lookup(|_| None);
        assert_eq!(none, PeerOptions::default());
        let set = PeerOptions::from_lookup(|name| {
            Some(
                match name {
                    "RAIDA_HEALING_PEER_DEADLINE_MS" => " 1500 ",
                    "RAIDA_HEALING_HEDGE_MS" => "0",
                    _ => "",
                }
                .to_string(),
            )
        });
        assert_eq!(set.deadline, Duration::from_millis(1500));
        assert_eq!(set.hedge_after, Duration::ZERO);
        let odd = PeerOptions::from_lookup(|name| {
            Some(
                match name {
                    "RAIDA_HEALING_PEER_DEADLINE_MS" => "0",
                    _ => "soon",
                }
                .to_string(),
            )
        });
        assert_eq!(odd.deadline, Duration::from_millis(1));
        assert_eq!(odd.hedge_after, PeerOptions::default().hedge_after);
        let huge = PeerOptions::from_lookup(|_| Some(u64::MAX.to_string()));
        assert_eq!(huge.deadline, Duration::from_secs(3600));
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
        };
        let outcome = |s, deadline| report(target, s, deadline).outcome;
        assert_eq!(
            outcome(state(1, Some(4), None, None), false),
            PeerOutcome::Voted { listed: 4 }
        );
        assert_eq!(
            outcome(state(1, None, None, None), false),
            PeerOutcome::Unneeded
        );
        assert_eq!(
            outcome(state(1, None, None, None), true),
            PeerOutcome::TimedOut
        );
        // The first connection's bad answer is more telling than a silent hedge.
        assert_eq!(
            outcome(
                state(
                    1,
                    None,
                    Some(Failure::Answer(AnswerError::ChallengeNotEchoed)),
                    None
                ),
                false
            ),
            PeerOutcome::Invalid(AnswerError::ChallengeNotEchoed)
        );
        assert_eq!(
            outcome(state(0, None, Some(Failure::TimedOut), None), false),
            PeerOutcome::TimedOut
        );
        assert_eq!(
            outcome(
                state(1, None, Some(Failure::TimedOut), Some(Failure::TimedOut)),
                false
            ),
            PeerOutcome::Unneeded
        );
        let r = report(
            target,
            state(
                1,
                None,
                None,
                Some(Failure::Answer(AnswerError::Status(44))),
            ),
            false,
        );
        assert_eq!(r.outcome, PeerOutcome::Unneeded);
        assert_eq!(r.hedge_outcome, Some(PeerOutcome::Declined(44)));
        assert_eq!(
            outcome(
                state(
                    0,
                    None,
                    Some(Failure::Connect(io::ErrorKind::ConnectionRefused)),
                    None
                ),
                false
            ),
            PeerOutcome::Refused(io::ErrorKind::ConnectionRefused)
        );
    }
}
