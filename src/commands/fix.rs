//! fix (group 2, command 80): rewrite coins' ANs where enough RAIDAs confirm them.
//!
//! The owner of fracked coins got tickets for them from the RAIDAs that still recognise
//! them, and sends those tickets here with a proposed generator PG. This server checks
//! that it holds every coin, asks each peer named by a ticket to validate it (which
//! lists the coins the ticket covers), counts one vote per peer per coin plus its own,
//! and gives each coin with at least 14 votes the AN derived from PG.
//!
//! No page lock is held while peers are asked: pages are locked once to check they
//! exist, and again, after the vote, only where a coin is rewritten.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use crate::consensus::Tally;
use crate::hash::derive_an;
use crate::log;
use crate::peers::{ask_peers, Claimer, Collector, PeerOutcome, PeerReport, Target};
use crate::protocol::{
    an_at, check_record_payload, pass_fail_response, Coin, Response, Status, AN_BYTES, COIN_BYTES,
    TOTAL_RAIDA_SERVERS,
};
use crate::store::{slot_of, visit_by_page, CoinStore};

use super::{Node, Request};

/// Bytes after the coin records: PG (16) and 25 ticket ids (4 each).
const FIXED_TAIL: usize = AN_BYTES + 4 * TOTAL_RAIDA_SERVERS;
/// The smallest payload: one coin and the tail (legacy `body_size` 139).
const MIN_PAYLOAD: usize = COIN_BYTES + FIXED_TAIL;

/// Everything one fix did, for its log lines and for tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FixReport {
    /// Coins in the request (repeats included).
    pub coins_asked: usize,
    /// Coins answered as fixed (repeats included).
    pub coins_fixed: usize,
    /// The peers that were asked (or would have been, had the vote not been decided
    /// without them), in RAIDA order.
    pub asked: Vec<PeerReport>,
    /// Every other RAIDA index and why it was not asked.
    pub not_asked: Vec<(u8, PeerOutcome)>,
    /// From the call to the answer.
    pub elapsed: Duration,
}

impl FixReport {
    /// What became of RAIDA `raida`.
    pub fn outcome_of(&self, raida: u8) -> Option<&PeerOutcome> {
        self.asked
            .iter()
            .find(|r| r.target.raida == raida)
            .map(|r| &r.outcome)
            .or_else(|| {
                self.not_asked
                    .iter()
                    .find(|(i, _)| *i == raida)
                    .map(|(_, o)| o)
            })
    }

    /// Peers per outcome.
    pub fn counts(&self) -> OutcomeCounts {
        let mut counts = OutcomeCounts::default();
        let outcomes = self
            .asked
            .iter()
            .map(|r| &r.outcome)
            .chain(self.not_asked.iter().map(|(_, o)| o));
        for outcome in outcomes {
            match outcome {
                PeerOutcome::Voted { .. } => counts.voted += 1,
                PeerOutcome::ThisServer => {}
                PeerOutcome::NoTicket => counts.no_ticket += 1,
                PeerOutcome::NoAddress => counts.no_address += 1,
                PeerOutcome::Refused(_) => counts.refused += 1,
                PeerOutcome::Declined(_) => counts.declined += 1,
                PeerOutcome::TimedOut => counts.timed_out += 1,
                PeerOutcome::Invalid(_) => counts.invalid += 1,
                PeerOutcome::Unneeded => counts.unneeded += 1,
                PeerOutcome::LocalError(_) => counts.local_error += 1,
                PeerOutcome::NoConnection => counts.no_connection += 1,
                PeerOutcome::Ejected => counts.ejected += 1,
            }
        }
        counts.hedged = self.asked.iter().filter(|r| r.hedged).count();
        counts
    }

    /// The one summary line every fix logs, e.g. `fix: 3 coins asked, 2 fixed, 1 not
    /// fixed; peers: 14 voted, 1 no ticket, 0 no address, 1 refused, 0 declined,
    /// 1 timed out, 2 invalid answer, 4 unneeded, 0 local error, 0 no connection slot;
    /// 1 hedged; 12.3 ms; failed: 5 9; hedged: 9; ejected: 20 21`. "no connection slot"
    /// counts peers never asked because the process-wide connection budget stayed full
    /// until the deadline (no vote). The lists (RAIDA indices) appear only when not
    /// empty, so the line alone names the peers to look at; "ejected" lists the peers not
    /// asked because they are ejected (no vote).
    pub fn summary_line(&self) -> String {
        let c = self.counts();
        let mut line = format!(
            "fix: {} coins asked, {} fixed, {} not fixed; peers: {} voted, {} no ticket, \
             {} no address, {} refused, {} declined, {} timed out, {} invalid answer, \
             {} unneeded, {} local error, {} no connection slot; {} hedged; {:.1} ms",
            self.coins_asked,
            self.coins_fixed,
            self.coins_asked - self.coins_fixed,
            c.voted,
            c.no_ticket,
            c.no_address,
            c.refused,
            c.declined,
            c.timed_out,
            c.invalid,
            c.unneeded,
            c.local_error,
            c.no_connection,
            c.hedged,
            self.elapsed.as_secs_f64() * 1000.0
        );
        let failed: Vec<u8> = self
            .asked
            .iter()
            .map(|r| (r.target.raida, &r.outcome))
            .chain(self.not_asked.iter().map(|(i, o)| (*i, o)))
            .filter(|(_, outcome)| is_failure(outcome))
            .map(|(raida, _)| raida)
            .collect();
        let hedged: Vec<u8> = self
            .asked
            .iter()
            .filter(|r| r.hedged)
            .map(|r| r.target.raida)
            .collect();
        let ejected: Vec<u8> = self
            .asked
            .iter()
            .filter(|r| r.outcome == PeerOutcome::Ejected)
            .map(|r| r.target.raida)
            .collect();
        for (name, list) in [("failed", failed), ("hedged", hedged), ("ejected", ejected)] {
            if !list.is_empty() {
                let _ = write!(line, "; {name}:");
                for raida in list {
                    let _ = write!(line, " {raida}");
                }
            }
        }
        line
    }

    /// True when some peer failed, or could not be asked for want of a connection slot:
    /// something an operator should look at.
    pub fn has_faulty_peer(&self) -> bool {
        let asked = self.asked.iter().map(|r| &r.outcome);
        let not_asked = self.not_asked.iter().map(|(_, o)| o);
        asked
            .chain(not_asked)
            .any(needs_attention)
    }
}

/// Outcomes an operator should look at: a failed peer, or one never asked because the
/// connection budget stayed full (logged at warning level, counted by has_faulty_peer).
fn needs_attention(outcome: &PeerOutcome) -> bool {
    is_failure(outcome) || *outcome == PeerOutcome::NoConnection
}

/// Outcomes that point at a broken, unreachable, slow or misconfigured peer (a peer that
/// declines a ticket, or was not needed, is healthy).
fn is_failure(outcome: &PeerOutcome) -> bool {
    matches!(
        outcome,
        PeerOutcome::Refused(_)
            | PeerOutcome::TimedOut
            | PeerOutcome::Invalid(_)
            | PeerOutcome::NoAddress
            | PeerOutcome::LocalError(_)
    )
}

/// Peers per outcome in one fix (this server itself is not counted).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutcomeCounts {
    pub voted: usize,
    pub no_ticket: usize,
    pub no_address: usize,
    pub refused: usize,
    pub declined: usize,
    pub timed_out: usize,
    pub invalid: usize,
    pub unneeded: usize,
    pub local_error: usize,
    /// Never asked: no slot of the connection budget before the deadline.
    pub no_connection: usize,
    /// Never asked: ejected after failing or staying silent on its last attempts.
    pub ejected: usize,
    /// Peers that got a second connection (overlaps the outcomes above).
    pub hedged: usize,
}

/// The vote tally collects peer answers while they arrive.
impl Collector for Tally {
    fn answer(&mut self, raida: u8, coins: &[Coin]) {
        self.add_answer(raida, coins);
    }

    fn is_decided(&self, pending: usize) -> bool {
        Tally::is_decided(self, pending)
    }
}

/// Answers a fix request and writes its summary (and per-peer reasons) to the log.
pub fn fix<S: CoinStore + ?Sized>(
    node: &Node<'_, S>,
    request: &Request<'_>,
) -> Result<Response, Status> {
    match fix_with_report(node, request) {
        Ok((response, report)) => {
            log_report(&report);
            Ok(response)
        }
        Err(status) => {
            log::debug(&format!(
                "fix: answered {} before asking any peer",
                status.code()
            ));
            Err(status)
        }
    }
}

/// [`fix`] without logging, returning what happened alongside the answer.
pub fn fix_with_report<S: CoinStore + ?Sized>(
    node: &Node<'_, S>,
    request: &Request<'_>,
) -> Result<(Response, FixReport), Status> {
    let started = Instant::now();
    let payload = check_record_payload(request.payload()?, MIN_PAYLOAD, FIXED_TAIL, COIN_BYTES)?;
    let (records, tail) = payload.split_at(payload.len() - FIXED_TAIL);
    let coins: Vec<Coin> = records
        .chunks_exact(COIN_BYTES)
        .map(Coin::from_wire)
        .collect();
    let pg = an_at(tail, 0);
    let tickets: Vec<u32> = tail[AN_BYTES..]
        .chunks_exact(4)
        .map(|t| u32::from_be_bytes([t[0], t[1], t[2], t[3]]))
        .collect();

    // Every coin's page must exist before any peer is asked.
    visit_by_page(node.store, &coins, |_, _| {})?;

    let raida_no = node.config.raida_no;
    let mut targets = Vec::new();
    let mut not_asked = Vec::new();
    for (raida, &ticket) in (0u8..).zip(&tickets) {
        let why = if raida == raida_no {
            PeerOutcome::ThisServer
        } else if ticket == 0 {
            PeerOutcome::NoTicket
        } else if let Some(addr) = node.config.peers[usize::from(raida)] {
            targets.push(Target {
                raida,
                addr,
                ticket,
            });
            continue;
        } else {
            PeerOutcome::NoAddress
        };
        not_asked.push((raida, why));
    }

    // Each peer gets a challenge from the OS random source; when it fails, no peer is
    // asked with a guessable one (peers.rs refuses too) and the client hears 252.
    if !targets.is_empty() {
        crate::random::fill(&mut [0u8; 12]).map_err(|why| {
            log::error(&format!(
                "fix: no peer challenge ({why}); answering ERROR_INTERNAL"
            ));
            Status::Internal
        })?;
    }

    let mut tally = Tally::new(&coins);
    let claimer = Claimer {
        raida_no,
        coin_id: request.coin_id,
    };
    let asked = ask_peers(&targets, claimer, node.peer_options, &mut tally);

    let written = write_confirmed(node, request, &coins, &pg, &tally);
    let passed: Vec<bool> = (0..coins.len())
        .map(|position| written[tally.id_at(position)])
        .collect();
    let report = FixReport {
        coins_asked: coins.len(),
        coins_fixed: passed.iter().filter(|&&p| p).count(),
        asked,
        not_asked,
        elapsed: started.elapsed(),
    };
    Ok((pass_fail_response(&passed, &[]), report))
}

/// Rewrites every confirmed coin under its page's lock, each distinct coin once, and
/// returns which distinct coins (by tally id) were written.
fn write_confirmed<S: CoinStore + ?Sized>(
    node: &Node<'_, S>,
    request: &Request<'_>,
    coins: &[Coin],
    pg: &[u8; AN_BYTES],
    tally: &Tally,
) -> Vec<bool> {
    let mut written = vec![false; tally.distinct_coins()];
    // Each coin's id by its request position: no search per coin.
    let (confirmed, confirmed_ids): (Vec<Coin>, Vec<usize>) = coins
        .iter()
        .enumerate()
        .map(|(position, &coin)| (coin, tally.id_at(position)))
        .filter(|&(_, id)| tally.is_confirmed_id(id))
        .unzip();
    if confirmed.is_empty() {
        return written;
    }
    let raida_no = node.config.raida_no;
    let mfs = node.store.mfs();
    let result = visit_by_page(node.store, &confirmed, |page, i| {
        let (coin, id) = (confirmed[i], confirmed_ids[i]);
        if !written[id] {
            let an = derive_an(raida_no, coin, pg, request.encryption_type);
            page.write(slot_of(coin.sn), &an, mfs);
            written[id] = true;
        }
    });
    if let Err(status) = result {
        // The pages existed a moment ago; a store that lost one is reported, and the
        // coins not written are answered as not fixed.
        log::error(&format!(
            "fix: a page vanished while writing confirmed coins (status {}); \
             coins not written are reported as not fixed",
            status.code()
        ));
    }
    written
}

/// Logs the summary (warning when a peer looks faulty, else debug) and one line per
/// asked peer (warning for a failure, debug otherwise).
fn log_report(report: &FixReport) {
    for peer in &report.asked {
        let mut line = format!(
            "fix: peer {} at {}: {}",
            peer.target.raida, peer.target.addr, peer.outcome
        );
        if peer.hedged {
            line.push_str("; hedged");
            if let Some(second) = &peer.hedge_outcome {
                let _ = write!(line, " (second connection: {second})");
            }
        }
        if needs_attention(&peer.outcome) {
            log::warning(&line);
        } else {
            log::debug(&line);
        }
    }
    for (raida, outcome) in &report.not_asked {
        if *outcome == PeerOutcome::NoAddress {
            log::warning(&format!("fix: peer {raida}: {outcome}"));
        }
    }
    if report.has_faulty_peer() {
        log::warning(&report.summary_line());
    } else {
        log::debug(&report.summary_line());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::NodeConfig;
    use crate::peers::PeerOptions;
    use crate::store::{MemoryStore, PageKey};
    use crate::tickets::TicketPool;

    fn body(coins: &[Coin], pg: [u8; 16], tickets: [u32; 25]) -> Vec<u8> {
        let mut body = vec![0u8; 16];
        for c in coins {
            body.extend(c.to_wire());
        }
        body.extend(pg);
        for t in tickets {
            body.extend(t.to_be_bytes());
        }
        body.extend([0x3e, 0x3e]);
        body
    }

    fn run(store: &MemoryStore, body: &[u8]) -> Result<(Response, FixReport), Status> {
        let pool = TicketPool::default();
        let config = NodeConfig {
            raida_no: 2,
            peers: [None; 25],
        };
        let options = PeerOptions::default();
        let node = Node {
            store,
            tickets: &pool,
            config: &config,
            peer_options: &options,
        };
        fix_with_report(
            &node,
            &Request {
                body: Some(body),
                encryption_type: 0,
                coin_id: 6,
                client: None,
            },
        )
    }

    /// A store holding one coin, (1, 1), with AN [9; 16] and MFS 1.
    fn store_with_one_coin() -> (MemoryStore, Coin) {
        let store = MemoryStore::new();
        let coin = Coin { den: 1, sn: 1 };
        store.put(coin, [9; 16], 1);
        (store, coin)
    }

    #[test]
    fn sizes() {
        let (store, coin) = store_with_one_coin();
        let good = body(&[coin], [0; 16], [0; 25]);
        assert_eq!(good.len(), 139);
        assert_eq!(
            run(&store, &good[..138]).unwrap_err(),
            Status::InvalidPacketLength
        );
        let mut odd = good.clone();
        odd.insert(16, 0);
        assert_eq!(run(&store, &odd).unwrap_err(), Status::CoinsNotDiv);
        assert_eq!(run(&store, &[]).unwrap_err(), Status::InvalidPacketLength);
    }

    #[test]
    fn no_tickets_means_no_fix_and_no_write() {
        let (store, coin) = store_with_one_coin();
        let (response, report) = run(&store, &body(&[coin], [0; 16], [0; 25])).unwrap();
        assert_eq!(response, Response::status(Status::AllFail));
        assert!(report.asked.is_empty());
        assert_eq!(report.outcome_of(2), Some(&PeerOutcome::ThisServer));
        assert_eq!(report.outcome_of(3), Some(&PeerOutcome::NoTicket));
        assert_eq!(report.counts().no_ticket, 24);
        assert_eq!(store.get(coin), Some(([9; 16], 1)));
        let key = PageKey { den: 1, page: 0 };
        assert_eq!(store.inspect(key, |p| (p.dirty, p.locks)), Some((false, 1)));
    }

    #[test]
    fn tickets_without_addresses_are_reported() {
        let (store, coin) = store_with_one_coin();
        let (response, report) = run(&store, &body(&[coin], [0; 16], [5; 25])).unwrap();
        assert_eq!(response, Response::status(Status::AllFail));
        assert_eq!(report.outcome_of(0), Some(&PeerOutcome::NoAddress));
        assert_eq!(report.counts().no_address, 24);
        assert!(report.has_faulty_peer());
    }

    #[test]
    fn summary_line_format() {
        let report = FixReport {
            coins_asked: 3,
            coins_fixed: 2,
            asked: vec![PeerReport {
                target: Target {
                    raida: 4,
                    addr: "127.0.0.1:9".parse().unwrap(),
                    ticket: 1,
                },
                outcome: PeerOutcome::TimedOut,
                hedged: true,
                hedge_outcome: None,
            }, PeerReport {
                target: Target {
                    raida: 6,
                    addr: "127.0.0.1:10".parse().unwrap(),
                    ticket: 2,
                },
                outcome: PeerOutcome::Ejected,
                hedged: false,
                hedge_outcome: None,
            }],
            not_asked: vec![(0, PeerOutcome::ThisServer), (1, PeerOutcome::NoTicket)],
            elapsed: Duration::from_micros(12_345),
        };
        assert_eq!(
            report.summary_line(),
            "fix: 3 coins asked, 2 fixed, 1 not fixed; peers: 0 voted, 1 no ticket, \
             0 no address, 0 refused, 0 declined, 1 timed out, 0 invalid answer, \
             0 unneeded, 0 local error, 0 no connection slot; 1 hedged; 12.3 ms; failed: 4; hedged: 4; ejected: 6"
        );
    }
}
