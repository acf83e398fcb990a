//! The Prometheus text exposition format (version 0.0.4), written from a [`Snapshot`]:
//! a `# HELP` and a `# TYPE` line per family (always, even with no sample yet), samples
//! with escaped label values, histograms as cumulative `_bucket{le=...}` lines ending
//! with `le="+Inf"`, then `_sum` and `_count`; no timestamps (node_exporter's textfile
//! collector refuses them). Every series carries `raida="<index>"`.
//!
//! Adding a metric is one call in [`render`] and one row in docs/metrics.md (a test
//! compares the two).

use std::fmt::Write as _;

use super::Snapshot;

/// A histogram: counts per bucket (not cumulative; the last one is above every bound),
/// the sum and the count of the observations.
#[derive(Debug, Clone, PartialEq)]
pub struct Histogram {
    bounds: &'static [f64],
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Histogram {
    /// An empty histogram over `bounds` (increasing upper bounds).
    pub fn new(bounds: &'static [f64]) -> Histogram {
        Histogram {
            bounds,
            counts: vec![0; bounds.len() + 1],
            sum: 0.0,
            count: 0,
        }
    }

    /// Adds one observation.
    pub fn observe(&mut self, value: f64) {
        let bucket = self.bounds.partition_point(|&bound| bound < value);
        self.counts[bucket] += 1;
        self.sum += value;
        self.count += 1;
    }

    /// Observations made.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Their sum.
    pub fn sum(&self) -> f64 {
        self.sum
    }

    /// `(upper bound, observations at or below it)`, the last bound `+Inf`.
    pub fn cumulative(&self) -> impl Iterator<Item = (f64, u64)> + '_ {
        let bounds = self.bounds.iter().copied().chain([f64::INFINITY]);
        bounds.zip(self.counts.iter().scan(0u64, |total, &n| {
            *total += n;
            Some(*total)
        }))
    }
}

/// What a family is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

/// A sample value, written as Prometheus reads it.
pub trait Value {
    fn write_to(&self, out: &mut String);
}

impl Value for u64 {
    fn write_to(&self, out: &mut String) {
        let _ = write!(out, "{self}");
    }
}

impl Value for f64 {
    fn write_to(&self, out: &mut String) {
        if self.is_nan() {
            out.push_str("NaN");
        } else if self.is_infinite() {
            out.push_str(if *self > 0.0 { "+Inf" } else { "-Inf" });
        } else {
            // Rust's shortest round-trip form, never an exponent: Prometheus parses it.
            let _ = write!(out, "{self}");
        }
    }
}

/// A text being written: families, each with its samples.
pub struct Exposition {
    out: String,
    raida: String,
}

/// A label value escaped as the text format wants: `\` `"` and newline.
pub fn escape_label(value: &str) -> String {
    let mut escaped = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => escaped.push_str("\\\\"),
            '"' => escaped.push_str("\\\""),
            '\n' => escaped.push_str("\\n"),
            c => escaped.push(c),
        }
    }
    escaped
}

/// A HELP text escaped as the text format wants: `\` and newline.
fn escape_help(help: &str) -> String {
    help.replace('\\', "\\\\").replace('\n', "\\n")
}

impl Exposition {
    /// An empty text whose series all carry `raida="<raida>"` ("unknown" for `None`).
    pub fn new(raida: Option<u8>) -> Exposition {
        Exposition {
            out: String::with_capacity(16 * 1024),
            raida: raida.map_or_else(|| "unknown".to_string(), |r| r.to_string()),
        }
    }

    /// Starts the family `name`: its HELP and TYPE lines.
    pub fn family(&mut self, name: &str, kind: Kind, help: &str) -> &mut Exposition {
        let _ = writeln!(self.out, "# HELP {name} {}", escape_help(help));
        let _ = writeln!(self.out, "# TYPE {name} {}", kind.name());
        self
    }

    fn series(&mut self, name: &str, labels: &[(&str, &str)]) {
        let _ = write!(self.out, "{name}{{raida=\"{}\"", escape_label(&self.raida));
        for (label, value) in labels {
            let _ = write!(self.out, ",{label}=\"{}\"", escape_label(value));
        }
        self.out.push_str("} ");
    }

    /// One sample of the current family.
    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl Value) -> &mut Exposition {
        self.series(name, labels);
        value.write_to(&mut self.out);
        self.out.push('\n');
        self
    }

    /// One histogram series of the current family `name`: its buckets, sum and count.
    pub fn histogram(&mut self, name: &str, labels: &[(&str, &str)], h: &Histogram) -> &mut Exposition {
        let bucket = format!("{name}_bucket");
        for (bound, count) in h.cumulative() {
            let mut le = String::new();
            bound.write_to(&mut le);
            let mut with_le: Vec<(&str, &str)> = labels.to_vec();
            with_le.push(("le", &le));
            self.sample(&bucket, &with_le, count);
        }
        self.sample(&format!("{name}_sum"), labels, h.sum());
        self.sample(&format!("{name}_count"), labels, h.count())
    }

    /// The text.
    pub fn finish(self) -> String {
        self.out
    }
}

/// The whole metrics text of `s`. One family per block: adding a metric is one block here
/// and one row in docs/metrics.md.
pub fn render(s: &Snapshot) -> String {
    use Kind::{Counter, Gauge};
    let mut t = Exposition::new(s.raida);

    t.family("raida_healing_build_info", Gauge, "The library's version; always 1.")
        .sample("raida_healing_build_info", &[("version", &s.version)], 1u64);
    t.family("raida_healing_start_time_seconds", Gauge, "When the library was first used in this process, in seconds since the Unix epoch.")
        .sample("raida_healing_start_time_seconds", &[], s.start_time_seconds);

    // Commands, at the C boundary.
    let b = &s.boundary;
    t.family("raida_healing_commands_total", Counter, "Commands answered, by command and status code.");
    for ((command, status), h) in &b.commands {
        t.sample("raida_healing_commands_total", &[("command", command), ("status", &status.to_string())], h.count());
    }
    t.family("raida_healing_command_duration_seconds", Kind::Histogram, "Time from a handler's call to its answer, by command and status code.");
    for ((command, status), h) in &b.commands {
        t.histogram("raida_healing_command_duration_seconds", &[("command", command), ("status", &status.to_string())], h);
    }
    t.family("raida_healing_panics_total", Counter, "Panics caught at the C boundary (each a bug), by export.");
    for (export, n) in &b.panics {
        t.sample("raida_healing_panics_total", &[("export", export)], *n);
    }
    t.family("raida_healing_store_page_write_failures_total", Counter, "Commands whose page writes the standalone store could not keep (answered 252).")
        .sample("raida_healing_store_page_write_failures_total", &[], b.store_write_failures);

    // Fixes.
    let f = &s.fix;
    t.family("raida_healing_fix_coins_fixed_total", Counter, "Coins fixes answered as fixed (repeats in a request included).")
        .sample("raida_healing_fix_coins_fixed_total", &[], f.coins_fixed);
    t.family("raida_healing_fix_coins_not_fixed_total", Counter, "Coins fixes answered as not fixed, by fixes that asked their peers.")
        .sample("raida_healing_fix_coins_not_fixed_total", &[], f.coins_not_fixed);
    t.family("raida_healing_fix_coin_votes", Kind::Histogram, "Votes each coin of a fix got, this server's own included (14 fix it).")
        .histogram("raida_healing_fix_coin_votes", &[], &f.coin_votes);
    t.family("raida_healing_fix_peer_outcomes_total", Counter, "How each peer ended each fix, by peer and outcome (the fix summary's columns).");
    for ((peer, outcome), n) in &f.peer_outcomes {
        t.sample("raida_healing_fix_peer_outcomes_total", &[("peer", &peer.to_string()), ("outcome", outcome)], *n);
    }

    // Peers.
    let peers: Vec<(String, &super::PeerFigures)> = s.peers.iter().map(|p| (p.peer.to_string(), p)).collect();
    let per_peer = |t: &mut Exposition, name: &str, kind: Kind, help: &str, value: &dyn Fn(&super::PeerFigures) -> f64| {
        t.family(name, kind, help);
        for (label, p) in &peers {
            t.sample(name, &[("peer", label)], value(p));
        }
    };
    per_peer(&mut t, "raida_healing_peer_answers_total", Counter, "Well-formed answers from the peer (votes and refusals such as 43).", &|p| p.answers as f64);
    per_peer(&mut t, "raida_healing_peer_failures_total", Counter, "Refused connections and answers that broke the protocol.", &|p| p.failures as f64);
    per_peer(&mut t, "raida_healing_peer_timeouts_total", Counter, "Calls that reached their deadline with the peer still silent.", &|p| p.timeouts as f64);
    per_peer(&mut t, "raida_healing_peer_hedges_total", Counter, "Second connections opened because the peer was silent beyond its usual answer time.", &|p| p.hedges as f64);
    per_peer(&mut t, "raida_healing_peer_ejections_total", Counter, "Times the peer was ejected (and again after each failed probe).", &|p| p.ejections as f64);
    per_peer(&mut t, "raida_healing_peer_probes_total", Counter, "Probes of the peer while ejected that opened a connection.", &|p| p.probes as f64);
    per_peer(&mut t, "raida_healing_peer_ejected", Gauge, "1 while the peer is ejected (not asked, no vote, until a probe answers).", &|p| f64::from(u8::from(p.ejected)));
    per_peer(&mut t, "raida_healing_peer_consecutive_failures", Gauge, "Failed attempts since the peer's last valid answer.", &|p| f64::from(p.consecutive_failures));
    per_peer(&mut t, "raida_healing_peer_next_probe_seconds", Gauge, "While ejected, seconds until the peer's next probe may start; 0 otherwise.", &|p| p.next_probe_seconds);
    per_peer(&mut t, "raida_healing_peer_typical_answer_seconds", Gauge, "Typical time from connect to answer (EWMA); 0 before the first answer.", &|p| p.typical_answer_seconds);
    per_peer(&mut t, "raida_healing_peer_high_answer_seconds", Gauge, "High answer time (typical + 4 x mean deviation); 0 before the first answer.", &|p| p.high_answer_seconds);

    // The connection budget.
    let c = &s.connections;
    t.family("raida_healing_peer_connections", Gauge, "Peer connections held now, by every fix and job of the process.")
        .sample("raida_healing_peer_connections", &[], c.in_use);
    t.family("raida_healing_peer_connections_limit", Gauge, "Peer connections the process holds at most (RAIDA_HEALING_MAX_PEER_CONNECTIONS).")
        .sample("raida_healing_peer_connections_limit", &[], c.limit);
    t.family("raida_healing_peer_connection_waits_total", Counter, "Times a call found a peer's share of the budget full and waited for a slot.")
        .sample("raida_healing_peer_connection_waits_total", &[], c.waits);

    // The ticket pool.
    let p = &s.pool;
    t.family("raida_healing_tickets", Gauge, "Live tickets in the pool.")
        .sample("raida_healing_tickets", &[], p.tickets);
    t.family("raida_healing_ticket_coins", Gauge, "Coins listed by live tickets.")
        .sample("raida_healing_ticket_coins", &[], p.coins);
    t.family("raida_healing_ticket_pool_units", Gauge, "Pool capacity in use: one unit a coin, 7 a ticket.")
        .sample("raida_healing_ticket_pool_units", &[], p.units);
    t.family("raida_healing_ticket_pool_units_limit", Gauge, "Pool capacity: units the live tickets may use at most.")
        .sample("raida_healing_ticket_pool_units_limit", &[], p.units_limit);
    t.family("raida_healing_ticket_pool_memory_bound_bytes", Gauge, "Heap the ticket pool takes at most, full of tickets of any shape.")
        .sample("raida_healing_ticket_pool_memory_bound_bytes", &[], p.memory_bound_bytes);
    for (name, help, value) in [
        ("raida_healing_tickets_issued_total", "Tickets issued by get_ticket.", p.issued),
        ("raida_healing_tickets_expired_total", "Tickets that expired.", p.expired),
        ("raida_healing_tickets_refused_pool_full_total", "Tickets refused because the pool was full.", p.refused_full),
    ] {
        t.family(name, Counter, help);
        if let Some(value) = value {
            t.sample(name, &[], value);
        }
    }

    // Claims and the guess throttle.
    t.family("raida_healing_claims_total", Counter, "Claims of tickets (validate_ticket), by result and transport.");
    for claim in &s.claims {
        t.sample("raida_healing_claims_total", &[("result", claim.result), ("transport", claim.transport)], claim.count);
    }
    t.family("raida_healing_claim_tags_total", Counter, "Claims checked against the claim key, by what their tag proved (verified, unverified, bad_tag) and transport.");
    for tag in &s.claim_tags {
        t.sample("raida_healing_claim_tags_total", &[("tag", tag.result), ("transport", tag.transport)], tag.count);
    }
    t.family("raida_healing_claim_throttle_sources", Gauge, "Claim sources the guess throttle tracks now, by transport.");
    if let Some(throttle) = &s.throttle {
        t.sample("raida_healing_claim_throttle_sources", &[("transport", "tcp")], throttle.tcp_sources)
            .sample("raida_healing_claim_throttle_sources", &[("transport", "udp")], throttle.udp_sources);
    }
    t.family("raida_healing_claim_throttle_cut_off_sources", Gauge, "Claim sources the guess throttle refuses now (cut off for failed claims), by transport; sources sharing the overflow allowance count as one.");
    if let Some(throttle) = &s.throttle {
        t.sample("raida_healing_claim_throttle_cut_off_sources", &[("transport", "tcp")], throttle.tcp_cut_off)
            .sample("raida_healing_claim_throttle_cut_off_sources", &[("transport", "udp")], throttle.udp_cut_off);
    }
    t.family("raida_healing_claim_throttle_sources_limit", Gauge, "Claim sources the guess throttle tracks at most, per transport.");
    if let Some(throttle) = &s.throttle {
        t.sample("raida_healing_claim_throttle_sources_limit", &[], throttle.limit);
    }

    // The log's own limits.
    t.family("raida_healing_log_lines_suppressed_total", Counter, "Log lines a remote party caused that the per-kind limit held back (at most 3 a minute per kind are written), by kind.");
    for &(kind, count) in &s.suppressed_log_lines {
        t.sample("raida_healing_log_lines_suppressed_total", &[("kind", kind)], count);
    }

    // The file itself.
    t.family("raida_healing_metrics_file_write_failures_total", Counter, "Writes of the metrics file (RAIDA_HEALING_METRICS_FILE) that failed.")
        .sample("raida_healing_metrics_file_write_failures_total", &[], s.file_write_failures);

    t.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_escaped() {
        assert_eq!(escape_label("a\\b\"c\nd"), "a\\\\b\\\"c\\nd");
        let mut t = Exposition::new(Some(3));
        t.family("x", Kind::Gauge, "two\nlines \\ here")
            .sample("x", &[("v", "1\"2")], 1u64);
        assert_eq!(
            t.finish(),
            "# HELP x two\\nlines \\\\ here\n# TYPE x gauge\nx{raida=\"3\",v=\"1\\\"2\"} 1\n"
        );
    }

    #[test]
    fn histograms_are_cumulative_with_inf_sum_and_count() {
        const BOUNDS: &[f64] = &[0.5, 1.0];
        let mut h = Histogram::new(BOUNDS);
        for v in [0.25, 0.5, 0.75, 3.0] {
            h.observe(v);
        }
        let mut t = Exposition::new(None);
        t.family("d", Kind::Histogram, "h").histogram("d", &[("c", "fix")], &h);
        assert_eq!(
            t.finish(),
            "# HELP d h\n# TYPE d histogram\n\
             d_bucket{raida=\"unknown\",c=\"fix\",le=\"0.5\"} 2\n\
             d_bucket{raida=\"unknown\",c=\"fix\",le=\"1\"} 3\n\
             d_bucket{raida=\"unknown\",c=\"fix\",le=\"+Inf\"} 4\n\
             d_sum{raida=\"unknown\",c=\"fix\"} 4.5\n\
             d_count{raida=\"unknown\",c=\"fix\"} 4\n"
        );
    }

    #[test]
    fn values_never_use_exponents() {
        let mut out = String::new();
        1e-7f64.write_to(&mut out);
        out.push(' ');
        f64::NAN.write_to(&mut out);
        out.push(' ');
        123456789012u64.write_to(&mut out);
        assert_eq!(out, "0.0000001 NaN 123456789012");
    }

    /// Every family has HELP then TYPE, names are unique, and every sample line belongs
    /// to the family above it and carries the raida label; no line has a timestamp.
    #[test]
    fn an_empty_snapshot_renders_every_family_well_formed() {
        let text = render(&Snapshot::default());
        let mut families = Vec::new();
        let mut current: Option<(String, String)> = None;
        let lines: Vec<&str> = text.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            if let Some(rest) = line.strip_prefix("# HELP ") {
                let name = rest.split(' ').next().unwrap().to_string();
                let kind = lines[i + 1]
                    .strip_prefix(&format!("# TYPE {name} "))
                    .unwrap_or_else(|| panic!("no TYPE after HELP {name}"));
                assert!(!families.contains(&name), "{name} twice");
                families.push(name.clone());
                current = Some((name, kind.to_string()));
            } else if !line.starts_with('#') {
                let (name, kind) = current.as_ref().expect("a sample before any family");
                let series = line.split('{').next().unwrap();
                let ok = series == name
                    || (kind == "histogram"
                        && [format!("{name}_bucket"), format!("{name}_sum"), format!("{name}_count")]
                            .contains(&series.to_string()));
                assert!(ok, "{line} under {name}");
                assert!(line.contains("{raida=\"unknown\""), "{line}");
                let after = line.rsplit_once("} ").unwrap().1;
                assert!(!after.contains(' '), "a timestamp in {line}");
            }
        }
        assert!(families.iter().all(|f| f.starts_with("raida_healing_")));
        assert!(families.len() >= 30, "{}", families.len());
    }

    /// A snapshot with at least one sample in every family.
    fn full_snapshot() -> Snapshot {
        use super::super::stats::{BoundaryFigures, FixFigures};
        use super::super::{ClaimCount, PeerFigures};
        let mut boundary = BoundaryFigures::default();
        let mut h = Histogram::new(super::super::stats::DURATION_BUCKETS);
        h.observe(0.002);
        boundary.commands.insert(("fix", 241), h);
        boundary.panics.insert("cmd_fix", 1);
        let mut fix = FixFigures::default();
        fix.coin_votes.observe(14.0);
        fix.peer_outcomes.insert((7, "timed_out"), 3);
        Snapshot {
            raida: Some(4),
            version: "0.1.0".to_string(),
            boundary,
            fix,
            peers: vec![PeerFigures {
                peer: 7,
                ..PeerFigures::default()
            }],
            pool: super::super::PoolFigures {
                issued: Some(1),
                expired: Some(0),
                refused_full: Some(0),
                ..Default::default()
            },
            claims: vec![ClaimCount {
                result: "granted",
                transport: "tcp",
                count: 2,
            }],
            claim_tags: vec![ClaimCount {
                result: "verified",
                transport: "tcp",
                count: 2,
            }],
            throttle: Some(super::super::ThrottleFigures::default()),
            suppressed_log_lines: vec![("fix_refused", 4)],
            ..Snapshot::default()
        }
    }

    /// Per family: (type, help, label names of its samples, `raida` and `le` apart).
    fn families(text: &str) -> std::collections::BTreeMap<String, (String, String, Vec<String>)> {
        let mut out = std::collections::BTreeMap::new();
        let mut current = String::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# HELP ") {
                let (name, help) = rest.split_once(' ').unwrap();
                current = name.to_string();
                out.insert(current.clone(), (String::new(), help.to_string(), Vec::new()));
            } else if let Some(rest) = line.strip_prefix("# TYPE ") {
                out.get_mut(&current).unwrap().0 = rest.split_once(' ').unwrap().1.to_string();
            } else {
                let labels = line.split_once('{').unwrap().1.split_once('}').unwrap().0;
                let names: Vec<String> = labels
                    .split(',')
                    .map(|l| l.split_once('=').unwrap().0.to_string())
                    .filter(|l| l != "raida" && l != "le")
                    .collect();
                out.get_mut(&current).unwrap().2 = names;
            }
        }
        out
    }

    /// docs/metrics.md's table lists exactly the families [`render`] writes, each with
    /// its type, labels and HELP text.
    #[test]
    fn docs_metrics_table_matches_the_renderer() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/metrics.md");
        let docs = std::fs::read_to_string(path).unwrap();
        let mut documented = std::collections::BTreeMap::new();
        for line in docs.lines() {
            let cells: Vec<&str> = line.split(" | ").map(|c| c.trim_matches(|c| c == '|' || c == ' ')).collect();
            if cells.len() == 4 && cells[0].starts_with("`raida_healing_") {
                let labels: Vec<String> = match cells[2] {
                    "" | "-" => Vec::new(),
                    l => l.split(", ").map(|l| l.trim_matches('`').to_string()).collect(),
                };
                let name = cells[0].trim_matches('`').to_string();
                let old = documented.insert(name.clone(), (cells[1].to_string(), cells[3].to_string(), labels));
                assert!(old.is_none(), "{name} twice in docs/metrics.md");
            }
        }
        let rendered = families(&render(&full_snapshot()));
        let missing: Vec<_> = rendered.keys().filter(|k| !documented.contains_key(*k)).collect();
        let extra: Vec<_> = documented.keys().filter(|k| !rendered.contains_key(*k)).collect();
        assert!(missing.is_empty() && extra.is_empty(), "not documented: {missing:?}; documented, not rendered: {extra:?}");
        for (name, row) in &rendered {
            assert_eq!(&documented[name], row, "{name}: docs/metrics.md (left) and the renderer (right) differ");
        }
    }

    #[test]
    #[ignore = "prints the text of a full snapshot, for writing docs"]
    fn print_full_snapshot() {
        print!("{}", render(&full_snapshot()));
    }
}
