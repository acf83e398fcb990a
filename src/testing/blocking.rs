//! The two tools hostile-folder tests need: a FIFO where a file should be, and a watchdog
//! that fails a call that blocks instead of hanging the suite. Here rather than in the
//! test kit because src/pagefile.rs's unit tests use them too (a unit test cannot use the
//! kit: it would link a second copy of the library and its exported symbols).

use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

/// Makes a FIFO (mode 600) at `path`.
pub fn mkfifo(path: &Path) {
    rustix::fs::mknodat(
        rustix::fs::CWD,
        path,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o600),
        0,
    )
    .unwrap();
}

/// Runs `f` on another thread and fails the test if it has not finished within a
/// minute: a regression that blocks on a FIFO fails instead of hanging the suite.
pub fn within_a_minute<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(Duration::from_secs(60))
        .unwrap_or_else(|_| panic!("{what} blocked for a minute"))
}
