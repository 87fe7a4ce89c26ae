//! `s3bgu check`: real uploads through a backend, one verdict per contract
//! point. It only uses what the backend's answers give it (part URLs, keys,
//! upload ids): it never reads objects back, since a backend grants no
//! right to do so.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{json, Map, Value};

const MIB: u64 = 1024 * 1024;
/// S3's smallest part, other than the last.
const MIN_PART: u64 = 5 * MIB;
const MAX_PART: u64 = 5 * 1024 * MIB;
const MAX_PARTS: u64 = 10_000;
/// The several-parts file: 11 MiB and a bit, so common part sizes (5 and
/// 8 MiB) leave a short last part.
const MULTI_SIZE: u64 = 11 * MIB + 7;
/// Parts are held in memory; a backend handing out larger ones for small
/// files cannot be tested in several parts here.
const MAX_TEST_PART: u64 = 64 * MIB;
/// Part numbers per getUploadUrls call.
const URL_BATCH: usize = 100;
/// How much of an error body is shown.
const EXCERPT: usize = 160;

/// The contract points, in the order they are printed.
const POINTS: &[(&str, &str)] = &[
    (
        "start-answer",
        "startUpload answers 2xx with JSON {key, uploadId, partSize}",
    ),
    (
        "part-size-range",
        "partSize is 1 byte to 5 GiB and the file needs at most 10,000 parts",
    ),
    (
        "part-size-min",
        "partSize is at least 5 MiB when the file needs several parts",
    ),
    (
        "start-bad-request",
        "startUpload without fileHash and fileSize answers 4xx",
    ),
    (
        "urls-answer",
        "getUploadUrls answers {\"urls\": {\"<part>\": <http(s) URL>}} for every part asked",
    ),
    (
        "put-etag",
        "every successful PUT to a part URL answers an ETag header",
    ),
    ("upload-empty", "a 0-byte file uploads"),
    ("upload-one-byte", "a 1-byte file uploads"),
    ("upload-one-part", "a file of exactly one part size uploads"),
    (
        "upload-several-parts",
        "a file of several parts with a short last part uploads",
    ),
    (
        "awkward-names",
        "files named with spaces, ü+= and #% upload (keys percent-encoded in the complete path)",
    ),
    (
        "complete-idempotent",
        "complete repeated after success answers 2xx",
    ),
    (
        "abort",
        "abort answers 2xx and the upload can no longer be completed",
    ),
];

/// The backend's routes.
pub struct Routes {
    pub start: String,
    pub urls: String,
    pub complete: String,
    /// `None`: the app does not tell the backend on cancel.
    pub abort: Option<String>,
}

impl Routes {
    /// The reference backend's route names under `base`.
    pub fn under(base: &str) -> Routes {
        let base = base.trim_end_matches('/');
        Routes {
            start: format!("{base}/startUpload"),
            urls: format!("{base}/getUploadUrls"),
            complete: format!("{base}/complete"),
            abort: Some(format!("{base}/abort")),
        }
    }
}

pub struct CheckOptions {
    /// What the report names (the base URL, or the start route).
    pub backend: String,
    pub routes: Routes,
    pub headers: Vec<(String, String)>,
    pub params: Vec<(String, String)>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Verdict {
    Passed,
    Failed {
        seen: String,
        expected: String,
    },
    Skipped(String),
    /// Left out on purpose (no route given for it): not a failure.
    NotAsked(String),
}

/// What happened to every point so far.
struct Report {
    verdicts: BTreeMap<&'static str, Verdict>,
    /// What each point was checked on, shown with passed points.
    notes: BTreeMap<&'static str, Vec<String>>,
}

impl Report {
    fn new() -> Self {
        Self {
            verdicts: BTreeMap::new(),
            notes: BTreeMap::new(),
        }
    }

    fn pass(&mut self, point: &'static str) {
        self.verdicts.entry(point).or_insert(Verdict::Passed);
        if let Some(v @ Verdict::Skipped(_)) = self.verdicts.get_mut(point) {
            *v = Verdict::Passed;
        }
    }

    fn note(&mut self, point: &'static str, note: String) {
        self.notes.entry(point).or_default().push(note);
    }

    /// The first failure of a point is kept: later ones usually follow from it.
    fn fail(&mut self, point: &'static str, seen: impl Into<String>, expected: impl Into<String>) {
        let failed = Verdict::Failed {
            seen: seen.into(),
            expected: expected.into(),
        };
        match self.verdicts.get(point) {
            Some(Verdict::Failed { .. }) => {}
            _ => {
                self.verdicts.insert(point, failed);
            }
        }
    }

    fn skip(&mut self, point: &'static str, why: impl Into<String>) {
        self.verdicts
            .entry(point)
            .or_insert_with(|| Verdict::Skipped(why.into()));
    }

    fn verdict(&self, point: &str) -> Verdict {
        self.verdicts
            .get(point)
            .cloned()
            .unwrap_or_else(|| Verdict::Skipped("not reached".to_owned()))
    }

    fn not_asked(&mut self, point: &'static str, why: impl Into<String>) {
        self.verdicts.insert(point, Verdict::NotAsked(why.into()));
    }

    fn all_passed(&self) -> bool {
        POINTS
            .iter()
            .all(|(id, _)| matches!(self.verdict(id), Verdict::Passed | Verdict::NotAsked(_)))
    }

    fn to_json(&self, backend: &str) -> Value {
        let points: Vec<Value> = POINTS
            .iter()
            .map(|(id, title)| {
                let mut p = json!({ "id": id, "point": title });
                match self.verdict(id) {
                    Verdict::Passed => {
                        p["status"] = "passed".into();
                        if let Some(notes) = self.notes.get(id) {
                            p["checked"] = notes.clone().into();
                        }
                    }
                    Verdict::Failed { seen, expected } => {
                        p["status"] = "failed".into();
                        p["seen"] = seen.into();
                        p["expected"] = expected.into();
                    }
                    Verdict::Skipped(why) => {
                        p["status"] = "not_checked".into();
                        p["why"] = why.into();
                    }
                    Verdict::NotAsked(why) => {
                        p["status"] = "not_asked".into();
                        p["why"] = why.into();
                    }
                }
                p
            })
            .collect();
        json!({ "backend": backend, "passed": self.all_passed(), "points": points })
    }

    fn print_text(&self, backend: &str) {
        println!("checking the backend at {backend}");
        let (mut passed, mut failed, mut skipped, mut not_asked) = (0, 0, 0, 0);
        for (id, title) in POINTS {
            match self.verdict(id) {
                Verdict::Passed => {
                    passed += 1;
                    let notes = self.notes.get(id).map(|n| n.join("; "));
                    match notes {
                        Some(n) => println!("passed       {id}: {title} ({n})"),
                        None => println!("passed       {id}: {title}"),
                    }
                }
                Verdict::Failed { seen, expected } => {
                    failed += 1;
                    println!("FAILED       {id}: {title}: seen {seen}; expected {expected}");
                }
                Verdict::Skipped(why) => {
                    skipped += 1;
                    println!("not checked  {id}: {title}: {why}");
                }
                Verdict::NotAsked(why) => {
                    not_asked += 1;
                    println!("not asked    {id}: {title}: {why}");
                }
            }
        }
        let not_asked = if not_asked > 0 {
            format!(", {not_asked} not asked")
        } else {
            String::new()
        };
        println!(
            "{} points: {passed} passed, {failed} failed, {skipped} not checked{not_asked}",
            POINTS.len()
        );
    }
}

/// One backend call's answer.
struct Answer {
    status: u16,
    body: String,
    /// The body with URL queries, header values and param values removed:
    /// the only form ever printed.
    shown: String,
}

impl Answer {
    fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }

    fn json(&self) -> Option<Value> {
        serde_json::from_str(&self.body).ok()
    }

    /// Status and a short, single-line excerpt of the body.
    fn describe(&self) -> String {
        let text: String = self
            .shown
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .take(EXCERPT)
            .collect();
        if text.trim().is_empty() {
            format!("HTTP {}", self.status)
        } else {
            format!("HTTP {} {}", self.status, text.trim())
        }
    }
}

/// An upload the backend started.
struct Started {
    key: String,
    upload_id: String,
    part_size: u64,
}

/// Why an upload stopped short of completing.
enum Stop {
    /// A point of its own failed (already reported): the upload's own
    /// point is not checked.
    At(&'static str),
    /// The upload itself failed: this is what was seen.
    Failed(String),
}

struct Checker {
    http: reqwest::Client,
    routes: Routes,
    headers: Vec<(String, String)>,
    params: Map<String, Value>,
    report: Report,
    /// The part size answered for the several-parts file.
    multi_part_size: Option<u64>,
}

/// Runs every check; prints the report; true when every point passed.
pub async fn run(opts: CheckOptions, as_json: bool) -> Result<bool, String> {
    let mut params = Map::new();
    for (k, v) in &opts.params {
        if matches!(k.as_str(), "fileName" | "fileHash" | "fileSize") {
            return Err(format!("--param {k}: the engine sets {k} itself"));
        }
        params.insert(k.clone(), Value::String(v.clone()));
    }
    let base = opts.backend.trim_end_matches('/').to_owned();
    let http = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(300))
        .build()
        .map_err(|e| format!("cannot set up HTTP: {}", e.without_url()))?;
    let mut c = Checker {
        http,
        routes: opts.routes,
        headers: opts.headers,
        params,
        report: Report::new(),
        multi_part_size: None,
    };
    c.run_all().await;
    if as_json {
        println!("{}", c.report.to_json(&base));
    } else {
        c.report.print_text(&base);
    }
    Ok(c.report.all_passed())
}

/// Test content: differs at every offset, so a part out of place changes
/// the object.
fn content(size: u64, seed: u8) -> Vec<u8> {
    (0..size)
        .map(|i| ((i.wrapping_mul(2_654_435_761)) >> 13) as u8 ^ seed)
        .collect()
}

fn file_hash(data: &[u8]) -> String {
    format!("{:032x}", xxhash_rust::xxh3::xxh3_128(data))
}

fn size_label(size: u64) -> String {
    if size >= MIB {
        let whole = size / MIB;
        let rest = size % MIB;
        if rest == 0 {
            format!("{whole} MiB")
        } else {
            format!("{whole} MiB + {rest} B")
        }
    } else {
        format!("{size} B")
    }
}

impl Checker {
    async fn run_all(&mut self) {
        self.check_bad_start().await;

        self.upload_point("upload-empty", "empty file.txt", 0, 1)
            .await;
        let one_byte = self
            .upload_point("upload-one-byte", "one-byte.bin", 1, 2)
            .await;

        let multi = self.several_parts().await;
        let one_part_size = self.multi_part_size.unwrap_or(MIN_PART).min(MAX_TEST_PART);
        self.upload_point("upload-one-part", "one part.bin", one_part_size, 4)
            .await;

        let mut names_ok = true;
        for (i, name) in ["a b c.txt", "ü+=.bin", "deep#hash%pct.bin"]
            .into_iter()
            .enumerate()
        {
            let data = content(1, 10 + i as u8);
            match self.upload(name, &data).await {
                Ok(_) => self.report.note("awkward-names", format!("{name:?}")),
                Err(Stop::At(point)) => {
                    self.report
                        .skip("awkward-names", format!("not reached: see {point}"));
                    names_ok = false;
                }
                Err(Stop::Failed(seen)) => {
                    self.report.fail(
                        "awkward-names",
                        format!("{name:?}: {seen}"),
                        "the upload completes (the key is percent-encoded segment by segment in the complete path)",
                    );
                    names_ok = false;
                }
            }
        }
        if names_ok {
            self.report.pass("awkward-names");
        }

        let done = multi
            .map(|(s, parts)| (s, parts, "the several-parts upload"))
            .or(one_byte.map(|(s, parts)| (s, parts, "the 1-byte upload")));
        match done {
            Some((started, parts, what)) => {
                self.check_repeat_complete(&started, &parts, what).await
            }
            None => self
                .report
                .skip("complete-idempotent", "not reached: no upload completed"),
        }
        self.check_abort().await;
    }

    /// `text` without anything secret: URL query strings (signatures),
    /// configured header values and param values.
    fn redact(&self, text: &str) -> String {
        let secrets: Vec<&str> = self
            .headers
            .iter()
            .map(|(_, v)| v.as_str())
            .chain(self.params.values().filter_map(Value::as_str))
            .collect();
        s3bgu_core::redact::redact(text, &secrets)
    }

    fn with_headers(&self, mut req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        for (k, v) in &self.headers {
            req = req.header(k, v);
        }
        req
    }

    /// A backend call: JSON POST with the configured headers.
    async fn post(&self, url: &str, body: &Value) -> Result<Answer, String> {
        let req = self
            .http
            .post(url)
            .header("content-type", "application/json")
            .body(body.to_string());
        let res = self
            .with_headers(req)
            .send()
            .await
            .map_err(describe_send_error)?;
        let status = res.status().as_u16();
        let body = res.text().await.unwrap_or_default();
        let shown = self.redact(&body);
        Ok(Answer {
            status,
            body,
            shown,
        })
    }

    async fn check_bad_start(&mut self) {
        let mut body = self.params.clone();
        body.insert("fileName".into(), "incomplete.bin".into());
        let url = self.routes.start.clone();
        match self.post(&url, &Value::Object(body)).await {
            // No such route (a wrong base URL) is not the refusal asked for.
            Ok(a) if matches!(a.status, 404 | 405) => self.report.fail(
                "start-bad-request",
                format!("{}: no such route", a.describe()),
                "a 4xx about the missing fields from the startUpload route (is the base URL or --start-url right?)",
            ),
            Ok(a) if (400..500).contains(&a.status) => self.report.pass("start-bad-request"),
            Ok(a) => self.report.fail(
                "start-bad-request",
                a.describe(),
                "4xx: the engine fails the file; 2xx would start an upload of unknown size, 5xx is retried",
            ),
            Err(e) => self.report.fail("start-bad-request", e, "an HTTP answer"),
        }
    }

    /// Uploads one file for `point`; returns the upload and its parts once complete.
    async fn upload_point(
        &mut self,
        point: &'static str,
        name: &str,
        size: u64,
        seed: u8,
    ) -> Option<(Started, Vec<Value>)> {
        let data = content(size, seed);
        match self.upload(name, &data).await {
            Ok((started, parts)) => {
                self.report.pass(point);
                self.report.note(
                    point,
                    format!("{} in {} part(s)", size_label(size), parts.len()),
                );
                Some((started, parts))
            }
            Err(Stop::At(other)) => {
                self.report.skip(point, format!("not reached: see {other}"));
                None
            }
            Err(Stop::Failed(seen)) => {
                self.report
                    .fail(point, seen, "the upload completes (2xx from complete)");
                None
            }
        }
    }

    /// The several-parts file, grown once if the backend's part size leaves
    /// 11 MiB in one part.
    async fn several_parts(&mut self) -> Option<(Started, Vec<Value>)> {
        const POINT: &str = "upload-several-parts";
        let mut size = MULTI_SIZE;
        for attempt in 0..2 {
            let data = content(size, 3);
            let started = match self.start("several parts.bin", &data).await {
                Ok(s) => s,
                Err(stop) => {
                    self.stopped(POINT, stop);
                    return None;
                }
            };
            let parts = size.div_ceil(started.part_size);
            if parts < 2 {
                self.abort_quietly(&started).await;
                let grown = started.part_size.saturating_mul(2) + started.part_size / 2;
                if attempt == 0 && started.part_size <= MAX_TEST_PART {
                    size = grown;
                    continue;
                }
                self.report.fail(
                    POINT,
                    format!(
                        "partSize {} for a file of {}",
                        started.part_size,
                        size_label(size)
                    ),
                    format!(
                        "parts of at most {} to test several parts",
                        size_label(MAX_TEST_PART)
                    ),
                );
                return None;
            }
            self.multi_part_size = Some(started.part_size);
            if started.part_size > MAX_TEST_PART {
                self.abort_quietly(&started).await;
                self.report.skip(
                    POINT,
                    format!(
                        "partSize {} is larger than the {} this check holds in memory",
                        started.part_size,
                        size_label(MAX_TEST_PART)
                    ),
                );
                return None;
            }
            return match self.finish(&started, &data).await {
                Ok(parts) => {
                    self.report.pass(POINT);
                    self.report.note(
                        POINT,
                        format!(
                            "{} in {} parts of {}",
                            size_label(size),
                            parts.len(),
                            size_label(started.part_size)
                        ),
                    );
                    Some((started, parts))
                }
                Err(stop) => {
                    self.stopped(POINT, stop);
                    None
                }
            };
        }
        None
    }

    fn stopped(&mut self, point: &'static str, stop: Stop) {
        match stop {
            Stop::At(other) => self.report.skip(point, format!("not reached: see {other}")),
            Stop::Failed(seen) => {
                self.report
                    .fail(point, seen, "the upload completes (2xx from complete)")
            }
        }
    }

    async fn upload(&mut self, name: &str, data: &[u8]) -> Result<(Started, Vec<Value>), Stop> {
        let started = self.start(name, data).await?;
        let parts = self.finish(&started, data).await?;
        Ok((started, parts))
    }

    /// startUpload, with the answer's shape and part size checked.
    async fn start(&mut self, name: &str, data: &[u8]) -> Result<Started, Stop> {
        let size = data.len() as u64;
        let mut body = self.params.clone();
        body.insert("fileName".into(), name.into());
        body.insert("fileHash".into(), file_hash(data).into());
        body.insert("fileSize".into(), size.into());
        let url = self.routes.start.clone();
        const SHAPE: &str = "2xx with a JSON object: key and uploadId non-empty strings, partSize a positive integer";
        let answer = match self.post(&url, &Value::Object(body)).await {
            Ok(a) => a,
            Err(e) => {
                self.report.fail("start-answer", e, SHAPE);
                return Err(Stop::At("start-answer"));
            }
        };
        let v = answer.json().filter(|_| answer.ok());
        let key = v
            .as_ref()
            .and_then(|v| v.get("key")?.as_str().map(str::to_owned));
        let upload_id = v
            .as_ref()
            .and_then(|v| v.get("uploadId")?.as_str().map(str::to_owned));
        let part_size = v.as_ref().and_then(|v| v.get("partSize")?.as_u64());
        let (Some(key), Some(upload_id), Some(part_size)) = (key, upload_id, part_size) else {
            self.report.fail(
                "start-answer",
                format!("{} for {name:?} ({})", answer.describe(), size_label(size)),
                SHAPE,
            );
            return Err(Stop::At("start-answer"));
        };
        if key.is_empty() || upload_id.is_empty() || part_size == 0 {
            self.report.fail(
                "start-answer",
                format!("{} for {name:?}", answer.describe()),
                SHAPE,
            );
            return Err(Stop::At("start-answer"));
        }
        self.report.pass("start-answer");
        let started = Started {
            key,
            upload_id,
            part_size,
        };
        let parts = size.div_ceil(part_size).max(1);
        if part_size > MAX_PART || parts > MAX_PARTS {
            self.report.fail(
                "part-size-range",
                format!(
                    "partSize {part_size} for {} ({parts} parts)",
                    size_label(size)
                ),
                "partSize of at most 5 GiB, and at most 10,000 parts",
            );
            self.abort_quietly(&started).await;
            return Err(Stop::At("part-size-range"));
        }
        self.report.pass("part-size-range");
        if parts > 1 {
            if part_size < MIN_PART {
                self.report.fail(
                    "part-size-min",
                    format!(
                        "partSize {part_size} for a file of {} ({parts} parts)",
                        size_label(size)
                    ),
                    "at least 5242880 (5 MiB): S3 refuses smaller parts other than the last at complete",
                );
            } else {
                self.report.pass("part-size-min");
                self.report.note(
                    "part-size-min",
                    format!("{part_size} for {}", size_label(size)),
                );
            }
        }
        Ok(started)
    }

    /// getUploadUrls, the PUTs and complete; the complete body on success.
    async fn finish(&mut self, s: &Started, data: &[u8]) -> Result<Vec<Value>, Stop> {
        let size = data.len() as u64;
        let count = size.div_ceil(s.part_size).max(1) as u32;
        let numbers: Vec<u32> = (1..=count).collect();
        let mut parts = Vec::new();
        for batch in numbers.chunks(URL_BATCH) {
            let urls = self.urls(s, batch).await?;
            for (number, url) in batch.iter().zip(urls) {
                let from = (u64::from(*number) - 1) * s.part_size;
                let to = (from + s.part_size).min(size);
                let body = data[from as usize..to as usize].to_vec();
                let etag = self.put(*number, &url, body).await?;
                parts.push(json!({ "PartNumber": number, "ETag": etag }));
            }
        }
        let answer = self.complete(s, &parts).await.map_err(Stop::Failed)?;
        if answer.ok() {
            Ok(parts)
        } else {
            Err(Stop::Failed(format!(
                "complete answered {}",
                answer.describe()
            )))
        }
    }

    async fn urls(&mut self, s: &Started, batch: &[u32]) -> Result<Vec<String>, Stop> {
        const SHAPE: &str =
            "2xx with {\"urls\": {\"<part>\": \"http(s)://...\"}} naming every part asked for";
        let url = self.routes.urls.clone();
        let body = json!({ "key": s.key, "uploadId": s.upload_id, "parts": batch });
        let answer = match self.post(&url, &body).await {
            Ok(a) => a,
            Err(e) => {
                self.report.fail("urls-answer", e, SHAPE);
                return Err(Stop::At("urls-answer"));
            }
        };
        let v = answer.json().filter(|_| answer.ok());
        let Some(map) = v.as_ref().and_then(|v| v.get("urls")?.as_object()) else {
            self.report.fail("urls-answer", answer.describe(), SHAPE);
            return Err(Stop::At("urls-answer"));
        };
        let mut out = Vec::new();
        for n in batch {
            let usable = map.get(&n.to_string()).and_then(Value::as_str).filter(|u| {
                url::Url::parse(u).is_ok_and(|u| matches!(u.scheme(), "http" | "https"))
            });
            match usable {
                Some(u) => out.push(u.to_owned()),
                None => {
                    self.report.fail(
                        "urls-answer",
                        format!("no usable URL for part {n} (parts asked: {batch:?})"),
                        SHAPE,
                    );
                    return Err(Stop::At("urls-answer"));
                }
            }
        }
        self.report.pass("urls-answer");
        Ok(out)
    }

    /// One part PUT; its ETag, exactly as received.
    async fn put(&mut self, number: u32, url: &str, body: Vec<u8>) -> Result<String, Stop> {
        let len = body.len();
        let res = self.http.put(url).body(body).send().await.map_err(|e| {
            Stop::Failed(format!("PUT of part {number}: {}", describe_send_error(e)))
        })?;
        let status = res.status().as_u16();
        let etag = res
            .headers()
            .get("etag")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let text = res.text().await.unwrap_or_default();
        if !(200..300).contains(&status) {
            // Storage errors are XML: the code and message say enough, and
            // nothing else of the URL or answer is shown.
            return Err(Stop::Failed(format!(
                "PUT of part {number} ({} B) answered HTTP {status}{}",
                len,
                s3_error_summary(&self.redact(&text))
            )));
        }
        match etag.filter(|e| !e.trim().is_empty()) {
            Some(etag) => {
                self.report.pass("put-etag");
                Ok(etag)
            }
            None => {
                self.report.fail(
                    "put-etag",
                    format!("PUT of part {number} answered HTTP {status} without an ETag header"),
                    "an ETag header (for browsers and web views, the bucket's CORS rules must expose ETag)",
                );
                Err(Stop::At("put-etag"))
            }
        }
    }

    async fn complete(&self, s: &Started, parts: &[Value]) -> Result<Answer, String> {
        let url = s3bgu_core::complete_url(&self.routes.complete, &s.upload_id, &s.key);
        self.post(&url, &json!({ "parts": parts })).await
    }

    async fn abort(&self, s: &Started) -> Result<Answer, String> {
        let Some(route) = &self.routes.abort else {
            return Err("no abort route given".to_owned());
        };
        let url = s3bgu_core::complete_url(route, &s.upload_id, &s.key);
        self.post(&url, &json!({})).await
    }

    /// Frees an upload the check will not finish, if there is an abort
    /// route; whatever the answer (the abort point is checked on its own).
    async fn abort_quietly(&self, s: &Started) {
        if self.routes.abort.is_some() {
            let _ = self.abort(s).await;
        }
    }

    async fn check_repeat_complete(&mut self, s: &Started, parts: &[Value], what: &str) {
        const POINT: &str = "complete-idempotent";
        match self.complete(s, parts).await {
            Ok(a) if a.ok() => {
                self.report.pass(POINT);
                self.report.note(POINT, format!("on {what}"));
            }
            Ok(a) => self.report.fail(
                POINT,
                format!("{} to the second complete of {what}", a.describe()),
                "2xx: a client whose first answer was lost sends complete again, and must not fail an upload that succeeded",
            ),
            Err(e) => self.report.fail(POINT, e, "an HTTP answer"),
        }
    }

    async fn check_abort(&mut self) {
        const POINT: &str = "abort";
        if self.routes.abort.is_none() {
            return self.report.not_asked(
                POINT,
                "no --abort-url given (the app would not tell the backend on cancel)",
            );
        }
        let data = content(1, 30);
        let started = match self.start("cancelled.bin", &data).await {
            Ok(s) => s,
            Err(stop) => return self.stopped(POINT, stop),
        };
        let put = async {
            let url = self.urls(&started, &[1]).await?.remove(0);
            self.put(1, &url, data.clone()).await
        };
        let etag = match put.await {
            Ok(etag) => Some(etag),
            Err(Stop::At("put-etag")) => None,
            Err(stop) => return self.stopped(POINT, stop),
        };
        match self.abort(&started).await {
            Ok(a) if a.ok() => {}
            Ok(a) => return self.report.fail(
                POINT,
                a.describe(),
                "2xx from POST {abort}/{uploadId}/{key}, so a cancelled upload frees its storage",
            ),
            Err(e) => return self.report.fail(POINT, e, "an HTTP answer"),
        }
        // Without the part's ETag, nothing more can be told.
        let Some(etag) = etag else {
            return self.report.pass(POINT);
        };
        let parts = [json!({ "PartNumber": 1, "ETag": etag })];
        match self.complete(&started, &parts).await {
            Ok(a) if a.ok() => self.report.fail(
                POINT,
                "abort answered 2xx, yet a complete afterwards answered 2xx too",
                "the multipart upload is gone after abort",
            ),
            Ok(_) => self.report.pass(POINT),
            Err(e) => self.report.fail(POINT, e, "an HTTP answer"),
        }
    }
}

/// A request error without its URL (part URLs carry signatures).
fn describe_send_error(e: reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else {
        "request failed"
    };
    format!("{kind}: {}", e.without_url())
}

/// ` Code: Message` of an S3 XML error, if that is what the body is.
fn s3_error_summary(body: &str) -> String {
    let field = |name: &str| {
        let open = format!("<{name}>");
        let start = body.find(&open)? + open.len();
        let len = body[start..].find(&format!("</{name}>"))?;
        let text: String = body[start..start + len]
            .chars()
            .filter(|c| !c.is_control())
            .take(EXCERPT)
            .collect();
        Some(text)
    };
    match (field("Code"), field("Message")) {
        (Some(code), Some(message)) => format!(" {code}: {message}"),
        (Some(code), None) => format!(" {code}"),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_matches_the_engine_for_no_bytes() {
        assert_eq!(file_hash(&[]), "99aa06d3014798d86001c324468d497f");
    }

    #[test]
    fn storage_errors_are_summed_up() {
        let body =
            "<Error><Code>InvalidRequest</Code><Message>Bad request: Empty body</Message></Error>";
        assert_eq!(
            s3_error_summary(body),
            " InvalidRequest: Bad request: Empty body"
        );
        assert_eq!(s3_error_summary("nope"), "");
    }

    #[test]
    fn a_failure_is_not_overwritten() {
        let mut r = Report::new();
        r.fail("abort", "a", "b");
        r.pass("abort");
        r.fail("abort", "c", "d");
        assert_eq!(
            r.verdict("abort"),
            Verdict::Failed {
                seen: "a".into(),
                expected: "b".into()
            }
        );
        r.skip("put-etag", "x");
        r.pass("put-etag");
        assert_eq!(r.verdict("put-etag"), Verdict::Passed);
        assert!(!r.all_passed());
    }
}
