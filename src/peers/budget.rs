//! The process-wide peer connection budget.
//!
//! The module lives in a server it does not own, under that server's descriptor limit
//! (often 1,024). Every peer socket any call opens holds one [`Permit`] from a single
//! counter, so however many fixes and jobs run at once, the module never holds more than
//! [`limit`] peer connections. First connections may use the whole budget; a hedge (a
//! second connection to a slow peer) only the part above [`hedge_reserve`], so when the
//! budget runs short hedges are the first thing not opened.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::LazyLock;

/// Peer connections the process may hold at once unless the environment says otherwise.
pub const DEFAULT_MAX_PEER_CONNECTIONS: usize = 256;
/// The range `RAIDA_HEALING_MAX_PEER_CONNECTIONS` is clamped to.
const MIN_LIMIT: usize = 1;
const MAX_LIMIT: usize = 65_536;

static LIMIT: LazyLock<usize> = LazyLock::new(|| {
    limit_from(
        std::env::var("RAIDA_HEALING_MAX_PEER_CONNECTIONS")
            .ok()
            .as_deref(),
    )
});
static IN_USE: AtomicUsize = AtomicUsize::new(0);

/// The limit for a value of `RAIDA_HEALING_MAX_PEER_CONNECTIONS`: a number is clamped to
/// 1 ..= 65 536, anything else (or nothing) gives the default.
pub fn limit_from(value: Option<&str>) -> usize {
    value
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(|v| {
            usize::try_from(v)
                .unwrap_or(MAX_LIMIT)
                .clamp(MIN_LIMIT, MAX_LIMIT)
        })
        .unwrap_or(DEFAULT_MAX_PEER_CONNECTIONS)
}

/// The most peer connections this process holds at once.
pub fn limit() -> usize {
    *LIMIT
}

/// Connections a hedge may not take: the last quarter of the budget (at least one slot) is
/// kept for first connections, so with a budget of 1 to 3 hedges never take the last slot.
pub fn hedge_reserve() -> usize {
    limit().div_ceil(4)
}

/// Peer connections held right now, by every call in the process.
pub fn in_use() -> usize {
    IN_USE.load(Ordering::Relaxed)
}

/// The right to hold one peer connection; given back when dropped.
#[derive(Debug)]
pub struct Permit(());

impl Permit {
    /// A permit for a first connection, or `None` when the whole budget is taken.
    pub fn first() -> Option<Permit> {
        Permit::take(limit())
    }

    /// A permit for a hedge, or `None` when fewer than [`hedge_reserve`] + 1 are free.
    pub fn hedge() -> Option<Permit> {
        Permit::take(limit() - hedge_reserve())
    }

    fn take(ceiling: usize) -> Option<Permit> {
        IN_USE
            .fetch_update(Ordering::AcqRel, Ordering::Relaxed, |held| {
                (held < ceiling).then_some(held + 1)
            })
            .ok()
            .map(|_| Permit(()))
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        IN_USE.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_from_the_environment() {
        assert_eq!(limit_from(None), 256);
        assert_eq!(limit_from(Some(" 64 ")), 64);
        assert_eq!(limit_from(Some("0")), 1);
        assert_eq!(limit_from(Some("99999999999")), 65_536);
        assert_eq!(limit_from(Some("many")), 256);
    }

    /// The only test in this binary that holds permits (no other unit test opens a peer
    /// connection), so the counts are exact. The limit is the environment's (256 unset).
    #[test]
    fn hedges_stop_a_quarter_before_first_connections_and_permits_come_back() {
        let (limit, reserve) = (limit(), hedge_reserve());
        assert_eq!((reserve, in_use()), (limit.div_ceil(4), 0));
        let mut held = Vec::new();
        while let Some(permit) = Permit::hedge() {
            held.push(permit);
        }
        assert_eq!(held.len(), limit - reserve);
        while let Some(permit) = Permit::first() {
            held.push(permit);
        }
        assert_eq!((held.len(), in_use()), (limit, limit));
        assert!(Permit::first().is_none() && Permit::hedge().is_none());
        // Free slots, but not more than the reserve: first connections only.
        held.truncate(limit - reserve);
        assert!(Permit::hedge().is_none());
        assert!(reserve == 0 || Permit::first().is_some());
        held.truncate(limit - reserve - 1);
        let hedge = Permit::hedge();
        assert!(hedge.is_some());
        drop((hedge, held));
        assert_eq!(in_use(), 0);
    }
}
