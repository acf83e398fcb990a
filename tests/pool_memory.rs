//! The ticket pool's memory, measured by a counting allocator (bytes asked of the
//! allocator and not yet returned, plus 16 bytes of malloc bookkeeping per live block):
//! the largest pool of one-coin tickets and of 3,119-coin tickets both stay within
//! `POOL_MEMORY_BOUND`, the figure the README gives. Also: taking one coin from a
//! 4,096-coin ticket leaves that ticket its other coins.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::Duration;

use raida_healing::protocol::COIN_BYTES;
use raida_healing::tickets::testing::{ManualClock, ScriptedIds};
use raida_healing::tickets::{
    CreateError, TicketPool, MAX_COINS_PER_TICKET, MAX_TICKETS_PER_COIN, POOL_CAPACITY,
    POOL_MEMORY_BOUND, TICKET_CHARGE, TICKET_LIFETIME,
};

/// glibc's per-block header (a chunk's size word, rounded to 16).
const MALLOC_OVERHEAD: isize = 16;

struct Counting;

static IN_USE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: forwards to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        IN_USE.fetch_add(layout.size() as isize + MALLOC_OVERHEAD, Ordering::Relaxed);
        // SAFETY: the caller's contract, forwarded.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        IN_USE.fetch_add(layout.size() as isize + MALLOC_OVERHEAD, Ordering::Relaxed);
        // SAFETY: the caller's contract, forwarded.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        IN_USE.fetch_sub(layout.size() as isize + MALLOC_OVERHEAD, Ordering::Relaxed);
        // SAFETY: the caller's contract, forwarded.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        IN_USE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        // SAFETY: the caller's contract, forwarded.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// `n` distinct coins in wire form, from serial number `first` on.
fn wire(first: u32, n: usize) -> Vec<u8> {
    (0..n as u32)
        .flat_map(|i| {
            let sn = first + i;
            let mut coin = [0u8; COIN_BYTES];
            coin[0] = 1 + (sn % 7) as u8;
            coin[1..].copy_from_slice(&sn.to_be_bytes());
            coin
        })
        .collect()
}

/// Fills a production pool with distinct `coins_per_ticket`-coin tickets until it
/// answers full; returns (tickets made, bytes the pool holds then).
fn fill(coins_per_ticket: usize) -> (usize, isize) {
    let before = IN_USE.load(Ordering::Relaxed);
    let pool = TicketPool::new(
        Box::<ManualClock>::default(),
        Box::new(ScriptedIds::new(&[1])),
    );
    let mut made = 0;
    let mut sn = 0u32;
    loop {
        let coins = wire(sn, coins_per_ticket);
        sn += coins_per_ticket as u32;
        match pool.create_from_wire(&coins) {
            Ok(_) => made += 1,
            Err(CreateError::PoolFull) => break,
            Err(other) => panic!("{other:?}"),
        }
    }
    let held = IN_USE.load(Ordering::Relaxed) - before;
    drop(pool);
    (made, held)
}

/// One test (not several) so no other test's allocations run alongside the count.
#[test]
fn full_pools_stay_within_the_documented_memory() {
    let (one_coin, one_coin_bytes) = fill(1);
    assert_eq!(one_coin, POOL_CAPACITY / (1 + TICKET_CHARGE));
    let (large, large_bytes) = fill(3119);
    assert_eq!(large, POOL_CAPACITY / (3119 + TICKET_CHARGE));
    let mib = |b: isize| b as f64 / (1 << 20) as f64;
    eprintln!(
        "one-coin: {one_coin} tickets, {:.2} MiB; 3119-coin: {large} tickets, {:.2} MiB; bound {:.2} MiB",
        mib(one_coin_bytes),
        mib(large_bytes),
        mib(POOL_MEMORY_BOUND as isize)
    );
    assert!(
        one_coin_bytes <= POOL_MEMORY_BOUND as isize,
        "one-coin pool: {one_coin_bytes} bytes"
    );
    assert!(
        large_bytes <= POOL_MEMORY_BOUND as isize,
        "3119-coin pool: {large_bytes} bytes"
    );

    taking_one_coin_from_a_4096_coin_ticket();
}

/// A coin taken from a 4,096-coin ticket (by the fifth ticket listing it) leaves the
/// ticket its other 4,095 coins, in order; the coin answers on the four newest.
fn taking_one_coin_from_a_4096_coin_ticket() {
    let clock = ManualClock::default();
    let pool = TicketPool::new(Box::new(clock.clone()), Box::new(ScriptedIds::new(&[1])));
    let big = wire(0, MAX_COINS_PER_TICKET);
    let first = pool.create_from_wire(&big).unwrap();
    let one = &big[..COIN_BYTES];
    let newer: Vec<u32> = (0..MAX_TICKETS_PER_COIN)
        .map(|_| {
            clock.advance(Duration::from_secs(1));
            pool.create_from_wire(one).unwrap()
        })
        .collect();
    assert_eq!(&*pool.claim(first, 0).unwrap(), &big[COIN_BYTES..]);
    for id in newer {
        assert_eq!(&*pool.claim(id, 0).unwrap(), one);
    }
    assert_eq!(
        pool.coins_held(),
        MAX_COINS_PER_TICKET - 1 + MAX_TICKETS_PER_COIN
    );
    // the big ticket expires on time (300 s after it was made, 4 s before the newest)
    // and its coins leave the pool with it
    clock.advance(TICKET_LIFETIME - Duration::from_secs(MAX_TICKETS_PER_COIN as u64));
    assert_eq!(pool.live(), MAX_TICKETS_PER_COIN);
    assert_eq!(pool.coins_held(), MAX_TICKETS_PER_COIN);
}
