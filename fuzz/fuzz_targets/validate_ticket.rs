//! Fuzz target: validate_ticket requests of every encryption type, through the exported C handler
//! over the fuzz binary's own host, and through the safe core; see fuzz/src/lib.rs.
#![no_main]

use std::cell::RefCell;

use libfuzzer_sys::fuzz_target;
use raida_healing_fuzz::targets::ValidateTicket;

raida_healing_fuzz::host_symbols!();

thread_local! {
    static STATE: RefCell<ValidateTicket> = RefCell::new(ValidateTicket::default());
}

fuzz_target!(|data: &[u8]| {
    STATE.with(|state| state.borrow_mut().run(data));
});
