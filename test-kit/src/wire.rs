//! Wire builders: the bytes a client sends a handler and a peer RAIDA sends back, written
//! from docs/wire-protocol.md. Plain `std` and `raida_healing` only, so the fuzz crate can
//! include this file on its own.

use raida_healing::protocol::{challenge_crc, Coin, Response};

/// The `3E 3E` trailer that ends every body.
pub const TRAILER: [u8; 2] = [0x3e, 0x3e];
/// Size of a peer's response header.
pub const HEADER_BYTES: usize = 32;

/// The fixed 12-byte challenge core every test body uses: 0, 1, ..., 11.
pub fn challenge() -> raida_healing::protocol::ChallengeCore {
    core::array::from_fn(|i| i as u8)
}

/// A legacy request body (encryption types 0-2): 12 challenge bytes, their CRC-32, the
/// payload, `3E 3E`.
pub fn legacy_body(payload: &[u8]) -> Vec<u8> {
    let mut body = challenge().to_vec();
    body.extend_from_slice(&challenge_crc(&challenge()).to_be_bytes());
    body.extend_from_slice(payload);
    body.extend_from_slice(&TRAILER);
    body
}

/// A modern request body (encryption types 4-5): the payload, a 32-byte HMAC of `hmac`
/// bytes (the handler does not check it; the server did), `3E 3E`.
pub fn modern_body(payload: &[u8], hmac: u8) -> Vec<u8> {
    let mut body = payload.to_vec();
    body.extend_from_slice(&[hmac; 32]);
    body.extend_from_slice(&TRAILER);
    body
}

/// The 5-byte wire form of each coin, back to back.
pub fn coins_wire(coins: &[Coin]) -> Vec<u8> {
    coins.iter().flat_map(|c| c.to_wire()).collect()
}

/// A peer's 250 body listing `coins`, trailer included.
pub fn listing(coins: &[Coin]) -> Vec<u8> {
    let mut body = coins_wire(coins);
    body.extend(TRAILER);
    body
}

/// A validate_ticket payload: the claiming RAIDA and the ticket id.
pub fn claim(claimer: u8, ticket: u32) -> Vec<u8> {
    let mut payload = vec![claimer];
    payload.extend_from_slice(&ticket.to_be_bytes());
    payload
}

/// A fix payload: the coins, the owner's proposed generator, one ticket per RAIDA.
pub fn fix_payload(coins: &[Coin], pg: &[u8; 16], tickets: &[u32; 25]) -> Vec<u8> {
    let mut payload = coins_wire(coins);
    payload.extend_from_slice(pg);
    for t in tickets {
        payload.extend(t.to_be_bytes());
    }
    payload
}

/// A legacy response header as a peer RAIDA sends it: `raida` at byte 0, `status`, the
/// 24-bit body `size` at 9..12, an execution time of 42 µs at 12..16 (clients ignore it),
/// the echoed `challenge` at 16..32.
pub fn header(raida: u8, status: u8, size: usize, challenge: &[u8]) -> Vec<u8> {
    let mut h = vec![0u8; HEADER_BYTES];
    h[0] = raida;
    h[2] = status;
    h[3] = 2;
    h[5] = 1;
    h[9..12].copy_from_slice(&(size as u32).to_be_bytes()[1..]);
    h[12..16].copy_from_slice(&42u32.to_be_bytes());
    h[16..32].copy_from_slice(challenge);
    h
}

/// A whole peer answer: the header announcing `body` (trailer included, as given), then
/// `body`.
pub fn reply(raida: u8, status: u8, challenge: &[u8], body: &[u8]) -> Vec<u8> {
    let mut out = header(raida, status, body.len(), challenge);
    out.extend_from_slice(body);
    out
}

/// How a legacy server frames a handler's `response`: the header, then the body with its
/// `3E 3E` when there is one (an empty body goes out as size 0, no trailer).
pub fn frame_response(raida: u8, challenge: &[u8], response: &Response) -> Vec<u8> {
    if response.body.is_empty() {
        return reply(raida, response.status.code(), challenge, &[]);
    }
    let mut body = response.body.to_vec();
    body.extend(TRAILER);
    reply(raida, response.status.code(), challenge, &body)
}
