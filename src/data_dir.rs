//! A server's `Data/` folder, opened so that nothing below it can redirect or stall us.
//!
//! Ops scripts run as root over folders that other accounts can write. So every file
//! below `Data/` is reached one component at a time from an open descriptor of `Data/`,
//! each with `O_NOFOLLOW` (a symbolic link anywhere below `Data/` is refused, never
//! followed), `O_NONBLOCK` (a FIFO cannot stall an open) and `O_CLOEXEC`, and is used only
//! when the open descriptor is a regular file (`fstat`). A page is read with a bound of
//! exactly [`PAGE_DATA_BYTES`]. The folder the operator names and `Data` itself may be
//! symbolic links (data on another disk): only they are followed, once, at
//! [`DataDir::open`].
//!
//! This module is the one definition of a valid page file: the store reads pages with
//! [`DataDir::read_page`], and an audit of a `Data/` tree checks them with
//! [`DataDir::check_page_at`], so both always agree on what [`PageProblem`] a file has.

use std::fmt;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use rustix::fs::{self as rfs, AtFlags, FileType, Mode, OFlags};
use rustix::io::Errno;

use crate::store::{PageKey, PAGE_DATA_BYTES};

/// What is wrong with a page file; `Display` says it in words for logs and last_error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PageProblem {
    /// No such file (or a folder on its path is missing): the page does not exist.
    Missing,
    /// Shorter than [`PAGE_DATA_BYTES`] (empty included).
    Truncated { len: u64 },
    /// Longer than [`PAGE_DATA_BYTES`].
    Oversized { len: u64 },
    /// The file, or a folder on its path below `Data/`, is of the wrong kind: `kind`
    /// names what it is ("a FIFO", "a folder", "a character device", "a file where a
    /// folder belongs", ...).
    NotRegular { kind: &'static str },
    /// The file, or a folder on its path below `Data/`, is a symbolic link; it is never
    /// followed.
    Symlink,
    /// The file could not be opened or read; the text is the system's reason.
    Unreadable(String),
}

impl fmt::Display for PageProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PageProblem::Missing => write!(f, "no such page file"),
            PageProblem::Truncated { len } => write!(
                f,
                "truncated page file: {len} bytes, a page file has {PAGE_DATA_BYTES}"
            ),
            PageProblem::Oversized { len } => write!(
                f,
                "oversized page file: {len} bytes, a page file has {PAGE_DATA_BYTES}"
            ),
            PageProblem::NotRegular { kind } => {
                write!(f, "not a regular file ({kind}); it is never opened")
            }
            PageProblem::Symlink => write!(
                f,
                "a symbolic link below Data/; links there are never followed"
            ),
            PageProblem::Unreadable(why) => write!(f, "unreadable page file: {why}"),
        }
    }
}

impl std::error::Error for PageProblem {}

/// The path of page `key` relative to `Data/`: `<den>/<page >> 8>/<page>.bin` in
/// lowercase hex, e.g. `01/01/012c.bin` for page 300 of denomination 1.
pub fn page_relative_path(key: PageKey) -> PathBuf {
    PathBuf::from(format!(
        "{:02x}/{:02x}/{:04x}.bin",
        key.den as u8,
        key.page >> 8,
        key.page
    ))
}

/// Flags for every open below `Data/`.
fn below_data_flags() -> OFlags {
    OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC | OFlags::NOCTTY
}

/// What kind of file a mode says, in words, for [`PageProblem::NotRegular`].
fn kind_of(file_type: FileType) -> &'static str {
    match file_type {
        FileType::RegularFile => "a regular file",
        FileType::Directory => "a folder",
        FileType::Symlink => "a symbolic link",
        FileType::Fifo => "a FIFO",
        FileType::Socket => "a socket",
        FileType::CharacterDevice => "a character device",
        FileType::BlockDevice => "a block device",
        _ => "an unknown kind of file",
    }
}

/// The problem an open of `name` in `dir` failed with: ENOENT is a missing page, ELOOP a
/// link; anything else is looked at without following (a link or the wrong kind of file
/// wins over the bare error text).
fn problem_of(dir: impl AsFd, name: &Path, err: Errno) -> PageProblem {
    match err {
        Errno::NOENT => PageProblem::Missing,
        Errno::LOOP => PageProblem::Symlink,
        _ => match rfs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => match FileType::from_raw_mode(st.st_mode) {
                FileType::Symlink => PageProblem::Symlink,
                FileType::RegularFile if err == Errno::NOTDIR => PageProblem::NotRegular {
                    kind: "a file where a folder belongs",
                },
                kind if err == Errno::NOTDIR => PageProblem::NotRegular {
                    kind: kind_of(kind),
                },
                _ => PageProblem::Unreadable(io::Error::from(err).to_string()),
            },
            Err(_) => PageProblem::Unreadable(io::Error::from(err).to_string()),
        },
    }
}

/// The problem as an I/O error, for callers that report `io::Error`s.
fn problem_to_io(problem: PageProblem) -> io::Error {
    let kind = match problem {
        PageProblem::Missing => io::ErrorKind::NotFound,
        _ => io::ErrorKind::InvalidData,
    };
    io::Error::new(kind, problem.to_string())
}

/// An open `Data/` folder: the root below which no link is followed.
///
/// Holds one descriptor for its life; every operation opens at most three more (two
/// folders and a file) and closes them before it returns.
#[derive(Debug)]
pub struct DataDir {
    fd: OwnedFd,
    path: PathBuf,
}

impl DataDir {
    /// Opens the folder `path` (normally `<server folder>/Data`). `path` itself may be,
    /// or pass through, symbolic links: that is the operator's choice. Fails with
    /// `NotFound` / `NotADirectory` when it is missing or not a folder.
    pub fn open(path: &Path) -> io::Result<DataDir> {
        let fd = rfs::open(
            path,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC | OFlags::NONBLOCK,
            Mode::empty(),
        )?;
        Ok(DataDir {
            fd,
            path: path.to_path_buf(),
        })
    }

    /// The path the folder was opened by (for messages).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads page `key`: exactly [`PAGE_DATA_BYTES`] from a regular file reached without
    /// following any link below `Data/`, or the [`PageProblem`] that file has.
    pub fn read_page(&self, key: PageKey) -> Result<Box<[u8; PAGE_DATA_BYTES]>, PageProblem> {
        self.read_page_at(&page_relative_path(key))
    }

    /// [`DataDir::read_page`] for any file below `Data/`, named by its path relative to
    /// `Data/` (only plain names: no `..`, no absolute path). What an audit of a `Data/`
    /// tree calls for each file it finds.
    pub fn read_page_at(&self, relative: &Path) -> Result<Box<[u8; PAGE_DATA_BYTES]>, PageProblem> {
        let (folder, name) = self.open_parent(relative)?;
        // Look before opening, so a device node found here is never opened (some have side
        // effects on open); the descriptor is checked again after, against one swapped in
        // between the look and the open (opened without blocking, then refused).
        let st = rfs::statat(&folder, name, AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|e| problem_of(&folder, name, e))?;
        let kind = FileType::from_raw_mode(st.st_mode);
        if kind != FileType::RegularFile {
            return Err(match kind {
                FileType::Symlink => PageProblem::Symlink,
                _ => PageProblem::NotRegular {
                    kind: kind_of(kind),
                },
            });
        }
        let fd = rfs::openat(
            &folder,
            name,
            OFlags::RDONLY | below_data_flags(),
            Mode::empty(),
        )
        .map_err(|e| problem_of(&folder, name, e))?;
        let file = regular_file(fd).map_err(|e| match e {
            RegularError::Kind(kind) => PageProblem::NotRegular { kind },
            RegularError::Io(e) => PageProblem::Unreadable(e.to_string()),
        })?;
        read_exact_page(file)
    }

    /// Checks page `key` as [`DataDir::read_page`] would read it.
    pub fn check_page(&self, key: PageKey) -> Result<(), PageProblem> {
        self.read_page(key).map(drop)
    }

    /// Checks the file at `relative` (below `Data/`) as a page, reading it whole with the
    /// same rules as the store.
    pub fn check_page_at(&self, relative: &Path) -> Result<(), PageProblem> {
        self.read_page_at(relative).map(drop)
    }

    /// Opens (creating it if missing, mode 0644) the file `name` directly in `Data/` for
    /// reading and writing: refused if it is a symbolic link or not a regular file. For
    /// the store's lock file. A file this call creates as root in a `Data/` that another
    /// account owns is given to that account, so root never leaves a file of its own there.
    pub fn open_plain_file(&self, name: &str) -> io::Result<File> {
        let refused = |e: Errno| match problem_of(&self.fd, Path::new(name), e) {
            // Not a page: say what the file is for rather than "unreadable page file".
            PageProblem::Unreadable(why) => io::Error::new(
                io::Error::from(e).kind(),
                format!("cannot create or open the folder lock file: {why}"),
            ),
            problem => problem_to_io(problem),
        };
        // Open it as it is; only when it is missing, create it (exclusively, so this call
        // knows the file is its own), and look again if someone else created it meanwhile.
        let mut created = false;
        let mut opened = rfs::openat(&self.fd, name, OFlags::RDWR | below_data_flags(), Mode::empty());
        for _ in 0..3 {
            if !matches!(opened, Err(Errno::NOENT)) {
                break;
            }
            opened = rfs::openat(
                &self.fd,
                name,
                OFlags::RDWR | OFlags::CREATE | OFlags::EXCL | below_data_flags(),
                Mode::from_raw_mode(0o644),
            );
            created = opened.is_ok();
            if matches!(opened, Err(Errno::EXIST)) {
                opened = rfs::openat(&self.fd, name, OFlags::RDWR | below_data_flags(), Mode::empty());
            }
        }
        let fd = opened.map_err(refused)?;
        let file = regular_file(fd).map_err(|e| match e {
            RegularError::Kind(kind) => problem_to_io(PageProblem::NotRegular { kind }),
            RegularError::Io(e) => e,
        })?;
        if created {
            if let Err(e) = self.give_to_folder_owner(&file) {
                let _ = rfs::unlinkat(&self.fd, name, AtFlags::empty());
                return Err(io::Error::new(
                    e.kind(),
                    format!("cannot give the new folder lock file to Data/'s owner: {e}"),
                ));
            }
        }
        Ok(file)
    }

    /// Gives `file` (just created by this process in `Data/`) to `Data/`'s owner when this
    /// process runs as root and `Data/` belongs to another account.
    fn give_to_folder_owner(&self, file: &File) -> io::Result<()> {
        if !rustix::process::geteuid().is_root() {
            return Ok(());
        }
        let folder = rfs::fstat(&self.fd)?;
        if folder.st_uid == 0 {
            return Ok(());
        }
        std::os::unix::fs::fchown(file, Some(folder.st_uid), Some(folder.st_gid))
    }

    /// Replaces page `key` (which exists as a regular file) with `data` so that a crash at
    /// any moment leaves either the old file or the new one: the data goes to
    /// `<page>.bin.tmp` in the same folder, created exclusively (a stale or planted entry
    /// of that name is removed first, and the create fails rather than reuse one that
    /// reappears), fsynced, renamed over the page, and the folder fsynced.
    ///
    /// **The page keeps its owner.** The new file gets the old page's owner and permission
    /// bits (taken only from a regular file) before any data goes into it. When that
    /// cannot hold, nothing is written and the error says why: the page is no longer in
    /// the folder reached now (a folder on its path was renamed or replaced meanwhile, so
    /// there is no owner to keep), the owner cannot be given to the new file, or the page
    /// belongs to root in a folder another account controls (owned by it, or writable by
    /// group or others). So a process running as root never leaves a file of root's in a
    /// folder another account controls, whatever is renamed while it runs.
    pub(crate) fn replace_page(&self, key: PageKey, data: &[u8]) -> io::Result<()> {
        let relative = page_relative_path(key);
        #[cfg(feature = "testing")]
        crate::testing::hooks::before_page_replace(&relative);
        let (folder, name) = self.open_parent(&relative).map_err(problem_to_io)?;
        let mut tmp_name = name.as_os_str().to_os_string();
        tmp_name.push(".tmp");
        let tmp_name = Path::new(&tmp_name);
        let old = rfs::statat(&folder, name, AtFlags::SYMLINK_NOFOLLOW)
            .ok()
            .filter(|st| FileType::from_raw_mode(st.st_mode) == FileType::RegularFile)
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::NotFound,
                    "the page file is no longer in its folder (a folder on its path was \
                     renamed or replaced meanwhile); nothing written, so no file without \
                     the page's owner is left there",
                )
            })?;
        if old.st_uid == 0 && rustix::process::geteuid().is_root() {
            let dir = rfs::fstat(&folder)?;
            if dir.st_uid != 0 || dir.st_mode & 0o022 != 0 {
                return Err(io::Error::new(
                    io::ErrorKind::PermissionDenied,
                    format!(
                        "the page file belongs to root in a folder another account controls \
                         (owner uid {}, mode {:o}); not rewritten as root",
                        dir.st_uid,
                        dir.st_mode & 0o7777
                    ),
                ));
            }
        }
        match rfs::unlinkat(&folder, tmp_name, AtFlags::empty()) {
            Ok(()) | Err(Errno::NOENT) => {}
            Err(e) => {
                return Err(io::Error::new(
                    io::Error::from(e).kind(),
                    format!("cannot remove {}: {e}", tmp_name.display()),
                ))
            }
        }
        let fd = rfs::openat(
            &folder,
            tmp_name,
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | below_data_flags(),
            Mode::from_raw_mode(0o600),
        )?;
        let result = (|| {
            let mut file = File::from(fd);
            keep_owner_and_mode(&relative, &file, old.st_uid, old.st_gid, old.st_mode)?;
            file.write_all(data)?;
            file.sync_all()?;
            drop(file);
            rfs::renameat(&folder, tmp_name, &folder, name)?;
            rfs::fsync(&folder).map_err(io::Error::from)
        })();
        if result.is_err() {
            // Ours: created exclusively above.
            let _ = rfs::unlinkat(&folder, tmp_name, AtFlags::empty());
        }
        result
    }

    /// Opens the folder holding `relative` (each component without following links) and
    /// returns it with the file's name.
    fn open_parent<'p>(&self, relative: &'p Path) -> Result<(OwnedFd, &'p Path), PageProblem> {
        let mut names = Vec::new();
        for component in relative.components() {
            match component {
                Component::Normal(name) => names.push(Path::new(name)),
                _ => {
                    return Err(PageProblem::Unreadable(format!(
                        "{} is not a plain path below Data/",
                        relative.display()
                    )))
                }
            }
        }
        let Some((name, folders)) = names.split_last() else {
            return Err(PageProblem::Unreadable("empty path".to_string()));
        };
        let mut folder: Option<OwnedFd> = None;
        for part in folders {
            let at = folder.as_ref().map_or(self.fd.as_fd(), |f| f.as_fd());
            let next = rfs::openat(
                at,
                *part,
                OFlags::RDONLY | OFlags::DIRECTORY | below_data_flags(),
                Mode::empty(),
            )
            .map_err(|e| problem_of(at, part, e))?;
            folder = Some(next);
        }
        let folder = match folder {
            Some(folder) => folder,
            None => self
                .fd
                .try_clone()
                .map_err(|e| PageProblem::Unreadable(e.to_string()))?,
        };
        Ok((folder, name))
    }
}

/// Reads the small regular file at `path` (such as `config.toml`), at most `limit`
/// bytes: refused, without blocking and without being read, when `path` is a symbolic
/// link, a FIFO, a device or anything but a regular file, or is longer than `limit`.
/// Folders on the way to it may be links (the operator's folder); the file itself not.
pub(crate) fn read_small_file(path: &Path, limit: u64) -> io::Result<Vec<u8>> {
    let refuse = |what: String| io::Error::new(io::ErrorKind::InvalidData, what);
    let st = rfs::lstat(path)?;
    match FileType::from_raw_mode(st.st_mode) {
        FileType::RegularFile => {}
        FileType::Symlink => {
            return Err(refuse(
                "a symbolic link; it is never followed (put the file itself there)".into(),
            ))
        }
        other => return Err(refuse(format!("not a regular file ({})", kind_of(other)))),
    }
    let fd = rfs::open(path, OFlags::RDONLY | below_data_flags(), Mode::empty())?;
    let file = regular_file(fd).map_err(|e| match e {
        RegularError::Kind(kind) => refuse(format!("not a regular file ({kind})")),
        RegularError::Io(e) => e,
    })?;
    let too_big = |len: u64| refuse(format!("{len} bytes; at most {limit} are read"));
    let size = file.metadata()?.len();
    if size > limit {
        return Err(too_big(size));
    }
    let mut bytes = Vec::with_capacity(size as usize);
    file.take(limit + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(too_big(bytes.len() as u64));
    }
    Ok(bytes)
}

/// Why an open descriptor was refused.
enum RegularError {
    Kind(&'static str),
    Io(io::Error),
}

/// The descriptor as a `File` if `fstat` says it is a regular file.
fn regular_file(fd: OwnedFd) -> Result<File, RegularError> {
    let st = rfs::fstat(&fd).map_err(|e| RegularError::Io(e.into()))?;
    match FileType::from_raw_mode(st.st_mode) {
        FileType::RegularFile => Ok(File::from(fd)),
        other => Err(RegularError::Kind(kind_of(other))),
    }
}

/// Reads exactly one page from `file`, never more than one byte past it.
fn read_exact_page(file: File) -> Result<Box<[u8; PAGE_DATA_BYTES]>, PageProblem> {
    let unreadable = |e: io::Error| PageProblem::Unreadable(e.to_string());
    let size = file.metadata().map_err(unreadable)?.len();
    if size < PAGE_DATA_BYTES as u64 {
        return Err(PageProblem::Truncated { len: size });
    }
    if size > PAGE_DATA_BYTES as u64 {
        return Err(PageProblem::Oversized { len: size });
    }
    let mut page: Box<[u8; PAGE_DATA_BYTES]> = vec![0u8; PAGE_DATA_BYTES]
        .into_boxed_slice()
        .try_into()
        .expect("PAGE_DATA_BYTES long");
    let mut limited = file.take(PAGE_DATA_BYTES as u64 + 1);
    let mut got = 0;
    while got < PAGE_DATA_BYTES {
        match limited.read(&mut page[got..]) {
            Ok(0) => return Err(PageProblem::Truncated { len: got as u64 }),
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(unreadable(e)),
        }
    }
    // The file grew since fstat: not a page any more.
    let mut extra = [0u8; 1];
    match limited.read(&mut extra) {
        Ok(0) => Ok(page),
        Ok(_) => Err(PageProblem::Oversized {
            len: PAGE_DATA_BYTES as u64 + 1,
        }),
        Err(e) => Err(unreadable(e)),
    }
}

/// Gives the replacement file the old page's owner and permission bits, so a server
/// running as another user can still read and write its page after an ops script run as
/// root fixed it. Owner first: a chown clears set-id bits, and only the 0o777 bits are
/// copied anyway. An owner that cannot be kept is an error (the page is not replaced); a
/// mode that cannot be kept is logged.
fn keep_owner_and_mode(page: &Path, new: &File, uid: u32, gid: u32, mode: u32) -> io::Result<()> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let same_owner = new
        .metadata()
        .is_ok_and(|m| m.uid() == uid && m.gid() == gid);
    if !same_owner {
        std::os::unix::fs::fchown(new, Some(uid), Some(gid)).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot keep the page's owner {uid}:{gid} ({e}); nothing written"),
            )
        })?;
    }
    if let Err(e) = new.set_permissions(std::fs::Permissions::from_mode(mode & 0o777)) {
        crate::log::warning(&format!(
            "Data/{}: could not keep its mode: {e}",
            page.display()
        ));
    }
    Ok(())
}
