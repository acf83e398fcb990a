//! The four healing commands, as safe functions of a request and a node.
//!
//! Each takes the request body exactly as the server holds it (challenge, payload and
//! trailer for legacy types; payload, HMAC and trailer for types 4 and 5) and answers a
//! [`Response`]. None of them touches C memory.

use std::net::{IpAddr, SocketAddrV4};

use crate::protocol::{Framing, Response, Status, TOTAL_RAIDA_SERVERS};
use crate::store::CoinStore;
use crate::tickets::TicketPool;

pub mod find;
pub mod fix;
pub mod get_ticket;
pub mod validate_ticket;

/// One healing command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// Group 2, command 40.
    GetTicket,
    /// Group 2, command 50.
    ValidateTicket,
    /// Group 2, command 60.
    Find,
    /// Group 2, command 80.
    Fix,
}

impl Command {
    /// The command byte in a request header.
    pub fn code(self) -> u8 {
        match self {
            Command::GetTicket => 40,
            Command::ValidateTicket => 50,
            Command::Find => 60,
            Command::Fix => 80,
        }
    }

    /// The command for a header byte, if it is a healing command.
    pub fn from_code(code: u8) -> Option<Command> {
        [
            Command::GetTicket,
            Command::ValidateTicket,
            Command::Find,
            Command::Fix,
        ]
        .into_iter()
        .find(|c| c.code() == code)
    }
}

/// What a handler is given of a request.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// The whole body (`None` when the server had none).
    pub body: Option<&'a [u8]>,
    /// The request's encryption type: selects framing and fix's hash.
    pub encryption_type: i32,
    /// The coin id, copied into requests to peers.
    pub coin_id: u8,
    /// The client's address, when the server says it (validate_ticket's claim policy and
    /// guess throttle use it); `None` keeps the behaviour of a caller that cannot tell.
    pub client: Option<IpAddr>,
}

impl<'a> Request<'a> {
    /// The payload inside the body: `Err(EmptyRequest)` without a body, `Ok(None)` when
    /// the body cannot even hold its framing.
    pub fn payload(&self) -> Result<Option<&'a [u8]>, Status> {
        let body = self.body.ok_or(Status::EmptyRequest)?;
        Ok(Framing::for_encryption_type(self.encryption_type).payload(body))
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

/// Everything a command may use.
pub struct Node<'a, S: CoinStore + ?Sized> {
    pub store: &'a S,
    pub tickets: &'a TicketPool,
    pub config: &'a NodeConfig,
    pub peer_options: &'a crate::peers::PeerOptions,
}

impl<S: CoinStore + ?Sized> Node<'_, S> {
    /// Runs `command` on `request`.
    pub fn run(&self, command: Command, request: &Request<'_>) -> Response {
        let result = match command {
            Command::GetTicket => get_ticket::get_ticket(self.store, self.tickets, request),
            Command::ValidateTicket => {
                validate_ticket::validate_ticket(self.tickets, self.config, request)
            }
            Command::Find => find::find(self.store, request),
            Command::Fix => fix::fix(self, request),
        };
        result.unwrap_or_else(Response::status)
    }
}
