//! Standalone mode: the library in a process with no RAIDA server (an ops script, a
//! deployment check), working on a server folder's page files through
//! [`crate::pagefile::PageFileStore`] and its `config.toml`.
//!
//! `raida_healing_open(dir)` makes `dir` this process's coin store, config and peer list;
//! from then on the `cmd_*` handlers use it exactly as they would use a server's page
//! cache. Under a running server (its symbols present) opening is refused: the server's
//! own store always wins.

use std::ffi::{c_char, c_int, CStr, OsStr};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use crate::commands::NodeConfig;
use crate::pagefile::{OpenError, PageFileStore, PageProblem, Session};
use crate::protocol::{Coin, AN_BYTES};
use crate::store::PageKey;

use super::entry::enter;
use super::error::{
    clear_last_error, int_result, last_error_ptr, CodedError, RAIDA_HEALING_E_ALREADY_OPEN,
    RAIDA_HEALING_E_ARGUMENT, RAIDA_HEALING_E_CONFIG, RAIDA_HEALING_E_DATA, RAIDA_HEALING_E_LOCKED,
    RAIDA_HEALING_E_NOT_OPEN, RAIDA_HEALING_E_NO_PAGE, RAIDA_HEALING_E_SERVER_PRESENT,
};
use super::host::Host;
use super::layout::ConnInfo;
use super::state::{process, Opened};

/// Runs `command` with the opened folder's store (one command's session of its page
/// files) and config; `None` when no folder is open. The folder stays open until `command`
/// returns: `raida_healing_close` waits for it.
pub(super) fn with_opened<R>(command: impl FnOnce(&Session<'_>, &NodeConfig) -> R) -> Option<R> {
    let opened = process().opened.read();
    let opened = opened.as_ref()?;
    Some(command(&opened.store.session(), &opened.config))
}

/// Opens `dir` as this process's store: the safe core of `raida_healing_open`.
fn open_folder(dir: &Path) -> Result<(), CodedError> {
    if Host::get().is_some() || Host::partially_present() {
        return Err((
            RAIDA_HEALING_E_SERVER_PRESENT,
            "this process is a RAIDA server (get_page_by_sn_lock, unlock_page or config is \
             linked in); the handlers use its page cache, and a second store is never opened \
             under it"
                .to_string(),
        ));
    }
    let mut opened = process().opened.write();
    if let Some(current) = opened.as_ref() {
        return Err((
            RAIDA_HEALING_E_ALREADY_OPEN,
            format!(
                "{} is already open in this process; call raida_healing_close first",
                current.dir.display()
            ),
        ));
    }
    let config = crate::config_file::load(&dir.join("config.toml"))
        .map_err(|e| (RAIDA_HEALING_E_CONFIG, e.to_string()))?;
    let cache_pages = process().settings.cache_pages;
    let store = PageFileStore::open(dir, cache_pages).map_err(|e| {
        let code = match e {
            OpenError::Locked(_) => RAIDA_HEALING_E_LOCKED,
            OpenError::NoDataFolder(_) | OpenError::Io(..) => RAIDA_HEALING_E_DATA,
        };
        (code, e.to_string())
    })?;
    let (node, warnings) = config.node_config();
    for warning in &warnings {
        crate::log::warning(&format!("{}: {warning}", dir.display()));
    }
    crate::log::debug(&format!(
        "opened {} as RAIDA {} ({} peers with an IPv4 address, cache {cache_pages} pages)",
        dir.display(),
        node.raida_no,
        node.peers.iter().flatten().count(),
    ));
    *opened = Some(Opened {
        dir: dir.to_path_buf(),
        store,
        config: node,
    });
    Ok(())
}

/// Closes the opened folder, waiting for commands still running on it, and forgets the
/// tickets its store vouched for: a peer's claim must not list the coins of a store this
/// process no longer serves. Both happen under the write lock, so no command can issue a
/// ticket from the old store in between.
fn close_folder() {
    let mut opened = process().opened.write();
    let closed = opened.take();
    if closed.is_some() {
        process().tickets.clear();
    }
    drop(opened);
    if let Some(closed) = closed {
        crate::log::debug(&format!("closed {}", closed.dir.display()));
    }
}

/// The record of `coin` in the opened folder.
fn read_record(coin: Coin) -> Result<([u8; AN_BYTES], u8), CodedError> {
    let opened = process().opened.read();
    let opened = opened.as_ref().ok_or_else(|| {
        (
            RAIDA_HEALING_E_NOT_OPEN,
            "no folder is open; call raida_healing_open first".to_string(),
        )
    })?;
    if PageKey::of(coin).is_none() {
        return Err((
            RAIDA_HEALING_E_NO_PAGE,
            format!(
                "denomination {} serial number {} is out of range (-8..=6, 0..1024000)",
                coin.den, coin.sn
            ),
        ));
    }
    opened.store.record(coin).map_err(|problem| {
        let path = PageKey::of(coin)
            .map(|k| opened.store.page_path(k).display().to_string())
            .unwrap_or_default();
        let why = match problem {
            PageProblem::Missing => format!("no file {path}"),
            problem => format!("{path}: {problem}"),
        };
        (
            RAIDA_HEALING_E_NO_PAGE,
            format!(
                "no page holds denomination {} serial number {} ({why})",
                coin.den, coin.sn
            ),
        )
    })
}

/// The crate version, `CARGO_PKG_VERSION` as a C string.
const VERSION: &CStr =
    match CStr::from_bytes_with_nul(concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes()) {
        Ok(version) => version,
        Err(_) => panic!("the crate version holds a NUL byte"),
    };

/// The library's version, e.g. "0.1.0": a static string, never NULL, never freed (empty
/// if the library failed, a bug).
#[no_mangle]
pub extern "C" fn raida_healing_version() -> *const c_char {
    enter("raida_healing_version", || VERSION.as_ptr())
}

/// `sizeof(conn_info_t)` as this library was built: 336 on the legacy server's ABI.
/// A script or server whose own `conn_info_t` has another size must not call the
/// handlers. 0 if the library failed (a bug).
#[no_mangle]
pub extern "C" fn raida_healing_conn_info_size() -> libc::size_t {
    enter(
        "raida_healing_conn_info_size",
        std::mem::size_of::<ConnInfo>,
    )
}

/// Makes the server folder `dir` this process's coin store, config and peer list, for a
/// process with no RAIDA server (an ops script). `dir` holds `config.toml` (`raida_id`,
/// `raida_servers`; `coin_id`, `port` optional; at the top or in `[server]`) and `Data/`
/// in the legacy page-file layout. Afterwards the `cmd_*` handlers work on it: pages are
/// read on demand and cached (at most `RAIDA_HEALING_CACHE_PAGES` pages, default 1024),
/// a missing page file is a missing page (status 40), and every change a command makes is
/// on disk, never torn, before the handler returns.
///
/// Holds an advisory lock on `<dir>/Data/.raida_healing.lock` until
/// `raida_healing_close` or the process ends, so a second process cannot open the same
/// folder. Peer hosts are resolved to IPv4 here; one that does not resolve is logged and
/// gets no vote in a fix.
///
/// # Returns
/// `RAIDA_HEALING_OK` (0), or a negative `RAIDA_HEALING_E_*` code, with the reason in
/// `raida_healing_last_error()`: `E_ARGUMENT` (NULL `dir`), `E_SERVER_PRESENT` (this
/// process is a RAIDA server), `E_ALREADY_OPEN`, `E_CONFIG`, `E_DATA`, `E_LOCKED`,
/// `E_INTERNAL`.
///
/// # Safety
/// `dir` is NULL or a NUL-terminated path (any bytes; not necessarily UTF-8).
#[no_mangle]
pub unsafe extern "C" fn raida_healing_open(dir: *const c_char) -> c_int {
    const NAME: &str = "raida_healing_open";
    enter(NAME, || {
        if dir.is_null() {
            return int_result(
                NAME,
                Err((RAIDA_HEALING_E_ARGUMENT, "dir is NULL".to_string())),
            );
        }
        // SAFETY: not NULL, and NUL-terminated by the caller's contract; only read.
        let dir = unsafe { CStr::from_ptr(dir) };
        int_result(
            NAME,
            open_folder(Path::new(OsStr::from_bytes(dir.to_bytes()))),
        )
    })
}

/// Why this thread's last failing call failed: set by a negative return of
/// `raida_healing_open` / `raida_healing_read_record` / `raida_healing_config_parse` /
/// `raida_healing_check_page`, and by a `cmd_*` handler that
/// answers ERROR_INTERNAL (252) in a process with no server (no folder open, or a write
/// that did not reach the disk), and by any export that failed inside the library (a
/// caught panic: "<function> panicked (a bug in libraida_healing)"). Like `errno`, it is
/// meaningful right after such a failure; a successful `raida_healing_*` call empties it.
///
/// # Returns
/// A NUL-terminated string owned by the library, never NULL (empty when nothing failed);
/// valid until this thread's next call into the library. Do not free it.
#[no_mangle]
pub extern "C" fn raida_healing_last_error() -> *const c_char {
    enter("raida_healing_last_error", last_error_ptr)
}

/// Closes the folder `raida_healing_open` opened and releases its lock, after waiting for
/// handlers still running on it. Every change is already on disk (each command writes
/// before it answers), so nothing is lost by exiting without calling it. Does nothing when
/// no folder is open (nor after a failure inside the library, a bug: the folder may then
/// still be open). When `RAIDA_HEALING_METRICS_FILE` is set, the metrics file is written
/// once more before it returns.
#[no_mangle]
pub extern "C" fn raida_healing_close() {
    enter("raida_healing_close", || {
        close_folder();
        super::metrics::write_now();
        clear_last_error();
    })
}

/// Reads one coin's record from the opened folder, without a request and without
/// changing anything: what an operator needs to see which AN a restored store holds.
/// `an_out` receives the 16-byte AN and `mfs_out` the MFS byte (0: the serial number is
/// unused).
///
/// # Returns
/// `RAIDA_HEALING_OK`, or `E_ARGUMENT` (NULL pointer), `E_NOT_OPEN`, `E_NO_PAGE` (no page
/// file holds the coin, or it is out of range), `E_INTERNAL`; reason in
/// `raida_healing_last_error()`. Nothing is written to the outputs on failure.
///
/// # Safety
/// `an_out` is NULL or points to 16 writable bytes; `mfs_out` is NULL or points to one
/// writable byte.
#[no_mangle]
pub unsafe extern "C" fn raida_healing_read_record(
    denomination: i8,
    sn: u32,
    an_out: *mut u8,
    mfs_out: *mut u8,
) -> c_int {
    const NAME: &str = "raida_healing_read_record";
    enter(NAME, || {
        if an_out.is_null() || mfs_out.is_null() {
            let why = "an_out and mfs_out must not be NULL".to_string();
            return int_result(NAME, Err((RAIDA_HEALING_E_ARGUMENT, why)));
        }
        let record = read_record(Coin {
            den: denomination,
            sn,
        });
        if let Ok((an, mfs)) = &record {
            // SAFETY: `an_out` points to 16 writable bytes and `mfs_out` to one (the
            // caller's contract), neither overlapping `an`, a local.
            unsafe {
                std::ptr::copy_nonoverlapping(an.as_ptr(), an_out, AN_BYTES);
                *mfs_out = *mfs;
            }
        }
        int_result(NAME, record.map(|_| ()))
    })
}
