//! Part hand-off: while the app is suspended (iOS), parts are uploaded by
//! the platform's transport (a background `URLSession`) from staged files.
//! The engine stages each part, persists the task, hands it over, and
//! commits the ETag the platform reports back, even after a relaunch.
//! Reports go through the same classification and retry rules as the
//! engine's own PUTs.

mod stage;
mod tombstones;

use super::boot_clock::BootTime;
use super::*;
use crate::staging::{Staging, DEFAULT_STAGING_BUDGET};
use crate::store::handoff::{
    delete_task, delete_tombstone, insert_task, insert_tombstone, TaskRow, TombstoneRow,
};
use std::collections::HashSet;
use std::path::PathBuf;

/// Parts being staged at once, at most: more would only compete for the
/// same storage (each copies a whole part and flushes it).
const MAX_STAGINGS_IN_FLIGHT: usize = 4;

/// Default margin of a URL's life that must remain when it is handed off.
pub const DEFAULT_URL_MARGIN: Duration = Duration::from_secs(15 * 60);

/// One part upload for the platform's transport. `Debug` shows where the
/// URL goes, never its query (the signature).
#[derive(Clone, PartialEq, Eq)]
pub struct PartTask {
    /// Made by the engine, unique, and kept across relaunches: the platform
    /// reports the task's end with it (store it as the task's description).
    pub task_id: String,
    /// The engine's upload id.
    pub upload: UploadId,
    pub part_number: u32,
    /// Presigned PUT URL. A bearer secret: never log it.
    pub url: String,
    /// A file holding exactly this part's bytes; the body of the PUT.
    pub file_path: PathBuf,
    /// Its length in bytes (send it as `Content-Length`).
    pub length: u64,
    /// Do not start before this time (ms since the Unix epoch; a retry's
    /// backoff). 0: at once. iOS: `earliestBeginDate`.
    pub earliest_begin_ms: i64,
    /// May use a metered network (mobile data, a hotspot; iOS: expensive
    /// and constrained networks). False under the unmetered-only policy;
    /// a policy change cancels the task and hands the part off again.
    pub allow_metered: bool,
}

/// How a handed-off task ended, as the platform saw it. `Debug` shows the
/// body and message as error messages do (a storage may echo the URL).
#[derive(Clone, PartialEq, Eq)]
pub enum TaskOutcome {
    /// The storage answered: its status, `ETag` and `Retry-After` headers
    /// and (for errors) the start of its body.
    Response {
        status: u16,
        etag: Option<String>,
        retry_after: Option<String>,
        body: String,
    },
    /// No answer: the connection failed, timed out, or the file could not be read.
    TransportError(String),
    /// The task was cancelled by someone other than the engine.
    Cancelled,
    /// The platform has no task with this id.
    UnknownTask,
}

impl std::fmt::Debug for PartTask {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Fields named one by one: one added later stays hidden until it is
        // added here.
        f.debug_struct("PartTask")
            .field("task_id", &self.task_id)
            .field("upload", &self.upload)
            .field("part_number", &self.part_number)
            .field("url", &redact::url_for_debug(&self.url))
            .field("file_path", &self.file_path)
            .field("length", &self.length)
            .field("earliest_begin_ms", &self.earliest_begin_ms)
            .field("allow_metered", &self.allow_metered)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for TaskOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TaskOutcome::Response {
                status,
                etag,
                retry_after,
                body,
            } => f
                .debug_struct("Response")
                .field("status", status)
                .field("etag", etag)
                .field("retry_after", retry_after)
                .field("body", &redact::excerpt(body.as_bytes(), &[]))
                .finish(),
            TaskOutcome::TransportError(m) => f
                .debug_tuple("TransportError")
                .field(&redact::excerpt(m.as_bytes(), &[]))
                .finish(),
            TaskOutcome::Cancelled => f.write_str("Cancelled"),
            TaskOutcome::UnknownTask => f.write_str("UnknownTask"),
        }
    }
}

/// Implemented by the platform (iOS: a background `URLSession`). Called on
/// an engine thread: return quickly, do the upload elsewhere, and report
/// its end with [`crate::Uploader::report_task`].
pub trait PartTransport: Send + Sync {
    /// Starts the task. An error makes the engine count one failed
    /// attempt of the part and try again later.
    fn submit(&self, task: PartTask) -> std::result::Result<(), String>;
    /// Stops a task the engine no longer wants (its upload ended or was
    /// paused, the network policy changed, or its part is done). No report
    /// is needed; one that still comes is fine (a 2xx of a task that ended
    /// before the cancel counts).
    fn cancel(&self, task_id: &str);
}

/// Hand-off tuning.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HandoffSettings {
    /// Bytes of staged part files at most. A part larger than this is
    /// never handed off: it waits for direct mode.
    pub staging_budget: u64,
    /// A URL is refreshed before hand-off when less than this much of its
    /// life remains (capped at half the URL's lifetime).
    pub url_margin: Duration,
    /// Parts kept handed off while the app is on screen (when the platform
    /// reports its app state), beside the engine's own sending: tasks made
    /// then are not left to the OS's discretion after the app leaves. 0: none.
    pub prehandoff_window: u32,
}

impl Default for HandoffSettings {
    fn default() -> Self {
        HandoffSettings {
            staging_budget: DEFAULT_STAGING_BUDGET,
            url_margin: DEFAULT_URL_MARGIN,
            prehandoff_window: super::phone::DEFAULT_PREHANDOFF_WINDOW,
        }
    }
}

/// Commands of the hand-off seam.
pub(crate) enum HandoffCommand {
    SetTransport(Option<Arc<dyn PartTransport>>, HandoffSettings),
    SetMode(bool, Reply<()>),
    Report(String, TaskOutcome),
    Reconcile(Vec<String>, Reply<Vec<String>>),
}

pub(super) struct HandedTask {
    upload: UploadId,
    number: u32,
    path: PathBuf,
    len: u64,
    /// The multipart upload the task was made for: its report counts only
    /// while the upload still has that one.
    multipart: Option<String>,
    /// As the task was given it ([`PartTask::allow_metered`]).
    allow_metered: bool,
    /// Made while the app was on screen (the pre-hand-off window).
    pub(super) prehanded: bool,
    /// Bytes the transport reported sent: 0 means not started.
    pub(super) sent: u64,
}

/// A task the engine stopped waiting for (the platform said it had lost
/// it) whose report may still come.
struct Tombstone {
    upload: UploadId,
    number: u32,
    multipart: String,
}

pub(super) struct Handoff {
    /// The platform asked for hand-off (on the way into suspension).
    on: bool,
    pub(super) transport: Option<Arc<dyn PartTransport>>,
    staging: Staging,
    url_margin: Duration,
    pub(super) tasks: HashMap<String, HandedTask>,
    /// Stagings under way: their task's ticket and the bytes they hold of
    /// the budget until they end.
    stage_jobs: HashMap<u64, u64>,
    /// By task id; dropped when their part is committed or their upload
    /// ends or loses its multipart upload.
    tombstones: HashMap<String, Tombstone>,
    /// The disk was full: no staging until a staged file is deleted.
    no_space: bool,
    handed_total: u64,
}

impl Handoff {
    pub(super) fn new() -> Handoff {
        Handoff {
            on: false,
            transport: None,
            staging: Staging::new(PathBuf::new(), DEFAULT_STAGING_BUDGET),
            url_margin: DEFAULT_URL_MARGIN,
            tasks: HashMap::new(),
            stage_jobs: HashMap::new(),
            tombstones: HashMap::new(),
            no_space: false,
            handed_total: 0,
        }
    }
}

fn task_failure(outcome: TaskOutcome) -> std::result::Result<String, Failure> {
    match outcome {
        TaskOutcome::Response {
            status,
            etag,
            retry_after,
            body,
        } => crate::transfer::classify_answer(
            status,
            etag.as_deref().map(str::as_bytes),
            retry_after
                .as_deref()
                .and_then(crate::failure::parse_retry_after),
            body.as_bytes(),
        ),
        TaskOutcome::TransportError(e) => Err(Failure::Transient {
            detail: format!(
                "part upload by the platform failed: {}",
                redact::redact(&e, &[])
            ),
            retry_after: None,
        }),
        TaskOutcome::Cancelled => Err(Failure::Transient {
            detail: "the platform cancelled the part upload".into(),
            retry_after: None,
        }),
        TaskOutcome::UnknownTask => Err(Failure::Transient {
            detail: "the platform lost the part upload".into(),
            retry_after: None,
        }),
    }
}

impl Engine {
    /// Loads the persisted tasks and cleans the staging folder: tasks whose
    /// part is already committed or whose upload ended go, files no task
    /// names go. Called once at open.
    pub(crate) fn open_handoff(&mut self, staging_dir: PathBuf) -> Result<()> {
        self.handoff.staging = Staging::new(staging_dir, self.handoff.staging.budget());
        let mut gone = Vec::new();
        for row in self.store.handoff_tasks()? {
            let path = PathBuf::from(&row.staged_path);
            let slot = self.uploads.get_mut(&row.upload).and_then(|t| {
                if t.row.state.is_final()
                    || row.multipart_upload.is_none()
                    || t.row.upload_id != row.multipart_upload
                {
                    return None;
                }
                t.part_mut(row.number)
                    .filter(|p| p.etag.is_none() && path.exists())
            });
            match slot {
                Some(p) => {
                    p.handed_off = true;
                    self.handoff.staging.adopt(row.length);
                    self.handoff.tasks.insert(
                        row.task_id,
                        HandedTask {
                            upload: row.upload,
                            number: row.number,
                            path,
                            len: row.length,
                            multipart: row.multipart_upload,
                            allow_metered: row.allow_metered,
                            // Unknown after a relaunch: treated as made in
                            // the background (taken back if not started).
                            prehanded: false,
                            sent: 0,
                        },
                    );
                }
                None => gone.push(row.task_id),
            }
        }
        let mut buried = Vec::new();
        for row in self.store.handoff_tombstones()? {
            let open = self.uploads.get(&row.upload).is_some_and(|t| {
                !t.row.state.is_final()
                    && t.row.upload_id.as_deref() == Some(row.multipart_upload.as_str())
                    && t.part(row.number).is_some_and(|p| p.etag.is_none())
            });
            if open {
                self.handoff.tombstones.insert(
                    row.task_id,
                    Tombstone {
                        upload: row.upload,
                        number: row.number,
                        multipart: row.multipart_upload,
                    },
                );
            } else {
                buried.push(row.task_id);
            }
        }
        if !gone.is_empty() || !buried.is_empty() {
            let tx = self.store.transaction()?;
            for id in &gone {
                delete_task(&tx, id)?;
            }
            for id in &buried {
                delete_tombstone(&tx, id)?;
            }
            tx.commit()?;
        }
        let keep: HashSet<PathBuf> = self
            .handoff
            .tasks
            .values()
            .map(|t| t.path.clone())
            .collect();
        let removed = self.handoff.staging.clean_stale(&keep);
        if removed > 0 {
            tracing::info!(removed, "stale staged parts deleted");
        }
        Ok(())
    }

    /// Whether handed-off parts may use a metered network: the policy
    /// decides, not the network of the moment (the platform's session
    /// waits for an allowed one, also while the app is suspended).
    pub(super) fn metered_allowed(&self) -> bool {
        let policy = self
            .config
            .as_ref()
            .map(|c| c.network_policy)
            .unwrap_or_default();
        policy != crate::background::NetworkPolicy::UnmeteredOnly
    }

    pub(super) fn handoff_active(&self) -> bool {
        self.handoff.on && self.handoff.transport.is_some()
    }

    /// Parts prepared ahead (URLs fetched): the direct limit, or in hand-off
    /// as many as the staging budget holds.
    pub(super) fn part_window(&self, config: &Config) -> usize {
        let limit = config.max_parts_in_flight as usize;
        if !self.handoff_active() {
            if self.prehandoff_active() {
                return limit + self.phone.window;
            }
            return limit;
        }
        let fits = usize::try_from(self.handoff.staging.budget() / MIN_PART).unwrap_or(usize::MAX);
        fits.clamp(limit, MAX_URL_BATCH)
    }

    /// The life a URL must have left to be ready (`url_ready`), when the
    /// mode asks for one.
    pub(super) fn url_margin_in_use(&self) -> Option<Duration> {
        self.handoff_active().then_some(self.handoff.url_margin)
    }

    /// Whether the part has a URL good enough for the current mode.
    pub(super) fn url_ready(&self, t: &Tracked, n: u32, now: BootTime) -> bool {
        if self.handoff_active() {
            t.urls
                .usable_with_margin(n, now, self.handoff.url_margin)
                .is_some()
        } else {
            t.urls.usable(n, now).is_some()
        }
    }

    pub(super) fn handle_handoff(&mut self, cmd: HandoffCommand) {
        match cmd {
            HandoffCommand::SetTransport(transport, settings) => {
                let registered = transport.is_some();
                self.handoff.transport = transport;
                self.handoff.staging.set_budget(settings.staging_budget);
                self.handoff.url_margin = settings.url_margin;
                self.phone.window = settings.prehandoff_window as usize;
                if registered {
                    // Tasks of a previous run, given under another policy.
                    self.reissue_off_policy();
                }
                self.transport_changed();
            }
            HandoffCommand::SetMode(on, reply) => {
                if self.lifecycle_managed() {
                    tracing::warn!("part mode ignored: the platform reports its app state");
                } else {
                    self.set_handoff_mode(on);
                }
                self.changes.send_modify(|n| *n += 1);
                let _ = reply.send(Ok(()));
            }
            HandoffCommand::Report(task_id, outcome) => self.on_report(&task_id, outcome),
            HandoffCommand::Reconcile(live, reply) => {
                let r = self.reconcile(live);
                let _ = reply.send(Ok(r));
            }
        }
        self.changes.send_modify(|n| *n += 1);
    }

    /// Hand-off mode on or off. Turned on, the engine's own PUTs stop (no
    /// attempt counted): they would die with the suspension, and their
    /// parts are handed off instead.
    pub(super) fn set_handoff_mode(&mut self, on: bool) {
        if on && !self.handoff.on {
            for info in self.tickets.values() {
                if matches!(info.kind, TaskKind::Part(_)) {
                    info.handle.abort();
                }
            }
        }
        self.handoff.on = on;
    }

    /// In hand-off mode "idle" depends on the engine's own tasks too: wake
    /// `run_until_idle` whenever one ends.
    pub(super) fn note_task_end(&self) {
        // A background run decides on the engine's own work too (a retry
        // parked for long ends it): wake it as well.
        if self.handoff.on || self.phone_run_under_way() {
            self.changes.send_modify(|n| *n += 1);
        }
    }

    /// Starts staging parts to hand off, oldest upload first, within the
    /// budget; each is handed off when its staging ends (`on_staged`).
    pub(super) fn fill_handoff(&mut self, cap: Option<usize>) {
        if self.handoff.no_space {
            return;
        }
        let mut slots = MAX_STAGINGS_IN_FLIGHT.saturating_sub(self.handoff.stage_jobs.len());
        if let Some(cap) = cap {
            // The pre-hand-off window counts tasks held and being staged.
            let held = self.handoff.tasks.len() + self.handoff.stage_jobs.len();
            slots = slots.min(cap.saturating_sub(held));
        }
        if slots == 0 {
            return;
        }
        let now = BootTime::now();
        let budget = self.handoff.staging.budget();
        // Stagings under way hold their bytes already.
        let mut room = budget.saturating_sub(self.handoff.staging.used());
        let mut picked: Vec<(UploadId, u32, u64)> = Vec::new();
        'uploads: for (&id, t) in &self.uploads {
            if !matches!(t.row.state, UploadState::Initialized | UploadState::Running) {
                continue;
            }
            // Picked, it could not be staged, and picked again on the next
            // pass at once: the loop would spin until an opener comes
            // (OpenerChanged wakes it then).
            if self.waits_for_opener(t) || t.waits_for_unlock(self.pass.ms) {
                continue;
            }
            let part_size = t.row.part_size.unwrap_or(0);
            for (i, p) in t.parts.iter().enumerate() {
                let n = i as u32 + 1;
                // A handed-off task may wait long: its URL needs the margin
                // also when the engine itself sends (pre-hand-off).
                if !p.open()
                    || t.urls
                        .usable_with_margin(n, now, self.handoff.url_margin)
                        .is_none()
                {
                    continue;
                }
                let len = part_len(t.row.size, part_size, n);
                if len > budget {
                    // Never fits: it waits for direct mode.
                    continue;
                }
                if len > room {
                    break 'uploads;
                }
                room -= len;
                picked.push((id, n, len));
                if picked.len() == slots {
                    break 'uploads;
                }
            }
        }
        if !picked.is_empty() {
            self.changes.send_modify(|n| *n += 1);
        }
        let mut checked: HashSet<UploadId> = HashSet::new();
        for (id, n, len) in picked {
            if !self.uploads[&id].row.state.is_active() {
                continue; // failed on an earlier part of this pass
            }
            if checked.insert(id) {
                if let Err(e) = self.check_file(id) {
                    self.file_check_failed(id, e);
                    continue;
                }
                if self.uploads[&id].row.state == UploadState::Initialized {
                    if let Err(e) = self.commit_state(id, UploadState::Running, None) {
                        self.db_failed(id, e);
                        continue;
                    }
                    self.notify_state(id);
                }
            }
            self.hand_off(id, n, len);
        }
    }

    /// Starts staging one part, off the engine's task.
    fn hand_off(&mut self, id: UploadId, n: u32, len: u64) {
        // A URI upload waits for the platform's opener, as its PUTs do.
        let Some(src) = self.part_file(id) else {
            return;
        };
        self.spawn_stage(id, n, len, src);
    }

    /// Persists the task of a staged part (counted in the budget already)
    /// and submits it.
    fn hand_over(
        &mut self,
        id: UploadId,
        n: u32,
        len: u64,
        task_id: String,
        url: String,
        path: PathBuf,
    ) {
        let t = &self.uploads[&id];
        let url_expires_at = t.urls.get_expiry_ms(n);
        let not_before = t.part(n).map_or(0, |p| p.next_attempt_at);
        // The URL is the current multipart upload's (URLs of one that
        // vanished are dropped with it).
        let multipart = t.row.upload_id.clone();
        let allow_metered = self.metered_allowed();
        let prehanded = self.on_screen();
        let row = TaskRow {
            task_id: task_id.clone(),
            upload: id,
            number: n,
            staged_path: path.to_string_lossy().into_owned(),
            length: len,
            url_expires_at,
            multipart_upload: multipart.clone(),
            allow_metered,
        };
        let tx = self.store.transaction();
        if let Err(e) = tx.and_then(|tx| {
            insert_task(&tx, &row)?;
            Ok(tx.commit()?)
        }) {
            self.handoff.staging.release(&path, len);
            self.db_failed(id, e);
            return;
        }
        if let Some(p) = self.uploads.get_mut(&id).and_then(|t| t.part_mut(n)) {
            p.handed_off = true;
        }
        self.handoff.tasks.insert(
            task_id.clone(),
            HandedTask {
                upload: id,
                number: n,
                path: path.clone(),
                len,
                multipart,
                allow_metered,
                prehanded,
                sent: 0,
            },
        );
        self.handoff.handed_total += 1;
        let task = PartTask {
            task_id: task_id.clone(),
            upload: id,
            part_number: n,
            url,
            file_path: path,
            length: len,
            earliest_begin_ms: if not_before > now_ms() { not_before } else { 0 },
            allow_metered,
        };
        tracing::debug!(upload = id, part = n, task = %task_id, "part handed off");
        let transport = self
            .handoff
            .transport
            .clone()
            .expect("hand-off has a transport");
        // Foreign code must not take the engine down.
        let submitted =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| transport.submit(task)))
                .unwrap_or_else(|_| Err("the transport panicked".into()));
        if let Err(e) = submitted {
            self.on_report(&task_id, TaskOutcome::TransportError(e));
        }
    }

    /// A task's end, as the platform reports it.
    pub(super) fn on_report(&mut self, task_id: &str, outcome: TaskOutcome) {
        let Some(task) = self.handoff.tasks.remove(task_id) else {
            if let Some(stone) = self.handoff.tombstones.remove(task_id) {
                return self.on_late_report(task_id, stone, outcome);
            }
            // Cancelled by us, or its upload is gone: nothing to do.
            tracing::debug!(task = %task_id, "report for a task the engine does not hold");
            return;
        };
        // A task made for a multipart upload the upload no longer has (it
        // vanished and was dropped, perhaps replaced): its part slots are
        // another upload's now, and its ETag or error means nothing there.
        let current = self
            .uploads
            .get(&task.upload)
            .is_some_and(|t| task.multipart.is_some() && t.row.upload_id == task.multipart);
        if current {
            if let Some(p) = self
                .uploads
                .get_mut(&task.upload)
                .and_then(|t| t.part_mut(task.number))
            {
                p.handed_off = false;
            }
            // The ETag is committed before the task row goes: a crash in
            // between leaves a row whose part is done, dropped at the next open.
            self.on_part(task.upload, task.number, task_failure(outcome));
        } else {
            tracing::debug!(task = %task_id, "report for a dropped multipart upload ignored");
        }
        self.forget_task(task_id, &task);
    }

    /// The upload ended (completed, failed, cancelled) or its multipart
    /// upload vanished: its tasks are cancelled at the platform and their
    /// rows and files deleted, its tombstones too.
    pub(super) fn drop_handoffs(&mut self, id: UploadId) {
        let stones: Vec<String> = self
            .handoff
            .tombstones
            .iter()
            .filter(|(_, s)| s.upload == id)
            .map(|(k, _)| k.clone())
            .collect();
        self.bury(&stones);
        let ids: Vec<String> = self
            .handoff
            .tasks
            .iter()
            .filter(|(_, t)| t.upload == id)
            .map(|(k, _)| k.clone())
            .collect();
        for task_id in ids {
            self.withdraw_task(&task_id, false);
        }
    }

    /// Takes back the tasks given under another network policy than the
    /// current one (cancelled at the platform, kept as tombstones: one may
    /// have ended already), so that their parts are handed off again under
    /// this one. A change of the network itself needs nothing: the
    /// platform holds each task until a network it allows.
    pub(super) fn reissue_off_policy(&mut self) {
        let allow = self.metered_allowed();
        let ids: Vec<String> = self
            .handoff
            .tasks
            .iter()
            .filter(|(_, t)| t.allow_metered != allow)
            .map(|(k, _)| k.clone())
            .collect();
        if ids.is_empty() {
            return;
        }
        tracing::info!(
            tasks = ids.len(),
            "network policy changed; handed-off tasks are issued again"
        );
        for task_id in ids {
            self.withdraw_task(&task_id, true);
        }
    }

    /// Takes back the tasks of a paused upload: cancelled at the platform,
    /// rows and files deleted; a 2xx of one that ended before the cancel
    /// reached it still counts (a part done while paused counts).
    pub(super) fn recall_handoffs(&mut self, id: UploadId) {
        let ids: Vec<String> = self
            .handoff
            .tasks
            .iter()
            .filter(|(_, t)| t.upload == id)
            .map(|(k, _)| k.clone())
            .collect();
        for task_id in ids {
            self.withdraw_task(&task_id, true);
        }
    }

    /// Hand-off figures for the status.
    pub(super) fn handoff_status(&self, s: &mut EngineStatus) {
        s.handoff = self.handoff_active();
        s.tasks_handed_off = self.handoff.tasks.len() as u32;
        s.tasks_handed_off_total = self.handoff.handed_total;
        s.staged_bytes = self.handoff.staging.used();
        s.staging_peak = self.handoff.staging.peak();
        s.engine_busy = !self.tickets.is_empty();
    }
}
