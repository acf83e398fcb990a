//! An in-memory coin store for tests, benches and the fuzz crate (the `testing` feature):
//! never in the release library.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;

use crate::protocol::{Coin, AN_BYTES};

use super::{record_index, CoinStore, PageKey, PageRecords, PAGE_DATA_BYTES, RECORD_BYTES};

/// An in-memory store for tests and benchmarks: a page exists once it is created.
#[derive(Default)]
pub struct MemoryStore {
    pages: Mutex<HashMap<PageKey, Arc<Mutex<MemoryPage>>>>,
    mfs: Option<u8>,
}

/// One in-memory page with the bookkeeping a test wants to see.
pub struct MemoryPage {
    pub data: Vec<u8>,
    /// Set when a write went through, like the server's `is_dirty`.
    pub dirty: bool,
    /// Serial numbers marked used, like the server's `update_free_pages_bitmap(.., 0)`.
    pub marked_used: Vec<u32>,
    /// Number of times this page was locked.
    pub locks: usize,
}

impl MemoryStore {
    /// An empty store whose MFS stamp is the real one.
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    /// An empty store that stamps `mfs` into rewritten records.
    pub fn with_mfs(mfs: u8) -> MemoryStore {
        MemoryStore {
            mfs: Some(mfs),
            ..MemoryStore::default()
        }
    }

    fn page(&self, key: PageKey) -> Option<Arc<Mutex<MemoryPage>>> {
        self.pages.lock().get(&key).cloned()
    }

    /// Creates (zeroed) the page holding `coin` if it is missing.
    pub fn create_page(&self, key: PageKey) {
        self.pages.lock().entry(key).or_insert_with(|| {
            Arc::new(Mutex::new(MemoryPage {
                data: vec![0; PAGE_DATA_BYTES],
                dirty: false,
                marked_used: Vec::new(),
                locks: 0,
            }))
        });
    }

    /// Stores `an` with MFS `mfs` for `coin`, creating its page.
    pub fn put(&self, coin: Coin, an: [u8; AN_BYTES], mfs: u8) {
        let key = PageKey::of(coin).expect("test coin out of range");
        self.create_page(key);
        let page = self.page(key).expect("just created");
        let mut page = page.lock();
        let at = record_index(coin.sn) * RECORD_BYTES;
        page.data[at..at + AN_BYTES].copy_from_slice(&an);
        page.data[at + AN_BYTES] = mfs;
    }

    /// The record (AN, MFS) of `coin`, if its page exists.
    pub fn get(&self, coin: Coin) -> Option<([u8; AN_BYTES], u8)> {
        let page = self.page(PageKey::of(coin)?)?;
        let page = page.lock();
        let at = record_index(coin.sn) * RECORD_BYTES;
        Some((
            page.data[at..at + AN_BYTES].try_into().expect("16 bytes"),
            page.data[at + AN_BYTES],
        ))
    }

    /// Runs `f` on a page's bookkeeping.
    pub fn inspect<R>(&self, key: PageKey, f: impl FnOnce(&MemoryPage) -> R) -> Option<R> {
        Some(f(&self.page(key)?.lock()))
    }
}

impl CoinStore for MemoryStore {
    fn with_page<R>(&self, key: PageKey, f: impl FnOnce(&mut PageRecords<'_>) -> R) -> Option<R> {
        let page = self.page(key)?;
        let mut page = page.lock();
        page.locks += 1;
        let (result, written) = {
            let mut records = PageRecords::new(&mut page.data);
            let result = f(&mut records);
            (result, records.written_records().to_vec())
        };
        if !written.is_empty() {
            page.dirty = true;
            for record in written {
                page.marked_used.push(key.first_sn() + record as u32);
            }
        }
        Some(result)
    }

    fn mfs(&self) -> u8 {
        self.mfs.unwrap_or_else(crate::hash::mfs_now)
    }
}
