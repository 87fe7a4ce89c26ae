//! The JSON calls of the TurboModule spec, driven end to end against the
//! harness, with every JSON text the engine produced checked against the
//! TypeScript types of `js/src/NativeS3BgUploader.ts` (read from the file:
//! field names, field types, null only where allowed, no extra fields) and
//! every state and error code against the lists in `js/src/types.ts`.

mod common;

use common::*;
use s3bgu_core::ffi::{JsError, JsEventObserver, ObserverError, UploadEngine};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const SPEC: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../js/src/NativeS3BgUploader.ts"
);
const TYPES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../js/src/types.ts");

/// The TypeScript source without comments.
fn code_of(path: &str) -> String {
    let src = std::fs::read_to_string(path).expect(path);
    let mut out = String::new();
    let mut rest = src.as_str();
    while let Some(i) = rest.find("/*") {
        out.push_str(&rest[..i]);
        rest = &rest[i + rest[i..].find("*/").expect("comment end") + 2..];
    }
    out.push_str(rest);
    out.lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Field name -> type text of `export type NAME = { ... };`.
fn ts_object_type(code: &str, name: &str) -> BTreeMap<String, String> {
    let start = code
        .find(&format!("export type {name} = {{"))
        .unwrap_or_else(|| panic!("type {name} not found in the spec"));
    let body = &code[start..];
    let body = &body[body.find('{').unwrap() + 1..body.find("};").unwrap()];
    body.split(';')
        .map(str::trim)
        .filter(|f| !f.is_empty())
        .map(|f| {
            let (n, t) = f.split_once(':').expect("name: type");
            (n.trim().to_owned(), t.trim().to_owned())
        })
        .collect()
}

/// The quoted strings of `export const NAME = [ ... ]`.
fn ts_array(code: &str, name: &str) -> Vec<String> {
    let start = code
        .find(&format!("export const {name} = ["))
        .unwrap_or_else(|| panic!("{name} not found"));
    let body = &code[start..];
    let body = &body[..body.find(']').unwrap()];
    body.split('\'')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

struct Spec {
    code: String,
    states: Vec<String>,
    codes: Vec<String>,
}

impl Spec {
    fn load() -> Spec {
        let types = code_of(TYPES);
        Spec {
            code: code_of(SPEC),
            states: ts_array(&types, "UPLOAD_STATES"),
            codes: ts_array(&types, "ENGINE_ERROR_CODES"),
        }
    }

    /// Panics unless `v` is exactly a `ty` of the spec.
    fn check(&self, v: &Value, ty: &str, at: &str) {
        let fields = ts_object_type(&self.code, ty);
        let obj = v
            .as_object()
            .unwrap_or_else(|| panic!("{at}: {ty} must be an object, got {v}"));
        let got: std::collections::BTreeSet<&String> = obj.keys().collect();
        let want: std::collections::BTreeSet<&String> = fields.keys().collect();
        assert_eq!(got, want, "{at}: fields of {ty}");
        for (name, t) in &fields {
            let value = &obj[name];
            let at = format!("{at}.{name}");
            let ok = t.split('|').map(str::trim).any(|alt| match alt {
                "number" => value.is_number(),
                "string" => value.is_string(),
                "boolean" => value.is_boolean(),
                "null" => value.is_null(),
                nested if nested.starts_with("Native") && value.is_object() => {
                    self.check(value, nested, &at);
                    true
                }
                _ => false,
            });
            assert!(ok, "{at} is {value}, the spec says {t}");
        }
        // The values the spec documents by name.
        if ty == "NativeUpload" {
            let state = obj["state"].as_str().unwrap();
            assert!(
                self.states.iter().any(|s| s == state),
                "{at}: state {state}"
            );
        }
        if ty == "NativeUploadError" {
            let code = obj["code"].as_str().unwrap();
            assert!(self.codes.iter().any(|c| c == code), "{at}: code {code}");
        }
    }

    fn check_json(&self, json: &str, ty: &str, at: &str) -> Value {
        let v: Value = serde_json::from_str(json).expect("valid JSON");
        self.check(&v, ty, at);
        v
    }

    fn check_list(&self, json: &str, at: &str) -> Vec<Value> {
        let v: Value = serde_json::from_str(json).expect("valid JSON");
        let list = v.as_array().unwrap_or_else(|| panic!("{at}: not an array"));
        for (i, u) in list.iter().enumerate() {
            self.check(u, "NativeUpload", &format!("{at}[{i}]"));
        }
        list.clone()
    }

    /// Emitter name -> payload type, from `readonly onX: EventEmitter<T>;`.
    fn emitters(&self) -> BTreeMap<String, String> {
        self.code
            .lines()
            .filter_map(|l| {
                let l = l.trim().strip_prefix("readonly ")?;
                let (name, t) = l.split_once(':')?;
                let t = t.trim().strip_prefix("EventEmitter<")?;
                Some((name.trim().to_owned(), t[..t.find('>')?].to_owned()))
            })
            .collect()
    }
}

#[derive(Default)]
struct Collect {
    events: Mutex<Vec<(String, String)>>,
}

impl JsEventObserver for Collect {
    fn on_event(&self, name: String, json: String) -> Result<(), ObserverError> {
        self.events.lock().unwrap().push((name, json));
        Ok(())
    }
}

fn code_of_err(e: JsError) -> String {
    let JsError::Rejected { code, .. } = e;
    code
}

async fn wait_all_settled(engine: &UploadEngine, spec: &Spec) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let list = spec.check_list(
            &engine.uploads_json(None, None).await.unwrap(),
            "getUploads",
        );
        if list.iter().all(|u| {
            ["COMPLETED", "FAILED", "CANCELLED", "PAUSED"].contains(&u["state"].as_str().unwrap())
        }) {
            return list;
        }
        assert!(
            Instant::now() < deadline,
            "uploads did not settle: {list:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_calls_and_events_have_exactly_the_spec_shapes() {
    let spec = Spec::load();
    let h = harness().await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("q.db").to_string_lossy().into_owned();
    let engine = UploadEngine::open(db, false).unwrap();

    // The spec's emitters are the names the engine emits, with the same payloads.
    let emitters = spec.emitters();
    assert_eq!(
        emitters.get("onProgress").map(String::as_str),
        Some("NativeProgress")
    );
    assert_eq!(
        emitters.get("onStateChange").map(String::as_str),
        Some("NativeUpload")
    );
    assert_eq!(emitters.len(), 2, "{emitters:?}");

    // Numbers arrive as JavaScript doubles: 4.0 is the integer 4.
    let config = serde_json::json!({
        "startUploadUrl": h.start_url(),
        "uploadUrlsUrl": h.urls_url(),
        "completeUrl": h.complete_url(),
        "abortUrl": h.abort_url(),
        "headers": [["X-App", "demo"]],
        "maxPartsInFlight": 4.0,
        "retry": { "maxAttempts": 2, "baseDelayMs": 10, "maxDelayMs": 100 },
        "network": "any",
        "notification": { "title": "{completedFiles}/{totalFiles}" },
    });
    engine.set_config_json(config.to_string()).await.unwrap();
    let back: Value = serde_json::from_str(&engine.config_json().await.unwrap().unwrap()).unwrap();
    for key in ["startUploadUrl", "headers", "network", "notification"] {
        assert_eq!(back[key], config[key], "{key}");
    }
    assert_eq!(back["maxPartsInFlight"], 4);
    assert_eq!(back["retry"]["maxAttempts"], 2);

    let first = Arc::new(Collect::default());
    let _sub = engine.subscribe_json(first.clone()).unwrap();

    let size = 2 * PART + 12_345;
    let a = write_file(dir.path(), "a.bin", size, 1);
    let b = write_file(dir.path(), "b.bin", 1000, 2);
    let ua = spec.check_json(
        &engine
            .upload_file_json(
                a.to_string_lossy().into(),
                "t1".into(),
                Some("video.mp4".into()),
                r#"{"album":"x"}"#.into(),
            )
            .await
            .unwrap(),
        "NativeUpload",
        "uploadFile",
    );
    assert_eq!(ua["state"], "PENDING");
    assert_eq!(ua["fileName"], "video.mp4");
    assert_eq!(ua["size"].as_u64(), Some(size));
    assert!(ua["key"].is_null() && ua["error"].is_null());
    let ub = spec.check_json(
        &engine
            .upload_file_json(b.to_string_lossy().into(), "t2".into(), None, "{}".into())
            .await
            .unwrap(),
        "NativeUpload",
        "uploadFile",
    );
    // b fails: its file is gone before the engine gets to it.
    std::fs::remove_file(&b).unwrap();
    engine.start().await.unwrap();

    let list = wait_all_settled(&engine, &spec).await;
    let done = list.iter().find(|u| u["id"] == ua["id"]).unwrap();
    assert_eq!(done["state"], "COMPLETED");
    assert_eq!(done["partsDone"], 3);
    let key = done["key"].as_str().unwrap();
    assert_eq!(h.object_bytes(key).unwrap(), std::fs::read(&a).unwrap());
    let failed = list.iter().find(|u| u["id"] == ub["id"]).unwrap();
    assert_eq!(failed["state"], "FAILED");
    assert!(failed["error"].is_object(), "{failed}");

    // Targets as JavaScript passes them, and the summaries.
    let one = spec.check_list(
        &engine.uploads_json(ua["id"].as_f64(), None).await.unwrap(),
        "getUploads(id)",
    );
    assert_eq!(one.len(), 1);
    let summary = spec.check_json(
        &engine.summary_json(None).await.unwrap(),
        "NativeSummary",
        "getSummary",
    );
    assert_eq!(
        (
            summary["uploads"].as_u64(),
            summary["completed"].as_u64(),
            summary["failed"].as_u64()
        ),
        (Some(2), Some(1), Some(1))
    );
    let t1 = spec.check_json(
        &engine.summary_json(Some("t1".into())).await.unwrap(),
        "NativeSummary",
        "getSummary(t1)",
    );
    assert_eq!(t1["totalBytes"].as_u64(), Some(size));
    assert_eq!(t1["uploadedBytes"].as_u64(), Some(size));
    // A FAILED upload is not paused; resume gives it a fresh round.
    let paused = spec.check_list(
        &engine.pause_json(None, Some("t2".into())).await.unwrap(),
        "pause",
    );
    assert_eq!(paused.len(), 0);
    let resumed = spec.check_list(
        &engine.resume_json(None, Some("t2".into())).await.unwrap(),
        "resume",
    );
    assert_eq!(resumed.len(), 1);
    let cancelled = spec.check_list(
        &engine.cancel_json(ub["id"].as_f64(), None).await.unwrap(),
        "cancel",
    );
    assert_eq!(cancelled[0]["state"], "CANCELLED");

    // Every event is one of the spec's emitters with its payload type.
    let events = first.events.lock().unwrap().clone();
    let mut progress = 0;
    for (i, (name, json)) in events.iter().enumerate() {
        let ty = emitters
            .get(name)
            .unwrap_or_else(|| panic!("unknown event {name}"));
        spec.check_json(json, ty, &format!("event {i} {name}"));
        progress += usize::from(name == "onProgress");
    }
    assert!(progress > 0, "no onProgress among {} events", events.len());
    let states: Vec<String> = events
        .iter()
        .filter(|(n, _)| n == "onStateChange")
        .map(|(_, j)| serde_json::from_str::<Value>(j).unwrap())
        .filter(|u| u["id"] == ua["id"])
        .map(|u| u["state"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        states.first().map(String::as_str),
        Some("PENDING"),
        "{states:?}"
    );
    assert_eq!(
        states.last().map(String::as_str),
        Some("COMPLETED"),
        "{states:?}"
    );

    // A late subscriber first gets the queue as it is, in queue order.
    let late = Arc::new(Collect::default());
    let _late = engine.subscribe_json(late.clone()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while late.events.lock().unwrap().len() < 2 {
        assert!(Instant::now() < deadline, "no snapshot");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let snap = late.events.lock().unwrap().clone();
    assert_eq!(snap[0].0, "onStateChange");
    assert_eq!(
        serde_json::from_str::<Value>(&snap[0].1).unwrap()["id"],
        ua["id"]
    );
    assert_eq!(
        serde_json::from_str::<Value>(&snap[1].1).unwrap()["state"],
        "CANCELLED"
    );

    // forget resolves with a plain number; the finished upload is gone.
    let forgotten = engine.forget_json(ua["id"].as_f64(), None).await.unwrap();
    assert_eq!(forgotten, 1.0);
    let gone = spec.check_list(
        &engine.uploads_json(ua["id"].as_f64(), None).await.unwrap(),
        "getUploads(forgotten id)",
    );
    assert!(gone.is_empty(), "{gone:?}");

    // Failures reject with the stable codes.
    for (code, r) in [
        (
            "invalid_argument",
            engine.pause_json(Some(1.5), None).await.map(drop),
        ),
        (
            "invalid_argument",
            engine.pause_json(Some(-1.0), None).await.map(drop),
        ),
        (
            "invalid_argument",
            engine
                .cancel_json(Some(1.0), Some("t1".into()))
                .await
                .map(drop),
        ),
        (
            "invalid_argument",
            engine.uploads_json(None, Some(" ".into())).await.map(drop),
        ),
        (
            "invalid_argument",
            engine.summary_json(Some("".into())).await.map(drop),
        ),
        ("invalid_config", engine.set_config_json("{".into()).await),
        ("invalid_config", engine.set_config_json("[]".into()).await),
        (
            "invalid_argument",
            engine
                .upload_file_json(a.to_string_lossy().into(), "t3".into(), None, "[1]".into())
                .await
                .map(drop),
        ),
        (
            "invalid_argument",
            engine
                .upload_file_json(
                    a.to_string_lossy().into(),
                    "t3".into(),
                    None,
                    r#"{"fileHash":"x"}"#.into(),
                )
                .await
                .map(drop),
        ),
        (
            "file_not_found",
            engine
                .upload_file_json(b.to_string_lossy().into(), "t3".into(), None, "{}".into())
                .await
                .map(drop),
        ),
    ] {
        let got = code_of_err(r.expect_err(code));
        assert_eq!(got, code);
        assert!(spec.codes.contains(&got));
    }
    engine.shutdown().await;
    assert_eq!(
        code_of_err(engine.summary_json(None).await.unwrap_err()),
        "shutdown"
    );
}
