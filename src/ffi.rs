//! The C boundary: the only module with `unsafe`. Its modules import one way, from the
//! base up (no module imports one above it):
//!
//! - base: [`layout`] (`#[repr(C)]` mirrors of the server's structs, offsets checked at
//!   compile time), [`constants`] (numbers for the header), [`error`] (return codes, this
//!   thread's last error, integer results, caller buffers), [`alloc`] (response buffers
//!   from C `malloc`, which the server `free()`s);
//! - [`host`]: the server's functions and `config`, bound weakly, and a coin store over
//!   its page cache;
//! - `state`: the process-wide ticket pool, peer options and opened folder;
//! - `client_addr`: the client's address from a `conn_info_t` (validate_ticket);
//! - `entry`: the boundary every export runs through, whole: log routing, panic boundary,
//!   fallback value by return type, last error on panic;
//! - the exports: [`exports`] (the `cmd_*` handlers, one per row of the command table),
//!   [`job`] (`send_validate_ticket_job`), [`audit`] (`raida_healing_check_page`),
//!   [`config`] (`raida_healing_config_parse`), [`health`]
//!   (`raida_healing_peer_health`), [`metrics`] (`raida_healing_metrics_text` and the
//!   metrics file's writer thread), [`standalone`] (open a server folder's page files
//!   where no server runs, for ops scripts);
//! - `symbol_versions`: each export's version node (raida_healing.map, via build.rs).

pub mod alloc;
pub mod audit;
mod client_addr;
pub mod config;
pub mod constants;
mod entry;
pub mod error;
pub mod exports;
pub mod health;
pub mod host;
pub mod job;
pub mod layout;
pub mod metrics;
pub mod standalone;
mod state;
mod symbol_versions;

#[cfg(feature = "testing")]
pub use entry::testing;
