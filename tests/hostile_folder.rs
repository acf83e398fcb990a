//! A server folder that another account can write, opened as an ops script would
//! (`raida_healing_open`): a config.toml or page file that is a FIFO, a link to
//! `/dev/zero` or too large is refused without blocking or reading it, a lock file that is
//! a link is refused and its target never created, and last_error says what is wrong.
//!
//! The opened folder is process-wide, so the tests here take turns (`serial`).

use std::ffi::{CStr, CString};
use std::path::Path;

use kit::blocking::{mkfifo, within_a_minute};
use kit::folder::Folder;
use kit::serial;
use raida_healing::ffi::error::{
    RAIDA_HEALING_E_CONFIG, RAIDA_HEALING_E_DATA, RAIDA_HEALING_E_NO_PAGE, RAIDA_HEALING_OK,
};
use raida_healing::ffi::standalone::{
    raida_healing_close, raida_healing_last_error, raida_healing_open, raida_healing_read_record,
};
use raida_healing::pagefile::LOCK_FILE_NAME;
use raida_healing::store::PAGE_DATA_BYTES;

/// `raida_healing_open(dir)` on another thread: the code and last_error.
fn open(dir: &Path) -> (i32, String) {
    let dir = CString::new(dir.as_os_str().as_encoded_bytes()).unwrap();
    within_a_minute("raida_healing_open", move || {
        // SAFETY: a NUL-terminated path; last_error is read on the same thread.
        let code = unsafe { raida_healing_open(dir.as_ptr()) };
        // SAFETY: last_error is never NULL and stays valid until this thread's next call.
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
        // SAFETY: last_error is never NULL and stays valid until this thread's next call.
        let why = unsafe { CStr::from_ptr(raida_healing_last_error()) };
        (code, why.to_string_lossy().into_owned())
    })
}

/// Opening `folder` fails with E_CONFIG, last_error naming its config.toml and `why`.
fn assert_config_refused(folder: &Folder, why: &str) {
    assert_eq!(
        open(&folder.0),
        (
            RAIDA_HEALING_E_CONFIG,
            format!("{}: {why}", folder.config().display())
        )
    );
}

#[test]
fn a_fifo_config_is_refused_without_blocking() {
    let _turn = serial();
    let folder = Folder::new("cfgfifo", 2);
    std::fs::remove_file(folder.config()).unwrap();
    mkfifo(&folder.config());
    assert_config_refused(&folder, "not a regular file (a FIFO)");
}

#[test]
fn a_config_linked_to_dev_zero_is_refused_without_reading_it() {
    let _turn = serial();
    let folder = Folder::new("cfgzero", 2);
    std::fs::remove_file(folder.config()).unwrap();
    std::os::unix::fs::symlink("/dev/zero", folder.config()).unwrap();
    assert_config_refused(
        &folder,
        "a symbolic link; it is never followed (put the file itself there)",
    );
}

#[test]
fn a_config_over_one_mebibyte_is_refused() {
    let _turn = serial();
    let folder = Folder::new("cfgbig", 2);
    let mut text = std::fs::read(folder.config()).unwrap();
    text.resize(1024 * 1024 + 1, b'\n');
    std::fs::write(folder.config(), text).unwrap();
    assert_config_refused(&folder, "1048577 bytes; at most 1048576 are read");
}

#[test]
fn a_symlinked_lock_file_is_refused_and_its_target_never_created() {
    let _turn = serial();
    let folder = Folder::new("locklink", 2);
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
    let _turn = serial();
    let folder = Folder::new("pages", 2);
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
