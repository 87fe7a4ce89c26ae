//! The engine handle: the registry of open queues, [`UploadEngine`] and its
//! calls on uploads.

use super::config::UploaderConfig;
use super::error::{shut_down, Result, UploaderError};
use super::observers::{deliver, ObserverHub, Registered, Sink, Subscription, UploadObserver};
use super::records::{
    records, summary_record, EngineStatus, IdleReason, NewFile, TransferSummary, UploadRecord,
    UploadSelector, UploaderEvent,
};
use crate::{background, model};
use crate::{FileOpener, NewUpload, Uploader, UploaderOptions};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

/// Queues opened in this process, so a second `open` of a path shares the
/// first one's engine.
static OPEN_QUEUES: Mutex<BTreeMap<PathBuf, Weak<UploadEngine>>> = Mutex::new(BTreeMap::new());

fn open_queues() -> MutexGuard<'static, BTreeMap<PathBuf, Weak<UploadEngine>>> {
    OPEN_QUEUES.lock().unwrap_or_else(|e| e.into_inner())
}

/// One gate per queue path, held while that queue opens: two opens of one
/// path wait for each other (the second gets the first's engine), while the
/// map of open queues stays free during the blocking open.
static OPENING: Mutex<BTreeMap<PathBuf, Arc<Mutex<()>>>> = Mutex::new(BTreeMap::new());

fn opening_gate(path: &Path) -> Arc<Mutex<()>> {
    OPENING
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .entry(path.to_path_buf())
        .or_default()
        .clone()
}

/// The upload engine over one queue database.
///
/// One engine per database: within a process, a second `open` of the same
/// path returns the same engine (shared by both callers) while it is open;
/// another process gets a `Database` error until the first one closes it.
/// The engine stops when [`UploadEngine::shutdown`] is called or the last
/// reference is closed (Kotlin `close()`, Swift deinit).
#[derive(uniffi::Object)]
pub struct UploadEngine {
    db_path: PathBuf,
    /// `None` once shut down.
    pub(super) uploader: Mutex<Option<Arc<Uploader>>>,
    hub: Arc<ObserverHub>,
}

impl UploadEngine {
    pub(super) fn uploader(&self) -> Result<Arc<Uploader>> {
        self.uploader
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .ok_or_else(shut_down)
    }

    /// True while its engine really runs: an engine whose task ended
    /// (after an internal error) is not handed out again.
    pub(super) fn is_open(&self) -> bool {
        self.uploader
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .is_some_and(|u| u.is_running())
    }

    /// Registers `sink` on the engine's task and hands it the snapshot
    /// first: only that task delivers events, so registering before the
    /// snapshot cannot let a change overtake it.
    pub(super) fn register(
        &self,
        sink: Sink,
        snapshot: impl FnOnce(Vec<model::UploadInfo>, model::Summary) + Send + 'static,
    ) -> Result<Arc<Subscription>> {
        let uploader = self.uploader()?;
        let id = self.hub.next_id.fetch_add(1, Ordering::Relaxed);
        let cancelled = Arc::new(AtomicBool::new(false));
        let hub = self.hub.clone();
        let flag = cancelled.clone();
        uploader.inspect(move |uploads, summary| {
            {
                let mut observers = hub.lock();
                if flag.load(Ordering::SeqCst) {
                    return;
                }
                observers.insert(id, Registered { observer: sink });
            }
            snapshot(uploads, summary);
        })?;
        Ok(Arc::new(Subscription {
            hub: Arc::downgrade(&self.hub),
            id,
            cancelled,
        }))
    }

    fn queue_path(db_path: &str) -> Result<PathBuf> {
        if db_path.trim().is_empty() {
            return Err(UploaderError::InvalidArgument {
                detail: "the database path must not be empty".into(),
            });
        }
        std::path::absolute(Path::new(db_path)).map_err(|e| UploaderError::InvalidArgument {
            detail: format!("{db_path} is not a usable path: {e}"),
        })
    }
}

#[uniffi::export]
impl UploadEngine {
    /// Opens (creating if needed) the queue database at `db_path` and starts
    /// the engine on its own threads. With `start` false the engine loads the
    /// queue but sends nothing until `start` or `run_until_idle` (report the
    /// network first). If this process already has the path open, returns
    /// that engine and ignores `start`.
    ///
    /// Blocking (opens and migrates the database): call it off the main thread.
    #[uniffi::constructor(default(start = true))]
    pub fn open(db_path: String, start: bool) -> Result<Arc<UploadEngine>> {
        let path = Self::queue_path(&db_path)?;
        let gate = opening_gate(&path);
        let _opening = gate.lock().unwrap_or_else(|e| e.into_inner());
        let known = {
            let mut queues = open_queues();
            queues.retain(|_, engine| engine.strong_count() > 0);
            queues.get(&path).and_then(Weak::upgrade)
        };
        if let Some(engine) = known {
            if engine.is_open() {
                return Ok(engine);
            }
            // Its engine stopped: later calls on it answer `shutdown`.
            engine
                .uploader
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .take();
        }
        let mut options = UploaderOptions::new(&path);
        options.start = start;
        let uploader = Uploader::open(options)?;
        let hub = Arc::new(ObserverHub::default());
        uploader.set_listener(Some(hub.clone()));
        let engine = Arc::new(UploadEngine {
            db_path: path.clone(),
            uploader: Mutex::new(Some(Arc::new(uploader))),
            hub,
        });
        open_queues().insert(path, Arc::downgrade(&engine));
        Ok(engine)
    }

    /// The absolute path of the queue database.
    pub fn db_path(&self) -> String {
        self.db_path.to_string_lossy().into_owned()
    }

    /// Validates and stores the configuration (persisted with the queue).
    /// New headers apply to the next backend call. Async.
    pub async fn set_config(&self, config: UploaderConfig) -> Result<()> {
        Ok(self.uploader()?.set_config(config.into()).await?)
    }

    /// The stored configuration, or `None` before the first `set_config`. Async.
    pub async fn config(&self) -> Result<Option<UploaderConfig>> {
        Ok(self.uploader()?.config().await?.map(Into::into))
    }

    /// Hashes the file (XXH3-128, on an engine thread: seconds for big
    /// files) and queues it, committed before this returns. Adding the same
    /// content to the same transfer again returns the existing upload unless
    /// that one was cancelled. Needs a configuration. Async.
    pub async fn add_file(&self, file: NewFile) -> Result<UploadRecord> {
        let user_params = match serde_json::from_str::<serde_json::Value>(&file.user_params_json) {
            Ok(serde_json::Value::Object(map)) => map,
            // The text may hold secrets: describe it, never quote it.
            _ => {
                return Err(UploaderError::InvalidArgument {
                    detail: "userParamsJson must be a JSON object".into(),
                })
            }
        };
        // The engine tells paths from URIs (FileSource::parse).
        let new = NewUpload {
            path: PathBuf::from(file.path),
            transfer_id: file.transfer_id,
            file_name: file.file_name,
            user_params,
        };
        Ok(self.uploader()?.add_file(new).await?.into())
    }

    /// Registers the opener of files added as URIs (`content://...`), or
    /// removes it with `None`. Uploads of URIs wait (they do not fail) while
    /// no opener is registered, so after a restart register it right after
    /// `open`. Non-blocking; any thread.
    pub fn set_file_opener(&self, opener: Option<Arc<dyn FileOpener>>) -> Result<()> {
        self.uploader()?.set_file_opener(opener);
        Ok(())
    }

    /// Pauses the selected unfinished uploads (parts in flight stop and are
    /// sent again on resume). Returns the uploads that changed. Async.
    pub async fn pause(&self, selector: UploadSelector) -> Result<Vec<UploadRecord>> {
        Ok(records(self.uploader()?.pause(selector.into()).await?))
    }

    /// Resumes the selected PAUSED or FAILED uploads with a fresh round of
    /// retries. Returns the uploads that changed. Async.
    pub async fn resume(&self, selector: UploadSelector) -> Result<Vec<UploadRecord>> {
        Ok(records(self.uploader()?.resume(selector.into()).await?))
    }

    /// Cancels the selected uploads that are not completed (final; the abort
    /// route is called when configured). Returns the uploads that changed. Async.
    pub async fn cancel(&self, selector: UploadSelector) -> Result<Vec<UploadRecord>> {
        Ok(records(self.uploader()?.cancel(selector.into()).await?))
    }

    /// Deletes the selected finished uploads (COMPLETED, or CANCELLED with
    /// the abort call done); FAILED and PAUSED ones must be cancelled
    /// first. One named upload that is not finished is an `InvalidArgument`
    /// error. Returns how many were deleted. Async.
    pub async fn forget(&self, selector: UploadSelector) -> Result<u64> {
        Ok(self.uploader()?.forget(selector.into()).await?)
    }

    /// Snapshots of the selected uploads, in queue order (empty for an
    /// unknown upload id). Async.
    pub async fn uploads(&self, selector: UploadSelector) -> Result<Vec<UploadRecord>> {
        Ok(records(self.uploader()?.uploads(selector.into()).await?))
    }

    /// Aggregate of one transfer, or of every upload with `None`. Async.
    pub async fn summary(&self, transfer_id: Option<String>) -> Result<TransferSummary> {
        let s = self.uploader()?.summary(transfer_id.clone()).await?;
        Ok(summary_record(transfer_id, &s))
    }

    /// One summary per transfer, in the order transfers were first used. Async.
    pub async fn transfer_summaries(&self) -> Result<Vec<TransferSummary>> {
        let uploader = self.uploader()?;
        let mut transfers: Vec<String> = Vec::new();
        for u in uploader.uploads(model::Selector::All).await? {
            if !transfers.contains(&u.transfer_id) {
                transfers.push(u.transfer_id);
            }
        }
        let mut out = Vec::with_capacity(transfers.len());
        for t in transfers {
            let s = uploader.summary(Some(t.clone())).await?;
            out.push(summary_record(Some(t), &s));
        }
        Ok(out)
    }

    /// Registers `observer`. Its first event is a `Snapshot` of every upload;
    /// then it gets every state change and progress, in order, with nothing
    /// missed or repeated between the snapshot and the first change. Keep
    /// the returned handle: closing or cancelling it ends the subscription.
    /// Non-blocking; any thread.
    pub fn subscribe(&self, observer: Arc<dyn UploadObserver>) -> Result<Arc<Subscription>> {
        let sink = Sink::Records(observer.clone());
        self.register(sink, move |uploads, summary| {
            deliver(
                &observer,
                UploaderEvent::Snapshot {
                    uploads: records(uploads),
                    summary: summary_record(None, &summary),
                },
            );
        })
    }

    /// Lets the engine send (after `open(start = false)` or `suspend`). Async.
    pub async fn start(&self) -> Result<()> {
        Ok(self.uploader()?.start().await?)
    }

    /// For a background task: starts the engine and returns when nothing is
    /// left that it can run, saying why. Async; can take hours.
    pub async fn run_until_idle(&self) -> Result<IdleReason> {
        Ok(self.uploader()?.run_until_idle().await?.into())
    }

    /// For a background task whose time is up: stops every request in flight
    /// (their parts are sent again later; everything confirmed is already
    /// committed) and makes `run_until_idle` return `Suspended`. No upload
    /// changes state. Async; returns within milliseconds.
    pub async fn suspend(&self) -> Result<()> {
        Ok(self.uploader()?.suspend().await?)
    }

    /// Reports the network the platform sees (the engine assumes online and
    /// unmetered until told). Offline, or metered under `UnmeteredOnly`,
    /// holds every upload without changing its state; an allowed network
    /// continues them. Non-blocking; any thread.
    pub fn set_network_state(&self, online: bool, metered: bool) -> Result<()> {
        self.uploader()?
            .set_network(background::NetworkState { online, metered });
        Ok(())
    }

    /// Running flag, network and counts, taken in one step. Async.
    pub async fn status(&self) -> Result<EngineStatus> {
        Ok(self.uploader()?.status().await?.into())
    }

    /// Bytes the active uploads still have to send (Android's transfer
    /// estimates). Async.
    pub async fn bytes_remaining(&self) -> Result<u64> {
        Ok(self.uploader()?.bytes_remaining().await?)
    }

    /// Stops the engine and closes the queue for every holder of this
    /// engine; later calls fail with `Shutdown`. Parts in flight are sent
    /// again by the next engine on this queue. Idempotent. Async.
    pub async fn shutdown(&self) {
        let uploader = self
            .uploader
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(u) = uploader {
            u.close().await;
            self.hub.lock().clear();
            // The queue's lock goes with the last reference (calls still
            // running hold one only until they see the shutdown).
            drop(u);
        }
        let mut queues = open_queues();
        if queues
            .get(&self.db_path)
            .is_some_and(|w| std::ptr::eq(w.as_ptr(), self))
        {
            queues.remove(&self.db_path);
        }
    }
}
