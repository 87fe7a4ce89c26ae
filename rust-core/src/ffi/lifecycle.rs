//! The phone lifecycle for Kotlin and Swift ([`crate::phone`]): the platform
//! reports facts (app state, runs granted, the network, a stop, the bytes of
//! its tasks) and maps the answers (a run's verdict, the OS's progress) to
//! its API; the engine decides everything in between.

use super::error::Result;
use super::records::summary_record;
use super::{TransferSummary, UploadEngine};
use crate::phone;
use std::time::Duration;

/// Where the app is. Report every transition (`set_app_state`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, uniffi::Enum)]
pub enum AppState {
    /// On screen.
    Foreground,
    /// Not on screen; what the engine does then depends on the runs under way.
    Background,
    /// About to be suspended (iOS: the background window expires).
    Suspending,
}

/// The background runtime the OS granted (`run_background`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, uniffi::Enum)]
pub enum RunKind {
    /// Android 14+: a user-initiated data transfer job.
    UserInitiatedJob,
    /// Android: a regular job.
    Job,
    /// Android: the app's dataSync foreground service.
    ForegroundService,
    /// iOS 26+: a `BGContinuedProcessingTask`.
    ContinuedProcessing,
    /// iOS: the window after leaving the foreground (`beginBackgroundTask`).
    BackgroundWindow,
    /// iOS: a launch or wake for the background session's events.
    SessionWake,
}

/// One run: `id` is the platform's name for it (job id, task identifier).
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct BackgroundRun {
    pub id: String,
    pub kind: RunKind,
    /// The time the OS grants, when it says; the run ends a few seconds
    /// before at a checkpoint (verdict `RunAgain`).
    #[uniffi(default = None)]
    pub time_limit_ms: Option<u64>,
}

/// Why the platform stops a run (`stop_background_run`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, uniffi::Enum)]
pub enum StopCause {
    /// The OS ended it.
    System,
    /// The person stopped it: every unfinished upload pauses with
    /// `user_stopped` until an explicit resume.
    User,
    /// Its time was up.
    Timeout,
}

/// What waits for a person.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, uniffi::Enum)]
pub enum Attention {
    AuthRequired,
    UserStopped,
    Paused,
    Failed,
}

/// What the platform must do when a run returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, uniffi::Enum)]
pub enum RunVerdict {
    /// Nothing is left: finish, do not reschedule.
    Finished,
    /// Reschedule, not before `after_ms` (0: as soon as the OS allows).
    RunAgain { after_ms: u64 },
    /// Reschedule with the policy's network constraint.
    WaitForNetwork,
    /// Finish, do not reschedule: a person must act (`reason`).
    NeedsUser { reason: Attention },
    /// The transport carries what is left: finish.
    HandedOff,
}

/// What the OS shows for a run: the notification's texts, and the bytes
/// (Android: transferred and estimated bytes; iOS: completed and total
/// unit counts of the task's progress).
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct OsProgress {
    pub title: String,
    pub text: String,
    /// Bytes sent since the run began; never less than the last answer's.
    pub done_bytes: u64,
    /// `done_bytes` plus what the active uploads still have to send.
    pub total_bytes: u64,
    pub indeterminate: bool,
    pub work_remains: bool,
    pub summary: TransferSummary,
}

/// A run under way.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct RunInfo {
    pub id: String,
    pub kind: RunKind,
}

/// The lifecycle as the engine holds it (tests, diagnostics).
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct LifecycleStatus {
    /// The platform reports its app state: the facts decide the mode.
    pub managed: bool,
    pub state: Option<AppState>,
    pub network_reported: bool,
    /// `unmanaged`, `stopped`, `direct` or `handoff`.
    pub mode: String,
    pub runs: Vec<RunInfo>,
    /// Handed-off tasks made while the app was on screen, held now.
    pub prehanded: u32,
    /// Tasks taken back (not started on return to the foreground) since open.
    pub reclaimed_total: u64,
    /// Late or repeated app-state reports ignored since open.
    pub stale_transitions: u64,
}

impl From<AppState> for phone::AppState {
    fn from(s: AppState) -> Self {
        match s {
            AppState::Foreground => phone::AppState::Foreground,
            AppState::Background => phone::AppState::Background,
            AppState::Suspending => phone::AppState::Suspending,
        }
    }
}

impl From<phone::AppState> for AppState {
    fn from(s: phone::AppState) -> Self {
        match s {
            phone::AppState::Foreground => AppState::Foreground,
            phone::AppState::Background => AppState::Background,
            phone::AppState::Suspending => AppState::Suspending,
        }
    }
}

impl From<RunKind> for phone::RunKind {
    fn from(k: RunKind) -> Self {
        match k {
            RunKind::UserInitiatedJob => phone::RunKind::UserInitiatedJob,
            RunKind::Job => phone::RunKind::Job,
            RunKind::ForegroundService => phone::RunKind::ForegroundService,
            RunKind::ContinuedProcessing => phone::RunKind::ContinuedProcessing,
            RunKind::BackgroundWindow => phone::RunKind::BackgroundWindow,
            RunKind::SessionWake => phone::RunKind::SessionWake,
        }
    }
}

impl From<phone::RunKind> for RunKind {
    fn from(k: phone::RunKind) -> Self {
        match k {
            phone::RunKind::UserInitiatedJob => RunKind::UserInitiatedJob,
            phone::RunKind::Job => RunKind::Job,
            phone::RunKind::ForegroundService => RunKind::ForegroundService,
            phone::RunKind::ContinuedProcessing => RunKind::ContinuedProcessing,
            phone::RunKind::BackgroundWindow => RunKind::BackgroundWindow,
            phone::RunKind::SessionWake => RunKind::SessionWake,
        }
    }
}

impl From<StopCause> for phone::StopCause {
    fn from(c: StopCause) -> Self {
        match c {
            StopCause::System => phone::StopCause::System,
            StopCause::User => phone::StopCause::User,
            StopCause::Timeout => phone::StopCause::Timeout,
        }
    }
}

impl From<phone::Attention> for Attention {
    fn from(a: phone::Attention) -> Self {
        match a {
            phone::Attention::AuthRequired => Attention::AuthRequired,
            phone::Attention::UserStopped => Attention::UserStopped,
            phone::Attention::Paused => Attention::Paused,
            phone::Attention::Failed => Attention::Failed,
        }
    }
}

impl From<phone::RunVerdict> for RunVerdict {
    fn from(v: phone::RunVerdict) -> Self {
        match v {
            phone::RunVerdict::Finished => RunVerdict::Finished,
            phone::RunVerdict::RunAgain { after } => RunVerdict::RunAgain {
                after_ms: u64::try_from(after.as_millis()).unwrap_or(u64::MAX),
            },
            phone::RunVerdict::WaitForNetwork => RunVerdict::WaitForNetwork,
            phone::RunVerdict::NeedsUser(a) => RunVerdict::NeedsUser { reason: a.into() },
            phone::RunVerdict::HandedOff => RunVerdict::HandedOff,
        }
    }
}

#[uniffi::export]
impl UploadEngine {
    /// The app's state changed: call it on every transition, in the order
    /// seen, numbering them with `seq` (increasing; a report older than the
    /// last applied is ignored). The first call hands the engine's mode to
    /// the reported facts (`start`, `suspend`, `set_part_mode` are ignored
    /// from then on); the engine never sends before the network is reported
    /// (`set_network_state`). Non-blocking; any thread.
    pub fn set_app_state(&self, state: AppState, seq: u64) -> Result<()> {
        self.uploader()?.set_app_state(state.into(), seq);
        Ok(())
    }

    /// Whether files protected while the device is locked can be read
    /// (iOS: `UIApplication.isProtectedDataAvailable`, then
    /// `protectedDataWillBecomeUnavailable` / `protectedDataDidBecomeAvailable`).
    /// The engine assumes `true` until told; report it at every launch
    /// before the network. While `false`, an upload whose file the system
    /// refuses (EPERM/EACCES, or the opener's `PermissionRevoked`/`Failed`)
    /// waits instead of failing: no attempt counted, idle reason
    /// `WAITING_FOR_UNLOCK`, its record's error says so; `true` sends it on.
    /// Android never calls it. Non-blocking; any thread.
    pub fn set_protected_data_available(&self, available: bool) -> Result<()> {
        self.uploader()?.set_protected_data_available(available);
        Ok(())
    }

    /// Runs the queue for a background runtime the OS granted and returns
    /// what to do: map the verdict to the OS's API and nothing else. A run
    /// begun while a file is being added (hashed) waits for that upload, so
    /// a job may be scheduled at the person's action, before hashing. Async;
    /// returns within milliseconds of `stop_background_run`.
    pub async fn run_background(&self, run: BackgroundRun) -> Result<RunVerdict> {
        let run = phone::BackgroundRun {
            id: run.id,
            kind: run.kind.into(),
            time_limit: run.time_limit_ms.map(Duration::from_millis),
        };
        Ok(self.uploader()?.run_background(run).await?.into())
    }

    /// The OS stops run `id` (Android `onStopJob`, an iOS expiration
    /// handler): work stops at a checkpoint; the verdict is returned here
    /// and by `run_background`. Async, returns within milliseconds.
    pub async fn stop_background_run(&self, id: String, cause: StopCause) -> Result<RunVerdict> {
        Ok(self
            .uploader()?
            .stop_background_run(&id, cause.into())
            .await?
            .into())
    }

    /// What the OS shows for run `id`: call about once a second. Async.
    pub async fn background_progress(&self, id: String) -> Result<OsProgress> {
        let p = self.uploader()?.background_progress(&id).await?;
        Ok(OsProgress {
            title: p.title,
            text: p.text,
            done_bytes: p.done_bytes,
            total_bytes: p.total_bytes,
            indeterminate: p.indeterminate,
            work_remains: p.work_remains,
            summary: summary_record(None, &p.summary),
        })
    }

    /// A handed-off task has sent `bytes_sent` bytes of its body so far
    /// (iOS: `totalBytesSent` of `didSendBodyData`). Tasks that have sent
    /// nothing when the app returns to the foreground are taken back and
    /// sent by the engine. Non-blocking; any thread.
    pub fn report_part_task_progress(&self, task_id: String, bytes_sent: u64) -> Result<()> {
        self.uploader()?
            .task_reporter()
            .report_progress(task_id, bytes_sent);
        Ok(())
    }

    /// The lifecycle as the engine holds it. Async.
    pub async fn lifecycle_status(&self) -> Result<LifecycleStatus> {
        let s = self.uploader()?.lifecycle_status().await?;
        Ok(LifecycleStatus {
            managed: s.managed,
            state: s.state.map(Into::into),
            network_reported: s.network_reported,
            mode: s.mode.to_string(),
            runs: s
                .runs
                .into_iter()
                .map(|(id, kind)| RunInfo {
                    id,
                    kind: kind.into(),
                })
                .collect(),
            prehanded: s.prehanded,
            reclaimed_total: s.reclaimed_total,
            stale_transitions: s.stale_transitions,
        })
    }
}
