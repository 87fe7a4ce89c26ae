//! An upload's life beyond the happy path: a FAILED upload whose file is
//! added again.

use super::*;
use crate::store::lifecycle_write;

impl Engine {
    /// The same content added again to the transfer of a FAILED upload: the
    /// upload takes the new path and stamp (the old ones are what failed it,
    /// e.g. `file_not_found` or a touched file) and resumes. Parts already
    /// confirmed stay: the content, by its hash, is the same.
    pub(super) fn add_again(&mut self, id: UploadId, f: &HashedFile) -> Result<UploadInfo> {
        let path = f.location.clone();
        let t = &self.uploads[&id];
        let not_started = t.row.upload_id.is_none();
        let next = if not_started {
            UploadState::Pending
        } else if t.parts_done > 0 {
            UploadState::Running
        } else {
            UploadState::Initialized
        };
        let new = NewRow {
            transfer_id: &f.transfer_id,
            path: &path,
            file_name: &f.file_name,
            file_hash: &f.file_hash,
            size: f.stamp.size,
            mtime_ns: f.stamp.mtime_ns,
            user_params: &f.user_params,
            is_uri: f.is_uri,
            in_root: f.in_root,
        };
        let tx = self.store.transaction()?;
        lifecycle_write::refresh_file(&tx, id, &new, not_started)?;
        write::reset_attempts(&tx, id)?;
        write::set_state(&tx, id, next, None)?;
        tx.commit()?;
        let row = self
            .store
            .upload(id)?
            .ok_or_else(|| err(ErrorCode::Internal, "upload vanished while added again"))?;
        let t = self.uploads.get_mut(&id).expect("duplicate upload exists");
        let parts = std::mem::take(&mut t.parts);
        let urls = std::mem::take(&mut t.urls);
        let busy = std::mem::take(&mut t.busy);
        let etags_commit = t.etags_commit;
        *t = Tracked::new(row, Vec::new());
        t.etags_commit = etags_commit;
        t.parts = parts
            .into_iter()
            .map(|p| super::tracked::PartSlot {
                attempts: 0,
                next_attempt_at: 0,
                refreshes: 0,
                ..p
            })
            .collect();
        t.urls = urls;
        t.busy = busy;
        t.recount();
        tracing::info!(upload = id, "failed upload added again; resuming it");
        let info = t.info();
        self.notify_state(id);
        Ok(info)
    }
}

/// How often finished uploads past their retention are looked for while
/// the engine runs (also at open and after setConfig).
pub(super) const SWEEP_INTERVAL: Duration = Duration::from_secs(3600);

/// How far the wall clock may run ahead of the elapsed time before the
/// sweep stops trusting it (NTP steps stay far below it).
const WALL_CLOCK_SLACK_MS: i64 = 60_000;

/// Both clocks when the engine opened the queue. Later, the time that really
/// passed (the boot clock counts through sleep) bounds how far the wall
/// clock may have moved: a clock set by hand a month ahead does not make
/// every finished upload a month older.
#[derive(Clone, Copy, Debug)]
pub(super) struct OpenedAt {
    pub(super) wall_ms: i64,
    pub(super) boot: super::boot_clock::BootTime,
}

impl OpenedAt {
    pub(super) fn now() -> OpenedAt {
        OpenedAt {
            wall_ms: now_ms(),
            boot: super::boot_clock::BootTime::now(),
        }
    }

    /// The wall clock now, held to the opening time plus the elapsed time.
    /// A clock set back is taken as it is (that only keeps uploads longer).
    fn vouched_now(&self) -> i64 {
        let wall = now_ms();
        let elapsed = super::boot_clock::BootTime::now().saturating_duration_since(self.boot);
        let bound = self
            .wall_ms
            .saturating_add(i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX))
            .saturating_add(WALL_CLOCK_SLACK_MS);
        if wall > bound {
            tracing::warn!(
                ahead_ms = wall - bound,
                "the wall clock is ahead of the time elapsed since the queue was opened; \
                 finished uploads are kept by the elapsed time"
            );
        }
        wall.min(bound)
    }
}

/// Deletes the finished uploads older than the configured retention at
/// `now_ms` (wall-clock ms).
pub(super) fn expire_finished(
    store: &mut Store,
    config: Option<&Config>,
    now_ms: i64,
) -> Result<usize> {
    let Some(keep) = config.and_then(Config::finished_retention) else {
        return Ok(0);
    };
    let before = now_ms.saturating_sub(i64::try_from(keep.as_millis()).unwrap_or(i64::MAX));
    let tx = store.transaction()?;
    let n = lifecycle_write::expire_finished(&tx, before)?;
    // Nothing expired: roll back, so an idle sweep costs no commit (fsync).
    if n > 0 {
        tx.commit()?;
        tracing::info!(uploads = n, "finished uploads past their retention removed");
    }
    Ok(n)
}

impl Engine {
    /// The store no longer knows the upload's multipart upload (a lifecycle
    /// rule or someone else aborted it): its parts are lost. The upload
    /// fails with a message that says so, and drops the multipart upload so
    /// that resume starts a fresh one; late outcomes of the old one are
    /// ignored (their tasks carry the old upload id).
    pub(super) fn upload_gone(&mut self, id: UploadId, detail: &str) {
        let error = UploadError::new(
            ErrorCode::StorageRejected,
            format!(
                "the storage no longer has this multipart upload (aborted, e.g. by a lifecycle \
                 rule), so its parts are lost; resume uploads the file again from the start \
                 ({detail})"
            ),
        );
        tracing::warn!(upload = id, "multipart upload gone at the storage");
        self.stop_tasks_of(id);
        // Handed-off tasks too: left alone they would report into the next
        // multipart upload, and their rows would be adopted as its tasks.
        self.drop_handoffs(id);
        let committed = (|| -> Result<()> {
            let tx = self.store.transaction()?;
            lifecycle_write::drop_multipart(&tx, id)?;
            write::set_state(&tx, id, UploadState::Failed, Some(&error))?;
            Ok(tx.commit()?)
        })();
        if let Err(e) = committed {
            return self.db_failed(id, e);
        }
        let t = self.uploads.get_mut(&id).expect("upload exists");
        t.row.key = None;
        t.row.upload_id = None;
        t.row.part_size = None;
        t.row.parts_total = 0;
        t.row.attempts = 0;
        t.row.next_attempt_at = 0;
        t.row.abort_state = AbortState::None;
        t.row.state = UploadState::Failed;
        t.row.error = Some(error);
        t.row.updated_at = now_ms();
        t.urls.clear();
        t.set_parts(Vec::new());
        self.notify_state(id);
    }

    pub(super) fn sweep_if_due(&mut self) {
        let now = Instant::now();
        if now < self.next_sweep {
            return;
        }
        self.next_sweep = now + SWEEP_INTERVAL;
        let vouched = self.opened.vouched_now();
        if let Err(e) = expire_finished(&mut self.store, self.config.as_ref(), vouched) {
            tracing::warn!("cannot remove expired finished uploads: {e}");
        }
    }

    /// Drops a finished upload from the working set once no task of it is
    /// left to report; queries answer for it from the database.
    pub(super) fn retire_if_finished(&mut self, id: UploadId) {
        if self
            .uploads
            .get(&id)
            .is_some_and(|t| t.finished() && t.busy.is_empty() && t.parts_in_flight() == 0)
        {
            self.uploads.remove(&id);
        }
    }

    /// Snapshots of the selected uploads in queue order: the working set
    /// from memory, finished ones from the database.
    pub(super) fn list(&self, sel: &Selector) -> Result<Vec<UploadInfo>> {
        let mut list: Vec<UploadInfo> = self
            .uploads
            .values()
            .filter(|t| t.matches(sel))
            .map(Tracked::info)
            .collect();
        let finished = self.store.finished_uploads(sel)?;
        if finished.is_empty() {
            return Ok(list);
        }
        // Finished uploads still waiting for a task are in both: memory wins.
        list.extend(
            finished
                .into_iter()
                .filter(|(r, _, _)| !self.uploads.contains_key(&r.id))
                .map(|(r, parts_done, done_bytes)| {
                    let mut t = Tracked::new(r, Vec::new());
                    if t.row.state != UploadState::Completed {
                        t.parts_done = parts_done;
                        t.done_bytes = done_bytes;
                    }
                    t.info()
                }),
        );
        list.sort_by_key(|u| u.id);
        Ok(list)
    }

    /// Deletes the selected finished uploads (COMPLETED, or CANCELLED with
    /// the abort call done or not needed). Naming one upload that is not
    /// finished is an error; a transfer or all skips unfinished ones.
    /// Returns how many were forgotten.
    pub(super) fn forget(&mut self, sel: &Selector) -> Result<u64> {
        if let Selector::Upload(id) = sel {
            if let Some(t) = self.uploads.get(id).filter(|t| !t.finished()) {
                let why = if t.row.state == UploadState::Cancelled {
                    "its abort call is still pending".to_string()
                } else {
                    format!("it is {}; cancel it first", t.row.state)
                };
                return Err(err(
                    ErrorCode::InvalidArgument,
                    format!(
                        "upload {id} cannot be forgotten: {why} (only completed or cancelled \
                         uploads can be)"
                    ),
                ));
            }
        }
        // A cancelled upload whose startUpload is still out stays until the
        // answer is in: it may name a multipart upload to abort.
        let keep: Vec<UploadId> = self
            .uploads
            .values()
            .filter(|t| t.matches(sel) && !t.busy.is_empty())
            .map(|t| t.row.id)
            .collect();
        let tx = self.store.transaction()?;
        let n = lifecycle_write::forget(&tx, sel, &keep)?;
        tx.commit()?;
        if let Selector::Upload(id) = sel {
            if n == 0 && keep.is_empty() {
                return Err(err(ErrorCode::NotFound, format!("no upload with id {id}")));
            }
        }
        // Late reports of aborted part tasks find nothing and are dropped.
        self.uploads
            .retain(|id, t| !(t.finished() && t.matches(sel)) || keep.contains(id));
        self.changes.send_modify(|c| *c += 1);
        Ok(n as u64)
    }

    /// Aggregate of the working set and the finished uploads in the database.
    pub(super) fn summary(&self, transfer: Option<&str>) -> Result<Summary> {
        let mut s = Summary::default();
        let mut transfers: BTreeMap<&str, bool> = BTreeMap::new();
        for t in self.uploads.values() {
            if transfer.is_some_and(|x| x != t.row.transfer_id) {
                continue;
            }
            s.uploads += 1;
            match t.row.state {
                UploadState::Pending => s.pending += 1,
                UploadState::Initialized => s.initialized += 1,
                UploadState::Running => s.running += 1,
                UploadState::Paused => s.paused += 1,
                UploadState::Completed => s.completed += 1,
                UploadState::Failed => s.failed += 1,
                UploadState::Cancelled => s.cancelled += 1,
            }
            let complete = transfers.entry(&t.row.transfer_id).or_insert(true);
            if t.row.state != UploadState::Cancelled {
                s.total_bytes += t.row.size;
                s.uploaded_bytes += t.uploaded_bytes();
                if t.row.state != UploadState::Completed {
                    *complete = false;
                }
            }
        }
        let finished = self.store.finished_counts(transfer)?;
        for f in &finished {
            // Rows still in memory were counted above.
            let in_memory = self
                .uploads
                .values()
                .filter(|t| t.finished() && t.row.transfer_id == f.transfer_id);
            let (mut completed, mut cancelled, mut bytes) =
                (f.completed, f.cancelled, f.completed_bytes);
            for t in in_memory {
                if t.row.state == UploadState::Completed {
                    completed = completed.saturating_sub(1);
                    bytes = bytes.saturating_sub(t.row.size);
                } else {
                    cancelled = cancelled.saturating_sub(1);
                }
            }
            s.uploads += completed + cancelled;
            s.completed += completed;
            s.cancelled += cancelled;
            s.total_bytes += bytes;
            s.uploaded_bytes += bytes;
            transfers.entry(&f.transfer_id).or_insert(true);
        }
        s.transfers = transfers.len() as u32;
        s.completed_transfers = transfers.values().filter(|c| **c).count() as u32;
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::WALL_CLOCK_SHIFT_MS;

    const DAY_MS: i64 = 86_400_000;

    /// A finished upload in `store`, last changed `age_ms` ago.
    fn finished(store: &mut Store, name: &str, age_ms: i64) -> UploadId {
        let tx = store.transaction().unwrap();
        let id = write::insert_upload(
            &tx,
            &NewRow {
                transfer_id: "t",
                path: "/nowhere",
                file_name: name,
                file_hash: name,
                size: 1,
                mtime_ns: 0,
                user_params: &serde_json::Map::new(),
                is_uri: false,
                in_root: false,
            },
        )
        .unwrap();
        write::set_state(&tx, id, UploadState::Completed, None).unwrap();
        tx.execute(
            "UPDATE uploads SET updated_at = ?2 WHERE id = ?1",
            rusqlite::params![id, now_ms() - age_ms],
        )
        .unwrap();
        tx.commit().unwrap();
        id
    }

    /// Sets this thread's wall clock back to the real one when dropped.
    struct Shifted;
    impl Drop for Shifted {
        fn drop(&mut self) {
            WALL_CLOCK_SHIFT_MS.with(|s| s.set(0));
        }
    }

    /// Retention is judged by the wall clock (finished times are stored as
    /// wall-clock times), but the wall clock can be set by hand. Set a
    /// month ahead while the engine runs, it must not make history a day
    /// old look a month old and sweep it all away at once.
    #[test]
    fn a_wall_clock_set_far_ahead_does_not_sweep_away_recent_history() {
        let _restore = Shifted;
        let mut store = Store::open_in_memory().unwrap();
        let mut config = Config::for_base_url("http://127.0.0.1:9");
        config.finished_retention_ms = 2 * DAY_MS as u64;
        store.save_config(&config).unwrap();
        let old = finished(&mut store, "old", 3 * DAY_MS);
        let recent = finished(&mut store, "recent", DAY_MS);
        let (changes, _) = watch::channel(0);
        let mut engine = Engine::load(
            store,
            reqwest::Client::new(),
            changes,
            crate::source::OpenerSlot::default(),
        )
        .unwrap();
        // Past its retention by a clock nobody touched: removed at open.
        assert!(engine.store.upload(old).unwrap().is_none());
        assert!(engine.store.upload(recent).unwrap().is_some());

        WALL_CLOCK_SHIFT_MS.with(|s| s.set(30 * DAY_MS));
        engine.next_sweep = Instant::now();
        engine.sweep_if_due();
        assert!(
            engine.store.upload(recent).unwrap().is_some(),
            "a clock set a month ahead swept an upload that finished a day ago"
        );

        // Time that really passed still counts: the engine as if opened 90 s
        // ago by the boot clock, when the upload was 80 s short of its
        // retention (the wall clock still a month ahead of both).
        let real_now = now_ms() - 30 * DAY_MS;
        engine
            .store
            .transaction()
            .and_then(|tx| {
                tx.execute(
                    "UPDATE uploads SET updated_at = ?2 WHERE id = ?1",
                    rusqlite::params![recent, real_now - 2 * DAY_MS + 80_000],
                )?;
                Ok(tx.commit()?)
            })
            .unwrap();
        let boot_now = super::super::boot_clock::BootTime::now()
            .saturating_duration_since(super::super::boot_clock::BootTime::at(Duration::ZERO));
        assert!(
            boot_now > Duration::from_secs(90),
            "booted {boot_now:?} ago"
        );
        engine.opened = OpenedAt {
            wall_ms: real_now,
            boot: super::super::boot_clock::BootTime::at(boot_now - Duration::from_secs(90)),
        };
        engine.next_sweep = Instant::now();
        engine.sweep_if_due();
        assert!(
            engine.store.upload(recent).unwrap().is_none(),
            "past its retention by the elapsed time, yet kept"
        );
    }
}
