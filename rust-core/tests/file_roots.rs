//! Stable file locations and replaceable URIs, against the reference
//! backend and the signature-checking store: a file under a registered
//! root follows the root when an app update moves the container; an upload
//! whose root is not registered waits; an opener's replacement URI (a
//! refreshed bookmark) is kept and used from then on, also after a restart.

mod common;

use common::*;
use s3bgu_core::{
    bookmark_data, bookmark_file_name, bookmark_uri, ErrorCode, FileOpenError, FileOpener,
    FileRoot, NewUpload, OpenedFile, Selector, UploadInfo, UploadState, Uploader,
};
use std::os::fd::IntoRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn root(name: &str, path: &Path) -> FileRoot {
    FileRoot {
        name: name.into(),
        path: path.to_string_lossy().into_owned(),
    }
}

async fn info(u: &Uploader, id: i64) -> UploadInfo {
    u.uploads(Selector::Upload(id))
        .await
        .expect("uploads")
        .pop()
        .expect("upload exists")
}

/// Polls (bounded) until `pred` holds.
async fn wait_until(what: &str, mut pred: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !pred().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn settle(u: &Uploader, id: i64) -> UploadInfo {
    tokio::time::timeout(Duration::from_secs(90), u.wait_idle(Selector::Upload(id)))
        .await
        .expect("upload settles within 90 s")
        .expect("wait_idle");
    info(u, id).await
}

/// The scheduler's passes over `window`: a loop that picks a waiting
/// upload again and again makes thousands; a sleeping one a handful.
async fn passes_during(u: &Uploader, window: Duration) -> u64 {
    let before = u.status().await.unwrap().scheduler_passes;
    tokio::time::sleep(window).await;
    u.status().await.unwrap().scheduler_passes - before
}

/// An app update moves the container while a file under its Documents is
/// half uploaded: the reopened queue, told the new Documents path, sends
/// only the parts not confirmed, each exactly once, and the object is the
/// file. Before the roots are registered again the upload waits (its path
/// shown as stored, relative to its root) and nothing is sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn container_moved_by_an_update_loses_nothing() {
    const PARTS: u32 = 7;
    let h = harness().await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("queue.db");
    let old_container = dir.path().join("container-A");
    let old_docs = old_container.join("Documents");
    std::fs::create_dir_all(&old_docs).unwrap();
    let old_file = write_file(&old_docs, "video.bin", u64::from(PARTS - 1) * PART + 123, 7);

    let u = open(&db);
    u.set_config(config_for(&h, 1)).await.unwrap();
    u.set_file_roots(vec![
        root("documents", &old_docs),
        root("tmp", &old_container.join("tmp")),
    ])
    .unwrap();
    // Slow parts, so that the upload is surely caught halfway.
    h.faults.delay_puts(Duration::from_millis(250));
    let added = add(&u, &old_file, "t").await.unwrap();
    assert_eq!(added.path, old_file.to_string_lossy(), "shown resolved");
    let id = added.id;
    wait_until("three parts confirmed", async || {
        info(&u, id).await.parts_done >= 3
    })
    .await;
    // The roots go (the app is about to be updated): nothing new starts,
    // the part in flight ends, and the upload waits instead of failing.
    u.set_file_roots(Vec::new()).unwrap();
    wait_until("the engine's own work done", async || {
        !u.status().await.unwrap().engine_busy
    })
    .await;
    let halfway = info(&u, id).await;
    assert_eq!(halfway.state, UploadState::Running, "{halfway:?}");
    assert_eq!(
        halfway.path, "documents/video.bin",
        "stored form while unregistered"
    );
    assert!(
        (3..PARTS).contains(&halfway.parts_done),
        "{} of {PARTS} parts done",
        halfway.parts_done
    );
    let upload_id = halfway.upload_id.clone().unwrap();
    let puts_before = h.stats.total_part_puts();
    assert_eq!(
        puts_before, halfway.parts_done,
        "no part in flight at close"
    );
    u.shutdown().await;

    // The update: the whole container is somewhere else now.
    let new_container = dir.path().join("container-B");
    std::fs::rename(&old_container, &new_container).unwrap();
    let new_docs = new_container.join("Documents");
    let new_file = new_docs.join("video.bin");
    assert!(!old_file.exists());

    let u = open(&db);
    let reopened = info(&u, id).await;
    assert_eq!(reopened.state, UploadState::Running, "{reopened:?}");
    assert_eq!(reopened.path, "documents/video.bin");
    assert!(
        passes_during(&u, Duration::from_millis(1500)).await < 50,
        "the loop sleeps while the root is unknown"
    );
    assert_eq!(
        h.stats.total_part_puts(),
        puts_before,
        "nothing sent without the root"
    );
    assert!(info(&u, id).await.error.is_none());

    u.set_file_roots(vec![root("documents", &new_docs)])
        .unwrap();
    assert_eq!(
        info(&u, id).await.path,
        new_file.to_string_lossy(),
        "shown at the new path"
    );
    h.faults.delay_puts(Duration::ZERO);
    let done = settle(&u, id).await;
    assert_eq!(done.state, UploadState::Completed, "{done:?}");
    assert_eq!(done.path, new_file.to_string_lossy());
    assert_object(&h, &done, &new_file);
    for n in 1..=PARTS {
        assert_eq!(h.stats.part_puts(&upload_id, n), 1, "PUTs of part {n}");
    }
    u.shutdown().await;
}

/// A background launch before the platform registered its roots: the
/// upload under a root waits without failing or spinning, then finishes
/// once the roots are set.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_under_a_root_not_registered_waits_then_finishes() {
    let h = harness().await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("queue.db");
    let files = dir.path().join("files");
    std::fs::create_dir_all(&files).unwrap();
    let f = write_file(&files, "a.bin", 2 * PART + 9, 3);
    let u = open(&db);
    u.set_config(config_for(&h, 2)).await.unwrap();
    u.stop().await.unwrap();
    u.set_file_roots(vec![root("files", &files)]).unwrap();
    let id = add(&u, &f, "t").await.unwrap().id;
    u.shutdown().await;

    let u = open(&db);
    assert!(
        passes_during(&u, Duration::from_millis(1500)).await < 50,
        "the loop sleeps while the root is unknown"
    );
    let waiting = info(&u, id).await;
    assert!(waiting.state.is_active(), "{waiting:?}");
    assert_eq!(waiting.path, "files/a.bin");
    assert_eq!(h.stats.total_part_puts(), 0);

    u.set_file_roots(vec![root("files", &files)]).unwrap();
    let done = settle(&u, id).await;
    assert_eq!(done.state, UploadState::Completed, "{done:?}");
    assert_object(&h, &done, &f);
    assert_eq!(h.stats.total_part_puts(), 3);
    u.shutdown().await;
}

/// Roots are compared by path components (a sibling whose name starts
/// like a root is not under it), and bad roots are refused, changing
/// nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roots_match_whole_components_and_bad_ones_are_refused() {
    let h = harness().await;
    let e = env(&h, 1).await;
    let base = e.dir.path().join("x");
    for d in ["a/b", "a/bc"] {
        std::fs::create_dir_all(base.join(d)).unwrap();
    }
    let inside = write_file(&base.join("a/b"), "in.bin", 10, 1);
    let sibling = write_file(&base.join("a/bc"), "out.bin", 10, 2);
    e.uploader.stop().await.unwrap();
    e.uploader
        .set_file_roots(vec![root("b", &base.join("a/b"))])
        .unwrap();
    for bad in [
        vec![root("no spaces", &base)],
        vec![FileRoot {
            name: "rel".into(),
            path: "relative/dir".into(),
        }],
        vec![root("b", &base), root("b", &base)],
    ] {
        let err = e.uploader.set_file_roots(bad.clone()).unwrap_err();
        assert_eq!(
            err.code,
            ErrorCode::InvalidArgument,
            "{bad:?}: {}",
            err.message
        );
    }
    let a = e.add(&inside, "t").await;
    let b = e.add(&sibling, "t").await;
    assert_eq!(a.path, inside.to_string_lossy());
    assert_eq!(b.path, sibling.to_string_lossy());
    // With no roots, what was stored shows: relative to `b`, or absolute.
    e.uploader.set_file_roots(Vec::new()).unwrap();
    assert_eq!(e.get(a.id).await.path, "b/in.bin");
    assert_eq!(e.get(b.id).await.path, sibling.to_string_lossy());
    // The refused calls left `b` in place: registered again, both finish.
    e.uploader
        .set_file_roots(vec![root("b", &base.join("a/b"))])
        .unwrap();
    e.uploader.start().await.unwrap();
    for (u, f) in [(a, &inside), (b, &sibling)] {
        let done = e.settle(u.id).await;
        assert_eq!(done.state, UploadState::Completed, "{done:?}");
        assert_object(&h, &done, f);
    }
}

/// Opens `bookmark://` URIs made with the engine's own format: the name is
/// the file in `dir`, the data a generation number. A URI of generation 1
/// is stale: opened, but answered with a generation-2 replacement once
/// `stale_from` calls were made. Every URI asked for is recorded.
struct RefreshingOpener {
    dir: PathBuf,
    stale_from: u32,
    calls: AtomicU32,
    asked: Mutex<Vec<String>>,
}

impl RefreshingOpener {
    fn new(dir: &Path, stale_from: u32) -> Arc<RefreshingOpener> {
        Arc::new(RefreshingOpener {
            dir: dir.to_path_buf(),
            stale_from,
            calls: AtomicU32::new(0),
            asked: Mutex::default(),
        })
    }

    fn asked(&self) -> Vec<String> {
        self.asked.lock().unwrap().clone()
    }
}

impl FileOpener for RefreshingOpener {
    fn open_file(&self, uri: String) -> Result<OpenedFile, FileOpenError> {
        let call = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        self.asked.lock().unwrap().push(uri.clone());
        let (Some(name), Some(data)) = (bookmark_file_name(&uri), bookmark_data(&uri)) else {
            return Err(FileOpenError::Failed {
                reason: "not a bookmark".into(),
            });
        };
        let file = std::fs::File::open(self.dir.join(&name)).map_err(|e| FileOpenError::Gone {
            reason: e.to_string(),
        })?;
        let replacement_uri =
            (data == [1] && call >= self.stale_from).then(|| bookmark_uri(&name, &[2]));
        Ok(OpenedFile {
            fd: file.into_raw_fd(),
            replacement_uri,
        })
    }
}

async fn add_uri(u: &Uploader, uri: &str) -> UploadInfo {
    u.add_file(NewUpload {
        path: uri.into(),
        transfer_id: "t".into(),
        ..NewUpload::default()
    })
    .await
    .expect("add_file")
}

/// A stale bookmark refreshed by the opener: when the refresh comes with
/// the first open of a part, the engine keeps the new URI and every later
/// open uses it, in this run and after a restart; when it comes at add,
/// the new URI is what is stored. Both uploads complete.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_bookmark_is_replaced_and_the_replacement_used_from_then_on() {
    let h = harness().await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("queue.db");
    // A name with a `:` keeps it through the URI.
    let name = "clip:take 1.mov";
    let f = write_file(dir.path(), name, 6 * PART + 5, 11);
    let stale = bookmark_uri(name, &[1]);
    let fresh = bookmark_uri(name, &[2]);

    let u = open(&db);
    u.set_config(config_for(&h, 1)).await.unwrap();
    // Call 1 hashes the file at add; call 2, the first part, is answered
    // with the refreshed bookmark.
    let opener = RefreshingOpener::new(dir.path(), 2);
    u.set_file_opener(Some(opener.clone()));
    h.faults.delay_puts(Duration::from_millis(200));
    let added = add_uri(&u, &stale).await;
    assert_eq!(added.path, stale);
    assert_eq!(added.file_name, name, "the display name is whole");
    let id = added.id;
    wait_until("two parts confirmed", async || {
        info(&u, id).await.parts_done >= 2
    })
    .await;
    assert_eq!(info(&u, id).await.path, fresh, "the replacement is kept");
    u.shutdown().await;
    let asked = opener.asked();
    assert!(asked.len() >= 3, "{asked:?}");
    assert_eq!(&asked[..2], &[stale.clone(), stale.clone()]);
    assert!(
        asked[2..].iter().all(|a| *a == fresh),
        "every open after the refresh uses it: {asked:?}"
    );

    // After a restart only the new URI is asked for.
    let u = open(&db);
    let opener = RefreshingOpener::new(dir.path(), 1);
    u.set_file_opener(Some(opener.clone()));
    h.faults.delay_puts(Duration::ZERO);
    let done = settle(&u, id).await;
    assert_eq!(done.state, UploadState::Completed, "{done:?}");
    assert_eq!(done.path, fresh);
    assert_object(&h, &done, &f);
    let asked = opener.asked();
    assert!(!asked.is_empty());
    assert!(asked.iter().all(|a| *a == fresh), "{asked:?}");

    // Refreshed already when it is added: the new URI is what is stored.
    let other = "other.bin";
    let g = write_file(dir.path(), other, PART + 1, 12);
    let added = add_uri(&u, &bookmark_uri(other, &[1])).await;
    assert_eq!(added.path, bookmark_uri(other, &[2]));
    let done = settle(&u, added.id).await;
    assert_eq!(done.state, UploadState::Completed, "{done:?}");
    assert_object(&h, &done, &g);
    u.shutdown().await;
}

/// A replacement that is not a URI for the opener (a path, a `file://`
/// URI) is ignored: the upload keeps its URI and completes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replacement_that_is_no_opener_uri_is_ignored() {
    struct BadReplacement(PathBuf);
    impl FileOpener for BadReplacement {
        fn open_file(&self, _uri: String) -> Result<OpenedFile, FileOpenError> {
            let file = std::fs::File::open(&self.0).unwrap();
            Ok(OpenedFile {
                fd: file.into_raw_fd(),
                replacement_uri: Some(format!("file://{}", self.0.display())),
            })
        }
    }
    let h = harness().await;
    let e = env(&h, 2).await;
    let f = e.file("b.bin", PART + 3);
    e.uploader
        .set_file_opener(Some(Arc::new(BadReplacement(f.clone()))));
    let uri = "content://docs/b.bin";
    let added = add_uri(&e.uploader, uri).await;
    assert_eq!(added.path, uri);
    let done = e.settle(added.id).await;
    assert_eq!(done.state, UploadState::Completed, "{done:?}");
    assert_eq!(done.path, uri);
    assert_object(&h, &done, &f);
}
