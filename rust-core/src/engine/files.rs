//! The local file behind an upload: checked before parts are sent.

use super::*;

impl Engine {
    pub(super) fn check_file(&self, id: UploadId) -> std::result::Result<(), UploadError> {
        let row = &self.uploads[&id].row;
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
}
