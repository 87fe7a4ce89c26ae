//! A slow uplink: the store reads part bodies at a fixed slow rate, through
//! sockets sized like a phone's path, so the client is held back by it as on
//! a throttled mobile plan.

mod common;

use common::*;
use s3bgu_core::UploadState;
use s3bgu_testkit::{Harness, HarnessOptions};
use std::time::{Duration, Instant};

/// The uplink's rate: a 1 MiB piece of body takes 16 s to go through.
const RATE: u64 = 64 * 1024;
/// Four times shorter than 16 s, and about twice the longest gap seen
/// between slices of a sliced body at `RATE` (the kernel wakes a writer
/// only once a third of its send buffer has drained: ~1-2 s here).
const STALL_TIMEOUT_MS: u64 = 4_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_uplink_sends_each_part_once() {
    let h = Harness::start(HarnessOptions {
        narrow_store_sockets: true,
        ..HarnessOptions::default()
    })
    .await;
    h.faults.throttle_part_bodies(RATE);
    let e = env(&h, 2).await;
    let mut config = config_for(&h, 2);
    config.retry.stall_timeout_ms = STALL_TIMEOUT_MS;
    // What is tested is the watchdog while the body goes out, not the wait
    // for the answer once it is all handed over.
    config.retry.request_timeout_ms = 60_000;
    e.uploader.set_config(config).await.unwrap();

    // One part each (the store refuses a part under 5 MiB that is not the
    // last): a little over 1 MiB, so a 1 MiB piece is never the whole part.
    let size = MIB + MIB / 4;
    let a = e.file("a.bin", size);
    let b = e.file("b.bin", size + 1);
    let began = Instant::now();
    let ua = e.add(&a, "t").await;
    let ub = e.add(&b, "t").await;
    let done_a = settle_slowly(&e, ua.id).await;
    let done_b = settle_slowly(&e, ub.id).await;
    let took = began.elapsed();

    assert_eq!(done_a.state, UploadState::Completed, "{done_a:?}");
    assert_eq!(done_b.state, UploadState::Completed, "{done_b:?}");
    assert_eq!(
        h.stats.total_part_puts(),
        2,
        "each part is sent once: no attempt was taken for a stall"
    );
    assert_object(&h, &done_a, &a);
    assert_object(&h, &done_b, &b);
    // The rate was felt: most of each part went at the store's pace (the
    // sockets and the HTTP stack hold well under 1 MiB), so the run is far
    // longer than the stall timeout the parts stayed within.
    let at_rate = Duration::from_secs_f64((size - MIB / 2) as f64 / RATE as f64);
    assert!(
        took >= at_rate,
        "{took:?}: the store did not read at {RATE} B/s"
    );
}

/// Like [`Env::settle`], with room for parts that take 20 s at `RATE`
/// on a loaded machine.
async fn settle_slowly(e: &Env, id: i64) -> s3bgu_core::UploadInfo {
    tokio::time::timeout(
        Duration::from_secs(180),
        e.uploader.wait_idle(s3bgu_core::Selector::Upload(id)),
    )
    .await
    .expect("upload settles within 180 s")
    .expect("wait_idle");
    e.get(id).await
}
