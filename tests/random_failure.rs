//! Randomness fails closed: when the OS random source fails, get_ticket makes no
//! ticket and fix asks no peer; both answer ERROR_INTERNAL (252) and log why.
//!
//! The failing source is process-wide (`random::testing::OsSourceFailure`), so this binary
//! holds one test only, and nothing else here needs random bytes meanwhile.

use std::net::{SocketAddr, TcpListener};

use parking_lot::Mutex;
use raida_healing::commands::{Command, Node, NodeConfig, Request};
use raida_healing::log::{self, Level};
use raida_healing::peers::PeerOptions;
use raida_healing::protocol::{Coin, Response, Status};
use raida_healing::random::testing::OsSourceFailure;
use raida_healing::store::MemoryStore;
use raida_healing::tickets::TicketPool;

static LINES: Mutex<Vec<(Level, String)>> = Mutex::new(Vec::new());

fn capture(level: Level, line: &str) {
    LINES.lock().push((level, line.to_string()));
}

fn legacy_body(payload: &[u8]) -> Vec<u8> {
    let mut body: Vec<u8> = (0..12).collect();
    body.extend_from_slice(&raida_healing::protocol::challenge_crc(&body).to_be_bytes());
    body.extend_from_slice(payload);
    body.extend_from_slice(&[0x3e, 0x3e]);
    body
}

fn run(node: &Node<'_, MemoryStore>, command: Command, payload: &[u8]) -> Response {
    let body = legacy_body(payload);
    node.run(
        command,
        &Request {
            body: Some(&body),
            encryption_type: 0,
            coin_id: 1,
        },
    )
}

#[test]
fn a_failing_random_source_answers_252_and_logs_why() {
    log::set_sink(Some(capture));
    let coin = Coin { den: 1, sn: 77 };
    let an = [0x42u8; 16];
    let store = MemoryStore::with_mfs(45);
    store.put(coin, an, 1);
    // RAIDA 1 is a listener that must never see a connection
    let peer = TcpListener::bind("127.0.0.1:0").unwrap();
    peer.set_nonblocking(true).unwrap();
    let SocketAddr::V4(peer_addr) = peer.local_addr().unwrap() else {
        panic!("not IPv4");
    };
    let mut peers = [None; 25];
    peers[1] = Some(peer_addr);
    let config = NodeConfig { raida_no: 0, peers };
    let pool = TicketPool::default();
    let options = PeerOptions::default();
    let node = Node {
        store: &store,
        tickets: &pool,
        config: &config,
        peer_options: &options,
    };
    let get_ticket = [&coin.to_wire()[..], &an].concat();
    let mut fix = coin.to_wire().to_vec();
    fix.extend_from_slice(&[7u8; 16]); // PG
    for raida in 0..25u32 {
        fix.extend_from_slice(&(if raida == 1 { 0x1234_5678u32 } else { 0 }).to_be_bytes());
    }

    // With the source working: a ticket (241 + id), and fix asks RAIDA 1.
    let answer = run(&node, Command::GetTicket, &get_ticket);
    assert_eq!(answer.status, Status::AllPass);
    assert_eq!(pool.live(), 1);

    let failing = OsSourceFailure::start();
    LINES.lock().clear();
    assert_eq!(
        run(&node, Command::GetTicket, &get_ticket),
        Response::status(Status::Internal)
    );
    assert_eq!(pool.live(), 1, "a ticket was made without randomness");
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

    assert_eq!(
        run(&node, Command::Fix, &fix),
        Response::status(Status::Internal)
    );
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
    assert_eq!(store.get(coin), Some((an, 1)), "fix changed the record");

    // The source back: tickets again.
    drop(failing);
    assert_eq!(
        run(&node, Command::GetTicket, &get_ticket).status,
        Status::AllPass
    );
    log::set_sink(None);
}
