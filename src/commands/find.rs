//! find (group 2, command 60): does this server hold each coin's AN, its proposed AN, or
//! neither?

use crate::protocol::{check_record_payload, Coin, Response, Status, AN_BYTES, COIN_BYTES};
use crate::store::{record_index, visit_coins_by_page, CoinStore};

use super::Request;

/// Bytes per coin in the request: den, sn, AN, PAN.
const RECORD: usize = COIN_BYTES + 2 * AN_BYTES;

/// A coin's find result byte.
const NEITHER: u8 = 0;
const MATCHES_AN: u8 = 1;
const MATCHES_PAN: u8 = 2;

/// Answers a find request. Read-only.
pub fn find<S: CoinStore + ?Sized>(store: &S, request: &Request<'_>) -> Result<Response, Status> {
    let payload = check_record_payload(request.payload()?, RECORD, 0, RECORD)?;
    let (records, _) = payload.as_chunks::<RECORD>();
    let coin_of = |record: &[u8; RECORD]| Coin::from_wire(&record[..COIN_BYTES]);
    let mut results = vec![NEITHER; records.len()];
    visit_coins_by_page(store, records, coin_of, |page, i| {
        let record = &records[i];
        let stored = &page.an(record_index(coin_of(record).sn))[..];
        results[i] = if *stored == record[COIN_BYTES..COIN_BYTES + AN_BYTES] {
            MATCHES_AN
        } else if *stored == record[COIN_BYTES + AN_BYTES..] {
            MATCHES_PAN
        } else {
            NEITHER
        };
    })?;
    let all = |v: u8| results.iter().all(|&r| r == v);
    Ok(if all(MATCHES_AN) {
        Response::status(Status::FindAllAn)
    } else if all(MATCHES_PAN) {
        Response::status(Status::FindAllPan)
    } else if all(NEITHER) {
        Response::status(Status::FindNeither)
    } else {
        Response::with_body(Status::FindMixed, results)
    })
}
