//! Unpredictable bytes from the operating system (ticket ids, peer challenges).

/// Fills `buf` from the OS CSPRNG. The kernel source does not fail on Linux once booted;
/// if it ever did, the time-seeded fallback keeps the server answering rather than
/// aborting, and the failure is logged.
pub fn fill(buf: &mut [u8]) {
    if let Err(err) = getrandom::fill(buf) {
        crate::log::error(&format!(
            "getrandom failed ({err}); using a time-seeded fallback"
        ));
        let mut state = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0x9e37_79b9_7f4a_7c15)
            ^ (buf.as_ptr() as u64);
        for b in buf.iter_mut() {
            // splitmix64
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            *b = (z ^ (z >> 31)) as u8;
        }
    }
}

/// A random 32-bit value.
pub fn u32_from_os() -> u32 {
    let mut b = [0u8; 4];
    fill(&mut b);
    u32::from_ne_bytes(b)
}
