//! The Rust test kit: everything the integration tests (tests/*.rs), the benches
//! (benches/core.rs) and the fuzz crate (fuzz/src) build requests, peers and servers
//! with. Every Rust test uses it instead of a private copy.
//!
//! - [`wire`]: request bodies (legacy, modern, claim, fix), coin listings, peer response
//!   headers and whole answers, a handler response framed as a legacy server frames it;
//! - [`node`]: one RAIDA server in the safe core (store, pool, config, peer options) that
//!   runs the four commands and fix with its per-peer report;
//! - [`peers`]: loopback fake peers run by a script, a down port, a black hole, a
//!   listener that must not be contacted;
//! - [`folder`]: a server folder for the standalone exports; [`blocking`]: a FIFO maker and
//!   a one-minute watchdog; [`abi`]: a handler's `conn_info_t` output taken as the server
//!   takes it;
//! - [`serial`]: one network or process-wide test at a time.
//!
//! A shared module, not a dev-only crate: tests pull it in with `mod kit;`, benches with
//! `#[path = "../tests/kit/mod.rs"] mod kit;`, and the fuzz crate includes `wire.rs`,
//! `node.rs` and `abi.rs` by path. A crate would need its own entry in Cargo.lock (CI
//! builds `--locked`) and in fuzz/Cargo.lock (the fuzz crate is a separate cargo project),
//! and its dependencies (socket2, rustix) added to the fuzz crate that has no use for
//! them; the files the fuzz crate includes use only what it already depends on. Each file
//! allows dead code: every test binary compiles the whole kit and uses a part of it.
#![allow(dead_code)]

pub mod abi;
pub mod blocking;
pub mod folder;
pub mod node;
pub mod peers;
pub mod wire;

use std::sync::{Mutex, MutexGuard};

/// Takes this test binary's turn: tests that measure the whole process (its peer
/// connections, its peak memory) or use process-wide state run one at a time.
pub fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}
