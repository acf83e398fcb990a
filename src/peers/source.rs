//! Where this server's claims leave from.
//!
//! A peer under the `listed` claim policy accepts a claim for RAIDA i only from the
//! address its config lists for i. On a host with several addresses the kernel picks the
//! source of an outgoing connection by route, which need not be the listed one (configs
//! listing `127.0.0.(i+1)` had every claim leave from `127.0.0.1`, and every vote was
//! declined). So when this server's own listed address is one of the host's addresses,
//! every peer connection is bound to it before it connects ([`PeerOptions::source`]
//! turns that off). When it is not (behind NAT, or a config error) binding cannot help:
//! the log says so once per address, because listed peers will refuse its claims.
//!
//! Whether an address is the host's is asked of the kernel once per address (a UDP
//! socket bound to it: `EADDRNOTAVAIL` means it is not) and remembered.

use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};

use parking_lot::Mutex;
use socket2::{Domain, Socket, Type};

use super::settings::{PeerOptions, SourceChoice};

/// What this process knows of its listed address: the last one asked about and whether
/// it is the host's.
pub struct SourceCheck {
    known: Mutex<Option<(Ipv4Addr, bool)>>,
}

impl Default for SourceCheck {
    fn default() -> Self {
        SourceCheck::new()
    }
}

impl SourceCheck {
    pub const fn new() -> SourceCheck {
        SourceCheck {
            known: Mutex::new(None),
        }
    }

    /// The address this server's peer connections bind to, for a server listed at
    /// `listed` (`None` when the config lists none): `listed` when it is one of the
    /// host's addresses and `options` bind; otherwise `None` (the kernel chooses). The
    /// first time an address turns out not to be the host's, logs one warning.
    pub fn source_for(&self, listed: Option<Ipv4Addr>, options: &PeerOptions) -> Option<Ipv4Addr> {
        let ip = listed.filter(|ip| !ip.is_unspecified())?;
        let is_local = {
            let mut known = self.known.lock();
            match *known {
                Some((at, verdict)) if at == ip => verdict,
                _ => {
                    // A failure to ask (out of descriptors) is not an answer: ask again next time.
                    let verdict = is_host_address(ip).ok()?;
                    *known = Some((ip, verdict));
                    if !verdict {
                        crate::log::warning(&not_local_line(ip));
                    }
                    verdict
                }
            }
        };
        (is_local && options.source == SourceChoice::Listed).then_some(ip)
    }
}

/// The one line logged when this server's listed address is not one of the host's.
pub fn not_local_line(ip: Ipv4Addr) -> String {
    format!(
        "peer client: this server's listed address {ip} (its own entry in raida_servers) is \
         not an address of this host (behind NAT?): its claims leave from another address, \
         and peers under RAIDA_HEALING_CLAIM_POLICY=listed will refuse them unless both \
         hold the claim key (RAIDA_HEALING_CLAIM_KEY_FILE)"
    )
}

/// Whether `ip` is one of this host's addresses: a socket can be bound to it.
pub fn is_host_address(ip: Ipv4Addr) -> io::Result<bool> {
    let socket = Socket::new(Domain::IPV4, Type::DGRAM, None)?;
    match socket.bind(&SocketAddr::V4(SocketAddrV4::new(ip, 0)).into()) {
        Ok(()) => Ok(true),
        Err(e) if e.raw_os_error() == Some(libc::EADDRNOTAVAIL) => Ok(false),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_addresses_are_the_hosts_and_a_documentation_address_is_not() {
        assert_eq!(is_host_address(Ipv4Addr::new(127, 0, 0, 1)).ok(), Some(true));
        // 192.0.2.0/24 (TEST-NET-1) is never assigned to a host.
        assert_eq!(is_host_address(Ipv4Addr::new(192, 0, 2, 1)).ok(), Some(false));
    }

    #[test]
    fn binds_only_to_a_local_listed_address_and_only_when_asked_to() {
        let check = SourceCheck::new();
        let bind = PeerOptions::default();
        let kernel = PeerOptions {
            source: SourceChoice::Kernel,
            ..PeerOptions::default()
        };
        let local = Ipv4Addr::new(127, 0, 0, 7);
        assert_eq!(check.source_for(Some(local), &bind), Some(local));
        assert_eq!(check.source_for(Some(local), &kernel), None);
        assert_eq!(check.source_for(None, &bind), None);
        assert_eq!(check.source_for(Some(Ipv4Addr::UNSPECIFIED), &bind), None);
        let remote = Ipv4Addr::new(192, 0, 2, 1);
        assert_eq!(check.source_for(Some(remote), &bind), None);
        assert_eq!(*check.known.lock(), Some((remote, false)));
    }
}
