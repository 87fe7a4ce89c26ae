//! Life on a phone: URLs with absurd lifetimes, answers that stop halfway,
//! clocks set back, URLs dead on arrival and slow uplinks, against the real
//! backend and store on loopback with faults injected.

mod common;

use common::*;
use s3bgu_core::{
    ErrorCode, HandoffSettings, PartTask, PartTransport, Selector, TaskOutcome, TaskReporter,
    UploadState,
};
use s3bgu_testkit::Route;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_url_with_a_huge_expiry_does_not_stop_the_engine() {
    let h = harness().await;
    let e = env(&h, 1).await;
    // Beyond what an Instant or SystemTime can add: it used to panic the
    // engine task. The URL no longer matches its signature, so the store
    // refuses it (403 here) and a fresh one is fetched.
    h.faults.rewrite_url_expiry(1, "10000000000000000000");
    h.faults.fail_puts(1, 403);
    let path = e.file("x.bin", 1000);
    let u = e.add(&path, "t").await;
    let done = e.settle(u.id).await;
    assert_eq!(done.state, UploadState::Completed, "{:?}", done.error);
    assert_object(&h, &done, &path);
    assert_eq!(h.stats.backend_calls(Route::GetUploadUrls), 2);
    // The engine still answers.
    e.uploader.summary(None).await.expect("engine alive");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_error_answer_whose_body_stalls_is_abandoned_and_retried() {
    let h = harness().await;
    let e = env(&h, 1).await;
    let mut config = config_for(&h, 1);
    config.retry.stall_timeout_ms = 300;
    config.retry.request_timeout_ms = 300;
    e.uploader.set_config(config).await.unwrap();
    // 503, Content-Length: 100, 10 bytes, then silence on an open connection.
    h.faults.stall_put_answers(1, 503);
    let path = e.file("x.bin", 1000);
    let u = e.add(&path, "t").await;
    let done = e.settle(u.id).await;
    assert_eq!(done.state, UploadState::Completed, "{:?}", done.error);
    assert_object(&h, &done, &path);
    assert_eq!(h.stats.total_part_puts(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_far_future_retry_time_in_the_database_is_held_to_the_policy() {
    let h = harness().await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("queue.db");
    let path = write_file(dir.path(), "x.bin", 1000, 1);
    // Retry-After holds the retry (1 s, within fast_retry's bound) long
    // enough to stop the engine first.
    h.faults
        .fail_backend_with_header(Route::StartUpload, 1, 503, "busy", "Retry-After", "1");
    let id = {
        let up = open(&db);
        up.set_config(config_for(&h, 1)).await.unwrap();
        let u = add(&up, &path, "t").await.unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while h.stats.backend_calls(Route::StartUpload) == 0 {
            assert!(std::time::Instant::now() < deadline);
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        up.stop().await.unwrap();
        up.shutdown().await;
        u.id
    };
    // As if the clock had been a day ahead when the wait was stored, and
    // was then set right.
    let day_ahead = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
        + 86_400_000;
    {
        let conn = rusqlite::Connection::open(&db).unwrap();
        let n = conn
            .execute(
                "UPDATE uploads SET next_attempt_at = ?1 WHERE id = ?2",
                rusqlite::params![day_ahead, id],
            )
            .unwrap();
        assert_eq!(n, 1);
    }
    let up = open(&db);
    // fast_retry: longest wait 10 x 100 ms.
    let done = tokio::time::timeout(Duration::from_secs(30), up.wait_idle(Selector::Upload(id)))
        .await
        .expect("the upload goes on within the policy's bound, not a day later")
        .unwrap()
        .remove(0);
    assert_eq!(done.state, UploadState::Completed, "{:?}", done.error);
    assert_eq!(h.stats.backend_calls(Route::StartUpload), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn urls_dead_on_arrival_count_as_failed_attempts() {
    let h = harness().await;
    let e = env(&h, 1).await;
    // X-Amz-Expires=0 on every answer: never usable.
    h.faults.rewrite_url_expiry(1_000, "0");
    let u = e.add(&e.file("x.bin", 1000), "t").await;
    let done = e.settle(u.id).await;
    assert_eq!(done.state, UploadState::Failed);
    let err = done.error.expect("error");
    assert_eq!(
        err.code,
        ErrorCode::BackendInvalidResponse,
        "{}",
        err.message
    );
    assert!(err.message.contains("clock"), "{}", err.message);
    assert!(err.message.contains("X-Amz-Expires"), "{}", err.message);
    // fast_retry allows 4 attempts; not one part was sent.
    assert_eq!(h.stats.backend_calls(Route::GetUploadUrls), 4);
    assert_eq!(h.stats.total_part_puts(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_handed_over_long_before_the_answer_is_not_a_stall() {
    let h = harness().await;
    let e = env(&h, 1).await;
    let mut config = config_for(&h, 1);
    config.retry.stall_timeout_ms = 300;
    config.retry.request_timeout_ms = 10_000;
    e.uploader.set_config(config).await.unwrap();
    // The store takes the body only after 1.5 s (a slow uplink draining
    // its buffers): the client handed all of it to the socket at once.
    h.faults.delay_puts(Duration::from_millis(1_500));
    let path = e.file("x.bin", 64 * 1024);
    let u = e.add(&path, "t").await;
    let done = e.settle(u.id).await;
    assert_eq!(done.state, UploadState::Completed, "{:?}", done.error);
    assert_object(&h, &done, &path);
    assert_eq!(h.stats.total_part_puts(), 1, "no attempt was abandoned");
}

/// A platform transport that sends nothing and reports every task as the
/// storage's refusal, with a given body.
struct Refusing {
    reporter: Mutex<Option<TaskReporter>>,
    body: String,
    submitted: AtomicUsize,
}

impl PartTransport for Refusing {
    fn submit(&self, task: PartTask) -> Result<(), String> {
        self.submitted.fetch_add(1, Ordering::SeqCst);
        let reporter = self.reporter.lock().unwrap().clone().expect("a reporter");
        reporter.report(
            task.task_id,
            TaskOutcome::Response {
                status: 400,
                etag: None,
                retry_after: None,
                body: self.body.clone(),
            },
        );
        Ok(())
    }

    fn cancel(&self, _task_id: &str) {}
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_error_body_reported_by_the_platform_is_capped() {
    let h = harness().await;
    let e = env(&h, 1).await;
    // 8 MiB of an S3 error echoing a presigned URL, 100k times: read whole
    // and redacted search by search, this kept the engine busy for hours.
    let echo = "<Error><Code>InvalidRequest</Code><URL>https://s3.example/b/k?\
                X-Amz-Signature=s3cr3t-sig</URL></Error> ";
    let body = echo.repeat(8 * MIB as usize / echo.len());
    assert!(body.len() > 7 * MIB as usize);
    let t = Arc::new(Refusing {
        reporter: Mutex::new(Some(e.uploader.task_reporter())),
        body,
        submitted: AtomicUsize::new(0),
    });
    e.uploader.set_part_transport(
        Some(t.clone() as Arc<dyn PartTransport>),
        HandoffSettings::default(),
    );
    e.uploader.set_handoff(true).await.unwrap();
    let u = e.add(&e.file("x.bin", 1000), "t").await;
    let done = e.settle(u.id).await;
    assert_eq!(done.state, UploadState::Failed);
    assert_eq!(t.submitted.load(Ordering::SeqCst), 1);
    let err = done.error.expect("error");
    assert_eq!(err.code, ErrorCode::StorageRejected, "{}", err.message);
    assert!(err.message.contains("HTTP 400"), "{}", err.message);
    assert!(err.message.contains("InvalidRequest"), "{}", err.message);
    assert!(!err.message.contains("s3cr3t"), "{}", err.message);
    // An excerpt, not the body.
    assert!(err.message.len() < 1024, "{} bytes", err.message.len());
    e.uploader.status().await.expect("engine alive");
}

/// Marker secrets: none may appear in any formatting of the types below.
const MARKERS: &[&str] = &[
    "SIG-MARKER-1",
    "CRED-MARKER-2",
    "TOKEN-MARKER-3",
    "PARAM-MARKER-4",
    "URI-MARKER-5",
    "KEY-MARKER-6",
];

/// Texts that show a marker, with what formatted them.
#[derive(Default)]
struct Leaks(Vec<String>);

impl Leaks {
    fn check(&mut self, what: &str, text: &str) {
        for m in MARKERS {
            if text.contains(m) {
                self.0.push(format!("{what} shows {m}: {text}"));
            }
        }
    }

    /// `{:?}` and `{:#?}` of `v`.
    fn debug(&mut self, what: &str, v: &impl std::fmt::Debug) {
        self.check(what, &format!("{v:?}"));
        self.check(what, &format!("{v:#?}"));
    }

    /// `Debug`, and `Display`: what the generated Kotlin `toString` and
    /// Swift `description` of an exported record return.
    fn foreign(&mut self, what: &str, v: &(impl std::fmt::Debug + std::fmt::Display)) {
        self.debug(what, v);
        self.check(what, &v.to_string());
    }
}

const SECRET_URL: &str = "https://s3.example/bucket/key?partNumber=1&uploadId=u\
                          &X-Amz-Credential=CRED-MARKER-2&X-Amz-Signature=SIG-MARKER-1";

#[test]
fn formatting_types_that_hold_secrets_shows_none() {
    let mut leaks = Leaks::default();
    let mut config = s3bgu_core::Config::for_base_url("https://api.example/up");
    config.start_upload_url = "https://api.example/up/startUpload?apiKey=KEY-MARKER-6".into();
    config.headers = vec![
        ("Authorization".into(), "Bearer TOKEN-MARKER-3".into()),
        ("X-Api-Key".into(), "KEY-MARKER-6".into()),
    ];
    leaks.debug("Config", &config);
    let debug = format!("{config:?}");
    assert!(
        debug.contains("Authorization"),
        "header names stay: {debug}"
    );
    assert!(debug.contains("api.example"), "hosts stay: {debug}");

    let mut user_params = serde_json::Map::new();
    user_params.insert("albumToken".into(), "PARAM-MARKER-4".into());
    user_params.insert(
        "nested".into(),
        serde_json::json!({ "deep": ["PARAM-MARKER-4", 1] }),
    );
    let new = s3bgu_core::NewUpload {
        path: "content://media/doc/1?token=URI-MARKER-5".into(),
        transfer_id: "t".into(),
        file_name: None,
        user_params,
    };
    leaks.debug("NewUpload", &new);
    assert!(
        format!("{new:?}").contains("albumToken"),
        "param names stay"
    );

    let task = PartTask {
        task_id: "task-1".into(),
        upload: 7,
        part_number: 3,
        url: SECRET_URL.into(),
        file_path: "/staging/7-3.part".into(),
        length: 5,
        earliest_begin_ms: 0,
        allow_metered: true,
    };
    leaks.debug("PartTask", &task);
    assert!(
        format!("{task:?}").contains("s3.example/bucket/key"),
        "where it goes stays"
    );

    // What a storage or a platform echoes back.
    let outcomes = [
        TaskOutcome::Response {
            status: 403,
            etag: None,
            retry_after: None,
            body: format!(
                "<Error><Code>SignatureDoesNotMatch</Code><Url>{SECRET_URL}</Url>\
                 <CanonicalQueryString>X-Amz-Credential=CRED-MARKER-2</CanonicalQueryString></Error>"
            ),
        },
        TaskOutcome::TransportError(format!("The request timed out. ({SECRET_URL})")),
    ];
    for o in &outcomes {
        leaks.debug("TaskOutcome", o);
    }

    let source = s3bgu_core::FileSource::parse("s3bgu-bookmark://host/doc?b=URI-MARKER-5").unwrap();
    leaks.debug("FileSource", &source);
    assert!(
        leaks.0.is_empty(),
        "{} leaks:\n{}",
        leaks.0.len(),
        leaks.0.join("\n")
    );
}

#[test]
fn text_forms_of_foreign_records_show_no_secret() {
    use s3bgu_core::ffi;
    let mut leaks = Leaks::default();
    let task = ffi::PartTask {
        task_id: "task-1".into(),
        upload: 7,
        part_number: 3,
        url: SECRET_URL.into(),
        file_path: "/staging/7-3.part".into(),
        length: 5,
        earliest_begin_ms: 0,
        allow_metered: true,
    };
    leaks.foreign("ffi::PartTask", &task);
    assert!(
        task.to_string().contains("s3.example/bucket/key"),
        "where it goes stays"
    );
    for result in [
        ffi::PartTaskResult::NoResponse {
            message: format!("The request timed out. ({SECRET_URL})"),
        },
        ffi::PartTaskResult::Response {
            status: 403,
            etag: None,
            retry_after: None,
            body: format!("<Error><Url>{SECRET_URL}</Url></Error>"),
        },
    ] {
        leaks.foreign("ffi::PartTaskResult", &result);
    }

    let mut config = ffi::config_for_base_url("https://api.example/up".into());
    config.start_upload_url = "https://api.example/up/startUpload?apiKey=KEY-MARKER-6".into();
    config.headers = vec![ffi::HttpHeader {
        name: "Authorization".into(),
        value: "Bearer TOKEN-MARKER-3".into(),
    }];
    leaks.foreign("ffi::HttpHeader", &config.headers[0]);
    leaks.foreign("ffi::UploaderConfig", &config);
    assert!(
        config.to_string().contains("Authorization"),
        "header names stay"
    );

    let file = ffi::NewFile {
        path: "content://media/doc/1?token=URI-MARKER-5".into(),
        transfer_id: "t".into(),
        file_name: None,
        user_params_json: r#"{"albumToken":"PARAM-MARKER-4"}"#.into(),
    };
    leaks.foreign("ffi::NewFile", &file);
    assert!(
        leaks.0.is_empty(),
        "{} leaks:\n{}",
        leaks.0.len(),
        leaks.0.join("\n")
    );
}
