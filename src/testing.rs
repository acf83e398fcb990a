//! Test tools the library's own unit tests share with the test kit (test-kit/, which
//! re-exports them): only with the `testing` feature, never in the release library.

pub mod blocking;
pub mod hooks;
