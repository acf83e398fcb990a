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

/// Copies `items` into a fresh `malloc` array of `T` (a C struct). `None` when `items` is
/// empty or when `malloc` fails; the caller tells the two apart by `items.len()`.
pub fn malloc_array<T: Copy>(items: &[T]) -> Option<std::ptr::NonNull<T>> {
    const {
        assert!(std::mem::align_of::<T>() <= std::mem::align_of::<libc::max_align_t>());
    }
    if items.is_empty() || std::mem::size_of::<T>() == 0 {
        return None;
    }
    let bytes = std::mem::size_of_val(items);
    // SAFETY: malloc with a non-zero size has no preconditions; NULL is handled below.
    let buf = unsafe { libc::malloc(bytes) }.cast::<T>();
    let buf = std::ptr::NonNull::new(buf)?;
    // SAFETY: `buf` is a fresh allocation of `bytes` bytes, aligned for any C type (so for
    // `T`, checked above), that cannot overlap `items`.
    unsafe { std::ptr::copy_nonoverlapping(items.as_ptr(), buf.as_ptr(), items.len()) };
    Some(buf)
}
