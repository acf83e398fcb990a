//! The embedded coin store: the legacy server's page files, for processes with no server.
//!
//! Layout (docs/abi.md, "Page files on disk"): `<dir>/Data/<den>/<page >> 8>/<page>.bin`
//! in lowercase hex (denomination as its byte, 2 digits; page number 4 digits), each file
//! exactly [`PAGE_DATA_BYTES`] long. A missing file is a missing page, so a command answers
//! 40 exactly as the server would.
//!
//! Guarantees:
//! - *On demand, bounded*: a page is read when a command first needs it and kept in an LRU
//!   cache of at most `cache_pages` pages (plus any page a command holds at that moment).
//! - *One lock per page*: commands on different pages never wait for each other; disk
//!   reads and writes happen under the page's own lock, never under the cache's.
//! - *Durable before the answer, never torn*: a page a command changed is written whole to
//!   a temporary file in the same folder, fsynced, renamed over the page file, and the
//!   folder fsynced, all before the page lock is released. A crash leaves either the old
//!   or the new file, never a mix. A write that fails is reported through
//!   [`CoinStore::finish`] and the cached copy is dropped, so memory never runs ahead of
//!   the disk.
//! - *One process per folder*: an advisory lock (`flock`) on `Data/.raida_healing.lock`
//!   is held for the store's life; a second process's open fails with
//!   [`OpenError::Locked`]. The lock binds only cooperating processes (other ops scripts),
//!   not a server that does not take it.
//! - *Nothing below `Data/` is followed or waited on*: every file there (pages, temporary
//!   files, the lock file) is reached through [`DataDir`], which refuses symbolic links,
//!   FIFOs and devices and reads a page with an exact bound; a page file with a
//!   [`PageProblem`] is a missing page, and the problem is logged and reported.
//!
//! The server's free-serial bitmap does not exist here: a server rebuilds it from the
//! MFS bytes when it loads the pages.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;

pub use crate::data_dir::{page_relative_path, DataDir, PageProblem};
use crate::protocol::{Coin, AN_BYTES};
use crate::store::{record_index, CoinStore, PageKey, PageRecords};

/// Name of the lock file inside `Data/`.
pub const LOCK_FILE_NAME: &str = ".raida_healing.lock";

/// Why a folder could not be opened as a store.
#[derive(Debug)]
pub enum OpenError {
    /// `<dir>/Data` is missing or not a folder.
    NoDataFolder(PathBuf),
    /// Another process holds the folder's lock.
    Locked(PathBuf),
    /// The lock file could not be created or locked.
    Io(PathBuf, io::Error),
}

impl std::fmt::Display for OpenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OpenError::NoDataFolder(path) => {
                write!(
                    f,
                    "{} is not a folder (the page files live there)",
                    path.display()
                )
            }
            OpenError::Locked(path) => write!(
                f,
                "{} is locked by another process (another ops script has this store open)",
                path.display()
            ),
            OpenError::Io(path, err) => write!(f, "{}: {err}", path.display()),
        }
    }
}

impl std::error::Error for OpenError {}

/// One cached page; `None` until read from disk (or after a failed write dropped it).
type CachedPage = Mutex<Option<Box<[u8]>>>;

/// The cache index: which pages are cached and in what order they were last used.
#[derive(Default)]
struct Cache {
    /// Each cached page and its last-use stamp.
    pages: HashMap<PageKey, (Arc<CachedPage>, u64)>,
    /// Last-use stamp -> page, oldest first.
    by_use: BTreeMap<u64, PageKey>,
    next_stamp: u64,
}

impl Cache {
    /// The cached page of `key`, marked most recently used; creates an empty one if needed and
    /// then evicts least recently used pages no command holds, down to `capacity`.
    fn cached(&mut self, key: PageKey, capacity: usize) -> Arc<CachedPage> {
        let stamp = self.next_stamp;
        self.next_stamp += 1;
        if let Some((cached, used)) = self.pages.get_mut(&key) {
            self.by_use.remove(used);
            *used = stamp;
            self.by_use.insert(stamp, key);
            return cached.clone();
        }
        let cached = Arc::new(CachedPage::new(None));
        self.pages.insert(key, (cached.clone(), stamp));
        self.by_use.insert(stamp, key);
        self.evict_idle(capacity);
        cached
    }

    /// Drops least recently used pages that no command holds until at most `capacity`
    /// remain (or every remaining page is in use).
    fn evict_idle(&mut self, capacity: usize) {
        while self.pages.len() > capacity {
            // A cached page whose only owner is the index is not in use by any command.
            let idle = self
                .by_use
                .iter()
                .find(|(_, k)| Arc::strong_count(&self.pages[*k].0) == 1)
                .map(|(&s, &k)| (s, k));
            let Some((old_stamp, old_key)) = idle else {
                break;
            };
            self.by_use.remove(&old_stamp);
            self.pages.remove(&old_key);
        }
    }
}

/// Coin records in page files under `<dir>/Data`.
pub struct PageFileStore {
    data_dir: DataDir,
    capacity: usize,
    cache: Mutex<Cache>,
    mfs: Option<u8>,
    /// Held open for the store's life: the `flock` lives as long as this descriptor.
    _lock: File,
}

impl PageFileStore {
    /// Opens the store of the server folder `dir` (the one holding `config.toml` and
    /// `Data/`), caching at most `cache_pages` pages (at least 1).
    pub fn open(dir: &Path, cache_pages: usize) -> Result<PageFileStore, OpenError> {
        let data_path = dir.join("Data");
        let data_dir = match DataDir::open(&data_path) {
            Ok(data_dir) => data_dir,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
                ) =>
            {
                return Err(OpenError::NoDataFolder(data_path))
            }
            Err(e) => return Err(OpenError::Io(data_path, e)),
        };
        let lock_path = data_path.join(LOCK_FILE_NAME);
        let lock = data_dir
            .open_plain_file(LOCK_FILE_NAME)
            .map_err(|e| OpenError::Io(lock_path.clone(), e))?;
        // rustix's flock rather than std's File::try_lock (Rust 1.89): the same flock(2),
        // and the toolchain floor stays where README says.
        match rustix::fs::flock(&lock, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => {}
            Err(rustix::io::Errno::WOULDBLOCK) => return Err(OpenError::Locked(data_path)),
            Err(e) => return Err(OpenError::Io(lock_path, e.into())),
        }
        Ok(PageFileStore {
            data_dir,
            capacity: cache_pages.max(1),
            cache: Mutex::new(Cache::default()),
            mfs: None,
            _lock: lock,
        })
    }

    /// The same store, stamping `mfs` into rewritten records instead of the current month
    /// (tests).
    pub fn with_mfs(mut self, mfs: u8) -> PageFileStore {
        self.mfs = Some(mfs);
        self
    }

    /// The `Data/` folder.
    pub fn data_dir(&self) -> &Path {
        self.data_dir.path()
    }

    /// The open `Data/` folder, through which every file below it is reached.
    pub fn data(&self) -> &DataDir {
        &self.data_dir
    }

    /// The file that holds page `key`.
    pub fn page_path(&self, key: PageKey) -> PathBuf {
        page_path(self.data_dir.path(), key)
    }

    /// Pages currently in the cache index (loaded, or looked up and found missing).
    pub fn cached_pages(&self) -> usize {
        self.cache.lock().pages.len()
    }

    /// A view through which one command reads and writes; a failed write comes back from its [`CoinStore::finish`].
    pub fn session(&self) -> Session<'_> {
        Session {
            store: self,
            write_error: Mutex::new(None),
        }
    }

    /// The record (AN, MFS byte) of `coin`, or what is wrong with its page file
    /// ([`PageProblem::Missing`] also when no server could hold the coin). Read-only.
    pub fn record(&self, coin: Coin) -> Result<([u8; AN_BYTES], u8), PageProblem> {
        let key = PageKey::of(coin).ok_or(PageProblem::Missing)?;
        let record = record_index(coin.sn);
        let cached = self.cache.lock().cached(key, self.capacity);
        let outcome = self.with_loaded(key, &cached, |page| (*page.an(record), page.mfs(record)));
        drop(cached);
        self.evict_after_use();
        outcome.map(|(record, _)| record)
    }

    /// Runs `f` on page `key` under its lock, loading it first if needed; persists what
    /// `f` wrote before unlocking. The `Err` is a failed write (the page is then dropped
    /// from the cache and the next access reads the disk again).
    fn with_page<R>(
        &self,
        key: PageKey,
        f: impl FnOnce(&mut PageRecords<'_>) -> R,
    ) -> Option<(R, Result<(), io::Error>)> {
        let cached = self.cache.lock().cached(key, self.capacity);
        let outcome = self.with_loaded(key, &cached, f);
        drop(cached);
        self.evict_after_use();
        outcome.ok()
    }

    /// Pages held by other commands when this one was looked up may be idle now.
    fn evict_after_use(&self) {
        let mut cache = self.cache.lock();
        if cache.pages.len() > self.capacity {
            cache.evict_idle(self.capacity);
        }
    }

    /// The part of [`Self::with_page`] under the page's own lock; `Err` when the page
    /// file is missing or unusable.
    fn with_loaded<R>(
        &self,
        key: PageKey,
        cached: &CachedPage,
        f: impl FnOnce(&mut PageRecords<'_>) -> R,
    ) -> Result<(R, Result<(), io::Error>), PageProblem> {
        let mut loaded = cached.lock();
        if loaded.is_none() {
            *loaded = Some(self.load(key)?);
        }
        // Until the page is on disk (or known unchanged), a panic in `f` or a failed write
        // must not leave a changed copy in memory: the guard forgets it unless it was saved.
        let mut guard = ForgetUnlessSaved {
            cached: &mut loaded,
            armed: true,
        };
        let data = guard.cached.as_deref_mut().expect("loaded above");
        let mut records = PageRecords::new(data);
        let result = f(&mut records);
        let written = !records.written_records().is_empty();
        let saved = if written {
            self.data_dir
                .replace_page(key, records.data())
                .inspect_err(|e| {
                    crate::log::error(&format!(
                        "{}: write failed: {e}",
                        self.page_path(key).display()
                    ))
                })
        } else {
            Ok(())
        };
        guard.armed = saved.is_err();
        Ok((result, saved))
    }

    /// Reads page `key` from disk, or says (and logs, at error unless simply absent) why
    /// there is no usable page file.
    fn load(&self, key: PageKey) -> Result<Box<[u8]>, PageProblem> {
        match self.data_dir.read_page(key) {
            Ok(page) => Ok(page as Box<[u8]>),
            Err(problem) => {
                let path = self.page_path(key);
                if problem == PageProblem::Missing {
                    crate::log::debug(&format!("{}: no such page", path.display()));
                } else {
                    crate::log::error(&format!(
                        "{}: {problem}; treating the page as missing",
                        path.display()
                    ));
                }
                Err(problem)
            }
        }
    }
}

/// Forgets a page's cached copy when dropped while armed (after a panic in the command or a
/// failed write), so the next access reads the disk again.
struct ForgetUnlessSaved<'a, 'b> {
    cached: &'a mut parking_lot::MutexGuard<'b, Option<Box<[u8]>>>,
    armed: bool,
}

impl Drop for ForgetUnlessSaved<'_, '_> {
    fn drop(&mut self) {
        if self.armed {
            **self.cached = None;
        }
    }
}

/// The path of page `key` under `data_dir`.
pub fn page_path(data_dir: &Path, key: PageKey) -> PathBuf {
    data_dir.join(page_relative_path(key))
}

/// One command's view of a [`PageFileStore`]: a [`CoinStore`] that remembers a failed
/// write and reports it from [`CoinStore::finish`], so the command runner refuses to
/// report success for a change that is not on disk.
pub struct Session<'a> {
    store: &'a PageFileStore,
    write_error: Mutex<Option<String>>,
}

impl CoinStore for Session<'_> {
    fn with_page<R>(&self, key: PageKey, f: impl FnOnce(&mut PageRecords<'_>) -> R) -> Option<R> {
        let (result, saved) = self.store.with_page(key, f)?;
        if let Err(e) = saved {
            let mut first = self.write_error.lock();
            if first.is_none() {
                *first = Some(format!(
                    "writing {}: {e}",
                    self.store.page_path(key).display()
                ));
            }
        }
        Some(result)
    }

    fn mfs(&self) -> u8 {
        self.store.mfs.unwrap_or_else(crate::hash::mfs_now)
    }

    /// `Err` with the first failed write's description when any write since the last
    /// call failed.
    fn finish(&self) -> Result<(), String> {
        match self.write_error.lock().take() {
            Some(why) => Err(why),
            None => Ok(()),
        }
    }
}

/// Bytes of the record of `sn` inside a page file's data (for tests: the `testing` feature).
#[cfg(feature = "testing")]
pub fn record_range(sn: u32) -> std::ops::Range<usize> {
    use crate::store::RECORD_BYTES;
    let at = record_index(sn) * RECORD_BYTES;
    at..at + RECORD_BYTES
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{visit_by_page, PAGE_DATA_BYTES, RECORD_BYTES};
    use std::fs;

    /// A fresh empty folder under the system temp dir, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(tag: &str) -> TempDir {
            let path = std::env::temp_dir().join(format!(
                "raida_pagefile_{tag}_{}_{}",
                std::process::id(),
                crate::random::u32_from_os().expect("OS randomness")
            ));
            fs::create_dir_all(path.join("Data")).unwrap();
            TempDir(path)
        }

        /// Where the page file of `key` goes, its directory created.
        fn new_page(&self, key: PageKey) -> PathBuf {
            let path = page_path(&self.0.join("Data"), key);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            path
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn key(den: i8, page: u32) -> PageKey {
        PageKey { den, page }
    }

    /// Writes a page file whose record k holds AN [k as u8 ^ seed; 16] and MFS 1.
    /// A store caching at most `cache` pages over pages 0..`pages` of `den`, each planted
    /// with its page number as seed; the folder goes when the returned TempDir drops.
    fn store_over_pages(tag: &str, den: i8, pages: u32, cache: usize) -> (TempDir, PageFileStore) {
        let dir = TempDir::new(tag);
        for page in 0..pages {
            plant(&dir.0, key(den, page), page as u8);
        }
        let store = PageFileStore::open(&dir.0, cache).unwrap();
        (dir, store)
    }

    fn plant(dir: &Path, key: PageKey, seed: u8) -> Vec<u8> {
        let mut data = vec![0u8; PAGE_DATA_BYTES];
        for (k, record) in data.chunks_exact_mut(RECORD_BYTES).enumerate() {
            record[..16].fill(k as u8 ^ seed);
            record[16] = 1;
        }
        let path = page_path(&dir.join("Data"), key);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, &data).unwrap();
        data
    }

    #[test]
    fn paths_follow_the_legacy_layout() {
        let data = Path::new("/srv/raida/Data");
        assert_eq!(
            page_path(data, key(1, 300)),
            Path::new("/srv/raida/Data/01/01/012c.bin")
        );
        assert_eq!(
            page_path(data, key(-1, 0)),
            Path::new("/srv/raida/Data/ff/00/0000.bin")
        );
        assert_eq!(
            page_path(data, key(-8, 999)),
            Path::new("/srv/raida/Data/f8/03/03e7.bin")
        );
        assert_eq!(
            page_path(data, key(6, 255)),
            Path::new("/srv/raida/Data/06/00/00ff.bin")
        );
    }

    #[test]
    fn reads_records_and_missing_pages_are_none() {
        let dir = TempDir::new("read");
        plant(&dir.0, key(1, 4), 0x5a);
        let store = PageFileStore::open(&dir.0, 8).unwrap();
        let sn = 4 * 1024 + 7;
        assert_eq!(store.record(Coin { den: 1, sn }), Ok(([7 ^ 0x5a; 16], 1)));
        assert_eq!(
            store.record(Coin {
                den: 1,
                sn: 5 * 1024
            }),
            Err(PageProblem::Missing)
        );
        assert_eq!(store.record(Coin { den: 2, sn }), Err(PageProblem::Missing));
        assert_eq!(
            store.record(Coin { den: 9, sn: 1 }),
            Err(PageProblem::Missing)
        );
        // a whole request with one missing page is 40, as in the server
        let session = store.session();
        let err = visit_by_page(
            &session,
            &[
                Coin { den: 1, sn },
                Coin {
                    den: 1,
                    sn: 5 * 1024,
                },
            ],
            |_, _| {},
        )
        .unwrap_err();
        assert_eq!(err, crate::protocol::Status::InvalidSnOrDenomination);
        assert_eq!(session.finish(), Ok(()));
    }

    #[test]
    fn a_wrong_sized_page_file_is_a_missing_page() {
        let dir = TempDir::new("short");
        let path = dir.new_page(key(0, 0));
        fs::write(&path, vec![1u8; PAGE_DATA_BYTES - 1]).unwrap();
        let store = PageFileStore::open(&dir.0, 8).unwrap();
        assert_eq!(
            store.record(Coin { den: 0, sn: 3 }),
            Err(PageProblem::Truncated {
                len: PAGE_DATA_BYTES as u64 - 1
            })
        );
    }

    #[test]
    fn a_write_is_on_disk_when_with_page_returns() {
        let dir = TempDir::new("write");
        let mut expected = plant(&dir.0, key(-1, 2), 0);
        let store = PageFileStore::open(&dir.0, 8).unwrap().with_mfs(45);
        let sn = 2 * 1024 + 1023;
        let session = store.session();
        let mfs = session.mfs();
        session
            .with_page(key(-1, 2), |page| page.write(record_index(sn), &[0xab; 16], mfs))
            .unwrap();
        assert_eq!(session.finish(), Ok(()));
        expected[record_range(sn)].copy_from_slice(&[
            0xab, 0xab, 0xab, 0xab, 0xab, 0xab, 0xab, 0xab, 0xab, 0xab, 0xab, 0xab, 0xab, 0xab,
            0xab, 0xab, 45,
        ]);
        let path = store.page_path(key(-1, 2));
        assert_eq!(fs::read(&path).unwrap(), expected);
        // no temporary file is left behind
        let names: Vec<String> = fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, vec!["0002.bin".to_string()]);
        // a reader that never saw the page (a fresh store) sees the new record
        drop(store);
        let store = PageFileStore::open(&dir.0, 8).unwrap();
        assert_eq!(store.record(Coin { den: -1, sn }), Ok(([0xab; 16], 45)));
    }

    #[test]
    fn a_read_never_rewrites_the_file() {
        let dir = TempDir::new("readonly");
        plant(&dir.0, key(3, 0), 9);
        let store = PageFileStore::open(&dir.0, 8).unwrap();
        let path = store.page_path(key(3, 0));
        let before = fs::metadata(&path).unwrap().modified().unwrap();
        let ino = std::os::unix::fs::MetadataExt::ino(&fs::metadata(&path).unwrap());
        assert!(store.record(Coin { den: 3, sn: 1 }).is_ok());
        let meta = fs::metadata(&path).unwrap();
        assert_eq!(meta.modified().unwrap(), before);
        assert_eq!(std::os::unix::fs::MetadataExt::ino(&meta), ino);
    }

    #[test]
    fn a_failed_write_is_reported_and_memory_follows_the_disk() {
        let dir = TempDir::new("failwrite");
        let original = plant(&dir.0, key(1, 0), 0);
        let store = PageFileStore::open(&dir.0, 8).unwrap().with_mfs(7);
        let path = store.page_path(key(1, 0));
        // A folder where the temporary file must go makes the write fail before the
        // rename, like a full disk would.
        fs::create_dir(path.with_file_name("0000.bin.tmp")).unwrap();
        let session = store.session();
        session
            .with_page(key(1, 0), |page| page.write(5, &[0xee; 16], 7))
            .unwrap();
        let why = session.finish().unwrap_err();
        assert!(why.contains("0000.bin"), "{why}");
        assert_eq!(fs::read(&path).unwrap(), original);
        // the changed copy was dropped: the next reader sees the disk, not the failed write
        assert_eq!(store.record(Coin { den: 1, sn: 5 }), Ok(([5; 16], 1)));
        // once the obstacle is gone the same write succeeds
        fs::remove_dir(path.with_file_name("0000.bin.tmp")).unwrap();
        let session = store.session();
        session
            .with_page(key(1, 0), |page| page.write(5, &[0xee; 16], 7))
            .unwrap();
        assert_eq!(session.finish(), Ok(()));
        assert_eq!(
            fs::read(&path).unwrap()[record_range(5)],
            [&[0xee; 16][..], &[7]].concat()
        );
    }

    #[test]
    fn a_stale_temporary_file_from_a_crash_changes_nothing() {
        let dir = TempDir::new("staletmp");
        let original = plant(&dir.0, key(2, 1), 3);
        let path = page_path(&dir.0.join("Data"), key(2, 1));
        // what a crash between write and rename leaves: a torn temporary file
        fs::write(path.with_file_name("0001.bin.tmp"), [0xffu8; 100]).unwrap();
        let store = PageFileStore::open(&dir.0, 8).unwrap().with_mfs(2);
        assert_eq!(
            store.record(Coin {
                den: 2,
                sn: 1024 + 9
            }),
            Ok(([9 ^ 3; 16], 1))
        );
        let session = store.session();
        session
            .with_page(key(2, 1), |page| page.write(9, &[1; 16], 2))
            .unwrap();
        assert_eq!(session.finish(), Ok(()));
        let mut expected = original;
        expected[9 * 17..10 * 17]
            .copy_from_slice(&[1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2]);
        assert_eq!(fs::read(&path).unwrap(), expected);
        assert!(!path.with_file_name("0001.bin.tmp").exists());
    }

    #[test]
    fn a_panic_inside_a_command_drops_the_unsaved_copy() {
        let dir = TempDir::new("panic");
        plant(&dir.0, key(0, 0), 0);
        let store = PageFileStore::open(&dir.0, 8).unwrap();
        let session = store.session();
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            session.with_page(key(0, 0), |page| {
                page.write(1, &[0x77; 16], 3);
                panic!("command bug");
            })
        }));
        assert!(caught.is_err());
        assert_eq!(session.finish(), Ok(()));
        assert_eq!(store.record(Coin { den: 0, sn: 1 }), Ok(([1; 16], 1)));
    }

    #[test]
    fn the_cache_is_bounded_and_evicts_the_least_recently_used() {
        let (_dir, store) = store_over_pages("lru", 1, 5, 3);
        let read = |page: u32| {
            store
                .record(Coin {
                    den: 1,
                    sn: page * 1024,
                })
                .unwrap()
                .0[0]
        };
        assert_eq!(read(0), 0);
        assert_eq!(read(1), 1);
        assert_eq!(read(2), 2);
        assert_eq!(store.cached_pages(), 3);
        assert_eq!(read(0), 0); // page 0 is now the most recent; page 1 the oldest
        assert_eq!(read(3), 3);
        assert_eq!(store.cached_pages(), 3);
        let cached: Vec<u32> = {
            let cache = store.cache.lock();
            let mut pages: Vec<u32> = cache.pages.keys().map(|k| k.page).collect();
            pages.sort();
            pages
        };
        assert_eq!(cached, vec![0, 2, 3]);
        // an evicted page is read again from disk, including changes made there meanwhile
        let mut changed = fs::read(store.page_path(key(1, 1))).unwrap();
        changed[0] = 0x42;
        fs::write(store.page_path(key(1, 1)), changed).unwrap();
        assert_eq!(read(1), 0x42);
        assert_eq!(store.cached_pages(), 3);
    }

    #[test]
    fn a_page_in_use_is_never_evicted() {
        let (_dir, store) = store_over_pages("inuse", 4, 3, 1);
        let session = store.session();
        let inner = session
            .with_page(key(4, 0), |outer| {
                // while page 0 is held, a lookup of page 1 must not evict it
                let inner = store.record(Coin { den: 4, sn: 1024 }).unwrap().0[0];
                (outer.an(0)[0], inner)
            })
            .unwrap();
        assert_eq!(inner, (0, 1));
        assert_eq!(session.finish(), Ok(()));
        assert_eq!(store.cached_pages(), 1);
    }

    #[test]
    fn a_second_open_of_the_same_folder_is_refused() {
        let dir = TempDir::new("lock");
        let store = PageFileStore::open(&dir.0, 8).unwrap();
        // flock conflicts between separate open file descriptions, even in one process
        match PageFileStore::open(&dir.0, 8) {
            Err(OpenError::Locked(path)) => assert_eq!(path, dir.0.join("Data")),
            other => panic!("expected Locked, got {:?}", other.map(|_| ())),
        }
        drop(store);
        assert!(PageFileStore::open(&dir.0, 8).is_ok());
    }

    #[test]
    fn a_folder_without_data_is_refused() {
        let dir = TempDir::new("nodata");
        fs::remove_dir(dir.0.join("Data")).unwrap();
        match PageFileStore::open(&dir.0, 8) {
            Err(OpenError::NoDataFolder(path)) => assert_eq!(path, dir.0.join("Data")),
            other => panic!("expected NoDataFolder, got {:?}", other.map(|_| ())),
        }
    }

    #[test]
    fn concurrent_writers_on_one_page_lose_nothing() {
        let dir = TempDir::new("concurrent");
        plant(&dir.0, key(5, 0), 0);
        let store = PageFileStore::open(&dir.0, 2).unwrap().with_mfs(9);
        std::thread::scope(|scope| {
            for t in 0..4u8 {
                let store = &store;
                scope.spawn(move || {
                    for i in 0..8u8 {
                        let record = usize::from(t * 8 + i);
                        let session = store.session();
                        session
                            .with_page(key(5, 0), |page| page.write(record, &[t + 100; 16], 9))
                            .unwrap();
                        assert_eq!(session.finish(), Ok(()));
                        // other pages keep the cache busy meanwhile
                        let _ = store.record(Coin {
                            den: 5,
                            sn: 1024 * (1 + u32::from(i)),
                        });
                    }
                });
            }
        });
        let data = fs::read(store.page_path(key(5, 0))).unwrap();
        for t in 0..4u8 {
            for i in 0..8u8 {
                let record = usize::from(t * 8 + i);
                assert_eq!(data[record * 17..record * 17 + 16], [t + 100; 16]);
                assert_eq!(data[record * 17 + 16], 9);
            }
        }
        assert_eq!(data[32 * 17..33 * 17], [&[32u8; 16][..], &[1]].concat());
    }

    // --- files below Data/ an attacker can plant -------------------------------

    use crate::testing::blocking::{mkfifo, within_a_minute};

    /// Whether this process runs as root (`/proc/self` belongs to the effective uid).
    fn is_root() -> bool {
        std::os::unix::fs::MetadataExt::uid(&fs::metadata("/proc/self").unwrap()) == 0
    }

    /// Writes record 3 of page (1, 4) through a fresh store.
    fn write_one(store: &PageFileStore) -> Result<(), String> {
        let session = store.session();
        session
            .with_page(key(1, 4), |page| page.write(3, &[0xc3; 16], 5))
            .expect("the page exists");
        session.finish()
    }

    #[test]
    fn a_symlinked_temporary_file_is_never_written_through() {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let dir = TempDir::new("tmplink");
        plant(&dir.0, key(1, 4), 0);
        let page = page_path(&dir.0.join("Data"), key(1, 4));
        fs::set_permissions(&page, fs::Permissions::from_mode(0o640)).unwrap();
        // what /etc/shadow would be: outside Data/, mode 0600
        let victim = dir.0.join("victim");
        fs::write(&victim, b"secret\n").unwrap();
        fs::set_permissions(&victim, fs::Permissions::from_mode(0o600)).unwrap();
        // As root (the real threat: an ops script run by root over a folder the server's
        // account owns), the page belongs to that account and the victim to root.
        if is_root() {
            std::os::unix::fs::chown(&page, Some(4321), Some(4321)).unwrap();
        } else {
            println!("skipped: the owner checks (a page owned by another account needs root)");
        }
        let before = fs::metadata(&victim).unwrap();
        std::os::unix::fs::symlink(&victim, page.with_file_name("0004.bin.tmp")).unwrap();
        let store = PageFileStore::open(&dir.0, 8).unwrap().with_mfs(5);
        assert_eq!(write_one(&store), Ok(()));
        let after = fs::metadata(&victim).unwrap();
        assert_eq!(fs::read(&victim).unwrap(), b"secret\n");
        assert_eq!(after.mode(), before.mode());
        assert_eq!((after.uid(), after.gid()), (before.uid(), before.gid()));
        // the page is a regular file with the new record and the old page's mode
        let meta = fs::symlink_metadata(&page).unwrap();
        assert!(meta.file_type().is_file());
        assert_eq!(meta.mode() & 0o777, 0o640);
        if is_root() {
            assert_eq!(
                (meta.uid(), meta.gid()),
                (4321, 4321),
                "the page's owner kept"
            );
            assert_eq!(
                (after.uid(), after.gid()),
                (0, 0),
                "the victim still root's"
            );
        }
        assert_eq!(
            fs::read(&page).unwrap()[record_range(4 * 1024 + 3)],
            [&[0xc3; 16][..], &[5]].concat()
        );
        assert!(fs::symlink_metadata(page.with_file_name("0004.bin.tmp")).is_err());
    }

    #[test]
    fn a_fifo_temporary_file_neither_blocks_nor_is_reused() {
        let dir = TempDir::new("tmpfifo");
        plant(&dir.0, key(1, 4), 0);
        let page = page_path(&dir.0.join("Data"), key(1, 4));
        mkfifo(&page.with_file_name("0004.bin.tmp"));
        let store = PageFileStore::open(&dir.0, 8).unwrap().with_mfs(5);
        let (store, written) = within_a_minute("a write past a FIFO temporary file", move || {
            let written = write_one(&store);
            (store, written)
        });
        assert_eq!(written, Ok(()));
        assert!(fs::symlink_metadata(&page).unwrap().file_type().is_file());
        assert_eq!(
            fs::read(&page).unwrap()[record_range(4 * 1024 + 3)],
            [&[0xc3; 16][..], &[5]].concat()
        );
        assert_eq!(
            store.record(Coin {
                den: 1,
                sn: 4 * 1024 + 3
            }),
            Ok(([0xc3; 16], 5))
        );
    }

    #[test]
    fn a_symlinked_lock_file_is_refused_and_its_target_never_created() {
        let dir = TempDir::new("locklink");
        let target = dir.0.join("created-by-root");
        std::os::unix::fs::symlink(&target, dir.0.join("Data").join(LOCK_FILE_NAME)).unwrap();
        match PageFileStore::open(&dir.0, 8) {
            Err(OpenError::Io(path, e)) => {
                assert_eq!(path, dir.0.join("Data").join(LOCK_FILE_NAME));
                assert!(e.to_string().contains("symbolic link"), "{e}");
            }
            other => panic!("expected Io, got {:?}", other.map(|_| ())),
        }
        assert!(
            fs::symlink_metadata(&target).is_err(),
            "the link's target was created"
        );
    }

    #[test]
    fn a_lock_file_that_cannot_be_opened_is_called_the_lock_file_not_a_page() {
        let dir = TempDir::new("lockdir");
        fs::create_dir(dir.0.join("Data").join(LOCK_FILE_NAME)).unwrap();
        let why = PageFileStore::open(&dir.0, 8).map(drop).unwrap_err().to_string();
        assert_eq!(
            why,
            format!(
                "{}: cannot create or open the folder lock file: Is a directory (os error 21)",
                dir.0.join("Data").join(LOCK_FILE_NAME).display()
            )
        );
    }

    #[test]
    fn a_fifo_lock_file_is_refused_without_blocking() {
        let dir = TempDir::new("lockfifo");
        mkfifo(&dir.0.join("Data").join(LOCK_FILE_NAME));
        let folder = dir.0.clone();
        let opened = within_a_minute("opening a folder whose lock file is a FIFO", move || {
            PageFileStore::open(&folder, 8)
                .map(drop)
                .map_err(|e| e.to_string())
        });
        let why = opened.unwrap_err();
        assert!(why.contains("not a regular file (a FIFO)"), "{why}");
    }

    #[test]
    fn a_fifo_page_is_not_regular_and_never_blocks() {
        let dir = TempDir::new("pagefifo");
        let page = dir.new_page(key(2, 0));
        mkfifo(&page);
        let store = PageFileStore::open(&dir.0, 8).unwrap();
        let (store, first) = within_a_minute("reading a FIFO page", move || {
            let first = store.record(Coin { den: 2, sn: 1 });
            (store, first)
        });
        assert_eq!(first, Err(PageProblem::NotRegular { kind: "a FIFO" }));
        // a command on it answers 40 like a missing page, also without blocking
        let session = store.session();
        assert!(session.with_page(key(2, 0), |_| ()).is_none());
        assert_eq!(session.finish(), Ok(()));
    }

    #[test]
    fn a_page_linked_to_dev_zero_is_refused_without_reading_it() {
        let dir = TempDir::new("pagezero");
        let page = dir.new_page(key(2, 0));
        std::os::unix::fs::symlink("/dev/zero", &page).unwrap();
        let store = PageFileStore::open(&dir.0, 8).unwrap();
        assert_eq!(
            store.record(Coin { den: 2, sn: 1 }),
            Err(PageProblem::Symlink)
        );
        // even a link to a valid page is not followed
        let elsewhere = dir.0.join("elsewhere.bin");
        fs::write(&elsewhere, vec![0u8; PAGE_DATA_BYTES]).unwrap();
        fs::remove_file(&page).unwrap();
        std::os::unix::fs::symlink(&elsewhere, &page).unwrap();
        assert_eq!(
            store.record(Coin { den: 2, sn: 1 }),
            Err(PageProblem::Symlink)
        );
    }

    #[test]
    fn a_symlinked_folder_below_data_is_refused_but_data_itself_may_be_a_link() {
        let dir = TempDir::new("folderlink");
        // the real data lives elsewhere; <dir>/Data links to it (an operator's choice)
        let real = dir.0.join("disk2");
        fs::rename(dir.0.join("Data"), &real).unwrap();
        std::os::unix::fs::symlink(&real, dir.0.join("Data")).unwrap();
        plant(&dir.0, key(1, 0), 1);
        // Data/02 links to a folder holding valid pages: never followed
        let other = dir.0.join("other");
        fs::create_dir_all(other.join("00")).unwrap();
        fs::write(
            other.join("00").join("0000.bin"),
            vec![0u8; PAGE_DATA_BYTES],
        )
        .unwrap();
        std::os::unix::fs::symlink(&other, real.join("02")).unwrap();
        // a file where a folder belongs
        fs::write(real.join("03"), b"x").unwrap();
        let store = PageFileStore::open(&dir.0, 8).unwrap();
        assert_eq!(store.record(Coin { den: 1, sn: 2 }), Ok(([2 ^ 1; 16], 1)));
        assert_eq!(
            store.record(Coin { den: 2, sn: 2 }),
            Err(PageProblem::Symlink)
        );
        assert_eq!(
            store.record(Coin { den: 3, sn: 2 }),
            Err(PageProblem::NotRegular {
                kind: "a file where a folder belongs"
            })
        );
    }

    #[test]
    fn every_page_problem_is_named() {
        use std::os::unix::fs::PermissionsExt;
        let dir = TempDir::new("problems");
        let data = dir.0.join("Data");
        let path = |page| page_path(&data, key(1, page));
        fs::create_dir_all(path(0).parent().unwrap()).unwrap();
        fs::write(path(0), b"").unwrap();
        fs::write(path(1), vec![0u8; PAGE_DATA_BYTES + 1]).unwrap();
        fs::create_dir(path(2)).unwrap();
        fs::write(path(3), vec![0u8; PAGE_DATA_BYTES]).unwrap();
        fs::set_permissions(path(3), fs::Permissions::from_mode(0o000)).unwrap();
        let data_dir = DataDir::open(&data).unwrap();
        assert_eq!(
            data_dir.check_page(key(1, 0)),
            Err(PageProblem::Truncated { len: 0 })
        );
        assert_eq!(
            data_dir.check_page(key(1, 1)),
            Err(PageProblem::Oversized {
                len: PAGE_DATA_BYTES as u64 + 1
            })
        );
        assert_eq!(
            data_dir.check_page(key(1, 2)),
            Err(PageProblem::NotRegular { kind: "a folder" })
        );
        assert_eq!(data_dir.check_page(key(1, 9)), Err(PageProblem::Missing));
        assert_eq!(
            data_dir.check_page_at(Path::new("../Data/01/00/0000.bin")),
            Err(PageProblem::Unreadable(
                "../Data/01/00/0000.bin is not a plain path below Data/".to_string()
            ))
        );
        assert_eq!(
            data_dir.check_page_at(&page_relative_path(key(1, 2))),
            Err(PageProblem::NotRegular { kind: "a folder" })
        );
        assert_eq!(
            PageProblem::Truncated { len: 0 }.to_string(),
            "truncated page file: 0 bytes, a page file has 17408"
        );
        if is_root() {
            println!("skipped: an unreadable page (root reads a mode-0 file anyway)");
            assert_eq!(data_dir.check_page(key(1, 3)), Ok(()));
        } else {
            assert_eq!(
                data_dir.check_page(key(1, 3)),
                Err(PageProblem::Unreadable(
                    "Permission denied (os error 13)".to_string()
                ))
            );
        }
    }
}
