//! Part hand-off to the platform's transport (iOS background URLSession),
//! with a transport written in the test (its own HTTP client and threads,
//! reading the staged files), against the reference backend and the
//! signature-checking store.

mod common;

use common::transport::{dir_bytes, dir_files, Act, TestTransport};
use common::*;
use s3bgu_core::{
    ErrorCode, HandoffSettings, IdleReason, NetworkPolicy, PartTransport, Selector, TaskOutcome,
    UploadState, Uploader,
};
use s3bgu_testkit::{Harness, Route};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

fn staging_dir(e: &Env) -> PathBuf {
    e.dir.path().join("queue.db.staging")
}

fn settings(budget: u64) -> HandoffSettings {
    HandoffSettings {
        staging_budget: budget,
        ..HandoffSettings::default()
    }
}

/// Registers a fresh test transport on the uploader.
fn attach(u: &Uploader, dir: PathBuf, budget: u64) -> Arc<TestTransport> {
    let t = Arc::new(TestTransport::default());
    t.set_reporter(u.task_reporter());
    t.watch_staging(dir);
    u.set_part_transport(Some(t.clone() as Arc<dyn PartTransport>), settings(budget));
    t
}

async fn run_bounded(u: &Uploader) -> IdleReason {
    tokio::time::timeout(Duration::from_secs(90), u.run_until_idle())
        .await
        .expect("run_until_idle returns within 90 s")
        .expect("run_until_idle")
}

/// Runs until no upload is active, reporting a bounded number of times.
async fn run_to_end(u: &Uploader) {
    for _ in 0..200 {
        match run_bounded(u).await {
            IdleReason::Idle => return,
            IdleReason::HandedOff => tokio::time::sleep(Duration::from_millis(20)).await,
            other => panic!("unexpected idle reason {other:?}"),
        }
    }
    panic!("uploads did not finish");
}

fn assert_each_part_put_once(h: &Harness, upload_id: &str, parts: u32) {
    for n in 1..=parts {
        assert_eq!(h.stats.part_puts(upload_id, n), 1, "PUTs of part {n}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handed_off_parts_upload_whole_files_within_the_staging_budget() {
    let h = harness().await;
    let e = env(&h, 2).await;
    let budget = 3 * PART;
    let t = attach(&e.uploader, staging_dir(&e), budget);
    e.uploader.set_handoff(true).await.unwrap();
    let files = [
        e.file("a.bin", 4 * PART + 12_345),
        e.file("b.bin", PART + 1),
        e.file("c.bin", 777),
    ];
    let mut ids = Vec::new();
    for f in &files {
        ids.push(e.add(f, "t").await.id);
    }
    run_to_end(&e.uploader).await;
    let mut parts = 0;
    for (id, f) in ids.iter().zip(&files) {
        let u = e.get(*id).await;
        assert_eq!(u.state, UploadState::Completed, "{u:?}");
        assert_object(&h, &u, f);
        assert_each_part_put_once(&h, u.upload_id.as_deref().unwrap(), u.parts_total);
        parts += u.parts_total;
    }
    let status = e.uploader.status().await.unwrap();
    assert_eq!(status.tasks_handed_off_total, u64::from(parts));
    assert_eq!(t.submitted.lock().unwrap().len(), parts as usize);
    assert!(
        status.staging_peak <= budget,
        "peak {}",
        status.staging_peak
    );
    assert!(t.staged_peak.load(Ordering::Relaxed) <= budget);
    assert!(
        status.staging_peak > PART,
        "several parts were staged at once"
    );
    assert_eq!(status.staged_bytes, 0);
    assert_eq!(dir_files(&staging_dir(&e)), 0, "no staged file is left");
    let bytes: u64 = files
        .iter()
        .map(|f| std::fs::metadata(f).unwrap().len())
        .sum();
    eprintln!(
        "hand-off: files {}, bytes {bytes}, tasks handed off {}, parts re-sent 0, staging peak {} of {budget}",
        files.len(),
        status.tasks_handed_off_total,
        status.staging_peak
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn complete_goes_out_in_the_wake_up_that_reports_the_last_part() {
    let h = harness().await;
    let e = env(&h, 2).await;
    let t = attach(&e.uploader, staging_dir(&e), 8 * PART);
    t.hold();
    e.uploader.set_handoff(true).await.unwrap();
    let f = e.file("w.bin", 2 * PART + 99);
    let id = e.add(&f, "t").await.id;
    // Everything is handed off: the app may be suspended.
    assert_eq!(run_bounded(&e.uploader).await, IdleReason::HandedOff);
    let held = t.take_held();
    assert_eq!(held.len(), 3);
    e.uploader.suspend().await.unwrap();

    // The system uploads while the app is suspended, then wakes it and
    // the platform reports every task.
    let http = reqwest::Client::new();
    for task in &held {
        let outcome = common::transport::execute(&http, task, Act::Put).await;
        e.uploader.report_task(task.task_id.clone(), outcome);
    }
    assert_eq!(h.stats.backend_calls(Route::Complete), 0);
    assert_eq!(run_bounded(&e.uploader).await, IdleReason::Idle);
    let u = e.get(id).await;
    assert_eq!(u.state, UploadState::Completed);
    assert_eq!(h.stats.backend_calls(Route::Complete), 1);
    assert_object(&h, &u, &f);
    assert_eq!(dir_files(&staging_dir(&e)), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_stalled_refused_and_etagless_tasks_follow_the_contract() {
    let h = harness().await;
    let e = env(&h, 2).await;
    let t = attach(&e.uploader, staging_dir(&e), 2 * PART);
    // At the transport: a lost connection and a stall; at the store: two
    // 503s with Retry-After-less XML, a 403 (new URL) and a 2xx without ETag.
    t.script(&[Act::Fail, Act::Stall]);
    h.faults.fail_puts(2, 503);
    h.faults.fail_puts(1, 403);
    h.faults.strip_etags(1);
    e.uploader.set_handoff(true).await.unwrap();
    let f = e.file("f.bin", 3 * PART);
    let id = e.add(&f, "t").await.id;
    run_to_end(&e.uploader).await;
    let u = e.get(id).await;
    assert_eq!(u.state, UploadState::Completed, "{u:?}");
    assert_object(&h, &u, &f);
    // 3 parts; 6 faults each cost one more task.
    assert_eq!(t.submitted.lock().unwrap().len(), 3 + 6);
    // The 403 made the engine fetch a new URL for that part.
    let asked: usize = h.stats.requested_parts().iter().map(Vec::len).sum();
    assert!(asked >= 4, "URLs asked: {:?}", h.stats.requested_parts());
    assert_eq!(dir_files(&staging_dir(&e)), 0);

    // Failing for good: the upload fails with the contract's code, its
    // tasks and files go.
    h.faults.fail_puts(100, 503);
    let g = e.file("g.bin", PART + 5);
    let id = e.add(&g, "t").await.id;
    let u = e.settle(id).await;
    assert_eq!(u.state, UploadState::Failed);
    let err = u.error.unwrap();
    assert_eq!(err.code, ErrorCode::StorageUnavailable, "{}", err.message);
    assert!(err.message.contains("503"), "{}", err.message);
    assert!(!err.message.contains("X-Amz-Signature"), "{}", err.message);
    assert_eq!(e.uploader.status().await.unwrap().tasks_handed_off, 0);
    common::transport::wait_no_files(&staging_dir(&e)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn switching_between_direct_and_hand_off_mid_upload_loses_nothing() {
    let h = harness().await;
    let e = env(&h, 2).await;
    h.faults.delay_put_responses(Duration::from_millis(300));
    let t = attach(&e.uploader, staging_dir(&e), 2 * PART);
    t.hold();
    let f = e.file("s.bin", 8 * PART + 3);
    let id = e.add(&f, "t").await.id;
    // Direct first.
    e.wait_for(id, "a part done directly", |u| u.parts_done >= 1)
        .await;
    // Into hand-off: the direct PUTs stop, parts go to the transport.
    e.uploader.set_handoff(true).await.unwrap();
    assert_eq!(run_bounded(&e.uploader).await, IdleReason::HandedOff);
    let handed = e.uploader.status().await.unwrap().tasks_handed_off;
    assert_eq!(handed, 2, "the budget holds two parts");
    let done_before = e.get(id).await.parts_done;
    // Back to direct: the engine sends the rest, the handed-off tasks run
    // on the side and their ETags count too.
    e.uploader.set_handoff(false).await.unwrap();
    t.release();
    let u = e.settle(id).await;
    assert_eq!(u.state, UploadState::Completed, "{u:?}");
    assert_object(&h, &u, &f);
    assert!(done_before >= 1);
    let status = e.uploader.status().await.unwrap();
    assert_eq!(status.tasks_handed_off, 0);
    assert!(status.tasks_handed_off_total >= 2);
    assert_eq!(dir_files(&staging_dir(&e)), 0);
    // The switch stops the direct PUTs in flight (at most 2); their parts
    // may be handed off and reach the store a second time, but nothing
    // else is sent twice.
    let upload_id = u.upload_id.unwrap();
    for task in t.submitted.lock().unwrap().iter() {
        assert!(h.stats.part_puts(&upload_id, task.part_number) <= 2);
    }
    let parts = u.parts_total;
    let puts: u32 = (1..=parts).map(|n| h.stats.part_puts(&upload_id, n)).sum();
    assert!(puts <= parts + 2, "{puts} PUTs for {parts} parts");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_after_a_relaunch_commit_and_lost_tasks_are_sent_again() {
    let h = harness().await;
    let e = env(&h, 2).await;
    let t = attach(&e.uploader, staging_dir(&e), 16 * PART);
    t.hold();
    e.uploader.set_handoff(true).await.unwrap();
    let f = e.file("r.bin", 3 * PART + 1);
    let id = e.add(&f, "t").await.id;
    assert_eq!(run_bounded(&e.uploader).await, IdleReason::HandedOff);
    let held = t.take_held();
    assert_eq!(held.len(), 4);
    let Env {
        dir,
        uploader,
        events: _,
    } = e;
    uploader.shutdown().await;
    // Stale junk in the staging folder goes at the next open.
    std::fs::write(dir.path().join("queue.db.staging/junk.part"), b"x").unwrap();

    // While the app is gone the system finishes parts 1 and 2; part 3's task
    // is lost; part 4's is still running.
    let http = reqwest::Client::new();
    let mut outcomes = Vec::new();
    for task in &held[..2] {
        outcomes.push((
            task.task_id.clone(),
            common::transport::execute(&http, task, Act::Put).await,
        ));
    }
    let u = open(&dir.path().join("queue.db"));
    // Reports come before the transport is registered again.
    for (task_id, outcome) in outcomes {
        u.report_task(task_id, outcome);
    }
    let t2 = attach(&u, dir.path().join("queue.db.staging"), 16 * PART);
    let live = vec![held[3].task_id.clone(), "someone-elses-task".to_string()];
    let unknown = u.reconcile_tasks(live).await.unwrap();
    assert_eq!(unknown, vec!["someone-elses-task".to_string()]);
    assert!(!dir.path().join("queue.db.staging/junk.part").exists());
    u.set_handoff(true).await.unwrap();
    // Part 4's task ends after the relaunch.
    let outcome = common::transport::execute(&http, &held[3], Act::Put).await;
    u.report_task(held[3].task_id.clone(), outcome);
    run_to_end(&u).await;
    let info = u
        .uploads(Selector::Upload(id))
        .await
        .unwrap()
        .pop()
        .unwrap();
    assert_eq!(info.state, UploadState::Completed, "{info:?}");
    assert_object(&h, &info, &f);
    // Only the lost part was handed off again; nothing was sent twice.
    let again: Vec<u32> = t2
        .submitted
        .lock()
        .unwrap()
        .iter()
        .map(|t| t.part_number)
        .collect();
    assert_eq!(again, vec![held[2].part_number]);
    assert_each_part_put_once(&h, info.upload_id.as_deref().unwrap(), 4);
    assert_eq!(dir_bytes(&dir.path().join("queue.db.staging")), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_url_near_its_expiry_is_refreshed_before_hand_off() {
    // URLs live 6 s. Direct PUTs use them until 1.5 s before the end; a
    // hand-off wants half their life left (the margin asked is 15 min).
    let h = harness_with_ttl(Duration::from_secs(6)).await;
    let e = env(&h, 1).await;
    let t = attach(&e.uploader, staging_dir(&e), 4 * PART);
    h.faults.delay_put_responses(Duration::from_millis(3500));
    let f = e.file("m.bin", 2 * PART + 10);
    let id = e.add(&f, "t").await.id;
    e.wait_for(id, "a direct PUT in flight", |u| {
        u.state == UploadState::Running
    })
    .await;
    let fetched: Vec<Vec<u32>> = h.stats.requested_parts();
    assert!(fetched.iter().flatten().any(|n| *n == 2), "{fetched:?}");
    tokio::time::sleep(Duration::from_millis(3200)).await;
    h.faults.delay_put_responses(Duration::ZERO);
    e.uploader.set_handoff(true).await.unwrap();
    run_to_end(&e.uploader).await;
    let u = e.get(id).await;
    assert_eq!(u.state, UploadState::Completed, "{u:?}");
    assert_object(&h, &u, &f);
    let asked: Vec<u32> = h.stats.requested_parts().into_iter().flatten().collect();
    for task in t.submitted.lock().unwrap().iter() {
        let n = task.part_number;
        assert!(
            asked.iter().filter(|p| **p == n).count() >= 2,
            "part {n}'s URL was fetched again before hand-off: {asked:?}"
        );
    }
    assert!(!t.submitted.lock().unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unwritable_staging_folder_fails_that_upload_and_resume_recovers() {
    let h = harness().await;
    let e = env(&h, 2).await;
    // A plain file where the staging folder goes: nothing can be staged.
    std::fs::write(staging_dir(&e), b"in the way").unwrap();
    let t = attach(&e.uploader, staging_dir(&e), 4 * PART);
    e.uploader.set_handoff(true).await.unwrap();
    let f = e.file("u.bin", PART + 3);
    let id = e.add(&f, "t").await.id;
    let u = e.settle(id).await;
    assert_eq!(u.state, UploadState::Failed);
    let err = u.error.unwrap();
    assert_eq!(err.code, ErrorCode::Database, "{}", err.message);
    assert!(err.message.contains("staging folder"), "{}", err.message);
    assert!(t.submitted.lock().unwrap().is_empty());
    assert_eq!(h.stats.total_part_puts(), 0);

    std::fs::remove_file(staging_dir(&e)).unwrap();
    e.uploader.resume(Selector::Upload(id)).await.unwrap();
    run_to_end(&e.uploader).await;
    let u = e.get(id).await;
    assert_eq!(u.state, UploadState::Completed, "{u:?}");
    assert_object(&h, &u, &f);
}

/// Staging runs off the engine's task. An opener that does not answer (an
/// iCloud file with no local data yet) leaves status and pause answered; a
/// staging that outlives the stall timeout costs an attempt of its part and
/// the part is staged again; late stagings nobody wants any more (paused,
/// timed out) leave no file behind, and the upload completes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_opener_does_not_block_the_engine_in_hand_off() {
    use common::opener::{gated_uri, GatedOpener};
    let h = harness().await;
    let e = env(&h, 2).await;
    e.uploader.stop().await.unwrap();
    let mut config = config_for(&h, 2);
    // Nothing times out in the first half, however loaded the machine.
    config.retry.stall_timeout_ms = 120_000;
    config.retry.max_attempts = 20;
    e.uploader.set_config(config.clone()).await.unwrap();
    let opener = GatedOpener::new(e.dir.path());
    e.uploader.set_file_opener(Some(opener.clone()));
    let t = attach(&e.uploader, staging_dir(&e), 8 * PART);
    e.uploader.set_handoff(true).await.unwrap();
    let f = e.file("icloud.bin", 2 * PART + 7);
    let u = e
        .uploader
        .add_file(s3bgu_core::NewUpload {
            path: gated_uri("icloud.bin").into(),
            transfer_id: "t".into(),
            ..s3bgu_core::NewUpload::default()
        })
        .await
        .unwrap();
    opener.hold();
    e.uploader.start().await.unwrap();
    let within = Duration::from_secs(30);
    opener
        .wait_until("staging to call the opener", within, |o| o.in_flight() >= 1)
        .await;

    // The opener hangs (until released): the engine still answers.
    let status = tokio::time::timeout(Duration::from_secs(10), e.uploader.status())
        .await
        .expect("status() answers while staging waits for the opener")
        .unwrap();
    assert!(opener.in_flight() >= 1, "the opener was still hanging");
    assert_eq!(status.tasks_handed_off, 0);
    assert!(status.engine_busy, "staging counts as the engine's work");
    let paused = tokio::time::timeout(
        Duration::from_secs(10),
        e.uploader.pause(Selector::Upload(u.id)),
    )
    .await
    .expect("pause() answers while staging waits for the opener")
    .unwrap();
    assert_eq!(paused[0].state, UploadState::Paused);
    assert!(opener.in_flight() >= 1, "the opener was still hanging");
    // The stagings of the paused upload finish now; their files are not
    // wanted and go.
    opener.release();
    opener.hold();
    opener
        .wait_until("the released calls to return", within, |o| {
            o.in_flight() == 0
        })
        .await;
    assert!(t.submitted.lock().unwrap().is_empty());

    // Resumed with a short stall timeout while the opener hangs again: the
    // stagings time out and are tried again (a call beyond one per part
    // can only come from a staging that gave up on a hanging one).
    config.retry.stall_timeout_ms = 1_000;
    e.uploader.set_config(config).await.unwrap();
    let before = opener.calls();
    e.uploader.resume(Selector::Upload(u.id)).await.unwrap();
    let parts = e.get(u.id).await.parts_total;
    assert_eq!(parts, 3);
    opener
        .wait_until(
            "a staging tried again after a timeout",
            Duration::from_secs(60),
            |o| o.calls() > before + parts,
        )
        .await;
    assert!(t.submitted.lock().unwrap().is_empty());
    opener.release();

    run_to_end(&e.uploader).await;
    let done = e.get(u.id).await;
    assert_eq!(done.state, UploadState::Completed, "{done:?}");
    assert_object(&h, &done, &f);
    assert_each_part_put_once(&h, done.upload_id.as_deref().unwrap(), parts);
    // Only the stagings the engine took were handed off.
    assert_eq!(t.submitted.lock().unwrap().len(), parts as usize);
    common::transport::wait_no_files(&staging_dir(&e)).await;
    assert_eq!(e.uploader.status().await.unwrap().staged_bytes, 0);
}

/// A lifecycle rule aborts the multipart upload while four parts are with
/// the platform. Their reports come late and out of order, around a fresh
/// start of the upload: none of them may reach the fresh multipart upload,
/// nor take the engine down.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_of_a_vanished_multipart_upload_never_reach_the_next_one() {
    let h = harness().await;
    let e = env(&h, 2).await;
    let t = attach(&e.uploader, staging_dir(&e), 16 * PART);
    t.hold();
    e.uploader.set_handoff(true).await.unwrap();
    let f = e.file("v.bin", 3 * PART + 1);
    let id = e.add(&f, "t").await.id;
    assert_eq!(run_bounded(&e.uploader).await, IdleReason::HandedOff);
    let held = t.take_held();
    assert_eq!(held.len(), 4);
    let old = e.get(id).await.upload_id.expect("a multipart upload");

    // Task 1 reaches the store, but its report is kept back.
    let http = reqwest::Client::new();
    let first = common::transport::execute(&http, &held[0], Act::Put).await;
    assert!(
        matches!(first, TaskOutcome::Response { status: 200, .. }),
        "{first:?}"
    );
    // The multipart upload vanishes; task 2 finds it gone.
    h.faults.abort_multipart_upload(&old);
    let second = common::transport::execute(&http, &held[1], Act::Put).await;
    assert!(
        matches!(second, TaskOutcome::Response { status: 404, .. }),
        "{second:?}"
    );
    e.uploader.report_task(held[1].task_id.clone(), second);
    let failed = e.settle(id).await;
    assert_eq!(failed.state, UploadState::Failed, "{failed:?}");
    assert_eq!(failed.upload_id, None);

    // Resume, with the fresh startUpload's answer slow: task 3's failure
    // comes while the upload has no parts at all, task 1's 2xx once the
    // fresh multipart upload exists.
    h.faults.delay_start_answers(Duration::from_millis(1500));
    e.uploader.resume(Selector::Upload(id)).await.unwrap();
    e.uploader.report_task(
        held[2].task_id.clone(),
        TaskOutcome::TransportError("the network connection was lost".into()),
    );
    let fresh = e
        .wait_for(id, "a fresh multipart upload", |u| u.upload_id.is_some())
        .await;
    let new = fresh.upload_id.clone().unwrap();
    assert_ne!(new, old);
    h.faults.delay_start_answers(Duration::ZERO);
    e.uploader.report_task(held[0].task_id.clone(), first);

    // The fresh upload's parts are handed off anew, then uploaded.
    assert_eq!(run_bounded(&e.uploader).await, IdleReason::HandedOff);
    t.release();
    run_to_end(&e.uploader).await;
    let u = e.get(id).await;
    assert_eq!(u.state, UploadState::Completed, "{u:?}");
    assert_eq!(u.upload_id.as_deref(), Some(new.as_str()));
    assert_object(&h, &u, &f);
    assert_each_part_put_once(&h, &new, 4);
    // The old upload's tasks still out were cancelled at the platform.
    let cancelled = t.cancelled.lock().unwrap().clone();
    assert!(cancelled.contains(&held[3].task_id), "{cancelled:?}");
    let status = e.uploader.status().await.unwrap();
    assert_eq!(status.tasks_handed_off, 0);
    assert_eq!(status.staged_bytes, 0);
    assert_eq!(dir_files(&staging_dir(&e)), 0, "no staged file is left");
}

/// iOS does not order `getAllTasks` against the reports of tasks that ended
/// while the app was dead: reconciliation sees only the live task, and the
/// finished ones report afterwards. Their ETags count; only the task that
/// was really lost is handed off again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_after_reconcile_called_their_tasks_lost_still_count() {
    let h = harness().await;
    let e = env(&h, 2).await;
    let t = attach(&e.uploader, staging_dir(&e), 16 * PART);
    t.hold();
    e.uploader.set_handoff(true).await.unwrap();
    let f = e.file("l.bin", 3 * PART + 1);
    let id = e.add(&f, "t").await.id;
    assert_eq!(run_bounded(&e.uploader).await, IdleReason::HandedOff);
    let held = t.take_held();
    assert_eq!(held.len(), 4);
    let Env {
        dir,
        uploader,
        events: _,
    } = e;
    uploader.shutdown().await;

    // While the app is gone the system finishes parts 1 and 2; part 3's
    // task is lost; part 4's is still running.
    let http = reqwest::Client::new();
    let mut late = Vec::new();
    for task in &held[..2] {
        late.push((
            task.task_id.clone(),
            common::transport::execute(&http, task, Act::Put).await,
        ));
    }
    let u = open(&dir.path().join("queue.db"));
    let t2 = attach(&u, dir.path().join("queue.db.staging"), 16 * PART);
    t2.hold();
    let unknown = u
        .reconcile_tasks(vec![held[3].task_id.clone()])
        .await
        .unwrap();
    assert!(unknown.is_empty(), "{unknown:?}");
    // The finished tasks report only now.
    for (task_id, outcome) in late {
        u.report_task(task_id, outcome);
    }
    u.set_handoff(true).await.unwrap();
    assert_eq!(run_bounded(&u).await, IdleReason::HandedOff);
    let outcome = common::transport::execute(&http, &held[3], Act::Put).await;
    u.report_task(held[3].task_id.clone(), outcome);
    t2.release();
    run_to_end(&u).await;
    let info = u
        .uploads(Selector::Upload(id))
        .await
        .unwrap()
        .pop()
        .unwrap();
    assert_eq!(info.state, UploadState::Completed, "{info:?}");
    assert_object(&h, &info, &f);
    let again: Vec<u32> = t2
        .submitted
        .lock()
        .unwrap()
        .iter()
        .map(|t| t.part_number)
        .collect();
    assert_eq!(again, vec![held[2].part_number], "handed off again");
    assert_each_part_put_once(&h, info.upload_id.as_deref().unwrap(), 4);
    assert_eq!(dir_bytes(&dir.path().join("queue.db.staging")), 0);
}

/// A late 2xx of a task called lost, arriving after its part was handed
/// off again: the part counts, and the second task is cancelled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_report_of_a_lost_task_settles_a_part_handed_off_again() {
    let h = harness().await;
    let e = env(&h, 2).await;
    let t = attach(&e.uploader, staging_dir(&e), 16 * PART);
    t.hold();
    e.uploader.set_handoff(true).await.unwrap();
    let f = e.file("a.bin", PART + 1);
    let id = e.add(&f, "t").await.id;
    assert_eq!(run_bounded(&e.uploader).await, IdleReason::HandedOff);
    let held = t.take_held();
    assert_eq!(held.len(), 2);
    let http = reqwest::Client::new();
    let first = common::transport::execute(&http, &held[0], Act::Put).await;
    // Reconciliation misses task 1 (its report is still on the way): both
    // parts are handed off again.
    let unknown = e.uploader.reconcile_tasks(vec![]).await.unwrap();
    assert!(unknown.is_empty(), "{unknown:?}");
    assert_eq!(run_bounded(&e.uploader).await, IdleReason::HandedOff);
    let again = t.take_held();
    assert_eq!(again.len(), 2);
    e.uploader.report_task(held[0].task_id.clone(), first);
    let u = e
        .wait_for(id, "part 1 counted", |u| u.parts_done == 1)
        .await;
    assert_eq!(u.state, UploadState::Running);
    let renewed = again
        .iter()
        .find(|x| x.part_number == held[0].part_number)
        .unwrap();
    let cancelled = t.cancelled.lock().unwrap().clone();
    assert_eq!(cancelled, vec![renewed.task_id.clone()]);
    let other = again
        .iter()
        .find(|x| x.part_number != held[0].part_number)
        .unwrap();
    let outcome = common::transport::execute(&http, other, Act::Put).await;
    e.uploader.report_task(other.task_id.clone(), outcome);
    run_to_end(&e.uploader).await;
    let u = e.get(id).await;
    assert_eq!(u.state, UploadState::Completed, "{u:?}");
    assert_object(&h, &u, &f);
    assert_each_part_put_once(&h, u.upload_id.as_deref().unwrap(), 2);
    assert_eq!(dir_files(&staging_dir(&e)), 0);
}

/// Opens `content://test/<name>` as `<dir>/<name>`, handing over the
/// descriptor (as Android's `detachFd()` does).
struct DirOpener(PathBuf);

impl s3bgu_core::FileOpener for DirOpener {
    fn open_file(&self, uri: String) -> Result<s3bgu_core::OpenedFile, s3bgu_core::FileOpenError> {
        use std::os::fd::IntoRawFd;
        let name = uri.strip_prefix("content://test/").unwrap_or(&uri);
        std::fs::File::open(self.0.join(name))
            .map(|f| f.into_raw_fd().into())
            .map_err(|e| s3bgu_core::FileOpenError::Gone {
                reason: e.to_string(),
            })
    }
}

/// A background launch in hand-off mode before the platform registered its
/// file opener: the URI upload waits, and the engine's loop sleeps while it
/// does (it does not pick that upload again and again). Counted in
/// scheduler passes, not time: a spinning loop makes thousands a second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hand_off_waits_for_the_opener_without_spinning() {
    let h = harness().await;
    let e = env(&h, 2).await;
    let t = attach(&e.uploader, staging_dir(&e), 16 * PART);
    t.hold();
    let f = e.file("c.bin", 5 * PART + 3);
    let opener = Arc::new(DirOpener(e.dir.path().to_path_buf()));
    e.uploader.set_file_opener(Some(opener.clone()));
    // Added while the engine is stopped, so that nothing is staged before
    // the opener goes.
    e.uploader.stop().await.unwrap();
    let id = e
        .uploader
        .add_file(s3bgu_core::NewUpload {
            path: "content://test/c.bin".into(),
            transfer_id: "t".into(),
            ..s3bgu_core::NewUpload::default()
        })
        .await
        .unwrap()
        .id;
    e.uploader.set_file_opener(None);
    e.uploader.set_handoff(true).await.unwrap();
    e.uploader.start().await.unwrap();
    e.wait_for(id, "its multipart upload and URLs", |u| {
        u.upload_id.is_some() && h.stats.backend_calls(Route::GetUploadUrls) >= 1
    })
    .await;
    // Whatever the URL answer set off has settled by now.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = e.uploader.status().await.unwrap().scheduler_passes;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = e.uploader.status().await.unwrap().scheduler_passes;
    // Two status calls and a timer or two; a spin makes thousands.
    assert!(
        after - before < 50,
        "{} scheduler passes in 2 s with nothing to do",
        after - before
    );
    assert!(t.submitted.lock().unwrap().is_empty());
    assert_eq!(run_bounded(&e.uploader).await, IdleReason::HandedOff);

    // The opener arrives: the parts are staged and handed off.
    e.uploader.set_file_opener(Some(opener));
    t.release();
    run_to_end(&e.uploader).await;
    let u = e.get(id).await;
    assert_eq!(u.state, UploadState::Completed, "{u:?}");
    assert_object(&h, &u, &f);
    assert_each_part_put_once(&h, u.upload_id.as_deref().unwrap(), 6);
}

/// Pause and cancel reach the tasks already with the platform: they are
/// cancelled there and their rows and staged files go. A 2xx of a task
/// that ended just before the pause reached it still counts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_and_cancel_cancel_the_handed_off_tasks() {
    let h = harness().await;
    let e = env(&h, 2).await;
    let t = attach(&e.uploader, staging_dir(&e), 16 * PART);
    t.hold();
    e.uploader.set_handoff(true).await.unwrap();
    let f = e.file("p.bin", 2 * PART + 1);
    let id = e.add(&f, "t").await.id;
    assert_eq!(run_bounded(&e.uploader).await, IdleReason::HandedOff);
    let held = t.take_held();
    assert_eq!(held.len(), 3);
    let http = reqwest::Client::new();
    let raced = common::transport::execute(&http, &held[0], Act::Put).await;

    e.uploader.pause(Selector::Upload(id)).await.unwrap();
    let mut cancelled = t.cancelled.lock().unwrap().clone();
    cancelled.sort();
    let mut ids: Vec<String> = held.iter().map(|x| x.task_id.clone()).collect();
    ids.sort();
    assert_eq!(
        cancelled, ids,
        "every task of the paused upload is cancelled"
    );
    let status = e.uploader.status().await.unwrap();
    assert_eq!(status.tasks_handed_off, 0);
    assert_eq!(status.staged_bytes, 0);
    assert_eq!(dir_files(&staging_dir(&e)), 0);
    e.uploader.report_task(held[0].task_id.clone(), raced);
    let paused = e
        .wait_for(id, "the raced part counted", |u| u.parts_done == 1)
        .await;
    assert_eq!(paused.state, UploadState::Paused);

    // Resumed, the open parts are handed off again; then cancelled.
    e.uploader.resume(Selector::Upload(id)).await.unwrap();
    assert_eq!(run_bounded(&e.uploader).await, IdleReason::HandedOff);
    let again = t.take_held();
    let numbers: Vec<u32> = again.iter().map(|x| x.part_number).collect();
    assert_eq!(numbers.len(), 2, "{numbers:?}");
    assert!(!numbers.contains(&held[0].part_number), "{numbers:?}");
    t.cancelled.lock().unwrap().clear();
    e.uploader.cancel(Selector::Upload(id)).await.unwrap();
    let mut cancelled = t.cancelled.lock().unwrap().clone();
    cancelled.sort();
    let mut ids: Vec<String> = again.iter().map(|x| x.task_id.clone()).collect();
    ids.sort();
    assert_eq!(
        cancelled, ids,
        "every task of the cancelled upload is cancelled"
    );
    assert_eq!(e.get(id).await.state, UploadState::Cancelled);
    assert_eq!(e.uploader.status().await.unwrap().tasks_handed_off, 0);
    assert_eq!(dir_files(&staging_dir(&e)), 0);
    assert_eq!(h.stats.total_part_puts(), 1);
}

/// The network policy reaches the tasks with the platform: each carries
/// whether it may use a metered network, and a policy change cancels the
/// tasks given under the other one and hands their parts off again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_network_policy_change_reissues_the_handed_off_tasks() {
    let h = harness().await;
    let e = env(&h, 2).await;
    let t = attach(&e.uploader, staging_dir(&e), 16 * PART);
    t.hold();
    e.uploader.set_handoff(true).await.unwrap();
    let f = e.file("n.bin", PART + 1);
    let id = e.add(&f, "t").await.id;
    assert_eq!(run_bounded(&e.uploader).await, IdleReason::HandedOff);
    let held = t.take_held();
    assert_eq!(held.len(), 2);
    assert!(held.iter().all(|x| x.allow_metered), "policy any");

    let mut config = config_for(&h, 2);
    config.network_policy = NetworkPolicy::UnmeteredOnly;
    e.uploader.set_config(config).await.unwrap();
    assert_eq!(run_bounded(&e.uploader).await, IdleReason::HandedOff);
    let again = t.take_held();
    let mut cancelled = t.cancelled.lock().unwrap().clone();
    cancelled.sort();
    let mut ids: Vec<String> = held.iter().map(|x| x.task_id.clone()).collect();
    ids.sort();
    assert_eq!(cancelled, ids, "the tasks that may use a metered network");
    let mut numbers: Vec<u32> = again.iter().map(|x| x.part_number).collect();
    numbers.sort();
    assert_eq!(numbers, vec![1, 2]);
    assert!(
        again.iter().all(|x| !x.allow_metered),
        "policy unmetered only"
    );
    assert_eq!(
        e.uploader.status().await.unwrap().staged_bytes,
        PART + 1,
        "the cancelled tasks' files are gone"
    );

    // The same policy again changes nothing.
    let mut config = config_for(&h, 2);
    config.network_policy = NetworkPolicy::UnmeteredOnly;
    e.uploader.set_config(config).await.unwrap();
    assert_eq!(run_bounded(&e.uploader).await, IdleReason::HandedOff);
    assert!(t.take_held().is_empty());
    assert_eq!(t.cancelled.lock().unwrap().len(), 2);

    for task in &again {
        let outcome = common::transport::execute(&reqwest::Client::new(), task, Act::Put).await;
        e.uploader.report_task(task.task_id.clone(), outcome);
    }
    t.release();
    run_to_end(&e.uploader).await;
    let u = e.get(id).await;
    assert_eq!(u.state, UploadState::Completed, "{u:?}");
    assert_object(&h, &u, &f);
    assert_each_part_put_once(&h, u.upload_id.as_deref().unwrap(), 2);
    assert_eq!(dir_files(&staging_dir(&e)), 0);
}
