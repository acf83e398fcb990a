//! The validate_ticket request a peer RAIDA receives from the library's peer client
//! (docs/wire-protocol.md): read from a stream and checked here, once, for every fake peer
//! of the tests and the fuzz crate.

use std::io::Read;
use std::net::TcpStream;
use std::time::Duration;

use raida_healing::commands::Command;
pub use raida_healing::peers::REQUEST_BYTES;
use raida_healing::protocol::challenge_crc;
use raida_healing::protocol::HEALING_GROUP;

/// One request as a peer receives it: exactly [`REQUEST_BYTES`] (55) bytes.
pub type PeerRequest = [u8; REQUEST_BYTES];

/// Bytes of the request header; the body (23 bytes) follows.
const HEADER_BYTES: usize = 32;

/// Reads one whole request from `stream`, waiting at most `timeout` for it; `None` when
/// the client closed (or went silent) first, as a cancelled hedge does.
pub fn read_request(stream: &mut TcpStream, timeout: Duration) -> Option<PeerRequest> {
    stream.set_read_timeout(Some(timeout)).ok()?;
    let mut request = [0u8; REQUEST_BYTES];
    stream.read_exact(&mut request).ok()?;
    Some(request)
}

/// The header every request to `peer` carries: a type-0 header naming `peer`, group 2
/// command 50 (validate_ticket), the claimer's coin id, and a 23-byte body.
pub fn request_header(peer: u8, coin_id: u8) -> [u8; HEADER_BYTES] {
    let mut header = [0u8; HEADER_BYTES];
    header[..9].copy_from_slice(&[
        1,
        0,
        peer,
        0,
        HEALING_GROUP,
        Command::ValidateTicket.code(),
        0,
        coin_id,
        1,
    ]);
    header[23] = (REQUEST_BYTES - HEADER_BYTES) as u8;
    header
}

/// True when `head` (a request's first bytes) asks for validate_ticket.
pub fn is_validate_ticket(head: &[u8]) -> bool {
    head.len() >= 6 && head[..2] == [1, 0] && head[4..6] == request_header(0, 0)[4..6]
}

/// Checks `request` against the documented frame: the header for `peer` and `coin_id`, a
/// challenge sealed by its CRC-32, the claimer's RAIDA index `claimer`, the ticket (when
/// `ticket` is given) and the `3E 3E` trailer. `Err` says what differs.
pub fn check_request(
    request: &PeerRequest,
    peer: u8,
    claimer: u8,
    coin_id: u8,
    ticket: Option<u32>,
) -> Result<(), String> {
    if request[..HEADER_BYTES] != request_header(peer, coin_id) {
        return Err(format!("header {:02x?}", &request[..HEADER_BYTES]));
    }
    let body = &request[HEADER_BYTES..];
    if body[12..16] != challenge_crc(&body[..12]).to_be_bytes() {
        return Err(format!("challenge CRC {:02x?}", &body[..16]));
    }
    if body[16] != claimer {
        return Err(format!("claimer {} (expected {claimer})", body[16]));
    }
    if let Some(ticket) = ticket {
        if body[17..21] != ticket.to_be_bytes() {
            return Err(format!(
                "ticket {:02x?} (expected {ticket:#x})",
                &body[17..21]
            ));
        }
    }
    if body[21..23] != [0x3e, 0x3e] {
        return Err(format!("trailer {:02x?}", &body[21..23]));
    }
    Ok(())
}
