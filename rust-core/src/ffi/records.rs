//! What the API reports about uploads: records, selectors, summaries,
//! events, and the engine's status for background work.

use super::error::UploadFailure;
use crate::{background, model};

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

pub(super) fn records(list: Vec<model::UploadInfo>) -> Vec<UploadRecord> {
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

pub(super) fn summary_record(transfer_id: Option<String>, s: &model::Summary) -> TransferSummary {
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
    /// Uploads remain, but their files are protected while the device is
    /// locked: they go on after `set_protected_data_available(true)`.
    WaitingForUnlock,
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
            background::IdleReason::WaitingForUnlock => IdleReason::WaitingForUnlock,
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
    /// Active uploads waiting for the device's unlock (their files are
    /// protected while it is locked).
    pub waiting_for_unlock: u32,
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
            waiting_for_unlock: s.waiting_for_unlock,
        }
    }
}

display_as_debug!(NewFile);

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
