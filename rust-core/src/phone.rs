//! The phone lifecycle, decided here once for both platforms. The platform
//! reports facts (where the app is, a background runtime it was granted,
//! the network, the end of a handed-off task's bytes, a stop) and does what
//! the answers say (finish or reschedule a job, complete a task, show
//! progress). Which mode the engine is in follows from the facts alone, so
//! a late or repeated report cannot leave it in the wrong one.
//!
//! | the app is | the engine | the platform |
//! |---|---|---|
//! | not reported yet, or no network reported | sends nothing | reports app state and network |
//! | foreground | sends itself; keeps `prehandoff_window` parts with the transport | nothing |
//! | background or about to be suspended, in a long run (job, service, continued task) | sends itself | maps the run's verdict |
//! | background, in a short run (background window, session wake) | hands parts off (sends itself without a transport) | maps the verdict |
//! | background without a long run, or about to be suspended without one | hands parts off; without a transport it stops at a checkpoint | schedules a run |
//!
//! "About to be suspended" is what the expiry of a short window reports; a
//! long run under way then keeps the process alive (iOS: a continued task
//! outlives the background window), so only its end hands parts off.

use crate::engine::phone::PhoneCommand;
use crate::engine::Command;
use crate::model::Summary;
use crate::UploadError;
use std::time::Duration;

/// Where the app is, as the platform last saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AppState {
    /// On screen (iOS `active`, Android a visible activity).
    Foreground,
    /// Not on screen. What the engine may do then depends on the runs the
    /// platform was granted ([`BackgroundRun`]).
    Background,
    /// About to be suspended (iOS: a background window expires): whatever is
    /// not with the platform's transport stops at a checkpoint, unless a
    /// long run is under way (it keeps the process alive until it ends).
    Suspending,
}

/// The kind of background runtime the OS granted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RunKind {
    /// Android 14+: a user-initiated data transfer job.
    UserInitiatedJob,
    /// Android: a regular job (about ten minutes at most).
    Job,
    /// Android: the app's own dataSync foreground service.
    ForegroundService,
    /// iOS 26+: a `BGContinuedProcessingTask`.
    ContinuedProcessing,
    /// iOS: the short window after leaving the foreground
    /// (`beginBackgroundTask`).
    BackgroundWindow,
    /// iOS: the app was launched or woken for its background session's
    /// events (`handleEventsForBackgroundURLSession`).
    SessionWake,
}

impl RunKind {
    /// A long run keeps the process alive for as long as there is work: the
    /// engine sends parts itself. A short one only gives time to hand parts
    /// over to the transport (which outlives the suspension), when there is one.
    pub fn is_long(self) -> bool {
        !matches!(self, RunKind::BackgroundWindow | RunKind::SessionWake)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            RunKind::UserInitiatedJob => "user_initiated_job",
            RunKind::Job => "job",
            RunKind::ForegroundService => "foreground_service",
            RunKind::ContinuedProcessing => "continued_processing",
            RunKind::BackgroundWindow => "background_window",
            RunKind::SessionWake => "session_wake",
        }
    }
}

/// A background runtime the OS granted: a job, a service, a task.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackgroundRun {
    /// The platform's name for it (a job id, a task identifier): the same
    /// one is given to [`crate::Uploader::stop_background_run`] and
    /// [`crate::Uploader::background_progress`].
    pub id: String,
    pub kind: RunKind,
    /// How long the OS grants, when it says (a regular job's limit, an iOS
    /// window's remaining time). The run ends a little before, at a
    /// checkpoint, with [`RunVerdict::RunAgain`].
    pub time_limit: Option<Duration>,
}

/// Why the platform stops a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StopCause {
    /// The OS ended it (constraints, quota, memory, expiry).
    System,
    /// The person stopped it (Android Task Manager, the iOS
    /// continued-processing UI): every unfinished upload is paused with
    /// `user_stopped` until an explicit resume.
    User,
    /// Its time was up.
    Timeout,
}

/// What stops uploads that only a person (or the app on their behalf) can
/// clear.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Attention {
    /// The backend answered 401: new headers (`setConfig`), then resume.
    AuthRequired,
    /// The person stopped the uploads: resume them.
    UserStopped,
    /// The app paused them.
    Paused,
    /// Every upload that ended in this run failed.
    Failed,
}

impl Attention {
    pub fn as_str(self) -> &'static str {
        match self {
            Attention::AuthRequired => "auth_required",
            Attention::UserStopped => "user_stopped",
            Attention::Paused => "paused",
            Attention::Failed => "failed",
        }
    }
}

/// What the platform must do when a run returns. Both platforms map this,
/// and nothing else, to their API.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RunVerdict {
    /// Nothing is left: finish without rescheduling.
    Finished,
    /// Work is left that a later run can do: reschedule, not before `after`
    /// (zero: as soon as the OS allows).
    RunAgain { after: Duration },
    /// Work is left for a network the policy allows: reschedule with that
    /// network constraint.
    WaitForNetwork,
    /// Work is left that waits for a person: finish; do not reschedule.
    NeedsUser(Attention),
    /// What is left is with the platform's transport: finish; its task
    /// reports wake the app.
    HandedOff,
}

/// What a job notification or a continued-processing task shows.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OsProgress {
    /// The configured notification templates rendered (or their defaults).
    pub title: String,
    pub text: String,
    /// Bytes sent since the run began (never less than the last answer's).
    pub done_bytes: u64,
    /// The run's estimate: `done_bytes` plus what the active uploads still
    /// have to send (Android: the job's transferred and estimated bytes;
    /// iOS: the task's completed and total unit counts).
    pub total_bytes: u64,
    /// Nothing measurable (no byte known yet): show an indeterminate bar.
    pub indeterminate: bool,
    /// Unfinished uploads remain that this run could still send.
    pub work_remains: bool,
    /// Everything the notification texts were rendered from.
    pub summary: Summary,
}

impl crate::Uploader {
    /// The app's state changed. Call it on every transition, from the
    /// thread that saw it; `seq` numbers the reports (increasing; 0 leaves
    /// them unnumbered): a numbered report older than the last one applied
    /// is ignored, so a late or repeated delivery cannot undo a newer one.
    /// The first report hands the mode to the facts: `start`, `suspend` and
    /// the part mode are ignored from then on. Non-blocking.
    pub fn set_app_state(&self, state: AppState, seq: u64) {
        let _ = self
            .commands
            .send(Command::Phone(PhoneCommand::AppState(state, seq)));
    }

    /// Runs the queue for a background runtime the OS granted, until there
    /// is nothing this run can do, its time is nearly up, or the platform
    /// stops it; returns what the platform must do. Report the network
    /// before calling it: until then the run waits.
    pub async fn run_background(&self, run: BackgroundRun) -> Result<RunVerdict, UploadError> {
        let id = run.id.clone();
        let ends = run
            .time_limit
            .map(|limit| tokio::time::Instant::now() + limit.saturating_sub(run_margin(limit)));
        self.call(|r| Command::Phone(PhoneCommand::BeginRun(run, r)))
            .await?;
        // A caller that goes away (a cancelled coroutine) ends the run.
        let mut guard = RunGuard {
            uploader: self,
            id: Some(id.clone()),
        };
        let mut changes = self.changes.clone();
        // The timer is the engine runtime's: uniffi (and any caller) may poll
        // this future from a thread with no tokio runtime.
        let mut limit_timer = match ends {
            Some(at) => {
                let rt = self
                    .runtime
                    .as_ref()
                    .ok_or_else(crate::uploader::shutdown_error)?;
                let _entered = rt.enter();
                Some(Box::pin(tokio::time::sleep_until(at)))
            }
            None => None,
        };
        loop {
            changes.borrow_and_update();
            if let Some(v) = self
                .call(|r| Command::Phone(PhoneCommand::CheckRun(id.clone(), r)))
                .await?
            {
                guard.id = None;
                return Ok(v);
            }
            let at_limit = async {
                match limit_timer.as_mut() {
                    Some(timer) => timer.as_mut().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                changed = changes.changed() => changed.map_err(|_| crate::uploader::shutdown_error())?,
                _ = at_limit => {
                    guard.id = None;
                    return self.stop_background_run(&id, StopCause::Timeout).await;
                }
            }
        }
    }

    /// The platform stops a run (Android `onStopJob`, an iOS expiration
    /// handler): work stops at a checkpoint within milliseconds and the
    /// run's caller returns the same verdict. A stop by the person pauses
    /// every unfinished upload with `user_stopped`. An id the engine does
    /// not know (a fresh process) still applies the person's stop.
    pub async fn stop_background_run(
        &self,
        id: &str,
        cause: StopCause,
    ) -> Result<RunVerdict, UploadError> {
        self.call(|r| Command::Phone(PhoneCommand::StopRun(id.to_string(), Some(cause), r)))
            .await
    }

    /// What the OS shows for run `id` (its notification, its progress).
    /// Call it about once a second while the run lasts.
    pub async fn background_progress(&self, id: &str) -> Result<OsProgress, UploadError> {
        self.call(|r| Command::Phone(PhoneCommand::Progress(id.to_string(), r)))
            .await
    }

    /// The lifecycle as the engine holds it (tests, diagnostics).
    pub async fn lifecycle_status(&self) -> Result<crate::LifecycleStatus, UploadError> {
        self.call(|r| Command::Phone(PhoneCommand::Status(r))).await
    }
}

impl crate::TaskReporter {
    /// A handed-off task has sent `bytes` so far (iOS:
    /// `didSendBodyData`'s total). A task that has sent nothing is taken
    /// back when the app returns to the foreground. Non-blocking.
    pub fn report_progress(&self, task_id: String, bytes: u64) {
        let _ = self
            .commands
            .send(Command::Phone(PhoneCommand::TaskProgress(task_id, bytes)));
    }
}

/// Ends a run whose caller went away before its verdict.
struct RunGuard<'a> {
    uploader: &'a crate::Uploader,
    id: Option<String>,
}

impl Drop for RunGuard<'_> {
    fn drop(&mut self) {
        if let Some(id) = self.id.take() {
            let (tx, _) = tokio::sync::oneshot::channel();
            let _ = self
                .uploader
                .commands
                .send(Command::Phone(PhoneCommand::StopRun(id, None, tx)));
        }
    }
}

/// How parts move in a given situation: the engine's decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Mode {
    /// Nothing is sent (no network reported yet, or nowhere to send from).
    Stopped,
    /// The engine sends parts itself.
    Direct,
    /// Parts go to the platform's transport.
    Handoff,
}

/// The mode the facts call for. `runs` are the kinds of the runs under
/// way; `transport` tells whether the platform registered one.
pub(crate) fn decide(
    state: AppState,
    network_reported: bool,
    runs: impl IntoIterator<Item = RunKind>,
    transport: bool,
) -> Mode {
    if !network_reported {
        return Mode::Stopped;
    }
    let (mut long, mut short) = (false, false);
    for k in runs {
        if k.is_long() {
            long = true;
        } else {
            short = true;
        }
    }
    match state {
        AppState::Foreground => Mode::Direct,
        // A long run keeps the process alive past a short window's expiry.
        AppState::Background | AppState::Suspending if long => Mode::Direct,
        AppState::Background | AppState::Suspending if transport => Mode::Handoff,
        AppState::Background if short => Mode::Direct,
        AppState::Background | AppState::Suspending => Mode::Stopped,
    }
}

/// How much earlier than its time limit a run ends, to stop at a checkpoint
/// and answer before the OS ends it: a tenth of the limit, between one and
/// five seconds.
pub(crate) fn run_margin(limit: Duration) -> Duration {
    (limit / 10).clamp(Duration::from_secs(1), Duration::from_secs(5))
}

/// Runs end rather than wait this long or longer for a retry's backoff:
/// a job that waits idle costs the app's quota.
pub const RUN_AGAIN_THRESHOLD: Duration = Duration::from_secs(30);

#[cfg(test)]
mod tests {
    use super::*;
    use AppState::*;
    use RunKind::*;

    #[test]
    fn nothing_is_sent_before_the_network_is_reported() {
        for state in [Foreground, Background, Suspending] {
            for runs in [vec![], vec![Job], vec![SessionWake]] {
                for transport in [false, true] {
                    assert_eq!(decide(state, false, runs.clone(), transport), Mode::Stopped);
                }
            }
        }
    }

    #[test]
    fn modes() {
        let d = |s, r: &[RunKind], t| decide(s, true, r.iter().copied(), t);
        assert_eq!(d(Foreground, &[], true), Mode::Direct);
        assert_eq!(d(Foreground, &[], false), Mode::Direct);
        // iOS: in the background without a grant, the session carries parts.
        assert_eq!(d(Background, &[], true), Mode::Handoff);
        // Android: without a job nothing runs.
        assert_eq!(d(Background, &[], false), Mode::Stopped);
        assert_eq!(d(Background, &[UserInitiatedJob], false), Mode::Direct);
        assert_eq!(d(Background, &[ContinuedProcessing], true), Mode::Direct);
        // A short window is for handing off, when there is a transport.
        assert_eq!(d(Background, &[BackgroundWindow], true), Mode::Handoff);
        assert_eq!(d(Background, &[SessionWake], false), Mode::Direct);
        assert_eq!(d(Background, &[SessionWake, Job], true), Mode::Direct);
        // About to be suspended without a long run: no direct request
        // would survive.
        assert_eq!(d(Suspending, &[], true), Mode::Handoff);
        assert_eq!(d(Suspending, &[BackgroundWindow], true), Mode::Handoff);
        assert_eq!(d(Suspending, &[SessionWake], false), Mode::Stopped);
        assert_eq!(d(Suspending, &[], false), Mode::Stopped);
    }

    #[test]
    fn a_long_run_outlives_the_background_window() {
        let d = |s, r: &[RunKind], t| decide(s, true, r.iter().copied(), t);
        // iOS: the window expires while a continued task runs: the process
        // is not suspended, the engine keeps sending.
        assert_eq!(d(Suspending, &[ContinuedProcessing], true), Mode::Direct);
        assert_eq!(
            d(Suspending, &[ContinuedProcessing, BackgroundWindow], true),
            Mode::Direct
        );
        assert_eq!(d(Suspending, &[Job], false), Mode::Direct);
        // The run ends, the state still suspending or background: hand-off
        // with a transport, stopped without.
        assert_eq!(d(Suspending, &[], true), Mode::Handoff);
        assert_eq!(d(Suspending, &[], false), Mode::Stopped);
        assert_eq!(d(Background, &[], true), Mode::Handoff);
    }

    #[test]
    fn margins() {
        assert_eq!(run_margin(Duration::from_secs(3)), Duration::from_secs(1));
        assert_eq!(run_margin(Duration::from_secs(30)), Duration::from_secs(3));
        assert_eq!(run_margin(Duration::from_secs(600)), Duration::from_secs(5));
    }
}
