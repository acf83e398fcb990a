//! Fuzz runners for what a peer RAIDA sends back: the validate_ticket response header and
//! body (`peers::check_response_header`, `peers::parse_response_body`), and the vote
//! tally those answers feed (`consensus::Tally`). Both are checked against oracles
//! written from docs/wire-protocol.md.

use std::collections::{HashMap, HashSet};

use raida_healing::consensus::{Tally, THRESHOLD};
use raida_healing::peers::{
    check_response_header, parse_response_body, AnswerError, CHALLENGE_BYTES, MAX_RESPONSE_BODY,
    RESPONSE_HEADER_BYTES,
};
use raida_healing::protocol::Coin;

/// What the header check must answer, in the documented order: byte 0 is the RAIDA asked,
/// status 250, challenge echoed at 16..32, body size `2 + 5k` with `k <= 4096`.
///
/// This reads like `peers::check_response_header` in src/peers/wire.rs on purpose: it is the
/// oracle, re-derived from docs/wire-protocol.md alone, not shared with the code it checks
/// (a shared helper would agree with any bug it has). The duplicate-code report lists the
/// pair; it stays.
fn expected_header(
    header: &[u8; RESPONSE_HEADER_BYTES],
    peer: u8,
    challenge: &[u8; CHALLENGE_BYTES],
) -> Result<usize, AnswerError> {
    if header[0] != peer {
        return Err(AnswerError::WrongRaida {
            expected: peer,
            got: header[0],
        });
    }
    if header[2] != 250 {
        return Err(AnswerError::Status(header[2]));
    }
    if header[16..32] != challenge[..] {
        return Err(AnswerError::ChallengeNotEchoed);
    }
    let size =
        (usize::from(header[9]) << 16) | (usize::from(header[10]) << 8) | usize::from(header[11]);
    if size < 2 || !(size - 2).is_multiple_of(5) || (size - 2) / 5 > 4096 {
        return Err(AnswerError::BadBodySize(size));
    }
    Ok(size)
}

/// What the body parser must answer.
fn expected_body(body: &[u8]) -> Result<Vec<Coin>, AnswerError> {
    if body.len() < 2 || !(body.len() - 2).is_multiple_of(5) || (body.len() - 2) / 5 > 4096 {
        return Err(AnswerError::BadBodySize(body.len()));
    }
    let n = body.len();
    if body[n - 2..] != [0x3e, 0x3e] {
        return Err(AnswerError::BadTrailer([body[n - 2], body[n - 1]]));
    }
    Ok(body[..n - 2]
        .chunks_exact(5)
        .map(|r| Coin {
            den: r[0] as i8,
            sn: u32::from_be_bytes([r[1], r[2], r[3], r[4]]),
        })
        .collect())
}

/// peer_response. Input: byte 0 = flags (bits 0-4: the RAIDA asked, `% 25`; bit 7: the
/// challenge sent is taken from the header's own echo bytes, so the echo check passes),
/// bytes 1..17 = the challenge sent, 17..49 = the 32-byte response header, the rest = the
/// response body as received.
pub fn peer_response(data: &[u8]) {
    if data.len() < 1 + CHALLENGE_BYTES + RESPONSE_HEADER_BYTES {
        return;
    }
    let flags = data[0];
    let peer = (flags & 0x1f) % 25;
    let header: [u8; RESPONSE_HEADER_BYTES] = data[17..49].try_into().expect("32 bytes");
    let challenge: [u8; CHALLENGE_BYTES] = if flags & 0x80 != 0 {
        header[16..32].try_into().expect("16 bytes")
    } else {
        data[1..17].try_into().expect("16 bytes")
    };
    let body = &data[49..];

    let got = check_response_header(&header, peer, &challenge);
    assert_eq!(got, expected_header(&header, peer, &challenge), "header");
    if let Ok(size) = got {
        // What the client will allocate and read next: bounded whatever the peer says.
        assert!(
            size <= MAX_RESPONSE_BODY,
            "announced body {size} above the bound"
        );
    }
    let parsed = parse_response_body(body);
    assert_eq!(parsed, expected_body(body), "body");
    if let Ok(coins) = &parsed {
        assert!(coins.len() <= 4096);
        // The tally counts this answer as one vote per distinct requested coin.
        let requested: Vec<Coin> = coins.iter().copied().step_by(2).collect();
        let mut tally = Tally::new(&requested);
        assert!(tally.add_answer(peer, coins));
        for &c in &requested {
            assert_eq!(tally.votes(c), 2, "one vote for {c:?} however often listed");
        }
        assert!(!tally.add_answer(peer, coins), "a peer counts once");
    }
}

/// consensus. Input: byte 0 = number of requested coins (`% 32`), then one byte per
/// requested coin (an index into a pool of 16 coins, so repeats happen), then answers,
/// each: a byte with the peer index (`% 26`, 25 is out of range) and a count (`% 64`)
/// of coin-index bytes. After every answer the tally must give each requested coin 1 +
/// the number of DISTINCT valid peers that listed it, and `is_decided(pending)` must be
/// "every coin has 14 votes or cannot reach 14 with `pending` more".
pub fn consensus(data: &[u8]) {
    let pool: Vec<Coin> = (0..16)
        .map(|i| Coin {
            den: (i % 15) as i8 - 8,
            sn: i * 1024 + 7,
        })
        .collect();
    let Some((&n, mut rest)) = data.split_first() else {
        return;
    };
    let n = usize::from(n % 32);
    if rest.len() < n {
        return;
    }
    let requested: Vec<Coin> = rest[..n]
        .iter()
        .map(|&b| pool[usize::from(b) % 16])
        .collect();
    rest = &rest[n..];
    let mut tally = Tally::new(&requested);
    let distinct: HashSet<Coin> = requested.iter().copied().collect();
    assert_eq!(tally.distinct_coins(), distinct.len());
    let mut voters: HashMap<Coin, HashSet<u8>> = HashMap::new();
    let mut answered: HashSet<u8> = HashSet::new();
    while let [head, tail @ ..] = rest {
        let peer = head % 26;
        let (count, tail) = match tail.split_first() {
            Some((&c, t)) => (usize::from(c % 64).min(t.len()), t),
            None => (0, tail),
        };
        let listed: Vec<Coin> = tail[..count]
            .iter()
            .map(|&b| pool[usize::from(b) % 16])
            .collect();
        rest = &tail[count..];
        let fresh = peer < 25 && answered.insert(peer);
        assert_eq!(
            tally.add_answer(peer, &listed),
            fresh,
            "peer {peer} counted once"
        );
        if fresh {
            for c in &listed {
                voters.entry(*c).or_default().insert(peer);
            }
        }
        let mut lowest_open = None::<usize>;
        for c in &distinct {
            let votes = 1 + voters.get(c).map_or(0, HashSet::len);
            assert_eq!(tally.votes(*c), votes, "{c:?}");
            assert_eq!(tally.is_confirmed(*c), votes >= THRESHOLD);
            if votes < THRESHOLD {
                lowest_open = Some(lowest_open.map_or(votes, |v: usize| v.max(votes)));
            }
        }
        for pending in 0..=25 {
            let decided = lowest_open.is_none_or(|best| best + pending < THRESHOLD);
            assert_eq!(tally.is_decided(pending), decided, "pending {pending}");
        }
    }
    for c in &pool {
        if !distinct.contains(c) {
            assert_eq!(tally.votes(*c), 0, "unrequested {c:?} has votes");
        }
    }
}

// ---------------------------------------------------------------------------------------
// peer_wire: the real socket path

use std::io::Write;
use std::net::{SocketAddrV4, TcpListener};
use std::sync::mpsc;
use std::sync::OnceLock;
use std::time::Duration;

use kit::request::{check_request, read_request, PeerRequest};
use raida_healing::peers::ejection::EjectOptions;
use raida_healing::peers::{ask_one, Claimer, Part, PeerClient, PeerOptions, PeerOutcome, Target};

/// One scripted answer for the loopback peer: the bytes to send (after the optional
/// patches), then close.
struct Script {
    answer: Vec<u8>,
    /// Copy the request's challenge into bytes 16..32 of the answer.
    echo: bool,
    /// What the peer saw: the request, sent back to the fuzz thread.
    seen: mpsc::Sender<PeerRequest>,
}

/// A loopback peer that answers one connection per script, in order.
fn wire_peer() -> &'static (SocketAddrV4, mpsc::SyncSender<Script>) {
    static PEER: OnceLock<(SocketAddrV4, mpsc::SyncSender<Script>)> = OnceLock::new();
    PEER.get_or_init(|| {
        let listener = TcpListener::bind("127.0.0.1:0").expect("loopback listener");
        let addr = match listener.local_addr().expect("bound") {
            std::net::SocketAddr::V4(a) => a,
            other => panic!("not IPv4: {other}"),
        };
        let (tx, rx) = mpsc::sync_channel::<Script>(0);
        std::thread::spawn(move || {
            for script in rx {
                let (mut stream, _) = listener.accept().expect("accept");
                let request = read_request(&mut stream, Duration::from_secs(10))
                    .expect("the 55-byte request");
                let mut answer = script.answer;
                if script.echo && answer.len() >= 32 {
                    answer[16..32].copy_from_slice(&request[32..48]);
                }
                let _ = script.seen.send(request);
                // The client may stop reading (and close) before the end: fine.
                let _ = stream.write_all(&answer);
            }
        });
        (addr, tx)
    })
}

/// What `ask_one` must report for `answer` (then a close) from the peer asked as `raida`.
fn expected_outcome(
    answer: &[u8],
    raida: u8,
    challenge: &[u8; CHALLENGE_BYTES],
) -> (PeerOutcome, Option<Vec<Coin>>) {
    let invalid = |e| (PeerOutcome::Invalid(e), None);
    if answer.len() < RESPONSE_HEADER_BYTES {
        return invalid(AnswerError::Closed {
            part: Part::Header,
            received: answer.len(),
            expected: RESPONSE_HEADER_BYTES,
        });
    }
    let header: [u8; RESPONSE_HEADER_BYTES] = answer[..32].try_into().expect("32 bytes");
    let size = match expected_header(&header, raida, challenge) {
        Ok(size) => size,
        Err(AnswerError::Status(s)) => return (PeerOutcome::Declined(s), None),
        Err(e) => return invalid(e),
    };
    let rest = &answer[32..];
    if rest.len() < size {
        return invalid(AnswerError::Closed {
            part: Part::Body,
            received: rest.len(),
            expected: size,
        });
    }
    match expected_body(&rest[..size]) {
        Ok(coins) => (
            PeerOutcome::Voted {
                listed: coins.len(),
            },
            Some(coins),
        ),
        Err(e) => invalid(e),
    }
}

/// peer_wire: the client reads a real loopback answer. Input: byte 0 = flags (bits 0-4:
/// the RAIDA asked, `% 25`, also written into byte 0 of the answer when bit 5 is set;
/// bit 6: the request's challenge is echoed into bytes 16..32; bit 7: byte 2 is set to
/// 250 and bytes 9..11 to the length of what follows the header), the rest = the answer.
/// The peer sends it and closes; the outcome must be exactly what the strict reading
/// rules give for those bytes, and the request must be the documented 55 bytes.
pub fn peer_wire(data: &[u8]) {
    let Some((&flags, answer)) = data.split_first() else {
        return;
    };
    let raida = (flags & 0x1f) % 25;
    let mut answer = answer.to_vec();
    if flags & 0x20 != 0 && !answer.is_empty() {
        answer[0] = raida;
    }
    if flags & 0x80 != 0 && answer.len() >= 32 {
        answer[2] = 250;
        let size = (answer.len() - 32) as u32;
        answer[9..12].copy_from_slice(&size.to_be_bytes()[1..]);
    }
    let (addr, scripts) = wire_peer();
    let (seen_tx, seen_rx) = mpsc::channel();
    scripts
        .send(Script {
            answer: answer.clone(),
            echo: flags & 0x40 != 0,
            seen: seen_tx,
        })
        .expect("peer thread alive");
    let claimer = Claimer {
        raida_no: 7,
        coin_id: 6,
        source: None,
    };
    let target = Target {
        raida,
        addr: *addr,
        ticket: 0x0102_0304,
    };
    // No hedge (one connection per script) and a deadline that is only a safety net:
    // the peer always closes, so no outcome waits for it.
    let options = PeerOptions {
        deadline: Duration::from_secs(20),
        hedge_after: Duration::from_secs(20),
        hedge_start: Duration::from_secs(20),
        // Every run scripts a new answer from the same kind of peer (and has a client of
        // its own): never ejected, so each run's peer is asked.
        eject: EjectOptions {
            after: 0,
            ..EjectOptions::default()
        },
        ..PeerOptions::default()
    };
    let (report, coins) = ask_one(&PeerClient::default(), target, claimer, &options);
    let request = seen_rx
        .recv_timeout(Duration::from_secs(20))
        .expect("the peer saw a request");
    if let Err(why) = check_request(&request, raida, 7, 6, Some(0x0102_0304)) {
        panic!("request: {why}");
    }
    let challenge: [u8; CHALLENGE_BYTES] = request[32..48].try_into().expect("16 bytes");
    if flags & 0x40 != 0 && answer.len() >= 32 {
        answer[16..32].copy_from_slice(&challenge);
    }
    let (outcome, listed) = expected_outcome(&answer, raida, &challenge);
    assert_eq!(report.outcome, outcome, "outcome");
    assert_eq!(coins, listed, "coins");
    assert!(!report.hedged);
}
