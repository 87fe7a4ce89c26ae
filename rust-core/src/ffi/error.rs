//! The one error type of the API and the stable codes it carries.

use crate::error::ErrorCode as CoreCode;
use crate::UploadError;

/// The one error type of the API. The variant names the stable error code;
/// [`UploaderError::error_code`] gives its string (`file_not_found`, as the
/// README and `js/src/types.ts` list them), the one platforms reject JS
/// promises with. `detail` (also the message) is for people and has
/// secrets removed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, uniffi::Error)]
pub enum UploaderError {
    /// The configuration is missing or invalid (URLs, headers, limits).
    #[error("{detail}")]
    InvalidConfig { detail: String },
    /// An argument is invalid (empty transfer id, reserved or non-object user params...).
    #[error("{detail}")]
    InvalidArgument { detail: String },
    /// No upload has the given id.
    #[error("{detail}")]
    NotFound { detail: String },
    /// The file does not exist (any more).
    #[error("{detail}")]
    FileNotFound { detail: String },
    /// The file changed after it was added.
    #[error("{detail}")]
    FileChanged { detail: String },
    /// The file exists but cannot be read (permission denied, I/O error).
    #[error("{detail}")]
    FileUnreadable { detail: String },
    /// The backend refused a request (4xx other than 401).
    #[error("{detail}")]
    BackendRejected { detail: String },
    /// The backend's answer does not follow the contract.
    #[error("{detail}")]
    BackendInvalidResponse { detail: String },
    /// The backend could not be reached after every retry.
    #[error("{detail}")]
    BackendUnavailable { detail: String },
    /// The storage refused a part.
    #[error("{detail}")]
    StorageRejected { detail: String },
    /// The storage could not be reached after every retry.
    #[error("{detail}")]
    StorageUnavailable { detail: String },
    /// The backend answered 401: set new headers, then resume.
    #[error("{detail}")]
    AuthRequired { detail: String },
    /// The person stopped the uploads: resume them.
    #[error("{detail}")]
    UserStopped { detail: String },
    /// The queue database failed (full, unwritable), or is in use by another process.
    #[error("{detail}")]
    Database { detail: String },
    /// The queue database is damaged: `set_aside_database` keeps it for
    /// inspection and lets the next open start an empty queue.
    #[error("{detail}")]
    DatabaseCorrupt { detail: String },
    /// The uploader was shut down.
    #[error("{detail}")]
    Shutdown { detail: String },
    /// A bug in the engine.
    #[error("{detail}")]
    Internal { detail: String },
}

impl UploaderError {
    /// The stable code, as stored and as listed in the README. Spelled out
    /// per variant: the code must never follow from a variant's name.
    pub fn core_code(&self) -> CoreCode {
        match self {
            UploaderError::InvalidConfig { .. } => CoreCode::InvalidConfig,
            UploaderError::InvalidArgument { .. } => CoreCode::InvalidArgument,
            UploaderError::NotFound { .. } => CoreCode::NotFound,
            UploaderError::FileNotFound { .. } => CoreCode::FileNotFound,
            UploaderError::FileChanged { .. } => CoreCode::FileChanged,
            UploaderError::FileUnreadable { .. } => CoreCode::FileUnreadable,
            UploaderError::BackendRejected { .. } => CoreCode::BackendRejected,
            UploaderError::BackendInvalidResponse { .. } => CoreCode::BackendInvalidResponse,
            UploaderError::BackendUnavailable { .. } => CoreCode::BackendUnavailable,
            UploaderError::StorageRejected { .. } => CoreCode::StorageRejected,
            UploaderError::StorageUnavailable { .. } => CoreCode::StorageUnavailable,
            UploaderError::AuthRequired { .. } => CoreCode::AuthRequired,
            UploaderError::UserStopped { .. } => CoreCode::UserStopped,
            UploaderError::Database { .. } => CoreCode::Database,
            UploaderError::DatabaseCorrupt { .. } => CoreCode::DatabaseCorrupt,
            UploaderError::Shutdown { .. } => CoreCode::Shutdown,
            UploaderError::Internal { .. } => CoreCode::Internal,
        }
    }

    /// The stable code as the uniffi enum.
    pub fn code(&self) -> ErrorCode {
        self.core_code().into()
    }
}

#[uniffi::export]
impl UploaderError {
    /// The stable code string (`invalid_argument`, `database_corrupt`, ...
    /// as `js/src/types.ts` lists them): what a promise is rejected with.
    /// Pure; any thread.
    pub fn error_code(&self) -> String {
        self.core_code().as_str().to_owned()
    }

    /// The message for people, without secrets (the same as `detail`).
    /// Pure; any thread.
    pub fn error_detail(&self) -> String {
        self.to_string()
    }
}

impl From<UploadError> for UploaderError {
    fn from(e: UploadError) -> Self {
        let m = e.message;
        match e.code {
            CoreCode::InvalidConfig => UploaderError::InvalidConfig { detail: m },
            CoreCode::InvalidArgument => UploaderError::InvalidArgument { detail: m },
            CoreCode::NotFound => UploaderError::NotFound { detail: m },
            CoreCode::FileNotFound => UploaderError::FileNotFound { detail: m },
            CoreCode::FileChanged => UploaderError::FileChanged { detail: m },
            CoreCode::FileUnreadable => UploaderError::FileUnreadable { detail: m },
            CoreCode::BackendRejected => UploaderError::BackendRejected { detail: m },
            CoreCode::BackendInvalidResponse => UploaderError::BackendInvalidResponse { detail: m },
            CoreCode::BackendUnavailable => UploaderError::BackendUnavailable { detail: m },
            CoreCode::StorageRejected => UploaderError::StorageRejected { detail: m },
            CoreCode::StorageUnavailable => UploaderError::StorageUnavailable { detail: m },
            CoreCode::AuthRequired => UploaderError::AuthRequired { detail: m },
            CoreCode::UserStopped => UploaderError::UserStopped { detail: m },
            CoreCode::Database => UploaderError::Database { detail: m },
            CoreCode::DatabaseCorrupt => UploaderError::DatabaseCorrupt { detail: m },
            CoreCode::Shutdown => UploaderError::Shutdown { detail: m },
            CoreCode::Internal => UploaderError::Internal { detail: m },
        }
    }
}

pub(super) type Result<T, E = UploaderError> = std::result::Result<T, E>;

pub(super) fn shut_down() -> UploaderError {
    UploaderError::Shutdown {
        detail: "the uploader has been shut down".into(),
    }
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
