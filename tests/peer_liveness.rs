//! Liveness: a heal that the honest RAIDAs can decide succeeds whatever dead peers,
//! hostile fixes or slow answers do (the connection budget's shares and queues, outlier
//! ejection, the hedge ceiling).
//!
//! Every test asserts outcomes (statuses, per-peer outcomes, counts of connections the
//! fake peers saw), never a race. Each test's server (or client) has its own connection
//! budget and peer history, so the tests share nothing and run side by side.

use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use kit::node::Server;
use kit::peers::{FakePeer, HonestPeer, Silence, SilentPeer};
use kit::request::read_request;
use kit::wire::{fix_payload, legacy_body, listing, reply};
use raida_healing::commands::fix::FixReport;
use raida_healing::peers::ejection::EjectOptions;
use raida_healing::peers::health::{self, hedge_ceiling};
use raida_healing::peers::{ask_one, Claimer, PeerClient, PeerOptions, PeerOutcome, Target};
use raida_healing::protocol::{Coin, Response, Status};
use raida_healing::store::MemoryStore;
use raida_healing::tickets::TicketPool;

const ME: u8 = 24;
const COIN_ID: u8 = 6;
const PG: [u8; 16] = [0x42; 16];

fn ticket(raida: u8) -> u32 {
    0x7700 + u32::from(raida)
}

/// A fix of `coin` with tickets for the peers in `peers`.
fn fix_body(coin: Coin, peers: impl IntoIterator<Item = u8>) -> Vec<u8> {
    let mut tickets = [0u32; 25];
    for raida in peers {
        tickets[usize::from(raida)] = ticket(raida);
    }
    legacy_body(&fix_payload(&[coin], &PG, &tickets))
}

fn fix(server: &Server<MemoryStore>, body: &[u8]) -> (Response, FixReport) {
    server
        .fix(Some(body), 0, COIN_ID)
        .expect("a well-formed fix")
}

/// This server (RAIDA `ME`, an empty store and pool) with `live[k]` as RAIDA
/// `live_raida[k]` and `silent[k]` as RAIDA `silent_raida[k]`.
fn server_of(
    live: &[HonestPeer],
    live_raida: impl Iterator<Item = u8>,
    silent: &[SilentPeer],
    silent_raida: impl Iterator<Item = u8>,
) -> Server<MemoryStore> {
    let mut server = Server::new(ME, MemoryStore::new(), TicketPool::default());
    let addrs = live.iter().map(|p| p.peer.addr);
    for (raida, addr) in live_raida
        .zip(addrs)
        .chain(silent_raida.zip(silent.iter().map(|p| p.addr)))
    {
        server.peer(raida, addr);
    }
    server
}

fn silence_of(i: usize) -> Silence {
    [
        Silence::NeverConnects,
        Silence::NeverAccepts,
        Silence::NeverAnswers,
    ][i % 3]
}

// ---------------------------------------------------------------------------------------
// Starvation: hostile fixes that hold connections to silent peers

/// Honest peers 0..13 list every coin; silent peers 13..24 never answer.
const HONEST: std::ops::Range<u8> = 0..13;
const SILENT: std::ops::Range<u8> = 13..24;
/// The two honest peers each hostile fix names (with all eleven silent ones).
const HOSTILE_VOTERS: [u8; 2] = [0, 1];
/// Honest fixes run alongside each wave of hostile fixes.
const HONEST_FIXES: usize = 3;
/// Every fix's deadline: the lifetime of a hostile fix (it waits for its silent peers).
const STORM_DEADLINE: Duration = Duration::from_secs(6);

/// `hostile` fixes at once, each naming 2 voters and 11 silent peers so none can decide
/// before its deadline, while `HONEST_FIXES` honest fixes of a coin the 13 honest peers
/// confirm run alongside. Returns the honest fixes' reports.
fn storm(hostile: usize) -> Vec<(Response, FixReport)> {
    let hostile_coin = Coin { den: 1, sn: 1 };
    let honest_coin = Coin { den: 1, sn: 2 };
    let honest: Vec<HonestPeer> = HONEST
        .map(|r| HonestPeer::spawn(r, vec![hostile_coin, honest_coin]))
        .collect();
    let silent: Vec<SilentPeer> = SILENT
        .enumerate()
        .map(|(i, _)| SilentPeer::new(silence_of(i)))
        .collect();
    let mut server = server_of(&honest, HONEST, &silent, SILENT);
    server.store.put(hostile_coin, [0x11; 16], 1);
    server.store.put(honest_coin, [0x11; 16], 1);
    server.options = PeerOptions {
        deadline: STORM_DEADLINE,
        // No hedges, and no ejection: the silent peers' shares stay held by hostile fixes
        // for their whole deadline (the worst case for the budget).
        hedge_after: STORM_DEADLINE,
        hedge_start: STORM_DEADLINE,
        eject: EjectOptions {
            after: 0,
            ..EjectOptions::default()
        },
        ..PeerOptions::default()
    };
    let server = Arc::new(server);

    let started = Arc::new(Barrier::new(hostile + 1));
    let hostile_body = Arc::new(fix_body(
        hostile_coin,
        HOSTILE_VOTERS.into_iter().chain(SILENT),
    ));
    let hostile_fixes: Vec<_> = (0..hostile)
        .map(|_| {
            let (server, started, body) = (
                Arc::clone(&server),
                Arc::clone(&started),
                Arc::clone(&hostile_body),
            );
            std::thread::Builder::new()
                .stack_size(256 * 1024)
                .spawn(move || {
                    started.wait();
                    fix(&server, &body)
                })
                .unwrap()
        })
        .collect();
    started.wait();
    // The honest fixes start once the hostile fixes hold every silent peer's share (each
    // silent peer is wanted by every hostile fix): from here to the hostile fixes'
    // deadline those slots stay held.
    let share = server.peers.budget.peer_share();
    let full = Instant::now();
    while SILENT
        .into_iter()
        .any(|r| server.peers.budget.in_use_for(r) < share.min(hostile))
    {
        assert!(
            full.elapsed() < STORM_DEADLINE,
            "the hostile fixes never filled the shares"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let honest_body = Arc::new(fix_body(honest_coin, HONEST.chain(SILENT)));
    let honest_fixes: Vec<_> = (0..HONEST_FIXES)
        .map(|_| {
            let (server, body) = (Arc::clone(&server), Arc::clone(&honest_body));
            std::thread::spawn(move || fix(&server, &body))
        })
        .collect();
    let reports: Vec<_> = honest_fixes
        .into_iter()
        .map(|f| f.join().unwrap())
        .collect();
    for hostile_fix in hostile_fixes {
        let (response, report) = hostile_fix.join().unwrap();
        assert_eq!(
            response.status,
            Status::AllFail,
            "{}",
            report.summary_line()
        );
    }
    assert_eq!(server.peers.budget.in_use(), 0);
    reports
}

/// What bounds an honest fix's wait: it needs slots only at the 13 honest peers, whose
/// shares no silent peer can take; there it queues at most behind the hostile fixes'
/// requests to the two shared voters, each answered in a loopback round trip. So it
/// decides long before a hostile fix's lifetime (the deadline): at 200 hostile fixes
/// about 200 loopback round trips at each shared voter plus its retries for a slot (at
/// most 80 ms each), well under a second on an idle machine. Asserted generously, so a
/// busy machine cannot fail it: within half the deadline (3 s). A fix that waited for
/// slots stuck on silent peers would take the whole deadline and answer 242, as on the
/// old budget from 24 hostile fixes on.
fn assert_honest_fixes_heal(hostile: usize, reports: &[(Response, FixReport)]) {
    assert_eq!(reports.len(), HONEST_FIXES);
    for (response, report) in reports {
        let line = report.summary_line();
        assert_eq!(
            response.status,
            Status::AllPass,
            "{hostile} hostile: {line}"
        );
        assert!(
            report.elapsed < STORM_DEADLINE / 2,
            "{hostile} hostile, {:?}: {line}",
            report.elapsed
        );
        for raida in HONEST {
            assert_eq!(
                report.outcome_of(raida),
                Some(&PeerOutcome::Voted { listed: 2 }),
                "{hostile} hostile, RAIDA {raida}: {line}"
            );
        }
        assert_eq!(report.counts().no_connection, 0, "{line}");
    }
}

#[test]
fn honest_fixes_heal_beside_24_30_100_and_200_hostile_fixes() {
    for hostile in [24, 30, 100, 200] {
        let reports = storm(hostile);
        assert_honest_fixes_heal(hostile, &reports);
    }
}

// ---------------------------------------------------------------------------------------
// Ejection: 11 honest peers and 13 silent ones

const LIVE: std::ops::Range<u8> = 0..11;
const DEAD: std::ops::Range<u8> = 11..24;
const EJECT_DEADLINE: Duration = Duration::from_millis(3000);
/// One cooldown (also the longest): a silent peer that comes back votes again at the
/// first fix at most this long after it came back.
const COOLDOWN: Duration = Duration::from_secs(3);

fn health_of(server: &Server<MemoryStore>, addr: std::net::SocketAddrV4) -> health::PeerHealth {
    server
        .peers
        .health
        .snapshot()
        .into_iter()
        .find(|(_, a, _)| *a == addr)
        .map(|(_, _, h)| h)
        .expect("a peer this process asked")
}

#[test]
fn silent_peers_are_ejected_not_waited_for_then_restored_when_they_answer() {
    let coin = Coin { den: 1, sn: 7 };
    let live: Vec<HonestPeer> = LIVE.map(|r| HonestPeer::spawn(r, vec![coin])).collect();
    let mut dead: Vec<SilentPeer> = DEAD
        .enumerate()
        .map(|(i, _)| SilentPeer::new(silence_of(i)))
        .collect();
    let mut server = server_of(&live, LIVE, &dead, DEAD);
    server.store.put(coin, [0x11; 16], 1);
    let eject = EjectOptions {
        after: 3,
        cooldown: COOLDOWN,
        max: COOLDOWN,
    };
    server.options = PeerOptions {
        deadline: EJECT_DEADLINE,
        // No hedges: one connection per peer per fix, so the counts below are exact.
        hedge_after: EJECT_DEADLINE,
        hedge_start: EJECT_DEADLINE,
        eject,
        ..PeerOptions::default()
    };
    let body = fix_body(coin, LIVE.chain(DEAD));

    // 11 votes and this server's: 2 short of 14, and the 13 silent peers could give
    // them, so the first fixes wait their deadline.
    for _ in 0..eject.after {
        let (response, report) = fix(&server, &body);
        assert_eq!(response.status, Status::AllFail);
        let counts = report.counts();
        assert_eq!(
            (counts.voted, counts.timed_out, counts.ejected),
            (11, 13, 0),
            "{}",
            report.summary_line()
        );
    }
    for peer in &dead {
        let h = health_of(&server, peer.addr);
        assert!(h.breaker.is_ejected(), "{:?}", h);
        assert_eq!((h.timeouts, h.ejections, h.probes), (3, 1, 0));
    }

    // Ejected: each counts as no vote at once, so each of the next 50 fixes is decided
    // at once: with 12 possible votes at most it cannot reach 14, and it answers 242
    // without waiting for anyone (the live peers are not even needed), and with no
    // connection to an ejected peer. (Should a slow machine let a cooldown pass
    // meanwhile, that peer's one probe is counted in its health and allowed for below.)
    let mut probing_fixes = 0;
    for _ in 0..50 {
        let (response, report) = fix(&server, &body);
        assert_eq!(response.status, Status::AllFail);
        let counts = report.counts();
        let line = report.summary_line();
        assert_eq!(counts.no_connection, 0, "{line}");
        if counts.ejected == 13 {
            // Did not wait: nothing timed out, nobody was asked, and every dead peer is
            // listed ejected.
            assert_eq!((counts.unneeded, counts.timed_out), (11, 0), "{line}");
            assert!(
                line.ends_with("; ejected: 11 12 13 14 15 16 17 18 19 20 21 22 23"),
                "{line}"
            );
        } else {
            // A probe ran: only probed peers were asked besides the live ones.
            assert_eq!(counts.ejected + counts.timed_out, 13, "{line}");
            probing_fixes += 1;
        }
    }
    for peer in &dead {
        let h = health_of(&server, peer.addr);
        let expected = 3 + h.probes as usize;
        // Every connection was made before its fix returned; the peer's accept thread may
        // still be counting the last one, so wait for the count to reach what is expected
        // (no fix runs meanwhile, so a count beyond it would be a connection too many).
        let since = Instant::now();
        while peer.connections().is_some_and(|n| n < expected)
            && since.elapsed() < Duration::from_secs(10)
        {
            std::thread::sleep(Duration::from_millis(10));
        }
        if let Some(reached) = peer.connections() {
            assert_eq!(
                reached, expected,
                "{:?}: one connection per fix before the ejection, then only probes",
                peer.silence
            );
        }
    }
    for peer in &live {
        let answered = peer.answered.load(std::sync::atomic::Ordering::SeqCst);
        assert_eq!(answered, 3 + probing_fixes);
    }

    // The silent peers come back. Each is probed by the first fix after its cooldown
    // (its next probe time is at most one cooldown away), answers, is restored and votes:
    // a fix that needs all 13 of them (tickets for them only) heals the coin.
    for (raida, peer) in DEAD.zip(&mut dead) {
        peer.revive(raida, vec![coin]);
    }
    let came_back = Instant::now();
    let probe_due = dead
        .iter()
        .map(|p| {
            health_of(&server, p.addr)
                .breaker
                .next_probe
                .expect("ejected")
        })
        .max()
        .unwrap();
    assert!(probe_due <= came_back + COOLDOWN);
    std::thread::sleep(probe_due.saturating_duration_since(Instant::now()));
    let (response, report) = fix(&server, &fix_body(coin, DEAD));
    assert_eq!(
        response.status,
        Status::AllPass,
        "{}",
        report.summary_line()
    );
    assert_eq!(report.counts().voted, 13, "{}", report.summary_line());
    for peer in &dead {
        let h = health_of(&server, peer.addr);
        assert!(!h.breaker.is_ejected(), "{:?}", h);
        assert_eq!(h.breaker.consecutive_failures, 0);
    }
    // Restored: the next fix asks them all as usual and heals again.
    let (response, report) = fix(&server, &body);
    assert_eq!(
        response.status,
        Status::AllPass,
        "{}",
        report.summary_line()
    );
    assert_eq!(report.counts().ejected, 0);
}

// ---------------------------------------------------------------------------------------
// Hedge poisoning

const RAIDA: u8 = 9;
const SLOW_ANSWER: Duration = Duration::from_millis(600);
const SLOW_ANSWERS: usize = 4;

/// A peer that answers its first `SLOW_ANSWERS` requests after `SLOW_ANSWER`, then
/// strands the next connection (reads the request, never answers, keeps it open, as the
/// legacy lazy-accept listener can) and answers every later one at once.
fn poisoner(coin: Coin) -> FakePeer {
    let mut served = 0usize;
    let mut stranded = Vec::new();
    FakePeer::spawn(move |mut stream| {
        use std::io::Write;
        // A safety net only: the fixes send their request right after connecting.
        let Some(request) = read_request(&mut stream, Duration::from_secs(60)) else {
            return;
        };
        served += 1;
        if served <= SLOW_ANSWERS {
            std::thread::sleep(SLOW_ANSWER);
        } else if served == SLOW_ANSWERS + 1 {
            stranded.push(stream);
            return;
        }
        let _ = stream.write_all(&reply(RAIDA, 250, &request[32..48], &listing(&[coin])));
    })
}

/// After a run of slow answers a peer's stranded connection is still rescued within the
/// documented bound: its hedge is opened after at most `min(2 s, deadline / 4)` of
/// silence. The rescuing call's deadline (1.2 s) is shorter than the hedge delay the slow
/// answers alone would give (at least twice the answer time, 1.2 s), so the vote arrives
/// only because the ceiling (300 ms here) holds. Then a few fast answers bring the delay
/// back under a second.
#[test]
fn slow_answers_cannot_delay_the_rescue_of_a_stranded_connection() {
    let coin = Coin { den: 2, sn: 5 };
    let peer = poisoner(coin);
    let target = Target {
        raida: RAIDA,
        addr: peer.addr,
        ticket: ticket(RAIDA),
    };
    let claimer = Claimer {
        raida_no: ME,
        coin_id: COIN_ID,
        source: None,
    };
    let floor = Duration::from_millis(100);
    let patient = PeerOptions {
        deadline: Duration::from_secs(10),
        hedge_after: Duration::from_secs(10),
        hedge_start: Duration::from_secs(10),
        ..PeerOptions::default()
    };
    let client = PeerClient::default();
    for _ in 0..SLOW_ANSWERS {
        let (report, coins) = ask_one(&client, target, claimer, &patient);
        assert_eq!(report.outcome, PeerOutcome::Voted { listed: 1 });
        assert_eq!(coins, Some(vec![coin]));
    }
    let estimate = client.health.estimate_of(RAIDA, peer.addr);
    let uncapped = 2.0 * estimate.high_ms().min(4.0 * estimate.typical_ms);
    assert!(uncapped >= 1200.0, "{estimate:?}");

    let hurried = PeerOptions {
        deadline: Duration::from_millis(1200),
        hedge_after: floor,
        hedge_start: floor,
        ..PeerOptions::default()
    };
    assert_eq!(hedge_ceiling(hurried.deadline), Duration::from_millis(300));
    let (report, coins) = ask_one(&client, target, claimer, &hurried);
    assert_eq!(report.outcome, PeerOutcome::Voted { listed: 1 });
    assert!(report.hedged);
    assert_eq!(coins, Some(vec![coin]));

    // Fast answers again: within a few the peer's hedge delay is back near the floor (the
    // answers take a few ms here; the bound leaves room for a loaded machine, the exact
    // recovery is the estimate's unit test).
    let ceiling = hedge_ceiling(patient.deadline);
    for _ in 0..8 {
        let (report, _) = ask_one(&client, target, claimer, &hurried);
        assert_eq!(report.outcome, PeerOutcome::Voted { listed: 1 });
    }
    let limit = client
        .health
        .estimate_of(RAIDA, peer.addr)
        .hedge_limit(floor, floor, ceiling);
    assert!(limit < Duration::from_millis(1000), "{limit:?}");
}
