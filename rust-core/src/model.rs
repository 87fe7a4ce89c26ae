//! The records the engine hands out: upload states, snapshots, summaries and events.

use crate::error::UploadError;
use serde::{Deserialize, Serialize};

/// Identifier of one upload (one file in one transfer). Increases with every
/// file added, so it also gives the queue order.
pub type UploadId = i64;

/// Life cycle of one upload.
///
/// `PENDING -> INITIALIZED -> RUNNING -> COMPLETED`, with `PAUSED` and `FAILED`
/// reachable from any unfinished state (both resumable) and `CANCELLED` final.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum UploadState {
    /// Added; startUpload not done yet.
    Pending,
    /// startUpload done: key, uploadId and part size are known.
    Initialized,
    /// Parts are being sent (or wait for a retry).
    Running,
    /// Paused by the app, or by an auth error that new headers can fix.
    Paused,
    /// The backend confirmed `complete`.
    Completed,
    /// Stopped by an error; `resume` retries it.
    Failed,
    /// Cancelled; final.
    Cancelled,
}

impl UploadState {
    pub fn as_str(self) -> &'static str {
        match self {
            UploadState::Pending => "PENDING",
            UploadState::Initialized => "INITIALIZED",
            UploadState::Running => "RUNNING",
            UploadState::Paused => "PAUSED",
            UploadState::Completed => "COMPLETED",
            UploadState::Failed => "FAILED",
            UploadState::Cancelled => "CANCELLED",
        }
    }

    pub fn parse(s: &str) -> Option<UploadState> {
        Some(match s {
            "PENDING" => UploadState::Pending,
            "INITIALIZED" => UploadState::Initialized,
            "RUNNING" => UploadState::Running,
            "PAUSED" => UploadState::Paused,
            "COMPLETED" => UploadState::Completed,
            "FAILED" => UploadState::Failed,
            "CANCELLED" => UploadState::Cancelled,
            _ => return None,
        })
    }

    /// The engine works on uploads in these states.
    pub fn is_active(self) -> bool {
        matches!(
            self,
            UploadState::Pending | UploadState::Initialized | UploadState::Running
        )
    }

    /// Nothing more will happen without a call from the app.
    pub fn is_final(self) -> bool {
        matches!(self, UploadState::Completed | UploadState::Cancelled)
    }
}

impl std::fmt::Display for UploadState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A snapshot of one upload.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UploadInfo {
    pub id: UploadId,
    pub transfer_id: String,
    /// Path of the file on this device, or the URI it was added with
    /// (opened through the registered file opener; the opener's replacement
    /// once it gave one). A file under a registered file root shows at the
    /// root's current path; while that root is not registered, as stored:
    /// `<root name>/<path under it>` (relative, unlike any path added).
    pub path: String,
    pub file_name: String,
    /// XXH3-128 of the content, 32 lowercase hex digits.
    pub file_hash: String,
    pub size: u64,
    pub state: UploadState,
    /// Object key, once startUpload answered.
    pub key: Option<String>,
    /// Multipart upload id, once startUpload answered.
    pub upload_id: Option<String>,
    pub part_size: Option<u64>,
    /// 0 until startUpload answered.
    pub parts_total: u32,
    pub parts_done: u32,
    /// Bytes confirmed (committed parts) plus bytes of parts in flight.
    pub uploaded_bytes: u64,
    pub error: Option<UploadError>,
    /// Milliseconds since the Unix epoch.
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

/// Which uploads a call applies to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Selector {
    Upload(UploadId),
    Transfer(String),
    All,
}

/// Aggregate over a set of uploads (a transfer, or everything).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    pub uploads: u32,
    pub pending: u32,
    pub initialized: u32,
    pub running: u32,
    pub paused: u32,
    pub completed: u32,
    pub failed: u32,
    pub cancelled: u32,
    /// Bytes of every upload that is not cancelled.
    pub total_bytes: u64,
    pub uploaded_bytes: u64,
    pub transfers: u32,
    /// Transfers whose uploads are all completed (cancelled ones aside).
    pub completed_transfers: u32,
}

impl Summary {
    /// Uploads the engine is still working on.
    pub fn active(&self) -> u32 {
        self.pending + self.initialized + self.running
    }
}

/// Progress of one upload, sent at most four times a second per upload.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Progress {
    pub id: UploadId,
    pub transfer_id: String,
    pub uploaded_bytes: u64,
    pub total_bytes: u64,
    pub parts_done: u32,
    pub parts_total: u32,
}

/// What the engine reports to its listener.
#[derive(Clone, Debug, PartialEq)]
pub enum UploadEvent {
    /// Sent after every state change has been committed.
    StateChanged(UploadInfo),
    Progress(Progress),
}

/// Receives engine events. Called on an engine thread: return quickly and do
/// not call back into the uploader synchronously.
pub trait UploadListener: Send + Sync {
    fn on_event(&self, event: &UploadEvent);
}

/// A file to add to the queue. Its `Debug` output shows user param names
/// but not their values, and a URI without its query.
#[derive(Clone, Default)]
pub struct NewUpload {
    /// A path, a `file://` URI, or a URI only the platform can open
    /// (`content://...`; see [`crate::FileSource::parse`]). Such a URI is
    /// stored as is, and the registered [`crate::FileOpener`] is asked for
    /// a descriptor whenever the file is read.
    pub path: std::path::PathBuf,
    /// Groups files; any non-empty string chosen by the app.
    pub transfer_id: String,
    /// Defaults to the file name of `path` (or the URI's last segment).
    pub file_name: Option<String>,
    /// Merged flat into the startUpload body. `fileName`, `fileHash` and
    /// `fileSize` are reserved.
    pub user_params: serde_json::Map<String, serde_json::Value>,
}

impl std::fmt::Debug for NewUpload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Every field named: a new one does not compile until it is decided
        // here whether it may be shown.
        let NewUpload {
            path,
            transfer_id,
            file_name,
            user_params,
        } = self;
        f.debug_struct("NewUpload")
            .field(
                "path",
                &crate::source::path_for_debug(&path.to_string_lossy()),
            )
            .field("transfer_id", transfer_id)
            .field("file_name", file_name)
            .field("user_params", &crate::redact::param_names(user_params))
            .finish()
    }
}
