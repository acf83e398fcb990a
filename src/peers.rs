//! The validate-ticket client: asks peer RAIDAs to confirm the tickets a fix carries.
//!
//! Every peer is asked at once from the calling thread: non-blocking connect, send and
//! receive, one `poll(2)` over the call's sockets (no thread, no runtime, no extra
//! descriptor; nothing outlives [`ask_peers`]). One deadline bounds connect plus read for
//! the whole call. Every socket holds a slot of the process-wide [`budget`], within the
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

use std::fmt;
use std::io::{self, Read};
use std::net::{SocketAddr, SocketAddrV4};
use std::time::{Duration, Instant};

use rustix::event::{poll, PollFd, PollFlags, Timespec};
use socket2::{Domain, Protocol, Socket, Type};

pub mod budget;
pub mod ejection;
pub mod health;

use budget::{Permit, Place};
use ejection::{Admission, EjectOptions};

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
/// The longest deadline or hedge delay the environment may set (one hour).
const MAX_SETTING_MS: u64 = 3_600_000;
/// The most failures in a row `RAIDA_HEALING_EJECT_AFTER` may ask for.
const MAX_EJECT_AFTER: u64 = 1000;

/// How the client treats slow peers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerOptions {
    /// One deadline for connect plus read over a whole fix (or one job).
    pub deadline: Duration,
    /// The hedge floor: no peer gets a second connection (a hedge) before this much
    /// silence; a value at or past the deadline disables hedging.
    pub hedge_after: Duration,
    /// The silence before a hedge for a peer this process has never had an answer from
    /// (at least `hedge_after`); peers with history follow the rule in [`health`].
    pub hedge_start: Duration,
    /// When a peer is ejected and for how long ([`ejection`]).
    pub eject: EjectOptions,
}

impl Default for PeerOptions {
    fn default() -> Self {
        PeerOptions {
            deadline: Duration::from_secs(32),
            hedge_after: Duration::from_millis(300),
            hedge_start: Duration::from_millis(1000),
            eject: EjectOptions::default(),
        }
    }
}

impl PeerOptions {
    /// Defaults, overridden by `RAIDA_HEALING_PEER_DEADLINE_MS` (1 ..= 3 600 000),
    /// `RAIDA_HEALING_HEDGE_MS` and `RAIDA_HEALING_HEDGE_START_MS` (0 ..= 3 600 000),
    /// `RAIDA_HEALING_EJECT_COOLDOWN_MS` and `RAIDA_HEALING_EJECT_MAX_MS`
    /// (1 ..= 3 600 000) where set to a number of milliseconds, and
    /// `RAIDA_HEALING_EJECT_AFTER` (failures in a row, 0 ..= 1000; 0 never ejects);
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
        let eject = defaults.eject;
        PeerOptions {
            deadline: ms("RAIDA_HEALING_PEER_DEADLINE_MS", 1).unwrap_or(defaults.deadline),
            hedge_after: ms("RAIDA_HEALING_HEDGE_MS", 0).unwrap_or(defaults.hedge_after),
            hedge_start: ms("RAIDA_HEALING_HEDGE_START_MS", 0).unwrap_or(defaults.hedge_start),
            eject: EjectOptions {
                after: lookup("RAIDA_HEALING_EJECT_AFTER")
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .map(|v| v.min(MAX_EJECT_AFTER) as u32)
                    .unwrap_or(eject.after),
                cooldown: ms("RAIDA_HEALING_EJECT_COOLDOWN_MS", 1).unwrap_or(eject.cooldown),
                max: ms("RAIDA_HEALING_EJECT_MAX_MS", 1).unwrap_or(eject.max),
            },
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
    /// This server could not ask it (no socket available, poll failed).
    LocalError(io::ErrorKind),
    /// The process-wide connection budget (`RAIDA_HEALING_MAX_PEER_CONNECTIONS`) had no
    /// free slot for it before the deadline: never asked, no vote.
    NoConnection,
    /// Ejected: it failed or stayed silent on its last attempts, so it is not asked
    /// (no vote) until its next probe ([`ejection`]).
    Ejected,
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
            PeerOutcome::NoConnection => {
                write!(f, "no connection slot free before the deadline")
            }
            PeerOutcome::Ejected => write!(f, "ejected (not asked until its next probe)"),
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
    Answer(AnswerError),
    Local(io::ErrorKind),
}

impl Failure {
    fn outcome(self) -> PeerOutcome {
        match self {
            Failure::Connect(kind) => PeerOutcome::Refused(kind),
            Failure::Answer(AnswerError::Status(status)) => PeerOutcome::Declined(status),
            Failure::Answer(why) => PeerOutcome::Invalid(why),
            Failure::Local(kind) => PeerOutcome::LocalError(kind),
        }
    }
}

/// Fresh challenges for one call's connections: one read of the OS's randomness for a
/// batch (every first connection and hedge of a call), instead of one per connection.
/// The one place peer challenges get their randomness.
struct Challenges {
    random: Vec<u8>,
    used: usize,
}

impl Challenges {
    /// Room for `count` challenges per batch; nothing is read until the first is needed.
    fn new(count: usize) -> Challenges {
        let bytes = 12 * count.max(1);
        Challenges {
            random: vec![0; bytes],
            used: bytes,
        }
    }

    fn next(&mut self) -> Result<[u8; CHALLENGE_BYTES], Failure> {
        if self.used == self.random.len() {
            // No challenge from a predictable source: when the OS cannot give random
            // bytes, the peer is not asked at all (and the next call tries again).
            crate::random::fill(&mut self.random)
                .map_err(|_| Failure::Local(io::ErrorKind::Other))?;
            self.used = 0;
        }
        let mut random = [0u8; 12];
        random.copy_from_slice(&self.random[self.used..self.used + 12]);
        self.used += 12;
        Ok(challenge_for(&random))
    }
}

/// Bytes one read of an answer asks for: a whole small answer (header and up to about
/// 800 coins) arrives in one system call.
const READ_CHUNK: usize = 4096;

/// How far one connection has got.
enum Stage {
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
enum Step {
    Wait(PollFlags),
    Done(Result<Vec<Coin>, Failure>),
}

/// One non-blocking connection to one peer, driven by [`ask_peers`]' readiness loop.
struct Connection {
    // Declared before `_permit`: the socket is closed before its budget slot is returned.
    socket: Socket,
    _permit: Permit,
    slot: usize,
    hedge: bool,
    opened: Instant,
    challenge: [u8; CHALLENGE_BYTES],
    frame: [u8; REQUEST_BYTES],
    stage: Stage,
    waits_for: PollFlags,
}

impl Connection {
    /// Opens a connection to `target` under `permit` and starts a non-blocking connect.
    fn open(
        target: Target,
        claimer: Claimer,
        slot: usize,
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
        .map_err(|e| Failure::Local(e.kind()))?;
        let stage = match socket.connect(&SocketAddr::V4(target.addr).into()) {
            Ok(()) => Stage::Sending { sent: 0 },
            // EINTR on a non-blocking connect: the handshake goes on, as for EINPROGRESS.
            Err(e)
                if e.raw_os_error() == Some(libc::EINPROGRESS)
                    || e.kind() == io::ErrorKind::Interrupted =>
            {
                Stage::Connecting
            }
            Err(e) => return Err(Failure::Connect(e.kind())),
        };
        Ok(Connection {
            socket,
            _permit: permit,
            slot,
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
    fn advance(&mut self, raida: u8, ready: PollFlags) -> Step {
        loop {
            match &mut self.stage {
                Stage::Connecting => {
                    if ready.intersects(PollFlags::ERR | PollFlags::HUP) {
                        match self.socket.take_error() {
                            Ok(Some(e)) => return Step::Done(Err(Failure::Connect(e.kind()))),
                            Ok(None) => {}
                            Err(e) => return Step::Done(Err(Failure::Local(e.kind()))),
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

/// Where one peer stands during [`ask_peers`].
#[derive(Default)]
struct PeerState {
    /// Ejected: never asked in this call, no vote.
    ejected: bool,
    /// This call is the peer's half-open probe.
    probe: bool,
    /// Its place in the queue for the peer's share of the budget, while waiting.
    place: Option<Place>,
    /// Its first connection was opened (or failed to open for a reason of its own).
    started: bool,
    /// Connections still open.
    open: u8,
    hedged: bool,
    /// When its first connection opened plus its hedge limit ([`health`]).
    hedge_at: Option<Instant>,
    /// Coins listed in its vote, once it has voted.
    voted: Option<usize>,
    /// Time from opening the connection to its first well-formed answer.
    answered_in: Option<Duration>,
    first_failure: Option<Failure>,
    hedge_failure: Option<Failure>,
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
const SLOT_RETRY_FIRST: Duration = Duration::from_millis(5);
const SLOT_RETRY_LAST: Duration = Duration::from_millis(80);

/// Asks every target at once to validate its ticket, feeding valid answers to
/// `collector` as they arrive, until the collector is decided, every peer has finished,
/// or the deadline passes. Returns one report per target, in `targets` order.
///
/// Runs entirely on the calling thread: non-blocking sockets and one `poll(2)` over
/// them. Every connection holds a slot of the process-wide budget ([`budget`]), granted
/// per peer in arrival order; a peer that cannot get one before the deadline is reported
/// [`PeerOutcome::NoConnection`]. An ejected peer ([`ejection`]) is not asked and is no
/// vote from the start ([`PeerOutcome::Ejected`]), unless this call is its probe.
/// No socket it opened is open when it returns.
pub fn ask_peers<C: Collector + ?Sized>(
    targets: &[Target],
    claimer: Claimer,
    options: &PeerOptions,
    collector: &mut C,
) -> Vec<PeerReport> {
    let start = Instant::now();
    let far = start + Duration::from_millis(MAX_SETTING_MS);
    let deadline = start.checked_add(options.deadline).unwrap_or(far);
    let keys: Vec<_> = targets.iter().map(|t| (t.raida, t.addr)).collect();
    let mut states: Vec<PeerState> = health::admit(&keys, deadline)
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
            health::estimate_of(t.raida, t.addr).hedge_limit(
                options.hedge_after,
                options.hedge_start,
                ceiling,
            )
        })
        .collect();
    let pending = states.iter().filter(|s| s.is_pending()).count();
    let deadline_passed = !collector.is_decided(pending)
        && drive(targets, claimer, deadline, &limits, &mut states, collector);
    // A peer never asked (decided without it, no connection slot, ejected) says nothing
    // of its health; a probe always reports back, asked or not.
    let observations: Vec<_> = targets
        .iter()
        .zip(&states)
        .filter(|(_, s)| s.started || s.probe)
        .map(|(t, s)| (t.raida, t.addr, observation(s, deadline_passed)))
        .collect();
    if let Some(line) = health::record(&observations, &options.eject) {
        crate::log::warning(&line);
    }
    targets
        .iter()
        .zip(states)
        .map(|(&target, state)| report(target, state, deadline_passed))
        .collect()
}

/// The readiness loop of [`ask_peers`]; true when it ended at the deadline.
fn drive<C: Collector + ?Sized>(
    targets: &[Target],
    claimer: Claimer,
    deadline: Instant,
    limits: &[Duration],
    states: &mut [PeerState],
    collector: &mut C,
) -> bool {
    let mut connections: Vec<Connection> = Vec::with_capacity(targets.len());
    let mut challenges = Challenges::new(2 * targets.len());
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
                Permit::hedge(raida)
            } else {
                // Keeps its place in the peer's queue until a slot is its turn.
                let taken = match state.place.take() {
                    Some(place) => place.take(),
                    None => Permit::first(raida),
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
            let opened = challenges.next().and_then(|challenge| {
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

fn record_failure(state: &mut PeerState, hedge: bool, failure: Failure) {
    if hedge {
        state.hedge_failure = Some(failure);
    } else {
        state.first_failure = Some(failure);
    }
}

/// One `poll(2)` over `connections` until `wake`; fills `ready` with what each reported
/// (all empty on a timeout). The error kind when poll itself fails.
fn wait(
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
fn observation(state: &PeerState, deadline_passed: bool) -> health::Observation {
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
fn report(target: Target, state: PeerState, deadline_passed: bool) -> PeerReport {
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
        assert_eq!(odd.hedge_start, PeerOptions::default().hedge_start);
        let huge = PeerOptions::from_lookup(|_| Some(u64::MAX.to_string()));
        assert_eq!(huge.deadline, Duration::from_secs(3600));
        assert_eq!(huge.eject.after, 1000);
        assert_eq!(huge.eject.max, Duration::from_secs(3600));
        let eject = PeerOptions::from_lookup(|name| {
            Some(
                match name {
                    "RAIDA_HEALING_EJECT_AFTER" => "0",
                    "RAIDA_HEALING_EJECT_COOLDOWN_MS" => "2500",
                    "RAIDA_HEALING_EJECT_MAX_MS" => "0",
                    _ => "",
                }
                .to_string(),
            )
        });
        assert_eq!(
            eject.eject,
            EjectOptions {
                after: 0,
                cooldown: Duration::from_millis(2500),
                max: Duration::from_millis(1),
            }
        );
        assert_eq!(none.eject, EjectOptions::default());
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
            outcome(state(2, None, None, None), false),
            PeerOutcome::Unneeded
        );
        assert_eq!(
            outcome(state(2, None, None, None), true),
            PeerOutcome::TimedOut
        );
        let never_started = PeerState::default();
        assert_eq!(outcome(never_started, true), PeerOutcome::NoConnection);
        assert_eq!(outcome(PeerState::default(), false), PeerOutcome::Unneeded);
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
