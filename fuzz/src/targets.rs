//! One runner per fuzz target. Each keeps the state that must outlive a single input
//! (ticket pools and what the harness knows about their tickets) and checks one input
//! through both paths.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use raida_healing::protocol::{Coin, Response};
use raida_healing::tickets::testing::ManualClock;
use raida_healing::tickets::{
    OsRandomIds, TicketPool, POOL_CAPACITY, TICKET_CHARGE, TICKET_LIFETIME,
};

use crate::oracle::{self, status::*, Predicted};
use crate::{abi, host, model, shape, Command, Input};
use kit::node::Server;
use kit::wire::coins_wire as wire;

/// Coins the safe-core twin's pool can hold: small, so the full-pool path (42) is
/// reached often.
const CORE_POOL_CAPACITY: usize = 8;

/// The coin id every request carries (it only travels to peers, and fix has none here).
const COIN_ID: u8 = 1;

/// The safe-core twin of the server: the model store, a pool on a manual clock, no peers.
struct CoreTwin {
    server: Server<model::ModelStore>,
    clock: ManualClock,
}

impl Default for CoreTwin {
    fn default() -> Self {
        CoreTwin::new(CORE_POOL_CAPACITY)
    }
}

impl CoreTwin {
    /// A twin whose pool holds `capacity` coins; points the fuzz host at RAIDA 0 first.
    fn new(capacity: usize) -> CoreTwin {
        host::configure(0, COIN_ID);
        let clock = ManualClock::default();
        let pool = TicketPool::with_limits(
            Box::new(clock.clone()),
            Box::new(OsRandomIds),
            capacity,
            TICKET_LIFETIME,
        );
        CoreTwin {
            server: Server::new(0, model::ModelStore::default(), pool),
            clock,
        }
    }

    fn run(&self, cmd: Command, input: &Input<'_>) -> Response {
        self.server
            .run(cmd, input.body, input.encryption_type, COIN_ID)
    }

    /// Runs `cmd`; checks the answer's shape for `n` records and that it is exactly
    /// `predicted`.
    fn run_exact(&self, cmd: Command, input: &Input<'_>, n: usize, predicted: &Predicted) {
        let r = self.run(cmd, input);
        shape::check(cmd, n, r.status.code(), &r.body);
        assert_eq!(
            (r.status.code(), &r.body.to_vec()),
            (predicted.status, &predicted.body),
            "core"
        );
    }
}

/// Runs `cmd` through the exported C handler; checks the answer's shape for `n` records
/// and that it is exactly `predicted`.
fn abi_exact(cmd: Command, input: &Input<'_>, n: usize, predicted: &Predicted) {
    let ans = abi::call(cmd, input.body, input.encryption_type, COIN_ID);
    shape::check(cmd, n, ans.status, &ans.body);
    assert_eq!(
        (ans.status, &ans.body),
        (predicted.status, &predicted.body),
        "abi"
    );
}

/// Checks an answer with a ticket against its prediction (status, bitfield, non-zero id)
/// and returns the ticket id.
fn ticket_answer(cmd_path: &str, predicted: &Predicted, status: u8, body: &[u8]) -> u32 {
    assert_eq!(status, predicted.status, "{cmd_path}: status");
    assert_eq!(
        body.len(),
        predicted.body.len() + 4,
        "{cmd_path}: body length"
    );
    assert_eq!(
        &body[..predicted.body.len()],
        &predicted.body[..],
        "{cmd_path}: bitfield"
    );
    let id = u32::from_be_bytes(body[body.len() - 4..].try_into().expect("4 bytes"));
    assert_ne!(id, 0, "{cmd_path}: ticket id 0");
    id
}

/// A legacy validate_ticket body (zero challenge, claimer, ticket id, trailer).
fn validate_body(claimer: u8, ticket: u32) -> Vec<u8> {
    let mut body = vec![0u8; 16];
    body.push(claimer);
    body.extend_from_slice(&ticket.to_be_bytes());
    body.extend_from_slice(&[0x3e, 0x3e]);
    body
}

/// A legacy get_ticket body listing `coins` with their stored ANs (all pass).
fn passing_get_ticket_body(coins: &[Coin]) -> Vec<u8> {
    let mut body = vec![0u8; 16];
    for &c in coins {
        body.extend_from_slice(&c.to_wire());
        body.extend_from_slice(&model::stored_an(c));
    }
    body.extend_from_slice(&[0x3e, 0x3e]);
    body
}

// ---------------------------------------------------------------------------------------
// get_ticket

/// get_ticket: flags bit 0 fills the twin's pool first (the 42 path).
#[derive(Default)]
pub struct GetTicket {
    core: CoreTwin,
    /// When the C path created each ticket and how many coins it lists (its pool is the
    /// library's process-wide one, POOL_CAPACITY, 300 s on the real clock).
    abi_created: VecDeque<(Instant, usize)>,
}

impl GetTicket {
    /// Checks one decoded input through both paths.
    pub fn run(&mut self, input: Input<'_>) {
        let predicted = oracle::get_ticket(input.encryption_type, input.body);
        let n = input.payload_len() / 21;

        // A ticket lists each passing coin once, at its first place.
        let listed: Option<Vec<Coin>> = predicted.ticket.as_ref().map(|coins| {
            let mut listed: Vec<Coin> = Vec::new();
            for &c in coins {
                if !listed.contains(&c) {
                    listed.push(c);
                }
            }
            listed
        });

        // Safe core, with the pool's counts in view.
        let pool = &self.core.server.pool;
        if input.flags & 1 != 0 {
            // Filled with coins of a denomination without pages, which no request can
            // pass, so none is ever taken by a request's ticket: the pool is exactly full.
            let mut sn = 0;
            while pool
                .create(&[Coin {
                    den: model::DEN_WITHOUT_PAGES,
                    sn,
                }])
                .is_ok()
            {
                sn += 1;
            }
            assert_eq!(pool.free_capacity(), 0, "core: filled pool has room");
        } else if pool.free_capacity() == 0 {
            self.core.clock.advance(TICKET_LIFETIME);
        }
        let free = pool.free_capacity();
        let live = pool.live();
        let r = self.core.run(Command::GetTicket, &input);
        let (status, body) = (r.status.code(), r.body.into_vec());
        shape::check(Command::GetTicket, n, status, &body);
        match &listed {
            Some(coins) if status == NO_TICKET_SLOT => {
                // Only a pool without room for the coins refuses (coins taken from older
                // tickets can make room, never less).
                assert!(
                    free < coins.len(),
                    "core: 42 with {free} free for {}",
                    coins.len()
                );
                assert!(body.is_empty());
                assert_eq!(pool.live(), live, "core: a 42 left a ticket");
            }
            Some(coins) => {
                let id = ticket_answer("core", &predicted, status, &body);
                // The new ticket, less older ones that lost their last coin to it.
                assert!(pool.live() <= live + 1, "core: more than one new ticket");
                let listed = pool
                    .claim(id, 0)
                    .expect("core: the new ticket is claimable");
                assert_eq!(
                    &listed[..],
                    &wire(coins)[..],
                    "core: ticket lists the passing coins"
                );
            }
            None => {
                assert_eq!((status, &body), (predicted.status, &predicted.body), "core");
                assert_eq!(
                    pool.live(),
                    live,
                    "core: rejected request left a ticket behind"
                );
            }
        }

        // The C path.
        let ans = abi::call(
            Command::GetTicket,
            input.body,
            input.encryption_type,
            COIN_ID,
        );
        shape::check(Command::GetTicket, n, ans.status, &ans.body);
        match &listed {
            Some(coins) if ans.status == NO_TICKET_SLOT => {
                // Only a pool really full (coins plus TICKET_CHARGE a ticket reaching
                // POOL_CAPACITY) may refuse; a rejected request that leaked a ticket would
                // make this come early.
                let horizon = TICKET_LIFETIME + Duration::from_secs(2);
                while self
                    .abi_created
                    .front()
                    .is_some_and(|(t, _)| t.elapsed() > horizon)
                {
                    self.abi_created.pop_front();
                }
                let held: usize = self
                    .abi_created
                    .iter()
                    .map(|&(_, n)| n + TICKET_CHARGE)
                    .sum();
                assert!(
                    held + coins.len() + TICKET_CHARGE > POOL_CAPACITY,
                    "abi: 42 with only {held} coins put on tickets in the last 302 s"
                );
                assert!(ans.body.is_empty());
            }
            Some(coins) => {
                let id = ticket_answer("abi", &predicted, ans.status, &ans.body);
                self.abi_created.push_back((Instant::now(), coins.len()));
                let claim = abi::call(
                    Command::ValidateTicket,
                    Some(&validate_body(0, id)),
                    0,
                    COIN_ID,
                );
                assert_eq!(
                    (claim.status, claim.body),
                    (SUCCESS, wire(coins)),
                    "abi: the new ticket lists the passing coins"
                );
            }
            None => assert_eq!(
                (ans.status, &ans.body),
                (predicted.status, &predicted.body),
                "abi"
            ),
        }
    }
}

// ---------------------------------------------------------------------------------------
// find

/// find: read-only, so one oracle answer fits both paths.
#[derive(Default)]
pub struct Find {
    core: CoreTwin,
}

impl Find {
    /// Checks one decoded input through both paths.
    pub fn run(&mut self, input: Input<'_>) {
        let predicted = oracle::find(input.encryption_type, input.body);
        let n = input.payload_len() / 37;
        self.core.run_exact(Command::Find, &input, n, &predicted);
        abi_exact(Command::Find, &input, n, &predicted);
        assert!(
            self.core.server.store.writes().is_empty(),
            "find wrote a record"
        );
        assert!(
            host::take_bitmap_used().is_empty(),
            "find marked a serial used"
        );
    }
}

// ---------------------------------------------------------------------------------------
// validate_ticket

/// What the harness knows about one ticket it created.
#[derive(Debug, Clone)]
struct Known<T> {
    wire: Vec<u8>,
    claims: u32,
    created: T,
}

/// Tickets the harness keeps ready for claims.
const RING: usize = 8;

/// The coins of ring ticket `slot` (1 to 13 valid coins, mostly sharing a page). Each
/// generation has coins of its own (13 consecutive places in the model's coin space, which
/// wraps after about 8800 generations), so no coin is on the several live tickets that
/// would let a newer ticket take it from an older one (tickets::MAX_TICKETS_PER_COIN).
fn ring_coins(slot: usize, generation: u32) -> Vec<Coin> {
    const DENS: [i8; 14] = [1, -8, 6, 0, -1, 2, -2, 4, -3, 5, -4, -5, -6, -7];
    let count = 1 + (slot * 5 + generation as usize) % 13;
    let per_den = model::PAGES_PER_DEN * 1024;
    let space = per_den * DENS.len() as u32;
    (0..count as u32)
        .map(|k| {
            let place = (generation % (space / 13)) * 13 + k;
            Coin {
                den: DENS[(place / per_den) as usize],
                sn: place % per_den,
            }
        })
        .collect()
}

/// validate_ticket: flags bits 0-2 pick a ring ticket, bit 3 set keeps the body's own
/// ticket id (else the ring ticket's id is patched in, in each path's own pool), bit 4
/// moves the twin's clock past the ticket lifetime first (expiry: 43).
pub struct ValidateTicket {
    core: CoreTwin,
    core_known: HashMap<u32, Known<Duration>>,
    core_ring: [u32; RING],
    abi_known: HashMap<u32, Known<Instant>>,
    abi_ring: [u32; RING],
    generation: u32,
}

impl Default for ValidateTicket {
    fn default() -> Self {
        ValidateTicket {
            // room for 64 ring tickets of up to 13 coins
            core: CoreTwin::new(64 * 13),
            core_known: HashMap::new(),
            core_ring: [0; RING],
            abi_known: HashMap::new(),
            abi_ring: [0; RING],
            generation: 0,
        }
    }
}

/// Replaces the ticket id inside a validate_ticket payload, where the body has one.
fn patch_ticket(input: &Input<'_>, id: u32) -> Option<Vec<u8>> {
    let body = input.body?;
    let start = if matches!(input.encryption_type, 4 | 5) {
        0
    } else {
        16
    };
    let payload_len = oracle::payload(input.encryption_type, Some(body))
        .ok()?
        .len();
    if payload_len < 5 {
        return None;
    }
    let mut patched = body.to_vec();
    patched[start + 1..start + 5].copy_from_slice(&id.to_be_bytes());
    Some(patched)
}

impl ValidateTicket {
    fn core_now(&self) -> Duration {
        raida_healing::tickets::Clock::now(&self.core.clock)
    }

    fn core_live(&self, id: u32) -> Option<&Known<Duration>> {
        let now = self.core_now();
        self.core_known
            .get(&id)
            .filter(|k| now.saturating_sub(k.created) < TICKET_LIFETIME)
    }

    /// Keeps every ring slot holding a live ticket with an unclaimed claimer left.
    fn refill_core_ring(&mut self) {
        for slot in 0..RING {
            let keep = self
                .core_live(self.core_ring[slot])
                .is_some_and(|k| k.claims != (1 << 25) - 1);
            if keep {
                continue;
            }
            self.generation = self.generation.wrapping_add(1);
            let coins = ring_coins(slot, self.generation);
            let id = match self.core.server.pool.create(&coins) {
                Ok(id) => id,
                Err(_) => {
                    assert!(
                        self.core.server.pool.free_capacity() < coins.len(),
                        "core: create failed, pool not full"
                    );
                    self.core.clock.advance(TICKET_LIFETIME);
                    self.core
                        .server
                        .pool
                        .create(&coins)
                        .expect("core: empty pool creates")
                }
            };
            let created = self.core_now();
            self.core_known.insert(
                id,
                Known {
                    wire: wire(&coins),
                    claims: 0,
                    created,
                },
            );
            self.core_ring[slot] = id;
        }
        let now = self.core_now();
        self.core_known
            .retain(|_, k| now.saturating_sub(k.created) < TICKET_LIFETIME);
    }

    /// Keeps the C path's ring fresh: a ticket older than 240 s is replaced (the library's
    /// pool expires it at 300 s on the real clock).
    fn refill_abi_ring(&mut self) {
        for slot in 0..RING {
            let fresh = self.abi_known.get(&self.abi_ring[slot]).is_some_and(|k| {
                k.created.elapsed() < Duration::from_secs(240) && k.claims != (1 << 25) - 1
            });
            if fresh {
                continue;
            }
            self.generation = self.generation.wrapping_add(1);
            let coins = ring_coins(slot, self.generation);
            let ans = abi::call(
                Command::GetTicket,
                Some(&passing_get_ticket_body(&coins)),
                0,
                COIN_ID,
            );
            if ans.status == NO_TICKET_SLOT {
                // Only ring tickets live in this binary's pool: 512 of them in 300 s means
                // claims exhausted them; keep the old ones.
                continue;
            }
            assert_eq!(ans.status, ALL_PASS, "abi: ring get_ticket");
            let id = u32::from_be_bytes(ans.body[..4].try_into().expect("4 bytes"));
            self.abi_known.insert(
                id,
                Known {
                    wire: wire(&coins),
                    claims: 0,
                    created: Instant::now(),
                },
            );
            self.abi_ring[slot] = id;
        }
        self.abi_known
            .retain(|_, k| k.created.elapsed() < TICKET_LIFETIME + Duration::from_secs(5));
    }

    /// Checks one decoded input through both paths.
    pub fn run(&mut self, input: Input<'_>) {
        let slot = usize::from(input.flags & 7);
        let patch = input.flags & 8 == 0;

        // Safe core, on the manual clock.
        self.refill_core_ring();
        if input.flags & 16 != 0 {
            self.core.clock.advance(TICKET_LIFETIME);
        }
        let patched = patch
            .then(|| patch_ticket(&input, self.core_ring[slot]))
            .flatten();
        let core_input = Input {
            body: patched.as_deref().or(input.body),
            ..input
        };
        let live = self.core.server.pool.live();
        let r = self.core.run(Command::ValidateTicket, &core_input);
        let (status, body) = (r.status.code(), r.body.into_vec());
        shape::check(Command::ValidateTicket, 0, status, &body);
        let now = self.core_now();
        let expected = match oracle::validate_request(core_input.encryption_type, core_input.body) {
            Err(s) => (s, Vec::new()),
            Ok((claimer, id)) => match self.core_known.get_mut(&id) {
                Some(k) if now.saturating_sub(k.created) < TICKET_LIFETIME => {
                    let bit = 1u32 << claimer;
                    if k.claims & bit != 0 {
                        (TICKET_CLAIMED_ALREADY, Vec::new())
                    } else {
                        k.claims |= bit;
                        (SUCCESS, k.wire.clone())
                    }
                }
                _ => (NO_TICKET_FOUND, Vec::new()),
            },
        };
        assert_eq!((status, body), expected, "core");
        assert_eq!(
            self.core.server.pool.live(),
            live,
            "core: a claim changed the live count"
        );

        // The C path, on the real clock.
        self.refill_abi_ring();
        let patched = patch
            .then(|| patch_ticket(&input, self.abi_ring[slot]))
            .flatten();
        let body = patched.as_deref().or(input.body);
        let ans = abi::call(
            Command::ValidateTicket,
            body,
            input.encryption_type,
            COIN_ID,
        );
        shape::check(Command::ValidateTicket, 0, ans.status, &ans.body);
        let expected = match oracle::validate_request(input.encryption_type, body) {
            Err(s) => (s, Vec::new()),
            Ok((claimer, id)) => match self.abi_known.get_mut(&id) {
                Some(k) => {
                    let age = k.created.elapsed();
                    if age >= TICKET_LIFETIME + Duration::from_secs(1) {
                        (NO_TICKET_FOUND, Vec::new())
                    } else if age >= TICKET_LIFETIME - Duration::from_secs(1)
                        && ans.status == NO_TICKET_FOUND
                    {
                        // At the lifetime's edge either answer is right.
                        (NO_TICKET_FOUND, Vec::new())
                    } else if k.claims & (1u32 << claimer) != 0 {
                        (TICKET_CLAIMED_ALREADY, Vec::new())
                    } else {
                        k.claims |= 1u32 << claimer;
                        (SUCCESS, k.wire.clone())
                    }
                }
                None => (NO_TICKET_FOUND, Vec::new()),
            },
        };
        assert_eq!((ans.status, ans.body), expected, "abi");
    }
}

// ---------------------------------------------------------------------------------------
// fix

/// fix with no peer reachable: sizes, page checks and "nothing fixed without votes".
/// flags: this server's RAIDA index (flags % 25).
#[derive(Default)]
pub struct Fix {
    core: CoreTwin,
}

impl Fix {
    /// Checks one decoded input through both paths.
    pub fn run(&mut self, input: Input<'_>) {
        let raida_no = input.flags % 25;
        self.core.server.config.raida_no = raida_no;
        host::configure(raida_no, COIN_ID);
        let predicted = oracle::fix_without_peers(input.encryption_type, input.body);
        let n = input.payload_len().saturating_sub(116) / 5;
        let coins = oracle::fix_coins(input.encryption_type, input.body);

        self.core.run_exact(Command::Fix, &input, n, &predicted);
        assert!(
            self.core.server.store.writes().is_empty(),
            "core: fix without votes wrote"
        );

        let logged = host::log_lines();
        abi_exact(Command::Fix, &input, n, &predicted);
        // Every fix leaves a line in the server's own log (its summary, or why it
        // answered before asking anyone): the library found the host's log functions.
        assert!(host::log_lines() > logged, "fix logged nothing to the host");
        assert!(
            host::take_bitmap_used().is_empty(),
            "abi: fix without votes marked a serial"
        );
        if predicted.status == ALL_FAIL {
            for &c in coins.iter().take(64) {
                assert_eq!(
                    host::stored_an(c),
                    model::stored_an(c),
                    "abi: {c:?} rewritten"
                );
            }
        }
    }
}
