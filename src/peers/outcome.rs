//! What became of each peer of a call, and the caller's side of the answers: the
//! [`Collector`] that decides when the outcome is settled.

use std::fmt;
use std::io;

use super::wire::{AnswerError, Target};
use crate::protocol::Coin;

/// What became of one peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerOutcome {
    /// A valid 250 answer listing `listed` coins (repeats included).
    Voted { listed: usize },
    /// The peer is this server: never asked.
    ThisServer,
    /// The request carries ticket 0 for it: never asked.
    NoTicket,
    /// The server's config has no IPv4 address for it: never asked.
    NoAddress,
    /// The connection could not be made (refused, unreachable, ...).
    Refused(io::ErrorKind),
    /// It answered a well-formed status other than 250 (43, 44, ...).
    Declined(u8),
    /// No complete answer before the deadline.
    TimedOut,
    /// Its answer broke the protocol.
    Invalid(AnswerError),
    /// Every coin was decided before it answered (or before it had to be asked).
    Unneeded,
    /// This server could not ask it (no descriptor, no port, no route, poll failed).
    LocalError(LocalCause),
    /// The process-wide connection budget (`RAIDA_HEALING_MAX_PEER_CONNECTIONS`) had no
    /// free slot for it before the deadline: never asked, no vote.
    NoConnection,
    /// Ejected: it failed or stayed silent on its last attempts, so it is not asked
    /// (no vote) until its next probe ([`ejection`]).
    Ejected,
}

impl PeerOutcome {
    /// Its name as a metric label, one per column of the fix summary (docs/metrics.md).
    pub fn label(&self) -> &'static str {
        match self {
            PeerOutcome::Voted { .. } => "voted",
            PeerOutcome::ThisServer => "this_server",
            PeerOutcome::NoTicket => "no_ticket",
            PeerOutcome::NoAddress => "no_address",
            PeerOutcome::Refused(_) => "refused",
            PeerOutcome::Declined(_) => "declined",
            PeerOutcome::TimedOut => "timed_out",
            PeerOutcome::Invalid(_) => "invalid",
            PeerOutcome::Unneeded => "unneeded",
            PeerOutcome::LocalError(_) => "local_error",
            PeerOutcome::NoConnection => "no_connection",
            PeerOutcome::Ejected => "ejected",
        }
    }
}

impl fmt::Display for PeerOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PeerOutcome::Voted { listed } => write!(f, "voted ({listed} coins listed)"),
            PeerOutcome::ThisServer => write!(f, "this server"),
            PeerOutcome::NoTicket => write!(f, "no ticket"),
            PeerOutcome::NoAddress => write!(f, "no IPv4 address in config"),
            PeerOutcome::Refused(kind) => write!(f, "refused: {kind}"),
            PeerOutcome::Declined(status) => write!(f, "declined: status {status}"),
            PeerOutcome::TimedOut => write!(f, "timed out"),
            PeerOutcome::Invalid(why) => write!(f, "invalid answer: {why}"),
            PeerOutcome::Unneeded => write!(f, "unneeded (decided without it)"),
            PeerOutcome::LocalError(cause) => write!(f, "local error: {cause}"),
            PeerOutcome::NoConnection => {
                write!(f, "no connection slot free before the deadline")
            }
            PeerOutcome::Ejected => write!(f, "ejected (not asked until its next probe)"),
        }
    }
}

/// Why this host could not ask a peer: the trouble is here, not at the peer (it never
/// counts towards ejecting the peer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LocalCause {
    /// A system call (socket, bind, connect, poll) failed with this `errno`: EMFILE or
    /// ENFILE (no descriptor), EADDRNOTAVAIL or EADDRINUSE (no port), ENETUNREACH (no
    /// route), ENOBUFS or ENOMEM.
    Os(i32),
    /// A failure the system gave no `errno` for.
    Other(io::ErrorKind),
    /// The OS gave no random bytes for a challenge.
    NoRandomness,
}

impl LocalCause {
    /// The cause of `error`, by its `errno` when it has one.
    pub fn of(error: &io::Error) -> LocalCause {
        error
            .raw_os_error()
            .map_or(LocalCause::Other(error.kind()), LocalCause::Os)
    }
}

impl fmt::Display for LocalCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LocalCause::Os(errno) => write!(f, "{}", io::Error::from_raw_os_error(*errno)),
            LocalCause::Other(kind) => write!(f, "{kind}"),
            LocalCause::NoRandomness => write!(f, "no random bytes for a challenge"),
        }
    }
}

/// One asked peer's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerReport {
    pub target: Target,
    pub outcome: PeerOutcome,
    /// A second connection was opened because the first stayed silent.
    pub hedged: bool,
    /// How the second connection ended when it did not vote: `Unneeded` when it was
    /// closed because the peer had answered on its first (`None`: no hedge, it voted, or
    /// it was still open at the end).
    pub hedge_outcome: Option<PeerOutcome>,
}

/// What the caller does with answers while peers are asked.
pub trait Collector {
    /// Peer `raida` answered validly, listing `coins`. Called at most once per peer.
    fn answer(&mut self, raida: u8, coins: &[Coin]);
    /// True once nothing `pending` more peers could say would change the outcome.
    fn is_decided(&self, pending: usize) -> bool;
}
