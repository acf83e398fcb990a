//! The base every export shares for saying what went wrong: the `RAIDA_HEALING_*` return
//! codes, this thread's last error, the integer result of an export, and the writers of
//! the message buffers a caller hands in. Imports nothing else from `ffi`.

use std::cell::RefCell;
use std::ffi::{c_char, c_int, CString};

/// `raida_healing_open` etc.: success.
pub const RAIDA_HEALING_OK: c_int = 0;
/// A required pointer argument was NULL.
pub const RAIDA_HEALING_E_ARGUMENT: c_int = -1;
/// This process is a RAIDA server (its symbols are linked in): its own store is used and
/// a second one is never opened.
pub const RAIDA_HEALING_E_SERVER_PRESENT: c_int = -2;
/// A folder is already open in this process; call `raida_healing_close` first.
pub const RAIDA_HEALING_E_ALREADY_OPEN: c_int = -3;
/// `<dir>/config.toml` is missing, unreadable or invalid (last_error names the line).
pub const RAIDA_HEALING_E_CONFIG: c_int = -4;
/// `<dir>/Data` is missing, or its lock file cannot be created.
pub const RAIDA_HEALING_E_DATA: c_int = -5;
/// Another process has this folder open (advisory lock on `Data/.raida_healing.lock`).
pub const RAIDA_HEALING_E_LOCKED: c_int = -6;
/// No folder is open (`raida_healing_read_record` before `raida_healing_open`).
pub const RAIDA_HEALING_E_NOT_OPEN: c_int = -7;
/// The coin's page does not exist (the handlers' status 40 case), or the denomination or
/// serial number is out of range.
pub const RAIDA_HEALING_E_NO_PAGE: c_int = -8;
/// The library itself failed (a caught panic); last_error says where.
pub const RAIDA_HEALING_E_INTERNAL: c_int = -9;

/// A failed export's code and the reason, for [`int_result`].
pub(super) type CodedError = (c_int, String);

thread_local! {
    /// Why this thread's last failing call failed (empty: no failure recorded).
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

/// Records `message` as this thread's last error.
pub(super) fn set_last_error(message: &str) {
    let message = CString::new(message.replace('\0', " ")).unwrap_or_default();
    let _ = LAST_ERROR.try_with(|e| *e.borrow_mut() = message);
}

/// Empties this thread's last error (a successful call).
pub(super) fn clear_last_error() {
    let _ = LAST_ERROR.try_with(|e| *e.borrow_mut() = CString::default());
}

/// This thread's last error as a C string owned by the library (empty when nothing failed),
/// valid until this thread's next call into the library.
pub(super) fn last_error_ptr() -> *const c_char {
    LAST_ERROR
        .try_with(|e| e.borrow().as_ptr())
        .unwrap_or(c"".as_ptr())
}

/// The return code of an int-returning export: its error becomes the code and this
/// thread's last error; success empties the last error.
pub(super) fn int_result(name: &str, result: Result<(), CodedError>) -> c_int {
    match result {
        Ok(()) => {
            clear_last_error();
            RAIDA_HEALING_OK
        }
        Err((code, why)) => {
            crate::log::debug(&format!("{name}: {why}"));
            set_last_error(&why);
            code
        }
    }
}

/// The last error after `export` panicked; also what an export that reports errors into a
/// caller's buffer leaves there in that case.
pub(super) fn panicked_message(export: &str) -> String {
    format!("{export} panicked (a bug in libraida_healing)")
}

/// A caller's output buffer (`ptr`, `len`) as a byte slice; empty when `ptr` is NULL.
///
/// # Safety
/// `ptr` is NULL or points to `len` writable bytes that nothing else reads or writes while
/// the slice lives.
pub(super) unsafe fn caller_buffer<'a>(ptr: *mut c_char, len: libc::size_t) -> &'a mut [u8] {
    if ptr.is_null() {
        return &mut [];
    }
    // SAFETY: the caller's contract.
    unsafe { std::slice::from_raw_parts_mut(ptr.cast::<u8>(), len) }
}

/// A caller's message buffer (`ptr`, `len`, may be NULL) for the export named `export`,
/// already holding the message of a panic: the export replaces it, so it stays only if the
/// export's body panics (the boundary then returns `RAIDA_HEALING_E_INTERNAL`).
///
/// # Safety
/// As for [`caller_buffer`].
pub(super) unsafe fn message_buffer<'a>(
    ptr: *mut c_char,
    len: libc::size_t,
    export: &str,
) -> &'a mut [u8] {
    // SAFETY: the caller's contract.
    let buffer = unsafe { caller_buffer(ptr, len) };
    write_err(buffer, &panicked_message(export));
    buffer
}

/// Copies `message` into `err` (at most `err_len` bytes, always NUL-terminated, cut at a
/// character boundary).
pub(super) fn write_err(err: &mut [u8], message: &str) {
    let Some(room) = err.len().checked_sub(1) else {
        return;
    };
    let mut n = message.len().min(room);
    while !message.is_char_boundary(n) {
        n -= 1;
    }
    err[..n].copy_from_slice(&message.as_bytes()[..n]);
    err[n] = 0;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn err_is_cut_at_a_character_boundary_and_terminated() {
        let mut buf = [0xffu8; 6];
        write_err(&mut buf, "ab\u{e9}cdef");
        assert_eq!(&buf, b"ab\xc3\xa9c\0");
        let mut buf = [0xffu8; 4];
        write_err(&mut buf, "ab\u{e9}");
        assert_eq!(&buf, b"ab\0\xff");
        write_err(&mut [], "nothing to write into");
    }
}
