//! What the library publishes for Prometheus: a [`Snapshot`] of every figure the process
//! keeps, in plain structs, and its rendering in the Prometheus text format
//! ([`render`]). The figures themselves stay with the parts that keep them (the ticket
//! pool its counts, the peer table its per-peer figures, [`stats`] what the C boundary
//! and fix see); the process's state owner collects a snapshot from them when a text is
//! wanted (the metrics file's writer, `raida_healing_metrics_text`). Nothing here is
//! process-wide: every type is a value its owner holds.
//!
//! docs/metrics.md lists every metric (a test checks the table against [`render`]).

pub mod file;
pub mod render;
pub mod stats;

pub use render::{render, Histogram};
pub use stats::{CommandStats, FixStats};

/// Everything one rendering of the metrics shows, collected at one moment.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    /// This server's RAIDA index (the `raida` label of every series); `None` when the
    /// process has no server and no folder open ("unknown").
    pub raida: Option<u8>,
    /// The library's version (`raida_healing_build_info`).
    pub version: String,
    /// When the library was first used in this process, in seconds since the Unix epoch.
    pub start_time_seconds: f64,
    /// What the C boundary saw: commands, durations, panics, failed page writes.
    pub boundary: stats::BoundaryFigures,
    /// What fixes did: coins, votes per coin, per-peer outcomes.
    pub fix: stats::FixFigures,
    /// Every peer the process has asked, by RAIDA index.
    pub peers: Vec<PeerFigures>,
    /// The process-wide peer connection budget.
    pub connections: ConnectionFigures,
    /// The ticket pool.
    pub pool: PoolFigures,
    /// Claims (validate_ticket) by result and transport.
    pub claims: Vec<ClaimCount>,
    /// With a claim key: claims by what their tag proved (`result`: `verified`,
    /// `unverified`, `bad_tag`) and transport.
    pub claim_tags: Vec<ClaimCount>,
    /// Sources the guess throttle tracks, by transport, and its bound per transport
    /// (`None`: not collected, no samples).
    pub throttle: Option<ThrottleFigures>,
    /// Log lines a remote party caused that the per-kind limit held back, by kind (the
    /// claim gate's and the fix gate's together).
    pub suppressed_log_lines: Vec<(&'static str, u64)>,
    /// Writes of the metrics file that failed.
    pub file_write_failures: u64,
}

/// One peer (a RAIDA index) as the peer table knows it.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct PeerFigures {
    /// Its RAIDA index.
    pub peer: u8,
    pub answers: u64,
    pub failures: u64,
    pub timeouts: u64,
    pub hedges: u64,
    pub ejections: u64,
    pub probes: u64,
    pub ejected: bool,
    pub consecutive_failures: u32,
    /// While ejected, seconds until its next probe may start (0 otherwise).
    pub next_probe_seconds: f64,
    /// Typical answer time (EWMA), seconds; 0 before the first answer.
    pub typical_answer_seconds: f64,
    /// High answer time (typical + 4 x spread), seconds; 0 before the first answer.
    pub high_answer_seconds: f64,
}

/// The peer connection budget.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConnectionFigures {
    /// Connections held now.
    pub in_use: u64,
    /// The most the process holds at once.
    pub limit: u64,
    /// Times a call found a peer's share full and queued for a slot.
    pub waits: u64,
}

/// The ticket pool.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolFigures {
    /// Live tickets.
    pub tickets: u64,
    /// Coins listed by live tickets.
    pub coins: u64,
    /// Capacity units in use (a coin is one, each ticket adds its charge).
    pub units: u64,
    /// Capacity units the pool holds at most.
    pub units_limit: u64,
    /// The heap the pool may take at most, in bytes.
    pub memory_bound_bytes: u64,
    /// Tickets issued, expired, and refused because the pool was full (`None`: the pool
    /// does not count them).
    pub issued: Option<u64>,
    pub expired: Option<u64>,
    pub refused_full: Option<u64>,
}

/// Claims with one result over one transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClaimCount {
    /// `granted`, `already_claimed`, `no_such_ticket`, `refused_by_policy`, `throttled`.
    pub result: &'static str,
    /// `tcp`, `udp`, or `unknown` (the server did not say).
    pub transport: &'static str,
    pub count: u64,
}

/// The guess throttle's table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ThrottleFigures {
    /// Sources tracked over TCP and over UDP.
    pub tcp_sources: u64,
    pub udp_sources: u64,
    /// Sources tracked at most, per transport.
    pub limit: u64,
    /// Sources cut off now over TCP and over UDP (the shared overflow allowance as one).
    pub tcp_cut_off: u64,
    pub udp_cut_off: u64,
}
