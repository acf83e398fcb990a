//! Authenticated claims: the 12 challenge bytes of a validate_ticket request carry a MAC
//! made with the network's claim key, so a peer that holds the key knows the claim comes
//! from a RAIDA of the network, whatever address or transport it arrives by.
//!
//! A legacy peer checks only the challenge's CRC and echoes the 16 bytes, and a peer
//! without the key sees 12 bytes as random as before: the tag changes nothing they can
//! notice. The construction, exactly (docs/wire-protocol.md states it with a vector):
//!
//! ```text
//! challenge[0..2]  = key id  = HMAC-SHA-256(key, "raida-healing claim key id v1")[0..2]
//! challenge[2]     = window mod 256, where window = unix seconds / 60
//! challenge[3..12] = HMAC-SHA-256(key, "raida-healing claim v1" || claimer || peer
//!                    || coin id || ticket (4, big-endian) || window (8, big-endian))[0..9]
//! challenge[12..16] = CRC-32 of challenge[0..12], as for any challenge
//! ```
//!
//! A verifier with the key takes the window among its own current one and the two
//! adjacent ones whose low byte is `challenge[2]`, recomputes the tag and compares in
//! constant time. So a tag is accepted by a peer whose clock reads within one window
//! (60 s) of the claimer's, and never more than two windows (120 s) after it was made.
//!
//! Everything here is a pure function of its arguments: the key file is read by
//! [`key_file`], the clock by the caller.

mod hmac;
pub mod key_file;

use std::fmt;

use hmac::HmacSha256;

/// Bytes of a claim key (256 bits; HMAC-SHA-256 gains nothing from more).
pub const KEY_BYTES: usize = 32;
/// Bytes of a challenge the tag fills (the CRC after them stays as for any challenge).
pub const TAGGED_BYTES: usize = 12;
/// Bytes of the key id at the start of a tagged challenge.
pub const KEY_ID_BYTES: usize = 2;
/// Bytes of the truncated MAC: 72 bits, so one forged claim passes with probability 2^-72.
pub const TAG_BYTES: usize = 9;
/// The length of a time window, in seconds.
pub const WINDOW_SECONDS: u64 = 60;

/// Domain separation: what the claim MAC is over (and no other MAC of the key is).
const CLAIM_LABEL: &[u8] = b"raida-healing claim v1";
/// Domain separation for the key id, so it says nothing about any claim's tag.
const KEY_ID_LABEL: &[u8] = b"raida-healing claim key id v1";

/// What a claim says, and to whom: everything the tag covers except the window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClaimFields {
    /// The RAIDA index the claim is made for (payload byte 0).
    pub claimer: u8,
    /// The RAIDA index the claim is sent to (the verifier's own index).
    pub peer: u8,
    /// The coin id of the request (header byte 7; the server checked it is its own).
    pub coin_id: u8,
    /// The ticket claimed.
    pub ticket: u32,
}

/// The time window of `unix_seconds`.
pub fn window_of(unix_seconds: u64) -> u64 {
    unix_seconds / WINDOW_SECONDS
}

/// One claim key, ready to tag.
#[derive(Clone)]
pub struct ClaimKey {
    id: [u8; KEY_ID_BYTES],
    mac: HmacSha256,
}

impl ClaimKey {
    /// The key of 32 secret bytes.
    pub fn new(secret: &[u8; KEY_BYTES]) -> ClaimKey {
        let mac = HmacSha256::new(secret);
        let mut id = [0u8; KEY_ID_BYTES];
        id.copy_from_slice(&mac.mac(&[KEY_ID_LABEL])[..KEY_ID_BYTES]);
        ClaimKey { id, mac }
    }

    /// Its id: the first bytes of a tagged challenge, public.
    pub fn id(&self) -> [u8; KEY_ID_BYTES] {
        self.id
    }

    /// The 12 challenge bytes for `fields` in window `window`.
    pub fn challenge(&self, fields: ClaimFields, window: u64) -> [u8; TAGGED_BYTES] {
        let mut challenge = [0u8; TAGGED_BYTES];
        challenge[..KEY_ID_BYTES].copy_from_slice(&self.id);
        challenge[KEY_ID_BYTES] = window as u8;
        challenge[KEY_ID_BYTES + 1..].copy_from_slice(&self.tag(fields, window));
        challenge
    }

    fn tag(&self, fields: ClaimFields, window: u64) -> [u8; TAG_BYTES] {
        let full = self.mac.mac(&[
            CLAIM_LABEL,
            &[fields.claimer, fields.peer, fields.coin_id],
            &fields.ticket.to_be_bytes(),
            &window.to_be_bytes(),
        ]);
        let mut tag = [0u8; TAG_BYTES];
        tag.copy_from_slice(&full[..TAG_BYTES]);
        tag
    }
}

impl fmt::Debug for ClaimKey {
    /// The id only: a key's secret never reaches a log.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ClaimKey(id {})", hex_id(self.id))
    }
}

/// Which loaded key verified a tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhichKey {
    Current,
    Previous,
}

/// Why a challenge that names a loaded key's id is not a valid tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadTag {
    /// Its window byte matches none of the verifier's current and adjacent windows: an
    /// old (replayed) tag, or clocks more than a window apart.
    Window,
    /// The MAC does not match: tampered, made for another peer, claimer, ticket or coin
    /// id, or with another key that has the same id.
    Mismatch,
}

/// What a claim's challenge proves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TagCheck {
    /// A valid tag: the claim comes from a holder of the network's key.
    Verified(WhichKey),
    /// No loaded key's id: random bytes (a legacy or unkeyed peer), or a key not loaded
    /// here. An unauthenticated claim.
    Untagged,
    /// A loaded key's id, but not a valid tag. An unauthenticated claim.
    Bad(BadTag),
}

/// The keys a process holds: the current one (tags and verifies) and, while operators
/// roll a new one, a previous one (verifies only).
#[derive(Debug, Clone)]
pub struct ClaimKeys {
    current: ClaimKey,
    previous: Option<ClaimKey>,
}

impl ClaimKeys {
    /// Keys from their secrets.
    pub fn new(current: &[u8; KEY_BYTES], previous: Option<&[u8; KEY_BYTES]>) -> ClaimKeys {
        ClaimKeys {
            current: ClaimKey::new(current),
            previous: previous.map(ClaimKey::new),
        }
    }

    /// The key this process tags with.
    pub fn current(&self) -> &ClaimKey {
        &self.current
    }

    /// The 12 challenge bytes of a claim sent at `unix_seconds`: tagged with the current key.
    pub fn challenge(&self, fields: ClaimFields, unix_seconds: u64) -> [u8; TAGGED_BYTES] {
        self.current.challenge(fields, window_of(unix_seconds))
    }

    /// What `challenge` (the request's first 12 body bytes) proves about a claim with
    /// `fields`, received at `unix_seconds`. At most one MAC per loaded key whose id the
    /// challenge names; none for a challenge that names no loaded key.
    pub fn check(
        &self,
        challenge: &[u8; TAGGED_BYTES],
        fields: ClaimFields,
        unix_seconds: u64,
    ) -> TagCheck {
        let mut verdict = TagCheck::Untagged;
        let keys = [
            (WhichKey::Current, Some(&self.current)),
            (WhichKey::Previous, self.previous.as_ref()),
        ];
        for (which, key) in keys {
            let Some(key) = key.filter(|key| challenge[..KEY_ID_BYTES] == key.id) else {
                continue;
            };
            let Some(window) = window_from_byte(challenge[KEY_ID_BYTES], unix_seconds) else {
                verdict = TagCheck::Bad(BadTag::Window);
                continue;
            };
            if equal_in_constant_time(&key.tag(fields, window), &challenge[KEY_ID_BYTES + 1..])
            {
                return TagCheck::Verified(which);
            }
            verdict = TagCheck::Bad(BadTag::Mismatch);
        }
        verdict
    }
}

/// The wall clock tags are made and checked by: seconds since the Unix epoch. The
/// network's servers must agree on it within a window ([`WINDOW_SECONDS`]).
pub trait WallClock: Send + Sync {
    fn unix_seconds(&self) -> u64;
}

/// The system's clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemWallClock;

impl WallClock for SystemWallClock {
    fn unix_seconds(&self) -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |since| since.as_secs())
    }
}

/// A wall clock a test sets (the `testing` feature and unit tests only).
#[cfg(any(test, feature = "testing"))]
#[derive(Debug, Default)]
pub struct ManualWallClock(pub std::sync::atomic::AtomicU64);

#[cfg(any(test, feature = "testing"))]
impl WallClock for ManualWallClock {
    fn unix_seconds(&self) -> u64 {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
    }
}

#[cfg(any(test, feature = "testing"))]
impl WallClock for std::sync::Arc<ManualWallClock> {
    fn unix_seconds(&self) -> u64 {
        self.as_ref().unix_seconds()
    }
}

/// A process's claim keys with the clock it tags and verifies by: what the peer client
/// and the claim gate share.
pub struct ClaimAuth {
    keys: ClaimKeys,
    clock: Box<dyn WallClock>,
}

impl fmt::Debug for ClaimAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClaimAuth").field("keys", &self.keys).finish()
    }
}

impl ClaimAuth {
    /// `keys` on the system clock.
    pub fn new(keys: ClaimKeys) -> ClaimAuth {
        ClaimAuth::with_clock(keys, Box::new(SystemWallClock))
    }

    /// `keys` on another clock (tests).
    pub fn with_clock(keys: ClaimKeys, clock: Box<dyn WallClock>) -> ClaimAuth {
        ClaimAuth { keys, clock }
    }

    /// The keys.
    pub fn keys(&self) -> &ClaimKeys {
        &self.keys
    }

    /// The 12 challenge bytes of a claim with `fields` sent now.
    pub fn challenge(&self, fields: ClaimFields) -> [u8; TAGGED_BYTES] {
        self.keys.challenge(fields, self.clock.unix_seconds())
    }

    /// What `challenge` proves about a claim with `fields` received at `unix_seconds`
    /// (the caller reads [`unix_seconds`](Self::unix_seconds) once per claim); a request
    /// with no challenge (the modern framings, types 4 and 5) is untagged.
    pub fn check_at(
        &self,
        challenge: Option<&[u8; TAGGED_BYTES]>,
        fields: ClaimFields,
        unix_seconds: u64,
    ) -> TagCheck {
        match challenge {
            Some(challenge) => self.keys.check(challenge, fields, unix_seconds),
            None => TagCheck::Untagged,
        }
    }

    /// The clock's reading.
    pub fn unix_seconds(&self) -> u64 {
        self.clock.unix_seconds()
    }
}

/// The keys of the key file at `path` for a process, or `None` (no tags, no verification)
/// with one error line that names `setting` and says why the file was refused. A loaded
/// file gives one debug line with the key ids (public).
pub fn load_key_file(setting: &str, path: &std::path::Path) -> Option<ClaimKeys> {
    match key_file::load(path) {
        Ok(keys) => {
            crate::log::debug(&format!(
                "{setting}={}: claims are tagged with key id {} and verified{}",
                path.display(),
                hex_id(keys.current.id),
                keys.previous
                    .as_ref()
                    .map_or(String::new(), |p| format!(
                        " (the previous key id {} is accepted too)",
                        hex_id(p.id)
                    ))
            ));
            Some(keys)
        }
        Err(why) => {
            crate::log::error(&format!(
                "{setting}={} refused: {why}; claims are neither tagged nor verified",
                path.display()
            ));
            None
        }
    }
}

fn hex_id(id: [u8; KEY_ID_BYTES]) -> String {
    format!("{:02x}{:02x}", id[0], id[1])
}

/// The window, among the verifier's current one and the two adjacent ones, whose low
/// byte is `low`; `None` when none is (three distinct bytes, so at most one matches).
fn window_from_byte(low: u8, unix_seconds: u64) -> Option<u64> {
    let now = window_of(unix_seconds);
    [now.checked_sub(1), Some(now), Some(now + 1)]
        .into_iter()
        .flatten()
        .find(|window| *window as u8 == low)
}

/// `a == b`, in a time that does not depend on where they differ.
fn equal_in_constant_time(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The vector of docs/wire-protocol.md: key `00 01 .. 1f`, claimer 3, peer 12, coin
    /// id 6, ticket 0x01020304, at 1,800,000,000 s (window 30,000,000 = 0x1c9c380).
    pub(crate) const KEY: [u8; KEY_BYTES] = {
        let mut key = [0u8; KEY_BYTES];
        let mut i = 0;
        while i < KEY_BYTES {
            key[i] = i as u8;
            i += 1;
        }
        key
    };
    const OTHER_KEY: [u8; KEY_BYTES] = [0x5a; KEY_BYTES];
    const NOW: u64 = 1_800_000_000;
    const FIELDS: ClaimFields = ClaimFields {
        claimer: 3,
        peer: 12,
        coin_id: 6,
        ticket: 0x0102_0304,
    };

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    fn current_only() -> ClaimKeys {
        ClaimKeys::new(&KEY, None)
    }

    #[test]
    fn the_documented_vector() {
        let keys = current_only();
        assert_eq!(window_of(NOW), 30_000_000);
        assert_eq!(hex(&keys.current().id()), VECTOR_KEY_ID);
        let challenge = keys.challenge(FIELDS, NOW);
        assert_eq!(hex(&challenge), VECTOR_CHALLENGE);
        let crc = crate::protocol::challenge_crc(&challenge);
        assert_eq!(format!("{crc:08x}"), VECTOR_CRC);
    }

    /// The vector's figures, also checked against the text of docs/wire-protocol.md.
    const VECTOR_KEY_ID: &str = "8332";
    const VECTOR_CHALLENGE: &str = "833280d01f4d80bbeb87ccba";
    const VECTOR_CRC: &str = "be97d295";

    #[test]
    fn the_vector_is_the_one_the_docs_state() {
        let docs = include_str!("../docs/wire-protocol.md");
        for figure in [VECTOR_KEY_ID, VECTOR_CHALLENGE, VECTOR_CRC] {
            assert!(
                docs.contains(&format!("`{figure}`")),
                "docs/wire-protocol.md does not state `{figure}`"
            );
        }
    }

    #[test]
    fn a_tag_verifies_in_the_current_and_adjacent_windows_only() {
        let keys = current_only();
        let made = keys.challenge(FIELDS, NOW);
        let verified = TagCheck::Verified(WhichKey::Current);
        // NOW is the first second of its window.
        for seconds in [NOW - 60, NOW - 1, NOW, NOW + 59, NOW + 60, NOW + 119] {
            assert_eq!(keys.check(&made, FIELDS, seconds), verified, "at {seconds}");
        }
        for seconds in [NOW - 61, NOW + 120, NOW + 3600] {
            assert_eq!(
                keys.check(&made, FIELDS, seconds),
                TagCheck::Bad(BadTag::Window),
                "at {seconds}"
            );
        }
        // 256 windows later the byte names the verifier's own window again, whose tag
        // differs: still refused.
        assert_eq!(
            keys.check(&made, FIELDS, NOW + 256 * 60),
            TagCheck::Bad(BadTag::Mismatch)
        );
    }

    #[test]
    fn any_changed_field_or_bit_is_a_bad_tag() {
        let keys = current_only();
        let made = keys.challenge(FIELDS, NOW);
        let mismatch = TagCheck::Bad(BadTag::Mismatch);
        let changed = [
            ClaimFields { claimer: 4, ..FIELDS },
            ClaimFields { peer: 13, ..FIELDS },
            ClaimFields { coin_id: 7, ..FIELDS },
            ClaimFields {
                ticket: 0x0102_0305,
                ..FIELDS
            },
        ];
        for fields in changed {
            assert_eq!(keys.check(&made, fields, NOW), mismatch, "{fields:?}");
        }
        for byte in KEY_ID_BYTES + 1..TAGGED_BYTES {
            for bit in 0..8 {
                let mut tampered = made;
                tampered[byte] ^= 1 << bit;
                assert_eq!(keys.check(&tampered, FIELDS, NOW), mismatch);
            }
        }
        // The window byte moved to an adjacent window: that window's tag differs.
        let mut shifted = made;
        shifted[KEY_ID_BYTES] = shifted[KEY_ID_BYTES].wrapping_add(1);
        assert_eq!(keys.check(&shifted, FIELDS, NOW), mismatch);
    }

    #[test]
    fn another_key_or_random_bytes_are_untagged() {
        let keys = current_only();
        let theirs = ClaimKeys::new(&OTHER_KEY, None).challenge(FIELDS, NOW);
        assert_ne!(theirs[..2], keys.current().id());
        assert_eq!(keys.check(&theirs, FIELDS, NOW), TagCheck::Untagged);
        // The legacy module's fixed challenge.
        let legacy: [u8; 12] = core::array::from_fn(|i| i as u8);
        assert_eq!(keys.check(&legacy, FIELDS, NOW), TagCheck::Untagged);
    }

    #[test]
    fn rotation_accepts_the_previous_key_and_tags_with_the_current() {
        let rolled = ClaimKeys::new(&OTHER_KEY, Some(&KEY));
        let by_old = current_only().challenge(FIELDS, NOW);
        assert_eq!(
            rolled.check(&by_old, FIELDS, NOW),
            TagCheck::Verified(WhichKey::Previous)
        );
        let by_new = rolled.challenge(FIELDS, NOW);
        assert_eq!(
            rolled.check(&by_new, FIELDS, NOW),
            TagCheck::Verified(WhichKey::Current)
        );
        assert_eq!(by_new, ClaimKeys::new(&OTHER_KEY, None).challenge(FIELDS, NOW));
        // A node that has only the old key cannot verify the new one.
        assert_eq!(
            current_only().check(&by_new, FIELDS, NOW),
            TagCheck::Untagged
        );
    }

    #[test]
    fn window_zero_has_no_window_before_it() {
        let keys = current_only();
        let made = keys.challenge(FIELDS, 0);
        assert_eq!(made[2], 0);
        assert_eq!(
            keys.check(&made, FIELDS, 0),
            TagCheck::Verified(WhichKey::Current)
        );
        assert_eq!(window_from_byte(255, 0), None);
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let shown = format!("{:?}", ClaimKeys::new(&KEY, Some(&OTHER_KEY)));
        assert_eq!(
            shown,
            "ClaimKeys { current: ClaimKey(id 8332), previous: Some(ClaimKey(id 36fd)) }"
        );
    }

    #[test]
    fn claim_auth_tags_and_checks_by_its_clock() {
        let clock = std::sync::Arc::new(ManualWallClock::default());
        clock.0.store(NOW, std::sync::atomic::Ordering::SeqCst);
        let auth = ClaimAuth::with_clock(current_only(), Box::new(clock.clone()));
        let made = auth.challenge(FIELDS);
        assert_eq!(made, current_only().challenge(FIELDS, NOW));
        let verified = TagCheck::Verified(WhichKey::Current);
        assert_eq!(auth.check_at(Some(&made), FIELDS, auth.unix_seconds()), verified);
        assert_eq!(auth.check_at(None, FIELDS, auth.unix_seconds()), TagCheck::Untagged);
        clock.0.store(NOW + 119, std::sync::atomic::Ordering::SeqCst);
        assert_eq!(auth.check_at(Some(&made), FIELDS, auth.unix_seconds()), verified);
        clock.0.store(NOW + 120, std::sync::atomic::Ordering::SeqCst);
        assert_eq!(
            auth.check_at(Some(&made), FIELDS, auth.unix_seconds()),
            TagCheck::Bad(BadTag::Window)
        );
        assert!(SystemWallClock.unix_seconds() > NOW - 10 * 365 * 86_400);
    }

    #[test]
    fn constant_time_comparison() {
        assert!(equal_in_constant_time(b"abc", b"abc"));
        assert!(!equal_in_constant_time(b"abc", b"abd"));
        assert!(!equal_in_constant_time(b"abc", b"ab"));
    }
}
