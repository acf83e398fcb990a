//! The validate_ticket exchange on the wire (docs/wire-protocol.md): who is asked and who
//! asks, the exact 55-byte request, and the strict reading of an answer's header and body.
//! What the `peer_response` fuzz target exercises.

use std::fmt;
use std::io;
use std::net::{Ipv4Addr, SocketAddrV4};

use crate::protocol::{
    challenge_crc, Coin, Status, COIN_BYTES, HEALING_GROUP, TRAILER, TRAILER_BYTES, VALIDATE_TICKET,
};

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
pub(super) const REQUEST_BODY_BYTES: u16 = 23;
/// One peer to ask: its RAIDA index, address, and the ticket it issued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target {
    pub raida: u8,
    pub addr: SocketAddrV4,
    pub ticket: u32,
}

/// Who is asking: this server's RAIDA index, the coin id of the fix request, and the
/// address its connections leave from (`None`: the kernel's choice; see
/// [`SourceCheck`](super::source::SourceCheck)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Claimer {
    pub raida_no: u8,
    pub coin_id: u8,
    pub source: Option<Ipv4Addr>,
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
pub(super) fn check_body_size(size: usize) -> Result<(), AnswerError> {
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
