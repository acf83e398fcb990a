//! Sets the shared library's SONAME and symbol versions (raida_healing.map) and, with
//! `--features header` (`make header`), regenerates include/raida_healing.h with cbindgen.
//! An ordinary build leaves the committed header alone, so it never compiles cbindgen;
//! `make check-header` (part of `make test`) regenerates it and fails when the committed
//! copy differs.

/// The ABI version of the shared library: its SONAME is `libraida_healing.so.<SOVERSION>`.
/// This is the one place it is written: the Makefile reads it from here. The rule for
/// bumping it is in docs/abi.md ("When the SOVERSION changes"); `make check-abi` enforces
/// it against the committed baseline in abi/.
const SOVERSION: &str = "0";

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=raida_healing.map");
    let linux = std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux");
    if linux {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libraida_healing.so.{SOVERSION}");
    }
    symbol_versions(linux);
    #[cfg(feature = "header")]
    generate_header();
}

/// Symbol versions from raida_healing.map (docs/abi.md, "Symbol versions"). rustc gives
/// the linker an anonymous version script of its own for a cdylib (its export list), and
/// a second script naming the same symbols loses to it (lld) or is refused (GNU ld). So
/// each export is renamed `name@@NODE` in the object itself (`.symver ..., remove`,
/// OUT_DIR/symbol_versions.rs, included by src/ffi/symbol_versions.rs), and the linker is
/// given only the nodes (OUT_DIR/symbol_versions.map, empty bodies). GNU ld refuses any
/// node next to rustc's anonymous script, so the cdylib links with lld: rustup's own
/// (rustc's default linker on x86_64 Linux since 1.90) or the system's ld.lld.
fn symbol_versions(linux: bool) {
    let dir = std::path::PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let out_dir = std::path::PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets it"));
    let map = std::fs::read_to_string(dir.join("raida_healing.map"))
        .expect("raida_healing.map is readable");
    let nodes = version_nodes(&map);
    let mut script = String::new();
    let mut directives = Vec::new();
    for (node, symbols, parent) in &nodes {
        script.push_str(&format!("{node} {{ }} {parent};\n"));
        for symbol in symbols {
            directives.push(format!("\".symver {symbol}, {symbol}@@{node}, remove\""));
        }
    }
    let rust = if linux {
        format!(
            "core::arch::global_asm!(\n    {}\n);\n",
            directives.join(",\n    ")
        )
    } else {
        String::new()
    };
    std::fs::write(out_dir.join("symbol_versions.rs"), rust).expect("OUT_DIR is writable");
    let script_path = out_dir.join("symbol_versions.map");
    std::fs::write(&script_path, script).expect("OUT_DIR is writable");
    if linux {
        println!("cargo:rustc-cdylib-link-arg=-fuse-ld=lld");
        println!(
            "cargo:rustc-cdylib-link-arg=-Wl,--version-script={}",
            script_path.display()
        );
    }
}

/// `(node, global symbols, parent)` of each `NODE { global: a; b; local: *; } [PARENT];`
/// of a version script, in order; `/* */` comments skipped.
fn version_nodes(map: &str) -> Vec<(String, Vec<String>, String)> {
    let mut text = String::new();
    let mut rest = map;
    while let Some(start) = rest.find("/*") {
        text.push_str(&rest[..start]);
        let end = rest[start..]
            .find("*/")
            .expect("raida_healing.map: unclosed comment");
        rest = &rest[start + end + 2..];
    }
    text.push_str(rest);
    let mut nodes = Vec::new();
    let mut rest = text.as_str();
    while let Some(open) = rest.find('{') {
        let node = rest[..open].trim().to_string();
        let close = rest[open..]
            .find('}')
            .expect("raida_healing.map: unclosed node")
            + open;
        let body = &rest[open + 1..close];
        let after = &rest[close + 1..];
        let semicolon = after
            .find(';')
            .expect("raida_healing.map: a node ends with ';'");
        let parent = after[..semicolon].trim().to_string();
        let global = body.split("local:").next().unwrap_or_default();
        let symbols = global
            .replace("global:", "")
            .split(';')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect();
        nodes.push((node, symbols, parent));
        rest = &after[semicolon + 1..];
    }
    assert!(
        !nodes.is_empty(),
        "raida_healing.map defines no version node"
    );
    nodes
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
