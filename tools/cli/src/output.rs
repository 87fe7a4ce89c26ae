//! What the CLI shows: progress bars on a terminal, and the final report
//! (one line per upload, or one JSON object with `--json`).

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use s3bgu_core::{UploadEvent, UploadId, UploadInfo, UploadListener};
use serde_json::json;
use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::{Arc, Mutex};

/// Progress bars fed by engine events (drawn only when stderr is a
/// terminal), and the engine's retries: on the bar on a terminal, one line
/// each on stderr otherwise.
#[derive(Clone)]
pub struct Bars {
    inner: Option<Arc<BarsInner>>,
    /// File names by upload, for the retry lines.
    names: Arc<Mutex<HashMap<UploadId, String>>>,
}

struct BarsInner {
    multi: MultiProgress,
    bars: Mutex<HashMap<UploadId, ProgressBar>>,
}

/// Where retry notices go: the bars of the session running. The engine
/// starts sending as soon as a file is added, before the session knows the
/// file's upload id: notices for unknown uploads wait here until it does.
static RETRY_SINK: Mutex<RetrySink> = Mutex::new(RetrySink {
    bars: None,
    pending: Vec::new(),
});

struct RetrySink {
    bars: Option<Bars>,
    pending: Vec<RetryNotice>,
}

/// Notices kept for uploads not known yet (a few per upload at most).
const MAX_PENDING: usize = 256;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

const TEMPLATE: &str = "{prefix:20!} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {msg}";
/// For an upload that has ended: its rate means nothing any more.
const ENDED_TEMPLATE: &str = "{prefix:20!} [{bar:30}] {bytes}/{total_bytes} {msg}";

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ")
}

/// A bar for `u`, already at its position. The rate counts only bytes sent
/// from now on: bytes sent earlier (a resumed or already completed upload)
/// would otherwise show as sent in an instant (TiB/s).
fn bar_for(u: &UploadInfo, target: ProgressDrawTarget) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(u.size), target).with_position(u.uploaded_bytes);
    // The rate estimate takes in the starting position, then forgets how
    // fast it got there.
    bar.tick();
    bar.reset_eta();
    bar.set_style(style(if u.state.is_final() {
        ENDED_TEMPLATE
    } else {
        TEMPLATE
    }));
    bar.set_prefix(u.file_name.clone());
    bar.set_message(u.state.as_str());
    bar
}

impl Bars {
    pub fn new(wanted: bool) -> Bars {
        let inner = (wanted && std::io::stderr().is_terminal()).then(|| {
            Arc::new(BarsInner {
                multi: MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(4)),
                bars: Mutex::new(HashMap::new()),
            })
        });
        let bars = Bars {
            inner,
            names: Arc::new(Mutex::new(HashMap::new())),
        };
        lock(&RETRY_SINK).bars = Some(bars.clone());
        bars
    }

    pub fn add<'a>(&self, uploads: impl Iterator<Item = &'a UploadInfo>) {
        {
            let mut names = lock(&self.names);
            let mut bars = self.inner.as_ref().map(|i| lock(&i.bars));
            for u in uploads {
                names.insert(u.id, u.file_name.clone());
                if let (Some(inner), Some(bars)) = (&self.inner, bars.as_mut()) {
                    let bar = inner.multi.add(bar_for(u, ProgressDrawTarget::hidden()));
                    bars.insert(u.id, bar);
                }
            }
        }
        // Retries that happened before the session knew these uploads.
        let waiting = std::mem::take(&mut lock(&RETRY_SINK).pending);
        for n in waiting {
            if !self.retrying(&n) {
                let mut sink = lock(&RETRY_SINK);
                if sink.pending.len() < MAX_PENDING {
                    sink.pending.push(n);
                }
            }
        }
    }

    pub fn finish(&self) {
        let mut sink = lock(&RETRY_SINK);
        if sink
            .bars
            .as_ref()
            .is_some_and(|b| Arc::ptr_eq(&b.names, &self.names))
        {
            sink.bars = None;
        }
        drop(sink);
        let Some(inner) = &self.inner else { return };
        let bars = lock(&inner.bars);
        for bar in bars.values() {
            bar.abandon();
        }
    }

    /// Shows a failed attempt the engine will retry; false if the upload
    /// is not one of this session's (yet).
    fn retrying(&self, n: &RetryNotice) -> bool {
        let name = lock(&self.names).get(&n.upload).cloned();
        let Some(name) = name else { return false };
        let text = n.describe();
        match &self.inner {
            Some(inner) => {
                if let Some(bar) = lock(&inner.bars).get(&n.upload) {
                    bar.set_message(format!("retrying: {text}"));
                }
            }
            None => eprintln!("s3bgu: upload {} ({name}): {text}", n.upload),
        }
        true
    }
}

impl UploadListener for Bars {
    fn on_event(&self, event: &UploadEvent) {
        let Some(inner) = &self.inner else { return };
        let bars = lock(&inner.bars);
        match event {
            UploadEvent::Progress(p) => {
                if let Some(b) = bars.get(&p.id) {
                    // Bytes confirmed again: a retry notice is old news.
                    if p.uploaded_bytes > b.position() && b.message().starts_with("retrying") {
                        b.set_message(s3bgu_core::UploadState::Running.as_str());
                    }
                    b.set_position(p.uploaded_bytes);
                }
            }
            UploadEvent::StateChanged(u) => {
                if let Some(b) = bars.get(&u.id) {
                    b.set_position(u.uploaded_bytes);
                    if u.state.is_final() {
                        b.set_style(style(ENDED_TEMPLATE));
                    }
                    b.set_message(u.state.as_str());
                }
            }
        }
    }
}

/// What the engine logs when an attempt failed and will be retried (its
/// structured fields; see `engine/outcomes.rs`).
#[derive(Debug, Default, PartialEq)]
pub struct RetryNotice {
    pub upload: UploadId,
    pub part: Option<u64>,
    pub attempts: u64,
    pub max_attempts: u64,
    pub retry_in_ms: u64,
    pub reason: String,
}

impl RetryNotice {
    pub fn describe(&self) -> String {
        let what = match self.part {
            Some(p) => format!("part {p}: "),
            None => String::new(),
        };
        format!(
            "{what}attempt {} of {} failed ({}); next try in {}",
            self.attempts,
            self.max_attempts,
            self.reason,
            show_wait(self.retry_in_ms)
        )
    }
}

/// A wait as people read it: 0.4s, 12s, 2m 5s.
fn show_wait(ms: u64) -> String {
    match ms {
        0..10_000 => format!("{:.1}s", ms as f64 / 1000.0),
        10_000..120_000 => format!("{}s", ms / 1000),
        _ => format!("{}m {}s", ms / 60_000, ms / 1000 % 60),
    }
}

/// A tracing layer that turns the engine's retry events into notices.
pub struct RetryLayer;

#[derive(Default)]
struct NoticeFields {
    notice: RetryNotice,
    seen_wait: bool,
    seen_upload: bool,
}

impl tracing::field::Visit for NoticeFields {
    fn record_i64(&mut self, field: &tracing::field::Field, value: i64) {
        if field.name() == "upload" {
            self.notice.upload = value;
            self.seen_upload = true;
        } else if let Ok(v) = u64::try_from(value) {
            self.record_u64(field, v);
        }
    }

    fn record_u64(&mut self, field: &tracing::field::Field, value: u64) {
        match field.name() {
            "upload" => {
                self.notice.upload = value as i64;
                self.seen_upload = true;
            }
            "part" => self.notice.part = Some(value),
            "attempts" => self.notice.attempts = value,
            "max_attempts" => self.notice.max_attempts = value,
            "retry_in_ms" => {
                self.notice.retry_in_ms = value;
                self.seen_wait = true;
            }
            _ => {}
        }
    }

    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        if field.name() == "reason" {
            self.notice.reason = value.to_owned();
        }
    }

    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "reason" {
            self.notice.reason = format!("{value:?}");
        }
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for RetryLayer {
    fn on_event(
        &self,
        event: &tracing::Event<'_>,
        _ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        if !event.metadata().target().starts_with("s3bgu_core") {
            return;
        }
        let mut fields = NoticeFields::default();
        event.record(&mut fields);
        if !(fields.seen_wait && fields.seen_upload) {
            return;
        }
        let bars = lock(&RETRY_SINK).bars.clone();
        if bars.is_some_and(|b| b.retrying(&fields.notice)) {
            return;
        }
        let mut sink = lock(&RETRY_SINK);
        if sink.pending.len() < MAX_PENDING {
            sink.pending.push(fields.notice);
        }
    }
}

fn upload_json(u: &UploadInfo) -> serde_json::Value {
    json!({
        "id": u.id,
        "file": u.path,
        "fileName": u.file_name,
        "fileHash": u.file_hash,
        "transferId": u.transfer_id,
        "key": u.key,
        "uploadId": u.upload_id,
        "state": u.state.as_str(),
        "size": u.size,
        "uploadedBytes": u.uploaded_bytes,
        "partsDone": u.parts_done,
        "partsTotal": u.parts_total,
        "error": u.error.as_ref().map(|e| json!({ "code": e.code.as_str(), "message": e.message })),
    })
}

/// Prints the final report on stdout; errors also go to stderr, one line each.
/// `db_commits`: write transactions this run committed to the queue database
/// (in the JSON only).
pub fn report(list: &[UploadInfo], as_json: bool, db_commits: Option<u64>) {
    if as_json {
        let uploads: Vec<_> = list.iter().map(upload_json).collect();
        let mut out = json!({ "uploads": uploads });
        if let Some(n) = db_commits {
            out["dbCommits"] = json!(n);
        }
        println!("{out}");
    } else {
        for u in list {
            println!(
                "{:>4}  {:<11}  {:>5.1}%  {}  {}",
                u.id,
                u.state.as_str(),
                if u.size == 0 {
                    if u.state == s3bgu_core::UploadState::Completed {
                        100.0
                    } else {
                        0.0
                    }
                } else {
                    u.uploaded_bytes as f64 * 100.0 / u.size as f64
                },
                u.file_name,
                u.key.as_deref().unwrap_or("-"),
            );
        }
    }
    for u in list {
        if let Some(e) = &u.error {
            eprintln!("s3bgu: error: upload {} ({}): {e}", u.id, u.file_name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use s3bgu_core::UploadState;

    fn upload(size: u64, uploaded: u64, state: UploadState) -> UploadInfo {
        UploadInfo {
            id: 1,
            transfer_id: "t".into(),
            path: "/tmp/f".into(),
            file_name: "f".into(),
            file_hash: "0".repeat(32),
            size,
            state,
            key: None,
            upload_id: None,
            part_size: None,
            parts_total: 0,
            parts_done: 0,
            uploaded_bytes: uploaded,
            error: None,
            created_at_ms: 0,
            updated_at_ms: 0,
        }
    }

    #[test]
    fn bytes_sent_before_the_bar_count_for_no_rate() {
        // A completed 2 TiB file added again, a half-done one resumed.
        for u in [
            upload(2 << 40, 2 << 40, UploadState::Completed),
            upload(1 << 30, 1 << 29, UploadState::Pending),
        ] {
            let bar = bar_for(&u, ProgressDrawTarget::hidden());
            std::thread::sleep(std::time::Duration::from_millis(20));
            assert_eq!(bar.position(), u.uploaded_bytes);
            assert!(bar.per_sec() < 1.0, "{} B/s", bar.per_sec());
        }
    }

    #[test]
    fn a_retry_shows_on_the_bar_until_bytes_move_again() {
        // Bars as on a terminal, drawn nowhere.
        let bars = Bars {
            inner: Some(Arc::new(BarsInner {
                multi: MultiProgress::with_draw_target(ProgressDrawTarget::hidden()),
                bars: Mutex::new(HashMap::new()),
            })),
            names: Arc::new(Mutex::new(HashMap::new())),
        };
        bars.add([upload(100, 10, UploadState::Running)].iter());
        let notice = RetryNotice {
            upload: 1,
            part: Some(1),
            attempts: 2,
            max_attempts: 8,
            retry_in_ms: 500,
            reason: "part upload timed out".into(),
        };
        assert!(bars.retrying(&notice));
        let message = || {
            let inner = bars.inner.as_ref().unwrap();
            lock(&inner.bars)[&1].message()
        };
        assert!(
            message().starts_with("retrying: part 1: attempt 2 of 8"),
            "{}",
            message()
        );
        let progress = |bytes| {
            UploadEvent::Progress(s3bgu_core::Progress {
                id: 1,
                transfer_id: "t".into(),
                uploaded_bytes: bytes,
                total_bytes: 100,
                parts_done: 0,
                parts_total: 2,
            })
        };
        bars.on_event(&progress(10));
        assert!(message().starts_with("retrying"), "no new bytes yet");
        bars.on_event(&progress(60));
        assert_eq!(message(), "RUNNING");
        // Another session's upload is not this one's to show.
        assert!(!bars.retrying(&RetryNotice {
            upload: 7,
            ..notice
        }));
    }

    #[test]
    fn a_retry_reads_as_attempt_reason_and_wait() {
        let n = RetryNotice {
            upload: 3,
            part: Some(2),
            attempts: 1,
            max_attempts: 8,
            retry_in_ms: 1_234,
            reason: "part upload connection failed".into(),
        };
        assert_eq!(
            n.describe(),
            "part 2: attempt 1 of 8 failed (part upload connection failed); next try in 1.2s"
        );
        assert_eq!(show_wait(45_000), "45s");
        assert_eq!(show_wait(125_000), "2m 5s");
    }
}
