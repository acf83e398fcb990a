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
//!
//! Before any peer is asked, the fix gate ([`crate::fix_gate`]) decides what the client
//! may spend of this server's standing at its peers: a client whose recent fixes named
//! unknown tickets, or whose fix would spend the allowance kept for clients in good
//! standing, is answered 160 at once; afterwards the gate learns which claims failed.

use std::time::Instant;

use crate::consensus::{Tally, THRESHOLD};
use crate::fix_gate::{ClaimFate, FixAccount, FixGate, FixRefusal};
use crate::hash::derive_an;
use crate::log;
use crate::log_limit::LineKind;
use crate::peers::{ask_peers, Collector, PeerOutcome, Target};
use crate::protocol::{
    an_at, check_record_payload, pass_fail_response, Coin, Response, Status, AN_BYTES, COIN_BYTES,
    TOTAL_RAIDA_SERVERS,
};
use crate::store::{record_index, visit_by_page, CoinStore};

use super::{Node, Request};

mod report;

use report::log_report;
pub use report::{FixReport, OutcomeCounts};

/// Bytes after the coin records: PG (16) and 25 ticket ids (4 each).
const FIXED_TAIL: usize = AN_BYTES + 4 * TOTAL_RAIDA_SERVERS;
/// The smallest payload: one coin and the tail (legacy `body_size` 139).
const MIN_PAYLOAD: usize = COIN_BYTES + FIXED_TAIL;

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
            log_report(&report, node.fixes.log_limits());
            let outcomes = report
                .outcomes()
                .filter(|(_, outcome)| **outcome != PeerOutcome::ThisServer)
                .map(|(raida, outcome)| (raida, outcome.label()));
            node.fix_stats.record(
                report.coins_fixed,
                report.coins_asked - report.coins_fixed,
                &report.coin_votes,
                outcomes,
            );
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

    // What the client may spend of this server's standing at the peers. This server's own
    // vote counts, so THRESHOLD - 1 peers must answer for any coin to be fixed.
    let client = request.client.map(|c| c.ip);
    let raidas: Vec<u8> = targets.iter().map(|t| t.raida).collect();
    let needed = (THRESHOLD - 1).min(raidas.len());
    let account = node
        .fixes
        .admit(client, &raidas, needed)
        .map_err(|refusal| {
            let who = client.map_or("no address".to_string(), |ip| ip.to_string());
            node.fixes.log_limits().warning(LineKind::FixRefused, || match refusal {
                FixRefusal::ClientRefused { for_secs } => format!(
                    "fix: refused (160) from {who}: its recent fixes named tickets the peers \
                     did not know; refused {for_secs} s more"
                ),
                FixRefusal::PeersKept => format!(
                    "fix: refused (160) from {who}: the allowance of failed claims at the peers \
                     is spent but for clients in good standing (a flood of unknown tickets); \
                     one more per {} s",
                    crate::fix_gate::SPEND_REFILL.as_secs()
                ),
            });
            Status::RequestRate
        })?;

    // Each peer gets a challenge from the OS random source; when it fails, the peer client
    // asks no peer (each is a local error, and the fix ends at once) and no coin is fixed.
    let mut tally = GatedTally {
        tally: Tally::new(&coins),
        gate: node.fixes,
        account,
    };
    let claimer = node
        .config
        .claimer(request.coin_id, node.peers, node.peer_options);
    // The client's connections wait their turn among other clients', not behind them.
    let peers = node
        .peers
        .serving(client.map(|ip| crate::claims::SourceKey::of(ip).id()));
    let asked = ask_peers(&peers, &targets, claimer, node.peer_options, &mut tally);
    let GatedTally { tally, account, .. } = tally;
    if let Some(line) = node.fixes.finish(account) {
        node.fixes
            .log_limits()
            .warning(LineKind::FixRefused, || line);
    }

    let written = write_confirmed(node, request, &coins, &pg, &tally);
    let passed: Vec<bool> = (0..coins.len())
        .map(|position| written[tally.id_at(position)])
        .collect();
    let report = FixReport {
        coins_asked: coins.len(),
        coins_fixed: passed.iter().filter(|&&p| p).count(),
        coin_votes: coins.iter().map(|&coin| tally.votes(coin)).collect(),
        asked,
        not_asked,
        elapsed: started.elapsed(),
    };
    Ok((pass_fail_response(&passed, &[]), report))
}

/// The vote tally, with every claim sent and answered on the fix gate's books: a claim is
/// sent only while this server's failed claims at that peer leave room for it.
struct GatedTally<'a> {
    tally: Tally,
    gate: &'a FixGate,
    account: FixAccount,
}

impl Collector for GatedTally<'_> {
    fn answer(&mut self, raida: u8, coins: &[Coin]) {
        self.gate
            .answered(&mut self.account, raida, ClaimFate::Confirmed);
        self.tally.answer(raida, coins);
    }

    fn is_decided(&self, pending: usize) -> bool {
        self.tally.is_decided(pending)
    }

    fn may_send(&mut self, raida: u8) -> bool {
        self.gate.take(&mut self.account, raida)
    }

    fn declined(&mut self, raida: u8, status: u8) {
        self.gate
            .answered(&mut self.account, raida, ClaimFate::of_status(status));
    }
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
            page.write(record_index(coin.sn), &an, mfs);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::TestParts;
    use crate::store::{MemoryStore, PageKey};

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
        let parts = TestParts::new();
        let node = parts.node(store);
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
}
