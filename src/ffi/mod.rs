//! The C boundary: the only module with `unsafe`.
//!
//! - [`layout`]: `#[repr(C)]` mirrors of the server's structs, offsets checked at compile time.
//! - [`host`]: the server's functions and `config`, bound weakly, and a coin store over
//!   its page cache.
//! - [`alloc`]: response buffers from C `malloc`, which the server `free()`s.
//! - [`exports`]: one thin `extern "C"` function per exported symbol.

pub mod alloc;
pub mod constants;
pub mod exports;
pub mod host;
pub mod layout;
