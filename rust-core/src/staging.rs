//! Part files for the platform's transport: each holds exactly one part's
//! bytes, copied from the source file in pooled chunks (no part-sized
//! buffer), in a folder beside the queue database, within a byte budget.

use crate::buffer::BufPool;
use crate::error::{err, ErrorCode};
use crate::hash::file_error;
use crate::transfer::PartFile;
use std::collections::HashSet;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Default byte budget of the staging folder.
pub const DEFAULT_STAGING_BUDGET: u64 = 256 * 1024 * 1024;

/// Why a part could not be staged.
#[derive(Debug)]
pub(crate) enum StageError {
    /// The disk (or quota) is full: wait for staged files to go, or fail.
    NoSpace,
    /// The source file cannot be read as it was added.
    Source(crate::error::Error),
    /// The staging folder cannot be written for another reason.
    Dest(io::Error),
}

pub(crate) struct Staging {
    dir: PathBuf,
    budget: u64,
    used: u64,
    peak: u64,
}

/// The staging folder of a queue database: `<db file name>.staging` beside it.
pub(crate) fn dir_for(db_path: &Path) -> PathBuf {
    let mut name = db_path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_else(|| "queue".into());
    name.push(".staging");
    db_path.with_file_name(name)
}

fn is_no_space(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded | io::ErrorKind::FileTooLarge
    )
}

impl Staging {
    pub(crate) fn new(dir: PathBuf, budget: u64) -> Staging {
        Staging {
            dir,
            budget,
            used: 0,
            peak: 0,
        }
    }

    pub(crate) fn set_budget(&mut self, budget: u64) {
        self.budget = budget;
    }

    pub(crate) fn used(&self) -> u64 {
        self.used
    }

    pub(crate) fn peak(&self) -> u64 {
        self.peak
    }

    pub(crate) fn budget(&self) -> u64 {
        self.budget
    }

    /// Counts a staged file kept from a previous process.
    pub(crate) fn adopt(&mut self, len: u64) {
        self.used += len;
        self.peak = self.peak.max(self.used);
    }

    /// Deletes a staged file and gives its bytes back to the budget.
    pub(crate) fn release(&mut self, path: &Path, len: u64) {
        if let Err(e) = std::fs::remove_file(path) {
            if e.kind() != io::ErrorKind::NotFound {
                tracing::warn!(path = %path.display(), "cannot delete a staged part: {e}");
            }
        }
        self.used = self.used.saturating_sub(len);
    }

    /// Deletes every file in the folder that `keep` does not name (left by
    /// a process that stopped before it could delete them). Returns how many.
    pub(crate) fn clean_stale(&self, keep: &HashSet<PathBuf>) -> usize {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return 0;
        };
        let mut removed = 0;
        for entry in entries.flatten() {
            let path = entry.path();
            if !keep.contains(&path) && std::fs::remove_file(&path).is_ok() {
                removed += 1;
            }
        }
        removed
    }

    /// Copies `len` bytes at `offset` of `src` into a new file `name` in the
    /// folder, flushed to disk, and counts it in the budget. Blocking. On
    /// any error nothing is left behind.
    pub(crate) fn stage(
        &mut self,
        src: &PartFile,
        offset: u64,
        len: u64,
        name: &str,
        pool: &BufPool,
    ) -> Result<PathBuf, StageError> {
        std::fs::create_dir_all(&self.dir).map_err(|e| {
            if is_no_space(&e) {
                StageError::NoSpace
            } else {
                StageError::Dest(e)
            }
        })?;
        let dest = self.dir.join(name);
        match copy_range(src, offset, len, &dest, pool) {
            Ok(()) => {
                self.used += len;
                self.peak = self.peak.max(self.used);
                Ok(dest)
            }
            Err(e) => {
                let _ = std::fs::remove_file(&dest);
                Err(e)
            }
        }
    }
}

fn copy_range(
    src: &PartFile,
    offset: u64,
    len: u64,
    dest: &Path,
    pool: &BufPool,
) -> Result<(), StageError> {
    use std::os::unix::fs::FileExt;
    // For a URI this asks the platform's opener and checks the descriptor.
    let source = src.open().map_err(StageError::Source)?;
    let label = src.label();
    let dest_err = |e: io::Error| {
        if is_no_space(&e) {
            StageError::NoSpace
        } else {
            StageError::Dest(e)
        }
    };
    let mut out = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(dest)
        .map_err(dest_err)?;
    let mut buf = pool.take();
    let mut done = 0u64;
    while done < len {
        let want = (len - done).min(buf.space().len() as u64) as usize;
        let n = match source.read_at(&mut buf.space()[..want], offset + done) {
            Ok(0) => {
                return Err(StageError::Source(err(
                    ErrorCode::FileChanged,
                    format!("{label} is shorter than when it was added"),
                )))
            }
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(StageError::Source(file_error(Path::new(&label), &e))),
        };
        out.write_all(&buf.space()[..n]).map_err(dest_err)?;
        done += n as u64;
    }
    // The platform may read the file after a power loss: it must be whole.
    out.sync_data().map_err(dest_err)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stages_exactly_the_range_within_the_budget_and_cleans_up() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src.bin");
        let data: Vec<u8> = (0..1_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
        std::fs::write(&src, &data).unwrap();
        let pool = BufPool::new(64 * 1024, 2);
        let mut s = Staging::new(dir.path().join("q.db.staging"), 600_000);
        let a = s
            .stage(
                &PartFile::Path(src.clone()),
                100_000,
                300_001,
                "a.part",
                &pool,
            )
            .unwrap();
        assert_eq!(std::fs::read(&a).unwrap(), &data[100_000..400_001]);
        assert_eq!(s.used(), 300_001);
        // A stale file from an earlier process goes, a kept one stays.
        std::fs::write(dir.path().join("q.db.staging/old.part"), b"x").unwrap();
        let keep: HashSet<PathBuf> = [a.clone()].into();
        assert_eq!(s.clean_stale(&keep), 1);
        assert!(a.exists());
        s.release(&a, 300_001);
        assert!(!a.exists());
        assert_eq!((s.used(), s.peak()), (0, 300_001));
    }

    #[test]
    fn a_short_source_and_a_full_disk_are_typed_and_leave_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src.bin");
        std::fs::write(&src, vec![1u8; 1000]).unwrap();
        let pool = BufPool::new(4096, 1);
        let mut s = Staging::new(dir.path().join("st"), 1 << 20);
        match s.stage(&PartFile::Path(src.clone()), 500, 600, "short.part", &pool) {
            Err(StageError::Source(e)) => assert_eq!(e.code(), ErrorCode::FileChanged),
            other => panic!("expected a source error, got {other:?}"),
        }
        assert!(!dir.path().join("st/short.part").exists());
        // /dev/full answers every write with ENOSPC.
        std::os::unix::fs::symlink("/dev/full", dir.path().join("st/full.part")).unwrap();
        assert!(matches!(
            s.stage(&PartFile::Path(src.clone()), 0, 1000, "full.part", &pool),
            Err(StageError::NoSpace)
        ));
        assert_eq!(s.used(), 0);
    }
}
