//! The four healing commands, as safe functions of a request and a node.
//!
//! Each takes the request body exactly as the server holds it (challenge, payload and
//! trailer for legacy types; payload, HMAC and trailer for types 4 and 5) and answers a
//! [`Response`]. None of them touches C memory.

use std::net::SocketAddrV4;

use crate::protocol::{Framing, Response, Status, TOTAL_RAIDA_SERVERS};
// The command bytes the command table names.
use crate::protocol::{FIND, FIX, GET_TICKET, VALIDATE_TICKET};
use crate::store::CoinStore;
use crate::claims::{ClaimGate, ClaimSource};
use crate::metrics::FixStats;
use crate::peers::{Claimer, PeerClient, PeerOptions};
use crate::tickets::TicketPool;

pub mod find;
pub mod fix;
pub mod get_ticket;
pub mod validate_ticket;

/// Declares [`Command`] and [`Node::run`]'s dispatch from the command table (table.rs).
macro_rules! command_table {
    ($(
        $(#[$doc:meta])*
        $variant:ident = $code:ident => $export:ident, |$node:ident, $request:ident| $run:expr;
    )*) => {
        /// One healing command.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Command {
            $(
                #[doc = concat!("Group 2, command `", stringify!($code), "` (`", stringify!($export), "`).")]
                $variant,
            )*
        }

        impl Command {
            /// Every command, in the table's order.
            pub const ALL: &[Command] = &[$(Command::$variant),*];

            /// The command byte in a request header (the group is
            /// [`HEALING_GROUP`](crate::protocol::HEALING_GROUP)).
            pub const fn code(self) -> u8 {
                match self {
                    $(Command::$variant => $code,)*
                }
            }

            /// Its name, e.g. `"fix"` (the metrics' `command` label).
            pub fn name(self) -> &'static str {
                let export = self.export();
                match export.strip_prefix("cmd_") {
                    Some(name) => name,
                    None => export,
                }
            }

            /// The name of its C export, e.g. `"cmd_fix"`.
            pub const fn export(self) -> &'static str {
                match self {
                    $(Command::$variant => stringify!($export),)*
                }
            }
        }

        impl<S: CoinStore + ?Sized> Node<'_, S> {
            /// Runs `command` on `request` by the table's row, before the store is asked
            /// whether its writes held.
            fn dispatch(&self, command: Command, request: &Request<'_>) -> Result<Response, Status> {
                match command {
                    $(Command::$variant => {
                        // A row need not use both (validate_ticket has no store).
                        #[allow(unused_variables)]
                        let ($node, $request) = (self, request);
                        $run
                    })*
                }
            }
        }
    };
}

include!("commands/table.rs");

/// What a handler is given of a request.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// The whole body (`None` when the server had none).
    pub body: Option<&'a [u8]>,
    /// The request's encryption type: selects framing and fix's hash.
    pub encryption_type: i32,
    /// The coin id, copied into requests to peers.
    pub coin_id: u8,
    /// The client's address and transport, when the server says them (validate_ticket's
    /// claim policy and guess throttle use them); `None` keeps the behaviour of a caller
    /// that cannot tell.
    pub client: Option<ClaimSource>,
}

impl<'a> Request<'a> {
    /// The payload inside the body: `Err(EmptyRequest)` without a body, `Ok(None)` when
    /// the body cannot even hold its framing.
    pub fn payload(&self) -> Result<Option<&'a [u8]>, Status> {
        let body = self.body.ok_or(Status::EmptyRequest)?;
        Ok(Framing::for_encryption_type(self.encryption_type).payload(body))
    }

    /// The first 12 challenge bytes of a legacy body (`None` for types 4 and 5, or no body).
    pub fn challenge(&self) -> Option<&'a [u8; 12]> {
        Framing::for_encryption_type(self.encryption_type).challenge(self.body?)
    }
}

/// This server as fix sees it: its index and where its peers are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeConfig {
    /// This server's RAIDA index, 0..25.
    pub raida_no: u8,
    /// Each RAIDA's IPv4 address (`None` where unknown; this server's own is never used).
    pub peers: [Option<SocketAddrV4>; TOTAL_RAIDA_SERVERS],
}

impl NodeConfig {
    /// Who this server is when it claims tickets for `coin_id`: RAIDA `raida_no`, its
    /// connections bound to its listed address when the host has that address (the
    /// peer client's source check, with `options`).
    pub fn claimer(&self, coin_id: u8, peers: &PeerClient, options: &PeerOptions) -> Claimer {
        let listed = self.peers[usize::from(self.raida_no)].map(|a| *a.ip());
        Claimer {
            raida_no: self.raida_no,
            coin_id,
            source: peers.source.source_for(listed, options),
        }
    }
}

/// Everything a command may use. The C boundary fills it from the state owner
/// (`src/ffi/state.rs`) and the store of the call; a test fills it with its own.
pub struct Node<'a, S: CoinStore + ?Sized> {
    pub store: &'a S,
    pub tickets: &'a TicketPool,
    /// Who may claim a ticket (validate_ticket).
    pub claims: &'a ClaimGate,
    /// What wallets' fixes may spend at the peers, and which clients are refused (fix).
    pub fixes: &'a crate::fix_gate::FixGate,
    pub config: &'a NodeConfig,
    pub peer_options: &'a PeerOptions,
    /// The peer client's budget and peer history (fix).
    pub peers: &'a PeerClient,
    /// Where fix records what it did, for the metrics.
    pub fix_stats: &'a FixStats,
}

impl<S: CoinStore + ?Sized> Node<'_, S> {
    /// Runs `command` on `request`. A write the store could not keep ([`CoinStore::finish`])
    /// is logged and answered ERROR_INTERNAL.
    pub fn run(&self, command: Command, request: &Request<'_>) -> Response {
        self.run_reporting(command, request).unwrap_or_else(|line| {
            crate::log::error(&line);
            Response::status(Status::Internal)
        })
    }

    /// [`Node::run`] for a caller that reports a failed write itself (the C boundary also
    /// makes it the thread's last error): `Err` with the line to log, e.g.
    /// `"Fix: writing <page>: <why>; answering ERROR_INTERNAL"`.
    pub fn run_reporting(&self, command: Command, request: &Request<'_>) -> Result<Response, String> {
        let response = self.dispatch(command, request).unwrap_or_else(Response::status);
        self.store
            .finish()
            .map_err(|why| format!("{command:?}: {why}; answering ERROR_INTERNAL"))?;
        Ok(response)
    }
}

/// What a unit test's [`Node`] holds besides its store: a fresh default of each part, for
/// RAIDA 2 with no peer addresses.
#[cfg(test)]
pub(crate) struct TestParts {
    pub tickets: TicketPool,
    pub claims: ClaimGate,
    pub fixes: crate::fix_gate::FixGate,
    pub config: NodeConfig,
    pub peer_options: PeerOptions,
    pub peers: PeerClient,
    pub fix_stats: FixStats,
}

#[cfg(test)]
impl TestParts {
    pub fn new() -> TestParts {
        TestParts {
            tickets: TicketPool::default(),
            claims: ClaimGate::default(),
            fixes: crate::fix_gate::FixGate::default(),
            config: NodeConfig {
                raida_no: 2,
                peers: [None; TOTAL_RAIDA_SERVERS],
            },
            peer_options: PeerOptions::default(),
            peers: PeerClient::default(),
            fix_stats: FixStats::default(),
        }
    }

    /// A node of these parts over `store`.
    pub fn node<'a, S: CoinStore + ?Sized>(&'a self, store: &'a S) -> Node<'a, S> {
        Node {
            store,
            tickets: &self.tickets,
            claims: &self.claims,
            fixes: &self.fixes,
            config: &self.config,
            peer_options: &self.peer_options,
            peers: &self.peers,
            fix_stats: &self.fix_stats,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Coin;
    use crate::store::{MemoryStore, PageKey, PageRecords};

    /// A memory store whose writes "fail" when `broken` is set.
    struct FailingWrites {
        store: MemoryStore,
        broken: bool,
    }

    impl CoinStore for FailingWrites {
        fn with_page<R>(
            &self,
            key: PageKey,
            f: impl FnOnce(&mut PageRecords<'_>) -> R,
        ) -> Option<R> {
            self.store.with_page(key, f)
        }

        fn finish(&self) -> Result<(), String> {
            match self.broken {
                true => Err("the disk is gone".to_string()),
                false => Ok(()),
            }
        }
    }

    /// find on a stored coin: 209 when the store's writes hold, 252 when they do not.
    #[test]
    fn the_runner_answers_internal_when_the_store_reports_a_failed_write() {
        let coin = Coin { den: 1, sn: 1 };
        let mut payload = coin.to_wire().to_vec();
        payload.extend([9; 16]);
        payload.extend([0; 16]);
        let mut body = vec![0u8; 16];
        body.extend(&payload);
        body.extend([0x3e, 0x3e]);
        let request = Request {
            body: Some(&body),
            encryption_type: 0,
            coin_id: 6,
            client: None,
        };
        let parts = TestParts::new();
        for (broken, status) in [(false, Status::FindAllAn), (true, Status::Internal)] {
            let store = FailingWrites {
                store: MemoryStore::new(),
                broken,
            };
            store.store.put(coin, [9; 16], 1);
            let node = parts.node(&store);
            assert_eq!(node.run(Command::Find, &request).status, status);
            if broken {
                assert_eq!(
                    node.run_reporting(Command::Find, &request),
                    Err("Find: the disk is gone; answering ERROR_INTERNAL".to_string())
                );
            }
        }
    }
}
