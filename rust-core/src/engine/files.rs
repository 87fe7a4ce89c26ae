//! The local file behind an upload: checked before parts are sent. A file
//! added as a URI is opened through the platform's opener by each part
//! upload, which checks the descriptor itself (no opener call on this task).

use super::*;

impl Engine {
    pub(super) fn check_file(&self, id: UploadId) -> std::result::Result<(), UploadError> {
        let row = &self.uploads[&id].row;
        if row.is_uri {
            return Ok(());
        }
        let stamp = FileStamp::of(std::path::Path::new(&row.path)).map_err(UploadError::from)?;
        if stamp.size != row.size || stamp.mtime_ns != row.mtime_ns {
            return Err(UploadError::new(
                ErrorCode::FileChanged,
                format!(
                    "{} changed after it was added (size {} -> {}); add it again to upload the new content",
                    row.path, row.size, stamp.size
                ),
            ));
        }
        Ok(())
    }

    /// An upload of a URI while no opener is registered (e.g. a background
    /// launch before the platform registered it): its parts wait.
    pub(super) fn waits_for_opener(&self, t: &Tracked) -> bool {
        t.row.is_uri && self.opener.get().is_none()
    }

    /// Where the parts of `id` are read from; `None` while it waits for an opener.
    pub(super) fn part_file(&self, id: UploadId) -> Option<Arc<PartFile>> {
        let row = &self.uploads[&id].row;
        if !row.is_uri {
            return Some(Arc::new(PartFile::Path(row.path.clone().into())));
        }
        Some(Arc::new(PartFile::Uri {
            uri: row.path.clone(),
            opener: self.opener.get()?,
            stamp: FileStamp {
                size: row.size,
                mtime_ns: row.mtime_ns,
            },
            calls: self.opener_calls.clone(),
        }))
    }
}
