//! Review: `raida_healing_close` releases everything the opened folder vouched for.
//!
//! A ticket is this server's proof that its store recognised some coins. Once the folder
//! that issued it is closed (and possibly another server's folder opened in its place),
//! a peer's claim must find nothing (43), not the coins of a store this process no longer
//! serves. This binary has no RAIDA server symbols, so the handlers run standalone.

use std::path::{Path, PathBuf};

use raida_healing::ffi::exports::{cmd_get_ticket, cmd_validate_ticket};
use raida_healing::ffi::layout::ConnInfo;
use raida_healing::ffi::standalone::{raida_healing_close, raida_healing_open};
use raida_healing::pagefile::page_path;
use raida_healing::protocol::Coin;
use raida_healing::store::{PageKey, PAGE_DATA_BYTES, RECORD_BYTES};

/// A server folder (config.toml for RAIDA `raida_id`, Data/ with one page), removed on
/// drop.
struct Folder(PathBuf);

impl Folder {
    fn new(tag: &str, raida_id: u8, coin: Coin, an: [u8; 16]) -> Folder {
        let dir = std::env::temp_dir().join(format!(
            "raida_review_close_{tag}_{}_{}",
            std::process::id(),
            raida_healing::random::u32_from_os().expect("OS randomness")
        ));
        let servers: Vec<String> = (0..25)
            .map(|i| format!("\"127.0.0.1:{}\"", 1 + i))
            .collect();
        std::fs::create_dir_all(dir.join("Data")).unwrap();
        std::fs::write(
            dir.join("config.toml"),
            format!(
                "raida_id = {raida_id}\nraida_servers = [{}]\n",
                servers.join(", ")
            ),
        )
        .unwrap();
        let mut page = vec![0u8; PAGE_DATA_BYTES];
        let at = (coin.sn % 1024) as usize * RECORD_BYTES;
        page[at..at + 16].copy_from_slice(&an);
        page[at + 16] = 1;
        let path = page_path(&dir.join("Data"), PageKey::of(coin).unwrap());
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, page).unwrap();
        Folder(dir)
    }

    fn open(&self) {
        let dir = std::ffi::CString::new(self.0.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a NUL-terminated path.
        assert_eq!(unsafe { raida_healing_open(dir.as_ptr()) }, 0);
    }
}

impl Drop for Folder {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(Path::new(&self.0));
    }
}

/// Calls a handler with a legacy (type 0) body around `payload`, as the server does, and
/// returns the status and the output bytes.
fn call(handler: unsafe extern "C" fn(*mut ConnInfo), payload: &[u8]) -> (u8, Vec<u8>) {
    let mut body = vec![0u8; 16];
    body.extend_from_slice(payload);
    body.extend([0x3e, 0x3e]);
    // SAFETY: conn_info_t is plain C data; all-zero is what a fresh server connection holds.
    let mut ci: ConnInfo = unsafe { std::mem::zeroed() };
    ci.body = body.as_mut_ptr();
    ci.body_size = body.len() as i32;
    ci.coin_id = 6;
    // SAFETY: `ci` is ours for the call and its body holds body_size bytes.
    unsafe { handler(&mut ci) };
    let output = if ci.output.is_null() {
        Vec::new()
    } else {
        // SAFETY: the handler malloc'ed output_size bytes, which we copy then free.
        let bytes =
            unsafe { std::slice::from_raw_parts(ci.output, ci.output_size as usize) }.to_vec();
        // SAFETY: a C malloc buffer, freed once.
        unsafe { libc::free(ci.output.cast()) };
        bytes
    };
    (ci.command_status, output)
}

#[test]
fn tickets_of_a_closed_folder_cannot_be_claimed() {
    let coin = Coin { den: 1, sn: 5 };
    let an = [0x5a; 16];
    let issuer = Folder::new("issuer", 3, coin, an);
    let other = Folder::new("other", 9, coin, [0x11; 16]);

    issuer.open();
    let mut request = coin.to_wire().to_vec();
    request.extend_from_slice(&an);
    let (status, ticket) = call(cmd_get_ticket, &request);
    assert_eq!(status, 241);
    assert_eq!(ticket.len(), 4);
    raida_healing_close();

    // This process is now RAIDA 9 with a store that does not hold that AN.
    other.open();
    let mut claim = vec![12u8];
    claim.extend_from_slice(&ticket);
    assert_eq!(call(cmd_validate_ticket, &claim), (43, Vec::new()));
    raida_healing_close();

    // Reopening the issuer does not bring the ticket back either: it lived in memory.
    issuer.open();
    assert_eq!(call(cmd_validate_ticket, &claim), (43, Vec::new()));
    raida_healing_close();
}
