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
use crate::faults::Faults;
use crate::stats::{Route, Stats};

/// getUploadUrls bodies are small; anything bigger is not worth parsing.
const MAX_RECORDED_BODY: usize = 1024 * 1024;

#[derive(Clone)]
pub(crate) struct Watch {
    pub stats: Arc<Stats>,
    pub faults: Arc<Faults>,
}

pub(crate) async fn layer(State(watch): State<Watch>, req: Request, next: Next) -> Response {
    let Some(route) = Route::of_path(req.uri().path()) else {
        return next.run(req).await;
    };
    watch.stats.backend_call(route);

    let req = if matches!(route, Route::GetUploadUrls | Route::StartUpload) {
        let (parts, body) = req.into_parts();
        let Ok(bytes) = axum::body::to_bytes(body, MAX_RECORDED_BODY).await else {
            return (
                StatusCode::PAYLOAD_TOO_LARGE,
                "body too large for the test harness",
            )
                .into_response();
        };
        if route == Route::GetUploadUrls {
            watch.stats.parts_requested(requested_parts(&bytes));
        } else if let Ok(body) = serde_json::from_slice::<Value>(&bytes) {
            watch.stats.start_body(body);
        }
        Request::from_parts(parts, Body::from(bytes))
    } else {
        req
    };

    match watch.faults.take_backend_fault(route) {
        Some(fault) => {
            let status =
                StatusCode::from_u16(fault.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            // Labelled JSON like the real answers, whatever the body holds, so
            // clients get to parse malformed bodies.
            let mut res =
                (status, [(CONTENT_TYPE, "application/json")], fault.body).into_response();
            if let Some((name, value)) = fault.header {
                if let (Ok(name), Ok(value)) =
                    (HeaderName::try_from(name), HeaderValue::try_from(value))
                {
                    res.headers_mut().insert(name, value);
                }
            }
            res
        }
        None => match watch.faults.roll(Target::Backend(route)) {
            Some((fault, stall, delay)) => chaos_call(req, next, fault, stall, delay).await,
            None => next.run(req).await,
        },
    }
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
