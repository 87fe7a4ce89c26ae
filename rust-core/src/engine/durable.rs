//! Answers held back until the queue database is on storage (group commit,
//! see `store/durable.rs`). The sync runs on a blocking thread while the
//! engine goes on (parts, backend calls, more commits): a slow flash delays
//! the answers, not the uploads. Answers and events that arrive while a sync
//! runs wait for the next one, which then covers all of them.

use super::{Engine, Reply};
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

    /// Starts a sync if anyone waits for one and none is running. Called
    /// once per pass; what is committed but not waited for syncs later.
    pub(super) fn start_sync_if_waiting(&mut self) {
        if self.after_sync.is_empty() || self.syncing.is_some() {
            return;
        }
        let waiting = std::mem::take(&mut self.after_sync);
        match self.store.begin_sync() {
            Ok(None) => release(waiting, None),
            Ok(Some(sync)) => {
                let done = tokio::task::spawn_blocking(move || {
                    let r = sync.run();
                    (sync, r)
                });
                self.syncing = Some(SyncInFlight { done, waiting });
            }
            Err(e) => release(waiting, Some(&sync_failed(e))),
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
        if waiting.is_empty() {
            return;
        }
        let failed = self.store.make_durable().err().map(sync_failed);
        release(waiting, failed.as_ref());
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
            let gate = Arc::new(SyncGate::default());
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

    /// A background run ends when the status says idle: by then the last
    /// upload's end must be synced and told, even with its sync still
    /// running when the engine ran out of work.
    #[test]
    fn an_idle_status_comes_only_once_the_ends_are_synced_and_told() {
        use crate::model::{UploadEvent, UploadListener, UploadState};
        use crate::{IdleReason, Selector};
        use std::sync::Mutex;

        struct Ends(Mutex<Vec<UploadState>>);
        impl UploadListener for Ends {
            fn on_event(&self, event: &UploadEvent) {
                if let UploadEvent::StateChanged(info) = event {
                    if info.state.is_final() {
                        self.0.lock().unwrap().push(info.state);
                    }
                }
            }
        }

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
            // From here every sync waits at the gate.
            let held = HeldSyncs::new(&db);
            let gate = held.gate.clone();
            uploader.start().await.unwrap();
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
            loop {
                let list = uploader.uploads(Selector::Upload(added.id)).await.unwrap();
                if list[0].state == UploadState::Completed {
                    break;
                }
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
}
