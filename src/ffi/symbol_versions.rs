//! Every export's symbol version: `name@@NODE` for each symbol that raida_healing.map
//! lists under NODE, written by build.rs (the rules: docs/abi.md, "Symbol versions").
//! `make check-abi` fails for an export that carries no version or another node.

include!(concat!(env!("OUT_DIR"), "/symbol_versions.rs"));
