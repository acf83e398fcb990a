//! The process-wide peer connection budget, shared fairly.
//!
//! The module lives in a server it does not own, under that server's descriptor limit
//! (often 1,024). Every peer socket any call opens holds one [`Permit`], so however many
//! fixes and jobs run at once, the module never holds more than [`limit`] peer
//! connections.
//!
//! # Fairness
//!
//! Two rules keep any set of fixes from starving another of its connections:
//!
//! - **A per-peer share (a bulkhead).** Connections to one RAIDA index never take more
//!   than [`peer_share`] = `max(1, limit / 25)` slots (10 of the default 256). With a
//!   budget of at least 25 the shares of all 25 indices fit in it, so connections stuck
//!   on silent peers can only fill those peers' shares: a live peer's share is always
//!   there for the fixes that ask it, however many fixes wait on silent ones.
//! - **Arrival order within a share.** A call that finds a peer's share full takes a
//!   [`Place`] in that peer's queue; a free slot of the share goes only to one of the
//!   oldest waiters (with `k` slots free, the `k` oldest), never to a newcomer. So a fix
//!   waits for a peer's slot at most for the connections ahead of it in that queue.
//!
//! First connections may use the whole budget and the whole share; a hedge (a second
//! connection to a slow peer) takes neither the part of the budget kept by
//! [`hedge_reserve`] nor a slot a first connection is queued for, so when slots run
//! short hedges are the first thing not opened.
//!
//! A waiter is not woken when a slot comes back (there is no descriptor to wake it
//! with, and the module starts no thread): it looks again after a short wait (the
//! readiness loop in `peers/poll_loop.rs`). Its place in the queue is kept meanwhile.

use std::collections::VecDeque;
use std::sync::LazyLock;

use parking_lot::Mutex;

use crate::protocol::TOTAL_RAIDA_SERVERS;

/// Peer connections the process may hold at once unless the environment says otherwise.
pub const DEFAULT_MAX_PEER_CONNECTIONS: usize = 256;
/// The range `RAIDA_HEALING_MAX_PEER_CONNECTIONS` is clamped to.
const MIN_LIMIT: usize = 1;
const MAX_LIMIT: usize = 65_536;
/// Queues kept: one per possible RAIDA index byte.
const INDICES: usize = 256;

static LIMIT: LazyLock<usize> = LazyLock::new(|| {
    limit_from(
        std::env::var("RAIDA_HEALING_MAX_PEER_CONNECTIONS")
            .ok()
            .as_deref(),
    )
});

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

/// The share of a budget of `limit` that one RAIDA index may hold: `max(1, limit / 25)`.
pub fn share_of(limit: usize) -> usize {
    (limit / TOTAL_RAIDA_SERVERS).max(1)
}

/// The most connections this process holds at once to one RAIDA index.
pub fn peer_share() -> usize {
    share_of(limit())
}

/// Connections a hedge may not take: the last quarter of the budget (at least one slot) is
/// kept for first connections, so with a budget of 1 to 3 hedges never take the last slot.
pub fn hedge_reserve() -> usize {
    limit().div_ceil(4)
}

/// Slots held and places queued, process-wide and per RAIDA index.
struct Slots {
    held: usize,
    peers: [PeerSlots; INDICES],
    next_ticket: u64,
    /// First connections that found no slot and queued (for the metrics).
    waits: u64,
}

struct PeerSlots {
    held: usize,
    /// Tickets of the calls waiting for this peer's share, oldest first.
    waiting: VecDeque<u64>,
}

static SLOTS: Mutex<Slots> = Mutex::new(Slots {
    held: 0,
    peers: [const {
        PeerSlots {
            held: 0,
            waiting: VecDeque::new(),
        }
    }; INDICES],
    next_ticket: 0,
    waits: 0,
});

/// Peer connections held right now, by every call in the process.
pub fn in_use() -> usize {
    SLOTS.lock().held
}

/// First connections that found their peer's share or the budget full and waited for a
/// slot, since the process started.
pub fn waits() -> u64 {
    SLOTS.lock().waits
}

/// Peer connections held right now to RAIDA index `raida`.
pub fn in_use_for(raida: u8) -> usize {
    SLOTS.lock().peers[usize::from(raida)].held
}

/// Calls queued right now for a slot of RAIDA index `raida`'s share.
pub fn waiting_for(raida: u8) -> usize {
    SLOTS.lock().peers[usize::from(raida)].waiting.len()
}

/// The right to hold one connection to one peer; given back when dropped.
#[derive(Debug)]
pub struct Permit {
    raida: u8,
}

/// A call's place in the queue for one peer's share: its first connection to that peer
/// gets a slot in arrival order. Leaves the queue when granted or dropped.
#[derive(Debug)]
pub struct Place {
    raida: u8,
    ticket: u64,
}

impl Place {
    /// Joins the back of RAIDA index `raida`'s queue.
    pub fn join(raida: u8) -> Place {
        let mut slots = SLOTS.lock();
        let ticket = slots.next_ticket;
        slots.next_ticket += 1;
        slots.peers[usize::from(raida)].waiting.push_back(ticket);
        Place { raida, ticket }
    }

    /// A permit for the first connection when this place is among the oldest waiters
    /// that the free slots of the peer's share can serve and the budget has a slot;
    /// otherwise the place is kept and `Err` gives it back to try again later.
    pub fn take(self) -> Result<Permit, Place> {
        let limit = limit();
        let share = share_of(limit);
        let mut slots = SLOTS.lock();
        let held = slots.held;
        let peer = &mut slots.peers[usize::from(self.raida)];
        let ahead = peer
            .waiting
            .iter()
            .position(|&t| t == self.ticket)
            .unwrap_or(0);
        if held >= limit || peer.held + ahead >= share {
            return Err(self);
        }
        peer.waiting.retain(|&t| t != self.ticket);
        peer.held += 1;
        slots.held += 1;
        let raida = self.raida;
        // Already out of the queue: nothing for Drop to do.
        std::mem::forget(self);
        Ok(Permit { raida })
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        let ticket = self.ticket;
        SLOTS.lock().peers[usize::from(self.raida)]
            .waiting
            .retain(|&t| t != ticket);
    }
}

impl Permit {
    /// A permit for a first connection to RAIDA index `raida` when nobody is queued for
    /// its share, the share has a slot and the budget too; else `Err` with a place at the
    /// back of the queue.
    pub fn first(raida: u8) -> Result<Permit, Place> {
        Place::join(raida).take().inspect_err(|_| SLOTS.lock().waits += 1)
    }

    /// A permit for a hedge to RAIDA index `raida`, or `None` when fewer than
    /// [`hedge_reserve`] + 1 budget slots are free, or the peer's share has no slot that
    /// no first connection is queued for.
    pub fn hedge(raida: u8) -> Option<Permit> {
        let ceiling = limit() - hedge_reserve();
        let share = peer_share();
        let mut slots = SLOTS.lock();
        let held = slots.held;
        let peer = &mut slots.peers[usize::from(raida)];
        if held >= ceiling || peer.held + peer.waiting.len() >= share {
            return None;
        }
        peer.held += 1;
        slots.held += 1;
        Some(Permit { raida })
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut slots = SLOTS.lock();
        slots.held -= 1;
        slots.peers[usize::from(self.raida)].held -= 1;
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

    #[test]
    fn shares_of_all_25_indices_fit_in_a_budget_of_25_or_more() {
        assert_eq!(share_of(256), 10);
        assert_eq!(share_of(25), 1);
        assert_eq!(share_of(24), 1);
        assert_eq!(share_of(1), 1);
        for limit in 25..2000 {
            assert!(share_of(limit) * TOTAL_RAIDA_SERVERS <= limit, "{limit}");
        }
    }

    /// The only test in this binary that holds permits (no other unit test opens a peer
    /// connection), so the counts are exact. The limit is the environment's (256 unset).
    #[test]
    fn shares_queues_hedges_and_the_budget() {
        let (limit, reserve, share) = (limit(), hedge_reserve(), peer_share());
        assert_eq!((reserve, in_use()), (limit.div_ceil(4), 0));

        // One peer: its share and no more, then arrival order among waiters.
        let mut held: Vec<Permit> = (0..share).map(|_| Permit::first(3).unwrap()).collect();
        assert_eq!(in_use_for(3), share);
        let older = Permit::first(3).unwrap_err();
        let younger = Permit::first(3).unwrap_err();
        assert_eq!(waiting_for(3), 2);
        // No hedge takes a slot a first connection waits for.
        held.pop();
        assert!(Permit::hedge(3).is_none());
        // One slot free: the younger waiter may not take it, the older may.
        let younger = younger.take().unwrap_err();
        held.push(older.take().unwrap());
        assert_eq!(waiting_for(3), 1);
        // A waiter that gives up leaves the queue; a newcomer then finds it empty.
        drop(younger);
        assert_eq!(waiting_for(3), 0);
        held.pop();
        held.push(Permit::first(3).unwrap());
        // Another peer's share is untouched by this one's.
        held.push(Permit::first(4).unwrap());
        drop(held);
        assert_eq!((in_use(), in_use_for(3), in_use_for(4)), (0, 0, 0));

        // The whole budget: hedges stop a quarter before first connections.
        let mut held = Vec::new();
        let mut raida = 0u8;
        while held.len() < limit - reserve {
            match Permit::hedge(raida) {
                Some(p) => held.push(p),
                None => raida += 1,
            }
        }
        let hedges_to = raida;
        assert!(Permit::hedge(hedges_to + 1).is_none());
        while held.len() < limit {
            match Permit::first(raida) {
                Ok(p) => held.push(p),
                Err(_) => raida = raida.wrapping_add(1),
            }
        }
        assert_eq!(in_use(), limit);
        let waiter = Permit::first(raida.wrapping_add(1)).unwrap_err();
        assert!(Permit::hedge(raida.wrapping_add(1)).is_none());
        drop(held.pop());
        assert!(waiter.take().is_ok());
        drop(held);
        assert_eq!(in_use(), 0);
    }
}
