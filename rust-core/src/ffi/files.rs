//! Files on the platform's side: the directories it registers as stable
//! roots, and the `bookmark://` URIs iOS keeps for files outside its
//! container (the format itself is in `bookmark.rs`; pure functions, any
//! thread).

use super::{UploadEngine, UploaderError};
use crate::FileRoot;

#[uniffi::export]
impl UploadEngine {
    /// Registers the app's directories under stable names (replacing any
    /// registered before); call it at every launch, right after `open`
    /// (iOS: `documents`, `library`, `caches`, `tmp`; Android: `files`,
    /// `cache`, `externalFiles`). A file added under one is stored relative
    /// to it and found at the root's current path at each use, so an app
    /// update that moves the container loses nothing. Uploads under a root
    /// not registered wait. `InvalidArgument` for a bad name (an ASCII
    /// letter, then letters, digits, `_`, `-`; at most 32) or a path that
    /// is not absolute, changing nothing. Non-blocking; any thread.
    pub fn set_file_roots(&self, roots: Vec<FileRoot>) -> Result<(), UploaderError> {
        Ok(self.uploader()?.set_file_roots(roots)?)
    }
}

/// The `bookmark://` URI for the bookmark data of a file named `file_name`:
/// what to add for a file the app may read only through its bookmark.
#[uniffi::export]
pub fn bookmark_uri(file_name: String, bookmark: Vec<u8>) -> String {
    crate::bookmark_uri(&file_name, &bookmark)
}

/// The bookmark data in a `bookmark://` URI (base64url or standard base64),
/// or `None` when it is not one.
#[uniffi::export]
pub fn bookmark_data(uri: String) -> Option<Vec<u8>> {
    crate::bookmark_data(&uri)
}

/// The display name of a `bookmark://` URI (whole, `:` and all), or `None`.
#[uniffi::export]
pub fn bookmark_file_name(uri: String) -> Option<String> {
    crate::bookmark_file_name(&uri)
}
