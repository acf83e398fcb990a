//! The peer connection budget, shared fairly.
//!
//! The module lives in a server it does not own, under that server's descriptor limit
//! (often 1,024). Every peer socket any call opens holds one [`Permit`] of the process's
//! one [`Budget`] (held by the state owner, `src/ffi/state.rs`, and passed to every call
//! through [`PeerClient`](super::PeerClient)), so however many fixes and jobs run at once,
//! the module never holds more than [`Budget::limit`] peer connections.
//!
//! # Fairness
//!
//! Two rules keep any set of fixes from starving another of its connections:
//!
//! - **A per-peer share (a bulkhead).** Connections to one RAIDA index never take more
//!   than [`Budget::peer_share`] = `max(1, limit / 25)` slots (10 of the default 256). With a
//!   budget of at least 25 the shares of all 25 indices fit in it, so connections stuck
//!   on silent peers can only fill those peers' shares: a live peer's share is always
//!   there for the fixes that ask it, however many fixes wait on silent ones.
//! - **Turns by client within a share.** A call that finds a peer's share full takes a
//!   [`Place`] in that peer's queue, in the name of the client whose fix it serves
//!   (`ci->ip`: an IPv4 address or an IPv6 /64; calls without one form one client). Free
//!   slots go in rounds: each waiting client's oldest place first, the client served least
//!   recently first, then each one's second place, and so on (with `k` slots free, the
//!   first `k` in that order), never to a newcomer ahead of them. So one client's volume
//!   cannot multiply another's wait: a client with one fix waiting waits at most one turn
//!   of every other waiting client, however many fixes they queue.
//!
//! First connections may use the whole budget and the whole share; a hedge (a second
//! connection to a slow peer) takes neither the part of the budget kept by
//! [`Budget::hedge_reserve`] nor a slot a first connection is queued for, so when slots run
//! short hedges are the first thing not opened.
//!
//! A waiter is not woken when a slot comes back (there is no descriptor to wake it
//! with, and the module starts no thread): it looks again after a short wait (the
//! readiness loop in `peers/poll_loop.rs`). Its place in the queue is kept meanwhile.

use std::collections::VecDeque;
use std::sync::Arc;

use parking_lot::Mutex;

use crate::protocol::TOTAL_RAIDA_SERVERS;

/// Whose turn a place is taken in: the client of the fix, as a number that tells clients
/// apart (fix gives `claims::SourceKey::id` of `ci->ip`: an IPv4 address or an IPv6 /64);
/// `None`: a call with no client, such as the server's job or a test; all of those form
/// one client.
pub type Waiter = Option<u128>;

/// Peer connections the process may hold at once unless its settings say otherwise.
pub(crate) const DEFAULT_MAX_PEER_CONNECTIONS: usize = 256;
/// Queues kept: one per possible RAIDA index byte.
const INDICES: usize = 256;

/// The share of a budget of `limit` that one RAIDA index may hold: `max(1, limit / 25)`.
pub(crate) fn share_of(limit: usize) -> usize {
    (limit / TOTAL_RAIDA_SERVERS).max(1)
}

/// Slots held and places queued, in all and per RAIDA index.
struct Slots {
    held: usize,
    peers: [PeerSlots; INDICES],
    next_ticket: u64,
    /// First connections that found no slot and queued (for the metrics).
    waits: u64,
}

struct PeerSlots {
    held: usize,
    /// The calls waiting for this peer's share (ticket, client), oldest first.
    waiting: VecDeque<(u64, Waiter)>,
    /// Clients with places waiting, and the grant that last served each (0: none yet).
    served: Vec<(Waiter, u64)>,
    /// Grants so far (the clock of `served`).
    grants: u64,
}

impl PeerSlots {
    const EMPTY: PeerSlots = PeerSlots {
        held: 0,
        waiting: VecDeque::new(),
        served: Vec::new(),
        grants: 0,
    };

    /// How many places come before `ticket` in the order slots are handed out: rounds
    /// over the waiting clients (least recently served first, then first arrival), each
    /// client's places oldest first.
    fn turns_ahead(&self, ticket: u64) -> usize {
        turns_ahead(&self.waiting, &self.served, ticket)
    }

    /// Takes `ticket` out of the queue as granted.
    fn grant(&mut self, ticket: u64) {
        let Some(at) = self.waiting.iter().position(|&(t, _)| t == ticket) else {
            return;
        };
        let (_, waiter) = self.waiting.remove(at).expect("found above");
        self.grants += 1;
        let grants = self.grants;
        match self.served.iter_mut().find(|(w, _)| *w == waiter) {
            Some(entry) => entry.1 = grants,
            None => self.served.push((waiter, grants)),
        }
        self.forget_gone_clients();
    }

    /// Takes `ticket` out of the queue without a grant (the call gave up).
    fn leave(&mut self, ticket: u64) {
        self.waiting.retain(|&(t, _)| t != ticket);
        self.forget_gone_clients();
    }

    /// A client with nothing waiting is forgotten: its next place starts a round afresh,
    /// which favours the clients that queue least.
    fn forget_gone_clients(&mut self) {
        let waiting = &self.waiting;
        self.served
            .retain(|(w, _)| waiting.iter().any(|(_, waiter)| waiter == w));
    }
}

/// [`PeerSlots::turns_ahead`] over a queue and its clients' last grants.
fn turns_ahead(waiting: &VecDeque<(u64, Waiter)>, served: &[(Waiter, u64)], ticket: u64) -> usize {
    let Some(at) = waiting.iter().position(|&(t, _)| t == ticket) else {
        return 0;
    };
    let mine = waiting[at].1;
    let last_served = |w: Waiter| {
        served
            .iter()
            .find(|(s, _)| *s == w)
            .map_or(0, |&(_, grant)| grant)
    };
    // Each waiting client once: its places, and its turn within a round.
    let mut clients: Vec<(Waiter, usize, (u64, usize))> = Vec::new();
    for (arrival, &(_, w)) in waiting.iter().enumerate() {
        match clients.iter_mut().find(|(c, _, _)| *c == w) {
            Some(client) => client.1 += 1,
            None => clients.push((w, 1, (last_served(w), arrival))),
        }
    }
    let own_earlier = waiting.iter().take(at).filter(|&&(_, w)| w == mine).count();
    let my_turn = clients
        .iter()
        .find(|(c, _, _)| *c == mine)
        .map(|&(_, _, turn)| turn)
        .expect("the place's own client waits");
    own_earlier
        + clients
            .iter()
            .filter(|(c, _, _)| *c != mine)
            .map(|&(_, places, turn)| {
                places.min(own_earlier) + usize::from(places > own_earlier && turn < my_turn)
            })
            .sum::<usize>()
}

/// What a budget and every permit and place taken from it share.
struct Shared {
    limit: usize,
    slots: Mutex<Slots>,
}

/// One connection budget: the state owner (`src/ffi/state.rs`) holds the process's one,
/// a test may build its own. Clones share the same count.
#[derive(Clone)]
pub struct Budget {
    shared: Arc<Shared>,
    /// Whose turn this handle's places take ([`Budget::serving`]).
    waiter: Waiter,
}

impl Default for Budget {
    /// A budget of [`DEFAULT_MAX_PEER_CONNECTIONS`].
    fn default() -> Self {
        Budget::new(DEFAULT_MAX_PEER_CONNECTIONS)
    }
}

impl Budget {
    /// A budget of `limit` connections (at least one).
    pub fn new(limit: usize) -> Budget {
        Budget {
            shared: Arc::new(Shared {
                limit: limit.max(1),
                slots: Mutex::new(Slots {
                    held: 0,
                    peers: [PeerSlots::EMPTY; INDICES],
                    next_ticket: 0,
                    waits: 0,
                }),
            }),
            waiter: None,
        }
    }

    /// The same budget, for calls that serve `waiter`'s fix: their places take that
    /// client's turns.
    pub fn serving(&self, waiter: Waiter) -> Budget {
        Budget {
            shared: Arc::clone(&self.shared),
            waiter,
        }
    }

    /// The most peer connections held at once.
    pub fn limit(&self) -> usize {
        self.shared.limit
    }

    /// The most connections held at once to one RAIDA index.
    pub fn peer_share(&self) -> usize {
        share_of(self.limit())
    }

    /// Connections a hedge may not take: the last quarter of the budget (at least one
    /// slot) is kept for first connections, so with a budget of 1 to 3 hedges never take
    /// the last slot.
    pub fn hedge_reserve(&self) -> usize {
        self.limit().div_ceil(4)
    }

    /// Peer connections held right now, by every call using this budget.
    pub fn in_use(&self) -> usize {
        self.shared.slots.lock().held
    }

    /// Peer connections held right now to RAIDA index `raida`.
    pub fn in_use_for(&self, raida: u8) -> usize {
        self.shared.slots.lock().peers[usize::from(raida)].held
    }

    /// Calls queued right now for a slot of RAIDA index `raida`'s share.
    pub fn waiting_for(&self, raida: u8) -> usize {
        self.shared.slots.lock().peers[usize::from(raida)]
            .waiting
            .len()
    }

    /// Joins RAIDA index `raida`'s queue in the name of this handle's client.
    pub fn join(&self, raida: u8) -> Place {
        let mut slots = self.shared.slots.lock();
        let ticket = slots.next_ticket;
        slots.next_ticket += 1;
        slots.peers[usize::from(raida)]
            .waiting
            .push_back((ticket, self.waiter));
        Place {
            shared: Arc::clone(&self.shared),
            raida,
            ticket,
            queued: true,
        }
    }

    /// A permit for a first connection to RAIDA index `raida` when nobody is queued for
    /// its share, the share has a slot and the budget too; else `Err` with a place at the
    /// back of the queue.
    pub fn first(&self, raida: u8) -> Result<Permit, Place> {
        self.join(raida)
            .take()
            .inspect_err(|_| self.shared.slots.lock().waits += 1)
    }

    /// First connections that found their peer's share or the budget full and waited for
    /// a slot, since the budget was made.
    pub fn waits(&self) -> u64 {
        self.shared.slots.lock().waits
    }

    /// A permit for a hedge to RAIDA index `raida`, or `None` when fewer than
    /// [`hedge_reserve`](Self::hedge_reserve) + 1 budget slots are free, or the peer's
    /// share has no slot that no first connection is queued for.
    pub fn hedge(&self, raida: u8) -> Option<Permit> {
        let ceiling = self.limit() - self.hedge_reserve();
        let share = self.peer_share();
        let mut slots = self.shared.slots.lock();
        let held = slots.held;
        let peer = &mut slots.peers[usize::from(raida)];
        if held >= ceiling || peer.held + peer.waiting.len() >= share {
            return None;
        }
        peer.held += 1;
        slots.held += 1;
        Some(Permit {
            shared: Arc::clone(&self.shared),
            raida,
        })
    }
}

/// The right to hold one connection to one peer; given back when dropped.
pub struct Permit {
    shared: Arc<Shared>,
    raida: u8,
}

/// A call's place in the queue for one peer's share: its first connection to that peer
/// gets a slot in its client's turn. Leaves the queue when granted or dropped.
pub struct Place {
    shared: Arc<Shared>,
    raida: u8,
    ticket: u64,
    /// Still in the queue (false once granted).
    queued: bool,
}

impl Place {
    /// A permit for the first connection when this place's turn is among those the free
    /// slots of the peer's share can serve and the budget has a slot; otherwise the place
    /// is kept and `Err` gives it back to try again later.
    pub fn take(self) -> Result<Permit, Place> {
        let limit = self.shared.limit;
        let share = share_of(limit);
        let mut slots = self.shared.slots.lock();
        let held = slots.held;
        let peer = &mut slots.peers[usize::from(self.raida)];
        // Full without counting anyone ahead: no need to work out the turns.
        if held >= limit || peer.held >= share || peer.held + peer.turns_ahead(self.ticket) >= share {
            drop(slots);
            return Err(self);
        }
        peer.grant(self.ticket);
        peer.held += 1;
        slots.held += 1;
        drop(slots);
        // Already out of the queue: nothing for Drop to do.
        let mut granted = self;
        granted.queued = false;
        Ok(Permit {
            shared: Arc::clone(&granted.shared),
            raida: granted.raida,
        })
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        if !self.queued {
            return;
        }
        self.shared.slots.lock().peers[usize::from(self.raida)].leave(self.ticket);
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut slots = self.shared.slots.lock();
        slots.held -= 1;
        slots.peers[usize::from(self.raida)].held -= 1;
    }
}

impl std::fmt::Debug for Permit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Permit").field("raida", &self.raida).finish()
    }
}

impl std::fmt::Debug for Place {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Place")
            .field("raida", &self.raida)
            .field("ticket", &self.ticket)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    /// A budget of its own, so the counts are exact.
    #[test]
    fn shares_queues_hedges_and_the_budget() {
        let budget = Budget::default();
        let (limit, reserve, share) = (budget.limit(), budget.hedge_reserve(), budget.peer_share());
        assert_eq!((limit, reserve, share, budget.in_use()), (256, 64, 10, 0));

        // One peer: its share and no more, then arrival order among waiters.
        let mut held: Vec<Permit> = (0..share).map(|_| budget.first(3).unwrap()).collect();
        assert_eq!(budget.in_use_for(3), share);
        let older = budget.first(3).unwrap_err();
        let younger = budget.first(3).unwrap_err();
        assert_eq!(budget.waiting_for(3), 2);
        // No hedge takes a slot a first connection waits for.
        held.pop();
        assert!(budget.hedge(3).is_none());
        // One slot free: the younger waiter may not take it, the older may.
        let younger = younger.take().unwrap_err();
        held.push(older.take().unwrap());
        assert_eq!(budget.waiting_for(3), 1);
        // A waiter that gives up leaves the queue; a newcomer then finds it empty.
        drop(younger);
        assert_eq!(budget.waiting_for(3), 0);
        held.pop();
        held.push(budget.first(3).unwrap());
        // Another peer's share is untouched by this one's.
        held.push(budget.first(4).unwrap());
        drop(held);
        assert_eq!((budget.in_use(), budget.in_use_for(3), budget.in_use_for(4)), (0, 0, 0));

        // The whole budget: hedges stop a quarter before first connections.
        let mut held = Vec::new();
        let mut raida = 0u8;
        while held.len() < limit - reserve {
            match budget.hedge(raida) {
                Some(p) => held.push(p),
                None => raida += 1,
            }
        }
        let hedges_to = raida;
        assert!(budget.hedge(hedges_to + 1).is_none());
        while held.len() < limit {
            match budget.first(raida) {
                Ok(p) => held.push(p),
                Err(_) => raida = raida.wrapping_add(1),
            }
        }
        assert_eq!(budget.in_use(), limit);
        let waiter = budget.first(raida.wrapping_add(1)).unwrap_err();
        assert!(budget.hedge(raida.wrapping_add(1)).is_none());
        drop(held.pop());
        assert!(waiter.take().is_ok());
        drop(held);
        assert_eq!(budget.in_use(), 0);
    }

    fn client(n: u32) -> Waiter {
        Some(u128::from(n))
    }

    /// The order a queue is served in, one slot at a time, as `take` would grant it.
    fn grant_order(queue: &[(u64, Waiter)]) -> Vec<u64> {
        let mut peer = PeerSlots::EMPTY;
        peer.waiting = queue.iter().copied().collect();
        let mut order = Vec::new();
        while !peer.waiting.is_empty() {
            let next: Vec<u64> = peer
                .waiting
                .iter()
                .map(|&(t, _)| t)
                .filter(|&t| peer.turns_ahead(t) == 0)
                .collect();
            assert_eq!(next.len(), 1, "exactly one place is first: {next:?}");
            peer.grant(next[0]);
            order.push(next[0]);
        }
        order
    }

    #[test]
    fn turns_go_round_the_clients() {
        let (a, b, c) = (client(1), client(2), client(3));
        // A queued three places before B queued three: they alternate.
        let queue = [(1, a), (2, a), (3, a), (4, b), (5, b), (6, b)];
        assert_eq!(grant_order(&queue), [1, 4, 2, 5, 3, 6]);
        // A hundred places of A put one of them ahead of B's one place, not a hundred.
        let mut queue: Vec<(u64, Waiter)> = (0..100).map(|t| (t, a)).collect();
        queue.push((100, b));
        assert_eq!(grant_order(&queue).iter().position(|&t| t == 100), Some(1));
        // Three clients take turns; arrival order within each client is kept.
        let queue = [(1, c), (2, a), (3, a), (4, b), (5, c), (6, a)];
        assert_eq!(grant_order(&queue), [1, 2, 4, 5, 3, 6]);
        // With two slots free, A's oldest and B's oldest are the two that may take them;
        // the client served last goes after the others in the next round.
        let mut peer = PeerSlots::EMPTY;
        peer.waiting = [(1, a), (2, a), (3, b)].into_iter().collect();
        assert_eq!([1, 2, 3].map(|t| peer.turns_ahead(t)), [0, 2, 1]);
        peer.grant(1);
        assert_eq!([2, 3].map(|t| peer.turns_ahead(t)), [1, 0]);
        // A client with nothing waiting is forgotten.
        peer.grant(3);
        assert_eq!(peer.served, [(a, 1)]);
        peer.leave(2);
        assert!(peer.served.is_empty());
    }

    /// With a budget of 1 and waiters queued by two clients, grants alternate between the
    /// clients, whatever order the waiters try in.
    #[test]
    fn with_a_budget_of_one_grants_alternate_between_clients() {
        let budget = Budget::new(1);
        let (hostile, honest) = (client(1), client(2));
        let mut held = budget.serving(hostile).first(5).unwrap();
        let mut waiting: Vec<(Waiter, Place)> = Vec::new();
        for _ in 0..4 {
            waiting.push((hostile, budget.serving(hostile).first(5).unwrap_err()));
        }
        for _ in 0..2 {
            waiting.push((honest, budget.serving(honest).first(5).unwrap_err()));
        }
        let mut grants = Vec::new();
        while !waiting.is_empty() {
            drop(held);
            // Every waiter tries, newest first: exactly one gets the slot.
            let mut granted = None;
            let mut still = Vec::new();
            for (who, place) in waiting.into_iter().rev() {
                match place.take() {
                    Ok(permit) => {
                        assert!(granted.is_none(), "two grants for one slot");
                        granted = Some((who, permit));
                    }
                    Err(place) => still.push((who, place)),
                }
            }
            still.reverse();
            waiting = still;
            let (who, permit) = granted.expect("one waiter got the free slot");
            grants.push(if who == honest { 'B' } else { 'A' });
            held = permit;
        }
        // Neither had a turn yet (the first grant found no one waiting): the first to
        // queue goes first, then turns alternate until the honest client has none left.
        assert_eq!(grants.iter().collect::<String>(), "ABABAA");
    }

    /// Two budgets count apart: a test's own budget never sees another's connections.
    #[test]
    fn budgets_are_instances() {
        let (a, b) = (Budget::new(2), Budget::new(2));
        let held = [a.first(1).unwrap(), a.first(2).unwrap()];
        assert_eq!((a.in_use(), b.in_use()), (2, 0));
        assert!(a.first(3).is_err());
        assert!(b.first(3).is_ok());
        drop(held);
        assert_eq!(a.in_use(), 0);
        assert_eq!(Budget::new(0).limit(), 1);
    }
}
