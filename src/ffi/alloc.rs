//! Buffers handed to C, allocated with C `malloc` because C code frees them.

/// Copies `bytes` into a fresh `malloc` buffer. `None` when `bytes` is empty (no buffer
/// is needed) or when `malloc` fails; the caller tells the two apart by `bytes.len()`.
pub fn malloc_copy(bytes: &[u8]) -> Option<std::ptr::NonNull<u8>> {
    if bytes.is_empty() {
        return None;
    }
    // SAFETY: malloc with a non-zero size has no preconditions; NULL is handled below.
    let buf = unsafe { libc::malloc(bytes.len()) }.cast::<u8>();
    let buf = std::ptr::NonNull::new(buf)?;
    // SAFETY: `buf` is a fresh allocation of `bytes.len()` bytes that cannot overlap
    // `bytes`.
    unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), buf.as_ptr(), bytes.len()) };
    Some(buf)
}
