//! Answers held back until the queue database is on storage (group commit,
//! see `store/durable.rs`): one WAL sync per pass of the engine covers every
//! command and finished upload of that pass.

use super::{Engine, Reply};
use crate::error::UploadError;

/// Something to tell the outside world once the pass's commits are synced;
/// given the sync's error if the sync failed.
pub(super) type AfterSync = Box<dyn FnOnce(Option<&UploadError>) + Send>;

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

    /// Syncs the queue database if anyone waits for it, then lets the
    /// waiting answers and events go. Called once per pass.
    pub(super) fn release_when_durable(&mut self) {
        if self.after_sync.is_empty() {
            return;
        }
        let failed = self.store.make_durable().err().map(|e| {
            let e = UploadError::from(e);
            tracing::error!(code = %e.code, "{}", e.message);
            e
        });
        for f in std::mem::take(&mut self.after_sync) {
            f(failed.as_ref());
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::store::synced_for_test;
    use crate::{Config, NewUpload, Uploader, UploaderOptions};

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
}
