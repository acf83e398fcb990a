//! Who sent a claim: the client's address, and the transport that says what the address
//! is worth.
//!
//! A TCP client's address is proven by the handshake: a host cannot complete one from an
//! address whose answers it does not receive. A UDP datagram's source is whatever its
//! sender wrote, so anyone can send a claim "from" an honest peer's address. The claim
//! policy and the guess throttle therefore treat the two apart.

use std::net::IpAddr;

/// How a claim reached the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// A connection (TCP): the address is the one that completed the handshake. Also a
    /// caller that gives an address and no sign of UDP (a test, an ops script).
    Stream,
    /// A datagram (UDP): the address is the one its sender chose to write.
    Datagram,
}

impl Transport {
    /// The name used in log lines.
    pub fn name(self) -> &'static str {
        match self {
            Transport::Stream => "TCP",
            Transport::Datagram => "UDP",
        }
    }
}

/// The client a claim came from, as the server describes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClaimSource {
    /// The client's IP address.
    pub ip: IpAddr,
    /// How the claim arrived, and so whether `ip` is proven.
    pub transport: Transport,
}

impl ClaimSource {
    /// A claim over a connection from `ip`.
    pub fn stream(ip: IpAddr) -> ClaimSource {
        ClaimSource {
            ip,
            transport: Transport::Stream,
        }
    }

    /// A claim in a datagram whose source says `ip`.
    pub fn datagram(ip: IpAddr) -> ClaimSource {
        ClaimSource {
            ip,
            transport: Transport::Datagram,
        }
    }
}
