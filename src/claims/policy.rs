//! Who may claim a ticket in the name of a RAIDA: the claim policy.
//!
//! A claim names the RAIDA index it claims for, and nothing in the request proves it.
//! Where the server tells the library the client's address, the policy decides whether
//! that address may speak for the index it names.

use std::net::{IpAddr, Ipv4Addr};

use super::source::{ClaimSource, Transport};

/// The setting that selects the policy (its row in `src/settings.rs`), named in log lines.
pub const CLAIM_POLICY_SETTING: &str = "RAIDA_HEALING_CLAIM_POLICY";

/// Who may claim a ticket for RAIDA i.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClaimPolicy {
    /// Any client, as the legacy server did. The default: a peer whose outgoing address
    /// is not the one configured for it (behind NAT, several addresses, a new address
    /// not yet in every server's config) keeps its votes. Guessing is bounded by the
    /// guess throttle alone.
    #[default]
    Any,
    /// Only a client whose IP is the one configured for RAIDA i (`config.raida_addrs[i]`,
    /// ports ignored: outgoing connections use other ports), over TCP: a UDP datagram's
    /// source can be forged, and peers claim over TCP. Anyone else is answered 43,
    /// whether the ticket exists or not, and the refusal is logged.
    Listed,
    /// Only a claim whose tag the claim key verifies (`src/claim_auth.rs`), from any
    /// address by any transport: the end state once every RAIDA of the network holds
    /// the key. No address admits a claim; every other claim is answered 43 and reaches
    /// neither the pool nor the guess throttle.
    Authenticated,
}

impl ClaimPolicy {
    /// The policy named by `value`; `None` for an unknown name.
    pub fn parse(value: &str) -> Option<ClaimPolicy> {
        match value.trim().to_ascii_lowercase().as_str() {
            "any" => Some(ClaimPolicy::Any),
            "listed" => Some(ClaimPolicy::Listed),
            "authenticated" => Some(ClaimPolicy::Authenticated),
            _ => None,
        }
    }

    /// Whether a claim from `client` may speak for a RAIDA whose configured address is
    /// `configured` (`None`: no address configured for it), by its address alone (under
    /// `authenticated`, never).
    pub fn admits(self, client: ClaimSource, configured: Option<Ipv4Addr>) -> bool {
        match self {
            ClaimPolicy::Any => true,
            ClaimPolicy::Authenticated => false,
            ClaimPolicy::Listed => {
                client.transport == Transport::Stream
                    && configured.is_some_and(|ip| ipv4_of(client.ip) == Some(ip))
            }
        }
    }

    /// The name used in the setting and the logs.
    pub fn name(self) -> &'static str {
        match self {
            ClaimPolicy::Any => "any",
            ClaimPolicy::Listed => "listed",
            ClaimPolicy::Authenticated => "authenticated",
        }
    }
}

/// The IPv4 address of `ip`, also when it arrives IPv4-mapped (`::ffff:a.b.c.d`).
pub(crate) fn ipv4_of(ip: IpAddr) -> Option<Ipv4Addr> {
    match ip {
        IpAddr::V4(v4) => Some(v4),
        IpAddr::V6(v6) => v6.to_ipv4_mapped(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(ClaimPolicy::parse("any"), Some(ClaimPolicy::Any));
        assert_eq!(ClaimPolicy::parse(" LISTED\n"), Some(ClaimPolicy::Listed));
        assert_eq!(
            ClaimPolicy::parse("Authenticated"),
            Some(ClaimPolicy::Authenticated)
        );
        assert_eq!(ClaimPolicy::parse("strict"), None);
        for policy in [ClaimPolicy::Any, ClaimPolicy::Listed, ClaimPolicy::Authenticated] {
            assert_eq!(ClaimPolicy::parse(policy.name()), Some(policy));
        }
        assert_eq!(ClaimPolicy::default(), ClaimPolicy::Any);
    }

    fn tcp(ip: &str) -> ClaimSource {
        ClaimSource::stream(ip.parse().unwrap())
    }

    fn udp(ip: &str) -> ClaimSource {
        ClaimSource::datagram(ip.parse().unwrap())
    }

    #[test]
    fn listed_compares_the_ip_only() {
        let peer = Ipv4Addr::new(127, 0, 0, 12);
        let listed = ClaimPolicy::Listed;
        assert!(listed.admits(ClaimSource::stream(IpAddr::V4(peer)), Some(peer)));
        assert!(listed.admits(tcp("::ffff:127.0.0.12"), Some(peer)));
        assert!(!listed.admits(tcp("127.0.0.13"), Some(peer)));
        assert!(!listed.admits(tcp("::1"), Some(peer)));
        assert!(!listed.admits(tcp("127.0.0.12"), None));
        assert!(ClaimPolicy::Any.admits(tcp("192.0.2.1"), None));
    }

    #[test]
    fn listed_refuses_every_datagram_and_any_takes_them() {
        let peer = Ipv4Addr::new(127, 0, 0, 12);
        assert!(!ClaimPolicy::Listed.admits(udp("127.0.0.12"), Some(peer)));
        assert!(!ClaimPolicy::Listed.admits(udp("::ffff:127.0.0.12"), Some(peer)));
        assert!(ClaimPolicy::Any.admits(udp("127.0.0.12"), Some(peer)));
        assert!(ClaimPolicy::Any.admits(udp("192.0.2.1"), None));
    }
}
