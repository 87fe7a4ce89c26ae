//! Middleware in front of the reference backend: counts calls and answers
//! with injected faults.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE, RETRY_AFTER};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use crate::chaos::{Fault, Target};
use crate::faults::{BackendFault, Broken, FaultBody, Faults};
use crate::stats::{Route, Stats};

/// getUploadUrls bodies are small; anything bigger is not worth parsing.
const MAX_RECORDED_BODY: usize = 1024 * 1024;

#[derive(Clone)]
pub(crate) struct Watch {
    pub stats: Arc<Stats>,
    pub faults: Arc<Faults>,
}

pub(crate) async fn layer(State(watch): State<Watch>, req: Request, next: Next) -> Response {
    let faults = watch.faults.clone();
    match Route::of_path(req.uri().path()) {
        Some(Route::Abort) if faults.is_broken(Broken::NoAbortRoute) => {
            watch.stats.backend_call(Route::Abort);
            json_answer(StatusCode::NOT_FOUND, r#"{"error":"no such endpoint"}"#)
        }
        Some(Route::StartUpload) if faults.is_broken(Broken::SmallParts) => {
            let (parts, body) = req.into_parts();
            let Ok(bytes) = axum::body::to_bytes(body, MAX_RECORDED_BODY).await else {
                return StatusCode::PAYLOAD_TOO_LARGE.into_response();
            };
            let size = serde_json::from_slice::<Value>(&bytes)
                .ok()
                .and_then(|v| v.get("fileSize").and_then(Value::as_u64));
            let req = Request::from_parts(parts, Body::from(bytes));
            let res = watched(watch, req, next).await;
            match size {
                Some(size) if size > SMALL_PART => with_part_size(res, SMALL_PART).await,
                _ => res,
            }
        }
        Some(Route::Complete) if faults.is_broken(Broken::NonIdempotentComplete) => {
            let id = req
                .uri()
                .path()
                .strip_prefix("/complete/")
                .and_then(|p| p.split_once('/'))
                .and_then(|(id, _)| percent_encoding::percent_decode_str(id).decode_utf8().ok())
                .map(|id| id.into_owned());
            if let Some(id) = id.as_deref().filter(|id| faults.was_completed(id)) {
                watch.stats.backend_call(Route::Complete);
                watch
                    .stats
                    .upload_id_received(Route::Complete, id.to_owned());
                return json_answer(
                    StatusCode::NOT_FOUND,
                    r#"{"error":"could not complete the upload: store answered 404 NoSuchUpload"}"#,
                );
            }
            let res = watched(watch, req, next).await;
            if let (Some(id), true) = (id, res.status().is_success()) {
                faults.completed(id);
            }
            res
        }
        _ => watched(watch, req, next).await,
    }
}

/// The part size [`Broken::SmallParts`] hands out.
const SMALL_PART: u64 = 1024 * 1024;

fn json_answer(status: StatusCode, body: &'static str) -> Response {
    (status, [(CONTENT_TYPE, "application/json")], body).into_response()
}

/// A startUpload answer with its partSize replaced.
async fn with_part_size(res: Response, part_size: u64) -> Response {
    let (parts, body) = res.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_RECORDED_BODY).await else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let Ok(mut value) = serde_json::from_slice::<Value>(&bytes) else {
        return Response::from_parts(parts, Body::from(bytes));
    };
    if value.get("partSize").is_some() {
        value["partSize"] = Value::from(part_size);
    }
    let mut res = Response::new(Body::from(value.to_string()));
    *res.status_mut() = parts.status;
    res.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    res
}

/// Counts the call and applies the injected faults, then the backend.
async fn watched(watch: Watch, req: Request, next: Next) -> Response {
    let Some(route) = Route::of_path(req.uri().path()) else {
        return next.run(req).await;
    };
    watch.stats.backend_call(route);
    let alias = watch.faults.upload_id_alias();

    let req = match route {
        Route::GetUploadUrls | Route::StartUpload => {
            let (parts, body) = req.into_parts();
            let Ok(mut bytes) = axum::body::to_bytes(body, MAX_RECORDED_BODY).await else {
                return (
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "body too large for the test harness",
                )
                    .into_response();
            };
            if route == Route::GetUploadUrls {
                watch.stats.parts_requested(requested_parts(&bytes));
                if let Some(body) = urls_body_seen(&watch, alias.as_deref(), &bytes) {
                    bytes = body;
                }
            } else if let Ok(body) = serde_json::from_slice::<Value>(&bytes) {
                watch.stats.start_body(body);
            }
            Request::from_parts(parts, Body::from(bytes))
        }
        Route::Complete | Route::Abort => {
            let (mut parts, body) = req.into_parts();
            if let Some(uri) = id_path_seen(&watch, route, alias.as_deref(), &parts.uri) {
                parts.uri = uri;
            }
            Request::from_parts(parts, body)
        }
    };

    match watch.faults.take_backend_fault(route) {
        Some(fault) => canned(fault),
        None => match watch.faults.roll(Target::Backend(route)) {
            Some((fault, stall, delay)) => chaos_call(req, next, fault, stall, delay).await,
            None => {
                let res = next.run(req).await;
                let hold = watch.faults.start_answer_delay();
                if route == Route::StartUpload && !hold.is_zero() {
                    tokio::time::sleep(hold).await;
                }
                match alias {
                    Some(alias) if route == Route::StartUpload => {
                        show_alias(&watch, res, &alias).await
                    }
                    _ if route == Route::GetUploadUrls => match watch.faults.take_url_expiry() {
                        Some(value) => with_url_expiry(res, &value).await,
                        None => res,
                    },
                    _ => res,
                }
            }
        },
    }
}

/// Everything but RFC 3986 unreserved characters, as the contract encodes
/// path segments.
const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Records the upload id of a getUploadUrls body; returns the body to
/// forward when the id was an alias.
fn urls_body_seen(watch: &Watch, alias: Option<&str>, body: &[u8]) -> Option<bytes::Bytes> {
    let mut value = serde_json::from_slice::<Value>(body).ok()?;
    let id = value.get("uploadId")?.as_str()?.to_owned();
    watch
        .stats
        .upload_id_received(Route::GetUploadUrls, id.clone());
    if alias != Some(id.as_str()) {
        return None;
    }
    value["uploadId"] = Value::String(watch.faults.aliased_upload_id()?);
    serde_json::to_vec(&value).ok().map(bytes::Bytes::from)
}

/// Records the upload id of a complete or abort path; returns the URI to
/// forward when the id was an alias.
fn id_path_seen(
    watch: &Watch,
    route: Route,
    alias: Option<&str>,
    uri: &axum::http::Uri,
) -> Option<axum::http::Uri> {
    let path = uri.path();
    let prefix = if route == Route::Complete {
        "/complete/"
    } else {
        "/abort/"
    };
    let (encoded, rest) = path.strip_prefix(prefix)?.split_once('/')?;
    let id = percent_encoding::percent_decode_str(encoded)
        .decode_utf8()
        .ok()?
        .into_owned();
    watch.stats.upload_id_received(route, id.clone());
    if alias != Some(id.as_str()) {
        return None;
    }
    let real = watch.faults.aliased_upload_id()?;
    let mut rewritten = format!(
        "{prefix}{}/{rest}",
        percent_encoding::utf8_percent_encode(&real, SEGMENT)
    );
    if let Some(q) = uri.query() {
        rewritten.push('?');
        rewritten.push_str(q);
    }
    rewritten.parse().ok()
}

/// Replaces the upload id of a startUpload answer with the alias.
async fn show_alias(watch: &Watch, res: Response, alias: &str) -> Response {
    let (parts, body) = res.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_RECORDED_BODY).await else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let Ok(mut value) = serde_json::from_slice::<Value>(&bytes) else {
        return Response::from_parts(parts, Body::from(bytes));
    };
    if let Some(real) = value.get("uploadId").and_then(Value::as_str) {
        watch.faults.set_aliased_upload_id(real.to_owned());
        value["uploadId"] = Value::String(alias.to_owned());
    }
    let mut res = Response::new(Body::from(value.to_string()));
    *res.status_mut() = parts.status;
    res.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    res
}

/// A getUploadUrls answer with `X-Amz-Expires` of every URL set to `value`.
async fn with_url_expiry(res: Response, value: &str) -> Response {
    let (parts, body) = res.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_RECORDED_BODY).await else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let Ok(mut answer) = serde_json::from_slice::<Value>(&bytes) else {
        return Response::from_parts(parts, Body::from(bytes));
    };
    if let Some(urls) = answer.get_mut("urls").and_then(Value::as_object_mut) {
        for url in urls.values_mut() {
            let Some(Ok(mut parsed)) = url.as_str().map(url::Url::parse) else {
                continue;
            };
            let pairs: Vec<(String, String)> = parsed
                .query_pairs()
                .map(|(k, v)| {
                    let v = if k.eq_ignore_ascii_case("x-amz-expires") {
                        value.to_owned()
                    } else {
                        v.into_owned()
                    };
                    (k.into_owned(), v)
                })
                .collect();
            parsed.query_pairs_mut().clear().extend_pairs(pairs);
            *url = Value::String(parsed.into());
        }
    }
    let mut res = Response::new(Body::from(answer.to_string()));
    *res.status_mut() = parts.status;
    res.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    res
}

/// The answer of a fault rule.
fn canned(fault: BackendFault) -> Response {
    let status = StatusCode::from_u16(fault.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    // Labelled JSON like the real answers, whatever the body holds, so
    // clients get to parse malformed bodies.
    let mut res = match fault.body {
        FaultBody::Text(text) => {
            (status, [(CONTENT_TYPE, "application/json")], text).into_response()
        }
        FaultBody::Huge { len, declared } => {
            const CHUNK: u64 = 64 * 1024;
            let filler = bytes::Bytes::from(vec![b' '; CHUNK as usize]);
            let chunks = (0..len.div_ceil(CHUNK)).map(move |i| {
                let n = CHUNK.min(len - i * CHUNK) as usize;
                Ok::<_, std::io::Error>(filler.slice(..n))
            });
            let mut res = Response::new(Body::from_stream(futures_util::stream::iter(chunks)));
            *res.status_mut() = status;
            res.headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            if declared {
                res.headers_mut()
                    .insert(CONTENT_LENGTH, HeaderValue::from(len));
            }
            res
        }
    };
    if let Some((name, value)) = fault.header {
        if let (Ok(name), Ok(value)) = (HeaderName::try_from(name), HeaderValue::try_from(value)) {
            res.headers_mut().insert(name, value);
        }
    }
    res
}

/// A backend call with a random fault.
async fn chaos_call(
    req: Request,
    next: Next,
    fault: Fault,
    stall: std::time::Duration,
    delay: std::time::Duration,
) -> Response {
    match fault {
        Fault::Status(status) | Fault::StatusRetryAfter(status) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let mut res = (
                status,
                [(CONTENT_TYPE, "application/json")],
                r#"{"error":"injected fault"}"#,
            )
                .into_response();
            if matches!(fault, Fault::StatusRetryAfter(_)) {
                res.headers_mut()
                    .insert(RETRY_AFTER, HeaderValue::from_static("1"));
            }
            res
        }
        Fault::Stall => {
            tokio::time::sleep(stall).await;
            next.run(req).await
        }
        Fault::Reset | Fault::Truncated => {
            let (parts, body) = next.run(req).await.into_parts();
            let Ok(bytes) = axum::body::to_bytes(body, usize::MAX).await else {
                return StatusCode::INTERNAL_SERVER_ERROR.into_response();
            };
            let half = bytes.slice(..bytes.len() / 2);
            if fault == Fault::Truncated {
                let mut res = Response::new(Body::from(half));
                *res.status_mut() = parts.status;
                if let Some(ct) = parts.headers.get(CONTENT_TYPE) {
                    res.headers_mut().insert(CONTENT_TYPE, ct.clone());
                }
                return res;
            }
            // The full length is announced, half is sent, then the
            // connection breaks.
            let chunks: Vec<Result<bytes::Bytes, std::io::Error>> = vec![
                Ok(half),
                Err(std::io::Error::new(
                    std::io::ErrorKind::ConnectionReset,
                    "injected reset",
                )),
            ];
            let mut res =
                Response::from_parts(parts, Body::from_stream(futures_util::stream::iter(chunks)));
            res.headers_mut()
                .insert(CONTENT_LENGTH, HeaderValue::from(bytes.len()));
            res
        }
        Fault::NotJson => {
            // Whatever the backend did, a proxy answers with its own page.
            let _ = next.run(req).await;
            (
                StatusCode::OK,
                [(CONTENT_TYPE, "text/html")],
                "<html><body><h1>Gateway</h1><p>Please sign in to the network.</p></body></html>",
            )
                .into_response()
        }
        Fault::Delay | Fault::Expired | Fault::NoEtag => {
            let res = next.run(req).await;
            tokio::time::sleep(delay).await;
            res
        }
    }
}

/// The part numbers of a getUploadUrls body; entries that are not part
/// numbers are skipped.
fn requested_parts(body: &[u8]) -> Vec<u32> {
    let Ok(value) = serde_json::from_slice::<Value>(body) else {
        return Vec::new();
    };
    value
        .get("parts")
        .and_then(Value::as_array)
        .map(|parts| {
            parts
                .iter()
                .filter_map(|p| p.as_u64().and_then(|n| u32::try_from(n).ok()))
                .collect()
        })
        .unwrap_or_default()
}
