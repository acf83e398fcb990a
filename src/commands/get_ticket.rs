//! get_ticket (group 2, command 40): which of these coins does this server recognise?
//! Passing coins are put on a ticket that peers can later claim.

use crate::protocol::{
    an_at, check_record_payload, pass_fail_response, Coin, Response, Status, AN_BYTES, COIN_BYTES,
};
use crate::store::{slot_of, visit_by_page, CoinStore};
use crate::tickets::{CreateError, TicketPool, MAX_COINS_PER_TICKET};

use super::Request;

/// Bytes per coin in the request: den, sn, AN.
const RECORD: usize = COIN_BYTES + AN_BYTES;

/// Answers a get_ticket request. Every coin is checked before a ticket is created, so a
/// rejected request leaves nothing in the pool.
pub fn get_ticket<S: CoinStore + ?Sized>(
    store: &S,
    pool: &TicketPool,
    request: &Request<'_>,
) -> Result<Response, Status> {
    let payload = check_record_payload(request.payload()?, RECORD, 0, RECORD)?;
    let n = payload.len() / RECORD;
    if n > MAX_COINS_PER_TICKET {
        // Only a modern-framed body can be this long; a ticket could not hold it.
        return Err(Status::InvalidPacketLength);
    }
    let coins: Vec<Coin> = payload.chunks_exact(RECORD).map(Coin::from_wire).collect();
    let mut passed = vec![false; n];
    visit_by_page(store, &coins, |page, i| {
        passed[i] = *page.an(slot_of(coins[i].sn)) == an_at(payload, i * RECORD + COIN_BYTES);
    })?;
    // The ticket lists the passing coins in request order, in their wire form.
    let mut passing = Vec::with_capacity(n * COIN_BYTES);
    for (record, _) in payload
        .chunks_exact(RECORD)
        .zip(&passed)
        .filter(|(_, &p)| p)
    {
        passing.extend_from_slice(&record[..COIN_BYTES]);
    }
    if passing.is_empty() {
        return Ok(Response::status(Status::AllFail));
    }
    let id = pool.create_from_wire(passing).map_err(|e| match e {
        CreateError::PoolFull => Status::NoTicketSlot,
        CreateError::BadCoinCount => Status::InvalidPacketLength,
    })?;
    Ok(pass_fail_response(&passed, &id.to_be_bytes()))
}
