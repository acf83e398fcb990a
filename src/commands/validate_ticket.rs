//! validate_ticket (group 2, command 50): a peer RAIDA claims a ticket this server issued
//! and learns its coins.
//!
//! When the server gives the client's address (and whether it came by TCP or UDP), the
//! claim goes through the pool's claim policy and guess throttle
//! ([`TicketPool::claim_from`]); every refusal answers 43, as an unknown ticket does, so it
//! reveals nothing about the ticket.

use crate::protocol::{Response, Status};
use crate::tickets::{ClaimError, ClaimRefusal, TicketPool};

use super::{NodeConfig, Request};

/// Exact payload size: claimer index (1) and ticket id (4).
const PAYLOAD: usize = 5;

/// Answers a claim: 250 with the ticket's coins (den, sn each), once per claimer.
pub fn validate_ticket(
    pool: &TicketPool,
    config: &NodeConfig,
    request: &Request<'_>,
) -> Result<Response, Status> {
    let payload = request.payload()?.ok_or(Status::InvalidPacketLength)?;
    if payload.len() != PAYLOAD {
        return Err(Status::InvalidPacketLength);
    }
    let claimer = payload[0];
    let ticket = u32::from_be_bytes([payload[1], payload[2], payload[3], payload[4]]);
    let claimed = match request.client {
        Some(client) => {
            let configured = config
                .peers
                .get(usize::from(claimer))
                .copied()
                .flatten()
                .map(|addr| *addr.ip());
            pool.claim_from(ticket, claimer, client, configured)
        }
        None => pool.claim(ticket, claimer).map_err(ClaimRefusal::Claim),
    };
    match claimed {
        // The pool's own bytes: the boundary copies them once, into the server's buffer.
        Ok(coins) => Ok(Response::with_body(Status::Success, coins)),
        Err(ClaimRefusal::Claim(ClaimError::BadClaimer)) => Err(Status::WrongRaida),
        Err(ClaimRefusal::Claim(ClaimError::NotFound))
        | Err(ClaimRefusal::NotListed)
        | Err(ClaimRefusal::Unverified)
        | Err(ClaimRefusal::Throttled) => Err(Status::NoTicketFound),
        Err(ClaimRefusal::Claim(ClaimError::AlreadyClaimed)) => {
            Err(Status::TicketClaimedAlready)
        }
    }
}
