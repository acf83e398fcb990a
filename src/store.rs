//! The coin store: where records live, seen one locked page at a time.
//!
//! The server keeps coins in pages of 1024 records (AN, then an MFS byte). Commands never
//! hold more than one page at once and visit the pages of a request in ascending
//! (denomination, page) order, so lock order is global and a request touches each page
//! once however many of its coins share it.

use crate::protocol::{Coin, Status, AN_BYTES};

#[cfg(feature = "testing")]
mod memory;
#[cfg(feature = "testing")]
pub use memory::{MemoryPage, MemoryStore};

/// Records in one page.
pub const RECORDS_PER_PAGE: u32 = 1024;
/// Pages per denomination.
pub(crate) const TOTAL_PAGES: u32 = 1000;
/// Bytes of one record: AN (16) then MFS (1).
pub const RECORD_BYTES: usize = 17;
/// Bytes of a page's record data (and of a page file on disk).
pub const PAGE_DATA_BYTES: usize = RECORD_BYTES * RECORDS_PER_PAGE as usize;
/// The denominations a server holds.
pub(crate) const DENOMINATIONS: std::ops::RangeInclusive<i8> = -8..=6;

/// Names one page: a denomination and a page number (`sn / 1024`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PageKey {
    pub den: i8,
    pub page: u32,
}

impl PageKey {
    /// The page holding `coin`, or `None` when no server could hold it (denomination
    /// outside -8..=6 or page beyond the last).
    #[inline]
    pub fn of(coin: Coin) -> Option<PageKey> {
        let page = coin.sn / RECORDS_PER_PAGE;
        (DENOMINATIONS.contains(&coin.den) && page < TOTAL_PAGES).then_some(PageKey {
            den: coin.den,
            page,
        })
    }

    /// The first serial number of the page.
    pub fn first_sn(self) -> u32 {
        self.page * RECORDS_PER_PAGE
    }

    /// The page's place in the global lock order, (denomination, page) ascending, as one
    /// number below 15 * 1000 (fits [`RANK_BITS`] bits).
    #[inline]
    fn rank(self) -> u16 {
        ((i32::from(self.den) - i32::from(*DENOMINATIONS.start())) as u32 * TOTAL_PAGES + self.page)
            as u16
    }

    /// The page of a [`PageKey::rank`].
    #[inline]
    fn from_rank(rank: u16) -> PageKey {
        let rank = u32::from(rank);
        PageKey {
            den: (i32::from(*DENOMINATIONS.start()) + (rank / TOTAL_PAGES) as i32) as i8,
            page: rank % TOTAL_PAGES,
        }
    }
}

/// The index of `sn`'s record inside its page (0..1024).
#[inline]
pub fn record_index(sn: u32) -> usize {
    (sn % RECORDS_PER_PAGE) as usize
}

/// A locked page's records, lent to a command for the span of one lock.
///
/// Writes are remembered so the store can finish them under the same lock (mark the page
/// dirty, mark the serial numbers used, or write them to disk). Only fix writes; the list
/// stays empty, and allocates nothing, on every read-only visit.
pub struct PageRecords<'a> {
    data: &'a mut [u8; PAGE_DATA_BYTES],
    written: Vec<usize>,
}

impl<'a> PageRecords<'a> {
    /// Wraps a page's record data; `data` must be [`PAGE_DATA_BYTES`] long.
    pub fn new(data: &'a mut [u8]) -> PageRecords<'a> {
        PageRecords::of_page(data.try_into().expect("page data has the wrong size"))
    }

    /// Wraps a page's record data of the exact size.
    #[inline]
    pub fn of_page(data: &'a mut [u8; PAGE_DATA_BYTES]) -> PageRecords<'a> {
        PageRecords {
            data,
            written: Vec::new(),
        }
    }

    /// The AN stored in `record`.
    #[inline]
    pub fn an(&self, record: usize) -> &[u8; AN_BYTES] {
        let at = record * RECORD_BYTES;
        self.data[at..at + AN_BYTES]
            .try_into()
            .expect("slice of AN_BYTES")
    }

    /// The MFS byte of `record` (0: a free serial number).
    pub fn mfs(&self, record: usize) -> u8 {
        self.data[record * RECORD_BYTES + AN_BYTES]
    }

    /// Rewrites a whole record.
    pub fn write(&mut self, record: usize, an: &[u8; AN_BYTES], mfs: u8) {
        let at = record * RECORD_BYTES;
        self.data[at..at + AN_BYTES].copy_from_slice(an);
        self.data[at + AN_BYTES] = mfs;
        self.written.push(record);
    }

    /// The records written through this view, in write order.
    #[inline]
    pub fn written_records(&self) -> &[usize] {
        &self.written
    }

    /// The raw record data (for stores that persist it).
    pub fn data(&self) -> &[u8] {
        &self.data[..]
    }
}

/// Where coin records live. Implemented over the server's page cache, over page files
/// for standalone use, and in memory for tests.
pub trait CoinStore: Sync {
    /// Runs `f` on the page `key` while holding its lock, or returns `None` when the page
    /// does not exist. Writes made through the view are finished (dirty flag, bitmap,
    /// disk) before the lock is released.
    fn with_page<R>(&self, key: PageKey, f: impl FnOnce(&mut PageRecords<'_>) -> R) -> Option<R>;

    /// The "months from start" stamp for a rewritten record.
    fn mfs(&self) -> u8 {
        crate::hash::mfs_now()
    }

    /// Whether every write since the last call reached where the store keeps records:
    /// `Err` with the first failed write's description. The command runner (`Node::run` of
    /// the commands module) asks after every command and then answers
    /// ERROR_INTERNAL, never the command's own status: a status must not claim a change the
    /// store does not hold. Stores whose writes cannot fail keep the default.
    fn finish(&self) -> Result<(), String> {
        Ok(())
    }
}

/// Visits every coin of a request, one lock per distinct page, pages in ascending order.
///
/// `visit(page, index)` is called for each coin index in `coins` (in request order within
/// a page). Coins that no server could hold, and pages the store does not have, give
/// [`Status::InvalidSnOrDenomination`]; denominations and ranges are checked for every
/// coin before any page is locked.
pub(crate) fn visit_by_page<S: CoinStore + ?Sized>(
    store: &S,
    coins: &[Coin],
    visit: impl FnMut(&mut PageRecords<'_>, usize),
) -> Result<(), Status> {
    visit_coins_by_page(store, coins, |&coin| coin, visit)
}

/// [`visit_by_page`] over items that name coins, such as a request's records:
/// `coin_of(&items[i])` is read once for each item, before any page is locked, and
/// `visit` gets the item's index, so a command can read its coins straight from the
/// request bytes instead of building a vector of them first.
///
/// The pages are ordered in time linear in the coins (a comparison sort was half the time
/// of a 3119-coin get_ticket whose coins fall on random pages, BENCHMARKS.md):
/// - ranks already in order (consecutive serial numbers): one scan finds the runs;
/// - ranks spanning at most 4 times the coin count (a batch of one or a few
///   denominations): each page's coins are chained in request order from a table of
///   chain heads indexed by rank, and the table is walked in order;
/// - otherwise (few coins spread widely): a radix sort in two passes of 7 bits, then a
///   scan for each page's run.
pub(crate) fn visit_coins_by_page<S: CoinStore + ?Sized, T>(
    store: &S,
    items: &[T],
    coin_of: impl Fn(&T) -> Coin,
    mut visit: impl FnMut(&mut PageRecords<'_>, usize),
) -> Result<(), Status> {
    let mut ranks = vec![0u16; items.len()];
    for (rank, item) in ranks.iter_mut().zip(items) {
        *rank = PageKey::of(coin_of(item))
            .ok_or(Status::InvalidSnOrDenomination)?
            .rank();
    }
    let n = ranks.len();
    if n == 0 {
        return Ok(());
    }
    // Separate passes: each is a few instructions a coin (min and max in SIMD), fewer
    // than folding them into the parsing loop above.
    let (mut min, mut max) = (u16::MAX, 0);
    for &rank in &ranks {
        min = min.min(rank);
        max = max.max(rank);
    }
    let span = usize::from(max - min) + 1;
    if ranks.is_sorted() {
        let mut start = 0;
        while let Some(&rank) = ranks.get(start) {
            let len = ranks[start..]
                .iter()
                .position(|&r| r != rank)
                .unwrap_or(n - start);
            visit_page(store, rank, start..start + len, &mut visit)?;
            start += len;
        }
    } else if span <= 4 * n {
        let chains = PageChains::new(&ranks, min, span);
        for (offset, &head) in chains.heads.iter().enumerate() {
            if head != PageChains::END {
                let coins = chains.coins_from(head);
                visit_page(store, min + offset as u16, coins, &mut visit)?;
            }
        }
    } else {
        let order = radix_order(&ranks);
        let mut rest = &order[..];
        while let Some(&first) = rest.first() {
            let rank = ranks[first as usize];
            let len = rest
                .iter()
                .position(|&i| ranks[i as usize] != rank)
                .unwrap_or(rest.len());
            let (group, tail) = rest.split_at(len);
            visit_page(store, rank, group.iter().map(|&i| i as usize), &mut visit)?;
            rest = tail;
        }
    }
    Ok(())
}

/// Locks the page of `rank` once and visits `coins` (indices) on it, in the given order.
#[inline]
fn visit_page<S: CoinStore + ?Sized>(
    store: &S,
    rank: u16,
    coins: impl Iterator<Item = usize>,
    visit: &mut impl FnMut(&mut PageRecords<'_>, usize),
) -> Result<(), Status> {
    store
        .with_page(PageKey::from_rank(rank), |page| {
            for i in coins {
                visit(page, i);
            }
        })
        .ok_or(Status::InvalidSnOrDenomination)
}

/// Bits of a page rank: 15 denominations x 1000 pages < 2^14.
const RANK_BITS: u32 = 14;
/// Bits sorted per radix pass.
const RADIX_BITS: u32 = 7;
const _: () = assert!(
    (*DENOMINATIONS.end() as i32 - *DENOMINATIONS.start() as i32 + 1) as u32 * TOTAL_PAGES
        <= 1 << RANK_BITS
        && RANK_BITS % RADIX_BITS == 0
        && RANK_BITS <= u16::BITS
);

/// The coins of each page as a chain of indices in request order: `heads[rank - min]`
/// is the page's first coin, `next[i]` the coin after `i` on the same page.
struct PageChains {
    heads: Vec<u32>,
    next: Vec<u32>,
}

impl PageChains {
    /// Marks an empty head and the end of a chain.
    const END: u32 = u32::MAX;

    /// Chains `ranks`, all in `min..min + span`. Built back to front, so each chain runs
    /// front to back.
    fn new(ranks: &[u16], min: u16, span: usize) -> PageChains {
        let mut heads = vec![PageChains::END; span];
        let mut next = vec![PageChains::END; ranks.len()];
        for (i, (&rank, link)) in ranks.iter().zip(next.iter_mut()).enumerate().rev() {
            let head = &mut heads[usize::from(rank - min)];
            *link = *head;
            *head = i as u32;
        }
        PageChains { heads, next }
    }

    /// The coins of the chain that starts at `head`.
    fn coins_from(&self, head: u32) -> Chain<'_> {
        Chain {
            next: &self.next,
            at: head,
        }
    }
}

/// Walks one chain of [`PageChains`].
struct Chain<'a> {
    next: &'a [u32],
    at: u32,
}

impl Iterator for Chain<'_> {
    type Item = usize;

    #[inline]
    fn next(&mut self) -> Option<usize> {
        let i = self.at;
        if i == PageChains::END {
            return None;
        }
        self.at = self.next[i as usize];
        Some(i as usize)
    }
}

/// Stable LSD radix sort of indices by rank, two counting passes of [`RADIX_BITS`].
fn radix_order(ranks: &[u16]) -> Vec<u32> {
    const BUCKETS: usize = 1 << RADIX_BITS;
    let mut order: Vec<u32> = (0..ranks.len() as u32).collect();
    let mut sorted = vec![0u32; ranks.len()];
    for shift in (0..RANK_BITS).step_by(RADIX_BITS as usize) {
        let digit = |i: u32| usize::from(ranks[i as usize] >> shift) & (BUCKETS - 1);
        let mut next = [0u32; BUCKETS];
        for &i in &order {
            next[digit(i)] += 1;
        }
        exclusive_prefix_sums(&mut next);
        for &i in &order {
            let slot = &mut next[digit(i)];
            sorted[*slot as usize] = i;
            *slot += 1;
        }
        std::mem::swap(&mut order, &mut sorted);
    }
    order
}

/// Turns bucket counts into each bucket's first position.
fn exclusive_prefix_sums(counts: &mut [u32]) {
    let mut at = 0;
    for slot in counts.iter_mut() {
        let count = *slot;
        *slot = at;
        at += count;
    }
}

#[cfg(test)]
mod tests {
    use parking_lot::Mutex;
    use super::*;

    fn coin(den: i8, sn: u32) -> Coin {
        Coin { den, sn }
    }

    #[test]
    fn page_keys() {
        assert_eq!(
            PageKey::of(coin(1, 300 * 1024 + 5)),
            Some(PageKey { den: 1, page: 300 })
        );
        assert_eq!(PageKey::of(coin(7, 0)), None);
        assert_eq!(PageKey::of(coin(-9, 0)), None);
        assert_eq!(PageKey::of(coin(6, 1000 * 1024)), None);
        assert!(PageKey::of(coin(-8, 1000 * 1024 - 1)).is_some());
    }

    #[test]
    fn one_lock_per_page_in_order() {
        let store = MemoryStore::new();
        let coins = [
            coin(1, 2048),
            coin(1, 5),
            coin(1, 2049),
            coin(-1, 7),
            coin(1, 6),
        ];
        for c in coins {
            store.put(c, [c.sn as u8; 16], 1);
        }
        let mut seen = Vec::new();
        visit_by_page(&store, &coins, |page, i| {
            assert_eq!(page.an(record_index(coins[i].sn))[0], coins[i].sn as u8);
            seen.push(i);
        })
        .unwrap();
        assert_eq!(seen, vec![3, 1, 4, 0, 2]);
        for key in [
            PageKey { den: 1, page: 0 },
            PageKey { den: 1, page: 2 },
            PageKey { den: -1, page: 0 },
        ] {
            // put() bypasses the lock count, so this is the visit alone
            assert_eq!(store.inspect(key, |p| p.locks), Some(1));
        }
    }

    /// A store where every page exists and shares one buffer: it records the pages
    /// locked, so tests can see the visiting order of any layout.
    struct RecordingStore {
        data: Mutex<Vec<u8>>,
        locked: Mutex<Vec<PageKey>>,
    }

    impl RecordingStore {
        fn new() -> RecordingStore {
            RecordingStore {
                data: Mutex::new(vec![0; PAGE_DATA_BYTES]),
                locked: Mutex::new(Vec::new()),
            }
        }
    }

    impl CoinStore for RecordingStore {
        fn with_page<R>(
            &self,
            key: PageKey,
            f: impl FnOnce(&mut PageRecords<'_>) -> R,
        ) -> Option<R> {
            self.locked.lock().push(key);
            Some(f(&mut PageRecords::new(&mut self.data.lock())))
        }
    }

    /// The visits `visit_by_page` makes: (page, coin indices) in order.
    fn visits(coins: &[Coin]) -> Vec<(PageKey, Vec<usize>)> {
        let store = RecordingStore::new();
        let mut seen: Vec<Vec<usize>> = Vec::new();
        let mut pages = 0;
        visit_by_page(&store, coins, |_, i| {
            let locked = store.locked.lock().len();
            if locked != pages {
                pages = locked;
                seen.push(Vec::new());
            }
            seen.last_mut().expect("pushed above").push(i);
        })
        .unwrap();
        let locked = store.locked.lock().clone();
        locked.into_iter().zip(seen).collect()
    }

    /// The same by a comparison sort: what every path must agree with.
    fn visits_by_sort(coins: &[Coin]) -> Vec<(PageKey, Vec<usize>)> {
        let key = |i: usize| PageKey::of(coins[i]).expect("valid test coin");
        let mut order: Vec<usize> = (0..coins.len()).collect();
        order.sort_by_key(|&i| key(i));
        let mut pages: Vec<(PageKey, Vec<usize>)> = Vec::new();
        for i in order {
            match pages.last_mut() {
                Some((last, group)) if *last == key(i) => group.push(i),
                _ => pages.push((key(i), vec![i])),
            }
        }
        pages
    }

    #[test]
    fn pages_ascend_once_each_with_request_order_inside() {
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = |modulus: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % modulus
        };
        for n in [1usize, 2, 3, 100, 3119, 5000] {
            // narrow (chains) and wide (radix sort) spans of pages, with many ties, and
            // the same coins in order (runs)
            for (pages, step) in [(1_000, 7), (15_000, 97), (15_000, 1), (4, 1)] {
                let mut coins: Vec<Coin> = (0..n)
                    .map(|_| {
                        let page = next(pages) / step * step;
                        Coin {
                            den: -8 + (page / 1000) as i8,
                            sn: (page % 1000) as u32 * RECORDS_PER_PAGE
                                + next(RECORDS_PER_PAGE.into()) as u32,
                        }
                    })
                    .collect();
                assert_eq!(visits(&coins), visits_by_sort(&coins), "n = {n}, {pages}");
                coins.sort();
                assert_eq!(visits(&coins), visits_by_sort(&coins), "sorted, n = {n}");
            }
        }
        let coin = |den, page: u32| Coin {
            den,
            sn: page * RECORDS_PER_PAGE,
        };
        let coins = [coin(6, 999), coin(-8, 0), coin(6, 999), coin(-8, 7)];
        let key = |den, page| PageKey { den, page };
        assert_eq!(
            visits(&coins),
            vec![
                (key(-8, 0), vec![1]),
                (key(-8, 7), vec![3]),
                (key(6, 999), vec![0, 2])
            ]
        );
        assert_eq!(visits(&[]), vec![]);
    }

    #[test]
    fn radix_order_is_a_stable_sort() {
        let ranks: Vec<u16> = (0..5000u32)
            .map(|i| (i * 7919 % 15_000) as u16 / 3)
            .collect();
        let mut expected: Vec<u32> = (0..5000).collect();
        expected.sort_by_key(|&i| ranks[i as usize]);
        assert_eq!(radix_order(&ranks), expected);
    }

    #[test]
    fn a_missing_page_stops_the_visit() {
        let store = MemoryStore::new();
        let coins = [coin(1, 5000), coin(1, 1), coin(1, 9000), coin(1, 2)];
        store.put(coins[1], [1; 16], 1);
        store.put(coins[2], [2; 16], 1);
        let mut seen = Vec::new();
        let err = visit_by_page(&store, &coins, |_, i| seen.push(i)).unwrap_err();
        assert_eq!(err, Status::InvalidSnOrDenomination);
        // page 0 (coins 1 and 3) is visited, page 4 (coin 0) is missing, page 8 never
        assert_eq!(seen, vec![1, 3]);
        assert_eq!(
            store.inspect(PageKey { den: 1, page: 8 }, |p| p.locks),
            Some(0)
        );
    }

    #[test]
    fn ranks_round_trip_in_lock_order() {
        let mut last = None;
        for den in DENOMINATIONS {
            for page in [0, 1, 999] {
                let key = PageKey { den, page };
                assert_eq!(PageKey::from_rank(key.rank()), key);
                assert!(last < Some(key.rank()), "{key:?}");
                last = Some(key.rank());
            }
        }
    }

    #[test]
    fn missing_page_or_bad_coin_is_40_before_any_lock() {
        let store = MemoryStore::new();
        store.put(coin(1, 1), [1; 16], 1);
        let err = visit_by_page(&store, &[coin(1, 1), coin(9, 1)], |_, _| {}).unwrap_err();
        assert_eq!(err, Status::InvalidSnOrDenomination);
        assert_eq!(
            store.inspect(PageKey { den: 1, page: 0 }, |p| p.locks),
            Some(0)
        );
        let err = visit_by_page(&store, &[coin(1, 1), coin(1, 5000)], |_, _| {}).unwrap_err();
        assert_eq!(err, Status::InvalidSnOrDenomination);
    }
}
