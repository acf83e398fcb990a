//! `send_validate_ticket_job`: the server's one-peer validate-ticket job, kept for C code
//! that still calls it (the legacy fix ran one per peer on its own threads).
//!
//! It asks peer `raida_idx` to validate `ticket` exactly as `cmd_fix` asks its peers
//! (the strict 55-byte request, the strict answer, hedge and deadline from the same
//! settings), and hands the listed coins back in a C `malloc` array.

use std::collections::HashSet;
use std::ffi::c_void;
use std::ptr::NonNull;

use crate::peers::{ask_one, PeerOutcome, Target};
use crate::protocol::{Coin, TOTAL_RAIDA_SERVERS};

use super::alloc::malloc_array;
use super::entry::enter;
use super::host::Host;
use super::layout::{CoinT, ValidateTicketArg};
use super::state::process;

/// Asks peer RAIDA `arg->raida_idx` to validate `arg->ticket` on behalf of this server
/// (`config.raida_no`), with the coin id of `arg->ci`. Runs on the calling thread (no
/// thread of its own), within RAIDA_HEALING_PEER_DEADLINE_MS, its connections counted in
/// the process-wide RAIDA_HEALING_MAX_PEER_CONNECTIONS budget like cmd_fix's.
///
/// # Returns
/// Always NULL. On a valid 250 answer `arg->rv_coins` is a `malloc` array of
/// `arg->rv_num_coins` coins (each listed coin once, in the peer's order; a peer that
/// repeats a coin does not get to vote twice through a caller that counts entries),
/// which the caller frees with `free()`; NULL and 0 when the peer listed none. Anything
/// else (no server in the process, `raida_idx` outside 0..24 or equal to this server,
/// ticket 0, NULL `ci`, no IPv4 address for the peer, a refused, silent or invalid
/// answer) leaves NULL and 0, and is logged.
///
/// # Safety
/// `arg` is NULL or points to a `validate_ticket_arg_t` that the caller owns exclusively
/// for the call; its `ci` is NULL or a valid `conn_info_t` (only `coin_id` is read).
#[no_mangle]
pub unsafe extern "C" fn send_validate_ticket_job(arg: *mut c_void) -> *mut c_void {
    // SAFETY: forwarded caller contract.
    enter("send_validate_ticket_job", || unsafe { run_job(arg) })
}

/// The whole job, inside the entry boundary. Always NULL; the coins go into `arg`.
///
/// # Safety
/// As for `send_validate_ticket_job`.
unsafe fn run_job(arg: *mut c_void) -> *mut c_void {
    let Some(arg) = NonNull::new(arg.cast::<ValidateTicketArg>()) else {
        crate::log::error("send_validate_ticket_job called with a NULL argument");
        return std::ptr::null_mut();
    };
    // SAFETY: the caller's contract: a valid argument, exclusively ours for the call.
    let arg = unsafe { &mut *arg.as_ptr() };
    // Reset first: after a panic further down, the caller sees no coins.
    arg.rv_coins = std::ptr::null_mut();
    arg.rv_num_coins = 0;
    let coin_id = NonNull::new(arg.ci).map(|ci| {
        // SAFETY: the caller's contract: `ci` is NULL (handled) or a valid conn_info_t.
        unsafe { ci.as_ref() }.coin_id
    });
    let coins = validate_with_peer(arg.raida_idx, arg.ticket, coin_id);
    if coins.is_empty() {
        return std::ptr::null_mut();
    }
    let Ok(count) = u32::try_from(coins.len()) else {
        return std::ptr::null_mut();
    };
    match malloc_array(&coins) {
        Some(buf) => {
            arg.rv_coins = buf.as_ptr();
            arg.rv_num_coins = count;
        }
        None => crate::log::error(&format!(
            "send_validate_ticket_job: malloc of {} coins failed; returning none",
            coins.len()
        )),
    }
    std::ptr::null_mut()
}

/// The safe part of the job: the coins peer `raida_idx` lists for `ticket`, each once,
/// or none (logged).
fn validate_with_peer(raida_idx: i8, ticket: u32, coin_id: Option<u8>) -> Vec<CoinT> {
    let refuse = |why: String| {
        crate::log::error(&format!("send_validate_ticket_job: {why}; no peer asked"));
        Vec::new()
    };
    let Some(host) = Host::get() else {
        return refuse(
            "no RAIDA server in this process (get_page_by_sn_lock, unlock_page and config \
             are absent), so there is no config to find the peer in"
                .to_string(),
        );
    };
    let config = match host.node_config() {
        Ok(config) => config,
        Err(why) => return refuse(format!("bad server config: {why}")),
    };
    let Some(peer) = u8::try_from(raida_idx)
        .ok()
        .filter(|&p| usize::from(p) < TOTAL_RAIDA_SERVERS)
    else {
        return refuse(format!("raida_idx {raida_idx} is not 0..24"));
    };
    if peer == config.raida_no {
        return refuse(format!("raida_idx {peer} is this server"));
    }
    if ticket == 0 {
        return refuse(format!("ticket 0 for peer {peer} means no ticket"));
    }
    let Some(coin_id) = coin_id else {
        return refuse("arg->ci is NULL, so there is no coin id".to_string());
    };
    let Some(addr) = config.peers[usize::from(peer)] else {
        return refuse(format!("peer {peer} has no IPv4 address in config"));
    };
    let target = Target {
        raida: peer,
        addr,
        ticket,
    };
    let process = process();
    let claimer = config.claimer(coin_id, &process.peers, &process.peer_options);
    let (report, coins) = ask_one(&process.peers, target, claimer, &process.peer_options);
    let mut line = format!(
        "send_validate_ticket_job: peer {peer} at {addr}: {}",
        report.outcome
    );
    if report.hedged {
        line.push_str("; hedged");
    }
    match report.outcome {
        PeerOutcome::Voted { .. } | PeerOutcome::Declined(_) => crate::log::debug(&line),
        _ => process
            .fixes
            .log_limits()
            .warning_or_debug(crate::log_limit::LineKind::JobPeer, &line),
    }
    distinct(coins.unwrap_or_default())
}

/// Each coin once, in first-listed order, as C structs.
fn distinct(coins: Vec<Coin>) -> Vec<CoinT> {
    let mut seen = HashSet::with_capacity(coins.len());
    coins
        .into_iter()
        .filter(|&coin| seen.insert(coin))
        .map(|coin| CoinT {
            denomination: coin.den,
            sn: coin.sn,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeats_are_dropped_in_order() {
        let c = |sn| Coin { den: 2, sn };
        let out = distinct(vec![c(5), c(1), c(5), c(5), c(2), c(1)]);
        let sns: Vec<u32> = out.iter().map(|c| c.sn).collect();
        assert_eq!(sns, vec![5, 1, 2]);
        assert!(out.iter().all(|c| c.denomination == 2));
    }

    #[test]
    fn null_argument_returns_null() {
        // SAFETY: NULL is explicitly allowed.
        let r = unsafe { send_validate_ticket_job(std::ptr::null_mut()) };
        assert!(r.is_null());
    }
}
