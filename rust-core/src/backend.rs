//! The app backend's JSON endpoints, as the contract defines them:
//! startUpload, getUploadUrls, complete (and our optional abort).

use crate::config::Config;
use crate::error::ErrorCode;
use crate::failure::{
    describe_reqwest, is_transient_status, request_failure, retry_after, Failure,
};
use crate::redact;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

/// Largest part size S3 accepts.
pub(crate) const MAX_PART_SIZE: u64 = 5 * 1024 * 1024 * 1024;
/// Smallest part size S3 accepts for every part but the last.
pub(crate) const MIN_S3_PART_SIZE: u64 = 5 * 1024 * 1024;
/// Most parts in one multipart upload.
pub(crate) const MAX_PARTS: u64 = 10_000;
/// Largest backend answer read (10,000 presigned URLs fit easily).
pub(crate) const MAX_BODY: usize = 32 * 1024 * 1024;

/// Everything but RFC 3986 unreserved characters is percent-encoded.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StartAnswer {
    pub key: String,
    pub upload_id: String,
    pub part_size: u64,
}

/// Which call failed, for messages.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Call {
    StartUpload,
    UploadUrls,
    Complete,
    Abort,
}

impl Call {
    fn name(self) -> &'static str {
        match self {
            Call::StartUpload => "startUpload",
            Call::UploadUrls => "getUploadUrls",
            Call::Complete => "complete",
            Call::Abort => "abort",
        }
    }
}

/// Number of parts for a file: a 0-byte file is one empty part.
pub(crate) fn part_count(size: u64, part_size: u64) -> u64 {
    if size == 0 {
        1
    } else {
        size.div_ceil(part_size)
    }
}

/// `{base}/{uploadId}/{key}` with exactly one `/` between pieces; the upload id
/// is one encoded segment, the key keeps its `/` and each segment is encoded.
pub(crate) fn join_complete_url(base: &str, upload_id: &str, key: &str) -> String {
    let mut url = base.trim_end_matches('/').to_string();
    url.push('/');
    url.push_str(&utf8_percent_encode(upload_id, SEGMENT).to_string());
    url.push('/');
    let encoded: Vec<String> = key
        .split('/')
        .map(|seg| utf8_percent_encode(seg, SEGMENT).to_string())
        .collect();
    url.push_str(&encoded.join("/"));
    url
}

pub(crate) struct BackendClient<'a> {
    pub http: &'a reqwest::Client,
    pub config: &'a Config,
    /// Values to keep out of messages (header values, user params).
    pub secrets: Vec<String>,
}

impl BackendClient<'_> {
    fn secret_refs(&self) -> Vec<&str> {
        self.secrets.iter().map(String::as_str).collect()
    }

    async fn post(&self, call: Call, url: &str, body: &Value) -> Result<Vec<u8>, Failure> {
        let mut req = self
            .http
            .post(url)
            .timeout(self.config.retry.request_timeout())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(serde_json::to_vec(body).map_err(|e| {
                Failure::fatal(
                    ErrorCode::Internal,
                    format!("cannot encode {}: {e}", call.name()),
                )
            })?);
        for (name, value) in &self.config.headers {
            req = req.header(name.as_str(), value.as_str());
        }
        let resp = req
            .send()
            .await
            .map_err(|e| request_failure(e, call.name(), ErrorCode::BackendUnavailable))?;
        let status = resp.status().as_u16();
        let ra = retry_after(resp.headers());
        let body = read_limited(resp).await.map_err(|e| match e {
            ReadError::TooLarge => invalid(
                call,
                format!("the answer is larger than {} MiB", MAX_BODY >> 20),
            ),
            ReadError::Broken(detail) => Failure::Transient {
                detail: format!("{} answer could not be read: {detail}", call.name()),
                retry_after: None,
            },
        })?;
        if (200..300).contains(&status) {
            return Ok(body);
        }
        if (300..400).contains(&status) {
            // Following would turn the POST into a GET and lose the body.
            return Err(Failure::fatal(
                ErrorCode::BackendRejected,
                format!(
                    "{} answered HTTP {status} (a redirect); redirects are not followed, \
                     configure the final URL",
                    call.name()
                ),
            ));
        }
        let excerpt = redact::excerpt(&body, &self.secret_refs());
        let detail = if excerpt.is_empty() {
            format!("{} answered HTTP {status}", call.name())
        } else {
            format!("{} answered HTTP {status}: {excerpt}", call.name())
        };
        Err(if status == 401 {
            Failure::Auth { detail }
        } else if matches!(call, Call::Complete)
            && matches!(status, 400 | 404)
            && says_no_such_upload(&body)
        {
            // The store no longer knows the multipart upload, as after a
            // complete that succeeded: the engine decides what that means.
            Failure::UploadGone { detail }
        } else if is_transient_status(status) {
            Failure::Transient {
                detail,
                retry_after: ra,
            }
        } else {
            Failure::fatal(ErrorCode::BackendRejected, detail)
        })
    }

    pub(crate) async fn start_upload(
        &self,
        file_name: &str,
        file_hash: &str,
        file_size: u64,
        user_params: &Map<String, Value>,
    ) -> Result<StartAnswer, Failure> {
        let mut body = user_params.clone();
        body.insert("fileName".into(), json!(file_name));
        body.insert("fileHash".into(), json!(file_hash));
        body.insert("fileSize".into(), json!(file_size));
        let raw = self
            .post(
                Call::StartUpload,
                &self.config.start_upload_url,
                &Value::Object(body),
            )
            .await?;
        parse_start_answer(&raw, file_size)
    }

    pub(crate) async fn upload_urls(
        &self,
        key: &str,
        upload_id: &str,
        parts: &[u32],
    ) -> Result<BTreeMap<u32, String>, Failure> {
        let body = json!({ "key": key, "uploadId": upload_id, "parts": parts });
        let raw = self
            .post(Call::UploadUrls, &self.config.upload_urls_url, &body)
            .await?;
        parse_upload_urls(&raw, parts)
    }

    pub(crate) async fn complete(
        &self,
        key: &str,
        upload_id: &str,
        etags: &[(u32, String)],
    ) -> Result<(), Failure> {
        let parts: Vec<Value> = etags
            .iter()
            .map(|(n, e)| json!({ "PartNumber": n, "ETag": e }))
            .collect();
        let url = join_complete_url(&self.config.complete_url, upload_id, key);
        self.post(Call::Complete, &url, &json!({ "parts": parts }))
            .await
            .map(|_| ())
    }

    pub(crate) async fn abort(
        &self,
        base: &str,
        key: &str,
        upload_id: &str,
    ) -> Result<(), Failure> {
        let url = join_complete_url(base, upload_id, key);
        self.post(Call::Abort, &url, &json!({})).await.map(|_| ())
    }
}

/// The store's `NoSuchUpload`, passed on in a backend's error answer.
fn says_no_such_upload(body: &[u8]) -> bool {
    body.windows(b"NoSuchUpload".len())
        .any(|w| w == b"NoSuchUpload")
}

fn invalid(call: Call, what: impl std::fmt::Display) -> Failure {
    Failure::fatal(
        ErrorCode::BackendInvalidResponse,
        format!("{} answer is invalid: {what}", call.name()),
    )
}

/// A 2xx body that is not a JSON object at all (empty, cut short, an HTML
/// page from a proxy) is retried; valid JSON that breaks the contract is not.
fn parse_object(call: Call, body: &[u8]) -> Result<Map<String, Value>, Failure> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(invalid(call, "expected a JSON object")),
        Err(e) => Err(Failure::Garbled {
            code: ErrorCode::BackendInvalidResponse,
            detail: if body.iter().all(u8::is_ascii_whitespace) {
                format!("{} answer is empty", call.name())
            } else {
                format!("{} answer is not JSON ({e})", call.name())
            },
        }),
    }
}

/// Checks a startUpload answer against the contract for a file of `file_size`.
pub(crate) fn parse_start_answer(body: &[u8], file_size: u64) -> Result<StartAnswer, Failure> {
    let call = Call::StartUpload;
    let m = parse_object(call, body)?;
    let text = |field: &str| -> Result<String, Failure> {
        match m.get(field) {
            Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
            Some(Value::String(_)) => Err(invalid(call, format!("\"{field}\" is empty"))),
            Some(Value::Null) => Err(invalid(call, format!("\"{field}\" is null"))),
            Some(_) => Err(invalid(call, format!("\"{field}\" must be a string"))),
            None => Err(invalid(call, format!("\"{field}\" is missing"))),
        }
    };
    let key = text("key")?;
    if key.split('/').any(|seg| seg == "." || seg == "..") {
        // URL resolution would drop them from the complete path.
        return Err(invalid(
            call,
            "\"key\" has '.' or '..' segments, which a URL path cannot carry",
        ));
    }
    let upload_id = text("uploadId")?;
    let part_size = match m.get("partSize") {
        Some(Value::Number(n)) => match n.as_u64() {
            Some(v) => v,
            None => {
                return Err(invalid(
                    call,
                    format!("\"partSize\" must be a positive integer, got {n}"),
                ))
            }
        },
        Some(Value::Null) => return Err(invalid(call, "\"partSize\" is null")),
        Some(_) => return Err(invalid(call, "\"partSize\" must be a number")),
        None => return Err(invalid(call, "\"partSize\" is missing")),
    };
    if part_size == 0 || part_size > MAX_PART_SIZE {
        return Err(invalid(
            call,
            format!("\"partSize\" {part_size} is outside 1..=5 GiB"),
        ));
    }
    let parts = part_count(file_size, part_size);
    if parts > MAX_PARTS {
        return Err(invalid(
            call,
            format!(
                "\"partSize\" {part_size} gives {parts} parts for {file_size} bytes; at most {MAX_PARTS} are allowed"
            ),
        ));
    }
    if parts > 1 && part_size < MIN_S3_PART_SIZE {
        tracing::warn!(
            part_size,
            "backend chose parts under 5 MiB: S3 will refuse them at complete"
        );
    }
    Ok(StartAnswer {
        key,
        upload_id,
        part_size,
    })
}

/// Checks a getUploadUrls answer: one http(s) URL for every part asked for.
pub(crate) fn parse_upload_urls(
    body: &[u8],
    parts: &[u32],
) -> Result<BTreeMap<u32, String>, Failure> {
    let call = Call::UploadUrls;
    let m = parse_object(call, body)?;
    let urls = match m.get("urls") {
        Some(Value::Object(u)) => u,
        Some(Value::Null) => return Err(invalid(call, "\"urls\" is null")),
        Some(_) => return Err(invalid(call, "\"urls\" must be an object")),
        None => return Err(invalid(call, "\"urls\" is missing")),
    };
    let mut out = BTreeMap::new();
    for &n in parts {
        match urls.get(&n.to_string()) {
            Some(Value::String(u)) => match url::Url::parse(u) {
                Ok(parsed) if matches!(parsed.scheme(), "http" | "https") && parsed.has_host() => {
                    out.insert(n, u.clone());
                }
                _ => {
                    return Err(invalid(
                        call,
                        format!("the URL of part {n} is not an http(s) URL"),
                    ))
                }
            },
            Some(_) => {
                return Err(invalid(
                    call,
                    format!("the URL of part {n} must be a string"),
                ))
            }
            // A missing URL fails the batch: it is asked again, never skipped,
            // and if it never comes the upload fails with this message.
            None => {
                return Err(Failure::Garbled {
                    code: ErrorCode::BackendInvalidResponse,
                    detail: format!("getUploadUrls answer has no URL for part {n}"),
                })
            }
        }
    }
    Ok(out)
}

enum ReadError {
    TooLarge,
    Broken(String),
}

/// Reads a whole answer, refusing one larger than [`MAX_BODY`] without
/// reading further.
async fn read_limited(mut resp: reqwest::Response) -> Result<Vec<u8>, ReadError> {
    if resp.content_length().is_some_and(|n| n > MAX_BODY as u64) {
        return Err(ReadError::TooLarge);
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| ReadError::Broken(describe_reqwest(e)))?
    {
        if body.len() + chunk.len() > MAX_BODY {
            return Err(ReadError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn complete_url_joining_and_encoding() {
        assert_eq!(
            join_complete_url("https://api.example/complete", "abc", "uploads/x/video.mp4"),
            "https://api.example/complete/abc/uploads/x/video.mp4"
        );
        assert_eq!(
            join_complete_url(
                "https://api.example/complete/",
                "a/b+c=",
                "dir/my file ä.mp4"
            ),
            "https://api.example/complete/a%2Fb%2Bc%3D/dir/my%20file%20%C3%A4.mp4"
        );
        assert_eq!(
            join_complete_url("http://h/c//", "id-1._~", "k"),
            "http://h/c/id-1._~/k"
        );
    }

    #[test]
    fn part_counts() {
        assert_eq!(part_count(0, 5), 1);
        assert_eq!(part_count(1, 5), 1);
        assert_eq!(part_count(4, 5), 1);
        assert_eq!(part_count(5, 5), 1);
        assert_eq!(part_count(6, 5), 2);
        assert_eq!(part_count(50_000, 5), 10_000);
    }
}
