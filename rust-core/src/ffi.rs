//! The uniffi facade: what the Kotlin and Swift wrappers call. It converts
//! and delegates to [`crate::Uploader`]; no upload logic lives here.
//!
//! Threads and blocking, for every export:
//! - `async` functions are Kotlin `suspend` functions and Swift `async`
//!   functions. They never block the calling thread: the work runs on the
//!   engine's own runtime. Any thread or coroutine may call them, many at once.
//! - Functions that are not `async` return at once unless their doc says they
//!   block; any thread may call them. Those that block (opening a queue,
//!   hashing a file) should stay off the main thread.
//! - [`UploadObserver::on_event`] is called on an engine thread, one event at a
//!   time and in order. It must return quickly and must not wait for the
//!   uploader (launch a coroutine or dispatch to a queue instead).
//!
//! Every failure is an [`UploaderError`]: its variant is the stable error
//! code and its message never contains presigned query strings, header
//! values or user params.

use crate::background;
use crate::error::ErrorCode as CoreCode;
use crate::model;
use crate::{Config, FileOpener, FileSource, NewUpload, UploadError, Uploader, UploaderOptions};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

mod files;
mod js_api;
mod platform;
pub use files::{bookmark_data, bookmark_file_name, bookmark_uri};
pub use js_api::{JsError, JsEventObserver};
pub use platform::certificates_der_from_pem;

// ----- errors -----

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
            CoreCode::Database => UploaderError::Database(m),
            CoreCode::DatabaseCorrupt => UploaderError::DatabaseCorrupt(m),
            CoreCode::Shutdown => UploaderError::Shutdown(m),
            CoreCode::Internal => UploaderError::Internal(m),
        }
    }
}

type Result<T, E = UploaderError> = std::result::Result<T, E>;

fn shut_down() -> UploaderError {
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

// ----- configuration -----

/// One header sent with every backend call (never with part uploads).
/// Its text form (Kotlin `toString`, Swift `description`) hides the value.
#[derive(Clone, PartialEq, Eq, uniffi::Record)]
#[uniffi::export(Debug, Display)]
pub struct HttpHeader {
    pub name: String,
    pub value: String,
}

/// Retries of every call: delays grow from `base_delay_ms` to `max_delay_ms`
/// with full jitter; after `max_attempts` failures in a row the upload fails.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct RetrySettings {
    #[uniffi(default = 8)]
    pub max_attempts: u32,
    #[uniffi(default = 1000)]
    pub base_delay_ms: u64,
    #[uniffi(default = 60000)]
    pub max_delay_ms: u64,
    /// New URLs fetched in a row for one part refused by the storage.
    #[uniffi(default = 4)]
    pub max_url_refreshes: u32,
    /// A backend call without a whole answer after this long is a failed attempt.
    #[uniffi(default = 60000)]
    pub request_timeout_ms: u64,
    /// A part upload that sends and receives nothing for this long is a failed attempt.
    #[uniffi(default = 60000)]
    pub stall_timeout_ms: u64,
}

/// Which networks parts may be sent on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, uniffi::Enum)]
pub enum NetworkPolicy {
    #[default]
    Any,
    /// Hold uploads while the reported network is metered.
    UnmeteredOnly,
}

/// Everything the engine needs to reach the app's backend; stored with the
/// queue so a background task can run without any JavaScript. Its text form
/// hides header values and URL queries.
#[derive(Clone, PartialEq, Eq, uniffi::Record)]
#[uniffi::export(Debug, Display)]
pub struct UploaderConfig {
    pub start_upload_url: String,
    pub upload_urls_url: String,
    /// Base of the complete route: `{completeUrl}/{uploadId}/{key}`.
    pub complete_url: String,
    /// `Any`, or `UnmeteredOnly` to hold uploads on metered networks.
    pub network_policy: NetworkPolicy,
    /// Optional abort route (same shape), called when an upload is cancelled.
    #[uniffi(default = None)]
    pub abort_url: Option<String>,
    /// Sent with every backend call, e.g. `Authorization`.
    #[uniffi(default)]
    pub headers: Vec<HttpHeader>,
    /// Part uploads in flight at once, shared by every file (1..=32).
    #[uniffi(default = 4)]
    pub max_parts_in_flight: u32,
    #[uniffi(default)]
    pub retry: RetrySettings,
    /// Notification templates for the wrappers; see [`render_notification`].
    #[uniffi(default = None)]
    pub notification_title: Option<String>,
    #[uniffi(default = None)]
    pub notification_text: Option<String>,
    /// PEM root certificates trusted on top of the device's, for backend
    /// calls and part uploads (private CAs). Never a way to skip checks.
    #[uniffi(default)]
    pub extra_root_certificates_pem: Vec<String>,
    /// Finished uploads are deleted this long after they finished; 0 keeps
    /// them until `forget`. Default: 7 days.
    #[uniffi(default = 604800000)]
    pub finished_retention_ms: u64,
}

impl From<UploaderConfig> for Config {
    fn from(c: UploaderConfig) -> Self {
        let mut config = Config::new(c.start_upload_url, c.upload_urls_url, c.complete_url);
        config.abort_url = c.abort_url;
        config.headers = c.headers.into_iter().map(|h| (h.name, h.value)).collect();
        config.max_parts_in_flight = c.max_parts_in_flight;
        config.retry = crate::RetryPolicy {
            max_attempts: c.retry.max_attempts,
            base_delay_ms: c.retry.base_delay_ms,
            max_delay_ms: c.retry.max_delay_ms,
            max_url_refreshes: c.retry.max_url_refreshes,
            request_timeout_ms: c.retry.request_timeout_ms,
            stall_timeout_ms: c.retry.stall_timeout_ms,
        };
        config.network_policy = match c.network_policy {
            NetworkPolicy::Any => background::NetworkPolicy::Any,
            NetworkPolicy::UnmeteredOnly => background::NetworkPolicy::UnmeteredOnly,
        };
        config.notification_title = c.notification_title;
        config.notification_text = c.notification_text;
        config.extra_root_certificates_pem = c.extra_root_certificates_pem;
        config.finished_retention_ms = c.finished_retention_ms;
        config
    }
}

impl From<Config> for UploaderConfig {
    fn from(c: Config) -> Self {
        UploaderConfig {
            start_upload_url: c.start_upload_url,
            upload_urls_url: c.upload_urls_url,
            complete_url: c.complete_url,
            network_policy: match c.network_policy {
                background::NetworkPolicy::Any => NetworkPolicy::Any,
                background::NetworkPolicy::UnmeteredOnly => NetworkPolicy::UnmeteredOnly,
            },
            abort_url: c.abort_url,
            headers: c
                .headers
                .into_iter()
                .map(|(name, value)| HttpHeader { name, value })
                .collect(),
            max_parts_in_flight: c.max_parts_in_flight,
            retry: RetrySettings {
                max_attempts: c.retry.max_attempts,
                base_delay_ms: c.retry.base_delay_ms,
                max_delay_ms: c.retry.max_delay_ms,
                max_url_refreshes: c.retry.max_url_refreshes,
                request_timeout_ms: c.retry.request_timeout_ms,
                stall_timeout_ms: c.retry.stall_timeout_ms,
            },
            notification_title: c.notification_title,
            notification_text: c.notification_text,
            extra_root_certificates_pem: c.extra_root_certificates_pem,
            finished_retention_ms: c.finished_retention_ms,
        }
    }
}

/// A configuration for a backend with the reference routes under `base_url`
/// (`/startUpload`, `/getUploadUrls`, `/complete`, `/abort`) and defaults for
/// the rest. Does not validate (`set_config` does).
#[uniffi::export]
pub fn config_for_base_url(base_url: String) -> UploaderConfig {
    Config::for_base_url(&base_url).into()
}

// ----- uploads -----

/// A file to add to the queue. Its text form hides the user params and a
/// URI's query.
#[derive(Clone, uniffi::Record)]
#[uniffi::export(Debug, Display)]
pub struct NewFile {
    /// Path of the file on this device, a `file://` URI, or a URI that only
    /// the platform can open (`content://...`, an iOS bookmark URI) which
    /// the registered [`FileOpener`] opens each time the file is read.
    pub path: String,
    /// Groups files; any non-empty string chosen by the app.
    pub transfer_id: String,
    /// Sent as `fileName`; defaults to the last component of `path`.
    #[uniffi(default = None)]
    pub file_name: Option<String>,
    /// A JSON object merged into the startUpload body. `fileName`,
    /// `fileHash` and `fileSize` are reserved.
    #[uniffi(default = "{}")]
    pub user_params_json: String,
}

/// Life cycle of one upload: PENDING -> INITIALIZED -> RUNNING -> COMPLETED;
/// PAUSED and FAILED (both resumable) from any unfinished state; CANCELLED is final.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, uniffi::Enum)]
pub enum UploadState {
    Pending,
    Initialized,
    Running,
    Paused,
    Completed,
    Failed,
    Cancelled,
}

impl From<model::UploadState> for UploadState {
    fn from(s: model::UploadState) -> Self {
        match s {
            model::UploadState::Pending => UploadState::Pending,
            model::UploadState::Initialized => UploadState::Initialized,
            model::UploadState::Running => UploadState::Running,
            model::UploadState::Paused => UploadState::Paused,
            model::UploadState::Completed => UploadState::Completed,
            model::UploadState::Failed => UploadState::Failed,
            model::UploadState::Cancelled => UploadState::Cancelled,
        }
    }
}

/// A snapshot of one upload.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct UploadRecord {
    /// Increases with every file added: also the queue order.
    pub id: i64,
    pub transfer_id: String,
    pub path: String,
    pub file_name: String,
    /// XXH3-128 of the content, 32 lowercase hex digits.
    pub file_hash: String,
    pub size: u64,
    pub state: UploadState,
    /// Object key, once startUpload answered.
    pub key: Option<String>,
    /// S3 multipart upload id, once startUpload answered.
    pub upload_id: Option<String>,
    pub part_size: Option<u64>,
    pub parts_total: u32,
    pub parts_done: u32,
    /// Confirmed bytes plus bytes of parts in flight.
    pub uploaded_bytes: u64,
    pub error: Option<UploadFailure>,
    /// Milliseconds since the Unix epoch.
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

impl From<model::UploadInfo> for UploadRecord {
    fn from(u: model::UploadInfo) -> Self {
        UploadRecord {
            id: u.id,
            transfer_id: u.transfer_id,
            path: u.path,
            file_name: u.file_name,
            file_hash: u.file_hash,
            size: u.size,
            state: u.state.into(),
            key: u.key,
            upload_id: u.upload_id,
            part_size: u.part_size,
            parts_total: u.parts_total,
            parts_done: u.parts_done,
            uploaded_bytes: u.uploaded_bytes,
            error: u.error.map(|e| UploadFailure {
                code: e.code.into(),
                message: e.message,
            }),
            created_at_ms: u.created_at_ms,
            updated_at_ms: u.updated_at_ms,
        }
    }
}

fn records(list: Vec<model::UploadInfo>) -> Vec<UploadRecord> {
    list.into_iter().map(Into::into).collect()
}

/// Which uploads a call applies to.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum UploadSelector {
    Upload { id: i64 },
    Transfer { transfer_id: String },
    All,
}

impl From<UploadSelector> for model::Selector {
    fn from(s: UploadSelector) -> Self {
        match s {
            UploadSelector::Upload { id } => model::Selector::Upload(id),
            UploadSelector::Transfer { transfer_id } => model::Selector::Transfer(transfer_id),
            UploadSelector::All => model::Selector::All,
        }
    }
}

/// The state of a set of uploads (a transfer, or everything), for a
/// notification or a progress bar.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, uniffi::Enum)]
pub enum AggregateState {
    /// No upload.
    Empty,
    /// At least one upload is pending, initialized or running.
    Running,
    /// Nothing runs; at least one upload is paused.
    Paused,
    /// Nothing runs or is paused; at least one upload failed.
    Failed,
    /// Every upload that was not cancelled is completed.
    Completed,
    /// Every upload was cancelled.
    Cancelled,
}

/// Aggregate over a transfer (`transfer_id` set) or over every upload.
/// Cancelled uploads count in `cancelled` only.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct TransferSummary {
    pub transfer_id: Option<String>,
    pub state: AggregateState,
    /// Files not cancelled.
    pub files: u32,
    pub completed_files: u32,
    pub pending: u32,
    pub initialized: u32,
    pub running: u32,
    pub paused: u32,
    pub failed: u32,
    pub cancelled: u32,
    pub total_bytes: u64,
    pub uploaded_bytes: u64,
    pub transfers: u32,
    /// Transfers whose uploads are all completed (cancelled ones aside).
    pub completed_transfers: u32,
}

fn summary_record(transfer_id: Option<String>, s: &model::Summary) -> TransferSummary {
    let state = if s.uploads == 0 {
        AggregateState::Empty
    } else if s.active() > 0 {
        AggregateState::Running
    } else if s.paused > 0 {
        AggregateState::Paused
    } else if s.failed > 0 {
        AggregateState::Failed
    } else if s.completed > 0 {
        AggregateState::Completed
    } else {
        AggregateState::Cancelled
    };
    TransferSummary {
        transfer_id,
        state,
        files: s.uploads - s.cancelled,
        completed_files: s.completed,
        pending: s.pending,
        initialized: s.initialized,
        running: s.running,
        paused: s.paused,
        failed: s.failed,
        cancelled: s.cancelled,
        total_bytes: s.total_bytes,
        uploaded_bytes: s.uploaded_bytes,
        transfers: s.transfers,
        completed_transfers: s.completed_transfers,
    }
}

impl From<&TransferSummary> for model::Summary {
    fn from(t: &TransferSummary) -> Self {
        model::Summary {
            uploads: t.files + t.cancelled,
            pending: t.pending,
            initialized: t.initialized,
            running: t.running,
            paused: t.paused,
            completed: t.completed_files,
            failed: t.failed,
            cancelled: t.cancelled,
            total_bytes: t.total_bytes,
            uploaded_bytes: t.uploaded_bytes,
            transfers: t.transfers,
            completed_transfers: t.completed_transfers,
        }
    }
}

/// Fills a notification template (`{percentage}`, `{uploadedSize}`,
/// `{totalSize}`, `{completedFiles}`, `{totalFiles}`, `{completedTransfers}`,
/// `{totalTransfers}`) from a summary. Pure; any thread.
#[uniffi::export]
pub fn render_notification(template: String, summary: TransferSummary) -> String {
    crate::notification::render(&template, &model::Summary::from(&summary))
}

/// Progress of one upload; sent at most four times a second per upload.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct UploadProgress {
    pub id: i64,
    pub transfer_id: String,
    pub uploaded_bytes: u64,
    pub total_bytes: u64,
    pub parts_done: u32,
    pub parts_total: u32,
}

/// What an [`UploadObserver`] receives.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum UploaderEvent {
    /// First event of every subscription: the state at that moment. Every
    /// later event is a change after it.
    Snapshot {
        uploads: Vec<UploadRecord>,
        summary: TransferSummary,
    },
    /// An upload's state changed (already committed to the queue).
    StateChanged {
        upload: UploadRecord,
    },
    Progress {
        progress: UploadProgress,
    },
}

impl From<&model::UploadEvent> for UploaderEvent {
    fn from(e: &model::UploadEvent) -> Self {
        match e {
            model::UploadEvent::StateChanged(u) => UploaderEvent::StateChanged {
                upload: u.clone().into(),
            },
            model::UploadEvent::Progress(p) => UploaderEvent::Progress {
                progress: UploadProgress {
                    id: p.id,
                    transfer_id: p.transfer_id.clone(),
                    uploaded_bytes: p.uploaded_bytes,
                    total_bytes: p.total_bytes,
                    parts_done: p.parts_done,
                    parts_total: p.parts_total,
                },
            },
        }
    }
}

// ----- background work -----

/// Why [`UploadEngine::run_until_idle`] returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, uniffi::Enum)]
pub enum IdleReason {
    /// Nothing left to run: every upload is completed, failed or cancelled.
    Idle,
    /// [`UploadEngine::suspend`] was called.
    Suspended,
    /// Uploads remain, but the network is offline or not allowed by the policy.
    WaitingForNetwork,
    /// The only unfinished uploads are paused by the app.
    AllPaused,
    /// Uploads wait for new headers (`set_config`), then `resume`.
    AuthRequired,
    /// Hand-off mode: the remaining parts are with the [`PartTransport`]
    /// (or wait for staging room). Safe to let the app be suspended.
    HandedOff,
}

impl From<background::IdleReason> for IdleReason {
    fn from(r: background::IdleReason) -> Self {
        match r {
            background::IdleReason::Idle => IdleReason::Idle,
            background::IdleReason::Suspended => IdleReason::Suspended,
            background::IdleReason::WaitingForNetwork => IdleReason::WaitingForNetwork,
            background::IdleReason::AllPaused => IdleReason::AllPaused,
            background::IdleReason::AuthRequired => IdleReason::AuthRequired,
            background::IdleReason::HandedOff => IdleReason::HandedOff,
        }
    }
}

/// The engine's own state, for a background task.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct EngineStatus {
    /// False after `suspend` until `start` or `run_until_idle`.
    pub running: bool,
    pub online: bool,
    pub metered: bool,
    /// The configured network policy allows the reported network.
    pub network_allowed: bool,
    /// Uploads pending, initialized or running.
    pub active: u32,
    pub paused: u32,
    /// Paused uploads that wait for new headers.
    pub auth_paused: u32,
    /// Bytes the active uploads still have to send.
    pub bytes_remaining: u64,
    /// Parts go to the registered [`PartTransport`] (hand-off mode).
    pub handoff: bool,
    /// Tasks with the transport now, and handed off since open.
    pub tasks_handed_off: u32,
    pub tasks_handed_off_total: u64,
    /// Bytes of staged part files now, and at most since open.
    pub staged_bytes: u64,
    pub staging_peak: u64,
}

impl From<background::EngineStatus> for EngineStatus {
    fn from(s: background::EngineStatus) -> Self {
        EngineStatus {
            running: s.running,
            online: s.network.online,
            metered: s.network.metered,
            network_allowed: s.network_allowed,
            active: s.active,
            paused: s.paused,
            auth_paused: s.auth_paused,
            bytes_remaining: s.bytes_remaining,
            handoff: s.handoff,
            tasks_handed_off: s.tasks_handed_off,
            tasks_handed_off_total: s.tasks_handed_off_total,
            staged_bytes: s.staged_bytes,
            staging_peak: s.staging_peak,
        }
    }
}

// ----- observers -----

/// Implemented in Kotlin or Swift to receive events; see
/// [`UploadEngine::subscribe`]. Called on an engine thread: return quickly.
/// Whatever it throws is logged and costs this observer that one event;
/// the engine and the other observers go on.
#[uniffi::export(foreign)]
pub trait UploadObserver: Send + Sync {
    fn on_event(&self, event: UploaderEvent) -> Result<(), ObserverError>;
}

/// What an observer may throw. Any other exception arrives as `Failed` too.
#[derive(Debug, thiserror::Error, uniffi::Error)]
pub enum ObserverError {
    #[error("the observer failed: {reason}")]
    Failed { reason: String },
}

impl From<uniffi::UnexpectedUniFFICallbackError> for ObserverError {
    fn from(e: uniffi::UnexpectedUniFFICallbackError) -> Self {
        ObserverError::Failed { reason: e.reason }
    }
}

struct Registered {
    observer: Sink,
}

/// A subscriber: typed records, or the spec's JSON (see `js_api`).
#[derive(Clone)]
enum Sink {
    Records(Arc<dyn UploadObserver>),
    Json(Arc<dyn js_api::JsEventObserver>),
}

/// Fans the engine's single listener out to every subscription.
#[derive(Default)]
struct ObserverHub {
    observers: Mutex<BTreeMap<u64, Registered>>,
    next_id: AtomicU64,
}

impl ObserverHub {
    fn lock(&self) -> MutexGuard<'_, BTreeMap<u64, Registered>> {
        self.observers.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn deliver(observer: &Arc<dyn UploadObserver>, event: UploaderEvent) {
    // A throwing observer must not stop the engine, whose thread this is.
    // Its message is app code's and may hold anything: it is not logged.
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| observer.on_event(event))) {
        Ok(Ok(())) => {}
        Ok(Err(_)) | Err(_) => {
            tracing::warn!("an upload observer failed; it missed one event")
        }
    }
}

impl model::UploadListener for ObserverHub {
    fn on_event(&self, event: &model::UploadEvent) {
        let sinks: Vec<Sink> = self.lock().values().map(|r| r.observer.clone()).collect();
        if sinks.is_empty() {
            return;
        }
        // Each form is built once, and only if someone wants it.
        let mut record = None;
        let mut json = None;
        for sink in &sinks {
            match sink {
                Sink::Records(o) => {
                    let e = record.get_or_insert_with(|| UploaderEvent::from(event));
                    deliver(o, e.clone());
                }
                Sink::Json(o) => {
                    let (name, body) = json.get_or_insert_with(|| crate::js::event_json(event));
                    js_api::deliver_json(o, name, body);
                }
            }
        }
    }
}

/// Ends its subscription when cancelled or closed (Kotlin `close()`, Swift
/// deinit). An event being delivered at that moment may still arrive.
#[derive(uniffi::Object)]
pub struct Subscription {
    hub: Weak<ObserverHub>,
    id: u64,
    cancelled: Arc<AtomicBool>,
}

#[uniffi::export]
impl Subscription {
    /// Ends the subscription. Idempotent; non-blocking; any thread.
    pub fn cancel(&self) {
        if let Some(hub) = self.hub.upgrade() {
            let mut observers = hub.lock();
            self.cancelled.store(true, Ordering::SeqCst);
            observers.remove(&self.id);
        } else {
            self.cancelled.store(true, Ordering::SeqCst);
        }
    }

    /// Whether the observer still receives events.
    pub fn is_active(&self) -> bool {
        !self.cancelled.load(Ordering::SeqCst)
            && self
                .hub
                .upgrade()
                .is_some_and(|hub| hub.lock().contains_key(&self.id))
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.cancel();
    }
}

// ----- the uploader -----

/// Queues opened in this process, so a second `open` of a path shares the
/// first one's engine.
static OPEN_QUEUES: Mutex<BTreeMap<PathBuf, Weak<UploadEngine>>> = Mutex::new(BTreeMap::new());

fn open_queues() -> MutexGuard<'static, BTreeMap<PathBuf, Weak<UploadEngine>>> {
    OPEN_QUEUES.lock().unwrap_or_else(|e| e.into_inner())
}

/// One gate per queue path, held while that queue opens: two opens of one
/// path wait for each other (the second gets the first's engine), while the
/// map of open queues stays free during the blocking open.
static OPENING: Mutex<BTreeMap<PathBuf, Arc<Mutex<()>>>> = Mutex::new(BTreeMap::new());

fn opening_gate(path: &Path) -> Arc<Mutex<()>> {
    OPENING
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .entry(path.to_path_buf())
        .or_default()
        .clone()
}

/// The upload engine over one queue database.
///
/// One engine per database: within a process, a second `open` of the same
/// path returns the same engine (shared by both callers) while it is open;
/// another process gets a `Database` error until the first one closes it.
/// The engine stops when [`UploadEngine::shutdown`] is called or the last
/// reference is closed (Kotlin `close()`, Swift deinit).
#[derive(uniffi::Object)]
pub struct UploadEngine {
    db_path: PathBuf,
    /// `None` once shut down.
    uploader: Mutex<Option<Arc<Uploader>>>,
    hub: Arc<ObserverHub>,
}

impl UploadEngine {
    fn uploader(&self) -> Result<Arc<Uploader>> {
        self.uploader
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .ok_or_else(shut_down)
    }

    /// True while its engine really runs: an engine whose task ended
    /// (after an internal error) is not handed out again.
    fn is_open(&self) -> bool {
        self.uploader
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .is_some_and(|u| u.is_running())
    }

    /// Registers `sink` on the engine's task and hands it the snapshot
    /// first: only that task delivers events, so registering before the
    /// snapshot cannot let a change overtake it.
    fn register(
        &self,
        sink: Sink,
        snapshot: impl FnOnce(Vec<model::UploadInfo>, model::Summary) + Send + 'static,
    ) -> Result<Arc<Subscription>> {
        let uploader = self.uploader()?;
        let id = self.hub.next_id.fetch_add(1, Ordering::Relaxed);
        let cancelled = Arc::new(AtomicBool::new(false));
        let hub = self.hub.clone();
        let flag = cancelled.clone();
        uploader.inspect(move |uploads, summary| {
            {
                let mut observers = hub.lock();
                if flag.load(Ordering::SeqCst) {
                    return;
                }
                observers.insert(id, Registered { observer: sink });
            }
            snapshot(uploads, summary);
        })?;
        Ok(Arc::new(Subscription {
            hub: Arc::downgrade(&self.hub),
            id,
            cancelled,
        }))
    }

    fn queue_path(db_path: &str) -> Result<PathBuf> {
        if db_path.trim().is_empty() {
            return Err(UploaderError::InvalidArgument(
                "the database path must not be empty".into(),
            ));
        }
        std::path::absolute(Path::new(db_path)).map_err(|e| {
            UploaderError::InvalidArgument(format!("{db_path} is not a usable path: {e}"))
        })
    }
}

#[uniffi::export]
impl UploadEngine {
    /// Opens (creating if needed) the queue database at `db_path` and starts
    /// the engine on its own threads. With `start` false the engine loads the
    /// queue but sends nothing until `start` or `run_until_idle` (report the
    /// network first). If this process already has the path open, returns
    /// that engine and ignores `start`.
    ///
    /// Blocking (opens and migrates the database): call it off the main thread.
    #[uniffi::constructor(default(start = true))]
    pub fn open(db_path: String, start: bool) -> Result<Arc<UploadEngine>> {
        let path = Self::queue_path(&db_path)?;
        let gate = opening_gate(&path);
        let _opening = gate.lock().unwrap_or_else(|e| e.into_inner());
        let known = {
            let mut queues = open_queues();
            queues.retain(|_, engine| engine.strong_count() > 0);
            queues.get(&path).and_then(Weak::upgrade)
        };
        if let Some(engine) = known {
            if engine.is_open() {
                return Ok(engine);
            }
            // Its engine stopped: later calls on it answer `shutdown`.
            engine
                .uploader
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .take();
        }
        let mut options = UploaderOptions::new(&path);
        options.start = start;
        let uploader = Uploader::open(options)?;
        let hub = Arc::new(ObserverHub::default());
        uploader.set_listener(Some(hub.clone()));
        let engine = Arc::new(UploadEngine {
            db_path: path.clone(),
            uploader: Mutex::new(Some(Arc::new(uploader))),
            hub,
        });
        open_queues().insert(path, Arc::downgrade(&engine));
        Ok(engine)
    }

    /// The absolute path of the queue database.
    pub fn db_path(&self) -> String {
        self.db_path.to_string_lossy().into_owned()
    }

    /// Validates and stores the configuration (persisted with the queue).
    /// New headers apply to the next backend call. Async.
    pub async fn set_config(&self, config: UploaderConfig) -> Result<()> {
        Ok(self.uploader()?.set_config(config.into()).await?)
    }

    /// The stored configuration, or `None` before the first `set_config`. Async.
    pub async fn config(&self) -> Result<Option<UploaderConfig>> {
        Ok(self.uploader()?.config().await?.map(Into::into))
    }

    /// Hashes the file (XXH3-128, on an engine thread: seconds for big
    /// files) and queues it, committed before this returns. Adding the same
    /// content to the same transfer again returns the existing upload unless
    /// that one was cancelled. Needs a configuration. Async.
    pub async fn add_file(&self, file: NewFile) -> Result<UploadRecord> {
        let user_params = match serde_json::from_str::<serde_json::Value>(&file.user_params_json) {
            Ok(serde_json::Value::Object(map)) => map,
            // The text may hold secrets: describe it, never quote it.
            _ => {
                return Err(UploaderError::InvalidArgument(
                    "userParamsJson must be a JSON object".into(),
                ))
            }
        };
        // The engine tells paths from URIs (FileSource::parse).
        let new = NewUpload {
            path: PathBuf::from(file.path),
            transfer_id: file.transfer_id,
            file_name: file.file_name,
            user_params,
        };
        Ok(self.uploader()?.add_file(new).await?.into())
    }

    /// Registers the opener of files added as URIs (`content://...`), or
    /// removes it with `None`. Uploads of URIs wait (they do not fail) while
    /// no opener is registered, so after a restart register it right after
    /// `open`. Non-blocking; any thread.
    pub fn set_file_opener(&self, opener: Option<Arc<dyn FileOpener>>) -> Result<()> {
        self.uploader()?.set_file_opener(opener);
        Ok(())
    }

    /// Pauses the selected unfinished uploads (parts in flight stop and are
    /// sent again on resume). Returns the uploads that changed. Async.
    pub async fn pause(&self, selector: UploadSelector) -> Result<Vec<UploadRecord>> {
        Ok(records(self.uploader()?.pause(selector.into()).await?))
    }

    /// Resumes the selected PAUSED or FAILED uploads with a fresh round of
    /// retries. Returns the uploads that changed. Async.
    pub async fn resume(&self, selector: UploadSelector) -> Result<Vec<UploadRecord>> {
        Ok(records(self.uploader()?.resume(selector.into()).await?))
    }

    /// Cancels the selected uploads that are not completed (final; the abort
    /// route is called when configured). Returns the uploads that changed. Async.
    pub async fn cancel(&self, selector: UploadSelector) -> Result<Vec<UploadRecord>> {
        Ok(records(self.uploader()?.cancel(selector.into()).await?))
    }

    /// Deletes the selected finished uploads (COMPLETED, or CANCELLED with
    /// the abort call done); FAILED and PAUSED ones must be cancelled
    /// first. One named upload that is not finished is an `InvalidArgument`
    /// error. Returns how many were deleted. Async.
    pub async fn forget(&self, selector: UploadSelector) -> Result<u64> {
        Ok(self.uploader()?.forget(selector.into()).await?)
    }

    /// Snapshots of the selected uploads, in queue order (empty for an
    /// unknown upload id). Async.
    pub async fn uploads(&self, selector: UploadSelector) -> Result<Vec<UploadRecord>> {
        Ok(records(self.uploader()?.uploads(selector.into()).await?))
    }

    /// Aggregate of one transfer, or of every upload with `None`. Async.
    pub async fn summary(&self, transfer_id: Option<String>) -> Result<TransferSummary> {
        let s = self.uploader()?.summary(transfer_id.clone()).await?;
        Ok(summary_record(transfer_id, &s))
    }

    /// One summary per transfer, in the order transfers were first used. Async.
    pub async fn transfer_summaries(&self) -> Result<Vec<TransferSummary>> {
        let uploader = self.uploader()?;
        let mut transfers: Vec<String> = Vec::new();
        for u in uploader.uploads(model::Selector::All).await? {
            if !transfers.contains(&u.transfer_id) {
                transfers.push(u.transfer_id);
            }
        }
        let mut out = Vec::with_capacity(transfers.len());
        for t in transfers {
            let s = uploader.summary(Some(t.clone())).await?;
            out.push(summary_record(Some(t), &s));
        }
        Ok(out)
    }

    /// Registers `observer`. Its first event is a `Snapshot` of every upload;
    /// then it gets every state change and progress, in order, with nothing
    /// missed or repeated between the snapshot and the first change. Keep
    /// the returned handle: closing or cancelling it ends the subscription.
    /// Non-blocking; any thread.
    pub fn subscribe(&self, observer: Arc<dyn UploadObserver>) -> Result<Arc<Subscription>> {
        let sink = Sink::Records(observer.clone());
        self.register(sink, move |uploads, summary| {
            deliver(
                &observer,
                UploaderEvent::Snapshot {
                    uploads: records(uploads),
                    summary: summary_record(None, &summary),
                },
            );
        })
    }

    /// Lets the engine send (after `open(start = false)` or `suspend`). Async.
    pub async fn start(&self) -> Result<()> {
        Ok(self.uploader()?.start().await?)
    }

    /// For a background task: starts the engine and returns when nothing is
    /// left that it can run, saying why. Async; can take hours.
    pub async fn run_until_idle(&self) -> Result<IdleReason> {
        Ok(self.uploader()?.run_until_idle().await?.into())
    }

    /// For a background task whose time is up: stops every request in flight
    /// (their parts are sent again later; everything confirmed is already
    /// committed) and makes `run_until_idle` return `Suspended`. No upload
    /// changes state. Async; returns within milliseconds.
    pub async fn suspend(&self) -> Result<()> {
        Ok(self.uploader()?.suspend().await?)
    }

    /// Reports the network the platform sees (the engine assumes online and
    /// unmetered until told). Offline, or metered under `UnmeteredOnly`,
    /// holds every upload without changing its state; an allowed network
    /// continues them. Non-blocking; any thread.
    pub fn set_network_state(&self, online: bool, metered: bool) -> Result<()> {
        self.uploader()?
            .set_network(background::NetworkState { online, metered });
        Ok(())
    }

    /// Running flag, network and counts, taken in one step. Async.
    pub async fn status(&self) -> Result<EngineStatus> {
        Ok(self.uploader()?.status().await?.into())
    }

    /// Bytes the active uploads still have to send (Android's transfer
    /// estimates). Async.
    pub async fn bytes_remaining(&self) -> Result<u64> {
        Ok(self.uploader()?.bytes_remaining().await?)
    }

    /// Stops the engine and closes the queue for every holder of this
    /// engine; later calls fail with `Shutdown`. Parts in flight are sent
    /// again by the next engine on this queue. Idempotent. Async.
    pub async fn shutdown(&self) {
        let uploader = self
            .uploader
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(u) = uploader {
            u.close().await;
            self.hub.lock().clear();
            // The queue's lock goes with the last reference (calls still
            // running hold one only until they see the shutdown).
            drop(u);
        }
        let mut queues = open_queues();
        if queues
            .get(&self.db_path)
            .is_some_and(|w| std::ptr::eq(w.as_ptr(), self))
        {
            queues.remove(&self.db_path);
        }
    }
}

// ----- part hand-off (iOS background URLSession) -----

/// One part upload for the platform: PUT the file at `file_path` (exactly
/// `length` bytes) to `url`, then call [`UploadEngine::report_part_task`].
/// Its text form (Kotlin `toString`, Swift `description`) shows where the
/// URL goes but not its query, so logging a task leaks no signature.
#[derive(Clone, PartialEq, Eq, uniffi::Record)]
#[uniffi::export(Debug, Display)]
pub struct PartTask {
    /// Made by the engine, unique, kept across relaunches: store it with the
    /// task (iOS: `taskDescription`) and report with it.
    pub task_id: String,
    /// The engine's upload id.
    pub upload: i64,
    pub part_number: u32,
    /// Presigned PUT URL. A bearer secret: never log it.
    pub url: String,
    /// The staged file holding exactly this part; do not modify or delete it
    /// (the engine deletes it after the report).
    pub file_path: String,
    /// Bytes to send (`Content-Length`).
    pub length: u64,
    /// Do not start before this time (ms since the Unix epoch), 0 for at
    /// once. iOS: `earliestBeginDate`.
    pub earliest_begin_ms: i64,
    /// May use a metered network (false under the `UnmeteredOnly` policy).
    /// iOS: `allowsExpensiveNetworkAccess` and
    /// `allowsConstrainedNetworkAccess` of the request. When the policy
    /// changes, the engine cancels the task and submits the part again.
    pub allow_metered: bool,
}

/// How a handed-off task ended. Its text form shows the body and message
/// as error messages do (a storage may echo the URL's credential).
#[derive(Clone, PartialEq, Eq, uniffi::Enum)]
#[uniffi::export(Debug, Display)]
pub enum PartTaskResult {
    /// The storage answered. Pass the `ETag` and `Retry-After` headers
    /// verbatim and, for errors, the start of the body (it says whether a
    /// 400 is an expired URL).
    Response {
        status: u16,
        etag: Option<String>,
        retry_after: Option<String>,
        body: String,
    },
    /// No answer (connection lost, timeout, file unreadable).
    NoResponse { message: String },
    /// The task was cancelled by the system or the user, not by the engine.
    Cancelled,
    /// The session has no task with this id.
    UnknownTask,
}

impl From<PartTaskResult> for crate::TaskOutcome {
    fn from(r: PartTaskResult) -> Self {
        match r {
            PartTaskResult::Response {
                status,
                etag,
                retry_after,
                body,
            } => crate::TaskOutcome::Response {
                status,
                etag,
                retry_after,
                body,
            },
            PartTaskResult::NoResponse { message } => crate::TaskOutcome::TransportError(message),
            PartTaskResult::Cancelled => crate::TaskOutcome::Cancelled,
            PartTaskResult::UnknownTask => crate::TaskOutcome::UnknownTask,
        }
    }
}

// ----- text forms without secrets -----
//
// Exported as uniffi traits, so the generated Kotlin `toString` and Swift
// `description` of these records call them instead of printing every field.

/// `Display` as the one-line `Debug`: what the foreign `toString` shows.
macro_rules! display_as_debug {
    ($($t:ty),*) => {$(
        impl std::fmt::Display for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "{self:?}")
            }
        }
    )*};
}
display_as_debug!(
    HttpHeader,
    UploaderConfig,
    NewFile,
    PartTask,
    PartTaskResult
);

impl std::fmt::Debug for HttpHeader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpHeader")
            .field("name", &self.name)
            .field("value", &crate::redact::REDACTED)
            .finish()
    }
}

impl std::fmt::Debug for UploaderConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use crate::redact::url_for_debug;
        // Every field named: a new one does not compile until it is decided
        // here whether it may be shown.
        let UploaderConfig {
            start_upload_url,
            upload_urls_url,
            complete_url,
            network_policy,
            abort_url,
            headers,
            max_parts_in_flight,
            retry,
            notification_title,
            notification_text,
            extra_root_certificates_pem,
            finished_retention_ms,
        } = self;
        f.debug_struct("UploaderConfig")
            .field("start_upload_url", &url_for_debug(start_upload_url))
            .field("upload_urls_url", &url_for_debug(upload_urls_url))
            .field("complete_url", &url_for_debug(complete_url))
            .field("network_policy", network_policy)
            .field("abort_url", &abort_url.as_deref().map(url_for_debug))
            .field("headers", headers)
            .field("max_parts_in_flight", max_parts_in_flight)
            .field("retry", retry)
            .field("notification_title", notification_title)
            .field("notification_text", notification_text)
            .field(
                "extra_root_certificates_pem",
                &format_args!("[{} PEM texts]", extra_root_certificates_pem.len()),
            )
            .field("finished_retention_ms", finished_retention_ms)
            .finish()
    }
}

impl std::fmt::Debug for NewFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let NewFile {
            path,
            transfer_id,
            file_name,
            user_params_json: _,
        } = self;
        f.debug_struct("NewFile")
            .field("path", &crate::source::path_for_debug(path))
            .field("transfer_id", transfer_id)
            .field("file_name", file_name)
            .field("user_params_json", &crate::redact::REDACTED)
            .finish()
    }
}

impl std::fmt::Debug for PartTask {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Fields named one by one: one added later stays hidden until it is
        // added here.
        f.debug_struct("PartTask")
            .field("task_id", &self.task_id)
            .field("upload", &self.upload)
            .field("part_number", &self.part_number)
            .field("url", &crate::redact::url_for_debug(&self.url))
            .field("file_path", &self.file_path)
            .field("length", &self.length)
            .field("earliest_begin_ms", &self.earliest_begin_ms)
            .field("allow_metered", &self.allow_metered)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for PartTaskResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use crate::redact::excerpt;
        match self {
            PartTaskResult::Response {
                status,
                etag,
                retry_after,
                body,
            } => f
                .debug_struct("Response")
                .field("status", status)
                .field("etag", etag)
                .field("retry_after", retry_after)
                .field("body", &excerpt(body.as_bytes(), &[]))
                .finish(),
            PartTaskResult::NoResponse { message } => f
                .debug_struct("NoResponse")
                .field("message", &excerpt(message.as_bytes(), &[]))
                .finish(),
            PartTaskResult::Cancelled => f.write_str("Cancelled"),
            PartTaskResult::UnknownTask => f.write_str("UnknownTask"),
        }
    }
}

/// Whether the engine sends parts itself or hands them to the transport.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, uniffi::Enum)]
pub enum PartMode {
    /// The engine sends parts (app in the foreground). Default.
    Direct,
    /// Parts are staged and handed to the [`PartTransport`] (app about to be suspended).
    Handoff,
}

/// Hand-off tuning.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct HandoffSettings {
    /// Staged part files, in bytes, at most (default 256 MiB). A part
    /// larger than this is never handed off: it waits for `Direct` mode.
    #[uniffi(default = 268435456)]
    pub staging_budget_bytes: u64,
    /// A URL is refreshed before hand-off when less than this remains of
    /// its life (the system may start a task late). Default 15 minutes.
    #[uniffi(default = 900000)]
    pub url_margin_ms: u64,
}

/// What a transport may throw from `submit`: the part counts one failed
/// attempt and is tried again later.
#[derive(Debug, thiserror::Error, uniffi::Error)]
pub enum SubmitError {
    #[error("the transport refused the task: {reason}")]
    Refused { reason: String },
}

impl From<uniffi::UnexpectedUniFFICallbackError> for SubmitError {
    fn from(e: uniffi::UnexpectedUniFFICallbackError) -> Self {
        SubmitError::Refused { reason: e.reason }
    }
}

/// Implemented by the platform (iOS: a background `URLSession`). Both
/// methods are called on an engine thread: return at once.
///
/// The platform's duties, in order:
/// 1. At every launch: `open` (with `start = false` when launched into the
///    background, so nothing is sent directly before the mode is set), then
///    `set_part_transport`, then `reconcile_part_tasks` with the ids of
///    every task the session still has (iOS: `getAllTasks`, each task's
///    `taskDescription`), and cancel the ids it returns. Until that call,
///    the tasks of the previous process count as still running.
/// 2. On the way into suspension: `set_part_mode(Handoff)`, then
///    `run_until_idle` inside a `beginBackgroundTask` window; it returns
///    `HandedOff` once every part it can stage is with the session.
/// 3. For every task that ends (delegate `didCompleteWithError`), at any
///    time and from any thread: `report_part_task`. In a background wake-up
///    (`handleEventsForBackgroundURLSession`), report every finished task,
///    then `run_until_idle` before calling the system's completion handler:
///    that is when `complete` is sent for uploads whose last part just
///    finished, and the next parts are handed off.
/// 4. Back in the foreground: `set_part_mode(Direct)`; tasks already handed
///    off stay with the session and are reported as they end.
#[uniffi::export(foreign)]
pub trait PartTransport: Send + Sync {
    /// Create and start the upload task (iOS: `uploadTask(with:fromFile:)`,
    /// `taskDescription = task.taskId`, `earliestBeginDate` when set).
    fn submit(&self, task: PartTask) -> Result<(), SubmitError>;
    /// Cancel the task (its upload ended or was paused, the network policy
    /// changed, or its part is done). No report is needed; one that still
    /// comes is fine (a 2xx of a task that ended first counts).
    fn cancel(&self, task_id: String);
}

struct ForeignTransport(Arc<dyn PartTransport>);

impl crate::PartTransport for ForeignTransport {
    fn submit(&self, task: crate::PartTask) -> std::result::Result<(), String> {
        self.0
            .submit(PartTask {
                task_id: task.task_id,
                upload: task.upload,
                part_number: task.part_number,
                url: task.url,
                file_path: task.file_path.to_string_lossy().into_owned(),
                length: task.length,
                earliest_begin_ms: task.earliest_begin_ms,
                allow_metered: task.allow_metered,
            })
            .map_err(|e| e.to_string())
    }

    fn cancel(&self, task_id: &str) {
        self.0.cancel(task_id.to_string())
    }
}

#[uniffi::export]
impl UploadEngine {
    /// Registers the platform's transport (or removes it with `None`), with
    /// the staging budget and URL margin. Call it after every `open`, before
    /// `reconcile_part_tasks`. Non-blocking; any thread.
    pub fn set_part_transport(
        &self,
        transport: Option<Arc<dyn PartTransport>>,
        settings: HandoffSettings,
    ) -> Result<()> {
        let transport =
            transport.map(|t| Arc::new(ForeignTransport(t)) as Arc<dyn crate::PartTransport>);
        self.uploader()?.set_part_transport(
            transport,
            crate::HandoffSettings {
                staging_budget: settings.staging_budget_bytes,
                url_margin: std::time::Duration::from_millis(settings.url_margin_ms),
            },
        );
        Ok(())
    }

    /// `Handoff` on the way into suspension (PUTs of the engine's own stop
    /// and their parts are handed off); `Direct` back in the foreground
    /// (handed-off tasks keep running and are reported). Async.
    pub async fn set_part_mode(&self, mode: PartMode) -> Result<()> {
        Ok(self
            .uploader()?
            .set_handoff(mode == PartMode::Handoff)
            .await?)
    }

    /// A handed-off task ended. Non-blocking; any thread; any time after
    /// `open` (also before the transport is registered again). Reports of
    /// tasks the engine no longer holds are ignored.
    pub fn report_part_task(&self, task_id: String, result: PartTaskResult) -> Result<()> {
        self.uploader()?.report_task(task_id, result.into());
        Ok(())
    }

    /// After a launch: the ids of every task the platform's session still
    /// has. The engine's other tasks were lost and are sent again (a
    /// report of one of them that still comes later counts); returns
    /// the session's tasks the engine does not know, to be cancelled. Async.
    pub async fn reconcile_part_tasks(&self, live_task_ids: Vec<String>) -> Result<Vec<String>> {
        Ok(self.uploader()?.reconcile_tasks(live_task_ids).await?)
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_keeps_its_variant_and_message() {
        for code in [
            CoreCode::InvalidConfig,
            CoreCode::NotFound,
            CoreCode::AuthRequired,
            CoreCode::DatabaseCorrupt,
            CoreCode::Shutdown,
            CoreCode::Internal,
        ] {
            let e = UploaderError::from(UploadError::new(code, "why"));
            assert_eq!(e.code(), ErrorCode::from(code));
            assert_eq!(e.to_string(), "why");
            let name = format!("{:?}", e.code());
            assert_eq!(
                name.to_lowercase(),
                code.as_str().replace('_', ""),
                "variant names follow the stable codes"
            );
        }
    }

    #[test]
    fn config_survives_the_round_trip() {
        let mut c = Config::for_base_url("https://api.example/up");
        c.headers = vec![("Authorization".into(), "Bearer t".into())];
        c.network_policy = background::NetworkPolicy::UnmeteredOnly;
        c.notification_title = Some("{percentage}%".into());
        c.retry.max_attempts = 3;
        let back = Config::from(UploaderConfig::from(c.clone()));
        assert_eq!(back, c);
    }

    #[test]
    fn aggregate_states() {
        let s = |f: &dyn Fn(&mut model::Summary)| {
            let mut s = model::Summary::default();
            f(&mut s);
            summary_record(None, &s).state
        };
        assert_eq!(s(&|_| {}), AggregateState::Empty);
        assert_eq!(
            s(&|s| {
                s.uploads = 3;
                s.running = 1;
                s.paused = 1;
                s.failed = 1;
            }),
            AggregateState::Running
        );
        assert_eq!(
            s(&|s| {
                s.uploads = 2;
                s.paused = 1;
                s.failed = 1;
            }),
            AggregateState::Paused
        );
        assert_eq!(
            s(&|s| {
                s.uploads = 2;
                s.completed = 1;
                s.failed = 1;
            }),
            AggregateState::Failed
        );
        assert_eq!(
            s(&|s| {
                s.uploads = 2;
                s.completed = 1;
                s.cancelled = 1;
            }),
            AggregateState::Completed
        );
        assert_eq!(
            s(&|s| {
                s.uploads = 1;
                s.cancelled = 1;
            }),
            AggregateState::Cancelled
        );
    }

    #[test]
    fn a_second_open_of_a_path_shares_the_engine_until_shutdown() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("q.db").to_string_lossy().into_owned();
        let a = UploadEngine::open(path.clone(), false).unwrap();
        let b = UploadEngine::open(path.clone(), false).unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(a.shutdown());
        assert_eq!(
            rt.block_on(b.status()).unwrap_err().code(),
            ErrorCode::Shutdown
        );
        let c = UploadEngine::open(path, false).unwrap();
        assert!(!Arc::ptr_eq(&a, &c));
        assert!(rt.block_on(c.status()).is_ok());
    }

    #[test]
    fn reopen_works_while_a_call_holds_the_old_engine() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("q.db").to_string_lossy().into_owned();
        let first = UploadEngine::open(db.clone(), false).unwrap();
        assert!(Arc::ptr_eq(
            &first,
            &UploadEngine::open(db.clone(), false).unwrap()
        ));
        // An addFile in flight holds the uploader while the engine shuts down.
        let in_flight = first.uploader().unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(first.shutdown());
        let second = UploadEngine::open(db.clone(), false).expect("reopen");
        assert!(!Arc::ptr_eq(&first, &second));
        assert!(second.is_open());
        drop(in_flight);
    }

    #[test]
    fn an_engine_whose_task_ended_is_not_handed_out_again() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("q.db").to_string_lossy().into_owned();
        let first = UploadEngine::open(db.clone(), false).unwrap();
        first.uploader().unwrap().stop_engine_for_test();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while first.is_open() {
            assert!(std::time::Instant::now() < deadline, "engine task ended");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let second = UploadEngine::open(db, false).expect("reopen");
        assert!(!Arc::ptr_eq(&first, &second));
        assert!(second.is_open());
        assert!(
            first.uploader().is_err(),
            "the dead engine answers shutdown"
        );
    }
}
