//! The peer client's options: deadline, hedge and ejection thresholds, given by the
//! caller (the process's come from its settings, `src/settings.rs`).

use super::ejection::EjectOptions;

use std::time::Duration;

/// The longest deadline a call plans for (one hour, the most the settings allow).
pub(super) const MAX_SETTING_MS: u64 = 3_600_000;

/// How the client treats slow peers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerOptions {
    /// One deadline for connect plus read over a whole fix (or one job).
    pub deadline: Duration,
    /// The hedge floor: no peer gets a second connection (a hedge) before this much
    /// silence; a value at or past the deadline disables hedging.
    pub hedge_after: Duration,
    /// The silence before a hedge for a peer this process has never had an answer from
    /// (at least `hedge_after`); peers with history follow the rule in [`health`].
    pub hedge_start: Duration,
    /// When a peer is ejected and for how long ([`ejection`]).
    pub eject: EjectOptions,
    /// Where peer connections leave from ([`source`](super::source)).
    pub source: SourceChoice,
}

/// Where this server's peer connections leave from (`RAIDA_HEALING_PEER_SOURCE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SourceChoice {
    /// Bound to this server's listed address (`config.raida_addrs[raida_no]`) when that is
    /// one of the host's addresses, so peers under the `listed` claim policy see the
    /// address they list for it (`listed`, the default).
    #[default]
    Listed,
    /// Left to the kernel's route (`kernel`).
    Kernel,
}

impl Default for PeerOptions {
    fn default() -> Self {
        PeerOptions {
            deadline: Duration::from_secs(32),
            hedge_after: Duration::from_millis(300),
            hedge_start: Duration::from_millis(1000),
            eject: EjectOptions::default(),
            source: SourceChoice::Listed,
        }
    }
}
