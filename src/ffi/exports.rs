//! The exported C functions. Each is a thin shim: inside the entry boundary
//! ([`super::entry::enter`]) check the pointer, turn the C struct into safe Rust values and
//! run the command; then write the answer back.

use std::ptr::NonNull;
use std::sync::LazyLock;

use crate::commands::{Command, Node, Request};
use crate::peers::PeerOptions;
use crate::protocol::{Response, Status};
use crate::tickets::TicketPool;

use super::alloc::malloc_copy;
use super::entry::{enter, OnPanic};
use super::host::{Host, HostStore};
use super::layout::ConnInfo;

/// The process-wide ticket pool.
pub(crate) static TICKETS: LazyLock<TicketPool> = LazyLock::new(TicketPool::default);

/// Peer client settings, read once from the environment.
pub(crate) static PEER_OPTIONS: LazyLock<PeerOptions> = LazyLock::new(PeerOptions::from_env);

/// Runs `command` against whatever this process offers: the server's page cache and
/// config when linked into a server, else the folder opened by `raida_healing_open`,
/// else nothing (ERROR_INTERNAL, logged and kept as the thread's last error).
fn run(command: Command, request: &Request<'_>) -> Response {
    if let Some(host) = Host::get() {
        let config = match host.node_config() {
            Ok(config) => config,
            Err(why) => {
                crate::log::error(&format!("{command:?}: bad server config: {why}"));
                return Response::status(Status::Internal);
            }
        };
        let store = HostStore::new(host);
        let node = Node {
            store: &store,
            tickets: &TICKETS,
            config: &config,
            peer_options: &PEER_OPTIONS,
        };
        return node.run(command, request);
    }
    if let Some(response) = super::standalone::run(command, request, &TICKETS, &PEER_OPTIONS) {
        return response;
    }
    if Host::partially_present() {
        crate::log::error(&format!(
            "{command:?}: the process defines only some of get_page_by_sn_lock, unlock_page \
             and config; refusing to guess"
        ));
    } else {
        let why = format!(
            "{command:?}: no RAIDA server in this process (get_page_by_sn_lock, unlock_page \
             and config are absent) and no folder opened with raida_healing_open, so there is \
             no coin store"
        );
        crate::log::error(&why);
        super::standalone::set_last_error(&why);
    }
    Response::status(Status::Internal)
}

/// The body the server holds, as a slice: `None` when `body` is NULL; a non-positive
/// `body_size` gives an empty slice (answered as a bad length).
///
/// # Safety
/// `ci.body`, when not NULL, points to at least `ci.body_size` readable bytes that stay
/// valid and unchanged for the returned lifetime.
unsafe fn body_of(ci: &ConnInfo) -> Option<&[u8]> {
    let body = NonNull::new(ci.body)?;
    let len = usize::try_from(ci.body_size).unwrap_or(0);
    // SAFETY: the caller's contract; a zero length needs only a non-null pointer.
    Some(unsafe { std::slice::from_raw_parts(body.as_ptr(), len) })
}

/// Writes `response` into `ci`: status, and the body in a fresh `malloc` buffer.
/// `None` (a NULL `ci`, already logged) writes nothing.
///
/// # Safety
/// `ci` is NULL or points to a `conn_info_t` that the caller owns exclusively for the call.
unsafe fn answer(ci: *mut ConnInfo, response: Option<Response>) {
    let (Some(mut ci), Some(response)) = (NonNull::new(ci), response) else {
        return;
    };
    // SAFETY: the caller's contract: valid, exclusively ours for this call.
    let ci = unsafe { ci.as_mut() };
    if !ci.output.is_null() {
        // The server promises NULL on entry. A pointer here may be a stale buffer or
        // uninitialised memory, and freeing the latter would crash the server: replacing
        // it risks at most a leak, which the log line makes visible.
        crate::log::warning("ci->output was not NULL on entry; replaced without free()");
    }
    ci.output = std::ptr::null_mut();
    ci.output_size = 0;
    ci.command_status = response.status.code();
    if response.body.is_empty() {
        return;
    }
    let Ok(size) = i32::try_from(response.body.len()) else {
        ci.command_status = Status::Internal.code();
        return;
    };
    match malloc_copy(&response.body) {
        Some(buf) => {
            ci.output = buf.as_ptr();
            ci.output_size = size;
        }
        None => ci.command_status = Status::MemoryAlloc.code(),
    }
}

/// The body a handler runs through `enter`: the answer to one call of `command`, `None`
/// for a NULL `ci` (logged).
///
/// # Safety
/// `ci` is NULL or points to a `conn_info_t` that the caller owns exclusively until the
/// returned closure has run, whose `body` (if not NULL) holds `body_size` readable bytes.
unsafe fn respond(ci: *mut ConnInfo, command: Command) -> impl FnOnce() -> Option<Response> {
    move || {
        let Some(ci) = NonNull::new(ci) else {
            crate::log::error(&format!("{command:?} called with a NULL conn_info_t"));
            return None;
        };
        // SAFETY: `respond`'s contract: valid while this closure runs; only read here.
        let ci = unsafe { ci.as_ref() };
        let request = Request {
            // SAFETY: `respond`'s contract on `body`/`body_size`.
            body: unsafe { body_of(ci) },
            encryption_type: ci.encryption_type,
            coin_id: ci.coin_id,
            // Only a claim uses it (getpeername is a system call).
            client: (command == Command::ValidateTicket)
                .then(|| super::client_addr::client_ip(ci))
                .flatten(),
        };
        Some(run(command, &request))
    }
}

/// A handler that panicked answers ERROR_INTERNAL.
fn internal_on_panic() -> OnPanic<Option<Response>> {
    OnPanic {
        value: Some(Response::status(Status::Internal)),
        consequence: "answering ERROR_INTERNAL",
    }
}

/// Group 2, command 40: which of the listed coins does this server recognise?
///
/// Request payload: n × (denomination 1, serial number 4 big-endian, AN 16).
/// Answers 241 with a 4-byte ticket id when all pass, 242 (no body) when none pass,
/// 243 with a pass bitfield then the ticket id when some pass; 16, 36, 39, 40 or 42 on
/// bad input or a full pool. Every coin is checked before a ticket is created.
///
/// # Safety
/// `ci` is NULL or a valid `conn_info_t` owned by the caller for the call; `ci->body`
/// is NULL or holds `ci->body_size` bytes; `ci->output` is NULL on entry.
#[no_mangle]
pub unsafe extern "C" fn cmd_get_ticket(ci: *mut ConnInfo) {
    // SAFETY: forwarded caller contract (`respond` and `answer` ignore a NULL `ci`).
    unsafe {
        let body = respond(ci, Command::GetTicket);
        answer(ci, enter("cmd_get_ticket", internal_on_panic(), body))
    }
}

/// Group 2, command 50: a peer RAIDA claims a ticket this server issued.
///
/// Request payload: exactly the claimer's RAIDA index (1) and the ticket id (4).
/// Answers 250 with the ticket's coins (n × denomination 1, serial number 4), at most once
/// per claimer; 43 for an unknown or expired ticket, 44 when already claimed by that
/// index, 18 for an index above 24, 16 or 36 on a bad body.
/// When `ci` says who the client is (`ip`, else the peer of socket `sk`, else `sa`), 43
/// also answers a claim that RAIDA_HEALING_CLAIM_POLICY=listed refuses (the address is
/// not the one configured for that index) and every claim of a source that failed more
/// than 60 claims at once or 12 a minute (guessing ids; refused for 300 s); both are
/// logged at most once a minute per source, and neither tells whether the ticket exists.
///
/// # Safety
/// As for `cmd_get_ticket`.
#[no_mangle]
pub unsafe extern "C" fn cmd_validate_ticket(ci: *mut ConnInfo) {
    // SAFETY: forwarded caller contract (`respond` and `answer` ignore a NULL `ci`).
    unsafe {
        let body = respond(ci, Command::ValidateTicket);
        answer(ci, enter("cmd_validate_ticket", internal_on_panic(), body))
    }
}

/// Group 2, command 60: does this server hold each coin's AN, its PAN, or neither?
///
/// Request payload: n × (denomination 1, serial number 4, AN 16, PAN 16).
/// Answers 209 (all AN), 210 (all PAN), 208 (none), all without a body, or 211 with one
/// byte per coin (1 AN, 2 PAN, 0 neither); 16, 36, 39 or 40 on bad input.
///
/// # Safety
/// As for `cmd_get_ticket`.
#[no_mangle]
pub unsafe extern "C" fn cmd_find(ci: *mut ConnInfo) {
    // SAFETY: forwarded caller contract (`respond` and `answer` ignore a NULL `ci`).
    unsafe {
        let body = respond(ci, Command::Find);
        answer(ci, enter("cmd_find", internal_on_panic(), body))
    }
}

/// Group 2, command 80: rewrite the listed coins' ANs where enough peers confirm them.
///
/// Request payload: n × (denomination 1, serial number 4), the owner's 16-byte PG, then
/// 25 ticket ids (4 bytes each; index = RAIDA number; 0 = none). Every coin's page is
/// checked first (40, and no peer contacted, if one is missing). Then every other peer
/// with a ticket is asked at once to validate it (no page lock held meanwhile); a coin
/// listed by at least 13 distinct peers (14 votes with this server's; a peer listing a
/// coin twice still votes once) gets AN = H(raida_no, den, sn, PG) (MD5 for encryption
/// types below 4, SHA-256's first 16 bytes from 4 on), MFS = get_mfs(), is_dirty = 1 and
/// update_free_pages_bitmap(den, sn, 0), under its page lock. Answers 241, 242 or 243
/// (+ bitfield) like get_ticket (without a ticket id); 16, 36, 39 or 40 on bad input.
/// Returns as soon as every coin is decided, at the latest after
/// RAIDA_HEALING_PEER_DEADLINE_MS (default 32000); a peer silent well beyond its usual
/// answer time (never before RAIDA_HEALING_HEDGE_MS, default 300) gets a second connection.
/// Creates no thread: every peer connection is driven from the calling thread with poll(2),
/// and the process holds at most RAIDA_HEALING_MAX_PEER_CONNECTIONS (default 256) peer
/// connections across all concurrent calls; a peer that gets no slot before the deadline
/// has no vote. Logs one summary line per fix (docs/fix.md).
///
/// # Safety
/// As for `cmd_get_ticket`.
#[no_mangle]
pub unsafe extern "C" fn cmd_fix(ci: *mut ConnInfo) {
    // SAFETY: forwarded caller contract (`respond` and `answer` ignore a NULL `ci`).
    unsafe {
        let body = respond(ci, Command::Fix);
        answer(ci, enter("cmd_fix", internal_on_panic(), body))
    }
}
