//! The app backend's JSON endpoints, as the contract defines them:
//! startUpload, getUploadUrls, complete (and our optional abort).

use crate::config::Config;
use crate::error::ErrorCode;
use crate::failure::{describe_reqwest, is_transient_status, retry_after, Failure};
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
/// A backend call that has not answered by then is retried.
const BACKEND_CALL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);
/// Largest backend answer read (10,000 presigned URLs fit easily).
const MAX_BODY: usize = 32 * 1024 * 1024;

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
            .timeout(BACKEND_CALL_TIMEOUT)
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
        let resp = req.send().await.map_err(|e| Failure::Transient {
            detail: format!("{} {}", call.name(), describe_reqwest(e)),
            retry_after: None,
        })?;
        let status = resp.status().as_u16();
        let ra = retry_after(resp.headers());
        let body = read_limited(resp)
            .await
            .map_err(|detail| Failure::Transient {
                detail: format!("{} answer could not be read: {detail}", call.name()),
                retry_after: None,
            })?;
        if (200..300).contains(&status) {
            return Ok(body);
        }
        let excerpt = redact::excerpt(&body, &self.secret_refs());
        let detail = if excerpt.is_empty() {
            format!("{} answered HTTP {status}", call.name())
        } else {
            format!("{} answered HTTP {status}: {excerpt}", call.name())
        };
        Err(if status == 401 {
            Failure::Auth { detail }
        } else if is_transient_status(status) {
            Failure::Transient {
                detail,
                retry_after: ra,
            }
        } else {
            Failure::fatal(ErrorCode::BackendRejected, detail)
        })
    }

    fn invalid(&self, call: Call, what: impl std::fmt::Display) -> Failure {
        Failure::fatal(
            ErrorCode::BackendInvalidResponse,
            format!("{} answer is invalid: {what}", call.name()),
        )
    }

    fn parse_object(&self, call: Call, body: &[u8]) -> Result<Map<String, Value>, Failure> {
        match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(m)) => Ok(m),
            Ok(_) => Err(self.invalid(call, "expected a JSON object")),
            Err(e) => Err(self.invalid(call, format!("not JSON ({e})"))),
        }
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
        let m = self.parse_object(Call::StartUpload, &raw)?;
        let text = |field: &str| -> Result<String, Failure> {
            match m.get(field) {
                Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
                Some(Value::String(_)) => {
                    Err(self.invalid(Call::StartUpload, format!("\"{field}\" is empty")))
                }
                Some(_) => {
                    Err(self.invalid(Call::StartUpload, format!("\"{field}\" must be a string")))
                }
                None => Err(self.invalid(Call::StartUpload, format!("\"{field}\" is missing"))),
            }
        };
        let key = text("key")?;
        let upload_id = text("uploadId")?;
        let part_size = match m.get("partSize") {
            Some(Value::Number(n)) => match n.as_u64() {
                Some(v) => v,
                None => {
                    return Err(self.invalid(
                        Call::StartUpload,
                        format!("\"partSize\" must be a positive integer, got {n}"),
                    ))
                }
            },
            Some(_) => return Err(self.invalid(Call::StartUpload, "\"partSize\" must be a number")),
            None => return Err(self.invalid(Call::StartUpload, "\"partSize\" is missing")),
        };
        if part_size == 0 || part_size > MAX_PART_SIZE {
            return Err(self.invalid(
                Call::StartUpload,
                format!("\"partSize\" {part_size} is outside 1..=5 GiB"),
            ));
        }
        let parts = part_count(file_size, part_size);
        if parts > MAX_PARTS {
            return Err(self.invalid(
                Call::StartUpload,
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
        let m = self.parse_object(Call::UploadUrls, &raw)?;
        let urls = match m.get("urls") {
            Some(Value::Object(u)) => u,
            Some(_) => return Err(self.invalid(Call::UploadUrls, "\"urls\" must be an object")),
            None => return Err(self.invalid(Call::UploadUrls, "\"urls\" is missing")),
        };
        let mut out = BTreeMap::new();
        for &n in parts {
            match urls.get(&n.to_string()) {
                Some(Value::String(u)) => match url::Url::parse(u) {
                    Ok(parsed) if matches!(parsed.scheme(), "http" | "https") => {
                        out.insert(n, u.clone());
                    }
                    _ => {
                        return Err(self.invalid(
                            Call::UploadUrls,
                            format!("the URL of part {n} is not an http(s) URL"),
                        ))
                    }
                },
                Some(_) => {
                    return Err(self.invalid(
                        Call::UploadUrls,
                        format!("the URL of part {n} must be a string"),
                    ))
                }
                // A missing URL fails the batch: it is retried, never skipped.
                None => {
                    return Err(Failure::Transient {
                        detail: format!("getUploadUrls answer has no URL for part {n}"),
                        retry_after: None,
                    })
                }
            }
        }
        Ok(out)
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

async fn read_limited(mut resp: reqwest::Response) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(describe_reqwest)? {
        if body.len() + chunk.len() > MAX_BODY {
            return Err(format!("answer is larger than {MAX_BODY} bytes"));
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
