//! A heal storm in one process: 200 fixes at once against 24 peers that never
//! answer, under RLIMIT_NOFILE 1,024, as a legacy server with a dozen handlers and a bad
//! network would see it.
//!
//! What must hold: the process can open a socket throughout (the module never takes the
//! host's descriptors), the module never holds more peer connections than its budget,
//! every fix answers 242 by its deadline with each peer timed out, without a connection
//! slot, or ejected (said so in its summary line), and the module creates no thread.
//!
//! Alone in its test binary, so the thread count of the process is the test's own.

use std::net::TcpListener;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use kit::node::Server;
use kit::wire::{fix_payload, legacy_body};
use raida_healing::commands::fix::FixReport;
use raida_healing::peers::{PeerOptions, PeerOutcome};
use raida_healing::protocol::{Coin, Response, Status};
use raida_healing::store::MemoryStore;
use raida_healing::tickets::TicketPool;

const ME: u8 = 24;
const FIXES: usize = 200;
const DEADLINE: Duration = Duration::from_millis(1500);
/// Scheduling slack on 2 busy cores for "answers by its deadline". Without the deadline a
/// fix against black holes would never answer, so any bound this far below the default
/// deadline (32 s) still shows the deadline ended every fix.
const SLACK: Duration = Duration::from_secs(5);

fn tasks() -> usize {
    std::fs::read_dir("/proc/self/task").unwrap().count()
}

fn descriptors() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// A fix of `coin` with a ticket for every peer.
fn fix_body(coin: Coin) -> Vec<u8> {
    let tickets: [u32; 25] = core::array::from_fn(|raida| {
        if raida == usize::from(ME) {
            0
        } else {
            1000 + raida as u32
        }
    });
    legacy_body(&fix_payload(&[coin], &[7u8; 16], &tickets))
}

#[test]
fn two_hundred_fixes_against_black_holed_peers_under_1024_descriptors() {
    let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile);
    rustix::process::setrlimit(
        rustix::process::Resource::Nofile,
        rustix::process::Rlimit {
            current: Some(1024),
            maximum: limit.maximum,
        },
    )
    .expect("RLIMIT_NOFILE 1024");

    // Black holes: listeners that never accept. The kernel completes a few handshakes
    // into the backlog, then drops SYNs; either way no answer ever comes.
    let holes: Vec<TcpListener> = (0..24)
        .map(|_| TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    let mut server = Server::new(ME, MemoryStore::new(), TicketPool::default());
    for (raida, hole) in holes.iter().enumerate() {
        let std::net::SocketAddr::V4(addr) = hole.local_addr().unwrap() else {
            unreachable!()
        };
        server.peer(raida as u8, addr);
    }
    for i in 0..FIXES {
        server.store.put(
            Coin {
                den: 1,
                sn: i as u32,
            },
            [9; 16],
            1,
        );
    }
    server.options = PeerOptions {
        deadline: DEADLINE,
        hedge_after: Duration::from_millis(300),
        hedge_start: Duration::from_millis(300),
        ..PeerOptions::default()
    };
    let server = Arc::new(server);

    let baseline_tasks = tasks();
    let start = Arc::new(Barrier::new(FIXES + 1));
    let workers: Vec<_> = (0..FIXES)
        .map(|i| {
            let (server, start) = (Arc::clone(&server), Arc::clone(&start));
            std::thread::Builder::new()
                .stack_size(256 * 1024)
                .spawn(
                    move || -> (Result<(Response, FixReport), Status>, Duration) {
                        let body = fix_body(Coin {
                            den: 1,
                            sn: i as u32,
                        });
                        start.wait();
                        let began = Instant::now();
                        let result = server.fix(Some(&body), 0, 6);
                        (result, began.elapsed())
                    },
                )
                .unwrap()
        })
        .collect();
    let with_workers = baseline_tasks + FIXES;
    assert_eq!(tasks(), with_workers);
    start.wait();

    // While the storm runs: a socket can always be opened, the budget holds, and the
    // process runs no thread beyond the test's own.
    let storm_started = Instant::now();
    let (mut probes, mut most_tasks, mut most_held, mut most_fds) = (0, 0, 0, 0);
    while storm_started.elapsed() < DEADLINE + Duration::from_millis(500) {
        let probe = TcpListener::bind("127.0.0.1:0");
        assert!(
            probe.is_ok(),
            "the process could not open a socket: {probe:?}"
        );
        probes += 1;
        most_tasks = most_tasks.max(tasks());
        most_held = most_held.max(server.peers.budget.in_use());
        most_fds = most_fds.max(descriptors());
        std::thread::sleep(Duration::from_millis(20));
    }
    // Every probe above opened a socket while the storm held the budget; how many ran
    // depends on how the cores were shared, so only require that the loop ran.
    assert!(probes >= 5, "{probes} probes");
    assert!(
        most_tasks <= with_workers,
        "{most_tasks} tasks, test's own {with_workers}"
    );
    assert!(
        most_held <= server.peers.budget.limit(),
        "{most_held} connections held"
    );
    assert_eq!(
        (
            server.peers.budget.limit(),
            server.peers.budget.peer_share()
        ),
        (256, 10)
    );
    // Each peer's share was full (4,800 connections wanted, 10 per peer allowed): the
    // 24 shares, 240 connections, fit in the budget of 256.
    assert_eq!(most_held, 24 * server.peers.budget.peer_share());
    assert!(most_fds < 1024 - 64, "{most_fds} descriptors open");

    let mut without_slot = 0;
    for worker in workers {
        let (result, took) = worker.join().unwrap();
        let (response, report) = result.expect("a fix answer");
        assert_eq!(response, Response::status(Status::AllFail));
        assert!(took <= DEADLINE + SLACK, "a fix took {took:?}");
        let counts = report.counts();
        // A fix that came late may find peers already ejected by the timeouts of
        // others: no vote either.
        assert_eq!(
            counts.timed_out + counts.no_connection + counts.ejected,
            24,
            "{}",
            report.summary_line()
        );
        for peer in &report.asked {
            assert!(
                matches!(
                    peer.outcome,
                    PeerOutcome::TimedOut | PeerOutcome::NoConnection | PeerOutcome::Ejected
                ),
                "{:?}",
                peer.outcome
            );
        }
        assert!(report.summary_line().contains(&format!(
            "0 local error, {} no connection slot;",
            counts.no_connection
        )));
        without_slot += counts.no_connection;
    }
    // 200 x 24 connections wanted, 256 at a time allowed: peers went without a slot, and
    // their fixes said so.
    assert!(without_slot > 0);
    assert_eq!(server.peers.budget.in_use(), 0);
    assert_eq!(tasks(), baseline_tasks);
    drop(holes);
}
