//! A fix answers as soon as its outcome is decided: a peer's first well-formed answer
//! settles it (its pending hedge is closed, not waited for), and a fix whose every
//! connection fails on this host (no descriptor, no local address or port) ends at once
//! with its no-vote outcome and says why in its summary line.
//!
//! Each fix's deadline is 30 s, far beyond what the peers take to answer (a fraction of a
//! second); a fix that waited for its deadline instead of its decision would report
//! "timed out" peers, an open hedge and 30 s. The bound asserted on the time is half the
//! deadline, so it holds however loaded the machine is. One test lowers the process's
//! descriptor limit, so the tests take turns (`serial`).

use std::net::{Ipv4Addr, TcpStream};
use std::time::Duration;

use kit::node::Server;
use kit::peers::{FakePeer, HonestPeer};
use kit::request::read_request;
use kit::serial;
use kit::wire::{fix_payload, legacy_body, reply};
use raida_healing::peers::ejection::EjectOptions;
use raida_healing::peers::{
    ask_peers, Claimer, Collector, LocalCause, PeerClient, PeerOptions, PeerOutcome, Target,
};
use raida_healing::protocol::{Coin, Response, Status};
use raida_healing::store::MemoryStore;
use raida_healing::tickets::TicketPool;

const ME: u8 = 24;
const COIN_ID: u8 = 6;
const DEADLINE: Duration = Duration::from_secs(30);

/// A 30 s deadline, a hedge after 100 ms of silence, no ejection (each test's peers are
/// its own, but nothing here should depend on what earlier calls did).
fn options() -> PeerOptions {
    PeerOptions {
        deadline: DEADLINE,
        hedge_after: Duration::from_millis(100),
        hedge_start: Duration::from_millis(100),
        eject: EjectOptions {
            after: 0,
            ..EjectOptions::default()
        },
        ..PeerOptions::default()
    }
}

/// A fix of `coin` with a ticket for each RAIDA in `peers`.
fn fix_body(coin: Coin, peers: impl IntoIterator<Item = u8>) -> Vec<u8> {
    let mut tickets = [0u32; 25];
    for raida in peers {
        tickets[usize::from(raida)] = 0x7700 + u32::from(raida);
    }
    legacy_body(&fix_payload(&[coin], &[0x42; 16], &tickets))
}

/// A peer RAIDA `raida` that leaves its first connection silent until the fix opens its
/// hedge, then answers 43 (no such ticket) on the first connection and never answers the
/// hedge, which it keeps open (the fix must close it).
fn declines_once_hedged(raida: u8) -> FakePeer {
    let mut first: Option<(TcpStream, [u8; 16])> = None;
    let mut kept = Vec::new();
    FakePeer::spawn(move |mut stream| {
        let Some(request) = read_request(&mut stream, Duration::from_secs(10)) else {
            return;
        };
        match first.take() {
            None => {
                let mut challenge = [0u8; 16];
                challenge.copy_from_slice(&request[32..48]);
                first = Some((stream, challenge));
            }
            Some((mut waiting, challenge)) => {
                use std::io::Write;
                let _ = waiting.write_all(&reply(raida, 43, &challenge, &[0x3e, 0x3e]));
                kept.push(waiting);
                kept.push(stream);
            }
        }
    })
}

/// A needed peer that declines (43) while its hedge is pending: the fix ends at its
/// answer, 242, with the hedge closed and counted as unneeded.
#[test]
fn a_needed_peer_that_declines_settles_the_fix_with_its_hedge_pending() {
    let _turn = serial();
    let coin = Coin { den: 1, sn: 1 };
    // 12 honest votes and this server's: the 13th peer decides whether the coin has 14.
    let honest: Vec<HonestPeer> = (0..12).map(|r| HonestPeer::spawn(r, vec![coin])).collect();
    let decliner = declines_once_hedged(12);
    let mut server = Server::new(ME, MemoryStore::new(), TicketPool::default());
    for (raida, peer) in (0u8..).zip(&honest) {
        server.peer(raida, peer.peer.addr);
    }
    server.peer(12, decliner.addr);
    server.options = options();
    server.store.put(coin, [0x11; 16], 1);

    let (response, report) = server
        .fix(Some(&fix_body(coin, 0..13)), 0, COIN_ID)
        .expect("a well-formed fix");
    assert_eq!(response, Response::status(Status::AllFail));
    let peer = report.asked.iter().find(|r| r.target.raida == 12).unwrap();
    assert_eq!(peer.outcome, PeerOutcome::Declined(43));
    assert!(
        peer.hedged,
        "the first connection stayed silent past the hedge limit"
    );
    assert_eq!(peer.hedge_outcome, Some(PeerOutcome::Unneeded));
    let counts = report.counts();
    assert_eq!(
        (
            counts.voted,
            counts.declined,
            counts.timed_out,
            counts.hedged
        ),
        (12, 1, 0, 1)
    );
    assert!(
        report.elapsed < DEADLINE / 2,
        "the fix waited for its deadline: {:?}",
        report.elapsed
    );
}

/// Sets this process's descriptor limit so that no descriptor is free (fillers take
/// the rest), runs `f`, and puts everything back.
fn with_no_descriptor_free<R>(f: impl FnOnce() -> R) -> R {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let before = getrlimit(Resource::Nofile);
    let highest = std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u64>().ok())
        .max()
        .unwrap();
    let limit = highest + 8;
    setrlimit(
        Resource::Nofile,
        Rlimit {
            current: Some(limit),
            maximum: before.maximum,
        },
    )
    .unwrap();
    let mut fillers = Vec::new();
    while let Ok(file) = std::fs::File::open("/dev/null") {
        fillers.push(file);
        assert!(fillers.len() <= limit as usize, "the limit did not hold");
    }
    let result = f();
    drop(fillers);
    setrlimit(Resource::Nofile, before).unwrap();
    result
}

/// Out of descriptors: no peer can be asked, so the fix answers 242 at once and its
/// summary line says why.
#[test]
fn a_fix_that_cannot_open_a_socket_answers_at_once_and_says_why() {
    let _turn = serial();
    let coin = Coin { den: 1, sn: 2 };
    let mut server = Server::new(ME, MemoryStore::new(), TicketPool::default());
    // Never contacted: no socket can be made. (Were one made, port 9 would refuse it, and
    // the outcome would be "refused", not a local error.)
    for raida in 0..13u8 {
        server.peer(raida, "127.0.0.1:9".parse().unwrap());
    }
    server.options = options();
    server.store.put(coin, [0x11; 16], 1);
    let body = fix_body(coin, 0..13);

    let (response, report) = with_no_descriptor_free(|| {
        server
            .fix(Some(&body), 0, COIN_ID)
            .expect("a well-formed fix")
    });
    assert_eq!(response, Response::status(Status::AllFail));
    let emfile = LocalCause::Os(libc::EMFILE);
    assert!(report
        .asked
        .iter()
        .all(|r| r.outcome == PeerOutcome::LocalError(emfile)));
    assert_eq!(report.counts().local_error, 13);
    assert_eq!(report.local_failure(), Some(emfile));
    let line = report.summary_line();
    assert!(
        line.ends_with(
            "; failed: 0 1 2 3 4 5 6 7 8 9 10 11 12; local failure: no peer could be asked \
             from this host (Too many open files (os error 24)), so the fix answered at once"
        ),
        "{line}"
    );
    assert!(
        report.elapsed < DEADLINE / 2,
        "the fix waited for its deadline: {:?}",
        report.elapsed
    );
}

/// Decided only when no peer is pending.
struct Never;

impl Collector for Never {
    fn answer(&mut self, _raida: u8, _coins: &[Coin]) {}
    fn is_decided(&self, pending: usize) -> bool {
        pending == 0
    }
}

/// A source address this host does not have (the bind fails before anything is sent):
/// every peer is a local error at once.
#[test]
fn an_unassignable_source_address_fails_every_peer_at_once() {
    let _turn = serial();
    let targets: Vec<Target> = (0..5u8)
        .map(|raida| Target {
            raida,
            addr: "127.0.0.1:9".parse().unwrap(),
            ticket: 1,
        })
        .collect();
    let claimer = Claimer {
        raida_no: ME,
        coin_id: COIN_ID,
        // TEST-NET-1: never a host's address.
        source: Some(Ipv4Addr::new(192, 0, 2, 1)),
    };
    let started = std::time::Instant::now();
    let client = PeerClient::default();
    let reports = ask_peers(&client, &targets, claimer, &options(), &mut Never);
    assert!(started.elapsed() < DEADLINE / 2);
    for report in reports {
        assert_eq!(
            report.outcome,
            PeerOutcome::LocalError(LocalCause::Os(libc::EADDRNOTAVAIL))
        );
    }
}
