//! `s3bgu check` against the harness: the reference backend passes on the
//! plain store and on a store that refuses empty parts and zero-part
//! completes; deliberately broken backends fail exactly what they break.

use s3bgu_testkit::{Broken, Harness, HarnessOptions, Route};
use serde_json::Value;
use std::collections::BTreeSet;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_s3bgu");
const ALL_POINTS: usize = 13;

/// Runs the checker with `--json`; its exit success and report.
fn check(h: &Harness, extra: &[&str]) -> (bool, Value) {
    let out = Command::new(BIN)
        .args(["check", "--backend", &h.backend_url, "--json"])
        .args(extra)
        .output()
        .expect("run s3bgu");
    let text = String::from_utf8_lossy(&out.stdout);
    let v: Value = serde_json::from_str(text.trim()).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {text}\nstderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.success(), v)
}

fn with_status(v: &Value, status: &str) -> BTreeSet<String> {
    v["points"]
        .as_array()
        .expect("points")
        .iter()
        .filter(|p| p["status"] == status)
        .map(|p| p["id"].as_str().expect("id").to_owned())
        .collect()
}

fn set(ids: &[&str]) -> BTreeSet<String> {
    ids.iter().map(|s| (*s).to_owned()).collect()
}

fn assert_all_pass(h: &Harness, v: &Value, ok: bool) {
    assert!(ok, "exit 0 expected: {v:#}");
    assert_eq!(v["passed"], true);
    assert_eq!(
        with_status(v, "passed").len(),
        ALL_POINTS,
        "every point passes: {v:#}"
    );
    // The uploads were real: the store saw every part and the backend every call.
    assert!(h.stats.ok_part_puts() >= 6, "{}", h.stats.ok_part_puts());
    assert!(h.stats.backend_calls(Route::Complete) >= 6);
    assert!(h.stats.backend_calls(Route::Abort) >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reference_backend_passes_on_the_embedded_store() {
    let h = Harness::start(HarnessOptions::default()).await;
    let (ok, v) = check(
        &h,
        &["--param", "album=check", "--header", "X-Client: check"],
    );
    assert_all_pass(&h, &v, ok);
    assert_eq!(h.stats.last_start_body().unwrap()["album"], "check");
    let sizes: Vec<Value> = v["points"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p.get("checked").cloned())
        .collect();
    eprintln!("reference backend, plain store: {ALL_POINTS}/{ALL_POINTS} points passed; {sizes:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reference_backend_passes_on_a_store_refusing_empty_parts_and_zero_part_completes() {
    let h = Harness::start(HarnessOptions::default()).await;
    h.faults.refuse_empty_parts(true);
    h.faults.refuse_zero_part_completes(true);
    let (ok, v) = check(&h, &[]);
    assert_all_pass(&h, &v, ok);
    // The empty file went as a whole-object PUT, never as an empty part.
    let empty_parts = h
        .stats
        .store_requests()
        .iter()
        .filter(|r| r.part.is_some() && r.status == Some(400))
        .count();
    assert_eq!(empty_parts, 0, "no part PUT was refused");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_output_has_one_line_per_point_and_a_summary() {
    let h = Harness::start(HarnessOptions::default()).await;
    h.faults.break_backend(Broken::NoAbortRoute);
    let out = Command::new(BIN)
        .args(["check", "--backend", &h.backend_url])
        .output()
        .expect("run s3bgu");
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), ALL_POINTS + 2, "{text}");
    assert!(lines[0].starts_with("checking the backend at "), "{text}");
    let failed: Vec<&&str> = lines.iter().filter(|l| l.starts_with("FAILED")).collect();
    assert_eq!(failed.len(), 1, "{text}");
    assert!(
        failed[0].contains("abort") && failed[0].contains("HTTP 404"),
        "{text}"
    );
    assert!(
        lines[ALL_POINTS + 1].contains("12 passed, 1 failed, 0 not checked"),
        "{text}"
    );
    // Part URLs carry signatures: none may be printed.
    assert!(!text.contains("X-Amz-Signature"), "{text}");
    assert!(!text.contains(&h.store_url), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_backends_fail_exactly_the_points_they_break() {
    let cases: [(Broken, &[&str], &[&str]); 4] = [
        // S3 refuses parts under 5 MiB at complete, so the several-parts
        // upload fails too (the embedded store enforces it like S3).
        (
            Broken::SmallParts,
            &["part-size-min", "upload-several-parts"],
            &[],
        ),
        (Broken::NonIdempotentComplete, &["complete-idempotent"], &[]),
        // Without an ETag no upload can be completed: those points are not
        // checked rather than failed.
        (
            Broken::NoEtagPassthrough,
            &["put-etag"],
            &[
                "upload-empty",
                "upload-one-byte",
                "upload-one-part",
                "upload-several-parts",
                "awkward-names",
                "complete-idempotent",
            ],
        ),
        (Broken::NoAbortRoute, &["abort"], &[]),
    ];
    for (how, failed, unchecked) in cases {
        let h = Harness::start(HarnessOptions::default()).await;
        h.faults.break_backend(how);
        let (ok, v) = check(&h, &[]);
        assert!(!ok, "{how:?}: exit non-zero");
        assert_eq!(v["passed"], false);
        assert_eq!(with_status(&v, "failed"), set(failed), "{how:?}: {v:#}");
        assert_eq!(
            with_status(&v, "not_checked"),
            set(unchecked),
            "{how:?}: {v:#}"
        );
        for p in v["points"].as_array().unwrap() {
            if p["status"] == "failed" {
                assert!(p["seen"].is_string() && p["expected"].is_string(), "{p}");
            }
        }
        eprintln!(
            "{how:?}: failed {:?}, not checked {}",
            with_status(&v, "failed"),
            unchecked.len()
        );
    }
}

/// Error answers are shown in excerpts, never with a signed URL, a header
/// value or a param value in them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_in_answers_are_not_printed() {
    let h = Harness::start(HarnessOptions::default()).await;
    h.faults.fail_backend(
        Route::StartUpload,
        1,
        500,
        r#"{"error":"token Bearer sekrit-token-123 refused for album holiday-secret-album"}"#,
    );
    h.faults.fail_backend(
        Route::GetUploadUrls,
        1,
        200,
        r#"{"urls":{"1":5},"hint":"http://store.example/b/k?X-Amz-Signature=feedfacecafe&partNumber=1"}"#,
    );
    let out = Command::new(BIN)
        .args(["check", "--backend", &h.backend_url])
        .args(["--header", "Authorization: Bearer sekrit-token-123"])
        .args(["--param", "album=holiday-secret-album"])
        .output()
        .expect("run s3bgu");
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    let failed: Vec<&str> = text.lines().filter(|l| l.starts_with("FAILED")).collect();
    assert_eq!(failed.len(), 2, "{text}");
    // The first startUpload is the malformed one, answered by the fault.
    assert!(
        failed[0].contains("start-bad-request") && failed[0].contains("HTTP 500"),
        "{text}"
    );
    assert!(failed[1].contains("urls-answer"), "{text}");
    for secret in ["sekrit-token-123", "holiday-secret-album", "feedfacecafe"] {
        assert!(!text.contains(secret), "{secret} printed: {text}");
    }
}

/// Runs the checker with `--json` and the given flags (no --backend).
fn check_with(args: &[&str]) -> (bool, Value) {
    let out = Command::new(BIN)
        .arg("check")
        .args(args)
        .arg("--json")
        .output()
        .expect("run s3bgu");
    let text = String::from_utf8_lossy(&out.stdout);
    let v: Value = serde_json::from_str(text.trim()).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {text}\nstderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.success(), v)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_base_url_fails_even_the_bad_request_point() {
    let h = Harness::start(HarnessOptions::default()).await;
    // Every route under it answers 404.
    let wrong = format!("{}/api/v2", h.backend_url);
    let (ok, v) = check_with(&["--backend", &wrong]);
    assert!(!ok);
    assert_eq!(v["passed"], false);
    assert!(with_status(&v, "passed").is_empty(), "{v:#}");
    let bad = v["points"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == "start-bad-request")
        .unwrap();
    assert_eq!(bad["status"], "failed", "{bad}");
    assert!(bad["seen"].as_str().unwrap().contains("404"), "{bad}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_with_their_own_names_are_checked_one_by_one() {
    let h = Harness::start(HarnessOptions::default()).await;
    let route = |name: &str| format!("{}/{name}", h.backend_url);
    let (start, urls, complete, abort) = (
        route("startUpload"),
        route("getUploadUrls"),
        route("complete"),
        route("abort"),
    );
    let (ok, v) = check_with(&[
        "--start-url",
        &start,
        "--urls-url",
        &urls,
        "--complete-url",
        &complete,
        "--abort-url",
        &abort,
    ]);
    assert_all_pass(&h, &v, ok);

    // Without an abort route the abort point is left out, not failed.
    let (ok, v) = check_with(&[
        "--start-url",
        &start,
        "--urls-url",
        &urls,
        "--complete-url",
        &complete,
    ]);
    assert!(ok, "{v:#}");
    assert_eq!(with_status(&v, "passed").len(), ALL_POINTS - 1, "{v:#}");
    assert_eq!(with_status(&v, "not_asked"), set(&["abort"]), "{v:#}");
}
