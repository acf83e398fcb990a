//! validate_ticket (group 2, command 50): a peer RAIDA claims a ticket this server issued
//! and learns its coins.
//!
//! The claim gate ([`ClaimGate`]) is asked around the pool's claim: it checks the claim's
//! tag (with a claim key), its policy and guess throttle may refuse the claim first, and
//! it records what the pool answered. Every
//! refusal answers 43, as an unknown ticket does, so it reveals nothing about the ticket.

use crate::claim_auth::ClaimFields;
use crate::claims::{ClaimGate, Tag};
use crate::protocol::{Response, Status, TOTAL_RAIDA_SERVERS};
use crate::tickets::{ClaimError, TicketPool};

use super::{NodeConfig, Request};

/// Exact payload size: claimer index (1) and ticket id (4).
const PAYLOAD: usize = 5;

/// Answers a claim: 250 with the ticket's coins (den, sn each), once per claimer.
pub fn validate_ticket(
    pool: &TicketPool,
    gate: &ClaimGate,
    config: &NodeConfig,
    request: &Request<'_>,
) -> Result<Response, Status> {
    let payload = request.payload()?.ok_or(Status::InvalidPacketLength)?;
    if payload.len() != PAYLOAD {
        return Err(Status::InvalidPacketLength);
    }
    let claimer = payload[0];
    let ticket = u32::from_be_bytes([payload[1], payload[2], payload[3], payload[4]]);
    if usize::from(claimer) >= TOTAL_RAIDA_SERVERS {
        return Err(Status::WrongRaida);
    }
    let configured = config.peers[usize::from(claimer)].map(|addr| *addr.ip());
    // What a claimer holding the claim key tags: itself, this server, the ticket, the coin.
    let tag = Tag {
        challenge: request.challenge(),
        fields: ClaimFields {
            claimer,
            peer: config.raida_no,
            coin_id: request.coin_id,
            ticket,
        },
    };
    let admitted = gate
        .admit_tagged(request.client, claimer, configured, Some(tag))
        .map_err(|_| Status::NoTicketFound)?;
    let claimed = pool.claim(ticket, claimer);
    gate.record(admitted, &claimed);
    match claimed {
        // The pool's own bytes: the boundary copies them once, into the server's buffer.
        Ok(coins) => Ok(Response::with_body(Status::Success, coins)),
        Err(ClaimError::BadClaimer) => Err(Status::WrongRaida),
        Err(ClaimError::NotFound) => Err(Status::NoTicketFound),
        Err(ClaimError::AlreadyClaimed) => Err(Status::TicketClaimedAlready),
    }
}
