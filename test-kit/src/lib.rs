//! The Rust test kit: what the integration tests (tests/*.rs), the criterion benches
//! (benches/core.rs) and the fuzz crate (fuzz/src) build requests, peers and servers with,
//! instead of private copies. Who uses what (kept true by hand; `grep -rn kit:: tests
//! benches fuzz/src`):
//!
//! - [`wire`]: request bodies (legacy, modern, claim, fix), coin listings, peer response
//!   headers and whole answers, a handler response framed as a legacy server frames it.
//!   Most tests in tests/, benches/core.rs, fuzz/src/targets.rs.
//! - [`node`]: one RAIDA server in the safe core (store, pool, claim gate, config, peer
//!   options, peer client) that runs the four commands and fix with its per-peer report.
//!   tests/{commands,claim_policy,fix_peers,peer_attacks,peer_liveness,peer_storm,
//!   random_failure,stress}.rs, benches/core.rs, fuzz/src/targets.rs.
//! - [`peers`]: loopback fake peers run by a script, a down port, a black hole, a listener
//!   that must not be contacted. tests/{fix_peers,peer_attacks,peer_liveness,
//!   random_failure,stress}.rs.
//! - [`request`]: the 55-byte request such a peer reads, and its check against the
//!   documented frame. tests/{fix_peers,peer_attacks,peer_liveness,stress}.rs,
//!   fuzz/src/peer.rs.
//! - [`folder`]: a server folder for the standalone exports. tests/{boundary,
//!   hostile_folder,standalone_close}.rs.
//! - [`abi`]: a handler's `conn_info_t` output taken as the server takes it.
//!   tests/standalone_close.rs, fuzz/src/abi.rs.
//! - [`blocking`]: a FIFO maker and a one-minute watchdog. tests/hostile_folder.rs.
//! - [`serial`]: one test at a time where the process itself is shared (the exports' one
//!   state, e.g. an opened folder) or measured (peak memory). tests/{boundary,
//!   hostile_folder,peer_attacks}.rs.
//!
//! tests/{config_nesting,floors,pool_memory,process_state}.rs use none of it. The
//! library's own unit tests use no kit item: they get the library's `testing` feature
//! (its test doubles) through this crate, which enables it, as a dev-dependency.

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
