//! Generates include/raida_healing.h with cbindgen and keeps the committed copy current.
//! `make check-header` (part of `make test`) fails when the committed header differs.

use std::path::PathBuf;

fn main() {
    let crate_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    println!("cargo:rerun-if-changed=src");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    println!("cargo:rerun-if-changed=build.rs");
    let config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml"))
        .expect("cbindgen.toml is readable and valid");
    let bindings = cbindgen::Builder::new()
        .with_crate(&crate_dir)
        .with_config(config)
        .generate()
        .expect("cbindgen could not parse the crate");
    let out = crate_dir.join("include").join("raida_healing.h");
    // write_to_file only touches the file when its content changes.
    bindings.write_to_file(&out);
    // The soname lets `make install` ship libraida_healing.so.0 with a stable ABI name.
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libraida_healing.so.0");
    }
}
