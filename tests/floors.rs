//! No import runs up a floor: the library's modules stand on floors (CONTRIBUTING.md,
//! "Layout of the repository"), and a module uses only modules of lower floors. Read from
//! the sources: every `crate::<module>` a file of `src/<module>.rs` or `src/<module>/`
//! names. A new top-level module fails here until it is given a floor.

use std::path::Path;

/// Each top-level module and its floor.
const FLOORS: &[(&str, u8)] = &[
    ("protocol", 0),
    ("log", 0),
    ("metrics", 0),
    ("testing", 0),
    ("log_limit", 1),
    ("hash", 1),
    ("claim_auth", 1),
    ("random", 1),
    ("consensus", 1),
    ("store", 2),
    ("tickets", 2),
    ("data_dir", 3),
    ("claims", 3),
    ("peers", 3),
    ("audit", 4),
    ("pagefile", 4),
    ("fix_gate", 4),
    ("commands", 5),
    ("settings", 5),
    ("config_file", 6),
    ("ffi", 7),
];

fn floor_of(module: &str) -> Option<u8> {
    FLOORS.iter().find(|(m, _)| *m == module).map(|&(_, f)| f)
}

/// The text of `src/<module>.rs` and of every file below `src/<module>/`.
fn texts(src: &Path, module: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![src.join(format!("{module}.rs")), src.join(module)];
    while let Some(path) = stack.pop() {
        if path.is_dir() {
            stack.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(std::fs::read_to_string(&path).unwrap());
        }
    }
    out
}

/// The top-level modules `text` names as `crate::<module>`.
fn uses(text: &str) -> Vec<String> {
    text.match_indices("crate::")
        .filter(|(at, _)| !text[..*at].ends_with("raida_healing::"))
        .map(|(at, _)| {
            text[at + "crate::".len()..]
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                .collect::<String>()
        })
        .filter(|m| !m.is_empty())
        .collect()
}

#[test]
fn every_module_has_a_floor_and_imports_only_from_below() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut modules: Vec<String> = std::fs::read_dir(&src)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "rs"))
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .filter(|m| m != "lib")
        .collect();
    modules.sort();
    let mut upward = Vec::new();
    for module in &modules {
        let floor = floor_of(module).unwrap_or_else(|| panic!("src/{module}.rs has no floor"));
        for text in texts(&src, module) {
            for used in uses(&text) {
                if used == *module {
                    continue;
                }
                let used_floor = floor_of(&used).unwrap_or_else(|| panic!("no floor: {used}"));
                if used_floor >= floor {
                    upward.push(format!(
                        "{module} (floor {floor}) uses {used} (floor {used_floor})"
                    ));
                }
            }
        }
    }
    upward.sort();
    upward.dedup();
    assert!(
        upward.is_empty(),
        "imports that do not run down a floor: {upward:#?}"
    );
}

#[test]
fn the_reading_sees_every_form_of_a_use() {
    assert_eq!(uses("use crate::protocol::{Coin};"), ["protocol"]);
    assert_eq!(
        uses("crate::log::error(&x); crate::peers::ask"),
        ["log", "peers"]
    );
    assert_eq!(uses("raida_healing::crate::x"), Vec::<String>::new());
}
