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
    // cbindgen does not expand macros, so it cannot see the `cmd_*` shims that
    // src/ffi/exports.rs declares from the command table: it is shown the same rows as
    // plain declarations instead.
    let table = std::fs::read_to_string(crate_dir.join("src/commands/table.rs"))
        .expect("src/commands/table.rs is readable");
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets it"));
    let handlers = out_dir.join("command_table_exports.rs");
    let protocol = std::fs::read_to_string(crate_dir.join("src/protocol.rs"))
        .expect("src/protocol.rs is readable");
    let (declarations, command_list) = command_table(&table, &protocol);
    std::fs::write(&handlers, declarations).expect("OUT_DIR is writable");
    let bindings = cbindgen::Builder::new()
        .with_src(&handlers)
        .with_crate(&crate_dir)
        .with_config(config)
        .with_after_include(command_list)
        .generate()
        .expect("cbindgen could not parse the crate");
    // write_to_file only touches the file when its content changes.
    bindings.write_to_file(crate_dir.join("include").join("raida_healing.h"));
}

/// From the command table: the `cmd_*` shims as plain Rust declarations for cbindgen (each
/// row `Variant = code => export;` with the `///` lines above it), and the header's
/// `RAIDA_HEALING_COMMANDS(X)` list, from which C code builds its tables of handlers.
#[cfg(feature = "header")]
fn command_table(table: &str, protocol: &str) -> (String, String) {
    let mut declarations = String::from("use crate::ffi::layout::ConnInfo;\n");
    let mut list = String::from(
        "\n// Every healing command as X(command byte, handler), in the order of the command\n\
         // table: C code builds its handler tables from it, e.g.\n\
         //   #define CASE(code, handler) case code: return handler;\n\
         //   switch (command) { RAIDA_HEALING_COMMANDS(CASE) default: return NULL; }\n\
         #define RAIDA_HEALING_COMMANDS(X)",
    );
    let mut docs = String::new();
    for line in table.lines().map(str::trim) {
        if line.starts_with("///") {
            docs.push_str(line);
            docs.push('\n');
        } else if line.starts_with("//") {
            continue;
        } else if let Some((left, right)) = line.split_once("=>") {
            let export = right.split(',').next().unwrap_or_default().trim();
            let name = left.split_once('=').map_or("", |(_, code)| code.trim());
            let code = command_byte(protocol, name);
            declarations.push_str(&format!(
                "\n{docs}#[no_mangle]\npub unsafe extern \"C\" fn {export}(ci: *mut ConnInfo) {{}}\n"
            ));
            list.push_str(&format!(" \\\n  X({code}, {export})"));
            docs.clear();
        } else if line.is_empty() {
            docs.clear();
        }
    }
    list.push('\n');
    (declarations, list)
}

/// The number of the command byte `name` names (`pub const NAME: u8 = N;` in
/// src/protocol.rs): the header's list carries numbers, which C `case` labels need.
#[cfg(feature = "header")]
fn command_byte(protocol: &str, name: &str) -> String {
    let prefix = format!("pub const {name}: u8 = ");
    protocol
        .lines()
        .find_map(|line| line.trim().strip_prefix(prefix.as_str()))
        .and_then(|rest| rest.strip_suffix(';'))
        .unwrap_or_else(|| panic!("src/protocol.rs has no `{prefix}N;` for the command table"))
        .to_string()
}
