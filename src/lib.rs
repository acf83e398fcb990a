//! # raida_healing
//!
//! A drop-in replacement for the legacy RAIDA server's C healing module: the server links
//! `libraida_healing` and calls `cmd_get_ticket`, `cmd_validate_ticket`, `cmd_find` and
//! `cmd_fix` with its own `conn_info_t`, exactly as it called the C module.
//!
//! ## Module map
//! - [`protocol`]: statuses, framing per encryption type, coin records, bitfields.
//! - [`commands`]: the command table and the four commands as safe functions over a
//!   [`store::CoinStore`]; `commands::fix`'s report in a module of its own.
//! - [`tickets`]: the ticket pool (bounded, expiring, atomic claims).
//! - [`claims`]: the claim gate validate_ticket asks around the pool's claim: the claim
//!   policy, the guess throttle, their log lines and counters.
//! - [`claim_auth`]: the tag a keyed RAIDA puts in a claim's challenge, and the key file.
//! - [`settings`]: every setting in one table, read once by the C boundary; core modules
//!   are given values.
//! - [`fix_gate`]: what wallets' fixes may spend of this RAIDA's standing at its peers.
//! - [`consensus`]: the vote tally of a fix (one vote per peer per coin, the threshold).
//! - [`random`]: unpredictable bytes from the OS, failing closed.
//! - [`store`]: the coin store trait, page-ordered visiting (and, with the `testing`
//!   feature, an in-memory store).
//! - [`pagefile`]: the embedded page-file store for processes with no server.
//! - [`data_dir`]: files below a server's `Data/`: no link followed, no blocking, bounded
//!   reads; the one definition of a valid page file ([`data_dir::PageProblem`]).
//! - [`audit`]: the pages of a full server folder, for an audit of `Data/`.
//! - [`config_file`]: the server folder's `config.toml` (standalone use).
//! - [`hash`]: the AN a fix derives and the MFS stamp.
//! - [`peers`]: the validate-ticket client that asks peer RAIDAs.
//! - [`log`]: log lines to the server's log or stderr.
//! - [`log_limit`]: lines remote parties can cause, a few a minute per kind.
//! - [`metrics`]: the figures for Prometheus, as plain snapshots, and their text.
//! - `ffi`: the C boundary, and the only place with `unsafe`.
//! - `testing` (the `testing` feature only): test tools shared with the test kit.
//!
//! What is process-wide (one owner, `ffi::state::Process`: the settings, the ticket pool,
//! the claim gate, the connection budget, peer history, the opened folder; and the log
//! sink), why, and how tests isolate it: docs/process-state.md.
//!
//! ## Safety terms used at the boundary
//! - *caller-owned `ci`*: a `conn_info_t *` that is NULL or valid and used by no other
//!   thread for the duration of the call; `ci->body` is NULL or holds `ci->body_size`
//!   readable bytes.
//! - *C buffer*: memory from C `malloc` that C code frees with `free()`.
//!
//! No panic crosses into C: every export runs whole inside one boundary (`ffi::entry`),
//! and after a panic a handler answers ERROR_INTERNAL (252) and any other export returns
//! the failure value of its return type (`RAIDA_HEALING_E_INTERNAL`, 0, NULL or "").

#![deny(unsafe_op_in_unsafe_fn)]

/// Declares the core modules, each `#[forbid(unsafe_code)]`: only `ffi` may use `unsafe`.
macro_rules! safe_modules {
    ($($module:ident),* $(,)?) => {
        $(
            #[forbid(unsafe_code)]
            pub mod $module;
        )*
    };
}

safe_modules!(
    audit,
    claim_auth,
    claims,
    commands,
    config_file,
    consensus,
    data_dir,
    fix_gate,
    hash,
    log,
    log_limit,
    metrics,
    pagefile,
    peers,
    protocol,
    random,
    settings,
    store,
    tickets,
);

pub mod ffi;

/// Test tools shared with the test kit (the `testing` feature only).
#[cfg(feature = "testing")]
#[forbid(unsafe_code)]
pub mod testing;
