//! The one way into the library from C. Every `#[no_mangle]` export is nothing but a call of
//! [`enter`] (an export that returns a value) or [`enter_handler`] (a `cmd_*` handler, which
//! answers through `conn_info_t`) around its body; the whole export runs inside, write-back
//! included. The boundary does the three things an export must never forget:
//!
//! 1. route the library's log lines to the server's log (before anything can be logged,
//!    so even a first call with a NULL argument is logged where the operator looks);
//! 2. stop a panic at the boundary: unwinding into C is undefined behaviour;
//! 3. after a panic, log it, record it as this thread's last error, and return the
//!    export's documented failure value: for a value, the one its type's [`PanicFallback`]
//!    names (as rustls-ffi's `PanicOrDefault` does); for a handler, status 252 in `ci`.
//!
//! tests/boundary.rs makes every export panic after its body (the `testing` feature's
//! [`testing::PanicAfterBody`]) and checks its fallback, against the header's list of
//! functions, so an export that bypasses the boundary or is left out of the test fails it.

use std::ffi::{c_char, c_int, c_void};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr::NonNull;

use crate::protocol::Status;

use super::error::{panicked_message, set_last_error, RAIDA_HEALING_E_INTERNAL};
use super::layout::ConnInfo;

/// What an export of this return type answers when its body panicked.
pub(super) trait PanicFallback {
    /// The failure value.
    fn on_panic() -> Self;
    /// The consequence, for the log line "`<export>` panicked; `<consequence>`".
    const CONSEQUENCE: &'static str;
}

impl PanicFallback for c_int {
    fn on_panic() -> c_int {
        RAIDA_HEALING_E_INTERNAL
    }
    const CONSEQUENCE: &'static str = "returning RAIDA_HEALING_E_INTERNAL";
}

impl PanicFallback for () {
    fn on_panic() {}
    const CONSEQUENCE: &'static str = "returning";
}

impl PanicFallback for usize {
    fn on_panic() -> usize {
        0
    }
    const CONSEQUENCE: &'static str = "returning 0";
}

impl PanicFallback for *const c_char {
    fn on_panic() -> *const c_char {
        c"".as_ptr()
    }
    const CONSEQUENCE: &'static str = "returning an empty string";
}

impl PanicFallback for *mut c_void {
    fn on_panic() -> *mut c_void {
        std::ptr::null_mut()
    }
    const CONSEQUENCE: &'static str = "returning NULL";
}

/// Runs `body`, the whole work of the export named `export`, inside the boundary: log
/// routing, then `body`; if either panics, the panic is logged and recorded as the
/// thread's last error ("`<export>` panicked (a bug in libraida_healing)"), and
/// `R::on_panic()` is returned instead.
pub(super) fn enter<R: PanicFallback>(export: &'static str, body: impl FnOnce() -> R) -> R {
    guarded(export, R::CONSEQUENCE, body).unwrap_or_else(|| R::on_panic())
}

/// Runs a `cmd_*` handler's whole `body` (reading `ci`, the command, writing the answer
/// back) inside the boundary. After a panic `ci` (if not NULL) holds ERROR_INTERNAL with
/// no body: `output` NULL and `output_size` 0 (a buffer already handed over is not freed:
/// a leak at worst, never a double free).
///
/// # Safety
/// `ci` is NULL or points to a `conn_info_t` that the caller owns exclusively for the call
/// (and that `body` is done with once it returns or unwinds).
pub(super) unsafe fn enter_handler(export: &'static str, ci: *mut ConnInfo, body: impl FnOnce()) {
    if guarded(export, "answering ERROR_INTERNAL", body).is_some() {
        return;
    }
    if let Some(mut ci) = NonNull::new(ci) {
        // SAFETY: the caller's contract; `body`, which also used `ci`, has unwound.
        let ci = unsafe { ci.as_mut() };
        ci.output = std::ptr::null_mut();
        ci.output_size = 0;
        ci.command_status = Status::Internal.code();
    }
}

/// The boundary itself: `None` when `body` (or the log routing) panicked, which is then
/// logged with `consequence` and recorded as the thread's last error.
fn guarded<R>(export: &'static str, consequence: &str, body: impl FnOnce() -> R) -> Option<R> {
    // AssertUnwindSafe: after a panic, the caught value is dropped and only the fallback
    // is returned; state the body half-changed is guarded by the stores themselves (a
    // page lock or session is released by its guard's Drop during the unwind).
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        super::host::route_log_to_host();
        // The settings are read (and the stderr log level set) at the first call.
        super::state::process();
        let value = body();
        #[cfg(feature = "testing")]
        testing::panic_if_asked(export);
        value
    }));
    match outcome {
        Ok(value) => Some(value),
        Err(_) => {
            // Counted for the metrics; the state itself may be what panicked (its first
            // making), so the count is caught too.
            let _ = catch_unwind(|| super::state::process().command_stats.panicked(export));
            crate::log::error(&format!("{export} panicked; {consequence}"));
            set_last_error(&panicked_message(export));
            None
        }
    }
}

/// Forcing an export to panic, so a test can prove that every export's fallback holds.
#[cfg(feature = "testing")]
pub mod testing {
    use std::cell::Cell;

    thread_local! {
        /// The export that panics on this thread after its body, if any.
        static PANIC_AFTER_BODY: Cell<Option<&'static str>> = const { Cell::new(None) };
    }

    /// While this lives, the export named `export`, called on this thread, panics right
    /// after its body (write-back included) has run, inside the boundary.
    #[must_use = "the export panics only while the guard lives"]
    pub struct PanicAfterBody(());

    impl PanicAfterBody {
        /// Makes `export` panic on this thread until the guard is dropped.
        pub fn start(export: &'static str) -> PanicAfterBody {
            PANIC_AFTER_BODY.with(|p| p.set(Some(export)));
            PanicAfterBody(())
        }
    }

    impl Drop for PanicAfterBody {
        fn drop(&mut self) {
            PANIC_AFTER_BODY.with(|p| p.set(None));
        }
    }

    /// Panics when this thread asked `export` to.
    pub(super) fn panic_if_asked(export: &str) {
        if PANIC_AFTER_BODY.with(Cell::get) == Some(export) {
            panic!("{export}: panic forced by a test");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The source files of src/ffi, read at test time so a new file is covered too.
    fn ffi_sources() -> Vec<(String, String)> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/ffi");
        let mut files: Vec<(String, String)> = std::fs::read_dir(&dir)
            .expect("src/ffi is readable")
            .map(|entry| entry.expect("directory entry").path())
            .filter(|path| path.extension().is_some_and(|e| e == "rs"))
            .map(|path| {
                let text = std::fs::read_to_string(&path).expect("source is readable");
                (
                    path.file_name().unwrap().to_string_lossy().into_owned(),
                    text,
                )
            })
            .collect();
        files.sort();
        files
    }

    #[test]
    fn the_boundary_and_the_log_routing_live_only_here() {
        for (file, text) in ffi_sources() {
            if file == "entry.rs" {
                continue;
            }
            for forbidden in ["catch_unwind", "route_log_to_host();"] {
                assert!(
                    !text.contains(forbidden),
                    "src/ffi/{file} uses {forbidden}; exports go through entry::enter"
                );
            }
        }
    }

    #[test]
    fn a_panic_returns_the_fallback_and_sets_the_last_error() {
        let got = enter("test_export", || -> c_int { panic!("test panic") });
        assert_eq!(got, RAIDA_HEALING_E_INTERNAL);
        // SAFETY: last_error_ptr returns a NUL-terminated string, valid until this
        // thread's next call into the library.
        let last = unsafe { std::ffi::CStr::from_ptr(super::super::error::last_error_ptr()) };
        assert_eq!(
            last.to_str().unwrap(),
            "test_export panicked (a bug in libraida_healing)"
        );
    }

    #[test]
    fn without_a_panic_the_body_value_is_returned() {
        assert_eq!(enter("test_export", || 7usize), 7);
    }
}
