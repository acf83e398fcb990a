//! The documented shape of every answer, checked on its own before any comparison with
//! the oracle: the status is one the command may answer (and one of
//! `protocol::Status::ALL`), and the body's size is the one that status implies.

use raida_healing::protocol::Status;

use crate::oracle::status::*;
use crate::Command;

/// Statuses `cmd` may answer when the module works (252 internal and 254 out of memory
/// are findings here: the host is complete and memory is plentiful).
pub fn allowed(cmd: Command) -> &'static [u8] {
    match cmd {
        Command::GetTicket => &[
            INVALID_PACKET_LENGTH,
            EMPTY_REQUEST,
            COINS_NOT_DIV,
            INVALID_SN_OR_DENOMINATION,
            NO_TICKET_SLOT,
            ALL_PASS,
            ALL_FAIL,
            MIXED,
        ],
        Command::ValidateTicket => &[
            INVALID_PACKET_LENGTH,
            WRONG_RAIDA,
            EMPTY_REQUEST,
            NO_TICKET_FOUND,
            TICKET_CLAIMED_ALREADY,
            SUCCESS,
        ],
        Command::Find => &[
            INVALID_PACKET_LENGTH,
            EMPTY_REQUEST,
            COINS_NOT_DIV,
            INVALID_SN_OR_DENOMINATION,
            FIND_NEITHER,
            FIND_ALL_AN,
            FIND_ALL_PAN,
            FIND_MIXED,
        ],
        Command::Fix => &[
            INVALID_PACKET_LENGTH,
            EMPTY_REQUEST,
            COINS_NOT_DIV,
            INVALID_SN_OR_DENOMINATION,
            ALL_PASS,
            ALL_FAIL,
            MIXED,
        ],
    }
}

/// Panics unless `status`/`body` have the documented shape for a request of `n` coin
/// records (`n` is what the body's size implies; unused for validate_ticket).
pub fn check(cmd: Command, n: usize, status: u8, body: &[u8]) {
    assert!(
        Status::from_code(status).is_some(),
        "{cmd:?}: status {status} is not in protocol::Status::ALL"
    );
    assert!(
        allowed(cmd).contains(&status),
        "{cmd:?}: status {status} is not one this command answers"
    );
    let expected_len: Option<usize> = match (cmd, status) {
        (Command::GetTicket, ALL_PASS) => Some(4),
        (Command::GetTicket, MIXED) => Some(n.div_ceil(8) + 4),
        (Command::Fix, ALL_PASS) => Some(0),
        (Command::Fix, MIXED) => Some(n.div_ceil(8)),
        (Command::Find, FIND_MIXED) => Some(n),
        (Command::ValidateTicket, SUCCESS) => {
            assert!(
                !body.is_empty() && body.len().is_multiple_of(5) && body.len() / 5 <= 4096,
                "validate_ticket 250 with a {}-byte body (must be 5k, 1 <= k <= 4096)",
                body.len()
            );
            None
        }
        _ => Some(0),
    };
    if let Some(len) = expected_len {
        assert_eq!(
            body.len(),
            len,
            "{cmd:?}: status {status} for {n} coins must carry {len} body bytes"
        );
    }
    match (cmd, status) {
        (Command::GetTicket | Command::Fix, MIXED) => {
            let bits = &body[..n.div_ceil(8)];
            let set: u32 = bits.iter().map(|b| b.count_ones()).sum();
            assert!(
                set > 0 && (set as usize) < n,
                "{cmd:?} 243 bitfield must mark some but not all of {n} coins ({set} set)"
            );
            if !n.is_multiple_of(8) {
                assert_eq!(
                    bits[n / 8] >> (n % 8),
                    0,
                    "{cmd:?} 243 bitfield has bits past coin {n}"
                );
            }
        }
        (Command::GetTicket, ALL_PASS) => {
            assert_ne!(body, [0, 0, 0, 0], "ticket id 0");
        }
        (Command::Find, FIND_MIXED) => {
            assert!(body.iter().all(|&r| r <= 2), "find result byte above 2");
            let first = body[0];
            assert!(
                body.iter().any(|&r| r != first),
                "find 211 with every coin the same result {first}"
            );
        }
        _ => {}
    }
    if matches!((cmd, status), (Command::GetTicket, MIXED)) {
        assert_ne!(&body[body.len() - 4..], [0, 0, 0, 0], "ticket id 0");
    }
}
