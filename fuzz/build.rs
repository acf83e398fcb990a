//! Compiles the fuzz host's printf-style log functions (`debug`, `warning`, `error`): they
//! are variadic, which stable Rust cannot define, so they are the one piece of C here.

fn main() {
    println!("cargo:rerun-if-changed=host_log.c");
    println!("cargo:rerun-if-changed=../c_tests/log_functions.h");
    cc::Build::new()
        .file("host_log.c")
        .flag("-std=gnu11")
        .flag("-Wall")
        .flag("-Wextra")
        .flag("-Werror")
        .compile("fuzz_host_log");
}
