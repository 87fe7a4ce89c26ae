//! Part hand-off (iOS background URLSession): the tasks, their results, the
//! platform's transport and the engine's calls for it.

use super::engine::UploadEngine;
use super::error::Result;
use std::sync::Arc;

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

display_as_debug!(PartTask, PartTaskResult);

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
    /// Parts kept with the transport while the app is on screen, once the
    /// platform reports its app state (`set_app_state`): tasks made on
    /// screen are not left to the OS's discretion after the app leaves.
    /// 0: none.
    #[uniffi(default = 2)]
    pub prehandoff_window: u32,
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
                prehandoff_window: settings.prehandoff_window,
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
