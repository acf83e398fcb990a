//! Wire facts shared by every command: status codes, how a request body is framed for
//! each encryption type, coin records, and the pass/fail bitfield.
//!
//! Everything here is a pure function of bytes; nothing touches the server.

/// Defines [`Status`] and [`Status::ALL`] from one list, so the two cannot differ.
macro_rules! statuses {
    ($($(#[doc = $doc:literal])* $name:ident = $code:literal,)*) => {
        /// The status byte a handler leaves in `ci->command_status`.
        ///
        /// This list is the one source of the status codes: the header's `RAIDA_STATUS_*`
        /// macros (src/ffi/constants.rs) and the fuzz oracle are checked against it at
        /// compile time, the Python wire helpers read the header, and `make test` checks
        /// the table of docs/wire-protocol.md against the header.
        #[repr(u8)]
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Status {
            $($(#[doc = $doc])* $name = $code,)*
        }

        impl Status {
            /// Every status a healing handler can answer, in code order.
            pub const ALL: [Status; [$($code),*].len()] = [$(Status::$name),*];
        }
    };
}

statuses! {
    /// The body is too short, too long or not the exact size the command needs.
    InvalidPacketLength = 16,
    /// A RAIDA index outside 0..25.
    WrongRaida = 18,
    /// The request has no body at all.
    EmptyRequest = 36,
    /// The payload is not a whole number of coin records.
    CoinsNotDiv = 39,
    /// A coin's denomination or page does not exist on this server.
    InvalidSnOrDenomination = 40,
    /// The ticket pool is full.
    NoTicketSlot = 42,
    /// The ticket is unknown or has expired.
    NoTicketFound = 43,
    /// This RAIDA has already claimed the ticket.
    TicketClaimedAlready = 44,
    /// fix: this client's recent fixes named tickets the peers did not know, or this
    /// server's allowance of failed claims at its peers is kept for clients in good
    /// standing; refused at once, no peer asked (the server's ERROR_REQUEST_RATE).
    RequestRate = 160,
    /// find: no coin matched either AN.
    FindNeither = 208,
    /// find: every coin matched its AN.
    FindAllAn = 209,
    /// find: every coin matched its PAN.
    FindAllPan = 210,
    /// find: anything else; the body has one result byte per coin.
    FindMixed = 211,
    /// Every coin passed (get_ticket) or was fixed (fix).
    AllPass = 241,
    /// No coin passed or was fixed.
    AllFail = 242,
    /// Some coins passed; the body starts with a bitfield.
    Mixed = 243,
    /// validate_ticket: the claim is recorded.
    Success = 250,
    /// Something inside the module failed; the request had no effect it can report.
    Internal = 252,
    /// The response buffer could not be allocated.
    MemoryAlloc = 254,
}

impl Status {
    /// The byte on the wire.
    pub fn code(self) -> u8 {
        self as u8
    }

    /// The status for a wire byte, if it is one a healing handler uses.
    pub fn from_code(code: u8) -> Option<Status> {
        Status::ALL.into_iter().find(|s| s.code() == code)
    }
}

/// What a command answers: a status and the body the server sends after the header
/// (the server appends the `3E 3E` trailer itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: Status,
    pub body: Body,
}

impl Response {
    /// A status with no body.
    pub fn status(status: Status) -> Response {
        Response {
            status,
            body: Body::default(),
        }
    }

    /// A status with a body.
    pub fn with_body(status: Status, body: impl Into<Body>) -> Response {
        Response {
            status,
            body: body.into(),
        }
    }
}

/// The bytes of a response body: built by the command, or shared with the ticket pool,
/// so that a claim answers a ticket's coins without copying them (the C boundary then
/// copies them once, into the buffer the server frees). Compares, and reads, as bytes.
#[derive(Clone, Default)]
pub struct Body(BodyBytes);

#[derive(Clone)]
enum BodyBytes {
    Owned(Vec<u8>),
    Shared(std::sync::Arc<[u8]>),
}

impl Default for BodyBytes {
    fn default() -> Self {
        BodyBytes::Owned(Vec::new())
    }
}

impl Body {
    /// The bytes as a vector of their own (no copy when the body was built as one).
    pub fn into_vec(self) -> Vec<u8> {
        match self.0 {
            BodyBytes::Owned(bytes) => bytes,
            BodyBytes::Shared(bytes) => bytes.to_vec(),
        }
    }
}

impl std::ops::Deref for Body {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match &self.0 {
            BodyBytes::Owned(bytes) => bytes,
            BodyBytes::Shared(bytes) => bytes,
        }
    }
}

impl AsRef<[u8]> for Body {
    fn as_ref(&self) -> &[u8] {
        self
    }
}

impl From<Vec<u8>> for Body {
    fn from(bytes: Vec<u8>) -> Body {
        Body(BodyBytes::Owned(bytes))
    }
}

impl From<std::sync::Arc<[u8]>> for Body {
    fn from(bytes: std::sync::Arc<[u8]>) -> Body {
        Body(BodyBytes::Shared(bytes))
    }
}

impl std::fmt::Debug for Body {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        <[u8] as std::fmt::Debug>::fmt(self, f)
    }
}

impl PartialEq for Body {
    fn eq(&self, other: &Body) -> bool {
        **self == **other
    }
}

impl Eq for Body {}

impl PartialEq<[u8]> for Body {
    fn eq(&self, other: &[u8]) -> bool {
        **self == *other
    }
}

impl PartialEq<&[u8]> for Body {
    fn eq(&self, other: &&[u8]) -> bool {
        **self == **other
    }
}

impl PartialEq<Vec<u8>> for Body {
    fn eq(&self, other: &Vec<u8>) -> bool {
        **self == **other
    }
}

impl<const N: usize> PartialEq<[u8; N]> for Body {
    fn eq(&self, other: &[u8; N]) -> bool {
        **self == *other
    }
}

impl PartialEq<Body> for Vec<u8> {
    fn eq(&self, other: &Body) -> bool {
        **self == **other
    }
}

impl From<Status> for Response {
    fn from(status: Status) -> Response {
        Response::status(status)
    }
}

/// Bytes of the challenge that opens a legacy (types 0, 1, 2) body.
pub(crate) const LEGACY_CHALLENGE_BYTES: usize = 16;
/// Bytes of the `3E 3E` trailer that closes every body.
pub(crate) const TRAILER_BYTES: usize = 2;
/// The trailer itself.
pub const TRAILER: [u8; 2] = [0x3E, 0x3E];
/// Bytes of the HMAC that follows the payload of a modern (types 4, 5) body.
pub(crate) const MODERN_HMAC_BYTES: usize = 32;
/// Number of RAIDA servers in a network.
pub(crate) const TOTAL_RAIDA_SERVERS: usize = 25;
/// The command group of every healing command, in a request header's group byte.
pub const HEALING_GROUP: u8 = 2;
/// Healing command bytes (group [`HEALING_GROUP`]), as the command table names them.
pub const GET_TICKET: u8 = 40;
/// validate_ticket: a peer claims a ticket (also what the peer client sends).
pub const VALIDATE_TICKET: u8 = 50;
/// find: which AN a server holds.
pub const FIND: u8 = 60;
/// fix: rewrite ANs on the peers' votes.
pub const FIX: u8 = 80;
/// Bytes of an authenticity number.
pub const AN_BYTES: usize = 16;
/// Bytes of a coin record on the wire: denomination (1) and serial number (4).
pub const COIN_BYTES: usize = 5;

/// How a request body wraps the command's payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    /// Encryption types 0, 1, 2: a 16-byte challenge, the payload, `3E 3E`.
    Legacy,
    /// Encryption types 4, 5: the payload, a 32-byte HMAC, `3E 3E`.
    Modern,
}

impl Framing {
    /// Types 4 and 5 are modern; every other type is framed the legacy way, as the
    /// legacy module did (the server refuses unknown types before a handler runs).
    pub fn for_encryption_type(encryption_type: i32) -> Framing {
        match encryption_type {
            4 | 5 => Framing::Modern,
            _ => Framing::Legacy,
        }
    }

    /// The command's payload inside `body`, or `None` when the body is too short to hold
    /// the framing at all (the caller answers [`Status::InvalidPacketLength`]).
    pub fn payload(self, body: &[u8]) -> Option<&[u8]> {
        match self {
            Framing::Legacy => {
                let end = body.len().checked_sub(TRAILER_BYTES)?;
                body.get(LEGACY_CHALLENGE_BYTES..end)
            }
            Framing::Modern => {
                let end = body.len().checked_sub(MODERN_HMAC_BYTES + TRAILER_BYTES)?;
                body.get(..end)
            }
        }
    }
}

impl Framing {
    /// The 12 bytes that open a legacy body's challenge (what a claim's tag fills), or
    /// `None` for the modern framing, which has no challenge, and for a body too short.
    pub fn challenge(self, body: &[u8]) -> Option<&[u8; 12]> {
        match self {
            Framing::Legacy => body.first_chunk::<12>(),
            Framing::Modern => None,
        }
    }
}

/// Splits a payload of fixed-size records after the legacy size rules: fewer than
/// `min_len` bytes is [`Status::InvalidPacketLength`], a length that is not
/// `fixed + k * record` is [`Status::CoinsNotDiv`].
pub(crate) fn check_record_payload(
    payload: Option<&[u8]>,
    min_len: usize,
    fixed: usize,
    record: usize,
) -> Result<&[u8], Status> {
    let payload = payload.ok_or(Status::InvalidPacketLength)?;
    if payload.len() < min_len {
        return Err(Status::InvalidPacketLength);
    }
    if (payload.len() - fixed) % record != 0 {
        return Err(Status::CoinsNotDiv);
    }
    Ok(payload)
}

/// A coin as one integer: its 5 wire bytes (den, then sn big-endian) read as a number.
/// Equal coins have equal keys; the order means nothing beyond searching.
pub(crate) type CoinKey = u64;

/// One coin: a denomination and a serial number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Coin {
    pub den: i8,
    pub sn: u32,
}

impl Coin {
    /// Reads the 5-byte wire record (den, big-endian sn). `bytes` must hold 5 bytes.
    #[inline]
    pub fn from_wire(bytes: &[u8]) -> Coin {
        let [den, sn @ ..]: [u8; COIN_BYTES] = bytes[..COIN_BYTES].try_into().expect("5 bytes");
        Coin {
            den: den as i8,
            sn: u32::from_be_bytes(sn),
        }
    }

    /// The 5-byte wire record.
    #[inline]
    pub fn to_wire(self) -> [u8; COIN_BYTES] {
        let sn = self.sn.to_be_bytes();
        [self.den as u8, sn[0], sn[1], sn[2], sn[3]]
    }

    /// This coin as one integer ([`CoinKey`]).
    #[inline]
    pub fn key(self) -> CoinKey {
        Coin::key_of_wire(&self.to_wire())
    }

    /// The [`CoinKey`] of a coin's 5 wire bytes, without decoding the coin.
    #[inline(always)]
    pub fn key_of_wire(&[den, sn @ ..]: &[u8; COIN_BYTES]) -> CoinKey {
        CoinKey::from(den) << 32 | CoinKey::from(u32::from_be_bytes(sn))
    }
}

/// Reads a 16-byte value at `at`. The caller guarantees the bytes exist.
#[inline]
pub(crate) fn an_at(bytes: &[u8], at: usize) -> [u8; AN_BYTES] {
    let mut an = [0u8; AN_BYTES];
    an.copy_from_slice(&bytes[at..at + AN_BYTES]);
    an
}

/// The pass bitfield of get_ticket and fix: `(n + 7) / 8` bytes, coin `i` is bit `i % 8`
/// of byte `i / 8`, 1 = pass.
pub fn bitfield(passed: &[bool]) -> Vec<u8> {
    let mut bits = vec![0u8; passed.len().div_ceil(8)];
    for (i, _) in passed.iter().enumerate().filter(|(_, &p)| p) {
        bits[i / 8] |= 1 << (i % 8);
    }
    bits
}

/// The answer shape shared by get_ticket and fix: all (241), none (242, no body) or some
/// (243, bitfield), with `suffix` (a ticket id, or nothing) after the bitfield or alone.
pub(crate) fn pass_fail_response(passed: &[bool], suffix: &[u8]) -> Response {
    let count = passed.iter().filter(|&&p| p).count();
    if count == 0 {
        Response::status(Status::AllFail)
    } else if count == passed.len() {
        Response::with_body(Status::AllPass, suffix.to_vec())
    } else {
        let mut body = bitfield(passed);
        body.extend_from_slice(suffix);
        Response::with_body(Status::Mixed, body)
    }
}

/// The bytes of a legacy challenge before its CRC-32: random in a peer request today; the
/// place an authenticated claim carries its MAC.
pub(crate) const CHALLENGE_CORE_BYTES: usize = 12;
/// Those bytes.
pub type ChallengeCore = [u8; CHALLENGE_CORE_BYTES];

/// Where the fields of a legacy (type 0) request header are (docs/wire-protocol.md).
pub(crate) mod request_header {
    use std::ops::Range;

    /// Bytes in the header.
    pub const BYTES: usize = 32;
    /// The cloud id, 1.
    pub const CLOUD_ID: usize = 0;
    /// The RAIDA index the request is addressed to.
    pub const RAIDA: usize = 2;
    /// The command group ([`HEALING_GROUP`](super::HEALING_GROUP)).
    pub const GROUP: usize = 4;
    /// The command byte.
    pub const COMMAND: usize = 5;
    /// The coin id, big-endian.
    pub const COIN_ID: Range<usize> = 6..8;
    /// Always 1.
    pub const ONE: usize = 8;
    /// The body length, big-endian.
    pub const BODY_LENGTH: Range<usize> = 22..24;
}

/// Where the fields of a legacy (type 0) response header are (docs/wire-protocol.md).
pub(crate) mod response_header {
    use std::ops::Range;

    /// Bytes in the header.
    pub const BYTES: usize = 32;
    /// The answering RAIDA's index.
    pub const RAIDA: usize = 0;
    /// The status.
    pub const STATUS: usize = 2;
    /// The body size, 24 bits big-endian.
    pub const BODY_SIZE: Range<usize> = 9..12;
    /// The request's 16-byte challenge, echoed.
    pub const CHALLENGE: Range<usize> = 16..32;
}

/// The CRC-32 (IEEE, as zlib) that seals a challenge's 12-byte core.
pub fn challenge_crc(challenge12: &[u8]) -> u32 {
    crc32fast::hash(challenge12)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_framing_skips_challenge_and_trailer() {
        let body: Vec<u8> = (0..23).collect();
        assert_eq!(
            Framing::Legacy.payload(&body),
            Some(&[16u8, 17, 18, 19, 20][..])
        );
        assert_eq!(Framing::Legacy.payload(&body[..18]), Some(&[][..]));
        assert_eq!(Framing::Legacy.payload(&body[..17]), None);
        assert_eq!(Framing::Legacy.payload(&[]), None);
    }

    #[test]
    fn modern_framing_drops_hmac_and_trailer() {
        let body: Vec<u8> = (0..39).collect();
        assert_eq!(Framing::Modern.payload(&body), Some(&[0u8, 1, 2, 3, 4][..]));
        assert_eq!(Framing::Modern.payload(&body[..34]), Some(&[][..]));
        assert_eq!(Framing::Modern.payload(&body[..33]), None);
    }

    #[test]
    fn framing_by_type() {
        for t in [0, 1, 2, 3, -1, 6, 200] {
            assert_eq!(Framing::for_encryption_type(t), Framing::Legacy);
        }
        assert_eq!(Framing::for_encryption_type(4), Framing::Modern);
        assert_eq!(Framing::for_encryption_type(5), Framing::Modern);
    }

    #[test]
    fn bitfield_layout() {
        let passed = [
            true, false, true, false, false, false, false, false, false, true,
        ];
        assert_eq!(bitfield(&passed), vec![0b0000_0101, 0b0000_0010]);
        assert_eq!(bitfield(&[]), Vec::<u8>::new());
        assert_eq!(bitfield(&[true; 8]), vec![0xff]);
    }

    #[test]
    fn coin_round_trip() {
        let c = Coin {
            den: -8,
            sn: 0x0102_0304,
        };
        assert_eq!(c.to_wire(), [0xf8, 1, 2, 3, 4]);
        assert_eq!(Coin::from_wire(&c.to_wire()), c);
    }

    #[test]
    fn crc_vector() {
        let bytes: Vec<u8> = (0..12).collect();
        assert_eq!(challenge_crc(&bytes), 0x9270_c965);
    }

    #[test]
    fn bodies_compare_as_bytes_however_held() {
        let shared: std::sync::Arc<[u8]> = vec![1, 2, 3].into();
        let owned = Body::from(vec![1, 2, 3]);
        let shared = Body::from(shared);
        assert_eq!(owned, shared);
        assert_eq!(shared, vec![1, 2, 3]);
        assert_eq!(vec![1, 2, 3], shared);
        assert_eq!(shared, [1, 2, 3]);
        assert_eq!(shared, &[1u8, 2, 3][..]);
        assert_ne!(shared, Body::from(vec![1, 2]));
        assert_eq!(format!("{shared:?}"), "[1, 2, 3]");
        assert_eq!(shared.len(), 3);
        assert_eq!(shared.clone().into_vec(), vec![1, 2, 3]);
        assert!(Body::default().is_empty());
        assert_eq!(
            Response::with_body(Status::Success, shared),
            Response::with_body(Status::Success, vec![1, 2, 3])
        );
    }

    #[test]
    fn status_codes_round_trip() {
        for s in Status::ALL {
            assert_eq!(Status::from_code(s.code()), Some(s));
        }
        assert_eq!(Status::from_code(0), None);
        // Listed once each, in code order.
        assert!(Status::ALL.windows(2).all(|w| w[0].code() < w[1].code()));
        assert_eq!(Status::ALL.len(), 19);
    }
}
