//! validate_ticket (group 2, command 50): a peer RAIDA claims a ticket this server issued
//! and learns its coins.

use crate::protocol::{Response, Status};
use crate::tickets::{ClaimError, TicketPool};

use super::Request;

/// Exact payload size: claimer index (1) and ticket id (4).
const PAYLOAD: usize = 5;

/// Answers a claim: 250 with the ticket's coins (den, sn each), once per claimer.
pub fn validate_ticket(pool: &TicketPool, request: &Request<'_>) -> Result<Response, Status> {
    let payload = request.payload()?.ok_or(Status::InvalidPacketLength)?;
    if payload.len() != PAYLOAD {
        return Err(Status::InvalidPacketLength);
    }
    let claimer = payload[0];
    let ticket = u32::from_be_bytes([payload[1], payload[2], payload[3], payload[4]]);
    match pool.claim(ticket, claimer) {
        // The pool's own bytes: the boundary copies them once, into the server's buffer.
        Ok(coins) => Ok(Response::with_body(Status::Success, coins)),
        Err(ClaimError::BadClaimer) => Err(Status::WrongRaida),
        Err(ClaimError::NotFound) => Err(Status::NoTicketFound),
        Err(ClaimError::AlreadyClaimed) => Err(Status::TicketClaimedAlready),
    }
}
