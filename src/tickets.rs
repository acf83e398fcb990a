//! The ticket pool: proof, held for a while, that this server recognised some coins.
//!
//! A ticket is created by get_ticket and claimed by peers during their fix. All state
//! sits behind one mutex, so a claim is atomic and an expiring ticket is never recycled
//! while a claim reads it (the legacy module got both wrong). Expiry is decided on
//! every access; nothing needs to sweep from outside.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::protocol::{Coin, COIN_BYTES, TOTAL_RAIDA_SERVERS};

/// At most this many live tickets.
pub const TICKET_POOL_SIZE: usize = 512;
/// At most this many coins on one ticket.
pub const MAX_COINS_PER_TICKET: usize = 4096;
/// A ticket is gone this long after its creation.
pub const TICKET_LIFETIME: Duration = Duration::from_secs(300);

/// A monotonic clock, injectable so tests can expire tickets without waiting.
pub trait Clock: Send + Sync {
    /// Time since an arbitrary fixed origin; never goes backwards.
    fn now(&self) -> Duration;
}

/// The real monotonic clock.
pub struct MonotonicClock {
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
    /// A fresh 32-bit value; the pool rejects 0 and live duplicates itself.
    fn next_id(&self) -> u32;
}

/// Ticket ids from the operating system's CSPRNG: a peer cannot guess a live ticket.
#[derive(Default)]
pub struct OsRandomIds;

impl IdSource for OsRandomIds {
    fn next_id(&self) -> u32 {
        crate::random::u32_from_os()
    }
}

/// Why a ticket could not be created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreateError {
    /// Every slot holds a live ticket.
    PoolFull,
    /// No coins, or more than [`MAX_COINS_PER_TICKET`].
    BadCoinCount,
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
    /// One bit per RAIDA index that has claimed the ticket.
    claims: u32,
    /// The coins in wire form (n × den, sn), which is exactly a claim's answer.
    coins: Arc<[u8]>,
}

/// The pool. Memory is proportional to the coins held, not to the capacity.
pub struct TicketPool {
    tickets: Mutex<HashMap<u32, Ticket>>,
    clock: Box<dyn Clock>,
    ids: Box<dyn IdSource>,
    capacity: usize,
    lifetime: Duration,
}

impl Default for TicketPool {
    fn default() -> Self {
        TicketPool::new(Box::<MonotonicClock>::default(), Box::new(OsRandomIds))
    }
}

impl TicketPool {
    /// A pool of the legacy size and lifetime over the given clock and id source.
    pub fn new(clock: Box<dyn Clock>, ids: Box<dyn IdSource>) -> TicketPool {
        TicketPool::with_limits(clock, ids, TICKET_POOL_SIZE, TICKET_LIFETIME)
    }

    /// A pool with other limits (tests).
    pub fn with_limits(
        clock: Box<dyn Clock>,
        ids: Box<dyn IdSource>,
        capacity: usize,
        lifetime: Duration,
    ) -> TicketPool {
        TicketPool {
            tickets: Mutex::new(HashMap::new()),
            clock,
            ids,
            capacity,
            lifetime,
        }
    }

    fn is_expired(&self, ticket: &Ticket, now: Duration) -> bool {
        now.saturating_sub(ticket.created) >= self.lifetime
    }

    /// Creates a ticket listing `coins` (in order) and returns its id.
    pub fn create(&self, coins: &[Coin]) -> Result<u32, CreateError> {
        let mut wire = Vec::with_capacity(coins.len() * COIN_BYTES);
        for coin in coins {
            wire.extend_from_slice(&coin.to_wire());
        }
        self.create_from_wire(&wire)
    }

    /// Creates a ticket from coins already in wire form (n × den, sn), as a get_ticket
    /// request carries them, and returns its id. Copying the request's bytes is cheaper
    /// than decoding and re-encoding each coin (BENCHMARKS.md).
    pub fn create_from_wire(&self, wire: &[u8]) -> Result<u32, CreateError> {
        let n = wire.len() / COIN_BYTES;
        if n == 0 || n > MAX_COINS_PER_TICKET || wire.len() % COIN_BYTES != 0 {
            return Err(CreateError::BadCoinCount);
        }
        let wire: Arc<[u8]> = wire.into();
        let mut tickets = self.tickets.lock();
        let now = self.clock.now();
        if tickets.len() >= self.capacity {
            tickets.retain(|_, t| !self.is_expired(t, now));
            if tickets.len() >= self.capacity {
                return Err(CreateError::PoolFull);
            }
        }
        let id = loop {
            let id = self.ids.next_id();
            match tickets.get(&id) {
                _ if id == 0 => continue,
                Some(t) if !self.is_expired(t, now) => continue,
                _ => break id,
            }
        };
        tickets.insert(
            id,
            Ticket {
                created: now,
                claims: 0,
                coins: wire,
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
        let mut tickets = self.tickets.lock();
        let now = self.clock.now();
        let ticket = match tickets.get_mut(&id) {
            None => return Err(ClaimError::NotFound),
            Some(t) if self.is_expired(t, now) => {
                tickets.remove(&id);
                return Err(ClaimError::NotFound);
            }
            Some(t) => t,
        };
        let bit = 1u32 << claimer;
        if ticket.claims & bit != 0 {
            return Err(ClaimError::AlreadyClaimed);
        }
        ticket.claims |= bit;
        Ok(Arc::clone(&ticket.coins))
    }

    /// Live (unexpired) tickets now.
    pub fn live(&self) -> usize {
        let now = self.clock.now();
        self.tickets
            .lock()
            .values()
            .filter(|t| !self.is_expired(t, now))
            .count()
    }

    /// Slots a new ticket could take now.
    pub fn free_slots(&self) -> usize {
        self.capacity.saturating_sub(self.live())
    }

    /// Coins held by all tickets, live or not yet swept.
    pub fn coins_held(&self) -> usize {
        self.tickets
            .lock()
            .values()
            .map(|t| t.coins.len() / COIN_BYTES)
            .sum()
    }

    /// Drops every ticket (tests, and closing a standalone store).
    pub fn clear(&self) {
        self.tickets.lock().clear();
    }
}

/// Test doubles for the pool's clock and ids.
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
        fn next_id(&self) -> u32 {
            self.script
                .lock()
                .pop()
                .unwrap_or_else(|| self.next.fetch_add(1, Ordering::SeqCst))
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
        let (pool, clock) = pool(&[1, 2, 3], 2);
        pool.create(&coins(3)).unwrap();
        clock.advance(Duration::from_secs(100));
        pool.create(&coins(3)).unwrap();
        assert_eq!(pool.create(&coins(1)), Err(CreateError::PoolFull));
        clock.advance(Duration::from_secs(199));
        assert!(pool.claim(1, 0).is_ok(), "299 s old: still live");
        clock.advance(Duration::from_secs(1));
        assert_eq!(pool.claim(1, 1), Err(ClaimError::NotFound), "300 s: gone");
        assert_eq!(pool.free_slots(), 1);
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

    #[test]
    fn coin_count_limits() {
        let (pool, _) = pool(&[], 4);
        assert_eq!(pool.create(&[]), Err(CreateError::BadCoinCount));
        assert_eq!(
            pool.create(&coins(MAX_COINS_PER_TICKET as u32 + 1)),
            Err(CreateError::BadCoinCount)
        );
        assert!(pool.create(&coins(MAX_COINS_PER_TICKET as u32)).is_ok());
        assert_eq!(pool.coins_held(), MAX_COINS_PER_TICKET);
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
