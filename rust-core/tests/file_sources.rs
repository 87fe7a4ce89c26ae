//! Files only the platform can open: uploads added as `content://` URIs and
//! read through a file opener that hands over real descriptors, against the
//! reference backend and the signature-checking store on loopback.

mod common;

use common::*;
use s3bgu_core::{
    ErrorCode, FileOpenError, FileOpener, NewUpload, OpenedFile, Selector, UploadInfo, UploadState,
    Uploader, UploaderOptions,
};
use s3bgu_testkit::Route;
use std::collections::HashMap;
use std::os::fd::IntoRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const PREFIX: &str = "content://test/";

/// What the test opener does for one name instead of opening the file.
#[derive(Clone, Copy, Debug)]
enum Fault {
    Gone,
    /// Opens normally this many times (counting every call so far), then
    /// answers `Gone`: the file disappears mid-upload.
    GoneAfter(u32),
    Revoked,
    /// Panics, as a foreign exception would without its error type.
    Panic,
    /// Hands over the read end of a pipe.
    Pipe,
    /// Returns a number that is no open descriptor.
    BadFd,
    /// Answers once after 4 s (then normally), like a stuck provider.
    SlowOnce,
}

/// Maps `content://test/<name>` to `<dir>/<name>` and returns descriptors
/// from `File::into_raw_fd`, like Android's `detachFd()`.
struct TestOpener {
    dir: PathBuf,
    faults: Mutex<HashMap<String, Fault>>,
    calls: Mutex<HashMap<String, u32>>,
    total: AtomicU32,
}

impl TestOpener {
    fn new(dir: &Path) -> Arc<TestOpener> {
        Arc::new(TestOpener {
            dir: dir.to_path_buf(),
            faults: Mutex::default(),
            calls: Mutex::default(),
            total: AtomicU32::new(0),
        })
    }

    fn fault(&self, name: &str, fault: Option<Fault>) {
        let mut f = self.faults.lock().unwrap();
        match fault {
            Some(x) => f.insert(name.to_string(), x),
            None => f.remove(name),
        };
    }

    fn calls(&self, name: &str) -> u32 {
        self.calls.lock().unwrap().get(name).copied().unwrap_or(0)
    }
}

impl FileOpener for TestOpener {
    fn open_file(&self, uri: String) -> Result<OpenedFile, FileOpenError> {
        self.open_fd(uri).map(OpenedFile::from)
    }
}

impl TestOpener {
    fn open_fd(&self, uri: String) -> Result<i32, FileOpenError> {
        let name = uri
            .strip_prefix(PREFIX)
            .ok_or_else(|| FileOpenError::Failed {
                reason: "unknown provider".into(),
            })?
            .to_string();
        let call = {
            let mut calls = self.calls.lock().unwrap();
            let n = calls.entry(name.clone()).or_default();
            *n += 1;
            *n
        };
        self.total.fetch_add(1, Ordering::Relaxed);
        let fault = match self.faults.lock().unwrap().get(&name).copied() {
            Some(Fault::GoneAfter(n)) if call <= n => None,
            Some(Fault::GoneAfter(_)) => Some(Fault::Gone),
            other => other,
        };
        match fault {
            Some(Fault::Gone | Fault::GoneAfter(_)) => Err(FileOpenError::Gone {
                reason: format!("no such document: {uri}"),
            }),
            Some(Fault::Revoked) => Err(FileOpenError::PermissionRevoked {
                reason: "grant revoked".into(),
            }),
            Some(Fault::Panic) => panic!("the opener threw"),
            Some(Fault::BadFd) => Ok(1_000_000),
            Some(Fault::SlowOnce) => {
                self.fault(&name, None);
                std::thread::sleep(Duration::from_secs(4));
                let f = std::fs::File::open(self.dir.join(&name)).unwrap();
                Ok(f.into_raw_fd())
            }
            Some(Fault::Pipe) => {
                let mut fds = [0i32; 2];
                // SAFETY: pipe() fills the two descriptors it creates.
                assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
                // The write end stays with the "provider": close it here.
                // SAFETY: fds[1] was just created and is closed once.
                unsafe { libc::close(fds[1]) };
                Ok(fds[0])
            }
            None => match std::fs::File::open(self.dir.join(&name)) {
                Ok(f) => Ok(f.into_raw_fd()),
                Err(e) => Err(FileOpenError::Gone {
                    reason: e.to_string(),
                }),
            },
        }
    }
}

fn uri(name: &str) -> String {
    format!("{PREFIX}{name}")
}

async fn add_uri(
    up: &Uploader,
    name: &str,
    transfer: &str,
) -> Result<UploadInfo, s3bgu_core::UploadError> {
    up.add_file(NewUpload {
        path: uri(name).into(),
        transfer_id: transfer.into(),
        ..NewUpload::default()
    })
    .await
}

async fn get(up: &Uploader, id: i64) -> UploadInfo {
    up.uploads(Selector::Upload(id)).await.unwrap().remove(0)
}

async fn settle(up: &Uploader, id: i64) -> UploadInfo {
    tokio::time::timeout(Duration::from_secs(60), up.wait_idle(Selector::Upload(id)))
        .await
        .expect("settles within 60 s")
        .unwrap()
        .remove(0)
}

async fn wait_for(
    up: &Uploader,
    id: i64,
    what: &str,
    pred: impl Fn(&UploadInfo) -> bool,
) -> UploadInfo {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let u = get(up, id).await;
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

fn committed_parts(db: &Path, id: i64) -> Vec<u32> {
    let conn = rusqlite::Connection::open(db).unwrap();
    let mut stmt = conn
        .prepare("SELECT number FROM parts WHERE upload = ?1 AND etag IS NOT NULL")
        .unwrap();
    stmt.query_map([id], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uri_uploads_are_byte_identical() {
    let h = harness().await;
    let e = env(&h, 3).await;
    let opener = TestOpener::new(e.dir.path());
    e.uploader.set_file_opener(Some(opener.clone()));
    let files = [
        ("clip.mp4", PART * 3 + 12_345),
        ("small.jpg", PART - 1),
        ("tiny.txt", 1),
    ];
    let mut added = Vec::new();
    for (name, size) in files {
        let path = e.file(name, size);
        let u = add_uri(&e.uploader, name, "uris").await.unwrap();
        assert_eq!(u.path, uri(name), "the URI is what the upload shows");
        assert_eq!(u.file_name, name, "the name comes from the URI");
        assert_eq!(u.size, size);
        assert_eq!(u.file_hash, s3bgu_core::hash_file(&path).unwrap());
        assert_eq!(
            s3bgu_core::hash_uri(&uri(name), opener.as_ref()).unwrap(),
            u.file_hash
        );
        added.push((u, path));
    }
    // A path upload in the same queue is not affected.
    let plain = e.file("plain.bin", PART + 5);
    let p = e.add(&plain, "uris").await;
    for (u, path) in &added {
        let done = e.settle(u.id).await;
        assert_eq!(done.state, UploadState::Completed, "{:?}", done.error);
        assert_object(&h, &done, path);
        let upload_id = done.upload_id.as_deref().unwrap();
        for n in 1..=done.parts_total {
            assert_eq!(
                h.stats.part_puts(upload_id, n),
                1,
                "{} part {n}",
                done.file_name
            );
        }
        // Asked again for every part (none kept open): hash at add, the
        // hash_uri above, then one open per part PUT.
        let name = &done.file_name;
        assert_eq!(opener.calls(name), 2 + done.parts_total, "{name}");
    }
    let done = e.settle(p.id).await;
    assert_eq!(done.state, UploadState::Completed);
    assert_object(&h, &done, &plain);
    assert!(h.stats.max_concurrent_puts() <= 3);
    assert!(h.stats.part_put_headers_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adding_a_uri_needs_an_opener_and_a_seekable_file() {
    let h = harness().await;
    let e = env(&h, 2).await;
    e.file("a.bin", 10);
    let no_opener = add_uri(&e.uploader, "a.bin", "t").await.unwrap_err();
    assert_eq!(
        no_opener.code,
        ErrorCode::InvalidConfig,
        "{}",
        no_opener.message
    );
    let opener = TestOpener::new(e.dir.path());
    e.uploader.set_file_opener(Some(opener.clone()));
    let missing = add_uri(&e.uploader, "missing.bin", "t").await.unwrap_err();
    assert_eq!(missing.code, ErrorCode::FileNotFound, "{}", missing.message);
    opener.fault("a.bin", Some(Fault::Pipe));
    let pipe = add_uri(&e.uploader, "a.bin", "t").await.unwrap_err();
    assert_eq!(pipe.code, ErrorCode::FileUnreadable, "{}", pipe.message);
    assert!(pipe.message.contains("a pipe"), "{}", pipe.message);
    assert!(pipe.message.contains("copy the file"), "{}", pipe.message);
    for (fault, code) in [
        (Fault::BadFd, ErrorCode::FileUnreadable),
        (Fault::Panic, ErrorCode::FileUnreadable),
        (Fault::Revoked, ErrorCode::FileUnreadable),
        (Fault::Gone, ErrorCode::FileNotFound),
    ] {
        opener.fault("a.bin", Some(fault));
        let err = add_uri(&e.uploader, "a.bin", "t").await.unwrap_err();
        assert_eq!(err.code, code, "{fault:?}: {}", err.message);
        assert!(err.message.contains("copy the file"), "{}", err.message);
    }
    assert!(e.uploader.uploads(Selector::All).await.unwrap().is_empty());
    // The engine is still fine after all that.
    opener.fault("a.bin", None);
    let u = add_uri(&e.uploader, "a.bin", "t").await.unwrap();
    assert_eq!(e.settle(u.id).await.state, UploadState::Completed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_uri_that_becomes_a_pipe_fails_alone_and_says_to_copy_first() {
    let h = harness().await;
    let dir = tempfile::tempdir().unwrap();
    let up = Uploader::open(UploaderOptions {
        start: false,
        ..UploaderOptions::new(dir.path().join("queue.db"))
    })
    .unwrap();
    up.set_config(config_for(&h, 2)).await.unwrap();
    let opener = TestOpener::new(dir.path());
    up.set_file_opener(Some(opener.clone()));
    write_file(dir.path(), "stream.bin", PART + 10, 1);
    let others: Vec<(String, PathBuf)> = ["x.bin", "y.bin"]
        .iter()
        .map(|n| (n.to_string(), write_file(dir.path(), n, PART * 2 + 1, 2)))
        .collect();
    let s = add_uri(&up, "stream.bin", "t").await.unwrap();
    let mut ids = Vec::new();
    for (n, p) in &others {
        ids.push((add_uri(&up, n, "t").await.unwrap().id, p.clone()));
    }
    // The provider now streams it: no positioned reads.
    opener.fault("stream.bin", Some(Fault::Pipe));
    up.start().await.unwrap();
    let failed = settle(&up, s.id).await;
    assert_eq!(failed.state, UploadState::Failed);
    let err = failed.error.unwrap();
    assert_eq!(err.code, ErrorCode::FileUnreadable, "{}", err.message);
    assert!(err.message.contains("a pipe"), "{}", err.message);
    assert!(err.message.contains("copy the file"), "{}", err.message);
    assert!(
        err.message.contains("content://test/stream.bin"),
        "{}",
        err.message
    );
    for (id, path) in ids {
        let done = settle(&up, id).await;
        assert_eq!(done.state, UploadState::Completed, "{:?}", done.error);
        assert_object(&h, &done, &path);
    }
    up.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_opener_failing_mid_upload_fails_that_upload_which_resumes_later() {
    let h = harness().await;
    let e = env(&h, 2).await;
    let opener = TestOpener::new(e.dir.path());
    e.uploader.set_file_opener(Some(opener.clone()));
    // The hash at add and the first two parts open; the third open finds
    // the file gone (with 2 parts in flight, part 3 starts after one is committed).
    opener.fault("big.bin", Some(Fault::GoneAfter(3)));
    let big = e.file("big.bin", PART * 6);
    let u = add_uri(&e.uploader, "big.bin", "t").await.unwrap();
    let other = e.file("other.bin", PART * 2);
    let o = add_uri(&e.uploader, "other.bin", "others").await.unwrap();
    let gone = e.settle(u.id).await;
    assert_eq!(gone.state, UploadState::Failed);
    let err = gone.error.clone().unwrap();
    assert_eq!(err.code, ErrorCode::FileNotFound, "{}", err.message);
    assert!(err.message.contains("is gone"), "{}", err.message);
    let before = committed_parts(&e.db(), u.id);
    assert!(!before.is_empty());

    // Each failure of the opener is typed; none takes the engine down.
    for (fault, code, words) in [
        (Fault::Revoked, ErrorCode::FileUnreadable, "permission"),
        (Fault::Panic, ErrorCode::FileUnreadable, "opener failed"),
        (
            Fault::BadFd,
            ErrorCode::FileUnreadable,
            "no open descriptor",
        ),
    ] {
        opener.fault("big.bin", Some(fault));
        e.uploader.resume(Selector::Upload(u.id)).await.unwrap();
        let again = e.settle(u.id).await;
        assert_eq!(again.state, UploadState::Failed, "{fault:?}");
        let err = again.error.unwrap();
        assert_eq!(err.code, code, "{fault:?}: {}", err.message);
        assert!(err.message.contains(words), "{fault:?}: {}", err.message);
    }
    let done_other = e.settle(o.id).await;
    assert_eq!(
        done_other.state,
        UploadState::Completed,
        "{:?}",
        done_other.error
    );
    assert_object(&h, &done_other, &other);

    // The opener works again: resume finishes without resending confirmed parts.
    opener.fault("big.bin", None);
    e.uploader.resume(Selector::Upload(u.id)).await.unwrap();
    let done = e.settle(u.id).await;
    assert_eq!(done.state, UploadState::Completed, "{:?}", done.error);
    assert_object(&h, &done, &big);
    let upload_id = done.upload_id.as_deref().unwrap();
    for p in before {
        assert_eq!(
            h.stats.part_puts(upload_id, p),
            1,
            "part {p} was confirmed, then sent again"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_restart_uri_uploads_wait_for_the_opener_then_finish() {
    let h = harness().await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("queue.db");
    let path = write_file(dir.path(), "movie.mp4", PART * 5 + 77, 3);
    h.faults.delay_put_responses(Duration::from_millis(250));
    let id = {
        let up = open(&db);
        up.set_config(config_for(&h, 2)).await.unwrap();
        up.set_file_opener(Some(TestOpener::new(dir.path())));
        let u = add_uri(&up, "movie.mp4", "t").await.unwrap();
        wait_for(&up, u.id, "two parts done", |u| u.parts_done >= 2).await;
        up.shutdown().await;
        u.id
    };
    let committed = committed_parts(&db, id);
    assert!(committed.len() >= 2);
    let puts_before = h.stats.total_part_puts();

    // A background launch: the queue opens and starts before the platform
    // registers its opener.
    let up = open(&db);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let waiting = get(&up, id).await;
    assert!(waiting.state.is_active(), "{waiting:?}");
    assert_eq!(waiting.error, None);
    assert_eq!(
        h.stats.total_part_puts(),
        puts_before,
        "no part sent without an opener"
    );
    let status = up.status().await.unwrap();
    assert_eq!(status.active, 1);

    let opener = TestOpener::new(dir.path());
    up.set_file_opener(Some(opener.clone()));
    let done = settle(&up, id).await;
    assert_eq!(done.state, UploadState::Completed, "{:?}", done.error);
    assert_eq!(done.path, uri("movie.mp4"));
    assert_object(&h, &done, &path);
    assert!(
        opener.calls("movie.mp4") >= 1,
        "the new engine asked the opener again"
    );
    let upload_id = done.upload_id.as_deref().unwrap();
    for p in &committed {
        assert_eq!(
            h.stats.part_puts(upload_id, *p),
            1,
            "part {p} confirmed before the restart was sent again"
        );
    }
    assert_eq!(h.stats.backend_calls(Route::StartUpload), 1);
    assert_eq!(h.stats.backend_calls(Route::Complete), 1);
    up.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_uri_whose_file_changed_after_add_fails_with_file_changed() {
    let h = harness().await;
    let dir = tempfile::tempdir().unwrap();
    let up = Uploader::open(UploaderOptions {
        start: false,
        ..UploaderOptions::new(dir.path().join("queue.db"))
    })
    .unwrap();
    up.set_config(config_for(&h, 2)).await.unwrap();
    up.set_file_opener(Some(TestOpener::new(dir.path())));
    let path = write_file(dir.path(), "edited.bin", PART + 10, 1);
    let u = add_uri(&up, "edited.bin", "t").await.unwrap();
    // Same name, other content and size: the descriptor's fstat tells.
    std::fs::write(&path, content(PART + 20, 9)).unwrap();
    up.start().await.unwrap();
    let done = settle(&up, u.id).await;
    assert_eq!(done.state, UploadState::Failed);
    let err = done.error.unwrap();
    assert_eq!(err.code, ErrorCode::FileChanged, "{}", err.message);
    assert!(
        err.message.contains("content://test/edited.bin"),
        "{}",
        err.message
    );
    assert_eq!(
        h.stats.total_part_puts(),
        0,
        "no byte of the new content was sent"
    );
    up.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_opener_that_hangs_costs_an_attempt_not_the_slot() {
    let h = harness().await;
    let e = env(&h, 1).await;
    let mut config = config_for(&h, 1);
    config.retry.stall_timeout_ms = 1_000;
    e.uploader.set_config(config).await.unwrap();
    let opener = TestOpener::new(e.dir.path());
    e.uploader.set_file_opener(Some(opener.clone()));
    let path = e.file("stuck.bin", PART + 1);
    // Stopped while the fault is set: on a loaded machine both parts could
    // otherwise be opened before it is.
    e.uploader.stop().await.unwrap();
    let u = add_uri(&e.uploader, "stuck.bin", "t").await.unwrap();
    opener.fault("stuck.bin", Some(Fault::SlowOnce));
    e.uploader.start().await.unwrap();
    let done = e.settle(u.id).await;
    assert_eq!(done.state, UploadState::Completed, "{:?}", done.error);
    assert_object(&h, &done, &path);
    // Add, the stuck open (given up on), then one open per part at least.
    assert!(
        opener.calls("stuck.bin") >= 2 + done.parts_total,
        "{} opens",
        opener.calls("stuck.bin")
    );
}

/// A hanging opener in direct mode: every attempt that gives up on it
/// leaves its call behind on a blocking thread, from the pool that also
/// runs the queue's syncs and the hashing of adds. Those calls are bounded
/// per engine, so after many attempts the engine still answers and a path
/// upload added afterwards completes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_opener_cannot_use_up_the_engines_threads() {
    use common::opener::{gated_uri, GatedOpener};
    let h = harness().await;
    let dir = tempfile::tempdir().unwrap();
    let up = open(&dir.path().join("queue.db"));
    up.stop().await.unwrap();
    let mut config = config_for(&h, s3bgu_core::MAX_PARTS_IN_FLIGHT);
    config.retry.max_attempts = 30;
    config.retry.base_delay_ms = 10;
    config.retry.max_delay_ms = 50;
    config.retry.stall_timeout_ms = 100;
    up.set_config(config).await.unwrap();
    let opener = GatedOpener::new(dir.path());
    up.set_file_opener(Some(opener.clone()));
    // As many parts as may be in flight, so every slot tries the opener.
    let parts = u64::from(s3bgu_core::MAX_PARTS_IN_FLIGHT);
    std::fs::File::create(dir.path().join("stuck.bin"))
        .unwrap()
        .set_len(parts * PART)
        .unwrap();
    let stuck = up
        .add_file(NewUpload {
            path: gated_uri("stuck.bin").into(),
            transfer_id: "t".into(),
            ..NewUpload::default()
        })
        .await
        .unwrap();
    opener.hold();
    up.start().await.unwrap();
    // Each part is tried until its attempts are used up: hundreds of
    // attempts in all, every one of them on an opener that never answers.
    let failed = wait_for(&up, stuck.id, "the stuck upload to fail", |u| {
        u.state == UploadState::Failed
    })
    .await;

    let answers = Duration::from_secs(60);
    tokio::time::timeout(answers, up.set_config(config_for(&h, 2)))
        .await
        .expect("set_config() answers after the opener hung many times")
        .unwrap();
    let path = write_file(dir.path(), "plain.bin", PART + 3, 4);
    let plain = tokio::time::timeout(
        answers,
        up.add_file(NewUpload {
            path: path.clone(),
            transfer_id: "t".into(),
            ..NewUpload::default()
        }),
    )
    .await
    .expect("add_file() answers after the opener hung many times")
    .unwrap();
    let done = settle(&up, plain.id).await;
    assert_eq!(done.state, UploadState::Completed, "{:?}", done.error);
    assert_object(&h, &done, &path);

    assert!(
        opener.peak() <= s3bgu_core::MAX_OPENER_CALLS as u32,
        "{} opener calls at once",
        opener.peak()
    );
    // Giving up on the opener is a typed, retried failure of the part.
    let err = failed.error.unwrap();
    assert_eq!(err.code, ErrorCode::FileUnreadable, "{}", err.message);
    assert!(err.message.contains("took longer than"), "{}", err.message);
    assert!(err.message.contains("gave up after"), "{}", err.message);
    opener.release();
    up.shutdown().await;
}

/// Adds of URIs are hashed at most `MAX_FILES_HASHING` at a time, as adds
/// of paths are: each hash reads a whole file through the opener.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uri_adds_are_hashed_at_most_two_at_a_time() {
    use common::opener::{gated_uri, GatedOpener};
    let h = harness().await;
    let dir = tempfile::tempdir().unwrap();
    let up = Uploader::open(UploaderOptions {
        start: false,
        ..UploaderOptions::new(dir.path().join("queue.db"))
    })
    .unwrap();
    up.set_config(config_for(&h, 2)).await.unwrap();
    let opener = GatedOpener::new(dir.path());
    // Long enough that adds made together overlap if nothing holds them.
    opener.set_delay(Duration::from_millis(100));
    up.set_file_opener(Some(opener.clone()));
    let names: Vec<String> = (0..8u64)
        .map(|i| {
            let name = format!("f{i}.bin");
            write_file(dir.path(), &name, 1000 + i, i);
            name
        })
        .collect();
    let adds = names.iter().map(|n| {
        up.add_file(NewUpload {
            path: gated_uri(n).into(),
            transfer_id: "t".into(),
            ..NewUpload::default()
        })
    });
    for added in futures_util::future::join_all(adds).await {
        added.unwrap();
    }
    assert_eq!(opener.calls(), names.len() as u32);
    assert!(
        opener.peak() <= s3bgu_core::MAX_FILES_HASHING as u32,
        "{} URIs hashed at once",
        opener.peak()
    );
    up.shutdown().await;
}

/// The retry attempts stored for an upload's parts.
fn stored_attempts(db: &Path, id: i64) -> u32 {
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.query_row(
        "SELECT COALESCE(SUM(attempts), 0) FROM parts WHERE upload = ?1",
        [id],
        |r| r.get(0),
    )
    .unwrap()
}

/// iOS data protection: while the device is locked, its files are refused
/// (the opener answers `PermissionRevoked`). Reported unavailable, that is
/// "not now": the upload waits with no attempt counted, more refusals than
/// the retry policy's attempts fail nothing, and once protected data is
/// reported available again it finishes, byte-identical, each part sent
/// once. Reported available, the same refusal fails the upload as before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_locked_by_data_protection_waits_for_the_unlock() {
    let h = harness().await;
    let e = env(&h, 1).await;
    let opener = TestOpener::new(e.dir.path());
    e.uploader.set_file_opener(Some(opener.clone()));
    let path = e.file("clip.mov", PART * 5 + 123);
    h.faults.delay_puts(Duration::from_millis(200));
    let u = add_uri(&e.uploader, "clip.mov", "t").await.unwrap();
    wait_for(&e.uploader, u.id, "a part sent", |x| x.parts_done >= 1).await;

    // The device locks: the platform reports it, then files are refused.
    e.uploader.set_protected_data_available(false);
    opener.fault("clip.mov", Some(Fault::Revoked));
    let locked_at = opener.calls("clip.mov");
    let waiting = wait_for(&e.uploader, u.id, "waiting for the unlock", |x| {
        x.error.is_some()
    })
    .await;
    assert_eq!(waiting.state, UploadState::Running);
    let why = waiting.error.clone().unwrap();
    assert_eq!(why.code, ErrorCode::FileUnreadable);
    assert!(why.message.contains("unlocked"), "{}", why.message);
    // More refusals than the policy's attempts (fast_retry: 4): none counts.
    let deadline = Instant::now() + Duration::from_secs(60);
    while opener.calls("clip.mov") < locked_at + 6 {
        assert!(Instant::now() < deadline, "the engine stopped asking");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let s = e.uploader.status().await.unwrap();
        if s.idle_reason() == Some(s3bgu_core::IdleReason::WaitingForUnlock) {
            assert_eq!(s.waiting_for_unlock, 1);
            break;
        }
        assert!(Instant::now() < deadline, "never idle for the lock: {s:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let during = get(&e.uploader, u.id).await;
    assert_eq!(during.state, UploadState::Running);
    assert!(during.parts_done < during.parts_total);
    assert_eq!(stored_attempts(&e.db(), u.id), 0, "no attempt counted");
    eprintln!(
        "figures locked: {} refused opens, {} of {} parts done",
        opener.calls("clip.mov") - locked_at,
        during.parts_done,
        during.parts_total
    );

    // Unlocked: the platform reports it; the wait ends at once.
    h.faults.delay_puts(Duration::ZERO);
    opener.fault("clip.mov", None);
    e.uploader.set_protected_data_available(true);
    let resumed = get(&e.uploader, u.id).await;
    assert_eq!(resumed.error, None, "the waiting text is gone");
    assert_eq!(e.uploader.status().await.unwrap().waiting_for_unlock, 0);
    let done = e.settle(u.id).await;
    assert_eq!(done.state, UploadState::Completed, "{:?}", done.error);
    assert_object(&h, &done, &path);
    let upload_id = done.upload_id.as_deref().unwrap();
    for n in 1..=done.parts_total {
        assert_eq!(h.stats.part_puts(upload_id, n), 1, "part {n}");
    }

    // Protected data available: a refusal is the failure it always was.
    let other = e.file("other.mov", PART + 7);
    let o = add_uri(&e.uploader, "other.mov", "t").await.unwrap();
    opener.fault("other.mov", Some(Fault::Revoked));
    let failed = e.settle(o.id).await;
    assert_eq!(failed.state, UploadState::Failed);
    let err = failed.error.unwrap();
    assert_eq!(err.code, ErrorCode::FileUnreadable, "{}", err.message);
    assert!(err.message.contains("permission"), "{}", err.message);
    assert!(!err.message.contains("unlocked"), "{}", err.message);
    drop(other);
}

/// The same in hand-off mode (iOS in the background): staging a part opens
/// the file. Refused while the device is locked, nothing is staged or
/// handed off and nothing fails; once unlocked, every part is staged,
/// carried by the transport and stored once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locked_file_waits_unstaged_in_handoff_mode() {
    use common::transport::TestTransport;
    let h = harness().await;
    let e = env(&h, 2).await;
    let opener = TestOpener::new(e.dir.path());
    e.uploader.set_file_opener(Some(opener.clone()));
    let t = Arc::new(TestTransport::default());
    t.set_reporter(e.uploader.task_reporter());
    e.uploader.set_part_transport(
        Some(t.clone() as Arc<dyn s3bgu_core::PartTransport>),
        s3bgu_core::HandoffSettings::default(),
    );
    e.uploader.set_handoff(true).await.unwrap();
    e.uploader.set_protected_data_available(false);
    let path = e.file("clip.mov", PART * 3 + 5);
    let u = add_uri(&e.uploader, "clip.mov", "t").await.unwrap();
    opener.fault("clip.mov", Some(Fault::Revoked));
    let waiting = wait_for(&e.uploader, u.id, "waiting for the unlock", |x| {
        x.error.is_some()
    })
    .await;
    assert_eq!(waiting.state, UploadState::Running);
    assert!(
        waiting.error.unwrap().message.contains("unlocked"),
        "the record says why"
    );
    let refused_at = opener.calls("clip.mov");
    let deadline = Instant::now() + Duration::from_secs(60);
    while opener.calls("clip.mov") < refused_at + 2 {
        assert!(Instant::now() < deadline, "never asked again");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let s = e.uploader.status().await.unwrap();
    assert_eq!(s.waiting_for_unlock, 1);
    assert!(t.submitted.lock().unwrap().is_empty(), "nothing handed off");
    assert_eq!(stored_attempts(&e.db(), u.id), 0, "no attempt counted");

    opener.fault("clip.mov", None);
    e.uploader.set_protected_data_available(true);
    let done = e.settle(u.id).await;
    assert_eq!(done.state, UploadState::Completed, "{:?}", done.error);
    assert_object(&h, &done, &path);
    let upload_id = done.upload_id.as_deref().unwrap();
    for n in 1..=done.parts_total {
        assert_eq!(h.stats.part_puts(upload_id, n), 1, "part {n}");
    }
    assert_eq!(
        t.submitted.lock().unwrap().len() as u32,
        done.parts_total,
        "each part handed off once"
    );
}

/// Should the report of the unlock never come, a waiting upload is tried
/// again after the retry backoff; once its file reads, it goes on and its
/// record no longer says it waits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wait_for_the_unlock_ends_after_the_backoff_without_a_report() {
    let h = harness().await;
    let e = env(&h, 1).await;
    let opener = TestOpener::new(e.dir.path());
    e.uploader.set_file_opener(Some(opener.clone()));
    e.uploader.set_protected_data_available(false);
    let path = e.file("clip.mov", PART * 2 + 9);
    let u = add_uri(&e.uploader, "clip.mov", "t").await.unwrap();
    opener.fault("clip.mov", Some(Fault::Revoked));
    wait_for(&e.uploader, u.id, "waiting for the unlock", |x| {
        x.error.is_some()
    })
    .await;
    // Unlocked, but the platform's report is lost.
    opener.fault("clip.mov", None);
    let done = e.settle(u.id).await;
    assert_eq!(done.state, UploadState::Completed, "{:?}", done.error);
    assert_eq!(done.error, None);
    assert_object(&h, &done, &path);
    let upload_id = done.upload_id.as_deref().unwrap();
    for n in 1..=done.parts_total {
        assert_eq!(h.stats.part_puts(upload_id, n), 1, "part {n}");
    }
    assert_eq!(e.uploader.status().await.unwrap().waiting_for_unlock, 0);
}
