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
    assert_eq!(
        after_pause - before,
        1,
        "one commit for pausing 100 uploads"
    );

    let resumed = up.resume(Selector::Transfer("many".into())).await.unwrap();
    assert_eq!(resumed.len(), 100);
    assert!(resumed.iter().all(|u| u.state == UploadState::Pending));
    let after_resume = commits(up.status().await.unwrap());
    assert_eq!(after_resume - after_pause, 1, "one commit for resuming 100");

    let cancelled = up.cancel(Selector::All).await.unwrap();
    assert_eq!(cancelled.len(), 100);
    let after_cancel = commits(up.status().await.unwrap());
    assert_eq!(
        after_cancel - after_resume,
        1,
        "one commit for cancelling 100"
    );
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
        assert!(std::time::Instant::now() < deadline, "timed out: {u:?}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// Finished uploads leave the engine's working set (the scheduler walks
/// only unfinished ones) yet answer queries; `forget` deletes them by id,
/// transfer or all, and refuses an unfinished one by name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finished_uploads_leave_the_working_set_and_can_be_forgotten() {
    let h = harness().await;
    let e = env(&h, 4).await;
    let mut done = Vec::new();
    for (i, transfer) in ["a", "a", "b", "b", "c"].iter().enumerate() {
        let p = e.file(&format!("f{i}.bin"), 1000 + i as u64);
        let u = e.add(&p, transfer).await;
        done.push(e.settle(u.id).await);
    }
    assert!(done.iter().all(|u| u.state == UploadState::Completed));
    // Stopped meanwhile: a 2000-byte upload could send its part (or
    // complete) before the pause.
    e.uploader.stop().await.unwrap();
    let p = e.file("held.bin", 2000);
    let held = e.add(&p, "a").await;
    e.uploader.pause(Selector::Upload(held.id)).await.unwrap();
    e.uploader.start().await.unwrap();
    // The cancel lands while startUpload is out (it could otherwise come
    // after a 3,000-byte upload had completed).
    h.faults
        .delay_start_answers(std::time::Duration::from_secs(3));
    let cancelled = e.add(&e.file("gone.bin", 3000), "c").await;
    e.uploader
        .cancel(Selector::Upload(cancelled.id))
        .await
        .unwrap();
    e.settle(cancelled.id).await;
    h.faults.delay_start_answers(std::time::Duration::ZERO);

    // The cancelled upload leaves once its startUpload answer and abort
    // call are through (they run after the cancel returned).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let status = loop {
        let status = e.uploader.status().await.unwrap();
        if status.tracked == 1 || std::time::Instant::now() > deadline {
            break status;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert_eq!(
        status.tracked, 1,
        "only the paused upload is worked on: {status:?}"
    );
    // Queries still see everything, from the database.
    let all = e.uploader.uploads(Selector::All).await.unwrap();
    assert_eq!(all.len(), 7);
    assert!(all.windows(2).all(|w| w[0].id < w[1].id), "queue order");
    let first = e.get(done[0].id).await;
    assert_eq!(first, done[0]);
    let s = e.uploader.summary(Some("a".into())).await.unwrap();
    assert_eq!((s.uploads, s.completed, s.paused), (3, 2, 1));
    assert_eq!(s.total_bytes, 1000 + 1001 + 2000);
    assert_eq!(s.uploaded_bytes, 1000 + 1001);
    let s = e.uploader.summary(None).await.unwrap();
    assert_eq!(
        (s.uploads, s.completed, s.cancelled, s.transfers),
        (7, 5, 1, 3)
    );
    assert_eq!(s.completed_transfers, 2, "b and c (a has a paused upload)");
    // Pausing a finished upload by id changes nothing and is no error.
    assert!(e
        .uploader
        .pause(Selector::Upload(done[0].id))
        .await
        .unwrap()
        .is_empty());

    let refused = e
        .uploader
        .forget(Selector::Upload(held.id))
        .await
        .unwrap_err();
    assert_eq!(
        refused.code,
        s3bgu_core::ErrorCode::InvalidArgument,
        "{refused}"
    );
    assert!(refused.message.contains("PAUSED"), "{}", refused.message);
    let unknown = e.uploader.forget(Selector::Upload(9999)).await.unwrap_err();
    assert_eq!(unknown.code, s3bgu_core::ErrorCode::NotFound);

    assert_eq!(
        e.uploader
            .forget(Selector::Upload(done[0].id))
            .await
            .unwrap(),
        1
    );
    assert!(e
        .uploader
        .uploads(Selector::Upload(done[0].id))
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        e.uploader
            .forget(Selector::Transfer("b".into()))
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        e.uploader.forget(Selector::All).await.unwrap(),
        3,
        "a, c and the cancelled one"
    );
    let left = e.uploader.uploads(Selector::All).await.unwrap();
    assert_eq!(left.iter().map(|u| u.id).collect::<Vec<_>>(), vec![held.id]);
    let s = e.uploader.summary(None).await.unwrap();
    assert_eq!((s.uploads, s.paused, s.transfers), (1, 1, 1));

    // A forgotten file added again is a new upload, sent again.
    let again = e
        .add(&write_file(e.dir.path(), "f0.bin", 1000, 0), "a")
        .await;
    assert_ne!(again.id, done[0].id);
    assert_eq!(e.settle(again.id).await.state, UploadState::Completed);
    drop(e);
}

/// Finished uploads older than `finishedRetentionMs` are deleted (here at
/// the next open); unfinished ones are kept whatever their age.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finished_uploads_past_their_retention_are_removed() {
    let h = harness().await;
    let e = env(&h, 4).await;
    let mut config = config_for(&h, 4);
    config.finished_retention_ms = 1;
    let old = e.add(&e.file("old.bin", 100), "r").await;
    assert_eq!(e.settle(old.id).await.state, UploadState::Completed);
    // Stopped first: a 200-byte upload could complete before the pause.
    e.uploader.stop().await.unwrap();
    let held = e.add(&e.file("held.bin", 200), "r").await;
    e.uploader.pause(Selector::Upload(held.id)).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    // Still there with the default retention (a week).
    let db = e.db();
    let Env { dir, uploader, .. } = e;
    uploader.shutdown().await;
    let up = open(&db);
    assert_eq!(up.uploads(Selector::All).await.unwrap().len(), 2);
    up.set_config(config).await.unwrap();
    up.shutdown().await;
    let up = open(&db);
    let left = up.uploads(Selector::All).await.unwrap();
    assert_eq!(left.iter().map(|u| u.id).collect::<Vec<_>>(), vec![held.id]);

    let bad = {
        let mut c = config_for(&h, 4);
        c.finished_retention_ms = u64::MAX;
        up.set_config(c).await.unwrap_err()
    };
    assert_eq!(bad.code, s3bgu_core::ErrorCode::InvalidConfig);
    assert!(
        bad.message.contains("finishedRetentionMs"),
        "{}",
        bad.message
    );
    drop(dir);
}

/// A lifecycle rule aborts the multipart upload halfway: parts answer 404
/// NoSuchUpload. The upload fails saying so and drops the dead multipart
/// upload; resume starts a fresh one and the object is whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_after_the_multipart_upload_vanished_starts_a_fresh_one() {
    let h = harness().await;
    let e = env(&h, 1).await;
    h.faults
        .delay_put_responses(std::time::Duration::from_millis(300));
    let path = e.file("big.bin", 3 * PART + 11);
    let u = e.add(&path, "gone").await;
    let running = e
        .wait_for(u.id, "a confirmed part", |u| u.parts_done >= 1)
        .await;
    let old = running.upload_id.clone().expect("multipart upload id");
    h.faults.abort_multipart_upload(&old);

    let failed = e.settle(u.id).await;
    assert_eq!(failed.state, UploadState::Failed, "{failed:?}");
    let error = failed.error.clone().expect("error");
    assert_eq!(error.code, s3bgu_core::ErrorCode::StorageRejected);
    assert!(
        error
            .message
            .contains("no longer has this multipart upload"),
        "{}",
        error.message
    );
    assert_eq!(
        failed.upload_id, None,
        "the dead multipart upload is dropped"
    );
    assert_eq!((failed.parts_done, failed.parts_total), (0, 0));

    h.faults.delay_put_responses(std::time::Duration::ZERO);
    e.uploader.resume(Selector::Upload(u.id)).await.unwrap();
    let done = e.settle(u.id).await;
    assert_eq!(done.state, UploadState::Completed, "{done:?}");
    let new = done.upload_id.clone().unwrap();
    assert_ne!(new, old);
    assert_object(&h, &done, &path);
    assert_eq!(h.stats.backend_calls(s3bgu_testkit::Route::StartUpload), 2);
    for p in 1..=4 {
        assert_eq!(
            h.stats.part_puts(&new, p),
            1,
            "part {p} of the fresh upload"
        );
    }
}

/// A power cut right after `complete` succeeded: the ETags were synced
/// before it went out, the COMPLETED state was not. After the restart the
/// engine sends complete again, and the store no longer knows the
/// multipart upload: a backend that relays that (NoSuchUpload, before it
/// finds the finished object) is asked again rather than taken at its
/// word. The upload ends COMPLETED on its first multipart upload, with no
/// part sent again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_such_upload_after_a_sent_complete_asks_to_complete_again() {
    use s3bgu_testkit::Route;
    let h = harness().await;
    let e = env(&h, 2).await;
    let path = e.file("cut.bin", 2 * PART + 7);
    let u = e.add(&path, "cut").await;
    let done = e.settle(u.id).await;
    assert_eq!(done.state, UploadState::Completed, "{done:?}");
    let db = e.db();
    let Env { dir, uploader, .. } = e;
    uploader.shutdown().await;

    // What the power cut leaves: the end's commit is gone, the parts' are not.
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute("UPDATE uploads SET state = 'RUNNING' WHERE id = ?1", [u.id])
        .unwrap();
    drop(conn);

    h.faults.fail_backend(
        Route::Complete,
        1,
        404,
        r#"{"error":"could not complete the upload: store answered 404 NoSuchUpload"}"#,
    );
    let up = open(&db);
    let again = tokio::time::timeout(
        std::time::Duration::from_secs(60),
        up.wait_idle(Selector::Upload(u.id)),
    )
    .await
    .expect("settles")
    .unwrap()
    .pop()
    .unwrap();
    assert_eq!(again.state, UploadState::Completed, "{again:?}");
    assert_eq!(again.upload_id, done.upload_id, "the same multipart upload");
    assert_object(&h, &again, &path);
    let id = done.upload_id.clone().unwrap();
    for p in 1..=3 {
        assert_eq!(h.stats.part_puts(&id, p), 1, "part {p} sent once");
    }
    assert_eq!(h.stats.backend_calls(Route::StartUpload), 1);
    up.shutdown().await;
    drop(dir);
}

/// startUpload's answer is slow; the upload is paused, cancelled or the
/// engine suspended meanwhile. The answer is still committed (pause,
/// suspend) or the multipart upload aborted through the backend (cancel):
/// no multipart upload is left orphaned at the store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_start_answer_is_kept_or_aborted_never_orphaned() {
    use s3bgu_testkit::Route;
    let h = harness().await;
    let e = env(&h, 2).await;
    h.faults
        .delay_start_answers(std::time::Duration::from_millis(400));
    let starts = || h.stats.backend_calls(Route::StartUpload);
    let wait_starts = |n: u32| async move {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while starts() < n {
            assert!(
                std::time::Instant::now() < deadline,
                "startUpload {n} never came"
            );
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    };

    // Pause while startUpload is in flight.
    let a = e.file("a.bin", 1000);
    let ua = e.add(&a, "late").await;
    wait_starts(1).await;
    e.uploader.pause(Selector::Upload(ua.id)).await.unwrap();
    let kept = e
        .wait_for(ua.id, "the late answer committed", |u| {
            u.upload_id.is_some()
        })
        .await;
    assert_eq!(kept.state, UploadState::Paused);

    // Suspend (checkpoint) while startUpload is in flight.
    let b = e.file("b.bin", 2000);
    let ub = e.add(&b, "late").await;
    wait_starts(2).await;
    e.uploader.suspend().await.unwrap();
    let kept_b = e
        .wait_for(ub.id, "the late answer committed", |u| {
            u.upload_id.is_some()
        })
        .await;
    assert_eq!(kept_b.state, UploadState::Initialized);

    // Cancel while startUpload is in flight: the late answer is aborted.
    e.uploader.start().await.unwrap();
    let c = e.file("c.bin", 3000);
    let uc = e.add(&c, "late").await;
    wait_starts(3).await;
    e.uploader.cancel(Selector::Upload(uc.id)).await.unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while h.stats.backend_calls(Route::Abort) < 1 {
        assert!(
            std::time::Instant::now() < deadline,
            "the orphan was never aborted"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let cancelled = e.get(uc.id).await;
    assert_eq!(cancelled.state, UploadState::Cancelled);
    let aborted: Vec<String> = h
        .stats
        .upload_ids_received()
        .into_iter()
        .filter(|(r, _)| *r == Route::Abort)
        .map(|(_, id)| id)
        .collect();
    assert_eq!(
        aborted,
        vec![cancelled.upload_id.clone().expect("recorded")]
    );

    // The kept ones finish on their first multipart upload.
    h.faults.delay_start_answers(std::time::Duration::ZERO);
    e.uploader.resume(Selector::Upload(ua.id)).await.unwrap();
    for (id, path) in [(ua.id, &a), (ub.id, &b)] {
        let done = e.settle(id).await;
        assert_eq!(done.state, UploadState::Completed, "{done:?}");
        assert_object(&h, &done, path);
    }
    assert_eq!(starts(), 3, "no second startUpload for a kept answer");
}

/// A cancel while startUpload is out, then the engine stops before the
/// answer comes: suspended (a background task's time is up) or offline.
/// The cancelled upload must not leave memory with its startUpload still
/// out: the late answer names a multipart upload, and exactly one abort
/// call must follow once the engine may work again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_during_start_then_suspend_or_offline_still_aborts_once() {
    use s3bgu_core::NetworkState;
    use s3bgu_testkit::Route;
    let h = harness().await;
    let e = env(&h, 2).await;
    h.faults
        .delay_start_answers(std::time::Duration::from_millis(800));
    let aborted = || -> Vec<String> {
        h.stats
            .upload_ids_received()
            .into_iter()
            .filter(|(r, _)| *r == Route::Abort)
            .map(|(_, id)| id)
            .collect()
    };
    let starts = || h.stats.backend_calls(Route::StartUpload);
    let wait_starts = |n: u32| async move {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while starts() < n {
            assert!(
                std::time::Instant::now() < deadline,
                "startUpload {n} never came"
            );
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    };

    let stops: [(&str, bool); 2] = [("suspend", true), ("offline", false)];
    for (i, (how, suspend)) in stops.into_iter().enumerate() {
        let u = e.add(&e.file(&format!("{how}.bin"), 1000), how).await;
        wait_starts(i as u32 + 1).await;
        e.uploader.cancel(Selector::Upload(u.id)).await.unwrap();
        if suspend {
            e.uploader.suspend().await.unwrap();
        } else {
            e.uploader.set_network(NetworkState {
                online: false,
                metered: false,
            });
        }
        // The answer arrives while the engine may not send anything.
        let late = e
            .wait_for(
                u.id,
                &format!("the late start answer recorded ({how})"),
                |u| u.upload_id.is_some(),
            )
            .await;
        assert_eq!(late.state, UploadState::Cancelled);
        assert_eq!(aborted().len(), i, "no abort while stopped ({how})");
        if suspend {
            e.uploader.start().await.unwrap();
        } else {
            e.uploader.set_network(NetworkState::default());
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while aborted().len() < i + 1 {
            assert!(
                std::time::Instant::now() < deadline,
                "the multipart upload was never aborted ({how})"
            );
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        // Forgetting it is possible once the abort is done: nothing left.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while e.uploader.forget(Selector::Upload(u.id)).await.is_err() {
            assert!(std::time::Instant::now() < deadline, "abort never recorded");
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert_eq!(aborted()[i], late.upload_id.clone().unwrap());
    }
    // Exactly one abort each, even with time for a repeat.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(h.stats.backend_calls(Route::Abort), 2);
    assert_eq!(starts(), 2);
}

/// A reopened queue longer than what its first pass loads: the first
/// uploads start while the rest is read on another thread, yet the first
/// command already sees the whole queue, in order, and every upload ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_queue_reopens_whole_and_in_order() {
    let h = harness().await;
    let (dir, up) = idle_env(&h).await;
    let mut ids = Vec::new();
    for i in 0..200u64 {
        let p = write_file(dir.path(), &format!("f{i}.bin"), 100 + i, i);
        ids.push(add(&up, &p, "long").await.expect("add").id);
    }
    // One paused in the tail: a command must find it although it was not
    // loaded by the first pass.
    up.pause(Selector::Upload(ids[150])).await.unwrap();
    up.shutdown().await;

    let up = open(&dir.path().join("queue.db"));
    let listed = up.uploads(Selector::All).await.unwrap();
    let listed_ids: Vec<i64> = listed.iter().map(|u| u.id).collect();
    assert_eq!(
        listed_ids, ids,
        "the first command sees the whole queue in order"
    );
    let resumed = up.resume(Selector::All).await.unwrap();
    assert_eq!(resumed.len(), 1, "the paused upload in the tail was found");
    assert_eq!(resumed[0].id, ids[150]);
    let done = tokio::time::timeout(
        std::time::Duration::from_secs(120),
        up.wait_idle(Selector::Transfer("long".into())),
    )
    .await
    .expect("the queue drains within 120 s")
    .unwrap();
    assert_eq!(done.len(), 200);
    assert!(
        done.iter().all(|u| u.state == UploadState::Completed),
        "{done:?}"
    );
    up.shutdown().await;
}
