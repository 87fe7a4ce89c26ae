//! [`Uploader`]: the handle to one engine over one queue database, and the
//! lock that keeps a queue to one engine.

use crate::engine::handoff::HandoffCommand;
use crate::engine::phone::PhoneCommand;
use crate::engine::{Command, Engine, HashedFile};
use crate::{hash, source, staging, store, tls};
use crate::{
    Config, EngineStatus, ErrorCode, FileOpener, FileSource, HandoffSettings, IdleReason,
    NetworkState, NewUpload, PartTransport, Selector, Summary, TaskOutcome, UploadError,
    UploadInfo, UploadListener,
};
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot, watch};

/// User params that would collide with the contract's own fields.
const RESERVED_PARAMS: [&str; 3] = ["fileName", "fileHash", "fileSize"];

/// How to open an [`Uploader`].
#[derive(Clone, Debug)]
pub struct UploaderOptions {
    /// Path of the queue database (created if missing).
    pub db_path: PathBuf,
    /// Start working on the queue right away (default). Otherwise call
    /// [`Uploader::start`].
    pub start: bool,
    /// Worker threads of the engine's runtime.
    pub worker_threads: usize,
    /// Caps the queue database at this many pages (4 KiB each); writes
    /// beyond fail like a full disk. `None` (default): no cap.
    pub max_db_pages: Option<u32>,
}

impl UploaderOptions {
    pub fn new(db_path: impl Into<PathBuf>) -> Self {
        UploaderOptions {
            db_path: db_path.into(),
            start: true,
            worker_threads: 2,
            max_db_pages: None,
        }
    }
}

/// Handle to a running engine. Dropping it stops the engine; nothing that was
/// committed is lost, and parts in flight are sent again next time.
pub struct Uploader {
    pub(crate) runtime: Option<tokio::runtime::Runtime>,
    /// Held while the engine runs: one engine per queue database.
    _lock: QueueLock,
    pub(crate) commands: mpsc::UnboundedSender<Command>,
    pub(crate) changes: watch::Receiver<u64>,
    /// The engine's task, to tell whether it still runs.
    engine_task: tokio::task::AbortHandle,
    opener: source::OpenerSlot,
}

/// The queue's lock file, held by the handle and by the engine's task
/// together: whichever ends first releases it, so a queue whose engine
/// stopped can be opened again while old handles are still around (a call
/// in flight keeps one).
pub(crate) struct QueueLock(Arc<std::sync::Mutex<Option<std::fs::File>>>);

impl QueueLock {
    fn new(file: std::fs::File) -> QueueLock {
        QueueLock(Arc::new(std::sync::Mutex::new(Some(file))))
    }

    fn share(&self) -> QueueLock {
        QueueLock(self.0.clone())
    }
}

impl Drop for QueueLock {
    fn drop(&mut self) {
        // Closing the file releases the lock.
        self.0.lock().unwrap_or_else(|e| e.into_inner()).take();
    }
}

/// Files hashed at once, at most, by all uploaders of the process: each
/// hash reads a whole file, and more in parallel only thrash the storage
/// and the caches of a phone's few cores.
pub const MAX_FILES_HASHING: usize = 2;

static HASHING: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(MAX_FILES_HASHING);

/// Calls into the [`FileOpener`] that one uploader's engine has in flight at
/// once, at most (part uploads and staging; the hashing of adds is held to
/// [`MAX_FILES_HASHING`]). Each call runs on a blocking thread of the
/// engine's runtime, the pool that also syncs the queue database: an opener
/// that never answers holds at most this many of them, and attempts that
/// find no call free wait (and time out) without taking a thread.
pub const MAX_OPENER_CALLS: usize = 4;

/// Takes the lock file beside the database, so two engines never work on
/// the same queue (they would send the same parts).
pub(crate) fn lock_queue(db_path: &std::path::Path) -> Result<std::fs::File, UploadError> {
    let mut lock_path = db_path.as_os_str().to_owned();
    lock_path.push(".lock");
    let lock_path = PathBuf::from(lock_path);
    if let Some(parent) = lock_path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| {
            UploadError::new(
                ErrorCode::Database,
                format!("cannot create {}: {e}", parent.display()),
            )
        })?;
    }
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| {
            UploadError::new(
                ErrorCode::Database,
                format!("cannot open {}: {e}", lock_path.display()),
            )
        })?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(UploadError::new(
            ErrorCode::Database,
            format!(
                "the queue {} is in use by another uploader (process)",
                db_path.display()
            ),
        )),
        Err(std::fs::TryLockError::Error(e)) => Err(UploadError::new(
            ErrorCode::Database,
            format!("cannot lock {}: {e}", lock_path.display()),
        )),
    }
}

pub(crate) fn shutdown_error() -> UploadError {
    UploadError::new(ErrorCode::Shutdown, "the uploader has been shut down")
}

impl Uploader {
    /// Opens the queue database and starts the engine on its own runtime.
    /// Blocking (opens the database); call it once per process and database.
    pub fn open(options: UploaderOptions) -> Result<Uploader, UploadError> {
        let lock = QueueLock::new(lock_queue(&options.db_path)?);
        let store = store::Store::open(&options.db_path).map_err(UploadError::from)?;
        if let Some(pages) = options.max_db_pages {
            store.limit_pages(pages).map_err(UploadError::from)?;
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(options.worker_threads.max(1))
            .thread_name("s3bgu-engine")
            .enable_all()
            .build()
            .map_err(|e| {
                UploadError::new(
                    ErrorCode::Internal,
                    format!("cannot start the engine runtime: {e}"),
                )
            })?;
        // Extra roots of a stored configuration are added by `Engine::load`.
        let http = tls::http_client(&[]).map_err(UploadError::from)?;
        let (changes_tx, changes) = watch::channel(0u64);
        let opener = source::OpenerSlot::default();
        let mut engine =
            Engine::load(store, http, changes_tx, opener.clone()).map_err(UploadError::from)?;
        engine
            .open_handoff(staging::dir_for(&options.db_path))
            .map_err(UploadError::from)?;
        engine.set_running(options.start);
        engine.hold_lock(lock.share());
        let (commands, rx) = mpsc::unbounded_channel();
        engine.hold_commands(commands.downgrade());
        let engine_task = runtime.spawn(async move {
            use futures_util::FutureExt;
            // A bug must not take the host app down: the engine stops and
            // every later call answers `shutdown`.
            if std::panic::AssertUnwindSafe(engine.run(rx))
                .catch_unwind()
                .await
                .is_err()
            {
                tracing::error!("the upload engine stopped after an internal error");
            }
        });
        Ok(Uploader {
            runtime: Some(runtime),
            _lock: lock,
            commands,
            changes,
            engine_task: engine_task.abort_handle(),
            opener,
        })
    }

    pub(crate) async fn call<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T, UploadError>>) -> Command,
    ) -> Result<T, UploadError> {
        let (tx, rx) = oneshot::channel();
        self.commands.send(make(tx)).map_err(|_| shutdown_error())?;
        rx.await.map_err(|_| shutdown_error())?
    }

    /// Validates and stores the configuration (persisted with the queue).
    pub async fn set_config(&self, config: Config) -> Result<(), UploadError> {
        self.call(|r| Command::SetConfig(config, r)).await
    }

    /// The stored configuration, if any.
    pub async fn config(&self) -> Result<Option<Config>, UploadError> {
        self.call(Command::GetConfig).await
    }

    /// Hashes the file (XXH3-128, on a blocking thread) and queues it. Adding
    /// the same content to the same transfer again returns the existing
    /// upload, unless that one was cancelled. A FAILED one is pointed at the
    /// new path and stamp and resumed (its confirmed parts are kept).
    pub async fn add_file(&self, new: NewUpload) -> Result<UploadInfo, UploadError> {
        let _adding = self.adding();
        let file = self.prepare(new).await?;
        self.call(|r| Command::Add(file, r)).await
    }

    /// [`Uploader::add_file`] for many files, answered in the same order.
    /// Files are hashed [`MAX_FILES_HASHING`] at a time and queued in the
    /// given order as each is ready, without waiting for the previous one's
    /// answer: the adds of a photo library share the queue's syncs. A file
    /// that cannot be added gets its error; the others are queued.
    pub async fn add_files(&self, files: Vec<NewUpload>) -> Vec<Result<UploadInfo, UploadError>> {
        use futures_util::StreamExt;
        let _adding = self.adding();
        let mut ready = futures_util::stream::iter(files)
            .map(|new| self.prepare(new))
            .buffered(MAX_FILES_HASHING);
        let mut answers = Vec::new();
        while let Some(file) = ready.next().await {
            answers.push(file.and_then(|file| {
                let (tx, rx) = oneshot::channel();
                self.commands
                    .send(Command::Add(file, tx))
                    .map_err(|_| shutdown_error())?;
                Ok(rx)
            }));
        }
        let mut added = Vec::with_capacity(answers.len());
        for answer in answers {
            added.push(match answer {
                Ok(rx) => rx.await.unwrap_or_else(|_| Err(shutdown_error())),
                Err(e) => Err(e),
            });
        }
        added
    }

    /// Tells the engine that files are being added until the guard drops
    /// (after the adds were queued): a background run waits for them.
    fn adding(&self) -> AddingGuard<'_> {
        let _ = self
            .commands
            .send(Command::Phone(PhoneCommand::Adding(true)));
        AddingGuard { uploader: self }
    }

    /// Checks a new upload and hashes its file: what the engine queues.
    async fn prepare(&self, new: NewUpload) -> Result<HashedFile, UploadError> {
        if new.transfer_id.trim().is_empty() {
            return Err(UploadError::new(
                ErrorCode::InvalidArgument,
                "transferId must not be empty",
            ));
        }
        if let Some(k) = RESERVED_PARAMS
            .iter()
            .find(|k| new.user_params.contains_key(**k))
        {
            return Err(UploadError::new(
                ErrorCode::InvalidArgument,
                format!("user param \"{k}\" is reserved: fileName, fileHash and fileSize are set by the uploader"),
            ));
        }
        let given = match new.path.to_str().map(FileSource::parse) {
            Some(Ok(FileSource::Uri(uri))) => return self.prepare_uri(uri, new).await,
            Some(Ok(FileSource::Path(p))) => p,
            Some(Err(e)) => return Err(e),
            // Not UTF-8: cannot be a URI.
            None => new.path.clone(),
        };
        let path = std::path::absolute(&given).map_err(|e| {
            UploadError::new(
                ErrorCode::FileNotFound,
                format!("{} is not a usable path: {e}", new.path.display()),
            )
        })?;
        let file_name = match new.file_name.clone() {
            Some(n) if !n.is_empty() => n,
            _ => path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .ok_or_else(|| {
                    UploadError::new(
                        ErrorCode::InvalidArgument,
                        format!("{} has no file name", path.display()),
                    )
                })?,
        };
        let runtime = self.runtime.as_ref().ok_or_else(shutdown_error)?;
        let hash_path = path.clone();
        let _hashing = HASHING.acquire().await.map_err(|_| shutdown_error())?;
        let (file_hash, stamp) = runtime
            .spawn_blocking(move || {
                #[cfg(test)]
                let _gauge = tests::HashGauge::enter();
                hash::hash_file(&hash_path)
            })
            .await
            .map_err(|e| UploadError::new(ErrorCode::Internal, format!("hashing stopped: {e}")))?
            .map_err(UploadError::from)?;
        Ok(HashedFile {
            location: path.to_string_lossy().into_owned(),
            is_uri: false,
            in_root: false,
            transfer_id: new.transfer_id,
            file_name,
            file_hash,
            stamp,
            user_params: new.user_params,
        })
    }

    /// `prepare` for a URI: hashed through the registered opener; the URI
    /// is what is stored (and what `UploadInfo::path` shows).
    async fn prepare_uri(&self, uri: String, new: NewUpload) -> Result<HashedFile, UploadError> {
        let opener = self
            .opener
            .get()
            .ok_or_else(|| UploadError::from(source::no_opener(&uri)))?;
        let file_name = match new.file_name.clone() {
            Some(n) if !n.is_empty() => n,
            _ => source::uri_file_name(&uri).ok_or_else(|| {
                UploadError::new(
                    ErrorCode::InvalidArgument,
                    format!(
                        "{} has no file name: pass fileName",
                        source::uri_for_message(&uri)
                    ),
                )
            })?,
        };
        let runtime = self.runtime.as_ref().ok_or_else(shutdown_error)?;
        let hash_uri = uri.clone();
        // Read whole through the opener: held to the same two at a time.
        let _hashing = HASHING.acquire().await.map_err(|_| shutdown_error())?;
        let (file_hash, stamp, replacement) = runtime
            .spawn_blocking(move || {
                let opened = source::open_uri(opener.as_ref(), &hash_uri)?;
                let (hash, stamp) =
                    hash::hash_descriptor(&opened.file, &source::uri_for_message(&hash_uri))?;
                Ok::<_, crate::error::Error>((hash, stamp, opened.replacement))
            })
            .await
            .map_err(|e| UploadError::new(ErrorCode::Internal, format!("hashing stopped: {e}")))?
            .map_err(UploadError::from)?;
        Ok(HashedFile {
            // The opener's replacement, if it gave one, is what is kept.
            location: replacement.unwrap_or(uri),
            is_uri: true,
            in_root: false,
            transfer_id: new.transfer_id,
            file_name,
            file_hash,
            stamp,
            user_params: new.user_params,
        })
    }

    /// Registers (or with `None` removes) the opener for files added as
    /// URIs. Uploads of URIs wait for one, so registering it just after
    /// [`Uploader::open`] loses nothing. Non-blocking.
    pub fn set_file_opener(&self, opener: Option<Arc<dyn FileOpener>>) {
        self.opener.set(opener);
        let _ = self.commands.send(Command::OpenerChanged);
    }

    /// Pauses the selected unfinished uploads. Parts in flight are stopped and
    /// sent again on resume. Returns the uploads that changed.
    pub async fn pause(&self, selector: Selector) -> Result<Vec<UploadInfo>, UploadError> {
        self.call(|r| Command::Pause(selector, r)).await
    }

    /// Resumes the selected PAUSED or FAILED uploads (a fresh round of retries).
    pub async fn resume(&self, selector: Selector) -> Result<Vec<UploadInfo>, UploadError> {
        self.call(|r| Command::Resume(selector, r)).await
    }

    /// Cancels the selected unfinished uploads; calls `abortApi` when configured.
    pub async fn cancel(&self, selector: Selector) -> Result<Vec<UploadInfo>, UploadError> {
        self.call(|r| Command::Cancel(selector, r)).await
    }

    /// Deletes the selected finished uploads from the queue: COMPLETED ones,
    /// and CANCELLED ones whose abort call is done (or not needed). FAILED
    /// and PAUSED uploads are not finished (they can be resumed): cancel
    /// them first. Naming one upload that is not finished is an
    /// `invalid_argument` error; a transfer or all skips unfinished ones.
    /// Returns how many were deleted. Adding a forgotten file again uploads
    /// it again.
    pub async fn forget(&self, selector: Selector) -> Result<u64, UploadError> {
        self.call(|r| Command::Forget(selector, r)).await
    }

    /// Snapshots of the selected uploads, in queue order.
    pub async fn uploads(&self, selector: Selector) -> Result<Vec<UploadInfo>, UploadError> {
        self.call(|r| Command::List(selector, r)).await
    }

    /// Every upload not finished (not COMPLETED, not CANCELLED), in queue
    /// order, without reading the finished ones (a queue with a long
    /// history answers as fast as an empty one).
    pub async fn unfinished(&self) -> Result<Vec<UploadInfo>, UploadError> {
        self.call(Command::ListUnfinished).await
    }

    /// Aggregate of one transfer, or of everything with `None`.
    pub async fn summary(&self, transfer_id: Option<String>) -> Result<Summary, UploadError> {
        self.call(|r| Command::Summary(transfer_id, r)).await
    }

    /// Sets (or removes) the event listener.
    pub fn set_listener(&self, listener: Option<Arc<dyn UploadListener>>) {
        let _ = self.commands.send(Command::SetListener(listener));
    }

    /// Lets the engine work on the queue (after `start: false` or [`Uploader::stop`]).
    pub async fn start(&self) -> Result<(), UploadError> {
        self.call(|r| Command::SetRunning(true, r)).await
    }

    /// Checkpoint: stops all network work without changing any upload's
    /// state (for a background job that must stop now). Parts in flight are
    /// sent again after [`Uploader::start`].
    pub async fn stop(&self) -> Result<(), UploadError> {
        self.call(|r| Command::SetRunning(false, r)).await
    }

    /// Waits until no selected upload is PENDING, INITIALIZED or RUNNING
    /// (every one is completed, paused, failed or cancelled).
    pub async fn wait_idle(&self, selector: Selector) -> Result<Vec<UploadInfo>, UploadError> {
        let mut changes = self.changes.clone();
        loop {
            changes.borrow_and_update();
            let list = self.uploads(selector.clone()).await?;
            if list.iter().all(|u| !u.state.is_active()) {
                return Ok(list);
            }
            changes.changed().await.map_err(|_| shutdown_error())?;
        }
    }

    /// Tells the engine what network the platform sees. Non-blocking. When the
    /// network goes offline, or is metered under [`NetworkPolicy::UnmeteredOnly`],
    /// parts in flight are stopped (sent again later, no attempt counted) and
    /// nothing new starts until an allowed network is reported.
    pub fn set_network(&self, state: NetworkState) {
        let _ = self.commands.send(Command::SetNetwork(state));
    }

    /// Whether files protected while the device is locked can be read now
    /// (iOS: `isProtectedDataAvailable` and its notifications; the engine
    /// assumes they can until told). While they cannot, an upload whose
    /// file is refused (permission denied) waits, with no attempt counted,
    /// instead of failing with `file_unreadable`; it goes on when they can
    /// again. Non-blocking.
    pub fn set_protected_data_available(&self, available: bool) {
        let _ = self.commands.send(Command::SetProtectedData(available));
    }

    /// Running flag, network and counts, taken in one step.
    pub async fn status(&self) -> Result<EngineStatus, UploadError> {
        self.call(Command::Status).await
    }

    /// Bytes the active uploads still have to send (for Android's transfer
    /// estimates).
    pub async fn bytes_remaining(&self) -> Result<u64, UploadError> {
        Ok(self.status().await?.bytes_remaining)
    }

    /// For a background task: starts the engine, then waits until there is
    /// nothing it can run, and says why. Returns [`IdleReason::Suspended`]
    /// soon after [`Uploader::suspend`].
    pub async fn run_until_idle(&self) -> Result<IdleReason, UploadError> {
        self.start().await?;
        let mut changes = self.changes.clone();
        loop {
            changes.borrow_and_update();
            if let Some(reason) = self.status().await?.idle_reason() {
                return Ok(reason);
            }
            changes.changed().await.map_err(|_| shutdown_error())?;
        }
    }

    /// For a background task whose time is up: stops every request in flight
    /// at once and returns. Everything confirmed is already committed; the
    /// stopped parts are sent again after [`Uploader::start`] (or the next
    /// [`Uploader::run_until_idle`]). No upload changes state.
    pub async fn suspend(&self) -> Result<(), UploadError> {
        self.stop().await
    }

    /// Registers (or removes) the platform's part transport, with the
    /// staging budget and URL margin. Reports need no transport: they are
    /// accepted before it is registered again after a relaunch.
    pub fn set_part_transport(
        &self,
        transport: Option<Arc<dyn PartTransport>>,
        settings: HandoffSettings,
    ) {
        let _ = self
            .commands
            .send(Command::Handoff(HandoffCommand::SetTransport(
                transport, settings,
            )));
    }

    /// Hand-off mode on (parts go to the transport; PUTs of the engine's own
    /// in flight stop and their parts are handed off) or off (the engine
    /// sends the parts itself; tasks already handed off stay with the
    /// platform and their reports still count).
    pub async fn set_handoff(&self, on: bool) -> Result<(), UploadError> {
        self.call(|r| Command::Handoff(HandoffCommand::SetMode(on, r)))
            .await
    }

    /// A handed-off task ended. Non-blocking; any thread; any time.
    pub fn report_task(&self, task_id: String, outcome: TaskOutcome) {
        self.task_reporter().report(task_id, outcome)
    }

    /// A handle that reports task ends without holding the uploader (for
    /// a transport's own threads).
    pub fn task_reporter(&self) -> TaskReporter {
        TaskReporter {
            commands: self.commands.clone(),
        }
    }

    /// After a relaunch: the ids of the tasks the platform still has. The
    /// engine's other tasks were lost and are sent again; returns the
    /// platform's tasks the engine does not know (cancel them).
    pub async fn reconcile_tasks(&self, live: Vec<String>) -> Result<Vec<String>, UploadError> {
        self.call(|r| Command::Handoff(HandoffCommand::Reconcile(live, r)))
            .await
    }

    /// Runs `f` on the engine's task with every upload and the overall
    /// summary. Events sent after `f` reflect changes made after that
    /// snapshot: a subscriber that registers itself inside `f` misses none
    /// and sees none twice. `f` must return quickly. Non-blocking.
    pub fn inspect(
        &self,
        f: impl FnOnce(Vec<UploadInfo>, Summary) + Send + 'static,
    ) -> Result<(), UploadError> {
        self.commands
            .send(Command::Inspect(Box::new(f)))
            .map_err(|_| shutdown_error())
    }

    /// True while the engine's task runs (false after a shutdown, or if
    /// an internal error stopped it).
    pub fn is_running(&self) -> bool {
        !self.engine_task.is_finished() && !self.commands.is_closed()
    }

    /// Ends the engine's task abruptly, as an internal error would.
    #[cfg(test)]
    pub(crate) fn stop_engine_for_test(&self) {
        self.engine_task.abort();
    }

    /// Stops the engine like [`Uploader::shutdown`], for callers that share
    /// the handle: later calls answer `shutdown`. The queue's lock is released
    /// when the engine has stopped, even if other handles remain.
    pub async fn close(&self) {
        let (tx, rx) = oneshot::channel();
        if self.commands.send(Command::Shutdown(tx)).is_ok() {
            let _ = rx.await;
        }
    }

    /// Stops the engine: network work ends, the database is closed.
    pub async fn shutdown(mut self) {
        let (tx, rx) = oneshot::channel();
        if self.commands.send(Command::Shutdown(tx)).is_ok() {
            let _ = rx.await;
        }
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

/// Reports handed-off tasks' ends to an engine; cheap to clone, any thread.
#[derive(Clone)]
pub struct TaskReporter {
    pub(crate) commands: mpsc::UnboundedSender<Command>,
}

impl TaskReporter {
    /// A task ended. Ignored once the engine is shut down (the task is
    /// reconciled at the next open).
    pub fn report(&self, task_id: String, outcome: TaskOutcome) {
        // Capped as the engine caps the bodies it reads itself: the
        // platform may pass a whole answer of any length.
        use crate::failure::cap_error_text;
        let outcome = match outcome {
            TaskOutcome::Response {
                status,
                etag,
                retry_after,
                body,
            } => TaskOutcome::Response {
                status,
                etag,
                retry_after,
                body: cap_error_text(body),
            },
            TaskOutcome::TransportError(message) => {
                TaskOutcome::TransportError(cap_error_text(message))
            }
            other => other,
        };
        let _ = self
            .commands
            .send(Command::Handoff(HandoffCommand::Report(task_id, outcome)));
    }
}

/// Ends an add for the engine's runs (see [`Uploader::adding`]).
struct AddingGuard<'a> {
    uploader: &'a Uploader,
}

impl Drop for AddingGuard<'_> {
    fn drop(&mut self) {
        let _ = self
            .uploader
            .commands
            .send(Command::Phone(PhoneCommand::Adding(false)));
    }
}

impl Drop for Uploader {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            // Safe from inside another runtime, unlike a plain drop.
            rt.shutdown_background();
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    static NOW: AtomicUsize = AtomicUsize::new(0);
    static PEAK: AtomicUsize = AtomicUsize::new(0);

    /// A queue that sends nothing until started (what the tests commit is
    /// only what they ask for).
    pub(crate) fn idle_uploader(db: &std::path::Path) -> Uploader {
        let mut options = UploaderOptions::new(db);
        options.start = false;
        Uploader::open(options).unwrap()
    }

    /// Two worker threads, as a phone app's runtime has at least.
    pub(crate) fn two_threads() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
    }

    /// Counts the files being hashed at once (the highest count is kept).
    pub(crate) struct HashGauge;

    impl HashGauge {
        pub(crate) fn enter() -> HashGauge {
            let now = NOW.fetch_add(1, Ordering::SeqCst) + 1;
            PEAK.fetch_max(now, Ordering::SeqCst);
            HashGauge
        }
    }

    impl Drop for HashGauge {
        fn drop(&mut self) {
            NOW.fetch_sub(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn files_are_hashed_at_most_two_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let uploader = Uploader::open(UploaderOptions::new(dir.path().join("q.db"))).unwrap();
        let paths: Vec<PathBuf> = (0..8)
            .map(|i| {
                let p = dir.path().join(format!("f{i}.bin"));
                std::fs::write(&p, vec![i as u8; 4 << 20]).unwrap();
                p
            })
            .collect();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let adds = paths.iter().map(|p| {
                uploader.add_file(NewUpload {
                    path: p.clone(),
                    transfer_id: "t".into(),
                    ..NewUpload::default()
                })
            });
            // No configuration: the adds fail after hashing, which is
            // all this test looks at.
            let _ = futures_util::future::join_all(adds).await;
        });
        let peak = PEAK.load(Ordering::SeqCst);
        assert!(
            (1..=MAX_FILES_HASHING).contains(&peak),
            "{peak} files hashed at once"
        );
    }

    #[test]
    fn add_files_queues_in_the_given_order_and_answers_each_file() {
        let dir = tempfile::tempdir().unwrap();
        let uploader = idle_uploader(&dir.path().join("q.db"));
        // Big files first: their hashing ends after the small ones'.
        let mut paths: Vec<PathBuf> = (0..10u8)
            .map(|i| {
                let p = dir.path().join(format!("f{i}.bin"));
                let len = if i < 2 { 8 << 20 } else { 1000 + i as usize };
                std::fs::write(&p, vec![i; len]).unwrap();
                p
            })
            .collect();
        paths.insert(5, dir.path().join("missing.bin"));
        let rt = two_threads();
        rt.block_on(async {
            uploader
                .set_config(Config::for_base_url("http://127.0.0.1:9"))
                .await
                .unwrap();
            let new = paths
                .iter()
                .map(|p| NewUpload {
                    path: p.clone(),
                    transfer_id: "t".into(),
                    ..NewUpload::default()
                })
                .collect();
            let answers = uploader.add_files(new).await;
            assert_eq!(answers.len(), paths.len());
            let e = answers[5].as_ref().unwrap_err();
            assert_eq!(e.code, ErrorCode::FileNotFound, "{e}");
            let added: Vec<UploadInfo> = answers
                .into_iter()
                .enumerate()
                .filter(|(i, _)| *i != 5)
                .map(|(_, a)| a.unwrap())
                .collect();
            // Ids follow the given order, and so does the queue.
            let ids: Vec<i64> = added.iter().map(|u| u.id).collect();
            let mut sorted = ids.clone();
            sorted.sort();
            assert_eq!(ids, sorted, "queued out of order");
            let names: Vec<String> = added.iter().map(|u| u.file_name.clone()).collect();
            let given: Vec<String> = (0..10).map(|i| format!("f{i}.bin")).collect();
            assert_eq!(names, given);
            let listed = uploader.uploads(Selector::All).await.unwrap();
            assert_eq!(listed.len(), 10);
            // One cancelled: the unfinished list leaves it out, keeps order.
            uploader.cancel(Selector::Upload(ids[3])).await.unwrap();
            let unfinished: Vec<i64> = uploader
                .unfinished()
                .await
                .unwrap()
                .iter()
                .map(|u| u.id)
                .collect();
            let expected: Vec<i64> = ids.iter().copied().filter(|&id| id != ids[3]).collect();
            assert_eq!(unfinished, expected);
        });
        rt.block_on(uploader.shutdown());
    }

    #[test]
    fn a_stopped_engine_releases_the_queue_while_handles_remain() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("q.db");
        let first = Arc::new(Uploader::open(UploaderOptions::new(&db)).unwrap());
        // A call in flight keeps a handle.
        let in_flight = first.clone();
        assert!(first.is_running());
        // The engine's task ends (as after an internal error).
        first.stop_engine_for_test();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while first.is_running() {
            assert!(std::time::Instant::now() < deadline, "engine task ended");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let second = Uploader::open(UploaderOptions::new(&db)).expect("reopen");
        assert!(second.is_running());
        drop((in_flight, first));
    }
}
