//! The phone lifecycle on the engine's task: the facts the platform reports
//! ([`crate::phone`]), the mode they call for, the runs under way with their
//! verdicts and progress, the parts kept with the transport while the app is
//! on screen and those taken back when it returns.

use super::*;
use crate::phone::{
    decide, AppState, Attention, BackgroundRun, Mode, OsProgress, RunKind, RunVerdict, StopCause,
    RUN_AGAIN_THRESHOLD,
};
use crate::platform_notice::{DEFAULT_NOTIFICATION_TEXT, DEFAULT_NOTIFICATION_TITLE};
use std::collections::VecDeque;

/// Ended runs whose progress is still answered.
const ENDED_RUNS_KEPT: usize = 8;

/// Default count of parts kept handed off while the app is on screen.
pub const DEFAULT_PREHANDOFF_WINDOW: u32 = 2;

pub(crate) enum PhoneCommand {
    /// A transition, with the platform's sequence number (0: unnumbered).
    AppState(AppState, u64),
    BeginRun(BackgroundRun, Reply<()>),
    /// Whether the run should end now, and with what verdict.
    CheckRun(String, Reply<Option<RunVerdict>>),
    /// The platform stops a run (or the run's caller went away: no cause).
    StopRun(String, Option<StopCause>, Reply<RunVerdict>),
    Progress(String, Reply<OsProgress>),
    /// Bytes a handed-off task has sent so far, as the transport reports them.
    TaskProgress(String, u64),
    /// A file is being hashed for the queue (true) or that add ended
    /// (false, after its upload was queued): a run waits for it, so that a
    /// job scheduled at the person's action, before hashing, has its work.
    Adding(bool),
    Status(Reply<LifecycleStatus>),
}

/// The lifecycle as the engine holds it, for tests and diagnostics.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LifecycleStatus {
    /// The platform reported an app state: the facts decide the mode.
    pub managed: bool,
    pub state: Option<AppState>,
    pub network_reported: bool,
    /// `Stopped`, `Direct` or `Handoff`, as decided.
    pub mode: &'static str,
    /// The runs under way, by id.
    pub runs: Vec<(String, RunKind)>,
    /// Handed-off tasks made while the app was on screen, held now.
    pub prehanded: u32,
    /// Tasks taken back from the transport (not started when the app
    /// returned to the foreground) since the engine was opened.
    pub reclaimed_total: u64,
    /// Transitions ignored as late or repeated since open.
    pub stale_transitions: u64,
}

struct RunState {
    kind: RunKind,
    /// Bytes sent (committed plus in flight) when it began.
    base: u64,
    /// The most `done_bytes` shown: the OS's progress never goes back.
    shown: u64,
    completed_base: u64,
    failed_base: u64,
}

#[derive(Default)]
pub(super) struct Phone {
    /// Set by the first app-state report: from then on the facts decide
    /// running and hand-off; before, the legacy calls (start, suspend,
    /// part mode) do.
    managed: bool,
    state: Option<AppState>,
    seq: u64,
    network_reported: bool,
    runs: BTreeMap<String, RunState>,
    /// Verdicts of runs stopped by the platform, for their waiting callers.
    stopped: HashMap<String, RunVerdict>,
    /// Runs that ended, with the bytes they sent: a last progress update
    /// after the verdict still shows them. The latest few only.
    ended: VecDeque<(String, u64)>,
    mode: Option<Mode>,
    /// Parts kept handed off while on screen.
    pub(super) window: usize,
    /// Bytes of parts committed since open.
    pub(super) sent_done: u64,
    pub(super) completed: u64,
    pub(super) failed: u64,
    reclaimed_total: u64,
    stale: u64,
    /// Adds being hashed now.
    adding: u64,
}

impl Phone {
    pub(super) fn new() -> Phone {
        Phone {
            window: DEFAULT_PREHANDOFF_WINDOW as usize,
            ..Phone::default()
        }
    }

    /// An upload ended: runs tell "all failed" from these.
    pub(super) fn count_end(&mut self, state: UploadState) {
        match state {
            UploadState::Completed => self.completed += 1,
            UploadState::Failed => self.failed += 1,
            _ => {}
        }
    }
}

fn mode_name(m: Option<Mode>) -> &'static str {
    match m {
        None => "unmanaged",
        Some(Mode::Stopped) => "stopped",
        Some(Mode::Direct) => "direct",
        Some(Mode::Handoff) => "handoff",
    }
}

impl Engine {
    pub(super) fn handle_phone(&mut self, cmd: PhoneCommand) {
        // Only what changes the lifecycle wakes the waiters: a run checks
        // itself on every wake, so a query that woke them would spin it.
        let changes = matches!(
            cmd,
            PhoneCommand::AppState(..)
                | PhoneCommand::BeginRun(..)
                | PhoneCommand::StopRun(..)
                | PhoneCommand::Adding(false)
        );
        match cmd {
            PhoneCommand::AppState(state, seq) => self.on_app_state(state, seq),
            PhoneCommand::BeginRun(run, reply) => {
                let base = self.bytes_sent_so_far();
                self.phone.stopped.remove(&run.id);
                self.phone.runs.insert(
                    run.id,
                    RunState {
                        kind: run.kind,
                        base,
                        shown: 0,
                        completed_base: self.phone.completed,
                        failed_base: self.phone.failed,
                    },
                );
                self.apply_phone();
                let _ = reply.send(Ok(()));
            }
            PhoneCommand::CheckRun(id, reply) => {
                let r = self.check_run(&id);
                let _ = reply.send(Ok(r));
            }
            PhoneCommand::StopRun(id, cause, reply) => {
                let verdict = self.stop_run(&id, cause);
                if cause.is_some() {
                    // Its caller may still wait on it.
                    self.phone.stopped.insert(id, verdict);
                }
                let _ = reply.send(Ok(verdict));
            }
            PhoneCommand::Progress(id, reply) => {
                let r = self.os_progress(&id);
                let _ = reply.send(r.map_err(Into::into));
            }
            PhoneCommand::Adding(started) => {
                if started {
                    self.phone.adding += 1;
                } else {
                    self.phone.adding = self.phone.adding.saturating_sub(1);
                }
            }
            PhoneCommand::TaskProgress(task_id, sent) => {
                if let Some(t) = self.handoff.tasks.get_mut(&task_id) {
                    t.sent = t.sent.max(sent);
                }
            }
            PhoneCommand::Status(reply) => {
                let s = LifecycleStatus {
                    managed: self.phone.managed,
                    state: self.phone.state,
                    network_reported: self.phone.network_reported,
                    mode: mode_name(self.phone.mode),
                    runs: self
                        .phone
                        .runs
                        .iter()
                        .map(|(k, r)| (k.clone(), r.kind))
                        .collect(),
                    prehanded: self.handoff.tasks.values().filter(|t| t.prehanded).count() as u32,
                    reclaimed_total: self.phone.reclaimed_total,
                    stale_transitions: self.phone.stale,
                };
                let _ = reply.send(Ok(s));
            }
        }
        if changes {
            self.changes.send_modify(|n| *n += 1);
        }
    }

    fn on_app_state(&mut self, state: AppState, seq: u64) {
        // Numbered reports older than (or equal to) the last one applied
        // are late or repeated: the state they describe is gone.
        if seq != 0 {
            if seq <= self.phone.seq {
                self.phone.stale += 1;
                tracing::debug!(seq, last = self.phone.seq, "late app-state report ignored");
                return;
            }
            self.phone.seq = seq;
        }
        let before = self.phone.state;
        self.phone.managed = true;
        self.phone.state = Some(state);
        if state == AppState::Foreground && before != Some(AppState::Foreground) {
            self.reclaim_unstarted();
        }
        self.apply_phone();
    }

    /// The platform reports its app state: the legacy start, suspend and
    /// part-mode calls no longer apply.
    pub(super) fn lifecycle_managed(&self) -> bool {
        self.phone.managed
    }

    /// A background run is under way (it checks itself on every wake).
    pub(super) fn phone_run_under_way(&self) -> bool {
        !self.phone.runs.is_empty()
    }

    /// The network was reported: sending may begin.
    pub(super) fn network_reported(&mut self) {
        self.phone.network_reported = true;
        self.apply_phone();
    }

    /// The transport was registered or removed.
    pub(super) fn transport_changed(&mut self) {
        self.apply_phone();
    }

    /// Puts the engine in the mode the facts call for.
    fn apply_phone(&mut self) {
        if !self.phone.managed {
            return;
        }
        let mode = decide(
            self.phone.state.unwrap_or(AppState::Background),
            self.phone.network_reported,
            self.phone.runs.values().map(|r| r.kind),
            self.handoff.transport.is_some(),
        );
        if self.phone.mode == Some(mode) {
            return;
        }
        tracing::debug!(
            from = mode_name(self.phone.mode),
            to = mode_name(Some(mode)),
            "mode"
        );
        self.phone.mode = Some(mode);
        let running = mode != Mode::Stopped;
        if !running && self.running {
            // Checkpoint: what is committed stays; parts in flight go again.
            self.stop_all_tasks();
        }
        self.running = running;
        self.set_handoff_mode(mode == Mode::Handoff);
        self.changes.send_modify(|n| *n += 1);
    }

    /// Whether parts are kept handed off beside the engine's own sending:
    /// on screen, with a transport, so that they are made while the app is
    /// active (iOS runs tasks made in the background at its discretion).
    pub(super) fn prehandoff_active(&self) -> bool {
        self.phone.managed
            && self.phone.window > 0
            && self.phone.mode == Some(Mode::Direct)
            && self.phone.state == Some(AppState::Foreground)
            && self.handoff.transport.is_some()
    }

    /// Back on screen: tasks handed off in the background that have not
    /// sent a byte would wait at the OS's discretion; the engine sends
    /// their parts itself. A report of one that ran after all still counts.
    fn reclaim_unstarted(&mut self) {
        let ids: Vec<String> = self
            .handoff
            .tasks
            .iter()
            .filter(|(_, t)| !t.prehanded && t.sent == 0)
            .map(|(k, _)| k.clone())
            .collect();
        if ids.is_empty() {
            return;
        }
        tracing::info!(
            tasks = ids.len(),
            "back on screen: unstarted tasks taken back"
        );
        self.phone.reclaimed_total += ids.len() as u64;
        for id in &ids {
            self.withdraw_task(id, true);
        }
    }

    /// Whether tasks made now are made on screen.
    pub(super) fn on_screen(&self) -> bool {
        self.phone.managed && self.phone.state == Some(AppState::Foreground)
    }

    /// Bytes sent so far: parts committed since open, plus what the PUTs in
    /// flight have sent.
    fn bytes_sent_so_far(&self) -> u64 {
        let in_flight: u64 = self
            .uploads
            .values()
            .filter(|t| t.row.state.is_active())
            .map(Tracked::in_flight_bytes)
            .sum();
        self.phone.sent_done + in_flight
    }

    fn check_run(&mut self, id: &str) -> Option<RunVerdict> {
        if let Some(v) = self.phone.stopped.remove(id) {
            return Some(v);
        }
        let Some(kind) = self.phone.runs.get(id).map(|r| r.kind) else {
            // Never begun, or forgotten: nothing keeps it going.
            return Some(self.verdict(None, None));
        };
        if !kind.is_long() && self.phone.runs.values().any(|r| r.kind.is_long()) {
            // A long run (a continued task) keeps the process and sends:
            // a short window beside it has nothing to add and ends now
            // rather than hold its background time to the expiry.
            self.flush_durable();
            return Some(self.stop_run(id, None));
        }
        // As a status query does: what is due starts first, and a complete
        // that waits for its sync gets it.
        self.schedule();
        if std::mem::take(&mut self.want_sync) {
            self.flush_durable_now();
            self.schedule();
        }
        if !self.phone.network_reported {
            // The platform reports it before any run; until then nothing
            // is known to be sendable (the OS stops the run if it never comes).
            return None;
        }
        let status = self.status();
        // A file still hashing becomes work in a moment.
        let idle = status.idle_reason().is_some() && self.phone.adding == 0;
        let waits_long = status.active > 0
            && status.network_allowed
            && self.tickets.is_empty()
            && self.phone.mode == Some(Mode::Direct)
            && self.next_wake().saturating_duration_since(Instant::now()) >= RUN_AGAIN_THRESHOLD;
        if !(idle || waits_long) {
            return None;
        }
        // What it did is on storage and told before the platform hears.
        self.flush_durable();
        Some(self.stop_run(id, None))
    }

    /// Ends a run and says what the platform must do.
    fn stop_run(&mut self, id: &str, cause: Option<StopCause>) -> RunVerdict {
        let sent = self.bytes_sent_so_far();
        let run = self.phone.runs.remove(id);
        if let Some(r) = &run {
            let done = r.shown.max(sent.saturating_sub(r.base));
            self.phone.ended.retain(|(k, _)| k != id);
            if self.phone.ended.len() == ENDED_RUNS_KEPT {
                self.phone.ended.pop_front();
            }
            self.phone.ended.push_back((id.to_string(), done));
        }
        if cause == Some(StopCause::User) {
            let stop = UploadError::new(
                ErrorCode::UserStopped,
                "the person stopped the uploads; resume them to go on",
            );
            if let Err(e) = self.pause(&Selector::All, Some(stop)) {
                tracing::error!("cannot record the person's stop: {e}");
            }
        }
        self.apply_phone();
        self.verdict(run.as_ref(), cause)
    }

    fn verdict(&self, run: Option<&RunState>, cause: Option<StopCause>) -> RunVerdict {
        if cause == Some(StopCause::User) {
            return RunVerdict::NeedsUser(Attention::UserStopped);
        }
        let s = self.status();
        if s.active == 0 && self.phone.adding > 0 {
            // Stopped while a file was hashing: its upload needs a run.
            return RunVerdict::RunAgain {
                after: Duration::ZERO,
            };
        }
        if s.active == 0 {
            let user_stopped = self.uploads.values().any(|t| {
                t.row.state == UploadState::Paused
                    && t.row
                        .error
                        .as_ref()
                        .is_some_and(|e| e.code == ErrorCode::UserStopped)
            });
            let (completed, failed) = run.map_or((0, 0), |r| {
                (
                    self.phone.completed - r.completed_base,
                    self.phone.failed - r.failed_base,
                )
            });
            return if s.auth_paused > 0 {
                RunVerdict::NeedsUser(Attention::AuthRequired)
            } else if user_stopped {
                RunVerdict::NeedsUser(Attention::UserStopped)
            } else if s.paused > 0 {
                RunVerdict::NeedsUser(Attention::Paused)
            } else if failed > 0 && completed == 0 {
                RunVerdict::NeedsUser(Attention::Failed)
            } else {
                RunVerdict::Finished
            };
        }
        if !s.network_allowed {
            return RunVerdict::WaitForNetwork;
        }
        if self.handoff_active() && !self.handoff.tasks.is_empty() {
            return RunVerdict::HandedOff;
        }
        if cause.is_some() {
            return RunVerdict::RunAgain {
                after: Duration::ZERO,
            };
        }
        let after = if self.tickets.is_empty() {
            self.next_wake().saturating_duration_since(Instant::now())
        } else {
            Duration::ZERO
        };
        RunVerdict::RunAgain { after }
    }

    fn os_progress(&mut self, id: &str) -> Result<OsProgress> {
        let sent = self.bytes_sent_so_far();
        let status = self.status();
        let done = match self.phone.runs.get_mut(id) {
            Some(run) => {
                run.shown = run.shown.max(sent.saturating_sub(run.base));
                run.shown
            }
            // Ended: what it sent, as at its end.
            None => self
                .phone
                .ended
                .iter()
                .find(|(k, _)| k == id)
                .map_or(0, |(_, done)| *done),
        };
        let summary = self.summary(None)?;
        let (title, text) = self.config.as_ref().map_or((None, None), |c| {
            (c.notification_title.clone(), c.notification_text.clone())
        });
        let title = crate::notification::render(
            title.as_deref().unwrap_or(DEFAULT_NOTIFICATION_TITLE),
            &summary,
        );
        let text = crate::notification::render(
            text.as_deref().unwrap_or(DEFAULT_NOTIFICATION_TEXT),
            &summary,
        );
        let total = done + status.bytes_remaining;
        let work_remains = status.active > 0;
        Ok(OsProgress {
            title,
            text,
            done_bytes: done,
            total_bytes: total,
            indeterminate: work_remains && total == 0,
            work_remains,
            summary,
        })
    }
}
