//! The embedded store behind a recording, fault-injecting hyper service.

use std::sync::Arc;

use bytes::Bytes;
use futures_util::StreamExt;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_LENGTH, CONTENT_TYPE, RETRY_AFTER, TRANSFER_ENCODING};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use s3s::service::S3Service;
use s3s::StdError;
use tokio::net::TcpListener;
use tokio::task::JoinSet;

use crate::chaos::{Fault, Target};
use crate::faults::{Broken, Faults, PutFault};
use crate::stats::{Stats, StoreRequest};

#[derive(Clone)]
pub(crate) struct Recorder {
    pub service: S3Service,
    pub stats: Arc<Stats>,
    pub faults: Arc<Faults>,
}

/// Accepts connections until the task is aborted; connections die with it.
pub(crate) async fn serve(listener: TcpListener, recorder: Recorder) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let recorder = recorder.clone();
                connections.spawn(async move {
                    let service = hyper::service::service_fn(move |req| handle(recorder.clone(), req));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

/// The error that makes hyper close the connection without answering.
#[derive(Debug)]
struct DroppedByFault;

impl std::fmt::Display for DroppedByFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by an injected fault")
    }
}

impl std::error::Error for DroppedByFault {}

/// `(uploadId, partNumber)` when the request uploads a part.
fn part_of(req: &Request<Incoming>) -> Option<(String, u32)> {
    if req.method() != Method::PUT {
        return None;
    }
    let mut upload_id = None;
    let mut part = None;
    for (name, value) in url::form_urlencoded::parse(req.uri().query()?.as_bytes()) {
        match name.as_ref() {
            "uploadId" => upload_id = Some(value.into_owned()),
            "partNumber" => part = value.parse::<u32>().ok(),
            _ => {}
        }
    }
    Some((upload_id?, part?))
}

async fn handle(
    recorder: Recorder,
    req: Request<Incoming>,
) -> Result<Response<s3s::Body>, StdError> {
    let upload_id = req.uri().query().and_then(|q| {
        url::form_urlencoded::parse(q.as_bytes())
            .find(|(name, _)| name == "uploadId")
            .map(|(_, v)| v.into_owned())
    });
    let mut record = StoreRequest {
        method: req.method().to_string(),
        path: req.uri().path().to_owned(),
        part: part_of(&req),
        upload_id,
        status: None,
    };
    let gone = record
        .upload_id
        .as_deref()
        .is_some_and(|id| recorder.faults.upload_is_gone(id));
    let is_put = req.method() == Method::PUT;
    let is_complete = req.method() == Method::POST && record.upload_id.is_some();
    let result = match record.part.clone() {
        _ if gone => {
            let _ = req.into_body().collect().await;
            Ok(s3_error(404))
        }
        Some((upload_id, part)) => handle_part_put(&recorder, req, &upload_id, part).await,
        None if is_put
            && record.upload_id.is_none()
            && !req.headers().contains_key("x-amz-copy-source") =>
        {
            recorder.stats.object_put_received(&record.path);
            forward(&recorder.service, req).await
        }
        None if is_complete && recorder.faults.refuses_zero_part_completes() => {
            complete_with_parts_only(&recorder, req).await
        }
        None => forward(&recorder.service, req).await,
    };
    let result = match result {
        Ok(mut res) if is_put && recorder.faults.is_broken(Broken::NoEtagPassthrough) => {
            res.headers_mut().remove(hyper::header::ETAG);
            Ok(res)
        }
        other => other,
    };
    record.status = result.as_ref().ok().map(|res| res.status().as_u16());
    recorder.stats.store_request_done(record);
    result
}

async fn handle_part_put(
    recorder: &Recorder,
    req: Request<Incoming>,
    upload_id: &str,
    part: u32,
) -> Result<Response<s3s::Body>, StdError> {
    let headers = req.headers();
    let headers_ok =
        headers.contains_key(CONTENT_LENGTH) && !headers.contains_key(TRANSFER_ENCODING);
    let _in_flight = recorder
        .stats
        .part_put_received(upload_id, part, headers_ok);
    // With neither header, HTTP/1.1 says there is no body.
    let empty = match headers.get(CONTENT_LENGTH) {
        Some(len) => len.as_bytes() == b"0",
        None => !headers.contains_key(TRANSFER_ENCODING),
    };
    if empty && recorder.faults.refuses_empty_parts() {
        let _ = req.into_body().collect().await;
        return Ok(xml_error(400, "InvalidRequest", "Bad request: Empty body"));
    }

    let delay = recorder.faults.put_delay(part);
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    if let Some(status) = recorder.faults.take_stalled_answer() {
        let _ = req.into_body().collect().await;
        return Ok(stalled_answer(status));
    }
    match recorder.faults.take_put_fault(part) {
        Some(PutFault::Drop) => Err(Box::new(DroppedByFault)),
        Some(PutFault::Status(status)) => {
            // Read the body first: answering early and closing would make
            // the client see a broken pipe instead of the status.
            let _ = req.into_body().collect().await;
            Ok(s3_error(status))
        }
        Some(PutFault::Body(status, body)) => {
            let _ = req.into_body().collect().await;
            let mut res = Response::new(s3s::Body::from(Bytes::from(body)));
            *res.status_mut() =
                StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            Ok(res)
        }
        Some(PutFault::NoEtag) => {
            let mut res = forward(&recorder.service, req).await?;
            res.headers_mut().remove(hyper::header::ETAG);
            Ok(res)
        }
        None => match recorder.faults.roll(Target::PartPut) {
            Some((fault, stall, delay)) => chaos_put(recorder, req, fault, stall, delay).await,
            None => {
                let answer = match recorder.faults.part_body_rate() {
                    Some(rate) => forward_paced(&recorder.service, req, rate).await,
                    None => forward(&recorder.service, req).await,
                };
                let hold = recorder.faults.put_response_delay();
                if !hold.is_zero() {
                    tokio::time::sleep(hold).await;
                }
                answer
            }
        },
    }
}

/// A part PUT with a random fault.
async fn chaos_put(
    recorder: &Recorder,
    req: Request<Incoming>,
    fault: Fault,
    stall: std::time::Duration,
    delay: std::time::Duration,
) -> Result<Response<s3s::Body>, StdError> {
    match fault {
        Fault::Reset => {
            // Take a little of the body, then hang up.
            let mut body = req.into_body();
            let _ = body.frame().await;
            Err(Box::new(DroppedByFault))
        }
        Fault::Status(status) | Fault::StatusRetryAfter(status) => {
            let _ = req.into_body().collect().await;
            let mut res = s3_error(status);
            if matches!(fault, Fault::StatusRetryAfter(_)) {
                res.headers_mut()
                    .insert(RETRY_AFTER, HeaderValue::from_static("1"));
            }
            Ok(res)
        }
        Fault::Expired => {
            let _ = req.into_body().collect().await;
            Ok(s3_error(403))
        }
        Fault::NoEtag => {
            let mut res = forward(&recorder.service, req).await?;
            res.headers_mut().remove(hyper::header::ETAG);
            Ok(res)
        }
        Fault::Stall => {
            tokio::time::sleep(stall).await;
            forward(&recorder.service, req).await
        }
        Fault::Delay | Fault::Truncated | Fault::NotJson => {
            let answer = forward(&recorder.service, req).await;
            tokio::time::sleep(delay).await;
            answer
        }
    }
}

/// A CompleteMultipartUpload, refused when it lists no part (as AWS
/// answers a complete with no parts), forwarded otherwise.
async fn complete_with_parts_only(
    recorder: &Recorder,
    req: Request<Incoming>,
) -> Result<Response<s3s::Body>, StdError> {
    let (parts, body) = req.into_parts();
    let bytes = body.collect().await?.to_bytes();
    if !String::from_utf8_lossy(&bytes).contains("<Part>") {
        return Ok(xml_error(
            400,
            "MalformedXML",
            "The XML you provided was not well-formed or did not validate against our published schema",
        ));
    }
    recorder
        .service
        .call(Request::from_parts(parts, s3s::Body::from(bytes)))
        .await
        .map_err(StdError::from)
}

async fn forward(
    service: &S3Service,
    req: Request<Incoming>,
) -> Result<Response<s3s::Body>, StdError> {
    hyper::service::Service::call(service, req)
        .await
        .map_err(StdError::from)
}

/// Like [`forward`], with the body read no faster than `rate` bytes per
/// second: each read waits until the bytes taken so far are due. The reads
/// are as large as the socket holds, so narrow sockets keep the pace even.
async fn forward_paced(
    service: &S3Service,
    req: Request<Incoming>,
    rate: u64,
) -> Result<Response<s3s::Body>, StdError> {
    let (parts, body) = req.into_parts();
    let began = tokio::time::Instant::now();
    let frames = http_body_util::BodyStream::new(body);
    let paced =
        futures_util::stream::unfold((frames, 0u64), move |(mut frames, taken)| async move {
            let due = began + std::time::Duration::from_secs_f64(taken as f64 / rate as f64);
            tokio::time::sleep_until(due).await;
            let frame = frames.next().await?;
            let len = match &frame {
                Ok(f) => f.data_ref().map_or(0, |d| d.len() as u64),
                Err(_) => 0,
            };
            Some((frame, (frames, taken + len)))
        });
    let body = s3s::Body::http_body_unsync(http_body_util::StreamBody::new(paced));
    service
        .call(Request::from_parts(parts, body))
        .await
        .map_err(StdError::from)
}

/// `status` announcing a 100-byte body, of which 10 bytes come, then silence.
fn stalled_answer(status: u16) -> Response<s3s::Body> {
    let first = futures_util::stream::iter([Ok::<_, std::io::Error>(hyper::body::Frame::data(
        Bytes::from_static(b"<Error><Co"),
    ))]);
    let body = http_body_util::StreamBody::new(first.chain(futures_util::stream::pending()));
    let mut res = Response::new(s3s::Body::http_body(body));
    *res.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
    res.headers_mut()
        .insert(CONTENT_LENGTH, HeaderValue::from_static("100"));
    res.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/xml"));
    res
}

/// An S3-style XML error answer.
fn s3_error(status: u16) -> Response<s3s::Body> {
    let (code, message) = match status {
        400 => ("InvalidRequest", "Injected bad request"),
        403 => ("AccessDenied", "Request has expired"),
        404 => ("NoSuchUpload", "The specified upload does not exist"),
        500 => (
            "InternalError",
            "We encountered an internal error. Please try again.",
        ),
        502 => ("BadGateway", "Injected bad gateway"),
        503 => ("SlowDown", "Please reduce your request rate."),
        429 => ("TooManyRequests", "Please reduce your request rate."),
        _ => ("InjectedFault", "Injected fault"),
    };
    xml_error(status, code, message)
}

/// An S3 XML error answer with this code and message.
fn xml_error(status: u16, code: &str, message: &str) -> Response<s3s::Body> {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{message}</Message></Error>"
    );
    let mut res = Response::new(s3s::Body::from(Bytes::from(body)));
    *res.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    res.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/xml"));
    res
}
