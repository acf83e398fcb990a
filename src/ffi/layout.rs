//! `#[repr(C)]` mirrors of the legacy server's structs, each offset and size checked at
//! compile time against the layouts measured on the real server (docs/abi.md).

use std::ffi::{c_char, c_int, c_ulong};

/// One connection's state, owned by the server (`conn_info_t`, 336 bytes).
///
/// A handler reads `body`, `body_size`, `encryption_type` and `coin_id`, and writes
/// `output`, `output_size` and `command_status`; it leaves every other field alone.
/// validate_ticket also reads `ip`, `sa` and `sk`: who the client is, and whether it came
/// by UDP, whose source address can be forged (`client_addr`).
#[repr(C)]
pub struct ConnInfo {
    /// Peer address; non-NULL only for UDP (the datagram's source, which its sender
    /// chose). validate_ticket takes non-NULL as the sign of a UDP claim.
    pub sa: *mut libc::sockaddr,
    /// Client socket: for TCP, getpeername gives the client's address; a socket that is
    /// not SOCK_STREAM also marks a claim as UDP.
    pub sk: c_int,
    /// Echo bytes, returned in the response header.
    pub e0: u8,
    pub e1: u8,
    /// Bytes in `body`, trailer included.
    pub body_size: c_int,
    /// The request body, already decrypted; NULL when empty. Owned by the server.
    pub body: *mut u8,
    pub encryption_denomination: i8,
    pub encryption_sn: u32,
    pub encryption_denomination2: i8,
    pub encryption_sn2: u32,
    /// 0, 1, 2: legacy framing and MD5 in fix; 4, 5: modern framing and SHA-256.
    pub encryption_type: c_int,
    pub encryption_an: [u8; 16],
    pub encryption_an_256: [u8; 32],
    pub nonce: [u8; 16],
    pub request_nonce: [u8; 24],
    pub response_nonce: [u8; 24],
    /// Bytes in `output`; set by the handler (0: no body).
    pub output_size: c_int,
    /// The response body, from C `malloc`; the server `free()`s it.
    pub output: *mut u8,
    /// The status the handler answers.
    pub command_status: u8,
    pub challenge_hash: [u8; 16],
    pub start_time: libc::timeval,
    pub cgroup: u8,
    pub command: u8,
    pub shard_id: u8,
    /// The client's IPv4 address, dotted, NUL-terminated; the server fills it for TCP and
    /// UDP alike.
    pub ip: [c_char; 16],
    pub exec_time: c_ulong,
    /// The request's coin id; copied into requests sent to peers.
    pub coin_id: u8,
    /// Connection state (a C enum): 0 read header, 1 read body, 2 processing, 3 write, 4 done.
    pub state: c_int,
    pub read_buf: [u8; 48],
    pub bytes_to_read: c_int,
    pub bytes_read: c_int,
    pub write_buf: *mut u8,
    pub bytes_to_write: c_int,
    pub bytes_written: c_int,
    pub is_udp_pooled: c_int,
}

/// A coin as C code holds it (`coin_t`, 8 bytes).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CoinT {
    pub denomination: i8,
    pub sn: u32,
}

/// The argument of `send_validate_ticket_job` (`struct validate_ticket_arg_t`, 32 bytes).
#[repr(C)]
pub struct ValidateTicketArg {
    /// The peer RAIDA to ask, 0..25 (never this server).
    pub raida_idx: i8,
    /// The ticket that peer issued.
    pub ticket: u32,
    /// The fix request's connection (its `coin_id` goes into the peer request).
    pub ci: *mut ConnInfo,
    /// Out: the coins the peer listed, from C `malloc` (the caller frees); NULL if none.
    pub rv_coins: *mut CoinT,
    /// Out: number of coins in `rv_coins`.
    pub rv_num_coins: u32,
}

/// One cached page of 1024 coin records (`struct page_s`, 17,496 bytes). Defined by the
/// server; never in the public header.
#[repr(C)]
pub struct PageS {
    pub data: [u8; 1024 * 17],
    pub denomination: i8,
    pub no: u16,
    pub mtx: libc::pthread_mutex_t,
    pub is_dirty: c_int,
    pub reserved_at: libc::time_t,
    pub reserved_by: u32,
    pub prev: *mut PageS,
    pub next: *mut PageS,
}

/// The server's global configuration (`struct config_s`, 544 bytes). Defined by the
/// server; never in the public header.
#[repr(C)]
pub struct ConfigS {
    pub raida_no: c_int,
    pub port: c_int,
    pub flush_freq: c_int,
    pub integrity_freq: c_int,
    pub synchronization_enabled: c_int,
    pub udp_payload_threshold: c_int,
    pub cwd: *mut c_char,
    pub admin_key: [u8; 16],
    pub raida_servers: [*mut c_char; 25],
    pub raida_servers_ports: [u16; 25],
    pub raida_addrs: [*mut libc::sockaddr; 25],
    pub coin_id: u8,
    pub threads: u8,
    pub proxy_addr: *mut c_char,
    pub proxy_port: c_int,
    pub proxy_key: [u8; 16],
    pub btc_confirmations: u8,
}

/// Asserts a struct's size and each named field's offset at compile time.
macro_rules! check_layout {
    ($ty:ty, size $size:expr, align $align:expr, { $($field:ident @ $offset:expr),* $(,)? }) => {
        const _: () = {
            assert!(core::mem::size_of::<$ty>() == $size);
            assert!(core::mem::align_of::<$ty>() == $align);
            $(assert!(core::mem::offset_of!($ty, $field) == $offset);)*
        };
    };
}

check_layout!(ConnInfo, size 336, align 8, {
    sa @ 0, sk @ 8, e0 @ 12, e1 @ 13, body_size @ 16, body @ 24,
    encryption_denomination @ 32, encryption_sn @ 36, encryption_denomination2 @ 40,
    encryption_sn2 @ 44, encryption_type @ 48, encryption_an @ 52, encryption_an_256 @ 68,
    nonce @ 100, request_nonce @ 116, response_nonce @ 140, output_size @ 164, output @ 168,
    command_status @ 176, challenge_hash @ 177, start_time @ 200, cgroup @ 216, command @ 217,
    shard_id @ 218, ip @ 219, exec_time @ 240, coin_id @ 248, state @ 252, read_buf @ 256,
    bytes_to_read @ 304, bytes_read @ 308, write_buf @ 312, bytes_to_write @ 320,
    bytes_written @ 324, is_udp_pooled @ 328,
});

check_layout!(CoinT, size 8, align 4, { denomination @ 0, sn @ 4 });

check_layout!(ValidateTicketArg, size 32, align 8, {
    raida_idx @ 0, ticket @ 4, ci @ 8, rv_coins @ 16, rv_num_coins @ 24,
});

check_layout!(PageS, size 17496, align 8, {
    data @ 0, denomination @ 17408, no @ 17410, mtx @ 17416, is_dirty @ 17456,
    reserved_at @ 17464, reserved_by @ 17472, prev @ 17480, next @ 17488,
});

check_layout!(ConfigS, size 544, align 8, {
    raida_no @ 0, port @ 4, flush_freq @ 8, integrity_freq @ 12, synchronization_enabled @ 16,
    udp_payload_threshold @ 20, cwd @ 24, admin_key @ 32, raida_servers @ 48,
    raida_servers_ports @ 248, raida_addrs @ 304, coin_id @ 504, threads @ 505,
    proxy_addr @ 512, proxy_port @ 520, proxy_key @ 524, btc_confirmations @ 540,
});
