//! The ticket pool: proof, held for a while, that this server recognised some coins.
//!
//! A ticket is created by get_ticket and claimed by peers during their fix. All state
//! sits behind one mutex, so a claim is atomic and an expiring ticket is never recycled
//! while a claim reads it (the legacy module got both wrong). Expiry is decided on
//! every access; nothing needs to sweep from outside.
//!
//! Holding the pool takes many coins, not many requests (the legacy pool of 512 tickets
//! could be filled by the owner of one coin in under a millisecond):
//! - a ticket lists each of its coins once;
//! - a coin sits on at most [`MAX_TICKETS_PER_COIN`] live tickets: a newer ticket takes
//!   it from the oldest one holding it (which is dropped once it has no coin left), so a
//!   wallet that retries a heal always gets a fresh ticket and an owner who repeats a
//!   coin only displaces his own tickets;
//! - the capacity counts what a ticket costs in memory: its coins plus a fixed charge per
//!   ticket ([`TICKET_CHARGE`]), [`POOL_CAPACITY`] in all, so a pool of one-coin tickets
//!   is bounded as tightly as one of full tickets (docs/tickets.md).
//!
//! No request holds the lock for long at any pool size: the tables grow a 256th at a
//! time (segments), expiry removes a bounded amount per request, and taking coins from
//! an older ticket costs in proportion to the coins taken.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::protocol::{Coin, CoinKey, COIN_BYTES, TOTAL_RAIDA_SERVERS};
use crate::random::RandomError;

mod coin_hashing;
mod coin_index;
mod ticket_map;
use coin_hashing::CoinHashing;
use coin_index::{CoinIndex, Holders};
use ticket_map::TicketMap;

/// At most this many coins on one ticket.
pub const MAX_COINS_PER_TICKET: usize = 4096;
/// What a ticket costs beyond its coins, in coins: its entry in the ticket table, its
/// coin list's allocation and its place in the creation order (about 8 coins' worth of
/// memory each, measured in `tests/pool_memory.rs`).
pub const TICKET_CHARGE: usize = 7;
/// The pool's capacity, in coins plus [`TICKET_CHARGE`] per ticket: 256 full tickets, or
/// 131,296 one-coin tickets. Memory at most [`POOL_MEMORY_BOUND`] either way.
pub const POOL_CAPACITY: usize = 256 * (MAX_COINS_PER_TICKET + TICKET_CHARGE);
/// The most memory the pool takes, full of tickets of any shape (docs/tickets.md; checked
/// by `tests/pool_memory.rs` with a counting allocator, shown by `make bench`).
pub const POOL_MEMORY_BOUND: usize = 60 << 20;
/// Coins held by live tickets never exceed this (256 full tickets): 256 tickets already
/// take 256 charges of the capacity, the rest is 2^20 coins.
pub const MAX_COINS_HELD: usize = 256 * MAX_COINS_PER_TICKET;
/// A coin is on at most this many live tickets; a newer ticket takes it from the oldest.
pub const MAX_TICKETS_PER_COIN: usize = coin_index::MAX_HOLDERS;
/// A ticket is gone this long after its creation.
pub const TICKET_LIFETIME: Duration = Duration::from_secs(300);

/// Segments of the coin index one get_ticket may grow before they must (about 0.1 ms
/// each): enough that growth keeps ahead of even 4,096-coin requests, few enough that no
/// request holds the lock for long.
const INDEX_GROWTHS_PER_REQUEST: usize = 4;

/// A monotonic clock, injectable so tests can expire tickets without waiting.
pub trait Clock: Send + Sync {
    /// Time since an arbitrary fixed origin; never goes backwards.
    fn now(&self) -> Duration;
}

/// The real monotonic clock.
pub(crate) struct MonotonicClock {
    origin: Instant,
}

impl Default for MonotonicClock {
    fn default() -> Self {
        MonotonicClock {
            origin: Instant::now(),
        }
    }
}

impl Clock for MonotonicClock {
    fn now(&self) -> Duration {
        self.origin.elapsed()
    }
}

/// Where ticket ids come from, injectable for tests.
pub trait IdSource: Send + Sync {
    /// A fresh 32-bit value; the pool rejects 0 and live duplicates itself. `Err` when no
    /// unpredictable value can be had: no ticket is then created.
    fn next_id(&self) -> Result<u32, RandomError>;
}

/// Ticket ids from the operating system's CSPRNG: unpredictable, so a guesser can only
/// try ids at random (one guess in 2^32 / live tickets hits; the claim gate's policy and
/// guess throttle, `src/claims.rs`, bound what that buys, docs/wire-protocol.md).
#[derive(Default)]
pub struct OsRandomIds;

impl IdSource for OsRandomIds {
    fn next_id(&self) -> Result<u32, RandomError> {
        crate::random::u32_from_os()
    }
}

/// Why a ticket could not be created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CreateError {
    /// The live tickets' coins and charges fill [`POOL_CAPACITY`] (or the pool's own).
    PoolFull,
    /// No coins, or more than [`MAX_COINS_PER_TICKET`].
    BadCoinCount,
    /// The random source failed, so there is no unpredictable id to give.
    NoRandomness(RandomError),
}

/// Why a claim failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimError {
    /// No live ticket has that id.
    NotFound,
    /// This RAIDA already claimed it.
    AlreadyClaimed,
    /// The claimer is not a RAIDA index.
    BadClaimer,
}

struct Ticket {
    created: Duration,
    /// The ticket created just before this one and still live (0: none), and the one
    /// just after: the creation order, so expiry and removal cost O(1) a ticket.
    older: u32,
    newer: u32,
    /// One bit per RAIDA index that has claimed the ticket.
    claims: u32,
    /// Coins of `coins` this ticket still holds; the others were taken by newer tickets
    /// (their holders no longer list this ticket) and are dropped from `coins` lazily.
    held: u32,
    /// The coins in wire form (n × den, sn), each once: those held, and possibly some
    /// taken. Compacted to the held ones before a claim reads it, and whenever fewer than
    /// half are held, so the list is never more than twice the coins charged for.
    coins: Arc<[u8]>,
}

impl Ticket {
    fn listed(&self) -> usize {
        self.coins.len() / COIN_BYTES
    }
}

/// Removes `id` from `holders`, keeping the order; true when none is left.
fn forget(holders: &mut Holders, id: u32) -> bool {
    if let Some(at) = holders.iter().position(|&held| held == id) {
        holders.copy_within(at + 1.., at);
        holders[MAX_TICKETS_PER_COIN - 1] = 0;
    }
    holders[0] == 0
}

/// Puts ticket `id` on a coin's `holders` as its newest, taking the coin from the oldest
/// holder (counted in `taken`) when it is on [`MAX_TICKETS_PER_COIN`] tickets already.
/// False when the coin already has `id`: a repeat in the request.
#[inline(always)]
fn hold(holders: &mut Holders, id: u32, taken: &mut TakenCounts) -> bool {
    let [first, second, third, fourth] = *holders;
    // all four compared at once (no early exit): one vector compare
    if (first == id) | (second == id) | (third == id) | (fourth == id) {
        return false;
    }
    if fourth != 0 {
        taken.add(first);
        *holders = [second, third, fourth, id];
    } else {
        let free = holders.iter().position(|&held| held == 0);
        holders[free.expect("not full: a free place")] = id;
    }
    true
}

/// A coin's key: its 5 wire bytes (den, then sn big-endian) as one number.
#[inline]
fn coin_key(wire: &[u8]) -> CoinKey {
    coin_key_of(wire.try_into().expect("5-byte coin"))
}

#[inline(always)]
fn coin_key_of(wire: &[u8; COIN_BYTES]) -> CoinKey {
    Coin::key_of_wire(wire)
}

/// Everything behind the pool's mutex.
#[derive(Default)]
struct State {
    tickets: TicketMap,
    /// Ends of the creation order (ids; 0 when no ticket is live).
    oldest: u32,
    newest: u32,
    /// The live tickets holding each coin.
    holders: CoinIndex,
    /// Coins held by live tickets.
    coins_held: usize,
    /// What the pool did since it was made (kept by [`TicketPool::clear`]).
    counts: PoolCounts,
}

/// Tickets the pool issued, let expire and refused for want of room, since it was made
/// (the metrics).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolCounts {
    pub issued: u64,
    pub expired: u64,
    pub refused_full: u64,
}

/// A ticket's coins listed but taken by newer tickets are dropped from its list when
/// they outnumber the held ones (and before a claim).
fn compact(ticket: &mut Ticket, id: u32, holders: &CoinIndex) {
    let kept: Vec<u8> = ticket
        .coins
        .chunks_exact(COIN_BYTES)
        .filter(|wire| {
            holders
                .get(coin_key(wire))
                .is_some_and(|ids| ids.contains(&id))
        })
        .flatten()
        .copied()
        .collect();
    debug_assert_eq!(kept.len() / COIN_BYTES, ticket.held as usize);
    ticket.coins = kept.into();
}

impl State {
    /// Puts a new ticket at the newest end of the creation order.
    fn push_newest(&mut self, id: u32, mut ticket: Ticket) {
        ticket.older = self.newest;
        ticket.newer = 0;
        match self.tickets.get_mut(self.newest) {
            Some(newest) => newest.newer = id,
            None => self.oldest = id,
        }
        self.newest = id;
        self.tickets.insert(id, ticket);
    }

    /// Takes ticket `id` out of the table and the creation order (its coins untouched).
    fn unlink(&mut self, id: u32) -> Option<Ticket> {
        let ticket = self.tickets.remove(id)?;
        match self.tickets.get_mut(ticket.older) {
            Some(older) => older.newer = ticket.newer,
            None => self.oldest = ticket.newer,
        }
        match self.tickets.get_mut(ticket.newer) {
            Some(newer) => newer.older = ticket.older,
            None => self.newest = ticket.older,
        }
        Some(ticket)
    }

    /// Drops ticket `id` and forgets its coins; returns the coins it listed (the work).
    fn remove(&mut self, id: u32) -> usize {
        let Some(ticket) = self.unlink(id) else {
            return 0;
        };
        self.coins_held -= ticket.held as usize;
        for wire in ticket.coins.chunks_exact(COIN_BYTES) {
            let key = coin_key(wire);
            if self.holders.get_mut(key).is_some_and(|ids| forget(ids, id)) {
                self.holders.remove(key);
            }
        }
        ticket.listed()
    }

    /// Drops the oldest ticket if it has expired by `now`; false when it has not (or
    /// there is none). Returns the coins it listed, as work done.
    fn expire_oldest(&mut self, now: Duration, lifetime: Duration) -> Option<usize> {
        let created = self.tickets.get(self.oldest)?.created;
        if now.saturating_sub(created) < lifetime {
            return None;
        }
        self.counts.expired += 1;
        Some(self.remove(self.oldest).max(1))
    }

    /// Drops expired tickets, oldest first, until about `budget` coins' worth of work is
    /// done (at least one ticket when one has expired): a request pays for a bounded
    /// amount of expiry, so tickets that all expire at once never stall one request.
    /// Each get_ticket brings twice its own coins of budget, so expiry keeps up with
    /// creation; a claim checks its ticket's age itself.
    fn expire(&mut self, now: Duration, lifetime: Duration, budget: usize) {
        let mut spent = 0;
        while spent < budget {
            match self.expire_oldest(now, lifetime) {
                Some(work) => spent += work,
                None => break,
            }
        }
    }

    /// Takes `taken` coins (distinct, all held by it, their holders already updated)
    /// from ticket `id` for a newer ticket; drops the ticket when nothing is left on it,
    /// which is the common case of a wallet retrying with the same coins. Costs in
    /// proportion to `taken`: the list is compacted only when fewer than half its coins
    /// are still held (so over the ticket's life compaction costs at most twice the
    /// coins taken from it).
    fn take_coins(&mut self, id: u32, taken: usize) {
        let Some(ticket) = self.tickets.get_mut(id) else {
            return;
        };
        self.coins_held -= taken;
        ticket.held -= taken as u32;
        if ticket.held == 0 {
            self.unlink(id);
        } else if (ticket.held as usize) * 2 < ticket.listed() {
            compact(ticket, id, &self.holders);
        }
    }

    /// The capacity units the live tickets use.
    fn charged(&self, ticket_charge: usize) -> usize {
        self.coins_held + self.tickets.len() * ticket_charge
    }
}

/// How many coins a new ticket takes from each older ticket. A request's coins usually
/// come from one ticket (a wallet retrying), so the current run is counted in place and
/// the map is touched only when the oldest holder changes.
struct TakenCounts {
    run: (u32, usize),
    finished: HashMap<u32, usize, CoinHashing>,
}

impl TakenCounts {
    fn new(hashing: CoinHashing) -> TakenCounts {
        TakenCounts {
            run: (0, 0),
            finished: HashMap::with_hasher(hashing),
        }
    }

    /// Counts one coin taken from ticket `id` (never 0).
    #[inline]
    fn add(&mut self, id: u32) {
        if self.run.0 == id {
            self.run.1 += 1;
        } else {
            self.finish_run();
            self.run = (id, 1);
        }
    }

    fn finish_run(&mut self) {
        let (id, count) = self.run;
        if count > 0 {
            *self.finished.entry(id).or_default() += count;
        }
        self.run = (0, 0);
    }

    /// Every (ticket, coins taken from it), each ticket once.
    fn into_counts(mut self) -> impl Iterator<Item = (u32, usize)> {
        self.finish_run();
        self.finished.into_iter()
    }
}

/// The pool. Memory grows with the tickets and coins held and is bounded by the
/// capacity (the coin index keeps its high-water size; it does not shrink when tickets
/// go).
pub struct TicketPool {
    state: Mutex<State>,
    clock: Box<dyn Clock>,
    ids: Box<dyn IdSource>,
    capacity: usize,
    ticket_charge: usize,
    lifetime: Duration,
}

impl Default for TicketPool {
    /// The production pool: the monotonic clock and ids from the OS random source.
    fn default() -> Self {
        TicketPool::new(Box::<MonotonicClock>::default(), Box::new(OsRandomIds))
    }
}

impl TicketPool {
    /// A pool of the production capacity, charge and lifetime over the given clock and id
    /// source.
    pub fn new(clock: Box<dyn Clock>, ids: Box<dyn IdSource>) -> TicketPool {
        TicketPool::with_limits(clock, ids, POOL_CAPACITY, TICKET_LIFETIME)
            .with_ticket_charge(TICKET_CHARGE)
    }

    /// A pool holding at most `capacity` coins (counted once per ticket listing them, no
    /// charge per ticket unless [`with_ticket_charge`](Self::with_ticket_charge) sets
    /// one), with another lifetime (tests).
    pub fn with_limits(
        clock: Box<dyn Clock>,
        ids: Box<dyn IdSource>,
        capacity: usize,
        lifetime: Duration,
    ) -> TicketPool {
        TicketPool {
            state: Mutex::new(State::default()),
            clock,
            ids,
            capacity,
            ticket_charge: 0,
            lifetime,
        }
    }

    /// The same pool charging `charge` capacity units per live ticket on top of its coins.
    pub fn with_ticket_charge(mut self, charge: usize) -> TicketPool {
        self.ticket_charge = charge;
        self
    }

    /// Creates a ticket listing `coins` (in order, each once) and returns its id.
    pub fn create(&self, coins: &[Coin]) -> Result<u32, CreateError> {
        let mut wire = Vec::with_capacity(coins.len() * COIN_BYTES);
        for coin in coins {
            wire.extend_from_slice(&coin.to_wire());
        }
        self.create_from_wire(&wire)
    }

    /// Creates a ticket from coins already in wire form (n × den, sn), as a get_ticket
    /// request carries them, and returns its id. A coin listed twice is kept once (its
    /// first place). Each coin already on [`MAX_TICKETS_PER_COIN`] live tickets is taken
    /// from the oldest of them. Nothing changes when it fails.
    pub fn create_from_wire(&self, wire: &[u8]) -> Result<u32, CreateError> {
        let n = wire.len() / COIN_BYTES;
        if n == 0 || n > MAX_COINS_PER_TICKET || wire.len() % COIN_BYTES != 0 {
            return Err(CreateError::BadCoinCount);
        }
        let mut state = self.state.lock();
        let hashing = state.holders.hashing().clone();
        let now = self.clock.now();
        state.expire(now, self.lifetime, 2 * n + 64);
        let fits = |state: &State, coins: usize| {
            state.charged(self.ticket_charge) + coins + self.ticket_charge <= self.capacity
        };
        // Room taken by expired tickets is freed first, one ticket at a time: each frees
        // at least one coin and a charge, so this costs about what the new ticket lists.
        while !fits(&state, n) && state.expire_oldest(now, self.lifetime).is_some() {}
        if !fits(&state, n) {
            // Near the capacity: count the distinct coins, and the places older tickets
            // would give up, exactly.
            let mut seen = HashSet::with_capacity_and_hasher(n, hashing.clone());
            let (mut distinct, mut freed) = (0, 0);
            for key in wire.chunks_exact(COIN_BYTES).map(coin_key) {
                if seen.insert(key) {
                    distinct += 1;
                    let full = |ids: &Holders| ids[MAX_TICKETS_PER_COIN - 1] != 0;
                    freed += usize::from(state.holders.get(key).is_some_and(full));
                }
            }
            if state.charged(self.ticket_charge) - freed + distinct + self.ticket_charge
                > self.capacity
            {
                state.counts.refused_full += 1;
                return Err(CreateError::PoolFull);
            }
        }
        let id = loop {
            let id = self.ids.next_id().map_err(CreateError::NoRandomness)?;
            if id != 0 && !state.tickets.contains(id) {
                break id;
            }
        };
        // One pass over the coins, one index entry each: each gets the new ticket as its
        // newest holder (a coin that already has it is a repeat, kept at its first place
        // only); a coin already on MAX_TICKETS_PER_COIN tickets is taken from the oldest
        // of them. The ticket's bytes are the request's unless a coin repeats: only then
        // are the distinct coins copied out, from the first repeat on (a second loop, so
        // the common case tests nothing for it).
        let mut taken = TakenCounts::new(hashing);
        state.holders.allow_growths(INDEX_GROWTHS_PER_REQUEST);
        let mut coins = wire.as_chunks::<COIN_BYTES>().0.iter();
        let mut n = 0;
        let mut deduplicated: Option<Vec<u8>> = None;
        for coin in coins.by_ref() {
            if !hold(
                state.holders.get_or_insert(coin_key_of(coin)),
                id,
                &mut taken,
            ) {
                let mut kept = Vec::with_capacity(wire.len());
                kept.extend_from_slice(&wire[..n * COIN_BYTES]);
                deduplicated = Some(kept);
                break;
            }
            n += 1;
        }
        if let Some(kept) = &mut deduplicated {
            for coin in coins {
                if hold(
                    state.holders.get_or_insert(coin_key_of(coin)),
                    id,
                    &mut taken,
                ) {
                    kept.extend_from_slice(coin);
                    n += 1;
                }
            }
        }
        for (oldest, count) in taken.into_counts() {
            state.take_coins(oldest, count);
        }
        let coins: Arc<[u8]> = match deduplicated {
            Some(kept) => kept.into(),
            None => Arc::from(wire),
        };
        state.coins_held += n;
        state.counts.issued += 1;
        state.push_newest(
            id,
            Ticket {
                created: now,
                older: 0,
                newer: 0,
                claims: 0,
                held: n as u32,
                coins,
            },
        );
        Ok(id)
    }

    /// Records that RAIDA `claimer` claims ticket `id` and returns the ticket's coins in
    /// wire form. Each RAIDA can claim a ticket once.
    pub fn claim(&self, id: u32, claimer: u8) -> Result<Arc<[u8]>, ClaimError> {
        if usize::from(claimer) >= TOTAL_RAIDA_SERVERS {
            return Err(ClaimError::BadClaimer);
        }
        let now = self.clock.now();
        let mut state = self.state.lock();
        // A little expiry on the side; the ticket's own age is checked below.
        state.expire(now, self.lifetime, 64);
        let state = &mut *state;
        let ticket = state
            .tickets
            .get_mut(id)
            .filter(|t| now.saturating_sub(t.created) < self.lifetime)
            .ok_or(ClaimError::NotFound)?;
        let bit = 1u32 << claimer;
        if ticket.claims & bit != 0 {
            return Err(ClaimError::AlreadyClaimed);
        }
        ticket.claims |= bit;
        if (ticket.held as usize) < ticket.listed() {
            compact(ticket, id, &state.holders);
        }
        Ok(Arc::clone(&ticket.coins))
    }

    /// Live (unexpired) tickets now. Expires everything due first, however long that
    /// takes: for tests and reports, never a request's path.
    pub fn live(&self) -> usize {
        let mut state = self.state.lock();
        state.expire(self.clock.now(), self.lifetime, usize::MAX);
        state.tickets.len()
    }

    /// Capacity units a new ticket could use now (the capacity less the live tickets'
    /// coins and charges); as [`live`](Self::live), not for a request's path.
    pub fn free_capacity(&self) -> usize {
        let mut state = self.state.lock();
        state.expire(self.clock.now(), self.lifetime, usize::MAX);
        self.capacity
            .saturating_sub(state.charged(self.ticket_charge))
    }

    /// Coins held by live tickets; as [`live`](Self::live), not for a request's path.
    pub fn coins_held(&self) -> usize {
        let mut state = self.state.lock();
        state.expire(self.clock.now(), self.lifetime, usize::MAX);
        state.coins_held
    }

    /// Drops every ticket (tests, and closing a standalone store). The old tables are
    /// freed after the lock is released.
    pub fn clear(&self) {
        let old = {
            let mut state = self.state.lock();
            let counts = state.counts;
            std::mem::replace(
                &mut *state,
                State {
                    counts,
                    ..State::default()
                },
            )
        };
        drop(old);
    }

    /// Tickets issued, expired and refused for a full pool since the pool was made
    /// (expiry is counted as it happens: on requests, or in [`live`](Self::live)).
    pub fn counts(&self) -> PoolCounts {
        self.state.lock().counts
    }
}

/// Test doubles for the pool's clock and ids (the `testing` feature).
#[cfg(feature = "testing")]
pub mod testing {
    use super::*;
    use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

    /// A clock that moves only when told to.
    #[derive(Default, Clone)]
    pub struct ManualClock(Arc<AtomicU64>);

    impl ManualClock {
        /// Moves the clock forward.
        pub fn advance(&self, by: Duration) {
            self.0.fetch_add(by.as_millis() as u64, Ordering::SeqCst);
        }
    }

    impl Clock for ManualClock {
        fn now(&self) -> Duration {
            Duration::from_millis(self.0.load(Ordering::SeqCst))
        }
    }

    /// Ids from a fixed script, then counting up from the last one.
    pub struct ScriptedIds {
        script: Mutex<Vec<u32>>,
        next: AtomicU32,
    }

    impl ScriptedIds {
        /// Hands out `script` in order, then `last + 1`, `last + 2`, ...
        pub fn new(script: &[u32]) -> ScriptedIds {
            let mut s = script.to_vec();
            s.reverse();
            ScriptedIds {
                next: AtomicU32::new(script.last().copied().unwrap_or(0).wrapping_add(1)),
                script: Mutex::new(s),
            }
        }
    }

    impl IdSource for ScriptedIds {
        fn next_id(&self) -> Result<u32, RandomError> {
            Ok(self
                .script
                .lock()
                .pop()
                .unwrap_or_else(|| self.next.fetch_add(1, Ordering::SeqCst)))
        }
    }

    /// An id source that has failed, as a broken OS random source would.
    pub struct FailingIds;

    impl IdSource for FailingIds {
        fn next_id(&self) -> Result<u32, RandomError> {
            Err(RandomError::new("the test's id source is broken"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testing::*;
    use super::*;

    fn coins(n: u32) -> Vec<Coin> {
        (0..n).map(|sn| Coin { den: 1, sn }).collect()
    }

    fn pool(script: &[u32], capacity: usize) -> (TicketPool, ManualClock) {
        let clock = ManualClock::default();
        let pool = TicketPool::with_limits(
            Box::new(clock.clone()),
            Box::new(ScriptedIds::new(script)),
            capacity,
            TICKET_LIFETIME,
        );
        (pool, clock)
    }

    #[test]
    fn ids_skip_zero_and_live_duplicates() {
        let (pool, _) = pool(&[0, 7, 7, 0, 9], 4);
        assert_eq!(pool.create(&coins(1)), Ok(7));
        assert_eq!(pool.create(&coins(1)), Ok(9));
    }

    #[test]
    fn claim_once_per_raida() {
        let (pool, _) = pool(&[5], 4);
        let id = pool.create(&[Coin { den: 2, sn: 258 }]).unwrap();
        assert_eq!(&*pool.claim(id, 3).unwrap(), &[2, 0, 0, 1, 2]);
        assert_eq!(pool.claim(id, 3), Err(ClaimError::AlreadyClaimed));
        assert!(pool.claim(id, 24).is_ok());
        assert_eq!(pool.claim(id, 25), Err(ClaimError::BadClaimer));
        assert_eq!(pool.claim(id + 1, 3), Err(ClaimError::NotFound));
    }

    #[test]
    fn expiry_frees_slots() {
        // capacity: 6 coins, two tickets of 3
        let (pool, clock) = pool(&[1, 2, 3], 6);
        pool.create(&coins(3)).unwrap();
        clock.advance(Duration::from_secs(100));
        pool.create(&coins(3)).unwrap();
        assert_eq!(pool.create(&coins(1)), Err(CreateError::PoolFull));
        clock.advance(Duration::from_secs(199));
        assert!(pool.claim(1, 0).is_ok(), "299 s old: still live");
        clock.advance(Duration::from_secs(1));
        assert_eq!(pool.claim(1, 1), Err(ClaimError::NotFound), "300 s: gone");
        assert_eq!(pool.free_capacity(), 3);
        assert_eq!(pool.create(&coins(1)), Ok(3));
        assert_eq!(pool.live(), 2);
    }

    #[test]
    fn expired_id_can_be_reused() {
        let (pool, clock) = pool(&[4, 4], 2);
        pool.create(&coins(1)).unwrap();
        clock.advance(TICKET_LIFETIME);
        assert_eq!(pool.create(&coins(2)), Ok(4));
        assert_eq!(pool.claim(4, 0).unwrap().len(), 10);
    }

    /// Issued, expired and refused-full tickets are counted, and clearing the pool keeps
    /// the counts.
    #[test]
    fn the_pool_counts_what_it_did() {
        let (pool, clock) = pool(&[4, 5, 6], 2);
        pool.create(&coins(2)).unwrap();
        assert_eq!(pool.create(&coins(1)), Err(CreateError::PoolFull));
        clock.advance(TICKET_LIFETIME);
        pool.create(&coins(1)).unwrap();
        let want = PoolCounts {
            issued: 2,
            expired: 1,
            refused_full: 1,
        };
        assert_eq!(pool.counts(), want);
        pool.clear();
        assert_eq!(pool.counts(), want);
    }

    #[test]
    fn coin_count_limits() {
        let (pool, _) = pool(&[], MAX_COINS_PER_TICKET);
        assert_eq!(pool.create(&[]), Err(CreateError::BadCoinCount));
        assert_eq!(
            pool.create(&coins(MAX_COINS_PER_TICKET as u32 + 1)),
            Err(CreateError::BadCoinCount)
        );
        assert!(pool.create(&coins(MAX_COINS_PER_TICKET as u32)).is_ok());
        assert_eq!(pool.coins_held(), MAX_COINS_PER_TICKET);
    }

    #[test]
    fn a_coin_listed_twice_is_held_once() {
        let (pool, _) = pool(&[3], 8);
        let a = Coin { den: 1, sn: 7 };
        let b = Coin { den: -1, sn: 9 };
        let id = pool.create(&[a, b, a, a, b]).unwrap();
        assert_eq!(
            &*pool.claim(id, 0).unwrap(),
            &[1, 0, 0, 0, 7, 0xff, 0, 0, 0, 9]
        );
        assert_eq!(pool.coins_held(), 2);
        let many = vec![a; MAX_COINS_PER_TICKET];
        assert!(pool.create(&many).is_ok());
        assert_eq!(pool.coins_held(), 3);
    }

    #[test]
    fn one_coin_cannot_deny_tickets_to_others() {
        // the production pool, with ids counting up from 1
        let pool = TicketPool::new(
            Box::<ManualClock>::default(),
            Box::new(ScriptedIds::new(&[1])),
        );
        let owned = Coin { den: 2, sn: 4242 };
        // the legacy pool filled in 512 requests; here ten thousand change nothing
        for _ in 0..10_000 {
            pool.create(&[owned]).unwrap();
        }
        pool.create(&vec![owned; MAX_COINS_PER_TICKET]).unwrap();
        assert_eq!(pool.live(), MAX_TICKETS_PER_COIN);
        assert_eq!(pool.coins_held(), MAX_TICKETS_PER_COIN);
        // every other wallet still gets tickets, for as many coins as a ticket holds
        let wallet: Vec<Coin> = (0..MAX_COINS_PER_TICKET as u32)
            .map(|sn| Coin { den: 3, sn })
            .collect();
        let id = pool.create(&wallet).unwrap();
        assert_eq!(
            pool.claim(id, 5).unwrap().len(),
            MAX_COINS_PER_TICKET * COIN_BYTES
        );
        assert_eq!(
            pool.free_capacity(),
            POOL_CAPACITY
                - (MAX_COINS_PER_TICKET + TICKET_CHARGE)
                - MAX_TICKETS_PER_COIN * (1 + TICKET_CHARGE)
        );
    }

    #[test]
    fn filling_the_pool_takes_capacity_over_four_distinct_coins() {
        let capacity = 40;
        let (pool, _) = pool(&[1], capacity);
        let attacker = |n: u32| -> Vec<Coin> { (0..n).map(|sn| Coin { den: 4, sn }).collect() };
        // 9 coins, each on as many tickets as it may be, and again: 36 held, never more
        for _ in 0..3 * MAX_TICKETS_PER_COIN {
            for coin in attacker(9) {
                pool.create(&[coin]).unwrap();
            }
            pool.create(&attacker(9)).unwrap();
        }
        assert_eq!(pool.coins_held(), 9 * MAX_TICKETS_PER_COIN);
        assert!(pool.create(&[Coin { den: 5, sn: 1 }]).is_ok());
        // ten coins (capacity / 4) are what it takes to hold it all
        let (full, _) = super::tests::pool(&[1], capacity);
        for _ in 0..MAX_TICKETS_PER_COIN {
            full.create(&attacker(10)).unwrap();
        }
        assert_eq!(full.coins_held(), capacity);
        assert_eq!(
            full.create(&[Coin { den: 5, sn: 1 }]),
            Err(CreateError::PoolFull)
        );
    }

    #[test]
    fn a_wallet_retrying_a_heal_keeps_working() {
        let (pool, clock) = pool(&[10], 1000);
        let coins = coins(3);
        let wire = pool
            .create(&coins)
            .map(|id| pool.claim(id, 0).unwrap())
            .unwrap();
        // four more tries within the lifetime: the newest four tickets all answer in full
        let mut ids = vec![10];
        for _ in 0..MAX_TICKETS_PER_COIN {
            clock.advance(Duration::from_secs(30));
            ids.push(pool.create(&coins).unwrap());
        }
        assert_eq!(
            pool.claim(ids[0], 1),
            Err(ClaimError::NotFound),
            "taken by the 5th"
        );
        for &id in &ids[1..] {
            assert_eq!(pool.claim(id, 1).unwrap(), wire);
        }
        // a ticket loses only the coins a newer one took
        let (other, _) = super::tests::pool(&[20], 1000);
        let both = other.create(&coins).unwrap();
        for _ in 0..MAX_TICKETS_PER_COIN {
            other.create(&coins[..1]).unwrap();
        }
        assert_eq!(&*other.claim(both, 0).unwrap(), &wire[COIN_BYTES..]);
        assert_eq!(other.coins_held(), 2 + MAX_TICKETS_PER_COIN);
    }

    #[test]
    fn expiry_is_paid_a_little_per_request_yet_never_late() {
        let (pool, clock) = pool(&[1], 1000);
        for sn in 0..1000 {
            pool.create(&[Coin { den: 1, sn }]).unwrap();
        }
        let newcomer = [Coin { den: 2, sn: 0 }];
        assert_eq!(pool.create(&newcomer), Err(CreateError::PoolFull));
        clock.advance(TICKET_LIFETIME);
        // all expired at once: none claimable, removed or not
        assert_eq!(pool.claim(500, 0), Err(ClaimError::NotFound));
        // the full pool of expired tickets makes room for a new one, one request removing
        // only a bounded part of them
        let id = pool.create(&newcomer).unwrap();
        let left = pool.state.lock().tickets.len();
        assert!((800..1000).contains(&left), "{left} tickets left after one request");
        assert_eq!(pool.live(), 1);
        assert_eq!(&*pool.claim(id, 0).unwrap(), &newcomer[0].to_wire());
    }

    #[test]
    fn a_ticket_that_lost_most_coins_lists_the_rest() {
        let (pool, _) = pool(&[1], 1000);
        let all = coins(8);
        let first = pool.create(&all).unwrap();
        for _ in 0..MAX_TICKETS_PER_COIN {
            pool.create(&all[..5]).unwrap();
        }
        // 3 of 8 left: the list was compacted when fewer than half remained
        let rest: Vec<u8> = all[5..].iter().flat_map(|c| c.to_wire()).collect();
        assert_eq!(&*pool.claim(first, 0).unwrap(), &rest[..]);
        assert_eq!(pool.coins_held(), 3 + 5 * MAX_TICKETS_PER_COIN);
        // and one coin more taken from it later still leaves the right two
        for _ in 0..MAX_TICKETS_PER_COIN {
            pool.create(&all[5..6]).unwrap();
        }
        assert_eq!(&*pool.claim(first, 1).unwrap(), &rest[COIN_BYTES..]);
    }

    #[test]
    fn a_broken_id_source_creates_nothing() {
        let pool = TicketPool::with_limits(
            Box::<ManualClock>::default(),
            Box::new(FailingIds),
            100,
            TICKET_LIFETIME,
        );
        assert_eq!(
            pool.create(&coins(2)),
            Err(CreateError::NoRandomness(RandomError::new(
                "the test's id source is broken"
            )))
        );
        assert_eq!((pool.live(), pool.coins_held()), (0, 0));
    }

    #[test]
    fn concurrent_claims_by_one_raida_exactly_one_wins() {
        let pool = Arc::new(TicketPool::default());
        for _ in 0..50 {
            let id = pool.create(&coins(2)).unwrap();
            let wins: usize = std::thread::scope(|s| {
                let handles: Vec<_> = (0..4)
                    .map(|_| s.spawn(|| pool.claim(id, 11).is_ok() as usize))
                    .collect();
                handles.into_iter().map(|h| h.join().unwrap()).sum()
            });
            assert_eq!(wins, 1);
        }
    }
}
