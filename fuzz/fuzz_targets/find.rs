//! Fuzz target: find requests of every encryption type, through the exported C handler
//! over the fuzz binary's own host, and through the safe core; see fuzz/src/lib.rs.
#![no_main]

raida_healing_fuzz::command_target!(raida_healing_fuzz::targets::Find);
