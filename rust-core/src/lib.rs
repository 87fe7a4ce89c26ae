//! The upload engine of react-native-s3-bg-uploader.
//!
//! [`Uploader`] queues files, hashes them (XXH3-128), asks the app's backend
//! for S3 multipart uploads and presigned part URLs, streams the parts and
//! completes the uploads. Its queue lives in SQLite, so a killed or restarted
//! process picks up where it stopped without sending a confirmed part again.
//!
//! All methods are `async` and cheap: they send a command to the engine's own
//! runtime and wait for the answer, so any executor (or `block_on`) can drive
//! them. Only [`Uploader::add_file`] does real work on the way (hashing the
//! file on a blocking thread of the engine's runtime).

mod backend;
pub mod background;
mod bookmark;
mod buffer;
mod config;
mod engine;
mod error;
mod failure;
pub mod ffi;
mod hash;
pub mod js;
mod model;
pub mod notification;
pub mod phone;
pub mod platform_notice;
#[cfg(test)]
mod proptests;
pub mod redact;
mod roots;
mod source;
mod staging;
mod store;
pub mod tls;
mod transfer;
mod uploader;
mod xxh3;

pub use background::{EngineStatus, IdleReason, NetworkPolicy, NetworkState};
pub use bookmark::{bookmark_data, bookmark_file_name, bookmark_uri};
pub use config::{
    Config, RetryPolicy, DEFAULT_FINISHED_RETENTION_MS, DEFAULT_MAX_PARTS_IN_FLIGHT,
    MAX_ATTEMPTS_RANGE, MAX_PARTS_IN_FLIGHT, MAX_RETRY_DELAY_MS, MAX_URL_REFRESHES,
    TIMEOUT_MS_RANGE,
};
pub use engine::handoff::{
    HandoffSettings, PartTask, PartTransport, TaskOutcome, DEFAULT_URL_MARGIN,
};
pub use engine::phone::{LifecycleStatus, DEFAULT_PREHANDOFF_WINDOW};
pub use error::{ErrorCode, UploadError};
pub use model::{
    NewUpload, Progress, Selector, Summary, UploadEvent, UploadId, UploadInfo, UploadListener,
    UploadState,
};
pub use roots::{FileRoot, MAX_FILE_ROOTS, MAX_ROOT_NAME};
pub use source::{FileOpenError, FileOpener, FileSource, OpenedFile};
pub use staging::DEFAULT_STAGING_BUDGET;

uniffi::setup_scaffolding!();

use std::path::PathBuf;

use uploader::lock_queue;
#[cfg(test)]
pub(crate) use uploader::tests;
pub(crate) use uploader::QueueLock;
pub use uploader::{TaskReporter, Uploader, UploaderOptions, MAX_FILES_HASHING, MAX_OPENER_CALLS};

/// The contract's `fileHash` of a file: XXH3-128 of its whole content, as 32
/// lowercase hex digits. Blocking: it reads the whole file.
pub fn hash_file(path: &std::path::Path) -> Result<String, UploadError> {
    hash::hash_file(path)
        .map(|(h, _)| h)
        .map_err(UploadError::from)
}

/// The contract's `fileHash` of a file that only the platform can open:
/// `opener` turns `uri` into a descriptor, read with positioned reads.
/// Blocking: it reads the whole file.
pub fn hash_uri(uri: &str, opener: &dyn FileOpener) -> Result<String, UploadError> {
    // A replacement URI has nowhere to be stored here.
    let file = source::open_uri(opener, uri)
        .map_err(UploadError::from)?
        .file;
    hash::hash_descriptor(&file, &source::uri_for_message(uri))
        .map(|(h, _)| h)
        .map_err(UploadError::from)
}

/// Snapshots of every upload in a queue database, read without opening an
/// engine (so it works while another process is uploading). Blocking.
pub fn read_queue(db_path: &std::path::Path) -> Result<Vec<UploadInfo>, UploadError> {
    let store = store::Store::open_read_only(db_path).map_err(UploadError::from)?;
    engine::snapshot(&store).map_err(UploadError::from)
}

/// Moves a queue database that cannot be used (see
/// [`ErrorCode::DatabaseCorrupt`]) aside, with its WAL and shared-memory
/// files, to `<db>.corrupt-<unix ms>`, and returns that path. The next
/// [`Uploader::open`] starts an empty queue; the files already uploaded are
/// not affected, and unfinished uploads must be added again. Refused while
/// an uploader has the queue open. Blocking.
pub fn set_aside_database(db_path: &std::path::Path) -> Result<PathBuf, UploadError> {
    let _lock = lock_queue(db_path)?;
    if !db_path.exists() {
        return Err(UploadError::new(
            ErrorCode::NotFound,
            format!("no queue database at {}", db_path.display()),
        ));
    }
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    let with_suffix = |p: &std::path::Path, suffix: &str| {
        let mut s = p.as_os_str().to_owned();
        s.push(suffix);
        PathBuf::from(s)
    };
    let aside = with_suffix(db_path, &format!(".corrupt-{stamp}"));
    // The WAL goes first: a fresh database must never replay the old one's
    // WAL, and if this stops halfway the bad file is still in place.
    for suffix in ["-wal", "-shm", ""] {
        let from = with_suffix(db_path, suffix);
        if from.exists() {
            std::fs::rename(&from, with_suffix(&aside, suffix)).map_err(|e| {
                UploadError::new(
                    ErrorCode::Database,
                    format!("cannot move {} aside: {e}", from.display()),
                )
            })?;
        }
    }
    tracing::warn!(to = %aside.display(), "queue database set aside");
    Ok(aside)
}

/// The URL the engine POSTs to complete an upload (and, with the abort
/// base, to abort one): `{base}/{uploadId}/{key}` with exactly one `/`
/// between the pieces, the upload id encoded as one path segment and each
/// segment of the key encoded on its own (RFC 3986 unreserved characters
/// are kept). Backends can use it to check their routing.
pub fn complete_url(base: &str, upload_id: &str, key: &str) -> String {
    backend::join_complete_url(base, upload_id, key)
}
