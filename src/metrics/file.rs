//! Replacing the metrics file atomically, as node_exporter's textfile collector needs: a
//! reader sees the old file or the new one, never a part.
//!
//! The text goes to a temporary file in the target's own directory, named
//! `.<name>.<pid>.tmp` (a dot name the collector ignores: it reads only `*.prom`),
//! created exclusively without following a link (`O_CREAT|O_EXCL|O_NOFOLLOW`), given
//! mode 0644 whatever the umask (node_exporter runs as another user), then renamed over
//! the target. A temporary file left by a process killed between the two steps is
//! removed by the next write of a process with the same pid, and otherwise ignored.
//!
//! No `fsync`: the file is rewritten every interval and says nothing once the process is
//! gone, so a write that a power cut loses costs nothing, while a sync every 15 s would
//! cost the server's disk.

use std::ffi::OsString;
use std::fs::File;
use std::io::{self, Write as _};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::{self as rfs, AtFlags, Mode, OFlags};
use rustix::io::Errno;

/// Where the metrics go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsFile {
    dir: PathBuf,
    name: OsString,
    tmp_name: OsString,
}

impl MetricsFile {
    /// The file at `path` (its directory must exist when a write happens); `None` when
    /// `path` names no file (empty, or ends in `/`, `.` or `..`).
    pub fn new(path: &Path) -> Option<MetricsFile> {
        let name = path.file_name()?.to_os_string();
        if path.as_os_str().as_bytes().ends_with(b"/") {
            return None;
        }
        let dir = match path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let mut tmp_name = OsString::from(".");
        tmp_name.push(&name);
        tmp_name.push(format!(".{}.tmp", std::process::id()));
        Some(MetricsFile {
            dir,
            name,
            tmp_name,
        })
    }

    /// The target's path.
    pub fn path(&self) -> PathBuf {
        self.dir.join(&self.name)
    }

    /// Replaces the file's contents with `text`, atomically. The error names the step and
    /// the path.
    pub fn write(&self, text: &[u8]) -> io::Result<()> {
        let context = |what: &str, e: io::Error| {
            io::Error::new(e.kind(), format!("{what} {}: {e}", self.path().display()))
        };
        let dir = rfs::open(
            &self.dir,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| {
            io::Error::new(
                io::Error::from(e).kind(),
                format!("cannot open the directory {}: {e}", self.dir.display()),
            )
        })?;
        let tmp = self.tmp_name.as_os_str();
        let create = || {
            rfs::openat(
                &dir,
                tmp,
                OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::from_raw_mode(0o644),
            )
        };
        let fd = match create() {
            // Left by a process of the same pid that died mid-write: ours to remove
            // (unlinkat never follows a link).
            Err(Errno::EXIST) => {
                rfs::unlinkat(&dir, tmp, AtFlags::empty())
                    .map_err(|e| context("cannot remove a stale temporary file for", e.into()))?;
                create()
            }
            other => other,
        }
        .map_err(|e| context("cannot create a temporary file for", e.into()))?;
        let result = (|| {
            rfs::fchmod(&fd, Mode::from_raw_mode(0o644))?;
            let mut file = File::from(fd);
            file.write_all(text)?;
            drop(file);
            rfs::renameat(&dir, tmp, &dir, self.name.as_os_str())?;
            Ok::<(), io::Error>(())
        })();
        if result.is_err() {
            // Ours: created exclusively above.
            let _ = rfs::unlinkat(&dir, tmp, AtFlags::empty());
        }
        result.map_err(|e| context("cannot write", e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "raida_metrics_file_{name}_{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn names() {
        assert_eq!(MetricsFile::new(Path::new("")), None);
        assert_eq!(MetricsFile::new(Path::new("/a/")), None);
        assert_eq!(MetricsFile::new(Path::new("/a/..")), None);
        let f = MetricsFile::new(Path::new("x.prom")).unwrap();
        assert_eq!(f.path(), Path::new("./x.prom"));
        assert_eq!(
            f.tmp_name,
            OsString::from(format!(".x.prom.{}.tmp", std::process::id()))
        );
    }

    #[test]
    fn replaces_the_file_with_mode_0644_and_leaves_no_temporary_file() {
        let dir = scratch("replace");
        let file = MetricsFile::new(&dir.join("r.prom")).unwrap();
        file.write(b"a 1\n").unwrap();
        file.write(b"a 2\n").unwrap();
        assert_eq!(std::fs::read(dir.join("r.prom")).unwrap(), b"a 2\n");
        let mode = std::fs::metadata(dir.join("r.prom")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o644);
        let names: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, vec![OsString::from("r.prom")]);
        // A stale temporary file of this pid (a symlink, even) is removed, not followed.
        let outside = dir.join("outside");
        std::fs::write(&outside, b"keep").unwrap();
        std::os::unix::fs::symlink(&outside, dir.join(&file.tmp_name)).unwrap();
        file.write(b"a 3\n").unwrap();
        assert_eq!(std::fs::read(&outside).unwrap(), b"keep");
        assert_eq!(std::fs::read(dir.join("r.prom")).unwrap(), b"a 3\n");
        assert!(!dir.join(&file.tmp_name).exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_missing_directory_is_an_error_naming_it() {
        let dir = scratch("missing");
        let file = MetricsFile::new(&dir.join("nope/m.prom")).unwrap();
        let err = file.write(b"a 1\n").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        assert!(err.to_string().starts_with(&format!(
            "cannot open the directory {}/nope: ",
            dir.display()
        )), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
