//! The metrics at the boundary: a snapshot collected from the process state's parts
//! ([`collect`]), the `raida_healing_metrics_text` export, and the writer thread that
//! keeps `RAIDA_HEALING_METRICS_FILE` up to date.
//!
//! # The writer thread
//!
//! The library starts no thread unless `RAIDA_HEALING_METRICS_FILE` is set. When it is,
//! the first call into the library starts one thread (`raida-metrics`) that writes the
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
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::LazyLock;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, UNIX_EPOCH};

use parking_lot::{Condvar, Mutex};

use crate::metrics::file::MetricsFile;
use crate::metrics::{render, ConnectionFigures, PeerFigures, PoolFigures, Snapshot};
use crate::peers::{budget, health};
use crate::protocol::TOTAL_RAIDA_SERVERS;
use crate::tickets::{POOL_CAPACITY, POOL_MEMORY_BOUND};

use super::entry::enter;
use super::error::caller_buffer;
use super::host::Host;
use super::state::{COMMAND_STATS, FIX_STATS, OPENED, START_TIME, TICKETS};

/// The file the metrics go to (unset: no file, no thread).
pub(super) const FILE_VAR: &str = "RAIDA_HEALING_METRICS_FILE";
/// How often it is rewritten, in milliseconds.
pub(super) const INTERVAL_VAR: &str = "RAIDA_HEALING_METRICS_INTERVAL_MS";
const DEFAULT_INTERVAL: Duration = Duration::from_millis(15_000);
/// The interval's range: at least 100 ms, at most an hour.
const MIN_INTERVAL_MS: u64 = 100;
const MAX_INTERVAL_MS: u64 = 3_600_000;
/// A failed write is logged at most this often.
const FAILURE_LOG_INTERVAL: Duration = Duration::from_secs(60);

/// This server's RAIDA index: the server's config, else the opened folder's.
fn raida_no() -> Option<u8> {
    if let Some(host) = Host::get() {
        return host.node_config().ok().map(|c| c.raida_no);
    }
    OPENED.read().as_ref().map(|o| o.config.raida_no)
}

/// Every peer the health table knows, one entry per RAIDA index: counters summed over the
/// addresses it had, gauges from the address the config gives it now (else the last).
fn peer_figures(
    configured: &[Option<std::net::SocketAddrV4>; TOTAL_RAIDA_SERVERS],
) -> Vec<PeerFigures> {
    let now = Instant::now();
    // Each with whether its address is the configured one.
    let mut peers: Vec<(PeerFigures, bool)> = Vec::new();
    for (raida, addr, h) in health::snapshot() {
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

/// Every figure of the process now.
pub(super) fn collect() -> Snapshot {
    let raida = raida_no();
    let configured = Host::get()
        .and_then(|h| h.node_config().ok())
        .or_else(|| OPENED.read().as_ref().map(|o| o.config.clone()))
        .map_or([None; TOTAL_RAIDA_SERVERS], |c| c.peers);
    let units_free = TICKETS.free_slots() as u64;
    Snapshot {
        raida,
        version: env!("CARGO_PKG_VERSION").to_string(),
        start_time_seconds: START_TIME
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs_f64(),
        boundary: COMMAND_STATS.snapshot(),
        fix: FIX_STATS.snapshot(),
        peers: peer_figures(&configured),
        connections: ConnectionFigures {
            in_use: budget::in_use() as u64,
            limit: budget::limit() as u64,
            waits: budget::waits(),
        },
        pool: PoolFigures {
            tickets: TICKETS.live() as u64,
            coins: TICKETS.coins_held() as u64,
            units: (POOL_CAPACITY as u64).saturating_sub(units_free),
            units_limit: POOL_CAPACITY as u64,
            memory_bound_bytes: POOL_MEMORY_BOUND as u64,
            issued: None,
            expired: None,
            refused_full: None,
        },
        claims: Vec::new(),
        throttle: None,
        file_write_failures: WRITER
            .get()
            .and_then(Option::as_ref)
            .map_or(0, |w| w.failures.load(Ordering::Relaxed)),
    }
}

/// The writer of the metrics file, shared by its thread and `raida_healing_close`.
struct Writer {
    file: MetricsFile,
    interval: Duration,
    /// The process that started the thread (a forked child does not write).
    pid: u32,
    failures: AtomicU64,
    /// When a failure was last logged, and failures since.
    log: Mutex<(Option<Instant>, u64)>,
    /// Serialises writes (the thread's and close's) and wakes the thread early.
    turn: Mutex<()>,
    wake: Condvar,
}

/// The writer, once the first call into the library has looked at the environment
/// (`None`: no file asked for, or it could not be started).
static WRITER: OnceLock<Option<Arc<Writer>>> = OnceLock::new();

/// The interval for a value of `RAIDA_HEALING_METRICS_INTERVAL_MS`: a number clamped to
/// 100 ..= 3,600,000; anything else gives the default (logged when not empty).
pub(super) fn interval_from(value: Option<&str>) -> Duration {
    match value.map(str::trim) {
        None | Some("") => DEFAULT_INTERVAL,
        Some(v) => match v.parse::<u64>() {
            Ok(ms) => Duration::from_millis(ms.clamp(MIN_INTERVAL_MS, MAX_INTERVAL_MS)),
            Err(_) => {
                crate::log::warning(&format!(
                    "{INTERVAL_VAR}={v:?} is not a number of milliseconds; using {}",
                    DEFAULT_INTERVAL.as_millis()
                ));
                DEFAULT_INTERVAL
            }
        },
    }
}

impl Writer {
    /// Writes the file once now; a failure is counted and logged (rate limited).
    fn write_now(&self) {
        let _turn = self.turn.lock();
        let text = render(&collect());
        match self.file.write(text.as_bytes()) {
            Ok(()) => {
                let mut log = self.log.lock();
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
                let mut log = self.log.lock();
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

    /// The thread's loop: write, wait an interval, forever.
    fn run(self: Arc<Writer>) {
        block_signals();
        loop {
            self.write_now();
            let mut turn = self.turn.lock();
            let _ = self.wake.wait_for(&mut turn, self.interval);
        }
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

/// Starts the writer thread the first time the library is entered, when
/// `RAIDA_HEALING_METRICS_FILE` is set (`entry` calls this for every export).
pub(super) fn start_writer_once() {
    LazyLock::force(&START_TIME);
    WRITER.get_or_init(|| {
        let path = std::env::var_os(FILE_VAR)?;
        if path.is_empty() {
            return None;
        }
        let Some(file) = MetricsFile::new(Path::new(&path)) else {
            crate::log::error(&format!(
                "{FILE_VAR}={} names no file; no metrics file is written",
                Path::new(&path).display()
            ));
            return None;
        };
        let writer = Arc::new(Writer {
            file,
            interval: interval_from(std::env::var(INTERVAL_VAR).ok().as_deref()),
            pid: std::process::id(),
            failures: AtomicU64::new(0),
            log: Mutex::new((None, 0)),
            turn: Mutex::new(()),
            wake: Condvar::new(),
        });
        let thread = Arc::clone(&writer);
        let started = std::thread::Builder::new()
            .name("raida-metrics".to_string())
            .stack_size(256 * 1024)
            .spawn(move || thread.run());
        match started {
            Ok(_) => Some(writer),
            Err(why) => {
                crate::log::error(&format!(
                    "metrics: cannot start the writer thread ({why}); no metrics file is written"
                ));
                None
            }
        }
    });
}

/// Writes the metrics file once more now (from `raida_healing_close`), when this process
/// started its writer.
pub(super) fn write_now() {
    if let Some(Some(writer)) = WRITER.get() {
        if writer.pid == std::process::id() {
            writer.write_now();
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
        let text = render(&collect());
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
