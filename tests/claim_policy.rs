//! validate_ticket with the client's address: each claim policy, a claim from a listed
//! and from an unlisted address, over TCP and by UDP; the guess throttle through the
//! command, forged UDP sources kept apart from TCP ones; a request with no address
//! behaves as before. Exact statuses and bytes.

use std::net::{IpAddr, SocketAddrV4};

use kit::node::Server;
use kit::wire::{claim, legacy_body};
use raida_healing::claims::{ClaimGate, ClaimPolicy, ClaimSource, GUESS_BURST, GUESS_COOLDOWN};
use raida_healing::commands::{Command, Request};
use raida_healing::protocol::{Coin, Status};
use raida_healing::store::MemoryStore;
use raida_healing::tickets::testing::{ManualClock, ScriptedIds};
use raida_healing::tickets::TicketPool;

const PEER: u8 = 12;
const LIVE: u32 = 0x0101_0101;
const COIN: [u8; 5] = [2, 0, 0, 1, 2];

fn server(policy: ClaimPolicy) -> (Server<MemoryStore>, ManualClock) {
    let clock = ManualClock::default();
    let pool = TicketPool::new(Box::new(clock.clone()), Box::new(ScriptedIds::new(&[LIVE])));
    pool.create(&[Coin { den: 2, sn: 258 }]).unwrap();
    let mut server = Server::new(3, MemoryStore::new(), pool);
    server.claims = ClaimGate::with_clock(policy, Box::new(clock.clone()));
    // the config lists RAIDA 12 with port 18012; a claim comes from another port
    server.peer(PEER, "127.0.0.12:18012".parse::<SocketAddrV4>().unwrap());
    (server, clock)
}

/// A client over TCP from `ip`.
fn tcp(ip: &str) -> Option<ClaimSource> {
    Some(ClaimSource::stream(ip.parse::<IpAddr>().unwrap()))
}

/// A client whose UDP datagram says it comes from `ip`.
fn udp(ip: &str) -> Option<ClaimSource> {
    Some(ClaimSource::datagram(ip.parse::<IpAddr>().unwrap()))
}

/// A claim for `claimer` of `ticket` from `client`: (status, body).
fn claim_from(
    server: &Server<MemoryStore>,
    claimer: u8,
    ticket: u32,
    client: Option<ClaimSource>,
) -> (Status, Vec<u8>) {
    let body = legacy_body(&claim(claimer, ticket));
    let request = Request {
        body: Some(&body),
        encryption_type: 0,
        coin_id: 6,
        client,
    };
    let response = server.node().run(Command::ValidateTicket, &request);
    (response.status, response.body.to_vec())
}

/// A claim that succeeds: 250 with the live ticket's coin.
fn assert_gets_coins(
    server: &Server<MemoryStore>,
    claimer: u8,
    ticket: u32,
    client: Option<ClaimSource>,
) {
    assert_eq!(
        claim_from(server, claimer, ticket, client),
        (Status::Success, COIN.to_vec()),
        "ticket {ticket:#x} from {client:?}"
    );
}

/// A refusal that tells nothing: the live ticket and an unknown one both answer 43, no body.
fn assert_refused_alike(server: &Server<MemoryStore>, claimer: u8, client: Option<ClaimSource>) {
    for ticket in [LIVE, LIVE + 1] {
        assert_eq!(
            claim_from(server, claimer, ticket, client),
            (Status::NoTicketFound, vec![]),
            "ticket {ticket:#x} from {client:?}"
        );
    }
}

#[test]
fn listed_accepts_only_the_configured_ip() {
    let (server, _) = server(ClaimPolicy::Listed);
    let refused = (Status::NoTicketFound, vec![]);
    // an unlisted address: 43 for a live ticket, exactly as for an unknown one
    assert_refused_alike(&server, PEER, tcp("127.0.0.13"));
    // an index with no configured address
    assert_eq!(claim_from(&server, 20, LIVE, tcp("127.0.0.12")), refused);
    // the configured IP (any port), also IPv4-mapped
    assert_gets_coins(&server, PEER, LIVE, tcp("::ffff:127.0.0.12"));
    assert_eq!(
        claim_from(&server, PEER, LIVE, tcp("127.0.0.12")),
        (Status::TicketClaimedAlready, vec![])
    );
    // no address: as before the policy
    assert_gets_coins(&server, 20, LIVE, None);
    assert_eq!(
        claim_from(&server, 25, LIVE, tcp("127.0.0.13")),
        (Status::WrongRaida, vec![])
    );
}

#[test]
fn any_accepts_every_address() {
    let (server, _) = server(ClaimPolicy::Any);
    assert_gets_coins(&server, PEER, LIVE, tcp("127.0.0.13"));
    assert_gets_coins(&server, 7, LIVE, tcp("2001:db8::7"));
}

#[test]
fn a_guessing_source_is_cut_off_until_the_cooldown_ends() {
    let (server, clock) = server(ClaimPolicy::Any);
    let guesser = tcp("192.0.2.9");
    for guess in 1..=GUESS_BURST + 1 {
        assert_eq!(
            claim_from(&server, PEER, LIVE + guess, guesser),
            (Status::NoTicketFound, vec![])
        );
    }
    // cut off: the live ticket answers 43 to it
    assert_eq!(
        claim_from(&server, PEER, LIVE, guesser),
        (Status::NoTicketFound, vec![])
    );
    // another address is not affected
    assert_gets_coins(&server, PEER, LIVE, tcp("192.0.2.10"));
    // after the cooldown (the first ticket has expired by then too) it claims again
    clock.advance(GUESS_COOLDOWN);
    let fresh = server.pool.create(&[Coin { den: 2, sn: 258 }]).unwrap();
    assert_gets_coins(&server, 1, fresh, guesser);
}

/// A RAIDA claims the ticket ids a wallet put in its fix. A hostile wallet sending fix
/// after fix with made-up tickets makes an honest RAIDA fail claims at every peer; were
/// that RAIDA cut off, its genuine claims would fail too, and its heals with them. So a
/// claim over TCP from the configured address of the RAIDA it names is never throttled
/// (under either policy); the same address claiming for another RAIDA index is.
#[test]
fn a_raida_relaying_a_wallets_made_up_tickets_is_never_cut_off() {
    for policy in [ClaimPolicy::Any, ClaimPolicy::Listed] {
        let (server, _) = server(policy);
        let raida = tcp("127.0.0.12");
        for guess in 1..=4 * GUESS_BURST {
            assert_eq!(
                claim_from(&server, PEER, LIVE + guess, raida),
                (Status::NoTicketFound, vec![]),
                "{policy:?}"
            );
        }
        assert_eq!(
            claim_from(&server, PEER, LIVE, raida),
            (Status::Success, COIN.to_vec()),
            "{policy:?}"
        );
    }
    // claiming as another RAIDA (7) from that address: counted, and cut off, while its
    // claims as itself still go through
    let (other_index, _) = server(ClaimPolicy::Any);
    let raida = tcp("127.0.0.12");
    for guess in 1..=GUESS_BURST + 1 {
        claim_from(&other_index, 7, LIVE + guess, raida);
    }
    assert_eq!(
        claim_from(&other_index, 7, LIVE, raida),
        (Status::NoTicketFound, vec![])
    );
    assert_gets_coins(&other_index, PEER, LIVE, raida);
    // the same failures by UDP "from" that address are still counted and cut off
    let (forged, _) = server(ClaimPolicy::Any);
    for guess in 1..=GUESS_BURST + 1 {
        claim_from(&forged, PEER, LIVE + guess, udp("127.0.0.12"));
    }
    assert_eq!(
        claim_from(&forged, PEER, LIVE, udp("127.0.0.12")),
        (Status::NoTicketFound, vec![])
    );
}

#[test]
fn an_ipv6_64_is_one_source() {
    let (server, _) = server(ClaimPolicy::Any);
    for guess in 1..=GUESS_BURST + 1 {
        let host = format!("2001:db8:0:1::{guess:x}");
        claim_from(&server, PEER, LIVE + guess, tcp(&host));
    }
    assert_eq!(
        claim_from(&server, PEER, LIVE, tcp("2001:db8:0:1::ffff")),
        (Status::NoTicketFound, vec![])
    );
    assert_gets_coins(&server, PEER, LIVE, tcp("2001:db8:0:2::1"));
}

#[test]
fn forged_udp_failures_leave_the_peers_tcp_claims_alone() {
    let (server, _) = server(ClaimPolicy::Any);
    let peer = "127.0.0.12";
    // an outsider writes RAIDA 12's address on 61 failing claims
    for guess in 1..=GUESS_BURST + 1 {
        assert_eq!(
            claim_from(&server, PEER, LIVE + guess, udp(peer)),
            (Status::NoTicketFound, vec![])
        );
    }
    // UDP claims "from" it are cut off, live ticket or not
    assert_eq!(
        claim_from(&server, PEER, LIVE, udp(peer)),
        (Status::NoTicketFound, vec![])
    );
    // RAIDA 12's own claim over TCP still gets the coins, once
    assert_gets_coins(&server, PEER, LIVE, tcp(peer));
    assert_eq!(
        claim_from(&server, PEER, LIVE, tcp(peer)),
        (Status::TicketClaimedAlready, vec![])
    );
    // and UDP claims from other addresses are not affected
    assert_gets_coins(&server, 7, LIVE, udp("127.0.0.7"));
}

#[test]
fn listed_refuses_udp_claims_even_from_the_listed_ip() {
    let (server, _) = server(ClaimPolicy::Listed);
    let refused = (Status::NoTicketFound, vec![]);
    // the listed RAIDA's own IP by UDP: 43 for a live ticket, as for an unknown one
    assert_refused_alike(&server, PEER, udp("127.0.0.12"));
    assert_eq!(
        claim_from(&server, PEER, LIVE, udp("::ffff:127.0.0.12")),
        refused
    );
    // nothing was claimed and nothing counted: the same over TCP is accepted
    assert_gets_coins(&server, PEER, LIVE, tcp("127.0.0.12"));
    // many refused UDP claims never cut off the TCP claims from that address
    for guess in 2..=GUESS_BURST + 2 {
        assert_eq!(
            claim_from(&server, PEER, LIVE + guess, udp("127.0.0.12")),
            refused
        );
    }
    assert_eq!(
        claim_from(&server, PEER, LIVE, tcp("127.0.0.12")),
        (Status::TicketClaimedAlready, vec![])
    );
    // the index is still checked first
    assert_eq!(
        claim_from(&server, 25, LIVE, udp("127.0.0.12")),
        (Status::WrongRaida, vec![])
    );
}
