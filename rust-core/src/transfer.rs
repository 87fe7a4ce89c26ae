//! One part PUT: the body is streamed from the file in page-aligned chunks
//! borrowed from a pool, so memory does not grow with the part size and a
//! retry simply reads the file again. Each chunk reaches the HTTP stack in
//! small slices of it (no copy), which is what the stall watchdog counts.

use crate::buffer::{BufPool, PooledBuf};
use crate::error::ErrorCode;
use crate::failure::{is_transient_status, request_failure, retry_after, Failure};
use crate::hash::{file_error, FileStamp};
use crate::redact;
use crate::source::{FileOpener, COPY_FIRST};
use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use std::fs::File;
use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::sync::Semaphore;

/// Size of each read from the file (the HTTP stack gets it in [`FRAME`]
/// slices). Each read is a hand-over to a blocking thread and back; at
/// 256 KiB those thread wake-ups were about a tenth of the engine's CPU per GiB.
pub(crate) const CHUNK: usize = 1024 * 1024;

/// Largest slice of a chunk handed to the HTTP stack at once. hyper asks
/// for the next slice only once most of what it holds is in the socket, so
/// the watchdog sees progress once per slice: with whole 1 MiB chunks a
/// 16 kB/s uplink looked stalled for a minute at a time.
pub(crate) const FRAME: usize = 64 * 1024;

/// Idle chunks kept for reuse (all parts together).
pub(crate) const POOL_KEEP: usize = 8;

/// The pool part bodies borrow their chunks from (one per engine).
pub(crate) fn chunk_pool() -> BufPool {
    BufPool::new(CHUNK, POOL_KEEP)
}

/// Default for a part PUT that has made no progress: abandoned and retried.
pub(crate) const STALL_TIMEOUT: Duration = Duration::from_secs(60);

/// Where a part's bytes are read from.
pub(crate) enum PartFile {
    Path(PathBuf),
    /// A URI the platform opens again for every attempt; `stamp` is what
    /// was recorded when the file was added.
    Uri {
        uri: String,
        opener: Arc<dyn FileOpener>,
        stamp: FileStamp,
        /// The engine's opener calls (`MAX_OPENER_CALLS`): one is held
        /// from before the call until the opener returns.
        calls: Arc<Semaphore>,
        /// Told the opener's replacement for `uri`, to store it.
        replaced: Option<ReplacedUri>,
    },
}

/// Receives a URI the opener gave to use instead of the one it opened.
pub(crate) type ReplacedUri = Arc<dyn Fn(String) + Send + Sync>;

impl PartFile {
    /// Opens the file for this attempt; for a URI, also checks it is still
    /// the file that was added (fstat). Blocking.
    pub(crate) fn open(&self) -> crate::error::Result<File> {
        match self {
            PartFile::Path(path) => File::open(path).map_err(|e| file_error(path, &e)),
            PartFile::Uri {
                uri,
                opener,
                replaced,
                ..
            } => {
                let opened = crate::source::open_uri(opener.as_ref(), uri)?;
                // Stored even if this file then fails its check: the new
                // URI names the same file, and is the one to keep.
                if let (Some(new), Some(tell)) = (opened.replacement, replaced) {
                    tell(new);
                }
                self.check(&opened.file)?;
                Ok(opened.file)
            }
        }
    }

    /// For a URI: the open descriptor still has the size and modification
    /// time recorded at add.
    fn check(&self, file: &File) -> crate::error::Result<()> {
        if let PartFile::Uri { uri, stamp, .. } = self {
            let label = crate::source::uri_for_message(uri);
            let now = crate::source::descriptor_stamp(file, &label)?;
            if !crate::source::same_file(*stamp, now) {
                return Err(crate::source::changed_error(&label, *stamp, now).into());
            }
        }
        Ok(())
    }

    pub(crate) fn label(&self) -> String {
        match self {
            PartFile::Path(p) => p.display().to_string(),
            PartFile::Uri { uri, .. } => crate::source::uri_for_message(uri),
        }
    }
}

/// Opens the part's file on a blocking thread and runs `then` on it there.
/// A URI's opener is called only with one of the engine's opener calls in
/// hand, kept until the opener returns: an opener that never answers holds
/// at most that many blocking threads, and waiting for a call takes none.
/// Callers bound the whole of it with their stall timeout.
pub(crate) async fn with_open_file<T, F>(file: Arc<PartFile>, then: F) -> crate::error::Result<T>
where
    F: FnOnce(File) -> T + Send + 'static,
    T: Send + 'static,
{
    let call = match file.as_ref() {
        PartFile::Uri { calls, .. } => Some(calls.clone().acquire_owned().await.map_err(|_| {
            crate::error::err(ErrorCode::Internal, "the opener's calls were closed")
        })?),
        PartFile::Path(_) => None,
    };
    tokio::task::spawn_blocking(move || {
        let opened = file.open();
        drop(call);
        opened.map(then)
    })
    .await
    .map_err(|e| {
        crate::error::err(
            ErrorCode::Internal,
            format!("opening the file stopped: {e}"),
        )
    })?
}

/// An attempt that gave up waiting for its file (an opener that does not
/// answer, a file the platform must download first): retried like any
/// failed attempt, and `file_unreadable` once the attempts are used up.
pub(crate) fn file_stalled(detail: String) -> Failure {
    Failure::Garbled {
        code: ErrorCode::FileUnreadable,
        detail,
    }
}

pub(crate) struct PartJob<'a> {
    pub url: &'a str,
    pub file: Arc<PartFile>,
    pub offset: u64,
    pub len: u64,
    /// Bytes of this part handed to the connection so far (for progress).
    pub sent: Arc<AtomicU64>,
    /// No byte sent and no answer for this long: abandon the attempt.
    pub stall_timeout: Duration,
    /// Once the whole body is handed over: how long the answer may take on
    /// top of `stall_timeout` (the request timeout).
    pub answer_timeout: Duration,
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

/// The part's bytes as a stream of slices of at most [`FRAME`] bytes, cut
/// from chunks of [`CHUNK`] bytes, each read on a blocking thread when the
/// previous one is used up; `first` is the first chunk when it was read
/// already (with the open).
fn part_body(
    file: Arc<File>,
    offset: u64,
    len: u64,
    pool: BufPool,
    read_failed: Arc<OnceLock<(io::ErrorKind, String)>>,
    first: Option<io::Result<PooledBuf>>,
) -> impl Stream<Item = io::Result<Bytes>> {
    let start = (offset, len, first, Bytes::new());
    futures_util::stream::try_unfold(start, move |(pos, left, first, mut rest)| {
        let file = file.clone();
        let pool = pool.clone();
        let read_failed = read_failed.clone();
        async move {
            if !rest.is_empty() {
                let frame = rest.split_to(rest.len().min(FRAME));
                return Ok(Some((frame, (pos, left, first, rest))));
            }
            if left == 0 {
                return Ok(None);
            }
            let want = left.min(CHUNK as u64) as usize;
            let read = match first {
                Some(read) => read,
                None => {
                    tokio::task::spawn_blocking(move || read_chunk(&file, pos, want, pool.take()))
                        .await
                        .map_err(io::Error::other)?
                }
            };
            let buf = read.inspect_err(|e| {
                let _ = read_failed.set((e.kind(), e.to_string()));
            })?;
            let mut rest = Bytes::from_owner(buf);
            let frame = rest.split_to(want.min(FRAME));
            Ok(Some((
                frame,
                (pos + want as u64, left - want as u64, None, rest),
            )))
        }
    })
}

/// Sends the part and returns its ETag exactly as the storage sent it.
///
/// The whole exchange runs under a watchdog: while the body is handed over,
/// no byte for `stall_timeout` abandons it; once all of it is handed over,
/// the bytes still in the network buffers and the store's answer get
/// `stall_timeout + answer_timeout` (handing over is not sending: a slow
/// uplink drains its buffers after the last chunk); once the answer has
/// begun, its body must keep coming within `stall_timeout`.
pub(crate) async fn put_part(http: &reqwest::Client, job: PartJob<'_>) -> Result<String, Failure> {
    let pool = job.pool.clone();
    let (offset, first_len) = (job.offset, job.len.min(CHUNK as u64) as usize);
    // Opened and its first chunk read in one trip to a blocking thread: a
    // small file's whole part, with one hand-over instead of two.
    let opening = with_open_file(job.file.clone(), move |file| {
        let first = (first_len > 0).then(|| read_chunk(&file, offset, first_len, pool.take()));
        (file, first)
    });
    // A platform opener that never answers must not hold the slot forever.
    let (file, first) = match tokio::time::timeout(job.stall_timeout, opening).await {
        Ok(opened) => {
            let (file, first) = opened?;
            (Arc::new(file), first)
        }
        Err(_) => {
            return Err(file_stalled(format!(
                "opening {} and reading its first bytes took longer than {} ms",
                job.file.label(),
                job.stall_timeout.as_millis()
            )))
        }
    };
    let sent = job.sent.clone();
    sent.store(0, Ordering::Relaxed);
    let counter = sent.clone();
    // A failed read of the local file, kept to be reported as such (the
    // HTTP stack only says that the body broke off).
    let read_failed = Arc::new(OnceLock::new());
    let stream = part_body(
        file.clone(),
        job.offset,
        job.len,
        job.pool.clone(),
        read_failed.clone(),
        first,
    )
    // Counted as hyper takes each slice: the watchdog's sign of progress.
    .inspect(move |frame| {
        if let Ok(f) = frame {
            counter.fetch_add(f.len() as u64, Ordering::Relaxed);
        }
    });
    let request = http
        .put(job.url)
        // An explicit length: S3 refuses chunked part uploads.
        .header(reqwest::header::CONTENT_LENGTH, job.len)
        .body(reqwest::Body::wrap_stream(stream))
        .send();

    let stall_timeout = job.stall_timeout;
    let stalled = || Failure::Transient {
        detail: format!(
            "part upload stalled (nothing sent or received for {} ms)",
            stall_timeout.as_millis()
        ),
        retry_after: None,
    };
    let len = job.len;
    let handed_over = sent.clone();
    let answer_wait = stall_timeout.saturating_add(job.answer_timeout);
    let limit = move || {
        if handed_over.load(Ordering::Relaxed) >= len {
            answer_wait
        } else {
            stall_timeout
        }
    };
    let Some(response) = watchdog(request, &sent, limit).await else {
        return Err(stalled());
    };
    let resp = match response {
        Ok(r) => r,
        // A descriptor that cannot be read at an offset never will be:
        // retrying would only use up the attempts.
        Err(_)
            if read_failed
                .get()
                .is_some_and(|(k, _)| *k == io::ErrorKind::NotSeekable) =>
        {
            return Err(Failure::fatal(
                ErrorCode::FileUnreadable,
                format!(
                    "{} cannot be read at an offset: {COPY_FIRST}",
                    job.file.label()
                ),
            ))
        }
        Err(e) => {
            // Shorter than when it was added: the file changed, and its
            // upload must never complete with mixed content.
            if read_failed
                .get()
                .is_some_and(|(k, _)| *k == io::ErrorKind::UnexpectedEof)
            {
                return Err(Failure::fatal(
                    ErrorCode::FileChanged,
                    format!(
                        "{} is shorter than when it was added; add it again to upload the new content",
                        job.file.label()
                    ),
                ));
            }
            if let Some((kind, msg)) = read_failed.get() {
                let label = job.file.label();
                return Err(file_error(
                    std::path::Path::new(&label),
                    &io::Error::new(*kind, msg.clone()),
                )
                .into());
            }
            return Err(request_failure(
                e,
                "part upload",
                ErrorCode::StorageUnavailable,
            ));
        }
    };
    let status = resp.status().as_u16();
    if (200..300).contains(&status) {
        let etag = resp
            .headers()
            .get(reqwest::header::ETAG)
            .map(|v| v.as_bytes());
        let answer = classify_answer(status, etag, None, &[]);
        if answer.is_ok() {
            // The bytes sent must still be those of the file that was added.
            job.file.check(&file)?;
        }
        return answer;
    }
    let ra = retry_after(resp.headers());
    // Error bodies are small; read a bounded prefix for the message, under
    // the same watchdog (a body that stops coming must not hold the slot).
    let received = Arc::new(AtomicU64::new(0));
    let read_body = {
        let received = received.clone();
        let mut resp = resp;
        async move {
            let mut body = Vec::new();
            while let Ok(Some(chunk)) = resp.chunk().await {
                received.fetch_add(chunk.len() as u64, Ordering::Relaxed);
                body.extend_from_slice(&chunk);
                if body.len() > crate::failure::MAX_ERROR_BODY {
                    break;
                }
            }
            body
        }
    };
    let Some(body) = watchdog(read_body, &received, move || stall_timeout).await else {
        return Err(Failure::Transient {
            detail: format!(
                "storage answered HTTP {status} to a part upload, then its answer stalled \
                 (nothing received for {} ms)",
                stall_timeout.as_millis()
            ),
            retry_after: ra,
        });
    };
    classify_answer(status, None, ra, &body)
}

/// What a part PUT's answer means: its ETag, or how it failed. Shared by the
/// engine's own PUTs and the tasks the platform reports (hand-off).
pub(crate) fn classify_answer(
    status: u16,
    etag: Option<&[u8]>,
    retry_after: Option<Duration>,
    body: &[u8],
) -> Result<String, Failure> {
    if (200..300).contains(&status) {
        return match etag {
            Some(v) if !v.is_empty() => Ok(String::from_utf8_lossy(v).into_owned()),
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
    let excerpt = redact::excerpt(body, &[]);
    let detail = format!("storage answered HTTP {status} to a part upload: {excerpt}");
    Err(
        if status == 403 || (status == 400 && body_says_expired(body)) {
            Failure::UrlRejected { detail }
        } else if status == 404 && body_says_no_such_upload(body) {
            Failure::UploadGone { detail }
        } else if is_transient_status(status) {
            Failure::Transient {
                detail,
                retry_after,
            }
        } else {
            Failure::fatal(ErrorCode::StorageRejected, detail)
        },
    )
}

/// Runs `fut` until it ends, or until `progress` has not moved for
/// `limit()` (`None`: stalled). The limit is read at every tick, so it can
/// follow the phase of the exchange.
pub(crate) async fn watchdog<F: std::future::Future>(
    fut: F,
    progress: &AtomicU64,
    limit: impl Fn() -> Duration,
) -> Option<F::Output> {
    tokio::pin!(fut);
    let first = limit();
    let tick = (first / 4).clamp(Duration::from_millis(25), Duration::from_secs(1));
    let mut last = progress.load(Ordering::Relaxed);
    let mut idle = Duration::ZERO;
    loop {
        tokio::select! {
            r = &mut fut => return Some(r),
            _ = tokio::time::sleep(tick) => {
                let now = progress.load(Ordering::Relaxed);
                if now == last {
                    idle += tick;
                    if idle >= limit() {
                        return None;
                    }
                } else {
                    last = now;
                    idle = Duration::ZERO;
                }
            }
        }
    }
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

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn bodies_go_out_in_small_slices_of_large_reads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.bin");
        let data: Vec<u8> = (0..3 * CHUNK + 5000).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &data).unwrap();
        let (offset, len) = (7u64, (2 * CHUNK + 4000) as u64);
        let frames: Vec<Bytes> = part_body(
            Arc::new(File::open(&path).unwrap()),
            offset,
            len,
            chunk_pool(),
            Arc::default(),
            None,
        )
        .map(|f| f.unwrap())
        .collect()
        .await;
        assert!(frames.iter().all(|f| !f.is_empty() && f.len() <= FRAME));
        assert_eq!(frames.concat(), &data[7..7 + len as usize]);
        // Slices, not copies: within a read, each slice starts where the
        // previous one ended, and a new read starts every CHUNK bytes.
        let mut at = 0;
        for pair in frames.windows(2) {
            at += pair[0].len();
            let follows = pair[0].as_ptr().wrapping_add(pair[0].len()) == pair[1].as_ptr();
            assert_eq!(follows, at % CHUNK != 0, "slice at byte {at}");
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_local_read_error_is_file_unreadable() {
        let h = s3bgu_testkit::Harness::start(s3bgu_testkit::HarnessOptions::default()).await;
        // The store waits before reading anything, so the body breaks off
        // on our side first.
        h.faults.delay_puts(Duration::from_secs(5));
        // A directory opens like a file, but every read of it fails (EISDIR).
        let dir = tempfile::tempdir().unwrap();
        let url = format!("{}/bucket/k?uploadId=u&partNumber=1", h.store_url);
        let pool = chunk_pool();
        let r = put_part(
            &reqwest::Client::new(),
            PartJob {
                url: &url,
                file: Arc::new(PartFile::Path(dir.path().to_path_buf())),
                offset: 0,
                len: 1000,
                sent: Arc::default(),
                stall_timeout: Duration::from_secs(30),
                answer_timeout: Duration::from_secs(30),
                pool: &pool,
            },
        )
        .await;
        match r {
            Err(Failure::Fatal(e)) => assert_eq!(e.code, ErrorCode::FileUnreadable, "{e:?}"),
            other => panic!("expected file_unreadable, got {other:?}"),
        }
    }
}
