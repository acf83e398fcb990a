//! Fuzz target: the `config.toml` reader (`config_file::parse`) on any UTF-8 text. It
//! must answer a config or an error, never panic, hang or recurse without bound; a config
//! it accepts holds what the reader promises (raida_id 0..=24, exactly 25 servers, a
//! port 1..=65535), and an error names a line of the text when it names one.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match raida_healing::config_file::parse(text) {
        Ok(config) => {
            assert!(config.raida_id <= 24, "raida_id {}", config.raida_id);
            assert_eq!(config.raida_servers.len(), 25);
            assert_ne!(config.port, Some(0));
        }
        Err(e) => {
            assert!(e.file.is_none(), "parse named a file: {e}");
            if let Some(line) = e.line {
                let lines = text.matches('\n').count() + 1;
                assert!((1..=lines).contains(&line), "line {line} of {lines}: {e}");
            }
            assert!(!e.message.is_empty());
        }
    }
});
