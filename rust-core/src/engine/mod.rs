//! The engine: one task that owns the database connection and every decision
//! (which call goes next, retries, URL refresh, state changes). Network work
//! runs in worker tasks that report back here; nothing else writes state.

mod urls;

use crate::backend::{part_count, BackendClient, StartAnswer};
use crate::background::{EngineStatus, NetworkState};
use crate::config::Config;
use crate::error::{err, ErrorCode, Result, UploadError};
use crate::failure::Failure;
use crate::hash::FileStamp;
use crate::model::{
    Progress, Selector, Summary, UploadEvent, UploadId, UploadInfo, UploadListener, UploadState,
};
use crate::redact;
use crate::store::{now_ms, write, AbortState, NewRow, PartRow, Store, UploadRow};
use crate::transfer::{put_part, PartJob};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::{AbortHandle, JoinSet};
use urls::UrlCache;

/// Minimum time between two progress events of one upload.
const PROGRESS_INTERVAL: Duration = Duration::from_millis(250);
/// startUpload calls in flight at once, at most (the next files are
/// prepared ahead, within the window of parts ahead).
const MAX_STARTS_IN_FLIGHT: usize = 8;
/// The smallest part S3 accepts (but the last): a file not started yet is
/// counted in the window as if cut in parts of this size.
const MIN_PART: u64 = 5 * 1024 * 1024;
/// Most part URLs asked for in one getUploadUrls call.
const MAX_URL_BATCH: usize = 64;
/// Longest sleep when nothing is due (a safety net; events wake the loop).
const IDLE_WAKE: Duration = Duration::from_secs(60);

type Reply<T> = oneshot::Sender<std::result::Result<T, UploadError>>;

/// A backend call the scheduler decided to make.
enum Call {
    Abort(UploadId),
    Start(UploadId),
    Complete(UploadId),
    Urls(UploadId, Vec<u32>),
}

/// Most commands and finished tasks handled before the scheduler runs again:
/// under load one pass over the queue serves many events, yet a long burst
/// cannot hold back new work for long.
const EVENTS_PER_PASS: usize = 64;

/// A file checked and hashed by the caller's side, ready to be queued.
pub(crate) struct HashedFile {
    pub path: PathBuf,
    pub transfer_id: String,
    pub file_name: String,
    pub file_hash: String,
    pub stamp: FileStamp,
    pub user_params: serde_json::Map<String, serde_json::Value>,
}

pub(crate) enum Command {
    SetConfig(Config, Reply<()>),
    GetConfig(Reply<Option<Config>>),
    Add(HashedFile, Reply<UploadInfo>),
    Pause(Selector, Reply<Vec<UploadInfo>>),
    Resume(Selector, Reply<Vec<UploadInfo>>),
    Cancel(Selector, Reply<Vec<UploadInfo>>),
    List(Selector, Reply<Vec<UploadInfo>>),
    Summary(Option<String>, Reply<Summary>),
    SetListener(Option<Arc<dyn UploadListener>>),
    SetRunning(bool, Reply<()>),
    Shutdown(oneshot::Sender<()>),
    /// The platform's view of the network; held work continues when allowed.
    SetNetwork(NetworkState),
    Status(Reply<EngineStatus>),
    /// Runs on the engine's task with every upload and the overall summary,
    /// between two events: a subscriber starts from a consistent snapshot.
    Inspect(Inspector),
}

pub(crate) type Inspector = Box<dyn FnOnce(Vec<UploadInfo>, Summary) + Send>;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TaskKind {
    Start,
    Urls,
    Part(u32),
    Complete,
    Abort,
}

enum Outcome {
    Start(std::result::Result<StartAnswer, Failure>),
    Urls {
        fetched_at: Instant,
        result: std::result::Result<BTreeMap<u32, String>, Failure>,
    },
    Part {
        number: u32,
        result: std::result::Result<String, Failure>,
    },
    Complete(std::result::Result<(), Failure>),
    Abort(std::result::Result<(), Failure>),
}

struct TaskDone {
    ticket: u64,
    outcome: Outcome,
}

struct TaskInfo {
    upload: UploadId,
    kind: TaskKind,
    handle: AbortHandle,
}

#[derive(Clone, Debug, Default)]
struct PartSlot {
    etag: Option<String>,
    attempts: u32,
    next_attempt_at: i64,
    /// URL refreshes in a row after 403s (in memory: bounded per process).
    refreshes: u32,
    /// Bytes sent by the PUT in flight, if one is.
    in_flight: Option<Arc<AtomicU64>>,
}

/// An upload as the engine tracks it: the stored row plus live state.
struct Tracked {
    row: UploadRow,
    parts: Vec<PartSlot>,
    urls: UrlCache,
    /// Backend calls in flight for this upload (at most one of each kind).
    busy: BTreeSet<TaskKindTag>,
    done_bytes: u64,
    parts_done: u32,
    last_progress: Option<(Instant, u64)>,
    /// User param values, kept out of messages.
    secrets: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum TaskKindTag {
    Start,
    Urls,
    Complete,
    Abort,
}

pub(crate) fn part_len(size: u64, part_size: u64, number: u32) -> u64 {
    let offset = (u64::from(number) - 1) * part_size;
    size.saturating_sub(offset).min(part_size)
}

impl Tracked {
    fn new(row: UploadRow, stored_parts: Vec<PartRow>) -> Tracked {
        let secrets = row
            .user_params
            .values()
            .filter_map(|v| match v {
                serde_json::Value::String(s) => Some(s.clone()),
                serde_json::Value::Number(n) => Some(n.to_string()),
                _ => None,
            })
            .collect();
        let mut t = Tracked {
            row,
            parts: Vec::new(),
            urls: UrlCache::default(),
            busy: BTreeSet::new(),
            done_bytes: 0,
            parts_done: 0,
            last_progress: None,
            secrets,
        };
        t.set_parts(stored_parts);
        t
    }

    fn set_parts(&mut self, stored: Vec<PartRow>) {
        self.parts = stored
            .into_iter()
            .map(|p| PartSlot {
                etag: p.etag,
                attempts: p.attempts,
                next_attempt_at: p.next_attempt_at,
                refreshes: 0,
                in_flight: None,
            })
            .collect();
        self.recount();
    }

    fn recount(&mut self) {
        let part_size = self.row.part_size.unwrap_or(0);
        self.parts_done = 0;
        self.done_bytes = 0;
        for (i, p) in self.parts.iter().enumerate() {
            if p.etag.is_some() {
                self.parts_done += 1;
                self.done_bytes += part_len(self.row.size, part_size, i as u32 + 1);
            }
        }
        if self.row.state == UploadState::Completed {
            self.done_bytes = self.row.size;
            self.parts_done = self.row.parts_total;
        }
    }

    fn in_flight_bytes(&self) -> u64 {
        self.parts
            .iter()
            .filter_map(|p| p.in_flight.as_ref())
            .map(|c| c.load(Ordering::Relaxed))
            .sum()
    }

    fn uploaded_bytes(&self) -> u64 {
        (self.done_bytes + self.in_flight_bytes()).min(self.row.size)
    }

    fn parts_in_flight(&self) -> usize {
        self.parts.iter().filter(|p| p.in_flight.is_some()).count()
    }

    fn all_parts_done(&self) -> bool {
        self.row.parts_total > 0 && self.parts_done == self.row.parts_total
    }

    fn info(&self) -> UploadInfo {
        let r = &self.row;
        UploadInfo {
            id: r.id,
            transfer_id: r.transfer_id.clone(),
            path: r.path.clone(),
            file_name: r.file_name.clone(),
            file_hash: r.file_hash.clone(),
            size: r.size,
            state: r.state,
            key: r.key.clone(),
            upload_id: r.upload_id.clone(),
            part_size: r.part_size,
            parts_total: r.parts_total,
            parts_done: self.parts_done,
            uploaded_bytes: self.uploaded_bytes(),
            error: r.error.clone(),
            created_at_ms: r.created_at,
            updated_at_ms: r.updated_at,
        }
    }

    fn progress(&self) -> Progress {
        Progress {
            id: self.row.id,
            transfer_id: self.row.transfer_id.clone(),
            uploaded_bytes: self.uploaded_bytes(),
            total_bytes: self.row.size,
            parts_done: self.parts_done,
            parts_total: self.row.parts_total,
        }
    }

    fn matches(&self, sel: &Selector) -> bool {
        match sel {
            Selector::All => true,
            Selector::Upload(id) => self.row.id == *id,
            Selector::Transfer(t) => &self.row.transfer_id == t,
        }
    }

    fn due(&self, now: i64) -> bool {
        self.row.next_attempt_at <= now
    }
}

fn load_tracked(store: &Store) -> Result<BTreeMap<UploadId, Tracked>> {
    let mut uploads = BTreeMap::new();
    for row in store.uploads()? {
        let parts = if row.state == UploadState::Completed {
            Vec::new()
        } else {
            store.parts(row.id)?
        };
        uploads.insert(row.id, Tracked::new(row, parts));
    }
    Ok(uploads)
}

/// Snapshots of every upload in a database, without running an engine.
pub(crate) fn snapshot(store: &Store) -> Result<Vec<UploadInfo>> {
    Ok(load_tracked(store)?.values().map(Tracked::info).collect())
}

pub(crate) struct Engine {
    store: Store,
    config: Option<Config>,
    http: reqwest::Client,
    /// Chunks the part bodies are read into.
    chunks: crate::buffer::BufPool,
    listener: Option<Arc<dyn UploadListener>>,
    uploads: BTreeMap<UploadId, Tracked>,
    tasks: JoinSet<TaskDone>,
    tickets: HashMap<u64, TaskInfo>,
    task_ids: HashMap<tokio::task::Id, u64>,
    next_ticket: u64,
    running: bool,
    changes: watch::Sender<u64>,
    network: NetworkState,
}

impl Engine {
    /// Loads the queue. Parts that were in flight when the process stopped have
    /// no ETag, so they are simply pending again.
    pub(crate) fn load(
        store: Store,
        http: reqwest::Client,
        changes: watch::Sender<u64>,
    ) -> Result<Engine> {
        let config = store.load_config()?;
        let uploads = load_tracked(&store)?;
        Ok(Engine {
            store,
            config,
            http,
            chunks: crate::transfer::chunk_pool(),
            listener: None,
            uploads,
            tasks: JoinSet::new(),
            tickets: HashMap::new(),
            task_ids: HashMap::new(),
            next_ticket: 0,
            running: true,
            changes,
            network: NetworkState::default(),
        })
    }

    pub(crate) fn set_running(&mut self, running: bool) {
        self.running = running;
    }

    pub(crate) async fn run(mut self, mut commands: mpsc::UnboundedReceiver<Command>) {
        loop {
            self.schedule();
            self.emit_due_progress(false);
            let wake = self.next_wake();
            tokio::select! {
                cmd = commands.recv() => match cmd {
                    Some(Command::Shutdown(done)) => return self.shut_down(done),
                    Some(cmd) => self.handle(cmd),
                    None => {
                        self.stop_all_tasks();
                        return;
                    }
                },
                Some(res) = self.tasks.join_next_with_id(), if !self.tasks.is_empty() => {
                    self.on_task_end(res);
                }
                _ = tokio::time::sleep_until(wake.into()) => {}
            }
            // Whatever else is ready already, before the next pass.
            for _ in 0..EVENTS_PER_PASS {
                if let Some(res) = self.tasks.try_join_next_with_id() {
                    self.on_task_end(res);
                    continue;
                }
                match commands.try_recv() {
                    Ok(Command::Shutdown(done)) => return self.shut_down(done),
                    Ok(cmd) => self.handle(cmd),
                    Err(_) => break,
                }
            }
        }
    }

    /// Stops every task and closes the database (checkpointing its WAL)
    /// before the caller hears that the engine is down.
    fn shut_down(mut self, done: oneshot::Sender<()>) {
        self.stop_all_tasks();
        drop(self);
        let _ = done.send(());
    }

    fn stop_all_tasks(&mut self) {
        self.tasks.abort_all();
        self.tickets.clear();
        self.task_ids.clear();
        for t in self.uploads.values_mut() {
            t.busy.clear();
            for p in &mut t.parts {
                p.in_flight = None;
            }
        }
    }

    // ----- commands -----

    fn handle(&mut self, cmd: Command) {
        match cmd {
            Command::SetConfig(config, reply) => {
                let r = self.set_config(config);
                self.hold_if_network_refused();
                let _ = reply.send(r.map_err(Into::into));
            }
            Command::GetConfig(reply) => {
                let _ = reply.send(Ok(self.config.clone()));
            }
            Command::Add(file, reply) => {
                let r = self.add(file);
                let _ = reply.send(r.map_err(Into::into));
            }
            Command::Pause(sel, reply) => {
                let r = self.pause(&sel, None);
                let _ = reply.send(r.map_err(Into::into));
            }
            Command::Resume(sel, reply) => {
                let r = self.resume(&sel);
                let _ = reply.send(r.map_err(Into::into));
            }
            Command::Cancel(sel, reply) => {
                let r = self.cancel(&sel);
                let _ = reply.send(r.map_err(Into::into));
            }
            Command::List(sel, reply) => {
                let list = self
                    .uploads
                    .values()
                    .filter(|t| t.matches(&sel))
                    .map(Tracked::info)
                    .collect();
                let _ = reply.send(Ok(list));
            }
            Command::Summary(transfer, reply) => {
                let _ = reply.send(Ok(self.summary(transfer.as_deref())));
            }
            Command::SetListener(l) => self.listener = l,
            Command::SetRunning(running, reply) => {
                if !running {
                    // Checkpoint: stop the network work; nothing committed changes.
                    self.stop_all_tasks();
                }
                self.running = running;
                self.changes.send_modify(|n| *n += 1);
                let _ = reply.send(Ok(()));
            }
            Command::SetNetwork(state) => {
                self.network = state;
                self.hold_if_network_refused();
            }
            Command::Status(reply) => {
                let _ = reply.send(Ok(self.status()));
            }
            Command::Inspect(f) => {
                let list = self.uploads.values().map(Tracked::info).collect();
                f(list, self.summary(None));
            }
            // The loop handles it before dispatching here; answer anyway.
            Command::Shutdown(done) => {
                let _ = done.send(());
            }
        }
    }

    fn network_allowed(&self) -> bool {
        let policy = self
            .config
            .as_ref()
            .map(|c| c.network_policy)
            .unwrap_or_default();
        self.network.allows(policy)
    }

    /// Stops the network work when the network (or the policy) no longer
    /// allows it: parts in flight are sent again later and no attempt is
    /// counted, so an hour offline fails nothing.
    fn hold_if_network_refused(&mut self) {
        if !self.network_allowed() {
            self.stop_all_tasks();
        }
        self.changes.send_modify(|n| *n += 1);
    }

    fn status(&self) -> EngineStatus {
        let mut s = EngineStatus {
            running: self.running,
            network: self.network,
            network_allowed: self.network_allowed(),
            db_commits: self.store.commits(),
            ..EngineStatus::default()
        };
        for t in self.uploads.values() {
            let state = t.row.state;
            if state.is_active() {
                s.active += 1;
                s.bytes_remaining += t.row.size.saturating_sub(t.uploaded_bytes());
            } else if state == UploadState::Paused {
                s.paused += 1;
                if t.row
                    .error
                    .as_ref()
                    .is_some_and(|e| e.code == ErrorCode::AuthRequired)
                {
                    s.auth_paused += 1;
                }
            }
        }
        s
    }

    fn set_config(&mut self, config: Config) -> Result<()> {
        config.validate()?;
        self.store.save_config(&config)?;
        self.config = Some(config);
        Ok(())
    }

    fn add(&mut self, f: HashedFile) -> Result<UploadInfo> {
        if self.config.is_none() {
            return Err(err(
                ErrorCode::InvalidConfig,
                "no configuration: call setConfig before adding files",
            ));
        }
        if let Some(id) = self.store.find_duplicate(&f.transfer_id, &f.file_hash)? {
            if let Some(t) = self.uploads.get(&id) {
                return Ok(t.info());
            }
        }
        let path = f.path.to_string_lossy().into_owned();
        let tx = self.store.transaction()?;
        let id = write::insert_upload(
            &tx,
            &NewRow {
                transfer_id: &f.transfer_id,
                path: &path,
                file_name: &f.file_name,
                file_hash: &f.file_hash,
                size: f.stamp.size,
                mtime_ns: f.stamp.mtime_ns,
                user_params: &f.user_params,
            },
        )?;
        tx.commit()?;
        let row = self
            .store
            .upload(id)?
            .ok_or_else(|| err(ErrorCode::Internal, "inserted upload vanished"))?;
        let t = Tracked::new(row, Vec::new());
        let info = t.info();
        self.uploads.insert(id, t);
        self.notify_state(id);
        Ok(info)
    }

    fn selected(&self, sel: &Selector) -> Result<Vec<UploadId>> {
        let ids: Vec<UploadId> = self
            .uploads
            .values()
            .filter(|t| t.matches(sel))
            .map(|t| t.row.id)
            .collect();
        if let Selector::Upload(id) = sel {
            if ids.is_empty() {
                return Err(err(ErrorCode::NotFound, format!("no upload with id {id}")));
            }
        }
        Ok(ids)
    }

    /// Pauses the selected unfinished uploads; `reason` is set for auth pauses.
    fn pause(&mut self, sel: &Selector, reason: Option<UploadError>) -> Result<Vec<UploadInfo>> {
        let mut changed = Vec::new();
        for id in self.selected(sel)? {
            if !self.uploads[&id].row.state.is_active() {
                continue;
            }
            self.commit_state(id, UploadState::Paused, reason.as_ref())?;
            self.stop_tasks_of(id);
            changed.push(self.uploads[&id].info());
            self.notify_state(id);
        }
        Ok(changed)
    }

    fn resume(&mut self, sel: &Selector) -> Result<Vec<UploadInfo>> {
        let mut changed = Vec::new();
        for id in self.selected(sel)? {
            let t = &self.uploads[&id];
            if !matches!(t.row.state, UploadState::Paused | UploadState::Failed) {
                continue;
            }
            let next = if t.row.upload_id.is_none() {
                UploadState::Pending
            } else if t.parts_done > 0 {
                UploadState::Running
            } else {
                UploadState::Initialized
            };
            let tx = self.store.transaction()?;
            write::reset_attempts(&tx, id)?;
            write::set_state(&tx, id, next, None)?;
            tx.commit()?;
            let t = self.uploads.get_mut(&id).expect("selected upload exists");
            t.row.state = next;
            t.row.error = None;
            t.row.attempts = 0;
            t.row.next_attempt_at = 0;
            t.row.updated_at = now_ms();
            for p in &mut t.parts {
                p.attempts = 0;
                p.next_attempt_at = 0;
                p.refreshes = 0;
            }
            changed.push(t.info());
            self.notify_state(id);
        }
        Ok(changed)
    }

    fn cancel(&mut self, sel: &Selector) -> Result<Vec<UploadInfo>> {
        let mut changed = Vec::new();
        let abort_configured = self.config.as_ref().is_some_and(|c| c.abort_url.is_some());
        for id in self.selected(sel)? {
            let t = &self.uploads[&id];
            if t.row.state.is_final() {
                continue;
            }
            let abort = if t.row.upload_id.is_some() && abort_configured {
                AbortState::Pending
            } else {
                AbortState::None
            };
            let tx = self.store.transaction()?;
            write::set_state(&tx, id, UploadState::Cancelled, None)?;
            write::set_attempts(&tx, id, 0, 0)?;
            write::set_abort_state(&tx, id, abort)?;
            tx.commit()?;
            self.stop_tasks_of(id);
            let t = self.uploads.get_mut(&id).expect("selected upload exists");
            t.row.state = UploadState::Cancelled;
            t.row.error = None;
            t.row.attempts = 0;
            t.row.next_attempt_at = 0;
            t.row.abort_state = abort;
            t.row.updated_at = now_ms();
            t.urls.clear();
            changed.push(t.info());
            self.notify_state(id);
        }
        Ok(changed)
    }

    fn summary(&self, transfer: Option<&str>) -> Summary {
        let mut s = Summary::default();
        let mut transfers: BTreeMap<&str, bool> = BTreeMap::new();
        for t in self.uploads.values() {
            if transfer.is_some_and(|x| x != t.row.transfer_id) {
                continue;
            }
            s.uploads += 1;
            match t.row.state {
                UploadState::Pending => s.pending += 1,
                UploadState::Initialized => s.initialized += 1,
                UploadState::Running => s.running += 1,
                UploadState::Paused => s.paused += 1,
                UploadState::Completed => s.completed += 1,
                UploadState::Failed => s.failed += 1,
                UploadState::Cancelled => s.cancelled += 1,
            }
            let complete = transfers.entry(&t.row.transfer_id).or_insert(true);
            if t.row.state != UploadState::Cancelled {
                s.total_bytes += t.row.size;
                s.uploaded_bytes += t.uploaded_bytes();
                if t.row.state != UploadState::Completed {
                    *complete = false;
                }
            }
        }
        s.transfers = transfers.len() as u32;
        s.completed_transfers = transfers.values().filter(|c| **c).count() as u32;
        s
    }

    // ----- state changes: committed first, then reported -----

    fn commit_state(
        &mut self,
        id: UploadId,
        state: UploadState,
        error: Option<&UploadError>,
    ) -> Result<()> {
        let tx = self.store.transaction()?;
        write::set_state(&tx, id, state, error)?;
        tx.commit()?;
        if let Some(t) = self.uploads.get_mut(&id) {
            t.row.state = state;
            t.row.error = error.cloned();
            t.row.updated_at = now_ms();
        }
        Ok(())
    }

    fn notify_state(&mut self, id: UploadId) {
        self.changes.send_modify(|n| *n += 1);
        if let (Some(l), Some(t)) = (&self.listener, self.uploads.get(&id)) {
            l.on_event(&UploadEvent::StateChanged(t.info()));
        }
    }

    /// Sets the upload FAILED with `error`. If even that cannot be committed,
    /// the failure is still applied in memory (and reported) so nothing spins.
    fn fail(&mut self, id: UploadId, error: UploadError) {
        tracing::warn!(upload = id, code = %error.code, "upload failed: {}", error.message);
        self.stop_tasks_of(id);
        if let Err(e) = self.commit_state(id, UploadState::Failed, Some(&error)) {
            tracing::error!(upload = id, "cannot record the failure: {e}");
            if let Some(t) = self.uploads.get_mut(&id) {
                t.row.state = UploadState::Failed;
                t.row.error = Some(error);
            }
        }
        self.notify_state(id);
    }

    fn db_failed(&mut self, id: UploadId, e: crate::error::Error) {
        self.fail(id, e.into());
    }

    // ----- scheduling -----

    fn secrets_for(&self, id: UploadId) -> Vec<String> {
        let mut s: Vec<String> = self
            .config
            .as_ref()
            .map(|c| c.secret_values().map(str::to_string).collect())
            .unwrap_or_default();
        if let Some(t) = self.uploads.get(&id) {
            s.extend(t.secrets.iter().cloned());
        }
        s
    }

    fn spawn<F>(&mut self, upload: UploadId, kind: TaskKind, fut: F)
    where
        F: std::future::Future<Output = Outcome> + Send + 'static,
    {
        let ticket = self.next_ticket;
        self.next_ticket += 1;
        let handle = self.tasks.spawn(async move {
            TaskDone {
                ticket,
                outcome: fut.await,
            }
        });
        self.task_ids.insert(handle.id(), ticket);
        self.tickets.insert(
            ticket,
            TaskInfo {
                upload,
                kind,
                handle,
            },
        );
    }

    fn stop_tasks_of(&mut self, id: UploadId) {
        for info in self.tickets.values() {
            if info.upload == id {
                info.handle.abort();
            }
        }
        // Flags are cleared when the aborted tasks report back.
    }

    fn parts_in_flight(&self) -> usize {
        self.tickets
            .values()
            .filter(|t| matches!(t.kind, TaskKind::Part(_)))
            .count()
    }

    fn schedule(&mut self) {
        if !self.running || !self.network_allowed() {
            return;
        }
        let Some(config) = self.config.clone() else {
            return;
        };
        for step in self.plan_calls(&config) {
            match step {
                Call::Abort(id) => self.spawn_abort(id, &config),
                Call::Start(id) => self.spawn_start(id, &config),
                Call::Complete(id) => self.spawn_complete(id, &config),
                Call::Urls(id, parts) => self.spawn_urls(id, parts, &config),
            }
        }
        // Fill the free slots, oldest upload first. A file found changed
        // fails its upload and frees its slots for the next one: go again.
        while self.fill_slots(config.max_parts_in_flight as usize) {}
    }

    /// The backend calls due now. One pass over the uploads, no lookups:
    /// with thousands of queued files this runs after every event.
    fn plan_calls(&self, config: &Config) -> Vec<Call> {
        let now = Instant::now();
        let now_ms = now_ms();
        let limit = config.max_parts_in_flight as usize;
        // How far ahead of the parts in flight the next files are prepared.
        let window = 2 * limit;
        let mut ahead = 0usize;
        let mut starts = self
            .tickets
            .values()
            .filter(|t| t.kind == TaskKind::Start)
            .count();
        let mut calls = Vec::new();
        for (&id, t) in &self.uploads {
            let state = t.row.state;
            if state == UploadState::Cancelled
                && t.row.abort_state == AbortState::Pending
                && !t.busy.contains(&TaskKindTag::Abort)
                && t.due(now_ms)
            {
                calls.push(Call::Abort(id));
                continue;
            }
            if !state.is_active() {
                continue;
            }
            if state == UploadState::Pending {
                if ahead < window
                    && starts < MAX_STARTS_IN_FLIGHT
                    && !t.busy.contains(&TaskKindTag::Start)
                    && t.due(now_ms)
                {
                    calls.push(Call::Start(id));
                    starts += 1;
                }
                // Its parts are unknown yet: count it as cut at the smallest
                // part size, so many small files are prepared in parallel
                // while one big file fills the window alone.
                ahead += usize::try_from(t.row.size.div_ceil(MIN_PART))
                    .unwrap_or(usize::MAX)
                    .clamp(1, limit);
                continue;
            }
            if t.all_parts_done() {
                if !t.busy.contains(&TaskKindTag::Complete) && t.due(now_ms) {
                    calls.push(Call::Complete(id));
                }
                continue;
            }
            // Parts that still need a PUT, in order.
            let pending = t
                .parts
                .iter()
                .enumerate()
                .filter(|(_, p)| p.etag.is_none() && p.in_flight.is_none())
                .map(|(i, _)| i as u32 + 1);
            if ahead < window && !t.busy.contains(&TaskKindTag::Urls) && t.due(now_ms) {
                let want = (window - ahead).clamp(limit, MAX_URL_BATCH);
                let missing: Vec<u32> = pending
                    .clone()
                    .take(want)
                    .filter(|n| t.urls.usable(*n, now).is_none())
                    .collect();
                if !missing.is_empty() {
                    calls.push(Call::Urls(id, missing));
                }
            }
            ahead += pending.count();
        }
        calls
    }

    /// Starts part PUTs up to `limit` in flight. Returns true when an upload
    /// failed its file check on the way (its slots are free again).
    fn fill_slots(&mut self, limit: usize) -> bool {
        let now = Instant::now();
        let now_ms = now_ms();
        let mut in_flight = self.parts_in_flight();
        let mut batches: Vec<(UploadId, Vec<(u32, String)>)> = Vec::new();
        for (&id, t) in &self.uploads {
            if in_flight >= limit {
                break;
            }
            if !matches!(t.row.state, UploadState::Initialized | UploadState::Running) {
                continue;
            }
            let ready: Vec<(u32, String)> = t
                .parts
                .iter()
                .enumerate()
                .filter(|(_, p)| {
                    p.etag.is_none() && p.in_flight.is_none() && p.next_attempt_at <= now_ms
                })
                .filter_map(|(i, _)| {
                    let n = i as u32 + 1;
                    t.urls.usable(n, now).map(|u| (n, u.to_string()))
                })
                .take(limit - in_flight)
                .collect();
            if !ready.is_empty() {
                in_flight += ready.len();
                batches.push((id, ready));
            }
        }
        let mut freed = false;
        for (id, ready) in batches {
            // The file must still be the one that was added (never a mixed object).
            if let Err(e) = self.check_file(id) {
                self.fail(id, e);
                freed = true;
                continue;
            }
            if self.uploads[&id].row.state == UploadState::Initialized {
                if let Err(e) = self.commit_state(id, UploadState::Running, None) {
                    self.db_failed(id, e);
                    freed = true;
                    continue;
                }
                self.notify_state(id);
            }
            for (n, url) in ready {
                self.spawn_part(id, n, url);
            }
        }
        freed
    }

    fn check_file(&self, id: UploadId) -> std::result::Result<(), UploadError> {
        let row = &self.uploads[&id].row;
        let stamp = FileStamp::of(std::path::Path::new(&row.path)).map_err(UploadError::from)?;
        if stamp.size != row.size || stamp.mtime_ns != row.mtime_ns {
            return Err(UploadError::new(
                ErrorCode::FileChanged,
                format!(
                    "{} changed after it was added (size {} -> {}); add it again to upload the new content",
                    row.path, row.size, stamp.size
                ),
            ));
        }
        Ok(())
    }

    fn spawn_start(&mut self, id: UploadId, config: &Config) {
        let t = self.uploads.get_mut(&id).expect("scheduled upload exists");
        t.busy.insert(TaskKindTag::Start);
        let (name, hash, size, params) = (
            t.row.file_name.clone(),
            t.row.file_hash.clone(),
            t.row.size,
            t.row.user_params.clone(),
        );
        let http = self.http.clone();
        let config = config.clone();
        let secrets = self.secrets_for(id);
        self.spawn(id, TaskKind::Start, async move {
            let client = BackendClient {
                http: &http,
                config: &config,
                secrets,
            };
            Outcome::Start(client.start_upload(&name, &hash, size, &params).await)
        });
    }

    fn spawn_urls(&mut self, id: UploadId, parts: Vec<u32>, config: &Config) {
        let t = self.uploads.get_mut(&id).expect("scheduled upload exists");
        let (Some(key), Some(upload_id)) = (t.row.key.clone(), t.row.upload_id.clone()) else {
            return;
        };
        t.busy.insert(TaskKindTag::Urls);
        let http = self.http.clone();
        let config = config.clone();
        let secrets = self.secrets_for(id);
        self.spawn(id, TaskKind::Urls, async move {
            let client = BackendClient {
                http: &http,
                config: &config,
                secrets,
            };
            let fetched_at = Instant::now();
            let result = client.upload_urls(&key, &upload_id, &parts).await;
            Outcome::Urls { fetched_at, result }
        });
    }

    fn spawn_part(&mut self, id: UploadId, number: u32, url: String) {
        let t = self.uploads.get_mut(&id).expect("scheduled upload exists");
        let part_size = t.row.part_size.unwrap_or(0);
        let len = part_len(t.row.size, part_size, number);
        let offset = (u64::from(number) - 1) * part_size;
        let sent = Arc::new(AtomicU64::new(0));
        t.parts[number as usize - 1].in_flight = Some(sent.clone());
        let path = PathBuf::from(&t.row.path);
        let http = self.http.clone();
        let pool = self.chunks.clone();
        let stall_timeout = self
            .config
            .as_ref()
            .map(|c| c.retry.stall_timeout())
            .unwrap_or(crate::transfer::STALL_TIMEOUT);
        tracing::debug!(upload = id, part = number, len, url = %redact::url_for_log(&url), "part upload starts");
        self.spawn(id, TaskKind::Part(number), async move {
            let result = put_part(
                &http,
                PartJob {
                    url: &url,
                    path: &path,
                    offset,
                    len,
                    sent,
                    stall_timeout,
                    pool: &pool,
                },
            )
            .await;
            Outcome::Part { number, result }
        });
    }

    fn spawn_complete(&mut self, id: UploadId, config: &Config) {
        let etags = match self.store.etags(id) {
            Ok(e) => e,
            Err(e) => return self.db_failed(id, e),
        };
        // ETags come from the database, sorted by part number; every part once.
        let mut parts = Vec::with_capacity(etags.len());
        for (n, etag) in etags {
            match etag {
                Some(e) => parts.push((n, e)),
                None => {
                    return self.fail(
                        id,
                        UploadError::new(
                            ErrorCode::Internal,
                            format!("part {n} has no stored ETag at complete"),
                        ),
                    )
                }
            }
        }
        let t = self.uploads.get_mut(&id).expect("scheduled upload exists");
        let (Some(key), Some(upload_id)) = (t.row.key.clone(), t.row.upload_id.clone()) else {
            return;
        };
        t.busy.insert(TaskKindTag::Complete);
        let http = self.http.clone();
        let config = config.clone();
        let secrets = self.secrets_for(id);
        self.spawn(id, TaskKind::Complete, async move {
            let client = BackendClient {
                http: &http,
                config: &config,
                secrets,
            };
            Outcome::Complete(client.complete(&key, &upload_id, &parts).await)
        });
    }

    fn spawn_abort(&mut self, id: UploadId, config: &Config) {
        let t = self.uploads.get_mut(&id).expect("scheduled upload exists");
        let (Some(key), Some(upload_id), Some(base)) = (
            t.row.key.clone(),
            t.row.upload_id.clone(),
            config.abort_url.clone(),
        ) else {
            // Nothing can be aborted: record that so it is not retried.
            t.row.abort_state = AbortState::Done;
            if let Ok(tx) = self.store.transaction() {
                let _ = write::set_abort_state(&tx, id, AbortState::Done)
                    .and_then(|_| Ok(tx.commit()?));
            }
            return;
        };
        t.busy.insert(TaskKindTag::Abort);
        let http = self.http.clone();
        let config = config.clone();
        let secrets = self.secrets_for(id);
        self.spawn(id, TaskKind::Abort, async move {
            let client = BackendClient {
                http: &http,
                config: &config,
                secrets,
            };
            Outcome::Abort(client.abort(&base, &key, &upload_id).await)
        });
    }

    fn next_wake(&self) -> Instant {
        let now = Instant::now();
        let now_ms = now_ms();
        let mut wake = now + IDLE_WAKE;
        let max_delay = self
            .config
            .as_ref()
            .map(|c| Duration::from_millis(c.retry.max_delay_ms.saturating_mul(10)))
            .unwrap_or(IDLE_WAKE);
        let at = |ms: i64| -> Instant {
            // Persisted times are wall-clock; a clock moved back cannot park
            // an upload longer than the retry policy allows.
            let d = Duration::from_millis(u64::try_from(ms - now_ms).unwrap_or(0));
            now + d.min(max_delay)
        };
        for t in self.uploads.values() {
            let state = t.row.state;
            let waits_for_call = state.is_active()
                || (state == UploadState::Cancelled && t.row.abort_state == AbortState::Pending);
            if waits_for_call && t.row.next_attempt_at > now_ms {
                wake = wake.min(at(t.row.next_attempt_at));
            }
            if !state.is_active() {
                continue;
            }
            for p in &t.parts {
                if p.etag.is_none() && p.in_flight.is_none() && p.next_attempt_at > now_ms {
                    wake = wake.min(at(p.next_attempt_at));
                }
            }
            if let Some(e) = t.urls.next_expiry(now) {
                wake = wake.min(e);
            }
            if t.parts_in_flight() > 0 {
                wake = wake.min(now + PROGRESS_INTERVAL);
            }
        }
        wake
    }

    fn emit_due_progress(&mut self, force_all: bool) {
        let Some(listener) = self.listener.clone() else {
            return;
        };
        let now = Instant::now();
        for t in self.uploads.values_mut() {
            if !t.row.state.is_active() {
                continue;
            }
            let bytes = t.uploaded_bytes();
            let due = match t.last_progress {
                None => bytes > 0 || force_all,
                Some((at, last)) => last != bytes && now.duration_since(at) >= PROGRESS_INTERVAL,
            };
            if due {
                t.last_progress = Some((now, bytes));
                listener.on_event(&UploadEvent::Progress(t.progress()));
            }
        }
    }

    // ----- task results -----

    fn on_task_end(
        &mut self,
        res: std::result::Result<(tokio::task::Id, TaskDone), tokio::task::JoinError>,
    ) {
        let (ticket, outcome, panicked) = match res {
            Ok((task_id, done)) => {
                self.task_ids.remove(&task_id);
                (done.ticket, Some(done.outcome), false)
            }
            Err(e) => match self.task_ids.remove(&e.id()) {
                Some(ticket) => (ticket, None, e.is_panic()),
                None => return,
            },
        };
        let Some(info) = self.tickets.remove(&ticket) else {
            return;
        };
        let id = info.upload;
        let Some(t) = self.uploads.get_mut(&id) else {
            return;
        };
        match info.kind {
            TaskKind::Start => t.busy.remove(&TaskKindTag::Start),
            TaskKind::Urls => t.busy.remove(&TaskKindTag::Urls),
            TaskKind::Complete => t.busy.remove(&TaskKindTag::Complete),
            TaskKind::Abort => t.busy.remove(&TaskKindTag::Abort),
            TaskKind::Part(n) => {
                if let Some(p) = t.parts.get_mut(n as usize - 1) {
                    p.in_flight = None;
                }
                true
            }
        };
        let Some(outcome) = outcome else {
            if panicked {
                tracing::error!(upload = id, "an upload task panicked");
                self.fail(
                    id,
                    UploadError::new(
                        ErrorCode::Internal,
                        "an upload task panicked; resume to retry",
                    ),
                );
            }
            // Otherwise it was stopped by us (pause, cancel, checkpoint).
            return;
        };
        match outcome {
            Outcome::Start(r) => self.on_start(id, r),
            Outcome::Urls { fetched_at, result } => self.on_urls(id, fetched_at, result),
            Outcome::Part { number, result } => self.on_part(id, number, result),
            Outcome::Complete(r) => self.on_complete(id, r),
            Outcome::Abort(r) => self.on_abort(id, r),
        }
    }

    fn on_start(&mut self, id: UploadId, r: std::result::Result<StartAnswer, Failure>) {
        let state = self.uploads[&id].row.state;
        let answer = match r {
            Ok(a) => a,
            Err(f) => {
                if state.is_active() {
                    self.on_call_failure(id, f, ErrorCode::BackendUnavailable);
                }
                return;
            }
        };
        let size = self.uploads[&id].row.size;
        let total = part_count(size, answer.part_size) as u32;
        let abort_configured = self.config.as_ref().is_some_and(|c| c.abort_url.is_some());
        let result = (|| -> Result<()> {
            let tx = self.store.transaction()?;
            write::set_initialized(
                &tx,
                id,
                &answer.key,
                &answer.upload_id,
                answer.part_size,
                total,
            )?;
            match state {
                // Paused or failed meanwhile: keep that state, but remember the
                // multipart upload so nothing is orphaned.
                UploadState::Paused | UploadState::Failed => {
                    let t = &self.uploads[&id];
                    write::set_state(&tx, id, state, t.row.error.as_ref())?;
                }
                UploadState::Cancelled => {
                    write::set_state(&tx, id, state, None)?;
                    if abort_configured {
                        write::set_abort_state(&tx, id, AbortState::Pending)?;
                    }
                }
                _ => {}
            }
            tx.commit()?;
            Ok(())
        })();
        if let Err(e) = result {
            return self.db_failed(id, e);
        }
        let parts = match self.store.parts(id) {
            Ok(p) => p,
            Err(e) => return self.db_failed(id, e),
        };
        let t = self.uploads.get_mut(&id).expect("upload exists");
        t.row.key = Some(answer.key);
        t.row.upload_id = Some(answer.upload_id);
        t.row.part_size = Some(answer.part_size);
        t.row.parts_total = total;
        t.row.attempts = 0;
        t.row.next_attempt_at = 0;
        t.row.updated_at = now_ms();
        t.set_parts(parts);
        match state {
            UploadState::Pending => {
                t.row.state = UploadState::Initialized;
                t.row.error = None;
                self.notify_state(id);
            }
            UploadState::Cancelled if abort_configured => t.row.abort_state = AbortState::Pending,
            _ => {}
        }
    }

    fn on_urls(
        &mut self,
        id: UploadId,
        fetched_at: Instant,
        r: std::result::Result<BTreeMap<u32, String>, Failure>,
    ) {
        if !self.uploads[&id].row.state.is_active() {
            return;
        }
        match r {
            Ok(urls) => {
                let t = self.uploads.get_mut(&id).expect("upload exists");
                for (n, u) in urls {
                    t.urls.insert(n, u, fetched_at);
                }
                if t.row.attempts > 0 {
                    t.row.attempts = 0;
                    t.row.next_attempt_at = 0;
                    let tx = self.store.transaction();
                    if let Err(e) = tx.and_then(|tx| {
                        write::set_attempts(&tx, id, 0, 0)?;
                        Ok(tx.commit()?)
                    }) {
                        self.db_failed(id, e);
                    }
                }
            }
            Err(f) => self.on_call_failure(id, f, ErrorCode::BackendUnavailable),
        }
    }

    fn on_part(&mut self, id: UploadId, number: u32, r: std::result::Result<String, Failure>) {
        let state = self.uploads[&id].row.state;
        match r {
            Ok(etag) => {
                // A part that finished while the upload was paused still counts.
                if state == UploadState::Cancelled {
                    return;
                }
                if let Err(e) = self.check_file(id) {
                    if state.is_active() {
                        self.fail(id, e);
                    }
                    return;
                }
                let tx = self.store.transaction();
                if let Err(e) = tx.and_then(|tx| {
                    write::part_done(&tx, id, number, &etag)?;
                    Ok(tx.commit()?)
                }) {
                    return self.db_failed(id, e);
                }
                let t = self.uploads.get_mut(&id).expect("upload exists");
                let part_size = t.row.part_size.unwrap_or(0);
                let slot = &mut t.parts[number as usize - 1];
                if slot.etag.is_none() {
                    t.done_bytes += part_len(t.row.size, part_size, number);
                    t.parts_done += 1;
                }
                slot.etag = Some(etag);
                slot.attempts = 0;
                slot.next_attempt_at = 0;
                slot.refreshes = 0;
                t.urls.remove(number);
            }
            Err(f) => {
                if state.is_active() {
                    self.on_part_failure(id, number, f);
                }
            }
        }
    }

    fn on_complete(&mut self, id: UploadId, r: std::result::Result<(), Failure>) {
        if !self.uploads[&id].row.state.is_active() {
            return;
        }
        match r {
            Ok(()) => {
                if let Err(e) = self.commit_state(id, UploadState::Completed, None) {
                    return self.db_failed(id, e);
                }
                let t = self.uploads.get_mut(&id).expect("upload exists");
                t.recount();
                t.urls.clear();
                let progress = t.progress();
                if let Some(l) = &self.listener {
                    l.on_event(&UploadEvent::Progress(progress));
                }
                tracing::info!(upload = id, "upload completed");
                self.notify_state(id);
            }
            Err(f) => self.on_call_failure(id, f, ErrorCode::BackendUnavailable),
        }
    }

    fn on_abort(&mut self, id: UploadId, r: std::result::Result<(), Failure>) {
        let give_up = match r {
            Ok(()) => true,
            Err(Failure::Transient {
                detail,
                retry_after,
            }) => {
                let max = self.config.as_ref().map_or(1, |c| c.retry.max_attempts);
                let t = &self.uploads[&id];
                let attempts = t.row.attempts + 1;
                if attempts >= max {
                    tracing::warn!(upload = id, "abort given up: {detail}");
                    true
                } else {
                    self.record_call_retry(id, attempts, retry_after);
                    false
                }
            }
            Err(other) => {
                tracing::warn!(upload = id, "abort refused: {other:?}");
                true
            }
        };
        if give_up {
            let tx = self.store.transaction();
            if let Err(e) = tx.and_then(|tx| {
                write::set_abort_state(&tx, id, AbortState::Done)?;
                write::set_attempts(&tx, id, 0, 0)?;
                Ok(tx.commit()?)
            }) {
                tracing::error!(upload = id, "cannot record the abort: {e}");
            }
            if let Some(t) = self.uploads.get_mut(&id) {
                t.row.abort_state = AbortState::Done;
                t.row.attempts = 0;
                t.row.next_attempt_at = 0;
            }
        }
    }

    /// Records a failed backend call and when to try again (persisted).
    fn record_call_retry(&mut self, id: UploadId, attempts: u32, retry_after: Option<Duration>) {
        let policy = self
            .config
            .as_ref()
            .map(|c| c.retry.clone())
            .unwrap_or_default();
        let delay = policy.backoff(attempts, retry_after);
        let next = now_ms() + delay.as_millis() as i64;
        let tx = self.store.transaction();
        if let Err(e) = tx.and_then(|tx| {
            write::set_attempts(&tx, id, attempts, next)?;
            Ok(tx.commit()?)
        }) {
            return self.db_failed(id, e);
        }
        let t = self.uploads.get_mut(&id).expect("upload exists");
        t.row.attempts = attempts;
        t.row.next_attempt_at = next;
    }

    fn on_call_failure(&mut self, id: UploadId, f: Failure, unavailable: ErrorCode) {
        match f {
            Failure::Transient {
                detail,
                retry_after,
            } => self.retry_call(id, unavailable, detail, retry_after),
            Failure::Garbled { code, detail } => self.retry_call(id, code, detail, None),
            Failure::Auth { detail } => {
                let e = UploadError::new(
                    ErrorCode::AuthRequired,
                    format!("{detail}; set new headers with setConfig, then resume"),
                );
                if let Err(db) = self.pause(&Selector::Upload(id), Some(e)) {
                    self.db_failed(id, db);
                }
            }
            Failure::UrlRejected { detail } => {
                self.fail(id, UploadError::new(ErrorCode::BackendRejected, detail))
            }
            Failure::Fatal(e) => self.fail(id, e),
        }
    }

    /// Schedules another attempt of a backend call, or fails the upload with
    /// `give_up` once the attempts are used up.
    fn retry_call(
        &mut self,
        id: UploadId,
        give_up: ErrorCode,
        detail: String,
        retry_after: Option<Duration>,
    ) {
        let max = self.config.as_ref().map_or(1, |c| c.retry.max_attempts);
        let attempts = self.uploads[&id].row.attempts + 1;
        if attempts >= max {
            self.fail(
                id,
                UploadError::new(
                    give_up,
                    format!("{detail} (gave up after {attempts} attempts)"),
                ),
            );
        } else {
            tracing::info!(
                upload = id,
                attempts,
                "backend call failed, will retry: {detail}"
            );
            self.record_call_retry(id, attempts, retry_after);
        }
    }

    fn on_part_failure(&mut self, id: UploadId, number: u32, f: Failure) {
        let policy = self
            .config
            .as_ref()
            .map(|c| c.retry.clone())
            .unwrap_or_default();
        let (give_up, detail, retry_after) = match f {
            Failure::Transient {
                detail,
                retry_after,
            } => (ErrorCode::StorageUnavailable, detail, retry_after),
            Failure::Garbled { code, detail } => (code, detail, None),
            other => return self.on_final_part_failure(id, number, other, &policy),
        };
        let attempts = self.uploads[&id].parts[number as usize - 1].attempts + 1;
        if attempts >= policy.max_attempts {
            return self.fail(
                id,
                UploadError::new(
                    give_up,
                    format!("part {number}: {detail} (gave up after {attempts} attempts)"),
                ),
            );
        }
        tracing::info!(
            upload = id,
            part = number,
            attempts,
            "part failed, will retry: {detail}"
        );
        let next = now_ms() + policy.backoff(attempts, retry_after).as_millis() as i64;
        let tx = self.store.transaction();
        if let Err(e) = tx.and_then(|tx| {
            write::part_attempts(&tx, id, number, attempts, next)?;
            Ok(tx.commit()?)
        }) {
            return self.db_failed(id, e);
        }
        let slot =
            &mut self.uploads.get_mut(&id).expect("upload exists").parts[number as usize - 1];
        slot.attempts = attempts;
        slot.next_attempt_at = next;
    }

    /// Part failures that are not retried as such: a refused URL is
    /// replaced (bounded), anything else fails the upload.
    fn on_final_part_failure(
        &mut self,
        id: UploadId,
        number: u32,
        f: Failure,
        policy: &crate::config::RetryPolicy,
    ) {
        match f {
            Failure::UrlRejected { detail } => {
                let t = self.uploads.get_mut(&id).expect("upload exists");
                t.urls.remove(number);
                let slot = &mut t.parts[number as usize - 1];
                slot.refreshes += 1;
                if slot.refreshes > policy.max_url_refreshes {
                    let n = slot.refreshes;
                    return self.fail(
                        id,
                        UploadError::new(
                            ErrorCode::StorageRejected,
                            format!(
                                "part {number}: {detail} (still refused after {} new URLs)",
                                n - 1
                            ),
                        ),
                    );
                }
                tracing::info!(
                    upload = id,
                    part = number,
                    "part URL refused, fetching a new one: {detail}"
                );
            }
            Failure::Auth { detail }
            | Failure::Transient { detail, .. }
            | Failure::Garbled { detail, .. } => {
                self.fail(id, UploadError::new(ErrorCode::StorageRejected, detail))
            }
            Failure::Fatal(e) => self.fail(id, e),
        }
    }
}
