//! The legacy server around the library, played by the fuzz binary itself.
//!
//! Each fuzz target expands [`crate::host_symbols!`], which DEFINES the server's symbols
//! (`config`, `get_page_by_sn_lock`, `unlock_page`, `update_free_pages_bitmap`, `get_mfs`)
//! in the executable; `debug`/`warning`/`error` come from host_log.c. The library's weak
//! references bind to them at link time exactly as they bind to the real server's, so
//! `cmd_*` run the whole C path: conn_info_t in, host page cache, malloc'ed output out.
//!
//! The host also watches how the library uses it: a second page lock while one is held
//! (the design holds one page at a time), an unlock of a page that is not held, a page
//! left locked after a command, and every bitmap update.

use std::cell::Cell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use raida_healing::ffi::layout::{ConfigS, PageS};
use raida_healing::protocol::Coin;
use raida_healing::store::{PageKey, RECORDS_PER_PAGE};

use crate::model;

extern "C" {
    /// Defined by [`crate::host_symbols!`] in the fuzz binary.
    static mut config: ConfigS;
    /// Defined in host_log.c.
    fn fuzz_host_log_lines() -> std::ffi::c_ulong;
}

/// One loaded page. Boxed, so its address is stable while the map grows.
struct HostPage(Box<PageS>);

// SAFETY: a page is plain data plus its own mutex; its `prev`/`next` pointers are never
// set or followed here, and its data is only touched under its mutex.
unsafe impl Send for HostPage {}

/// Pages loaded so far.
static PAGES: Mutex<Option<HashMap<PageKey, HostPage>>> = Mutex::new(None);
/// Pages locked right now, over all threads.
static LOCKED: AtomicUsize = AtomicUsize::new(0);
/// Bitmap updates (`is_free` 0) so far.
static BITMAP_USED: Mutex<Vec<Coin>> = Mutex::new(Vec::new());

thread_local! {
    /// The page this thread holds, if any.
    static HELD: Cell<*mut PageS> = const { Cell::new(std::ptr::null_mut()) };
}

/// Stops the fuzzer with a message: a broken host contract is a finding.
fn violation(what: &str) -> ! {
    eprintln!("HOST CONTRACT VIOLATION: {what}");
    std::process::abort();
}

/// Sets `config` for a network of one: this server is `raida_no`, no peer has an
/// address (so fix asks nobody and the fuzzer never touches the network).
pub fn configure(raida_no: u8, coin_id: u8) {
    // SAFETY: the fuzz binary runs one input at a time; no library call is in flight
    // while the config is written, and the library only reads it during a call.
    unsafe {
        let cfg = &mut *std::ptr::addr_of_mut!(config);
        cfg.raida_no = i32::from(raida_no);
        cfg.coin_id = coin_id;
        cfg.raida_addrs = [std::ptr::null_mut(); 25];
    }
}

/// Pages locked right now (0 between commands).
pub fn locked_pages() -> usize {
    LOCKED.load(Ordering::SeqCst)
}

/// Takes the list of coins marked used since the last call.
pub fn take_bitmap_used() -> Vec<Coin> {
    std::mem::take(&mut *BITMAP_USED.lock().expect("bitmap lock"))
}

/// Lines the library logged through the host so far.
pub fn log_lines() -> u64 {
    // SAFETY: a plain C function reading an atomic counter.
    unsafe { fuzz_host_log_lines() }
}

fn new_page(key: PageKey) -> HostPage {
    // SAFETY: every field of PageS is an integer, a byte array, a raw pointer or a
    // pthread_mutex_t, for all of which all-zero bytes are valid (a zeroed mutex is
    // PTHREAD_MUTEX_INITIALIZER on glibc).
    let mut page: Box<PageS> = unsafe { Box::new_zeroed().assume_init() };
    page.data.copy_from_slice(&model::page_data(key));
    page.denomination = key.den;
    page.no = key.page as u16;
    HostPage(page)
}

/// `get_page_by_sn_lock`: the page holding `sn`, locked, or NULL.
pub fn get_page_by_sn_lock(den: i8, sn: u32) -> *mut PageS {
    let Some(key) = PageKey::of(Coin { den, sn }).filter(|&k| model::page_exists(k)) else {
        return std::ptr::null_mut();
    };
    if !HELD.get().is_null() {
        violation(&format!(
            "page ({den}, {}) locked while this thread holds another page",
            key.page
        ));
    }
    let page: *mut PageS = {
        let mut pages = PAGES.lock().expect("pages lock");
        let page = pages
            .get_or_insert_with(HashMap::new)
            .entry(key)
            .or_insert_with(|| new_page(key));
        &mut *page.0
    };
    // SAFETY: `page` points into a Box that is never dropped or moved while the process
    // runs; its mutex was initialised by zeroing.
    let rc = unsafe { libc::pthread_mutex_lock(std::ptr::addr_of_mut!((*page).mtx)) };
    if rc != 0 {
        violation(&format!("pthread_mutex_lock failed: {rc}"));
    }
    HELD.set(page);
    LOCKED.fetch_add(1, Ordering::SeqCst);
    page
}

/// `unlock_page`: releases what `get_page_by_sn_lock` locked.
///
/// # Safety
/// `page` is NULL or a page this host handed out.
pub unsafe fn unlock_page(page: *mut PageS) {
    if page.is_null() || HELD.get() != page {
        violation("unlock_page on a page this thread does not hold");
    }
    HELD.set(std::ptr::null_mut());
    LOCKED.fetch_sub(1, Ordering::SeqCst);
    // SAFETY: the caller's contract; this thread locked it (checked above).
    let rc = unsafe { libc::pthread_mutex_unlock(std::ptr::addr_of_mut!((*page).mtx)) };
    if rc != 0 {
        violation(&format!("pthread_mutex_unlock failed: {rc}"));
    }
}

/// `update_free_pages_bitmap`: records the call; -1 for a coin the server cannot hold.
pub fn update_free_pages_bitmap(den: i8, sn: u32, is_free: i32) -> i32 {
    let coin = Coin { den, sn };
    if !model::coin_exists(coin) || !(0..=1).contains(&is_free) {
        return -1;
    }
    if is_free == 0 {
        BITMAP_USED.lock().expect("bitmap lock").push(coin);
    }
    0
}

/// The record of `coin` in the host's page cache (its page must exist).
pub fn stored_an(coin: Coin) -> [u8; 16] {
    let page = get_page_by_sn_lock(coin.den, coin.sn);
    assert!(!page.is_null(), "stored_an of a coin without a page");
    let at = (coin.sn % RECORDS_PER_PAGE) as usize * 17;
    // SAFETY: locked by us just above; the page lives for the process.
    let an = unsafe { (&(*page).data)[at..at + 16].try_into().expect("16 bytes") };
    // SAFETY: locked by this thread just above.
    unsafe { unlock_page(page) };
    an
}

/// Defines the server's symbols in the fuzz binary (see the module docs). Expand once,
/// at the top level of each fuzz target.
#[macro_export]
macro_rules! host_symbols {
    () => {
        /// The server's global configuration.
        #[no_mangle]
        pub static mut config: raida_healing::ffi::layout::ConfigS =
            // SAFETY: ConfigS holds integers, byte arrays and raw pointers only; all zero
            // is a valid value of each.
            unsafe { ::std::mem::MaybeUninit::zeroed().assume_init() };

        /// The server's page lookup.
        #[no_mangle]
        pub extern "C" fn get_page_by_sn_lock(
            den: i8,
            sn: u32,
        ) -> *mut raida_healing::ffi::layout::PageS {
            $crate::host::get_page_by_sn_lock(den, sn)
        }

        /// The server's page unlock.
        ///
        /// # Safety
        /// `page` came from `get_page_by_sn_lock` on this thread.
        #[no_mangle]
        pub unsafe extern "C" fn unlock_page(page: *mut raida_healing::ffi::layout::PageS) {
            // SAFETY: forwarded contract.
            unsafe { $crate::host::unlock_page(page) }
        }

        /// The server's free-serial bitmap.
        #[no_mangle]
        pub extern "C" fn update_free_pages_bitmap(den: i8, sn: u32, is_free: i32) -> i32 {
            $crate::host::update_free_pages_bitmap(den, sn, is_free)
        }

        /// The server's MFS stamp.
        #[no_mangle]
        pub extern "C" fn get_mfs() -> u8 {
            $crate::model::MFS
        }
    };
}
