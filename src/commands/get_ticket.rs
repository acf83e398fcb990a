//! get_ticket (group 2, command 40): which of these coins does this server recognise?
//! Passing coins are put on a ticket that peers can later claim.

use crate::protocol::{
    check_record_payload, pass_fail_response, Coin, Response, Status, AN_BYTES, COIN_BYTES,
};
use crate::store::{record_index, visit_coins_by_page, CoinStore};
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
    let (records, _) = payload.as_chunks::<RECORD>();
    let n = records.len();
    if n > MAX_COINS_PER_TICKET {
        // Only a modern-framed body can be this long; a ticket could not hold it.
        return Err(Status::InvalidPacketLength);
    }
    let mut passed = vec![false; n];
    visit_coins_by_page(store, records, coin_of, |page, i| {
        let record = &records[i];
        passed[i] = page.an(record_index(coin_of(record).sn))[..] == record[COIN_BYTES..];
    })?;
    // The ticket lists the passing coins in request order, in their wire form: each
    // coin's 5 bytes are copied to the next place, which only a passing coin takes.
    let mut passing = vec![[0u8; COIN_BYTES]; n];
    let mut count = 0;
    for (record, &pass) in records.iter().zip(&passed) {
        if let Some(place) = passing.get_mut(count) {
            place.copy_from_slice(&record[..COIN_BYTES]);
        }
        count += usize::from(pass);
    }
    if count == 0 {
        return Ok(Response::status(Status::AllFail));
    }
    passing.truncate(count);
    let id = pool
        .create_from_wire(passing.as_flattened())
        .map_err(|e| match e {
            CreateError::PoolFull => Status::NoTicketSlot,
            CreateError::BadCoinCount => Status::InvalidPacketLength,
            CreateError::NoRandomness(why) => {
                crate::log::error(&format!(
                    "get_ticket: no ticket id ({why}); answering ERROR_INTERNAL"
                ));
                Status::Internal
            }
        })?;
    Ok(pass_fail_response(&passed, &id.to_be_bytes()))
}

/// The coin a request record starts with.
#[inline]
fn coin_of(record: &[u8; RECORD]) -> Coin {
    Coin::from_wire(&record[..COIN_BYTES])
}
