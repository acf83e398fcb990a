//! Peer health for hosts, tests and ops scripts: the figures the peer client keeps per
//! peer (src/peers/health.rs), copied into a caller's array.

use std::os::raw::c_int;

use super::entry::enter;
use super::error::{int_result, RAIDA_HEALING_E_ARGUMENT};
use super::state::process;

/// One peer as `raida_healing_peer_health` reports it: what this process has seen of
/// it since the library was loaded, and whether it is ejected (not asked until its next
/// probe).
///
/// 88 bytes, alignment 8. Fields are only ever added at the end: the first 56 bytes
/// (up to `high_us`) keep the layout of the struct before it had the ejection fields, but
/// the size changed, so a caller built against an older header must be rebuilt (it
/// would pass an array of 56-byte entries).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PeerHealthT {
    /// The peer's RAIDA index, 0..24.
    pub raida: u8,
    /// Its IPv4 address, most significant byte first (10.0.0.7 is {10, 0, 0, 7}).
    pub ipv4: [u8; 4],
    /// Its TCP port.
    pub port: u16,
    /// Well-formed answers: votes, and refusals such as 43 or 44 (the peer is up).
    pub answers: u64,
    /// Refused connections and answers that broke the protocol.
    pub failures: u64,
    /// Calls that reached their deadline with this peer still silent.
    pub timeouts: u64,
    /// Second connections opened because it was silent beyond its usual answer time.
    pub hedges: u64,
    /// Typical time from connect to answer (an EWMA), in microseconds; 0 before the
    /// first answer.
    pub typical_us: u64,
    /// A high answer time (typical + 4 x mean deviation), in microseconds; 0 before the
    /// first answer. A peer silent for twice this (at least RAIDA_HEALING_HEDGE_MS, at
    /// most 8 x typical, at most 2 s or a quarter of the deadline) is hedged.
    pub high_us: u64,
    /// Times it was ejected: after RAIDA_HEALING_EJECT_AFTER failed attempts in a row,
    /// and again after each failed probe.
    pub ejections: u64,
    /// Probes of it while ejected that opened a connection (one call at a time).
    pub probes: u64,
    /// While ejected: milliseconds until its next probe may start (0 when one is due or
    /// running); 0 when not ejected.
    pub next_probe_ms: u64,
    /// Failed attempts (timeouts, refusals, invalid answers) since its last valid
    /// answer.
    pub consecutive_failures: u32,
    /// 1 while ejected: fixes open no connection to it and count it as no vote, except
    /// the one call that probes it; 0 otherwise.
    pub ejected: u8,
}

// The layout C callers compile against (docs/abi.md); appended fields only.
const _: () = {
    use std::mem::{align_of, offset_of, size_of};
    assert!(size_of::<PeerHealthT>() == 88 && align_of::<PeerHealthT>() == 8);
    assert!(offset_of!(PeerHealthT, raida) == 0);
    assert!(offset_of!(PeerHealthT, ipv4) == 1);
    assert!(offset_of!(PeerHealthT, port) == 6);
    assert!(offset_of!(PeerHealthT, answers) == 8);
    assert!(offset_of!(PeerHealthT, failures) == 16);
    assert!(offset_of!(PeerHealthT, timeouts) == 24);
    assert!(offset_of!(PeerHealthT, hedges) == 32);
    assert!(offset_of!(PeerHealthT, typical_us) == 40);
    assert!(offset_of!(PeerHealthT, high_us) == 48);
    assert!(offset_of!(PeerHealthT, ejections) == 56);
    assert!(offset_of!(PeerHealthT, probes) == 64);
    assert!(offset_of!(PeerHealthT, next_probe_ms) == 72);
    assert!(offset_of!(PeerHealthT, consecutive_failures) == 80);
    assert!(offset_of!(PeerHealthT, ejected) == 84);
};

fn micros(ms: f64) -> u64 {
    // `as` saturates: negative or NaN gives 0, huge gives u64::MAX.
    (ms * 1000.0).round() as u64
}

/// Copies the peer client's per-peer figures (answers, failures, timeouts, hedges,
/// typical answer time, and ejection state with the time of the next probe, of every peer
/// this process has asked, in RAIDA index order) into `out`, so a host, a test or an ops
/// script can see which RAIDA is slow, down or ejected.
///
/// Call it with `out` NULL and `capacity` 0 to learn how many peers there are; `*count`
/// is then set to that number. Otherwise at most `capacity` entries are written and
/// `*count` is set to the number of peers known, which may exceed `capacity` (like
/// `snprintf`: call again with a larger array to get them all). Entries beyond those
/// written are left untouched. The same figures go to the log at most once a minute
/// while there is peer traffic.
///
/// # Returns
/// `RAIDA_HEALING_OK` (0); `RAIDA_HEALING_E_ARGUMENT` when `count` is NULL, or `out` is
/// NULL with a non-zero `capacity` (nothing is written); `RAIDA_HEALING_E_INTERNAL` if
/// the library failed (a bug). On failure the reason is in `raida_healing_last_error()`;
/// success empties it.
///
/// # Safety
/// `count` is NULL or points to a writable `size_t`; `out` is NULL or points to
/// `capacity` writable `raida_healing_peer_health_t`.
#[no_mangle]
pub unsafe extern "C" fn raida_healing_peer_health(
    out: *mut PeerHealthT,
    capacity: libc::size_t,
    count: *mut libc::size_t,
) -> c_int {
    const NAME: &str = "raida_healing_peer_health";
    enter(NAME, || {
        if count.is_null() || (out.is_null() && capacity != 0) {
            let why = "count must not be NULL, nor out with a non-zero capacity".to_string();
            return int_result(NAME, Err((RAIDA_HEALING_E_ARGUMENT, why)));
        }
        let peers = process().peers.health.snapshot();
        let now = std::time::Instant::now();
        for (i, (raida, addr, h)) in peers.iter().take(capacity).enumerate() {
            let breaker = h.breaker;
            let probing = breaker.probing_until.is_some_and(|until| now < until);
            let next_probe_ms = match breaker.next_probe {
                Some(at) if !probing => {
                    u64::try_from(at.saturating_duration_since(now).as_millis()).unwrap_or(u64::MAX)
                }
                _ => 0,
            };
            let entry = PeerHealthT {
                raida: *raida,
                ipv4: addr.ip().octets(),
                port: addr.port(),
                answers: h.answers,
                failures: h.failures,
                timeouts: h.timeouts,
                hedges: h.hedges,
                typical_us: micros(h.estimate.typical_ms),
                high_us: if h.estimate.samples == 0 {
                    0
                } else {
                    micros(h.estimate.high_ms())
                },
                ejections: h.ejections,
                probes: h.probes,
                next_probe_ms,
                consecutive_failures: breaker.consecutive_failures,
                ejected: u8::from(breaker.is_ejected()),
            };
            // SAFETY: `out` is not NULL here (capacity > 0 since we iterate) and holds
            // `capacity` writable entries by the caller's contract; `i < capacity`.
            unsafe { out.add(i).write(entry) };
        }
        // SAFETY: `count` is not NULL and writable by the caller's contract.
        unsafe { count.write(peers.len()) };
        int_result(NAME, Ok(()))
    })
}

/// The number of peer connections this process's library holds right now, across all
/// concurrent fixes and jobs (never more than RAIDA_HEALING_MAX_PEER_CONNECTIONS,
/// default 256). 0 whenever no fix or send_validate_ticket_job is running.
#[no_mangle]
pub extern "C" fn raida_healing_peer_connections() -> libc::size_t {
    enter("raida_healing_peer_connections", || {
        process().peers.budget.in_use()
    })
}
