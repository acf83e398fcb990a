//! A standalone fix run as root over a folder another account controls, while that
//! account renames folders under Data/.
//!
//! The rename happens at one fixed point, through the `testing` feature's hook: after the
//! fix has read the page and its peers have voted, just before the store opens the page's
//! folder to replace the page. As root the rename is made by `nobody` (setpriv), who owns
//! every folder and page below Data/; otherwise by this account. Whatever is renamed, no
//! file below Data/ ends up owned by anyone but the folder's owner (never by root), and
//! every fix answers: 241 when the page is still there to keep its owner, else 252 with
//! last_error saying why.
//!
//! The opened folder is process-wide: this binary holds one test.

use std::ffi::{CStr, CString};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

use kit::abi::take_output;
use kit::folder::Folder;
use kit::peers::HonestPeer;
use kit::wire::{fix_payload, legacy_body};
use raida_healing::ffi::exports::cmd_fix;
use raida_healing::ffi::layout::ConnInfo;
use raida_healing::ffi::standalone::{
    raida_healing_close, raida_healing_last_error, raida_healing_open,
};
use raida_healing::protocol::Coin;
use raida_healing::testing::hooks::set_before_page_replace;

/// `nobody`: the other account, when this test runs as root.
const OTHER: u32 = 65534;

fn is_root() -> bool {
    std::fs::metadata("/proc/self").unwrap().uid() == 0
}

/// Runs `mv from to` as the account that owns Data/ (nobody when root).
fn mv_as_other(from: &Path, to: &Path) {
    let status = if is_root() {
        Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", "mv"])
            .arg(from)
            .arg(to)
            .status()
    } else {
        Command::new("mv").arg(from).arg(to).status()
    }
    .unwrap();
    assert!(status.success(), "mv {} {}", from.display(), to.display());
}

/// Runs `mkdir dir` as the account that owns Data/.
fn mkdir_as_other(dir: &Path) {
    std::fs::create_dir(dir).unwrap();
    if is_root() {
        std::os::unix::fs::chown(dir, Some(OTHER), Some(OTHER)).unwrap();
    }
}

/// Gives everything below `dir` (and `dir`) to the other account, as root.
fn give_to_other(dir: &Path) {
    if !is_root() {
        return;
    }
    std::os::unix::fs::lchown(dir, Some(OTHER), Some(OTHER)).unwrap();
    if dir.is_dir() {
        for entry in std::fs::read_dir(dir).unwrap() {
            give_to_other(&entry.unwrap().path());
        }
    }
}

/// Every file and folder below `dir` whose owner is not `owner`.
fn not_owned_by(dir: &Path, owner: u32) -> Vec<(PathBuf, u32)> {
    let mut wrong = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let meta = std::fs::symlink_metadata(&path).unwrap();
        if meta.uid() != owner {
            wrong.push((path.clone(), meta.uid()));
        }
        if meta.is_dir() {
            wrong.extend(not_owned_by(&path, owner));
        }
    }
    wrong
}

/// cmd_fix with `payload` as the server calls it: the status, and last_error after it.
fn fix(payload: &[u8]) -> (u8, String) {
    let mut body = legacy_body(payload);
    // SAFETY: conn_info_t is plain C data; all-zero is what a fresh server connection holds.
    let mut ci: ConnInfo = unsafe { std::mem::zeroed() };
    ci.body = body.as_mut_ptr();
    ci.body_size = body.len() as i32;
    ci.coin_id = 6;
    // SAFETY: `ci` is ours for the call and its body holds body_size bytes.
    unsafe { cmd_fix(&mut ci) };
    take_output(&mut ci);
    // SAFETY: last_error is never NULL and stays valid until this thread's next call.
    let why = unsafe { CStr::from_ptr(raida_healing_last_error()) };
    (ci.command_status, why.to_string_lossy().into_owned())
}

/// What the other account does at the hook, with Data/01 as `den`.
#[derive(Clone, Copy, Debug)]
enum Rename {
    /// Nothing: the control case.
    Nothing,
    /// Moves the page's folder away and makes an empty one in its place.
    FolderEmptied,
    /// Moves the page's folder away and puts a copy of it (its pages, its owner) there.
    FolderSwapped,
    /// Moves the whole denomination folder away.
    DenominationGone,
}

#[test]
fn a_fix_as_root_never_leaves_a_file_of_roots_whatever_is_renamed() {
    let folder = Folder::new("owner", 0);
    let data = folder.0.join("Data");
    let den = data.join("01");
    let owner = if is_root() {
        OTHER
    } else {
        std::fs::metadata(&data).unwrap().uid()
    };
    // 13 peers vote for every coin: with this server, 14 votes, so every fix is decided
    // to write before the hook runs.
    let coins: Vec<Coin> = (0..6)
        .map(|i| Coin {
            den: 1,
            sn: 1024 * i + 5,
        })
        .collect();
    let peers: Vec<HonestPeer> = (1..=13)
        .map(|r| HonestPeer::spawn(r, coins.clone()))
        .collect();
    let servers: Vec<String> = (0..25)
        .map(|i| match i {
            1..=13 => format!("\"{}\"", peers[i - 1].peer.addr),
            _ => format!("\"127.0.0.1:{}\"", 1 + i),
        })
        .collect();
    std::fs::write(
        folder.config(),
        format!("raida_id = 0\nraida_servers = [{}]\n", servers.join(", ")),
    )
    .unwrap();
    let mut tickets = [0u32; 25];
    for t in &mut tickets[1..=13] {
        *t = 77;
    }
    for &coin in &coins {
        folder.put(coin, [0x11; 16], 1);
    }
    // The pages are the server's (mode 0640), in folders it controls.
    for &coin in &coins {
        let page = folder.page(1, coin.sn / 1024);
        std::fs::set_permissions(&page, std::os::unix::fs::PermissionsExt::from_mode(0o640))
            .unwrap();
    }
    give_to_other(&data);
    let dir = CString::new(folder.0.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a NUL-terminated path.
    assert_eq!(unsafe { raida_healing_open(dir.as_ptr()) }, 0);

    let next: Arc<Mutex<Rename>> = Arc::new(Mutex::new(Rename::Nothing));
    {
        let (next, den) = (Arc::clone(&next), den.clone());
        set_before_page_replace(Some(Box::new(move |relative: &Path| {
            let page_folder = den.join(relative.parent().unwrap().file_name().unwrap());
            let away = den.with_file_name("away");
            match std::mem::replace(&mut *next.lock().unwrap(), Rename::Nothing) {
                Rename::Nothing => {}
                Rename::FolderEmptied => {
                    mv_as_other(&page_folder, &away);
                    mkdir_as_other(&page_folder);
                }
                Rename::FolderSwapped => {
                    let copy = den.join("copy");
                    mkdir_as_other(&copy);
                    for entry in std::fs::read_dir(&page_folder).unwrap() {
                        let from = entry.unwrap().path();
                        let to = copy.join(from.file_name().unwrap());
                        std::fs::copy(&from, &to).unwrap();
                        give_to_other(&to);
                    }
                    mv_as_other(&page_folder, &away);
                    mv_as_other(&copy, &page_folder);
                }
                Rename::DenominationGone => mv_as_other(&den, &away),
            }
        })));
    }

    // (what the other account does, the fix's status, what last_error must contain)
    let cases = [
        (Rename::Nothing, 241, ""),
        (
            Rename::FolderEmptied,
            252,
            "the page file is no longer in its folder",
        ),
        (Rename::FolderSwapped, 241, ""),
        (Rename::DenominationGone, 252, "no such page file"),
    ];
    for (i, (rename, status, why)) in cases.into_iter().enumerate() {
        let coin = coins[i];
        *next.lock().unwrap() = rename;
        let (got, last_error) = fix(&legacy_payload(coin, &tickets));
        assert_eq!(got, status, "{rename:?}: {last_error}");
        if status == 252 {
            assert!(
                last_error.starts_with("Fix: writing ")
                    && last_error.contains(why)
                    && last_error.ends_with("; answering ERROR_INTERNAL"),
                "{rename:?}: {last_error}"
            );
        }
        assert_eq!(not_owned_by(&data, owner), vec![], "{rename:?}");
        // The other account puts things back for the next case.
        let away = data.join("away");
        if away.exists() {
            match rename {
                Rename::DenominationGone => mv_as_other(&away, &den),
                _ => {
                    let page_folder = den.join("00");
                    std::fs::remove_dir_all(&page_folder).unwrap();
                    mv_as_other(&away, &page_folder);
                }
            }
        }
    }
    // A page of root's in a folder the other account controls (only root can make one):
    // not rewritten as root, and said so.
    if is_root() {
        let page = folder.page(1, coins[4].sn / 1024);
        std::os::unix::fs::chown(&page, Some(0), Some(0)).unwrap();
        let (got, last_error) = fix(&legacy_payload(coins[4], &tickets));
        assert_eq!(got, 252, "{last_error}");
        assert!(
            last_error.contains(&format!(
                "the page file belongs to root in a folder another account controls \
                 (owner uid {OTHER}, mode 755); not rewritten as root"
            )),
            "{last_error}"
        );
        std::os::unix::fs::chown(&page, Some(OTHER), Some(OTHER)).unwrap();
    }
    // The pages the fixes wrote kept their mode as well as their owner.
    let written = folder.page(1, coins[2].sn / 1024);
    assert_eq!(std::fs::metadata(&written).unwrap().mode() & 0o777, 0o640);
    set_before_page_replace(None);
    raida_healing_close();
    drop(peers);
}

fn legacy_payload(coin: Coin, tickets: &[u32; 25]) -> Vec<u8> {
    fix_payload(&[coin], &[0x42; 16], tickets)
}
