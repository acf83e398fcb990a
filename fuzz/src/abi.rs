//! Calls an exported `cmd_*` exactly as the server does and checks what the C contract
//! promises about the `conn_info_t` afterwards.

use raida_healing::ffi::exports::handler;
use raida_healing::ffi::layout::ConnInfo;

use crate::host;
use crate::Command;
use kit::abi::take_output;

/// Bytes of `conn_info_t` a handler may write: `output_size` (164..168), `output`
/// (168..176) and `command_status` (176).
const WRITABLE: std::ops::Range<usize> = 164..177;

/// What a handler left in `ci`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AbiAnswer {
    pub status: u8,
    pub body: Vec<u8>,
}

/// Every byte of the struct at `ci`, padding included.
///
/// # Safety
/// `ci` points to a `ConnInfo` all of whose bytes were initialised through a byte write.
unsafe fn bytes_of(ci: *const ConnInfo) -> [u8; std::mem::size_of::<ConnInfo>()] {
    let mut bytes = [0u8; std::mem::size_of::<ConnInfo>()];
    // SAFETY: the caller's contract; reading as bytes never copies the struct by type, so
    // its padding keeps the bytes written into it.
    unsafe { std::ptr::copy_nonoverlapping(ci.cast::<u8>(), bytes.as_mut_ptr(), bytes.len()) };
    bytes
}

/// Runs `cmd` on `body` (`None`: the server had no body, `ci->body` NULL) with the given
/// encryption type, like the server's dispatch would, and checks:
/// - every byte of `ci` outside `output_size`/`output`/`command_status` is unchanged
///   (the rest is filled with 0xA5, so a stray write or a read of a field the handler
///   must not use shows up);
/// - the body is unchanged (the server owns it);
/// - `output` is NULL exactly when `output_size` is 0, and `output_size` is not negative;
/// - no page is left locked.
///
/// The output is copied out and released with C `free()`, as the server does.
pub fn call(cmd: Command, body: Option<&[u8]>, encryption_type: i32, coin_id: u8) -> AbiAnswer {
    let mut owned: Option<Vec<u8>> = body.map(<[u8]>::to_vec);
    // The struct stays in this MaybeUninit and is only touched in place (never moved or
    // copied by type), so its padding keeps the 0xA5 pattern for the byte comparison.
    let mut slot = std::mem::MaybeUninit::<ConnInfo>::uninit();
    let ci: *mut ConnInfo = slot.as_mut_ptr();
    // SAFETY: `ci` points to writable memory of one ConnInfo; every field type of it
    // (integers, byte arrays, raw pointers, timeval) accepts any bytes, so after the fill
    // the struct is initialised, and the fields are then set in place.
    unsafe {
        std::ptr::write_bytes(ci, 0xA5, 1);
        (*ci).body = owned
            .as_mut()
            .map_or(std::ptr::null_mut(), |b| b.as_mut_ptr());
        (*ci).body_size = body.map_or(0, |b| {
            i32::try_from(b.len()).expect("fuzz body fits an int")
        });
        (*ci).encryption_type = encryption_type;
        (*ci).coin_id = coin_id;
        (*ci).output = std::ptr::null_mut();
        (*ci).output_size = 0;
        // Who the client is (validate_ticket reads it): not given, as by a caller that
        // cannot tell; the claim policy and guess throttle have tests of their own.
        (*ci).sa = std::ptr::null_mut();
        (*ci).sk = -1;
        (*ci).ip[0] = 0;
    }
    // SAFETY: initialised by the byte fill above.
    let before = unsafe { bytes_of(ci) };

    // SAFETY: `ci` is a valid conn_info_t owned by this frame for the call; `body` points
    // to `body_size` bytes that outlive the call; `output` is NULL on entry.
    unsafe { handler(cmd)(ci) };

    // SAFETY: still the same initialised struct; the handler wrote fields only.
    let after = unsafe { bytes_of(ci) };
    for (i, (b, a)) in before.iter().zip(after.iter()).enumerate() {
        if !WRITABLE.contains(&i) && b != a {
            panic!("{cmd:?} wrote conn_info_t byte {i} ({b:#04x} -> {a:#04x})");
        }
    }
    // SAFETY: initialised above; the only view of it from here on, for taking the answer.
    let ci = unsafe { &mut *ci };
    assert_eq!(owned.as_deref(), body, "{cmd:?} changed the request body");
    assert_eq!(host::locked_pages(), 0, "{cmd:?} left a page locked");
    assert!(
        ci.output_size >= 0,
        "negative output_size {}",
        ci.output_size
    );
    assert_eq!(
        ci.output.is_null(),
        ci.output_size == 0,
        "output pointer and output_size disagree (size {})",
        ci.output_size
    );
    let body = take_output(ci);
    AbiAnswer {
        status: ci.command_status,
        body,
    }
}
