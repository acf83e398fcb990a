//! The C side of a handler call: what the server does with `conn_info_t`'s output after a
//! handler returns. `std`, `libc` and `raida_healing` only, so the fuzz crate can include
//! this file on its own.

use raida_healing::ffi::layout::ConnInfo;

/// Takes the handler's output out of `ci`: a copy of its `output_size` bytes (empty when
/// `output` is NULL), the malloc'ed buffer freed and `output` set to NULL.
pub fn take_output(ci: &mut ConnInfo) -> Vec<u8> {
    if ci.output.is_null() {
        return Vec::new();
    }
    // SAFETY: the handler set `output` to a malloc'ed buffer of `output_size` bytes.
    let copy = unsafe { std::slice::from_raw_parts(ci.output, ci.output_size as usize) }.to_vec();
    // SAFETY: the buffer came from C malloc (the contract); the server frees it so, once.
    unsafe { libc::free(ci.output.cast()) };
    ci.output = std::ptr::null_mut();
    copy
}
