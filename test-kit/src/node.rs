//! One RAIDA server in the safe core: a store, a ticket pool, a claim gate, a config, peer
//! options and a peer client (budget and peer history) owned together, with the four commands (and fix with its per-peer report) run over
//! them. Plain `std` and `raida_healing` only, so the fuzz crate can include this file on
//! its own.

use std::net::SocketAddrV4;

use raida_healing::claims::ClaimGate;
use raida_healing::commands::fix::{fix_with_report, FixReport};
use raida_healing::commands::{Command, Node, NodeConfig, Request};
use raida_healing::metrics::FixStats;
use raida_healing::peers::{PeerClient, PeerOptions};
use raida_healing::protocol::{Response, Status};
use raida_healing::store::CoinStore;
use raida_healing::tickets::TicketPool;

/// A server: what `commands::Node` borrows, owned.
pub struct Server<S> {
    pub store: S,
    pub pool: TicketPool,
    /// Who may claim its tickets (policy `any` unless a test sets another).
    pub claims: ClaimGate,
    pub config: NodeConfig,
    pub options: PeerOptions,
    /// Its own connection budget and peer history: no other test's connections or
    /// peers count in them.
    pub peers: PeerClient,
    /// What its fixes did, for the metrics.
    pub fix_stats: FixStats,
}

/// RAIDA `raida_no` knowing no peer address.
pub fn config(raida_no: u8) -> NodeConfig {
    NodeConfig {
        raida_no,
        peers: [None; 25],
    }
}

impl<S: CoinStore> Server<S> {
    /// RAIDA `raida_no` over `store` and `pool`, no peer addresses, claim policy `any`,
    /// default peer options, a budget of the default size.
    pub fn new(raida_no: u8, store: S, pool: TicketPool) -> Server<S> {
        Server {
            store,
            pool,
            claims: ClaimGate::default(),
            config: config(raida_no),
            options: PeerOptions::default(),
            peers: PeerClient::default(),
            fix_stats: FixStats::default(),
        }
    }

    /// Sets the address of peer `raida`.
    pub fn peer(&mut self, raida: u8, addr: SocketAddrV4) {
        self.config.peers[usize::from(raida)] = Some(addr);
    }

    pub fn node(&self) -> Node<'_, S> {
        Node {
            store: &self.store,
            tickets: &self.pool,
            claims: &self.claims,
            config: &self.config,
            peer_options: &self.options,
            peers: &self.peers,
            fix_stats: &self.fix_stats,
        }
    }

    /// Runs `command` on `body` as the server hands it to a handler.
    pub fn run(
        &self,
        command: Command,
        body: Option<&[u8]>,
        encryption_type: i32,
        coin_id: u8,
    ) -> Response {
        self.node()
            .run(command, &request(body, encryption_type, coin_id))
    }

    /// Runs a fix, with its report of what each peer answered.
    pub fn fix(
        &self,
        body: Option<&[u8]>,
        encryption_type: i32,
        coin_id: u8,
    ) -> Result<(Response, FixReport), Status> {
        fix_with_report(&self.node(), &request(body, encryption_type, coin_id))
    }
}

pub fn request(body: Option<&[u8]>, encryption_type: i32, coin_id: u8) -> Request<'_> {
    Request {
        body,
        encryption_type,
        coin_id,
        client: None,
    }
}
