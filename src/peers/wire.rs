//! The validate_ticket exchange on the wire (docs/wire-protocol.md): who is asked and who
//! asks, the exact 55-byte request, and the strict reading of an answer's header and body.
//! What the `peer_response` fuzz target exercises.

use std::fmt;
use std::io;
use std::net::{Ipv4Addr, SocketAddrV4};

use crate::protocol::{
    challenge_crc, request_header, response_header, ChallengeCore, Coin, Status, COIN_BYTES,
    HEALING_GROUP, LEGACY_CHALLENGE_BYTES, TRAILER, TRAILER_BYTES, VALIDATE_TICKET,
};

/// Bytes of the request sent to a peer: a 32-byte header and a 23-byte body.
pub const REQUEST_BYTES: usize = request_header::BYTES + REQUEST_BODY_BYTES as usize;
/// Bytes of a peer's response header (type 0).
pub const RESPONSE_HEADER_BYTES: usize = response_header::BYTES;
/// Bytes of the challenge a request carries and the response echoes: its 12-byte core
/// ([`ChallengeCore`]) and their CRC-32.
pub const CHALLENGE_BYTES: usize = LEGACY_CHALLENGE_BYTES;
/// At most this many coins in one answer (a ticket's capacity).
pub const MAX_LISTED_COINS: usize = 4096;
/// The largest body an answer may announce: `2 + 5 * 4096`.
pub const MAX_RESPONSE_BODY: usize = TRAILER_BYTES + COIN_BYTES * MAX_LISTED_COINS;

/// Body length of the request: challenge (16), claimer (1), ticket (4), trailer (2).
const REQUEST_BODY_BYTES: u16 = 23;

/// Where the fields of the request's body are.
mod request_body {
    use std::ops::Range;

    /// The 16-byte challenge.
    pub const CHALLENGE: Range<usize> = 0..16;
    /// The claimer's RAIDA index.
    pub const CLAIMER: usize = 16;
    /// The ticket id, big-endian.
    pub const TICKET: Range<usize> = 17..21;
    /// `3E 3E`.
    pub const TRAILER: Range<usize> = 21..23;
}
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

/// RAIDA 7 asking for coin id 6 from the kernel's choice of address: the claimer of the
/// peer client's unit tests.
#[cfg(test)]
pub(crate) const TEST_CLAIMER: Claimer = Claimer {
    raida_no: 7,
    coin_id: 6,
    source: None,
};

/// The 16-byte challenge for its 12-byte core: those bytes, then their CRC-32 big-endian.
pub fn challenge_for(core: &ChallengeCore) -> [u8; CHALLENGE_BYTES] {
    let mut challenge = [0u8; CHALLENGE_BYTES];
    let (front, crc) = challenge.split_at_mut(core.len());
    front.copy_from_slice(core);
    crc.copy_from_slice(&challenge_crc(core).to_be_bytes());
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
    let (header, body) = frame.split_at_mut(request_header::BYTES);
    header[request_header::CLOUD_ID] = 1;
    header[request_header::RAIDA] = peer;
    header[request_header::GROUP] = HEALING_GROUP;
    header[request_header::COMMAND] = VALIDATE_TICKET;
    header[request_header::COIN_ID].copy_from_slice(&u16::from(claimer.coin_id).to_be_bytes());
    header[request_header::ONE] = 1;
    header[request_header::BODY_LENGTH].copy_from_slice(&REQUEST_BODY_BYTES.to_be_bytes());
    body[request_body::CHALLENGE].copy_from_slice(challenge);
    body[request_body::CLAIMER] = claimer.raida_no;
    body[request_body::TICKET].copy_from_slice(&ticket.to_be_bytes());
    body[request_body::TRAILER].copy_from_slice(&TRAILER);
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
    let raida = header[response_header::RAIDA];
    if raida != peer {
        return Err(AnswerError::WrongRaida {
            expected: peer,
            got: raida,
        });
    }
    let status = header[response_header::STATUS];
    if status != Status::Success.code() {
        return Err(AnswerError::Status(status));
    }
    if header[response_header::CHALLENGE] != challenge[..] {
        return Err(AnswerError::ChallengeNotEchoed);
    }
    let size = header[response_header::BODY_SIZE]
        .iter()
        .fold(0usize, |size, &byte| size << 8 | usize::from(byte));
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{ChallengeCore, Coin, TRAILER};

    const CLAIMER: Claimer = TEST_CLAIMER;

    fn challenge() -> [u8; 16] {
        let core: ChallengeCore = core::array::from_fn(|i| i as u8);
        challenge_for(&core)
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
}
