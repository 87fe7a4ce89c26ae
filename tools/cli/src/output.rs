//! What the CLI shows: progress bars on a terminal, and the final report
//! (one line per upload, or one JSON object with `--json`).

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use s3bgu_core::{UploadEvent, UploadId, UploadInfo, UploadListener};
use serde_json::json;
use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::{Arc, Mutex};

/// Progress bars fed by engine events; draws nothing unless stderr is a terminal.
#[derive(Clone)]
pub struct Bars {
    inner: Option<Arc<BarsInner>>,
}

struct BarsInner {
    multi: MultiProgress,
    bars: Mutex<HashMap<UploadId, ProgressBar>>,
}

impl Bars {
    pub fn new(wanted: bool) -> Bars {
        let inner = (wanted && std::io::stderr().is_terminal()).then(|| {
            Arc::new(BarsInner {
                multi: MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(4)),
                bars: Mutex::new(HashMap::new()),
            })
        });
        Bars { inner }
    }

    pub fn add<'a>(&self, uploads: impl Iterator<Item = &'a UploadInfo>) {
        let Some(inner) = &self.inner else { return };
        let style = ProgressStyle::with_template(
            "{prefix:20!} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
        let mut bars = inner.bars.lock().unwrap_or_else(|e| e.into_inner());
        for u in uploads {
            let bar = inner.multi.add(ProgressBar::new(u.size));
            bar.set_style(style.clone());
            bar.set_prefix(u.file_name.clone());
            bar.set_position(u.uploaded_bytes);
            bar.set_message(u.state.as_str());
            bars.insert(u.id, bar);
        }
    }

    pub fn finish(&self) {
        let Some(inner) = &self.inner else { return };
        let bars = inner.bars.lock().unwrap_or_else(|e| e.into_inner());
        for bar in bars.values() {
            bar.abandon();
        }
    }
}

impl UploadListener for Bars {
    fn on_event(&self, event: &UploadEvent) {
        let Some(inner) = &self.inner else { return };
        let bars = inner.bars.lock().unwrap_or_else(|e| e.into_inner());
        match event {
            UploadEvent::Progress(p) => {
                if let Some(b) = bars.get(&p.id) {
                    b.set_position(p.uploaded_bytes);
                }
            }
            UploadEvent::StateChanged(u) => {
                if let Some(b) = bars.get(&u.id) {
                    b.set_position(u.uploaded_bytes);
                    b.set_message(u.state.as_str());
                }
            }
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
