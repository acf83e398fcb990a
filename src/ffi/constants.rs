//! Numbers C callers need, named for the header. cbindgen needs literal values, so the
//! statuses are written out here once more, and checked at compile time against the one
//! list in src/protocol.rs so the header cannot drift from what the library does.

use crate::protocol::Status;

/// Status: the body is too short, too long or not the size the command needs.
pub const RAIDA_STATUS_INVALID_PACKET_LENGTH: u8 = 16;
/// Status: a RAIDA index above 24.
pub const RAIDA_STATUS_WRONG_RAIDA: u8 = 18;
/// Status: the request has no body (`ci->body` is NULL).
pub const RAIDA_STATUS_EMPTY_REQUEST: u8 = 36;
/// Status: the payload is not a whole number of coin records.
pub const RAIDA_STATUS_COINS_NOT_DIV: u8 = 39;
/// Status: a coin's denomination or page does not exist (for the whole request).
pub const RAIDA_STATUS_INVALID_SN_OR_DENOMINATION: u8 = 40;
/// Status: get_ticket found no free ticket slot.
pub const RAIDA_STATUS_NO_TICKET_SLOT: u8 = 42;
/// Status: validate_ticket: no live ticket has that id.
pub const RAIDA_STATUS_NO_TICKET_FOUND: u8 = 43;
/// Status: validate_ticket: this RAIDA index already claimed the ticket.
pub const RAIDA_STATUS_TICKET_CLAIMED_ALREADY: u8 = 44;
/// Status: fix refused at once, no peer asked: this client's recent fixes named tickets the
/// peers did not know, or its fix would spend the allowance of failed claims at the peers
/// kept for clients in good standing (the server's ERROR_REQUEST_RATE).
pub const RAIDA_STATUS_REQUEST_RATE: u8 = 160;
/// Status: find: no coin matched its AN or PAN (no body).
pub const RAIDA_STATUS_FIND_NEITHER: u8 = 208;
/// Status: find: every coin matched its AN (no body).
pub const RAIDA_STATUS_FIND_ALL_AN: u8 = 209;
/// Status: find: every coin matched its PAN (no body).
pub const RAIDA_STATUS_FIND_ALL_PAN: u8 = 210;
/// Status: find: mixed; the body holds one byte per coin (1 AN, 2 PAN, 0 neither).
pub const RAIDA_STATUS_FIND_MIXED: u8 = 211;
/// Status: every coin passed (get_ticket) or was fixed (fix).
pub const RAIDA_STATUS_ALL_PASS: u8 = 241;
/// Status: no coin passed or was fixed (no body).
pub const RAIDA_STATUS_ALL_FAIL: u8 = 242;
/// Status: some coins passed; the body starts with a bitfield (coin i = bit i%8 of byte i/8).
pub const RAIDA_STATUS_MIXED: u8 = 243;
/// Status: validate_ticket: claim recorded; the body lists the ticket's coins.
pub const RAIDA_STATUS_SUCCESS: u8 = 250;
/// Status: the module itself failed (no server and no store, a bad config, a caught panic).
pub const RAIDA_STATUS_INTERNAL: u8 = 252;
/// Status: the response buffer could not be allocated.
pub const RAIDA_STATUS_MEMORY_ALLOC: u8 = 254;

/// The header's statuses in the order of [`Status::ALL`]. The array's type takes its
/// length from `Status::ALL`, so a status added to the one list in src/protocol.rs without
/// a constant here (or the reverse) does not compile, and neither does a wrong code.
// Used only by the compile-time check below, which Rust 1.88 (the floor) does not count as
// a use: without this it warns of dead code.
#[allow(dead_code)]
const HEADER_STATUSES: [u8; Status::ALL.len()] = [
    RAIDA_STATUS_INVALID_PACKET_LENGTH,
    RAIDA_STATUS_WRONG_RAIDA,
    RAIDA_STATUS_EMPTY_REQUEST,
    RAIDA_STATUS_COINS_NOT_DIV,
    RAIDA_STATUS_INVALID_SN_OR_DENOMINATION,
    RAIDA_STATUS_NO_TICKET_SLOT,
    RAIDA_STATUS_NO_TICKET_FOUND,
    RAIDA_STATUS_TICKET_CLAIMED_ALREADY,
    RAIDA_STATUS_REQUEST_RATE,
    RAIDA_STATUS_FIND_NEITHER,
    RAIDA_STATUS_FIND_ALL_AN,
    RAIDA_STATUS_FIND_ALL_PAN,
    RAIDA_STATUS_FIND_MIXED,
    RAIDA_STATUS_ALL_PASS,
    RAIDA_STATUS_ALL_FAIL,
    RAIDA_STATUS_MIXED,
    RAIDA_STATUS_SUCCESS,
    RAIDA_STATUS_INTERNAL,
    RAIDA_STATUS_MEMORY_ALLOC,
];

const _: () = {
    let mut i = 0;
    while i < HEADER_STATUSES.len() {
        assert!(HEADER_STATUSES[i] == Status::ALL[i] as u8);
        i += 1;
    }
};
