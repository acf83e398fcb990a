//! The coin world every fuzz target runs against: which pages exist and what each record
//! holds. The C-ABI host and the safe-core store both draw their pages from here, and the
//! oracle predicts answers from the same rules, so all three agree by construction.

use std::collections::HashMap;
use std::sync::Mutex;

use raida_healing::protocol::{Coin, AN_BYTES};
use raida_healing::store::{CoinStore, PageKey, PageRecords, PAGE_DATA_BYTES, RECORD_BYTES};

/// A denomination this server holds no page of (requests naming it get 40).
pub const DEN_WITHOUT_PAGES: i8 = 3;
/// Pages 0..PAGES_PER_DEN exist for every other denomination: serial numbers below
/// 8 × 1024 are on the server, higher ones give 40.
pub const PAGES_PER_DEN: u32 = 8;
/// The MFS byte of every stored record, and what `get_mfs` answers.
pub const MFS: u8 = 45;

/// Does the server hold the page `key`?
pub fn page_exists(key: PageKey) -> bool {
    key.den != DEN_WITHOUT_PAGES && key.page < PAGES_PER_DEN
}

/// Is `coin` on a page the server holds (the oracle's test for status 40)?
pub fn coin_exists(coin: Coin) -> bool {
    PageKey::of(coin).is_some_and(page_exists)
}

/// The AN stored for `coin`: its 5-byte wire record repeated (5 + 5 + 5 + 1 bytes), so a
/// seed can name a passing coin by hand and libFuzzer's comparison tracing finds it too.
pub fn stored_an(coin: Coin) -> [u8; AN_BYTES] {
    let wire = coin.to_wire();
    std::array::from_fn(|i| wire[i % wire.len()])
}

/// The record bytes of page `key` as the server would load them.
pub fn page_data(key: PageKey) -> Vec<u8> {
    let mut data = vec![0u8; PAGE_DATA_BYTES];
    for (index, record) in data.chunks_exact_mut(RECORD_BYTES).enumerate() {
        let coin = Coin {
            den: key.den,
            sn: key.first_sn() + index as u32,
        };
        record[..AN_BYTES].copy_from_slice(&stored_an(coin));
        record[AN_BYTES] = MFS;
    }
    data
}

/// The model as a [`CoinStore`] for the safe-core twin of each call: pages are built on
/// first use and keep what fix writes; every write is counted.
#[derive(Default)]
pub struct ModelStore {
    pages: Mutex<HashMap<PageKey, Vec<u8>>>,
    writes: Mutex<Vec<Coin>>,
}

impl ModelStore {
    /// Records written through the store so far, in write order.
    pub fn writes(&self) -> Vec<Coin> {
        self.writes.lock().expect("writes lock").clone()
    }

    /// The stored AN of `coin` now (its page must exist).
    pub fn an(&self, coin: Coin) -> [u8; AN_BYTES] {
        let key = PageKey::of(coin).expect("coin in range");
        let mut pages = self.pages.lock().expect("pages lock");
        let data = pages.entry(key).or_insert_with(|| page_data(key));
        let at = raida_healing::store::record_index(coin.sn) * RECORD_BYTES;
        data[at..at + AN_BYTES].try_into().expect("16 bytes")
    }
}

impl CoinStore for ModelStore {
    fn with_page<R>(&self, key: PageKey, f: impl FnOnce(&mut PageRecords<'_>) -> R) -> Option<R> {
        if !page_exists(key) {
            return None;
        }
        // One big lock: the fuzz twin is single-threaded, and holding it is what a page
        // lock would guarantee.
        let mut pages = self.pages.lock().expect("pages lock");
        let data = pages.entry(key).or_insert_with(|| page_data(key));
        let mut records = PageRecords::new(data);
        let result = f(&mut records);
        let mut writes = self.writes.lock().expect("writes lock");
        for &record in records.written_records() {
            writes.push(Coin {
                den: key.den,
                sn: key.first_sn() + record as u32,
            });
        }
        Some(result)
    }

    fn mfs(&self) -> u8 {
        MFS
    }
}
