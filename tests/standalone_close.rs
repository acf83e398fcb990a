//! `raida_healing_close` releases everything the opened folder vouched for.
//!
//! A ticket is this server's proof that its store recognised some coins. Once the folder
//! that issued it is closed (and possibly another server's folder opened in its place),
//! a peer's claim must find nothing (43), not the coins of a store this process no longer
//! serves. This binary has no RAIDA server symbols, so the handlers run standalone.

use kit::abi::take_output;
use kit::folder::Folder;
use kit::wire::legacy_body;
use raida_healing::ffi::exports::{cmd_get_ticket, cmd_validate_ticket};
use raida_healing::ffi::layout::ConnInfo;
use raida_healing::ffi::standalone::{raida_healing_close, raida_healing_open};
use raida_healing::protocol::Coin;

/// A server folder for RAIDA `raida_id` whose Data/ holds `coin` with `an` (MFS 1).
fn folder(tag: &str, raida_id: u8, coin: Coin, an: [u8; 16]) -> Folder {
    let folder = Folder::new(tag, raida_id);
    folder.put(coin, an, 1);
    folder
}

/// `raida_healing_open` on `folder`, which must succeed.
fn open(folder: &Folder) {
    let dir = std::ffi::CString::new(folder.0.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a NUL-terminated path.
    assert_eq!(unsafe { raida_healing_open(dir.as_ptr()) }, 0);
}

/// Calls a handler with a legacy (type 0) body around `payload`, as the server does, and
/// returns the status and the output bytes.
fn call(handler: unsafe extern "C" fn(*mut ConnInfo), payload: &[u8]) -> (u8, Vec<u8>) {
    let mut body = legacy_body(payload);
    // SAFETY: conn_info_t is plain C data; all-zero is what a fresh server connection holds.
    let mut ci: ConnInfo = unsafe { std::mem::zeroed() };
    ci.body = body.as_mut_ptr();
    ci.body_size = body.len() as i32;
    ci.coin_id = 6;
    // SAFETY: `ci` is ours for the call and its body holds body_size bytes.
    unsafe { handler(&mut ci) };
    let output = take_output(&mut ci);
    (ci.command_status, output)
}

#[test]
fn tickets_of_a_closed_folder_cannot_be_claimed() {
    let coin = Coin { den: 1, sn: 5 };
    let an = [0x5a; 16];
    let issuer = folder("issuer", 3, coin, an);
    let other = folder("other", 9, coin, [0x11; 16]);

    open(&issuer);
    let mut request = coin.to_wire().to_vec();
    request.extend_from_slice(&an);
    let (status, ticket) = call(cmd_get_ticket, &request);
    assert_eq!(status, 241);
    assert_eq!(ticket.len(), 4);
    raida_healing_close();

    // This process is now RAIDA 9 with a store that does not hold that AN.
    open(&other);
    let mut claim = vec![12u8];
    claim.extend_from_slice(&ticket);
    assert_eq!(call(cmd_validate_ticket, &claim), (43, Vec::new()));
    raida_healing_close();

    // Reopening the issuer does not bring the ticket back either: it lived in memory.
    open(&issuer);
    assert_eq!(call(cmd_validate_ticket, &claim), (43, Vec::new()));
    raida_healing_close();
}
