//! What each command must answer, written from docs/wire-protocol.md alone (it shares no code
//! with the library's request parsing), over the model world of [`crate::model`].

use raida_healing::protocol::Coin;

use crate::model;

/// Status codes, named as docs/wire-protocol.md names them. Only the numbers come from
/// the library's one list (`protocol::Status`, itself checked against the document's
/// table by `make test`); which status a request deserves is re-derived below from the
/// document alone, deliberately independent of the library's parsing.
pub mod status {
    use raida_healing::protocol::Status;

    pub const INVALID_PACKET_LENGTH: u8 = Status::InvalidPacketLength as u8;
    pub const WRONG_RAIDA: u8 = Status::WrongRaida as u8;
    pub const EMPTY_REQUEST: u8 = Status::EmptyRequest as u8;
    pub const COINS_NOT_DIV: u8 = Status::CoinsNotDiv as u8;
    pub const INVALID_SN_OR_DENOMINATION: u8 = Status::InvalidSnOrDenomination as u8;
    pub const NO_TICKET_SLOT: u8 = Status::NoTicketSlot as u8;
    pub const NO_TICKET_FOUND: u8 = Status::NoTicketFound as u8;
    pub const TICKET_CLAIMED_ALREADY: u8 = Status::TicketClaimedAlready as u8;
    pub const FIND_NEITHER: u8 = Status::FindNeither as u8;
    pub const FIND_ALL_AN: u8 = Status::FindAllAn as u8;
    pub const FIND_ALL_PAN: u8 = Status::FindAllPan as u8;
    pub const FIND_MIXED: u8 = Status::FindMixed as u8;
    pub const ALL_PASS: u8 = Status::AllPass as u8;
    pub const ALL_FAIL: u8 = Status::AllFail as u8;
    pub const MIXED: u8 = Status::Mixed as u8;
    pub const SUCCESS: u8 = Status::Success as u8;
}
use status::*;

/// The payload length P of a body: legacy types carry `body_size - 18` payload bytes,
/// types 4 and 5 `body_size - 34`. `Err` is the status for a missing or too short body.
pub fn payload(encryption_type: i32, body: Option<&[u8]>) -> Result<&[u8], u8> {
    let body = body.ok_or(EMPTY_REQUEST)?;
    let (front, back) = if matches!(encryption_type, 4 | 5) {
        (0, 34)
    } else {
        (16, 2)
    };
    if body.len() < front + back {
        return Err(INVALID_PACKET_LENGTH);
    }
    Ok(&body[front..body.len() - back])
}

/// The record-count rules shared by get_ticket, find and fix: P < `min` → 16,
/// (P − `fixed`) not a multiple of `record` → 39.
fn records(p: &[u8], min: usize, fixed: usize, record: usize) -> Result<usize, u8> {
    if p.len() < min {
        return Err(INVALID_PACKET_LENGTH);
    }
    if !(p.len() - fixed).is_multiple_of(record) {
        return Err(COINS_NOT_DIV);
    }
    Ok((p.len() - fixed) / record)
}

fn coin_at(bytes: &[u8]) -> Coin {
    Coin {
        den: bytes[0] as i8,
        sn: u32::from_be_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]),
    }
}

/// Bitfield: coin i is bit i % 8 of byte i / 8.
pub fn bitfield(passed: &[bool]) -> Vec<u8> {
    let mut bits = vec![0u8; passed.len().div_ceil(8)];
    for (i, &p) in passed.iter().enumerate() {
        if p {
            bits[i / 8] |= 1 << (i % 8);
        }
    }
    bits
}

/// A predicted answer: `status` and `body`; when `ticket` lists coins, the real body is
/// `body` followed by a 4-byte non-zero ticket id whose ticket lists exactly those coins
/// (in request order), and a full pool may answer 42 instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Predicted {
    pub status: u8,
    pub body: Vec<u8>,
    pub ticket: Option<Vec<Coin>>,
}

impl Predicted {
    fn status(status: u8) -> Predicted {
        Predicted {
            status,
            body: Vec::new(),
            ticket: None,
        }
    }
}

/// get_ticket over the model.
pub fn get_ticket(encryption_type: i32, body: Option<&[u8]>) -> Predicted {
    let p = match payload(encryption_type, body) {
        Ok(p) => p,
        Err(s) => return Predicted::status(s),
    };
    let n = match records(p, 21, 0, 21) {
        Ok(n) if n > 4096 => return Predicted::status(INVALID_PACKET_LENGTH),
        Ok(n) => n,
        Err(s) => return Predicted::status(s),
    };
    let coins: Vec<Coin> = p.chunks_exact(21).map(coin_at).collect();
    if !coins.iter().all(|&c| model::coin_exists(c)) {
        return Predicted::status(INVALID_SN_OR_DENOMINATION);
    }
    let passed: Vec<bool> = p
        .chunks_exact(21)
        .zip(&coins)
        .map(|(r, &c)| r[5..21] == model::stored_an(c))
        .collect();
    let passing: Vec<Coin> = coins
        .iter()
        .zip(&passed)
        .filter(|(_, &p)| p)
        .map(|(&c, _)| c)
        .collect();
    if passing.is_empty() {
        Predicted::status(ALL_FAIL)
    } else if passing.len() == n {
        Predicted {
            status: ALL_PASS,
            body: Vec::new(),
            ticket: Some(passing),
        }
    } else {
        Predicted {
            status: MIXED,
            body: bitfield(&passed),
            ticket: Some(passing),
        }
    }
}

/// find over the model.
pub fn find(encryption_type: i32, body: Option<&[u8]>) -> Predicted {
    let p = match payload(encryption_type, body).and_then(|p| records(p, 37, 0, 37).map(|_| p)) {
        Ok(p) => p,
        Err(s) => return Predicted::status(s),
    };
    let mut results = Vec::new();
    for r in p.chunks_exact(37) {
        let coin = coin_at(r);
        if !model::coin_exists(coin) {
            return Predicted::status(INVALID_SN_OR_DENOMINATION);
        }
        let stored = model::stored_an(coin);
        results.push(if r[5..21] == stored {
            1
        } else if r[21..37] == stored {
            2
        } else {
            0
        });
    }
    let all = |v: u8| results.iter().all(|&r| r == v);
    if all(1) {
        Predicted::status(FIND_ALL_AN)
    } else if all(2) {
        Predicted::status(FIND_ALL_PAN)
    } else if all(0) {
        Predicted::status(FIND_NEITHER)
    } else {
        Predicted {
            status: FIND_MIXED,
            body: results,
            ticket: None,
        }
    }
}

/// validate_ticket's request: the claimer and the ticket id, or the status for a bad
/// body. What the claim answers depends on the pool; the caller decides that.
pub fn validate_request(encryption_type: i32, body: Option<&[u8]>) -> Result<(u8, u32), u8> {
    let p = payload(encryption_type, body)?;
    if p.len() != 5 {
        return Err(INVALID_PACKET_LENGTH);
    }
    if p[0] >= 25 {
        return Err(WRONG_RAIDA);
    }
    Ok((p[0], u32::from_be_bytes([p[1], p[2], p[3], p[4]])))
}

/// fix when no peer can be asked (no peer has an address): each coin has this server's
/// one vote, fewer than the 14 needed, so nothing is fixed and the answer is 242, once
/// the body's sizes are right and every coin's page exists.
pub fn fix_without_peers(encryption_type: i32, body: Option<&[u8]>) -> Predicted {
    let p = match payload(encryption_type, body).and_then(|p| records(p, 121, 116, 5).map(|_| p)) {
        Ok(p) => p,
        Err(s) => return Predicted::status(s),
    };
    let n = (p.len() - 116) / 5;
    if !p[..5 * n]
        .chunks_exact(5)
        .all(|r| model::coin_exists(coin_at(r)))
    {
        return Predicted::status(INVALID_SN_OR_DENOMINATION);
    }
    Predicted::status(ALL_FAIL)
}

/// The coins of a fix body (for checking that nothing was rewritten).
pub fn fix_coins(encryption_type: i32, body: Option<&[u8]>) -> Vec<Coin> {
    match payload(encryption_type, body) {
        Ok(p) if p.len() >= 116 && (p.len() - 116) % 5 == 0 => {
            p[..p.len() - 116].chunks_exact(5).map(coin_at).collect()
        }
        _ => Vec::new(),
    }
}
