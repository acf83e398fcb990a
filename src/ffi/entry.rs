//! The one way into the library from C. Every `#[no_mangle]` export runs its body through
//! [`enter`], which does the three things an export must never forget:
//!
//! 1. route the library's log lines to the server's log (before anything can be logged,
//!    so even a first call with a NULL argument is logged where the operator looks);
//! 2. stop a panic at the boundary: unwinding into C is undefined behaviour;
//! 3. after a panic, log it, record it as this thread's last error, and return the
//!    export's documented failure value.
//!
//! A unit test below reads src/ffi/*.rs and fails when an export's body does not call
//! `enter`, or when `catch_unwind` or the log routing appears anywhere else.

use std::panic::{catch_unwind, AssertUnwindSafe};

/// What an export returns when its body panicked, and what it tells the log about it.
pub(crate) struct OnPanic<R> {
    /// The export's failure value (a status, an error code, NULL).
    pub value: R,
    /// The consequence, for the log line "`<export>` panicked; `<consequence>`".
    pub consequence: &'static str,
}

/// Runs `body`, the whole work of the export named `export`, inside the boundary: log
/// routing first, then `body`; if it panics, the panic is logged and recorded as the
/// thread's last error ("`<export>` panicked (a bug in libraida_healing)"), and
/// `on_panic.value` is returned instead.
pub(crate) fn enter<R>(export: &'static str, on_panic: OnPanic<R>, body: impl FnOnce() -> R) -> R {
    super::host::route_log_to_host();
    // AssertUnwindSafe: after a panic, the caught value is dropped and only `on_panic`
    // is returned; state the body half-changed is guarded by the stores themselves (a
    // page lock or session is released by its guard's Drop during the unwind).
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(value) => value,
        Err(_) => {
            crate::log::error(&format!("{export} panicked; {}", on_panic.consequence));
            super::standalone::set_last_error(&panicked_message(export));
            on_panic.value
        }
    }
}

/// The last error after `export` panicked; also what an export that reports errors into a
/// caller's buffer leaves there in that case.
pub(crate) fn panicked_message(export: &str) -> String {
    format!("{export} panicked (a bug in libraida_healing)")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The source files of src/ffi, read at test time so a new file is covered too.
    fn ffi_sources() -> Vec<(String, String)> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/ffi");
        let mut files: Vec<(String, String)> = std::fs::read_dir(&dir)
            .expect("src/ffi is readable")
            .map(|entry| entry.expect("directory entry").path())
            .filter(|path| path.extension().is_some_and(|e| e == "rs"))
            .map(|path| {
                let text = std::fs::read_to_string(&path).expect("source is readable");
                (
                    path.file_name().unwrap().to_string_lossy().into_owned(),
                    text,
                )
            })
            .collect();
        files.sort();
        files
    }

    /// Each `#[no_mangle]` function of `text` (the attribute on a line of its own, as
    /// rustfmt lays out a top-level item): its name and its body (from the signature's `{`
    /// to the `}` that starts a line).
    fn exports(text: &str) -> Vec<(String, String)> {
        const ATTRIBUTE: &str = "\n#[no_mangle]\n";
        let mut found = Vec::new();
        let mut rest = text;
        while let Some(at) = rest.find(ATTRIBUTE) {
            rest = &rest[at + ATTRIBUTE.len()..];
            let fn_at = rest.find("fn ").expect("a function follows #[no_mangle]");
            let name: String = rest[fn_at + 3..]
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            let open = fn_at + rest[fn_at..].find('{').expect("a function body");
            let close = open + rest[open..].find("\n}").expect("the body's closing brace");
            found.push((name, rest[open..close].to_string()));
        }
        found
    }

    /// Whether `body` calls `enter(` (not a longer name ending in "enter").
    fn calls_enter(body: &str) -> bool {
        body.match_indices("enter(").any(|(at, _)| {
            !body[..at]
                .chars()
                .next_back()
                .is_some_and(|c| c.is_alphanumeric() || c == '_')
        })
    }

    #[test]
    fn every_export_goes_through_enter() {
        let mut names = Vec::new();
        for (file, text) in ffi_sources() {
            for (name, body) in exports(&text) {
                assert!(
                    calls_enter(&body),
                    "src/ffi/{file}: export {name} does not run its body through entry::enter"
                );
                names.push(name);
            }
        }
        // The scan found the exports (a scan that finds nothing proves nothing).
        for expected in [
            "cmd_get_ticket",
            "cmd_validate_ticket",
            "cmd_find",
            "cmd_fix",
            "send_validate_ticket_job",
            "raida_healing_open",
            "raida_healing_close",
            "raida_healing_last_error",
            "raida_healing_read_record",
            "raida_healing_version",
            "raida_healing_conn_info_size",
            "raida_healing_peer_health",
            "raida_healing_peer_connections",
            "raida_healing_config_parse",
            "raida_healing_page_count",
            "raida_healing_check_page",
        ] {
            assert!(
                names.iter().any(|n| n == expected),
                "export {expected} not found"
            );
        }
    }

    #[test]
    fn the_boundary_and_the_log_routing_live_only_here() {
        for (file, text) in ffi_sources() {
            if file == "entry.rs" {
                continue;
            }
            for forbidden in ["catch_unwind", "route_log_to_host();"] {
                assert!(
                    !text.contains(forbidden),
                    "src/ffi/{file} uses {forbidden}; exports go through entry::enter"
                );
            }
        }
    }

    #[test]
    fn the_scan_rejects_an_export_without_enter() {
        let text = "\n#[no_mangle]\npub extern \"C\" fn bare() -> i32 {\n    1\n}\n\n\
                    #[no_mangle]\npub extern \"C\" fn wrapped() -> i32 {\n    enter(\"wrapped\", x, || 1)\n}\n";
        let found = exports(text);
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].0, "bare");
        assert!(!calls_enter(&found[0].1));
        assert_eq!(found[1].0, "wrapped");
        assert!(calls_enter(&found[1].1));
        assert!(!calls_enter("{ center(1) }"));
    }

    #[test]
    fn a_panic_returns_the_fallback_and_sets_the_last_error() {
        let on_panic = OnPanic {
            value: -9,
            consequence: "returning -9",
        };
        let got = enter("test_export", on_panic, || -> i32 { panic!("test panic") });
        assert_eq!(got, -9);
        let last = super::super::standalone::raida_healing_last_error();
        // SAFETY: raida_healing_last_error returns a NUL-terminated string, valid until
        // this thread's next call into the library.
        let last = unsafe { std::ffi::CStr::from_ptr(last) };
        assert_eq!(
            last.to_str().unwrap(),
            "test_export panicked (a bug in libraida_healing)"
        );
    }

    #[test]
    fn without_a_panic_the_body_value_is_returned() {
        let on_panic = OnPanic {
            value: 0,
            consequence: "unused",
        };
        assert_eq!(enter("test_export", on_panic, || 7), 7);
    }
}
