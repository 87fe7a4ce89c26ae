//! Queries and writes for the queue's life cycle: files added again after a
//! failure, multipart uploads that vanished, finished uploads kept apart
//! from the engine's working set, forgotten and expired.

use super::*;
use crate::model::Selector;

/// Uploads nothing more will happen to: completed, or cancelled with no
/// abort call left to make. They stay in the database (queries answer from
/// it) but out of the engine's working set.
const FINISHED: &str = "(state = 'COMPLETED' OR (state = 'CANCELLED' AND abort_state != 1))";

/// The selector as a WHERE clause over `?1` (upload id) and `?2` (transfer).
fn selector_sql(sel: &Selector) -> (&'static str, i64, &str) {
    match sel {
        Selector::All => ("1", 0, ""),
        Selector::Upload(id) => ("id = ?1", *id, ""),
        Selector::Transfer(t) => ("transfer_id = ?2", 0, t.as_str()),
    }
}

/// Finished uploads of one transfer, aggregated.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct FinishedCounts {
    pub transfer_id: String,
    pub completed: u32,
    pub cancelled: u32,
    pub completed_bytes: u64,
}

impl Store {
    /// The unfinished uploads to open a queue with: every one already begun
    /// (or paused, failed, cancelling) and the first `pending` not begun, in
    /// queue order; and the id of the last of those when more may follow.
    pub(crate) fn unfinished_head(
        &self,
        pending: usize,
    ) -> Result<(Vec<UploadRow>, Option<UploadId>)> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {UPLOAD_COLUMNS} FROM uploads \
             WHERE NOT {FINISHED} AND state != 'PENDING' ORDER BY id"
        ))?;
        let mut rows = stmt
            .query_map([], self.row_reader())?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        let head = self.pending_after(None, Some(pending))?;
        let more = (head.len() == pending)
            .then(|| head.last().map(|r| r.id))
            .flatten();
        rows.extend(head);
        Ok((rows, more))
    }

    /// Uploads not begun, in queue order, after `after` (from the start
    /// without it), at most `limit` of them.
    pub(crate) fn pending_after(
        &self,
        after: Option<UploadId>,
        limit: Option<usize>,
    ) -> Result<Vec<UploadRow>> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {UPLOAD_COLUMNS} FROM uploads \
             WHERE state = 'PENDING' AND id > ?1 ORDER BY id LIMIT ?2"
        ))?;
        let rows = stmt.query_map(
            params![after.unwrap_or(i64::MIN), limit.map_or(-1, |l| l as i64)],
            self.row_reader(),
        )?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    /// The part rows of every unfinished upload, by upload, in one query (a
    /// query per upload made opening a queue of 10,000 linear in it).
    pub(crate) fn unfinished_parts(
        &self,
    ) -> Result<std::collections::HashMap<UploadId, Vec<PartRow>>> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT p.upload, p.number, p.etag, p.attempts, p.next_attempt_at \
             FROM parts p JOIN uploads u ON u.id = p.upload \
             WHERE NOT {FINISHED} ORDER BY p.upload, p.number"
        ))?;
        let mut parts: std::collections::HashMap<UploadId, Vec<PartRow>> = Default::default();
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            parts.entry(r.get(0)?).or_default().push(PartRow {
                number: r.get::<_, i64>(1)? as u32,
                etag: r.get(2)?,
                attempts: r.get::<_, i64>(3)? as u32,
                next_attempt_at: r.get(4)?,
            });
        }
        Ok(parts)
    }

    /// Finished uploads matching `sel`, in queue order, each with its
    /// confirmed parts and bytes if it was cancelled (counted here: part
    /// rows of finished uploads are never loaded; a completed upload's are
    /// all of them).
    pub(crate) fn finished_uploads(&self, sel: &Selector) -> Result<Vec<(UploadRow, u32, u64)>> {
        let (clause, id, transfer) = selector_sql(sel);
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {UPLOAD_COLUMNS}, \
             CASE WHEN state = 'CANCELLED' THEN (SELECT COUNT(*) FROM parts p \
                WHERE p.upload = u.id AND p.etag IS NOT NULL) ELSE 0 END, \
             CASE WHEN state = 'CANCELLED' THEN (SELECT \
                TOTAL(MIN(u.part_size, u.size - (p.number - 1) * u.part_size)) \
                FROM parts p WHERE p.upload = u.id AND p.etag IS NOT NULL) ELSE 0 END \
             FROM uploads u WHERE {FINISHED} AND {clause} AND ?1 = ?1 AND ?2 = ?2 ORDER BY id"
        ))?;
        // The two counts come right after the upload's own columns.
        let first = UPLOAD_COLUMNS.split(',').count();
        let read_upload = self.row_reader();
        let rows = stmt.query_map(params![id, transfer], |r| {
            Ok((
                read_upload(r)?,
                r.get::<_, i64>(first)? as u32,
                r.get::<_, f64>(first + 1)? as u64,
            ))
        })?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    /// Counts of finished uploads per transfer (of one transfer with `Some`).
    pub(crate) fn finished_counts(&self, transfer: Option<&str>) -> Result<Vec<FinishedCounts>> {
        let sel = transfer.map_or(Selector::All, |t| Selector::Transfer(t.to_owned()));
        let (clause, id, transfer) = selector_sql(&sel);
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT transfer_id, SUM(state = 'COMPLETED'), SUM(state = 'CANCELLED'), \
             SUM(CASE WHEN state = 'COMPLETED' THEN size ELSE 0 END) \
             FROM uploads WHERE {FINISHED} AND {clause} AND ?1 = ?1 AND ?2 = ?2 \
             GROUP BY transfer_id"
        ))?;
        let rows = stmt.query_map(params![id, transfer], |r| {
            Ok(FinishedCounts {
                transfer_id: r.get(0)?,
                completed: r.get::<_, i64>(1)? as u32,
                cancelled: r.get::<_, i64>(2)? as u32,
                completed_bytes: r.get::<_, i64>(3)? as u64,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }
}

pub(crate) mod write {
    use super::*;

    /// Points an upload at its file again (added anew after a failure):
    /// path and stamp always; name and user params only while startUpload
    /// has not answered, since the object key was derived from them.
    pub(crate) fn refresh_file(
        tx: &Transaction<'_>,
        id: UploadId,
        new: &NewRow<'_>,
        with_name_and_params: bool,
    ) -> Result<()> {
        tx.execute(
            "UPDATE uploads SET path = ?2, size = ?3, mtime_ns = ?4, updated_at = ?5, \
             source = ?6 WHERE id = ?1",
            params![
                id,
                new.path,
                new.size as i64,
                new.mtime_ns,
                now_ms(),
                new.source()
            ],
        )?;
        if with_name_and_params {
            tx.execute(
                "UPDATE uploads SET file_name = ?2, user_params = ?3 WHERE id = ?1",
                params![id, new.file_name, serde_json::to_string(new.user_params)?],
            )?;
        }
        Ok(())
    }

    /// Deletes the finished uploads matching `sel` (their parts go with
    /// them), but those in `keep`. Returns how many were deleted.
    pub(crate) fn forget(tx: &Transaction<'_>, sel: &Selector, keep: &[UploadId]) -> Result<usize> {
        let (clause, id, transfer) = selector_sql(sel);
        let keep: Vec<String> = keep.iter().map(|k| k.to_string()).collect();
        Ok(tx.execute(
            &format!(
                "DELETE FROM uploads WHERE {FINISHED} AND {clause} AND ?1 = ?1 AND ?2 = ?2 \
                 AND id NOT IN ({})",
                keep.join(",")
            ),
            params![id, transfer],
        )?)
    }

    /// Deletes the finished uploads last changed before `before_ms`.
    pub(crate) fn expire_finished(tx: &Transaction<'_>, before_ms: i64) -> Result<usize> {
        Ok(tx.execute(
            &format!("DELETE FROM uploads WHERE {FINISHED} AND updated_at < ?1"),
            params![before_ms],
        )?)
    }

    /// Forgets the multipart upload of an upload (gone at the store): key,
    /// upload id, parts and hand-off tasks, so the next start makes a fresh
    /// one and no task of the old one is taken for a task of the new.
    pub(crate) fn drop_multipart(tx: &Transaction<'_>, id: UploadId) -> Result<()> {
        tx.execute("DELETE FROM parts WHERE upload = ?1", params![id])?;
        tx.execute("DELETE FROM handoff_tasks WHERE upload = ?1", params![id])?;
        tx.execute(
            "DELETE FROM handoff_tombstones WHERE upload = ?1",
            params![id],
        )?;
        tx.execute(
            "UPDATE uploads SET object_key = NULL, upload_id = NULL, part_size = NULL, \
             parts_total = 0, attempts = 0, next_attempt_at = 0, abort_state = 0 WHERE id = ?1",
            params![id],
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A queue of `pages` pages or more, the first leaf of its uploads table
    /// (the check walks a tree right to left: this one comes last) overwritten
    /// with junk.
    fn large_queue_damaged_at_the_end(path: &Path, pages: u64) {
        let mut s = Store::open(path).unwrap();
        let mut p = serde_json::Map::new();
        p.insert("note".into(), "x".repeat(3000).into());
        let tx = s.transaction().unwrap();
        for i in 0..pages {
            let hash = format!("{i:032x}");
            crate::store::write::insert_upload(
                &tx,
                &NewRow {
                    transfer_id: "t",
                    path: "/a",
                    file_name: "a",
                    file_hash: &hash,
                    size: 1,
                    mtime_ns: 0,
                    user_params: &p,
                    is_uri: false,
                    in_root: false,
                },
            )
            .unwrap();
        }
        tx.commit().unwrap();
        drop(s); // checkpoints the WAL into the file
        let page: i64 = Connection::open(path)
            .unwrap()
            .query_row(
                "SELECT pageno FROM dbstat WHERE name = 'uploads' AND pagetype = 'leaf' \
                 ORDER BY path LIMIT 1",
                [],
                |r| r.get(0),
            )
            .unwrap();
        let mut bytes = std::fs::read(path).unwrap();
        assert!(bytes.len() as u64 >= pages * 4096, "{}", bytes.len());
        let at = (page as usize - 1) * 4096;
        bytes[at..at + 64].fill(0xA5);
        std::fs::write(path, bytes).unwrap();
    }

    #[test]
    fn integrity_check_at_open_is_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("q.db");
        let pages = u64::try_from(INTEGRITY_BUDGET).unwrap() + 1000;
        large_queue_damaged_at_the_end(&path, pages);
        // A full check would find the damage; the bounded one stops first.
        let conn = Connection::open(&path).unwrap();
        let full: String = conn
            .query_row("PRAGMA quick_check(1)", [], |r| r.get(0))
            .unwrap();
        assert_ne!(full, "ok", "the damage is real");
        drop(conn);
        Store::open(&path).expect("open does not scan the whole queue");

        // A small queue is still checked whole.
        let small = dir.path().join("small.db");
        large_queue_damaged_at_the_end(&small, 50);
        let e: UploadError = Store::open(&small).err().unwrap().into();
        assert_eq!(e.code, ErrorCode::DatabaseCorrupt, "{}", e.message);
    }
}
