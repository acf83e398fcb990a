//! `raida_healing_config_parse`: the library's `config.toml` reader for C programs, so a C
//! program (the test node) reads the file with exactly the rules of `raida_healing_open`.

use std::ffi::{c_char, c_int, CStr};

use crate::config_file::{self, ServerConfig};
use crate::protocol::TOTAL_RAIDA_SERVERS;

use super::entry::enter;
use super::error::{
    int_result, message_buffer, write_err, RAIDA_HEALING_E_ARGUMENT, RAIDA_HEALING_E_CONFIG,
};

/// Longest `"host:port"` the C struct holds, terminator included.
pub const RAIDA_HEALING_HOSTPORT_MAX: usize = 256;
/// The number of RAIDA servers, hence of `raida_servers` entries.
pub const RAIDA_HEALING_RAIDA_COUNT: usize = 25;
const _: () = assert!(RAIDA_HEALING_RAIDA_COUNT == TOTAL_RAIDA_SERVERS);

/// What `raida_healing_config_parse` read from a `config.toml`.
#[repr(C)]
pub struct RaidaHealingConfig {
    /// This server's RAIDA index, 0..24.
    pub raida_id: c_int,
    /// 0..255, or -1 when the file has no `coin_id`.
    pub coin_id: c_int,
    /// 1..65535, or 0 when the file has no `port`.
    pub port: c_int,
    /// The legacy `flush_freq`, 1..86400 seconds, or 0 when the file has none.
    pub flush_freq: c_int,
    /// Each RAIDA's `"host:port"` (index = RAIDA number), NUL-terminated; the port is
    /// checked to be 1..65535 and the host not empty.
    pub raida_servers: [[c_char; RAIDA_HEALING_HOSTPORT_MAX]; RAIDA_HEALING_RAIDA_COUNT],
}

/// Fills `out` from `config`; an entry too long for the C struct is an error.
fn to_c(config: &ServerConfig, out: &mut RaidaHealingConfig) -> Result<(), String> {
    out.raida_id = c_int::from(config.raida_id);
    out.coin_id = config.coin_id.map_or(-1, c_int::from);
    out.port = config.port.map_or(0, c_int::from);
    out.flush_freq = config
        .flush_freq
        .map_or(0, |v| c_int::try_from(v).unwrap_or(c_int::MAX));
    for (i, (server, slot)) in config
        .raida_servers
        .iter()
        .zip(out.raida_servers.iter_mut())
        .enumerate()
    {
        if server.len() >= RAIDA_HEALING_HOSTPORT_MAX || server.contains('\0') {
            return Err(format!(
                "raida_servers[{i}] is longer than {} bytes or holds a NUL",
                RAIDA_HEALING_HOSTPORT_MAX - 1
            ));
        }
        *slot = [0; RAIDA_HEALING_HOSTPORT_MAX];
        for (dst, &src) in slot.iter_mut().zip(server.as_bytes()) {
            *dst = src as c_char;
        }
    }
    Ok(())
}

/// Parses the text of a `config.toml` with the library's own rules (the rules of
/// `raida_healing_open`): the file must be valid TOML (the `toml` crate's parser: a UTF-8
/// BOM, comments, dotted keys and any table order are fine; a table or key defined twice,
/// `03`, control characters in strings are not), and then `raida_id` (0..24, required),
/// `raida_servers` (exactly 25 `"host:port"` strings with ports 1..65535, required),
/// `coin_id` (0..255), `port` (1..65535) and `flush_freq` (1..86400) are checked. The keys
/// sit at the top of the file or in `[server]`; every other key and table is ignored.
///
/// # Returns
/// `RAIDA_HEALING_OK` (0) with `*out` filled, or `RAIDA_HEALING_E_ARGUMENT` (NULL `text`
/// or `out`), `RAIDA_HEALING_E_CONFIG` (the file is not valid: `err` says why, as
/// `"line N: ..."` where the line is known), `RAIDA_HEALING_E_INTERNAL`. On failure `*out`
/// is unspecified. `err` (if not NULL) receives a NUL-terminated message, empty on
/// success, cut to `err_len` bytes; the same message is this thread's
/// `raida_healing_last_error()` (emptied on success). Touches no folder.
///
/// # Safety
/// `text` is NULL or a NUL-terminated string (TOML requires UTF-8); `out` is NULL or points
/// to a writable `raida_healing_config_t`; `err` is NULL or points to `err_len` writable
/// bytes.
#[no_mangle]
pub unsafe extern "C" fn raida_healing_config_parse(
    text: *const c_char,
    out: *mut RaidaHealingConfig,
    err: *mut c_char,
    err_len: libc::size_t,
) -> c_int {
    const NAME: &str = "raida_healing_config_parse";
    enter(NAME, || {
        // SAFETY: `err` is NULL or points to `err_len` writable bytes (the caller's
        // contract), not aliased by `text` or `out` for the duration of this call.
        let err = unsafe { message_buffer(err, err_len, NAME) };
        let result = if text.is_null() || out.is_null() {
            Err((
                RAIDA_HEALING_E_ARGUMENT,
                "text and out must not be NULL".to_string(),
            ))
        } else {
            // SAFETY: not NULL, NUL-terminated by the caller's contract; only read.
            let text = unsafe { CStr::from_ptr(text) };
            // SAFETY: not NULL, points to a writable raida_healing_config_t (the caller's
            // contract).
            let out = unsafe { &mut *out };
            parse_into(text, out).map_err(|why| (RAIDA_HEALING_E_CONFIG, why))
        };
        write_err(
            err,
            result.as_ref().err().map_or("", |(_, why)| why.as_str()),
        );
        int_result(NAME, result)
    })
}

/// The safe core of `raida_healing_config_parse`: `text` checked and read into `out`.
fn parse_into(text: &CStr, out: &mut RaidaHealingConfig) -> Result<(), String> {
    let text = text.to_str().map_err(|e| {
        format!(
            "not valid TOML: the text is not UTF-8 (byte {})",
            e.valid_up_to()
        )
    })?;
    let config = config_file::parse(text).map_err(|e| e.to_string())?;
    to_c(&config, out)
}
