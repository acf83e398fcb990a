//! Every setting of the library, in one table: name, type, default, accepted values and
//! the line README.md's settings table shows for it.
//!
//! The values come from the environment of the process, read once, all together, by the
//! state owner (`src/ffi/state.rs`, at the library's first call), which gives
//! [`Settings::read`] its environment (no other module reads it); tests give any lookup
//! ([`Settings::from_lookup`]). An
//! unset or empty variable gives the default silently; a value that is not of the
//! setting's type or outside its range gives the default and one error line saying so.
//! Core modules never read the environment: they are given the values ([`PeerOptions`],
//! the budget's limit, the [`ClaimPolicy`], the log level, the cache size, ...).
//!
//! Adding a setting is one row in the table below (its field, type, variable, values,
//! default and README line), the code that uses the field, and the same row in README's
//! settings table (`make check-docs` fails until it is there and equal: it renders the
//! rows of this table as [`Setting::readme_row`] does).

use std::time::Duration;

use crate::claims::ClaimPolicy;
use crate::log::Level;
use crate::peers::ejection::EjectOptions;
use crate::peers::{PeerOptions, SourceChoice};

/// The values a setting accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Values {
    /// A whole number of milliseconds in `min ..= max`.
    Millis { min: u64, max: u64 },
    /// A whole number in `min ..= max`.
    Count { min: u64, max: u64 },
    /// One of these names (case and surrounding space ignored).
    Names(&'static [&'static str]),
    /// Text its type reads (a path, an address), described thus in README's table.
    Text(&'static str),
}

impl Values {
    /// The README's "values" cell, e.g. `1 - 3600000 ms` or `` `any`, `listed` ``.
    pub fn describe(&self) -> String {
        match *self {
            Values::Millis { min, max } => format!("{min} - {max} ms"),
            Values::Count { min, max } => format!("{min} - {max}"),
            Values::Names(names) => names
                .iter()
                .map(|n| format!("`{n}`"))
                .collect::<Vec<_>>()
                .join(", "),
            Values::Text(what) => what.to_string(),
        }
    }
}

/// One row of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Setting {
    /// The environment variable.
    pub name: &'static str,
    /// What it accepts.
    pub values: Values,
    /// Its default, as it would be written; empty for "unset" (an `Option` type's `None`).
    pub default: &'static str,
    /// What it does: README's "effect" cell.
    pub doc: &'static str,
}

impl Setting {
    /// Its row in README's settings table:
    /// `` | `NAME` | values | default | doc | `` (an empty default shows as `unset`).
    pub fn readme_row(&self) -> String {
        let default = if self.default.is_empty() {
            "unset"
        } else {
            self.default
        };
        format!(
            "| `{}` | {} | {default} | {} |",
            self.name,
            self.values.describe(),
            self.doc
        )
    }
}

/// A type a setting can have: how a text becomes a value of it under `values`.
pub(crate) trait SettingType: Sized {
    /// The value `text` (already trimmed, not empty) gives, or why it gives none.
    fn parse(text: &str, values: &Values) -> Result<Self, String>;
}

/// A number in its range, or why not.
fn number(text: &str, values: &Values) -> Result<u64, String> {
    let (min, max) = match *values {
        Values::Millis { min, max } | Values::Count { min, max } => (min, max),
        Values::Names(_) | Values::Text(_) => return Err("is not a number".to_string()),
    };
    let n: u64 = text
        .parse()
        .map_err(|_| "is not a whole number".to_string())?;
    if !(min..=max).contains(&n) {
        return Err(format!("is outside {}", values.describe()));
    }
    Ok(n)
}

/// One of the names, lower case, or why not.
fn name(text: &str, values: &Values) -> Result<String, String> {
    let lower = text.to_ascii_lowercase();
    match *values {
        Values::Names(names) if names.contains(&lower.as_str()) => Ok(lower),
        _ => Err(format!("is not one of {}", values.describe())),
    }
}

impl SettingType for Duration {
    fn parse(text: &str, values: &Values) -> Result<Self, String> {
        number(text, values).map(Duration::from_millis)
    }
}

impl SettingType for u32 {
    fn parse(text: &str, values: &Values) -> Result<Self, String> {
        number(text, values).and_then(|n| u32::try_from(n).map_err(|e| e.to_string()))
    }
}

impl SettingType for usize {
    fn parse(text: &str, values: &Values) -> Result<Self, String> {
        number(text, values).and_then(|n| usize::try_from(n).map_err(|e| e.to_string()))
    }
}

impl SettingType for ClaimPolicy {
    fn parse(text: &str, values: &Values) -> Result<Self, String> {
        name(text, values).and_then(|n| ClaimPolicy::parse(&n).ok_or(n))
    }
}

/// Where peer connections leave from: `listed` or `kernel`.
impl SettingType for SourceChoice {
    fn parse(text: &str, values: &Values) -> Result<Self, String> {
        name(text, values).map(|n| match n.as_str() {
            "kernel" => SourceChoice::Kernel,
            _ => SourceChoice::Listed,
        })
    }
}

/// A path (`None` when unset: the default "").
impl SettingType for Option<std::path::PathBuf> {
    fn parse(text: &str, _values: &Values) -> Result<Self, String> {
        Ok((!text.is_empty()).then(|| std::path::PathBuf::from(text)))
    }
}

/// The stderr log level: `None` is `off`.
/// Also the old spellings `warn`, `all` and `1` to `3`, as log::parse_level reads them.
impl SettingType for Option<Level> {
    fn parse(text: &str, values: &Values) -> Result<Self, String> {
        if text.eq_ignore_ascii_case("off") {
            return Ok(None);
        }
        crate::log::parse_level(text)
            .map(Some)
            .ok_or_else(|| format!("is not one of {}", values.describe()))
    }
}

/// The claim key file's setting, named in the lines about it.
pub const CLAIM_KEY_FILE_SETTING: &str = "RAIDA_HEALING_CLAIM_KEY_FILE";

/// Declares [`Settings`] (one field per row) and [`TABLE`] (the rows), from one list.
/// Each row keeps this shape, with literal numbers (tools/check_docs.py reads the rows to
/// check README's table; a deadline, hedge delay or cooldown is at most an hour).
macro_rules! settings_table {
    ($(
        $field:ident: $type:ty = $name:literal, $values:expr, default $default:literal,
            $doc:literal;
    )*) => {
        /// Every setting's value.
        #[derive(Debug, Clone, PartialEq)]
        pub struct Settings {
            $(
                #[doc = $doc]
                pub $field: $type,
            )*
        }

        /// Every setting, in README's order.
        pub const TABLE: &[Setting] = &[$(
            Setting { name: $name, values: $values, default: $default, doc: $doc },
        )*];

        impl Settings {
            /// The values `lookup` gives (a variable's text, or `None` when unset), and a
            /// line for each value that was not used (the default was).
            pub fn read(lookup: impl Fn(&str) -> Option<String>) -> (Settings, Vec<String>) {
                let mut problems = Vec::new();
                let settings = Settings {
                    $(
                        $field: value(
                            &Setting { name: $name, values: $values, default: $default, doc: $doc },
                            &lookup,
                            &mut problems,
                        ),
                    )*
                };
                (settings, problems)
            }
        }
    };
}

settings_table! {
    peer_deadline: Duration = "RAIDA_HEALING_PEER_DEADLINE_MS",
        Values::Millis { min: 1, max: 3_600_000 }, default "32000",
        "one deadline for connect + read over a whole fix";
    hedge_after: Duration = "RAIDA_HEALING_HEDGE_MS",
        Values::Millis { min: 0, max: 3_600_000 }, default "300",
        "the hedge floor: no peer gets a second connection before this much silence (the rule: [docs/fix.md](docs/fix.md))";
    hedge_start: Duration = "RAIDA_HEALING_HEDGE_START_MS",
        Values::Millis { min: 0, max: 3_600_000 }, default "1000",
        "silence before a hedge for a peer never heard from";
    max_peer_connections: usize = "RAIDA_HEALING_MAX_PEER_CONNECTIONS",
        Values::Count { min: 1, max: 65_536 }, default "256",
        "peer connections the whole process may hold at once; one RAIDA gets at most 1/25 of them, granted in turns by client ([docs/fix.md](docs/fix.md))";
    eject_after: u32 = "RAIDA_HEALING_EJECT_AFTER",
        Values::Count { min: 0, max: 1000 }, default "3",
        "failed attempts in a row (timeouts, refusals, bad answers) that eject a peer: not asked, no vote, until a single probe answers; 0 never ejects";
    eject_cooldown: Duration = "RAIDA_HEALING_EJECT_COOLDOWN_MS",
        Values::Millis { min: 1, max: 3_600_000 }, default "10000",
        "an ejected peer's first cooldown before its probe; doubles with each further ejection until the peer has stayed healthy for its last cooldown";
    eject_max: Duration = "RAIDA_HEALING_EJECT_MAX_MS",
        Values::Millis { min: 1, max: 3_600_000 }, default "300000",
        "the longest cooldown";
    peer_source: SourceChoice = "RAIDA_HEALING_PEER_SOURCE",
        Values::Names(&["listed", "kernel"]), default "listed",
        "where claims to peers leave from: `listed`, this server's own `config.raida_addrs[raida_no]` when it is one of the host's addresses (else the log says once that `listed` peers will refuse its claims), or `kernel`, the route's choice ([docs/fix.md](docs/fix.md))";
    claim_policy: ClaimPolicy = "RAIDA_HEALING_CLAIM_POLICY",
        Values::Names(&["any", "listed", "authenticated"]), default "any",
        "who may claim a ticket for RAIDA i: `any` address, or only the `listed` one (`config.raida_addrs[i]`), over TCP only (a UDP source can be forged), or only a claim whose tag the claim key verifies (`authenticated`); a verified claim is admitted under every policy ([docs/tickets.md](docs/tickets.md#claims-who-may-claim-and-what-a-guesser-gets))";
    claim_key_file: Option<std::path::PathBuf> = "RAIDA_HEALING_CLAIM_KEY_FILE",
        Values::Text("a path"), default "",
        "the network's claim key: claims to peers are tagged with it and claims tagged with it are verified; the file must be this process's account's own, mode 0600 or stricter, not a link, else it is refused with one log line ([docs/tickets.md](docs/tickets.md#authenticated-claims); `raida-healing keygen` makes one)";
    log_level: Option<Level> = "RAIDA_HEALING_LOG",
        Values::Names(&["off", "error", "warning", "debug"]), default "off",
        "stderr log level where there is no server log";
    metrics_file: Option<std::path::PathBuf> = "RAIDA_HEALING_METRICS_FILE",
        Values::Text("a path"), default "",
        "write the metrics, in the Prometheus text format, to this file (node_exporter's textfile directory), replaced atomically every interval, idle or not; unset: no file and no thread ([docs/metrics.md](docs/metrics.md))";
    metrics_interval: Duration = "RAIDA_HEALING_METRICS_INTERVAL_MS",
        Values::Millis { min: 100, max: 3_600_000 }, default "15000",
        "how often the metrics file is rewritten";
    cache_pages: usize = "RAIDA_HEALING_CACHE_PAGES",
        Values::Count { min: 1, max: 1_048_576 }, default "1024",
        "standalone store: pages kept in memory (17 KiB each)";
}

/// The value of `setting` that `lookup` gives; its default (and a line in `problems`)
/// when the text is not one of its values.
fn value<T: SettingType>(
    setting: &Setting,
    lookup: &impl Fn(&str) -> Option<String>,
    problems: &mut Vec<String>,
) -> T {
    let default = || {
        T::parse(setting.default, &setting.values)
            .unwrap_or_else(|why| panic!("{}'s default {why}", setting.name))
    };
    let Some(raw) = lookup(setting.name) else {
        return default();
    };
    let text = raw.trim();
    if text.is_empty() {
        return default();
    }
    T::parse(text, &setting.values).unwrap_or_else(|why| {
        problems.push(format!(
            "{}={raw:?} {why}; using the default, {}",
            setting.name, setting.default
        ));
        default()
    })
}

impl Default for Settings {
    /// Every default.
    fn default() -> Self {
        Settings::from_lookup(|_| None)
    }
}

impl Settings {
    /// The values `lookup` gives, without logging (tests).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Settings {
        Settings::read(lookup).0
    }

    /// The peer client's options.
    pub fn peer_options(&self) -> PeerOptions {
        PeerOptions {
            deadline: self.peer_deadline,
            hedge_after: self.hedge_after,
            hedge_start: self.hedge_start,
            eject: EjectOptions {
                after: self.eject_after,
                cooldown: self.eject_cooldown,
                max: self.eject_max,
            },
            source: self.peer_source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            pairs
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn defaults_are_the_components_defaults() {
        let (settings, problems) = Settings::read(|_| None);
        assert!(problems.is_empty());
        assert_eq!(settings.peer_options(), PeerOptions::default());
        assert_eq!(
            settings.max_peer_connections,
            crate::peers::budget::DEFAULT_MAX_PEER_CONNECTIONS
        );
        assert_eq!(settings.claim_policy, ClaimPolicy::Any);
        assert_eq!(settings.log_level, None);
        assert_eq!(settings.cache_pages, 1024);
    }

    #[test]
    fn values_in_range_are_taken() {
        let settings = Settings::from_lookup(lookup(&[
            ("RAIDA_HEALING_PEER_DEADLINE_MS", " 1500 "),
            ("RAIDA_HEALING_HEDGE_MS", "0"),
            ("RAIDA_HEALING_EJECT_AFTER", "0"),
            ("RAIDA_HEALING_EJECT_COOLDOWN_MS", "2500"),
            ("RAIDA_HEALING_EJECT_MAX_MS", "3600000"),
            ("RAIDA_HEALING_MAX_PEER_CONNECTIONS", "65536"),
            ("RAIDA_HEALING_CLAIM_POLICY", " LISTED\n"),
            ("RAIDA_HEALING_LOG", "Warning"),
            ("RAIDA_HEALING_CACHE_PAGES", "1"),
        ]));
        let options = settings.peer_options();
        assert_eq!(options.deadline, Duration::from_millis(1500));
        assert_eq!(options.hedge_after, Duration::ZERO);
        assert_eq!(
            options.eject,
            EjectOptions {
                after: 0,
                cooldown: Duration::from_millis(2500),
                max: Duration::from_secs(3600),
            }
        );
        assert_eq!(settings.max_peer_connections, 65_536);
        assert_eq!(settings.claim_policy, ClaimPolicy::Listed);
        assert_eq!(settings.log_level, Some(Level::Warning));
        assert_eq!(settings.cache_pages, 1);
    }

    /// Unknown or out-of-range values give the default and one line each; unset and
    /// empty ones give it silently.
    #[test]
    fn other_values_give_the_default_and_a_line() {
        let (settings, problems) = Settings::read(lookup(&[
            ("RAIDA_HEALING_PEER_DEADLINE_MS", "0"),
            ("RAIDA_HEALING_HEDGE_MS", "soon"),
            ("RAIDA_HEALING_HEDGE_START_MS", ""),
            ("RAIDA_HEALING_MAX_PEER_CONNECTIONS", "99999999999"),
            ("RAIDA_HEALING_EJECT_AFTER", "-1"),
            ("RAIDA_HEALING_CLAIM_POLICY", "strict"),
            ("RAIDA_HEALING_LOG", "loud"),
        ]));
        assert_eq!(settings, Settings::default());
        assert_eq!(
            problems,
            [
                "RAIDA_HEALING_PEER_DEADLINE_MS=\"0\" is outside 1 - 3600000 ms; using the default, 32000",
                "RAIDA_HEALING_HEDGE_MS=\"soon\" is not a whole number; using the default, 300",
                "RAIDA_HEALING_MAX_PEER_CONNECTIONS=\"99999999999\" is outside 1 - 65536; using the default, 256",
                "RAIDA_HEALING_EJECT_AFTER=\"-1\" is not a whole number; using the default, 3",
                "RAIDA_HEALING_CLAIM_POLICY=\"strict\" is not one of `any`, `listed`, `authenticated`; using the default, any",
                "RAIDA_HEALING_LOG=\"loud\" is not one of `off`, `error`, `warning`, `debug`; using the default, off",
            ]
        );
    }

    #[test]
    fn the_peer_source_is_listed_or_kernel() {
        let kernel = Settings::from_lookup(lookup(&[("RAIDA_HEALING_PEER_SOURCE", " Kernel ")]));
        assert_eq!(kernel.peer_options().source, SourceChoice::Kernel);
        let (odd, problems) = Settings::read(lookup(&[("RAIDA_HEALING_PEER_SOURCE", "any")]));
        assert_eq!(odd.peer_options().source, SourceChoice::Listed);
        assert_eq!(
            problems,
            ["RAIDA_HEALING_PEER_SOURCE=\"any\" is not one of `listed`, `kernel`; using the default, listed"]
        );
    }

    /// A path setting (as a key or metrics file would be): unset by default, any text.
    #[test]
    fn a_path_setting_is_unset_by_default() {
        let row = Setting {
            name: "RAIDA_HEALING_SOME_FILE",
            values: Values::Text("a path"),
            default: "",
            doc: "a file",
        };
        let mut problems = Vec::new();
        let unset: Option<std::path::PathBuf> = value(&row, &|_: &str| None, &mut problems);
        let set: Option<std::path::PathBuf> =
            value(&row, &|_: &str| Some(" /etc/k ".into()), &mut problems);
        assert_eq!((unset, set), (None, Some("/etc/k".into())));
        assert!(problems.is_empty());
        assert_eq!(
            row.readme_row(),
            "| `RAIDA_HEALING_SOME_FILE` | a path | unset | a file |"
        );
    }

    /// Every row: a unique name of the library's prefix, a default of its own type, a
    /// README line; and the claim gate's log lines name the row that sets its policy.
    #[test]
    fn the_table_is_well_formed() {
        let mut names: Vec<_> = TABLE.iter().map(|s| s.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), TABLE.len());
        for setting in TABLE {
            assert!(setting.name.starts_with("RAIDA_HEALING_"), "{}", setting.name);
            assert!(!setting.doc.is_empty() && !setting.doc.contains('|'), "{}", setting.name);
        }
        // Reading every default back gives no problem (each default is in its range).
        let (_, problems) = Settings::read(|name| {
            TABLE
                .iter()
                .find(|s| s.name == name)
                .map(|s| s.default.to_string())
        });
        assert!(problems.is_empty(), "{problems:?}");
        assert!(TABLE
            .iter()
            .any(|s| s.name == crate::claims::CLAIM_POLICY_SETTING));
        assert!(TABLE.iter().any(|s| s.name == CLAIM_KEY_FILE_SETTING));
        // README shows each row as rendered here (tools/check_docs.py renders them too).
        let readme = include_str!("../README.md");
        for setting in TABLE {
            let row = setting.readme_row();
            assert!(readme.lines().any(|line| line == row), "README lacks {row}");
        }
        assert_eq!(
            TABLE[0].readme_row(),
            "| `RAIDA_HEALING_PEER_DEADLINE_MS` | 1 - 3600000 ms | 32000 | one deadline for connect + read over a whole fix |"
        );
    }
}
