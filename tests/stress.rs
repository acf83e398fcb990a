//! Concurrency stress: get_ticket, validate_ticket, find and fix run together for a
//! bounded time on overlapping coins, fix against 24 loopback peers, while an injected
//! clock expires tickets under them. A watchdog fails the test if the workers do not
//! finish (a deadlock). Afterwards:
//! - every ticket was claimed at most once per RAIDA, here and on every peer;
//! - a claim answered 44 only where the same RAIDA's claim had succeeded, 43 never for a
//!   ticket that was certainly live, 250 never for one certainly expired, and 250 always
//!   with the ticket's coins less only coins that newer tickets took (a coin sits on at
//!   most MAX_TICKETS_PER_COIN live tickets);
//! - the pool's live and free counts are exact (every created ticket probed);
//! - every record is its old (AN, MFS) or its new one, never a mix, and no other record
//!   of a touched page changed;
//! - no request held two pages at once (the design), so pages are trivially locked in one
//!   global order; any nesting is reported with its order.
//!
//! Pass/fail never depends on speed: the run lasts RUN_FOR *and* until every worker has
//! done MIN_ROUNDS rounds; timeouts are safety nets only.

use std::cell::RefCell;
use std::collections::HashMap;
use std::io::Write;
use std::net::SocketAddrV4;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use kit::peers::FakePeer;
use kit::request::{check_request, read_request};
use kit::wire::{coins_wire as wire, frame_response, legacy_body};

use raida_healing::claims::ClaimGate;
use raida_healing::commands::{Command, Node, NodeConfig, Request};
use raida_healing::hash::derive_an;
use raida_healing::peers::{PeerClient, PeerOptions};
use raida_healing::protocol::{Coin, Response, Status};
use raida_healing::store::{CoinStore, MemoryStore, PageKey, PageRecords};
use raida_healing::tickets::testing::{ManualClock, ScriptedIds};
use raida_healing::tickets::{Clock, TicketPool, MAX_TICKETS_PER_COIN};

/// This server's RAIDA index.
const ME: u8 = 0;
/// The coin id every request carries.
const COIN_ID: u8 = 6;
/// Ticket lifetime on the injected clock.
const LIFETIME: Duration = Duration::from_secs(300);
/// Each tick of the clock thread.
const TICK: Duration = Duration::from_secs(20);
/// Coins this server's pool holds (small, so 42 happens too).
const CAPACITY: usize = 32;
/// MFS of the records before the run, and the stamp fix writes.
const OLD_MFS: u8 = 1;
const NEW_MFS: u8 = 45;
/// The owner's proposed generator every fix sends.
const PG: [u8; 16] = *b"stress-test PG!!";
/// How long the workers run at least, and the rounds each must complete.
const RUN_FOR: Duration = Duration::from_secs(6);
const MIN_ROUNDS: usize = 20;
/// The watchdog: workers still running this long after the start are deadlocked.
const WATCHDOG: Duration = Duration::from_secs(120);

/// The coins every worker draws from: several pages, several denominations.
fn coins() -> Vec<Coin> {
    let mut coins = Vec::new();
    for (den, start) in [
        (1i8, 0u32),
        (1, 1024),
        (1, 5000),
        (-2, 0),
        (-2, 2048),
        (6, 100),
    ] {
        for k in 0..8 {
            coins.push(Coin { den, sn: start + k });
        }
    }
    coins
}

fn old_an(coin: Coin) -> [u8; 16] {
    let w = coin.to_wire();
    std::array::from_fn(|i| w[i % 5] ^ 0x5a ^ i as u8)
}

fn new_an(coin: Coin) -> [u8; 16] {
    derive_an(ME, coin, &PG, 0)
}

/// A small deterministic generator (xorshift64*), one per worker.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }
}

// ---------------------------------------------------------------------------------------
// A store that watches lock nesting

thread_local! {
    /// Pages this thread holds through the watched store, in locking order.
    static HELD: RefCell<Vec<PageKey>> = const { RefCell::new(Vec::new()) };
}

/// Wraps a store and records, per thread, which pages are held when another is locked.
struct LockWatch<S> {
    inner: S,
    max_depth: AtomicUsize,
    /// Nested locks that broke the global (denomination, page) ascending order.
    out_of_order: Mutex<Vec<(PageKey, PageKey)>>,
    locks: AtomicUsize,
}

impl<S: CoinStore> CoinStore for LockWatch<S> {
    fn with_page<R>(&self, key: PageKey, f: impl FnOnce(&mut PageRecords<'_>) -> R) -> Option<R> {
        let depth = HELD.with(|held| {
            let mut held = held.borrow_mut();
            if let Some(&last) = held.last() {
                if last >= key {
                    self.out_of_order.lock().unwrap().push((last, key));
                }
            }
            held.push(key);
            held.len()
        });
        self.max_depth.fetch_max(depth, Ordering::SeqCst);
        self.locks.fetch_add(1, Ordering::Relaxed);
        let result = self.inner.with_page(key, f);
        HELD.with(|held| held.borrow_mut().pop());
        result
    }

    fn mfs(&self) -> u8 {
        self.inner.mfs()
    }
}

// ---------------------------------------------------------------------------------------
// Loopback peers: real validate_ticket handlers over their own pools

/// A successful claim a peer answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct PeerClaim {
    peer: u8,
    ticket: u32,
    claimer: u8,
}

/// One fake peer RAIDA: a TCP listener whose connections are answered by the library's
/// own validate_ticket over the peer's pool, framed as a legacy server frames it.
struct Peer {
    raida: u8,
    addr: SocketAddrV4,
    pool: Arc<TicketPool>,
    claims: Arc<Mutex<Vec<PeerClaim>>>,
    /// Requests that broke the documented 55-byte frame.
    bad_requests: Arc<Mutex<Vec<String>>>,
    _listener: FakePeer,
}

impl Peer {
    fn spawn(raida: u8, clock: &ManualClock) -> Peer {
        let pool = Arc::new(TicketPool::with_limits(
            Box::new(clock.clone()),
            Box::new(ScriptedIds::new(&[1])),
            100_000,
            LIFETIME,
        ));
        let claims = Arc::new(Mutex::new(Vec::new()));
        let bad_requests = Arc::new(Mutex::new(Vec::new()));
        let listener = {
            let (pool, claims, bad) = (
                Arc::clone(&pool),
                Arc::clone(&claims),
                Arc::clone(&bad_requests),
            );
            let store = MemoryStore::new();
            let config = kit::node::config(raida);
            let options = PeerOptions::default();
            let (gate, client) = (ClaimGate::default(), PeerClient::default());
            FakePeer::spawn(move |mut stream| {
                let node = Node {
                    store: &store,
                    tickets: &pool,
                    claims: &gate,
                    config: &config,
                    peer_options: &options,
                    peers: &client,
                    fix_stats: &Default::default(),
                };
                let Some(request) = read_request(&mut stream, Duration::from_secs(10)) else {
                    // The client gave up (its answer was already decided).
                    return;
                };
                if let Err(why) = check_request(&request, raida, ME, COIN_ID, None) {
                    bad.lock().unwrap().push(why);
                }
                let body = &request[32..];
                let response = node.run(
                    Command::ValidateTicket,
                    &kit::node::request(Some(body), 0, COIN_ID),
                );
                if response.status == Status::Success {
                    claims.lock().unwrap().push(PeerClaim {
                        peer: raida,
                        ticket: u32::from_be_bytes(body[17..21].try_into().unwrap()),
                        claimer: body[16],
                    });
                }
                // The client may have closed already (a hedge it no longer needs).
                let _ = stream.write_all(&frame_response(raida, &body[..16], &response));
            })
        };
        Peer {
            raida,
            addr: listener.addr,
            pool,
            claims,
            bad_requests,
            _listener: listener,
        }
    }
}

// ---------------------------------------------------------------------------------------
// The world the workers share

/// A ticket this server issued, with the clock bracket around its creation.
#[derive(Debug, Clone)]
struct Issued {
    id: u32,
    wire: Vec<u8>,
    created_after: Duration,
    created_before: Duration,
}

/// One validate_ticket answer, with the clock bracket around the call.
#[derive(Debug, Clone)]
struct ClaimRecord {
    ticket: u32,
    claimer: u8,
    status: Status,
    body: Vec<u8>,
    after: Duration,
    before: Duration,
}

/// Counts that show the run reached the states it is about.
#[derive(Default)]
struct Tally {
    fix_pinned: AtomicUsize,
    coins_fixed: AtomicUsize,
    pool_full: AtomicUsize,
    expired_claims: AtomicUsize,
    clock_ticks: AtomicUsize,
}

struct World {
    store: LockWatch<MemoryStore>,
    clock: ManualClock,
    pool: TicketPool,
    config: NodeConfig,
    options: PeerOptions,
    gate: ClaimGate,
    peers: PeerClient,
    fix_stats: raida_healing::metrics::FixStats,
    coins: Vec<Coin>,
    issued: Mutex<Vec<Issued>>,
    claims: Mutex<Vec<ClaimRecord>>,
    /// Held for reading by a "pinned" fix: the clock does not move during it.
    clock_gate: RwLock<()>,
    stop: AtomicBool,
    tally: Tally,
}

impl World {
    fn node(&self) -> Node<'_, LockWatch<MemoryStore>> {
        Node {
            store: &self.store,
            tickets: &self.pool,
            claims: &self.gate,
            config: &self.config,
            peer_options: &self.options,
            peers: &self.peers,
            fix_stats: &self.fix_stats,
        }
    }

    fn run(&self, command: Command, body: &[u8]) -> Response {
        self.node().run(
            command,
            &Request {
                body: Some(body),
                encryption_type: 0,
                coin_id: COIN_ID,
                client: None,
            },
        )
    }

    fn now(&self) -> Duration {
        self.clock.now()
    }
}

fn bit(bits: &[u8], i: usize) -> bool {
    bits[i / 8] & (1 << (i % 8)) != 0
}

// ---------------------------------------------------------------------------------------
// Workers

/// get_ticket on random coins with old, new or wrong ANs; wrong ones must never pass.
fn get_ticket_round(world: &World, rng: &mut Rng) {
    let n = 1 + rng.below(12);
    let mut payload = Vec::new();
    let mut chosen = Vec::new();
    for _ in 0..n {
        let coin = rng.pick(&world.coins);
        let (an, honest) = match rng.below(3) {
            0 => (old_an(coin), true),
            1 => (new_an(coin), true),
            _ => ([0xee; 16], false),
        };
        payload.extend_from_slice(&coin.to_wire());
        payload.extend_from_slice(&an);
        chosen.push((coin, honest));
    }
    let after = world.now();
    let r = world.run(Command::GetTicket, &legacy_body(&payload));
    let before = world.now();
    let passed: Vec<bool> = match r.status {
        Status::AllFail => vec![false; n],
        Status::AllPass => vec![true; n],
        Status::Mixed => (0..n).map(|i| bit(&r.body, i)).collect(),
        Status::NoTicketSlot => {
            assert!(r.body.is_empty());
            world.tally.pool_full.fetch_add(1, Ordering::Relaxed);
            return;
        }
        other => panic!("get_ticket answered {other:?}"),
    };
    for (&(coin, honest), &p) in chosen.iter().zip(&passed) {
        assert!(honest || !p, "{coin:?} passed with a wrong AN");
    }
    if passed.iter().any(|&p| p) {
        let expected_len = if r.status == Status::AllPass {
            4
        } else {
            n.div_ceil(8) + 4
        };
        assert_eq!(r.body.len(), expected_len);
        let id = u32::from_be_bytes(r.body[r.body.len() - 4..].try_into().unwrap());
        // each passing coin once, at its first place
        let mut listed: Vec<Coin> = Vec::new();
        for (&(c, _), _) in chosen.iter().zip(&passed).filter(|(_, &p)| p) {
            if !listed.contains(&c) {
                listed.push(c);
            }
        }
        world.issued.lock().unwrap().push(Issued {
            id,
            wire: wire(&listed),
            created_after: after,
            created_before: before,
        });
    } else {
        assert!(r.body.is_empty());
    }
}

/// A live ticket `t` answered `body`: its coins in order, less coins that newer tickets
/// took (each missing coin is on at least MAX_TICKETS_PER_COIN other issued tickets).
fn check_taken_only(issued: &HashMap<u32, Issued>, t: &Issued, body: &[u8]) {
    let mut rest = body.chunks_exact(5).peekable();
    for coin in t.wire.chunks_exact(5) {
        if rest.peek() == Some(&coin) {
            rest.next();
            continue;
        }
        let others = issued
            .values()
            .filter(|o| o.id != t.id && o.wire.chunks_exact(5).any(|c| c == coin))
            .count();
        assert!(
            others >= MAX_TICKETS_PER_COIN,
            "ticket {} lost coin {coin:?}, which only {others} other tickets list",
            t.id
        );
    }
    assert_eq!(
        rest.next(),
        None,
        "ticket {} lists a coin it never had",
        t.id
    );
}

/// validate_ticket by a random peer index (1..25; 0 is kept for the final probe) on a
/// recent ticket, or on an id never issued.
fn validate_round(world: &World, rng: &mut Rng) {
    let ticket = {
        let issued = world.issued.lock().unwrap();
        if issued.is_empty() || rng.below(8) == 0 {
            0x8000_0000 | rng.next() as u32
        } else {
            let recent = issued.len().min(16);
            issued[issued.len() - 1 - rng.below(recent)].id
        }
    };
    let claimer = 1 + rng.below(24) as u8;
    let mut payload = vec![claimer];
    payload.extend_from_slice(&ticket.to_be_bytes());
    let after = world.now();
    let r = world.run(Command::ValidateTicket, &legacy_body(&payload));
    let before = world.now();
    if r.status == Status::NoTicketFound {
        world.tally.expired_claims.fetch_add(1, Ordering::Relaxed);
    }
    world.claims.lock().unwrap().push(ClaimRecord {
        ticket,
        claimer,
        status: r.status,
        body: r.body.into_vec(),
        after,
        before,
    });
}

/// find with AN = old and PAN = new for every coin: each record is one or the other, so
/// a coin answered "neither" (0, or status 208) was seen half written.
fn find_round(world: &World, rng: &mut Rng) {
    let n = 1 + rng.below(16);
    let coins: Vec<Coin> = (0..n).map(|_| rng.pick(&world.coins)).collect();
    let mut payload = Vec::new();
    for &c in &coins {
        payload.extend_from_slice(&c.to_wire());
        payload.extend_from_slice(&old_an(c));
        payload.extend_from_slice(&new_an(c));
    }
    let r = world.run(Command::Find, &legacy_body(&payload));
    match r.status {
        Status::FindAllAn | Status::FindAllPan => assert!(r.body.is_empty()),
        Status::FindMixed => {
            assert_eq!(r.body.len(), n);
            assert!(
                r.body.iter().all(|&b| b == 1 || b == 2),
                "find saw a record that is neither old nor new: {:?}",
                r.body
            );
        }
        other => panic!("find answered {other:?}: a record neither old nor new"),
    }
}

/// fix of random coins: `listing` peers issue a ticket for them, fix asks all 24 peers.
/// A pinned round holds the clock still, so its tickets cannot expire: with 13 or more
/// listing peers it must fix every coin. Any round: a coin answered fixed now holds the
/// new AN.
fn fix_round(world: &World, peers: &[Peer], rng: &mut Rng, pinned: bool) {
    let _gate = pinned.then(|| world.clock_gate.read().unwrap());
    let n = 1 + rng.below(6);
    let coins: Vec<Coin> = (0..n).map(|_| rng.pick(&world.coins)).collect();
    let listing = if pinned {
        13 + rng.below(12)
    } else {
        10 + rng.below(15)
    };
    let mut order: Vec<usize> = (0..peers.len()).collect();
    for i in (1..order.len()).rev() {
        order.swap(i, rng.below(i + 1));
    }
    let mut tickets = [0u32; 25];
    for &p in order.iter().take(listing) {
        let peer = &peers[p];
        tickets[usize::from(peer.raida)] = peer.pool.create(&coins).expect("peer pool has room");
    }
    let mut payload = wire(&coins);
    payload.extend_from_slice(&PG);
    for t in tickets {
        payload.extend_from_slice(&t.to_be_bytes());
    }
    let r = world.run(Command::Fix, &legacy_body(&payload));
    let fixed: Vec<bool> = match r.status {
        Status::AllPass => {
            assert!(r.body.is_empty());
            vec![true; n]
        }
        Status::AllFail => {
            assert!(r.body.is_empty());
            vec![false; n]
        }
        Status::Mixed => {
            assert_eq!(r.body.len(), n.div_ceil(8));
            (0..n).map(|i| bit(&r.body, i)).collect()
        }
        other => panic!("fix answered {other:?}"),
    };
    if pinned {
        assert_eq!(
            r.status,
            Status::AllPass,
            "{listing} live listings must fix every coin"
        );
        world.tally.fix_pinned.fetch_add(1, Ordering::Relaxed);
    }
    for (&coin, &f) in coins.iter().zip(&fixed) {
        if f {
            let (an, mfs) = world.store.inner.get(coin).unwrap();
            assert_eq!(
                (an, mfs),
                (new_an(coin), NEW_MFS),
                "{coin:?} answered fixed"
            );
            world.tally.coins_fixed.fetch_add(1, Ordering::Relaxed);
        }
    }
}

// ---------------------------------------------------------------------------------------

#[test]
fn healing_commands_under_concurrency_and_expiry() {
    let clock = ManualClock::default();
    let peers: Arc<Vec<Peer>> = Arc::new((1..25u8).map(|i| Peer::spawn(i, &clock)).collect());
    let mut addrs = [None; 25];
    for p in peers.iter() {
        addrs[usize::from(p.raida)] = Some(p.addr);
    }
    let store = MemoryStore::with_mfs(NEW_MFS);
    let all_coins = coins();
    for &c in &all_coins {
        store.put(c, old_an(c), OLD_MFS);
    }
    let world = Arc::new(World {
        store: LockWatch {
            inner: store,
            max_depth: AtomicUsize::new(0),
            out_of_order: Mutex::new(Vec::new()),
            locks: AtomicUsize::new(0),
        },
        pool: TicketPool::with_limits(
            Box::new(clock.clone()),
            Box::new(ScriptedIds::new(&[1])),
            CAPACITY,
            LIFETIME,
        ),
        clock,
        config: NodeConfig {
            raida_no: ME,
            peers: addrs,
        },
        // The deadline is a safety net: every fake peer answers.
        options: PeerOptions {
            deadline: Duration::from_secs(20),
            hedge_after: Duration::from_millis(300),
            hedge_start: Duration::from_millis(300),
            ..PeerOptions::default()
        },
        gate: ClaimGate::default(),
        peers: PeerClient::default(),
        fix_stats: Default::default(),
        coins: all_coins.clone(),
        issued: Mutex::new(Vec::new()),
        claims: Mutex::new(Vec::new()),
        clock_gate: RwLock::new(()),
        stop: AtomicBool::new(false),
        tally: Tally::default(),
    });

    // Workers: (name, body). Each runs rounds until told to stop, after MIN_ROUNDS.
    type Round = fn(&World, &[Peer], &mut Rng, usize);
    // The quick ones (third field) pause 20 µs per round so the claim log stays a few
    // hundred thousand entries; nothing depends on it to pass.
    let workers: Vec<(&str, Round, bool)> = vec![
        ("get_ticket-1", |w, _, r, _| get_ticket_round(w, r), true),
        ("get_ticket-2", |w, _, r, _| get_ticket_round(w, r), true),
        ("validate-1", |w, _, r, _| validate_round(w, r), true),
        ("validate-2", |w, _, r, _| validate_round(w, r), true),
        ("find", |w, _, r, _| find_round(w, r), true),
        ("fix-1", |w, p, r, i| fix_round(w, p, r, i % 3 == 0), false),
        ("fix-2", |w, p, r, i| fix_round(w, p, r, i % 3 == 1), false),
    ];
    let started = Instant::now();
    let (done_tx, done_rx) = mpsc::channel::<(String, Result<usize, String>)>();
    let mut handles = Vec::new();
    for (k, &(name, round, quick)) in workers.iter().enumerate() {
        let (world, peers, done_tx, name) = (
            Arc::clone(&world),
            Arc::clone(&peers),
            done_tx.clone(),
            name.to_string(),
        );
        handles.push(std::thread::spawn(move || {
            let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ ((k as u64 + 1) * 0x1234_5678_9abc));
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                let mut rounds = 0;
                while rounds < MIN_ROUNDS || !world.stop.load(Ordering::SeqCst) {
                    round(&world, &peers, &mut rng, rounds);
                    rounds += 1;
                    if quick {
                        std::thread::sleep(Duration::from_micros(20));
                    }
                }
                rounds
            }))
            .map_err(|e| {
                e.downcast_ref::<String>()
                    .cloned()
                    .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default()
            });
            let _ = done_tx.send((name, result));
        }));
    }
    // The clock: moves TICK at a time, never during a pinned fix.
    let clock_thread = {
        let world = Arc::clone(&world);
        std::thread::spawn(move || {
            while !world.stop.load(Ordering::SeqCst) {
                {
                    let _gate = world.clock_gate.write().unwrap();
                    world.clock.advance(TICK);
                }
                world.tally.clock_ticks.fetch_add(1, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(10));
            }
        })
    };

    // Watchdog: every worker must report within WATCHDOG, or the test fails here.
    std::thread::sleep(RUN_FOR);
    world.stop.store(true, Ordering::SeqCst);
    let mut rounds = HashMap::new();
    for _ in 0..workers.len() {
        let left = WATCHDOG.saturating_sub(started.elapsed());
        match done_rx.recv_timeout(left) {
            Ok((name, Ok(n))) => {
                rounds.insert(name, n);
            }
            Ok((name, Err(why))) => panic!("worker {name} failed: {why}"),
            Err(_) => {
                let missing: Vec<_> = workers
                    .iter()
                    .map(|(n, _, _)| n.to_string())
                    .filter(|n| !rounds.contains_key(n))
                    .collect();
                panic!("deadlock: workers {missing:?} still running after {WATCHDOG:?}");
            }
        }
    }
    for h in handles {
        h.join().unwrap();
    }
    clock_thread.join().unwrap();
    let t = &world.tally;
    eprintln!(
        "stress: rounds {rounds:?}; clock ticks {}, pinned fixes {}, coins fixed {}, \
         42 answers {}, 43 answers {}, page locks {}",
        t.clock_ticks.load(Ordering::Relaxed),
        t.fix_pinned.load(Ordering::Relaxed),
        t.coins_fixed.load(Ordering::Relaxed),
        t.pool_full.load(Ordering::Relaxed),
        t.expired_claims.load(Ordering::Relaxed),
        world.store.locks.load(Ordering::Relaxed),
    );
    assert!(t.fix_pinned.load(Ordering::Relaxed) >= MIN_ROUNDS / 3);
    assert!(t.clock_ticks.load(Ordering::Relaxed) > 0);

    // --- locks: one page at a time
    assert_eq!(
        world.store.out_of_order.lock().unwrap().as_slice(),
        &[],
        "pages locked against the global order"
    );
    assert_eq!(
        world.store.max_depth.load(Ordering::SeqCst),
        1,
        "a request held more than one page at once"
    );

    // --- claims on this server
    let issued: HashMap<u32, Issued> = world
        .issued
        .lock()
        .unwrap()
        .iter()
        .map(|i| (i.id, i.clone()))
        .collect();
    let claims = world.claims.lock().unwrap().clone();
    let mut wins: HashMap<(u32, u8), usize> = HashMap::new();
    for c in claims.iter().filter(|c| c.status == Status::Success) {
        *wins.entry((c.ticket, c.claimer)).or_default() += 1;
    }
    for (&(ticket, claimer), &n) in &wins {
        assert_eq!(n, 1, "ticket {ticket} claimed {n} times by RAIDA {claimer}");
    }
    for c in &claims {
        let ticket = issued.get(&c.ticket);
        // Certainly live: even the earliest creation is younger than LIFETIME at the
        // latest moment of the claim. Certainly expired: the reverse.
        let live = ticket.is_some_and(|t| c.before.saturating_sub(t.created_after) < LIFETIME);
        let expired = ticket.is_none_or(|t| c.after.saturating_sub(t.created_before) >= LIFETIME);
        match c.status {
            Status::Success => {
                let t = ticket.expect("250 for a ticket never issued");
                assert!(!expired, "250 for expired ticket {}", c.ticket);
                check_taken_only(&issued, t, &c.body);
            }
            Status::TicketClaimedAlready => {
                assert!(!expired, "44 for expired ticket {}", c.ticket);
                assert_eq!(
                    wins.get(&(c.ticket, c.claimer)),
                    Some(&1),
                    "44 without a successful claim by RAIDA {}",
                    c.claimer
                );
            }
            Status::NoTicketFound => {
                // a live ticket is gone only when newer tickets took all its coins
                if let Some(t) = ticket.filter(|_| live) {
                    check_taken_only(&issued, t, &[]);
                }
            }
            other => panic!("validate_ticket answered {other:?}"),
        }
        assert!(c.status == Status::Success || c.body.is_empty());
    }

    // --- claims on the peers: our fixes claimed each peer ticket at most once
    let mut peer_wins: HashMap<PeerClaim, usize> = HashMap::new();
    for p in peers.iter() {
        assert_eq!(
            p.bad_requests.lock().unwrap().as_slice(),
            &[] as &[String],
            "peer {} got malformed requests",
            p.raida
        );
        for &c in p.claims.lock().unwrap().iter() {
            assert_eq!(c.claimer, ME);
            *peer_wins.entry(c).or_default() += 1;
        }
    }
    for (c, &n) in &peer_wins {
        assert_eq!(n, 1, "{c:?} succeeded {n} times");
    }
    assert!(!peer_wins.is_empty());

    // --- the pool: probe every issued ticket by RAIDA 0 (which no worker used)
    let now = world.now();
    let mut live = 0;
    let mut held = 0;
    for t in issued.values() {
        let mut payload = vec![ME];
        payload.extend_from_slice(&t.id.to_be_bytes());
        let r = world.run(Command::ValidateTicket, &legacy_body(&payload));
        let certainly_live = now.saturating_sub(t.created_after) < LIFETIME;
        let certainly_expired = now.saturating_sub(t.created_before) >= LIFETIME;
        match r.status {
            Status::Success => {
                assert!(!certainly_expired, "expired ticket {} still live", t.id);
                check_taken_only(&issued, t, &r.body);
                live += 1;
                held += r.body.len() / 5;
            }
            Status::NoTicketFound => {
                if certainly_live {
                    check_taken_only(&issued, t, &[]);
                }
            }
            other => panic!("probe of {} answered {other:?}", t.id),
        }
    }
    assert_eq!(world.pool.live(), live, "live count");
    assert_eq!(world.pool.coins_held(), held, "coins held");
    assert_eq!(world.pool.free_capacity(), CAPACITY - held, "free count");
    world.clock.advance(LIFETIME);
    assert_eq!(world.pool.live(), 0);
    assert_eq!(world.pool.free_capacity(), CAPACITY);

    // --- records: old or new, AN and MFS together; nothing else on the pages changed
    let mut now_new = 0;
    for &c in &all_coins {
        let record = world.store.inner.get(c).unwrap();
        if record == (new_an(c), NEW_MFS) {
            now_new += 1;
        } else {
            assert_eq!(record, (old_an(c), OLD_MFS), "{c:?} is a mix");
        }
    }
    assert!(now_new > 0, "no coin was ever fixed");
    let mut pages: Vec<PageKey> = all_coins.iter().map(|&c| PageKey::of(c).unwrap()).collect();
    pages.sort();
    pages.dedup();
    for key in pages {
        for slot in 0..1024 {
            let c = Coin {
                den: key.den,
                sn: key.first_sn() + slot,
            };
            if !all_coins.contains(&c) {
                assert_eq!(
                    world.store.inner.get(c).unwrap(),
                    ([0; 16], 0),
                    "{c:?} was never asked for but changed"
                );
            }
        }
    }
}
