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
    /// The uploads the engine works on or may be asked to resume, in queue
    /// order: everything but finished ones.
    pub(crate) fn unfinished_uploads(&self) -> Result<Vec<UploadRow>> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {UPLOAD_COLUMNS} FROM uploads WHERE NOT {FINISHED} ORDER BY id"
        ))?;
        let rows = stmt.query_map([], read_upload)?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    /// Finished uploads matching `sel`, in queue order, each with its
    /// confirmed parts and bytes (counted here: their part rows are never
    /// loaded; a completed upload's are all of them).
    pub(crate) fn finished_uploads(&self, sel: &Selector) -> Result<Vec<(UploadRow, u32, u64)>> {
        let (clause, id, transfer) = selector_sql(sel);
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {UPLOAD_COLUMNS}, \
             (SELECT COUNT(*) FROM parts p WHERE p.upload = u.id AND p.etag IS NOT NULL), \
             (SELECT TOTAL(MIN(u.part_size, u.size - (p.number - 1) * u.part_size)) \
                FROM parts p WHERE p.upload = u.id AND p.etag IS NOT NULL) \
             FROM uploads u WHERE {FINISHED} AND {clause} AND ?1 = ?1 AND ?2 = ?2 ORDER BY id"
        ))?;
        let rows = stmt.query_map(params![id, transfer], |r| {
            Ok((
                read_upload(r)?,
                r.get::<_, i64>(20)? as u32,
                r.get::<_, f64>(21)? as u64,
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
            "UPDATE uploads SET path = ?2, size = ?3, mtime_ns = ?4, updated_at = ?5 WHERE id = ?1",
            params![id, new.path, new.size as i64, new.mtime_ns, now_ms()],
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
    /// them). Returns how many were deleted.
    pub(crate) fn forget(tx: &Transaction<'_>, sel: &Selector) -> Result<usize> {
        let (clause, id, transfer) = selector_sql(sel);
        Ok(tx.execute(
            &format!("DELETE FROM uploads WHERE {FINISHED} AND {clause} AND ?1 = ?1 AND ?2 = ?2"),
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
    /// upload id and parts, so the next start makes a fresh one.
    pub(crate) fn drop_multipart(tx: &Transaction<'_>, id: UploadId) -> Result<()> {
        tx.execute("DELETE FROM parts WHERE upload = ?1", params![id])?;
        tx.execute(
            "UPDATE uploads SET object_key = NULL, upload_id = NULL, part_size = NULL, \
             parts_total = 0, attempts = 0, next_attempt_at = 0, abort_state = 0 WHERE id = ?1",
            params![id],
        )?;
        Ok(())
    }
}
