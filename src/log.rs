//! Logging without knowing where lines go.
//!
//! Inside the server, lines go to its own `debug`/`warning`/`error` log (the FFI layer
//! installs that sink). Elsewhere (standalone use by ops scripts) they go to stderr as
//! `raida_healing LEVEL: text`, quiet by default: the environment variable
//! `RAIDA_HEALING_LOG` (`error`, `warning`, `debug`, also `1`..`3`; `off`, unset or
//! anything else = nothing) sets the most detailed level shown. It is read once, at the
//! first line logged, so set it before loading the library or before its first call.

use std::sync::OnceLock;

use parking_lot::RwLock;

/// How important a line is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Error = 1,
    Warning = 2,
    Debug = 3,
}

/// Where lines go: a function that writes one line at a level.
pub type Sink = fn(Level, &str);

static SINK: RwLock<Option<Sink>> = RwLock::new(None);

/// Routes every later line to `sink` (the server's log); `None` restores stderr.
pub fn set_sink(sink: Option<Sink>) {
    *SINK.write() = sink;
}

/// The stderr level from `RAIDA_HEALING_LOG`, read once.
fn stderr_level() -> Option<Level> {
    static LEVEL: OnceLock<Option<Level>> = OnceLock::new();
    *LEVEL.get_or_init(|| {
        parse_level(
            std::env::var("RAIDA_HEALING_LOG")
                .ok()
                .as_deref()
                .unwrap_or("off"),
        )
    })
}

/// Parses a level name; unknown names and `off` mean no logging.
pub fn parse_level(name: &str) -> Option<Level> {
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

/// Writes one line to stderr if `RAIDA_HEALING_LOG` lets `level` through.
pub fn to_stderr(level: Level, line: &str) {
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
            format!("raida_healing {tag}: {line}\n").as_bytes(),
        );
    }
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
    fn level_names() {
        assert_eq!(parse_level("ERROR"), Some(Level::Error));
        assert_eq!(parse_level("warn"), Some(Level::Warning));
        assert_eq!(parse_level("debug"), Some(Level::Debug));
        assert_eq!(parse_level("off"), None);
        assert_eq!(parse_level("nonsense"), None);
    }
}
