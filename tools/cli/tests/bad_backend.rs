//! The bad-backend matrix: every field of every answer missing, mistyped,
//! null or absurd, plus broken transports (HTML pages, empty answers,
//! bodies of a GiB, redirect loops). Each case is its own test and must end
//! with the documented error code and a message a person can act on, with
//! no secret in it, no panic, no hang, and a queue database that
//! `s3bgu status` still reads.

use s3bgu_core::{
    Config, ErrorCode, NewUpload, RetryPolicy, Selector, UploadInfo, UploadState, Uploader,
    UploaderOptions,
};
use s3bgu_testkit::{Harness, HarnessOptions, Route};
use std::path::Path;
use std::time::Duration;

const SECRET_HEADER: &str = "Bearer SECRET-TOKEN-4f1d";
const SECRET_PARAM: &str = "SECRET-PARAM-77a2";
const MIB: u64 = 1024 * 1024;
/// The harness's part size.
const PART: u64 = 5 * MIB;

struct Outcome {
    upload: UploadInfo,
    harness: Harness,
    /// What `s3bgu status --json` printed for the upload.
    status: serde_json::Value,
}

/// Adds one file of `size` bytes after `setup` has planted the fault,
/// waits until it settles, shuts the engine down and reads the queue back
/// with `s3bgu status`.
async fn run_case(size: u64, setup: impl FnOnce(&Harness)) -> Outcome {
    let h = Harness::start(HarnessOptions::default()).await;
    setup(&h);
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("queue.db");
    let uploader = Uploader::open(UploaderOptions::new(&db)).unwrap();
    let mut config = Config::for_base_url(&h.backend_url);
    config.headers = vec![("Authorization".into(), SECRET_HEADER.into())];
    config.retry = RetryPolicy {
        max_attempts: 3,
        base_delay_ms: 10,
        max_delay_ms: 50,
        max_url_refreshes: 2,
        request_timeout_ms: 10_000,
        stall_timeout_ms: 10_000,
    };
    uploader.set_config(config).await.unwrap();
    let path = dir.path().join("file.bin");
    write_file(&path, size);
    let mut params = serde_json::Map::new();
    params.insert("album".into(), SECRET_PARAM.into());
    let added = uploader
        .add_file(NewUpload {
            path,
            transfer_id: "matrix".into(),
            user_params: params,
            ..NewUpload::default()
        })
        .await
        .expect("add_file");
    tokio::time::timeout(
        Duration::from_secs(60),
        uploader.wait_idle(Selector::Upload(added.id)),
    )
    .await
    .expect("no hang: the upload settles within 60 s")
    .unwrap();
    let upload = uploader
        .uploads(Selector::Upload(added.id))
        .await
        .unwrap()
        .pop()
        .unwrap();
    uploader.shutdown().await;
    let status = status_of(&db, added.id);
    Outcome {
        upload,
        harness: h,
        status,
    }
}

fn write_file(path: &Path, size: u64) {
    let bytes: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
    std::fs::write(path, bytes).unwrap();
}

/// Runs `s3bgu status --json` on the database and returns the upload's entry.
fn status_of(db: &Path, id: i64) -> serde_json::Value {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_s3bgu"))
        .args(["status", "--json", "--db"])
        .arg(db)
        .output()
        .unwrap();
    // 0: nothing left to do, 3: some failed, 4: some unfinished.
    assert!(
        matches!(out.status.code(), Some(0 | 3 | 4)),
        "s3bgu status failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    report["uploads"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["id"] == id)
        .cloned()
        .expect("status lists the upload")
}

/// The upload FAILED with `code`, a message containing `needle`, no secret
/// in it, and `s3bgu status` shows the same.
fn assert_failed(o: &Outcome, code: ErrorCode, needle: &str) {
    assert_eq!(o.upload.state, UploadState::Failed, "{:?}", o.upload.error);
    let err = o.upload.error.as_ref().expect("an error");
    assert_eq!(err.code, code, "{}", err.message);
    assert!(
        err.message.contains(needle),
        "message should mention {needle:?}: {}",
        err.message
    );
    for secret in [
        SECRET_HEADER,
        "SECRET-TOKEN",
        SECRET_PARAM,
        "X-Amz-Signature=",
    ] {
        assert!(!err.message.contains(secret), "secret in: {}", err.message);
    }
    assert!(err.message.len() < 600, "short message: {}", err.message);
    assert_eq!(o.status["state"], "FAILED");
    assert_eq!(o.status["error"]["code"], code.as_str());
    assert_eq!(o.status["error"]["message"], err.message.as_str());
}

/// A startUpload answer that breaks the contract: FAILED before any storage traffic.
async fn bad_start(body: &str, code: ErrorCode, needle: &str) {
    let body = body.to_owned();
    let o = run_case(100, |h| {
        h.faults.fail_backend(Route::StartUpload, 100, 200, &body)
    })
    .await;
    assert_failed(&o, code, needle);
    assert_eq!(
        o.harness.stats.total_part_puts(),
        0,
        "nothing sent to storage"
    );
    assert_eq!(o.harness.stats.backend_calls(Route::GetUploadUrls), 0);
}

/// A getUploadUrls answer that breaks the contract for a two-part file.
async fn bad_urls(body: &str, code: ErrorCode, needle: &str) {
    let body = body.to_owned();
    let o = run_case(PART + 1, |h| {
        h.faults.fail_backend(Route::GetUploadUrls, 100, 200, &body)
    })
    .await;
    assert_failed(&o, code, needle);
    assert_eq!(
        o.harness.stats.total_part_puts(),
        0,
        "nothing sent to storage"
    );
    assert_eq!(o.harness.stats.backend_calls(Route::Complete), 0);
}

const START_OK: &str = r#""key":"uploads/k","uploadId":"u1","partSize":5242880"#;

fn start_without(field: &str, replacement: &str) -> String {
    let mut fields: Vec<String> = START_OK.split(',').map(str::to_owned).collect();
    fields.retain(|f| !f.starts_with(&format!("\"{field}\"")));
    if !replacement.is_empty() {
        fields.push(replacement.to_owned());
    }
    format!("{{{}}}", fields.join(","))
}

macro_rules! start_field_case {
    ($name:ident, $field:literal, $replacement:literal, $needle:literal) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            bad_start(
                &start_without($field, $replacement),
                ErrorCode::BackendInvalidResponse,
                $needle,
            )
            .await;
        }
    };
}

// startUpload: each field missing, null, mistyped or absurd.
start_field_case!(start_key_missing, "key", "", "\"key\" is missing");
start_field_case!(start_key_null, "key", r#""key":null"#, "\"key\" is null");
start_field_case!(
    start_key_number,
    "key",
    r#""key":7"#,
    "\"key\" must be a string"
);
start_field_case!(
    start_key_with_dot_segments,
    "key",
    r#""key":"uploads/../etc/passwd""#,
    "'.' or '..' segments"
);
start_field_case!(start_key_empty, "key", r#""key":"""#, "\"key\" is empty");
start_field_case!(
    start_upload_id_missing,
    "uploadId",
    "",
    "\"uploadId\" is missing"
);
start_field_case!(
    start_upload_id_null,
    "uploadId",
    r#""uploadId":null"#,
    "\"uploadId\" is null"
);
start_field_case!(
    start_upload_id_object,
    "uploadId",
    r#""uploadId":{"id":"u1"}"#,
    "\"uploadId\" must be a string"
);
start_field_case!(
    start_part_size_missing,
    "partSize",
    "",
    "\"partSize\" is missing"
);
start_field_case!(
    start_part_size_null,
    "partSize",
    r#""partSize":null"#,
    "\"partSize\" is null"
);
start_field_case!(
    start_part_size_string,
    "partSize",
    r#""partSize":"5242880""#,
    "\"partSize\" must be a number"
);
start_field_case!(
    start_part_size_zero,
    "partSize",
    r#""partSize":0"#,
    "outside 1..=5 GiB"
);
start_field_case!(
    start_part_size_negative,
    "partSize",
    r#""partSize":-5242880"#,
    "must be a positive integer"
);
start_field_case!(
    start_part_size_fractional,
    "partSize",
    r#""partSize":5242880.5"#,
    "must be a positive integer"
);
start_field_case!(
    start_part_size_six_gib,
    "partSize",
    r#""partSize":6442450944"#,
    "outside 1..=5 GiB"
);
start_field_case!(
    start_part_size_beyond_u64,
    "partSize",
    r#""partSize":1e30"#,
    "must be a positive integer"
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_part_size_giving_10001_parts() {
    // 10,001 bytes in parts of 1 byte.
    let o = run_case(10_001, |h| {
        h.faults.fail_backend(
            Route::StartUpload,
            100,
            200,
            r#"{"key":"uploads/k","uploadId":"u1","partSize":1}"#,
        )
    })
    .await;
    assert_failed(&o, ErrorCode::BackendInvalidResponse, "10001 parts");
    assert_eq!(o.harness.stats.total_part_puts(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_answer_is_an_array() {
    bad_start(
        "[1,2,3]",
        ErrorCode::BackendInvalidResponse,
        "expected a JSON object",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_answer_is_an_html_page() {
    bad_start(
        "<!DOCTYPE html><html><body>Sign in to the hotel wifi</body></html>",
        ErrorCode::BackendInvalidResponse,
        "not JSON",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_answer_is_an_empty_200() {
    bad_start("", ErrorCode::BackendInvalidResponse, "answer is empty").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_answer_is_truncated_json() {
    bad_start(
        r#"{"key":"uploads/k","uploadId":"u1","partS"#,
        ErrorCode::BackendInvalidResponse,
        "not JSON",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_answer_of_one_gib_with_content_length() {
    let o = run_case(100, |h| {
        h.faults
            .huge_backend_answer(Route::StartUpload, 100, 200, 1 << 30, true)
    })
    .await;
    assert_failed(&o, ErrorCode::BackendInvalidResponse, "larger than 32 MiB");
    // Refused on the header: no retry of a deliberate answer.
    assert_eq!(o.harness.stats.backend_calls(Route::StartUpload), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_answer_of_one_gib_chunked() {
    let o = run_case(100, |h| {
        h.faults
            .huge_backend_answer(Route::StartUpload, 100, 200, 1 << 30, false)
    })
    .await;
    assert_failed(&o, ErrorCode::BackendInvalidResponse, "larger than 32 MiB");
    assert_eq!(o.harness.stats.backend_calls(Route::StartUpload), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_redirect_loop() {
    let o = run_case(100, |h| {
        let here = h.start_url();
        h.faults
            .fail_backend_with_header(Route::StartUpload, 100, 302, "", "Location", &here)
    })
    .await;
    assert_failed(&o, ErrorCode::BackendRejected, "redirects are not followed");
    assert_eq!(o.harness.stats.backend_calls(Route::StartUpload), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_html_error_page_is_retried_then_unavailable() {
    let o = run_case(100, |h| {
        h.faults.fail_backend(
            Route::StartUpload,
            100,
            502,
            "<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>",
        )
    })
    .await;
    assert_failed(&o, ErrorCode::BackendUnavailable, "HTTP 502");
    assert!(o
        .upload
        .error
        .as_ref()
        .unwrap()
        .message
        .contains("gave up after 3 attempts"));
    assert_eq!(o.harness.stats.backend_calls(Route::StartUpload), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_4xx_echoing_secrets_is_rejected_without_them() {
    let body = format!(
        r#"{{"error":"quota exceeded","authorization":"{SECRET_HEADER}","album":"{SECRET_PARAM}"}}"#
    );
    let o = run_case(100, |h| {
        h.faults.fail_backend(Route::StartUpload, 100, 413, &body)
    })
    .await;
    assert_failed(&o, ErrorCode::BackendRejected, "quota exceeded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_id_with_slash_plus_equals_and_spaces_round_trips() {
    let alias = "a/b+c=d e%f?g#h";
    let o = run_case(PART + 7, |h| h.faults.alias_upload_id(alias)).await;
    assert_eq!(
        o.upload.state,
        UploadState::Completed,
        "{:?}",
        o.upload.error
    );
    assert_eq!(o.upload.upload_id.as_deref(), Some(alias));
    let received = o.harness.stats.upload_ids_received();
    assert!(received.contains(&(Route::GetUploadUrls, alias.to_owned())));
    assert!(
        received.contains(&(Route::Complete, alias.to_owned())),
        "complete path carried the id intact: {received:?}"
    );
    assert_eq!(o.status["state"], "COMPLETED");
}

// getUploadUrls.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn urls_missing_a_part_is_asked_again_then_fails() {
    let o = run_case(PART + 1, |h| {
        h.faults.fail_backend(
            Route::GetUploadUrls,
            100,
            200,
            r#"{"urls":{"1":"http://127.0.0.1:9/x"}}"#,
        )
    })
    .await;
    assert_failed(&o, ErrorCode::BackendInvalidResponse, "no URL for part 2");
    assert_eq!(o.harness.stats.backend_calls(Route::GetUploadUrls), 3);
    assert_eq!(o.harness.stats.total_part_puts(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn urls_value_is_not_a_url() {
    bad_urls(
        r#"{"urls":{"1":"not a url","2":"also not"}}"#,
        ErrorCode::BackendInvalidResponse,
        "not an http(s) URL",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn urls_value_has_another_scheme() {
    bad_urls(
        r#"{"urls":{"1":"file:///etc/passwd","2":"ftp://h/x"}}"#,
        ErrorCode::BackendInvalidResponse,
        "not an http(s) URL",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn urls_value_is_a_number() {
    bad_urls(
        r#"{"urls":{"1":17,"2":18}}"#,
        ErrorCode::BackendInvalidResponse,
        "must be a string",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn urls_field_missing() {
    bad_urls(
        r#"{"links":{}}"#,
        ErrorCode::BackendInvalidResponse,
        "\"urls\" is missing",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn urls_field_null() {
    bad_urls(
        r#"{"urls":null}"#,
        ErrorCode::BackendInvalidResponse,
        "\"urls\" is null",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn urls_field_is_an_array() {
    bad_urls(
        r#"{"urls":["http://127.0.0.1:9/1","http://127.0.0.1:9/2"]}"#,
        ErrorCode::BackendInvalidResponse,
        "\"urls\" must be an object",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn urls_answer_of_one_gib() {
    let o = run_case(PART + 1, |h| {
        h.faults
            .huge_backend_answer(Route::GetUploadUrls, 100, 200, 1 << 30, false)
    })
    .await;
    assert_failed(&o, ErrorCode::BackendInvalidResponse, "larger than 32 MiB");
    assert_eq!(o.harness.stats.total_part_puts(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn urls_redirect_loop() {
    let o = run_case(PART + 1, |h| {
        let here = h.urls_url();
        h.faults
            .fail_backend_with_header(Route::GetUploadUrls, 100, 307, "", "Location", &here)
    })
    .await;
    assert_failed(&o, ErrorCode::BackendRejected, "redirects are not followed");
}

// complete.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn complete_404_html_page_fails_with_an_excerpt() {
    let o = run_case(100, |h| {
        h.faults.fail_backend(
            Route::Complete,
            100,
            404,
            "<html><body><h1>No such route</h1></body></html>",
        )
    })
    .await;
    assert_failed(&o, ErrorCode::BackendRejected, "No such route");
    assert_eq!(o.harness.stats.backend_calls(Route::Complete), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn complete_answered_with_garbage_2xx_still_completes() {
    // The contract ignores the body of a 2xx complete.
    let o = run_case(100, |h| {
        h.faults
            .fail_backend(Route::Complete, 1, 200, "<html>whatever</html>")
    })
    .await;
    assert_eq!(
        o.upload.state,
        UploadState::Completed,
        "{:?}",
        o.upload.error
    );
    assert_eq!(o.status["state"], "COMPLETED");
}
