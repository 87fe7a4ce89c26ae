use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::*;

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client")
}

async fn post(http: &reqwest::Client, url: &str, body: Value) -> (u16, String) {
    let res = http
        .post(url)
        .body(body.to_string())
        .send()
        .await
        .expect("post");
    let status = res.status().as_u16();
    (status, res.text().await.expect("body"))
}

/// Starts an upload and returns its key, upload id and part URLs.
async fn begin(
    h: &Harness,
    http: &reqwest::Client,
    size: u64,
    parts: &[u32],
) -> (String, String, Vec<String>) {
    let (status, body) = post(
        http,
        &h.start_url(),
        json!({ "fileName": "f.bin", "fileHash": "00112233445566778899aabbccddeeff", "fileSize": size }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let started: Value = serde_json::from_str(&body).expect("json");
    let key = started["key"].as_str().expect("key").to_owned();
    let upload_id = started["uploadId"].as_str().expect("uploadId").to_owned();
    let (status, body) = post(
        http,
        &h.urls_url(),
        json!({ "key": key, "uploadId": upload_id, "parts": parts }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let urls: Value = serde_json::from_str(&body).expect("json");
    let urls = parts
        .iter()
        .map(|p| {
            urls["urls"][p.to_string()]
                .as_str()
                .expect("url")
                .to_owned()
        })
        .collect();
    (key, upload_id, urls)
}

#[tokio::test(flavor = "multi_thread")]
async fn faulted_puts_are_answered_and_counted() {
    let h = Harness::start(HarnessOptions::default()).await;
    let http = client();
    let (key, upload_id, urls) = begin(&h, &http, 20, &[1, 2]).await;

    h.faults.fail_puts(1, 403);
    let res = http
        .put(&urls[0])
        .body(vec![1u8; 10])
        .send()
        .await
        .expect("put");
    assert_eq!(res.status(), 403);
    let body = res.text().await.expect("body");
    assert!(body.contains("<Code>AccessDenied</Code>"), "{body}");
    assert!(body.contains("Request has expired"), "{body}");

    // The fault is used up: the retry reaches the store.
    let res = http
        .put(&urls[0])
        .body(vec![1u8; 10])
        .send()
        .await
        .expect("put");
    assert!(res.status().is_success(), "{}", res.status());

    h.faults.fail_puts_for_part(2, 1, 500);
    h.faults.drop_puts(1);
    // Part-specific and general rules apply in the order they were added.
    let res = http
        .put(&urls[1])
        .body(vec![2u8; 10])
        .send()
        .await
        .expect("put");
    assert_eq!(res.status(), 500);
    let dropped = http.put(&urls[1]).body(vec![2u8; 10]).send().await;
    assert!(dropped.is_err(), "a dropped PUT must fail: {dropped:?}");
    let res = http
        .put(&urls[1])
        .body(vec![2u8; 10])
        .send()
        .await
        .expect("put");
    assert!(res.status().is_success(), "{}", res.status());

    let stats = &h.stats;
    assert_eq!(stats.part_puts(&upload_id, 1), 2);
    assert_eq!(stats.part_puts(&upload_id, 2), 3);
    assert_eq!(stats.total_part_puts(), 5);
    assert_eq!(stats.ok_part_puts(), 2);
    assert!(stats.part_put_headers_ok());
    assert_eq!(stats.puts_by_part().len(), 2);
    assert_eq!(stats.backend_calls(Route::StartUpload), 1);
    assert_eq!(stats.backend_calls(Route::GetUploadUrls), 1);
    assert_eq!(stats.backend_calls(Route::Complete), 0);
    assert_eq!(stats.requested_parts(), vec![vec![1, 2]]);
    let dropped_requests = stats
        .store_requests()
        .iter()
        .filter(|r| r.status.is_none())
        .count();
    assert_eq!(dropped_requests, 1);
    assert!(h.object_bytes(&key).is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn backend_faults_replace_answers() {
    let h = Harness::start(HarnessOptions::default()).await;
    let http = client();
    let start =
        json!({ "fileName": "f", "fileHash": "00112233445566778899aabbccddeeff", "fileSize": 1 });

    h.faults
        .fail_backend(Route::StartUpload, 2, 200, "{not json");
    h.faults
        .fail_backend_with_header(Route::StartUpload, 1, 429, "{}", "Retry-After", "7");
    assert_eq!(
        post(&http, &h.start_url(), start.clone()).await,
        (200, "{not json".to_owned())
    );
    assert_eq!(
        post(&http, &h.start_url(), start.clone()).await,
        (200, "{not json".to_owned())
    );
    let res = http
        .post(h.start_url())
        .body(start.to_string())
        .send()
        .await
        .expect("post");
    assert_eq!(res.status(), 429);
    assert_eq!(
        res.headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("7")
    );
    let (status, body) = post(&http, &h.start_url(), start).await;
    assert_eq!(status, 200);
    assert!(serde_json::from_str::<Value>(&body).expect("json")["uploadId"].is_string());
    assert_eq!(h.stats.backend_calls(Route::StartUpload), 4);
}

#[tokio::test(flavor = "multi_thread")]
async fn delayed_puts_overlap_and_complete() {
    let h = Harness::start(HarnessOptions::default()).await;
    let http = client();
    let first = vec![7u8; 5 * 1024 * 1024];
    let (key, upload_id, urls) = begin(&h, &http, first.len() as u64 + 3, &[1, 2]).await;

    h.faults.delay_puts(Duration::from_millis(300));
    let started = Instant::now();
    let (a, b) = tokio::join!(
        http.put(&urls[0]).body(first.clone()).send(),
        http.put(&urls[1]).body(vec![9u8; 3]).send(),
    );
    assert!(started.elapsed() >= Duration::from_millis(300));
    let (a, b) = (a.expect("put 1"), b.expect("put 2"));
    assert!(
        h.stats.max_concurrent_puts() >= 2,
        "{}",
        h.stats.max_concurrent_puts()
    );

    let etag = |r: &reqwest::Response| r.headers()["etag"].to_str().expect("etag").to_owned();
    let parts = json!({ "parts": [
        { "PartNumber": 1, "ETag": etag(&a) },
        { "PartNumber": 2, "ETag": etag(&b) },
    ]});
    let url = format!("{}/{}/{}", h.complete_url(), upload_id, key);
    let (status, body) = post(&http, &url, parts).await;
    assert_eq!(status, 200, "{body}");
    let mut expected = first;
    expected.extend_from_slice(&[9, 9, 9]);
    assert!(h.object_bytes(&key) == Some(expected));
    assert_eq!(h.stats.backend_calls(Route::Complete), 1);
    assert!(h.object_bytes("../.s3bgu-secret").is_none());
}

#[test]
fn works_without_an_async_test() {
    let (h, runtime) = spawn_in_thread(HarnessOptions::default());
    let http = client();
    let status = runtime.block_on(async {
        // Unknown upload ids count as already aborted.
        let url = format!(
            "{}/abort/00000000-0000-4000-8000-000000000000/uploads/x",
            h.backend_url
        );
        let unknown = http.post(url).send().await.expect("post").status();
        // s3s-fs only issues UUIDs, so anything else is a bad request.
        let url = format!("{}/abort/nope/uploads/x", h.backend_url);
        let malformed = http.post(url).send().await.expect("post").status();
        (unknown, malformed)
    });
    assert_eq!(
        status,
        (
            reqwest::StatusCode::NO_CONTENT,
            reqwest::StatusCode::BAD_REQUEST
        )
    );
    assert_eq!(h.stats.backend_calls(Route::Abort), 2);
    drop(h);
}

/// The strict-store rules: an empty part body is refused as some servers
/// do, a complete listing no part as AWS does; anything else still goes
/// through (the complete body is forwarded intact).
#[tokio::test(flavor = "multi_thread")]
async fn strict_rules_refuse_empty_parts_and_zero_part_completes() {
    use rusty_s3::{Bucket, Credentials, S3Action, UrlStyle};
    let h = Harness::start(HarnessOptions::default()).await;
    let http = client();
    let (key, upload_id, urls) = begin(&h, &http, 10, &[1]).await;

    h.faults.refuse_empty_parts(true);
    let res = http
        .put(&urls[0])
        .body(Vec::new())
        .send()
        .await
        .expect("put");
    assert_eq!(res.status(), 400);
    let body = res.text().await.expect("body");
    assert!(body.contains("<Code>InvalidRequest</Code>"), "{body}");
    assert!(body.contains("Empty body"), "{body}");
    let res = http
        .put(&urls[0])
        .body(vec![7u8; 10])
        .send()
        .await
        .expect("put");
    assert!(res.status().is_success(), "{}", res.status());
    let etag = res.headers()["etag"].to_str().expect("etag").to_owned();

    h.faults.refuse_zero_part_completes(true);
    let (access, secret) = s3bgu_backend::embedded_credentials(&h.store_dir).expect("creds");
    let bucket = Bucket::new(
        h.store_url.parse().expect("url"),
        UrlStyle::Path,
        s3bgu_backend::EMBEDDED_BUCKET.to_owned(),
        "us-east-1".to_owned(),
    )
    .expect("bucket");
    let creds = Credentials::new(access, secret);
    let ttl = Duration::from_secs(60);
    let none = rusty_s3::actions::CompleteMultipartUpload::new(
        &bucket,
        Some(&creds),
        &key,
        &upload_id,
        std::iter::empty(),
    );
    let res = http
        .post(none.sign(ttl))
        .body(none.body())
        .send()
        .await
        .expect("complete");
    assert_eq!(res.status(), 400);
    let body = res.text().await.expect("body");
    assert!(body.contains("<Code>MalformedXML</Code>"), "{body}");

    let one = rusty_s3::actions::CompleteMultipartUpload::new(
        &bucket,
        Some(&creds),
        &key,
        &upload_id,
        std::iter::once(etag.as_str()),
    );
    let res = http
        .post(one.sign(ttl))
        .body(one.body())
        .send()
        .await
        .expect("complete");
    assert!(res.status().is_success(), "{}", res.status());
    assert_eq!(h.object_bytes(&key).expect("object"), vec![7u8; 10]);
}
