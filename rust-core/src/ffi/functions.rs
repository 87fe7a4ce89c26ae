//! Calls that need no open engine.

use super::error::Result;
use crate::{FileOpener, FileSource, UploadError};
use std::path::Path;
use std::sync::Arc;

/// The contract's `fileHash` of a file: XXH3-128 of its content as 32
/// lowercase hex digits. `path` is a path, a `file://` URI, or a URI that
/// `opener` opens (as in [`NewFile::path`]). Blocking: reads the whole file.
#[uniffi::export(default(opener = None))]
pub fn hash_file(path: String, opener: Option<Arc<dyn FileOpener>>) -> Result<String> {
    match FileSource::parse(&path)? {
        FileSource::Path(p) => Ok(crate::hash_file(&p)?),
        FileSource::Uri(uri) => {
            let opener = opener.ok_or_else(|| UploadError::from(crate::source::no_opener(&uri)))?;
            Ok(crate::hash_uri(&uri, opener.as_ref())?)
        }
    }
}

/// Moves a corrupt queue database (error `DatabaseCorrupt`) aside, with
/// its `-wal` and `-shm` files, to `<db>.corrupt-<unix ms>`, and returns that
/// path; the next `open` starts an empty queue. Refused while the queue is
/// open. Blocking (renames files): call it off the main thread.
#[uniffi::export]
pub fn set_aside_database(db_path: String) -> Result<String> {
    let aside = crate::set_aside_database(Path::new(&db_path))?;
    Ok(aside.to_string_lossy().into_owned())
}
