//! The validate-ticket client: asks peer RAIDAs to confirm tickets. (Being written.)

use std::time::Duration;

/// How the client treats slow peers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerOptions {
    /// One deadline for connect plus read over a whole fix.
    pub deadline: Duration,
    /// A peer silent this long gets a second connection.
    pub hedge_after: Duration,
}

impl Default for PeerOptions {
    fn default() -> Self {
        PeerOptions {
            deadline: Duration::from_secs(32),
            hedge_after: Duration::from_millis(300),
        }
    }
}

impl PeerOptions {
    /// Defaults, overridden by `RAIDA_HEALING_PEER_DEADLINE_MS` and
    /// `RAIDA_HEALING_HEDGE_MS` (milliseconds) where set to a number.
    pub fn from_env() -> PeerOptions {
        let ms = |name: &str| {
            std::env::var(name)
                .ok()
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_millis)
        };
        let defaults = PeerOptions::default();
        PeerOptions {
            deadline: ms("RAIDA_HEALING_PEER_DEADLINE_MS").unwrap_or(defaults.deadline),
            hedge_after: ms("RAIDA_HEALING_HEDGE_MS").unwrap_or(defaults.hedge_after),
        }
    }
}
