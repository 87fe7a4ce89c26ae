//! Group commit: the queue's commits reach the disk once per engine pass.
//!
//! The connection commits at `synchronous = NORMAL` (WAL): every commit is
//! appended to the WAL in the kernel's page cache without an fsync, so a
//! killed process loses nothing. Only a power cut (or a kernel crash) can
//! lose commits that were never synced, so the engine answers what the
//! outside world depends on (an add, a cancel, a pause, a configuration, a
//! finished upload's event) only after [`Store::make_durable`] has synced
//! the WAL. One fdatasync then covers every commit since the previous one,
//! where `synchronous = FULL` paid one per commit. What a power cut may still
//! roll back is engine progress nobody was told about: a part's ETag (the
//! part is sent again), a startUpload answer (a new multipart upload is
//! started), a `running` state. None of these can make a wrong object.

use super::Store;
use crate::error::{err, ErrorCode, Result};
use std::fs::File;
use std::sync::atomic::Ordering;

/// What the store knows about its WAL file and what was synced.
#[derive(Default)]
pub(crate) struct Durability {
    /// The `-wal` file, opened on the first sync (SQLite creates it on the
    /// first write and keeps it while the connection is open).
    wal: Option<File>,
    /// The commit count covered by the last sync.
    synced_commits: u64,
    /// Syncs done (each one fdatasync of the WAL).
    #[cfg(test)]
    syncs: u64,
}

/// A sync to run away from the engine's task: the WAL's descriptor and the
/// commit count it covers once it returns.
pub(crate) struct PendingSync {
    file: File,
    covers: u64,
    #[cfg(test)]
    path: String,
}

impl PendingSync {
    /// The fdatasync itself (blocking: run it on a blocking thread).
    pub(crate) fn run(&self) -> Result<()> {
        #[cfg(test)]
        hold_for_test(&self.path);
        sync_data(&self.file).map_err(|e| {
            err(
                ErrorCode::Database,
                format!("cannot write the queue database to storage: {e}"),
            )
        })
    }
}

impl Store {
    /// Syncs the WAL if anything was committed since the last sync, so every
    /// commit so far survives a power cut. In-memory databases have nothing
    /// to sync.
    pub(crate) fn make_durable(&mut self) -> Result<()> {
        if let Some(sync) = self.begin_sync()? {
            sync.run()?;
            self.end_sync(&sync);
        }
        Ok(())
    }

    /// What a sync of every commit so far needs, or `None` when nothing is
    /// left to sync. The caller runs it ([`PendingSync::run`]) wherever it
    /// likes, and reports success with [`Store::end_sync`]; commits made
    /// meanwhile wait for the next sync.
    pub(crate) fn begin_sync(&mut self) -> Result<Option<PendingSync>> {
        let commits = self.commits.load(Ordering::Relaxed);
        if commits == self.durability.synced_commits {
            return Ok(None);
        }
        if self.durability.wal.is_none() {
            let Some(path) = self.conn.path().filter(|p| !p.is_empty()) else {
                self.durability.synced_commits = commits;
                return Ok(None);
            };
            let wal = format!("{path}-wal");
            match File::open(&wal) {
                Ok(f) => self.durability.wal = Some(f),
                // Not in WAL mode (a read-only or in-memory database).
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    self.durability.synced_commits = commits;
                    return Ok(None);
                }
                Err(e) => {
                    return Err(err(
                        ErrorCode::Database,
                        format!("cannot open the queue's write-ahead log: {e}"),
                    ))
                }
            }
        }
        let wal = self.durability.wal.as_ref().expect("opened above");
        let file = wal.try_clone().map_err(|e| {
            err(
                ErrorCode::Database,
                format!("cannot open the queue's write-ahead log: {e}"),
            )
        })?;
        Ok(Some(PendingSync {
            file,
            covers: commits,
            #[cfg(test)]
            path: self.conn.path().unwrap_or_default().to_owned(),
        }))
    }

    /// Records that `sync` succeeded: its commits are on storage.
    pub(crate) fn end_sync(&mut self, sync: &PendingSync) {
        // A later sync may have finished first (a flush while this one ran).
        self.durability.synced_commits = self.durability.synced_commits.max(sync.covers);
        #[cfg(test)]
        {
            self.durability.syncs += 1;
            synced_for_test()
                .lock()
                .unwrap()
                .insert(sync.path.clone(), self.durability.synced_commits);
        }
    }

    /// True when the commit that made the commit count `commit` is on
    /// storage (synced, or nothing to sync for this database).
    pub(crate) fn is_durable(&self, commit: u64) -> bool {
        commit <= self.durability.synced_commits
    }

    /// Syncs done by [`Store::make_durable`] since the database was opened.
    #[cfg(test)]
    pub(crate) fn wal_syncs(&self) -> u64 {
        self.durability.syncs
    }

    /// True when every commit so far has been synced.
    #[cfg(test)]
    pub(crate) fn all_durable(&self) -> bool {
        self.durability.synced_commits == self.commits.load(Ordering::Relaxed)
    }
}

/// Database path -> commits covered by its last sync, for tests that check
/// what was durable when an answer arrived.
#[cfg(test)]
pub(crate) fn synced_for_test() -> &'static std::sync::Mutex<std::collections::HashMap<String, u64>>
{
    static SYNCED: std::sync::OnceLock<std::sync::Mutex<std::collections::HashMap<String, u64>>> =
        std::sync::OnceLock::new();
    SYNCED.get_or_init(Default::default)
}

/// Database paths whose syncs wait until the test opens the gate: a sync
/// that takes as long as a test wants, to see what the engine does meanwhile.
#[cfg(test)]
pub(crate) fn sync_gates_for_test(
) -> &'static std::sync::Mutex<std::collections::HashMap<String, std::sync::Arc<SyncGate>>> {
    static GATES: std::sync::OnceLock<
        std::sync::Mutex<std::collections::HashMap<String, std::sync::Arc<SyncGate>>>,
    > = std::sync::OnceLock::new();
    GATES.get_or_init(Default::default)
}

/// A closed gate holds every sync of its database until it is opened.
#[cfg(test)]
#[derive(Default)]
pub(crate) struct SyncGate {
    open: std::sync::Mutex<bool>,
    opened: std::sync::Condvar,
    /// Syncs waiting at the gate now.
    pub waiting: std::sync::atomic::AtomicUsize,
    /// Syncs that went through.
    pub passed: std::sync::atomic::AtomicUsize,
    /// How long each sync takes once through the gate (a slow flash).
    each: std::time::Duration,
    /// When set, the gate holds only the syncs that begin once this says
    /// so (the others go through at once).
    #[allow(clippy::type_complexity)]
    only_when: Option<Box<dyn Fn() -> bool + Send + Sync>>,
}

#[cfg(test)]
impl SyncGate {
    pub(crate) fn open(&self) {
        *self.open.lock().unwrap() = true;
        self.opened.notify_all();
    }

    /// A closed gate for the syncs that begin once `hold` says so.
    pub(crate) fn when(hold: impl Fn() -> bool + Send + Sync + 'static) -> SyncGate {
        SyncGate {
            only_when: Some(Box::new(hold)),
            ..SyncGate::default()
        }
    }

    /// An open gate where every sync takes `each`.
    pub(crate) fn slow(each: std::time::Duration) -> SyncGate {
        SyncGate {
            open: std::sync::Mutex::new(true),
            each,
            ..SyncGate::default()
        }
    }
}

#[cfg(test)]
fn hold_for_test(path: &str) {
    let gate = sync_gates_for_test().lock().unwrap().get(path).cloned();
    if let Some(gate) = gate.filter(|g| g.only_when.as_ref().is_none_or(|hold| hold())) {
        gate.waiting.fetch_add(1, Ordering::SeqCst);
        let mut open = gate.open.lock().unwrap();
        while !*open {
            open = gate.opened.wait(open).unwrap();
        }
        drop(open);
        std::thread::sleep(gate.each);
        gate.waiting.fetch_sub(1, Ordering::SeqCst);
        gate.passed.fetch_add(1, Ordering::SeqCst);
    }
}

/// The same call SQLite makes for a WAL at `synchronous = FULL`: fdatasync
/// where it exists, fsync on Apple's systems (SQLite does not use
/// F_FULLFSYNC unless asked either).
fn sync_data(file: &File) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    #[cfg(any(target_os = "macos", target_os = "ios"))]
    // SAFETY: the descriptor is open for the lifetime of `file`.
    let rc = unsafe { libc::fsync(file.as_raw_fd()) };
    #[cfg(not(any(target_os = "macos", target_os = "ios")))]
    // SAFETY: the descriptor is open for the lifetime of `file`.
    let rc = unsafe { libc::fdatasync(file.as_raw_fd()) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn commit_one(store: &mut Store, n: i64) {
        let tx = store.transaction().unwrap();
        tx.execute(
            "INSERT INTO config (id, json) VALUES (1, ?1) \
             ON CONFLICT(id) DO UPDATE SET json = excluded.json",
            [format!("{{\"n\":{n}}}")],
        )
        .unwrap();
        tx.commit().unwrap();
    }

    #[test]
    fn commits_are_not_synced_one_by_one_and_one_sync_covers_them_all() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("q.db")).unwrap();
        let sync: i64 = store
            .conn
            .query_row("PRAGMA synchronous", [], |r| r.get(0))
            .unwrap();
        assert_eq!(sync, 1, "NORMAL: the engine syncs the WAL itself");
        store.make_durable().unwrap();
        let before = store.wal_syncs();
        for n in 0..5 {
            commit_one(&mut store, n);
        }
        assert!(!store.all_durable());
        store.make_durable().unwrap();
        assert!(store.all_durable());
        assert_eq!(store.wal_syncs(), before + 1);
        // Nothing new: no sync.
        store.make_durable().unwrap();
        assert_eq!(store.wal_syncs(), before + 1);
    }

    #[test]
    fn an_in_memory_database_has_nothing_to_sync() {
        let mut store = Store::open_in_memory().unwrap();
        commit_one(&mut store, 1);
        store.make_durable().unwrap();
        assert!(store.all_durable());
    }
}
