//! Every export keeps its promise after a panic: each one, made to panic right after its
//! body (write-back included) by the `testing` feature's `PanicAfterBody`, returns its
//! documented fallback and leaves "<export> panicked (a bug in libraida_healing)" as this
//! thread's last error. An export that bypassed the boundary would unwind out of the call
//! and fail this test; an export in the header that this test does not call fails it too.

use std::ffi::{c_char, CStr, CString};

use kit::folder::Folder;
use kit::wire::{coins_wire, legacy_body};
use raida_healing::commands::Command;
use raida_healing::ffi::audit::{raida_healing_check_page, raida_healing_page_count};
use raida_healing::ffi::config::{raida_healing_config_parse, RaidaHealingConfig};
use raida_healing::ffi::error::{RAIDA_HEALING_E_INTERNAL, RAIDA_HEALING_OK};
use raida_healing::ffi::exports;
use raida_healing::ffi::health::{
    raida_healing_peer_connections, raida_healing_peer_health, PeerHealthT,
};
use raida_healing::ffi::job::send_validate_ticket_job;
use raida_healing::ffi::layout::ConnInfo;
use raida_healing::ffi::metrics::raida_healing_metrics_text;
use raida_healing::ffi::standalone::{
    raida_healing_close, raida_healing_conn_info_size, raida_healing_last_error,
    raida_healing_open, raida_healing_read_record, raida_healing_version,
};
use raida_healing::ffi::testing::PanicAfterBody;
use raida_healing::protocol::Coin;

/// This thread's last error.
fn last_error() -> String {
    // SAFETY: a NUL-terminated string owned by the library, read before the next call.
    unsafe { CStr::from_ptr(raida_healing_last_error()) }
        .to_string_lossy()
        .into_owned()
}

/// Runs `call` with `export` made to panic after its body; the export's result, and
/// checks the last error the panic left.
fn panicking<R>(export: &'static str, call: impl FnOnce() -> R) -> R {
    let value = {
        let _panic = PanicAfterBody::start(export);
        call()
    };
    assert_eq!(
        last_error(),
        format!("{export} panicked (a bug in libraida_healing)"),
        "{export}"
    );
    value
}

/// The whole metrics text, as a C caller gets it: the length first, then the text.
fn metrics_text() -> String {
    // SAFETY: NULL with capacity 0 asks for the length only.
    let length = unsafe { raida_healing_metrics_text(std::ptr::null_mut(), 0) };
    assert!(length > 0);
    let mut buffer = vec![1 as c_char; length + 64];
    // SAFETY: `buffer.len()` writable bytes.
    let again = unsafe { raida_healing_metrics_text(buffer.as_mut_ptr(), buffer.len()) };
    assert!(again < buffer.len());
    // SAFETY: NUL-terminated by the export, within the buffer.
    let text = unsafe { CStr::from_ptr(buffer.as_ptr()) }
        .to_str()
        .unwrap()
        .to_string();
    assert_eq!(text.len(), again);
    text
}

/// The functions the committed header declares.
fn header_functions() -> Vec<String> {
    let header = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("include/raida_healing.h"),
    )
    .expect("the header is readable");
    let mut names = Vec::new();
    for line in header.lines() {
        let declares = line.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
            && !line.starts_with("typedef")
            && !line.starts_with("extern");
        if let (true, Some(open)) = (declares, line.find('(')) {
            let name = line[..open].rsplit([' ', '*']).next().unwrap_or_default();
            names.push(name.to_string());
        }
    }
    names
}

/// A handler's answer to `payload` with a panic forced after its write-back: status,
/// whether `output` was left NULL.
fn handler(export: &'static str, call: unsafe extern "C" fn(*mut ConnInfo), payload: &[u8]) {
    let mut body = legacy_body(payload);
    // SAFETY: conn_info_t is plain C data; all-zero is what a fresh server connection holds.
    let mut ci: ConnInfo = unsafe { std::mem::zeroed() };
    ci.body = body.as_mut_ptr();
    ci.body_size = body.len() as i32;
    // SAFETY: a valid conn_info_t owned by this thread; its body holds body_size bytes.
    panicking(export, || unsafe { call(&mut ci) });
    assert_eq!(ci.command_status, 252, "{export}");
    assert!(ci.output.is_null(), "{export}");
    assert_eq!(ci.output_size, 0, "{export}");
}

#[test]
fn every_export_returns_its_fallback_after_a_panic() {
    let _turn = kit::serial();
    let folder = Folder::new("boundary", 3);
    let coin = Coin { den: 1, sn: 7 };
    folder.put(coin, [7; 16], 1);
    let dir = CString::new(folder.0.as_os_str().as_encoded_bytes()).unwrap();
    let mut called = Vec::new();

    // Opening succeeds inside, then the panic turns it into E_INTERNAL; the folder is
    // open for the handlers below.
    called.push("raida_healing_open");
    // SAFETY: a NUL-terminated path.
    let code = panicking("raida_healing_open", || unsafe {
        raida_healing_open(dir.as_ptr())
    });
    assert_eq!(code, RAIDA_HEALING_E_INTERNAL);

    // Every handler of the command table, each with a request that gets an answer with a
    // body where the command has one for it (get_ticket's ticket id, find's matches), so
    // the panic comes after a write-back that malloc'ed.
    let mut ticket_payload = coins_wire(&[coin]);
    ticket_payload.extend_from_slice(&[7; 16]);
    let mut find_payload = ticket_payload.clone();
    find_payload.extend_from_slice(&[0; 16]);
    for &command in Command::ALL {
        let payload = match command {
            Command::Find => find_payload.clone(),
            Command::ValidateTicket => vec![1, 0, 0, 0, 9],
            _ => ticket_payload.clone(),
        };
        called.push(command.export());
        handler(command.export(), exports::handler(command), &payload);
    }

    called.push("raida_healing_read_record");
    let (mut an, mut mfs) = ([0u8; 16], 0u8);
    // SAFETY: 16 and 1 writable bytes.
    let code = panicking("raida_healing_read_record", || unsafe {
        raida_healing_read_record(1, 7, an.as_mut_ptr(), &mut mfs)
    });
    assert_eq!(code, RAIDA_HEALING_E_INTERNAL);

    called.push("raida_healing_close");
    panicking("raida_healing_close", || raida_healing_close());

    called.push("raida_healing_last_error");
    let empty = panicking("raida_healing_last_error", || raida_healing_last_error());
    // SAFETY: the fallback is a static empty C string.
    assert_eq!(unsafe { CStr::from_ptr(empty) }.to_bytes(), b"");

    called.push("raida_healing_version");
    let version = panicking("raida_healing_version", || raida_healing_version());
    // SAFETY: the fallback is a static empty C string.
    assert_eq!(unsafe { CStr::from_ptr(version) }.to_bytes(), b"");

    for (export, size_fn) in [
        (
            "raida_healing_conn_info_size",
            raida_healing_conn_info_size as extern "C" fn() -> usize,
        ),
        ("raida_healing_page_count", raida_healing_page_count),
        (
            "raida_healing_peer_connections",
            raida_healing_peer_connections,
        ),
    ] {
        called.push(export);
        assert_eq!(panicking(export, || size_fn()), 0, "{export}");
    }

    called.push("raida_healing_peer_health");
    let mut count = 0usize;
    // SAFETY: NULL with capacity 0 asks for the count only; `count` is writable.
    let code = panicking("raida_healing_peer_health", || unsafe {
        raida_healing_peer_health(std::ptr::null_mut::<PeerHealthT>(), 0, &mut count)
    });
    assert_eq!(code, RAIDA_HEALING_E_INTERNAL);

    called.push("raida_healing_config_parse");
    let text = CString::new(std::fs::read(folder.config()).unwrap()).unwrap();
    // SAFETY: plain C data; all-zero is a valid value.
    let mut config: RaidaHealingConfig = unsafe { std::mem::zeroed() };
    let mut err = [0 as c_char; 128];
    // SAFETY: a NUL-terminated text, a writable struct and `err.len()` writable bytes.
    let code = panicking("raida_healing_config_parse", || unsafe {
        raida_healing_config_parse(text.as_ptr(), &mut config, err.as_mut_ptr(), err.len())
    });
    assert_eq!(code, RAIDA_HEALING_E_INTERNAL);
    assert_eq!(config.raida_id, 3, "the body ran before the panic");

    called.push("raida_healing_check_page");
    let mut why = [0 as c_char; 128];
    // SAFETY: a NUL-terminated path; no path buffer; `why.len()` writable bytes.
    let code = panicking("raida_healing_check_page", || unsafe {
        raida_healing_check_page(
            dir.as_ptr(),
            0,
            std::ptr::null_mut(),
            0,
            why.as_mut_ptr(),
            why.len(),
        )
    });
    assert_eq!(code, RAIDA_HEALING_E_INTERNAL);

    called.push("send_validate_ticket_job");
    // SAFETY: NULL is allowed.
    let job = panicking("send_validate_ticket_job", || unsafe {
        send_validate_ticket_job(std::ptr::null_mut())
    });
    assert!(job.is_null());

    called.push("raida_healing_metrics_text");
    let mut small = [1 as c_char; 8];
    // SAFETY: `small.len()` writable bytes.
    let length = panicking("raida_healing_metrics_text", || unsafe {
        raida_healing_metrics_text(small.as_mut_ptr(), small.len())
    });
    assert_eq!(length, 0);
    assert_eq!(
        small[0], 0,
        "the body ran: a text too long for the buffer leaves \"\""
    );

    // Without a forced panic, the same calls succeed: the panics above were the test's.
    // SAFETY: a NUL-terminated path.
    let reopened = unsafe { raida_healing_open(dir.as_ptr()) };
    assert_eq!(reopened, RAIDA_HEALING_OK);
    // Every panic above is counted once, by export, in the metrics (RAIDA 3's folder).
    let text = metrics_text();
    for export in &called {
        let line = format!("raida_healing_panics_total{{raida=\"3\",export=\"{export}\"}} 1\n");
        assert!(text.contains(&line), "{line} in\n{text}");
    }
    assert_eq!(
        text.matches("raida_healing_panics_total{").count(),
        called.len()
    );
    raida_healing_close();
    assert_eq!(last_error(), "");

    let mut declared = header_functions();
    declared.sort();
    called.sort();
    assert_eq!(
        called, declared,
        "every export in the header is checked here"
    );
}
