//! `make bench`'s figures for hostile clients (BENCHMARKS.md, docs/tickets.md, docs/fix.md):
//!
//! 1. guesses per second through the guess throttle with 1, 4,096 and 16,384 sources
//!    taking turns (on a simulated clock, so the figure is the throttle's rule, not this
//!    machine's speed; the wall-clock rate of claims checked is shown beside it);
//! 2. an honest fix's median and worst time beside 0, 40 and 160 hostile fix threads
//!    from one other client, with 24 peers 250 ms away (loopback peers that answer after
//!    250 ms);
//! 3. log bytes written per 100,000 forged UDP claims from 8,192 rotating sources under
//!    `listed`.
//!
//! `cargo bench --bench hostile` runs it; `-- --test` runs a small version of each part
//! (make test), so it cannot rot.

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kit::node::Server;
use kit::peers::FakePeer;
use kit::request::read_request;
use kit::wire::{fix_payload, legacy_body, listing, reply};
use raida_healing::claims::{
    ClaimGate, ClaimPolicy, ClaimSource, GuessThrottle, SourceVerdict, GUESS_BURST,
    MAX_GUESSES_PER_SECOND, MAX_STANDING_SOURCES, MAX_TRACKED_SOURCES,
};
use raida_healing::commands::Request;
use raida_healing::log::{self, Level};
use raida_healing::protocol::{Coin, Status};
use raida_healing::store::MemoryStore;
use raida_healing::tickets::TicketPool;

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

// ---- 1. the throttle ----

fn throttle_row(sources: u32, seconds: u32) {
    let throttle = GuessThrottle::default();
    let mut through = 0u64;
    let mut checked = 0u64;
    let wall = Instant::now();
    // Every source guesses once a second, in turn, for `seconds` simulated seconds.
    for second in 0..seconds {
        let now = Duration::from_secs(u64::from(second) + 1);
        for n in 0..sources {
            let source = ClaimSource::stream(IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + n)));
            checked += 1;
            if throttle.check(source, now) == SourceVerdict::Allowed {
                throttle.failed(source, now);
                through += 1;
            }
        }
    }
    let wall = wall.elapsed().as_secs_f64();
    // The rule's bound for this many sources over this long: one burst and one refill
    // per 5 s for each allowance that can exist.
    let allowances = (sources as usize).min(MAX_TRACKED_SOURCES + MAX_STANDING_SOURCES + 1);
    let bound = allowances as f64 * (f64::from(GUESS_BURST + 1) + f64::from(seconds) / 5.0)
        / f64::from(seconds);
    println!(
        "| guesses through the throttle, {sources:>6} sources | {:>7.1} /s over {seconds} s \
         (bound {bound:.1} /s; {MAX_GUESSES_PER_SECOND} /s in the long run) | {through:>8} in \
         all | {:>6.2} M claims checked/s |",
        through as f64 / f64::from(seconds),
        checked as f64 / wall / 1e6
    );
}

// ---- 2. an honest fix beside hostile fix threads ----

const DELAY: Duration = Duration::from_millis(250);
const COIN_ID: u8 = 6;

/// A peer that answers every claim listing `coins`, after `DELAY`, many at once.
fn slow_peer(raida: u8, coins: Vec<Coin>) -> FakePeer {
    let body = listing(&coins);
    FakePeer::spawn(move |mut stream| {
        let body = body.clone();
        std::thread::spawn(move || {
            let Some(request) = read_request(&mut stream, Duration::from_secs(30)) else {
                return;
            };
            std::thread::sleep(DELAY);
            let _ = stream.write_all(&reply(raida, 250, &request[32..48], &body));
        });
    })
}

fn fix_from(server: &Server<MemoryStore>, body: &[u8], client: Ipv4Addr) -> (Status, f64) {
    let request = Request {
        body: Some(body),
        encryption_type: 0,
        coin_id: COIN_ID,
        client: Some(ClaimSource::stream(IpAddr::V4(client))),
    };
    let started = Instant::now();
    let response = server
        .node()
        .run(raida_healing::commands::Command::Fix, &request);
    (response.status, started.elapsed().as_secs_f64() * 1e3)
}

fn fairness_rows(hostile_counts: &[usize], samples: usize) {
    let coin = Coin { den: 1, sn: 77 };
    let store = MemoryStore::new();
    store.put(coin, [1; 16], 1);
    let mut server = Server::new(0, store, TicketPool::default());
    let peers: Vec<FakePeer> = (1..25u8).map(|r| slow_peer(r, vec![coin])).collect();
    for (r, peer) in (1..25u8).zip(&peers) {
        server.peer(r, peer.addr);
    }
    let mut tickets = [0u32; 25];
    for t in tickets.iter_mut().skip(1) {
        *t = 7;
    }
    let body = legacy_body(&fix_payload(&[coin], &[2; 16], &tickets));
    let server = Arc::new(server);
    let body = Arc::new(body);
    let mut alone = 0.0;
    for &hostile in hostile_counts {
        let stop = Arc::new(AtomicBool::new(false));
        let hostile_fixes = Arc::new(AtomicU64::new(0));
        let threads: Vec<_> = (0..hostile)
            .map(|_| {
                let (server, body, stop, count) = (
                    Arc::clone(&server),
                    Arc::clone(&body),
                    Arc::clone(&stop),
                    Arc::clone(&hostile_fixes),
                );
                std::thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        fix_from(&server, &body, Ipv4Addr::new(10, 0, 0, 1));
                        count.fetch_add(1, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        // Let the hostile fixes fill the queues first.
        if hostile > 0 {
            std::thread::sleep(DELAY * 2);
        }
        let mut ms = Vec::with_capacity(samples);
        for _ in 0..samples {
            let (status, took) = fix_from(&server, &body, Ipv4Addr::new(10, 0, 0, 2));
            assert_eq!(status, Status::AllPass, "the honest fix beside {hostile}");
            ms.push(took);
        }
        stop.store(true, Ordering::Relaxed);
        for t in threads {
            t.join().unwrap();
        }
        let worst = ms.iter().cloned().fold(0.0, f64::max);
        let m = median(&mut ms);
        if hostile == 0 {
            alone = m;
        }
        println!(
            "| honest fix beside {hostile:>3} hostile fix threads (250 ms peers) | median \
             {m:>7.1} ms | worst {worst:>7.1} ms | x{:.2} of alone | {} hostile fixes ran |",
            m / alone,
            hostile_fixes.load(Ordering::Relaxed)
        );
    }
}

// ---- 3. log bytes under forged claims ----

static LOG_BYTES: AtomicU64 = AtomicU64::new(0);
static LOG_LINES: AtomicU64 = AtomicU64::new(0);

fn count_line(_level: Level, line: &str) {
    LOG_BYTES.fetch_add(line.len() as u64 + 1, Ordering::Relaxed);
    LOG_LINES.fetch_add(1, Ordering::Relaxed);
}

fn log_row(claims: u32) {
    let gate = ClaimGate::new(ClaimPolicy::Listed);
    log::set_sink(Some(count_line));
    let wall = Instant::now();
    for n in 0..claims {
        let forged = ClaimSource::datagram(IpAddr::V4(Ipv4Addr::from(0xc633_6400 + n % 8192)));
        let _ = gate.admit(Some(forged), 3, Some(Ipv4Addr::new(127, 0, 0, 4)));
    }
    let wall = wall.elapsed();
    log::set_sink(None);
    println!(
        "| log bytes per {claims} forged UDP claims (8,192 sources, listed) | {} bytes | {} \
         lines | in {:.2} s |",
        LOG_BYTES.load(Ordering::Relaxed),
        LOG_LINES.load(Ordering::Relaxed),
        wall.as_secs_f64()
    );
}

fn main() {
    let test = std::env::args().any(|a| a == "--test");
    println!("hostile clients{}", if test { ", test mode" } else { "" });
    if test {
        throttle_row(1, 10);
        throttle_row(5_000, 10);
        fairness_rows(&[0, 4], 2);
        log_row(10_000);
        return;
    }
    for sources in [1, 4_096, 16_384] {
        throttle_row(sources, 3_000);
    }
    fairness_rows(&[0, 40, 160], 15);
    log_row(100_000);
}
