//! The legacy server's own symbols, bound weakly.
//!
//! Each host symbol is referenced from a pointer-sized slot emitted with `global_asm!`
//! and marked `.weak`: where the server (or a test harness) defines the symbol, the
//! dynamic linker fills the slot with its address; where it is absent (Python's ctypes,
//! any process with no server), the slot holds 0 and the library still loads under
//! `RTLD_NOW`. Slots are read as `Option<fn>` / possibly-null pointers, so the null test
//! is on loaded data and cannot be folded away (rust-lang/rust#139128).

use std::ffi::{c_char, c_int, CString};
use std::net::{Ipv4Addr, SocketAddrV4};

use crate::commands::NodeConfig;
use crate::log::Level;
use crate::protocol::TOTAL_RAIDA_SERVERS;
use crate::store::{CoinStore, PageKey, PageRecords};

use super::layout::{ConfigS, PageS};

macro_rules! weak_slots {
    ($($slot:literal => $sym:literal),* $(,)?) => {
        core::arch::global_asm!(
            ".pushsection .data.rel.ro.raida_healing_host,\"aw\",@progbits",
            ".balign 8",
            $(
                concat!(".globl ", $slot),
                concat!(".hidden ", $slot),
                concat!(".weak ", $sym),
                concat!($slot, ":"),
                concat!(".quad ", $sym),
            )*
            ".popsection",
        );
    };
}

weak_slots! {
    "raida_healing_slot_get_page_by_sn_lock" => "get_page_by_sn_lock",
    "raida_healing_slot_unlock_page" => "unlock_page",
    "raida_healing_slot_update_free_pages_bitmap" => "update_free_pages_bitmap",
    "raida_healing_slot_get_mfs" => "get_mfs",
    "raida_healing_slot_debug" => "debug",
    "raida_healing_slot_warning" => "warning",
    "raida_healing_slot_error" => "error",
    "raida_healing_slot_config" => "config",
}

type GetPageFn = unsafe extern "C" fn(den: i8, sn: u32) -> *mut PageS;
type UnlockPageFn = unsafe extern "C" fn(page: *mut PageS);
type UpdateBitmapFn = unsafe extern "C" fn(den: i8, sn: u32, is_free: c_int) -> c_int;
type GetMfsFn = unsafe extern "C" fn() -> u8;
type LogFn = unsafe extern "C" fn(fmt: *const c_char, ...);

extern "C" {
    static raida_healing_slot_get_page_by_sn_lock: Option<GetPageFn>;
    static raida_healing_slot_unlock_page: Option<UnlockPageFn>;
    static raida_healing_slot_update_free_pages_bitmap: Option<UpdateBitmapFn>;
    static raida_healing_slot_get_mfs: Option<GetMfsFn>;
    static raida_healing_slot_debug: Option<LogFn>;
    static raida_healing_slot_warning: Option<LogFn>;
    static raida_healing_slot_error: Option<LogFn>;
    static raida_healing_slot_config: *mut ConfigS;
}

/// The server's functions and globals, when this process is a server.
#[derive(Clone, Copy)]
pub struct Host {
    get_page: GetPageFn,
    unlock_page: UnlockPageFn,
    update_bitmap: Option<UpdateBitmapFn>,
    get_mfs: Option<GetMfsFn>,
    config: *const ConfigS,
}

// SAFETY: `Host` only holds addresses of the server's functions and of its global
// `config`, which live as long as the process and which the server itself uses from all
// its worker threads.
unsafe impl Send for Host {}
// SAFETY: as above; `Host` is never used to mutate `config`.
unsafe impl Sync for Host {}

impl Host {
    /// The host, if the page cache functions and `config` are all present. Only then are
    /// `debug`/`warning`/`error` trusted to be the server's: in a process without a
    /// server, a weak `error` would bind to glibc's `error(3)`, a different function.
    pub fn get() -> Option<Host> {
        // SAFETY: the slots are initialised by the dynamic linker before any code of this
        // library runs, and are never written afterwards (they sit in RELRO).
        let (get_page, unlock_page, update_bitmap, get_mfs, config) = unsafe {
            (
                raida_healing_slot_get_page_by_sn_lock,
                raida_healing_slot_unlock_page,
                raida_healing_slot_update_free_pages_bitmap,
                raida_healing_slot_get_mfs,
                raida_healing_slot_config,
            )
        };
        if config.is_null() {
            return None;
        }
        Some(Host {
            get_page: get_page?,
            unlock_page: unlock_page?,
            update_bitmap,
            get_mfs,
            config,
        })
    }

    /// True when some but not all of the required server symbols are present: a
    /// miswired build that should be reported, not silently run standalone.
    pub fn partially_present() -> bool {
        // SAFETY: as in `get`.
        let present = unsafe {
            [
                raida_healing_slot_get_page_by_sn_lock.is_some(),
                raida_healing_slot_unlock_page.is_some(),
                !raida_healing_slot_config.is_null(),
            ]
        };
        present.iter().any(|&p| p) && !present.iter().all(|&p| p)
    }

    /// This server's index and its peers' addresses, read from `config`.
    pub fn node_config(&self) -> Result<NodeConfig, String> {
        // SAFETY: `config` is the server's global, initialised before it serves requests
        // and not changed while it does; we only read it.
        let config = unsafe { &*self.config };
        let raida_no = u8::try_from(config.raida_no)
            .ok()
            .filter(|&n| usize::from(n) < TOTAL_RAIDA_SERVERS)
            .ok_or_else(|| format!("config.raida_no is {}, not 0..24", config.raida_no))?;
        let mut peers = [None; TOTAL_RAIDA_SERVERS];
        for (peer, &addr) in peers.iter_mut().zip(config.raida_addrs.iter()) {
            *peer = sockaddr_v4(addr);
        }
        Ok(NodeConfig { raida_no, peers })
    }
}

/// Sends the library's log lines to the server's log from the first call into the library
/// on (`entry::enter` calls this first for every export), so that even a first call with a NULL argument is
/// logged where the operator looks. Without a server, lines stay on stderr.
pub fn route_log_to_host() {
    static LOG_TO_HOST: std::sync::Once = std::sync::Once::new();
    if Host::get().is_some() {
        LOG_TO_HOST.call_once(|| crate::log::set_sink(Some(host_log)));
    }
}

/// Reads an IPv4 `sockaddr_in` the server resolved; `None` for NULL or another family.
fn sockaddr_v4(addr: *const libc::sockaddr) -> Option<SocketAddrV4> {
    if addr.is_null() {
        return None;
    }
    // SAFETY: the server stores in `raida_addrs` pointers to `sockaddr_in` structures
    // it allocated at start-up; we read the family first and only then the rest.
    unsafe {
        if c_int::from((*addr).sa_family) != libc::AF_INET {
            return None;
        }
        let sin = &*(addr as *const libc::sockaddr_in);
        Some(SocketAddrV4::new(
            Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr)),
            u16::from_be(sin.sin_port),
        ))
    }
}

/// The object (executable or library) that contains `addr`, by its load base.
fn object_base(addr: *const libc::c_void) -> Option<usize> {
    let mut info = std::mem::MaybeUninit::<libc::Dl_info>::zeroed();
    // SAFETY: dladdr only reads the loader's tables and fills `info`.
    let found = unsafe { libc::dladdr(addr, info.as_mut_ptr()) };
    // SAFETY: dladdr filled `info` when it returned non-zero; zeroed otherwise.
    (found != 0).then(|| unsafe { info.assume_init() }.dli_fbase as usize)
}

/// The log function for `level`, trusted only when it lives in the same object as the
/// server's page cache: glibc exports its own `error(3)` with another signature, and a
/// weak `error` binds to it wherever the server does not export one.
fn host_log_fn(level: Level) -> Option<LogFn> {
    static SERVER_BASE: std::sync::OnceLock<Option<usize>> = std::sync::OnceLock::new();
    // SAFETY: as in `Host::get`.
    let (get_page, f) = unsafe {
        (
            raida_healing_slot_get_page_by_sn_lock,
            match level {
                Level::Error => raida_healing_slot_error,
                Level::Warning => raida_healing_slot_warning,
                Level::Debug => raida_healing_slot_debug,
            },
        )
    };
    let server = *SERVER_BASE.get_or_init(|| object_base(get_page? as *const libc::c_void));
    let f = f?;
    (server.is_some() && object_base(f as *const libc::c_void) == server).then_some(f)
}

/// Sends one line to the server's `debug`, `warning` or `error`; lines the server has no
/// function for go where they go without a server (stderr, by `RAIDA_HEALING_LOG`).
fn host_log(level: Level, line: &str) {
    let Some(f) = host_log_fn(level) else {
        crate::log::to_stderr(level, line);
        return;
    };
    let line = CString::new(line.replace('\0', " ")).unwrap_or_default();
    let time =
        CString::new(crate::log::utc_timestamp(std::time::SystemTime::now())).unwrap_or_default();
    // SAFETY: the server's log functions are printf-like; "%s" with two NUL-terminated
    // strings is a valid call, and no `%` in either is interpreted.
    unsafe {
        f(
            c"%s raida_healing: %s".as_ptr(),
            time.as_ptr(),
            line.as_ptr(),
        )
    };
}

/// The server's page cache as a [`CoinStore`].
pub struct HostStore {
    host: Host,
}

impl HostStore {
    pub fn new(host: Host) -> HostStore {
        HostStore { host }
    }
}

/// Unlocks a page when dropped, so a panic inside a command never leaves it locked.
struct PageLock {
    page: *mut PageS,
    unlock: UnlockPageFn,
}

impl Drop for PageLock {
    fn drop(&mut self) {
        // SAFETY: `page` was returned locked by `get_page_by_sn_lock` and is unlocked
        // exactly once, here.
        unsafe { (self.unlock)(self.page) };
    }
}

impl HostStore {
    /// Finishes the writes a visit made, still under the page lock: marks the page dirty
    /// for the server's flusher and each rewritten serial number used. Only fix writes,
    /// so this is kept out of the inlined read path.
    #[cold]
    #[inline(never)]
    fn finish_writes(&self, is_dirty: &mut c_int, key: PageKey, written: &[usize]) {
        *is_dirty = 1;
        let Some(update) = self.host.update_bitmap else {
            return;
        };
        for &slot in written {
            let sn = key.first_sn() + slot as u32;
            // SAFETY: a plain call into the server with in-range arguments.
            if unsafe { update(key.den, sn, 0) } != 0 {
                crate::log::error(&format!(
                    "update_free_pages_bitmap({}, {sn}, 0) failed",
                    key.den
                ));
            }
        }
    }
}

impl CoinStore for HostStore {
    #[inline]
    fn with_page<R>(&self, key: PageKey, f: impl FnOnce(&mut PageRecords<'_>) -> R) -> Option<R> {
        // SAFETY: the server's page lookup takes any denomination and serial number and
        // returns NULL for those it does not hold.
        let page = unsafe { (self.host.get_page)(key.den, key.first_sn()) };
        if page.is_null() {
            return None;
        }
        let lock = PageLock {
            page,
            unlock: self.host.unlock_page,
        };
        // SAFETY: the page is locked by us until `lock` drops, so nothing else reads or
        // writes its data meanwhile; only `data` is borrowed (other threads may be
        // waiting on the page's mutex), and the borrow ends before the unlock.
        let data = unsafe { &mut (*page).data };
        let mut records = PageRecords::of_page(data);
        let result = f(&mut records);
        if !records.written_records().is_empty() {
            // SAFETY: still under the page lock, which the flusher takes to read
            // `is_dirty`; a field apart from `data`.
            let is_dirty = unsafe { &mut (*page).is_dirty };
            self.finish_writes(is_dirty, key, records.written_records());
        }
        drop(lock);
        Some(result)
    }

    fn mfs(&self) -> u8 {
        match self.host.get_mfs {
            // SAFETY: `get_mfs` takes no arguments and only reads the clock.
            Some(get_mfs) => unsafe { get_mfs() },
            None => crate::hash::mfs_now(),
        }
    }
}
