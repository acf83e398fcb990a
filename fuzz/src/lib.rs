//! Fuzz harness for raida_healing.
//!
//! Every input runs twice: once through the exported `cmd_*` with a `conn_info_t` over a
//! host that this binary plays itself ([`host`], [`abi`]), exactly the path the server
//! takes, and once through `commands::Node::run` over [`model::ModelStore`] with a ticket
//! pool whose clock and live count the harness controls. Both answers are checked against
//! the documented shape ([`shape`]) and against an oracle written from the wire document
//! ([`oracle`]); the pool's live count shows that a rejected request leaves no ticket.
//!
//! Input layout (all targets): byte 0 selects the encryption type (`TYPES[b % 5]`; 0xFF
//! means `ci->body` is NULL), byte 1 holds target-specific flags, the rest is the request
//! body exactly as the server hands it to a handler (challenge, payload and `3E 3E` for
//! types 0-2; payload, HMAC and `3E 3E` for types 4-5).

pub mod abi;
pub mod host;
pub mod model;
pub mod oracle;
pub mod peer;
pub mod shape;

pub mod targets;

/// Expands to a whole command fuzz target (the binary's `#![no_main]` aside): the
/// server's symbols ([`host_symbols!`]) and a libFuzzer entry that feeds every input to one
/// long-lived runner of type `$runner` (from [`targets`]), kept per thread; inputs shorter
/// than the two header bytes are skipped.
#[macro_export]
macro_rules! command_target {
    ($runner:ty) => {
        $crate::host_symbols!();

        thread_local! {
            static STATE: ::std::cell::RefCell<$runner> =
                ::std::cell::RefCell::new(<$runner>::default());
        }

        ::libfuzzer_sys::fuzz_target!(|data: &[u8]| {
            if let Some(input) = $crate::Input::parse(data) {
                STATE.with(|state| state.borrow_mut().run(input));
            }
        });
    };
}

/// The healing commands: the library's own list (src/commands/table.rs).
pub use raida_healing::commands::Command;

/// The encryption types the server hands to handlers: 0, 1, 2 (legacy framing, MD5 in
/// fix) and 4, 5 (modern framing, SHA-256 in fix).
pub const TYPES: [i32; 5] = [0, 1, 2, 4, 5];

/// One decoded fuzz input.
#[derive(Debug, Clone, Copy)]
pub struct Input<'a> {
    pub encryption_type: i32,
    pub flags: u8,
    pub body: Option<&'a [u8]>,
}

impl<'a> Input<'a> {
    /// Decodes the input layout described in the crate docs; `None` for inputs shorter
    /// than the two header bytes.
    pub fn parse(data: &'a [u8]) -> Option<Input<'a>> {
        let (&selector, rest) = data.split_first()?;
        let (&flags, body) = rest.split_first()?;
        Some(Input {
            encryption_type: TYPES[usize::from(selector) % TYPES.len()],
            flags,
            body: (selector != 0xFF).then_some(body),
        })
    }

    /// The body with its framing removed, if it has one (for counting records).
    pub fn payload_len(&self) -> usize {
        oracle::payload(self.encryption_type, self.body).map_or(0, <[u8]>::len)
    }
}
