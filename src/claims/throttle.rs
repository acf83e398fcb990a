//! The guess throttle: a source whose claims keep naming tickets that do not exist is
//! guessing ids, and is refused for a while.
//!
//! Ticket ids are 32 random bits, so a guess hits one in 2^32 / live tickets: with the
//! pool's most tickets (131,296 one-coin tickets) one in about 32,700. Unthrottled, a
//! guesser making millions of claims a second would steal claims (and learn coins) every
//! few milliseconds. Each source may fail [`GUESS_BURST`] claims at once and one more per
//! [`GUESS_REFILL`] after that (a generic cell rate: a "theoretical arrival time" per
//! source); beyond that its claims are refused for [`GUESS_COOLDOWN`], live ticket or
//! not, so a guesser gets about 12 guesses a minute per source, about 0.5 hits a day
//! against a full pool of one-coin tickets.
//!
//! Why honest peers never reach it: a fix asks this server about one ticket, the one the
//! wallet got from it, so a peer fails a claim only when a wallet's ticket is stale
//! (older than 300 s, or taken by a newer ticket of the same coins): a few per fix at
//! most, a handful a minute on a peer healing coins all day. 60 at once, or more than
//! 12 a minute sustained, is guessing.
//!
//! A source is an IPv4 address, or an IPv6 /64 (one host usually has a whole /64), and
//! the transport the claims came by: TCP and UDP are counted in separate tables. A UDP
//! datagram's source address is whatever its sender wrote, so failures counted against
//! one could have been sent by anyone; they cut off only UDP claims from that address,
//! never the TCP claims whose address the handshake proved (the peer client claims over
//! TCP). The price: a guesser claiming by both from his own address has two allowances.
//!
//! Memory is bounded, and no number of addresses beats the throttle. At most
//! [`MAX_TRACKED_SOURCES`] failing sources have an entry of their own per transport, and
//! an entry is dropped only when it carries nothing (its allowance whole, not cut off), so
//! a source never starts afresh by being pushed out. A failing source that finds the table
//! full of sources that still owe shares one overflow allowance with every other such
//! source, and while that one is cut off their claims are refused. So, whatever the number
//! of sources, at most [`MAX_TRACKED_SOURCES`] + [`MAX_STANDING_SOURCES`] + 1 allowances
//! exist per transport ([`MAX_GUESSES_PER_SECOND`] sustained). Sources whose claims
//! succeeded recently (real peers) keep a place of their own ([`MAX_STANDING_SOURCES`],
//! the least recently successful one giving way, its debt kept), so an attacker who fills
//! the table cuts off only claimers that never succeeded here. Forged UDP sources never
//! touch the TCP table, and the `listed` claim policy shuts both out before the throttle
//! is consulted (it refuses every UDP claim).

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use parking_lot::Mutex;

use super::policy::ipv4_of;
use super::source::{ClaimSource, Transport};

/// Failed claims a source may make at once.
pub const GUESS_BURST: u32 = 60;
/// After the burst, one more failed claim is allowed per this long (12 a minute).
pub const GUESS_REFILL: Duration = Duration::from_secs(5);
/// A source beyond its allowance has every claim refused this long (a ticket lifetime).
pub const GUESS_COOLDOWN: Duration = Duration::from_secs(300);
/// At most this many failing sources with an entry of their own per transport (about 56
/// bytes each in the table).
pub const MAX_TRACKED_SOURCES: usize = 4096;
/// At most this many sources whose claims succeeded recently keep an entry of their own
/// per transport, whatever fills the table of failing ones (24 peers, several addresses
/// each).
pub const MAX_STANDING_SOURCES: usize = 256;
/// Failed claims per second that every source of one transport together can sustain,
/// whatever their number: one refill per [`GUESS_REFILL`] for each allowance that can
/// exist (own entries, standing entries, the shared overflow), after one burst of
/// [`GUESS_BURST`] each.
pub const MAX_GUESSES_PER_SECOND: u64 =
    (MAX_TRACKED_SOURCES + MAX_STANDING_SOURCES + 1) as u64 / GUESS_REFILL.as_secs();
/// A source's refusals are logged at most once per this long.
const LOG_INTERVAL: Duration = Duration::from_secs(60);

/// Where failed claims are counted: an IPv4 address, or an IPv6 /64 prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SourceKey {
    V4(u32),
    V6Prefix(u64),
}

impl SourceKey {
    /// The source `ip` counts against (an IPv4-mapped IPv6 address counts as IPv4).
    pub fn of(ip: IpAddr) -> SourceKey {
        match (ipv4_of(ip), ip) {
            (Some(v4), _) => SourceKey::V4(u32::from(v4)),
            (None, IpAddr::V6(v6)) => SourceKey::V6Prefix((u128::from(v6) >> 64) as u64),
            (None, IpAddr::V4(_)) => unreachable!("an IPv4 address always has its IPv4 form"),
        }
    }
}

impl SourceKey {
    /// One number per source, IPv4 addresses and IPv6 /64s apart (the connection budget's
    /// turns are kept by it).
    pub fn id(self) -> u128 {
        match self {
            SourceKey::V4(v4) => (1u128 << 64) | u128::from(v4),
            SourceKey::V6Prefix(prefix) => u128::from(prefix),
        }
    }
}

impl fmt::Display for SourceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            SourceKey::V4(v4) => write!(f, "{}", std::net::Ipv4Addr::from(v4)),
            SourceKey::V6Prefix(prefix) => {
                write!(
                    f,
                    "{}/64",
                    std::net::Ipv6Addr::from(u128::from(prefix) << 64)
                )
            }
        }
    }
}

/// At most one log line per [`LOG_INTERVAL`] about one source, counting what was not
/// logged in between.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct LogGate {
    /// The last line, if any.
    logged_at: Option<Duration>,
    /// Refusals since that line.
    skipped: u32,
}

impl LogGate {
    /// `Some(refusals not logged since the last line)` when a line may be logged at `now`;
    /// otherwise counts this refusal.
    pub(super) fn may_log(&mut self, now: Duration) -> Option<u32> {
        if self
            .logged_at
            .is_some_and(|at| now.saturating_sub(at) < LOG_INTERVAL)
        {
            self.skipped = self.skipped.saturating_add(1);
            return None;
        }
        self.logged_at = Some(now);
        Some(std::mem::take(&mut self.skipped))
    }
}

/// One source's allowance.
#[derive(Debug, Clone, Copy, Default)]
struct Allowance {
    /// When the source's allowance will be whole again (its theoretical arrival time).
    refilled_at: Duration,
    /// Claims are refused until then.
    cut_off_until: Duration,
    /// The lines logged about this source.
    log: LogGate,
}

impl Allowance {
    fn cut_off(&self, now: Duration) -> bool {
        now < self.cut_off_until
    }

    /// Carries nothing: its allowance is whole and it is not cut off.
    fn idle(&self, now: Duration) -> bool {
        self.refilled_at <= now && !self.cut_off(now)
    }

    /// When it will carry nothing: allowance whole and cooldown over.
    fn idle_at(&self) -> Duration {
        self.refilled_at.max(self.cut_off_until)
    }

    /// Takes on what `other` owes at `now` (its debt added to this one's, the later
    /// cooldown), so an allowance that gives up its own entry loses nothing.
    fn absorb(&mut self, other: &Allowance, now: Duration) {
        let owed = other.refilled_at.saturating_sub(now);
        if owed > Duration::ZERO {
            self.refilled_at = self.refilled_at.max(now) + owed;
        }
        self.cut_off_until = self.cut_off_until.max(other.cut_off_until);
        if self.refilled_at.saturating_sub(now) > GUESS_REFILL * GUESS_BURST && !self.cut_off(now)
        {
            self.cut_off_until = now + GUESS_COOLDOWN;
        }
    }

    /// Counts one failed claim; true when it takes the source beyond its allowance (and
    /// starts the cooldown).
    fn fail(&mut self, now: Duration) -> bool {
        self.refilled_at = self.refilled_at.max(now) + GUESS_REFILL;
        if self.refilled_at - now > GUESS_REFILL * GUESS_BURST && !self.cut_off(now) {
            self.cut_off_until = now + GUESS_COOLDOWN;
            return true;
        }
        false
    }
}

/// What the throttle says about a claim before the pool is asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceVerdict {
    /// The source may claim.
    Allowed,
    /// The source is cut off: answer 43 without asking the pool. `log` is the line to
    /// log, at most one a minute per source.
    CutOff { log: Option<String> },
}

/// A source whose claims succeeded recently: its allowance, and when it last succeeded.
#[derive(Debug, Clone, Copy, Default)]
struct Standing {
    allowance: Allowance,
    succeeded_at: Duration,
}

/// Where a source's failures are counted.
enum Place {
    Standing,
    Tracked,
    /// No entry of its own: the shared overflow allowance.
    Overflow,
}

#[derive(Default)]
struct SourceTable {
    /// Failing sources with an entry of their own, at most [`MAX_TRACKED_SOURCES`].
    sources: HashMap<SourceKey, Allowance>,
    /// Sources whose claims succeeded recently, at most [`MAX_STANDING_SOURCES`].
    standing: HashMap<SourceKey, Standing>,
    /// The allowance shared by every source without an entry while the table is full of
    /// sources that still owe; it also takes the debt of a standing source that gives way.
    overflow: Allowance,
    /// When the table was last found full of owing sources: the first moment one of them
    /// carries nothing (no scan of the table for every failure meanwhile).
    no_room_until: Duration,
}

impl SourceTable {
    fn full(&self) -> bool {
        self.sources.len() >= MAX_TRACKED_SOURCES
    }

    /// Where `key`'s claims are counted at `now`; `None` for a source with no entry while
    /// the table has room (it owes nothing).
    fn place_of(&self, key: SourceKey) -> Option<Place> {
        if self.standing.contains_key(&key) {
            Some(Place::Standing)
        } else if self.sources.contains_key(&key) {
            Some(Place::Tracked)
        } else if self.full() {
            Some(Place::Overflow)
        } else {
            None
        }
    }

    fn allowance(&mut self, key: SourceKey, place: Place) -> &mut Allowance {
        match place {
            Place::Standing => &mut self.standing.get_mut(&key).expect("standing").allowance,
            Place::Tracked => self.sources.get_mut(&key).expect("tracked"),
            Place::Overflow => &mut self.overflow,
        }
    }

    /// Room for one more failing source: entries that carry nothing are dropped (they
    /// lose nothing by it); sources that still owe are never dropped.
    fn make_room(&mut self, now: Duration) -> bool {
        if !self.full() {
            return true;
        }
        if now < self.no_room_until {
            return false;
        }
        self.sources.retain(|_, a| !a.idle(now));
        if self.full() {
            self.no_room_until = self
                .sources
                .values()
                .map(Allowance::idle_at)
                .min()
                .unwrap_or(now);
            return false;
        }
        true
    }

    /// The allowance a failure of `key` is counted against: its own, a new one when the
    /// table has room, else the shared overflow. True when it is the source's own.
    fn allowance_for_failure(&mut self, key: SourceKey, now: Duration) -> (&mut Allowance, bool) {
        if self.standing.contains_key(&key) {
            return (self.allowance(key, Place::Standing), true);
        }
        if !self.sources.contains_key(&key) && !self.make_room(now) {
            return (&mut self.overflow, false);
        }
        (self.sources.entry(key).or_default(), true)
    }

    /// Gives `key` a standing place: it keeps what it owed (its own entry's, or the
    /// overflow's when it had none), and the least recently successful source gives way
    /// when the standing table is full, its debt going back among the failing sources.
    fn succeeded(&mut self, key: SourceKey, now: Duration) {
        if let Some(standing) = self.standing.get_mut(&key) {
            standing.succeeded_at = now;
            return;
        }
        let allowance = match self.sources.remove(&key) {
            Some(own) => own,
            // Without an entry it was counted against the overflow: it starts from there.
            None if self.full() => self.overflow,
            None => Allowance::default(),
        };
        if self.standing.len() >= MAX_STANDING_SOURCES {
            let oldest = self
                .standing
                .iter()
                .min_by_key(|(_, s)| s.succeeded_at)
                .map(|(&k, _)| k);
            if let Some(oldest) = oldest {
                let gone = self.standing.remove(&oldest).expect("present");
                if !gone.allowance.idle(now) {
                    if self.make_room(now) {
                        self.sources.insert(oldest, gone.allowance);
                    } else {
                        self.overflow.absorb(&gone.allowance, now);
                    }
                }
            }
        }
        self.standing.insert(
            key,
            Standing {
                allowance,
                succeeded_at: now,
            },
        );
    }
}

/// Who a source is in log lines: its address, and for UDP that the address is unproven.
fn described(key: SourceKey, transport: Transport) -> String {
    match transport {
        Transport::Stream => key.to_string(),
        Transport::Datagram => format!("{key} (UDP: the source address is unproven)"),
    }
}

/// Which claims a cut-off source loses, in log lines.
fn claims_refused(transport: Transport) -> &'static str {
    match transport {
        Transport::Stream => "every TCP claim from it",
        Transport::Datagram => "every UDP claim from it (its TCP claims are not affected)",
    }
}

/// Failed claims per source and transport, and who is cut off.
#[derive(Default)]
pub struct GuessThrottle {
    /// Sources whose claims came over TCP (or with no sign of UDP).
    stream: Mutex<SourceTable>,
    /// Sources as written in UDP datagrams: forgeable, so kept apart.
    datagram: Mutex<SourceTable>,
}

impl GuessThrottle {
    fn table(&self, transport: Transport) -> &Mutex<SourceTable> {
        match transport {
            Transport::Stream => &self.stream,
            Transport::Datagram => &self.datagram,
        }
    }

    /// Whether a claim from `source` may go to the pool at `now`.
    pub fn check(&self, source: ClaimSource, now: Duration) -> SourceVerdict {
        let key = SourceKey::of(source.ip);
        let mut table = self.table(source.transport).lock();
        let table = &mut *table;
        let Some(place) = table.place_of(key) else {
            return SourceVerdict::Allowed;
        };
        let shared = matches!(place, Place::Overflow);
        let allowance = table.allowance(key, place);
        if !allowance.cut_off(now) {
            return SourceVerdict::Allowed;
        }
        let log = allowance.log.may_log(now).map(|refused| {
            let claims = match source.transport {
                Transport::Stream => "claims",
                Transport::Datagram => "UDP claims",
            };
            let who = described(key, source.transport);
            let who = match shared {
                true => format!(
                    "{who} (no entry of its own: the table is full of {} sources that still \
                     owe, and they share one allowance)",
                    source.transport.name()
                ),
                false => who,
            };
            format!(
                "validate_ticket: refusing {claims} from {who}, cut off for guessing ticket \
                 ids for {} s more ({refused} more claims refused since the last line)",
                allowance.cut_off_until.saturating_sub(now).as_secs()
            )
        });
        SourceVerdict::CutOff { log }
    }

    /// Counts a failed claim (unknown or expired ticket) from `source` at `now`; the line
    /// to log when it cuts the source off.
    pub fn failed(&self, source: ClaimSource, now: Duration) -> Option<String> {
        let key = SourceKey::of(source.ip);
        let mut table = self.table(source.transport).lock();
        let (allowance, tracked) = table.allowance_for_failure(key, now);
        if !allowance.fail(now) {
            return None;
        }
        // The cut-off line opens this source's log interval.
        allowance.log = LogGate {
            logged_at: Some(now),
            skipped: 0,
        };
        let who = described(key, source.transport);
        let who = if tracked {
            who
        } else {
            format!(
                "{who} and every other {} source without an entry ({MAX_TRACKED_SOURCES} \
                 sources still owe)",
                source.transport.name()
            )
        };
        Some(format!(
            "validate_ticket: {who} failed more than {GUESS_BURST} claims at once or more than \
             one per {} s (unknown or expired tickets): guessing ticket ids; {} is refused \
             (43) for {} s",
            GUESS_REFILL.as_secs(),
            claims_refused(source.transport),
            GUESS_COOLDOWN.as_secs()
        ))
    }

    /// Counts a successful claim (a live ticket) from `source` at `now`: it keeps a place
    /// of its own however many sources fail meanwhile.
    pub fn succeeded(&self, source: ClaimSource, now: Duration) {
        self.table(source.transport)
            .lock()
            .succeeded(SourceKey::of(source.ip), now);
    }

    /// Failing sources of `transport` with an entry of their own now (tests: the table
    /// stays bounded).
    pub fn tracked(&self, transport: Transport) -> usize {
        self.table(transport).lock().sources.len()
    }

    /// Sources of `transport` cut off at `now`: each with an entry of its own (failing or
    /// standing), and the shared overflow allowance as one.
    pub fn cut_off(&self, transport: Transport, now: Duration) -> usize {
        let table = self.table(transport).lock();
        table.sources.values().filter(|a| a.cut_off(now)).count()
            + table
                .standing
                .values()
                .filter(|s| s.allowance.cut_off(now))
                .count()
            + usize::from(table.overflow.cut_off(now))
    }

    /// Sources of `transport` with a standing place now.
    pub fn standing(&self, transport: Transport) -> usize {
        self.table(transport).lock().standing.len()
    }
}

/// At most one log line a minute per source and transport, for refusals that are not the
/// throttle's (the claim policy's), over at most [`MAX_TRACKED_SOURCES`] of them: when
/// full it forgets them all, which costs at worst one more line per source. Forged UDP
/// sources have lines of their own, so they cannot silence the lines about TCP claims.
#[derive(Default)]
pub(super) struct OncePerMinute {
    logged: Mutex<HashMap<(Transport, SourceKey), LogGate>>,
}

impl OncePerMinute {
    /// `Some(refusals not logged since the last line)` when a line about `source` may be
    /// logged at `now`.
    pub(super) fn may_log(&self, source: ClaimSource, now: Duration) -> Option<u32> {
        let key = (source.transport, SourceKey::of(source.ip));
        let mut logged = self.logged.lock();
        if !logged.contains_key(&key) && logged.len() >= MAX_TRACKED_SOURCES {
            logged.clear();
        }
        logged.entry(key).or_default().may_log(now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// A claim over TCP from `s`.
    fn tcp(s: &str) -> ClaimSource {
        ClaimSource::stream(ip(s))
    }

    /// A claim in a UDP datagram whose source says `s`.
    fn udp(s: &str) -> ClaimSource {
        ClaimSource::datagram(ip(s))
    }

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn sources_are_ipv4_addresses_and_ipv6_64s() {
        assert_eq!(SourceKey::of(ip("10.0.0.1")), SourceKey::of(ip("::ffff:10.0.0.1")));
        assert_ne!(SourceKey::of(ip("10.0.0.1")), SourceKey::of(ip("10.0.0.2")));
        assert_eq!(
            SourceKey::of(ip("2001:db8:1:2::1")),
            SourceKey::of(ip("2001:db8:1:2:ffff::9"))
        );
        assert_ne!(SourceKey::of(ip("2001:db8:1:2::1")), SourceKey::of(ip("2001:db8:1:3::1")));
        assert_eq!(SourceKey::of(ip("2001:db8:1:2::1")).to_string(), "2001:db8:1:2::/64");
    }

    #[test]
    fn a_guesser_is_cut_off_and_logged_once_a_minute() {
        let throttle = GuessThrottle::default();
        let guesser = tcp("192.0.2.7");
        let now = 1000 * S;
        let mut lines = Vec::new();
        for _ in 0..GUESS_BURST {
            assert_eq!(throttle.check(guesser, now), SourceVerdict::Allowed);
            assert_eq!(throttle.failed(guesser, now), None);
        }
        assert_eq!(throttle.check(guesser, now), SourceVerdict::Allowed);
        lines.extend(throttle.failed(guesser, now));
        assert_eq!(lines.len(), 1, "the failure beyond the burst cuts it off");
        assert_eq!(throttle.cut_off(Transport::Stream, now), 1);
        assert_eq!(throttle.cut_off(Transport::Datagram, now), 0);
        assert_eq!(throttle.cut_off(Transport::Stream, now + 301 * S), 0, "its cooldown ended");
        assert!(lines[0].contains("192.0.2.7 failed more than 60 claims"), "{}", lines[0]);
        // a thousand more claims in the next 59 s: all refused, nothing more logged
        for i in 0..1000u32 {
            let at = now + Duration::from_millis(59 * u64::from(i));
            match throttle.check(guesser, at) {
                SourceVerdict::CutOff { log } => lines.extend(log),
                SourceVerdict::Allowed => panic!("claim {i} let through"),
            }
        }
        assert_eq!(lines.len(), 1);
        // a minute after the first line: one more, counting the silent refusals
        match throttle.check(guesser, now + 60 * S) {
            SourceVerdict::CutOff { log: Some(line) } => {
                assert!(line.contains("(1000 more claims refused"), "{line}")
            }
            other => panic!("{other:?}"),
        }
        // other sources are unaffected; the guesser is back after the cooldown
        assert_eq!(throttle.check(tcp("192.0.2.8"), now), SourceVerdict::Allowed);
        assert_eq!(throttle.check(guesser, now + GUESS_COOLDOWN), SourceVerdict::Allowed);
    }

    #[test]
    fn an_honest_peer_with_stale_tickets_is_never_cut_off() {
        let throttle = GuessThrottle::default();
        let peer = tcp("198.51.100.12");
        // a day of fixes, three stale tickets in each fix, one fix every 30 s
        let mut now = Duration::ZERO;
        for _ in 0..(24 * 60 * 2) {
            for _ in 0..3 {
                assert_eq!(throttle.check(peer, now), SourceVerdict::Allowed);
                assert_eq!(throttle.failed(peer, now), None);
            }
            now += 30 * S;
        }
        // and a burst of 50 stale tickets (a wallet resubmitting old fixes) at once
        for _ in 0..50 {
            assert_eq!(throttle.failed(peer, now), None);
        }
        assert_eq!(throttle.check(peer, now), SourceVerdict::Allowed);
    }

    #[test]
    fn the_table_stays_bounded_under_many_sources() {
        let throttle = GuessThrottle::default();
        let now = 10 * S;
        // 20,000 IPv6 /64s guessing: never more than MAX_TRACKED_SOURCES tracked
        for n in 0..20_000u64 {
            let source = ClaimSource::stream(IpAddr::V6(std::net::Ipv6Addr::from(
                (u128::from(0x2001_0db8_0000_0000u64 + n) << 64) | 1,
            )));
            for _ in 0..=GUESS_BURST {
                throttle.failed(source, now);
            }
            assert!(throttle.tracked(Transport::Stream) <= MAX_TRACKED_SOURCES);
        }
        assert_eq!(throttle.tracked(Transport::Stream), MAX_TRACKED_SOURCES);
        // with every tracked source cut off, further sources share the overflow allowance,
        // which their failures have cut off as well
        let late = tcp("2001:db9::1");
        assert!(matches!(throttle.check(late, now), SourceVerdict::CutOff { .. }));
        // after the cooldown, the table makes room again
        let later = now + GUESS_COOLDOWN + GUESS_REFILL * (GUESS_BURST + 1);
        assert_eq!(throttle.check(late, later), SourceVerdict::Allowed);
        assert_eq!(throttle.failed(late, later), None);
        assert!(throttle.tracked(Transport::Stream) <= MAX_TRACKED_SOURCES);
    }

    /// One guess: the throttle asked, then the failure counted; true when it went through.
    fn guess(throttle: &GuessThrottle, source: ClaimSource, now: Duration) -> bool {
        let through = throttle.check(source, now) == SourceVerdict::Allowed;
        if through {
            throttle.failed(source, now);
        }
        through
    }

    fn v4(n: u32) -> ClaimSource {
        ClaimSource::stream(IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + n)))
    }

    #[test]
    fn a_source_that_owes_keeps_its_entry_and_a_newcomer_shares_the_overflow() {
        let throttle = GuessThrottle::default();
        let now = 10 * S;
        // Every entry owes 30 failures (none cut off): the old table dropped one of them
        // for a newcomer, and that source started afresh when it came back.
        for n in 0..MAX_TRACKED_SOURCES as u32 {
            for _ in 0..30 {
                assert!(guess(&throttle, v4(n), now));
            }
        }
        let newcomer = v4(MAX_TRACKED_SOURCES as u32);
        for _ in 0..=GUESS_BURST {
            assert!(guess(&throttle, newcomer, now));
        }
        assert_eq!(throttle.tracked(Transport::Stream), MAX_TRACKED_SOURCES);
        // The newcomer cut off the overflow it shares with every source without an entry.
        assert!(!guess(&throttle, v4(MAX_TRACKED_SOURCES as u32 + 1), now));
        // Each tracked source still has exactly its own 30 left, then 1 beyond.
        for n in [0, 17, MAX_TRACKED_SOURCES as u32 - 1] {
            for _ in 0..=30 {
                assert!(guess(&throttle, v4(n), now));
            }
            assert!(!guess(&throttle, v4(n), now), "source {n}");
        }
        // Once entries carry nothing, newcomers get entries of their own again.
        let later = now + GUESS_COOLDOWN + GUESS_REFILL * (GUESS_BURST + 1);
        assert!(guess(&throttle, v4(MAX_TRACKED_SOURCES as u32 + 2), later));
        assert_eq!(throttle.tracked(Transport::Stream), 1);
    }

    #[test]
    fn no_number_of_sources_beats_the_documented_rate() {
        assert_eq!(MAX_GUESSES_PER_SECOND, 870);
        for sources in [1u32, 4096, 12_000] {
            let throttle = GuessThrottle::default();
            // 300 s, every source guessing once every 2.5 s in turn.
            let (rounds, step) = (120u32, Duration::from_millis(2500));
            let mut through = 0u64;
            for round in 0..rounds {
                let now = step * round;
                for n in 0..sources {
                    through += u64::from(guess(&throttle, v4(n), now));
                }
            }
            let allowances = (sources as usize).min(MAX_TRACKED_SOURCES) as u64 + 1;
            let seconds = u64::from(rounds) * 5 / 2;
            let bound = allowances * u64::from(GUESS_BURST + 1) + MAX_GUESSES_PER_SECOND * seconds;
            assert!(through <= bound, "{sources} sources: {through} > {bound}");
            if sources == 1 {
                // One every 2.5 s: its burst spent at one refill per 5 s, then cut off.
                assert_eq!(through, 120);
            }
        }
    }

    #[test]
    fn a_peer_that_succeeded_keeps_claiming_when_thousands_of_addresses_fill_the_table() {
        let throttle = GuessThrottle::default();
        let now = 100 * S;
        let peer = tcp("198.51.100.12");
        let stranger = tcp("198.51.100.13");
        throttle.succeeded(peer, now - S);
        assert_eq!(throttle.standing(Transport::Stream), 1);
        // 4,097 addresses x 61 failed claims: the table and the overflow are cut off.
        for n in 0..=MAX_TRACKED_SOURCES as u32 {
            for _ in 0..=GUESS_BURST {
                guess(&throttle, v4(n), now);
            }
        }
        assert!(matches!(throttle.check(stranger, now), SourceVerdict::CutOff { .. }));
        // The peer's claims still go through, and its stale tickets count against it alone.
        assert_eq!(throttle.check(peer, now), SourceVerdict::Allowed);
        for _ in 0..5 {
            assert!(guess(&throttle, peer, now));
        }
        assert_eq!(throttle.check(peer, now), SourceVerdict::Allowed);
    }

    #[test]
    fn standing_gives_way_to_newer_successes_and_keeps_debt() {
        let throttle = GuessThrottle::default();
        let now = 100 * S;
        let old = v4(1_000_000);
        throttle.succeeded(old, now);
        for _ in 0..40 {
            assert!(guess(&throttle, old, now));
        }
        for n in 0..MAX_STANDING_SOURCES as u32 {
            throttle.succeeded(v4(n), now + S);
        }
        assert_eq!(throttle.standing(Transport::Stream), MAX_STANDING_SOURCES);
        // The oldest gave way but kept its debt: 20 more, then cut off.
        assert_eq!(throttle.tracked(Transport::Stream), 1);
        for _ in 0..=20 {
            assert!(guess(&throttle, old, now + S));
        }
        assert!(!guess(&throttle, old, now + S));
        // A success does not wipe what a source owes either.
        throttle.succeeded(old, now + 2 * S);
        assert!(!guess(&throttle, old, now + 2 * S));
    }

    #[test]
    fn policy_lines_once_a_minute_per_source() {
        let limiter = OncePerMinute::default();
        let a = tcp("192.0.2.1");
        assert_eq!(limiter.may_log(a, Duration::ZERO), Some(0));
        assert_eq!(limiter.may_log(a, 30 * S), None);
        assert_eq!(limiter.may_log(tcp("192.0.2.2"), 30 * S), Some(0));
        // forged UDP lines about the same address do not use up the TCP one
        assert_eq!(limiter.may_log(udp("192.0.2.1"), 40 * S), Some(0));
        assert_eq!(limiter.may_log(udp("192.0.2.1"), 50 * S), None);
        assert_eq!(limiter.may_log(a, 60 * S), Some(1));
    }

    #[test]
    fn forged_udp_failures_cut_off_only_udp_claims_from_that_address() {
        let throttle = GuessThrottle::default();
        let honest = "198.51.100.12";
        let now = 1000 * S;
        let mut lines = Vec::new();
        for _ in 0..=GUESS_BURST {
            assert_eq!(throttle.check(udp(honest), now), SourceVerdict::Allowed);
            lines.extend(throttle.failed(udp(honest), now));
        }
        assert_eq!(
            lines,
            [format!(
                "validate_ticket: {honest} (UDP: the source address is unproven) failed more \
                 than 60 claims at once or more than one per 5 s (unknown or expired tickets): \
                 guessing ticket ids; every UDP claim from it (its TCP claims are not \
                 affected) is refused (43) for 300 s"
            )]
        );
        assert!(matches!(
            throttle.check(udp(honest), now),
            SourceVerdict::CutOff { log: None }
        ));
        // the same address over TCP: untouched, and counted from a whole allowance
        assert_eq!(throttle.check(tcp(honest), now), SourceVerdict::Allowed);
        assert_eq!(throttle.tracked(Transport::Stream), 0);
        for _ in 0..GUESS_BURST {
            assert_eq!(throttle.failed(tcp(honest), now), None);
        }
        assert_eq!(throttle.check(tcp(honest), now), SourceVerdict::Allowed);
        // a TCP guesser is cut off over TCP; its UDP allowance is its own
        let guesser = "192.0.2.7";
        for _ in 0..=GUESS_BURST {
            throttle.failed(tcp(guesser), now);
        }
        assert!(matches!(throttle.check(tcp(guesser), now), SourceVerdict::CutOff { .. }));
        assert_eq!(throttle.check(udp(guesser), now), SourceVerdict::Allowed);
    }

    #[test]
    fn forged_udp_sources_filling_their_table_leave_tcp_alone() {
        let throttle = GuessThrottle::default();
        let now = 10 * S;
        for n in 0..(MAX_TRACKED_SOURCES as u32 + 100) {
            let forged = ClaimSource::datagram(IpAddr::V4(std::net::Ipv4Addr::from(
                0x0a00_0000 + n,
            )));
            for _ in 0..=GUESS_BURST {
                throttle.failed(forged, now);
            }
        }
        assert_eq!(throttle.tracked(Transport::Datagram), MAX_TRACKED_SOURCES);
        assert_eq!(throttle.tracked(Transport::Stream), 0);
        // UDP sources without an entry share the cut-off overflow; TCP claims do not
        assert!(matches!(
            throttle.check(udp("192.0.2.99"), now),
            SourceVerdict::CutOff { .. }
        ));
        assert_eq!(throttle.check(tcp("192.0.2.99"), now), SourceVerdict::Allowed);
        assert_eq!(throttle.check(tcp("10.0.0.5"), now), SourceVerdict::Allowed);
    }
}
