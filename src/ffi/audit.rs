//! Page checks for ops tools auditing a stopped server's `Data/` tree: the store's own
//! definition of a valid page ([`crate::data_dir::DataDir::check_page`]) through C, so a
//! tool never restates it.

use std::ffi::{c_char, c_int, CStr, OsStr};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use crate::audit::{self, PAGE_COUNT};
use crate::data_dir::DataDir;

use super::entry::enter;
use super::error::{
    caller_buffer, clear_last_error, int_result, message_buffer, write_err,
    RAIDA_HEALING_E_ARGUMENT, RAIDA_HEALING_E_DATA, RAIDA_HEALING_OK,
};

/// `raida_healing_check_page`: no file holds the page (or a folder on its path is missing).
pub const RAIDA_HEALING_PAGE_MISSING: c_int = 1;
/// `raida_healing_check_page`: the file is shorter than a page (17,408 bytes).
pub const RAIDA_HEALING_PAGE_TRUNCATED: c_int = 2;
/// `raida_healing_check_page`: the file is longer than a page (17,408 bytes).
pub const RAIDA_HEALING_PAGE_OVERSIZED: c_int = 3;
/// `raida_healing_check_page`: the file, or a folder on its path, is of the wrong kind (a
/// FIFO, a device, a folder where the file belongs, ...); it is never opened.
pub const RAIDA_HEALING_PAGE_NOT_REGULAR: c_int = 4;
/// `raida_healing_check_page`: the file, or a folder on its path below `Data/`, is a
/// symbolic link; it is never followed.
pub const RAIDA_HEALING_PAGE_SYMLINK: c_int = 5;
/// `raida_healing_check_page`: the file could not be opened or read (permissions, I/O).
pub const RAIDA_HEALING_PAGE_UNREADABLE: c_int = 6;

/// The number of pages a full server folder has (15 denominations x 1000 pages = 15000):
/// `raida_healing_check_page` takes an index below it. 0 if the library failed (a bug).
#[no_mangle]
pub extern "C" fn raida_healing_page_count() -> libc::size_t {
    enter("raida_healing_page_count", || PAGE_COUNT)
}

/// Checks page number `index` (0 .. `raida_healing_page_count()` - 1, in denomination then
/// page order) of the stopped server folder `dir` (which holds `Data/`) exactly as the
/// store reads pages: without following a symbolic link anywhere below `Data/`, without
/// blocking on a FIFO or device, and reading the whole file (at most one page) so an
/// unreadable file is found. Opens no folder lock and changes nothing; safe to call while
/// another process has the folder open.
///
/// `path_out` (if not NULL) receives the page's path relative to `Data/`, e.g.
/// `"01/01/012c.bin"`, and `why` (if not NULL) a one-line description of the problem
/// (empty for a valid page); both NUL-terminated, cut to their lengths.
///
/// # Returns
/// `RAIDA_HEALING_OK` (0) for a valid page; a positive `RAIDA_HEALING_PAGE_*` problem
/// (`MISSING`, `TRUNCATED`, `OVERSIZED`, `NOT_REGULAR`, `SYMLINK`, `UNREADABLE`); or a
/// negative code: `RAIDA_HEALING_E_ARGUMENT` (NULL `dir`, `index` out of range),
/// `RAIDA_HEALING_E_DATA` (`dir/Data` cannot be opened as a folder; `why` says why),
/// `RAIDA_HEALING_E_INTERNAL`. A negative code's message is also this thread's
/// `raida_healing_last_error()`; a check that ran (0 or a problem) empties it.
///
/// # Safety
/// `dir` is NULL or a NUL-terminated path; `path_out` is NULL or points to `path_len`
/// writable bytes; `why` is NULL or points to `why_len` writable bytes; the buffers do not
/// overlap.
#[no_mangle]
pub unsafe extern "C" fn raida_healing_check_page(
    dir: *const c_char,
    index: libc::size_t,
    path_out: *mut c_char,
    path_len: libc::size_t,
    why: *mut c_char,
    why_len: libc::size_t,
) -> c_int {
    const NAME: &str = "raida_healing_check_page";
    enter(NAME, || {
        // SAFETY: NULL or `path_len` writable bytes, not overlapping `why` (contract).
        let path_out = unsafe { caller_buffer(path_out, path_len) };
        // SAFETY: NULL or `why_len` writable bytes, not overlapping `path_out` (contract).
        let why = unsafe { message_buffer(why, why_len, NAME) };
        write_err(path_out, "");
        let checked = if dir.is_null() {
            Err((RAIDA_HEALING_E_ARGUMENT, "dir is NULL".to_string()))
        } else {
            // SAFETY: not NULL, NUL-terminated by the caller's contract; only read.
            let dir = unsafe { CStr::from_ptr(dir) };
            check(
                Path::new(OsStr::from_bytes(dir.to_bytes())),
                index,
                path_out,
            )
        };
        match checked {
            // A valid page (0) or a page problem (positive): the check itself succeeded.
            Ok((code, message)) => {
                write_err(why, &message);
                clear_last_error();
                code
            }
            Err((code, message)) => {
                write_err(why, &message);
                int_result(NAME, Err((code, message)))
            }
        }
    })
}

/// The safe core of `raida_healing_check_page`: `Ok` with 0 or the page's problem number
/// and its description; `Err` with a negative code when the page cannot be checked.
fn check(
    dir: &Path,
    index: libc::size_t,
    path_out: &mut [u8],
) -> Result<(c_int, String), (c_int, String)> {
    let data_path = dir.join("Data");
    let data = DataDir::open(&data_path).map_err(|e| {
        (
            RAIDA_HEALING_E_DATA,
            format!("{}: cannot open the folder: {e}", data_path.display()),
        )
    })?;
    let (relative, checked) = audit::check_page(&data, index).ok_or_else(|| {
        (
            RAIDA_HEALING_E_ARGUMENT,
            format!("page index {index} is not below {PAGE_COUNT}"),
        )
    })?;
    write_err(path_out, &relative.to_string_lossy());
    Ok(match checked {
        Ok(()) => (RAIDA_HEALING_OK, String::new()),
        Err(problem) => (
            c_int::from(audit::problem_number(&problem)),
            problem.to_string(),
        ),
    })
}

#[cfg(test)]
mod tests {
    use crate::audit::problem_number;
    use crate::data_dir::PageProblem;

    #[test]
    fn problem_numbers_match_the_exported_codes() {
        use super::*;
        let pairs = [
            (PageProblem::Missing, RAIDA_HEALING_PAGE_MISSING),
            (
                PageProblem::Truncated { len: 1 },
                RAIDA_HEALING_PAGE_TRUNCATED,
            ),
            (
                PageProblem::Oversized { len: 1 },
                RAIDA_HEALING_PAGE_OVERSIZED,
            ),
            (
                PageProblem::NotRegular { kind: "a FIFO" },
                RAIDA_HEALING_PAGE_NOT_REGULAR,
            ),
            (PageProblem::Symlink, RAIDA_HEALING_PAGE_SYMLINK),
            (
                PageProblem::Unreadable(String::new()),
                RAIDA_HEALING_PAGE_UNREADABLE,
            ),
        ];
        for (problem, code) in pairs {
            assert_eq!(c_int::from(problem_number(&problem)), code, "{problem:?}");
        }
    }
}
