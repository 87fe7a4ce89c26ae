//! Part hand-off: while the app is suspended (iOS), parts are uploaded by
//! the platform's transport (a background `URLSession`) from staged files.
//! The engine stages each part, persists the task, hands it over, and
//! commits the ETag the platform reports back, even after a relaunch.
//! Reports go through the same classification and retry rules as the
//! engine's own PUTs.

use super::boot_clock::BootTime;
use super::*;
use crate::staging::{StageError, Staging, DEFAULT_STAGING_BUDGET};
use crate::store::handoff::{delete_task, insert_task, TaskRow};
use std::collections::HashSet;
use std::path::PathBuf;

/// Parts staged in one scheduler pass: a big budget is filled over several
/// passes so commands (pause, reports) are served in between.
const STAGE_PER_PASS: usize = 4;

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
    /// Stops a task the engine no longer wants (its upload was cancelled or
    /// failed). No report is needed for it.
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
}

impl Default for HandoffSettings {
    fn default() -> Self {
        HandoffSettings {
            staging_budget: DEFAULT_STAGING_BUDGET,
            url_margin: DEFAULT_URL_MARGIN,
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
}

pub(super) struct Handoff {
    /// The platform asked for hand-off (on the way into suspension).
    on: bool,
    transport: Option<Arc<dyn PartTransport>>,
    staging: Staging,
    url_margin: Duration,
    tasks: HashMap<String, HandedTask>,
    /// Staging stopped at its per-pass cap with parts still to go.
    pub(super) more: bool,
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
            more: false,
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
                if t.row.state.is_final() {
                    return None;
                }
                t.parts
                    .get_mut(row.number as usize - 1)
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
                        },
                    );
                }
                None => gone.push(row.task_id),
            }
        }
        if !gone.is_empty() {
            let tx = self.store.transaction()?;
            for id in &gone {
                delete_task(&tx, id)?;
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

    pub(super) fn handoff_active(&self) -> bool {
        self.handoff.on && self.handoff.transport.is_some()
    }

    /// Parts prepared ahead (URLs fetched): the direct limit, or in hand-off
    /// as many as the staging budget holds.
    pub(super) fn part_window(&self, config: &Config) -> usize {
        let limit = config.max_parts_in_flight as usize;
        if !self.handoff_active() {
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
                self.handoff.transport = transport;
                self.handoff.staging.set_budget(settings.staging_budget);
                self.handoff.url_margin = settings.url_margin;
            }
            HandoffCommand::SetMode(on, reply) => {
                if on && !self.handoff.on {
                    // Direct PUTs would die with the suspension: stop them
                    // now (no attempt counted) so their parts are handed off.
                    for info in self.tickets.values() {
                        if matches!(info.kind, TaskKind::Part(_)) {
                            info.handle.abort();
                        }
                    }
                }
                self.handoff.on = on;
                self.handoff.more = false;
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

    /// In hand-off mode "idle" depends on the engine's own tasks too: wake
    /// `run_until_idle` whenever one ends.
    pub(super) fn note_task_end(&self) {
        if self.handoff.on {
            self.changes.send_modify(|n| *n += 1);
        }
    }

    /// Stages and hands off parts, oldest upload first, within the budget.
    pub(super) fn fill_handoff(&mut self) {
        self.handoff.more = false;
        if self.handoff.no_space {
            return;
        }
        let now = BootTime::now();
        let budget = self.handoff.staging.budget();
        let mut room = budget.saturating_sub(self.handoff.staging.used());
        let mut picked: Vec<(UploadId, u32, u64, i64)> = Vec::new();
        'uploads: for (&id, t) in &self.uploads {
            if !matches!(t.row.state, UploadState::Initialized | UploadState::Running) {
                continue;
            }
            let part_size = t.row.part_size.unwrap_or(0);
            for (i, p) in t.parts.iter().enumerate() {
                let n = i as u32 + 1;
                if !p.open() || !self.url_ready(t, n, now) {
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
                if picked.len() == STAGE_PER_PASS {
                    self.handoff.more = true;
                    break 'uploads;
                }
                room -= len;
                picked.push((id, n, len, p.next_attempt_at));
            }
        }
        if !picked.is_empty() {
            self.changes.send_modify(|n| *n += 1);
        }
        let mut checked: HashSet<UploadId> = HashSet::new();
        for (id, n, len, not_before) in picked {
            if !self.uploads[&id].row.state.is_active() {
                continue; // failed on an earlier part of this pass
            }
            if checked.insert(id) {
                if let Err(e) = self.check_file(id) {
                    self.fail(id, e);
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
            if !self.hand_off(id, n, len, not_before) {
                self.handoff.more = false;
                return;
            }
        }
    }

    /// Stages one part, persists its task and submits it. Returns false
    /// when staging must stop (the disk is full).
    fn hand_off(&mut self, id: UploadId, n: u32, len: u64, not_before: i64) -> bool {
        let t = &self.uploads[&id];
        let Some(url) = t.urls.usable(n, BootTime::now()).map(str::to_string) else {
            return true;
        };
        let url_expires_at = t.urls.get_expiry_ms(n);
        let offset = (u64::from(n) - 1) * t.row.part_size.unwrap_or(0);
        // A URI upload waits for the platform's opener, as its PUTs do.
        let Some(src) = self.part_file(id) else {
            return true;
        };
        let task_id = format!("s3bgu-{id}-{n}-{:016x}", rand::random::<u64>());
        let name = format!("{task_id}.part");
        let pool = self.chunks.clone();
        let staging = &mut self.handoff.staging;
        let staged = tokio::task::block_in_place(|| staging.stage(&src, offset, len, &name, &pool));
        let path = match staged {
            Ok(p) => p,
            Err(StageError::NoSpace) if !self.handoff.tasks.is_empty() => {
                // Staged parts will be deleted as their reports come in.
                tracing::warn!(upload = id, part = n, "disk full while staging; waiting");
                self.handoff.no_space = true;
                return false;
            }
            Err(StageError::NoSpace) => {
                self.fail(
                    id,
                    UploadError::new(
                        ErrorCode::Database,
                        format!(
                            "no space left on the device to stage part {n} for the \
                             background upload; free some space, then resume"
                        ),
                    ),
                );
                return false;
            }
            Err(StageError::Source(e)) => {
                self.fail(id, e.into());
                return true;
            }
            Err(StageError::Dest(e)) => {
                self.fail(
                    id,
                    UploadError::new(
                        ErrorCode::Database,
                        format!("cannot write the staging folder: {e}"),
                    ),
                );
                return true;
            }
        };
        let row = TaskRow {
            task_id: task_id.clone(),
            upload: id,
            number: n,
            staged_path: path.to_string_lossy().into_owned(),
            length: len,
            url_expires_at,
        };
        let tx = self.store.transaction();
        if let Err(e) = tx.and_then(|tx| {
            insert_task(&tx, &row)?;
            Ok(tx.commit()?)
        }) {
            self.handoff.staging.release(&path, len);
            self.db_failed(id, e);
            return true;
        }
        self.uploads.get_mut(&id).expect("upload exists").parts[n as usize - 1].handed_off = true;
        self.handoff.tasks.insert(
            task_id.clone(),
            HandedTask {
                upload: id,
                number: n,
                path: path.clone(),
                len,
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
        true
    }

    /// A task's end, as the platform reports it.
    pub(super) fn on_report(&mut self, task_id: &str, outcome: TaskOutcome) {
        let Some(task) = self.handoff.tasks.remove(task_id) else {
            // Cancelled by us, or its upload is gone: nothing to do.
            tracing::debug!(task = %task_id, "report for a task the engine does not hold");
            return;
        };
        if let Some(p) = self
            .uploads
            .get_mut(&task.upload)
            .and_then(|t| t.parts.get_mut(task.number as usize - 1))
        {
            p.handed_off = false;
        }
        // The ETag is committed before the task row goes: a crash in
        // between leaves a row whose part is done, dropped at the next open.
        if self.uploads.contains_key(&task.upload) {
            self.on_part(task.upload, task.number, task_failure(outcome));
        }
        self.forget_task(task_id, &task);
    }

    fn forget_task(&mut self, task_id: &str, task: &HandedTask) {
        let tx = self.store.transaction();
        if let Err(e) = tx.and_then(|tx| {
            delete_task(&tx, task_id)?;
            Ok(tx.commit()?)
        }) {
            tracing::error!(task = %task_id, "cannot delete a finished task: {e}");
        }
        self.handoff.staging.release(&task.path, task.len);
        self.handoff.no_space = false;
    }

    /// The platform's live tasks after a relaunch: held tasks it does not
    /// have were lost and their parts are sent again (no attempt counted);
    /// returns the live ids the engine does not hold (to cancel).
    pub(super) fn reconcile(&mut self, live: Vec<String>) -> Vec<String> {
        let live: HashSet<String> = live.into_iter().collect();
        let lost: Vec<String> = self
            .handoff
            .tasks
            .keys()
            .filter(|k| !live.contains(*k))
            .cloned()
            .collect();
        for task_id in lost {
            if let Some(task) = self.handoff.tasks.remove(&task_id) {
                tracing::info!(
                    upload = task.upload,
                    part = task.number,
                    "handed-off task lost; sending again"
                );
                if let Some(p) = self
                    .uploads
                    .get_mut(&task.upload)
                    .and_then(|t| t.parts.get_mut(task.number as usize - 1))
                {
                    p.handed_off = false;
                }
                self.forget_task(&task_id, &task);
            }
        }
        let mut unknown: Vec<String> = live
            .into_iter()
            .filter(|k| !self.handoff.tasks.contains_key(k))
            .collect();
        unknown.sort();
        unknown
    }

    /// The upload ended (completed, failed, cancelled): its tasks are
    /// cancelled at the platform and their files deleted.
    pub(super) fn drop_handoffs(&mut self, id: UploadId) {
        let ids: Vec<String> = self
            .handoff
            .tasks
            .iter()
            .filter(|(_, t)| t.upload == id)
            .map(|(k, _)| k.clone())
            .collect();
        for task_id in ids {
            let Some(task) = self.handoff.tasks.remove(&task_id) else {
                continue;
            };
            if let Some(transport) = self.handoff.transport.clone() {
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    transport.cancel(&task_id)
                }));
            }
            if let Some(p) = self
                .uploads
                .get_mut(&id)
                .and_then(|t| t.parts.get_mut(task.number as usize - 1))
            {
                p.handed_off = false;
            }
            self.forget_task(&task_id, &task);
        }
    }

    /// Hand-off figures for the status.
    pub(super) fn handoff_status(&self, s: &mut EngineStatus) {
        s.handoff = self.handoff_active();
        s.tasks_handed_off = self.handoff.tasks.len() as u32;
        s.tasks_handed_off_total = self.handoff.handed_total;
        s.staged_bytes = self.handoff.staging.used();
        s.staging_peak = self.handoff.staging.peak();
        s.engine_busy = !self.tickets.is_empty() || self.handoff.more;
    }
}
