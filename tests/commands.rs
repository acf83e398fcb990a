//! get_ticket, validate_ticket and find through the safe core: every row of the
//! docs/wire-protocol.md tables, exact bytes and statuses, and property tests over random batches.

use kit::node::Server;
use kit::wire::{claim, legacy_body};
use proptest::prelude::*;
use raida_healing::commands::Command;
use raida_healing::protocol::{Coin, Response, Status};
use raida_healing::store::{MemoryStore, PageKey};
use raida_healing::tickets::testing::{ManualClock, ScriptedIds};
use raida_healing::tickets::{TicketPool, MAX_COINS_HELD, MAX_TICKETS_PER_COIN, TICKET_LIFETIME};

const TICKET: u32 = 0x1234_5678;

struct World {
    server: Server<MemoryStore>,
    clock: ManualClock,
}

impl World {
    fn new() -> World {
        World::with_pool_capacity(MAX_COINS_HELD)
    }

    /// A world whose pool holds at most `coins` coins.
    fn with_pool_capacity(coins: usize) -> World {
        let clock = ManualClock::default();
        let pool = TicketPool::with_limits(
            Box::new(clock.clone()),
            Box::new(ScriptedIds::new(&[TICKET])),
            coins,
            TICKET_LIFETIME,
        );
        World {
            server: Server::new(3, MemoryStore::with_mfs(45), pool),
            clock,
        }
    }

    fn run(&self, command: Command, body: Option<&[u8]>, encryption_type: i32) -> Response {
        self.server.run(command, body, encryption_type, 0)
    }

    /// Runs with a legacy body (challenge, payload, trailer).
    fn legacy(&self, command: Command, payload: &[u8]) -> Response {
        self.run(command, Some(&legacy_body(payload)), 0)
    }
}

fn modern_body(payload: &[u8]) -> Vec<u8> {
    kit::wire::modern_body(payload, 0xa5)
}

fn an(seed: u8) -> [u8; 16] {
    core::array::from_fn(|i| seed.wrapping_mul(31).wrapping_add(i as u8))
}

fn coin(den: i8, sn: u32) -> Coin {
    Coin { den, sn }
}

fn ticket_record(c: Coin, an: &[u8; 16]) -> Vec<u8> {
    let mut r = c.to_wire().to_vec();
    r.extend_from_slice(an);
    r
}

fn find_record(c: Coin, an: &[u8; 16], pan: &[u8; 16]) -> Vec<u8> {
    let mut r = ticket_record(c, an);
    r.extend_from_slice(pan);
    r
}

/// Each legacy payload of `len` zero bytes answers `status`.
fn assert_size_rules(w: &World, command: Command, rules: &[(usize, Status)]) {
    for &(len, status) in rules {
        let got = w.legacy(command, &vec![0; len]).status;
        assert_eq!(got, status, "{command:?} with {len} payload bytes");
    }
}

// ---- get_ticket -------------------------------------------------------------------

#[test]
fn get_ticket_all_pass_answers_the_ticket_id() {
    let w = World::new();
    let coins = [coin(1, 5000), coin(-8, 7)];
    for (i, &c) in coins.iter().enumerate() {
        w.server.store.put(c, an(i as u8), 1);
    }
    let payload: Vec<u8> = coins
        .iter()
        .enumerate()
        .flat_map(|(i, &c)| ticket_record(c, &an(i as u8)))
        .collect();
    let r = w.legacy(Command::GetTicket, &payload);
    assert_eq!(
        r,
        Response::with_body(Status::AllPass, vec![0x12, 0x34, 0x56, 0x78])
    );
    // The ticket lists the passing coins in request order.
    let r = w.legacy(Command::ValidateTicket, &claim(7, TICKET));
    assert_eq!(
        r,
        Response::with_body(Status::Success, vec![1, 0, 0, 0x13, 0x88, 0xf8, 0, 0, 0, 7])
    );
}

#[test]
fn get_ticket_none_pass_answers_242_and_creates_no_ticket() {
    let w = World::new();
    w.server.store.put(coin(1, 1), an(1), 1);
    let r = w.legacy(Command::GetTicket, &ticket_record(coin(1, 1), &an(2)));
    assert_eq!(r, Response::status(Status::AllFail));
    assert_eq!(w.server.pool.live(), 0);
}

#[test]
fn get_ticket_some_pass_answers_bitfield_then_ticket() {
    let w = World::new();
    let mut payload = Vec::new();
    // 10 coins; coins 0, 2 and 9 pass.
    for i in 0..10u32 {
        let c = coin(2, 100 + i);
        w.server.store.put(c, an(i as u8), 1);
        let given = if [0, 2, 9].contains(&i) {
            an(i as u8)
        } else {
            an(200)
        };
        payload.extend(ticket_record(c, &given));
    }
    let r = w.legacy(Command::GetTicket, &payload);
    assert_eq!(
        r,
        Response::with_body(
            Status::Mixed,
            vec![0b0000_0101, 0b0000_0010, 0x12, 0x34, 0x56, 0x78]
        )
    );
    let r = w.legacy(Command::ValidateTicket, &claim(0, TICKET));
    assert_eq!(
        r.body,
        vec![2, 0, 0, 0, 100, 2, 0, 0, 0, 102, 2, 0, 0, 0, 109]
    );
}

#[test]
fn get_ticket_size_rules() {
    let w = World::new();
    w.server.store.put(coin(1, 1), an(1), 1);
    let one = ticket_record(coin(1, 1), &an(1));
    // body_size < 39 -> 16
    assert_eq!(
        w.legacy(Command::GetTicket, &one[..20]).status,
        Status::InvalidPacketLength
    );
    assert_eq!(
        w.legacy(Command::GetTicket, &[]).status,
        Status::InvalidPacketLength
    );
    assert_eq!(
        w.run(Command::GetTicket, Some(&[0; 17]), 0).status,
        Status::InvalidPacketLength
    );
    assert_eq!(
        w.run(Command::GetTicket, Some(&[]), 0).status,
        Status::InvalidPacketLength
    );
    // (body_size - 18) % 21 != 0 -> 39
    let mut long = one.clone();
    long.push(0);
    assert_eq!(
        w.legacy(Command::GetTicket, &long).status,
        Status::CoinsNotDiv
    );
    // NULL body -> 36
    assert_eq!(
        w.run(Command::GetTicket, None, 0).status,
        Status::EmptyRequest
    );
    assert_eq!(w.server.pool.live(), 0);
}

#[test]
fn get_ticket_unknown_page_rejects_everything_and_leaves_no_ticket() {
    let w = World::new();
    w.server.store.put(coin(1, 1), an(1), 1);
    let mut payload = ticket_record(coin(1, 1), &an(1));
    payload.extend(ticket_record(coin(1, 5 * 1024), &an(1)));
    assert_eq!(
        w.legacy(Command::GetTicket, &payload),
        Response::status(Status::InvalidSnOrDenomination)
    );
    let mut payload = ticket_record(coin(1, 1), &an(1));
    payload.extend(ticket_record(coin(7, 1), &an(1)));
    assert_eq!(
        w.legacy(Command::GetTicket, &payload).status,
        Status::InvalidSnOrDenomination
    );
    assert_eq!(w.server.pool.live(), 0);
    assert_eq!(w.server.pool.coins_held(), 0);
}

#[test]
fn get_ticket_full_pool_answers_42() {
    // a pool of 8 coins: two coins on four tickets each fill it
    let w = World::with_pool_capacity(8);
    for sn in 1..=3 {
        w.server.store.put(coin(1, sn), an(sn as u8), 1);
    }
    let two = [
        ticket_record(coin(1, 1), &an(1)),
        ticket_record(coin(1, 2), &an(2)),
    ]
    .concat();
    for _ in 0..MAX_TICKETS_PER_COIN {
        assert_eq!(w.legacy(Command::GetTicket, &two).status, Status::AllPass);
    }
    let third = ticket_record(coin(1, 3), &an(3));
    assert_eq!(
        w.legacy(Command::GetTicket, &third),
        Response::status(Status::NoTicketSlot)
    );
    assert_eq!((w.server.pool.live(), w.server.pool.coins_held()), (4, 8));
    // Expiry frees the slots without any sweep from outside.
    w.clock.advance(TICKET_LIFETIME);
    assert_eq!(w.legacy(Command::GetTicket, &third).status, Status::AllPass);
}

#[test]
fn one_coin_cannot_fill_the_pool() {
    // the legacy pool was full after 512 get_tickets for one coin
    let w = World::new();
    w.server.store.put(coin(1, 1), an(1), 1);
    w.server.store.put(coin(2, 7), an(7), 1);
    let payload = ticket_record(coin(1, 1), &an(1));
    for _ in 0..5_000 {
        assert_eq!(
            w.legacy(Command::GetTicket, &payload).status,
            Status::AllPass
        );
    }
    assert_eq!(w.server.pool.live(), MAX_TICKETS_PER_COIN);
    let other = w.legacy(Command::GetTicket, &ticket_record(coin(2, 7), &an(7)));
    assert_eq!(other.status, Status::AllPass);
    let id = u32::from_be_bytes(other.body[..].try_into().unwrap());
    let mut claim = vec![5];
    claim.extend_from_slice(&id.to_be_bytes());
    assert_eq!(
        w.legacy(Command::ValidateTicket, &claim),
        Response::with_body(Status::Success, coin(2, 7).to_wire().to_vec())
    );
}

#[test]
fn get_ticket_modern_framing() {
    let w = World::new();
    w.server.store.put(coin(3, 9), an(9), 1);
    let body = modern_body(&ticket_record(coin(3, 9), &an(9)));
    for t in [4, 5] {
        let r = w.run(Command::GetTicket, Some(&body), t);
        assert_eq!(r.status, Status::AllPass);
        assert_eq!(r.body.len(), 4);
    }
    // The same body read with legacy framing is miscounted: (21+34-18) % 21 != 0.
    assert_eq!(
        w.run(Command::GetTicket, Some(&body), 0).status,
        Status::CoinsNotDiv
    );
    // Modern: payload shorter than one record -> 16; not a multiple -> 39.
    assert_eq!(
        w.run(Command::GetTicket, Some(&modern_body(&[0; 20])), 4)
            .status,
        Status::InvalidPacketLength
    );
    assert_eq!(
        w.run(Command::GetTicket, Some(&modern_body(&[0; 22])), 4)
            .status,
        Status::CoinsNotDiv
    );
    assert_eq!(
        w.run(Command::GetTicket, Some(&[0; 33]), 4).status,
        Status::InvalidPacketLength
    );
}

#[test]
fn get_ticket_locks_each_page_once() {
    let w = World::new();
    let mut payload = Vec::new();
    for sn in [3u32, 1030, 4, 1031, 5] {
        w.server.store.put(coin(1, sn), an(sn as u8), 1);
        payload.extend(ticket_record(coin(1, sn), &an(sn as u8)));
    }
    assert_eq!(
        w.legacy(Command::GetTicket, &payload).status,
        Status::AllPass
    );
    for page in [0, 1] {
        assert_eq!(
            w.server
                .store
                .inspect(PageKey { den: 1, page }, |p| p.locks),
            Some(1)
        );
    }
}

// ---- validate_ticket --------------------------------------------------------------

#[test]
fn validate_ticket_table() {
    let w = World::new();
    w.server.store.put(coin(1, 1), an(1), 1);
    w.legacy(Command::GetTicket, &ticket_record(coin(1, 1), &an(1)));
    // exact size 5, else 16
    assert_size_rules(
        &w,
        Command::ValidateTicket,
        &[
            (4, Status::InvalidPacketLength),
            (6, Status::InvalidPacketLength),
        ],
    );
    assert_eq!(
        w.run(Command::ValidateTicket, Some(&[0; 17]), 0).status,
        Status::InvalidPacketLength
    );
    assert_eq!(
        w.run(Command::ValidateTicket, None, 0).status,
        Status::EmptyRequest
    );
    // index >= 25 -> 18
    assert_eq!(
        w.legacy(Command::ValidateTicket, &claim(25, TICKET)),
        Response::status(Status::WrongRaida)
    );
    assert_eq!(
        w.legacy(Command::ValidateTicket, &claim(255, TICKET))
            .status,
        Status::WrongRaida
    );
    // unknown -> 43
    assert_eq!(
        w.legacy(Command::ValidateTicket, &claim(1, TICKET + 1)),
        Response::status(Status::NoTicketFound)
    );
    assert_eq!(
        w.legacy(Command::ValidateTicket, &claim(1, 0)).status,
        Status::NoTicketFound
    );
    // claim -> 250 with coins; again -> 44; another index -> 250
    assert_eq!(
        w.legacy(Command::ValidateTicket, &claim(24, TICKET)),
        Response::with_body(Status::Success, vec![1, 0, 0, 0, 1])
    );
    assert_eq!(
        w.legacy(Command::ValidateTicket, &claim(24, TICKET)),
        Response::status(Status::TicketClaimedAlready)
    );
    assert_eq!(
        w.legacy(Command::ValidateTicket, &claim(0, TICKET)).status,
        Status::Success
    );
    // modern framing: payload then HMAC
    assert_eq!(
        w.run(
            Command::ValidateTicket,
            Some(&modern_body(&claim(5, TICKET))),
            4
        )
        .status,
        Status::Success
    );
    // expired -> 43
    w.clock.advance(TICKET_LIFETIME);
    assert_eq!(
        w.legacy(Command::ValidateTicket, &claim(6, TICKET)).status,
        Status::NoTicketFound
    );
}

// ---- find -------------------------------------------------------------------------

#[test]
fn find_table() {
    let w = World::new();
    let (a, b, c) = (coin(1, 10), coin(1, 11), coin(6, 1023));
    w.server.store.put(a, an(1), 1);
    w.server.store.put(b, an(2), 1);
    w.server.store.put(c, an(3), 1);
    let rec = |x: Coin, an_: [u8; 16], pan: [u8; 16]| find_record(x, &an_, &pan);
    // all AN (AN checked first, even when PAN is equal too)
    let p = [rec(a, an(1), an(1)), rec(b, an(2), an(9))].concat();
    assert_eq!(
        w.legacy(Command::Find, &p),
        Response::status(Status::FindAllAn)
    );
    // all PAN
    let p = [rec(a, an(9), an(1)), rec(b, an(9), an(2))].concat();
    assert_eq!(
        w.legacy(Command::Find, &p),
        Response::status(Status::FindAllPan)
    );
    // neither
    let p = [rec(a, an(9), an(8)), rec(b, an(7), an(6))].concat();
    assert_eq!(
        w.legacy(Command::Find, &p),
        Response::status(Status::FindNeither)
    );
    // mixed
    let p = [
        rec(a, an(1), an(0)),
        rec(b, an(0), an(2)),
        rec(c, an(0), an(0)),
    ]
    .concat();
    assert_eq!(
        w.legacy(Command::Find, &p),
        Response::with_body(Status::FindMixed, vec![1, 2, 0])
    );
    // sizes
    assert_size_rules(
        &w,
        Command::Find,
        &[(36, Status::InvalidPacketLength), (38, Status::CoinsNotDiv)],
    );
    assert_eq!(w.run(Command::Find, None, 0).status, Status::EmptyRequest);
    // unknown page -> 40
    let p = [rec(a, an(1), an(1)), rec(coin(1, 9999), an(1), an(1))].concat();
    assert_eq!(
        w.legacy(Command::Find, &p),
        Response::status(Status::InvalidSnOrDenomination)
    );
    // modern framing
    let body = modern_body(&rec(c, an(3), an(0)));
    assert_eq!(
        w.run(Command::Find, Some(&body), 5).status,
        Status::FindAllAn
    );
}

// ---- properties -------------------------------------------------------------------

/// A batch of coins over a few pages, each stored or not and asked with its AN or not.
fn batch() -> impl Strategy<Value = Vec<(i8, u32, bool)>> {
    prop::collection::vec((-8i8..=6, 0u32..4096, any::<bool>()), 1..200)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn get_ticket_matches_a_model(coins in batch()) {
        let w = World::new();
        let mut payload = Vec::new();
        let mut expect_pass = Vec::new();
        for (i, &(den, sn, right)) in coins.iter().enumerate() {
            let c = coin(den, sn);
            w.server.store.put(c, an(sn as u8), 1);
            let _ = i;
            payload.extend(ticket_record(c, &if right { an(sn as u8) } else { an(sn as u8 ^ 0x55) }));
        }
        // A duplicate coin takes the last stored AN; build the model from the store itself.
        for &(den, sn, right) in &coins {
            let stored = w.server.store.get(coin(den, sn)).unwrap().0;
            let given = if right { an(sn as u8) } else { an(sn as u8 ^ 0x55) };
            expect_pass.push(stored == given);
        }
        let r = w.legacy(Command::GetTicket, &payload);
        // the ticket lists each passing coin once, at its first place
        let mut listed = std::collections::HashSet::new();
        let passing: Vec<u8> = coins.iter().zip(&expect_pass)
            .filter(|(&(den, sn, _), &p)| p && listed.insert((den, sn)))
            .flat_map(|(&(den, sn, _), _)| coin(den, sn).to_wire())
            .collect();
        let n = coins.len();
        let count = expect_pass.iter().filter(|&&p| p).count();
        if count == 0 {
            prop_assert_eq!(r, Response::status(Status::AllFail));
            prop_assert_eq!(w.server.pool.live(), 0);
        } else {
            let id = u32::from_be_bytes(r.body[r.body.len() - 4..].try_into().unwrap());
            if count == n {
                prop_assert_eq!(r.status, Status::AllPass);
                prop_assert_eq!(r.body.len(), 4);
            } else {
                prop_assert_eq!(r.status, Status::Mixed);
                prop_assert_eq!(&r.body[..r.body.len() - 4], &raida_healing::protocol::bitfield(&expect_pass)[..]);
            }
            let claimed = w.legacy(Command::ValidateTicket, &claim(1, id));
            prop_assert_eq!(claimed, Response::with_body(Status::Success, passing));
        }
    }

    #[test]
    fn find_matches_a_model(coins in prop::collection::vec((-8i8..=6, 0u32..4096, 0u8..3), 1..200)) {
        let w = World::new();
        let mut payload = Vec::new();
        for &(den, sn, _) in &coins {
            w.server.store.put(coin(den, sn), an(sn as u8), 1);
        }
        let mut expect = Vec::new();
        for &(den, sn, kind) in &coins {
            let stored = w.server.store.get(coin(den, sn)).unwrap().0;
            let other = an(sn as u8 ^ 0xaa);
            let (a, p) = match kind { 0 => (stored, other), 1 => (other, stored), _ => (other, other) };
            expect.push(match kind { 0 => 1u8, 1 => 2, _ => 0 });
            payload.extend(find_record(coin(den, sn), &a, &p));
        }
        let r = w.legacy(Command::Find, &payload);
        let expected = if expect.iter().all(|&e| e == 1) {
            Response::status(Status::FindAllAn)
        } else if expect.iter().all(|&e| e == 2) {
            Response::status(Status::FindAllPan)
        } else if expect.iter().all(|&e| e == 0) {
            Response::status(Status::FindNeither)
        } else {
            Response::with_body(Status::FindMixed, expect)
        };
        prop_assert_eq!(r, expected);
    }

    #[test]
    fn arbitrary_bodies_never_panic_and_answer_a_known_status(
        body in prop::collection::vec(any::<u8>(), 0..400),
        t in prop::sample::select(vec![0, 1, 2, 4, 5]),
        cmd in prop::sample::select(vec![Command::GetTicket, Command::ValidateTicket, Command::Find]),
    ) {
        let w = World::new();
        w.server.store.put(coin(1, 1), an(1), 1);
        let r = w.run(cmd, Some(&body), t);
        prop_assert!(Status::ALL.contains(&r.status));
        if !matches!(r.status, Status::AllPass | Status::Mixed | Status::FindMixed | Status::Success) {
            prop_assert!(r.body.is_empty());
        }
        if !matches!(r.status, Status::AllPass | Status::Mixed) {
            prop_assert_eq!(w.server.pool.live(), 0);
        }
    }
}
