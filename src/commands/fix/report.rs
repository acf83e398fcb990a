//! What one fix did, as the operator reads it: the per-peer outcomes, their counts, the one
//! summary line every fix logs (docs/fix.md) and which lines are warnings.

use std::fmt::Write as _;
use std::time::Duration;

use crate::log;
use crate::log_limit::{LineKind, LogLimits};
use crate::peers::{LocalCause, PeerOutcome, PeerReport};

/// Everything one fix did, for its log lines and for tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FixReport {
    /// Coins in the request (repeats included).
    pub coins_asked: usize,
    /// Coins answered as fixed (repeats included).
    pub coins_fixed: usize,
    /// Votes each coin got, this server's own included, in request order.
    pub coin_votes: Vec<usize>,
    /// The peers that were asked (or would have been, had the vote not been decided
    /// without them), in RAIDA order.
    pub asked: Vec<PeerReport>,
    /// Every other RAIDA index and why it was not asked.
    pub not_asked: Vec<(u8, PeerOutcome)>,
    /// From the call to the answer.
    pub elapsed: Duration,
}

impl FixReport {
    /// Every RAIDA's outcome: the peers asked, in RAIDA order, then the others.
    pub fn outcomes(&self) -> impl Iterator<Item = (u8, &PeerOutcome)> {
        self.asked
            .iter()
            .map(|r| (r.target.raida, &r.outcome))
            .chain(self.not_asked.iter().map(|(raida, o)| (*raida, o)))
    }

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
        for (_, outcome) in self.outcomes() {
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
                PeerOutcome::Withheld => counts.withheld += 1,
            }
        }
        counts.hedged = self.asked.iter().filter(|r| r.hedged).count();
        counts
    }

    /// The one summary line every fix logs, e.g. `fix: 3 coins asked, 2 fixed, 1 not
    /// fixed; peers: 14 voted, 1 no ticket, 0 no address, 1 refused, 0 declined,
    /// 1 timed out, 2 invalid answer, 4 unneeded, 0 local error, 0 no connection slot;
    /// 1 hedged; 12.3 ms; failed: 5 9; hedged: 9; ejected: 20 21`; when no peer could be
    /// asked because every attempt failed on this host, it ends `; local failure: no peer
    /// could be asked from this host (<why>), so the fix answered at once`. "no connection slot"
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
            .outcomes()
            .filter(|(_, outcome)| is_failure(outcome))
            .map(|(raida, _)| raida)
            .collect();
        let asked_where = |keep: fn(&PeerReport) -> bool| -> Vec<u8> {
            self.asked
                .iter()
                .filter(|r| keep(r))
                .map(|r| r.target.raida)
                .collect()
        };
        let hedged = asked_where(|r| r.hedged);
        let ejected = asked_where(|r| r.outcome == PeerOutcome::Ejected);
        let withheld = asked_where(|r| r.outcome == PeerOutcome::Withheld);
        let lists = [
            ("failed", failed),
            ("hedged", hedged),
            ("ejected", ejected),
            ("withheld", withheld),
        ];
        for (name, list) in lists {
            if !list.is_empty() {
                let _ = write!(line, "; {name}:");
                for raida in list {
                    let _ = write!(line, " {raida}");
                }
            }
        }
        if let Some(cause) = self.local_failure() {
            let _ = write!(
                line,
                "; local failure: no peer could be asked from this host ({cause}), so the \
                 fix answered at once"
            );
        }
        line
    }

    /// Why no peer could be asked at all, when every peer this fix tried to ask failed on
    /// this host (no descriptor, no port, no route): the first peer's cause.
    pub fn local_failure(&self) -> Option<LocalCause> {
        let mut tried = self
            .asked
            .iter()
            .filter(|r| r.outcome != PeerOutcome::Ejected)
            .peekable();
        tried.peek()?;
        let mut first = None;
        for report in tried {
            match report.outcome {
                PeerOutcome::LocalError(cause) => {
                    first.get_or_insert(cause);
                }
                _ => return None,
            }
        }
        first
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
    /// Never asked: this server's failed-claim allowance there was spent for a client
    /// of this standing (`fix_gate`).
    pub withheld: usize,
    /// Peers that got a second connection (overlaps the outcomes above).
    pub hedged: usize,
}

/// Logs the summary (warning when a peer looks faulty, else debug) and one line per
/// asked peer (warning for a failure, debug otherwise).
pub(super) fn log_report(report: &FixReport, limits: &LogLimits) {
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
            limits.warning_or_debug(LineKind::FixPeer, &line);
        } else {
            log::debug(&line);
        }
    }
    for (raida, outcome) in &report.not_asked {
        if *outcome == PeerOutcome::NoAddress {
            limits.warning_or_debug(LineKind::FixPeer, &format!("fix: peer {raida}: {outcome}"));
        }
    }
    if report.has_faulty_peer() {
        limits.warning_or_debug(LineKind::FixSummary, &report.summary_line());
    } else {
        log::debug(&report.summary_line());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::peers::Target;

    #[test]
    fn summary_line_format() {
        let report = FixReport {
            coins_asked: 3,
            coins_fixed: 2,
            coin_votes: vec![15, 15, 3],
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
