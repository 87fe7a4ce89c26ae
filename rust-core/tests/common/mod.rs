//! Shared set-up for the engine's integration tests: a harness (reference
//! backend + embedded S3 store on loopback) and an uploader pointed at it.

#![allow(dead_code)]

use s3bgu_core::{
    Config, NewUpload, RetryPolicy, Selector, UploadEvent, UploadInfo, UploadListener, UploadState,
    Uploader, UploaderOptions,
};
use s3bgu_testkit::{Harness, HarnessOptions};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub mod opener;
pub mod transport;

pub const MIB: u64 = 1024 * 1024;
/// The harness's part size (S3's smallest legal one for every part but the last).
pub const PART: u64 = 5 * MIB;

pub async fn harness() -> Harness {
    Harness::start(HarnessOptions::default()).await
}

pub async fn harness_with_ttl(ttl: Duration) -> Harness {
    Harness::start(HarnessOptions {
        url_ttl: ttl,
        ..HarnessOptions::default()
    })
    .await
}

/// Fast retries so fault tests finish quickly.
pub fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 4,
        base_delay_ms: 10,
        max_delay_ms: 100,
        max_url_refreshes: 3,
        request_timeout_ms: 10_000,
        stall_timeout_ms: 10_000,
    }
}

pub fn config_for(h: &Harness, parts_in_flight: u32) -> Config {
    let mut c = Config::for_base_url(&h.backend_url);
    c.max_parts_in_flight = parts_in_flight;
    c.retry = fast_retry();
    c
}

pub struct Env {
    pub dir: tempfile::TempDir,
    pub uploader: Uploader,
    pub events: Arc<Events>,
}

impl Env {
    pub fn db(&self) -> PathBuf {
        self.dir.path().join("queue.db")
    }

    pub fn file(&self, name: &str, size: u64) -> PathBuf {
        write_file(self.dir.path(), name, size, 0)
    }

    pub async fn add(&self, path: &Path, transfer: &str) -> UploadInfo {
        add(&self.uploader, path, transfer).await.expect("add_file")
    }

    pub async fn get(&self, id: i64) -> UploadInfo {
        upload_of(&self.uploader, id).await
    }

    /// Waits until the upload is no longer active (bounded).
    pub async fn settle(&self, id: i64) -> UploadInfo {
        tokio::time::timeout(
            Duration::from_secs(60),
            self.uploader.wait_idle(Selector::Upload(id)),
        )
        .await
        .expect("upload settles within 60 s")
        .expect("wait_idle");
        self.get(id).await
    }

    /// Polls until `pred` holds for the upload (bounded).
    pub async fn wait_for(
        &self,
        id: i64,
        what: &str,
        pred: impl Fn(&UploadInfo) -> bool,
    ) -> UploadInfo {
        wait_for_upload(&self.uploader, id, what, pred).await
    }
}

/// The upload as the uploader lists it.
pub async fn upload_of(uploader: &Uploader, id: i64) -> UploadInfo {
    uploader
        .uploads(Selector::Upload(id))
        .await
        .expect("uploads")
        .pop()
        .expect("upload exists")
}

/// Polls until `pred` holds for the upload (bounded: 60 s).
pub async fn wait_for_upload(
    uploader: &Uploader,
    id: i64,
    what: &str,
    pred: impl Fn(&UploadInfo) -> bool,
) -> UploadInfo {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let u = upload_of(uploader, id).await;
        if pred(&u) {
            return u;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {u:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub async fn env(h: &Harness, parts_in_flight: u32) -> Env {
    let dir = tempfile::tempdir().expect("tempdir");
    let uploader = open(&dir.path().join("queue.db"));
    uploader
        .set_config(config_for(h, parts_in_flight))
        .await
        .expect("set_config");
    let events = Arc::new(Events::default());
    uploader.set_listener(Some(events.clone()));
    Env {
        dir,
        uploader,
        events,
    }
}

/// Adds `path` to `transfer` with no user params.
pub async fn add(
    uploader: &Uploader,
    path: &Path,
    transfer: &str,
) -> Result<UploadInfo, s3bgu_core::UploadError> {
    uploader
        .add_file(NewUpload {
            path: path.to_path_buf(),
            transfer_id: transfer.into(),
            ..NewUpload::default()
        })
        .await
}

pub fn open(db: &Path) -> Uploader {
    Uploader::open(UploaderOptions::new(db)).expect("open uploader")
}

/// Deterministic content that differs per `seed` and per offset.
pub fn content(size: u64, seed: u64) -> Vec<u8> {
    let mut x = 0x9E37_79B9_7F4A_7C15u64 ^ seed.wrapping_mul(0xD6E8_FEB8_6659_FD93);
    (0..size)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

pub fn write_file(dir: &Path, name: &str, size: u64, seed: u64) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, content(size, seed ^ name.len() as u64 ^ size)).expect("write file");
    p
}

/// Records every event.
#[derive(Default)]
pub struct Events {
    pub all: Mutex<Vec<(Instant, UploadEvent)>>,
}

impl UploadListener for Events {
    fn on_event(&self, event: &UploadEvent) {
        self.all
            .lock()
            .unwrap()
            .push((Instant::now(), event.clone()));
    }
}

impl Events {
    pub fn states_of(&self, id: i64) -> Vec<UploadState> {
        self.all
            .lock()
            .unwrap()
            .iter()
            .filter_map(|(_, e)| match e {
                UploadEvent::StateChanged(u) if u.id == id => Some(u.state),
                _ => None,
            })
            .collect()
    }

    pub fn progress_times(&self, id: i64) -> Vec<Instant> {
        self.all
            .lock()
            .unwrap()
            .iter()
            .filter_map(|(t, e)| match e {
                UploadEvent::Progress(p) if p.id == id => Some(*t),
                _ => None,
            })
            .collect()
    }
}

/// Asserts the stored object equals the file.
pub fn assert_object(h: &Harness, u: &UploadInfo, path: &Path) {
    let key = u.key.as_deref().expect("key");
    let stored = h.object_bytes(key).expect("object exists in the store");
    let local = std::fs::read(path).expect("read file");
    assert_eq!(stored.len(), local.len(), "object size of {key}");
    assert!(
        stored == local,
        "object bytes of {key} differ from the file"
    );
}
