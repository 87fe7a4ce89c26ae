//! The one error type of the API and the stable codes it carries.

use crate::error::ErrorCode as CoreCode;
use crate::UploadError;

/// The one error type of the API. The variant is the stable error code (its
/// snake_case form, e.g. `file_not_found`, is what the README lists); the
/// message is for people and has secrets removed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, uniffi::Error)]
#[uniffi(flat_error)]
pub enum UploaderError {
    /// The configuration is missing or invalid (URLs, headers, limits).
    #[error("{0}")]
    InvalidConfig(String),
    /// An argument is invalid (empty transfer id, reserved or non-object user params...).
    #[error("{0}")]
    InvalidArgument(String),
    /// No upload has the given id.
    #[error("{0}")]
    NotFound(String),
    /// The file does not exist (any more).
    #[error("{0}")]
    FileNotFound(String),
    /// The file changed after it was added.
    #[error("{0}")]
    FileChanged(String),
    /// The file exists but cannot be read (permission denied, I/O error).
    #[error("{0}")]
    FileUnreadable(String),
    /// The backend refused a request (4xx other than 401).
    #[error("{0}")]
    BackendRejected(String),
    /// The backend's answer does not follow the contract.
    #[error("{0}")]
    BackendInvalidResponse(String),
    /// The backend could not be reached after every retry.
    #[error("{0}")]
    BackendUnavailable(String),
    /// The storage refused a part.
    #[error("{0}")]
    StorageRejected(String),
    /// The storage could not be reached after every retry.
    #[error("{0}")]
    StorageUnavailable(String),
    /// The backend answered 401: set new headers, then resume.
    #[error("{0}")]
    AuthRequired(String),
    /// The person stopped the uploads: resume them.
    #[error("{0}")]
    UserStopped(String),
    /// The queue database failed (full, unwritable), or is in use by another process.
    #[error("{0}")]
    Database(String),
    /// The queue database is damaged: `set_aside_database` keeps it for
    /// inspection and lets the next open start an empty queue.
    #[error("{0}")]
    DatabaseCorrupt(String),
    /// The uploader was shut down.
    #[error("{0}")]
    Shutdown(String),
    /// A bug in the engine.
    #[error("{0}")]
    Internal(String),
}

impl UploaderError {
    /// The stable code, as stored and as listed in the README.
    pub fn code(&self) -> ErrorCode {
        match self {
            UploaderError::InvalidConfig(_) => ErrorCode::InvalidConfig,
            UploaderError::InvalidArgument(_) => ErrorCode::InvalidArgument,
            UploaderError::NotFound(_) => ErrorCode::NotFound,
            UploaderError::FileNotFound(_) => ErrorCode::FileNotFound,
            UploaderError::FileChanged(_) => ErrorCode::FileChanged,
            UploaderError::FileUnreadable(_) => ErrorCode::FileUnreadable,
            UploaderError::BackendRejected(_) => ErrorCode::BackendRejected,
            UploaderError::BackendInvalidResponse(_) => ErrorCode::BackendInvalidResponse,
            UploaderError::BackendUnavailable(_) => ErrorCode::BackendUnavailable,
            UploaderError::StorageRejected(_) => ErrorCode::StorageRejected,
            UploaderError::StorageUnavailable(_) => ErrorCode::StorageUnavailable,
            UploaderError::AuthRequired(_) => ErrorCode::AuthRequired,
            UploaderError::UserStopped(_) => ErrorCode::UserStopped,
            UploaderError::Database(_) => ErrorCode::Database,
            UploaderError::DatabaseCorrupt(_) => ErrorCode::DatabaseCorrupt,
            UploaderError::Shutdown(_) => ErrorCode::Shutdown,
            UploaderError::Internal(_) => ErrorCode::Internal,
        }
    }
}

impl From<UploadError> for UploaderError {
    fn from(e: UploadError) -> Self {
        let m = e.message;
        match e.code {
            CoreCode::InvalidConfig => UploaderError::InvalidConfig(m),
            CoreCode::InvalidArgument => UploaderError::InvalidArgument(m),
            CoreCode::NotFound => UploaderError::NotFound(m),
            CoreCode::FileNotFound => UploaderError::FileNotFound(m),
            CoreCode::FileChanged => UploaderError::FileChanged(m),
            CoreCode::FileUnreadable => UploaderError::FileUnreadable(m),
            CoreCode::BackendRejected => UploaderError::BackendRejected(m),
            CoreCode::BackendInvalidResponse => UploaderError::BackendInvalidResponse(m),
            CoreCode::BackendUnavailable => UploaderError::BackendUnavailable(m),
            CoreCode::StorageRejected => UploaderError::StorageRejected(m),
            CoreCode::StorageUnavailable => UploaderError::StorageUnavailable(m),
            CoreCode::AuthRequired => UploaderError::AuthRequired(m),
            CoreCode::UserStopped => UploaderError::UserStopped(m),
            CoreCode::Database => UploaderError::Database(m),
            CoreCode::DatabaseCorrupt => UploaderError::DatabaseCorrupt(m),
            CoreCode::Shutdown => UploaderError::Shutdown(m),
            CoreCode::Internal => UploaderError::Internal(m),
        }
    }
}

pub(super) type Result<T, E = UploaderError> = std::result::Result<T, E>;

pub(super) fn shut_down() -> UploaderError {
    UploaderError::Shutdown("the uploader has been shut down".into())
}

/// Stable error codes, as found in [`UploadFailure`]. Kotlin's
/// `code.name.lowercase()` and Swift's case names give the README's strings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, uniffi::Enum)]
pub enum ErrorCode {
    InvalidConfig,
    InvalidArgument,
    NotFound,
    FileNotFound,
    FileChanged,
    FileUnreadable,
    BackendRejected,
    BackendInvalidResponse,
    BackendUnavailable,
    StorageRejected,
    StorageUnavailable,
    AuthRequired,
    UserStopped,
    Database,
    DatabaseCorrupt,
    Shutdown,
    Internal,
}

impl From<CoreCode> for ErrorCode {
    fn from(c: CoreCode) -> Self {
        match c {
            CoreCode::InvalidConfig => ErrorCode::InvalidConfig,
            CoreCode::InvalidArgument => ErrorCode::InvalidArgument,
            CoreCode::NotFound => ErrorCode::NotFound,
            CoreCode::FileNotFound => ErrorCode::FileNotFound,
            CoreCode::FileChanged => ErrorCode::FileChanged,
            CoreCode::FileUnreadable => ErrorCode::FileUnreadable,
            CoreCode::BackendRejected => ErrorCode::BackendRejected,
            CoreCode::BackendInvalidResponse => ErrorCode::BackendInvalidResponse,
            CoreCode::BackendUnavailable => ErrorCode::BackendUnavailable,
            CoreCode::StorageRejected => ErrorCode::StorageRejected,
            CoreCode::StorageUnavailable => ErrorCode::StorageUnavailable,
            CoreCode::AuthRequired => ErrorCode::AuthRequired,
            CoreCode::UserStopped => ErrorCode::UserStopped,
            CoreCode::Database => ErrorCode::Database,
            CoreCode::DatabaseCorrupt => ErrorCode::DatabaseCorrupt,
            CoreCode::Shutdown => ErrorCode::Shutdown,
            CoreCode::Internal => ErrorCode::Internal,
        }
    }
}

/// Why an upload stopped (FAILED, or PAUSED for `AuthRequired`).
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct UploadFailure {
    pub code: ErrorCode,
    pub message: String,
}
