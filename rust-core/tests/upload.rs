//! End-to-end behaviour of the engine against the reference backend and a
//! real S3-protocol store on loopback: sizes, queues, pause/resume, cancel,
//! dedup and restarts.

mod common;

use common::*;
use s3bgu_core::{NewUpload, Selector, UploadState};
use s3bgu_testkit::Route;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_size_boundary_round_trips() {
    let h = harness().await;
    let e = env(&h, 4).await;
    let sizes = [0, 1, PART - 1, PART, PART + 1, 4 * PART + 12_345];
    let mut ids = Vec::new();
    for (i, size) in sizes.iter().enumerate() {
        let path = e.file(&format!("f{i}.bin"), *size);
        let u = e.add(&path, "sizes").await;
        assert_eq!(u.size, *size);
        assert_eq!(u.file_hash.len(), 32);
        ids.push((u.id, path, *size));
    }
    for (id, path, size) in &ids {
        let u = e.settle(*id).await;
        assert_eq!(u.state, UploadState::Completed, "{u:?}");
        let expected_parts = if *size == 0 {
            1
        } else {
            size.div_ceil(PART) as u32
        };
        assert_eq!(u.parts_total, expected_parts, "size {size}");
        assert_eq!(u.parts_done, expected_parts);
        assert_eq!(u.uploaded_bytes, *size);
        assert_eq!(u.part_size, Some(PART));
        assert_object(&h, &u, path);
        // Every part was sent exactly once (an empty file's one part as a
        // whole-object PUT: the reference backend's URL for it is PutObject).
        let upload_id = u.upload_id.as_deref().unwrap();
        if *size == 0 {
            assert_eq!(h.stats.object_puts(u.key.as_deref().unwrap()), 1);
            assert_eq!(h.stats.part_puts(upload_id, 1), 0);
        }
        for p in (1..=expected_parts).filter(|_| *size > 0) {
            assert_eq!(h.stats.part_puts(upload_id, p), 1, "size {size} part {p}");
        }
        let states = e.events.states_of(*id);
        assert_eq!(
            states,
            vec![
                UploadState::Pending,
                UploadState::Initialized,
                UploadState::Running,
                UploadState::Completed
            ],
            "size {size}"
        );
    }
    assert_eq!(
        h.stats.backend_calls(Route::StartUpload),
        sizes.len() as u32
    );
    assert_eq!(h.stats.backend_calls(Route::Complete), sizes.len() as u32);
    assert!(
        h.stats.part_put_headers_ok(),
        "every PUT has Content-Length, none is chunked"
    );
    let s = e.uploader.summary(Some("sizes".into())).await.unwrap();
    assert_eq!(s.completed, sizes.len() as u32);
    assert_eq!(s.completed_transfers, 1);
    assert_eq!(s.total_bytes, s.uploaded_bytes);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_files_in_several_transfers_share_one_limit() {
    let h = harness().await;
    let e = env(&h, 3).await;
    h.faults.delay_put_responses(Duration::from_millis(30));
    let mut all = Vec::new();
    for (t, n) in [("album-a", 3), ("album-b", 2), ("album-c", 1)] {
        for i in 0..n {
            let path = e.file(&format!("{t}-{i}.bin"), PART * 2 + i as u64 * 1000 + 1);
            all.push((e.add(&path, t).await, path));
        }
    }
    for (u, path) in &all {
        let done = e.settle(u.id).await;
        assert_eq!(done.state, UploadState::Completed, "{done:?}");
        assert_object(&h, &done, path);
    }
    assert!(
        h.stats.max_concurrent_puts() <= 3,
        "at most 3 parts in flight, saw {}",
        h.stats.max_concurrent_puts()
    );
    assert!(
        h.stats.max_concurrent_puts() >= 2,
        "parts did run in parallel"
    );
    let a = e.uploader.summary(Some("album-a".into())).await.unwrap();
    assert_eq!((a.uploads, a.completed, a.transfers), (3, 3, 1));
    let all_s = e.uploader.summary(None).await.unwrap();
    assert_eq!(
        (all_s.uploads, all_s.transfers, all_s.completed_transfers),
        (6, 3, 3)
    );
    let b = e
        .uploader
        .uploads(Selector::Transfer("album-b".into()))
        .await
        .unwrap();
    assert_eq!(b.len(), 2);
    assert!(b.iter().all(|u| u.transfer_id == "album-b"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oldest_file_goes_first_and_the_next_one_is_prepared_early() {
    let h = harness().await;
    let e = env(&h, 2).await;
    h.faults.delay_put_responses(Duration::from_millis(150));
    let first = e.file("first.bin", PART * 3);
    let second = e.file("second.bin", PART * 3);
    let u1 = e.add(&first, "t").await;
    let u2 = e.add(&second, "t").await;
    let d1 = e.settle(u1.id).await;
    let d2 = e.settle(u2.id).await;
    assert_eq!(
        (d1.state, d2.state),
        (UploadState::Completed, UploadState::Completed)
    );
    // The second file's startUpload happens while the first still has parts
    // to send: judged from the order the store saw (the second multipart
    // upload made before the first one's complete), not by polling, which a
    // loaded machine delays.
    let requests = h.stats.store_requests();
    let first_id = d1.upload_id.clone().unwrap();
    let creates: Vec<usize> = requests
        .iter()
        .enumerate()
        .filter(|(_, r)| r.method == "POST" && r.upload_id.is_none() && r.part.is_none())
        .map(|(i, _)| i)
        .collect();
    assert_eq!(creates.len(), 2, "two multipart uploads made: {requests:?}");
    let first_complete = requests
        .iter()
        .position(|r| r.method == "POST" && r.upload_id.as_deref() == Some(first_id.as_str()))
        .expect("the first file's complete reached the store");
    assert!(
        creates[1] < first_complete,
        "second file was prepared before the first finished"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_events_are_rate_limited() {
    let h = harness().await;
    let e = env(&h, 1).await;
    h.faults.delay_put_responses(Duration::from_millis(200));
    let path = e.file("p.bin", PART * 4);
    let u = e.add(&path, "t").await;
    let done = e.settle(u.id).await;
    assert_eq!(done.state, UploadState::Completed);
    let times = e.events.progress_times(u.id);
    assert!(times.len() >= 2, "progress was reported ({})", times.len());
    // At most 4 per second: consecutive events at least ~250 ms apart, except
    // the final one sent with the completion.
    let gaps: Vec<Duration> = times.windows(2).map(|w| w[1] - w[0]).collect();
    let short = gaps[..gaps.len() - 1]
        .iter()
        .filter(|g| **g < Duration::from_millis(240))
        .count();
    assert_eq!(short, 0, "gaps: {gaps:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_and_resume_keep_confirmed_parts() {
    let h = harness().await;
    let e = env(&h, 1).await;
    h.faults.delay_put_responses(Duration::from_millis(300));
    let path = e.file("pause.bin", PART * 4);
    let u = e.add(&path, "t").await;
    e.wait_for(u.id, "one part done", |u| u.parts_done >= 1)
        .await;
    let paused = e.uploader.pause(Selector::Upload(u.id)).await.unwrap();
    assert_eq!(paused.len(), 1);
    assert_eq!(paused[0].state, UploadState::Paused);
    let done_at_pause = e.get(u.id).await.parts_done;
    // Nothing new starts while paused.
    let puts = h.stats.total_part_puts();
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(h.stats.total_part_puts(), puts, "no PUT while paused");
    assert_eq!(e.get(u.id).await.state, UploadState::Paused);

    e.uploader.resume(Selector::Upload(u.id)).await.unwrap();
    let done = e.settle(u.id).await;
    assert_eq!(done.state, UploadState::Completed);
    assert_object(&h, &done, &path);
    let upload_id = done.upload_id.as_deref().unwrap();
    for p in 1..=done_at_pause {
        assert_eq!(
            h.stats.part_puts(upload_id, p),
            1,
            "part {p} confirmed before pause"
        );
    }
    let states = e.events.states_of(u.id);
    assert!(states.contains(&UploadState::Paused));
    assert_eq!(states.last(), Some(&UploadState::Completed));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_and_resume_by_transfer_and_all() {
    let h = harness().await;
    let e = env(&h, 2).await;
    // Slow enough that `a` is still running when it is paused, even on a
    // loaded machine.
    h.faults.delay_put_responses(Duration::from_millis(1000));
    let a = e.add(&e.file("a.bin", PART * 3), "ta").await;
    let b = e.add(&e.file("b.bin", PART * 3), "tb").await;
    let paused = e
        .uploader
        .pause(Selector::Transfer("ta".into()))
        .await
        .unwrap();
    assert_eq!(paused.iter().map(|u| u.id).collect::<Vec<_>>(), vec![a.id]);
    let done_b = e.settle(b.id).await;
    assert_eq!(done_b.state, UploadState::Completed);
    assert_eq!(e.get(a.id).await.state, UploadState::Paused);
    // Resuming everything touches only what was paused.
    let resumed = e.uploader.resume(Selector::All).await.unwrap();
    assert_eq!(resumed.iter().map(|u| u.id).collect::<Vec<_>>(), vec![a.id]);
    assert_eq!(e.settle(a.id).await.state, UploadState::Completed);
    // Unknown ids are a typed error.
    let err = e.uploader.pause(Selector::Upload(999)).await.unwrap_err();
    assert_eq!(err.code, s3bgu_core::ErrorCode::NotFound);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_stops_the_upload_and_reaches_abort() {
    let h = harness().await;
    let e = env(&h, 1).await;
    h.faults.delay_put_responses(Duration::from_millis(300));
    let path = e.file("cancel.bin", PART * 4);
    let u = e.add(&path, "t").await;
    e.wait_for(u.id, "started", |u| u.parts_done >= 1).await;
    let cancelled = e.uploader.cancel(Selector::Upload(u.id)).await.unwrap();
    assert_eq!(cancelled[0].state, UploadState::Cancelled);
    let deadline = Instant::now() + Duration::from_secs(20);
    while h.stats.backend_calls(Route::Abort) == 0 {
        assert!(Instant::now() < deadline, "abort never called");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let puts = h.stats.total_part_puts();
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(h.stats.total_part_puts(), puts, "no PUT after cancel");
    assert_eq!(h.stats.backend_calls(Route::Abort), 1);
    assert_eq!(h.stats.backend_calls(Route::Complete), 0);
    let u = e.get(u.id).await;
    assert_eq!(u.state, UploadState::Cancelled);
    assert!(h.object_bytes(u.key.as_deref().unwrap()).is_none());
    // A cancelled upload cannot be resumed, and cancelling again changes nothing.
    assert!(e
        .uploader
        .resume(Selector::Upload(u.id))
        .await
        .unwrap()
        .is_empty());
    assert!(e
        .uploader
        .cancel(Selector::Upload(u.id))
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_content_in_same_transfer_is_deduplicated() {
    let h = harness().await;
    let e = env(&h, 2).await;
    let path = e.file("dup.bin", 1000);
    let copy = e.dir.path().join("copy-of-dup.bin");
    std::fs::copy(&path, &copy).unwrap();
    // Slow parts, so the cancel below lands before the upload completes.
    h.faults.delay_put_responses(Duration::from_millis(300));
    let first = e.add(&path, "t1").await;
    let again = e.add(&copy, "t1").await;
    assert_eq!(
        first.id, again.id,
        "same content, same transfer: same upload"
    );
    let other = e.add(&path, "t2").await;
    assert_ne!(first.id, other.id, "another transfer gets its own upload");
    // A cancelled one does not block adding the content again.
    let cancelled = e.uploader.cancel(Selector::Upload(other.id)).await.unwrap();
    assert_eq!(cancelled.len(), 1, "cancelled while unfinished");
    // Still the same upload once completed.
    assert_eq!(e.settle(first.id).await.state, UploadState::Completed);
    assert_eq!(e.add(&path, "t1").await.id, first.id);
    let fresh = e.add(&path, "t2").await;
    assert_ne!(fresh.id, other.id);
    assert_eq!(e.settle(fresh.id).await.state, UploadState::Completed);
    assert_eq!(e.settle(other.id).await.state, UploadState::Cancelled);
    assert_eq!(
        e.uploader.uploads(Selector::All).await.unwrap().len(),
        3,
        "no duplicate rows"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reopening_the_queue_finishes_without_resending_confirmed_parts() {
    let h = harness().await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("queue.db");
    let path = write_file(dir.path(), "restart.bin", PART * 5 + 77, 3);
    h.faults.delay_put_responses(Duration::from_millis(250));
    let (id, confirmed) = {
        let up = open(&db);
        up.set_config(config_for(&h, 2)).await.unwrap();
        let u = up
            .add_file(NewUpload {
                path: path.clone(),
                transfer_id: "t".into(),
                ..NewUpload::default()
            })
            .await
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        let confirmed = loop {
            let now = up.uploads(Selector::Upload(u.id)).await.unwrap().remove(0);
            if now.parts_done >= 2 {
                break now.parts_done;
            }
            assert!(Instant::now() < deadline);
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        up.shutdown().await;
        (u.id, confirmed)
    };
    // What the database says was confirmed when the engine stopped.
    let committed: Vec<u32> = {
        let conn = rusqlite::Connection::open(&db).unwrap();
        let mut stmt = conn
            .prepare("SELECT number FROM parts WHERE upload = ?1 AND etag IS NOT NULL")
            .unwrap();
        stmt.query_map([id], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    };
    assert!(committed.len() as u32 >= confirmed);
    // A new engine on the same database: configuration and queue come back.
    let up = open(&db);
    let cfg = up.config().await.unwrap().expect("config persisted");
    assert_eq!(cfg.max_parts_in_flight, 2);
    let done = tokio::time::timeout(Duration::from_secs(60), up.wait_idle(Selector::Upload(id)))
        .await
        .unwrap()
        .unwrap()
        .remove(0);
    assert_eq!(done.state, UploadState::Completed, "{done:?}");
    assert_object(&h, &done, &path);
    let upload_id = done.upload_id.as_deref().unwrap();
    let resent: Vec<u32> = (1..=done.parts_total)
        .filter(|p| h.stats.part_puts(upload_id, *p) > 1)
        .collect();
    for p in &committed {
        assert!(
            !resent.contains(p),
            "part {p} was confirmed before the restart but sent again"
        );
    }
    assert!(
        resent.len() <= 2,
        "only the parts in flight at shutdown may be sent again: {resent:?}"
    );
    assert_eq!(
        h.stats.backend_calls(Route::StartUpload),
        1,
        "no second startUpload"
    );
    assert_eq!(h.stats.backend_calls(Route::Complete), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_engine_per_queue_and_read_only_snapshots() {
    let h = harness().await;
    let e = env(&h, 1).await;
    let second = s3bgu_core::Uploader::open(s3bgu_core::UploaderOptions::new(e.db()));
    let err = second
        .err()
        .expect("a second engine on the same queue is refused");
    assert_eq!(err.code, s3bgu_core::ErrorCode::Database);
    assert!(err.message.contains("in use"), "{}", err.message);

    h.faults.delay_put_responses(Duration::from_millis(200));
    let path = e.file("r.bin", PART * 2);
    let u = e.add(&path, "t").await;
    // Readable while the engine works.
    let snap = s3bgu_core::read_queue(&e.db()).unwrap();
    assert_eq!(snap.len(), 1);
    assert_eq!(snap[0].id, u.id);
    assert_eq!(snap[0].file_hash, u.file_hash);
    let done = e.settle(u.id).await;
    let snap = s3bgu_core::read_queue(&e.db()).unwrap();
    assert_eq!(snap[0].state, UploadState::Completed);
    assert_eq!(snap[0].uploaded_bytes, done.size);
    assert!(s3bgu_core::read_queue(&e.dir.path().join("nope.db")).is_err());
}
