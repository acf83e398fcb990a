//! Logging without knowing where lines go.
//!
//! Every line starts with the UTC time it was written, ISO 8601 with milliseconds
//! ([`utc_timestamp`], e.g. `2026-12-06T07:01:02.345Z`), so an operator can line it up
//! with the metrics (the server's own lines carry no time).
//!
//! Inside the server, lines go to its own `debug`/`warning`/`error` log as
//! `TIME raida_healing: text` (the FFI layer installs that sink). Elsewhere (standalone
//! use by ops scripts) they go to stderr as `TIME raida_healing LEVEL: text`, quiet by default: the setting `RAIDA_HEALING_LOG`
//! (`error`, `warning`, `debug`, also `1`..`3`; `off`) sets the most detailed level shown.
//! The state owner (`src/ffi/state.rs`) sets it from the settings at the library's first
//! call ([`set_stderr_level`]); this module never reads the environment.
//!
//! The sink and the level are the library's only process-wide values outside the state
//! owner (docs/process-state.md): any line, from any module and thread, goes through them,
//! and only the C boundary writes them.

use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use parking_lot::RwLock;

/// How important a line is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Error = 1,
    Warning = 2,
    Debug = 3,
}

/// Where lines go: a function that writes one line at a level.
pub(crate) type Sink = fn(Level, &str);

static SINK: RwLock<Option<Sink>> = RwLock::new(None);

/// Routes every later line to `sink` (the server's log); `None` restores stderr.
pub fn set_sink(sink: Option<Sink>) {
    *SINK.write() = sink;
}

/// The most detailed level written to stderr: 0 (nothing) until the owner sets it.
static STDERR_LEVEL: AtomicU8 = AtomicU8::new(0);

/// Sets the most detailed level written to stderr (`None`: nothing).
pub(crate) fn set_stderr_level(level: Option<Level>) {
    STDERR_LEVEL.store(level.map_or(0, |l| l as u8), Ordering::Relaxed);
}

/// The most detailed level written to stderr.
fn stderr_level() -> Option<Level> {
    match STDERR_LEVEL.load(Ordering::Relaxed) {
        1 => Some(Level::Error),
        2 => Some(Level::Warning),
        3 => Some(Level::Debug),
        _ => None,
    }
}

/// Parses a level name; unknown names and `off` mean no logging.
pub(crate) fn parse_level(name: &str) -> Option<Level> {
    match name.trim().to_ascii_lowercase().as_str() {
        "error" | "1" => Some(Level::Error),
        "warning" | "warn" | "2" => Some(Level::Warning),
        "debug" | "3" | "all" => Some(Level::Debug),
        _ => None,
    }
}

/// Writes one line at `level`.
pub fn write(level: Level, line: &str) {
    if let Some(sink) = *SINK.read() {
        sink(level, line);
        return;
    }
    to_stderr(level, line);
}

/// Writes one line to stderr if the stderr level lets `level` through.
pub(crate) fn to_stderr(level: Level, line: &str) {
    if stderr_level().is_some_and(|max| level <= max) {
        let tag = match level {
            Level::Error => "ERROR",
            Level::Warning => "WARNING",
            Level::Debug => "DEBUG",
        };
        // Not eprintln!: it panics when stderr is a closed pipe, and a log line must never
        // turn an answer into ERROR_INTERNAL. One write per line keeps lines whole.
        let _ = std::io::Write::write_all(
            &mut std::io::stderr(),
            format!("{} raida_healing {tag}: {line}\n", utc_timestamp(SystemTime::now())).as_bytes(),
        );
    }
}

/// `at` in UTC, ISO 8601 with milliseconds: `2026-12-06T07:01:02.345Z` (a time before
/// 1970 shows as 1970-01-01T00:00:00.000Z).
pub fn utc_timestamp(at: SystemTime) -> String {
    let since = at.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (days, of_day) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's days_from_civil, inverted).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        of_day / 3600,
        of_day / 60 % 60,
        of_day % 60,
        since.subsec_millis()
    )
}

/// An error line.
pub fn error(line: &str) {
    write(Level::Error, line);
}

/// A warning line.
pub fn warning(line: &str) {
    write(Level::Warning, line);
}

/// A debug line.
pub fn debug(line: &str) {
    write(Level::Debug, line);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_utc_iso_8601_with_milliseconds() {
        let at = |ms: u64| utc_timestamp(UNIX_EPOCH + std::time::Duration::from_millis(ms));
        assert_eq!(at(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(at(951_782_400_123), "2000-02-29T00:00:00.123Z");
        assert_eq!(at(1_796_540_462_345), "2026-12-06T07:01:02.345Z");
        assert_eq!(at(4_102_444_799_999), "2099-12-31T23:59:59.999Z");
    }

    #[test]
    fn level_names() {
        assert_eq!(parse_level("ERROR"), Some(Level::Error));
        assert_eq!(parse_level("warn"), Some(Level::Warning));
        assert_eq!(parse_level("debug"), Some(Level::Debug));
        assert_eq!(parse_level("off"), None);
        assert_eq!(parse_level("nonsense"), None);
    }
}
