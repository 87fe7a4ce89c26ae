//! Errors in two levels: [`Error`] is what the engine's modules return to each
//! other; [`UploadError`] is what callers see, with a stable [`ErrorCode`] and a
//! message that never carries presigned query strings, headers or user params.

use std::fmt;

/// Stable, machine-readable error codes. The string forms (`as_str`) are part
/// of the public contract: apps and scripts may branch on them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The configuration is missing or invalid (URLs, headers, limits).
    InvalidConfig,
    /// An argument of the call is invalid (reserved user param, empty transfer id...).
    InvalidArgument,
    /// No upload matches the given id.
    NotFound,
    /// The file does not exist (any more).
    FileNotFound,
    /// The file's size or modification time changed after it was added.
    FileChanged,
    /// The file exists but cannot be read (permission denied, I/O error).
    FileUnreadable,
    /// The backend refused the request (4xx other than 401).
    BackendRejected,
    /// The backend answered 2xx with a body that does not follow the contract.
    BackendInvalidResponse,
    /// The backend could not be reached or kept failing (network, 5xx, 429) after every retry.
    BackendUnavailable,
    /// The storage refused a part (4xx after URL refreshes, or a 2xx without ETag).
    StorageRejected,
    /// The storage could not be reached or kept failing after every retry.
    StorageUnavailable,
    /// The backend answered 401: new headers are needed, then resume.
    AuthRequired,
    /// The person stopped the uploads (Android's Task Manager, the iOS
    /// continued-processing UI): only an explicit resume goes on.
    UserStopped,
    /// The queue database failed (full disk, unwritable, locked by another uploader).
    Database,
    /// The queue database is corrupt or not a database. Move it aside (it is
    /// kept for inspection) and open again to start an empty queue.
    DatabaseCorrupt,
    /// The engine was shut down while the call was waiting.
    Shutdown,
    /// A bug in the engine; the message says where.
    Internal,
}

impl ErrorCode {
    /// The stable string form, e.g. `file_changed`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidConfig => "invalid_config",
            ErrorCode::InvalidArgument => "invalid_argument",
            ErrorCode::NotFound => "not_found",
            ErrorCode::FileNotFound => "file_not_found",
            ErrorCode::FileChanged => "file_changed",
            ErrorCode::FileUnreadable => "file_unreadable",
            ErrorCode::BackendRejected => "backend_rejected",
            ErrorCode::BackendInvalidResponse => "backend_invalid_response",
            ErrorCode::BackendUnavailable => "backend_unavailable",
            ErrorCode::StorageRejected => "storage_rejected",
            ErrorCode::StorageUnavailable => "storage_unavailable",
            ErrorCode::AuthRequired => "auth_required",
            ErrorCode::UserStopped => "user_stopped",
            ErrorCode::Database => "database",
            ErrorCode::DatabaseCorrupt => "database_corrupt",
            ErrorCode::Shutdown => "shutdown",
            ErrorCode::Internal => "internal",
        }
    }

    /// Parses the stable string form back (used when reading the database).
    pub fn parse(s: &str) -> Option<ErrorCode> {
        ALL_CODES.iter().copied().find(|c| c.as_str() == s)
    }
}

pub(crate) const ALL_CODES: [ErrorCode; 17] = [
    ErrorCode::InvalidConfig,
    ErrorCode::InvalidArgument,
    ErrorCode::NotFound,
    ErrorCode::FileNotFound,
    ErrorCode::FileChanged,
    ErrorCode::FileUnreadable,
    ErrorCode::BackendRejected,
    ErrorCode::BackendInvalidResponse,
    ErrorCode::BackendUnavailable,
    ErrorCode::StorageRejected,
    ErrorCode::StorageUnavailable,
    ErrorCode::AuthRequired,
    ErrorCode::UserStopped,
    ErrorCode::Database,
    ErrorCode::DatabaseCorrupt,
    ErrorCode::Shutdown,
    ErrorCode::Internal,
];

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The public error: a stable code and a message a person can act on.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct UploadError {
    pub code: ErrorCode,
    pub message: String,
}

impl UploadError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        UploadError {
            code,
            message: message.into(),
        }
    }
}

impl fmt::Display for UploadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for UploadError {}

/// Internal error. Converted into [`UploadError`] at the public boundary.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    #[error("{0}")]
    Public(#[from] UploadError),
    /// An upload's file could not be opened or read for lack of permission
    /// (`file_unreadable`). Final, unless the device's protected data was
    /// unavailable meanwhile (iOS data protection while locked): then the
    /// engine waits instead.
    #[error("{0}")]
    FileDenied(UploadError),
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("database error: {0}")]
    Json(#[from] serde_json::Error),
}

impl Error {
    #[cfg(test)]
    pub(crate) fn code(&self) -> ErrorCode {
        match self {
            Error::Public(e) | Error::FileDenied(e) => e.code,
            Error::Sqlite(e) if is_corrupt(e) => ErrorCode::DatabaseCorrupt,
            Error::Sqlite(_) | Error::Json(_) => ErrorCode::Database,
        }
    }
}

impl From<Error> for UploadError {
    fn from(e: Error) -> Self {
        match e {
            Error::Public(e) | Error::FileDenied(e) => e,
            Error::Sqlite(e) => {
                let code = if is_corrupt(&e) {
                    ErrorCode::DatabaseCorrupt
                } else {
                    ErrorCode::Database
                };
                UploadError::new(code, describe_sqlite(&e))
            }
            Error::Json(e) => UploadError::new(
                ErrorCode::Database,
                format!("stored record is unreadable: {e}"),
            ),
        }
    }
}

fn is_corrupt(e: &rusqlite::Error) -> bool {
    use rusqlite::ffi::ErrorCode as C;
    matches!(
        e.sqlite_error_code(),
        Some(C::DatabaseCorrupt) | Some(C::NotADatabase)
    )
}

/// A short, actionable description of a SQLite failure (never contains data).
fn describe_sqlite(e: &rusqlite::Error) -> String {
    use rusqlite::ffi::ErrorCode as C;
    match e.sqlite_error_code() {
        Some(C::DatabaseCorrupt) | Some(C::NotADatabase) => {
            "the queue database is corrupt or not a database; set it aside \
             (s3bgu recover, or set_aside_database) to start an empty queue"
                .to_string()
        }
        Some(C::DiskFull) => {
            "the queue database is full (no space left on the disk, or its size limit): \
             free some space, then resume"
                .to_string()
        }
        Some(C::ReadOnly) | Some(C::CannotOpen) | Some(C::PermissionDenied) => {
            format!("the queue database cannot be opened for writing: {e}")
        }
        _ => format!("queue database error: {e}"),
    }
}

pub(crate) type Result<T, E = Error> = std::result::Result<T, E>;

pub(crate) fn err(code: ErrorCode, message: impl Into<String>) -> Error {
    Error::Public(UploadError::new(code, message))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The quoted strings of the TypeScript array `const NAME = [ ... ]`.
    fn ts_array(source: &str, name: &str) -> Vec<String> {
        let start = source
            .find(&format!("export const {name} = ["))
            .unwrap_or_else(|| panic!("{name} not found"));
        let body = &source[start..];
        let body = &body[..body.find("]").expect("array end")];
        // Comments may hold apostrophes: keep code lines only.
        let code: String = body
            .lines()
            .filter(|l| {
                let l = l.trim_start();
                !(l.starts_with("/*") || l.starts_with('*') || l.starts_with("//"))
            })
            .collect();
        code.split('\'')
            .skip(1)
            .step_by(2)
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn the_javascript_api_lists_exactly_the_engine_codes_and_states() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../js/src/types.ts");
        let ts = std::fs::read_to_string(path).expect("js/src/types.ts");
        let mut js_codes = ts_array(&ts, "ENGINE_ERROR_CODES");
        let mut codes: Vec<String> = ALL_CODES.iter().map(|c| c.as_str().to_owned()).collect();
        js_codes.sort();
        codes.sort();
        assert_eq!(js_codes, codes, "ENGINE_ERROR_CODES in js/src/types.ts");
        for c in ALL_CODES {
            assert_eq!(ErrorCode::parse(c.as_str()), Some(c));
        }

        use crate::model::UploadState as S;
        let mut states: Vec<String> = [
            S::Pending,
            S::Initialized,
            S::Running,
            S::Paused,
            S::Completed,
            S::Failed,
            S::Cancelled,
        ]
        .iter()
        .map(|s| s.as_str().to_owned())
        .collect();
        let mut js_states = ts_array(&ts, "UPLOAD_STATES");
        states.sort();
        js_states.sort();
        assert_eq!(js_states, states, "UPLOAD_STATES in js/src/types.ts");
    }
}
