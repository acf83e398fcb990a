//! Log lines that remote parties can cause, limited per kind for the whole process.
//!
//! A wallet, a guesser or a forger decides how often the library meets what it logs
//! about them: 100,000 forged UDP claims from 8,192 rotating sources once wrote 100,000
//! warning lines (33 MB). Limits per source cannot hold that (there are always more
//! sources than a bounded table remembers), so every such line also belongs to a
//! [`LineKind`], and each kind writes at most [`LINES_PER_MINUTE`] lines a minute in the
//! whole process. The first line of a kind after a minute in which lines were held back
//! is preceded by one line saying how many ("N more ... lines suppressed"); the count of
//! every line held back is kept per kind for the metrics. A flood of every kind at once
//! therefore writes at most `(LINES_PER_MINUTE + 1) x` [`LineKind::ALL`] lines a minute
//! (a few KiB), whatever the flood.

use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::log::{self, Level};

/// Lines of one kind the process writes per minute at most.
pub const LINES_PER_MINUTE: u32 = 3;
/// The window the limit counts over.
pub const WINDOW: Duration = Duration::from_secs(60);

macro_rules! line_kinds {
    ($($(#[$doc:meta])* $kind:ident => $name:literal,)*) => {
        /// What a limited line is about. Each kind has its own allowance.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum LineKind {
            $($(#[$doc])* $kind,)*
        }

        impl LineKind {
            /// Every kind, in this order in [`LogLimits::suppressed_counts`].
            pub const ALL: &[LineKind] = &[$(LineKind::$kind),*];

            /// The kind's name in the "suppressed" line and the metrics.
            pub const fn name(self) -> &'static str {
                match self {
                    $(LineKind::$kind => $name,)*
                }
            }
        }
    };
}

line_kinds! {
    /// validate_ticket: a claim the claim policy refused.
    ClaimNotAdmitted => "claim_refused_by_policy",
    /// validate_ticket: a source cut off for guessing, when it starts.
    GuessingCutOff => "guesser_cut_off",
    /// validate_ticket: a claim refused because its source is cut off.
    GuessingRefused => "guesser_refused",
    /// fix: a client's fix refused at once (its tickets kept turning out unknown).
    FixRefused => "fix_refused",
    /// fix: a warning about one peer (a failure, a missing address).
    FixPeer => "fix_peer",
    /// fix: a summary line at warning level (a peer looked faulty).
    FixSummary => "fix_summary",
    /// send_validate_ticket_job: a peer that failed the job.
    JobPeer => "job_peer",
}

const KINDS: usize = LineKind::ALL.len();

/// One kind's window.
#[derive(Debug, Clone, Copy, Default)]
struct KindWindow {
    /// When the current window opened (`None` before the first line).
    opened: Option<Duration>,
    /// Lines written in it.
    written: u32,
    /// Lines held back since the last "suppressed" line.
    held_back: u64,
    /// Lines held back since the process started.
    suppressed_total: u64,
}

/// What [`LogLimits::admit`] says about one line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Write it; first say that `held_back` lines of its kind were not written.
    Write { held_back: u64 },
    /// Do not write it (it is counted).
    Suppress,
}

/// Per-kind limits. The claim gate and the fix gate each hold one and write disjoint kinds:
/// the claim gate times its lines by its own clock (a test's manual one), the fix gate by
/// the instance's start, so one shared instance would mix two time bases. The metrics add
/// the two gates' counts.
pub struct LogLimits {
    kinds: Mutex<[KindWindow; KINDS]>,
    started: Instant,
}

impl Default for LogLimits {
    fn default() -> Self {
        LogLimits {
            kinds: Mutex::new([KindWindow::default(); KINDS]),
            started: Instant::now(),
        }
    }
}

impl LogLimits {
    fn index(kind: LineKind) -> usize {
        LineKind::ALL
            .iter()
            .position(|&k| k == kind)
            .expect("every kind is in ALL")
    }

    /// Whether a line of `kind` may be written at `now` (time since any fixed start).
    pub fn admit(&self, kind: LineKind, now: Duration) -> Admission {
        let mut kinds = self.kinds.lock();
        let window = &mut kinds[Self::index(kind)];
        let expired = window
            .opened
            .is_none_or(|opened| now.saturating_sub(opened) >= WINDOW);
        if expired {
            window.opened = Some(now);
            window.written = 0;
        }
        if window.written >= LINES_PER_MINUTE {
            window.held_back += 1;
            window.suppressed_total += 1;
            return Admission::Suppress;
        }
        window.written += 1;
        Admission::Write {
            held_back: std::mem::take(&mut window.held_back),
        }
    }

    /// Writes the line `build` makes at `level` when `kind` has room now; otherwise only
    /// counts it (the line is never built).
    pub fn write(&self, level: Level, kind: LineKind, build: impl FnOnce() -> String) {
        self.write_at(level, kind, self.started.elapsed(), build);
    }

    /// [`LogLimits::write`] at a given time (tests).
    pub fn write_at(
        &self,
        level: Level,
        kind: LineKind,
        now: Duration,
        build: impl FnOnce() -> String,
    ) {
        if let Admission::Write { held_back } = self.admit(kind, now) {
            if held_back > 0 {
                log::write(level, &suppressed_line(kind, held_back));
            }
            log::write(level, &build());
        }
    }

    /// A warning of `kind`, limited.
    pub fn warning(&self, kind: LineKind, build: impl FnOnce() -> String) {
        self.write(Level::Warning, kind, build);
    }

    /// `line` as a warning of `kind` within the limit; beyond it, the same line at debug
    /// level (still counted as held back): fix's per-fix lines stay in a debug log.
    pub fn warning_or_debug(&self, kind: LineKind, line: &str) {
        match self.admit(kind, self.started.elapsed()) {
            Admission::Write { held_back } => {
                if held_back > 0 {
                    log::warning(&suppressed_line(kind, held_back));
                }
                log::warning(line);
            }
            Admission::Suppress => log::debug(line),
        }
    }

    /// Lines of `kind` held back since the process started.
    pub fn suppressed(&self, kind: LineKind) -> u64 {
        self.kinds.lock()[Self::index(kind)].suppressed_total
    }

    /// Every kind with its count of lines held back, in [`LineKind::ALL`] order.
    pub fn suppressed_counts(&self) -> Vec<(LineKind, u64)> {
        let kinds = self.kinds.lock();
        LineKind::ALL
            .iter()
            .zip(kinds.iter())
            .map(|(&kind, w)| (kind, w.suppressed_total))
            .collect()
    }
}

/// The line that says how many lines of `kind` were held back.
pub fn suppressed_line(kind: LineKind, held_back: u64) -> String {
    format!(
        "log: {held_back} more {} lines suppressed (at most {LINES_PER_MINUTE} a minute per \
         kind)",
        kind.name()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn a_few_lines_a_minute_per_kind_then_one_count() {
        let limits = LogLimits::default();
        let kind = LineKind::GuessingRefused;
        let mut written = 0;
        for i in 0..100_000u64 {
            let now = Duration::from_millis(i / 2);
            if let Admission::Write { held_back } = limits.admit(kind, now) {
                assert_eq!(held_back, 0);
                written += 1;
            }
        }
        assert_eq!(written, LINES_PER_MINUTE);
        assert_eq!(limits.suppressed(kind), 100_000 - 3);
        // Another kind has its own allowance.
        assert_eq!(
            limits.admit(LineKind::FixRefused, 10 * S),
            Admission::Write { held_back: 0 }
        );
        // A minute after the window opened: lines again, the first carrying the count.
        assert_eq!(
            limits.admit(kind, 60 * S),
            Admission::Write { held_back: 99_997 }
        );
        assert_eq!(limits.admit(kind, 61 * S), Admission::Write { held_back: 0 });
        assert_eq!(limits.suppressed(kind), 99_997);
        assert_eq!(
            suppressed_line(kind, 99_997),
            "log: 99997 more guesser_refused lines suppressed (at most 3 a minute per kind)"
        );
        let counts = limits.suppressed_counts();
        assert_eq!(counts.len(), LineKind::ALL.len());
        assert!(counts.contains(&(LineKind::GuessingRefused, 99_997)));
    }

    #[test]
    fn a_suppressed_line_is_never_built() {
        let limits = LogLimits::default();
        for _ in 0..LINES_PER_MINUTE {
            limits.write_at(Level::Debug, LineKind::JobPeer, S, || "line".to_string());
        }
        limits.write_at(Level::Debug, LineKind::JobPeer, S, || {
            panic!("built a line that was suppressed")
        });
        assert_eq!(limits.suppressed(LineKind::JobPeer), 1);
    }
}
