//! The Rust test kit: everything the integration tests (tests/*.rs), the benches
//! (benches/core.rs) and the fuzz crate (fuzz/src) build requests, peers and servers
//! with. Every Rust test uses it instead of a private copy.
//!
//! - [`wire`]: request bodies (legacy, modern, claim, fix), coin listings, peer response
//!   headers and whole answers, a handler response framed as a legacy server frames it;
//! - [`node`]: one RAIDA server in the safe core (store, pool, claim gate, config, peer
//!   options, peer client) that runs the four commands and fix with its per-peer report;
//! - [`peers`]: loopback fake peers run by a script, a down port, a black hole, a
//!   listener that must not be contacted; [`request`]: the 55-byte request such a peer
//!   reads, and its check against the documented frame;
//! - [`folder`]: a server folder for the standalone exports; [`blocking`]: a FIFO maker and
//!   a one-minute watchdog; [`abi`]: a handler's `conn_info_t` output taken as the server
//!   takes it;
//! - [`serial`]: one test at a time where the process itself is shared (the exports' one
//!   state, e.g. an opened folder) or measured (peak memory).
//!
//! A workspace crate (test-kit/) that the tests, the lib's unit tests, the benches and the
//! fuzz crate depend on; it enables the library's `testing` feature (its test doubles).

pub mod abi;
pub mod folder;
pub mod node;
pub mod peers;
pub mod request;
pub mod wire;

pub use raida_healing::testing::blocking;

use std::sync::{Mutex, MutexGuard};

/// Takes this test binary's turn: tests that measure the whole process (its peak memory)
/// or use the exports' process state (an opened folder) run one at a time. A test of the
/// safe core needs no turn: its `node::Server` owns its own state.
pub fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}
