//! The contract's status table and refusals, URL expiry and refresh, retries,
//! changed files and secrets, against the real backend and store with faults
//! injected on loopback.

mod common;

use common::*;
use s3bgu_core::{ErrorCode, NewUpload, Selector, UploadState};
use s3bgu_testkit::Route;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_than_ten_thousand_parts_is_refused() {
    let h = harness().await;
    let e = env(&h, 2).await;
    // 10,001 bytes in 1-byte parts.
    h.faults.fail_backend(
        Route::StartUpload,
        1,
        200,
        r#"{"key":"k","uploadId":"u","partSize":1}"#,
    );
    let u = e.add(&e.file("many.bin", 10_001), "t").await;
    let done = e.settle(u.id).await;
    assert_eq!(done.state, UploadState::Failed);
    let err = done.error.unwrap();
    assert_eq!(err.code, ErrorCode::BackendInvalidResponse);
    assert!(err.message.contains("10001 parts"), "{}", err.message);
    assert_eq!(h.stats.total_part_puts(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backend_4xx_fails_with_status_and_excerpt() {
    let h = harness().await;
    let e = env(&h, 2).await;
    h.faults
        .fail_backend(Route::StartUpload, 1, 422, r#"{"error":"quota exceeded"}"#);
    let u = e.add(&e.file("x.bin", 10), "t").await;
    let done = e.settle(u.id).await;
    assert_eq!(done.state, UploadState::Failed);
    let err = done.error.unwrap();
    assert_eq!(err.code, ErrorCode::BackendRejected);
    assert!(err.message.contains("422"), "{}", err.message);
    assert!(err.message.contains("quota exceeded"), "{}", err.message);
    // FAILED is resumable: the retry goes through.
    e.uploader.resume(Selector::Upload(u.id)).await.unwrap();
    assert_eq!(e.settle(u.id).await.state, UploadState::Completed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_backend_errors_are_retried_with_retry_after() {
    let h = harness().await;
    let e = env(&h, 2).await;
    h.faults.fail_backend(Route::StartUpload, 2, 503, "busy");
    h.faults.fail_backend_with_header(
        Route::GetUploadUrls,
        1,
        429,
        "slow down",
        "Retry-After",
        "1",
    );
    h.faults.fail_backend(Route::Complete, 1, 500, "oops");
    let path = e.file("x.bin", PART + 5);
    let u = e.add(&path, "t").await;
    let started = Instant::now();
    let done = e.settle(u.id).await;
    assert_eq!(done.state, UploadState::Completed, "{done:?}");
    assert!(
        started.elapsed() >= Duration::from_millis(950),
        "Retry-After: 1 was honoured"
    );
    assert_eq!(h.stats.backend_calls(Route::StartUpload), 3);
    assert_eq!(h.stats.backend_calls(Route::Complete), 2);
    assert_object(&h, &done, &path);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_are_bounded_then_resume_starts_a_new_round() {
    let h = harness().await;
    let e = env(&h, 1).await;
    // fast_retry allows 4 attempts.
    h.faults.fail_puts(4, 503);
    let path = e.file("x.bin", 1000);
    let u = e.add(&path, "t").await;
    let done = e.settle(u.id).await;
    assert_eq!(done.state, UploadState::Failed);
    let err = done.error.unwrap();
    assert_eq!(err.code, ErrorCode::StorageUnavailable);
    assert!(
        err.message.contains("gave up after 4 attempts"),
        "{}",
        err.message
    );
    assert_eq!(h.stats.total_part_puts(), 4);
    e.uploader.resume(Selector::Upload(u.id)).await.unwrap();
    let done = e.settle(u.id).await;
    assert_eq!(done.state, UploadState::Completed);
    assert_object(&h, &done, &path);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_connections_and_5xx_on_parts_are_retried() {
    let h = harness().await;
    let e = env(&h, 2).await;
    h.faults.drop_puts(2);
    h.faults.fail_puts_for_part(3, 1, 500);
    let path = e.file("x.bin", PART * 3);
    let u = e.add(&path, "t").await;
    let done = e.settle(u.id).await;
    assert_eq!(done.state, UploadState::Completed, "{done:?}");
    assert_object(&h, &done, &path);
    assert_eq!(h.stats.total_part_puts(), 3 + 2 + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storage_4xx_fails_the_upload() {
    let h = harness().await;
    let e = env(&h, 1).await;
    h.faults.fail_puts(1, 400);
    let u = e.add(&e.file("x.bin", 100), "t").await;
    let done = e.settle(u.id).await;
    assert_eq!(done.state, UploadState::Failed);
    let err = done.error.unwrap();
    assert_eq!(err.code, ErrorCode::StorageRejected);
    assert!(err.message.contains("400"), "{}", err.message);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_403_on_a_part_fetches_a_new_url_then_retries() {
    let h = harness().await;
    let e = env(&h, 1).await;
    h.faults.fail_puts_for_part(2, 2, 403);
    let path = e.file("x.bin", PART * 3);
    let u = e.add(&path, "t").await;
    let done = e.settle(u.id).await;
    assert_eq!(done.state, UploadState::Completed, "{done:?}");
    assert_object(&h, &done, &path);
    let asked_for_2 = h
        .stats
        .requested_parts()
        .iter()
        .filter(|batch| batch.contains(&2))
        .count();
    assert_eq!(
        asked_for_2, 3,
        "part 2's URL was fetched again after each 403"
    );
    assert_eq!(h.stats.part_puts(done.upload_id.as_deref().unwrap(), 2), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn url_refreshes_are_bounded() {
    let h = harness().await;
    let e = env(&h, 1).await;
    h.faults.fail_puts(100, 403);
    let u = e.add(&e.file("x.bin", 100), "t").await;
    let done = e.settle(u.id).await;
    assert_eq!(done.state, UploadState::Failed);
    let err = done.error.unwrap();
    assert_eq!(err.code, ErrorCode::StorageRejected);
    // fast_retry: 3 refreshes, so 4 PUTs in all.
    assert_eq!(h.stats.total_part_puts(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn urls_shorter_lived_than_the_upload_are_refreshed_before_expiry() {
    // URLs live 4 s; each PUT answer is held 3.2 s, so URLs fetched with the
    // first batch are too old (past 3/4 of their life) by the time their turn comes.
    let h = harness_with_ttl(Duration::from_secs(4)).await;
    let e = env(&h, 2).await;
    h.faults.delay_put_responses(Duration::from_millis(3200));
    let path = e.file("slow.bin", PART * 4);
    let u = e.add(&path, "t").await;
    let done = e.settle(u.id).await;
    assert_eq!(done.state, UploadState::Completed, "{done:?}");
    assert_object(&h, &done, &path);
    let batches = h.stats.requested_parts();
    let asked = |p: u32| batches.iter().filter(|b| b.contains(&p)).count();
    assert_eq!(asked(1), 1, "{batches:?}");
    assert!(
        asked(3) >= 2 || asked(4) >= 2,
        "a URL was refreshed before use: {batches:?}"
    );
    assert_eq!(
        h.stats.ok_part_puts(),
        h.stats.total_part_puts(),
        "no PUT was refused: refresh happened before expiry"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_url_in_a_batch_is_retried_not_skipped() {
    let h = harness().await;
    let e = env(&h, 2).await;
    h.faults
        .fail_backend(Route::GetUploadUrls, 1, 200, r#"{"urls":{}}"#);
    let path = e.file("x.bin", PART + 1);
    let u = e.add(&path, "t").await;
    let done = e.settle(u.id).await;
    assert_eq!(done.state, UploadState::Completed);
    assert_eq!(h.stats.backend_calls(Route::GetUploadUrls), 2);
    assert_object(&h, &done, &path);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_401_pauses_with_auth_required_until_new_headers_and_resume() {
    let h = harness().await;
    let e = env(&h, 2).await;
    h.faults
        .fail_backend(Route::StartUpload, 1, 401, "token expired");
    let path = e.file("x.bin", 100);
    let u = e.add(&path, "t").await;
    let paused = e.settle(u.id).await;
    assert_eq!(paused.state, UploadState::Paused);
    assert_eq!(paused.error.as_ref().unwrap().code, ErrorCode::AuthRequired);
    let mut cfg = e.uploader.config().await.unwrap().unwrap();
    cfg.headers = vec![("Authorization".into(), "Bearer fresh-token".into())];
    e.uploader.set_config(cfg).await.unwrap();
    e.uploader.resume(Selector::Upload(u.id)).await.unwrap();
    let done = e.settle(u.id).await;
    assert_eq!(done.state, UploadState::Completed);
    assert!(done.error.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn complete_refused_fails_the_upload() {
    let h = harness().await;
    let e = env(&h, 2).await;
    h.faults.fail_backend(Route::Complete, 1, 409, "conflict");
    let u = e.add(&e.file("x.bin", 100), "t").await;
    let done = e.settle(u.id).await;
    assert_eq!(done.state, UploadState::Failed);
    assert_eq!(done.error.unwrap().code, ErrorCode::BackendRejected);
    // Resume sends complete again (idempotent at the reference backend).
    e.uploader.resume(Selector::Upload(u.id)).await.unwrap();
    let done = e.settle(u.id).await;
    assert_eq!(done.state, UploadState::Completed);
    assert_eq!(h.stats.total_part_puts(), 1, "parts were not sent again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_changed_mid_upload_fails_and_never_completes() {
    let h = harness().await;
    let e = env(&h, 1).await;
    h.faults.delay_put_responses(Duration::from_millis(300));
    // Part 2 is held long enough for the change below to come before
    // part 3 is read, however slow a loaded machine runs this test.
    h.faults.set_put_delay_for_part(2, Duration::from_secs(3));
    let path = e.file("changing.bin", PART * 4);
    let u = e.add(&path, "t").await;
    e.wait_for(u.id, "one part done", |u| u.parts_done >= 1)
        .await;
    // Same size, new content and mtime.
    std::thread::sleep(Duration::from_millis(20));
    std::fs::write(&path, content(PART * 4, 99)).unwrap();
    let done = e.settle(u.id).await;
    assert_eq!(done.state, UploadState::Failed);
    let err = done.error.unwrap();
    assert_eq!(err.code, ErrorCode::FileChanged, "{}", err.message);
    assert_eq!(h.stats.backend_calls(Route::Complete), 0);
    assert!(h.object_bytes(done.key.as_deref().unwrap()).is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_file_fails_with_file_not_found() {
    let h = harness().await;
    let e = env(&h, 1).await;
    h.faults.delay_put_responses(Duration::from_millis(300));
    // Part 2 is held long enough for the change below to come before
    // part 3 is read, however slow a loaded machine runs this test.
    h.faults.set_put_delay_for_part(2, Duration::from_secs(3));
    let path = e.file("gone.bin", PART * 3);
    let u = e.add(&path, "t").await;
    e.wait_for(u.id, "one part done", |u| u.parts_done >= 1)
        .await;
    std::fs::remove_file(&path).unwrap();
    let done = e.settle(u.id).await;
    assert_eq!(done.state, UploadState::Failed);
    assert_eq!(done.error.unwrap().code, ErrorCode::FileNotFound);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_at_add_is_a_typed_error() {
    let h = harness().await;
    let e = env(&h, 1).await;
    let missing = e
        .uploader
        .add_file(NewUpload {
            path: e.dir.path().join("nope.bin"),
            transfer_id: "t".into(),
            ..NewUpload::default()
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code, ErrorCode::FileNotFound);
    for reserved in ["fileName", "fileHash", "fileSize"] {
        let mut params = serde_json::Map::new();
        params.insert(reserved.into(), "x".into());
        let err = e
            .uploader
            .add_file(NewUpload {
                path: e.file("ok.bin", 1),
                transfer_id: "t".into(),
                user_params: params,
                ..NewUpload::default()
            })
            .await
            .unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidArgument);
        assert!(err.message.contains(reserved));
    }
    let err = e
        .uploader
        .add_file(NewUpload {
            path: e.file("ok.bin", 1),
            transfer_id: "  ".into(),
            ..NewUpload::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidArgument);
    let mut bad = config_for(&h, 1);
    bad.max_parts_in_flight = 0;
    assert_eq!(
        e.uploader.set_config(bad).await.unwrap_err().code,
        ErrorCode::InvalidConfig
    );
    assert!(e.uploader.uploads(Selector::All).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_params_reach_start_upload_and_secrets_stay_out_of_errors() {
    let h = harness().await;
    let e = env(&h, 1).await;
    let mut cfg = e.uploader.config().await.unwrap().unwrap();
    cfg.headers = vec![("Authorization".into(), "Bearer TOPSECRET-123".into())];
    e.uploader.set_config(cfg).await.unwrap();
    // A backend that echoes secrets and a presigned URL in its error body.
    h.faults.fail_backend(
        Route::StartUpload,
        1,
        400,
        "bad: Bearer TOPSECRET-123 album=PRIVATE-ALBUM-9 see https://s3.example/b/k?X-Amz-Signature=deadbeef&X-Amz-Credential=AKIAEXAMPLE",
    );
    let mut params = serde_json::Map::new();
    params.insert("album".into(), "PRIVATE-ALBUM-9".into());
    let u = e
        .uploader
        .add_file(NewUpload {
            path: e.file("x.bin", 10),
            transfer_id: "t".into(),
            user_params: params,
            ..NewUpload::default()
        })
        .await
        .unwrap();
    let done = e.settle(u.id).await;
    let msg = done.error.unwrap().message;
    for secret in [
        "TOPSECRET-123",
        "PRIVATE-ALBUM-9",
        "deadbeef",
        "AKIAEXAMPLE",
    ] {
        assert!(!msg.contains(secret), "{secret} leaked into: {msg}");
    }
    assert!(msg.contains("https://s3.example/b/k"), "{msg}");
    assert_eq!(
        h.stats.last_start_body().unwrap()["album"],
        serde_json::json!("PRIVATE-ALBUM-9"),
        "user params are merged flat into startUpload"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_2xx_without_etag_is_sent_again_then_fails_if_it_persists() {
    let h = harness().await;
    let e = env(&h, 1).await;
    // A lost header once or twice: the part goes again and the upload completes.
    h.faults.strip_etags(2);
    let path = e.file("x.bin", 100);
    let u = e.add(&path, "t").await;
    let done = e.settle(u.id).await;
    assert_eq!(done.state, UploadState::Completed, "{:?}", done.error);
    assert_object(&h, &done, &path);
    assert_eq!(h.stats.total_part_puts(), 3);

    // Never an ETag: bounded, then FAILED with advice.
    h.faults.strip_etags(100);
    h.stats.reset();
    let u = e.add(&e.file("y.bin", 200), "t").await;
    let done = e.settle(u.id).await;
    assert_eq!(done.state, UploadState::Failed);
    let err = done.error.unwrap();
    assert_eq!(err.code, ErrorCode::StorageRejected);
    assert!(err.message.contains("without an ETag"), "{}", err.message);
    assert!(
        err.message.contains("gave up after 4 attempts"),
        "{}",
        err.message
    );
    assert_eq!(h.stats.total_part_puts(), fast_retry().max_attempts);
    assert_eq!(h.stats.backend_calls(Route::Complete), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_400_saying_expired_refreshes_the_url() {
    let h = harness().await;
    let e = env(&h, 1).await;
    h.faults.fail_puts_with_body(
        1,
        400,
        "<Error><Code>ExpiredToken</Code><Message>The provided token has expired.</Message></Error>",
    );
    let path = e.file("x.bin", 100);
    let u = e.add(&path, "t").await;
    let done = e.settle(u.id).await;
    assert_eq!(done.state, UploadState::Completed, "{done:?}");
    assert_eq!(
        h.stats.backend_calls(Route::GetUploadUrls),
        2,
        "a new URL was fetched"
    );
    assert_object(&h, &done, &path);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backoff_is_persisted_so_a_restart_does_not_hammer_the_backend() {
    let h = harness().await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("queue.db");
    let path = write_file(dir.path(), "x.bin", 1000, 1);
    h.faults
        .fail_backend_with_header(Route::StartUpload, 1, 503, "busy", "Retry-After", "3");
    let first = Instant::now();
    let id = {
        let up = open(&db);
        // Retry-After is honoured up to ten times the longest delay.
        let mut cfg = config_for(&h, 1);
        cfg.retry.max_delay_ms = 1_000;
        up.set_config(cfg).await.unwrap();
        let u = up
            .add_file(NewUpload {
                path: path.clone(),
                transfer_id: "t".into(),
                ..NewUpload::default()
            })
            .await
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while h.stats.backend_calls(Route::StartUpload) == 0 {
            assert!(Instant::now() < deadline);
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // Let the failure be recorded, then stop.
        tokio::time::sleep(Duration::from_millis(200)).await;
        up.shutdown().await;
        u.id
    };
    let up = open(&db);
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(
        h.stats.backend_calls(Route::StartUpload),
        1,
        "the restarted engine waits for the stored next-attempt time"
    );
    let done = tokio::time::timeout(Duration::from_secs(30), up.wait_idle(Selector::Upload(id)))
        .await
        .unwrap()
        .unwrap()
        .remove(0);
    assert_eq!(done.state, UploadState::Completed);
    assert!(
        first.elapsed() >= Duration::from_millis(2900),
        "Retry-After held across the restart"
    );
    assert_eq!(h.stats.backend_calls(Route::StartUpload), 2);
}
