//! The `cmd_*` handlers: one thin `extern "C"` shim per row of the command table
//! (src/commands/table.rs), each the whole of `handle` inside the handler boundary
//! (`entry::enter_handler`): check the pointer, turn the C struct into safe Rust values,
//! run the command, write the answer back.

use std::ptr::NonNull;
use std::time::Instant;

use crate::commands::{Command, Node, NodeConfig, Request};
use crate::protocol::{Response, Status};
use crate::store::CoinStore;

use super::alloc::malloc_copy;
use super::entry::enter_handler;
use super::error::set_last_error;
use super::host::{Host, HostStore};
use super::layout::ConnInfo;
use super::standalone::with_opened;
use super::state::process;

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
        return run_on(&HostStore::new(host), &config, command, request);
    }
    let standalone = with_opened(|store, config| run_on(store, config, command, request));
    if let Some(response) = standalone {
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
        set_last_error(&why);
    }
    Response::status(Status::Internal)
}

/// Runs `command` on `store` with the process's state (tickets, claim gate, peer client). A write the
/// store could not keep is answered ERROR_INTERNAL, logged and made the thread's last
/// error.
fn run_on<S: CoinStore>(
    store: &S,
    config: &NodeConfig,
    command: Command,
    request: &Request<'_>,
) -> Response {
    let process = process();
    let node = Node {
        store,
        tickets: &process.tickets,
        claims: &process.claims,
        config,
        peer_options: &process.peer_options,
        peers: &process.peers,
        fix_stats: &process.fix_stats,
    };
    node.run_reporting(command, request).unwrap_or_else(|line| {
        process.command_stats.store_write_failed();
        crate::log::error(&line);
        set_last_error(&line);
        Response::status(Status::Internal)
    })
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
///
/// # Safety
/// `ci` points to a `conn_info_t` that the caller owns exclusively for the call.
unsafe fn answer(mut ci: NonNull<ConnInfo>, response: Response) {
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

/// One call of `command`'s handler, inside the boundary: the request read from `ci`, the
/// command run, the answer written back. A NULL `ci` is logged and left alone.
///
/// # Safety
/// `ci` is NULL or points to a `conn_info_t` that the caller owns exclusively for the
/// call, whose `body` (if not NULL) holds `body_size` readable bytes.
unsafe fn handle(ci: *mut ConnInfo, command: Command) {
    let body = || {
        let Some(ci) = NonNull::new(ci) else {
            crate::log::error(&format!("{command:?} called with a NULL conn_info_t"));
            return;
        };
        let response = {
            // SAFETY: `handle`'s contract: valid for the call; only read in this block.
            let ci = unsafe { ci.as_ref() };
            let request = Request {
                // SAFETY: `handle`'s contract on `body`/`body_size`.
                body: unsafe { body_of(ci) },
                encryption_type: ci.encryption_type,
                coin_id: ci.coin_id,
                // Only a claim uses it (getpeername is a system call).
                client: (command == Command::ValidateTicket)
                    .then(|| super::client_addr::client(ci))
                    .flatten(),
            };
            let started = Instant::now();
            let response = run(command, &request);
            process().command_stats.answered(
                command.name(),
                response.status.code(),
                started.elapsed(),
            );
            response
        };
        // SAFETY: `handle`'s contract; the shared borrow above has ended.
        unsafe { answer(ci, response) };
    };
    // SAFETY: forwarded caller contract; `body` is done with `ci` when it returns.
    unsafe { enter_handler(command.export(), ci, body) }
}

/// Declares one `#[no_mangle]` shim per row of the command table, with its documentation.
/// build.rs declares the same rows to cbindgen, which does not expand macros.
macro_rules! command_table {
    ($(
        $(#[$doc:meta])*
        $variant:ident = $code:ident => $export:ident, |$node:ident, $request:ident| $run:expr;
    )*) => {
        /// The C export the server calls for `command`, e.g. `cmd_fix` for `Command::Fix`.
        pub fn handler(command: Command) -> unsafe extern "C" fn(*mut ConnInfo) {
            match command {
                $(Command::$variant => $export,)*
            }
        }

        $(
            $(#[$doc])*
            #[no_mangle]
            pub unsafe extern "C" fn $export(ci: *mut ConnInfo) {
                const _: () = assert!(Command::$variant.code() == crate::protocol::$code);
                // SAFETY: forwarded caller contract (`handle` ignores a NULL `ci`).
                unsafe { handle(ci, Command::$variant) }
            }
        )*
    };
}

include!("../commands/table.rs");
