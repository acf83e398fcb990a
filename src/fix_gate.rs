//! The fix gate: wallets cannot spend this RAIDA's standing at its peers.
//!
//! A fix makes this server claim, at each peer, the ticket id a wallet wrote. A peer
//! running this library counts every claim of an unknown ticket against the address it
//! came from (the guess throttle: [`GUESS_BURST`] at once, one more per [`GUESS_REFILL`],
//! then every claim refused for 300 s). When this server's claims leave from the address
//! its peers list for it they are never throttled; behind NAT, or from a second address,
//! they are, and 61 fixes with made-up tickets would cut this RAIDA off at every peer.
//! A legacy peer counts nothing; this side cannot tell which peer is which, so it treats
//! every peer as one that counts.
//!
//! So the fixing side keeps, per peer, a copy of that peer's count of this server's failed
//! claims, and never sends a claim that could take it past [`SPEND_BURST`] (below the
//! peer's burst, at the peer's refill): a claim takes one unit right before it is sent
//! and holds it until its answer shows it did not fail (a vote, 44, another status); a
//! claim left unanswered is given back at the end of its fix unless a peer of that fix
//! answered 43. Claims in flight therefore count, however many fixes run. The part of that
//! allowance above [`OPEN_SPEND`] is kept for clients in good standing (their last fix
//! got votes), so a flood spends only the rest, and wallets that healed here before keep
//! healing during it.
//!
//! And per client (`ci->ip`: an IPv4 address, an IPv6 /64): a fix whose tickets turned
//! out unknown at more peers than voted is a strike. [`CLIENT_BURST`] strikes at once,
//! one more per [`CLIENT_REFILL`]; beyond that the client's fixes are refused at once
//! (160, ERROR_REQUEST_RATE) for [`CLIENT_COOLDOWN`], asking no peer. Memory is bounded
//! the throttle's way: a client that owes keeps its entry, clients beyond the table share
//! one overflow entry, and clients in good standing keep a place of their own.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use parking_lot::Mutex;

use crate::log_limit::LogLimits;
use crate::protocol::TOTAL_RAIDA_SERVERS;
use crate::claims::{SourceKey, GUESS_BURST, GUESS_REFILL};
use crate::tickets::{Clock, MonotonicClock};

/// Failed claims this server lets itself owe one peer at once: the peer's burst less a
/// margin (claims answered after the deadline, a clock that runs apart).
pub const SPEND_BURST: u32 = GUESS_BURST * 4 / 5;
/// Of [`SPEND_BURST`], what a client not in good standing may spend; the rest is kept for
/// clients whose last fix got votes.
pub const OPEN_SPEND: u32 = SPEND_BURST / 2;
/// One more failed claim per peer is allowed per this long: the peer's own refill.
pub const SPEND_REFILL: Duration = GUESS_REFILL;
/// Fixes with mostly unknown tickets a client may send at once.
pub const CLIENT_BURST: u32 = 5;
/// After the burst, one more per this long.
pub const CLIENT_REFILL: Duration = Duration::from_secs(60);
/// A client beyond its allowance has every fix refused (160) this long.
pub const CLIENT_COOLDOWN: Duration = Duration::from_secs(300);
/// Clients that owe strikes with an entry of their own (the rest share one).
pub const MAX_TRACKED_CLIENTS: usize = 4096;
/// Clients in good standing remembered (the least recently good gives way).
pub const MAX_GOOD_CLIENTS: usize = 4096;

/// A generic cell-rate allowance: `burst` at once, one more per `refill`.
#[derive(Debug, Clone, Copy, Default)]
struct Allowance {
    /// When it is whole again.
    refilled_at: Duration,
}

impl Allowance {
    /// Units owed at `now`, rounded up.
    fn owed(&self, now: Duration, refill: Duration) -> u32 {
        let debt = self.refilled_at.saturating_sub(now);
        debt.as_nanos().div_ceil(refill.as_nanos()) as u32
    }

    fn spend(&mut self, now: Duration, refill: Duration) {
        self.refilled_at = self.refilled_at.max(now) + refill;
    }

    fn refund(&mut self, now: Duration, refill: Duration) {
        self.refilled_at = self.refilled_at.saturating_sub(refill).max(now);
    }
}

/// A client's record.
#[derive(Debug, Clone, Copy, Default)]
struct Client {
    strikes: Allowance,
    refused_until: Duration,
}

impl Client {
    /// The first moment it carries nothing: no strike owed, not refused.
    fn idle_at(&self) -> Duration {
        self.strikes.refilled_at.max(self.refused_until)
    }

    fn idle(&self, now: Duration) -> bool {
        self.idle_at() <= now
    }

    /// Counts one strike; true when it takes the client beyond its allowance.
    fn strike(&mut self, now: Duration) -> bool {
        self.strikes.spend(now, CLIENT_REFILL);
        if self.strikes.owed(now, CLIENT_REFILL) > CLIENT_BURST && self.refused_until <= now {
            self.refused_until = now + CLIENT_COOLDOWN;
            return true;
        }
        false
    }
}

#[derive(Default)]
struct Clients {
    owing: HashMap<SourceKey, Client>,
    /// Shared by clients without an entry while the table is full of clients that owe.
    overflow: Client,
    /// Clients whose last fix got votes, and when.
    good: HashMap<SourceKey, Duration>,
    /// When the table was last found full of clients that owe: the first moment one of
    /// them is idle (no scan of the table for every strike meanwhile; an entry's idle
    /// moment only moves later, and none is added while the table is full).
    no_room_until: Duration,
}

impl Clients {
    fn record(&self, key: SourceKey) -> Option<&Client> {
        self.owing.get(&key).or_else(|| {
            (self.owing.len() >= MAX_TRACKED_CLIENTS).then_some(&self.overflow)
        })
    }

    fn record_for_strike(&mut self, key: SourceKey, now: Duration) -> &mut Client {
        if !self.owing.contains_key(&key) && self.owing.len() >= MAX_TRACKED_CLIENTS {
            if now < self.no_room_until {
                return &mut self.overflow;
            }
            self.owing.retain(|_, c| !c.idle(now));
            if self.owing.len() >= MAX_TRACKED_CLIENTS {
                self.no_room_until = self
                    .owing
                    .values()
                    .map(Client::idle_at)
                    .min()
                    .unwrap_or(now);
                return &mut self.overflow;
            }
        }
        self.owing.entry(key).or_default()
    }

    fn mark_good(&mut self, key: SourceKey, now: Duration) {
        if !self.good.contains_key(&key) && self.good.len() >= MAX_GOOD_CLIENTS {
            let oldest = self.good.iter().min_by_key(|(_, &at)| at).map(|(&k, _)| k);
            if let Some(oldest) = oldest {
                self.good.remove(&oldest);
            }
        }
        self.good.insert(key, now);
    }
}

/// How one claim sent to a peer ended, for the books.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimFate {
    /// It voted, or said 44 (already claimed): not a failure at the peer.
    Confirmed,
    /// It answered 43: the ticket is unknown there, and the peer counted a failure.
    Unknown,
    /// It answered something it does not count (another status).
    NotCounted,
}

impl ClaimFate {
    /// The fate of a claim answered with status `code` (250 is a vote).
    pub fn of_status(code: u8) -> ClaimFate {
        match code {
            250 | 44 => ClaimFate::Confirmed,
            43 => ClaimFate::Unknown,
            _ => ClaimFate::NotCounted,
        }
    }
}

/// Why a fix may not go ahead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FixRefusal {
    /// The client's recent fixes named unknown tickets: answer 160 at once, for
    /// `for_secs` more seconds.
    ClientRefused { for_secs: u64 },
    /// Not in good standing, and too few peers have open allowance left for the fix to
    /// reach its votes: answer 160 at once.
    PeersKept,
}

/// One admitted fix's account: the units it holds at each peer (one per claim sent and
/// not yet answered in a way that gives it back) and what its answers said.
#[derive(Debug)]
pub struct FixAccount {
    client: Option<SourceKey>,
    good: bool,
    held: [u8; TOTAL_RAIDA_SERVERS],
    unknown: usize,
    confirmed: usize,
}

/// Per peer, this server's failed claims there; per client, its strikes and standing;
/// and the limits of the log lines fix writes because of what wallets and peers sent.
pub struct FixGate {
    peers: Mutex<[Allowance; TOTAL_RAIDA_SERVERS]>,
    clients: Mutex<Clients>,
    clock: Box<dyn Clock>,
    log_limits: LogLimits,
    /// This server holds the network's claim key: its claims carry tags, which a keyed
    /// peer verifies and then never throttles, so no failed-claim allowance is kept.
    tags_claims: bool,
}

impl Default for FixGate {
    /// The monotonic clock.
    fn default() -> Self {
        FixGate::with_clock(Box::<MonotonicClock>::default())
    }
}

impl FixGate {
    /// A gate on another clock (tests move it by hand).
    pub fn with_clock(clock: Box<dyn Clock>) -> FixGate {
        FixGate {
            peers: Mutex::new([Allowance::default(); TOTAL_RAIDA_SERVERS]),
            clients: Mutex::new(Clients::default()),
            clock,
            log_limits: LogLimits::default(),
            tags_claims: false,
        }
    }

    /// The gate of a server that holds the claim key (`true`): the peers' failed-claim
    /// allowances are neither kept nor spent (a keyed peer never throttles a verified
    /// claim); clients' strikes still count.
    pub fn tagging_claims(mut self, tags_claims: bool) -> FixGate {
        self.tags_claims = tags_claims;
        self
    }

    /// The limits of fix's log lines (and the counts of lines held back).
    pub fn log_limits(&self) -> &LogLimits {
        &self.log_limits
    }

    fn ceiling(good: bool) -> u32 {
        if good {
            SPEND_BURST
        } else {
            OPEN_SPEND
        }
    }

    /// Before a fix from `client` (`None`: no address given, as a test or ops script)
    /// that names `peers`, of which at least `needed` must answer for any coin to be
    /// fixed: its account, or why it is refused.
    pub fn admit(
        &self,
        client: Option<IpAddr>,
        peers: &[u8],
        needed: usize,
    ) -> Result<FixAccount, FixRefusal> {
        let now = self.clock.now();
        let key = client.map(SourceKey::of);
        let good = match key {
            Some(key) => {
                let clients = self.clients.lock();
                if let Some(record) = clients.record(key) {
                    if record.refused_until > now {
                        return Err(FixRefusal::ClientRefused {
                            for_secs: (record.refused_until - now).as_secs().max(1),
                        });
                    }
                }
                clients.good.contains_key(&key)
            }
            // No address: the server's own callers (tests, ops) are not wallets.
            None => true,
        };
        if !good && !self.tags_claims {
            let allowances = self.peers.lock();
            let open = peers
                .iter()
                .filter(|&&r| allowances[usize::from(r)].owed(now, SPEND_REFILL) < OPEN_SPEND)
                .count();
            if open < needed {
                return Err(FixRefusal::PeersKept);
            }
        }
        Ok(FixAccount {
            client: key,
            good,
            held: [0; TOTAL_RAIDA_SERVERS],
            unknown: 0,
            confirmed: 0,
        })
    }

    /// Right before a claim is sent to RAIDA `raida` for the fix of `account`: one unit of
    /// that peer's allowance, or `false` (the claim is not sent) when the allowance is
    /// spent for a client of this standing.
    pub fn take(&self, account: &mut FixAccount, raida: u8) -> bool {
        if !self.tags_claims {
            let now = self.clock.now();
            let mut allowances = self.peers.lock();
            let allowance = &mut allowances[usize::from(raida)];
            if allowance.owed(now, SPEND_REFILL) >= Self::ceiling(account.good) {
                return false;
            }
            allowance.spend(now, SPEND_REFILL);
        }
        // Held even when nothing was spent: its answer still counts for or against the
        // client.
        account.held[usize::from(raida)] += 1;
        true
    }

    /// A claim sent to `raida` for `account`'s fix was answered: a unit given back unless
    /// the peer counted a failure.
    pub fn answered(&self, account: &mut FixAccount, raida: u8, fate: ClaimFate) {
        let slot = &mut account.held[usize::from(raida)];
        if *slot == 0 {
            return;
        }
        match fate {
            ClaimFate::Unknown => account.unknown += 1,
            ClaimFate::Confirmed => account.confirmed += 1,
            ClaimFate::NotCounted => {}
        }
        *slot -= 1;
        if fate != ClaimFate::Unknown && !self.tags_claims {
            self.peers.lock()[usize::from(raida)].refund(self.clock.now(), SPEND_REFILL);
        }
    }

    /// After the fix: claims still unanswered (timed out, closed as unneeded, a broken
    /// answer) are given back when no peer said 43 (the tickets proved good) and kept
    /// otherwise; the fix counts for or against its client. The line to log when the
    /// client is now refused.
    pub fn finish(&self, account: FixAccount) -> Option<String> {
        let now = self.clock.now();
        if account.unknown == 0 && !self.tags_claims {
            let mut allowances = self.peers.lock();
            for (raida, &held) in account.held.iter().enumerate() {
                for _ in 0..held {
                    allowances[raida].refund(now, SPEND_REFILL);
                }
            }
        }
        let key = account.client?;
        let mut clients = self.clients.lock();
        if account.unknown > account.confirmed {
            clients.good.remove(&key);
            if clients.record_for_strike(key, now).strike(now) {
                return Some(format!(
                    "fix: client {key} sent more than {CLIENT_BURST} fixes whose tickets were \
                     unknown at the peers (or more than one per {} s): its fixes are refused \
                     (160) for {} s",
                    CLIENT_REFILL.as_secs(),
                    CLIENT_COOLDOWN.as_secs()
                ));
            }
        } else if account.confirmed > 0 {
            clients.mark_good(key, now);
        }
        None
    }

    /// Failed claims this server may owe RAIDA `raida` now, claims in flight included
    /// (tests, metrics).
    pub fn owed_to(&self, raida: u8) -> u32 {
        self.peers.lock()[usize::from(raida)].owed(self.clock.now(), SPEND_REFILL)
    }

    /// Whether `client` is in good standing.
    pub fn is_good(&self, client: IpAddr) -> bool {
        self.clients.lock().good.contains_key(&SourceKey::of(client))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tickets::testing::ManualClock;

    const S: Duration = Duration::from_secs(1);
    const PEERS: [u8; 24] = {
        let mut p = [0u8; 24];
        let mut i = 0;
        while i < 24 {
            p[i] = i as u8 + 1;
            i += 1;
        }
        p
    };

    fn ip(n: u32) -> Option<IpAddr> {
        Some(IpAddr::V4(std::net::Ipv4Addr::from(0x7f00_0000 + n)))
    }

    fn gate() -> (FixGate, ManualClock) {
        let clock = ManualClock::default();
        (FixGate::with_clock(Box::new(clock.clone())), clock)
    }

    /// A fix whose every ticket is unknown at every peer it could ask.
    fn bogus(gate: &FixGate, client: Option<IpAddr>) -> Result<usize, FixRefusal> {
        let mut account = gate.admit(client, &PEERS, 13)?;
        let mut sent = 0;
        for &p in &PEERS {
            if gate.take(&mut account, p) {
                gate.answered(&mut account, p, ClaimFate::Unknown);
                sent += 1;
            }
        }
        gate.finish(account);
        Ok(sent)
    }

    /// A fix whose tickets are good: 13 votes, the rest closed unanswered.
    fn honest(gate: &FixGate, client: Option<IpAddr>) -> Result<usize, FixRefusal> {
        let mut account = gate.admit(client, &PEERS, 13)?;
        let mut votes = 0;
        for &p in &PEERS {
            if gate.take(&mut account, p) && votes < 13 {
                gate.answered(&mut account, p, ClaimFate::Confirmed);
                votes += 1;
            }
        }
        gate.finish(account);
        Ok(votes)
    }

    #[test]
    fn no_flood_makes_this_server_owe_a_peer_more_than_it_allows() {
        const { assert!(SPEND_BURST < GUESS_BURST) };
        for clients in [1u32, 1000] {
            let (gate, clock) = gate();
            let wallet = ip(5_000);
            assert_eq!(honest(&gate, wallet), Ok(13));
            assert!(gate.is_good(wallet.unwrap()));
            let mut refused = 0;
            for i in 0..6_000u32 {
                if bogus(&gate, ip(i % clients)).is_err() {
                    refused += 1;
                }
                for &p in &PEERS {
                    assert!(gate.owed_to(p) <= SPEND_BURST);
                }
                // The wallet that healed here before heals during the flood.
                if i % 500 == 0 {
                    assert_eq!(honest(&gate, wallet), Ok(13));
                }
            }
            if clients == 1 {
                // One address: its own strikes stop it; the peers' open part is untouched.
                assert_eq!(refused, 6_000 - (CLIENT_BURST + 1));
                assert_eq!(honest(&gate, ip(9_999)), Ok(13));
                continue;
            }
            // A thousand addresses: the open part of every peer's allowance is spent, the
            // rest of the flood refused; a new wallet heals after one refill.
            assert_eq!(refused, 6_000 - OPEN_SPEND, "{clients} clients");
            assert_eq!(honest(&gate, ip(9_999)), Err(FixRefusal::PeersKept));
            clock.advance(SPEND_REFILL);
            assert_eq!(honest(&gate, ip(9_999)), Ok(13));
        }
    }

    #[test]
    fn claims_in_flight_count_until_answered() {
        let (gate, _clock) = gate();
        // 48 fixes in flight at peer 1 (good standing: no address): the 49th is not sent.
        let mut accounts: Vec<FixAccount> = (0..SPEND_BURST)
            .map(|_| {
                let mut a = gate.admit(None, &[1], 1).unwrap();
                assert!(gate.take(&mut a, 1));
                a
            })
            .collect();
        let mut late = gate.admit(None, &[1], 1).unwrap();
        assert!(!gate.take(&mut late, 1));
        // One answered with a vote gives its unit back at once.
        gate.answered(&mut accounts[0], 1, ClaimFate::Confirmed);
        assert!(gate.take(&mut late, 1));
        // Unanswered at the end of a fix whose tickets were good: given back.
        for a in accounts {
            gate.finish(a);
        }
        assert_eq!(gate.owed_to(1), 1);
        // At the end of a fix that got a 43: kept.
        let mut a = gate.admit(None, &[1, 2], 1).unwrap();
        assert!(gate.take(&mut a, 1) && gate.take(&mut a, 2));
        gate.answered(&mut a, 2, ClaimFate::Unknown);
        gate.finish(a);
        assert_eq!((gate.owed_to(1), gate.owed_to(2)), (2, 1));
        assert_eq!(ClaimFate::of_status(44), ClaimFate::Confirmed);
        assert_eq!(ClaimFate::of_status(43), ClaimFate::Unknown);
        assert_eq!(ClaimFate::of_status(16), ClaimFate::NotCounted);
    }

    #[test]
    fn with_the_claim_key_peers_keep_no_allowance_but_clients_still_strike() {
        let clock = ManualClock::default();
        let gate = FixGate::with_clock(Box::new(clock.clone())).tagging_claims(true);
        // A thousand addresses' bogus fixes owe the peers nothing (keyed peers never
        // throttle a verified claim), and a new wallet still heals.
        for i in 0..6_000u32 {
            let _ = bogus(&gate, ip(i % 1000));
        }
        for &p in &PEERS {
            assert_eq!(gate.owed_to(p), 0);
        }
        assert_eq!(honest(&gate, ip(9_999)), Ok(13));
        // Each of those addresses was still refused after its strikes.
        assert!(matches!(
            gate.admit(ip(1), &PEERS, 13),
            Err(FixRefusal::ClientRefused { .. })
        ));
    }

    /// A table full of clients that owe: newcomers share the overflow entry, and the table
    /// is scanned again only once one of its clients can be idle, which frees every idle one.
    #[test]
    fn a_full_client_table_shares_one_overflow_entry_until_its_clients_can_be_idle() {
        let key = |n: u32| SourceKey::of(ip(n).unwrap());
        let mut clients = Clients::default();
        let start = 10 * S;
        for n in 0..MAX_TRACKED_CLIENTS as u32 {
            clients.record_for_strike(key(n), start).strike(start);
        }
        assert_eq!(clients.owing.len(), MAX_TRACKED_CLIENTS);
        for (n, at) in [(100_000, start + S), (100_001, start + 2 * S)] {
            clients.record_for_strike(key(n), at).strike(at);
            assert_eq!(clients.owing.len(), MAX_TRACKED_CLIENTS);
            assert!(!clients.owing.contains_key(&key(n)));
        }
        assert_eq!(clients.no_room_until, start + CLIENT_REFILL);
        assert_eq!(clients.overflow.strikes.owed(start + 2 * S, CLIENT_REFILL), 2);
        let later = start + CLIENT_REFILL;
        clients.record_for_strike(key(100_002), later).strike(later);
        assert_eq!(clients.owing.len(), 1);
        assert!(clients.owing.contains_key(&key(100_002)));
    }

    #[test]
    fn a_client_that_keeps_naming_unknown_tickets_is_refused_with_one_line() {
        let (gate, clock) = gate();
        let client = ip(7);
        let mut lines = Vec::new();
        clock.advance(10 * S);
        for _ in 0..=CLIENT_BURST {
            let mut a = gate.admit(client, &PEERS[..1], 1).unwrap();
            assert!(gate.take(&mut a, 1));
            gate.answered(&mut a, 1, ClaimFate::Unknown);
            lines.extend(gate.finish(a));
        }
        assert_eq!(
            lines,
            ["fix: client 127.0.0.7 sent more than 5 fixes whose tickets were unknown at the \
              peers (or more than one per 60 s): its fixes are refused (160) for 300 s"]
        );
        clock.advance(S);
        assert_eq!(
            gate.admit(client, &PEERS, 13).unwrap_err(),
            FixRefusal::ClientRefused { for_secs: 299 }
        );
        // Another client is not affected; the refused one is back after the cooldown.
        assert!(gate.admit(ip(8), &PEERS, 13).is_ok());
        clock.advance(CLIENT_COOLDOWN);
        assert!(gate.admit(client, &PEERS, 13).is_ok());
    }
}
