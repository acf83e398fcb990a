//! Sets the shared library's SONAME and, with `--features header` (`make header`),
//! regenerates include/raida_healing.h with cbindgen. An ordinary build leaves the committed
//! header alone, so it never compiles cbindgen; `make check-header` (part of `make test`)
//! regenerates it and fails when the committed copy differs.

/// The ABI version of the shared library: its SONAME is `libraida_healing.so.<SOVERSION>`.
/// This is the one place it is written: the Makefile reads it from here. The rule for
/// bumping it is in docs/abi.md ("When the SOVERSION changes"); `make check-abi` enforces
/// it against the committed baseline in abi/.
const SOVERSION: &str = "0";

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libraida_healing.so.{SOVERSION}");
    }
    #[cfg(feature = "header")]
    generate_header();
}

#[cfg(feature = "header")]
fn generate_header() {
    use std::path::PathBuf;
    println!("cargo:rerun-if-changed=src");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    // `make check-header` puts the committed copy back after comparing: a header that
    // differs from what was generated must be generated again next time.
    println!("cargo:rerun-if-changed=include/raida_healing.h");
    let crate_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml"))
        .expect("cbindgen.toml is readable and valid");
    let bindings = cbindgen::Builder::new()
        .with_crate(&crate_dir)
        .with_config(config)
        .generate()
        .expect("cbindgen could not parse the crate");
    // write_to_file only touches the file when its content changes.
    bindings.write_to_file(crate_dir.join("include").join("raida_healing.h"));
}
