//! The flood of forged claims: 100,000 forged UDP claims from 8,192 rotating sources under
//! `listed` once wrote 100,000 warning lines (33 MB). Now every kind of line a remote
//! party causes is limited for the whole process: a few lines a minute, then one line
//! saying how many were held back. Its own binary: it captures the process's log sink.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Mutex;
use std::time::Duration;

use raida_healing::claims::{ClaimGate, ClaimPolicy, ClaimSource, Refusal};
use raida_healing::log::{self, Level};
use raida_healing::log_limit::LineKind;
use raida_healing::tickets::testing::ManualClock;

static LINES: Mutex<Vec<String>> = Mutex::new(Vec::new());

fn capture(_level: Level, line: &str) {
    LINES.lock().unwrap().push(line.to_string());
}

#[test]
fn a_hundred_thousand_forged_claims_write_a_few_lines() {
    log::set_sink(Some(capture));
    let clock = ManualClock::default();
    let gate = ClaimGate::with_clock(ClaimPolicy::Listed, Box::new(clock.clone()));
    let configured = Some(Ipv4Addr::new(127, 0, 0, 4));
    let forged = |n: u32| ClaimSource::datagram(IpAddr::V4(Ipv4Addr::from(0xc633_6400 + n % 8192)));
    for n in 0..100_000u32 {
        // 100,000 claims within one minute of the gate's clock.
        if n % 10_000 == 0 {
            clock.advance(Duration::from_secs(5));
        }
        assert_eq!(
            gate.admit(Some(forged(n)), 3, configured).unwrap_err(),
            Refusal::Unverified
        );
    }
    let lines = std::mem::take(&mut *LINES.lock().unwrap());
    assert_eq!(lines.len(), 3, "{lines:#?}");
    let bytes: usize = lines.iter().map(|l| l.len() + 1).sum();
    assert!(bytes < 1024, "{bytes} bytes");
    assert!(lines[0].starts_with("validate_ticket: claim for RAIDA 3 from 198.51.100.0 by UDP"));
    assert_eq!(
        gate.log_limits().suppressed(LineKind::ClaimNotAdmitted),
        99_997
    );
    assert_eq!(gate.counts().udp.refused_by_policy, 100_000);

    // A minute later: one line with the count, then the line itself.
    clock.advance(Duration::from_secs(60));
    let _ = gate.admit(Some(forged(77)), 3, configured);
    let lines = std::mem::take(&mut *LINES.lock().unwrap());
    assert_eq!(lines.len(), 2, "{lines:#?}");
    assert_eq!(
        lines[0],
        "log: 99997 more claim_refused_by_policy lines suppressed (at most 3 a minute per kind)"
    );
    assert!(lines[1].starts_with("validate_ticket: claim for RAIDA 3 from 198.51.100.77 by UDP"));
    log::set_sink(None);
}
