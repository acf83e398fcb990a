//! The peer client's settings: deadline, hedge and ejection thresholds, from the
//! environment (read once per process by the C boundary) or given by a caller.

use super::ejection::EjectOptions;

use std::time::Duration;

/// The longest deadline or hedge delay the environment may set (one hour).
pub(super) const MAX_SETTING_MS: u64 = 3_600_000;
/// The most failures in a row `RAIDA_HEALING_EJECT_AFTER` may ask for.
pub(super) const MAX_EJECT_AFTER: u64 = 1000;

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

impl PeerOptions {
    /// Defaults, overridden by `RAIDA_HEALING_PEER_DEADLINE_MS` (1 ..= 3 600 000),
    /// `RAIDA_HEALING_HEDGE_MS` and `RAIDA_HEALING_HEDGE_START_MS` (0 ..= 3 600 000),
    /// `RAIDA_HEALING_EJECT_COOLDOWN_MS` and `RAIDA_HEALING_EJECT_MAX_MS`
    /// (1 ..= 3 600 000) where set to a number of milliseconds, and
    /// `RAIDA_HEALING_EJECT_AFTER` (failures in a row, 0 ..= 1000; 0 never ejects);
    /// values outside those ranges are clamped, anything else is ignored; and
    /// `RAIDA_HEALING_PEER_SOURCE` (`listed` or `kernel`; anything else is ignored).
    pub fn from_env() -> PeerOptions {
        PeerOptions::from_lookup(|name| std::env::var(name).ok())
    }

    /// [`PeerOptions::from_env`] over any variable lookup (for tests).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> PeerOptions {
        let ms = |name: &str, min: u64| {
            lookup(name)
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(|v| Duration::from_millis(v.clamp(min, MAX_SETTING_MS)))
        };
        let defaults = PeerOptions::default();
        let eject = defaults.eject;
        PeerOptions {
            deadline: ms("RAIDA_HEALING_PEER_DEADLINE_MS", 1).unwrap_or(defaults.deadline),
            hedge_after: ms("RAIDA_HEALING_HEDGE_MS", 0).unwrap_or(defaults.hedge_after),
            hedge_start: ms("RAIDA_HEALING_HEDGE_START_MS", 0).unwrap_or(defaults.hedge_start),
            eject: EjectOptions {
                after: lookup("RAIDA_HEALING_EJECT_AFTER")
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .map(|v| v.min(MAX_EJECT_AFTER) as u32)
                    .unwrap_or(eject.after),
                cooldown: ms("RAIDA_HEALING_EJECT_COOLDOWN_MS", 1).unwrap_or(eject.cooldown),
                max: ms("RAIDA_HEALING_EJECT_MAX_MS", 1).unwrap_or(eject.max),
            },
            source: match lookup("RAIDA_HEALING_PEER_SOURCE").as_deref().map(str::trim) {
                Some("kernel") => SourceChoice::Kernel,
                Some("listed") => SourceChoice::Listed,
                _ => defaults.source,
            },
        }
    }
}
