//! Who the client is, from a `conn_info_t`: its address and the transport it came by, for
//! validate_ticket's claim policy and guess throttle.
//!
//! The server says who the client is in three places: `ip`, the dotted IPv4 string it
//! fills for TCP and UDP alike (and keys its own rate limit on); `sk`, the client socket,
//! whose peer getpeername(2) gives for TCP; `sa`, the datagram's source for UDP. The
//! first one present gives the address, in that order: `sa` last, as the one pointer to
//! follow (a UDP socket has no peer, so getpeername fails there and `sa` is reached). A
//! caller that fills none (a test, an ops script: `ip` empty, `sa` NULL, `sk` 0) gets
//! `None`, and the command behaves as it did before addresses were used.
//!
//! The transport says what the address is worth: a TCP peer completed a handshake from
//! it, a UDP source is whatever the datagram says. A claim is a datagram when `sa` is not
//! NULL (the server sets it for UDP only), or when `sk` is a socket of another type than
//! SOCK_STREAM (SO_TYPE; UDP's SOCK_DGRAM in practice), which catches a UDP request whose
//! `sa` the server left NULL; otherwise it is a stream (`sk` a TCP socket, or no socket at
//! all: a caller that gives only `ip`). `is_udp_pooled` is not read: the server's
//! documentation gives it no meaning, and `sa` and `sk` already tell.

use std::ffi::CStr;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::layout::ConnInfo;
use crate::claims::{ClaimSource, Transport};

/// Who the client is as the server gives it in `ci`; `None` when it gives no address.
pub(crate) fn client(ci: &ConnInfo) -> Option<ClaimSource> {
    let ip = client_ip(ci)?;
    Some(ClaimSource {
        ip,
        transport: transport(ci),
    })
}

/// The client's IP address as the server gives it in `ci`; `None` when it gives none.
fn client_ip(ci: &ConnInfo) -> Option<IpAddr> {
    dotted_ip(&ci.ip)
        .or_else(|| socket_peer_ip(ci.sk))
        .or_else(|| sockaddr_ip(ci.sa))
}

/// How the request came: a datagram when `sa` is set or `sk` is a socket that is not a
/// stream; a stream otherwise.
fn transport(ci: &ConnInfo) -> Transport {
    let unproven_socket = || socket_type(ci.sk).is_some_and(|t| t != libc::SOCK_STREAM);
    if !ci.sa.is_null() || unproven_socket() {
        Transport::Datagram
    } else {
        Transport::Stream
    }
}

/// `sk`'s socket type (SOCK_STREAM, SOCK_DGRAM, ...); `None` when `sk` is no socket, or
/// 0, which a zeroed `conn_info_t` holds (see [`socket_peer_ip`]).
fn socket_type(sk: libc::c_int) -> Option<libc::c_int> {
    if sk <= 0 {
        return None;
    }
    let mut kind: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: SO_TYPE writes one c_int into `kind`, whose size `len` gives; on a
    // descriptor that is no socket the call fails harmlessly (ENOTSOCK, EBADF).
    let rc = unsafe {
        libc::getsockopt(
            sk,
            libc::SOL_SOCKET,
            libc::SO_TYPE,
            (&mut kind as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    (rc == 0).then_some(kind)
}

/// `ip`: an IPv4 address in dotted form, NUL-terminated within its 16 bytes.
fn dotted_ip(field: &[std::ffi::c_char; 16]) -> Option<IpAddr> {
    let bytes: [u8; 16] = field.map(|c| c as u8);
    let text = CStr::from_bytes_until_nul(&bytes).ok()?.to_str().ok()?;
    text.parse::<Ipv4Addr>().ok().map(IpAddr::V4)
}

/// `sa`: the UDP datagram's source, an IPv4 or IPv6 socket address; NULL for TCP.
fn sockaddr_ip(sa: *const libc::sockaddr) -> Option<IpAddr> {
    if sa.is_null() {
        return None;
    }
    // SAFETY: the server sets `sa` only for UDP, to the datagram's source address, which
    // it owns for the call; the family is read first and only the matching struct after.
    unsafe {
        match libc::c_int::from((*sa).sa_family) {
            libc::AF_INET => {
                let sin = &*(sa as *const libc::sockaddr_in);
                Some(IpAddr::V4(Ipv4Addr::from(u32::from_be(
                    sin.sin_addr.s_addr,
                ))))
            }
            libc::AF_INET6 => {
                let sin6 = &*(sa as *const libc::sockaddr_in6);
                Some(IpAddr::V6(Ipv6Addr::from(sin6.sin6_addr.s6_addr)))
            }
            _ => None,
        }
    }
}

/// `sk`: the peer of a connected TCP socket; `None` for anything else (not a socket,
/// not connected, another family). Descriptor 0 is what a zeroed `conn_info_t` holds
/// (a test's, a script's) and is taken as none: a server's client socket is never
/// stdin, and when it were, the server's `ip` would still name the client.
fn socket_peer_ip(sk: libc::c_int) -> Option<IpAddr> {
    if sk <= 0 {
        return None;
    }
    let mut storage = std::mem::MaybeUninit::<libc::sockaddr_storage>::zeroed();
    let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: getpeername writes at most `len` bytes into `storage`, which is that large,
    // and fails harmlessly (ENOTSOCK, EBADF, ENOTCONN) on a descriptor that is no
    // connected socket.
    let rc = unsafe { libc::getpeername(sk, storage.as_mut_ptr().cast(), &mut len) };
    if rc != 0 {
        return None;
    }
    sockaddr_ip(storage.as_ptr().cast())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{TcpListener, TcpStream};
    use std::os::fd::AsRawFd;

    fn blank() -> Box<ConnInfo> {
        // SAFETY: ConnInfo is plain data (integers, arrays, raw pointers): all zeros is a
        // valid value (NULL pointers, empty strings).
        let mut ci: Box<ConnInfo> = Box::new(unsafe { std::mem::zeroed() });
        ci.sk = -1;
        ci
    }

    fn set_ip(ci: &mut ConnInfo, text: &str) {
        for (to, from) in ci.ip.iter_mut().zip(text.bytes().chain(std::iter::once(0))) {
            *to = from as std::ffi::c_char;
        }
    }

    #[test]
    fn nothing_given_is_none() {
        assert_eq!(client(&blank()), None);
    }

    fn tcp(ip: &str) -> Option<ClaimSource> {
        Some(ClaimSource::stream(ip.parse().unwrap()))
    }

    fn udp(ip: &str) -> Option<ClaimSource> {
        Some(ClaimSource::datagram(ip.parse().unwrap()))
    }

    #[test]
    fn the_dotted_ip_field() {
        let mut ci = blank();
        set_ip(&mut ci, "127.0.0.12");
        assert_eq!(client(&ci), tcp("127.0.0.12"));
        set_ip(&mut ci, "255.255.255.255");
        assert_eq!(client(&ci), tcp("255.255.255.255"));
        set_ip(&mut ci, "not an ip");
        assert_eq!(client(&ci), None);
    }

    #[test]
    fn the_udp_source_address() {
        let mut ci = blank();
        // SAFETY: all-zero sockaddr_in is valid.
        let mut sin: libc::sockaddr_in = unsafe { std::mem::zeroed() };
        sin.sin_family = libc::AF_INET as libc::sa_family_t;
        sin.sin_addr.s_addr = u32::from(Ipv4Addr::new(127, 0, 0, 9)).to_be();
        ci.sa = (&mut sin as *mut libc::sockaddr_in).cast();
        assert_eq!(client(&ci), udp("127.0.0.9"));
        // the server's `ip` names the same source; `sa` still marks the datagram
        set_ip(&mut ci, "127.0.0.9");
        assert_eq!(client(&ci), udp("127.0.0.9"));
    }

    #[test]
    fn a_udp_socket_in_sk_marks_a_datagram_without_sa() {
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut ci = blank();
        ci.sk = socket.as_raw_fd();
        // an unconnected UDP socket has no peer: no address, no policy
        assert_eq!(client(&ci), None);
        set_ip(&mut ci, "127.0.0.12");
        assert_eq!(client(&ci), udp("127.0.0.12"));
    }

    #[test]
    fn the_tcp_socket_peer() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let connection = socket2_bound_client("127.0.0.7", listener.local_addr().unwrap().port());
        let (accepted, _) = listener.accept().unwrap();
        let mut ci = blank();
        ci.sk = accepted.as_raw_fd();
        assert_eq!(client(&ci), tcp("127.0.0.7"));
        set_ip(&mut ci, "127.0.0.7");
        assert_eq!(client(&ci), tcp("127.0.0.7"));
        // a descriptor that is no socket: the address from `ip`, no sign of UDP
        let file = std::fs::File::open("/dev/null").unwrap();
        ci.sk = file.as_raw_fd();
        assert_eq!(client(&ci), tcp("127.0.0.7"));
        set_ip(&mut ci, "");
        assert_eq!(client(&ci), None);
        drop(connection);
    }

    /// A TCP connection to 127.0.0.1:`port` from `from` (a loopback address).
    fn socket2_bound_client(from: &str, port: u16) -> TcpStream {
        // SAFETY: plain socket calls on a descriptor this function owns until it is
        // handed to TcpStream.
        unsafe {
            let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
            assert!(fd >= 0);
            let mut local: libc::sockaddr_in = std::mem::zeroed();
            local.sin_family = libc::AF_INET as libc::sa_family_t;
            local.sin_addr.s_addr = u32::from(from.parse::<Ipv4Addr>().unwrap()).to_be();
            let size = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
            assert_eq!(
                libc::bind(fd, (&local as *const libc::sockaddr_in).cast(), size),
                0
            );
            let mut remote = local;
            remote.sin_addr.s_addr = u32::from(Ipv4Addr::LOCALHOST).to_be();
            remote.sin_port = port.to_be();
            assert_eq!(
                libc::connect(fd, (&remote as *const libc::sockaddr_in).cast(), size),
                0
            );
            <TcpStream as std::os::fd::FromRawFd>::from_raw_fd(fd)
        }
    }
}
