//! Randomness fails closed: when the OS random source fails, get_ticket makes no ticket
//! (ERROR_INTERNAL, 252, logged), and fix asks no peer (the peer client makes no
//! challenge from a failed source: each peer is a local error, no vote), so no coin is
//! fixed (242) and the record is unchanged.
//!
//! The failing source is process-wide (`random::testing::OsSourceFailure`), so this binary
//! holds one test only, and nothing else here needs random bytes meanwhile.

use kit::node::Server;
use kit::peers::listen;
use kit::wire::{fix_payload, legacy_body};
use parking_lot::Mutex;
use raida_healing::commands::Command;
use raida_healing::log::{self, Level};
use raida_healing::peers::{LocalCause, PeerOutcome};
use raida_healing::protocol::{Coin, Response, Status};
use raida_healing::random::testing::OsSourceFailure;
use raida_healing::store::MemoryStore;
use raida_healing::tickets::TicketPool;

static LINES: Mutex<Vec<(Level, String)>> = Mutex::new(Vec::new());

fn capture(level: Level, line: &str) {
    LINES.lock().push((level, line.to_string()));
}

#[test]
fn a_failing_random_source_makes_no_ticket_and_asks_no_peer() {
    log::set_sink(Some(capture));
    let coin = Coin { den: 1, sn: 77 };
    let an = [0x42u8; 16];
    let mut server = Server::new(0, MemoryStore::with_mfs(45), TicketPool::default());
    server.store.put(coin, an, 1);
    // RAIDAs 1 to 24 are one listener that must never see a connection (24 peers with
    // tickets: enough votes to be worth asking, so the fix does try them).
    let (peer, peer_addr) = listen();
    peer.set_nonblocking(true).unwrap();
    for raida in 1..25 {
        server.peer(raida, peer_addr);
    }
    let run = |command, payload: &[u8]| server.run(command, Some(&legacy_body(payload)), 0, 1);
    let get_ticket = [&coin.to_wire()[..], &an].concat();
    let mut tickets = [0x1234_5678u32; 25];
    tickets[0] = 0;
    let fix = fix_payload(&[coin], &[7u8; 16], &tickets); // PG [7; 16]

    // With the source working: a ticket (241 + id).
    let answer = run(Command::GetTicket, &get_ticket);
    assert_eq!(answer.status, Status::AllPass);
    assert_eq!(server.pool.live(), 1);

    let failing = OsSourceFailure::start();
    LINES.lock().clear();
    assert_eq!(
        run(Command::GetTicket, &get_ticket),
        Response::status(Status::Internal)
    );
    assert_eq!(
        server.pool.live(),
        1,
        "a ticket was made without randomness"
    );
    let lines = std::mem::take(&mut *LINES.lock());
    assert_eq!(
        lines,
        vec![
            (
                Level::Error,
                "the OS random source failed: getrandom: made to fail by a test".to_string()
            ),
            (
                Level::Error,
                "get_ticket: no ticket id (the OS random source failed: getrandom: made to \
                 fail by a test); answering ERROR_INTERNAL"
                    .to_string()
            ),
        ]
    );

    let (answer, report) = server
        .fix(Some(&legacy_body(&fix)), 0, 1)
        .expect("a fix answer");
    assert_eq!(answer, Response::status(Status::AllFail));
    assert_eq!(report.asked.len(), 24);
    for asked in &report.asked {
        let why = PeerOutcome::LocalError(LocalCause::NoRandomness);
        assert_eq!(asked.outcome, why, "RAIDA {}", asked.target.raida);
    }
    // One line per challenge the client could not make (one per peer), then the first
    // health line: no peer is blamed for this host's failure.
    let mut lines = std::mem::take(&mut *LINES.lock());
    let health = lines.pop().expect("the health line");
    let line = (
        Level::Error,
        "the OS random source failed: getrandom: made to fail by a test".to_string(),
    );
    assert_eq!(lines, vec![line; 24]);
    let peers: String = (1..25)
        .map(|raida| format!("{raida}@{peer_addr} 0/0/0/0 0"))
        .collect::<Vec<_>>()
        .join("; ");
    assert_eq!(
        health,
        (
            Level::Warning,
            format!(
                "peer health since start (answers/failures/timeouts/hedges, typical ms): \
                 {peers}"
            )
        )
    );
    assert!(
        peer.accept()
            .is_err_and(|e| e.kind() == std::io::ErrorKind::WouldBlock),
        "a peer was asked with a challenge from a failed source"
    );
    assert_eq!(
        server.store.get(coin),
        Some((an, 1)),
        "fix changed the record"
    );

    // The source back: tickets again.
    drop(failing);
    assert_eq!(run(Command::GetTicket, &get_ticket).status, Status::AllPass);
    log::set_sink(None);
}
