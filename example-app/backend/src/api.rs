//! The JSON-over-HTTP API the upload engine talks to.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::connect_info::{ConnectInfo, Connected};
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::serve::IncomingStream;
use axum::Extension;
use axum::{Json, Router};
use serde_json::{json, Map, Value};

use crate::config::{BackendError, BackendOptions, PartUrlBase};
use crate::empty::{check_hash_and_size, complete_empty, is_empty_upload_key, EmptyOutcome};
use crate::keys::{
    check_client_key, is_md5_hex_lower, multipart_etag, part_size_for, sanitize_file_name, unquote,
    MAX_OBJECT_SIZE, MAX_PARTS,
};
use crate::store::{Store, StoreFailure};

/// Most URLs handed out by one getUploadUrls call.
const MAX_URLS_PER_CALL: usize = 1000;
/// Upload ids are opaque, but no store uses anything near this long.
const MAX_UPLOAD_ID_LEN: usize = 1024;
/// Longer ETags are not S3 ETags, and they end up in an XML body.
const MAX_ETAG_LEN: usize = 256;

/// The backend's request handlers. Holds configuration only: every request
/// is served from what it carries, so instances can be added freely.
pub struct Backend {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    part_url_base: PartUrlBase,
    part_size: u64,
    url_ttl: Duration,
    key_prefix: String,
}

impl Backend {
    pub fn new(opts: BackendOptions) -> Result<Self, BackendError> {
        opts.validate()?;
        let store = Store::new(&opts.store, &opts.store_root_certificates_der)?;
        Ok(Self {
            inner: Arc::new(Inner {
                store,
                part_url_base: opts.part_url_base,
                part_size: opts.part_size,
                url_ttl: opts.url_ttl,
                key_prefix: opts.key_prefix,
            }),
        })
    }

    pub fn router(self) -> Router {
        Router::new()
            .route("/startUpload", post(start_upload))
            .route("/getUploadUrls", post(get_upload_urls))
            .route("/complete/{upload_id}/{*key}", post(complete))
            .route("/abort/{upload_id}/{*key}", post(abort))
            .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "no such endpoint") })
            .with_state(self.inner)
    }
}

/// The local address a connection came in on: serve the router with
/// `into_make_service_with_connect_info::<LocalAddr>()` for
/// [`PartUrlBase::RequestAddress`] to see it.
#[derive(Clone, Copy, Debug)]
pub struct LocalAddr(pub Option<std::net::SocketAddr>);

impl Connected<IncomingStream<'_, tokio::net::TcpListener>> for LocalAddr {
    fn connect_info(stream: IncomingStream<'_, tokio::net::TcpListener>) -> Self {
        LocalAddr(stream.io().local_addr().ok())
    }
}

/// The base the part URLs of one request name (`None`: the store endpoint).
fn part_url_base(
    inner: &Inner,
    host: Option<&HeaderValue>,
    local: Option<std::net::SocketAddr>,
) -> Option<url::Url> {
    match &inner.part_url_base {
        PartUrlBase::Store => None,
        PartUrlBase::Fixed(base) => Some(base.clone()),
        PartUrlBase::RequestAddress { port } => {
            let mut base = inner.store.endpoint().clone();
            // The host the client used to reach us (a LAN address, a name,
            // an emulator's alias of the machine), else the local address
            // the connection came in on.
            let named = host
                .and_then(|h| h.to_str().ok())
                .and_then(|h| h.parse::<axum::http::uri::Authority>().ok())
                .filter(|a| !a.as_str().contains('@'))
                .is_some_and(|a| base.set_host(Some(a.host())).is_ok());
            if !named {
                // An IPv4 client of a dual-stack listener shows as ::ffff:a.b.c.d.
                let ip = local?.ip().to_canonical();
                if ip.is_unspecified() {
                    return None;
                }
                base.set_ip_host(ip).ok()?;
            }
            base.set_port(Some(*port)).ok()?;
            Some(base)
        }
    }
}

/// An error answer: `{"error": "..."}` with a status.
#[derive(Debug)]
struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    fn store(what: &str, failure: &StoreFailure) -> Self {
        Self::new(
            StatusCode::BAD_GATEWAY,
            format!("{what}: {}", failure.describe()),
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(json!({ "error": self.message }))).into_response()
    }
}

type ApiResult = Result<Response, ApiError>;

/// Parses a JSON object body. The content type is not checked: mobile HTTP
/// stacks are not always careful with it, and the body says enough.
fn json_object(body: Result<Bytes, BytesRejection>) -> Result<Map<String, Value>, ApiError> {
    let body = body.map_err(|e| ApiError::new(e.status(), "could not read the request body"))?;
    match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(ApiError::bad_request("the body must be a JSON object")),
        Err(_) => Err(ApiError::bad_request("the body is not valid JSON")),
    }
}

fn string_field<'a>(map: &'a Map<String, Value>, name: &str) -> Result<&'a str, ApiError> {
    match map.get(name) {
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(ApiError::bad_request(format!("{name} must be a string"))),
        None => Err(ApiError::bad_request(format!("{name} is missing"))),
    }
}

fn path_params(
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<(String, String), ApiError> {
    let Path((upload_id, key)) =
        path.map_err(|_| ApiError::bad_request("invalid upload id or key in the path"))?;
    Ok((upload_id, key))
}

fn check_upload_id(upload_id: &str) -> Result<(), ApiError> {
    if upload_id.is_empty()
        || upload_id.len() > MAX_UPLOAD_ID_LEN
        || upload_id.chars().any(char::is_control)
    {
        return Err(ApiError::bad_request("invalid uploadId"));
    }
    Ok(())
}

fn check_key(inner: &Inner, key: &str) -> Result<(), ApiError> {
    check_client_key(key, &inner.key_prefix).map_err(ApiError::bad_request)
}

async fn start_upload(
    State(inner): State<Arc<Inner>>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult {
    let req = json_object(body)?;
    let file_name = string_field(&req, "fileName")?;
    let file_hash = string_field(&req, "fileHash")?;
    if !is_md5_hex_lower(file_hash) {
        return Err(ApiError::bad_request(
            "fileHash must be 32 lowercase hex digits",
        ));
    }
    let file_size = match req.get("fileSize") {
        Some(v) => v
            .as_u64()
            .ok_or_else(|| ApiError::bad_request("fileSize must be a non-negative integer"))?,
        None => return Err(ApiError::bad_request("fileSize is missing")),
    };
    if file_size > MAX_OBJECT_SIZE {
        return Err(ApiError::bad_request(
            "fileSize is larger than the 5 TiB S3 allows",
        ));
    }
    check_hash_and_size(file_hash, file_size).map_err(ApiError::bad_request)?;

    let part_size = part_size_for(inner.part_size, file_size);
    // The random segment keeps two uploads of the same file apart.
    let nonce: u32 = rand::random();
    let key = format!(
        "{}{}/{:08x}/{}",
        inner.key_prefix,
        file_hash,
        nonce,
        sanitize_file_name(file_name)
    );
    let upload_id = inner
        .store
        .create_multipart_upload(&key)
        .await
        .map_err(|f| ApiError::store("could not start the upload", &f))?;
    tracing::info!(%key, file_size, part_size, "multipart upload started");
    Ok(Json(json!({ "key": key, "uploadId": upload_id, "partSize": part_size })).into_response())
}

async fn get_upload_urls(
    State(inner): State<Arc<Inner>>,
    local: Option<Extension<ConnectInfo<LocalAddr>>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult {
    let base = part_url_base(
        &inner,
        headers.get(axum::http::header::HOST),
        local.and_then(|Extension(ConnectInfo(a))| a.0),
    );
    let req = json_object(body)?;
    let key = string_field(&req, "key")?;
    let upload_id = string_field(&req, "uploadId")?;
    check_key(&inner, key)?;
    check_upload_id(upload_id)?;
    let parts = match req.get("parts") {
        Some(Value::Array(parts)) => parts,
        Some(_) => return Err(ApiError::bad_request("parts must be an array")),
        None => return Err(ApiError::bad_request("parts is missing")),
    };
    if parts.is_empty() || parts.len() > MAX_URLS_PER_CALL {
        return Err(ApiError::bad_request(format!(
            "parts must hold between 1 and {MAX_URLS_PER_CALL} part numbers"
        )));
    }
    let empty = is_empty_upload_key(key, &inner.key_prefix);
    let mut urls = Map::new();
    for part in parts {
        let number = part
            .as_u64()
            .filter(|n| (1..=MAX_PARTS).contains(n))
            .and_then(|n| u16::try_from(n).ok())
            .ok_or_else(|| {
                ApiError::bad_request("part numbers must be integers from 1 to 10000")
            })?;
        // An empty file's one part is stored as a whole object (see empty.rs).
        let url = match (empty, number) {
            (false, _) => {
                inner
                    .store
                    .presign_part(key, upload_id, number, inner.url_ttl, base.as_ref())
            }
            (true, 1) => inner
                .store
                .presign_put_object(key, inner.url_ttl, base.as_ref()),
            (true, _) => return Err(ApiError::bad_request("an empty file has only part 1")),
        };
        urls.insert(number.to_string(), Value::String(url.into()));
    }
    Ok(Json(json!({ "urls": urls })).into_response())
}

/// The `parts` of a complete request: ETags in part-number order, checked to
/// be exactly parts 1..=N.
fn completed_parts(req: &Map<String, Value>) -> Result<Vec<&str>, ApiError> {
    let parts = match req.get("parts") {
        Some(Value::Array(parts)) => parts,
        Some(_) => return Err(ApiError::bad_request("parts must be an array")),
        None => return Err(ApiError::bad_request("parts is missing")),
    };
    if parts.is_empty() || parts.len() as u64 > MAX_PARTS {
        return Err(ApiError::bad_request(
            "parts must hold between 1 and 10000 entries",
        ));
    }
    let mut etags = Vec::with_capacity(parts.len());
    for (i, part) in parts.iter().enumerate() {
        let number = part.get("PartNumber").and_then(Value::as_u64);
        if number != Some(i as u64 + 1) {
            return Err(ApiError::bad_request(
                "parts must be numbered 1 to N in order, each with a PartNumber",
            ));
        }
        let etag = match part.get("ETag") {
            Some(Value::String(e)) if !e.trim().is_empty() && e.len() <= MAX_ETAG_LEN => e.as_str(),
            _ => {
                return Err(ApiError::bad_request(format!(
                    "part {} has no valid ETag",
                    i + 1
                )))
            }
        };
        etags.push(etag);
    }
    Ok(etags)
}

async fn complete(
    State(inner): State<Arc<Inner>>,
    path: Result<Path<(String, String)>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult {
    let (upload_id, key) = path_params(path)?;
    check_upload_id(&upload_id)?;
    check_key(&inner, &key)?;
    let req = json_object(body)?;
    let etags = completed_parts(&req)?;
    if is_empty_upload_key(&key, &inner.key_prefix) {
        match complete_empty(&inner.store, &key, &upload_id, &etags).await {
            EmptyOutcome::Done(answer) => return Ok(answer),
            EmptyOutcome::Refused(status, message) => return Err(ApiError::new(status, message)),
            EmptyOutcome::NotThere => {}
        }
    }

    // The store call runs in a task of its own: when the client hangs up (an
    // app killed mid-request), a completion already under way must still
    // finish, or a file-backed store is left with neither the upload nor
    // the object.
    let detached = {
        let inner = Arc::clone(&inner);
        let (key, upload_id) = (key.clone(), upload_id.clone());
        let etags: Vec<String> = etags.iter().map(|e| (*e).to_owned()).collect();
        tokio::spawn(async move {
            let etags: Vec<&str> = etags.iter().map(String::as_str).collect();
            inner.store.complete(&key, &upload_id, &etags).await
        })
    };
    let completed = detached.await.unwrap_or_else(|_| {
        Err(StoreFailure::Unreachable(
            "the completion task stopped".to_owned(),
        ))
    });
    let failure = match completed {
        Ok(etag) => {
            tracing::info!(%key, parts = etags.len(), "multipart upload completed");
            return Ok(Json(json!({ "key": key, "etag": etag })).into_response());
        }
        Err(failure) => failure,
    };

    // Completing twice must succeed: the first answer may have been lost on
    // the way to the client. Once completed, the store no longer knows the
    // upload, so check whether the object it produced is there.
    match inner.store.head_etag(&key).await {
        Ok(Some(found)) => {
            let expected = multipart_etag(etags.iter().copied());
            let matches = expected
                .as_deref()
                .is_none_or(|e| unquote(&found).eq_ignore_ascii_case(e));
            if matches {
                tracing::info!(%key, "multipart upload was already completed");
                return Ok(Json(json!({ "key": key, "etag": found })).into_response());
            }
            tracing::warn!(%key, "object exists but does not match the parts given");
        }
        Ok(None) => {}
        Err(head_failure) => {
            tracing::warn!(%key, error = %head_failure.describe(), "could not check for a completed object");
        }
    }
    tracing::warn!(%key, error = %failure.describe(), "completing the upload failed");
    Err(complete_error(&failure))
}

/// Failures the client caused (and retrying will not fix) become 400, the
/// rest 502.
fn complete_error(failure: &StoreFailure) -> ApiError {
    const CLIENT_CODES: &[&str] = &[
        "InvalidPart",
        "InvalidPartOrder",
        "EntityTooSmall",
        "NoSuchUpload",
        "InvalidRequest",
        "InvalidArgument",
        "MalformedXML",
    ];
    let client_fault = match failure.code() {
        Some(code) => CLIENT_CODES.contains(&code),
        None => matches!(failure.status(), Some(400 | 404)),
    };
    if client_fault {
        ApiError::bad_request(format!(
            "could not complete the upload: {}",
            failure.describe()
        ))
    } else {
        ApiError::store("could not complete the upload", failure)
    }
}

async fn abort(
    State(inner): State<Arc<Inner>>,
    path: Result<Path<(String, String)>, PathRejection>,
) -> ApiResult {
    let (upload_id, key) = path_params(path)?;
    check_upload_id(&upload_id)?;
    check_key(&inner, &key)?;
    match inner.store.abort(&key, &upload_id).await {
        Ok(()) => {
            tracing::info!(%key, "multipart upload aborted");
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        // Already gone (completed, aborted or expired): nothing left to do.
        Err(f) if matches!(f.status(), Some(403 | 404)) => {
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        // e.g. an upload id in a format the store never issues.
        Err(f) if f.status() == Some(400) => Err(ApiError::bad_request(format!(
            "could not abort the upload: {}",
            f.describe()
        ))),
        Err(f) => Err(ApiError::store("could not abort the upload", &f)),
    }
}
