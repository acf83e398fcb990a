//! Unpredictable bytes from the operating system (ticket ids, peer challenges).
//!
//! There is no fallback: a guessable ticket id lets anyone claim a ticket, and a guessable
//! challenge lets a forged answer pass, so when the OS cannot give random bytes the caller
//! fails rather than make either from a predictable source (logged here): get_ticket
//! answers ERROR_INTERNAL, and the peer client asks no peer (a local error each, so a fix
//! fixes nothing).

use std::fmt;

/// The OS random source failed; nothing was made from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RandomError(String);

impl fmt::Display for RandomError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the OS random source failed: {}", self.0)
    }
}

impl std::error::Error for RandomError {}

impl RandomError {
    /// A failure with the source's reason (for id sources other than the OS's).
    pub fn new(why: impl Into<String>) -> RandomError {
        RandomError(why.into())
    }
}

/// Fills `buf` from the OS CSPRNG, or fails (and logs why) without touching the meaning of
/// `buf`: its bytes must not be used then.
pub fn fill(buf: &mut [u8]) -> Result<(), RandomError> {
    #[cfg(feature = "testing")]
    let result = testing::fill(buf);
    #[cfg(not(feature = "testing"))]
    let result = os_fill(buf);
    if let Err(e) = &result {
        crate::log::error(&e.to_string());
    }
    result
}

/// The OS CSPRNG itself.
fn os_fill(buf: &mut [u8]) -> Result<(), RandomError> {
    getrandom::fill(buf).map_err(|e| RandomError(format!("getrandom: {e}")))
}

/// A random 32-bit value.
pub fn u32_from_os() -> Result<u32, RandomError> {
    let mut b = [0u8; 4];
    fill(&mut b)?;
    Ok(u32::from_ne_bytes(b))
}

/// Making the source fail, for tests of the fail-closed paths (the `testing` feature only:
/// the release library's [`fill`] is the OS source with no test branch).
#[cfg(feature = "testing")]
pub mod testing {
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::{os_fill, RandomError};

    /// Set by [`OsSourceFailure`]: the source answers as a broken one would.
    static FAIL_FOR_TESTS: AtomicBool = AtomicBool::new(false);

    /// [`super::fill`] in a test build: the OS source, unless a test made it fail.
    pub(super) fn fill(buf: &mut [u8]) -> Result<(), RandomError> {
        if FAIL_FOR_TESTS.load(Ordering::SeqCst) {
            return Err(RandomError::new("getrandom: made to fail by a test"));
        }
        os_fill(buf)
    }

    /// While this lives, every [`super::fill`] in the process fails as a broken OS source would.
    /// Process-wide: use it only in a test binary whose other tests do not need random
    /// bytes at the same time.
    #[must_use = "the source fails only while the guard lives"]
    pub struct OsSourceFailure(());

    impl OsSourceFailure {
        /// Makes the source fail until the guard is dropped.
        pub fn start() -> OsSourceFailure {
            FAIL_FOR_TESTS.store(true, Ordering::SeqCst);
            OsSourceFailure(())
        }
    }

    impl Drop for OsSourceFailure {
        fn drop(&mut self) {
            FAIL_FOR_TESTS.store(false, Ordering::SeqCst);
        }
    }
}
