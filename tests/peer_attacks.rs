//! The validate-ticket client against hostile peers on loopback: one that trickles its
//! answer a byte per second, one that never stops sending (with an honest and with a
//! 16 MB body size), one that resets the connection mid-header, and one that answers
//! for another RAIDA. Each must cost at most the deadline and no more memory than the
//! documented bound: 32 header bytes plus a body of at most 2 + 5 × 4096 bytes.
//!
//! Time is asserted through outcomes, never through a clock: the trickled answer is a
//! VALID one, so a client that bounded each read instead of the whole exchange would end
//! up voting (after 39 s) instead of timing out at the short deadline. Memory is asserted
//! two ways: the peak resident memory of the process grows by less than MEMORY_BOUND
//! during the call (a client that believed a 16 MB size, or read an endless body, would
//! touch far more), and the peer counts what it managed to send before the client closed,
//! which is at most what the client read plus what the two kernels buffered, while the
//! outcome shows the client parsed exactly the announced body.
//!
//! The tests run one at a time (`serial`): the memory measure is process-wide.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kit::node::Server;
use kit::peers::FakePeer;
use kit::request::{read_request, PeerRequest};
use kit::serial;
use kit::wire::{fix_payload, header, legacy_body, listing, reply};
use raida_healing::commands::fix::FixReport;
use raida_healing::hash::derive_an;
use raida_healing::peers::{
    ask_one, AnswerError, Claimer, Part, PeerClient, PeerOptions, PeerOutcome, PeerReport, Target,
    MAX_RESPONSE_BODY, RESPONSE_HEADER_BYTES,
};
use raida_healing::protocol::{challenge_crc, Coin, Status};
use raida_healing::store::MemoryStore;
use raida_healing::tickets::TicketPool;

const ME: u8 = 3;
const COIN_ID: u8 = 6;
/// Safety net for anything a test waits on (never reached when the client is right).
const SAFETY: Duration = Duration::from_secs(60);

/// The largest answer the client may read: header and the biggest allowed body.
const READ_BOUND: usize = RESPONSE_HEADER_BYTES + MAX_RESPONSE_BODY;
/// How much the peak resident memory may grow during one attacked call: the answer
/// buffer and parsed coins (tens of KB), a 4 KB read chunk on the calling thread and
/// allocator slack; a 16 MB buffer or an unbounded read does not fit.
const MEMORY_BOUND: usize = 4 << 20;

/// A `kB` line of /proc/self/status, in bytes.
fn status_kb(field: &str) -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status
        .lines()
        .find(|l| l.starts_with(field))
        .unwrap_or_else(|| panic!("no {field} in /proc/self/status"));
    line.split_whitespace()
        .nth(1)
        .unwrap()
        .parse::<usize>()
        .unwrap()
        * 1024
}

/// Runs `f` and returns its result and how far the process's peak resident memory rose
/// above its resident memory at the start (writing 5 to clear_refs resets the peak).
fn peak_memory_growth<T>(f: impl FnOnce() -> T) -> (T, usize) {
    std::fs::write("/proc/self/clear_refs", "5").unwrap();
    let base = status_kb("VmRSS:");
    let result = f();
    let peak = status_kb("VmHWM:");
    (result, peak.saturating_sub(base))
}

fn claimer() -> Claimer {
    Claimer {
        raida_no: ME,
        coin_id: COIN_ID,
        source: None,
    }
}

/// A short deadline and no hedge: each attack sees exactly one connection.
fn short(deadline_ms: u64) -> PeerOptions {
    PeerOptions {
        deadline: Duration::from_millis(deadline_ms),
        hedge_after: Duration::from_millis(deadline_ms),
        hedge_start: Duration::from_millis(deadline_ms),
        ..PeerOptions::default()
    }
}

/// What an attacking peer saw and did on one connection.
#[derive(Debug, Default, Clone)]
struct Record {
    request: Vec<u8>,
    /// Bytes it sent before it stopped.
    sent: usize,
    /// Why it stopped sending: the client closed (reset, broken pipe or EOF seen).
    client_closed: bool,
}

type Behaviour = dyn Fn(&mut TcpStream, &PeerRequest, &mut Record) + Send + Sync;

/// A loopback peer that runs `behaviour` on every connection (one at a time).
struct Attacker {
    records: Arc<Mutex<Vec<Record>>>,
    peer: FakePeer,
}

impl Attacker {
    fn spawn(behaviour: Box<Behaviour>) -> Attacker {
        let records = Arc::new(Mutex::new(Vec::new()));
        let peer = {
            let records = Arc::clone(&records);
            FakePeer::spawn(move |mut stream| {
                let Some(request) = read_request(&mut stream, SAFETY) else {
                    // Closed before its request was complete (a cancelled hedge).
                    records.lock().unwrap().push(Record {
                        client_closed: true,
                        ..Record::default()
                    });
                    return;
                };
                let mut record = Record {
                    request: request.to_vec(),
                    ..Record::default()
                };
                behaviour(&mut stream, &request, &mut record);
                records.lock().unwrap().push(record);
            })
        };
        Attacker { records, peer }
    }

    /// Waits until the attacker has finished `n` connections, and returns their records.
    fn finished(&self, n: usize) -> Vec<Record> {
        let until = std::time::Instant::now() + SAFETY;
        loop {
            let records = self.records.lock().unwrap().clone();
            if records.len() >= n {
                return records;
            }
            assert!(
                std::time::Instant::now() < until,
                "attacker still busy: the client never closed"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// Was this write error the client going away?
fn closed_by_peer(kind: ErrorKind) -> bool {
    matches!(
        kind,
        ErrorKind::BrokenPipe | ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted
    )
}

/// Writes `bytes` as far as the client lets it; records what was sent and whether the
/// client closed. Returns false once the client is gone.
fn push(stream: &mut TcpStream, bytes: &[u8], record: &mut Record) -> bool {
    let mut at = 0;
    while at < bytes.len() {
        match stream.write(&bytes[at..]) {
            Ok(0) => return false,
            Ok(n) => {
                at += n;
                record.sent += n;
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => {
                assert!(closed_by_peer(e.kind()), "unexpected send error {e}");
                record.client_closed = true;
                return false;
            }
        }
    }
    true
}

/// The bytes the two kernels can hold between the attacker's writes and the client's
/// reads: the client's largest receive buffer (tcp_rmem max) plus the attacker's send
/// buffer. What the peer managed to send beyond READ_BOUND must fit in there.
fn kernel_slack(stream: &TcpStream) -> usize {
    let rmem = std::fs::read_to_string("/proc/sys/net/ipv4/tcp_rmem")
        .ok()
        .and_then(|s| s.split_whitespace().nth(2).and_then(|v| v.parse().ok()))
        .unwrap_or(6 << 20);
    let sndbuf = socket2::SockRef::from(stream)
        .send_buffer_size()
        .unwrap_or(4 << 20);
    rmem + sndbuf
}

/// One claim, from a fresh peer client, of ticket 0x0bad_cafe at the attacker posing as
/// peer `raida`: what `ask_one` reports and the coins it returns.
fn ask_attacker(
    raida: u8,
    attacker: &Attacker,
    options: &PeerOptions,
) -> (PeerReport, Option<Vec<Coin>>) {
    ask_one(
        &PeerClient::default(),
        target(raida, attacker),
        claimer(),
        options,
    )
}

fn target(raida: u8, attacker: &Attacker) -> Target {
    Target {
        raida,
        addr: attacker.peer.addr,
        ticket: 0x0bad_cafe,
    }
}

// ---------------------------------------------------------------------------------------

/// Sends `bytes` one at a time, `interval` apart, until done or the client closes (seen
/// as EOF or an error on the read side while waiting, or a failed send).
fn trickle(stream: &mut TcpStream, bytes: &[u8], interval: Duration, record: &mut Record) {
    stream.set_read_timeout(Some(interval)).unwrap();
    for &byte in bytes {
        let mut probe = [0u8; 1];
        match stream.read(&mut probe) {
            Ok(0) => {
                record.client_closed = true;
                return;
            }
            Ok(_) => panic!("the client sent more than its request"),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) => {
                assert!(closed_by_peer(e.kind()), "{e}");
                record.client_closed = true;
                return;
            }
        }
        if !push(stream, &[byte], record) {
            return;
        }
    }
}

/// An attacker that trickles a VALID answer for RAIDA 9 listing one coin (a 7-byte body),
/// a byte per `interval`.
fn trickler(interval: Duration) -> Attacker {
    Attacker::spawn(Box::new(move |stream, request, record| {
        let answer = reply(
            9,
            250,
            &request[32..48],
            &listing(&[Coin { den: 1, sn: 77 }]),
        );
        trickle(stream, &answer, interval, record);
    }))
}

#[test]
fn trickling_peer_is_cut_at_the_deadline() {
    let _serial = serial();
    let attacker = trickler(Duration::from_secs(1));
    let (report, coins) = ask_attacker(9, &attacker, &short(1500));
    assert_eq!(report.outcome, PeerOutcome::TimedOut);
    assert!(!report.hedged);
    assert_eq!(coins, None);
    let records = attacker.finished(1);
    assert!(records[0].client_closed, "the client kept the connection");
    assert!(
        records[0].sent < RESPONSE_HEADER_BYTES + 7,
        "the whole answer got through"
    );
}

#[test]
fn trickling_peer_and_its_hedge_are_both_cut_at_the_deadline() {
    let _serial = serial();
    let attacker = trickler(Duration::from_millis(500));
    // The attacker serves one connection at a time, so the hedge waits in its accept
    // queue, and is read (and trickled to) only after the first one ends.
    let options = PeerOptions {
        deadline: Duration::from_millis(1500),
        hedge_after: Duration::from_millis(200),
        hedge_start: Duration::from_millis(200),
        ..PeerOptions::default()
    };
    let (report, coins) = ask_attacker(9, &attacker, &options);
    assert_eq!(report.outcome, PeerOutcome::TimedOut);
    assert!(report.hedged);
    assert_eq!(coins, None);
    // Both connections were closed by the client: the first one's end is seen while
    // trickling, the hedge's as soon as the attacker gets to it.
    let records = attacker.finished(2);
    assert!(records.iter().all(|r| r.client_closed), "{records:?}");
}

/// Sends `first`, then zeros forever, until the client is gone (or a cap far above what
/// a bounded client lets through). The send buffer is kept small so what the peer got
/// out stays close to what the client took in.
fn endless(stream: &mut TcpStream, first: &[u8], record: &mut Record) -> usize {
    let sock = socket2::SockRef::from(&*stream);
    sock.set_send_buffer_size(64 * 1024).unwrap();
    let slack = kernel_slack(stream);
    if push(stream, first, record) {
        let junk = [0u8; 64 * 1024];
        while record.sent < 512 << 20 && push(stream, &junk, record) {}
    }
    slack
}

#[test]
fn endless_body_after_an_honest_size_is_read_to_the_announced_size_only() {
    let _serial = serial();
    let coins: Vec<Coin> = (0..4096).map(|sn| Coin { den: -8, sn }).collect();
    let slack = Arc::new(Mutex::new(0usize));
    let attacker = {
        let coins = coins.clone();
        let slack = Arc::clone(&slack);
        Attacker::spawn(Box::new(move |stream, request, record| {
            let mut answer = header(4, 250, MAX_RESPONSE_BODY, &request[32..48]);
            answer.extend(listing(&coins));
            assert_eq!(answer.len(), READ_BOUND);
            *slack.lock().unwrap() = endless(stream, &answer, record);
        }))
    };
    let ((report, got), growth) = peak_memory_growth(|| ask_attacker(4, &attacker, &short(10_000)));
    assert_eq!(report.outcome, PeerOutcome::Voted { listed: 4096 });
    assert_eq!(got.as_deref(), Some(&coins[..]));
    assert!(growth <= MEMORY_BOUND, "peak memory grew {growth} bytes");
    let record = attacker.finished(1).remove(0);
    assert!(record.client_closed, "the client kept the connection");
    let slack = *slack.lock().unwrap();
    assert!(
        record.sent <= READ_BOUND + slack,
        "{} bytes got through, bound {READ_BOUND} + kernel buffers {slack}",
        record.sent
    );
    eprintln!(
        "endless body: peak memory +{growth} bytes; the peer got {} bytes out before the \
         client closed (the client reads at most {READ_BOUND}; kernel buffers up to {slack})",
        record.sent
    );
}

#[test]
fn endless_body_after_a_16_mb_size_is_refused_at_the_header() {
    let _serial = serial();
    let slack = Arc::new(Mutex::new(0usize));
    let attacker = {
        let slack = Arc::clone(&slack);
        Attacker::spawn(Box::new(move |stream, request, record| {
            // The legacy module allocated whatever a peer announced (defect 5).
            let first = header(4, 250, 0xff_ffff, &request[32..48]);
            *slack.lock().unwrap() = endless(stream, &first, record);
        }))
    };
    let ((report, got), growth) = peak_memory_growth(|| ask_attacker(4, &attacker, &short(10_000)));
    assert_eq!(
        report.outcome,
        PeerOutcome::Invalid(AnswerError::BadBodySize(0xff_ffff))
    );
    assert_eq!(got, None);
    assert!(growth <= MEMORY_BOUND, "peak memory grew {growth} bytes");
    let record = attacker.finished(1).remove(0);
    assert!(record.client_closed, "the client kept the connection");
    let slack = *slack.lock().unwrap();
    assert!(record.sent <= RESPONSE_HEADER_BYTES + slack);
    eprintln!(
        "16 MB claim: peak memory +{growth} bytes; the peer got {} bytes out before the \
         client closed",
        record.sent
    );
}

#[test]
fn reset_mid_header_is_no_vote() {
    let _serial = serial();
    let attacker = Attacker::spawn(Box::new(|stream, request, record| {
        let answer = header(4, 250, 2, &request[32..48]);
        push(stream, &answer[..10], record);
        // Give the ten bytes a moment to leave, then abort: SO_LINGER 0 makes close()
        // send RST instead of FIN.
        std::thread::sleep(Duration::from_millis(20));
        socket2::SockRef::from(&*stream)
            .set_linger(Some(Duration::ZERO))
            .unwrap();
    }));
    let (report, got) = ask_attacker(4, &attacker, &short(10_000));
    assert_eq!(got, None);
    match &report.outcome {
        PeerOutcome::Invalid(AnswerError::Io(ErrorKind::ConnectionReset)) => {}
        // The ten bytes were read and the reset was seen as the end of the stream.
        PeerOutcome::Invalid(AnswerError::Closed {
            part: Part::Header,
            received,
            expected: 32,
        }) if *received <= 10 => {}
        other => panic!("reset mid-header gave {other:?}"),
    }
}

#[test]
fn answer_for_another_raida_is_no_vote() {
    let _serial = serial();
    let attacker = Attacker::spawn(Box::new(|stream, request, record| {
        // Asked as RAIDA 4, answers a valid 250 as RAIDA 5.
        let mut answer = header(5, 250, 7, &request[32..48]);
        answer.extend(listing(&[Coin { den: 1, sn: 9 }]));
        push(stream, &answer, record);
    }));
    let (report, got) = ask_attacker(4, &attacker, &short(10_000));
    assert_eq!(
        report.outcome,
        PeerOutcome::Invalid(AnswerError::WrongRaida {
            expected: 4,
            got: 5
        })
    );
    assert_eq!(got, None);
    // It was asked the documented 55-byte request for RAIDA 4.
    let request = attacker.finished(1).remove(0).request;
    assert_eq!(&request[..9], &[1, 0, 4, 0, 2, 50, 0, COIN_ID, 1]);
    assert_eq!(request[32 + 16], ME);
    assert_eq!(
        request[32 + 12..32 + 16],
        challenge_crc(&request[32..32 + 12]).to_be_bytes()
    );
}

// ---------------------------------------------------------------------------------------
// The same attackers inside a real fix

/// An honest legacy peer: 250 listing `coins`, then closes.
fn honest(raida: u8, coins: Vec<Coin>) -> Attacker {
    Attacker::spawn(Box::new(move |stream, request, record| {
        push(
            stream,
            &reply(raida, 250, &request[32..48], &listing(&coins)),
            record,
        );
    }))
}

/// The attackers of the tests above, as RAIDA 16..20, next to `honest` honest peers
/// (RAIDA 4, 5, ...) and, when `repeater`, RAIDA 21 listing the coin 13 times.
struct Crowd {
    honest: Vec<(u8, Attacker)>,
    attackers: Vec<(u8, Attacker)>,
}

impl Crowd {
    fn new(coin: Coin, honest_count: u8, repeater: bool) -> Crowd {
        let honest_peers = (4..4 + honest_count)
            .map(|r| (r, honest(r, vec![coin])))
            .collect();
        let mut attackers = vec![
            // Answers for RAIDA 4, which may already have voted.
            (
                16,
                Attacker::spawn(Box::new(move |stream, request, record| {
                    push(
                        stream,
                        &reply(4, 250, &request[32..48], &listing(&[coin])),
                        record,
                    );
                })),
            ),
            (
                17,
                Attacker::spawn(Box::new(move |stream, request, record| {
                    let answer = reply(17, 250, &request[32..48], &listing(&[coin]));
                    trickle(stream, &answer, Duration::from_millis(400), record);
                })),
            ),
            (
                18,
                Attacker::spawn(Box::new(|stream, request, record| {
                    if push(
                        stream,
                        &header(18, 250, 0xff_ffff, &request[32..48]),
                        record,
                    ) {
                        let junk = [0u8; 64 * 1024];
                        while record.sent < 64 << 20 && push(stream, &junk, record) {}
                    }
                })),
            ),
            (
                19,
                Attacker::spawn(Box::new(|stream, _, _| {
                    socket2::SockRef::from(&*stream)
                        .set_linger(Some(Duration::ZERO))
                        .unwrap();
                })),
            ),
        ];
        if repeater {
            attackers.push((21, honest(21, vec![coin; 13])));
        }
        Crowd {
            honest: honest_peers,
            attackers,
        }
    }

    fn peers(&self) -> Vec<(u8, &Attacker)> {
        self.honest
            .iter()
            .chain(&self.attackers)
            .map(|(r, a)| (*r, a))
            .collect()
    }
}

/// Runs a fix of `coin` on RAIDA ME (stored AN 11.., MFS 1) asking `peers`.
fn fix(
    coin: Coin,
    peers: &[(u8, &Attacker)],
    options: &PeerOptions,
) -> (Status, FixReport, MemoryStore) {
    let mut server = Server::new(ME, MemoryStore::with_mfs(45), TicketPool::default());
    server.options = options.clone();
    server.store.put(coin, [0x11; 16], 1);
    let mut tickets = [0u32; 25];
    for &(raida, attacker) in peers {
        server.peer(raida, attacker.peer.addr);
        tickets[usize::from(raida)] = 0x7700 + u32::from(raida);
    }
    let body = legacy_body(&fix_payload(&[coin], &[0x42; 16], &tickets));
    let (response, report) = server
        .fix(Some(&body), 0, COIN_ID)
        .expect("a well-formed fix");
    (response.status, report, server.store)
}

/// Checks that no attacker voted. `decided_early`: the fix was settled while attackers
/// were still talking, so any of them may be reported as not needed instead.
fn assert_attackers_gave_no_vote(report: &FixReport, decided_early: bool) {
    let outcome = |raida: u8| report.outcome_of(raida).cloned().expect("asked");
    let unneeded_or = |raida: u8, ok: &dyn Fn(&PeerOutcome) -> bool| {
        let got = outcome(raida);
        assert!(
            ok(&got) || (decided_early && got == PeerOutcome::Unneeded),
            "RAIDA {raida}: {got:?}"
        );
    };
    unneeded_or(16, &|o| {
        *o == PeerOutcome::Invalid(AnswerError::WrongRaida {
            expected: 16,
            got: 4,
        })
    });
    // The trickler never completes: cut at the deadline, or not needed.
    let trickler = if decided_early {
        PeerOutcome::Unneeded
    } else {
        PeerOutcome::TimedOut
    };
    assert_eq!(outcome(17), trickler);
    unneeded_or(18, &|o| {
        *o == PeerOutcome::Invalid(AnswerError::BadBodySize(0xff_ffff))
    });
    unneeded_or(19, &|o| {
        matches!(
            o,
            PeerOutcome::Invalid(
                AnswerError::Io(ErrorKind::ConnectionReset) | AnswerError::Closed { .. }
            )
        )
    });
}

#[test]
fn fix_among_attackers_needs_thirteen_honest_peers() {
    let _serial = serial();
    let coin = Coin { den: 2, sn: 4242 };
    let options = short(2000);

    // 12 honest peers: 13 votes. No attacker adds the 14th. The trickler could still
    // have, so the fix waits for it until the deadline, and no longer.
    let crowd = Crowd::new(coin, 12, false);
    let (status, report, store) = fix(coin, &crowd.peers(), &options);
    assert_eq!(status, Status::AllFail);
    assert_eq!(store.get(coin), Some(([0x11; 16], 1)));
    assert_attackers_gave_no_vote(&report, false);
    assert_eq!(report.counts().voted, 12);

    // 11 honest peers and one that lists the coin 13 times: the legacy module counted
    // 1 + 11 + 13 = 25 votes here; one peer is one vote, so 13: not fixed.
    let crowd = Crowd::new(coin, 11, true);
    let (status, report, store) = fix(coin, &crowd.peers(), &options);
    assert_eq!(status, Status::AllFail);
    assert_eq!(store.get(coin), Some(([0x11; 16], 1)));
    assert_eq!(
        report.outcome_of(21),
        Some(&PeerOutcome::Voted { listed: 13 })
    );
    assert_eq!(report.counts().voted, 12);
    assert_attackers_gave_no_vote(&report, false);

    // 12 honest and the repeater: 14 votes, fixed, and the trickler is not waited for.
    let crowd = Crowd::new(coin, 12, true);
    let (status, report, store) = fix(coin, &crowd.peers(), &options);
    assert_eq!(status, Status::AllPass);
    assert_eq!(
        store.get(coin),
        Some((derive_an(ME, coin, &[0x42; 16], 0), 45))
    );
    assert_attackers_gave_no_vote(&report, true);
}
