//! The metrics at the boundary: a snapshot collected from the process state's parts
//! ([`collect`]), the `raida_healing_metrics_text` export, and the writer thread that
//! keeps `RAIDA_HEALING_METRICS_FILE` up to date.
//!
//! # The writer thread
//!
//! The library starts no thread unless the setting `RAIDA_HEALING_METRICS_FILE` is set.
//! When it is, the state owner holds a [`MetricsWriter`] and the first call into the
//! library, once the state is made, starts one thread (`raida-metrics`) that writes the
//! file at once and then every `RAIDA_HEALING_METRICS_INTERVAL_MS` (default 15 s), idle
//! or not, so the file's mtime tells a live server from a wedged or dead one. It holds
//! each lock only while copying figures out (never while rendering or writing), and a
//! failed write is counted and logged at most once a minute; no command ever waits for
//! it or fails because of it.
//!
//! - **Process exit:** the thread is never joined; the process ends it. The file keeps
//!   the figures of the last write (at most one interval old) and stops being rewritten,
//!   which is what the stale-file alert watches. A process killed between creating the
//!   temporary file and renaming it leaves `.<name>.<pid>.tmp`, which node_exporter
//!   ignores.
//! - **`raida_healing_close`:** writes the file once more before it returns, so an ops
//!   script's last figures are in it; the thread keeps running while the process lives.
//! - **fork:** a child has no writer thread and does not start one (the parent's keeps
//!   writing the same file; two processes rewriting one file would mix their figures).
//!   `raida_healing_metrics_text` works in the child.

use std::ffi::c_char;
use std::path::Path;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Once;
use std::time::{Duration, Instant, UNIX_EPOCH};

use parking_lot::Mutex;

use crate::claims::{ClaimCounts, Transport};
use crate::metrics::file::MetricsFile;
use crate::metrics::{
    render, ClaimCount, ConnectionFigures, PeerFigures, PoolFigures, Snapshot, ThrottleFigures,
};
use crate::peers::HealthTable;
use crate::protocol::TOTAL_RAIDA_SERVERS;
use crate::tickets::{POOL_CAPACITY, POOL_MEMORY_BOUND};

use super::entry::enter;
use super::error::caller_buffer;
use super::host::Host;
use super::state::{process, Process};

/// A failed write is logged at most this often.
const FAILURE_LOG_INTERVAL: Duration = Duration::from_secs(60);

/// This server's RAIDA index and peers: the server's config, else the opened folder's.
fn node_config(process: &Process) -> Option<crate::commands::NodeConfig> {
    if let Some(host) = Host::get() {
        return host.node_config().ok();
    }
    process.opened.read().as_ref().map(|o| o.config.clone())
}

/// Lines held back per kind by the claim gate's and the fix gate's log limits, summed
/// (a kind is written by one of them; a sum stays right if that ever changes).
fn suppressed_log_lines(process: &Process) -> Vec<(&'static str, u64)> {
    let claims = process.claims.log_limits().suppressed_counts();
    let fixes = process.fixes.log_limits().suppressed_counts();
    claims
        .iter()
        .zip(&fixes)
        .map(|(&(kind, a), &(_, b))| (kind.name(), a + b))
        .collect()
}

/// Every peer the health table knows, one entry per RAIDA index: counters summed over the
/// addresses it had, gauges from the address the config gives it now (else the last).
fn peer_figures(
    health: &HealthTable,
    configured: &[Option<std::net::SocketAddrV4>; TOTAL_RAIDA_SERVERS],
) -> Vec<PeerFigures> {
    let now = Instant::now();
    // Each with whether its address is the configured one.
    let mut peers: Vec<(PeerFigures, bool)> = Vec::new();
    for (raida, addr, h) in health.snapshot() {
        let breaker = h.breaker;
        let probing = breaker.probing_until.is_some_and(|until| now < until);
        let next_probe_seconds = match breaker.next_probe {
            Some(at) if !probing => at.saturating_duration_since(now).as_secs_f64(),
            _ => 0.0,
        };
        let current = PeerFigures {
            peer: raida,
            answers: h.answers,
            failures: h.failures,
            timeouts: h.timeouts,
            hedges: h.hedges,
            ejections: h.ejections,
            probes: h.probes,
            ejected: breaker.is_ejected(),
            consecutive_failures: breaker.consecutive_failures,
            next_probe_seconds,
            typical_answer_seconds: h.estimate.typical_ms / 1000.0,
            high_answer_seconds: if h.estimate.samples == 0 {
                0.0
            } else {
                h.estimate.high_ms() / 1000.0
            },
        };
        let is_configured = configured.get(usize::from(raida)) == Some(&Some(addr));
        match peers.last_mut().filter(|(p, _)| p.peer == raida) {
            None => peers.push((current, is_configured)),
            Some((earlier, earlier_configured)) => {
                let gauges = if *earlier_configured {
                    *earlier
                } else {
                    current
                };
                *earlier = PeerFigures {
                    answers: earlier.answers + current.answers,
                    failures: earlier.failures + current.failures,
                    timeouts: earlier.timeouts + current.timeouts,
                    hedges: earlier.hedges + current.hedges,
                    ejections: earlier.ejections + current.ejections,
                    probes: earlier.probes + current.probes,
                    ..gauges
                };
                *earlier_configured |= is_configured;
            }
        }
    }
    peers.into_iter().map(|(p, _)| p).collect()
}

/// The claim gate's counters as (result, count) pairs.
fn claim_results(c: ClaimCounts) -> [(&'static str, u64); 5] {
    [
        ("granted", c.granted),
        ("already_claimed", c.already_claimed),
        ("no_such_ticket", c.no_such_ticket),
        ("refused_by_policy", c.refused_by_policy),
        ("throttled", c.throttled),
    ]
}

/// Every figure of the process now, collected from the parts that keep them.
pub(super) fn collect(process: &Process) -> Snapshot {
    let config = node_config(process);
    let configured = config
        .as_ref()
        .map_or([None; TOTAL_RAIDA_SERVERS], |c| c.peers);
    let tickets = &process.tickets;
    let units_free = tickets.free_capacity() as u64;
    let pool = tickets.counts();
    let counts = process.claims.counts();
    let mut claims = Vec::new();
    for (transport, c) in [
        ("tcp", counts.tcp),
        ("udp", counts.udp),
        ("unknown", counts.no_address),
    ] {
        for (result, count) in claim_results(c) {
            if count > 0 {
                claims.push(ClaimCount {
                    result,
                    transport,
                    count,
                });
            }
        }
    }
    let mut claim_tags = Vec::new();
    for (transport, c) in [
        ("tcp", counts.tcp),
        ("udp", counts.udp),
        ("unknown", counts.no_address),
    ] {
        for (tag, count) in [
            ("verified", c.verified),
            ("unverified", c.unverified),
            ("bad_tag", c.bad_tag),
        ] {
            if count > 0 {
                claim_tags.push(ClaimCount {
                    result: tag,
                    transport,
                    count,
                });
            }
        }
    }
    let budget = &process.peers.budget;
    Snapshot {
        raida: config.map(|c| c.raida_no),
        version: env!("CARGO_PKG_VERSION").to_string(),
        start_time_seconds: process
            .started
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs_f64(),
        boundary: process.command_stats.snapshot(),
        fix: process.fix_stats.snapshot(),
        peers: peer_figures(&process.peers.health, &configured),
        connections: ConnectionFigures {
            in_use: budget.in_use() as u64,
            limit: budget.limit() as u64,
            waits: budget.waits(),
        },
        pool: PoolFigures {
            tickets: tickets.live() as u64,
            coins: tickets.coins_held() as u64,
            units: (POOL_CAPACITY as u64).saturating_sub(units_free),
            units_limit: POOL_CAPACITY as u64,
            memory_bound_bytes: POOL_MEMORY_BOUND as u64,
            issued: Some(pool.issued),
            expired: Some(pool.expired),
            refused_full: Some(pool.refused_full),
        },
        claims,
        claim_tags,
        throttle: Some(ThrottleFigures {
            tcp_sources: process.claims.tracked(Transport::Stream) as u64,
            udp_sources: process.claims.tracked(Transport::Datagram) as u64,
            limit: crate::claims::MAX_TRACKED_SOURCES as u64,
            tcp_cut_off: process.claims.cut_off(Transport::Stream) as u64,
            udp_cut_off: process.claims.cut_off(Transport::Datagram) as u64,
        }),
        suppressed_log_lines: suppressed_log_lines(process),
        file_write_failures: process
            .metrics_writer
            .as_ref()
            .map_or(0, |w| w.failures.load(Ordering::Relaxed)),
    }
}

/// The writer of the metrics file: its thread (started once, by [`MetricsWriter::start_once`])
/// and `raida_healing_close` share it. Held by the state owner.
pub(super) struct MetricsWriter {
    file: MetricsFile,
    interval: Duration,
    /// The process that started the thread (0: not started; a forked child does not write).
    pid: AtomicU32,
    failures: AtomicU64,
    /// Serialises writes (the thread's and close's), and holds when a failure was last
    /// logged and the failures since the last success.
    turn: Mutex<(Option<Instant>, u64)>,
    started: Once,
}

impl MetricsWriter {
    /// A writer of `path` every `interval`, when `path` names a file (else logged, `None`).
    pub(super) fn new(path: &Path, interval: Duration) -> Option<MetricsWriter> {
        let Some(file) = MetricsFile::new(path) else {
            crate::log::error(&format!(
                "RAIDA_HEALING_METRICS_FILE={} names no file; no metrics file is written",
                path.display()
            ));
            return None;
        };
        Some(MetricsWriter {
            file,
            interval,
            pid: AtomicU32::new(0),
            failures: AtomicU64::new(0),
            turn: Mutex::new((None, 0)),
            started: Once::new(),
        })
    }

    /// Writes the file once now; a failure is counted and logged (rate limited).
    fn write_now(&self, process: &Process) {
        let mut log = self.turn.lock();
        let text = render(&collect(process));
        match self.file.write(text.as_bytes()) {
            Ok(()) => {
                if log.1 > 0 {
                    crate::log::warning(&format!(
                        "metrics: {} written again after {} failed writes",
                        self.file.path().display(),
                        log.1
                    ));
                    *log = (None, 0);
                }
            }
            Err(why) => {
                self.failures.fetch_add(1, Ordering::Relaxed);
                let now = Instant::now();
                log.1 += 1;
                let due = log
                    .0
                    .is_none_or(|at| now.duration_since(at) >= FAILURE_LOG_INTERVAL);
                if due {
                    crate::log::error(&format!(
                        "metrics: {why} ({} failed writes so far; commands are not affected; \
                         next report in a minute at the earliest)",
                        self.failures.load(Ordering::Relaxed)
                    ));
                    log.0 = Some(now);
                }
            }
        }
    }

    /// Starts the writer thread, once per process (a forked child inherits "started" and
    /// starts none).
    pub(super) fn start_once(&'static self, process: &'static Process) {
        self.started.call_once(|| {
            self.pid.store(std::process::id(), Ordering::Relaxed);
            let started = std::thread::Builder::new()
                .name("raida-metrics".to_string())
                .stack_size(256 * 1024)
                .spawn(move || {
                    block_signals();
                    loop {
                        self.write_now(process);
                        std::thread::sleep(self.interval);
                    }
                });
            if let Err(why) = started {
                crate::log::error(&format!(
                    "metrics: cannot start the writer thread ({why}); no metrics file is written"
                ));
            }
        });
    }
}

/// Blocks every asynchronous signal on the calling thread (the writer): a server that
/// takes SIGTERM with `sigwait` in one thread, all others blocking it, must never have it
/// delivered to ours instead (its default action would end the process).
fn block_signals() {
    let mut all = std::mem::MaybeUninit::<libc::sigset_t>::uninit();
    // SAFETY: sigfillset initialises the set it is given; pthread_sigmask reads it and
    // changes only this thread's mask (NULL: the old mask is not wanted).
    unsafe {
        libc::sigfillset(all.as_mut_ptr());
        libc::pthread_sigmask(libc::SIG_BLOCK, all.as_ptr(), std::ptr::null_mut());
    }
}

/// Writes the metrics file once more now (from `raida_healing_close`), when this process
/// started its writer.
pub(super) fn write_now() {
    let process = process();
    if let Some(writer) = &process.metrics_writer {
        if writer.pid.load(Ordering::Relaxed) == std::process::id() {
            writer.write_now(process);
        }
    }
}

/// Writes the current metrics, in the Prometheus text format (the same text as the file
/// `RAIDA_HEALING_METRICS_FILE` names, docs/metrics.md), into `buf`, NUL-terminated, when
/// it fits whole (`capacity` greater than its length); otherwise writes an empty string
/// there (when `capacity` is not 0), never a part. Works whether or not the variable is
/// set, without a thread.
///
/// Call it with `buf` NULL and `capacity` 0 to learn the length, then with a buffer of at
/// least length + 1 bytes; the text may grow between two calls, so call again while the
/// result is not below `capacity`.
///
/// # Returns
/// The text's length in bytes, without the NUL (always more than 0); 0 if the library
/// failed (a bug; `raida_healing_last_error()` says where).
///
/// # Safety
/// `buf` is NULL or points to `capacity` writable bytes.
#[no_mangle]
pub unsafe extern "C" fn raida_healing_metrics_text(
    buf: *mut c_char,
    capacity: libc::size_t,
) -> libc::size_t {
    enter("raida_healing_metrics_text", || {
        let text = render(&collect(process()));
        // SAFETY: the caller's contract (NULL gives an empty slice).
        let out = unsafe { caller_buffer(buf, capacity) };
        if out.len() > text.len() {
            out[..text.len()].copy_from_slice(text.as_bytes());
            out[text.len()] = 0;
        } else if let Some(first) = out.first_mut() {
            *first = 0;
        }
        text.len()
    })
}
