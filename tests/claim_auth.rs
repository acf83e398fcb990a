//! validate_ticket with claim tags (docs/tickets.md, "Authenticated claims"): a verified
//! claim is admitted whatever its address or transport and never throttled; a bad tag is
//! an unauthenticated claim; `authenticated` refuses every unauthenticated claim, TCP or
//! UDP, from any source, before the pool or the throttle sees it; the gate counts verified,
//! unverified and bad-tag claims. Exact statuses, bodies and counts.

use std::net::{IpAddr, SocketAddrV4};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use kit::node::Server;
use kit::wire::{claim, legacy_body, modern_body};
use raida_healing::claim_auth::{ClaimAuth, ClaimFields, ClaimKeys, ManualWallClock};
use raida_healing::claims::{
    tag_counts_line, ClaimCounts, ClaimGate, ClaimPolicy, ClaimSource, Transport, GUESS_BURST,
};
use raida_healing::commands::{Command, Request};
use raida_healing::protocol::{challenge_crc, Coin, Status};
use raida_healing::store::MemoryStore;
use raida_healing::tickets::testing::{ManualClock, ScriptedIds};
use raida_healing::tickets::TicketPool;

const ME: u8 = 3;
const PEER: u8 = 12;
const COIN_ID: u8 = 6;
const LIVE: u32 = 0x0101_0101;
const COIN: [u8; 5] = [2, 0, 0, 1, 2];
const KEY: [u8; 32] = [0x42; 32];
const OLD_KEY: [u8; 32] = [0x11; 32];
const OTHER_KEY: [u8; 32] = [0x77; 32];
const NOW: u64 = 1_800_000_030;

/// RAIDA 3 with one live ticket, RAIDA 12 listed at 127.0.0.12, the gate under `policy`
/// holding KEY (and OLD_KEY as previous) on a clock at NOW.
fn server(policy: ClaimPolicy) -> Server<MemoryStore> {
    let clock = ManualClock::default();
    let pool = TicketPool::new(Box::new(clock.clone()), Box::new(ScriptedIds::new(&[LIVE])));
    pool.create(&[Coin { den: 2, sn: 258 }]).unwrap();
    let mut server = Server::new(ME, MemoryStore::new(), pool);
    let wall = Arc::new(ManualWallClock::default());
    wall.0.store(NOW, Ordering::SeqCst);
    let auth = ClaimAuth::with_clock(ClaimKeys::new(&KEY, Some(&OLD_KEY)), Box::new(wall));
    server.claims = ClaimGate::with_clock(policy, Box::new(clock)).with_auth(Some(Arc::new(auth)));
    server.peer(PEER, "127.0.0.12:18012".parse::<SocketAddrV4>().unwrap());
    server
}

fn tcp(ip: &str) -> Option<ClaimSource> {
    Some(ClaimSource::stream(ip.parse::<IpAddr>().unwrap()))
}

fn udp(ip: &str) -> Option<ClaimSource> {
    Some(ClaimSource::datagram(ip.parse::<IpAddr>().unwrap()))
}

/// The 12 challenge bytes `key` tags a claim with: `claimer` claims `ticket` at `peer` at
/// `unix_seconds`.
fn tag(key: &[u8; 32], claimer: u8, peer: u8, ticket: u32, unix_seconds: u64) -> [u8; 12] {
    let fields = ClaimFields {
        claimer,
        peer,
        coin_id: COIN_ID,
        ticket,
    };
    ClaimKeys::new(key, None).challenge(fields, unix_seconds)
}

/// A claim body whose challenge is `twelve` (`None`: the kit's fixed challenge) and its CRC.
fn body(claimer: u8, ticket: u32, twelve: Option<[u8; 12]>) -> Vec<u8> {
    let mut body = legacy_body(&claim(claimer, ticket));
    if let Some(twelve) = twelve {
        body[..12].copy_from_slice(&twelve);
        body[12..16].copy_from_slice(&challenge_crc(&twelve).to_be_bytes());
    }
    body
}

fn claim_from(
    server: &Server<MemoryStore>,
    body: &[u8],
    encryption_type: i32,
    client: Option<ClaimSource>,
) -> (Status, Vec<u8>) {
    let request = Request {
        body: Some(body),
        encryption_type,
        coin_id: COIN_ID,
        client,
    };
    let response = server.node().run(Command::ValidateTicket, &request);
    (response.status, response.body.to_vec())
}

fn claims(
    server: &Server<MemoryStore>,
    claimer: u8,
    ticket: u32,
    twelve: Option<[u8; 12]>,
    client: Option<ClaimSource>,
) -> (Status, Vec<u8>) {
    claim_from(server, &body(claimer, ticket, twelve), 0, client)
}

fn coins() -> (Status, Vec<u8>) {
    (Status::Success, COIN.to_vec())
}

fn refused() -> (Status, Vec<u8>) {
    (Status::NoTicketFound, vec![])
}

/// Under `authenticated`, no claim without a valid tag reaches the pool or the throttle:
/// TCP or UDP, any source (the listed one included), none, and whatever is wrong with its
/// tag. The valid claim then gets the coins, and its replay 44.
#[test]
fn authenticated_serves_only_verified_claims() {
    let server = server(ClaimPolicy::Authenticated);
    let untagged = None;
    let bad_tags = [
        untagged,
        Some(tag(&KEY, 5, ME + 1, LIVE, NOW)),
        Some(tag(&KEY, 6, ME, LIVE ^ 1, NOW)),
        Some(tag(&KEY, 7, ME, LIVE, NOW - 180)),
        Some(tag(&OTHER_KEY, 8, ME, LIVE, NOW)),
    ];
    let sources = [
        tcp("127.0.0.12"),
        tcp("192.0.2.7"),
        tcp("::1"),
        udp("127.0.0.12"),
        udp("198.51.100.9"),
        None,
    ];
    for (claimer, twelve) in [5u8, 5, 6, 7, 8].into_iter().zip(bad_tags) {
        for source in sources {
            assert_eq!(
                claims(&server, claimer, LIVE, twelve, source),
                refused(),
                "claimer {claimer} from {source:?}"
            );
        }
    }
    // Guesses from 1,000 TCP and 1,000 UDP sources: none reaches the pool or the throttle.
    for i in 0..1000u32 {
        let (a, b) = ((i >> 8) as u8, i as u8);
        let ticket = LIVE.wrapping_add(i + 1);
        assert_eq!(
            claims(&server, 9, ticket, None, tcp(&format!("10.0.{a}.{b}"))),
            refused()
        );
        assert_eq!(
            claims(&server, 9, ticket, None, udp(&format!("10.1.{a}.{b}"))),
            refused()
        );
    }
    for claimer in [5, 6, 7, 8] {
        let from = udp("203.0.113.1");
        let valid = Some(tag(&KEY, claimer, ME, LIVE, NOW));
        assert_eq!(claims(&server, claimer, LIVE, valid, from), coins());
        assert_eq!(
            claims(&server, claimer, LIVE, valid, from),
            (Status::TicketClaimedAlready, vec![])
        );
    }
    let counts = server.claims.counts();
    assert_eq!(
        counts.tcp,
        ClaimCounts {
            refused_by_policy: 5 * 3 + 1000,
            unverified: 3 + 1000 + 3,
            bad_tag: 3 * 3,
            ..ClaimCounts::default()
        }
    );
    assert_eq!(
        counts.udp,
        ClaimCounts {
            granted: 4,
            already_claimed: 4,
            refused_by_policy: 5 * 2 + 1000,
            verified: 8,
            unverified: 2 + 1000 + 2,
            bad_tag: 3 * 2,
            ..ClaimCounts::default()
        }
    );
    assert_eq!(counts.no_address.refused_by_policy, 5);
    assert_eq!(
        (counts.no_address.unverified, counts.no_address.bad_tag),
        (2, 3)
    );
    assert_eq!(server.claims.tracked(Transport::Stream), 0);
    assert_eq!(server.claims.tracked(Transport::Datagram), 0);
    assert_eq!(
        tag_counts_line(&counts),
        "claim tags since start (verified/unverified/bad tag): TCP 0/1006/9, UDP 8/1004/6, \
         no address 0/2/3"
    );
}

/// A modern-framed claim (types 4, 5) has no challenge: it is unverified.
#[test]
fn a_claim_without_a_challenge_is_unverified() {
    let server = server(ClaimPolicy::Authenticated);
    let body = modern_body(&claim(5, LIVE), 0xaa);
    assert_eq!(claim_from(&server, &body, 4, tcp("127.0.0.12")), refused());
    assert_eq!(server.claims.counts().tcp.unverified, 1);
    let server = self::server(ClaimPolicy::Any);
    assert_eq!(claim_from(&server, &body, 4, tcp("127.0.0.12")), coins());
}

/// Under `listed`, a valid tag admits a claim from any address by any transport; a bad one
/// falls back to the address rules: admitted from the listed address over TCP, refused
/// from another or by UDP.
#[test]
fn a_bad_tag_falls_back_to_the_address_rules() {
    let server = server(ClaimPolicy::Listed);
    let valid = |claimer| Some(tag(&KEY, claimer, ME, LIVE, NOW));
    assert_eq!(
        claims(&server, PEER, LIVE, valid(PEER), udp("192.0.2.7")),
        coins()
    );
    assert_eq!(
        claims(&server, 4, LIVE, valid(4), tcp("192.0.2.7")),
        coins()
    );
    let bad = [
        tag(&KEY, PEER, ME + 1, LIVE, NOW),
        tag(&KEY, PEER, ME, LIVE, NOW + 300),
        tag(&OTHER_KEY, PEER, ME, LIVE, NOW),
    ];
    for twelve in bad {
        let server = self::server(ClaimPolicy::Listed);
        for source in [tcp("192.0.2.7"), udp("127.0.0.12")] {
            assert_eq!(claims(&server, PEER, LIVE, Some(twelve), source), refused());
        }
        assert_eq!(
            claims(&server, PEER, LIVE, Some(twelve), tcp("127.0.0.12")),
            coins()
        );
        let counts = server.claims.counts();
        assert_eq!(
            counts.tcp.bad_tag + counts.tcp.unverified + counts.udp.bad_tag + counts.udp.unverified,
            3
        );
    }
}

/// Verified claims are never throttled: a RAIDA whose wallets feed it made-up tickets
/// fails claims at will and still gets its coins; the same address without a tag is cut
/// off after its allowance.
#[test]
fn verified_claims_are_never_throttled() {
    let server = server(ClaimPolicy::Any);
    let from = tcp("192.0.2.7");
    for i in 0..10 * GUESS_BURST {
        let ticket = 0x5000_0000 + i;
        assert_eq!(
            claims(
                &server,
                4,
                ticket,
                Some(tag(&KEY, 4, ME, ticket, NOW)),
                from
            ),
            refused()
        );
    }
    assert_eq!(server.claims.tracked(Transport::Stream), 0);
    assert_eq!(
        claims(&server, 4, LIVE, Some(tag(&KEY, 4, ME, LIVE, NOW)), from),
        coins()
    );
    for i in 0..=GUESS_BURST {
        assert_eq!(claims(&server, 5, 0x6000_0000 + i, None, from), refused());
    }
    // Cut off: the live ticket is refused untagged, and still served tagged.
    assert_eq!(claims(&server, 5, LIVE, None, from), refused());
    assert_eq!(
        claims(&server, 5, LIVE, Some(tag(&KEY, 5, ME, LIVE, NOW)), from),
        coins()
    );
    assert_eq!(server.claims.counts().tcp.throttled, 1);
}

/// While a key is rolled out, a claim tagged with the previous key is verified.
#[test]
fn the_previous_key_is_accepted() {
    let server = server(ClaimPolicy::Authenticated);
    let from = tcp("192.0.2.7");
    assert_eq!(
        claims(
            &server,
            4,
            LIVE,
            Some(tag(&OLD_KEY, 4, ME, LIVE, NOW)),
            from
        ),
        coins()
    );
    assert_eq!(
        claims(&server, 5, LIVE, Some(tag(&KEY, 5, ME, LIVE, NOW)), from),
        coins()
    );
    assert_eq!(server.claims.counts().tcp.verified, 2);
}

/// Without a claim key nothing is counted, and `authenticated` refuses every claim.
#[test]
fn without_a_key_authenticated_refuses_everything() {
    let mut server = server(ClaimPolicy::Authenticated);
    server.claims = ClaimGate::new(ClaimPolicy::Authenticated);
    let valid = Some(tag(&KEY, 4, ME, LIVE, NOW));
    assert_eq!(
        claims(&server, 4, LIVE, valid, tcp("127.0.0.12")),
        refused()
    );
    let counts = server.claims.counts().tcp;
    assert_eq!(
        (counts.refused_by_policy, counts.verified, counts.unverified),
        (1, 0, 0)
    );
}
