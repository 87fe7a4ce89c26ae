//! End-to-end tests against a real embedded store on loopback.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use serde_json::{json, Value};

use crate::config::MIB;
use crate::{serve, RunningBackend, ServeOptions, StoreChoice, EMBEDDED_BUCKET};

const FIVE_MIB: usize = 5 * 1024 * 1024;

struct Fixture {
    running: RunningBackend,
    dir: tempfile::TempDir,
    http: reqwest::Client,
}

impl Fixture {
    async fn start(url_ttl: Option<Duration>) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let listen: SocketAddr = "127.0.0.1:0".parse().expect("addr");
        let running = serve(ServeOptions {
            listen,
            store: StoreChoice::Embedded {
                dir: dir.path().join("store"),
            },
            part_size: Some(5 * MIB),
            url_ttl,
            store_port: 0,
            store_public_url: None,
        })
        .await
        .expect("serve");
        let http = reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("client");
        Self { running, dir, http }
    }

    fn store_dir(&self) -> &Path {
        self.dir.path()
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let url = self.running.url.join(path).expect("join");
        let res = self
            .http
            .post(url)
            .body(body.to_string())
            .send()
            .await
            .expect("post");
        let status = res.status().as_u16();
        let text = res.text().await.expect("body");
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).expect("json answer")
        };
        (status, value)
    }

    async fn start_upload(&self, name: &str, size: u64) -> (String, String, u64) {
        self.start_upload_hashed(name, size, "0123456789abcdef0123456789abcdef")
            .await
    }

    async fn start_upload_hashed(
        &self,
        name: &str,
        size: u64,
        hash: &str,
    ) -> (String, String, u64) {
        let (status, v) = self
            .post(
                "startUpload",
                json!({ "fileName": name, "fileHash": hash, "fileSize": size, "extra": [1, 2] }),
            )
            .await;
        assert_eq!(status, 200, "{v}");
        (
            v["key"].as_str().expect("key").to_owned(),
            v["uploadId"].as_str().expect("uploadId").to_owned(),
            v["partSize"].as_u64().expect("partSize"),
        )
    }

    async fn urls(&self, key: &str, upload_id: &str, parts: &[u32]) -> Vec<String> {
        let (status, v) = self
            .post(
                "getUploadUrls",
                json!({ "key": key, "uploadId": upload_id, "parts": parts }),
            )
            .await;
        assert_eq!(status, 200, "{v}");
        parts
            .iter()
            .map(|p| v["urls"][p.to_string()].as_str().expect("url").to_owned())
            .collect()
    }

    async fn put(&self, url: &str, data: Vec<u8>) -> reqwest::Response {
        self.http.put(url).body(data).send().await.expect("put")
    }

    fn complete_path(key: &str, upload_id: &str) -> String {
        format!("complete/{}/{}", encode(upload_id), encode_key(key))
    }

    fn abort_path(key: &str, upload_id: &str) -> String {
        format!("abort/{}/{}", encode(upload_id), encode_key(key))
    }
}

fn encode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// Encodes each segment but keeps the slashes, as clients do.
fn encode_key(key: &str) -> String {
    key.split('/').map(encode).collect::<Vec<_>>().join("/")
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

fn etag_of(res: &reqwest::Response) -> String {
    res.headers()
        .get("etag")
        .and_then(|v| v.to_str().ok())
        .expect("etag header")
        .to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn uploads_completes_and_completes_again() {
    let f = Fixture::start(None).await;
    let first = pattern(FIVE_MIB, 1);
    let second = pattern(12_345, 7);
    let (key, upload_id, part_size) = f
        .start_upload("holiday/clip\\1.mov", (first.len() + second.len()) as u64)
        .await;
    assert_eq!(part_size, 5 * MIB);
    assert!(
        key.starts_with("uploads/0123456789abcdef0123456789abcdef/"),
        "{key}"
    );
    assert!(key.ends_with("/holiday_clip_1.mov"), "{key}");

    let urls = f.urls(&key, &upload_id, &[1, 2]).await;
    let mut parts = Vec::new();
    for (i, (url, data)) in urls.iter().zip([first.clone(), second.clone()]).enumerate() {
        let res = f.put(url, data).await;
        assert!(
            res.status().is_success(),
            "part {} answered {}",
            i + 1,
            res.status()
        );
        parts.push(json!({ "PartNumber": i + 1, "ETag": etag_of(&res) }));
    }

    let path = Fixture::complete_path(&key, &upload_id);
    let (status, done) = f.post(&path, json!({ "parts": parts })).await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(done["key"], key.as_str());
    let etag = done["etag"].as_str().expect("etag").to_owned();
    assert!(etag.ends_with("-2\""), "{etag}");

    let on_disk = std::fs::read(f.store_dir().join("store").join(EMBEDDED_BUCKET).join(&key))
        .expect("object");
    let mut expected = first;
    expected.extend_from_slice(&second);
    assert!(on_disk == expected, "object content differs");

    // A retried completion (lost answer) still succeeds, with the same ETag.
    let (status, again) = f.post(&path, json!({ "parts": parts })).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["etag"], etag.as_str());

    // Different parts do not match the stored object: not a success.
    let wrong = json!({ "parts": [
        { "PartNumber": 1, "ETag": "\"00000000000000000000000000000000\"" },
        { "PartNumber": 2, "ETag": "\"00000000000000000000000000000000\"" },
    ]});
    let (status, v) = f.post(&path, wrong).await;
    assert_eq!(status, 502, "{v}");
    assert!(v["error"].is_string());

    f.running.shutdown().await;
}

/// A 0-byte file: part 1's URL stores the whole (empty) object, complete
/// checks it is there and frees the multipart upload opened for it, and
/// completing again still succeeds.
#[tokio::test(flavor = "multi_thread")]
async fn empty_file_is_one_put_object() {
    let f = Fixture::start(None).await;
    let (key, upload_id, _) = f
        .start_upload_hashed("", 0, crate::empty::EMPTY_CONTENT_HASH)
        .await;
    assert!(key.ends_with("/file"), "{key}");
    let upload_info = f
        .store_dir()
        .join("store")
        .join(format!(".upload-{upload_id}.json"));
    assert!(upload_info.exists(), "a multipart upload was opened");

    let urls = f.urls(&key, &upload_id, &[1]).await;
    let query = url::Url::parse(&urls[0]).expect("url");
    assert!(
        !query
            .query_pairs()
            .any(|(k, _)| k == "uploadId" || k == "partNumber"),
        "part 1 of an empty file is a PutObject URL"
    );
    let (status, v) = f
        .post(
            "getUploadUrls",
            json!({ "key": key, "uploadId": upload_id, "parts": [1, 2] }),
        )
        .await;
    assert_eq!(status, 400, "{v}");

    let path = Fixture::complete_path(&key, &upload_id);
    let md5_of_nothing = "\"d41d8cd98f00b204e9800998ecf8427e\"";
    let parts = json!({ "parts": [{ "PartNumber": 1, "ETag": md5_of_nothing }] });
    let (status, v) = f.post(&path, parts.clone()).await;
    assert!(
        !(200..300).contains(&status),
        "complete before the PUT is not a success: {status} {v}"
    );

    let res = f.put(&urls[0], Vec::new()).await;
    assert!(res.status().is_success(), "{}", res.status());
    let parts = json!({ "parts": [{ "PartNumber": 1, "ETag": etag_of(&res) }] });
    for attempt in 0..2 {
        let (status, v) = f.post(&path, parts.clone()).await;
        assert_eq!(status, 200, "complete #{attempt}: {v}");
        assert_eq!(v["key"], key.as_str());
    }
    let on_disk = std::fs::read(f.store_dir().join("store").join(EMBEDDED_BUCKET).join(&key))
        .expect("object");
    assert!(on_disk.is_empty());
    assert!(!upload_info.exists(), "the multipart upload was aborted");
    let two = json!({ "parts": [
        { "PartNumber": 1, "ETag": md5_of_nothing },
        { "PartNumber": 2, "ETag": md5_of_nothing },
    ]});
    let (status, v) = f.post(&path, two).await;
    assert_eq!(status, 400, "{v}");

    // fileHash and fileSize must agree about emptiness.
    for (hash, size) in [
        ("0123456789abcdef0123456789abcdef", 0),
        (crate::empty::EMPTY_CONTENT_HASH, 3),
    ] {
        let (status, v) = f
            .post(
                "startUpload",
                json!({ "fileName": "a", "fileHash": hash, "fileSize": size }),
            )
            .await;
        assert_eq!(status, 400, "{hash} {size}: {v}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn rejects_bad_requests() {
    let f = Fixture::start(None).await;
    let hash = "0123456789abcdef0123456789abcdef";
    let bad_starts = [
        json!({ "fileHash": hash, "fileSize": 1 }),
        json!({ "fileName": 5, "fileHash": hash, "fileSize": 1 }),
        json!({ "fileName": "a", "fileHash": "ABCDEF", "fileSize": 1 }),
        json!({ "fileName": "a", "fileHash": hash.to_uppercase(), "fileSize": 1 }),
        json!({ "fileName": "a", "fileHash": hash, "fileSize": -1 }),
        json!({ "fileName": "a", "fileHash": hash, "fileSize": 1.5 }),
        json!({ "fileName": "a", "fileHash": hash, "fileSize": "1" }),
        json!({ "fileName": "a", "fileHash": hash }),
        json!([1, 2]),
    ];
    for body in bad_starts {
        let (status, v) = f.post("startUpload", body.clone()).await;
        assert_eq!(status, 400, "{body} -> {v}");
        assert!(v["error"].is_string(), "{v}");
    }
    let url = f.running.url.join("startUpload").expect("join");
    let res = f
        .http
        .post(url)
        .body("{not json")
        .send()
        .await
        .expect("post");
    assert_eq!(res.status(), 400);

    let (key, upload_id, _) = f.start_upload("a.bin", 10).await;
    let too_many: Vec<u32> = (1..=1001).collect();
    let bad_urls = [
        json!({ "key": key, "uploadId": upload_id, "parts": [] }),
        json!({ "key": key, "uploadId": upload_id, "parts": too_many }),
        json!({ "key": key, "uploadId": upload_id, "parts": [0] }),
        json!({ "key": key, "uploadId": upload_id, "parts": [10001] }),
        json!({ "key": key, "uploadId": upload_id, "parts": ["1"] }),
        json!({ "key": key, "uploadId": upload_id }),
        json!({ "key": key, "parts": [1] }),
        json!({ "key": "elsewhere/x", "uploadId": upload_id, "parts": [1] }),
        json!({ "key": "uploads/../x", "uploadId": upload_id, "parts": [1] }),
    ];
    for body in bad_urls {
        let (status, v) = f.post("getUploadUrls", body.clone()).await;
        assert_eq!(status, 400, "{body} -> {v}");
    }
    let edge: Vec<u32> = (9001..=10000).collect();
    assert_eq!(f.urls(&key, &upload_id, &edge).await.len(), 1000);

    let path = Fixture::complete_path(&key, &upload_id);
    let etag = "\"0cc175b9c0f1b6a831c399e269772661\"";
    let bad_completes = [
        json!({ "parts": [] }),
        json!({ "parts": [{ "PartNumber": 2, "ETag": etag }] }),
        json!({ "parts": [{ "PartNumber": 1, "ETag": etag }, { "PartNumber": 3, "ETag": etag }] }),
        json!({ "parts": [{ "PartNumber": 2, "ETag": etag }, { "PartNumber": 1, "ETag": etag }] }),
        json!({ "parts": [{ "PartNumber": 1 }] }),
        json!({ "parts": [{ "PartNumber": 1, "ETag": "" }] }),
        json!({ "parts": "1" }),
        json!({}),
    ];
    for body in bad_completes {
        let (status, v) = f.post(&path, body.clone()).await;
        assert_eq!(status, 400, "{body} -> {v}");
    }
    let outside = Fixture::complete_path("other/key", &upload_id);
    let (status, _) = f
        .post(
            &outside,
            json!({ "parts": [{ "PartNumber": 1, "ETag": etag }] }),
        )
        .await;
    assert_eq!(status, 400);
}

#[tokio::test(flavor = "multi_thread")]
async fn grows_part_size_for_large_files() {
    let f = Fixture::start(None).await;
    let size = 5 * MIB * 10_000 + 1;
    let (_, _, part_size) = f.start_upload("big.iso", size).await;
    assert_eq!(part_size, 6 * MIB);
}

#[tokio::test(flavor = "multi_thread")]
async fn abort_is_idempotent_and_stops_uploads() {
    let f = Fixture::start(None).await;
    let (key, upload_id, _) = f.start_upload("a.bin", 10).await;
    let urls = f.urls(&key, &upload_id, &[1]).await;
    let path = Fixture::abort_path(&key, &upload_id);
    let (status, _) = f.post(&path, Value::Null).await;
    assert_eq!(status, 204);
    let (status, _) = f.post(&path, Value::Null).await;
    assert_eq!(status, 204);
    let res = f.put(&urls[0], b"0123456789".to_vec()).await;
    assert!(res.status().is_client_error(), "{}", res.status());
}

#[tokio::test(flavor = "multi_thread")]
async fn tampered_url_is_refused() {
    let f = Fixture::start(None).await;
    let (key, upload_id, _) = f.start_upload("a.bin", 10).await;
    let url = f.urls(&key, &upload_id, &[1]).await.remove(0);
    // Sign for part 1 but send to part 2.
    let tampered = url.replace("partNumber=1", "partNumber=2");
    assert_ne!(tampered, url);
    let res = f.put(&tampered, b"0123456789".to_vec()).await;
    assert_eq!(res.status(), 403);
}

#[tokio::test(flavor = "multi_thread")]
async fn expired_url_is_refused() {
    let f = Fixture::start(Some(Duration::from_secs(1))).await;
    let (key, upload_id, _) = f.start_upload("a.bin", 10).await;
    let url = f.urls(&key, &upload_id, &[1]).await.remove(0);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let res = f.put(&url, b"0123456789".to_vec()).await;
    assert_eq!(res.status(), 403);
}

#[tokio::test(flavor = "multi_thread")]
async fn uploads_survive_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = dir.path().join("store");
    let listen: SocketAddr = "127.0.0.1:0".parse().expect("addr");
    let http = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    let opts = |store: &Path| ServeOptions {
        listen,
        store: StoreChoice::Embedded {
            dir: store.to_owned(),
        },
        part_size: None,
        url_ttl: None,
        store_port: 0,
        store_public_url: None,
    };

    let first = serve(opts(&store)).await.expect("serve");
    let res = http
        .post(first.url.join("startUpload").expect("join"))
        .body(json!({ "fileName": "x", "fileHash": "0123456789abcdef0123456789abcdef", "fileSize": 3 }).to_string())
        .send()
        .await
        .expect("start");
    let started: Value = serde_json::from_str(&res.text().await.expect("body")).expect("json");
    assert_eq!(started["partSize"], 8 * MIB);
    first.shutdown().await;

    let second = serve(opts(&store)).await.expect("serve again");
    let res = http
        .post(second.url.join("getUploadUrls").expect("join"))
        .body(
            json!({ "key": started["key"], "uploadId": started["uploadId"], "parts": [1] })
                .to_string(),
        )
        .send()
        .await
        .expect("urls");
    let urls: Value = serde_json::from_str(&res.text().await.expect("body")).expect("json");
    let url = urls["urls"]["1"].as_str().expect("url");
    let res = http.put(url).body("abc").send().await.expect("put");
    assert!(res.status().is_success(), "{}", res.status());
}

#[tokio::test(flavor = "multi_thread")]
async fn odd_file_names_round_trip() {
    let f = Fixture::start(None).await;
    for name in [
        "100% a+b #1?&=(x)!'é😀.txt",
        "~tilde;semi:colon,[]{}^`|\"<>.dat",
        " spaced  ",
    ] {
        let (key, upload_id, _) = f.start_upload(name, 3).await;
        let urls = f.urls(&key, &upload_id, &[1]).await;
        let res = f.put(&urls[0], b"abc".to_vec()).await;
        assert!(res.status().is_success(), "{name}: {}", res.status());
        let parts = json!({ "parts": [{ "PartNumber": 1, "ETag": etag_of(&res) }] });
        let (status, v) = f
            .post(&Fixture::complete_path(&key, &upload_id), parts)
            .await;
        assert_eq!(status, 200, "{name}: {v}");
        let on_disk = std::fs::read(f.store_dir().join("store").join(EMBEDDED_BUCKET).join(&key))
            .expect("object");
        assert_eq!(on_disk, b"abc");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn small_non_last_part_is_a_bad_request() {
    let f = Fixture::start(None).await;
    let (key, upload_id, _) = f.start_upload("a.bin", 6).await;
    let urls = f.urls(&key, &upload_id, &[1, 2]).await;
    let mut parts = Vec::new();
    for (i, url) in urls.iter().enumerate() {
        let res = f.put(url, b"abc".to_vec()).await;
        assert!(res.status().is_success());
        parts.push(json!({ "PartNumber": i + 1, "ETag": etag_of(&res) }));
    }
    let path = Fixture::complete_path(&key, &upload_id);
    let (status, v) = f.post(&path, json!({ "parts": parts })).await;
    assert_eq!(status, 400, "{v}");
    assert!(
        v["error"]
            .as_str()
            .is_some_and(|e| e.contains("EntityTooSmall")),
        "{v}"
    );
}

/// A backend listening on every interface, as `s3bgu serve --listen
/// 0.0.0.0:PORT` for a phone.
async fn serve_on_every_interface(
    store: &Path,
    store_public_url: Option<url::Url>,
) -> RunningBackend {
    serve(ServeOptions {
        listen: "0.0.0.0:0".parse().expect("addr"),
        store: StoreChoice::Embedded {
            dir: store.to_owned(),
        },
        part_size: None,
        url_ttl: None,
        store_port: 0,
        store_public_url,
    })
    .await
    .expect("serve")
}

async fn post_json(http: &reqwest::Client, url: url::Url, body: Value) -> Value {
    let res = http
        .post(url)
        .body(body.to_string())
        .send()
        .await
        .expect("post");
    assert!(res.status().is_success(), "{}", res.status());
    serde_json::from_str(&res.text().await.expect("body")).expect("json")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_on_the_network_gets_part_urls_it_can_reach() {
    let lan = crate::lan_address()
        .expect("this test needs a non-loopback IPv4 address with a route (none found)");
    let dir = tempfile::tempdir().expect("tempdir");
    let running = serve_on_every_interface(&dir.path().join("store"), None).await;
    let port = running.url.port().expect("port");
    let lan_url = running.lan_url.clone().expect("a LAN URL");
    assert_eq!(lan_url.host_str(), Some(lan.to_string().as_str()));
    let store_port = running.store_url.port().expect("store port");

    // Everything through the LAN address, as a phone would.
    let http = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    let base: url::Url = format!("http://{lan}:{port}/").parse().expect("url");
    let data = pattern(1000, 9);
    let hash = "00112233445566778899aabbccddeeff";
    let started = post_json(
        &http,
        base.join("startUpload").expect("join"),
        json!({ "fileName": "lan.bin", "fileHash": hash, "fileSize": data.len() }),
    )
    .await;
    let (key, upload_id) = (
        started["key"].as_str().expect("key"),
        started["uploadId"].as_str().expect("uploadId"),
    );
    let urls = post_json(
        &http,
        base.join("getUploadUrls").expect("join"),
        json!({ "key": key, "uploadId": upload_id, "parts": [1] }),
    )
    .await;
    let part_url: url::Url = urls["urls"]["1"]
        .as_str()
        .expect("url")
        .parse()
        .expect("part url");
    // Not the server's loopback: the address the request came in on.
    assert_eq!(
        (part_url.host_str(), part_url.port()),
        (Some(lan.to_string().as_str()), Some(store_port)),
        "{}",
        part_url.origin().ascii_serialization()
    );
    let res = http
        .put(part_url)
        .body(data.clone())
        .send()
        .await
        .expect("put");
    assert!(res.status().is_success(), "{}", res.status());
    let etag = res.headers()["etag"].to_str().expect("etag").to_owned();
    let done = base
        .join(&Fixture::complete_path(key, upload_id))
        .expect("join");
    post_json(
        &http,
        done,
        json!({ "parts": [{ "PartNumber": 1, "ETag": etag }] }),
    )
    .await;
    let stored =
        std::fs::read(dir.path().join("store").join(EMBEDDED_BUCKET).join(key)).expect("object");
    assert_eq!(stored, data);

    // A client that names the machine otherwise (an emulator's alias, a
    // host name) gets that name back, and loopback stays loopback.
    let alias = post_json_with_host(&http, &running, "machine.example:8080", key, upload_id).await;
    assert_eq!(alias.host_str(), Some("machine.example"));
    assert_eq!(alias.port(), Some(store_port));
    let local = post_json(
        &http,
        running.url.join("getUploadUrls").expect("join"),
        json!({ "key": key, "uploadId": upload_id, "parts": [1] }),
    )
    .await;
    assert!(
        local["urls"]["1"]
            .as_str()
            .expect("url")
            .starts_with(&format!("http://127.0.0.1:{store_port}/")),
        "{local}"
    );
    running.shutdown().await;
}

/// The part URL answered to a request whose Host header says `host`.
async fn post_json_with_host(
    http: &reqwest::Client,
    running: &RunningBackend,
    host: &str,
    key: &str,
    upload_id: &str,
) -> url::Url {
    let res = http
        .post(running.url.join("getUploadUrls").expect("join"))
        .header("host", host)
        .body(json!({ "key": key, "uploadId": upload_id, "parts": [1] }).to_string())
        .send()
        .await
        .expect("post");
    let v: Value = serde_json::from_str(&res.text().await.expect("body")).expect("json");
    v["urls"]["1"]
        .as_str()
        .expect("url")
        .parse()
        .expect("part url")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_public_store_url_is_what_part_urls_name() {
    let dir = tempfile::tempdir().expect("tempdir");
    let public: url::Url = "https://uploads.example.org:9443/".parse().expect("url");
    let running = serve_on_every_interface(&dir.path().join("store"), Some(public)).await;
    let http = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    let started = post_json(
        &http,
        running.url.join("startUpload").expect("join"),
        json!({ "fileName": "p.bin", "fileHash": "00112233445566778899aabbccddeeff", "fileSize": 3 }),
    )
    .await;
    let url = post_json_with_host(
        &http,
        &running,
        "ignored.example:1",
        started["key"].as_str().expect("key"),
        started["uploadId"].as_str().expect("uploadId"),
    )
    .await;
    assert_eq!(
        url.origin().ascii_serialization(),
        "https://uploads.example.org:9443"
    );
    running.shutdown().await;

    let bad = serve(ServeOptions {
        listen: "127.0.0.1:0".parse().expect("addr"),
        store: StoreChoice::Embedded {
            dir: dir.path().join("store"),
        },
        part_size: None,
        url_ttl: None,
        store_port: 0,
        store_public_url: Some("http://u:secret-pw@h.example/".parse().expect("url")),
    })
    .await;
    let e = bad
        .err()
        .expect("credentials in the public URL are refused");
    assert!(!e.to_string().contains("secret-pw"), "{e}");
}
