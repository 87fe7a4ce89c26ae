//! Answers held back until the queue database is on storage (group commit,
//! see `store/durable.rs`). The sync runs on a blocking thread while the
//! engine goes on (parts, backend calls, more commits): a slow flash delays
//! the answers, not the uploads. Answers and events that arrive while a sync
//! runs wait for the next one, which then covers all of them.

use super::{Engine, Reply, UploadId};
use crate::error::UploadError;
use crate::store::PendingSync;
use tokio::task::JoinHandle;

/// Something to tell the outside world once the pass's commits are synced;
/// given the sync's error if the sync failed.
pub(super) type AfterSync = Box<dyn FnOnce(Option<&UploadError>) + Send>;

/// The sync running now, and what waits for it.
pub(super) struct SyncInFlight {
    pub(super) done: JoinHandle<(PendingSync, crate::error::Result<()>)>,
    waiting: Vec<AfterSync>,
    /// An upload's end is among `waiting`.
    has_ends: bool,
    /// Uploads with an event among `waiting`.
    held: std::collections::HashSet<UploadId>,
}

impl Engine {
    /// Sends `result` to the caller once what the command committed is
    /// durable (or the sync's error, should the sync fail).
    pub(super) fn answer_when_durable<T: Send + 'static>(
        &mut self,
        reply: Reply<T>,
        result: std::result::Result<T, UploadError>,
    ) {
        self.after_sync.push(Box::new(move |failed| {
            let _ = reply.send(match failed {
                Some(e) => Err(e.clone()),
                None => result,
            });
        }));
    }

    /// Sends a query's answer once every end committed so far is durable
    /// and told: a query must not show an upload COMPLETED or CANCELLED
    /// that a power cut could undo, nor before the listener hears of it.
    /// With nothing waiting for a sync, that is now. The answer is the
    /// state as it is now; a failed sync does not withhold it (the events
    /// it waited behind are told either way).
    pub(super) fn answer_after_ends<T: Send + 'static>(
        &mut self,
        reply: Reply<T>,
        result: std::result::Result<T, UploadError>,
    ) {
        let send: AfterSync = Box::new(move |_| {
            let _ = reply.send(result);
        });
        if self.ends_after_sync {
            self.after_sync.push(send);
        } else if let Some(in_flight) = self.syncing.as_mut().filter(|s| s.has_ends) {
            // Any end committed since that sync began would wait in
            // `after_sync`: the running sync covers every end there is.
            in_flight.waiting.push(send);
        } else {
            // No end is waiting for a sync: what the query shows is final.
            send(None);
        }
    }

    /// Starts a sync if anyone waits for one (or a complete wants one) and
    /// none is running. Called once per pass; what is committed but not
    /// waited for syncs later. True when a complete wanted a sync and
    /// there was nothing left to sync: the next pass can send it.
    pub(super) fn start_sync_if_waiting(&mut self) -> bool {
        // Asked again by the next pass if still wanted.
        let wanted = std::mem::take(&mut self.want_sync);
        if (self.after_sync.is_empty() && !wanted) || self.syncing.is_some() {
            return false;
        }
        let waiting = std::mem::take(&mut self.after_sync);
        let has_ends = std::mem::take(&mut self.ends_after_sync);
        let held = std::mem::take(&mut self.held_events);
        match self.store.begin_sync() {
            Ok(None) => {
                release(waiting, None);
                return wanted;
            }
            Ok(Some(sync)) => {
                let done = tokio::task::spawn_blocking(move || {
                    let r = sync.run();
                    (sync, r)
                });
                self.syncing = Some(SyncInFlight {
                    done,
                    waiting,
                    has_ends,
                    held,
                });
            }
            Err(e) => {
                let e = sync_failed(e);
                release(waiting, Some(&e));
                self.fail_completes_waiting_for_sync(&e);
            }
        }
        false
    }

    /// A sync failed: uploads whose complete waits for their ETags to be
    /// synced fail with its error (resume asks for the sync again), rather
    /// than ask for a failing sync at every pass.
    fn fail_completes_waiting_for_sync(&mut self, e: &UploadError) {
        let waiting: Vec<UploadId> = self
            .uploads
            .values()
            .filter(|t| {
                t.row.state.is_active()
                    && t.all_parts_done()
                    && !self.store.is_durable(t.etags_commit)
            })
            .map(|t| t.row.id)
            .collect();
        for id in waiting {
            self.fail(id, e.clone());
        }
    }

    /// The running sync returned: what waited for it goes.
    pub(super) fn on_sync_done(
        &mut self,
        done: std::result::Result<(PendingSync, crate::error::Result<()>), tokio::task::JoinError>,
    ) {
        let Some(in_flight) = self.syncing.take() else {
            return;
        };
        let failed = match done {
            Ok((sync, Ok(()))) => {
                self.store.end_sync(&sync);
                None
            }
            Ok((_, Err(e))) => Some(sync_failed(e)),
            Err(e) => Some(UploadError::new(
                crate::error::ErrorCode::Internal,
                format!("the queue database sync stopped: {e}"),
            )),
        };
        release(in_flight.waiting, failed.as_ref());
        if let Some(e) = failed {
            self.fail_completes_waiting_for_sync(&e);
        }
    }

    /// Syncs here and now, and lets everything that waits go (the running
    /// sync's waiters first, in the order they came). For a snapshot that
    /// must come after every event, and for the engine's end.
    pub(super) fn flush_durable(&mut self) {
        let mut waiting = match self.syncing.take() {
            // Left to finish on its thread; this sync covers its commits.
            Some(in_flight) => in_flight.waiting,
            None => Vec::new(),
        };
        waiting.append(&mut self.after_sync);
        self.ends_after_sync = false;
        self.held_events.clear();
        if waiting.is_empty() {
            return;
        }
        let failed = self.store.make_durable().err().map(sync_failed);
        release(waiting, failed.as_ref());
        if let Some(e) = failed {
            self.fail_completes_waiting_for_sync(&e);
        }
    }
}

impl Engine {
    /// Whether an event of `id` waits for a sync (a later one waits too).
    pub(super) fn events_held(&self, id: UploadId) -> bool {
        self.held_events.contains(&id)
            || self.syncing.as_ref().is_some_and(|s| s.held.contains(&id))
    }

    /// Syncs here and now even if nothing waits for it (a complete does),
    /// and lets everything that waits go.
    pub(super) fn flush_durable_now(&mut self) {
        self.after_sync.push(Box::new(|_| {}));
        self.flush_durable();
    }
}

fn sync_failed(e: crate::error::Error) -> UploadError {
    let e = UploadError::from(e);
    tracing::error!(code = %e.code, "{}", e.message);
    e
}

fn release(waiting: Vec<AfterSync>, failed: Option<&UploadError>) {
    for f in waiting {
        f(failed);
    }
}

#[cfg(test)]
mod tests {
    use crate::store::synced_for_test;
    use crate::store::{sync_gates_for_test, SyncGate};
    use crate::tests::{idle_uploader, two_threads};
    use crate::{Config, NewUpload, Uploader, UploaderOptions};
    use std::sync::Arc;

    /// Holds every sync of one queue database at a gate until the test
    /// opens it; the gate is taken away when this is dropped.
    struct HeldSyncs {
        gate: Arc<SyncGate>,
        keys: Vec<String>,
    }

    impl HeldSyncs {
        fn new(db: &std::path::Path) -> HeldSyncs {
            HeldSyncs::with(db, SyncGate::default())
        }

        fn with(db: &std::path::Path, gate: SyncGate) -> HeldSyncs {
            let gate = Arc::new(gate);
            let dir = std::fs::canonicalize(db.parent().unwrap()).unwrap();
            // SQLite may name the file either way.
            let keys = [dir.join(db.file_name().unwrap()), db.to_path_buf()]
                .map(|k| k.to_string_lossy().into_owned())
                .to_vec();
            let mut gates = sync_gates_for_test().lock().unwrap();
            for key in &keys {
                gates.insert(key.clone(), gate.clone());
            }
            HeldSyncs { gate, keys }
        }
    }

    impl Drop for HeldSyncs {
        fn drop(&mut self) {
            self.gate.open();
            let mut gates = sync_gates_for_test()
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            for key in &self.keys {
                gates.remove(key);
            }
        }
    }

    #[test]
    fn an_add_is_answered_only_once_its_commit_is_synced() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("q.db");
        let mut options = UploaderOptions::new(&db);
        options.start = false; // nothing but the adds commits
        let uploader = Uploader::open(options).unwrap();
        let key = std::fs::canonicalize(dir.path())
            .unwrap()
            .join("q.db")
            .to_string_lossy()
            .into_owned();
        let synced = || {
            let map = synced_for_test().lock().unwrap();
            map.get(&key)
                .or_else(|| map.get(db.to_str().unwrap()))
                .copied()
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            uploader
                .set_config(Config::for_base_url("http://127.0.0.1:9"))
                .await
                .unwrap();
            let mut last = synced().expect("the configuration was synced before the answer");
            for i in 0..10u8 {
                let p = dir.path().join(format!("f{i}.bin"));
                std::fs::write(&p, [i; 100]).unwrap();
                uploader
                    .add_file(NewUpload {
                        path: p,
                        transfer_id: "t".into(),
                        ..NewUpload::default()
                    })
                    .await
                    .unwrap();
                // Read at once: the add's commit is already on storage.
                let now = synced().unwrap();
                assert!(now > last, "add {i} answered before its commit was synced");
                last = now;
            }
            uploader.shutdown().await;
        });
    }

    #[test]
    fn the_engine_answers_while_a_sync_runs_and_one_sync_covers_what_came_meanwhile() {
        use crate::Selector;
        use std::sync::atomic::Ordering::SeqCst;
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("q.db");
        let uploader = Arc::new(idle_uploader(&db));
        let rt = two_threads();
        rt.block_on(async {
            uploader
                .set_config(Config::for_base_url("http://127.0.0.1:9"))
                .await
                .unwrap();
            let held = HeldSyncs::new(&db);
            let gate = held.gate.clone();
            let add = |i: u8| {
                let p = dir.path().join(format!("f{i}.bin"));
                std::fs::write(&p, [i; 100]).unwrap();
                let uploader = uploader.clone();
                tokio::spawn(async move {
                    uploader
                        .add_file(NewUpload {
                            path: p,
                            transfer_id: "t".into(),
                            ..NewUpload::default()
                        })
                        .await
                })
            };
            let first = add(0);
            while gate.waiting.load(SeqCst) == 0 {
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
            // The engine is not stuck in the sync: it lists, and queues more.
            let later = [add(1), add(2)];
            while uploader.uploads(Selector::All).await.unwrap().len() < 3 {
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
            assert!(!first.is_finished(), "an add was answered before its sync");
            assert!(later.iter().all(|h| !h.is_finished()));
            gate.open();
            first.await.unwrap().unwrap();
            for h in later {
                h.await.unwrap().unwrap();
            }
            // One sync for the first add, one for the two that came meanwhile.
            assert_eq!(gate.passed.load(SeqCst), 2);
            drop(held);
        });
        rt.block_on(Arc::try_unwrap(uploader).ok().unwrap().shutdown());
    }

    /// The end states told to the listener, in order.
    struct Ends(std::sync::Mutex<Vec<crate::model::UploadState>>);

    impl crate::model::UploadListener for Ends {
        fn on_event(&self, event: &crate::model::UploadEvent) {
            if let crate::model::UploadEvent::StateChanged(info) = event {
                if info.state.is_final() {
                    self.0.lock().unwrap().push(info.state);
                }
            }
        }
    }

    impl Ends {
        fn told(&self, state: crate::model::UploadState) -> bool {
            self.0.lock().unwrap().contains(&state)
        }
    }

    /// A background run ends when the status says idle: by then the last
    /// upload's end must be synced and told, even with its sync still
    /// running when the engine ran out of work.
    #[test]
    fn an_idle_status_comes_only_once_the_ends_are_synced_and_told() {
        use crate::model::UploadState;
        use crate::IdleReason;
        use std::sync::Mutex;

        let rt = two_threads();
        rt.block_on(async {
            let h = s3bgu_testkit::Harness::start(s3bgu_testkit::HarnessOptions::default()).await;
            let dir = tempfile::tempdir().unwrap();
            let db = dir.path().join("q.db");
            let uploader = Arc::new(idle_uploader(&db));
            let ends = Arc::new(Ends(Mutex::default()));
            uploader.set_listener(Some(ends.clone()));
            uploader
                .set_config(Config::for_base_url(&h.backend_url))
                .await
                .unwrap();
            let path = dir.path().join("a.bin");
            std::fs::write(&path, [7u8; 1000]).unwrap();
            let added = uploader
                .add_file(NewUpload {
                    path,
                    transfer_id: "t".into(),
                    ..NewUpload::default()
                })
                .await
                .unwrap();
            // From the end's commit on, every sync waits at the gate.
            let completed = {
                let db = db.clone();
                move || {
                    rusqlite::Connection::open(&db)
                        .and_then(|c| {
                            c.query_row(
                                "SELECT state FROM uploads WHERE id = ?1",
                                [added.id],
                                |r| r.get::<_, String>(0),
                            )
                        })
                        .is_ok_and(|s| s == "COMPLETED")
                }
            };
            let held = HeldSyncs::with(&db, SyncGate::when(completed.clone()));
            let gate = held.gate.clone();
            uploader.start().await.unwrap();
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
            // (Queries would wait for the sync: read the queue directly.)
            while !(completed() && gate.waiting.load(std::sync::atomic::Ordering::SeqCst) > 0) {
                assert!(
                    std::time::Instant::now() < deadline,
                    "the upload did not end"
                );
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
            // Completed in the queue, but its end is not synced yet: the
            // status waits for it rather than say idle.
            let status = {
                let uploader = uploader.clone();
                tokio::spawn(async move { uploader.status().await })
            };
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            assert!(
                !status.is_finished(),
                "idle reported before the last end was synced"
            );
            assert!(
                ends.0.lock().unwrap().is_empty(),
                "an end told before its sync"
            );
            gate.open();
            let status = status.await.unwrap().unwrap();
            assert_eq!(status.idle_reason(), Some(IdleReason::Idle));
            assert_eq!(*ends.0.lock().unwrap(), vec![UploadState::Completed]);
            drop(held);
            Arc::try_unwrap(uploader).ok().unwrap().shutdown().await;
        });
    }

    /// Queries answer from the engine's state, which changes at the commit;
    /// the end is durable (and told) only after the sync. With every sync
    /// taking 300 ms, `uploads()`, `unfinished()` and `summary()` must not
    /// show an upload's end before the listener heard of it.
    #[test]
    fn queries_show_an_end_only_once_it_is_synced_and_told() {
        use crate::model::UploadState;
        use crate::Selector;
        use std::time::{Duration, Instant};

        let rt = two_threads();
        rt.block_on(async {
            let h = s3bgu_testkit::Harness::start(s3bgu_testkit::HarnessOptions::default()).await;
            let dir = tempfile::tempdir().unwrap();
            let db = dir.path().join("q.db");
            let uploader = idle_uploader(&db);
            let ends = Arc::new(Ends(Default::default()));
            uploader.set_listener(Some(ends.clone()));
            uploader
                .set_config(Config::for_base_url(&h.backend_url))
                .await
                .unwrap();
            let cancelled = dir.path().join("c.bin");
            std::fs::write(&cancelled, [3u8; 500]).unwrap();
            let cancelled = uploader
                .add_file(NewUpload {
                    path: cancelled,
                    transfer_id: "c".into(),
                    ..NewUpload::default()
                })
                .await
                .unwrap();
            let path = dir.path().join("a.bin");
            std::fs::write(&path, [7u8; 1000]).unwrap();
            let added = uploader
                .add_file(NewUpload {
                    path,
                    transfer_id: "t".into(),
                    ..NewUpload::default()
                })
                .await
                .unwrap();
            let held = HeldSyncs::with(&db, SyncGate::slow(Duration::from_millis(300)));

            // A cancel is answered after its sync; a query sent right
            // behind it must not see CANCELLED before the event either.
            let cancel = {
                let (id, up, ends) = (cancelled.id, &uploader, &ends);
                let query = async move {
                    // Polled after the cancel has sent its command.
                    tokio::task::yield_now().await;
                    let seen = up.uploads(Selector::Upload(id)).await.unwrap();
                    (
                        seen[0].state == UploadState::Cancelled,
                        ends.told(UploadState::Cancelled),
                    )
                };
                let (seen, cancel) = tokio::join!(query, up.cancel(Selector::Upload(id)));
                cancel.unwrap();
                seen
            };
            // Sent after the cancel, so it sees it; but only once told.
            assert!(cancel.0, "the query sent after the cancel missed it");
            assert!(cancel.1, "uploads() showed CANCELLED before it was told");

            uploader.start().await.unwrap();
            let deadline = Instant::now() + Duration::from_secs(60);
            let (mut listed, mut unlisted, mut counted) = (false, false, false);
            while !(listed && unlisted && counted) {
                assert!(Instant::now() < deadline, "the upload did not end");
                // Each check reads the events after the answer came.
                let list = uploader.uploads(Selector::Upload(added.id)).await.unwrap();
                if list[0].state == UploadState::Completed {
                    assert!(
                        ends.told(UploadState::Completed),
                        "uploads() showed COMPLETED before it was told"
                    );
                    listed = true;
                }
                let unfinished = uploader.unfinished().await.unwrap();
                if !unfinished.iter().any(|u| u.id == added.id) {
                    assert!(
                        ends.told(UploadState::Completed),
                        "unfinished() dropped the upload before its end was told"
                    );
                    unlisted = true;
                }
                let summary = uploader.summary(Some("t".into())).await.unwrap();
                if summary.completed == 1 {
                    assert!(
                        ends.told(UploadState::Completed),
                        "summary() counted COMPLETED before it was told"
                    );
                    counted = true;
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            drop(held);
            uploader.shutdown().await;
        });
    }

    /// `complete` lists the ETags read back from the queue; the store then
    /// forgets the multipart upload. Were those ETags lost to a power cut
    /// after it, the parts would be sent again into an upload that no
    /// longer exists, and the upload would fail as if its parts were lost.
    /// So no complete goes out until the ETags' commit is synced: here every
    /// sync from the one covering the last ETag on waits at a gate.
    #[test]
    fn complete_is_sent_only_once_the_etags_it_lists_are_synced() {
        use crate::model::UploadState;
        use crate::Selector;
        use s3bgu_testkit::Route;
        use std::sync::atomic::Ordering::SeqCst;
        use std::time::{Duration, Instant};

        let rt = two_threads();
        rt.block_on(async {
            let h = s3bgu_testkit::Harness::start(s3bgu_testkit::HarnessOptions::default()).await;
            let dir = tempfile::tempdir().unwrap();
            let db = dir.path().join("q.db");
            let uploader = idle_uploader(&db);
            uploader
                .set_config(Config::for_base_url(&h.backend_url))
                .await
                .unwrap();
            let path = dir.path().join("a.bin");
            std::fs::write(&path, [9u8; 1000]).unwrap();
            let added = uploader
                .add_file(NewUpload {
                    path,
                    transfer_id: "t".into(),
                    ..NewUpload::default()
                })
                .await
                .unwrap();
            let etags_stored = {
                let db = db.clone();
                move || {
                    rusqlite::Connection::open(&db)
                        .and_then(|c| {
                            c.query_row(
                                "SELECT COUNT(*) FROM parts WHERE upload = ?1 AND etag IS NOT NULL",
                                [added.id],
                                |r| r.get::<_, i64>(0),
                            )
                        })
                        .is_ok_and(|n| n == 1)
                }
            };
            let held = HeldSyncs::with(&db, SyncGate::when(etags_stored.clone()));
            let gate = held.gate.clone();
            uploader.start().await.unwrap();
            let deadline = Instant::now() + Duration::from_secs(60);
            while !etags_stored() {
                assert!(Instant::now() < deadline, "the part was never confirmed");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            // Time enough for a complete to go out, were it not held back.
            let until = Instant::now() + Duration::from_secs(2);
            while Instant::now() < until {
                assert_eq!(
                    h.stats.backend_calls(Route::Complete),
                    0,
                    "complete sent while the ETag it lists was not synced"
                );
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            // The engine asked for that sync itself (nothing else waits).
            while gate.waiting.load(SeqCst) == 0 {
                assert!(Instant::now() < deadline, "no sync was asked for");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            gate.open();
            let done = tokio::time::timeout(
                Duration::from_secs(60),
                uploader.wait_idle(Selector::Upload(added.id)),
            )
            .await
            .expect("the upload ends once the sync is through")
            .unwrap();
            assert_eq!(done[0].state, UploadState::Completed, "{done:?}");
            assert_eq!(h.stats.backend_calls(Route::Complete), 1);
            drop(held);
            uploader.shutdown().await;
        });
    }

    /// Every state change of one upload, as told.
    #[derive(Default)]
    struct Told(std::sync::Mutex<Vec<crate::model::UploadInfo>>);

    impl crate::model::UploadListener for Told {
        fn on_event(&self, event: &crate::model::UploadEvent) {
            if let crate::model::UploadEvent::StateChanged(info) = event {
                self.0.lock().unwrap().push(info.clone());
            }
        }
    }

    /// An end waits for its sync before it is told; a resume committed
    /// meanwhile must be told after it, or the listener is left with
    /// FAILED for an upload that runs (and completes).
    #[test]
    fn a_change_made_while_an_end_waits_for_its_sync_is_told_after_it() {
        use crate::model::UploadState;
        use crate::Selector;
        use std::time::{Duration, Instant};

        let rt = two_threads();
        rt.block_on(async {
            let h = s3bgu_testkit::Harness::start(s3bgu_testkit::HarnessOptions::default()).await;
            let dir = tempfile::tempdir().unwrap();
            let db = dir.path().join("q.db");
            let uploader = idle_uploader(&db);
            let told = Arc::new(Told::default());
            uploader.set_listener(Some(told.clone()));
            uploader
                .set_config(Config::for_base_url(&h.backend_url))
                .await
                .unwrap();
            let path = dir.path().join("a.bin");
            std::fs::write(&path, [5u8; 1000]).unwrap();
            let added = uploader
                .add_file(NewUpload {
                    path,
                    transfer_id: "t".into(),
                    ..NewUpload::default()
                })
                .await
                .unwrap();
            h.faults.fail_backend(
                s3bgu_testkit::Route::StartUpload,
                1,
                400,
                r#"{"error":"refused once"}"#,
            );
            let held = HeldSyncs::with(&db, SyncGate::slow(Duration::from_millis(400)));
            uploader.start().await.unwrap();
            let deadline = Instant::now() + Duration::from_secs(60);
            while h.stats.backend_calls(s3bgu_testkit::Route::StartUpload) == 0 {
                assert!(Instant::now() < deadline, "startUpload was not called");
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            // The refusal is committed at once and told after its sync;
            // the resume lands in between, a few ms later.
            tokio::time::sleep(Duration::from_millis(30)).await;
            loop {
                let resumed = uploader.resume(Selector::Upload(added.id)).await.unwrap();
                if !resumed.is_empty() {
                    break;
                }
                assert!(Instant::now() < deadline, "the upload never failed");
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            loop {
                let last = told.0.lock().unwrap().last().map(|u| u.state);
                if last == Some(UploadState::Completed) {
                    break;
                }
                assert!(Instant::now() < deadline, "the upload did not complete");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let events = told.0.lock().unwrap().clone();
            let states: Vec<UploadState> = events.iter().map(|u| u.state).collect();
            assert!(states.contains(&UploadState::Failed), "{states:?}");
            // Told in the order they were made.
            for w in events.windows(2) {
                assert!(
                    w[0].updated_at_ms <= w[1].updated_at_ms,
                    "{:?} (at {}) told after {:?} (at {}): {states:?}",
                    w[1].state,
                    w[1].updated_at_ms,
                    w[0].state,
                    w[0].updated_at_ms
                );
            }
            drop(held);
            uploader.shutdown().await;
        });
    }
}
