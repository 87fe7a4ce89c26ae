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
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

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
    /// Opening the source, or copying it, made no progress for the stall
    /// timeout (an opener that does not answer): a failed attempt.
    Stalled(String),
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

    /// The folder staged files are written to.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// Takes `len` bytes of the budget for a staging under way (given back
    /// with [`Staging::unreserve`] when it ends, and counted again with
    /// [`Staging::adopt`] if its file is kept).
    pub(crate) fn reserve(&mut self, len: u64) {
        self.adopt(len);
    }

    pub(crate) fn unreserve(&mut self, len: u64) {
        self.used = self.used.saturating_sub(len);
    }
}

/// A staged part file that deletes itself unless it is kept: a staging
/// whose result nobody takes any more (timed out, its upload paused or
/// gone, dropped with its task) leaves nothing behind.
#[derive(Debug)]
pub(crate) struct StagedFile {
    path: PathBuf,
    kept: bool,
}

impl StagedFile {
    #[cfg(test)]
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The file stays; whoever keeps it deletes it.
    pub(crate) fn keep(mut self) -> PathBuf {
        self.kept = true;
        std::mem::take(&mut self.path)
    }
}

impl Drop for StagedFile {
    fn drop(&mut self) {
        if !self.kept {
            if let Err(e) = std::fs::remove_file(&self.path) {
                if e.kind() != io::ErrorKind::NotFound {
                    tracing::warn!(path = %self.path.display(), "cannot delete a staged part: {e}");
                }
            }
        }
    }
}

/// One part to stage.
pub(crate) struct StageJob {
    pub dir: PathBuf,
    pub src: Arc<PartFile>,
    pub offset: u64,
    pub len: u64,
    /// The file's name in the folder.
    pub name: String,
    pub pool: BufPool,
    /// Opening the source, and then each chunk copied, may take this long.
    pub stall_timeout: Duration,
}

/// Stages one part on a blocking thread, off the caller's task: opens the
/// source (for a URI through the platform's opener, one of the engine's
/// opener calls), copies the range and flushes it to disk. Gives up with
/// [`StageError::Stalled`] when the opening, or then the copy, makes no
/// progress for the stall timeout; the thread left behind deletes its file
/// when it ends.
pub(crate) async fn stage_part(job: StageJob) -> Result<StagedFile, StageError> {
    let StageJob {
        dir,
        src,
        offset,
        len,
        name,
        pool,
        stall_timeout,
    } = job;
    let label = src.label();
    // 0 until the source is open, then 1 + the bytes copied.
    let progress = Arc::new(AtomicU64::new(0));
    let counter = progress.clone();
    let copy_label = label.clone();
    let work = crate::transfer::with_open_file(src, move |source| {
        counter.store(1, Ordering::Relaxed);
        write_part(
            &dir,
            &source,
            &copy_label,
            offset,
            len,
            &name,
            &pool,
            &counter,
        )
    });
    let ms = stall_timeout.as_millis();
    match crate::transfer::watchdog(work, &progress, move || stall_timeout).await {
        Some(Ok(staged)) => staged,
        Some(Err(e)) => Err(StageError::Source(e)),
        None if progress.load(Ordering::Relaxed) == 0 => Err(StageError::Stalled(format!(
            "opening {label} to stage a part took longer than {ms} ms"
        ))),
        None => Err(StageError::Stalled(format!(
            "staging a part of {label} stalled (nothing copied for {ms} ms)"
        ))),
    }
}

fn dest_error(e: io::Error) -> StageError {
    if is_no_space(&e) {
        StageError::NoSpace
    } else {
        StageError::Dest(e)
    }
}

/// Copies `len` bytes at `offset` of `source` into a new file `name` in
/// `dir`, flushed to disk, counting the bytes in `progress`. Blocking. On
/// any error nothing is left behind.
#[allow(clippy::too_many_arguments)]
pub(crate) fn write_part(
    dir: &Path,
    source: &std::fs::File,
    label: &str,
    offset: u64,
    len: u64,
    name: &str,
    pool: &BufPool,
    progress: &AtomicU64,
) -> Result<StagedFile, StageError> {
    use std::os::unix::fs::FileExt;
    std::fs::create_dir_all(dir).map_err(dest_error)?;
    let dest = dir.join(name);
    let mut out = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&dest)
        .map_err(dest_error)?;
    // From here on an error (or a panic) deletes the file.
    let staged = StagedFile {
        path: dest,
        kept: false,
    };
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
            Err(e) => return Err(StageError::Source(file_error(Path::new(label), &e))),
        };
        out.write_all(&buf.space()[..n]).map_err(dest_error)?;
        done += n as u64;
        progress.fetch_add(n as u64, Ordering::Relaxed);
    }
    // The platform may read the file after a power loss: it must be whole.
    out.sync_data().map_err(dest_error)?;
    Ok(staged)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(
        dir: &Path,
        src: &Path,
        offset: u64,
        len: u64,
        name: &str,
        pool: &BufPool,
    ) -> Result<StagedFile, StageError> {
        let source = std::fs::File::open(src).unwrap();
        let label = src.display().to_string();
        write_part(
            dir,
            &source,
            &label,
            offset,
            len,
            name,
            pool,
            &AtomicU64::new(0),
        )
    }

    #[test]
    fn stages_exactly_the_range_within_the_budget_and_cleans_up() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src.bin");
        let data: Vec<u8> = (0..1_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
        std::fs::write(&src, &data).unwrap();
        let pool = BufPool::new(64 * 1024, 2);
        let mut s = Staging::new(dir.path().join("q.db.staging"), 600_000);
        s.reserve(300_001);
        let staged = write(s.dir(), &src, 100_000, 300_001, "a.part", &pool).unwrap();
        let a = staged.keep();
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
        // A staged file nobody keeps is deleted with its handle.
        let dropped = write(s.dir(), &src, 0, 1000, "b.part", &pool).unwrap();
        let b = dropped.path().to_path_buf();
        assert!(b.exists());
        drop(dropped);
        assert!(!b.exists());
    }

    #[test]
    fn a_short_source_and_a_full_disk_are_typed_and_leave_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src.bin");
        std::fs::write(&src, vec![1u8; 1000]).unwrap();
        let pool = BufPool::new(4096, 1);
        let st = dir.path().join("st");
        match write(&st, &src, 500, 600, "short.part", &pool) {
            Err(StageError::Source(e)) => assert_eq!(e.code(), ErrorCode::FileChanged),
            other => panic!("expected a source error, got {other:?}"),
        }
        assert!(!st.join("short.part").exists());
        // /dev/full answers every write with ENOSPC.
        std::os::unix::fs::symlink("/dev/full", st.join("full.part")).unwrap();
        assert!(matches!(
            write(&st, &src, 0, 1000, "full.part", &pool),
            Err(StageError::NoSpace)
        ));
    }

    /// A source that never opens: staging gives up after the stall timeout
    /// with a typed error, and the thread left behind leaves no file.
    #[test]
    fn a_source_that_never_opens_stalls_and_leaves_nothing() {
        struct Stuck(std::sync::Mutex<std::sync::mpsc::Receiver<()>>);
        impl crate::FileOpener for Stuck {
            fn open_file(&self, _uri: String) -> Result<crate::OpenedFile, crate::FileOpenError> {
                let _ = self.0.lock().unwrap().recv();
                Err(crate::FileOpenError::Gone {
                    reason: "released".into(),
                })
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let (release, wait) = std::sync::mpsc::channel();
        let calls = Arc::new(tokio::sync::Semaphore::new(1));
        let src = Arc::new(PartFile::Uri {
            uri: "content://x/stuck".into(),
            opener: Arc::new(Stuck(std::sync::Mutex::new(wait))),
            stamp: crate::hash::FileStamp {
                size: 10,
                mtime_ns: 0,
            },
            calls: calls.clone(),
            replaced: None,
        });
        let rt = crate::tests::two_threads();
        let r = rt.block_on(stage_part(StageJob {
            dir: dir.path().join("st"),
            src,
            offset: 0,
            len: 10,
            name: "p.part".into(),
            pool: BufPool::new(4096, 1),
            stall_timeout: Duration::from_millis(200),
        }));
        match r {
            Err(StageError::Stalled(what)) => assert!(what.contains("opening"), "{what}"),
            other => panic!("expected a stall, got {other:?}"),
        }
        // The stuck call still holds the engine's only opener call.
        assert_eq!(calls.available_permits(), 0);
        release.send(()).unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while calls.available_permits() == 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "the call was given back"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(!dir.path().join("st/p.part").exists());
    }
}
