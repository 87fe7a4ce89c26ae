//! A part transport written for the tests, as a platform would write one:
//! its own threads and HTTP client, reading the staged files, reporting
//! each task's end to the engine.

use s3bgu_core::{PartTask, PartTransport, TaskOutcome, TaskReporter};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// What the transport does with the next submitted task.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Act {
    /// PUT the staged file and report the storage's answer.
    Put,
    /// Report a transport error without sending anything.
    Fail,
    /// Hang for a while, then report a timeout (as a session does).
    Stall,
}

pub struct TestTransport {
    runtime: Option<tokio::runtime::Runtime>,
    http: reqwest::Client,
    reporter: Mutex<Option<TaskReporter>>,
    /// Every task submitted, in order.
    pub submitted: Mutex<Vec<PartTask>>,
    /// While `Some`, tasks are queued here instead of run (a suspended app).
    held: Mutex<Option<Vec<PartTask>>>,
    script: Mutex<VecDeque<Act>>,
    pub cancelled: Mutex<Vec<String>>,
    /// Tasks started (run, not held).
    pub started: AtomicU64,
    /// Largest total size of the staged files seen at a submit.
    pub staged_peak: AtomicU64,
    staging_dir: Mutex<Option<std::path::PathBuf>>,
}

impl Default for TestTransport {
    fn default() -> Self {
        TestTransport {
            runtime: Some(
                tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .thread_name("test-transport")
                    .enable_all()
                    .build()
                    .expect("transport runtime"),
            ),
            http: reqwest::Client::new(),
            reporter: Mutex::new(None),
            submitted: Mutex::new(Vec::new()),
            held: Mutex::new(None),
            script: Mutex::new(VecDeque::new()),
            cancelled: Mutex::new(Vec::new()),
            started: AtomicU64::new(0),
            staged_peak: AtomicU64::new(0),
            staging_dir: Mutex::new(None),
        }
    }
}

impl Drop for TestTransport {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

/// Total size of the files in `dir`.
pub fn dir_bytes(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|it| {
            it.flatten()
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

/// Files in `dir` (0 when it does not exist).
pub fn dir_files(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir).map(|it| it.count()).unwrap_or(0)
}

/// Waits (bounded) until the folder holds no file. A staging the engine
/// stopped (its upload failed or paused) deletes its file when its thread
/// ends, which may be just after the engine has moved on.
pub async fn wait_no_files(dir: &std::path::Path) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while dir_files(dir) > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "{} files left in {}",
            dir_files(dir),
            dir.display()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

impl TestTransport {
    pub fn set_reporter(&self, r: TaskReporter) {
        *self.reporter.lock().unwrap() = Some(r);
    }

    /// Measures the staging folder at every submit.
    pub fn watch_staging(&self, dir: std::path::PathBuf) {
        *self.staging_dir.lock().unwrap() = Some(dir);
    }

    pub fn script(&self, acts: &[Act]) {
        self.script.lock().unwrap().extend(acts.iter().copied());
    }

    pub fn hold(&self) {
        let mut h = self.held.lock().unwrap();
        if h.is_none() {
            *h = Some(Vec::new());
        }
    }

    /// Tasks queued while held, taken out (still unrun).
    pub fn take_held(&self) -> Vec<PartTask> {
        self.held
            .lock()
            .unwrap()
            .replace(Vec::new())
            .unwrap_or_default()
    }

    /// Runs the held tasks and stops holding.
    pub fn release(&self) {
        let tasks = self.held.lock().unwrap().take().unwrap_or_default();
        for t in tasks {
            self.run(t);
        }
    }

    fn run(&self, task: PartTask) {
        let act = self.script.lock().unwrap().pop_front().unwrap_or(Act::Put);
        let http = self.http.clone();
        let reporter = self.reporter.lock().unwrap().clone().expect("a reporter");
        self.runtime.as_ref().expect("runtime").spawn(async move {
            let outcome = execute(&http, &task, act).await;
            reporter.report(task.task_id, outcome);
        });
        self.started.fetch_add(1, Ordering::Relaxed);
    }
}

/// Uploads one task the way a platform session would.
pub async fn execute(http: &reqwest::Client, task: &PartTask, act: Act) -> TaskOutcome {
    let wait = task.earliest_begin_ms - now_ms();
    if wait > 0 {
        tokio::time::sleep(Duration::from_millis(wait as u64)).await;
    }
    match act {
        Act::Put => {}
        Act::Fail => return TaskOutcome::TransportError("the network connection was lost".into()),
        Act::Stall => {
            tokio::time::sleep(Duration::from_millis(300)).await;
            return TaskOutcome::TransportError("the request timed out".into());
        }
    }
    let body = match tokio::fs::read(&task.file_path).await {
        Ok(b) => b,
        Err(e) => return TaskOutcome::TransportError(format!("cannot read the file: {e}")),
    };
    assert_eq!(
        body.len() as u64,
        task.length,
        "staged file has the part's length"
    );
    let resp = match http
        .put(&task.url)
        .header(reqwest::header::CONTENT_LENGTH, task.length)
        .body(body)
        .send()
        .await
    {
        Ok(r) => r,
        Err(_) => return TaskOutcome::TransportError("the request failed".into()),
    };
    let header = |name: reqwest::header::HeaderName| {
        resp.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let status = resp.status().as_u16();
    let etag = header(reqwest::header::ETAG);
    let retry_after = header(reqwest::header::RETRY_AFTER);
    let body = resp.text().await.unwrap_or_default();
    TaskOutcome::Response {
        status,
        etag,
        retry_after,
        body,
    }
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

impl PartTransport for TestTransport {
    fn submit(&self, task: PartTask) -> Result<(), String> {
        assert!(task.file_path.exists(), "the staged file exists at submit");
        if let Some(dir) = self.staging_dir.lock().unwrap().as_ref() {
            self.staged_peak
                .fetch_max(dir_bytes(dir), Ordering::Relaxed);
        }
        self.submitted.lock().unwrap().push(task.clone());
        if let Some(h) = self.held.lock().unwrap().as_mut() {
            h.push(task);
            return Ok(());
        }
        self.run(task);
        Ok(())
    }

    fn cancel(&self, task_id: &str) {
        self.cancelled.lock().unwrap().push(task_id.to_string());
    }
}
