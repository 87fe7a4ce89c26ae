//! The JavaScript shapes of the TurboModule spec (`js/src/NativeS3BgUploader.ts`),
//! made here once so the Android and iOS modules only turn JSON into React
//! Native maps and back, with no per-field code.
//!
//! - In: the configuration JSON `configToNativeJson` produces (checked as
//!   strictly as `js/src/validate.ts` checks the app's config), and the
//!   arguments of the spec's calls as JavaScript passes them (numbers are
//!   doubles, targets are `uploadId` / `transferId` or neither).
//! - Out: `NativeUpload`, `NativeSummary` and `NativeProgress` objects, and
//!   events named after the spec's emitters.
//!
//! Numbers: JavaScript numbers are doubles, exact for integers up to 2^53
//! (9 PiB as a byte count), far above any file or counter here, so sizes and
//! ids travel as JSON integers without loss.

use crate::background::NetworkPolicy;
use crate::config::{Config, RetryPolicy, MAX_FINISHED_RETENTION_MS, TIMEOUT_MS_RANGE};
use crate::error::{ErrorCode, UploadError};
use crate::model::{Selector, Summary, UploadEvent, UploadInfo};
use serde::Serialize;
use serde_json::{Map, Value};

/// Largest integer a JavaScript number carries exactly (2^53 - 1).
pub const MAX_SAFE_INTEGER: f64 = 9_007_199_254_740_991.0;

/// Name of the spec's progress emitter.
pub const ON_PROGRESS: &str = "onProgress";
/// Name of the spec's state-change emitter.
pub const ON_STATE_CHANGE: &str = "onStateChange";

fn config_error(message: impl Into<String>) -> UploadError {
    UploadError::new(ErrorCode::InvalidConfig, message)
}

fn argument_error(message: impl Into<String>) -> UploadError {
    UploadError::new(ErrorCode::InvalidArgument, message)
}

/// What a value is, without quoting it (it may be a secret).
fn describe(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

const CONFIG_FIELDS: [&str; 11] = [
    "startUploadUrl",
    "uploadUrlsUrl",
    "completeUrl",
    "abortUrl",
    "headers",
    "maxPartsInFlight",
    "retry",
    "network",
    "notification",
    "extraRootCertificatesPem",
    "finishedRetentionMs",
];
const RETRY_FIELDS: [&str; 6] = [
    "maxAttempts",
    "baseDelayMs",
    "maxDelayMs",
    "maxUrlRefreshes",
    "requestTimeoutMs",
    "stallTimeoutMs",
];
const NOTIFICATION_FIELDS: [&str; 2] = ["title", "text"];

fn check_keys(name: &str, obj: &Map<String, Value>, known: &[&str]) -> Result<(), UploadError> {
    match obj.keys().find(|k| !known.contains(&k.as_str())) {
        Some(k) => Err(config_error(format!(
            "{name} has an unknown field \"{k}\"; known fields: {}",
            known.join(", ")
        ))),
        None => Ok(()),
    }
}

fn object<'a>(name: &str, v: &'a Value) -> Result<&'a Map<String, Value>, UploadError> {
    v.as_object()
        .ok_or_else(|| config_error(format!("{name} must be an object, got {}", describe(v))))
}

fn string(name: &str, v: &Value) -> Result<String, UploadError> {
    v.as_str()
        .map(str::to_owned)
        .ok_or_else(|| config_error(format!("{name} must be a string, got {}", describe(v))))
}

/// An integer in `min..=max`; an integral double (`4.0`) counts, as in JavaScript.
fn integer(name: &str, v: &Value, min: u64, max: u64) -> Result<u64, UploadError> {
    let n = v.as_u64().or_else(|| {
        v.as_f64()
            .filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f <= MAX_SAFE_INTEGER)
            .map(|f| f as u64)
    });
    match n {
        Some(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(config_error(format!(
            "{name} must be an integer between {min} and {max}, got {}",
            match v {
                Value::Number(n) => n.to_string(),
                other => describe(other).to_owned(),
            }
        ))),
    }
}

/// A present field; `null` is refused like JavaScript refuses it (only
/// leaving a field out means "default").
fn field<'a>(obj: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    obj.get(key)
}

/// An absolute http(s) URL with a host, written out as such: the WHATWG
/// parser would also take `http:\\host`, `http:///host` or surrounding
/// spaces, which `validate.ts` refuses, so both sides refuse them.
fn url(name: &str, v: &Value) -> Result<String, UploadError> {
    let s = match v.as_str() {
        Some(s) if !s.is_empty() => s,
        _ => {
            return Err(config_error(format!(
                "{name} is required: an absolute http(s) URL, got {}",
                describe(v)
            )))
        }
    };
    let lower = s.get(..8).unwrap_or(s).to_ascii_lowercase();
    let rest = if lower.starts_with("https://") {
        &s[8..]
    } else if lower.starts_with("http://") {
        &s[7..]
    } else {
        ""
    };
    let authority_ok = rest
        .chars()
        .next()
        .is_some_and(|c| !matches!(c, '/' | '?' | '#' | '\\'));
    if !authority_ok || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        // The value may carry a token in its query string: name the field only.
        return Err(config_error(format!(
            "{name} must be an absolute http(s) URL with a host (like https://api.example.com/startUpload)"
        )));
    }
    Ok(s.to_owned())
}

/// Placeholders a notification template may use.
pub const PLACEHOLDERS: [&str; 7] = [
    "percentage",
    "uploadedSize",
    "totalSize",
    "completedFiles",
    "totalFiles",
    "completedTransfers",
    "totalTransfers",
];

/// A template whose every `{name}` (braces without braces inside) is a
/// known placeholder: a typo would otherwise show up in the notification.
fn template(name: &str, v: &Value) -> Result<String, UploadError> {
    let s = string(name, v)?;
    let mut rest = s.as_str();
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        match after.find(['{', '}']) {
            Some(i) if after.as_bytes()[i] == b'}' => {
                let placeholder = &after[..i];
                if !PLACEHOLDERS.contains(&placeholder) {
                    return Err(config_error(format!(
                        "{name} uses the unknown placeholder {{{placeholder}}}; known ones: {}",
                        PLACEHOLDERS.map(|p| format!("{{{p}}}")).join(" ")
                    )));
                }
                rest = &after[i + 1..];
            }
            Some(i) => rest = &after[i..],
            None => break,
        }
    }
    Ok(s)
}

/// Parses the spec's `configJson` into the engine's configuration and
/// validates it. Fields left out take the engine's defaults (the time-outs,
/// which JavaScript does not set, too).
pub fn config_from_json(json: &str) -> Result<Config, UploadError> {
    let v: Value = serde_json::from_str(json).map_err(|e| {
        config_error(format!(
            "configJson is not valid JSON (line {}, column {})",
            e.line(),
            e.column()
        ))
    })?;
    let obj = object("the config", &v)?;
    check_keys("the config", obj, &CONFIG_FIELDS)?;
    let required = |key: &str| url(key, obj.get(key).unwrap_or(&Value::Null));
    let mut c = Config::new(
        required("startUploadUrl")?,
        required("uploadUrlsUrl")?,
        required("completeUrl")?,
    );
    if let Some(v) = field(obj, "abortUrl") {
        c.abort_url = Some(url("abortUrl", v)?);
    }
    if let Some(v) = field(obj, "headers") {
        let pairs = v.as_array().ok_or_else(|| {
            config_error(format!(
                "headers must be an array of [name, value] pairs, got {}",
                describe(v)
            ))
        })?;
        for (i, pair) in pairs.iter().enumerate() {
            match pair.as_array().map(Vec::as_slice) {
                Some([Value::String(n), Value::String(v)]) => {
                    c.headers.push((n.clone(), v.clone()))
                }
                _ => {
                    return Err(config_error(format!(
                        "headers[{i}] must be a [name, value] pair of strings"
                    )))
                }
            }
        }
    }
    if let Some(v) = field(obj, "maxPartsInFlight") {
        c.max_parts_in_flight = integer(
            "maxPartsInFlight",
            v,
            1,
            u64::from(crate::MAX_PARTS_IN_FLIGHT),
        )? as u32;
    }
    if let Some(v) = field(obj, "retry") {
        let r = object("retry", v)?;
        check_keys("retry", r, &RETRY_FIELDS)?;
        let d = RetryPolicy::default();
        let (t_min, t_max) = (*TIMEOUT_MS_RANGE.start(), *TIMEOUT_MS_RANGE.end());
        let get = |key: &str, min: u64, max: u64, default: u64| match field(r, key) {
            Some(v) => integer(&format!("retry.{key}"), v, min, max),
            None => Ok(default),
        };
        c.retry = RetryPolicy {
            max_attempts: get("maxAttempts", 1, 100, d.max_attempts.into())? as u32,
            base_delay_ms: get("baseDelayMs", 0, 3_600_000, d.base_delay_ms)?,
            max_delay_ms: get("maxDelayMs", 0, 3_600_000, d.max_delay_ms)?,
            max_url_refreshes: get("maxUrlRefreshes", 0, 100, d.max_url_refreshes.into())? as u32,
            request_timeout_ms: get("requestTimeoutMs", t_min, t_max, d.request_timeout_ms)?,
            stall_timeout_ms: get("stallTimeoutMs", t_min, t_max, d.stall_timeout_ms)?,
        };
    }
    if let Some(v) = field(obj, "network") {
        c.network_policy = match v.as_str() {
            Some("any") => NetworkPolicy::Any,
            Some("unmetered") => NetworkPolicy::UnmeteredOnly,
            _ => {
                return Err(config_error(
                    "network must be \"any\" or \"unmetered\"".to_owned(),
                ))
            }
        };
    }
    if let Some(v) = field(obj, "notification") {
        let n = object("notification", v)?;
        check_keys("notification", n, &NOTIFICATION_FIELDS)?;
        if let Some(v) = field(n, "title") {
            c.notification_title = Some(template("notification.title", v)?);
        }
        if let Some(v) = field(n, "text") {
            c.notification_text = Some(template("notification.text", v)?);
        }
    }
    if let Some(v) = field(obj, "extraRootCertificatesPem") {
        let list = v.as_array().ok_or_else(|| {
            config_error(format!(
                "extraRootCertificatesPem must be an array of PEM strings, got {}",
                describe(v)
            ))
        })?;
        for (i, pem) in list.iter().enumerate() {
            c.extra_root_certificates_pem
                .push(string(&format!("extraRootCertificatesPem[{i}]"), pem)?);
        }
    }
    if let Some(v) = field(obj, "finishedRetentionMs") {
        c.finished_retention_ms = integer("finishedRetentionMs", v, 0, MAX_FINISHED_RETENTION_MS)?;
    }
    c.validate().map_err(UploadError::from)?;
    Ok(c)
}

/// The configuration in the shape `config_from_json` reads.
pub fn config_to_json(c: &Config) -> String {
    let mut o = Map::new();
    o.insert("startUploadUrl".into(), c.start_upload_url.clone().into());
    o.insert("uploadUrlsUrl".into(), c.upload_urls_url.clone().into());
    o.insert("completeUrl".into(), c.complete_url.clone().into());
    if let Some(a) = &c.abort_url {
        o.insert("abortUrl".into(), a.clone().into());
    }
    let headers: Vec<Value> = c
        .headers
        .iter()
        .map(|(n, v)| Value::from(vec![n.clone(), v.clone()]))
        .collect();
    o.insert("headers".into(), headers.into());
    o.insert("maxPartsInFlight".into(), c.max_parts_in_flight.into());
    o.insert(
        "retry".into(),
        serde_json::json!({
            "maxAttempts": c.retry.max_attempts,
            "baseDelayMs": c.retry.base_delay_ms,
            "maxDelayMs": c.retry.max_delay_ms,
            "maxUrlRefreshes": c.retry.max_url_refreshes,
            "requestTimeoutMs": c.retry.request_timeout_ms,
            "stallTimeoutMs": c.retry.stall_timeout_ms,
        }),
    );
    let network = match c.network_policy {
        NetworkPolicy::Any => "any",
        NetworkPolicy::UnmeteredOnly => "unmetered",
    };
    o.insert("network".into(), network.into());
    let mut n = Map::new();
    if let Some(t) = &c.notification_title {
        n.insert("title".into(), t.clone().into());
    }
    if let Some(t) = &c.notification_text {
        n.insert("text".into(), t.clone().into());
    }
    o.insert("notification".into(), n.into());
    o.insert(
        "extraRootCertificatesPem".into(),
        c.extra_root_certificates_pem.clone().into(),
    );
    o.insert("finishedRetentionMs".into(), c.finished_retention_ms.into());
    Value::Object(o).to_string()
}

/// The spec's target `(uploadId, transferId)`: an upload id is a JavaScript
/// number (a non-negative integer), a transfer id a non-empty string; both
/// null means every upload.
pub fn selector(
    upload_id: Option<f64>,
    transfer_id: Option<String>,
) -> Result<Selector, UploadError> {
    match (upload_id, transfer_id) {
        (Some(_), Some(_)) => Err(argument_error(
            "the target must name either uploadId or transferId, not both",
        )),
        (Some(id), None) => {
            if id.fract() != 0.0 || !(0.0..=MAX_SAFE_INTEGER).contains(&id) {
                return Err(argument_error(format!(
                    "uploadId must be an upload's id (a non-negative integer), got {id}"
                )));
            }
            Ok(Selector::Upload(id as i64))
        }
        (None, Some(t)) if t.trim().is_empty() => {
            Err(argument_error("transferId must be a non-empty string"))
        }
        (None, Some(t)) => Ok(Selector::Transfer(t)),
        (None, None) => Ok(Selector::All),
    }
}

/// The spec's `NativeUploadError`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JsUploadError<'a> {
    pub code: &'static str,
    pub message: &'a str,
}

/// The spec's `NativeUpload`. Its own struct, so a field added to the
/// engine's records never reaches JavaScript unannounced.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JsUpload<'a> {
    pub id: i64,
    pub transfer_id: &'a str,
    pub path: &'a str,
    pub file_name: &'a str,
    pub file_hash: &'a str,
    pub size: u64,
    pub state: &'static str,
    pub key: Option<&'a str>,
    pub upload_id: Option<&'a str>,
    pub part_size: Option<u64>,
    pub parts_total: u32,
    pub parts_done: u32,
    pub uploaded_bytes: u64,
    pub error: Option<JsUploadError<'a>>,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

impl<'a> From<&'a UploadInfo> for JsUpload<'a> {
    fn from(u: &'a UploadInfo) -> Self {
        JsUpload {
            id: u.id,
            transfer_id: &u.transfer_id,
            path: &u.path,
            file_name: &u.file_name,
            file_hash: &u.file_hash,
            size: u.size,
            state: u.state.as_str(),
            key: u.key.as_deref(),
            upload_id: u.upload_id.as_deref(),
            part_size: u.part_size,
            parts_total: u.parts_total,
            parts_done: u.parts_done,
            uploaded_bytes: u.uploaded_bytes,
            error: u.error.as_ref().map(|e| JsUploadError {
                code: e.code.as_str(),
                message: &e.message,
            }),
            created_at_ms: u.created_at_ms,
            updated_at_ms: u.updated_at_ms,
        }
    }
}

fn to_json<T: Serialize>(v: &T) -> String {
    // Plain structs of strings and numbers: serialising cannot fail.
    serde_json::to_string(v).unwrap_or_else(|_| "null".to_owned())
}

/// One `NativeUpload` object.
pub fn upload_json(u: &UploadInfo) -> String {
    to_json(&JsUpload::from(u))
}

/// A JSON array of `NativeUpload` objects.
pub fn uploads_json(list: &[UploadInfo]) -> String {
    to_json(&list.iter().map(JsUpload::from).collect::<Vec<_>>())
}

/// One `NativeSummary` object: the engine's `Summary` serialises to exactly
/// that shape (the spec-shape test keeps the two in step).
pub fn summary_json(s: &Summary) -> String {
    to_json(s)
}

/// An engine event as the spec emits it: the emitter's name and its payload.
pub fn event_json(e: &UploadEvent) -> (&'static str, String) {
    match e {
        UploadEvent::StateChanged(u) => (ON_STATE_CHANGE, upload_json(u)),
        // `Progress` serialises to exactly the spec's `NativeProgress`.
        UploadEvent::Progress(p) => (ON_PROGRESS, to_json(p)),
    }
}

/// `userParamsJson`: a JSON object (reserved keys are refused by `add_file`).
pub fn user_params(json: &str) -> Result<Map<String, Value>, UploadError> {
    match serde_json::from_str::<Value>(json) {
        Ok(Value::Object(map)) => Ok(map),
        // The text may hold secrets: describe it, never quote it.
        _ => Err(argument_error("userParamsJson must be a JSON object")),
    }
}

#[cfg(test)]
mod tests;
