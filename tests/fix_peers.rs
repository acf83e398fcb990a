//! fix against scripted loopback peers: honest, silent, faulty and slow-to-accept ones.
//!
//! Every peer is a real TCP listener on 127.0.0.1 driven by a script; the fix under test
//! reaches them through `NodeConfig.peers`. Assertions are on exact statuses, bytes,
//! records, per-peer outcomes and the requests each peer received. Deadlines are safety
//! nets (long) except where a test is about the deadline itself; no assertion depends on
//! how fast the machine is.

use std::collections::HashSet;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddrV4, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kit::node::Server;
use kit::peers::{black_hole, down_port, FakePeer, Untouchable};
use kit::request::{check_request, read_request, request_header, PeerRequest};
use kit::wire::{fix_payload, legacy_body, listing, modern_body, reply};
use raida_healing::hash::derive_an;
use raida_healing::peers::{
    ask_one, AnswerError, Claimer, Part, PeerClient, PeerOptions, PeerOutcome, Target,
};
use raida_healing::protocol::{Coin, Response, Status};
use raida_healing::store::{MemoryStore, PageKey};
use raida_healing::tickets::TicketPool;

/// The fixing server's RAIDA index in every test.
const ME: u8 = 7;
/// The MFS the test store stamps.
const MFS: u8 = 77;
/// The coin id of every request.
const COIN_ID: u8 = 6;
/// Safety net for anything a test waits on.
const SAFETY: Duration = Duration::from_secs(30);

fn coin(den: i8, sn: u32) -> Coin {
    Coin { den, sn }
}

fn ticket_of(raida: u8) -> u32 {
    0x5000_0000 + u32::from(raida)
}

/// Builds a whole answer (header and body) from the request received.
type BuildAnswer = dyn Fn(&PeerRequest) -> Vec<u8> + Send + Sync;

/// How a scripted peer answers.
enum Script {
    /// 250 with `coins` to its first connection, 44 (already claimed) to later ones, as a
    /// legacy peer does.
    Honest(Vec<Coin>),
    /// Like `Honest`, but it leaves its first connection unanswered until a second one
    /// arrives (a legacy listener that accepts one connection per wake-up).
    AcceptsOnSecond(Vec<Coin>),
    /// Reads the request and never answers; records when the client closes.
    Stalled,
    /// Sends whatever the function builds from the request, then closes.
    Raw(Box<BuildAnswer>),
}

/// What a scripted peer saw. Only connections carrying a validate-ticket request for this
/// peer count: anything else reaching the port (another process's stray connect) is
/// ignored.
#[derive(Default)]
struct Seen {
    requests: Vec<PeerRequest>,
    /// Requests answered so far (an honest peer answers 250 once, then 44).
    answered: usize,
    /// The first connection of a peer that answers only once a second one arrives.
    held: Option<(TcpStream, PeerRequest)>,
    /// Connections accepted, and how many of those the client has closed (tracked by
    /// stalled peers).
    accepted: usize,
    closed_by_client: usize,
}

/// A loopback peer running a script until dropped: the kit's accept thread counts each
/// connection and gives it a thread of its own.
struct ScriptedPeer {
    raida: u8,
    addr: SocketAddrV4,
    seen: Arc<Mutex<Seen>>,
    _peer: FakePeer,
}

/// The validate-ticket request for `raida` on `stream`, if that is what arrives.
fn read_request_for(stream: &mut TcpStream, raida: u8) -> Option<PeerRequest> {
    let request = read_request(stream, SAFETY)?;
    (request[..6] == request_header(raida, COIN_ID)[..6]).then_some(request)
}

impl ScriptedPeer {
    fn spawn(raida: u8, script: Script) -> ScriptedPeer {
        let seen = Arc::new(Mutex::new(Seen::default()));
        let peer = {
            let seen = Arc::clone(&seen);
            let script = Arc::new(script);
            FakePeer::spawn(move |stream| {
                seen.lock().unwrap().accepted += 1;
                let (seen, script) = (Arc::clone(&seen), Arc::clone(&script));
                std::thread::spawn(move || serve(raida, stream, &script, &seen));
            })
        };
        ScriptedPeer {
            raida,
            addr: peer.addr,
            seen,
            _peer: peer,
        }
    }

    fn requests(&self) -> Vec<PeerRequest> {
        self.seen.lock().unwrap().requests.clone()
    }

    /// Waits until every connection this stalled peer accepted has been closed by the
    /// client, and returns how many there were (0 when the fix was decided before it
    /// got to this peer).
    fn wait_all_closed_by_client(&self) -> usize {
        let until = Instant::now() + SAFETY;
        loop {
            let (accepted, closed) = {
                let seen = self.seen.lock().unwrap();
                (seen.accepted, seen.closed_by_client)
            };
            if closed == accepted {
                return accepted;
            }
            assert!(
                Instant::now() < until,
                "peer {}: {closed} of {accepted} connections closed by the client after \
                 the fix returned",
                self.raida
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// Serves one connection according to the script.
fn serve(raida: u8, mut stream: TcpStream, script: &Script, seen: &Mutex<Seen>) {
    let Some(request) = read_request_for(&mut stream, raida) else {
        // Closed before a request arrived (a connection the fix cancelled at once).
        seen.lock().unwrap().closed_by_client += 1;
        return;
    };
    let challenge = &request[32..48];
    let mut state = seen.lock().unwrap();
    state.requests.push(request);
    match script {
        Script::Honest(coins) => {
            let first = state.answered == 0;
            state.answered += 1;
            drop(state);
            let out = if first {
                reply(raida, 250, challenge, &listing(coins))
            } else {
                reply(raida, 44, challenge, &[])
            };
            let _ = stream.write_all(&out);
        }
        Script::AcceptsOnSecond(coins) => match state.held.take() {
            None => state.held = Some((stream, request)),
            Some((mut first, first_request)) => {
                drop(state);
                let _ =
                    first.write_all(&reply(raida, 250, &first_request[32..48], &listing(coins)));
                let _ = stream.write_all(&reply(raida, 44, challenge, &[]));
            }
        },
        Script::Stalled => {
            drop(state);
            // Blocks until the client closes (0 or a reset), or the safety timeout.
            let mut byte = [0u8; 1];
            let closed = match stream.read(&mut byte) {
                Ok(n) => n == 0,
                Err(e) => !matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
            };
            if closed {
                seen.lock().unwrap().closed_by_client += 1;
            }
        }
        Script::Raw(build) => {
            drop(state);
            let _ = stream.write_all(&build(&request));
        }
    }
}

/// The request body of a fix: legacy (type < 4) or modern framing.
fn fix_body(encryption_type: i32, coins: &[Coin], pg: &[u8; 16], tickets: &[u32; 25]) -> Vec<u8> {
    let payload = fix_payload(coins, pg, tickets);
    if encryption_type < 4 {
        legacy_body(&payload)
    } else {
        modern_body(&payload, 0x55)
    }
}

/// This server (RAIDA ME, store stamping MFS) with `options`; peers are added per test.
fn server(options: PeerOptions) -> Server<MemoryStore> {
    Server {
        options,
        ..Server::new(ME, MemoryStore::with_mfs(MFS), TicketPool::default())
    }
}

/// This server with `coins` stored at their old AN and MFS, the usual options.
fn server_holding(coins: &[Coin]) -> Server<MemoryStore> {
    let setup = server(options());
    for &coin in coins {
        setup.store.put(coin, OLD_AN, OLD_MFS);
    }
    setup
}

/// Gives each of `peers` its address in `setup` and its ticket in `tickets`.
fn enlist<'a>(
    setup: &mut Server<MemoryStore>,
    tickets: &mut [u32; 25],
    peers: impl IntoIterator<Item = &'a ScriptedPeer>,
) {
    for p in peers {
        setup.peer(p.raida, p.addr);
        tickets[usize::from(p.raida)] = ticket_of(p.raida);
    }
}

/// Long safety deadline, a short hedge.
fn options() -> PeerOptions {
    PeerOptions {
        deadline: SAFETY,
        hedge_after: Duration::from_millis(100),
        hedge_start: Duration::from_millis(100),
        ..PeerOptions::default()
    }
}

const OLD_AN: [u8; 16] = [0x11; 16];
const OLD_MFS: u8 = 3;

fn pg() -> [u8; 16] {
    core::array::from_fn(|i| i as u8)
}

/// The peer indices other than this server's, in order.
fn other_indices() -> Vec<u8> {
    (0..25).filter(|&i| i != ME).collect()
}

/// Checks a request a peer received: the exact legacy frame for that peer and ticket,
/// with a challenge sealed by its CRC-32.
fn assert_request_frame(request: &PeerRequest, peer: u8, me: u8) {
    if let Err(why) = check_request(request, peer, me, COIN_ID, Some(ticket_of(peer))) {
        panic!("request sent to peer {peer}: {why}");
    }
}

/// The client holds no peer connection: every socket it opened is closed (a budget slot
/// is given back only after its socket is closed, and each test's client is its own).
fn assert_no_peer_connections(client: &PeerClient) {
    assert_eq!(client.budget.in_use(), 0);
}

#[test]
fn twenty_four_peers_honest_faulty_silent_and_slow_to_accept() {
    let c = [
        coin(1, 10),
        coin(1, 11),
        coin(1, 12),
        coin(2, 3 * 1024 + 1),
        coin(2, 3 * 1024 + 2),
        coin(1, 5 * 1024 + 7),
        coin(-8, 999 * 1024 + 1023),
        coin(1, 10),
        coin(6, 0),
        coin(0, 77),
    ];
    let setup = server_holding(&c);
    let idx = other_indices();
    // Who lists what (votes = 1 + distinct listing peers):
    //   c0, c5, c6: 13 honest + slow acceptor = 15 -> fixed
    //   c1: 10 honest + liar (20 times)        = 12 -> not fixed (the legacy count: 31)
    //   c2: 13 honest                          = 14 -> fixed
    //   c3: nobody = 1; c4: 11 honest = 12     -> not fixed
    //   c8: 12 honest + liar = 14; c9: 12 honest + slow acceptor = 14 -> fixed
    // Every coin ends at >= 14 or <= 12, so the fix is decided once every peer but the
    // stalled one has answered, and each of those answers is needed to decide it.
    let honest = |k: usize| {
        let mut list = vec![c[0], c[5], c[6], c[2]];
        if k < 10 {
            list.push(c[1]);
        }
        if k < 11 {
            list.push(c[4]);
        }
        if k < 12 {
            list.extend([c[8], c[9]]);
        }
        list
    };
    let everything = c.to_vec();
    let mut peers = Vec::new();
    for (k, &raida) in idx[..13].iter().enumerate() {
        peers.push(ScriptedPeer::spawn(raida, Script::Honest(honest(k))));
    }
    // The stalled peer comes before the slow acceptor in RAIDA order, so its hedge falls
    // due first: by the time the slow acceptor's hedge opens (its answer decides the fix),
    // the stalled peer's hedge has opened too, however the fix thread is scheduled.
    let stalled = ScriptedPeer::spawn(idx[13], Script::Stalled);
    let slow = ScriptedPeer::spawn(
        idx[16],
        Script::AcceptsOnSecond(vec![c[0], c[5], c[6], c[9]]),
    );
    let no_ticket = Untouchable::new();
    let mut liar_list = vec![c[1]; 20];
    liar_list.extend(vec![c[8]; 20]);
    let liar = ScriptedPeer::spawn(idx[15], Script::Honest(liar_list));
    let (_down_socket, down) = down_port();
    let raw = |raida: u8, build: fn(u8, &PeerRequest, &[Coin]) -> Vec<u8>| {
        let all = everything.clone();
        ScriptedPeer::spawn(
            raida,
            Script::Raw(Box::new(move |req| build(raida, req, &all))),
        )
    };
    let lying_size = raw(idx[18], |r, req, all| {
        let mut out = reply(r, 250, &req[32..48], &listing(all));
        let announced = 2 + 5 * 4097usize;
        out[9..12].copy_from_slice(&(announced as u32).to_be_bytes()[1..]);
        out
    });
    let truncated = raw(idx[19], |r, req, all| {
        let mut out = reply(r, 250, &req[32..48], &listing(&all[..3]));
        out.truncate(32 + 7);
        out
    });
    let bad_trailer = raw(idx[20], |r, req, all| {
        let mut body = listing(all);
        *body.last_mut().unwrap() = 0x3f;
        reply(r, 250, &req[32..48], &body)
    });
    let wrong_echo = raw(idx[21], |r, req, all| {
        let mut challenge = req[32..48].to_vec();
        challenge[3] ^= 0x80;
        reply(r, 250, &challenge, &listing(all))
    });
    let wrong_index = raw(idx[22], |_, req, all| {
        reply(99, 250, &req[32..48], &listing(all))
    });
    let declined = raw(idx[23], |r, req, _| reply(r, 43, &req[32..48], &[]));
    let myself = Untouchable::new();

    let mut setup = setup;
    let mut tickets = [0u32; 25];
    // Every peer that holds a ticket: the 13 honest ones and the scripted misfits.
    let ticket_holders: Vec<_> = peers
        .iter()
        .chain([
            &slow,
            &liar,
            &stalled,
            &lying_size,
            &truncated,
            &bad_trailer,
            &wrong_echo,
            &wrong_index,
            &declined,
        ])
        .collect();
    enlist(&mut setup, &mut tickets, ticket_holders.iter().copied());
    setup.config.peers[usize::from(idx[14])] = Some(no_ticket.addr);
    setup.config.peers[usize::from(idx[17])] = Some(down);
    tickets[usize::from(idx[17])] = ticket_of(idx[17]);
    setup.peer(ME, myself.addr);
    tickets[usize::from(ME)] = 0xdead_beef;

    let body = fix_body(0, &c, &pg(), &tickets);
    let (response, report) = setup.fix(Some(&body), 0, COIN_ID).unwrap();

    // Status and bitfield: fixed c0 c2 c5 c6 c7 | c8 c9.
    assert_eq!(
        response,
        Response::with_body(Status::Mixed, vec![0xe5, 0x03])
    );

    // Records.
    for (i, &coin) in c.iter().enumerate() {
        let fixed = [0, 2, 5, 6, 7, 8, 9].contains(&i);
        let expected = if fixed {
            (derive_an(ME, coin, &pg(), 0), MFS)
        } else {
            (OLD_AN, OLD_MFS)
        };
        assert_eq!(setup.store.get(coin), Some(expected), "coin {i}");
    }
    // Dirty flags, bitmap calls (each fixed serial once) and locks: pages with a fixed
    // coin are locked twice (check, write), the others once.
    let page = |den, page| PageKey { den, page };
    let bookkeeping = |key| {
        setup
            .store
            .inspect(key, |p| (p.dirty, p.marked_used.clone(), p.locks))
            .unwrap()
    };
    assert_eq!(bookkeeping(page(1, 0)), (true, vec![10, 12], 2));
    assert_eq!(bookkeeping(page(2, 3)), (false, vec![], 1));
    assert_eq!(bookkeeping(page(1, 5)), (true, vec![5 * 1024 + 7], 2));
    assert_eq!(
        bookkeeping(page(-8, 999)),
        (true, vec![999 * 1024 + 1023], 2)
    );
    assert_eq!(bookkeeping(page(6, 0)), (true, vec![0], 2));
    assert_eq!(bookkeeping(page(0, 0)), (true, vec![77], 2));

    // Per-peer outcomes.
    for (k, p) in peers.iter().enumerate() {
        assert_eq!(
            report.outcome_of(p.raida),
            Some(&PeerOutcome::Voted {
                listed: honest(k).len()
            }),
            "honest peer {}",
            p.raida
        );
    }
    assert_eq!(
        report.outcome_of(slow.raida),
        Some(&PeerOutcome::Voted { listed: 4 })
    );
    assert_eq!(report.outcome_of(idx[14]), Some(&PeerOutcome::NoTicket));
    assert_eq!(
        report.outcome_of(liar.raida),
        Some(&PeerOutcome::Voted { listed: 40 })
    );
    assert_eq!(
        report.outcome_of(stalled.raida),
        Some(&PeerOutcome::Unneeded)
    );
    assert_eq!(
        report.outcome_of(idx[17]),
        Some(&PeerOutcome::Refused(ErrorKind::ConnectionRefused))
    );
    assert_eq!(
        report.outcome_of(lying_size.raida),
        Some(&PeerOutcome::Invalid(AnswerError::BadBodySize(20_487)))
    );
    assert_eq!(
        report.outcome_of(truncated.raida),
        Some(&PeerOutcome::Invalid(AnswerError::Closed {
            part: Part::Body,
            received: 7,
            expected: 17
        }))
    );
    assert_eq!(
        report.outcome_of(bad_trailer.raida),
        Some(&PeerOutcome::Invalid(AnswerError::BadTrailer([0x3e, 0x3f])))
    );
    assert_eq!(
        report.outcome_of(wrong_echo.raida),
        Some(&PeerOutcome::Invalid(AnswerError::ChallengeNotEchoed))
    );
    assert_eq!(
        report.outcome_of(wrong_index.raida),
        Some(&PeerOutcome::Invalid(AnswerError::WrongRaida {
            expected: wrong_index.raida,
            got: 99
        }))
    );
    assert_eq!(
        report.outcome_of(declined.raida),
        Some(&PeerOutcome::Declined(43))
    );
    assert_eq!(report.outcome_of(ME), Some(&PeerOutcome::ThisServer));
    let hedged = |raida: u8| {
        report
            .asked
            .iter()
            .find(|r| r.target.raida == raida)
            .unwrap()
            .hedged
    };
    assert!(hedged(slow.raida) && hedged(stalled.raida));
    let counts = report.counts();
    assert_eq!(
        (
            counts.voted,
            counts.no_ticket,
            counts.refused,
            counts.declined,
            counts.timed_out,
            counts.invalid,
            counts.unneeded
        ),
        (15, 1, 1, 1, 0, 5, 1)
    );
    assert_eq!((report.coins_asked, report.coins_fixed), (10, 7));
    assert!(report.summary_line().starts_with(
        "fix: 10 coins asked, 7 fixed, 3 not fixed; peers: 15 voted, 1 no ticket, 0 no address, \
         1 refused, 1 declined, 0 timed out, 5 invalid answer, 1 unneeded, 0 local error, 0 no connection slot; "
    ));
    // The line names the failed peers (down and the five broken answers).
    assert!(report
        .summary_line()
        .contains(" ms; failed: 18 19 20 21 22 23; hedged: "));

    // Never contacted: this server itself and the peer without a ticket.
    assert!(!myself.was_contacted());
    assert!(!no_ticket.was_contacted());
    // Every request was the exact legacy frame, each with a fresh challenge; the slow
    // acceptor got two connections.
    let mut challenges = HashSet::new();
    for p in ticket_holders.iter().copied() {
        for request in p.requests() {
            assert_request_frame(&request, p.raida, ME);
            assert!(
                challenges.insert(request[32..44].to_vec()),
                "challenge reused"
            );
        }
    }
    assert_eq!(slow.requests().len(), 2);
    // The stalled peer's connections were closed when the fix returned, and nothing the
    // fix started is still running.
    stalled.wait_all_closed_by_client();
    assert_no_peer_connections(&setup.peers);
}

#[test]
fn decided_fix_returns_without_stalled_and_black_holed_peers() {
    let x = coin(3, 4242);
    let mut setup = server_holding(&[x]);
    let idx = other_indices();
    let mut tickets = [0u32; 25];
    let mut honest = Vec::new();
    for &raida in &idx[..14] {
        honest.push(ScriptedPeer::spawn(raida, Script::Honest(vec![x])));
    }
    let mut stalled = Vec::new();
    for &raida in &idx[14..23] {
        stalled.push(ScriptedPeer::spawn(raida, Script::Stalled));
    }
    enlist(&mut setup, &mut tickets, honest.iter().chain(&stalled));
    let (_hole, _filler, hole) = black_hole();
    setup.config.peers[usize::from(idx[23])] = Some(hole);
    tickets[usize::from(idx[23])] = ticket_of(idx[23]);

    // The deadline is 30 s: had the fix waited for a silent peer, the outcomes below
    // would read "timed out".
    let body = fix_body(0, &[x], &pg(), &tickets);
    let (response, report) = setup.fix(Some(&body), 0, COIN_ID).unwrap();
    assert_eq!(response, Response::status(Status::AllPass));
    assert_eq!(setup.store.get(x), Some((derive_an(ME, x, &pg(), 0), MFS)));
    for p in &stalled {
        assert_eq!(
            report.outcome_of(p.raida),
            Some(&PeerOutcome::Unneeded),
            "stalled {}",
            p.raida
        );
    }
    assert_eq!(report.outcome_of(idx[23]), Some(&PeerOutcome::Unneeded));
    let counts = report.counts();
    assert!(counts.voted >= 13, "{}", report.summary_line());
    assert_eq!(counts.voted + counts.unneeded, 24);
    for p in &stalled {
        p.wait_all_closed_by_client();
    }
    assert_no_peer_connections(&setup.peers);
}

#[test]
fn deadline_ends_a_fix_that_a_silent_peer_could_still_decide() {
    let mut setup = server(PeerOptions {
        deadline: Duration::from_millis(300),
        hedge_after: Duration::from_millis(100),
        hedge_start: Duration::from_millis(100),
        ..PeerOptions::default()
    });
    let x = coin(1, 1);
    setup.store.put(x, OLD_AN, OLD_MFS);
    let idx = other_indices();
    let mut tickets = [0u32; 25];
    // 12 listings + this server = 13: the stalled peer could make it 14, so only the
    // deadline ends the fix.
    let mut peers: Vec<ScriptedPeer> = idx[..12]
        .iter()
        .map(|&r| ScriptedPeer::spawn(r, Script::Honest(vec![x])))
        .collect();
    peers.push(ScriptedPeer::spawn(idx[12], Script::Stalled));
    enlist(&mut setup, &mut tickets, &peers);
    let body = fix_body(0, &[x], &pg(), &tickets);
    let (response, report) = setup.fix(Some(&body), 0, COIN_ID).unwrap();
    assert_eq!(response, Response::status(Status::AllFail));
    assert_eq!(report.outcome_of(idx[12]), Some(&PeerOutcome::TimedOut));
    assert_eq!(setup.store.get(x), Some((OLD_AN, OLD_MFS)));
    let key = PageKey { den: 1, page: 0 };
    assert_eq!(
        setup.store.inspect(key, |p| (p.dirty, p.locks)),
        Some((false, 1))
    );
    peers[12].wait_all_closed_by_client();
    assert_no_peer_connections(&setup.peers);
}

#[test]
fn thirteen_peers_fix_a_coin_twelve_do_not() {
    let (x, y) = (coin(4, 100), coin(4, 101));
    let mut setup = server_holding(&[x, y]);
    let idx = other_indices();
    let mut tickets = [0u32; 25];
    let peers: Vec<ScriptedPeer> = idx[..13]
        .iter()
        .enumerate()
        .map(|(k, &r)| {
            ScriptedPeer::spawn(r, Script::Honest(if k < 12 { vec![x, y] } else { vec![x] }))
        })
        .collect();
    enlist(&mut setup, &mut tickets, &peers);
    let body = fix_body(0, &[x, y], &pg(), &tickets);
    let (response, report) = setup.fix(Some(&body), 0, COIN_ID).unwrap();
    assert_eq!(response, Response::with_body(Status::Mixed, vec![0x01]));
    assert_eq!(setup.store.get(x), Some((derive_an(ME, x, &pg(), 0), MFS)));
    assert_eq!(setup.store.get(y), Some((OLD_AN, OLD_MFS)));
    assert_eq!(report.counts().voted, 13);
    let key = PageKey { den: 4, page: 0 };
    assert_eq!(
        setup
            .store
            .inspect(key, |p| (p.dirty, p.marked_used.clone())),
        Some((true, vec![100]))
    );
}

#[test]
fn type_4_request_uses_modern_framing_and_sha256() {
    // The docs/wire-protocol.md vector: raida 3, den 1, sn 5000, PG 00..0f.
    let x = coin(1, 5000);
    let mut setup = server_holding(&[x]);
    setup.config.raida_no = 3;
    let mut tickets = [0u32; 25];
    let peers: Vec<ScriptedPeer> = (10..23)
        .map(|r| ScriptedPeer::spawn(r, Script::Honest(vec![x])))
        .collect();
    enlist(&mut setup, &mut tickets, &peers);
    let body = fix_body(4, &[x], &pg(), &tickets);
    let (response, _) = setup.fix(Some(&body), 4, COIN_ID).unwrap();
    assert_eq!(response, Response::status(Status::AllPass));
    let an: [u8; 16] = [
        0xc7, 0x1f, 0xea, 0x3f, 0x4d, 0xb0, 0x5a, 0xde, 0x41, 0xd7, 0x71, 0x7d, 0xbe, 0x34, 0x7a,
        0xa8,
    ];
    assert_eq!(setup.store.get(x), Some((an, MFS)));
    for p in &peers {
        for request in p.requests() {
            assert_request_frame(&request, p.raida, 3);
        }
    }
}

#[test]
fn unknown_coin_is_40_and_no_peer_is_contacted() {
    let listeners: Vec<Untouchable> = (0..25).map(|_| Untouchable::new()).collect();
    let known = coin(1, 1);
    let mut setup = server_holding(&[known]);
    let tickets: [u32; 25] = core::array::from_fn(|i| ticket_of(i as u8));
    for (i, l) in listeners.iter().enumerate() {
        setup.config.peers[i] = Some(l.addr);
    }
    // A page that does not exist, then a denomination that cannot exist.
    for unknown in [coin(1, 2048), coin(9, 1)] {
        let body = fix_body(0, &[known, unknown], &pg(), &tickets);
        assert_eq!(
            setup.fix(Some(&body), 0, COIN_ID).unwrap_err(),
            Status::InvalidSnOrDenomination
        );
    }
    assert!(listeners.iter().all(|l| !l.was_contacted()));
    assert_eq!(setup.store.get(known), Some((OLD_AN, OLD_MFS)));
    // Sizes and an absent body are refused before anything else, too.
    let body = fix_body(0, &[known], &pg(), &tickets);
    let mut odd = body.clone();
    odd.insert(16, 0);
    assert_eq!(
        setup.fix(Some(&odd), 0, COIN_ID).unwrap_err(),
        Status::CoinsNotDiv
    );
    assert_eq!(
        setup.fix(Some(&body[..138]), 0, COIN_ID).unwrap_err(),
        Status::InvalidPacketLength
    );
    assert_eq!(
        setup.fix(None, 0, COIN_ID).unwrap_err(),
        Status::EmptyRequest
    );
    assert!(listeners.iter().all(|l| !l.was_contacted()));
}

#[test]
fn twelve_tickets_cannot_reach_fourteen_so_no_peer_is_asked() {
    let x = coin(1, 1);
    let mut setup = server_holding(&[x]);
    let listeners: Vec<Untouchable> = (0..12).map(|_| Untouchable::new()).collect();
    let mut tickets = [0u32; 25];
    for (l, &raida) in listeners.iter().zip(&other_indices()) {
        setup.peer(raida, l.addr);
        tickets[usize::from(raida)] = ticket_of(raida);
    }
    let body = fix_body(0, &[x], &pg(), &tickets);
    let (response, report) = setup.fix(Some(&body), 0, COIN_ID).unwrap();
    assert_eq!(response, Response::status(Status::AllFail));
    assert_eq!(report.counts().unneeded, 12);
    assert!(listeners.iter().all(|l| !l.was_contacted()));
}

#[test]
fn one_peer_job_is_as_strict_and_hedged() {
    let options = options();
    let client = PeerClient::default();
    let claimer = Claimer {
        raida_no: ME,
        coin_id: COIN_ID,
        source: None,
    };
    let coins = vec![coin(1, 1), coin(1, 1), coin(2, 9)];
    let honest = ScriptedPeer::spawn(3, Script::Honest(coins.clone()));
    let target = |p: &ScriptedPeer| Target {
        raida: p.raida,
        addr: p.addr,
        ticket: ticket_of(p.raida),
    };
    let (report, listed) = ask_one(&client, target(&honest), claimer, &options);
    assert_eq!(report.outcome, PeerOutcome::Voted { listed: 3 });
    assert_eq!(listed, Some(coins.clone()));
    assert_request_frame(&honest.requests()[0], 3, ME);
    // Asked again, a legacy peer says "already claimed".
    let (report, listed) = ask_one(&client, target(&honest), claimer, &options);
    assert_eq!((report.outcome, listed), (PeerOutcome::Declined(44), None));

    let slow = ScriptedPeer::spawn(4, Script::AcceptsOnSecond(coins.clone()));
    let (report, listed) = ask_one(&client, target(&slow), claimer, &options);
    assert_eq!(report.outcome, PeerOutcome::Voted { listed: 3 });
    assert!(report.hedged);
    assert_eq!(listed, Some(coins));
    assert_no_peer_connections(&client);
}
