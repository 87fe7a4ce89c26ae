//! Queries and writes for the queue's life cycle: files added again after a
//! failure, multipart uploads that vanished, finished uploads kept apart
//! from the engine's working set, forgotten and expired.

use super::*;

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
}
