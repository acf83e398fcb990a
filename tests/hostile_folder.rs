//! A server folder that another account can write, opened as an ops script would
//! (`raida_healing_open`): a config.toml or page file that is a FIFO, a link to
//! `/dev/zero` or too large is refused without blocking or reading it, a lock file that is
//! a link is refused and its target never created, and last_error says what is wrong.
//!
//! The opened folder is process-wide, so the tests here take turns (`SERIAL`).

use std::ffi::{CStr, CString};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use parking_lot::Mutex;
use raida_healing::ffi::standalone::{
    raida_healing_close, raida_healing_last_error, raida_healing_open, raida_healing_read_record,
    RAIDA_HEALING_E_CONFIG, RAIDA_HEALING_E_DATA, RAIDA_HEALING_E_NO_PAGE, RAIDA_HEALING_OK,
};
use raida_healing::pagefile::{page_path, LOCK_FILE_NAME};
use raida_healing::store::{PageKey, PAGE_DATA_BYTES};

static SERIAL: Mutex<()> = Mutex::new(());

/// A server folder with a valid config.toml and an empty Data/, removed on drop.
struct Folder(PathBuf);

impl Folder {
    fn new(tag: &str) -> Folder {
        let dir = std::env::temp_dir().join(format!(
            "raida_hostile_{tag}_{}_{}",
            std::process::id(),
            raida_healing::random::u32_from_os().expect("OS randomness")
        ));
        std::fs::create_dir_all(dir.join("Data")).unwrap();
        let servers: Vec<String> = (0..25)
            .map(|i| format!("\"127.0.0.1:{}\"", 1 + i))
            .collect();
        std::fs::write(
            dir.join("config.toml"),
            format!("raida_id = 2\nraida_servers = [{}]\n", servers.join(", ")),
        )
        .unwrap();
        Folder(dir)
    }

    fn config(&self) -> PathBuf {
        self.0.join("config.toml")
    }

    fn page(&self, den: i8, page: u32) -> PathBuf {
        let path = page_path(&self.0.join("Data"), PageKey { den, page });
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        path
    }
}

impl Drop for Folder {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn mkfifo(path: &Path) {
    rustix::fs::mknodat(
        rustix::fs::CWD,
        path,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o600),
        0,
    )
    .unwrap();
}

/// Runs `f` on another thread; fails the test (instead of hanging the suite) when it has
/// not finished within a minute.
fn within_a_minute<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(Duration::from_secs(60))
        .unwrap_or_else(|_| panic!("{what} blocked for a minute"))
}

/// `raida_healing_open(dir)` on another thread: the code and last_error.
fn open(dir: &Path) -> (i32, String) {
    let dir = CString::new(dir.as_os_str().as_encoded_bytes()).unwrap();
    within_a_minute("raida_healing_open", move || {
        // SAFETY: a NUL-terminated path; last_error is read on the same thread.
        let code = unsafe { raida_healing_open(dir.as_ptr()) };
        let why = unsafe { CStr::from_ptr(raida_healing_last_error()) };
        (code, why.to_string_lossy().into_owned())
    })
}

/// `raida_healing_read_record` on another thread: the code and last_error.
fn read_record(den: i8, sn: u32) -> (i32, String) {
    within_a_minute("raida_healing_read_record", move || {
        let (mut an, mut mfs) = ([0u8; 16], 0u8);
        // SAFETY: 16 and 1 writable bytes; last_error is read on the same thread.
        let code = unsafe { raida_healing_read_record(den, sn, an.as_mut_ptr(), &mut mfs) };
        let why = unsafe { CStr::from_ptr(raida_healing_last_error()) };
        (code, why.to_string_lossy().into_owned())
    })
}

#[test]
fn a_fifo_config_is_refused_without_blocking() {
    let _turn = SERIAL.lock();
    let folder = Folder::new("cfgfifo");
    std::fs::remove_file(folder.config()).unwrap();
    mkfifo(&folder.config());
    assert_eq!(
        open(&folder.0),
        (
            RAIDA_HEALING_E_CONFIG,
            format!("{}: not a regular file (a FIFO)", folder.config().display())
        )
    );
}

#[test]
fn a_config_linked_to_dev_zero_is_refused_without_reading_it() {
    let _turn = SERIAL.lock();
    let folder = Folder::new("cfgzero");
    std::fs::remove_file(folder.config()).unwrap();
    std::os::unix::fs::symlink("/dev/zero", folder.config()).unwrap();
    assert_eq!(
        open(&folder.0),
        (
            RAIDA_HEALING_E_CONFIG,
            format!(
                "{}: a symbolic link; it is never followed (put the file itself there)",
                folder.config().display()
            )
        )
    );
}

#[test]
fn a_config_over_one_mebibyte_is_refused() {
    let _turn = SERIAL.lock();
    let folder = Folder::new("cfgbig");
    let mut text = std::fs::read(folder.config()).unwrap();
    text.resize(1024 * 1024 + 1, b'\n');
    std::fs::write(folder.config(), text).unwrap();
    assert_eq!(
        open(&folder.0),
        (
            RAIDA_HEALING_E_CONFIG,
            format!(
                "{}: 1048577 bytes; at most 1048576 are read",
                folder.config().display()
            )
        )
    );
}

#[test]
fn a_symlinked_lock_file_is_refused_and_its_target_never_created() {
    let _turn = SERIAL.lock();
    let folder = Folder::new("locklink");
    let target = folder.0.join("root-owned-new-file");
    let lock = folder.0.join("Data").join(LOCK_FILE_NAME);
    std::os::unix::fs::symlink(&target, &lock).unwrap();
    assert_eq!(
        open(&folder.0),
        (
            RAIDA_HEALING_E_DATA,
            format!(
                "{}: a symbolic link below Data/; links there are never followed",
                lock.display()
            )
        )
    );
    assert!(std::fs::symlink_metadata(&target).is_err());
}

#[test]
fn read_record_says_what_is_wrong_with_a_page() {
    let _turn = SERIAL.lock();
    let folder = Folder::new("pages");
    std::fs::write(folder.page(1, 0), [0u8; 100]).unwrap();
    mkfifo(&folder.page(1, 1));
    std::os::unix::fs::symlink("/dev/zero", folder.page(1, 2)).unwrap();
    std::fs::create_dir(folder.page(1, 3)).unwrap();
    std::fs::write(folder.page(1, 4), vec![9u8; PAGE_DATA_BYTES]).unwrap();
    assert_eq!(open(&folder.0), (RAIDA_HEALING_OK, String::new()));
    let no_page = |page: u32, why: &str| {
        (
            RAIDA_HEALING_E_NO_PAGE,
            format!(
                "no page holds denomination 1 serial number {} ({}: {why})",
                page * 1024 + 5,
                folder.page(1, page).display()
            ),
        )
    };
    assert_eq!(
        read_record(1, 5),
        no_page(0, "truncated page file: 100 bytes, a page file has 17408")
    );
    assert_eq!(
        read_record(1, 1024 + 5),
        no_page(1, "not a regular file (a FIFO); it is never opened")
    );
    assert_eq!(
        read_record(1, 2048 + 5),
        no_page(
            2,
            "a symbolic link below Data/; links there are never followed"
        )
    );
    assert_eq!(
        read_record(1, 3 * 1024 + 5),
        no_page(3, "not a regular file (a folder); it is never opened")
    );
    assert_eq!(
        read_record(1, 4 * 1024 + 5),
        (RAIDA_HEALING_OK, String::new())
    );
    raida_healing_close();
}
