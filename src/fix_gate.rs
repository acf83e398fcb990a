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
//! peer's burst, at the peer's refill): every claim sent holds one unit until its answer
//! shows it did not fail (a vote, 44, a claim that never left). The part of that
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
    fn idle(&self, now: Duration) -> bool {
        self.strikes.refilled_at <= now && self.refused_until <= now
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
}

impl Clients {
    fn record(&self, key: SourceKey) -> Option<&Client> {
        self.owing.get(&key).or_else(|| {
            (self.owing.len() >= MAX_TRACKED_CLIENTS).then_some(&self.overflow)
        })
    }

    fn record_for_strike(&mut self, key: SourceKey, now: Duration) -> &mut Client {
        if !self.owing.contains_key(&key) && self.owing.len() >= MAX_TRACKED_CLIENTS {
            self.owing.retain(|_, c| !c.idle(now));
            if self.owing.len() >= MAX_TRACKED_CLIENTS {
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

/// How one asked peer's claim ended, for the books.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimFate {
    /// It voted, or said 44 (already claimed): not a failure at the peer.
    Confirmed,
    /// It answered 43: the ticket is unknown there, and the peer counted a failure.
    Unknown,
    /// The claim never reached the peer (no connection, refused, ejected) or the peer
    /// answered something it does not count (another status).
    NotCounted,
    /// Sent, with no answer read (timed out, closed as unneeded, a broken answer): the peer
    /// may have counted it.
    Unanswered,
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

/// Which peers a fix may ask, and what it holds of their allowances until settled.
#[derive(Debug)]
pub struct Reservation {
    client: Option<SourceKey>,
    /// Peers whose allowance this fix holds one unit of.
    held: Vec<u8>,
    /// Peers this fix may not ask: their allowance is spent for a client of its standing.
    pub withheld: Vec<u8>,
}

impl Reservation {
    /// Whether RAIDA `raida` may be asked.
    pub fn may_ask(&self, raida: u8) -> bool {
        self.held.contains(&raida)
    }
}

/// Per peer, this server's failed claims there; per client, its strikes and standing;
/// and the limits of the log lines fix writes because of what wallets and peers sent.
pub struct FixGate {
    peers: Mutex<[Allowance; TOTAL_RAIDA_SERVERS]>,
    clients: Mutex<Clients>,
    clock: Box<dyn Clock>,
    log_limits: LogLimits,
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
        }
    }

    /// The limits of fix's log lines (and the counts of lines held back).
    pub fn log_limits(&self) -> &LogLimits {
        &self.log_limits
    }

    /// [`FixGate::reserve_at`] now.
    pub fn reserve(
        &self,
        client: Option<IpAddr>,
        peers: &[u8],
        needed: usize,
    ) -> Result<Reservation, FixRefusal> {
        self.reserve_at(client, peers, needed, self.clock.now())
    }

    /// [`FixGate::settle_at`] now.
    pub fn settle(&self, reservation: Reservation, fates: &[(u8, ClaimFate)]) -> Option<String> {
        self.settle_at(reservation, fates, self.clock.now())
    }

    /// Failed claims this server may owe RAIDA `raida` now (tests, metrics).
    pub fn owed_now(&self, raida: u8) -> u32 {
        self.owed_to(raida, self.clock.now())
    }

    /// Before a fix from `client` (`None`: no address given, as a test or ops script)
    /// asks `peers`, of which at least `needed` must answer for any coin to be fixed:
    /// the peers it may ask, holding one unit of each one's allowance, or why it is
    /// refused.
    pub fn reserve_at(
        &self,
        client: Option<IpAddr>,
        peers: &[u8],
        needed: usize,
        now: Duration,
    ) -> Result<Reservation, FixRefusal> {
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
        let ceiling = if good { SPEND_BURST } else { OPEN_SPEND };
        let mut allowances = self.peers.lock();
        let (held, withheld): (Vec<u8>, Vec<u8>) = peers
            .iter()
            .partition(|&&raida| allowances[usize::from(raida)].owed(now, SPEND_REFILL) < ceiling);
        if !good && held.len() < needed {
            return Err(FixRefusal::PeersKept);
        }
        for &raida in &held {
            allowances[usize::from(raida)].spend(now, SPEND_REFILL);
        }
        Ok(Reservation {
            client: key,
            held,
            withheld,
        })
    }

    /// After the fix: gives back the units of claims that did not fail, and counts the
    /// fix for or against its client. The line to log when the client is now refused.
    pub fn settle_at(
        &self,
        reservation: Reservation,
        fates: &[(u8, ClaimFate)],
        now: Duration,
    ) -> Option<String> {
        let unknown = fates.iter().filter(|(_, f)| *f == ClaimFate::Unknown).count();
        let confirmed = fates.iter().filter(|(_, f)| *f == ClaimFate::Confirmed).count();
        {
            let mut allowances = self.peers.lock();
            for &(raida, fate) in fates {
                if !reservation.held.contains(&raida) {
                    continue;
                }
                let give_back = match fate {
                    ClaimFate::Confirmed | ClaimFate::NotCounted => true,
                    ClaimFate::Unknown => false,
                    // The tickets proved good elsewhere: this one most likely was too.
                    ClaimFate::Unanswered => unknown == 0,
                };
                if give_back {
                    allowances[usize::from(raida)].refund(now, SPEND_REFILL);
                }
            }
        }
        let key = reservation.client?;
        let mut clients = self.clients.lock();
        if unknown > confirmed {
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
        } else if confirmed > 0 {
            clients.mark_good(key, now);
        }
        None
    }

    /// Failed claims this server may owe RAIDA `raida` at `now` (tests, metrics).
    pub fn owed_to(&self, raida: u8, now: Duration) -> u32 {
        self.peers.lock()[usize::from(raida)].owed(now, SPEND_REFILL)
    }

    /// Whether `client` is in good standing.
    pub fn is_good(&self, client: IpAddr) -> bool {
        self.clients.lock().good.contains_key(&SourceKey::of(client))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    /// A fix whose every ticket is unknown at every peer it asked.
    fn bogus(gate: &FixGate, client: Option<IpAddr>, now: Duration) -> Result<(), FixRefusal> {
        let r = gate.reserve_at(client, &PEERS, 13, now)?;
        let fates: Vec<_> = PEERS.iter().map(|&p| (p, ClaimFate::Unknown)).collect();
        gate.settle_at(r, &fates, now);
        Ok(())
    }

    /// A fix whose tickets are good: 13 votes, the rest unneeded.
    fn honest(gate: &FixGate, client: Option<IpAddr>, now: Duration) -> Result<(), FixRefusal> {
        let r = gate.reserve_at(client, &PEERS, 13, now)?;
        assert!(r.withheld.is_empty() || client.is_some());
        let fates: Vec<_> = PEERS
            .iter()
            .filter(|&&p| r.may_ask(p))
            .enumerate()
            .map(|(i, &p)| {
                (p, if i < 13 { ClaimFate::Confirmed } else { ClaimFate::Unanswered })
            })
            .collect();
        gate.settle_at(r, &fates, now);
        Ok(())
    }

    #[test]
    fn no_flood_makes_this_server_owe_a_peer_more_than_it_allows() {
        for clients in [1u32, 1000] {
            let gate = FixGate::default();
            let wallet = ip(5_000);
            honest(&gate, wallet, Duration::ZERO).unwrap();
            assert!(gate.is_good(wallet.unwrap()));
            let mut refused = 0;
            for i in 0..6_000u32 {
                let now = Duration::from_millis(u64::from(i));
                if bogus(&gate, ip(i % clients), now).is_err() {
                    refused += 1;
                }
                for &p in &PEERS {
                    assert!(gate.owed_to(p, now) <= SPEND_BURST);
                }
                // The wallet that healed here before heals during the flood.
                if i % 500 == 0 {
                    honest(&gate, wallet, now).unwrap();
                }
            }
            const { assert!(SPEND_BURST < GUESS_BURST) };
            let after = Duration::from_secs(6);
            if clients == 1 {
                // One address: its own strikes stop it; the peers' open part is untouched.
                assert_eq!(refused, 6_000 - (CLIENT_BURST + 1));
                honest(&gate, ip(9_999), after).unwrap();
                continue;
            }
            // A thousand addresses: the open part of every peer's allowance is spent (one
            // unit back in the 6 s), and the rest of the flood is refused.
            assert_eq!(refused, 6_000 - (OPEN_SPEND + 1), "{clients} clients");
            // A new wallet: refused while the open part is spent, heals once it refills.
            assert_eq!(
                gate.reserve_at(ip(9_999), &PEERS, 13, after).unwrap_err(),
                FixRefusal::PeersKept
            );
            let refilled = after + SPEND_REFILL;
            honest(&gate, ip(9_999), refilled).unwrap();
        }
    }

    #[test]
    fn a_client_that_keeps_naming_unknown_tickets_is_refused_with_one_line() {
        let gate = FixGate::default();
        let client = ip(7);
        let mut lines = Vec::new();
        let now = 10 * S;
        for _ in 0..=CLIENT_BURST {
            let r = gate.reserve_at(client, &PEERS[..1], 1, now).unwrap();
            lines.extend(gate.settle_at(r, &[(1, ClaimFate::Unknown)], now));
        }
        assert_eq!(
            lines,
            ["fix: client 127.0.0.7 sent more than 5 fixes whose tickets were unknown at the \
              peers (or more than one per 60 s): its fixes are refused (160) for 300 s"]
        );
        assert_eq!(
            gate.reserve_at(client, &PEERS, 13, now + S).unwrap_err(),
            FixRefusal::ClientRefused { for_secs: 299 }
        );
        // Another client is not affected; the refused one is back after the cooldown.
        assert!(gate.reserve_at(ip(8), &PEERS, 13, now + S).is_ok());
        assert!(gate.reserve_at(client, &PEERS, 13, now + CLIENT_COOLDOWN).is_ok());
    }

    #[test]
    fn answers_that_are_not_failures_give_their_unit_back() {
        let gate = FixGate::default();
        let now = 10 * S;
        let r = gate.reserve_at(None, &[1, 2, 3, 4], 1, now).unwrap();
        assert_eq!((1..=4).map(|p| gate.owed_to(p, now)).sum::<u32>(), 4);
        let fates = [
            (1, ClaimFate::Confirmed),
            (2, ClaimFate::NotCounted),
            (3, ClaimFate::Unknown),
            (4, ClaimFate::Unanswered),
        ];
        gate.settle_at(r, &fates, now);
        // A fix with an unknown ticket keeps its unanswered claims counted.
        assert_eq!(
            [1, 2, 3, 4].map(|p| gate.owed_to(p, now)),
            [0, 0, 1, 1]
        );
    }
}
