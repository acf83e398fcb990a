//! The claim key file: read only when it is safely the server's own, parsed strictly.
//!
//! Whoever can read the key can claim in any RAIDA's name at every keyed peer, and
//! whoever can write it can swap it: so the file must be a regular file (a symbolic link
//! is refused, never followed), owned by the account the process runs as, and readable
//! and writable by that account only (mode 0600 or stricter: 0400 is fine, any group,
//! other, execute or set-id bit is refused). Anything else is refused whole: the process
//! then makes no tags and verifies none.
//!
//! The format (what `raida-healing keygen` writes): UTF-8 text, at most 4 KiB; blank
//! lines and lines starting with `#` are ignored; otherwise each line is `name = value`
//! with `current` exactly once and `previous` at most once, each 64 hexadecimal digits
//! (32 bytes):
//!
//! ```text
//! # raida-healing claim key
//! current = 000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f
//! previous = 5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a
//! ```

use std::fmt;
use std::io::{self, Read};
use std::path::Path;

use rustix::fs::{self as rfs, FileType, Mode, OFlags};

use super::{ClaimKeys, KEY_BYTES};

/// A key file larger than this is not one.
pub const MAX_KEY_FILE_BYTES: u64 = 4096;

/// Why a key file was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyFileError {
    /// It could not be opened or read (missing, a symbolic link, no permission, ...).
    Io(String),
    /// It is not a regular file.
    NotRegular,
    /// Another account owns it.
    Owner { owner: u32, process: u32 },
    /// Its mode lets someone other than its owner in, or has execute or set-id bits.
    Mode(u32),
    /// Larger than [`MAX_KEY_FILE_BYTES`].
    TooLarge(u64),
    /// Not the documented format: the line (1-based, 0 for the file as a whole) and why.
    Format { line: usize, why: String },
}

impl fmt::Display for KeyFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyFileError::Io(why) => write!(f, "{why}"),
            KeyFileError::NotRegular => write!(f, "not a regular file"),
            KeyFileError::Owner { owner, process } => write!(
                f,
                "owned by uid {owner}, not by this process's account (uid {process})"
            ),
            KeyFileError::Mode(mode) => write!(
                f,
                "mode {mode:04o} lets others in; it must be 0600 or stricter (chmod 600)"
            ),
            KeyFileError::TooLarge(len) => {
                write!(f, "{len} bytes; a key file is at most {MAX_KEY_FILE_BYTES}")
            }
            KeyFileError::Format { line: 0, why } => write!(f, "{why}"),
            KeyFileError::Format { line, why } => write!(f, "line {line}: {why}"),
        }
    }
}

/// The keys in the file at `path`, if it is safely this process's own and well formed.
pub fn load(path: &Path) -> Result<ClaimKeys, KeyFileError> {
    let io_error = |e: io::Error| match e.raw_os_error() {
        Some(libc::ELOOP) => KeyFileError::Io(
            "a symbolic link; it is never followed (put the file itself there)".into(),
        ),
        _ => KeyFileError::Io(e.to_string()),
    };
    // O_NONBLOCK: a FIFO put in its place cannot hang the server's thread.
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
    let fd = rfs::open(path, flags, Mode::empty()).map_err(|e| io_error(e.into()))?;
    let st = rfs::fstat(&fd).map_err(|e| io_error(e.into()))?;
    if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
        return Err(KeyFileError::NotRegular);
    }
    let process = rustix::process::geteuid().as_raw();
    if st.st_uid != process {
        return Err(KeyFileError::Owner {
            owner: st.st_uid,
            process,
        });
    }
    let mode = st.st_mode & 0o7777;
    if mode & !0o600 != 0 {
        return Err(KeyFileError::Mode(mode));
    }
    let mut text = Vec::new();
    std::fs::File::from(fd)
        .take(MAX_KEY_FILE_BYTES + 1)
        .read_to_end(&mut text)
        .map_err(io_error)?;
    if text.len() as u64 > MAX_KEY_FILE_BYTES {
        return Err(KeyFileError::TooLarge(text.len() as u64));
    }
    let text = String::from_utf8(text).map_err(|_| KeyFileError::Format {
        line: 0,
        why: "not UTF-8 text".into(),
    })?;
    parse(&text)
}

/// The keys in a key file's text.
pub fn parse(text: &str) -> Result<ClaimKeys, KeyFileError> {
    let mut current = None;
    let mut previous = None;
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        let format = |why: String| KeyFileError::Format { line, why };
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let (name, value) = trimmed
            .split_once('=')
            .ok_or_else(|| format("expected `current = <64 hex digits>`".into()))?;
        let slot = match name.trim() {
            "current" => &mut current,
            "previous" => &mut previous,
            other => {
                return Err(format(format!(
                    "unknown name {other:?}; only `current` and `previous`"
                )))
            }
        };
        if slot.is_some() {
            return Err(format(format!("`{}` given twice", name.trim())));
        }
        *slot = Some(key_from_hex(value.trim()).map_err(format)?);
    }
    let current = current.ok_or_else(|| KeyFileError::Format {
        line: 0,
        why: "no `current = <64 hex digits>` line".into(),
    })?;
    Ok(ClaimKeys::new(&current, previous.as_ref()))
}

/// 32 bytes from exactly 64 hexadecimal digits.
fn key_from_hex(hex: &str) -> Result<[u8; KEY_BYTES], String> {
    let digits = hex.as_bytes();
    if digits.len() != 2 * KEY_BYTES || !digits.iter().all(u8::is_ascii_hexdigit) {
        return Err(format!(
            "a key is exactly {} hexadecimal digits ({KEY_BYTES} bytes)",
            2 * KEY_BYTES
        ));
    }
    let mut key = [0u8; KEY_BYTES];
    for (byte, pair) in key.iter_mut().zip(digits.chunks_exact(2)) {
        let pair = std::str::from_utf8(pair).map_err(|e| e.to_string())?;
        *byte = u8::from_str_radix(pair, 16).map_err(|e| e.to_string())?;
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;
    use std::path::PathBuf;

    use super::*;
    use crate::claim_auth::{ClaimFields, TagCheck, WhichKey};

    const CURRENT: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
    const PREVIOUS: &str = "5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a";

    /// A folder of its own under the system's temporary folder, removed on drop.
    struct Folder(PathBuf);

    impl Folder {
        fn new(name: &str) -> Folder {
            let path = std::env::temp_dir().join(format!(
                "raida-key-file-{name}-{}",
                std::process::id()
            ));
            let _ = std::fs::remove_dir_all(&path);
            std::fs::create_dir(&path).unwrap();
            Folder(path)
        }

        fn key_file(&self, text: &str, mode: u32) -> PathBuf {
            let path = self.0.join("claim.key");
            std::fs::write(&path, text).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            path
        }
    }

    impl Drop for Folder {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn both() -> String {
        format!("# a comment\n\ncurrent = {CURRENT}\n  previous={PREVIOUS}  \n")
    }

    #[test]
    fn the_documented_format() {
        let keys = parse(&both()).unwrap();
        assert_eq!(
            format!("{keys:?}"),
            "ClaimKeys { current: ClaimKey(id 8332), previous: Some(ClaimKey(id 36fd)) }"
        );
        let only = parse(&format!("current = {}\n", CURRENT.to_uppercase())).unwrap();
        assert_eq!(
            format!("{only:?}"),
            "ClaimKeys { current: ClaimKey(id 8332), previous: None }"
        );
        // The previous key verifies what a node with only that key tagged.
        let fields = ClaimFields {
            claimer: 1,
            peer: 2,
            coin_id: 6,
            ticket: 9,
        };
        let old = parse(&format!("current = {PREVIOUS}")).unwrap();
        assert_eq!(
            keys.check(&old.challenge(fields, 1000), fields, 1000),
            TagCheck::Verified(WhichKey::Previous)
        );
    }

    #[test]
    fn malformed_files_say_which_line_and_why() {
        let cases = [
            ("", "no `current = <64 hex digits>` line"),
            (
                &format!("previous = {PREVIOUS}\n") as &str,
                "no `current = <64 hex digits>` line",
            ),
            (
                &format!("current = {CURRENT}\ncurrent = {CURRENT}\n"),
                "line 2: `current` given twice",
            ),
            (
                &format!("# x\ncurrent: {CURRENT}\n"),
                "line 2: expected `current = <64 hex digits>`",
            ),
            (
                &format!("next = {CURRENT}\n"),
                "line 1: unknown name \"next\"; only `current` and `previous`",
            ),
            (
                &format!("current = {}\n", &CURRENT[2..]),
                "line 1: a key is exactly 64 hexadecimal digits (32 bytes)",
            ),
            (
                &format!("current = {}zz\n", &CURRENT[2..]),
                "line 1: a key is exactly 64 hexadecimal digits (32 bytes)",
            ),
            (
                &format!("current = {CURRENT} # no trailing comments\n"),
                "line 1: a key is exactly 64 hexadecimal digits (32 bytes)",
            ),
        ];
        for (text, why) in cases {
            assert_eq!(parse(text).unwrap_err().to_string(), why, "{text:?}");
        }
    }

    #[test]
    fn a_private_file_of_our_own_is_read() {
        let folder = Folder::new("private");
        for mode in [0o600, 0o400] {
            let path = folder.key_file(&both(), mode);
            assert!(load(&path).is_ok(), "mode {mode:o}");
        }
    }

    #[test]
    fn group_or_world_access_is_refused() {
        let folder = Folder::new("modes");
        for mode in [0o640, 0o604, 0o644, 0o660, 0o700, 0o610, 0o601] {
            let path = folder.key_file(&both(), mode);
            let refused = load(&path).unwrap_err();
            assert_eq!(refused, KeyFileError::Mode(mode));
            assert_eq!(
                refused.to_string(),
                format!("mode {mode:04o} lets others in; it must be 0600 or stricter (chmod 600)")
            );
        }
    }

    #[test]
    fn a_link_is_never_followed() {
        let folder = Folder::new("link");
        let target = folder.key_file(&both(), 0o600);
        let link = folder.0.join("link.key");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert_eq!(
            load(&link).unwrap_err().to_string(),
            "a symbolic link; it is never followed (put the file itself there)"
        );
    }

    #[test]
    fn not_a_file_missing_or_too_large() {
        let folder = Folder::new("kinds");
        std::fs::set_permissions(&folder.0, std::fs::Permissions::from_mode(0o700)).unwrap();
        assert_eq!(load(&folder.0).unwrap_err(), KeyFileError::NotRegular);
        assert_eq!(
            load(&folder.0.join("absent")).unwrap_err().to_string(),
            "No such file or directory (os error 2)"
        );
        let big = format!("{}current = {CURRENT}\n", "#".repeat(5000));
        let path = folder.key_file(&big, 0o600);
        assert_eq!(load(&path).unwrap_err(), KeyFileError::TooLarge(4097));
    }

    /// Another account's file is refused even when its mode is right: as root, a file
    /// given away; as any other account, a file root owns.
    #[test]
    fn another_accounts_file_is_refused() {
        let folder = Folder::new("owner");
        let process = rustix::process::geteuid().as_raw();
        let (path, owner) = if process == 0 {
            let path = folder.key_file(&both(), 0o600);
            std::os::unix::fs::chown(&path, Some(65534), None).unwrap();
            (path, 65534)
        } else {
            (PathBuf::from("/etc/passwd"), 0)
        };
        let refused = load(&path).unwrap_err();
        assert_eq!(refused, KeyFileError::Owner { owner, process });
        assert_eq!(
            refused.to_string(),
            format!("owned by uid {owner}, not by this process's account (uid {process})")
        );
    }
}
