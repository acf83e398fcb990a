//! Fuzz target: see `raida_healing_fuzz::peer::peer_response`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| raida_healing_fuzz::peer::peer_response(data));
