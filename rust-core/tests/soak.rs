//! Soak under random faults: many files through a network where a share of
//! every request (backend calls and part PUTs) is reset, refused, stalled,
//! truncated, stripped of its ETag or delayed. Every object must still end
//! byte-identical, and an endpoint that always fails must end in FAILED
//! with the right code within a bounded time.
//!
//! Knobs (environment): `S3BGU_SOAK_SEED` (default: random, printed),
//! `S3BGU_SOAK_FILES` (20), `S3BGU_SOAK_MAX_MIB` (40), `S3BGU_SOAK_RATE`
//! (0.10). `scripts/test.sh --soak` runs a longer one.

mod common;

use common::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use s3bgu_core::{Config, ErrorCode, RetryPolicy, Selector, UploadState};
use s3bgu_testkit::{ChaosPlan, Fault, Route, Target};
use std::time::{Duration, Instant};

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Retries fast enough for a test, but as many as the defaults, and
/// timeouts shorter than the harness's stalls.
fn soak_retry() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 8,
        base_delay_ms: 20,
        max_delay_ms: 500,
        max_url_refreshes: 4,
        request_timeout_ms: 4_000,
        stall_timeout_ms: 2_000,
    }
}

/// Fast pseudo-random bytes (a test at opt-level 0 writes hundreds of MiB).
fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_files_complete_byte_identical_under_ten_percent_faults() {
    let seed: u64 = env_or("S3BGU_SOAK_SEED", rand::random());
    let files: usize = env_or("S3BGU_SOAK_FILES", 20);
    let max_mib: u64 = env_or("S3BGU_SOAK_MAX_MIB", 40);
    let rate: f64 = env_or("S3BGU_SOAK_RATE", 0.10);
    let mut rng = StdRng::seed_from_u64(seed);
    let sizes: Vec<u64> = (0..files)
        .map(|_| rng.random_range(0..max_mib * MIB))
        .collect();
    let total: u64 = sizes.iter().sum();
    println!(
        "soak: seed {seed} (S3BGU_SOAK_SEED), {files} files, {:.1} MiB, sizes {:?} bytes",
        total as f64 / MIB as f64,
        sizes
    );

    let h = harness().await;
    let dir = tempfile::tempdir().unwrap();
    let uploader = open(&dir.path().join("queue.db"));
    let mut config = Config::for_base_url(&h.backend_url);
    config.max_parts_in_flight = 4;
    config.retry = soak_retry();
    uploader.set_config(config).await.unwrap();

    let mut plan = ChaosPlan::everywhere(rate, seed);
    plan.stall = Duration::from_secs(5);
    plan.delay = Duration::from_millis(300);
    h.faults.chaos(plan);

    let started = Instant::now();
    let mut added = Vec::new();
    for (i, size) in sizes.iter().enumerate() {
        let path = dir.path().join(format!("file-{i:02}.bin"));
        std::fs::write(&path, random_bytes(*size as usize, seed ^ (i as u64 + 1))).unwrap();
        let u = add(&uploader, &path, "soak").await.expect("add_file");
        added.push((u.id, path));
    }
    tokio::time::timeout(Duration::from_secs(900), uploader.wait_idle(Selector::All))
        .await
        .expect("the soak settles within 15 minutes")
        .unwrap();
    let wall = started.elapsed();
    let report = h.faults.stop_chaos();

    let uploads = uploader.uploads(Selector::All).await.unwrap();
    let mut parts = 0u64;
    for (id, path) in &added {
        let u = uploads.iter().find(|u| u.id == *id).unwrap();
        assert_eq!(
            u.state,
            UploadState::Completed,
            "seed {seed}: {} ended {:?}: {:?}",
            path.display(),
            u.state,
            u.error
        );
        assert_object(&h, u, path);
        parts += u64::from(u.parts_total);
    }
    let puts = u64::from(h.stats.total_part_puts());
    let starts = u64::from(h.stats.backend_calls(Route::StartUpload));
    let completes = u64::from(h.stats.backend_calls(Route::Complete));
    let url_calls = u64::from(h.stats.backend_calls(Route::GetUploadUrls));
    let retries = (puts - parts) + (starts - files as u64) + (completes - files as u64);
    println!("soak: {report}");
    println!(
        "soak: {parts} parts, {puts} part PUTs, {starts} startUpload, {url_calls} getUploadUrls, \
         {completes} complete; {retries} retries (PUTs, startUpload and complete beyond one each); \
         wall time {:.1} s",
        wall.as_secs_f64()
    );
    assert!(
        report.faults() > 0 || total == 0,
        "the plan injected faults"
    );
}

/// One endpoint that always fails the same way ends the upload with `code`,
/// after a bounded number of calls and time.
async fn always_failing(target: Target, faults: &[Fault], code: ErrorCode) {
    let h = harness().await;
    let e = env(&h, 2).await;
    let mut retry = fast_retry();
    retry.request_timeout_ms = 500;
    retry.stall_timeout_ms = 500;
    let mut config = config_for(&h, 2);
    config.retry = retry.clone();
    e.uploader.set_config(config).await.unwrap();
    let mut plan = ChaosPlan::always(target, faults);
    plan.stall = Duration::from_secs(2);
    h.faults.chaos(plan);

    let started = Instant::now();
    let u = e.add(&e.file("x.bin", PART + 10), "t").await;
    let done = e.settle(u.id).await;
    let took = started.elapsed();
    let report = h.faults.stop_chaos();
    println!(
        "{target:?} {faults:?}: {report}, {:.2} s",
        took.as_secs_f64()
    );
    assert_eq!(done.state, UploadState::Failed, "{target:?}");
    let err = done.error.expect("error");
    assert_eq!(err.code, code, "{target:?}: {}", err.message);
    assert!(err.message.contains("gave up after"), "{}", err.message);
    // Two parts may fail side by side; each has its own attempts.
    assert!(
        report.requests <= 2 * retry.max_attempts,
        "{target:?}: {} calls for {} attempts",
        report.requests,
        retry.max_attempts
    );
    assert!(took < Duration::from_secs(30), "{target:?} took {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_upload_always_503_fails_with_backend_unavailable() {
    always_failing(
        Target::Backend(Route::StartUpload),
        &[
            Fault::Status(503),
            Fault::StatusRetryAfter(503),
            Fault::Reset,
        ],
        ErrorCode::BackendUnavailable,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_urls_always_truncated_fails_with_invalid_response() {
    always_failing(
        Target::Backend(Route::GetUploadUrls),
        &[Fault::Truncated, Fault::NotJson],
        ErrorCode::BackendInvalidResponse,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn part_puts_always_failing_fail_with_storage_unavailable() {
    always_failing(
        Target::PartPut,
        &[
            Fault::Status(500),
            Fault::Status(502),
            Fault::Reset,
            Fault::Stall,
        ],
        ErrorCode::StorageUnavailable,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn part_puts_never_getting_an_etag_fail_with_storage_rejected() {
    always_failing(
        Target::PartPut,
        &[Fault::NoEtag],
        ErrorCode::StorageRejected,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn complete_always_stalled_fails_with_backend_unavailable() {
    always_failing(
        Target::Backend(Route::Complete),
        &[Fault::Stall, Fault::Status(502), Fault::Reset],
        ErrorCode::BackendUnavailable,
    )
    .await;
}
