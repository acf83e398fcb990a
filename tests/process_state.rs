//! What is process-wide stays in one owner (docs/process-state.md): every `static` in
//! src/ is listed here with why it may exist, so a new one fails this test until it is
//! either moved into `ffi::state::Process` or added below with its reason (and to
//! docs/process-state.md). And only the C boundary (src/ffi/) reads the environment: core
//! modules are given their settings as values.

use std::path::{Path, PathBuf};

/// Every `static` allowed in src/: (file, name, why).
const ALLOWED: &[(&str, &str, &str)] = &[
    (
        "src/ffi/state.rs",
        "PROCESS",
        "the one owner of the process's state",
    ),
    (
        "src/log.rs",
        "SINK",
        "where any line from any thread goes; set by ffi::host only",
    ),
    (
        "src/log.rs",
        "STDERR_LEVEL",
        "the stderr level; set by ffi::state from the settings",
    ),
    (
        "src/ffi/error.rs",
        "LAST_ERROR",
        "errno-like, per thread (thread_local)",
    ),
    (
        "src/ffi/host.rs",
        "LOG_TO_HOST",
        "routes log lines to the server once (std::sync::Once)",
    ),
    (
        "src/ffi/host.rs",
        "SERVER_BASE",
        "the server's load address, found once",
    ),
    (
        "src/ffi/entry.rs",
        "PANIC_AFTER_BODY",
        "testing feature: forced panic, per thread",
    ),
    (
        "src/random.rs",
        "FAIL_FOR_TESTS",
        "testing feature: the failing random source",
    ),
    (
        "src/testing/hooks.rs",
        "BEFORE_PAGE_REPLACE",
        "testing feature: the hook the page-file store calls before it replaces a page",
    ),
    // The server's symbols, bound weakly (extern, read-only from Rust).
    (
        "src/ffi/host.rs",
        "raida_healing_slot_get_page_by_sn_lock",
        "the server's symbol",
    ),
    (
        "src/ffi/host.rs",
        "raida_healing_slot_unlock_page",
        "the server's symbol",
    ),
    (
        "src/ffi/host.rs",
        "raida_healing_slot_update_free_pages_bitmap",
        "the server's symbol",
    ),
    (
        "src/ffi/host.rs",
        "raida_healing_slot_get_mfs",
        "the server's symbol",
    ),
    (
        "src/ffi/host.rs",
        "raida_healing_slot_debug",
        "the server's symbol",
    ),
    (
        "src/ffi/host.rs",
        "raida_healing_slot_warning",
        "the server's symbol",
    ),
    (
        "src/ffi/host.rs",
        "raida_healing_slot_error",
        "the server's symbol",
    ),
    (
        "src/ffi/host.rs",
        "raida_healing_slot_config",
        "the server's symbol",
    ),
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// (file relative to the crate, its text) for every .rs file below src/.
fn sources() -> Vec<(String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    files
        .into_iter()
        .map(|path| {
            let name = path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            (name, std::fs::read_to_string(&path).unwrap())
        })
        .collect()
}

/// The name a line declares as a `static`, if it does (`static`, `pub static`,
/// `pub(crate) static`, `static mut`, inside `thread_local!` or `extern` blocks too).
fn static_name(line: &str) -> Option<&str> {
    let line = line.trim_start();
    if line.starts_with("//") {
        return None;
    }
    let rest = line
        .strip_prefix("pub ")
        .or_else(|| line.strip_prefix("pub(crate) "))
        .or_else(|| line.strip_prefix("pub(super) "))
        .unwrap_or(line);
    let rest = rest.strip_prefix("static ")?;
    let rest = rest.strip_prefix("mut ").unwrap_or(rest);
    let name = rest.split(':').next()?.trim();
    (!name.is_empty() && name.chars().all(|c| c.is_alphanumeric() || c == '_')).then_some(name)
}

#[test]
fn every_static_is_the_owner_or_listed_with_its_reason() {
    let mut found = Vec::new();
    for (file, text) in sources() {
        for line in text.lines() {
            if let Some(name) = static_name(line) {
                found.push((file.clone(), name.to_string()));
            }
        }
    }
    let unlisted: Vec<_> = found
        .iter()
        .filter(|(file, name)| !ALLOWED.iter().any(|(f, n, _)| f == file && n == name))
        .collect();
    assert!(
        unlisted.is_empty(),
        "statics outside the state owner (move them into ffi::state::Process, or list them \
         here and in docs/process-state.md with why): {unlisted:?}"
    );
    let gone: Vec<_> = ALLOWED
        .iter()
        .filter(|(f, n, _)| !found.iter().any(|(file, name)| file == f && name == n))
        .collect();
    assert!(
        gone.is_empty(),
        "listed statics that no longer exist: {gone:?}"
    );
}

#[test]
fn the_scan_finds_statics_of_every_form() {
    assert_eq!(static_name("static X: u8 = 0;"), Some("X"));
    assert_eq!(
        static_name("    pub(crate) static TABLE: Mutex<T> = ..."),
        Some("TABLE")
    );
    assert_eq!(static_name("pub static mut Y: u8 = 0;"), Some("Y"));
    assert_eq!(
        static_name("        static Z: Cell<u8> = const { Cell::new(0) };"),
        Some("Z")
    );
    assert_eq!(static_name("fn f() -> &'static str {"), None);
    assert_eq!(static_name("// static W: u8"), None);
}

#[test]
fn only_the_c_boundary_reads_the_environment() {
    let readers: Vec<_> = sources()
        .into_iter()
        .filter(|(file, _)| !file.starts_with("src/ffi/") && file != "src/ffi.rs")
        .filter(|(_, text)| {
            ["env::var(", "env::var_os(", "env::vars("]
                .iter()
                .any(|call| text.contains(call))
        })
        .map(|(file, _)| file)
        .collect();
    assert!(
        readers.is_empty(),
        "core modules read the environment (give them a setting from src/settings.rs \
         instead): {readers:?}"
    );
}
