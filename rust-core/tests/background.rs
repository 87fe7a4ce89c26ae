//! What a background task relies on: the network the platform reports (and
//! the unmetered-only policy), running until nothing is left with a reason,
//! suspending within a second, the bytes still to send, and snapshots that
//! line up with the events that follow.

mod common;

use common::*;
use s3bgu_core::{
    IdleReason, NetworkPolicy, NetworkState, Selector, UploadEvent, UploadInfo, UploadState,
    UploaderOptions,
};
use s3bgu_testkit::Route;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const OFFLINE: NetworkState = NetworkState {
    online: false,
    metered: false,
};
const METERED: NetworkState = NetworkState {
    online: true,
    metered: true,
};
const WIFI: NetworkState = NetworkState {
    online: true,
    metered: false,
};

async fn run_bounded(e: &Env) -> IdleReason {
    tokio::time::timeout(Duration::from_secs(60), e.uploader.run_until_idle())
        .await
        .expect("run_until_idle returns within 60 s")
        .expect("run_until_idle")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_holds_everything_and_online_continues() {
    let h = harness().await;
    let e = env(&h, 2).await;
    e.uploader.set_network(OFFLINE);
    let path = e.file("a.bin", PART + 10);
    let u = e.add(&path, "t").await;
    assert_eq!(run_bounded(&e).await, IdleReason::WaitingForNetwork);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(h.stats.backend_calls(Route::StartUpload), 0);
    assert_eq!(e.get(u.id).await.state, UploadState::Pending);
    let status = e.uploader.status().await.unwrap();
    assert!(!status.network_allowed);
    assert_eq!(status.bytes_remaining, PART + 10);

    e.uploader.set_network(WIFI);
    assert_eq!(run_bounded(&e).await, IdleReason::Idle);
    let done = e.get(u.id).await;
    assert_eq!(done.state, UploadState::Completed);
    assert_object(&h, &done, &path);
    assert_eq!(e.uploader.bytes_remaining().await.unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unmetered_only_stops_parts_on_a_metered_network_without_counting_attempts() {
    let h = harness().await;
    let e = env(&h, 2).await;
    let mut c = config_for(&h, 2);
    c.network_policy = NetworkPolicy::UnmeteredOnly;
    e.uploader.set_config(c).await.unwrap();
    h.faults.delay_put_responses(Duration::from_millis(400));
    let path = e.file("big.bin", 3 * PART);
    let u = e.add(&path, "t").await;
    e.wait_for(u.id, "a part in flight", |u| {
        u.state == UploadState::Running
    })
    .await;

    // Mobile data: the parts in flight stop and nothing new starts.
    e.uploader.set_network(METERED);
    let status = e.uploader.status().await.unwrap();
    assert!(!status.network_allowed);
    assert_eq!(
        e.uploader.run_until_idle().await.unwrap(),
        IdleReason::WaitingForNetwork
    );
    tokio::time::sleep(Duration::from_millis(600)).await;
    let puts = h.stats.total_part_puts();
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(h.stats.total_part_puts(), puts, "no PUT starts while held");
    let held = e.get(u.id).await;
    assert_eq!(held.state, UploadState::Running, "holding changes no state");
    assert!(held.error.is_none());

    // Any policy allows the metered network again, without a state change.
    e.uploader.set_network(WIFI);
    h.faults.delay_put_responses(Duration::ZERO);
    assert_eq!(run_bounded(&e).await, IdleReason::Idle);
    let done = e.get(u.id).await;
    assert_eq!(done.state, UploadState::Completed, "{done:?}");
    assert_object(&h, &done, &path);
    assert_eq!(
        e.events.states_of(u.id),
        vec![
            UploadState::Pending,
            UploadState::Initialized,
            UploadState::Running,
            UploadState::Completed
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suspend_stops_a_run_within_a_second_and_the_next_run_finishes() {
    let h = harness().await;
    let e = Arc::new(env(&h, 2).await);
    // Every PUT hangs long enough that the run is certainly mid-part.
    h.faults.delay_puts(Duration::from_secs(20));
    let path = e.file("slow.bin", 2 * PART + 1);
    let u = e.add(&path, "t").await;
    let runner = {
        let e = e.clone();
        tokio::spawn(async move { e.uploader.run_until_idle().await })
    };
    e.wait_for(u.id, "parts in flight", |u| u.state == UploadState::Running)
        .await;
    tokio::time::sleep(Duration::from_millis(200)).await;

    let asked = Instant::now();
    e.uploader.suspend().await.unwrap();
    let reason = tokio::time::timeout(Duration::from_secs(1), runner)
        .await
        .expect("run_until_idle returns within a second of suspend")
        .unwrap()
        .unwrap();
    assert_eq!(reason, IdleReason::Suspended);
    assert!(asked.elapsed() < Duration::from_secs(1));
    let held = e.get(u.id).await;
    assert_eq!(held.state, UploadState::Running, "{held:?}");
    assert_eq!(held.parts_done, 0);
    assert!(!e.uploader.status().await.unwrap().running);

    h.faults.delay_puts(Duration::ZERO);
    assert_eq!(run_bounded(&e).await, IdleReason::Idle);
    let done = e.get(u.id).await;
    assert_eq!(done.state, UploadState::Completed);
    assert_object(&h, &done, &path);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_until_idle_says_why_it_stopped() {
    let h = harness().await;
    let e = env(&h, 2).await;
    assert_eq!(run_bounded(&e).await, IdleReason::Idle, "empty queue");

    h.faults.delay_puts(Duration::from_secs(20));
    let a = e.add(&e.file("a.bin", PART), "t").await;
    // Its startUpload is done, so the 401 below is b's.
    e.wait_for(a.id, "a part in flight", |u| {
        u.state == UploadState::Running
    })
    .await;
    e.uploader.pause(Selector::All).await.unwrap();
    assert_eq!(run_bounded(&e).await, IdleReason::AllPaused);

    h.faults.delay_puts(Duration::ZERO);
    h.faults
        .fail_backend(Route::StartUpload, 1, 401, "token expired");
    e.uploader.cancel(Selector::Upload(a.id)).await.unwrap();
    let b = e.add(&e.file("b.bin", 10), "t").await;
    e.wait_for(b.id, "auth pause", |u| u.state == UploadState::Paused)
        .await;
    assert_eq!(run_bounded(&e).await, IdleReason::AuthRequired);

    e.uploader.resume(Selector::All).await.unwrap();
    assert_eq!(run_bounded(&e).await, IdleReason::Idle);
    assert_eq!(e.get(b.id).await.state, UploadState::Completed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bytes_remaining_counts_active_uploads_only() {
    let h = harness().await;
    let dir = tempfile::tempdir().unwrap();
    let mut opts = UploaderOptions::new(dir.path().join("queue.db"));
    opts.start = false;
    let uploader = s3bgu_core::Uploader::open(opts).unwrap();
    uploader.set_config(config_for(&h, 2)).await.unwrap();
    let add = |name: &str, size: u64| {
        let p = write_file(dir.path(), name, size, 1);
        uploader.add_file(s3bgu_core::NewUpload {
            path: p,
            transfer_id: "t".into(),
            ..Default::default()
        })
    };
    let a = add("a.bin", PART + 3).await.unwrap();
    let b = add("b.bin", 1_000).await.unwrap();
    assert_eq!(uploader.bytes_remaining().await.unwrap(), PART + 1_003);
    uploader.pause(Selector::Upload(b.id)).await.unwrap();
    let s = uploader.status().await.unwrap();
    assert_eq!((s.active, s.paused, s.auth_paused), (1, 1, 0));
    assert_eq!(s.bytes_remaining, PART + 3);
    assert!(!s.running);
    assert_eq!(
        uploader.run_until_idle().await.unwrap(),
        IdleReason::AllPaused
    );
    let done = uploader.uploads(Selector::Upload(a.id)).await.unwrap();
    assert_eq!(done[0].state, UploadState::Completed);
    assert_eq!(uploader.bytes_remaining().await.unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_and_notification_templates_are_stored_with_the_queue() {
    let h = harness().await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("queue.db");
    let mut c = config_for(&h, 3);
    c.network_policy = NetworkPolicy::UnmeteredOnly;
    c.notification_title = Some("Uploading {totalFiles} files".into());
    c.notification_text = Some("{percentage}% of {totalSize}".into());
    {
        let u = open(&db);
        u.set_config(c.clone()).await.unwrap();
        u.shutdown().await;
    }
    let u = open(&db);
    assert_eq!(u.config().await.unwrap(), Some(c));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_taken_by_inspect_lines_up_with_later_events() {
    let h = harness().await;
    let e = env(&h, 2).await;
    let a = e.add(&e.file("a.bin", PART + 1), "t").await;
    e.settle(a.id).await;

    // The closure runs between two events: note how many the listener had.
    let seen_at_snapshot: Arc<Mutex<Option<(usize, usize, u32)>>> = Arc::default();
    let (slot, events) = (seen_at_snapshot.clone(), e.events.clone());
    e.uploader
        .inspect(move |uploads: Vec<UploadInfo>, summary| {
            let n = events.all.lock().unwrap().len();
            *slot.lock().unwrap() = Some((n, uploads.len(), summary.completed));
        })
        .unwrap();
    let b = e.add(&e.file("b.bin", 10), "t").await;
    e.settle(b.id).await;
    let (at, uploads, completed) = seen_at_snapshot.lock().unwrap().expect("inspect ran");
    assert_eq!(
        (uploads, completed),
        (1, 1),
        "the snapshot has a, completed"
    );
    // Every event after the snapshot is about b, from its first state on.
    let later: Vec<(i64, UploadState)> = e.events.all.lock().unwrap()[at..]
        .iter()
        .filter_map(|(_, ev)| match ev {
            UploadEvent::StateChanged(u) => Some((u.id, u.state)),
            _ => None,
        })
        .collect();
    assert_eq!(
        later,
        vec![
            (b.id, UploadState::Pending),
            (b.id, UploadState::Initialized),
            (b.id, UploadState::Running),
            (b.id, UploadState::Completed)
        ]
    );
}
