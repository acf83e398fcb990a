//! Wallets cannot spend a RAIDA's standing at its peers, shown with the real pieces: 24
//! loopback peers, each a `commands::Node` with its own ticket pool and claim gate (the
//! real guess throttle, policy `any`), answering validate_ticket from the address their socket sees; RAIDA 0,
//! the fixing server, listed in their configs at an address this host does not have
//! (10.255.0.1, as behind NAT: its claims come from 127.0.0.1, so the peers throttle them
//! like anyone's), with the real peer client and fix gate. Wallets are told apart by the
//! client address a handler is given (127.x.y.z).
//!
//! Before the fix gate: 61 fixes naming made-up tickets and every peer cut RAIDA 0 off for
//! 300 s; its next honest heal answered 242. Now, for 61, 600 and 6,000 such fixes from one
//! address and from 1,000: no peer counts more than this server allows itself
//! (`SPEND_BURST`, below the peers' 60; a peer may count fewer, since a fix stops at its
//! 12th refusal) and none cuts it off; a wallet that healed here
//! before heals (241) during the flood; a new wallet heals at once after a one-address
//! flood and within one refill (`SPEND_REFILL`) after a 1,000-address flood. The clocks of
//! the gates do not move unless the test moves them, so the counts are exact.

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, SocketAddrV4};
use std::sync::Arc;
use std::time::Duration;

use kit::node::Server;
use kit::peers::FakePeer;
use kit::request::read_request;
use kit::wire::{fix_payload, frame_response, legacy_body};
use raida_healing::claims::{ClaimGate, ClaimPolicy, ClaimSource, Transport};
use raida_healing::commands::{Command, Request};
use raida_healing::fix_gate::{FixGate, CLIENT_BURST, OPEN_SPEND, SPEND_BURST, SPEND_REFILL};
use raida_healing::protocol::{Coin, Status};
use raida_healing::store::MemoryStore;
use raida_healing::tickets::testing::ManualClock;
use raida_healing::tickets::TicketPool;

const COIN_ID: u8 = 6;
const COIN: Coin = Coin { den: 1, sn: 4242 };
/// Where the peers' configs say RAIDA 0 is: not an address of this host.
const LISTED_AT: Ipv4Addr = Ipv4Addr::new(10, 255, 0, 1);

/// One peer: a node of its own behind a loopback listener.
struct Peer {
    server: Arc<Server<MemoryStore>>,
    _listener: FakePeer,
}

fn peer(raida: u8) -> (Peer, SocketAddrV4) {
    let mut server = Server::new(raida, MemoryStore::new(), TicketPool::default());
    server.claims = ClaimGate::with_clock(ClaimPolicy::Any, Box::new(ManualClock::default()));
    server.config.peers[0] = Some(SocketAddrV4::new(LISTED_AT, 1));
    let server = Arc::new(server);
    let serving = Arc::clone(&server);
    let listener = FakePeer::spawn(move |mut stream| {
        let from = stream.peer_addr().unwrap().ip();
        let Some(request) = read_request(&mut stream, Duration::from_secs(10)) else {
            return;
        };
        let body = &request[32..];
        let response = serving.node().run(
            Command::ValidateTicket,
            &Request {
                body: Some(body),
                encryption_type: 0,
                coin_id: COIN_ID,
                client: Some(ClaimSource::stream(from)),
            },
        );
        let _ = stream.write_all(&frame_response(raida, &body[..16], &response));
    });
    let addr = listener.addr;
    (
        Peer {
            server,
            _listener: listener,
        },
        addr,
    )
}

struct Network {
    peers: Vec<Peer>,
    fixer: Server<MemoryStore>,
    clock: ManualClock,
}

impl Network {
    fn new() -> Network {
        let store = MemoryStore::new();
        store.put(COIN, [3; 16], 1);
        let mut fixer = Server::new(0, store, TicketPool::default());
        let clock = ManualClock::default();
        fixer.fixes = FixGate::with_clock(Box::new(clock.clone()));
        let mut peers = Vec::new();
        for raida in 1..25u8 {
            let (p, addr) = peer(raida);
            fixer.peer(raida, addr);
            peers.push(p);
        }
        Network {
            peers,
            fixer,
            clock,
        }
    }

    fn fix(&self, client: Ipv4Addr, tickets: [u32; 25]) -> Status {
        let body = legacy_body(&fix_payload(&[COIN], &[9; 16], &tickets));
        let request = Request {
            body: Some(&body),
            encryption_type: 0,
            coin_id: COIN_ID,
            client: Some(ClaimSource::stream(IpAddr::V4(client))),
        };
        self.fixer.node().run(Command::Fix, &request).status
    }

    /// A wallet's heal: a fresh ticket for the coin at every peer, then the fix.
    fn heal(&self, client: Ipv4Addr) -> Status {
        let mut tickets = [0u32; 25];
        for (p, t) in self.peers.iter().zip(tickets.iter_mut().skip(1)) {
            *t = p.server.pool.create(&[COIN]).unwrap();
        }
        self.fix(client, tickets)
    }

    /// Claims each peer counted as unknown (all from this server, 127.0.0.1), and claims
    /// it refused as throttled.
    fn peer_counts(&self) -> Vec<(u64, u64)> {
        self.peers
            .iter()
            .map(|p| {
                let c = p.server.claims.counts().tcp;
                (c.no_such_ticket, c.throttled)
            })
            .collect()
    }
}

/// Made-up tickets: ids no peer issued.
fn bogus_tickets(n: u32) -> [u32; 25] {
    let mut tickets = [0u32; 25];
    for (i, t) in tickets.iter_mut().enumerate().skip(1) {
        *t = 0xbad0_0000 ^ (n << 5) ^ i as u32;
    }
    tickets
}

fn flood(fixes: u32, addresses: u32) {
    let net = Network::new();
    let returning = Ipv4Addr::new(127, 0, 0, 200);
    assert_eq!(
        net.heal(returning),
        Status::AllPass,
        "the returning wallet's first heal"
    );
    let mut statuses = std::collections::HashMap::new();
    for n in 0..fixes {
        let a = n % addresses;
        let client = Ipv4Addr::new(127, 1, (a / 250) as u8, (a % 250) as u8 + 1);
        *statuses
            .entry(net.fix(client, bogus_tickets(n)))
            .or_insert(0u32) += 1;
        // A wallet that healed here before heals during the flood.
        if n == fixes / 2 {
            assert_eq!(
                net.heal(returning),
                Status::AllPass,
                "mid-flood, {fixes}/{addresses}"
            );
        }
    }
    assert_eq!(
        net.heal(returning),
        Status::AllPass,
        "end of flood, {fixes}/{addresses}"
    );
    // The fixes that went out: one address's own allowance, or the peers' open part.
    let went_out = if addresses == 1 {
        CLIENT_BURST + 1
    } else {
        OPEN_SPEND
    };
    let went_out = went_out.min(fixes);
    assert_eq!(
        statuses.get(&Status::AllFail).copied().unwrap_or(0),
        went_out,
        "{fixes} from {addresses}: {statuses:?}"
    );
    assert_eq!(
        statuses.get(&Status::RequestRate).copied().unwrap_or(0),
        fixes - went_out,
        "{fixes} from {addresses}: {statuses:?}"
    );
    // No peer cut RAIDA 0 off, and none counted more than it allows a source. A fix is
    // decided (failed) by its 12th refusal and closes the rest of its connections then, so
    // a peer may not have read every claim: each peer counted at most one claim per fix
    // that went out, and the 12 refusals of each such fix were all counted.
    let counts = net.peer_counts();
    for (raida, &(unknown, throttled)) in (1..).zip(&counts) {
        assert_eq!(throttled, 0, "peer {raida} throttled RAIDA 0");
        assert!(unknown <= u64::from(went_out), "peer {raida}: {unknown}");
        assert!(unknown <= u64::from(SPEND_BURST));
    }
    let counted: u64 = counts.iter().map(|&(unknown, _)| unknown).sum();
    assert!(
        counted >= 12 * u64::from(went_out),
        "{counted} claims counted for {went_out} fixes"
    );
    // 127.0.0.1's claims succeeded before the flood: at every peer it has a standing
    // place, not an entry among the failing sources.
    for p in &net.peers {
        assert_eq!(p.server.claims.tracked(Transport::Stream), 0);
    }
    // A wallet that never healed here.
    let newcomer = Ipv4Addr::new(127, 0, 0, 201);
    if addresses == 1 || went_out < OPEN_SPEND {
        assert_eq!(net.heal(newcomer), Status::AllPass, "{fixes}/{addresses}");
    } else {
        assert_eq!(
            net.heal(newcomer),
            Status::RequestRate,
            "{fixes}/{addresses}"
        );
        net.clock.advance(SPEND_REFILL);
        assert_eq!(net.heal(newcomer), Status::AllPass, "{fixes}/{addresses}");
    }
}

#[test]
fn bogus_fixes_from_one_address_cannot_cut_this_raida_off() {
    for fixes in [61, 600, 6_000] {
        flood(fixes, 1);
    }
}

#[test]
fn bogus_fixes_from_a_thousand_addresses_cannot_cut_this_raida_off() {
    for fixes in [61, 600, 6_000] {
        flood(fixes, 1_000);
    }
}
