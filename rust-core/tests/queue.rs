//! The queue over time: commands over many uploads, files added again after
//! a failure, multipart uploads that vanish at the store, startUpload answers
//! that arrive late, and finished uploads that are forgotten.

mod common;

use common::*;
use s3bgu_core::{Selector, UploadState, Uploader, UploaderOptions};

/// An engine that does not start work on its own (uploads stay PENDING).
async fn idle_env(h: &s3bgu_testkit::Harness) -> (tempfile::TempDir, Uploader) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut opts = UploaderOptions::new(dir.path().join("queue.db"));
    opts.start = false;
    let uploader = Uploader::open(opts).expect("open");
    uploader
        .set_config(config_for(h, 4))
        .await
        .expect("set_config");
    (dir, uploader)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_resume_cancel_of_many_uploads_commit_once_each() {
    let h = harness().await;
    let (dir, up) = idle_env(&h).await;
    for i in 0..100u64 {
        let p = write_file(dir.path(), &format!("f{i}.bin"), 16, i);
        add(&up, &p, "many").await.expect("add");
    }
    let commits = |s: s3bgu_core::EngineStatus| s.db_commits;
    let before = commits(up.status().await.unwrap());
    let paused = up.pause(Selector::All).await.unwrap();
    assert_eq!(paused.len(), 100);
    assert!(paused.iter().all(|u| u.state == UploadState::Paused));
    let after_pause = commits(up.status().await.unwrap());
    assert_eq!(after_pause - before, 1, "one commit for pausing 100 uploads");

    let resumed = up.resume(Selector::Transfer("many".into())).await.unwrap();
    assert_eq!(resumed.len(), 100);
    assert!(resumed.iter().all(|u| u.state == UploadState::Pending));
    let after_resume = commits(up.status().await.unwrap());
    assert_eq!(after_resume - after_pause, 1, "one commit for resuming 100");

    let cancelled = up.cancel(Selector::All).await.unwrap();
    assert_eq!(cancelled.len(), 100);
    let after_cancel = commits(up.status().await.unwrap());
    assert_eq!(after_cancel - after_resume, 1, "one commit for cancelling 100");
    let all = up.uploads(Selector::All).await.unwrap();
    assert!(all.iter().all(|u| u.state == UploadState::Cancelled));
}

/// A file moved after it was added fails its upload with `file_not_found`;
/// adding it again from its new place (as the message says) must give an
/// upload that completes, not the failed record with the old path.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_upload_added_again_from_its_new_path_completes() {
    let h = harness().await;
    let (dir, up) = idle_env(&h).await;
    let old = write_file(dir.path(), "clip.bin", 2 * PART + 7, 3);
    let first = add(&up, &old, "moves").await.expect("add");
    let moved = dir.path().join("moved-clip.bin");
    std::fs::rename(&old, &moved).unwrap();
    up.start().await.unwrap();
    let failed = wait_state(&up, first.id, |u| u.state == UploadState::Failed).await;
    assert_eq!(
        failed.error.as_ref().map(|e| e.code),
        Some(s3bgu_core::ErrorCode::FileNotFound),
        "{failed:?}"
    );

    let again = add(&up, &moved, "moves").await.expect("add again");
    assert_eq!(again.id, first.id, "the same upload, not a second one");
    assert_eq!(again.path, moved.to_string_lossy());
    assert!(again.state.is_active(), "usable again: {again:?}");
    assert!(again.error.is_none());
    let done = wait_state(&up, first.id, |u| !u.state.is_active()).await;
    assert_eq!(done.state, UploadState::Completed, "{done:?}");
    assert_object(&h, &done, &moved);

    // A second add of a non-failed upload still gives the existing one back.
    let same = add(&up, &moved, "moves").await.expect("add a third time");
    assert_eq!(same.id, first.id);
    assert_eq!(same.state, UploadState::Completed);
}

/// Polls an upload until `pred` holds (bounded).
async fn wait_state(
    up: &Uploader,
    id: i64,
    pred: impl Fn(&s3bgu_core::UploadInfo) -> bool,
) -> s3bgu_core::UploadInfo {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let u = up
            .uploads(Selector::Upload(id))
            .await
            .expect("uploads")
            .pop()
            .expect("upload exists");
        if pred(&u) {
            return u;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out: {u:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}
