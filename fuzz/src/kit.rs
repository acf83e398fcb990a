//! The parts of the Rust test kit (tests/kit, see its mod.rs) the fuzz harness shares with
//! the integration tests: wire builders, the safe-core server, and taking a handler's
//! output as the server does. Included by path: those files need nothing beyond `std`,
//! `libc` and `raida_healing`, which this crate already depends on.

#[path = "../../tests/kit/abi.rs"]
pub mod abi;
#[path = "../../tests/kit/node.rs"]
pub mod node;
#[path = "../../tests/kit/wire.rs"]
pub mod wire;
