//! Randomness fails closed: when the OS random source fails, get_ticket makes no
//! ticket and fix asks no peer; both answer ERROR_INTERNAL (252) and log why.
//!
//! The failing source is process-wide (`random::testing::OsSourceFailure`), so this binary
//! holds one test only, and nothing else here needs random bytes meanwhile.

use kit::node::Server;
use kit::peers::listen;
use kit::wire::{fix_payload, legacy_body};
use parking_lot::Mutex;
use raida_healing::commands::Command;
use raida_healing::log::{self, Level};
use raida_healing::protocol::{Coin, Response, Status};
use raida_healing::random::testing::OsSourceFailure;
use raida_healing::store::MemoryStore;
use raida_healing::tickets::TicketPool;

static LINES: Mutex<Vec<(Level, String)>> = Mutex::new(Vec::new());

fn capture(level: Level, line: &str) {
    LINES.lock().push((level, line.to_string()));
}

#[test]
fn a_failing_random_source_answers_252_and_logs_why() {
    log::set_sink(Some(capture));
    let coin = Coin { den: 1, sn: 77 };
    let an = [0x42u8; 16];
    let mut server = Server::new(0, MemoryStore::with_mfs(45), TicketPool::default());
    server.store.put(coin, an, 1);
    // RAIDA 1 is a listener that must never see a connection
    let (peer, peer_addr) = listen();
    peer.set_nonblocking(true).unwrap();
    server.peer(1, peer_addr);
    let run = |command, payload: &[u8]| server.run(command, Some(&legacy_body(payload)), 0, 1);
    let get_ticket = [&coin.to_wire()[..], &an].concat();
    let mut tickets = [0u32; 25];
    tickets[1] = 0x1234_5678;
    let fix = fix_payload(&[coin], &[7u8; 16], &tickets); // PG [7; 16]

    // With the source working: a ticket (241 + id), and fix asks RAIDA 1.
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

    assert_eq!(run(Command::Fix, &fix), Response::status(Status::Internal));
    let lines = std::mem::take(&mut *LINES.lock());
    assert!(
        lines.contains(&(
            Level::Error,
            "fix: no peer challenge (the OS random source failed: getrandom: made to fail by a \
             test); answering ERROR_INTERNAL"
                .to_string()
        )),
        "{lines:?}"
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
