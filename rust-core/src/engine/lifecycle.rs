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
        let path = f.path.to_string_lossy().into_owned();
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
        *t = Tracked::new(row, Vec::new());
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
