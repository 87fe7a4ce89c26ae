//! A file opener for tests that needs to see how the engine calls it: it
//! counts the calls in flight (and the most at once), can hold every call
//! until the test lets them go (a provider that never answers, an iCloud
//! file with no local data), and can make each call take a while.

use s3bgu_core::{FileOpenError, FileOpener, OpenedFile};
use std::os::fd::IntoRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

pub const URI_PREFIX: &str = "content://gated/";

pub fn gated_uri(name: &str) -> String {
    format!("{URI_PREFIX}{name}")
}

#[derive(Default)]
struct Gate {
    /// New calls wait at the gate while this is set.
    closed: bool,
    /// Bumped by `release`: calls waiting since before it go.
    opened: u64,
}

/// Maps `content://gated/<name>` to `<dir>/<name>` and hands over
/// descriptors with `File::into_raw_fd`, like Android's `detachFd()`.
pub struct GatedOpener {
    dir: PathBuf,
    gate: Mutex<Gate>,
    moved: Condvar,
    calls: AtomicU32,
    in_flight: AtomicU32,
    peak: AtomicU32,
    delay: Mutex<Duration>,
}

/// Counts a call in flight for as long as it lives.
struct InFlight<'a>(&'a GatedOpener);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

impl GatedOpener {
    pub fn new(dir: &Path) -> Arc<GatedOpener> {
        Arc::new(GatedOpener {
            dir: dir.to_path_buf(),
            gate: Mutex::default(),
            moved: Condvar::new(),
            calls: AtomicU32::new(0),
            in_flight: AtomicU32::new(0),
            peak: AtomicU32::new(0),
            delay: Mutex::new(Duration::ZERO),
        })
    }

    /// From now on, every call waits until `release` (however long).
    pub fn hold(&self) {
        self.gate.lock().unwrap().closed = true;
    }

    /// New calls no longer wait; calls already waiting still do.
    pub fn stop_holding(&self) {
        self.gate.lock().unwrap().closed = false;
    }

    /// Lets every waiting call go, and stops holding new ones.
    pub fn release(&self) {
        let mut g = self.gate.lock().unwrap();
        g.closed = false;
        g.opened += 1;
        self.moved.notify_all();
    }

    /// Each call takes this long before it opens the file.
    pub fn set_delay(&self, d: Duration) {
        *self.delay.lock().unwrap() = d;
    }

    pub fn calls(&self) -> u32 {
        self.calls.load(Ordering::SeqCst)
    }

    pub fn in_flight(&self) -> u32 {
        self.in_flight.load(Ordering::SeqCst)
    }

    /// The most calls in flight at once so far.
    pub fn peak(&self) -> u32 {
        self.peak.load(Ordering::SeqCst)
    }

    /// Waits (polling, bounded) until `pred` holds for this opener.
    pub async fn wait_until(&self, what: &str, within: Duration, pred: impl Fn(&Self) -> bool) {
        let deadline = Instant::now() + within;
        while !pred(self) {
            assert!(
                Instant::now() < deadline,
                "timed out after {within:?} waiting for {what} (calls {}, in flight {})",
                self.calls(),
                self.in_flight()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

impl FileOpener for GatedOpener {
    fn open_file(&self, uri: String) -> Result<OpenedFile, FileOpenError> {
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        let _counted = InFlight(self);
        self.peak.fetch_max(now, Ordering::SeqCst);
        self.calls.fetch_add(1, Ordering::SeqCst);
        {
            let mut g = self.gate.lock().unwrap();
            if g.closed {
                let ticket = g.opened;
                while g.opened == ticket {
                    g = self.moved.wait(g).unwrap();
                }
            }
        }
        let delay = *self.delay.lock().unwrap();
        if !delay.is_zero() {
            std::thread::sleep(delay);
        }
        let name = uri
            .strip_prefix(URI_PREFIX)
            .ok_or_else(|| FileOpenError::Failed {
                reason: "unknown provider".into(),
            })?;
        match std::fs::File::open(self.dir.join(name)) {
            Ok(f) => Ok(f.into_raw_fd().into()),
            Err(e) => Err(FileOpenError::Gone {
                reason: e.to_string(),
            }),
        }
    }
}
