//! Criterion benches of the safe core, no C involved: get_ticket and find over a
//! `MemoryStore`, the ticket pool's create and claim, `derive_an`, and the claim tag
//! (making one, checking a valid, a bad and an untagged challenge). They show where
//! time goes inside the crate; `make bench` measures the same commands through the C ABI
//! against the host's page cache (see BENCHMARKS.md).
//!
//! Run: `cargo bench --bench core` (about a minute), or one group with a filter, e.g.
//! `cargo bench --bench core -- find`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use kit::wire::legacy_body;
use raida_healing::claim_auth::{BadTag, ClaimAuth, ClaimFields, ClaimKeys, TagCheck, WhichKey};
use raida_healing::claims::{ClaimGate, ClaimPolicy, ClaimSource};
use raida_healing::commands::validate_ticket::validate_ticket;
use raida_healing::commands::{find::find, get_ticket::get_ticket, NodeConfig, Request};
use raida_healing::hash::derive_an;
use raida_healing::protocol::{Coin, Status};
use raida_healing::store::MemoryStore;
use raida_healing::tickets::testing::{ManualClock, ScriptedIds};
use raida_healing::tickets::{
    TicketPool, MAX_COINS_PER_TICKET, MAX_TICKETS_PER_COIN, TICKET_LIFETIME,
};

/// The largest get_ticket a 16-bit legacy body length allows: (65535 - 18) / 21.
const GET_TICKET_MAX: usize = 3119;
/// The largest find a 16-bit legacy body length allows: (65535 - 18) / 37.
const FIND_MAX: usize = 1770;
/// get_ticket calls between two pool clears, below the 512-ticket capacity.
const CALLS_PER_POOL: u64 = 500;

/// How a batch's coins fall on pages.
#[derive(Clone, Copy)]
enum Layout {
    /// Consecutive serial numbers of one denomination: 1024 coins share a page.
    Dense,
    /// Every coin on a page of its own, in random order (the worst case for page reuse).
    Scattered,
}

impl Layout {
    fn name(self) -> &'static str {
        match self {
            Layout::Dense => "dense",
            Layout::Scattered => "scattered",
        }
    }

    fn coins(self, n: usize) -> Vec<Coin> {
        match self {
            Layout::Dense => (0..n as u32).map(|sn| Coin { den: 1, sn }).collect(),
            Layout::Scattered => {
                let mut pages: Vec<u32> = (0..n as u32).collect();
                let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
                for i in (1..pages.len()).rev() {
                    pages.swap(i, (rng.next() % (i as u64 + 1)) as usize);
                }
                pages
                    .into_iter()
                    .map(|p| Coin {
                        den: (p / 1000) as i8,
                        sn: (p % 1000) * 1024 + (rng.next() % 1024) as u32,
                    })
                    .collect()
            }
        }
    }
}

/// A tiny deterministic generator: benches must not depend on the OS's randomness.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// The AN stored for `coin` (any fixed function of the coin will do).
fn an_of(coin: Coin) -> [u8; 16] {
    let wire = coin.to_wire();
    core::array::from_fn(|i| wire[i % 5] ^ (i as u8).wrapping_mul(37))
}

/// A store holding every coin of `coins` with its AN.
fn store_with(coins: &[Coin]) -> MemoryStore {
    let store = MemoryStore::with_mfs(45);
    for &coin in coins {
        store.put(coin, an_of(coin), 45);
    }
    store
}

/// The coins of `layout`, `n` of them, in a store with their ANs, and a legacy request
/// body of one `record` per coin.
fn batch(layout: Layout, n: usize, record: impl Fn(Coin) -> Vec<u8>) -> (MemoryStore, Vec<u8>) {
    let coins = layout.coins(n);
    let payload: Vec<u8> = coins.iter().flat_map(|&c| record(c)).collect();
    (store_with(&coins), legacy_body(&payload))
}

fn request(body: &[u8]) -> Request<'_> {
    kit::node::request(Some(body), 0, 0)
}

/// A pool that never runs out of ids and whose tickets never expire during a bench.
fn bench_pool() -> TicketPool {
    TicketPool::with_limits(
        Box::new(ManualClock::default()),
        Box::new(ScriptedIds::new(&[1])),
        usize::MAX,
        TICKET_LIFETIME,
    )
}

/// The time `iters` calls of `call` take, timed in chunks of CALLS_PER_POOL so `pool`
/// can be emptied, untimed, between them.
fn timed_between_clears(pool: &TicketPool, iters: u64, mut call: impl FnMut()) -> Duration {
    let mut spent = Duration::ZERO;
    let mut left = iters;
    while left > 0 {
        let chunk = left.min(CALLS_PER_POOL);
        let start = Instant::now();
        for _ in 0..chunk {
            call();
        }
        spent += start.elapsed();
        pool.clear();
        left -= chunk;
    }
    spent
}

fn bench_get_ticket(c: &mut Criterion) {
    let mut group = c.benchmark_group("get_ticket");
    for layout in [Layout::Dense, Layout::Scattered] {
        for n in [1, 100, GET_TICKET_MAX] {
            let (store, body) = batch(layout, n, |c| [&c.to_wire()[..], &an_of(c)].concat());
            let pool = bench_pool();
            group.throughput(Throughput::Elements(n as u64));
            group.bench_function(BenchmarkId::new(layout.name(), n), |b| {
                b.iter_custom(|iters| {
                    timed_between_clears(&pool, iters, || {
                        let response = get_ticket(&store, &pool, &request(&body));
                        assert_eq!(black_box(response).map(|r| r.status), Ok(Status::AllPass));
                    })
                });
            });
        }
    }
    group.finish();
}

fn bench_find(c: &mut Criterion) {
    let mut group = c.benchmark_group("find");
    for layout in [Layout::Dense, Layout::Scattered] {
        for n in [1, 100, FIND_MAX] {
            let (store, body) = batch(layout, n, |c| {
                let an = an_of(c);
                [&c.to_wire()[..], &an, &an.map(|b| !b)].concat()
            });
            group.throughput(Throughput::Elements(n as u64));
            group.bench_function(BenchmarkId::new(layout.name(), n), |b| {
                b.iter(|| {
                    let response = find(&store, &request(black_box(&body)));
                    assert_eq!(response.map(|r| r.status), Ok(Status::FindAllAn));
                })
            });
        }
    }
    group.finish();
}

fn bench_pool_ops(c: &mut Criterion) {
    let mut group = c.benchmark_group("ticket_pool");
    for n in [1, 100, MAX_COINS_PER_TICKET] {
        let coins = Layout::Dense.coins(n);
        let pool = bench_pool();
        group.throughput(Throughput::Elements(1));
        group.bench_function(BenchmarkId::new("create", n), |b| {
            b.iter_custom(|iters| {
                timed_between_clears(&pool, iters, || {
                    black_box(pool.create(black_box(&coins)).expect("pool has room"));
                })
            });
        });
        group.bench_function(BenchmarkId::new("claim", n), |b| {
            // Each ticket takes one claim per RAIDA index (25), so refill untimed. A coin sits
            // on at most MAX_TICKETS_PER_COIN live tickets (a newer one takes it from the
            // oldest), so a refill makes that many tickets over the same coins.
            b.iter_custom(|iters| {
                let mut spent = Duration::ZERO;
                let mut left = iters;
                while left > 0 {
                    let tickets: Vec<u32> = (0..MAX_TICKETS_PER_COIN)
                        .map(|_| pool.create(&coins).unwrap())
                        .collect();
                    let claims: Vec<(u32, u8)> = tickets
                        .iter()
                        .flat_map(|&t| (0..25u8).map(move |r| (t, r)))
                        .take(left.min(25 * MAX_TICKETS_PER_COIN as u64) as usize)
                        .collect();
                    let start = Instant::now();
                    for &(ticket, claimer) in &claims {
                        black_box(pool.claim(ticket, claimer).expect("first claim"));
                    }
                    spent += start.elapsed();
                    pool.clear();
                    left -= claims.len() as u64;
                }
                spent
            });
        });
    }
    group.finish();
}

fn bench_derive_an(c: &mut Criterion) {
    let mut group = c.benchmark_group("derive_an");
    let pg: [u8; 16] = core::array::from_fn(|i| i as u8);
    let coin = Coin { den: 1, sn: 5000 };
    for (name, encryption_type) in [("md5", 0), ("sha256", 4)] {
        group.bench_function(name, |b| {
            b.iter(|| derive_an(3, black_box(coin), black_box(&pg), encryption_type))
        });
    }
    group.finish();
}

/// The claim tag: what a keyed claimer pays per request, and a keyed peer per claim
/// (verified, a bad tag, no key id of ours: no MAC at all).
fn bench_claim_tag(c: &mut Criterion) {
    let mut group = c.benchmark_group("claim_tag");
    let keys = ClaimKeys::new(&[7; 32], Some(&[9; 32]));
    let fields = ClaimFields {
        claimer: 3,
        peer: 12,
        coin_id: 6,
        ticket: 0x0102_0304,
    };
    let now = 1_800_000_000;
    let tagged = keys.challenge(fields, now);
    let mut tampered = tagged;
    tampered[11] ^= 1;
    let random: [u8; 12] = core::array::from_fn(|i| 0xa0 + i as u8);
    group.throughput(Throughput::Elements(1));
    group.bench_function("make", |b| {
        b.iter(|| keys.challenge(black_box(fields), black_box(now)))
    });
    let cases = [
        ("verify", tagged, TagCheck::Verified(WhichKey::Current)),
        ("bad_tag", tampered, TagCheck::Bad(BadTag::Mismatch)),
        ("untagged", random, TagCheck::Untagged),
    ];
    for (name, challenge, expected) in cases {
        assert_eq!(keys.check(&challenge, fields, now), expected);
        group.bench_function(name, |b| {
            b.iter(|| keys.check(black_box(&challenge), black_box(fields), black_box(now)))
        });
    }
    group.finish();
}

/// validate_ticket through the claim gate, a claim of a live one-coin ticket from a TCP
/// client that is not the named RAIDA's listed address: with no claim key (`no_key`), with
/// a key and a random challenge (`unverified`), with a key and a valid tag (`verified`).
/// The difference between the last two is what checking a tag costs a claim.
fn bench_claims_with_tags(c: &mut Criterion) {
    let mut group = c.benchmark_group("claim_with_tag");
    let me = 3u8;
    let config = NodeConfig {
        raida_no: me,
        peers: [None; 25],
    };
    let keys = ClaimKeys::new(&[7; 32], None);
    let source = Some(ClaimSource::stream("192.0.2.7".parse().unwrap()));
    let coins = Layout::Dense.coins(1);
    let cases: [(&str, bool, bool); 3] = [
        ("no_key", false, false),
        ("unverified", true, false),
        ("verified", true, true),
    ];
    group.throughput(Throughput::Elements(1));
    for (name, keyed, tagged) in cases {
        let auth = keyed.then(|| std::sync::Arc::new(ClaimAuth::new(keys.clone())));
        let gate = ClaimGate::new(ClaimPolicy::Any).with_auth(auth.clone());
        let pool = bench_pool();
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let mut spent = Duration::ZERO;
                let mut left = iters;
                while left > 0 {
                    // Untimed: tickets and the claim bodies (25 claimers each), tagged now.
                    let bodies: Vec<Vec<u8>> = (0..MAX_TICKETS_PER_COIN)
                        .map(|_| pool.create(&coins).unwrap())
                        .flat_map(|ticket| (0..25u8).map(move |claimer| (ticket, claimer)))
                        .take(left.min(25 * MAX_TICKETS_PER_COIN as u64) as usize)
                        .map(|(ticket, claimer)| {
                            let mut payload = vec![claimer];
                            payload.extend(ticket.to_be_bytes());
                            let mut body = legacy_body(&payload);
                            if let (true, Some(auth)) = (tagged, &auth) {
                                let fields = ClaimFields {
                                    claimer,
                                    peer: me,
                                    coin_id: 6,
                                    ticket,
                                };
                                let twelve = auth.challenge(fields);
                                body[..12].copy_from_slice(&twelve);
                                body[12..16].copy_from_slice(
                                    &raida_healing::protocol::challenge_crc(&twelve).to_be_bytes(),
                                );
                            }
                            body
                        })
                        .collect();
                    let start = Instant::now();
                    for body in &bodies {
                        let request = Request {
                            body: Some(body),
                            encryption_type: 0,
                            coin_id: 6,
                            client: source,
                        };
                        let answer = validate_ticket(&pool, &gate, &config, &request);
                        assert_eq!(black_box(answer).map(|r| r.status), Ok(Status::Success));
                    }
                    spent += start.elapsed();
                    pool.clear();
                    left -= bodies.len() as u64;
                }
                spent
            });
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    // Short runs: two shared cores, and the whole suite should take about a minute.
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30);
    targets = bench_get_ticket, bench_find, bench_pool_ops, bench_derive_an, bench_claim_tag, bench_claims_with_tags
}
criterion_main!(benches);
