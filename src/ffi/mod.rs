//! The C boundary: the only module with `unsafe`.
//!
//! - [`layout`]: `#[repr(C)]` mirrors of the server's structs, offsets checked at compile time.
//! - [`host`]: the server's functions and `config`, bound weakly, and a coin store over
//!   its page cache.
//! - [`alloc`]: response buffers from C `malloc`, which the server `free()`s.
//! - [`entry`]: the boundary every export runs its body through: log routing, panic
//!   boundary, last error on panic.
//! - [`client_addr`]: the client's address from a `conn_info_t` (validate_ticket).
//! - [`exports`]: one thin `extern "C"` function per exported symbol.
//! - [`job`]: `send_validate_ticket_job`, the legacy one-peer validate-ticket job.
//! - [`audit`]: `raida_healing_check_page`, the store's page rule for auditing tools.
//! - [`config`]: `raida_healing_config_parse`, the config reader for C programs.
//! - [`health`]: per-peer answer figures for operators (`raida_healing_peer_health`).
//! - [`standalone`]: open a server folder's page files where no server runs (ops scripts).

pub mod alloc;
pub mod audit;
mod client_addr;
pub mod config;
pub mod constants;
mod entry;
pub mod exports;
pub mod health;
pub mod host;
pub mod job;
pub mod layout;
pub mod standalone;
