//! At trace level, a whole upload with an `Authorization` header and user
//! params logs no header value, no user-param value and no presigned
//! signature or credential, from the engine or from the libraries under it.

mod common;

use common::MIB;
use s3bgu_testkit::{Harness, HarnessOptions};
use std::path::Path;
use std::process::Command;

const TOKEN: &str = "Bearer tok-5d41402abc4b2a76b9719d911017c592";
const PARAM: &str = "private-album-0c1e2f";

/// Every value following `name=` (up to a delimiter) in `text`.
fn values_after<'a>(text: &'a str, name: &str) -> Vec<&'a str> {
    let lower = text.to_ascii_lowercase();
    let needle = name.to_ascii_lowercase();
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(at) = lower[from..].find(&needle) {
        let start = from + at + needle.len();
        let end = text[start..]
            .find(|c: char| c == '&' || c == '"' || c.is_whitespace() || c == ',' || c == ')')
            .map_or(text.len(), |e| start + e);
        out.push(&text[start..end]);
        from = start;
    }
    out
}

/// Runs `s3bgu upload` at trace level with a secret header and user param;
/// returns its stdout and log after checking that it completed.
fn upload_at_trace_level(dir: &Path, backend: Option<&str>) -> (String, String) {
    let file = dir.join("video.bin");
    common::sparse_file(&file, 11 * MIB);
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_s3bgu"));
    cmd.current_dir(dir)
        .env("S3BGU_LOG", "trace")
        .arg("upload")
        .arg(&file)
        .args(["--header", &format!("Authorization: {TOKEN}")])
        .args(["--param", &format!("album={PARAM}")])
        .arg("--json");
    if let Some(b) = backend {
        cmd.args(["--backend", b]);
    }
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let log = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "upload failed: {stdout}\n{log}");
    assert!(stdout.contains("\"COMPLETED\""), "{stdout}");
    (stdout, log)
}

/// No secret in the output or the log, which is really at trace level.
fn assert_clean(stdout: &str, log: &str, what: &str) {
    assert!(log.contains("TRACE"), "trace level is on");
    assert!(
        log.contains("part upload starts"),
        "engine events are logged"
    );
    assert!(
        log.contains("hyper_util"),
        "the HTTP stack's logs are included"
    );
    for secret in [TOKEN, "tok-5d41402abc4b2a76b9719d911017c592", PARAM] {
        assert!(
            !log.contains(secret),
            "{what}: {secret:?} leaked into the log"
        );
        assert!(!stdout.contains(secret), "{what}: {secret:?} in the report");
    }
    for name in [
        "X-Amz-Signature=",
        "X-Amz-Credential=",
        "X-Amz-Security-Token=",
        "Signature=",
    ] {
        for v in values_after(log, name) {
            assert!(
                v.is_empty() || v.starts_with('[') || v.starts_with('<'),
                "{what}: a {name} value leaked: {v:?}"
            );
        }
    }
    println!(
        "secrets ({what}): {} log lines at trace level, {} bytes, no header value, user param value or signature",
        log.lines().count(),
        log.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trace_logs_of_a_whole_upload_hold_no_secret() {
    let h = Harness::start(HarnessOptions::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let backend = h.backend_url.clone();
    let path = dir.path().to_path_buf();
    let (stdout, log) =
        tokio::task::spawn_blocking(move || upload_at_trace_level(&path, Some(&backend)))
            .await
            .unwrap();
    assert_eq!(h.stats.ok_part_puts(), 3, "3 parts went to the store");
    let params = h.stats.last_start_body().unwrap();
    assert_eq!(params["album"], PARAM, "the param reached the backend");
    assert_clean(&stdout, &log, "explicit backend");
}

#[test]
fn trace_logs_with_the_embedded_backend_and_store_hold_no_secret() {
    // Here the backend and the store log into the same stream.
    let dir = tempfile::tempdir().unwrap();
    let (stdout, log) = upload_at_trace_level(dir.path(), None);
    assert_clean(&stdout, &log, "embedded backend");
}
