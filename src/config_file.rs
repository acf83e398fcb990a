//! The server folder's `config.toml`, read where no server has read it for us.
//!
//! The file is TOML, parsed by the `toml` crate: whatever TOML accepts is accepted (a
//! UTF-8 BOM, comments, dotted keys, quoted keys, tables in any order) and whatever it
//! rejects is rejected (a table defined twice, a key set twice, `03`, control characters in
//! strings, ...), with the line of the problem. On top of TOML this module checks our keys:
//! - `raida_id` (integer 0..=24): this server's RAIDA index. Required.
//! - `raida_servers` (array of exactly 25 `"host:port"` strings, index = RAIDA number, port
//!   1..=65535): where each RAIDA listens. Required. Hosts are resolved to IPv4 by
//!   [`ServerConfig::node_config`].
//! - `coin_id` (integer 0..=255), `port` (integer 1..=65535) and the legacy server's
//!   `flush_freq` (integer 1..=86400, seconds between write-backs): optional, checked when
//!   present.
//! - The keys may sit at the top of the file or in the `[server]` table (the legacy
//!   server's layout), not both. Other keys and other tables are ignored, values included.
//!
//! The C test node reads its config through the same code (`raida_healing_config_parse`).

use std::fmt;
use std::net::{SocketAddr, SocketAddrV4, ToSocketAddrs};
use std::ops::Range;
use std::path::Path;

use toml::de::{DeTable, DeValue};
use toml::Spanned;

use crate::commands::NodeConfig;
use crate::protocol::TOTAL_RAIDA_SERVERS;

/// What this library needs from `config.toml`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// This server's RAIDA index, 0..=24.
    pub raida_id: u8,
    /// The coin id this server serves, if the file says.
    pub coin_id: Option<u8>,
    /// The port this server listens on, if the file says.
    pub port: Option<u16>,
    /// The legacy server's seconds between write-backs of dirty pages, if the file says
    /// (the library itself writes every change at once; the C test node uses it).
    pub flush_freq: Option<u32>,
    /// Each RAIDA's `"host:port"`, index = RAIDA number; always 25 entries.
    pub raida_servers: Vec<String>,
}

/// A config file problem, with the file and the 1-based line where they are known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: Option<std::path::PathBuf>,
    pub line: Option<usize>,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.file, self.line) {
            (Some(file), Some(line)) => write!(f, "{}:{line}: {}", file.display(), self.message),
            (Some(file), None) => write!(f, "{}: {}", file.display(), self.message),
            (None, Some(line)) => write!(f, "line {line}: {}", self.message),
            (None, None) => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for ConfigError {}

/// The largest `config.toml` read (a real one is a few KiB).
pub(crate) const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// Reads and checks the config file at `path`; errors name the file. The file must be a
/// regular file of at most [`MAX_CONFIG_BYTES`], not a symbolic link: a FIFO or a link to
/// a device is refused without blocking and without being read.
pub fn load(path: &Path) -> Result<ServerConfig, ConfigError> {
    let unreadable = |message: String| ConfigError {
        file: Some(path.to_path_buf()),
        line: None,
        message,
    };
    let bytes = crate::data_dir::read_small_file(path, MAX_CONFIG_BYTES)
        .map_err(|e| unreadable(e.to_string()))?;
    let text = String::from_utf8(bytes)
        .map_err(|_| unreadable("stream did not contain valid UTF-8".to_string()))?;
    parse(&text).map_err(|e| ConfigError {
        file: Some(path.to_path_buf()),
        ..e
    })
}

/// Parses and checks a config file's text.
pub fn parse(text: &str) -> Result<ServerConfig, ConfigError> {
    let lines = Lines(text);
    let document = DeTable::parse(text).map_err(|e| ConfigError {
        file: None,
        line: e.span().map(|span| lines.of(&span)),
        message: toml_message(e.message(), e.span().and_then(|span| text.get(span))),
    })?;
    let root = document.get_ref();
    let mut scopes = vec![root];
    if let Some(server) = entry(root, "server") {
        match server.get_ref() {
            DeValue::Table(table) => scopes.push(table),
            _ => return Err(lines.wrong_type(server, "server must be a table ([server])")),
        }
    }
    let key = |name: &str| -> Result<Option<&Spanned<DeValue<'_>>>, ConfigError> {
        let mut found: Option<&Spanned<DeValue<'_>>> = None;
        for scope in &scopes {
            if let Some(value) = entry(scope, name) {
                if let Some(first) = found {
                    return Err(lines.error(
                        &value.span(),
                        format!(
                            "{name} is set both at the top and in [server] (first on line {})",
                            lines.of(&first.span())
                        ),
                    ));
                }
                found = Some(value);
            }
        }
        Ok(found)
    };
    let int = |name: &str, min: i64, max: i64| -> Result<Option<i64>, ConfigError> {
        key(name)?
            .map(|value| int_in(&lines, name, value, min, max))
            .transpose()
    };
    let raida_id = int("raida_id", 0, 24)?.ok_or_else(|| missing("raida_id"))?;
    let coin_id = int("coin_id", 0, 255)?;
    let port = int("port", 1, 65535)?;
    let flush_freq = int("flush_freq", 1, 86400)?;
    let servers = key("raida_servers")?.ok_or_else(|| missing("raida_servers"))?;
    Ok(ServerConfig {
        raida_id: raida_id as u8,
        coin_id: coin_id.map(|v| v as u8),
        port: port.map(|v| v as u16),
        flush_freq: flush_freq.map(|v| v as u32),
        raida_servers: servers_in(&lines, servers)?,
    })
}

/// The toml crate's message as one line, with the text it points at when that is short
/// (its "duplicate key" does not say which).
fn toml_message(message: &str, at: Option<&str>) -> String {
    let message = message.trim().replace('\n', "; ");
    match at {
        Some(at) if !at.is_empty() && at.len() <= 40 && !at.contains(['\n', '\r']) => {
            format!("not valid TOML: {message}: `{}`", at.escape_debug())
        }
        _ => format!("not valid TOML: {message}"),
    }
}

fn missing(key: &str) -> ConfigError {
    ConfigError {
        file: None,
        line: None,
        message: format!("{key} is missing (expected at the top or in [server])"),
    }
}

/// The value of `name` in `table`.
fn entry<'t, 'i>(table: &'t DeTable<'i>, name: &str) -> Option<&'t Spanned<DeValue<'i>>> {
    table
        .iter()
        .find(|(key, _)| key.get_ref().as_ref() == name)
        .map(|(_, value)| value)
}

/// Turns byte offsets of the text into 1-based line numbers.
struct Lines<'t>(&'t str);

impl Lines<'_> {
    fn of(&self, span: &Range<usize>) -> usize {
        let end = span.start.min(self.0.len());
        1 + self.0.as_bytes()[..end]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
    }

    fn error(&self, span: &Range<usize>, message: String) -> ConfigError {
        ConfigError {
            file: None,
            line: Some(self.of(span)),
            message,
        }
    }

    /// The error for `value` not being of the TOML type the key needs: "`what`, found a
    /// string" (or whatever it is).
    fn wrong_type(&self, value: &Spanned<DeValue<'_>>, what: &str) -> ConfigError {
        self.error(&value.span(), format!("{what}, found {}", kind(value.get_ref())))
    }
}

fn kind(value: &DeValue<'_>) -> &'static str {
    match value {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a float",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a date",
        DeValue::Array(_) => "an array",
        DeValue::Table(_) => "a table",
    }
}

fn int_in(
    lines: &Lines<'_>,
    name: &str,
    value: &Spanned<DeValue<'_>>,
    min: i64,
    max: i64,
) -> Result<i64, ConfigError> {
    let DeValue::Integer(int) = value.get_ref() else {
        let what = format!("{name} must be an integer {min}..={max}");
        return Err(lines.wrong_type(value, &what));
    };
    match i64::from_str_radix(int.as_str(), int.radix()) {
        Ok(v) if (min..=max).contains(&v) => Ok(v),
        _ => Err(lines.error(
            &value.span(),
            format!("{name} is {int}, expected {min}..={max}"),
        )),
    }
}

/// Checks `raida_servers`: 25 strings, each `host:port` with a non-empty host and a port
/// 1..=65535.
fn servers_in(lines: &Lines<'_>, value: &Spanned<DeValue<'_>>) -> Result<Vec<String>, ConfigError> {
    let DeValue::Array(items) = value.get_ref() else {
        let what =
            format!("raida_servers must be an array of {TOTAL_RAIDA_SERVERS} \"host:port\" strings");
        return Err(lines.wrong_type(value, &what));
    };
    if items.len() != TOTAL_RAIDA_SERVERS {
        return Err(lines.error(
            &value.span(),
            format!(
                "raida_servers has {} entries, expected {TOTAL_RAIDA_SERVERS} (index = RAIDA number)",
                items.len()
            ),
        ));
    }
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let DeValue::String(s) = item.get_ref() else {
            let what = format!("raida_servers[{i}] must be a \"host:port\" string");
            return Err(lines.wrong_type(item, &what));
        };
        split_host_port(s).map_err(|why| {
            lines.error(
                &item.span(),
                format!("raida_servers[{i}] is \"{s}\": {why}"),
            )
        })?;
        out.push(s.to_string());
    }
    Ok(out)
}

/// Splits `"host:port"` (a bracketed IPv6 host is allowed by the syntax, though only IPv4
/// addresses are used).
pub(crate) fn split_host_port(s: &str) -> Result<(&str, u16), &'static str> {
    let (host, port) = s.rsplit_once(':').ok_or("expected host:port")?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if host.is_empty() {
        return Err("the host is empty");
    }
    let port: u16 = port
        .parse()
        .ok()
        .filter(|&p| p != 0)
        .ok_or("the port is not 1..=65535")?;
    Ok((host, port))
}

impl ServerConfig {
    /// This server's index and each peer's IPv4 address, resolved now. A host that does not
    /// resolve to IPv4 gets no address (a fix then has no vote from it); the returned
    /// warnings say which and why.
    pub fn node_config(&self) -> (NodeConfig, Vec<String>) {
        let mut peers = [None; TOTAL_RAIDA_SERVERS];
        let mut warnings = Vec::new();
        for (i, server) in self.raida_servers.iter().enumerate() {
            if i == usize::from(self.raida_id) {
                continue; // this server is never asked
            }
            match resolve_v4(server) {
                Ok(addr) => peers[i] = Some(addr),
                Err(why) => warnings.push(format!("raida_servers[{i}] \"{server}\": {why}")),
            }
        }
        (
            NodeConfig {
                raida_no: self.raida_id,
                peers,
            },
            warnings,
        )
    }
}

/// The first IPv4 address `server` ("host:port") resolves to.
fn resolve_v4(server: &str) -> Result<SocketAddrV4, String> {
    let (host, port) = split_host_port(server).map_err(str::to_string)?;
    let addrs = (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("does not resolve: {e}"))?;
    addrs
        .filter_map(|a| match a {
            SocketAddr::V4(v4) => Some(v4),
            SocketAddr::V6(_) => None,
        })
        .next()
        .ok_or_else(|| "resolves to no IPv4 address".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn servers_toml(n: usize, base: u16) -> String {
        let items: Vec<String> = (0..n)
            .map(|i| format!("  \"127.0.0.1:{}\",", base + i as u16))
            .collect();
        format!("raida_servers = [\n{}\n]\n", items.join("\n"))
    }

    fn error_of(text: &str) -> ConfigError {
        parse(text).unwrap_err()
    }

    #[test]
    fn reads_the_legacy_server_layout() {
        // the legacy server's own file: keys in [server], many keys this library ignores
        let text = format!(
            "# RAIDA 14\n[server]\nraida_id = 14\ncoin_id = 6\nport = 50014\nbackup_freq = 5\n\
             synchronization_enabled = false\nroot_path = \"/opt/wraidax\"\n\
             admin_key = \"6de9439834c9147569741d3c9c9fc010\"\nratio = 1.5e3\n\
             started = 2024-01-02T03:04:05Z\n{}\n[other]\nraida_id = \"not ours\"\n",
            servers_toml(25, 50000)
        );
        let config = parse(&text).unwrap();
        assert_eq!(config.raida_id, 14);
        assert_eq!(config.coin_id, Some(6));
        assert_eq!(config.port, Some(50014));
        assert_eq!(config.raida_servers.len(), 25);
        assert_eq!(config.raida_servers[0], "127.0.0.1:50000");
        assert_eq!(config.raida_servers[24], "127.0.0.1:50024");
    }

    #[test]
    fn reads_top_level_keys_and_toml_forms() {
        let items: String = (0..25)
            .map(|i| match i % 3 {
                0 => format!("\"127.0.0.1:{}\",\n", 40000 + i),
                1 => format!("'localhost:{}', # a comment\n", 40000 + i),
                _ => format!("\"127.0.0.\\u0031:{}\" ,\n", 40000 + i),
            })
            .collect();
        let text = format!(
            "raida_id = 0x3 # hex\r\ncoin_id = +2_0\nnested = {{ a = 1, b = [1, 2] }}\n\
             notes = \"\"\"\nline one\nline two\n\"\"\"\nraida_servers = [ {items}]\n\
             [[servers_extra]]\nport = \"ignored\"\n"
        );
        let config = parse(&text).unwrap();
        assert_eq!(config.raida_id, 3);
        assert_eq!(config.coin_id, Some(20));
        assert_eq!(config.port, None);
        assert_eq!(config.raida_servers[1], "localhost:40001");
        assert_eq!(config.raida_servers[2], "127.0.0.1:40002");
    }

    #[test]
    fn errors_name_the_line() {
        let base = servers_toml(25, 50000);
        for (text, want) in [
            (
                format!("raida_id = 25\n{base}"),
                "line 1: raida_id is 25, expected 0..=24",
            ),
            (
                format!("raida_id = 1\n{}", servers_toml(24, 50000)),
                "line 2: raida_servers has 24 entries, expected 25 (index = RAIDA number)",
            ),
            (
                format!(
                    "raida_id = 1\n{}",
                    base.replace("127.0.0.1:50004", "127.0.0.1")
                ),
                "line 7: raida_servers[4] is \"127.0.0.1\": expected host:port",
            ),
            (
                format!("raida_id = 1\nraida_id = 2\n{base}"),
                "line 2: not valid TOML: duplicate key: `raida_id`",
            ),
            (
                "raida_id = 1 2\n".into(),
                "line 1: not valid TOML: string values must be quoted, expected literal string: `1 2`",
            ),
            (
                "raida_id = 1\nname = \"open\n".into(),
                "line 2: not valid TOML: invalid basic string, expected `\"`",
            ),
            (
                "[server\nraida_id = 1\n".into(),
                "line 1: not valid TOML: unclosed table, expected `]`",
            ),
            (
                "raida_id 1\n".into(),
                "line 1: not valid TOML: key with no value, expected `=`",
            ),
            (
                "port = 8080\n".into(),
                "raida_id is missing (expected at the top or in [server])",
            ),
            (
                "raida_id = 4\n".into(),
                "raida_servers is missing (expected at the top or in [server])",
            ),
        ] {
            assert_eq!(error_of(&text).to_string(), want, "{text:?}");
        }
        // The line, and the message apart from it.
        let e = error_of(&format!("{base}\n\nraida_id = \"3\"\n"));
        assert_eq!(e.line, Some(30));
        assert_eq!(
            e.message,
            "raida_id must be an integer 0..=24, found a string"
        );
        let e = error_of(&format!(
            "raida_id = 1\n{}",
            base.replace("127.0.0.1:50004", "127.0.0.1:0")
        ));
        assert_eq!(e.line, Some(7));
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        let text = format!("raida_id = 1\nx = {}\n", "[".repeat(100_000));
        let e = error_of(&text);
        assert_eq!(e.line, Some(2), "{e}");
        assert!(e.message.starts_with("not valid TOML: "), "{e}");
    }

    #[test]
    fn keys_in_other_tables_do_not_count() {
        let text = format!("[client]\nraida_id = 3\n{}", servers_toml(25, 1));
        assert_eq!(
            error_of(&text).message,
            "raida_id is missing (expected at the top or in [server])"
        );
    }

    #[test]
    fn resolves_peers_to_ipv4_and_skips_itself() {
        let mut servers: Vec<String> = (0..25)
            .map(|i| format!("127.0.0.1:{}", 41000 + i))
            .collect();
        servers[1] = "localhost:41001".into();
        servers[2] = "no-such-host.invalid:41002".into();
        servers[3] = "[::1]:41003".into();
        let config = ServerConfig {
            raida_id: 7,
            coin_id: None,
            port: None,
            flush_freq: None,
            raida_servers: servers,
        };
        let (node, warnings) = config.node_config();
        assert_eq!(node.raida_no, 7);
        assert_eq!(node.peers[0], Some("127.0.0.1:41000".parse().unwrap()));
        assert_eq!(node.peers[1].map(|a| a.port()), Some(41001));
        assert_eq!(node.peers[2], None);
        assert_eq!(node.peers[3], None);
        assert_eq!(node.peers[7], None);
        assert_eq!(node.peers[24], Some("127.0.0.1:41024".parse().unwrap()));
        assert_eq!(warnings.len(), 2);
        assert!(warnings[0]
            .starts_with("raida_servers[2] \"no-such-host.invalid:41002\": does not resolve"));
        assert_eq!(
            warnings[1],
            "raida_servers[3] \"[::1]:41003\": resolves to no IPv4 address"
        );
    }

    #[test]
    fn load_names_the_file() {
        let path = std::env::temp_dir().join(format!(
            "raida_config_{}_{}.toml",
            std::process::id(),
            crate::random::u32_from_os().expect("OS randomness")
        ));
        std::fs::write(&path, "raida_id = 99\n").unwrap();
        let e = load(&path).unwrap_err();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(
            e.to_string(),
            format!("{}:1: raida_id is 99, expected 0..=24", path.display())
        );
        let e = load(&path).unwrap_err();
        assert_eq!(e.line, None);
        assert_eq!(
            e.to_string(),
            format!("{}: No such file or directory (os error 2)", path.display())
        );
    }
}

#[cfg(test)]
mod fixtures {
    //! The fixture files in tests/fixtures/config: each `X.toml` with its `X.expect`, the
    //! summary of what was read or the exact error. The C node's unit test reads the same
    //! files through `raida_healing_config_parse` and expects the same lines.
    use super::*;
    use std::path::PathBuf;

    /// One line describing what a config file yields (the C test prints the same).
    fn summary(result: &Result<ServerConfig, ConfigError>) -> String {
        let opt = |v: Option<String>| v.unwrap_or_else(|| "-".to_string());
        match result {
            Ok(c) => format!(
                "ok raida_id={} coin_id={} port={} flush_freq={} raida_servers[0]={} raida_servers[24]={}",
                c.raida_id,
                opt(c.coin_id.map(|v| v.to_string())),
                opt(c.port.map(|v| v.to_string())),
                opt(c.flush_freq.map(|v| v.to_string())),
                c.raida_servers[0],
                c.raida_servers[24]
            ),
            Err(e) => format!("error {e}"),
        }
    }

    fn cases(kind: &str) -> Vec<PathBuf> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/config")
            .join(kind);
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        files.sort();
        files
    }

    fn check(kind: &str, want_ok: bool) {
        let files = cases(kind);
        assert!(files.len() >= 4, "fixtures of {kind} are missing");
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap();
            let result = parse(&text);
            assert_eq!(
                result.is_ok(),
                want_ok,
                "{}: {}",
                file.display(),
                summary(&result)
            );
            let expect = std::fs::read_to_string(file.with_extension("expect")).unwrap();
            assert_eq!(summary(&result), expect.trim_end(), "{}", file.display());
        }
    }

    #[test]
    fn valid_files_are_read() {
        check("valid", true);
    }

    #[test]
    fn invalid_files_are_refused_with_their_line() {
        check("invalid", false);
    }
}
