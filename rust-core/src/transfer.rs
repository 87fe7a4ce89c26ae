//! One part PUT: the body is streamed from the file in page-aligned chunks
//! borrowed from a pool, so memory does not grow with the part size and a
//! retry simply reads the file again.

use crate::buffer::{BufPool, PooledBuf};
use crate::error::ErrorCode;
use crate::failure::{describe_reqwest, is_transient_status, retry_after, Failure};
use crate::hash::file_error;
use crate::redact;
use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use std::fs::File;
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Size of each read from the file: the unit the HTTP stack writes.
pub(crate) const CHUNK: usize = 256 * 1024;

/// Idle chunks kept for reuse (all parts together).
pub(crate) const POOL_KEEP: usize = 32;

/// The pool part bodies borrow their chunks from (one per engine).
pub(crate) fn chunk_pool() -> BufPool {
    BufPool::new(CHUNK, POOL_KEEP)
}

/// Default for a part PUT that has made no progress: abandoned and retried.
pub(crate) const STALL_TIMEOUT: Duration = Duration::from_secs(60);

pub(crate) struct PartJob<'a> {
    pub url: &'a str,
    pub path: &'a Path,
    pub offset: u64,
    pub len: u64,
    /// Bytes of this part handed to the connection so far (for progress).
    pub sent: Arc<AtomicU64>,
    /// No byte sent and no answer for this long: abandon the attempt.
    pub stall_timeout: Duration,
    pub pool: &'a BufPool,
}

/// Reads `want` bytes at `pos` into a pooled buffer. Blocking.
fn read_chunk(file: &File, pos: u64, want: usize, mut buf: PooledBuf) -> io::Result<PooledBuf> {
    use std::os::unix::fs::FileExt;
    let mut n = 0;
    while n < want {
        match file.read_at(&mut buf.space()[n..want], pos + n as u64) {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the file is shorter than when it was added",
                ))
            }
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    buf.set_len(want);
    Ok(buf)
}

/// The part's bytes as a stream of chunks, each read on a blocking thread.
fn part_body(
    file: Arc<File>,
    offset: u64,
    len: u64,
    pool: BufPool,
) -> impl Stream<Item = io::Result<Bytes>> {
    futures_util::stream::try_unfold((offset, len), move |(pos, left)| {
        let file = file.clone();
        let pool = pool.clone();
        async move {
            if left == 0 {
                return Ok(None);
            }
            let want = left.min(CHUNK as u64) as usize;
            let buf =
                tokio::task::spawn_blocking(move || read_chunk(&file, pos, want, pool.take()))
                    .await
                    .map_err(io::Error::other)??;
            let next = (pos + want as u64, left - want as u64);
            Ok(Some((Bytes::from_owner(buf), next)))
        }
    })
}

/// Sends the part and returns its ETag exactly as the storage sent it.
pub(crate) async fn put_part(http: &reqwest::Client, job: PartJob<'_>) -> Result<String, Failure> {
    let file = tokio::fs::File::open(job.path)
        .await
        .map_err(|e| Failure::from(file_error(job.path, &e)))?
        .into_std()
        .await;
    let sent = job.sent.clone();
    sent.store(0, Ordering::Relaxed);
    let counter = sent.clone();
    let stream =
        part_body(Arc::new(file), job.offset, job.len, job.pool.clone()).inspect(move |chunk| {
            if let Ok(c) = chunk {
                counter.fetch_add(c.len() as u64, Ordering::Relaxed);
            }
        });
    let request = http
        .put(job.url)
        // An explicit length: S3 refuses chunked part uploads.
        .header(reqwest::header::CONTENT_LENGTH, job.len)
        .body(reqwest::Body::wrap_stream(stream))
        .send();
    tokio::pin!(request);

    // Watch for a stalled connection: no bytes sent and no answer for too long.
    let mut last = 0u64;
    let mut idle = Duration::ZERO;
    let stall_timeout = job.stall_timeout;
    let tick = (stall_timeout / 4).clamp(Duration::from_millis(25), Duration::from_secs(1));
    let response = loop {
        tokio::select! {
            r = &mut request => break r,
            _ = tokio::time::sleep(tick) => {
                let now = sent.load(Ordering::Relaxed);
                if now == last {
                    idle += tick;
                    if idle >= stall_timeout {
                        return Err(Failure::Transient {
                            detail: format!(
                                "part upload stalled (nothing sent or received for {} ms)",
                                stall_timeout.as_millis()
                            ),
                            retry_after: None,
                        });
                    }
                } else {
                    last = now;
                    idle = Duration::ZERO;
                }
            }
        }
    };
    let resp = response.map_err(|e| Failure::Transient {
        detail: format!("part upload {}", describe_reqwest(e)),
        retry_after: None,
    })?;
    let status = resp.status().as_u16();
    if (200..300).contains(&status) {
        return match resp.headers().get(reqwest::header::ETAG) {
            Some(v) if !v.as_bytes().is_empty() => {
                Ok(String::from_utf8_lossy(v.as_bytes()).into_owned())
            }
            // A proxy may have eaten the header; the part is sent again, and
            // if the ETag never comes the upload fails with this message.
            _ => Err(Failure::Garbled {
                code: ErrorCode::StorageRejected,
                detail: format!(
                    "storage answered HTTP {status} to a part upload without an ETag header \
                     (if the storage is behind a proxy or CORS rules, let the ETag header through)"
                ),
            }),
        };
    }
    let ra = retry_after(resp.headers());
    // Error bodies are small; read a bounded prefix for the message.
    let mut body = Vec::new();
    let mut resp = resp;
    while let Ok(Some(chunk)) = resp.chunk().await {
        body.extend_from_slice(&chunk);
        if body.len() > 16 * 1024 {
            break;
        }
    }
    let excerpt = redact::excerpt(&body, &[]);
    let detail = format!("storage answered HTTP {status} to a part upload: {excerpt}");
    Err(
        if status == 403 || (status == 400 && body_says_expired(&body)) {
            Failure::UrlRejected { detail }
        } else if status == 404 && body_says_no_such_upload(&body) {
            Failure::UploadGone { detail }
        } else if is_transient_status(status) {
            Failure::Transient {
                detail,
                retry_after: ra,
            }
        } else {
            Failure::fatal(ErrorCode::StorageRejected, detail)
        },
    )
}

/// S3's error code for a multipart upload that was aborted or completed.
fn body_says_no_such_upload(body: &[u8]) -> bool {
    String::from_utf8_lossy(body).contains("<Code>NoSuchUpload</Code>")
}

fn body_says_expired(body: &[u8]) -> bool {
    let text = String::from_utf8_lossy(body).to_ascii_lowercase();
    text.contains("expired") || text.contains("expiredtoken")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_messages_are_recognised() {
        assert!(body_says_expired(
            b"<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>"
        ));
        assert!(body_says_expired(b"<Code>ExpiredToken</Code>"));
        assert!(!body_says_expired(b"<Code>InvalidArgument</Code>"));
        assert!(body_says_no_such_upload(
            b"<Error><Code>NoSuchUpload</Code><Message>gone</Message></Error>"
        ));
        assert!(!body_says_no_such_upload(b"<Code>NoSuchKey</Code>"));
    }
}
