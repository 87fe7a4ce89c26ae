//! Empty files. The engine sends a 0-byte file as one empty part, but some
//! S3-compatible stores refuse an empty part body, and S3 itself refuses a
//! complete with no parts. So for a 0-byte file the backend hands out a
//! presigned PutObject URL as part 1's URL: the engine's PUT then stores the
//! empty object directly, and `complete` only checks that it is there.
//!
//! The backend keeps no state, so later calls recognise an empty upload by
//! its key: every key starts with the content's hash, and 0 bytes have only
//! one hash. startUpload refuses a fileHash/fileSize pair that disagrees.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::store::Store;

/// XXH3-128 of no bytes: the fileHash of every 0-byte file.
pub(crate) const EMPTY_CONTENT_HASH: &str = "99aa06d3014798d86001c324468d497f";

/// Whether a key (already checked to be under `prefix`) names an empty file.
pub(crate) fn is_empty_upload_key(key: &str, prefix: &str) -> bool {
    key.strip_prefix(prefix)
        .and_then(|rest| rest.split('/').next())
        .is_some_and(|hash| hash == EMPTY_CONTENT_HASH)
}

/// Refuses a fileHash that cannot belong to a file of `file_size` bytes
/// where it matters: the empty-content hash marks a key as empty.
pub(crate) fn check_hash_and_size(file_hash: &str, file_size: u64) -> Result<(), String> {
    let empty_hash = file_hash == EMPTY_CONTENT_HASH;
    if file_size == 0 && !empty_hash {
        return Err(format!(
            "fileHash of a 0-byte file must be {EMPTY_CONTENT_HASH} (XXH3-128 of no bytes)"
        ));
    }
    if file_size > 0 && empty_hash {
        return Err("fileHash is the hash of no bytes, but fileSize is not 0".to_owned());
    }
    Ok(())
}

/// How completing an empty upload ended.
pub(crate) enum EmptyOutcome {
    /// The empty object is there (and the multipart upload opened for it is
    /// gone): answer this.
    Done(Response),
    /// No object yet: the client may have sent part 1 as a real part (an
    /// upload started before this scheme); complete the multipart upload.
    NotThere,
    /// Refuse with this status and message.
    Refused(StatusCode, String),
}

/// Completes an empty upload: the object must exist and be empty; the
/// multipart upload startUpload opened for it is then aborted. Repeating it
/// gives the same answer, so `complete` stays idempotent.
pub(crate) async fn complete_empty(
    store: &Store,
    key: &str,
    upload_id: &str,
    etags: &[&str],
) -> EmptyOutcome {
    if etags.len() != 1 {
        return EmptyOutcome::Refused(
            StatusCode::BAD_REQUEST,
            "an empty file has exactly one part".to_owned(),
        );
    }
    let head = match store.head(key).await {
        Ok(Some(head)) => head,
        Ok(None) => return EmptyOutcome::NotThere,
        Err(f) => {
            return EmptyOutcome::Refused(
                StatusCode::BAD_GATEWAY,
                format!("could not check for the empty object: {}", f.describe()),
            )
        }
    };
    if head.size.is_some_and(|s| s != 0) {
        tracing::warn!(%key, "the object of an empty upload is not empty");
        return EmptyOutcome::Refused(
            StatusCode::BAD_REQUEST,
            "the object stored for this empty file is not empty".to_owned(),
        );
    }
    match store.abort(key, upload_id).await {
        Ok(()) => tracing::info!(%key, "multipart upload of an empty file aborted"),
        // Aborted by an earlier complete, or an id the store never issued:
        // either way there is nothing left to free.
        Err(f) if matches!(f.status(), Some(400 | 403 | 404)) => {}
        // Worth a retry: complete can be repeated, and the client retries 5xx.
        Err(f) => {
            return EmptyOutcome::Refused(
                StatusCode::BAD_GATEWAY,
                format!(
                    "could not abort the multipart upload of an empty file: {}",
                    f.describe()
                ),
            )
        }
    }
    let etag = if head.etag.is_empty() {
        etags[0].to_owned()
    } else {
        head.etag
    };
    tracing::info!(%key, "empty file completed");
    EmptyOutcome::Done(Json(json!({ "key": key, "etag": etag })).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_keys_are_told_by_their_hash() {
        let key = format!("uploads/{EMPTY_CONTENT_HASH}/0000abcd/a.txt");
        assert!(is_empty_upload_key(&key, "uploads/"));
        assert!(!is_empty_upload_key(
            "uploads/0123456789abcdef0123456789abcdef/0000abcd/a.txt",
            "uploads/"
        ));
        // The hash as a file name does not count.
        assert!(!is_empty_upload_key(
            &format!("uploads/0123456789abcdef0123456789abcdef/0000abcd/{EMPTY_CONTENT_HASH}"),
            "uploads/"
        ));
        assert!(check_hash_and_size(EMPTY_CONTENT_HASH, 0).is_ok());
        assert!(check_hash_and_size("0123456789abcdef0123456789abcdef", 0).is_err());
        assert!(check_hash_and_size(EMPTY_CONTENT_HASH, 1).is_err());
        assert!(check_hash_and_size("0123456789abcdef0123456789abcdef", 1).is_ok());
    }
}
