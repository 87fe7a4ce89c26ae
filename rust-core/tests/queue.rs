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
