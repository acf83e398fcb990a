//! The claim gate: who may claim a ticket, and what a guesser gets. validate_ticket asks
//! it around the pool's claim, in two steps:
//!
//! 1. [`ClaimGate::admit`] before the pool is asked: the claim policy ([`policy`]) and the
//!    guess throttle ([`throttle`]) may refuse the claim (logged at most once a minute per
//!    source and transport); a refusal answers 43, as an unknown ticket does, so it tells
//!    nothing of the ticket.
//! 2. [`ClaimGate::record`] with what the pool answered: a claim of an unknown or expired
//!    ticket counts against the source's allowance, and every outcome is counted
//!    ([`ClaimCounts`], per transport, read with [`ClaimGate::counts`]).
//!
//! A claim that `listed` admits (over TCP from the configured address of the RAIDA it
//! names) skips the throttle, under either policy: a RAIDA claims the ticket ids a wallet
//! named in its fix, so a hostile wallet could otherwise make an honest RAIDA fail claims
//! on purpose until every peer cut it off, and its heals with it. Such a RAIDA spends only
//! its own claims and guesses no faster than wallets send it fixes.
//!
//! A claim whose source the server did not say (`None`) is neither refused nor throttled,
//! as before the gate; it is counted under "no address".
//!
//! With a claim key ([`ClaimAuth`]), the gate first checks the claim's tag
//! ([`crate::claim_auth`]): a verified claim comes from a RAIDA of the network whatever its
//! address or transport, so it is never refused by the policy and never throttled; a claim
//! without a valid tag (none, or a bad one) is an unauthenticated claim, judged by address
//! as above, except under `authenticated`, which refuses every one of them (one log line
//! a minute for all of them together, not per source).
//!
//! The process has one gate, held by the state owner (`src/ffi/state.rs`) and reaching
//! validate_ticket through `commands::Node`; a test builds its own.

use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use crate::claim_auth::{ClaimAuth, ClaimFields, TagCheck, TAGGED_BYTES};

use crate::log::Level;
use crate::log_limit::{LineKind, LogLimits};
use crate::tickets::{ClaimError, Clock, MonotonicClock};

mod policy;
mod source;
mod throttle;

pub use policy::{ClaimPolicy, CLAIM_POLICY_SETTING};
pub use source::{ClaimSource, Transport};
pub use throttle::{
    GuessThrottle, SourceKey, SourceVerdict, GUESS_BURST, GUESS_COOLDOWN, GUESS_REFILL,
    MAX_GUESSES_PER_SECOND, MAX_STANDING_SOURCES, MAX_TRACKED_SOURCES,
};

use throttle::{LogGate, OncePerMinute};

/// Why the gate refused a claim (every refusal answers 43).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The claim policy does not let this address speak for the RAIDA it named.
    NotListed,
    /// The claim policy is `listed` and the claim came by UDP, whose source address
    /// cannot be verified (peers claim over TCP).
    Unverified,
    /// The source is cut off for guessing.
    Throttled,
    /// The claim policy is `authenticated` and the claim has no valid tag.
    NotAuthenticated,
}

/// A claim's tag as validate_ticket hands it to the gate: the request's 12 challenge bytes
/// (`None` for a framing without a challenge, types 4 and 5) and what the tag must cover.
#[derive(Debug, Clone, Copy)]
pub struct Tag<'a> {
    pub challenge: Option<&'a [u8; TAGGED_BYTES]>,
    pub fields: ClaimFields,
}

/// A claim the gate let through to the pool; give it back to [`ClaimGate::record`] with
/// the pool's answer.
#[derive(Debug)]
#[must_use = "record the pool's answer with ClaimGate::record"]
pub struct Admitted {
    source: Option<ClaimSource>,
    /// A failed claim counts against the source's allowance.
    throttled: bool,
}

/// What the gate has decided since it was made, for one transport.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClaimCounts {
    /// Claims answered with the ticket's coins (250).
    pub granted: u64,
    /// Claims of a ticket this RAIDA index had claimed already (44).
    pub already_claimed: u64,
    /// Claims of an unknown or expired ticket (43).
    pub no_such_ticket: u64,
    /// Claims the policy refused (43).
    pub refused_by_policy: u64,
    /// Claims refused because their source is cut off for guessing (43).
    pub throttled: u64,
    /// With a claim key: claims whose tag it verified (whatever the pool answered).
    pub verified: u64,
    /// With a claim key: claims with no tag of a loaded key (random challenge bytes).
    pub unverified: u64,
    /// With a claim key: claims naming a loaded key's id with a tag that is not valid
    /// (tampered, for another peer or claimer, an old window, a skewed clock).
    pub bad_tag: u64,
}

/// [`ClaimCounts`] per transport.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClaimCountsByTransport {
    /// Claims over TCP (the address the handshake proved).
    pub tcp: ClaimCounts,
    /// Claims by UDP (an address anyone can write).
    pub udp: ClaimCounts,
    /// Claims whose source the server did not say.
    pub no_address: ClaimCounts,
}

/// One transport's counters.
#[derive(Default)]
struct Counters {
    granted: AtomicU64,
    already_claimed: AtomicU64,
    no_such_ticket: AtomicU64,
    refused_by_policy: AtomicU64,
    throttled: AtomicU64,
    verified: AtomicU64,
    unverified: AtomicU64,
    bad_tag: AtomicU64,
}

impl Counters {
    fn add(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    fn snapshot(&self) -> ClaimCounts {
        ClaimCounts {
            granted: self.granted.load(Ordering::Relaxed),
            already_claimed: self.already_claimed.load(Ordering::Relaxed),
            no_such_ticket: self.no_such_ticket.load(Ordering::Relaxed),
            refused_by_policy: self.refused_by_policy.load(Ordering::Relaxed),
            throttled: self.throttled.load(Ordering::Relaxed),
            verified: self.verified.load(Ordering::Relaxed),
            unverified: self.unverified.load(Ordering::Relaxed),
            bad_tag: self.bad_tag.load(Ordering::Relaxed),
        }
    }
}

/// The claim policy, the guess throttle, their log lines and their counters.
pub struct ClaimGate {
    policy: ClaimPolicy,
    throttle: GuessThrottle,
    policy_log: OncePerMinute,
    /// Every line above is also limited per kind for the whole gate, so no number of
    /// sources floods the log.
    log_limits: LogLimits,
    /// The claim key, when the process holds one.
    auth: Option<Arc<ClaimAuth>>,
    /// Under `authenticated`: one line a minute for every refusal together.
    unauthenticated_log: Mutex<LogGate>,
    /// With a claim key: when (Unix seconds) the tag counts' line may be logged again.
    tag_counts_due: AtomicU64,
    clock: Box<dyn Clock>,
    tcp: Counters,
    udp: Counters,
    no_address: Counters,
}

impl Default for ClaimGate {
    /// Policy `any`, the monotonic clock.
    fn default() -> Self {
        ClaimGate::new(ClaimPolicy::default())
    }
}

impl ClaimGate {
    /// A gate under `policy`, on the monotonic clock.
    pub fn new(policy: ClaimPolicy) -> ClaimGate {
        ClaimGate::with_clock(policy, Box::<MonotonicClock>::default())
    }

    /// A gate under `policy` on another clock (tests move it by hand).
    pub fn with_clock(policy: ClaimPolicy, clock: Box<dyn Clock>) -> ClaimGate {
        ClaimGate {
            policy,
            throttle: GuessThrottle::default(),
            policy_log: OncePerMinute::default(),
            log_limits: LogLimits::default(),
            auth: None,
            unauthenticated_log: Mutex::new(LogGate::default()),
            tag_counts_due: AtomicU64::new(0),
            clock,
            tcp: Counters::default(),
            udp: Counters::default(),
            no_address: Counters::default(),
        }
    }

    /// The gate verifying tags with `auth` (`None`: no claim key; every claim is then
    /// judged by address, and `authenticated` refuses them all).
    pub fn with_auth(mut self, auth: Option<Arc<ClaimAuth>>) -> ClaimGate {
        self.auth = auth;
        self
    }

    /// What the claim's tag proves, counted (only with a claim key: without one nothing
    /// is checked and `None` is answered).
    fn check_tag(&self, source: Option<ClaimSource>, tag: Option<Tag<'_>>) -> Option<TagCheck> {
        let auth = self.auth.as_ref()?;
        // One clock reading for the tag's window and the line's minute; no lock.
        let now = auth.unix_seconds();
        let check = match tag {
            Some(tag) => auth.check_at(tag.challenge, tag.fields, now),
            None => TagCheck::Untagged,
        };
        let counters = self.counters(source);
        Counters::add(match check {
            TagCheck::Verified(_) => &counters.verified,
            TagCheck::Untagged => &counters.unverified,
            TagCheck::Bad(_) => &counters.bad_tag,
        });
        let due = self.tag_counts_due.load(Ordering::Relaxed);
        let next = now.saturating_add(TAG_COUNTS_INTERVAL_SECONDS);
        if now >= due
            && self
                .tag_counts_due
                .compare_exchange(due, next, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            crate::log::warning(&tag_counts_line(&self.counts()));
        }
        Some(check)
    }

    /// [`admit`](Self::admit) for a claim that carries `tag`: a verified claim is admitted
    /// and never throttled whatever its source; any other is judged as `admit` judges it,
    /// except that under `authenticated` it is refused.
    pub fn admit_tagged(
        &self,
        source: Option<ClaimSource>,
        claimer: u8,
        configured: Option<Ipv4Addr>,
        tag: Option<Tag<'_>>,
    ) -> Result<Admitted, Refusal> {
        let check = self.check_tag(source, tag);
        if let Some(TagCheck::Verified(_)) = check {
            return Ok(Admitted {
                source,
                throttled: false,
            });
        }
        if self.policy == ClaimPolicy::Authenticated {
            Counters::add(&self.counters(source).refused_by_policy);
            let now = self.clock.now();
            if let Some(skipped) = self.unauthenticated_log.lock().may_log(now) {
                crate::log::warning(&unauthenticated_line(source, claimer, check, skipped));
            }
            return Err(Refusal::NotAuthenticated);
        }
        self.admit_by_address(source, claimer, configured)
    }

    fn counters(&self, source: Option<ClaimSource>) -> &Counters {
        match source.map(|s| s.transport) {
            Some(Transport::Stream) => &self.tcp,
            Some(Transport::Datagram) => &self.udp,
            None => &self.no_address,
        }
    }

    /// Whether a claim from `source` (`None`: the server did not say) naming RAIDA
    /// `claimer` (0..25), whose configured address is `configured`, may go to the pool:
    /// the policy first, then the throttle. Refusals are logged at most once a minute per
    /// source and transport, and counted.
    pub fn admit(
        &self,
        source: Option<ClaimSource>,
        claimer: u8,
        configured: Option<Ipv4Addr>,
    ) -> Result<Admitted, Refusal> {
        self.admit_tagged(source, claimer, configured, None)
    }

    /// The address rules of [`admit`](Self::admit).
    fn admit_by_address(
        &self,
        source: Option<ClaimSource>,
        claimer: u8,
        configured: Option<Ipv4Addr>,
    ) -> Result<Admitted, Refusal> {
        let Some(client) = source else {
            return Ok(Admitted {
                source,
                throttled: false,
            });
        };
        let now = self.clock.now();
        let from_the_named_raida = ClaimPolicy::Listed.admits(client, configured);
        if !from_the_named_raida && !self.policy.admits(client, configured) {
            let refusal = match client.transport {
                Transport::Stream => Refusal::NotListed,
                Transport::Datagram => Refusal::Unverified,
            };
            Counters::add(&self.counters(source).refused_by_policy);
            if let Some(skipped) = self.policy_log.may_log(client, now) {
                self.warn(LineKind::ClaimNotAdmitted, now, || {
                    policy_refusal_line(client, claimer, configured, refusal, skipped)
                });
            }
            return Err(refusal);
        }
        if from_the_named_raida {
            return Ok(Admitted {
                source,
                throttled: false,
            });
        }
        if let SourceVerdict::CutOff { log } = self.throttle.check(client, now) {
            Counters::add(&self.counters(source).throttled);
            if let Some(line) = log {
                self.warn(LineKind::GuessingRefused, now, || line);
            }
            return Err(Refusal::Throttled);
        }
        Ok(Admitted {
            source,
            throttled: true,
        })
    }

    /// Counts what the pool answered an admitted claim; an unknown or expired ticket
    /// counts against the source's allowance (the line to log when that cuts it off is
    /// logged here).
    pub fn record<T>(&self, admitted: Admitted, claimed: &Result<T, ClaimError>) {
        let counters = self.counters(admitted.source);
        let throttled_source = admitted.source.filter(|_| admitted.throttled);
        match claimed {
            Ok(_) => {
                Counters::add(&counters.granted);
                // A source that claims live tickets keeps its place in the throttle.
                if let Some(client) = throttled_source {
                    self.throttle.succeeded(client, self.clock.now());
                }
            }
            Err(ClaimError::AlreadyClaimed) => Counters::add(&counters.already_claimed),
            Err(ClaimError::NotFound) => {
                Counters::add(&counters.no_such_ticket);
                if let Some(client) = throttled_source {
                    let now = self.clock.now();
                    if let Some(line) = self.throttle.failed(client, now) {
                        self.warn(LineKind::GuessingCutOff, now, || line);
                    }
                }
            }
            // validate_ticket answers a claimer outside 0..25 before asking the gate.
            Err(ClaimError::BadClaimer) => {}
        }
    }

    /// Every counter, per transport.
    pub fn counts(&self) -> ClaimCountsByTransport {
        ClaimCountsByTransport {
            tcp: self.tcp.snapshot(),
            udp: self.udp.snapshot(),
            no_address: self.no_address.snapshot(),
        }
    }

    /// A warning of `kind`, within the gate's limit for that kind.
    fn warn(&self, kind: LineKind, now: std::time::Duration, line: impl FnOnce() -> String) {
        self.log_limits.write_at(Level::Warning, kind, now, line);
    }

    /// The limits of the gate's log lines, with the count of lines held back per kind.
    pub fn log_limits(&self) -> &LogLimits {
        &self.log_limits
    }

    /// Sources of `transport` the throttle tracks now (tests: the table stays bounded).
    pub fn tracked(&self, transport: Transport) -> usize {
        self.throttle.tracked(transport)
    }

    /// Sources of `transport` the throttle has cut off now (the metrics).
    pub fn cut_off(&self, transport: Transport) -> usize {
        self.throttle.cut_off(transport, self.clock.now())
    }
}

/// Seconds between two tag counts lines.
const TAG_COUNTS_INTERVAL_SECONDS: u64 = 60;

/// The claim health line (with a claim key, at most once a minute while claims arrive):
/// verified, unverified and bad-tag claims since start, per transport.
pub fn tag_counts_line(counts: &ClaimCountsByTransport) -> String {
    let part = |name: &str, c: &ClaimCounts| {
        format!(
            "{name} {}/{}/{}",
            c.verified, c.unverified, c.bad_tag
        )
    };
    format!(
        "claim tags since start (verified/unverified/bad tag): {}, {}, {}",
        part("TCP", &counts.tcp),
        part("UDP", &counts.udp),
        part("no address", &counts.no_address)
    )
}

/// The line logged, at most once a minute for all of them, when `authenticated` refuses
/// claims.
fn unauthenticated_line(
    source: Option<ClaimSource>,
    claimer: u8,
    check: Option<TagCheck>,
    skipped: u32,
) -> String {
    let from = source.map_or("an unknown address".to_string(), |s| {
        format!("{} by {}", s.ip, s.transport.name())
    });
    let why = match check {
        None => "this server holds no claim key (RAIDA_HEALING_CLAIM_KEY_FILE)",
        Some(TagCheck::Bad(crate::claim_auth::BadTag::Window)) => {
            "its tag is from another time window (a replay, or clocks more than a minute apart)"
        }
        Some(TagCheck::Bad(_)) => "its tag is not valid",
        _ => "it carries no tag of this server's claim key",
    };
    format!(
        "validate_ticket: claim for RAIDA {claimer} from {from} refused (43) by \
         {CLAIM_POLICY_SETTING}=authenticated: {why} ({skipped} more claims refused so since \
         the last line)"
    )
}

/// The line logged when the policy refuses a claim.
fn policy_refusal_line(
    client: ClaimSource,
    claimer: u8,
    configured: Option<Ipv4Addr>,
    refusal: Refusal,
    skipped: u32,
) -> String {
    let ip = client.ip;
    let why = match refusal {
        Refusal::Unverified => format!(
            "it came by UDP, whose source address anyone can forge; peers claim over TCP, \
             and only TCP claims from RAIDA {claimer}'s configured address are accepted"
        ),
        _ => {
            let expected = configured.map_or("no address".to_string(), |ip| ip.to_string());
            format!(
                "the config gives RAIDA {claimer} {expected}; if that peer really connects \
                 from {ip}, add that address to the config or set {CLAIM_POLICY_SETTING}=any"
            )
        }
    };
    format!(
        "validate_ticket: claim for RAIDA {claimer} from {ip} by {} refused (43) by \
         {CLAIM_POLICY_SETTING}=listed: {why} ({skipped} more refusals from this source since \
         the last line)",
        client.transport.name()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tickets::testing::ManualClock;
    use std::time::Duration;

    fn tcp(ip: &str) -> Option<ClaimSource> {
        Some(ClaimSource::stream(ip.parse().unwrap()))
    }

    fn udp(ip: &str) -> Option<ClaimSource> {
        Some(ClaimSource::datagram(ip.parse().unwrap()))
    }

    const PEER: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 12);

    /// Every decision lands in its transport's counter, and only there.
    #[test]
    fn counts_per_transport() {
        let gate = ClaimGate::new(ClaimPolicy::Listed);
        let found: Result<(), ClaimError> = Ok(());
        let lost: Result<(), ClaimError> = Err(ClaimError::NotFound);
        let again: Result<(), ClaimError> = Err(ClaimError::AlreadyClaimed);
        gate.record(gate.admit(tcp("127.0.0.12"), 12, Some(PEER)).unwrap(), &found);
        gate.record(gate.admit(tcp("127.0.0.12"), 12, Some(PEER)).unwrap(), &again);
        gate.record(gate.admit(tcp("127.0.0.12"), 12, Some(PEER)).unwrap(), &lost);
        assert_eq!(gate.admit(tcp("127.0.0.13"), 12, Some(PEER)).unwrap_err(), Refusal::NotListed);
        assert_eq!(gate.admit(udp("127.0.0.12"), 12, Some(PEER)).unwrap_err(), Refusal::Unverified);
        gate.record(gate.admit(None, 12, Some(PEER)).unwrap(), &found);
        let counts = gate.counts();
        assert_eq!(
            counts.tcp,
            ClaimCounts {
                granted: 1,
                already_claimed: 1,
                no_such_ticket: 1,
                refused_by_policy: 1,
                throttled: 0,
                ..ClaimCounts::default()
            }
        );
        assert_eq!(
            counts.udp,
            ClaimCounts {
                refused_by_policy: 1,
                ..ClaimCounts::default()
            }
        );
        assert_eq!(
            counts.no_address,
            ClaimCounts {
                granted: 1,
                ..ClaimCounts::default()
            }
        );
    }

    /// A guesser's failures cut it off at the gate: the next claim is refused before the
    /// pool is asked, and counted as throttled; the named RAIDA's own claims never are.
    #[test]
    fn the_throttle_refuses_at_admission_and_counts() {
        let clock = ManualClock::default();
        let gate = ClaimGate::with_clock(ClaimPolicy::Any, Box::new(clock.clone()));
        let lost: Result<(), ClaimError> = Err(ClaimError::NotFound);
        for _ in 0..=GUESS_BURST {
            gate.record(gate.admit(tcp("192.0.2.7"), 12, Some(PEER)).unwrap(), &lost);
            gate.record(gate.admit(tcp("127.0.0.12"), 12, Some(PEER)).unwrap(), &lost);
        }
        assert_eq!(gate.admit(tcp("192.0.2.7"), 12, Some(PEER)).unwrap_err(), Refusal::Throttled);
        assert!(gate.admit(tcp("127.0.0.12"), 12, Some(PEER)).is_ok());
        assert_eq!(gate.counts().tcp.throttled, 1);
        assert_eq!(gate.counts().tcp.no_such_ticket, 2 * (u64::from(GUESS_BURST) + 1));
        clock.advance(GUESS_COOLDOWN + Duration::from_secs(1));
        assert!(gate.admit(tcp("192.0.2.7"), 12, Some(PEER)).is_ok());
    }
}
