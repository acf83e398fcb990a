//! The server folder's `config.toml`, read where no server has read it for us.
//!
//! The contract (shared with the C node, which writes the same file):
//! - `raida_id` (integer 0..=24): this server's RAIDA index. Required.
//! - `raida_servers` (array of exactly 25 `"host:port"` strings, index = RAIDA number):
//!   where each RAIDA listens. Required. Hosts are resolved to IPv4 by
//!   [`ServerConfig::node_config`].
//! - `coin_id` (integer 0..=255) and `port` (integer 1..=65535): optional, checked when
//!   present.
//! - The keys may sit at the top of the file or in a `[server]` table (the legacy server's
//!   layout). Other keys and other tables are ignored, values included.
//!
//! The reader knows the TOML a config file uses (comments, basic and literal strings,
//! multi-line strings, integers, booleans, floats and dates as opaque values, arrays over
//! several lines with trailing commas, inline tables) and reports the line of any error.
//! A whole TOML library is not needed for four keys and would be one more dependency in a
//! library linked into servers.

use std::fmt;
use std::net::{SocketAddr, SocketAddrV4, ToSocketAddrs};
use std::path::Path;

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

fn error_at(line: usize, message: impl Into<String>) -> ConfigError {
    ConfigError {
        file: None,
        line: Some(line),
        message: message.into(),
    }
}

/// The largest `config.toml` read (a real one is a few KiB).
pub const MAX_CONFIG_BYTES: u64 = 1 << 20;

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
    let mut raida_id = None;
    let mut coin_id = None;
    let mut port = None;
    let mut raida_servers = None;
    for entry in entries(text)? {
        let Entry { line, key, value } = entry;
        match key.as_str() {
            "raida_id" => set_once(
                &mut raida_id,
                line,
                &key,
                int_in(&value, line, &key, 0, 24)?,
            )?,
            "coin_id" => set_once(
                &mut coin_id,
                line,
                &key,
                int_in(&value, line, &key, 0, 255)?,
            )?,
            "port" => set_once(&mut port, line, &key, int_in(&value, line, &key, 1, 65535)?)?,
            "raida_servers" => set_once(&mut raida_servers, line, &key, servers(&value, line)?)?,
            _ => {}
        }
    }
    let missing = |key: &str| ConfigError {
        file: None,
        line: None,
        message: format!("{key} is missing (expected at the top or in [server])"),
    };
    Ok(ServerConfig {
        raida_id: raida_id.ok_or_else(|| missing("raida_id"))?.1 as u8,
        coin_id: coin_id.map(|(_, v)| v as u8),
        port: port.map(|(_, v)| v as u16),
        raida_servers: raida_servers.ok_or_else(|| missing("raida_servers"))?.1,
    })
}

/// Stores a key's value, refusing a second definition as TOML does.
fn set_once<T>(
    slot: &mut Option<(usize, T)>,
    line: usize,
    key: &str,
    value: T,
) -> Result<(), ConfigError> {
    if let Some((first, _)) = slot {
        return Err(error_at(
            line,
            format!("{key} is set again (first set on line {first})"),
        ));
    }
    *slot = Some((line, value));
    Ok(())
}

fn int_in(value: &Value, line: usize, key: &str, min: i64, max: i64) -> Result<i64, ConfigError> {
    match value {
        Value::Int(v) if (min..=max).contains(v) => Ok(*v),
        Value::Int(v) => Err(error_at(
            line,
            format!("{key} is {v}, expected {min}..={max}"),
        )),
        other => Err(error_at(
            line,
            format!(
                "{key} must be an integer {min}..={max}, found {}",
                other.kind()
            ),
        )),
    }
}

/// Checks `raida_servers`: 25 strings, each `host:port` with a non-empty host and a port
/// 1..=65535.
fn servers(value: &Value, line: usize) -> Result<Vec<String>, ConfigError> {
    let Value::Array(items) = value else {
        return Err(error_at(
            line,
            format!(
                "raida_servers must be an array of {TOTAL_RAIDA_SERVERS} \"host:port\" strings, found {}",
                value.kind()
            ),
        ));
    };
    if items.len() != TOTAL_RAIDA_SERVERS {
        return Err(error_at(
            line,
            format!(
                "raida_servers has {} entries, expected {TOTAL_RAIDA_SERVERS} (index = RAIDA number)",
                items.len()
            ),
        ));
    }
    let mut out = Vec::with_capacity(items.len());
    for (i, (item_line, item)) in items.iter().enumerate() {
        let Value::Str(s) = item else {
            return Err(error_at(
                *item_line,
                format!(
                    "raida_servers[{i}] must be a \"host:port\" string, found {}",
                    item.kind()
                ),
            ));
        };
        split_host_port(s)
            .map_err(|why| error_at(*item_line, format!("raida_servers[{i}] is \"{s}\": {why}")))?;
        out.push(s.clone());
    }
    Ok(out)
}

/// Splits `"host:port"` (a bracketed IPv6 host is allowed by the syntax, though only IPv4
/// addresses are used).
fn split_host_port(s: &str) -> Result<(&str, u16), &'static str> {
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

// ---- A TOML subset reader: just enough to find top-level and [server] keys. ----

/// A parsed value; only what the checks above look at is kept.
#[derive(Debug, Clone, PartialEq)]
enum Value {
    Int(i64),
    Str(String),
    /// Items with the line each starts on.
    Array(Vec<(usize, Value)>),
    /// A boolean, float, date, inline table or anything else not needed here.
    Other(&'static str),
}

impl Value {
    fn kind(&self) -> &'static str {
        match self {
            Value::Int(_) => "an integer",
            Value::Str(_) => "a string",
            Value::Array(_) => "an array",
            Value::Other(kind) => kind,
        }
    }
}

/// A `key = value` the checks care about: in the root table or in `[server]`.
struct Entry {
    line: usize,
    key: String,
    value: Value,
}

/// Every key/value of the root table and of `[server]`, in file order.
fn entries(text: &str) -> Result<Vec<Entry>, ConfigError> {
    let mut p = Parser {
        chars: text.chars().collect(),
        at: 0,
        line: 1,
        depth: 0,
    };
    let mut out = Vec::new();
    let mut in_scope = true; // the root table
    loop {
        p.skip_blank_lines();
        let Some(c) = p.peek() else {
            return Ok(out);
        };
        let line = p.line;
        if c == '[' {
            let path = p.table_header()?;
            in_scope = path.len() == 1 && path[0] == "server";
        } else {
            let key = p.key_path()?;
            p.skip_spaces();
            if p.peek() != Some('=') {
                return Err(error_at(line, "expected `=` after the key"));
            }
            p.at += 1;
            p.skip_spaces();
            let value = p.value()?;
            p.end_of_line()?;
            if in_scope && key.len() == 1 {
                out.push(Entry {
                    line,
                    key: key.into_iter().next().expect("one part"),
                    value,
                });
            }
        }
    }
}

/// How deep arrays and inline tables may nest. Real configs nest one or two levels; the
/// bound keeps a corrupt file from overflowing the stack of the process that opens it.
const MAX_NESTING: usize = 64;

struct Parser {
    chars: Vec<char>,
    at: usize,
    line: usize,
    /// Arrays and inline tables currently open around the value being read.
    depth: usize,
}

impl Parser {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.at).copied()
    }

    fn starts_with(&self, s: &str) -> bool {
        s.chars()
            .enumerate()
            .all(|(i, c)| self.chars.get(self.at + i) == Some(&c))
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.at += 1;
        if c == '\n' {
            self.line += 1;
        }
        Some(c)
    }

    fn skip_spaces(&mut self) {
        while matches!(self.peek(), Some(' ' | '\t')) {
            self.at += 1;
        }
    }

    fn skip_comment(&mut self) {
        if self.peek() == Some('#') {
            while !matches!(self.peek(), None | Some('\n')) {
                self.at += 1;
            }
        }
    }

    /// Skips spaces, comments and newlines (between statements, and inside arrays).
    fn skip_blank_lines(&mut self) {
        loop {
            self.skip_spaces();
            self.skip_comment();
            match self.peek() {
                Some('\n') => {
                    self.bump();
                }
                Some('\r') if self.chars.get(self.at + 1) == Some(&'\n') => {
                    self.at += 1;
                }
                _ => return,
            }
        }
    }

    /// After a value: optional spaces and comment, then a newline or the end.
    fn end_of_line(&mut self) -> Result<(), ConfigError> {
        self.skip_spaces();
        self.skip_comment();
        if self.peek() == Some('\r') {
            self.at += 1;
        }
        match self.peek() {
            None => Ok(()),
            Some('\n') => {
                self.bump();
                Ok(())
            }
            Some(c) => Err(error_at(
                self.line,
                format!("unexpected `{c}` after the value (one key = value per line)"),
            )),
        }
    }

    /// `[a.b]` or `[[a.b]]`, returning the dotted path.
    fn table_header(&mut self) -> Result<Vec<String>, ConfigError> {
        let line = self.line;
        let double = self.starts_with("[[");
        self.at += if double { 2 } else { 1 };
        self.skip_spaces();
        let path = self.key_path()?;
        self.skip_spaces();
        let close = if double { "]]" } else { "]" };
        if !self.starts_with(close) {
            return Err(error_at(
                line,
                format!("expected `{close}` to close the table header"),
            ));
        }
        self.at += close.len();
        self.end_of_line()?;
        Ok(path)
    }

    /// A key: bare or quoted parts joined by dots.
    fn key_path(&mut self) -> Result<Vec<String>, ConfigError> {
        let mut parts = Vec::new();
        loop {
            self.skip_spaces();
            let line = self.line;
            let part = match self.peek() {
                Some('"') => self.basic_string()?,
                Some('\'') => self.literal_string()?,
                Some(c) if is_bare_key_char(c) => {
                    let start = self.at;
                    while self.peek().is_some_and(is_bare_key_char) {
                        self.at += 1;
                    }
                    self.chars[start..self.at].iter().collect()
                }
                Some(c) => {
                    return Err(error_at(
                        line,
                        format!("unexpected `{c}` where a key belongs"),
                    ))
                }
                None => return Err(error_at(line, "a key is missing")),
            };
            parts.push(part);
            self.skip_spaces();
            if self.peek() == Some('.') {
                self.at += 1;
            } else {
                return Ok(parts);
            }
        }
    }

    fn value(&mut self) -> Result<Value, ConfigError> {
        let line = self.line;
        match self.peek() {
            Some('"') => Ok(Value::Str(self.basic_string()?)),
            Some('\'') => Ok(Value::Str(self.literal_string()?)),
            Some(c @ ('[' | '{')) => {
                if self.depth >= MAX_NESTING {
                    return Err(error_at(
                        line,
                        format!("values nested more than {MAX_NESTING} levels deep"),
                    ));
                }
                self.depth += 1;
                let value = if c == '[' {
                    self.array()
                } else {
                    self.inline_table()
                };
                self.depth -= 1;
                value
            }
            Some(_) => self.scalar(),
            None => Err(error_at(line, "a value is missing after `=`")),
        }
    }

    /// `"..."` with escapes, or `"""..."""` over several lines.
    fn basic_string(&mut self) -> Result<String, ConfigError> {
        let line = self.line;
        let multi = self.starts_with("\"\"\"");
        self.at += if multi { 3 } else { 1 };
        if multi && self.peek() == Some('\n') {
            self.bump();
        }
        let mut out = String::new();
        loop {
            if multi && self.starts_with("\"\"\"") {
                self.at += 3;
                return Ok(out);
            }
            match self.bump() {
                None => return Err(error_at(line, "a string is not closed")),
                Some('"') if !multi => return Ok(out),
                Some('\n') if !multi => {
                    return Err(error_at(line, "a string is not closed on its line"))
                }
                Some('\\') => {
                    let esc_line = self.line;
                    match self.bump() {
                        Some('n') => out.push('\n'),
                        Some('t') => out.push('\t'),
                        Some('r') => out.push('\r'),
                        Some('b') => out.push('\u{8}'),
                        Some('f') => out.push('\u{c}'),
                        Some('"') => out.push('"'),
                        Some('\\') => out.push('\\'),
                        Some(u @ ('u' | 'U')) => {
                            let n = if u == 'u' { 4 } else { 8 };
                            let hex: String = (0..n).filter_map(|_| self.bump()).collect();
                            let c = u32::from_str_radix(&hex, 16)
                                .ok()
                                .and_then(char::from_u32)
                                .ok_or_else(|| {
                                    error_at(esc_line, format!("bad escape \\{u}{hex}"))
                                })?;
                            out.push(c);
                        }
                        Some(c) if multi && c.is_whitespace() => {
                            // line-ending backslash: trim the following whitespace
                            while self.peek().is_some_and(char::is_whitespace) {
                                self.bump();
                            }
                        }
                        other => {
                            return Err(error_at(
                                esc_line,
                                format!(
                                    "bad escape \\{}",
                                    other.map(String::from).unwrap_or_default()
                                ),
                            ))
                        }
                    }
                }
                Some(c) => out.push(c),
            }
        }
    }

    /// `'...'` taken as is, or `'''...'''` over several lines.
    fn literal_string(&mut self) -> Result<String, ConfigError> {
        let line = self.line;
        let multi = self.starts_with("'''");
        self.at += if multi { 3 } else { 1 };
        if multi && self.peek() == Some('\n') {
            self.bump();
        }
        let mut out = String::new();
        loop {
            if multi && self.starts_with("'''") {
                self.at += 3;
                return Ok(out);
            }
            match self.bump() {
                None => return Err(error_at(line, "a string is not closed")),
                Some('\'') if !multi => return Ok(out),
                Some('\n') if !multi => {
                    return Err(error_at(line, "a string is not closed on its line"))
                }
                Some(c) => out.push(c),
            }
        }
    }

    /// `[v, v, ...]`, over any number of lines, comments and a trailing comma allowed.
    fn array(&mut self) -> Result<Value, ConfigError> {
        let line = self.line;
        self.at += 1;
        let mut items = Vec::new();
        loop {
            self.skip_blank_lines();
            match self.peek() {
                None => return Err(error_at(line, "an array is not closed with `]`")),
                Some(']') => {
                    self.at += 1;
                    return Ok(Value::Array(items));
                }
                Some(_) => {}
            }
            let item_line = self.line;
            items.push((item_line, self.value()?));
            self.skip_blank_lines();
            match self.peek() {
                Some(',') => self.at += 1,
                Some(']') => {}
                None => return Err(error_at(line, "an array is not closed with `]`")),
                Some(c) => {
                    return Err(error_at(
                        self.line,
                        format!("expected `,` or `]` in the array, found `{c}`"),
                    ))
                }
            }
        }
    }

    /// `{ k = v, ... }` on one line; its content is not needed.
    fn inline_table(&mut self) -> Result<Value, ConfigError> {
        let line = self.line;
        self.at += 1;
        loop {
            self.skip_spaces();
            match self.peek() {
                Some('}') => {
                    self.at += 1;
                    return Ok(Value::Other("an inline table"));
                }
                None | Some('\n') => {
                    return Err(error_at(line, "an inline table is not closed with `}`"))
                }
                Some(_) => {}
            }
            self.key_path()?;
            self.skip_spaces();
            if self.peek() != Some('=') {
                return Err(error_at(line, "expected `=` in the inline table"));
            }
            self.at += 1;
            self.skip_spaces();
            self.value()?;
            self.skip_spaces();
            if self.peek() == Some(',') {
                self.at += 1;
            }
        }
    }

    /// An integer, boolean, float or date: a run of characters up to a delimiter.
    fn scalar(&mut self) -> Result<Value, ConfigError> {
        let line = self.line;
        let start = self.at;
        while self
            .peek()
            .is_some_and(|c| !matches!(c, ',' | ']' | '}' | '#' | '\n' | '\r' | ' ' | '\t'))
        {
            self.at += 1;
        }
        // A date-time may hold one space between date and time.
        if self.peek() == Some(' ')
            && self
                .chars
                .get(self.at + 1)
                .is_some_and(char::is_ascii_digit)
            && self.chars[start..self.at]
                .iter()
                .filter(|&&c| c == '-')
                .count()
                == 2
        {
            self.at += 1;
            while self
                .peek()
                .is_some_and(|c| c.is_ascii_alphanumeric() || ":.+-".contains(c))
            {
                self.at += 1;
            }
        }
        let token: String = self.chars[start..self.at].iter().collect();
        if token.is_empty() {
            return Err(error_at(line, "a value is missing"));
        }
        if let Some(v) = parse_int(&token) {
            return Ok(Value::Int(v));
        }
        match token.as_str() {
            "true" | "false" => return Ok(Value::Other("a boolean")),
            "inf" | "+inf" | "-inf" | "nan" | "+nan" | "-nan" => {
                return Ok(Value::Other("a float"))
            }
            _ => {}
        }
        let first = token.chars().next().expect("not empty");
        if first.is_ascii_digit() || first == '+' || first == '-' {
            // floats and dates; their exact grammar does not matter here
            if token.contains([':', 'T', 't']) || token.matches('-').count() >= 2 {
                return Ok(Value::Other("a date"));
            }
            if token.replace('_', "").parse::<f64>().is_ok() {
                return Ok(Value::Other("a float"));
            }
        }
        Err(error_at(
            line,
            format!("`{token}` is not a TOML value (strings need quotes)"),
        ))
    }
}

fn is_bare_key_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

/// A TOML integer: decimal with optional sign and `_` between digits, or 0x/0o/0b.
fn parse_int(token: &str) -> Option<i64> {
    let digits_ok = |s: &str, radix: u32| {
        !s.is_empty()
            && !s.starts_with('_')
            && !s.ends_with('_')
            && !s.contains("__")
            && s.chars().all(|c| c == '_' || c.is_digit(radix))
    };
    for (prefix, radix) in [("0x", 16), ("0o", 8), ("0b", 2)] {
        if let Some(rest) = token.strip_prefix(prefix) {
            return digits_ok(rest, radix)
                .then(|| i64::from_str_radix(&rest.replace('_', ""), radix).ok())
                .flatten();
        }
    }
    let unsigned = token.strip_prefix(['+', '-']).unwrap_or(token);
    if !digits_ok(unsigned, 10) || (unsigned.len() > 1 && unsigned.starts_with('0')) {
        return None;
    }
    token.replace('_', "").parse().ok()
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
        let e = error_of(&format!("raida_id = 25\n{base}"));
        assert_eq!(e.to_string(), "line 1: raida_id is 25, expected 0..=24");
        let e = error_of(&format!("{base}\n\nraida_id = \"3\"\n"));
        assert_eq!(e.line, Some(30));
        assert_eq!(
            e.message,
            "raida_id must be an integer 0..=24, found a string"
        );
        let e = error_of(&format!("raida_id = 1\n{}", servers_toml(24, 50000)));
        assert_eq!(
            e.to_string(),
            "line 2: raida_servers has 24 entries, expected 25 (index = RAIDA number)"
        );
        let e = error_of(&format!(
            "raida_id = 1\n{}",
            base.replace("127.0.0.1:50004", "127.0.0.1")
        ));
        assert_eq!(
            e.to_string(),
            "line 7: raida_servers[4] is \"127.0.0.1\": expected host:port"
        );
        let e = error_of(&format!(
            "raida_id = 1\n{}",
            base.replace("127.0.0.1:50004", "127.0.0.1:0")
        ));
        assert_eq!(e.line, Some(7));
        let e = error_of(&format!("raida_id = 1\nraida_id = 2\n{base}"));
        assert_eq!(
            e.to_string(),
            "line 2: raida_id is set again (first set on line 1)"
        );
        let e = error_of(&format!("raida_id = 1 2\n{base}"));
        assert_eq!(e.line, Some(1));
        let e = error_of("raida_id = 1\nraida_servers = [\"a:1\",\n");
        assert_eq!(e.to_string(), "line 2: an array is not closed with `]`");
        let e = error_of("raida_id = 1\nname = \"open\n");
        assert_eq!(e.to_string(), "line 2: a string is not closed on its line");
        let e = error_of("raida_id = 1\nhost = localhost\n");
        assert_eq!(
            e.to_string(),
            "line 2: `localhost` is not a TOML value (strings need quotes)"
        );
        let e = error_of("[server\nraida_id = 1\n");
        assert_eq!(
            e.to_string(),
            "line 1: expected `]` to close the table header"
        );
        let e = error_of("raida_id 1\n");
        assert_eq!(e.to_string(), "line 1: expected `=` after the key");
        let e = error_of("port = 8080\n");
        assert_eq!(
            e.to_string(),
            "raida_id is missing (expected at the top or in [server])"
        );
        let e = error_of("raida_id = 4\n");
        assert_eq!(
            e.to_string(),
            "raida_servers is missing (expected at the top or in [server])"
        );
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

    #[test]
    fn integers() {
        assert_eq!(parse_int("0"), Some(0));
        assert_eq!(parse_int("-17"), Some(-17));
        assert_eq!(parse_int("1_000"), Some(1000));
        assert_eq!(parse_int("0xff"), Some(255));
        assert_eq!(parse_int("0b101"), Some(5));
        assert_eq!(parse_int("007"), None);
        assert_eq!(parse_int("1__0"), None);
        assert_eq!(parse_int("_1"), None);
        assert_eq!(parse_int("1.5"), None);
    }
}
