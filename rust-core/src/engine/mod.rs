//! The engine: one task that owns the database connection and every decision
//! (which call goes next, retries, URL refresh, state changes). Network work
//! runs in worker tasks that report back here; nothing else writes state.

mod boot_clock;
mod commands;
mod durable;
mod files;
pub(crate) mod handoff;
mod lifecycle;
mod outcomes;
pub(crate) mod phone;
mod protected;
mod schedule;
mod tracked;
mod urls;
mod waits;

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
use crate::source::OpenerSlot;
use crate::store::{now_ms, write, AbortState, NewRow, PartRow, Store, UploadRow};
use crate::transfer::{put_part, PartFile, PartJob};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::{AbortHandle, JoinSet};
pub(crate) use tracked::part_len;
use tracked::{load_pending_after, load_tracked, load_unfinished_head, TaskKindTag, Tracked};
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

/// The clocks as a scheduling pass read them: what is due is judged
/// against one reading for the whole pass, and the wake after it counts
/// every wait that was still running then.
#[derive(Clone, Copy, Debug)]
struct PassClock {
    /// Wall clock, ms (stored retry times are wall-clock).
    ms: i64,
    /// The suspend-aware clock URL expiry runs on.
    boot: boot_clock::BootTime,
}

impl PassClock {
    fn now() -> PassClock {
        PassClock {
            ms: now_ms(),
            boot: boot_clock::BootTime::now(),
        }
    }
}

/// A backend call the scheduler decided to make.
enum Call {
    Abort(UploadId),
    Start(UploadId),
    Complete(UploadId),
    Urls(UploadId, Vec<u32>),
    /// Not a call: a complete is due but waits for its ETags to be synced.
    SyncFirst,
}

/// Uploads not begun that the first pass after opening sees; the rest of a
/// long queue is loaded once that pass has sent its calls (more than the
/// pass can start: it starts at most MAX_STARTS_IN_FLIGHT).
const FIRST_PASS_PENDING: usize = 64;

/// Most commands and finished tasks handled before the scheduler runs again:
/// under load one pass over the queue serves many events, yet a long burst
/// cannot hold back new work for long.
const EVENTS_PER_PASS: usize = 64;

/// A file checked and hashed by the caller's side, ready to be queued.
pub(crate) struct HashedFile {
    /// An absolute path, or a URI for the file opener (`is_uri`), or a
    /// path under a file root as `<root>/<path under it>` (`in_root`).
    pub location: String,
    pub is_uri: bool,
    pub in_root: bool,
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
    /// Every unfinished upload, in queue order (the engine's working set:
    /// no database read).
    ListUnfinished(Reply<Vec<UploadInfo>>),
    Summary(Option<String>, Reply<Summary>),
    /// Deletes finished uploads; answers how many.
    Forget(Selector, Reply<u64>),
    SetListener(Option<Arc<dyn UploadListener>>),
    SetRunning(bool, Reply<()>),
    Shutdown(oneshot::Sender<()>),
    /// The platform's view of the network; held work continues when allowed.
    SetNetwork(NetworkState),
    Status(Reply<EngineStatus>),
    /// Runs on the engine's task with every upload and the overall summary,
    /// between two events: a subscriber starts from a consistent snapshot.
    Inspect(Inspector),
    /// A file opener was registered or removed: uploads of URIs that
    /// waited for one can go on.
    OpenerChanged,
    /// The platform registered its file roots: uploads under a root that
    /// waited for it can go on.
    SetFileRoots(crate::roots::FileRoots),
    /// The opener answered for `from` with a replacement URI to keep.
    UriReplaced {
        upload: UploadId,
        from: String,
        to: String,
    },
    /// Part hand-off to the platform's transport.
    Handoff(handoff::HandoffCommand),
    /// The phone lifecycle: app state, runs, OS progress.
    Phone(phone::PhoneCommand),
    /// Whether files protected while the device is locked can be read.
    SetProtectedData(bool),
}

pub(crate) type Inspector = Box<dyn FnOnce(Vec<UploadInfo>, Summary) + Send>;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TaskKind {
    Start,
    Urls,
    Part(u32),
    /// Staging a part for hand-off.
    Stage(u32),
    Complete,
    Abort,
}

enum Outcome {
    Start(std::result::Result<StartAnswer, Failure>),
    Urls {
        fetched_at: boot_clock::BootTime,
        result: std::result::Result<BTreeMap<u32, String>, Failure>,
    },
    Part {
        number: u32,
        result: std::result::Result<String, Failure>,
    },
    Complete(std::result::Result<(), Failure>),
    Abort(std::result::Result<(), Failure>),
    /// A part staged for hand-off as task `task_id` (its file deletes
    /// itself unless the engine keeps it).
    Staged {
        number: u32,
        task_id: String,
        len: u64,
        result: std::result::Result<crate::staging::StagedFile, crate::staging::StageError>,
    },
}

struct TaskDone {
    ticket: u64,
    outcome: Outcome,
}

struct TaskInfo {
    upload: UploadId,
    kind: TaskKind,
    handle: AbortHandle,
    /// The multipart upload the task works on, when it started.
    multipart: Option<String>,
    /// The protected-data fact's count when it started (`protected.rs`).
    protected_stamp: u64,
}

/// The queue's rest being read; never ready when nothing is read.
async fn wait_loading(
    loading: &mut Option<tokio::task::JoinHandle<Result<BTreeMap<UploadId, Tracked>>>>,
) -> std::result::Result<Result<BTreeMap<UploadId, Tracked>>, tokio::task::JoinError> {
    match loading {
        Some(l) => l.await,
        None => std::future::pending().await,
    }
}

/// The running sync's end; never ready when none runs.
async fn wait_sync(
    syncing: &mut Option<durable::SyncInFlight>,
) -> Option<std::result::Result<(crate::store::PendingSync, Result<()>), tokio::task::JoinError>> {
    match syncing {
        Some(s) => Some((&mut s.done).await),
        None => std::future::pending().await,
    }
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
    /// The wall clock as last seen, to notice it being set back.
    clock: waits::ClockWatch,
    /// The queue's lock: released when the engine ends, however it ends.
    queue_lock: Option<crate::QueueLock>,
    /// Opens the URIs of uploads added as URIs; until one is registered,
    /// their parts wait (they do not fail).
    opener: OpenerSlot,
    /// Calls into the opener in flight at once, at most (`MAX_OPENER_CALLS`).
    opener_calls: Arc<tokio::sync::Semaphore>,
    /// The engine's own command queue, for what its tasks learn on the way
    /// (a replaced URI); weak, so the engine still ends with its handles.
    own_commands: Option<mpsc::WeakUnboundedSender<Command>>,
    handoff: handoff::Handoff,
    /// The app's state, runs and mode, as the platform reports them.
    phone: phone::Phone,
    /// Whether files protected while the device is locked can be read.
    protected: protected::Protected,
    /// When finished uploads past their retention are removed next.
    next_sweep: Instant,
    /// The clocks at open: retention sweeps trust the wall clock only as
    /// far as the elapsed time explains it.
    opened: lifecycle::OpenedAt,
    /// The clocks as the last scheduling pass read them.
    pass: PassClock,
    /// Answers and events that wait for this pass's commits to be synced.
    after_sync: Vec<durable::AfterSync>,
    /// An upload's end (COMPLETED, FAILED, CANCELLED) waits in `after_sync`.
    ends_after_sync: bool,
    /// Uploads with an event waiting in `after_sync`: their later events
    /// wait behind it (a resume told before the FAILED it undid would
    /// leave a listener with FAILED).
    held_events: std::collections::HashSet<UploadId>,
    /// A complete waits for a sync nobody else asked for.
    want_sync: bool,
    /// The sync running on a blocking thread, if any.
    syncing: Option<durable::SyncInFlight>,
    /// From opening until the rest of a long queue is loaded: uploads not
    /// begun after this id are not loaded yet.
    pending_after: Option<UploadId>,
    /// That rest, read on a blocking thread while the first uploads start;
    /// commands wait for it (they see the whole queue), task ends do not.
    loading: Option<tokio::task::JoinHandle<Result<BTreeMap<UploadId, Tracked>>>>,
    /// Turns of the loop so far (shown in the status: a loop that spins
    /// shows up there, whatever the machine's speed).
    passes: u64,
}

impl Engine {
    /// Loads the queue. Parts that were in flight when the process stopped have
    /// no ETag, so they are simply pending again.
    pub(crate) fn load(
        store: Store,
        http: reqwest::Client,
        changes: watch::Sender<u64>,
        opener: OpenerSlot,
    ) -> Result<Engine> {
        let config = store.load_config()?;
        let http = match &config {
            Some(c) if !c.extra_root_certificates_pem.is_empty() => {
                // Validated when stored; should that ever fail, the queue
                // still opens and setConfig can fix it.
                crate::tls::http_client(&c.extra_root_certificates_pem).unwrap_or_else(|e| {
                    tracing::warn!(error = %UploadError::from(e), "stored extra roots unusable");
                    http
                })
            }
            _ => http,
        };
        let mut store = store;
        // At open nothing tells a clock set ahead from time that passed
        // while the app was not running; from here on the elapsed time does.
        let opened = lifecycle::OpenedAt::now();
        lifecycle::expire_finished(&mut store, config.as_ref(), opened.wall_ms)?;
        let (uploads, pending_after) = load_unfinished_head(&store, FIRST_PASS_PENDING)?;
        let mut engine = Engine {
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
            clock: waits::ClockWatch::now(),
            queue_lock: None,
            opener,
            opener_calls: Arc::new(tokio::sync::Semaphore::new(crate::MAX_OPENER_CALLS)),
            own_commands: None,
            handoff: handoff::Handoff::new(),
            phone: phone::Phone::new(),
            protected: protected::Protected::default(),
            next_sweep: Instant::now() + lifecycle::SWEEP_INTERVAL,
            opened,
            pass: PassClock::now(),
            after_sync: Vec::new(),
            ends_after_sync: false,
            held_events: std::collections::HashSet::new(),
            want_sync: false,
            syncing: None,
            pending_after,
            loading: None,
            passes: 0,
        };
        engine.bound_waits_if_needed(true);
        Ok(engine)
    }

    /// Starts reading the uploads not begun that opening left out, once the
    /// first pass has started the first ones: on a second connection and a
    /// blocking thread, so a queue of 10,000 does not hold back the first
    /// part. Nothing the engine does meanwhile writes those rows (the first
    /// passes only touch the uploads loaded; commands wait).
    fn load_rest_of_queue(&mut self) {
        let Some(after) = self.pending_after else {
            return;
        };
        if self.loading.is_some() {
            return;
        }
        match self.store.reader() {
            Some(Ok(reader)) => {
                self.loading = Some(tokio::task::spawn_blocking(move || {
                    load_pending_after(&reader, after)
                }));
            }
            // In memory (tests), or no second connection: read it here.
            _ => {
                let rest = load_pending_after(&self.store, after);
                self.on_rest_loaded(Ok(rest));
            }
        }
    }

    fn on_rest_loaded(
        &mut self,
        loaded: std::result::Result<Result<BTreeMap<UploadId, Tracked>>, tokio::task::JoinError>,
    ) {
        self.loading = None;
        let Some(after) = self.pending_after.take() else {
            return;
        };
        let rest = match loaded {
            Ok(Ok(rest)) => Ok(rest),
            // The second connection failed: the engine's own then.
            Ok(Err(e)) => {
                tracing::warn!("reading the queue on a second connection failed: {e}");
                load_pending_after(&self.store, after)
            }
            Err(e) => {
                tracing::warn!("reading the queue stopped: {e}");
                load_pending_after(&self.store, after)
            }
        };
        match rest {
            Ok(rest) => {
                self.uploads.extend(rest);
                self.bound_waits_if_needed(true);
            }
            // Readable a moment ago; the uploads stay in the database and
            // are loaded on the next open.
            Err(e) => tracing::error!("cannot load the rest of the queue: {e}"),
        }
    }

    pub(crate) fn hold_lock(&mut self, lock: crate::QueueLock) {
        self.queue_lock = Some(lock);
    }

    pub(crate) fn set_running(&mut self, running: bool) {
        self.running = running;
    }

    pub(crate) async fn run(self, commands: mpsc::UnboundedReceiver<Command>) {
        // Declared first, dropped last: however the task ends (even
        // aborted), the engine and its queue lock are gone before the
        // command channel closes, which is what `is_running` looks at.
        let mut commands = commands;
        let running = self.serve(&mut commands);
        running.await;
    }

    async fn serve(mut self, commands: &mut mpsc::UnboundedReceiver<Command>) {
        loop {
            self.passes += 1;
            self.sweep_if_due();
            self.schedule();
            self.load_rest_of_queue();
            self.emit_due_progress(false);
            // One sync for the whole pass (or the next one, if a sync runs
            // now), before anyone hears of it.
            if self.start_sync_if_waiting() {
                // Nothing was left to sync: a complete that waited can go.
                continue;
            }
            let wake = self.next_wake();
            tokio::select! {
                loaded = wait_loading(&mut self.loading) => self.on_rest_loaded(loaded),
                cmd = commands.recv(), if self.loading.is_none() => match cmd {
                    Some(Command::Shutdown(done)) => return self.shut_down(done),
                    Some(cmd) => self.handle(cmd),
                    None => {
                        self.stop_all_tasks();
                        self.flush_durable();
                        return;
                    }
                },
                Some(done) = wait_sync(&mut self.syncing) => self.on_sync_done(done),
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
                if self.loading.is_some() {
                    break;
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
        self.flush_durable();
        drop(self);
        let _ = done.send(());
    }

    fn stop_all_tasks(&mut self) {
        // startUpload calls are left to finish (their answer may name a
        // multipart upload the store already made); everything else stops.
        let stopped: Vec<u64> = self
            .tickets
            .iter()
            .filter(|(_, info)| info.kind != TaskKind::Start)
            .map(|(&ticket, _)| ticket)
            .collect();
        for ticket in stopped {
            if let Some(info) = self.tickets.remove(&ticket) {
                info.handle.abort();
                self.task_ids.remove(&info.handle.id());
            }
            self.end_stage_job(ticket);
        }
        for t in self.uploads.values_mut() {
            t.busy.retain(|k| *k == TaskKindTag::Start);
            for p in &mut t.parts {
                p.in_flight = None;
                p.staging = false;
            }
        }
        // Finished uploads that waited for their tasks to report leave now,
        // but not one whose startUpload is still out: a cancelled upload's
        // late answer names a multipart upload that must be aborted.
        self.uploads
            .retain(|_, t| !t.finished() || !t.busy.is_empty());
    }
}
