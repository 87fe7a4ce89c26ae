//! The queue database: SQLite in WAL mode, one writer connection owned by the
//! engine, schema versions by `PRAGMA user_version`.

use crate::config::Config;
use crate::error::{err, ErrorCode, Result, UploadError};
use crate::model::{UploadId, UploadState};
use crate::roots::FileRoots;
use rusqlite::{params, Connection, OptionalExtension, Transaction};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

mod durable;
pub(crate) use durable::PendingSync;
#[cfg(test)]
pub(crate) use durable::{sync_gates_for_test, synced_for_test, SyncGate};
pub(crate) mod handoff;
mod lifecycle;
pub(crate) use lifecycle::write as lifecycle_write;

/// Steps (about one per page) the integrity check at open may take: a few
/// milliseconds, however large the queue.
const INTEGRITY_BUDGET: i32 = 4096;

/// Each entry moves the schema from version `index` to `index + 1`.
const MIGRATIONS: &[&str] = &[
    include_str!("schema_v1.sql"),
    include_str!("schema_file_sources.sql"),
    include_str!("schema_handoff.sql"),
    include_str!("schema_queue.sql"),
    include_str!("schema_handoff_v2.sql"),
];

pub(crate) fn now_ms() -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    #[cfg(test)]
    let now = now + WALL_CLOCK_SHIFT_MS.with(std::cell::Cell::get);
    now
}

#[cfg(test)]
thread_local! {
    /// How far this thread's wall clock is set from the real one (tests of
    /// a clock set by hand; the engine's own threads are not affected).
    pub(crate) static WALL_CLOCK_SHIFT_MS: std::cell::Cell<i64> = const { std::cell::Cell::new(0) };
}

/// An upload as stored.
#[derive(Clone, PartialEq)]
pub(crate) struct UploadRow {
    pub id: UploadId,
    pub transfer_id: String,
    pub path: String,
    pub file_name: String,
    pub file_hash: String,
    pub size: u64,
    pub mtime_ns: i64,
    pub user_params: serde_json::Map<String, serde_json::Value>,
    pub state: UploadState,
    pub key: Option<String>,
    pub upload_id: Option<String>,
    pub part_size: Option<u64>,
    pub parts_total: u32,
    pub attempts: u32,
    pub next_attempt_at: i64,
    pub error: Option<UploadError>,
    pub abort_state: AbortState,
    pub created_at: i64,
    pub updated_at: i64,
    /// `path` holds a URI for the platform's file opener, not a path.
    pub is_uri: bool,
    /// `path` is `<root name>/<path under that root>` (see `roots.rs`).
    pub in_root: bool,
    /// For a path under a root: where it is now, as the roots registered
    /// when the row was read (or last changed) say; `None` while its root
    /// is not registered. Not stored.
    pub resolved: Option<String>,
}

impl UploadRow {
    /// The path or URI to show: a path under a root resolved, or, while
    /// its root is not registered, as stored (relative, `<root>/...`).
    pub(crate) fn shown_path(&self) -> &str {
        self.resolved.as_deref().unwrap_or(&self.path)
    }
}

impl std::fmt::Debug for UploadRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // User params are the app's (tokens, often): their names only.
        // Every field is named, so a new one is a compile error here.
        let UploadRow {
            id,
            transfer_id,
            path,
            file_name,
            file_hash,
            size,
            mtime_ns,
            user_params,
            state,
            key,
            upload_id,
            part_size,
            parts_total,
            attempts,
            next_attempt_at,
            error,
            abort_state,
            created_at,
            updated_at,
            is_uri,
            in_root,
            resolved,
        } = self;
        let path = if *is_uri {
            crate::redact::url_for_debug(path)
        } else {
            path.clone()
        };
        f.debug_struct("UploadRow")
            .field("id", id)
            .field("transfer_id", transfer_id)
            .field("path", &path)
            .field("file_name", file_name)
            .field("file_hash", file_hash)
            .field("size", size)
            .field("mtime_ns", mtime_ns)
            .field("user_params", &crate::redact::param_names(user_params))
            .field("state", state)
            .field("key", key)
            .field("upload_id", upload_id)
            .field("part_size", part_size)
            .field("parts_total", parts_total)
            .field("attempts", attempts)
            .field("next_attempt_at", next_attempt_at)
            .field("error", error)
            .field("abort_state", abort_state)
            .field("created_at", created_at)
            .field("updated_at", updated_at)
            .field("is_uri", is_uri)
            .field("in_root", in_root)
            .field("resolved", resolved)
            .finish()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AbortState {
    None = 0,
    Pending = 1,
    Done = 2,
}

/// A part as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PartRow {
    pub number: u32,
    pub etag: Option<String>,
    pub attempts: u32,
    pub next_attempt_at: i64,
}

/// Fields of a new upload.
pub(crate) struct NewRow<'a> {
    pub transfer_id: &'a str,
    pub path: &'a str,
    pub file_name: &'a str,
    pub file_hash: &'a str,
    pub size: u64,
    pub mtime_ns: i64,
    pub user_params: &'a serde_json::Map<String, serde_json::Value>,
    /// `path` is a URI for the platform's file opener.
    pub is_uri: bool,
    /// `path` is `<root name>/<path under that root>`.
    pub in_root: bool,
}

impl NewRow<'_> {
    /// The `source` column: how `path` is read.
    fn source(&self) -> &'static str {
        match (self.is_uri, self.in_root) {
            (true, _) => "uri",
            (false, true) => "root",
            (false, false) => "path",
        }
    }
}

pub(crate) struct Store {
    conn: Connection,
    /// The file roots the platform registered, which rows under a root
    /// are resolved against as they are read (shared with `reader`s).
    roots: Arc<std::sync::RwLock<FileRoots>>,
    /// Write transactions committed since open (each one WAL append; the
    /// fsyncs are grouped, see `durable.rs`): the engine's write cost.
    commits: Arc<AtomicU64>,
    durability: durable::Durability,
}

const UPLOAD_COLUMNS: &str = "id, transfer_id, path, file_name, file_hash, size, mtime_ns, \
     user_params, state, object_key, upload_id, part_size, parts_total, attempts, \
     next_attempt_at, error_code, error_message, abort_state, created_at, updated_at, source";

fn read_upload(row: &rusqlite::Row<'_>, roots: &FileRoots) -> rusqlite::Result<UploadRow> {
    let source: String = row.get(20)?;
    let path: String = row.get(2)?;
    let in_root = source == "root";
    let resolved = in_root
        .then(|| roots.resolve(&path))
        .flatten()
        .map(|p| p.to_string_lossy().into_owned());
    let params_json: String = row.get(7)?;
    let state: String = row.get(8)?;
    let code: Option<String> = row.get(15)?;
    let message: Option<String> = row.get(16)?;
    let abort: i64 = row.get(17)?;
    let bad = |col: usize, what: &str| {
        rusqlite::Error::FromSqlConversionFailure(
            col,
            rusqlite::types::Type::Text,
            format!("unreadable {what}").into(),
        )
    };
    Ok(UploadRow {
        id: row.get(0)?,
        transfer_id: row.get(1)?,
        path,
        file_name: row.get(3)?,
        file_hash: row.get(4)?,
        size: row.get::<_, i64>(5)? as u64,
        mtime_ns: row.get(6)?,
        user_params: serde_json::from_str(&params_json).map_err(|_| bad(7, "user params"))?,
        state: UploadState::parse(&state).ok_or_else(|| bad(8, "state"))?,
        key: row.get(9)?,
        upload_id: row.get(10)?,
        part_size: row.get::<_, Option<i64>>(11)?.map(|v| v as u64),
        parts_total: row.get::<_, i64>(12)? as u32,
        attempts: row.get::<_, i64>(13)? as u32,
        next_attempt_at: row.get(14)?,
        error: match (code, message) {
            (Some(c), m) => Some(UploadError::new(
                ErrorCode::parse(&c).unwrap_or(ErrorCode::Internal),
                m.unwrap_or_default(),
            )),
            _ => None,
        },
        abort_state: match abort {
            1 => AbortState::Pending,
            2 => AbortState::Done,
            _ => AbortState::None,
        },
        created_at: row.get(18)?,
        updated_at: row.get(19)?,
        is_uri: source == "uri",
        in_root,
        resolved,
    })
}

impl Store {
    /// Opens (or creates) the database and brings its schema up to date.
    pub(crate) fn open(path: &Path) -> Result<Store> {
        if let Some(parent) = path.parent() {
            if !parent.as_os_str().is_empty() {
                std::fs::create_dir_all(parent).map_err(|e| {
                    err(
                        ErrorCode::Database,
                        format!("cannot create {}: {e}", parent.display()),
                    )
                })?;
            }
        }
        let conn = Connection::open(path)?;
        let mut store = Self::setup(conn)?;
        store.check_integrity()?;
        Ok(store)
    }

    /// A quick structural check, so a damaged file is reported at open, not
    /// halfway through an upload. Its cost is bounded (a background launch
    /// must not scan a large queue): past `INTEGRITY_BUDGET` steps the check
    /// stops and what was read counts as good; damage beyond is still found
    /// by SQLite when it is read, and reported as `database_corrupt` then.
    fn check_integrity(&mut self) -> Result<()> {
        self.conn
            .progress_handler(INTEGRITY_BUDGET, Some(|| true))?;
        let verdict = self
            .conn
            .query_row("PRAGMA quick_check(1)", [], |r| r.get::<_, String>(0));
        self.conn.progress_handler(0, None::<fn() -> bool>)?;
        let verdict = match verdict {
            Err(e)
                if e.sqlite_error_code()
                    == Some(rusqlite::ffi::ErrorCode::OperationInterrupted) =>
            {
                tracing::debug!("integrity check stopped at its budget");
                "ok".to_string()
            }
            other => other?,
        };
        if verdict == "ok" {
            Ok(())
        } else {
            Err(err(
                ErrorCode::DatabaseCorrupt,
                "the queue database is corrupt (integrity check failed); set it aside \
                 (s3bgu recover, or set_aside_database) to start an empty queue",
            ))
        }
    }

    /// Caps the database at `pages` pages: writes beyond fail as if the disk
    /// were full.
    pub(crate) fn limit_pages(&self, pages: u32) -> Result<()> {
        let _now: i64 =
            self.conn
                .query_row(&format!("PRAGMA max_page_count = {pages}"), [], |r| {
                    r.get(0)
                })?;
        Ok(())
    }

    /// Opens an existing database for reading only (no migration, no lock):
    /// for looking at a queue another process is working on.
    pub(crate) fn open_read_only(path: &Path) -> Result<Store> {
        let conn = Connection::open_with_flags(
            path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        let mut store = Store {
            conn,
            roots: Arc::default(),
            durability: Default::default(),
            commits: Arc::default(),
        };
        store.check_integrity()?;
        let conn = store.conn;
        if version != MIGRATIONS.len() as i64 {
            return Err(err(
                ErrorCode::Database,
                format!(
                    "the queue database has schema version {version}, this engine reads version {}",
                    MIGRATIONS.len()
                ),
            ));
        }
        Ok(Store {
            conn,
            roots: Arc::default(),
            commits: Arc::default(),
            durability: Default::default(),
        })
    }

    /// A second, read-only connection to this queue (already checked and
    /// migrated by this store), to read on another thread; `None` for an
    /// in-memory database.
    pub(crate) fn reader(&self) -> Option<Result<Store>> {
        let path = self.conn.path().filter(|p| !p.is_empty())?.to_owned();
        let roots = self.roots.clone();
        Some((|| {
            let conn = Connection::open_with_flags(
                path,
                rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY
                    | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )?;
            conn.busy_timeout(std::time::Duration::from_secs(5))?;
            Ok(Store {
                conn,
                roots,
                commits: Arc::default(),
                durability: Default::default(),
            })
        })())
    }

    #[cfg(test)]
    pub(crate) fn open_in_memory() -> Result<Store> {
        Self::setup(Connection::open_in_memory()?)
    }

    fn setup(mut conn: Connection) -> Result<Store> {
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        // Room for every statement the engine repeats (write::run).
        conn.set_prepared_statement_cache_capacity(48);
        // journal_mode answers with a row; in-memory databases answer "memory".
        let _mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
        // NORMAL: a commit survives a killed process; the engine syncs the
        // WAL once per pass before it answers anyone (group commit, durable.rs).
        conn.execute_batch("PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;")?;
        let commits = Arc::new(AtomicU64::new(0));
        let counter = commits.clone();
        conn.commit_hook(Some(move || {
            counter.fetch_add(1, Ordering::Relaxed);
            false // never turn the commit into a rollback
        }))?;
        let mut store = Store {
            conn,
            roots: Arc::default(),
            commits,
            durability: Default::default(),
        };
        store.migrate()?;
        Ok(store)
    }

    fn migrate(&mut self) -> Result<()> {
        let tx = self.conn.transaction()?;
        let version: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        let version = usize::try_from(version).unwrap_or(usize::MAX);
        if version > MIGRATIONS.len() {
            return Err(err(
                ErrorCode::Database,
                format!(
                    "the queue database has schema version {version}, newer than this engine ({}); \
                     it was written by a newer version of the library",
                    MIGRATIONS.len()
                ),
            ));
        }
        if version == MIGRATIONS.len() {
            return Ok(());
        }
        for sql in &MIGRATIONS[version..] {
            tx.execute_batch(sql)?;
        }
        tx.pragma_update(None, "user_version", MIGRATIONS.len() as i64)?;
        tx.commit()?;
        Ok(())
    }

    /// Rows read from now on resolve paths under a root against `roots`.
    pub(crate) fn set_roots(&self, roots: FileRoots) {
        *self.roots.write().unwrap_or_else(|e| e.into_inner()) = roots;
    }

    /// The file roots registered now.
    pub(crate) fn roots(&self) -> FileRoots {
        self.roots.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Where a stored `<root>/<path under it>` is now (see `FileRoots::resolve`).
    pub(crate) fn resolve_in_root(&self, stored: &str) -> Option<std::path::PathBuf> {
        self.roots
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .resolve(stored)
    }

    /// Reads upload rows with the roots registered now.
    pub(crate) fn row_reader(&self) -> impl Fn(&rusqlite::Row<'_>) -> rusqlite::Result<UploadRow> {
        let roots = self.roots();
        move |r| read_upload(r, &roots)
    }

    /// Write transactions committed since the database was opened.
    pub(crate) fn commits(&self) -> u64 {
        self.commits.load(Ordering::Relaxed)
    }

    pub(crate) fn transaction(&mut self) -> Result<Transaction<'_>> {
        Ok(self.conn.transaction()?)
    }

    pub(crate) fn load_config(&self) -> Result<Option<Config>> {
        let json: Option<String> = self
            .conn
            .query_row("SELECT json FROM config WHERE id = 1", [], |r| r.get(0))
            .optional()?;
        Ok(match json {
            Some(j) => Some(serde_json::from_str(&j)?),
            None => None,
        })
    }

    pub(crate) fn save_config(&mut self, config: &Config) -> Result<()> {
        let json = serde_json::to_string(config)?;
        self.conn.execute(
            "INSERT INTO config (id, json) VALUES (1, ?1) ON CONFLICT (id) DO UPDATE SET json = ?1",
            params![json],
        )?;
        Ok(())
    }

    pub(crate) fn upload(&self, id: UploadId) -> Result<Option<UploadRow>> {
        Ok(self
            .conn
            .query_row(
                &format!("SELECT {UPLOAD_COLUMNS} FROM uploads WHERE id = ?1"),
                params![id],
                self.row_reader(),
            )
            .optional()?)
    }

    /// Every upload in queue order.
    pub(crate) fn uploads(&self) -> Result<Vec<UploadRow>> {
        let mut stmt = self
            .conn
            .prepare_cached(&format!("SELECT {UPLOAD_COLUMNS} FROM uploads ORDER BY id"))?;
        let rows = stmt.query_map([], self.row_reader())?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    /// An upload of the same content in the same transfer that was not cancelled.
    pub(crate) fn find_duplicate(&self, transfer_id: &str, hash: &str) -> Result<Option<UploadId>> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT id FROM uploads WHERE transfer_id = ?1 AND file_hash = ?2 \
                 AND state != 'CANCELLED' ORDER BY id LIMIT 1",
            )?
            .query_row(params![transfer_id, hash], |r| r.get(0))
            .optional()?)
    }

    pub(crate) fn parts(&self, id: UploadId) -> Result<Vec<PartRow>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT number, etag, attempts, next_attempt_at FROM parts WHERE upload = ?1 ORDER BY number",
        )?;
        let rows = stmt.query_map(params![id], |r| {
            Ok(PartRow {
                number: r.get::<_, i64>(0)? as u32,
                etag: r.get(1)?,
                attempts: r.get::<_, i64>(2)? as u32,
                next_attempt_at: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    /// The ETags to send with `complete`, read back from the database, by part number.
    pub(crate) fn etags(&self, id: UploadId) -> Result<Vec<(u32, Option<String>)>> {
        Ok(self
            .parts(id)?
            .into_iter()
            .map(|p| (p.number, p.etag))
            .collect())
    }
}

/// Write operations. Each takes a transaction so callers group what must be atomic.
pub(crate) mod write {
    use super::*;

    /// Runs one of the engine's write statements, compiled once per
    /// connection: the same few run for every file, and parsing them again
    /// each time was a visible part of a small file's CPU.
    fn run(tx: &Transaction<'_>, sql: &str, params: impl rusqlite::Params) -> Result<usize> {
        Ok(tx.prepare_cached(sql)?.execute(params)?)
    }

    pub(crate) fn insert_upload(tx: &Transaction<'_>, new: &NewRow<'_>) -> Result<UploadId> {
        let now = now_ms();
        run(
            tx,
            "INSERT INTO uploads (transfer_id, path, file_name, file_hash, size, mtime_ns, \
             user_params, state, created_at, updated_at, source) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'PENDING', ?8, ?8, ?9)",
            params![
                new.transfer_id,
                new.path,
                new.file_name,
                new.file_hash,
                new.size as i64,
                new.mtime_ns,
                serde_json::to_string(new.user_params)?,
                now,
                new.source()
            ],
        )?;
        Ok(tx.last_insert_rowid())
    }

    /// Points an upload added as a URI at the URI its opener gave instead
    /// of `from`, if that is still the one stored (a later replacement is
    /// never undone by an earlier one). True if it changed.
    pub(crate) fn replace_uri(
        tx: &Transaction<'_>,
        id: UploadId,
        from: &str,
        to: &str,
    ) -> Result<bool> {
        let n = run(
            tx,
            "UPDATE uploads SET path = ?3 WHERE id = ?1 AND source = 'uri' AND path = ?2",
            params![id, from, to],
        )?;
        Ok(n == 1)
    }

    pub(crate) fn set_state(
        tx: &Transaction<'_>,
        id: UploadId,
        state: UploadState,
        error: Option<&UploadError>,
    ) -> Result<()> {
        run(
            tx,
            "UPDATE uploads SET state = ?2, error_code = ?3, error_message = ?4, updated_at = ?5 \
             WHERE id = ?1",
            params![
                id,
                state.as_str(),
                error.map(|e| e.code.as_str()),
                error.map(|e| e.message.as_str()),
                now_ms()
            ],
        )?;
        Ok(())
    }

    pub(crate) fn set_attempts(
        tx: &Transaction<'_>,
        id: UploadId,
        attempts: u32,
        next_attempt_at: i64,
    ) -> Result<()> {
        run(
            tx,
            "UPDATE uploads SET attempts = ?2, next_attempt_at = ?3 WHERE id = ?1",
            params![id, attempts, next_attempt_at],
        )?;
        Ok(())
    }

    /// Records startUpload's answer and creates the part rows.
    pub(crate) fn set_initialized(
        tx: &Transaction<'_>,
        id: UploadId,
        key: &str,
        upload_id: &str,
        part_size: u64,
        parts_total: u32,
    ) -> Result<()> {
        run(
            tx,
            "UPDATE uploads SET state = 'INITIALIZED', object_key = ?2, upload_id = ?3, \
             part_size = ?4, parts_total = ?5, attempts = 0, next_attempt_at = 0, \
             error_code = NULL, error_message = NULL, updated_at = ?6 WHERE id = ?1",
            params![id, key, upload_id, part_size as i64, parts_total, now_ms()],
        )?;
        let mut stmt = tx.prepare_cached("INSERT INTO parts (upload, number) VALUES (?1, ?2)")?;
        for n in 1..=parts_total {
            stmt.execute(params![id, n])?;
        }
        Ok(())
    }

    pub(crate) fn part_done(
        tx: &Transaction<'_>,
        id: UploadId,
        number: u32,
        etag: &str,
    ) -> Result<()> {
        run(
            tx,
            "UPDATE parts SET etag = ?3, attempts = 0, next_attempt_at = 0 \
             WHERE upload = ?1 AND number = ?2",
            params![id, number, etag],
        )?;
        Ok(())
    }

    pub(crate) fn part_attempts(
        tx: &Transaction<'_>,
        id: UploadId,
        number: u32,
        attempts: u32,
        next_attempt_at: i64,
    ) -> Result<()> {
        run(
            tx,
            "UPDATE parts SET attempts = ?3, next_attempt_at = ?4 WHERE upload = ?1 AND number = ?2",
            params![id, number, attempts, next_attempt_at],
        )?;
        Ok(())
    }

    /// A fresh round of retries for every part and call of the upload (resume).
    pub(crate) fn reset_attempts(tx: &Transaction<'_>, id: UploadId) -> Result<()> {
        run(
            tx,
            "UPDATE uploads SET attempts = 0, next_attempt_at = 0 WHERE id = ?1",
            params![id],
        )?;
        run(
            tx,
            "UPDATE parts SET attempts = 0, next_attempt_at = 0 WHERE upload = ?1",
            params![id],
        )?;
        Ok(())
    }

    pub(crate) fn set_abort_state(
        tx: &Transaction<'_>,
        id: UploadId,
        state: AbortState,
    ) -> Result<()> {
        run(
            tx,
            "UPDATE uploads SET abort_state = ?2 WHERE id = ?1",
            params![id, state as i64],
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
