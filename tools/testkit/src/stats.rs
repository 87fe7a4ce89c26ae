use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, MutexGuard};

/// The backend's endpoints, for counting calls and injecting faults.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Route {
    StartUpload,
    GetUploadUrls,
    Complete,
    Abort,
}

impl Route {
    /// The route a backend request path belongs to.
    pub fn of_path(path: &str) -> Option<Route> {
        match path {
            "/startUpload" => Some(Route::StartUpload),
            "/getUploadUrls" => Some(Route::GetUploadUrls),
            p if p.starts_with("/complete/") => Some(Route::Complete),
            p if p.starts_with("/abort/") => Some(Route::Abort),
            _ => None,
        }
    }
}

/// One request the store received. The query string is left out: it holds
/// signatures, and the interesting parts are in `part`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreRequest {
    pub method: String,
    pub path: String,
    /// `(uploadId, partNumber)` for part uploads.
    pub part: Option<(String, u32)>,
    /// The `uploadId` query parameter of multipart calls (decoded).
    pub upload_id: Option<String>,
    /// The status answered; `None` when the connection was dropped instead.
    pub status: Option<u16>,
}

/// What the store and the backend saw. All methods can be called from any
/// thread while a test runs.
#[derive(Debug)]
pub struct Stats {
    inner: Mutex<Inner>,
    puts_in_flight: AtomicU32,
    max_puts_in_flight: AtomicU32,
}

#[derive(Debug)]
struct Inner {
    puts_by_part: BTreeMap<(String, u32), u32>,
    total_part_puts: u32,
    ok_part_puts: u32,
    put_headers_ok: bool,
    backend_calls: HashMap<Route, u32>,
    requested_parts: Vec<Vec<u32>>,
    start_bodies: Vec<serde_json::Value>,
    store_requests: Vec<StoreRequest>,
    upload_ids: Vec<(Route, String)>,
    /// Whole-object PUTs by request path (`/bucket/key`, decoded).
    object_puts: HashMap<String, u32>,
}

impl Default for Stats {
    fn default() -> Self {
        Self {
            inner: Mutex::new(Inner {
                puts_by_part: BTreeMap::new(),
                total_part_puts: 0,
                ok_part_puts: 0,
                put_headers_ok: true,
                backend_calls: HashMap::new(),
                requested_parts: Vec::new(),
                start_bodies: Vec::new(),
                store_requests: Vec::new(),
                upload_ids: Vec::new(),
                object_puts: HashMap::new(),
            }),
            puts_in_flight: AtomicU32::new(0),
            max_puts_in_flight: AtomicU32::new(0),
        }
    }
}

impl Stats {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A test that panicked while holding the lock must not hide the
        // numbers from the others.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Number of PUT requests received for this part of this upload.
    pub fn part_puts(&self, upload_id: &str, part: u32) -> u32 {
        self.lock()
            .puts_by_part
            .get(&(upload_id.to_owned(), part))
            .copied()
            .unwrap_or(0)
    }

    pub fn total_part_puts(&self) -> u32 {
        self.lock().total_part_puts
    }

    /// Part PUTs answered 2xx.
    pub fn ok_part_puts(&self) -> u32 {
        self.lock().ok_part_puts
    }

    pub fn puts_by_part(&self) -> BTreeMap<(String, u32), u32> {
        self.lock().puts_by_part.clone()
    }

    /// Every part PUT had a `content-length` and no `transfer-encoding`.
    pub fn part_put_headers_ok(&self) -> bool {
        self.lock().put_headers_ok
    }

    pub fn backend_calls(&self, route: Route) -> u32 {
        self.lock().backend_calls.get(&route).copied().unwrap_or(0)
    }

    /// The `parts` array of every getUploadUrls call, in order (faulted
    /// calls included).
    /// The JSON body of the latest startUpload call.
    pub fn last_start_body(&self) -> Option<serde_json::Value> {
        self.lock().start_bodies.last().cloned()
    }

    pub fn requested_parts(&self) -> Vec<Vec<u32>> {
        self.lock().requested_parts.clone()
    }

    /// The largest number of part PUTs handled at the same time.
    pub fn max_concurrent_puts(&self) -> u32 {
        self.max_puts_in_flight.load(Ordering::SeqCst)
    }

    /// Every request the store answered or dropped, in completion order.
    pub fn store_requests(&self) -> Vec<StoreRequest> {
        self.lock().store_requests.clone()
    }

    /// The upload ids clients sent, as the backend decoded them: from the
    /// getUploadUrls body and the complete and abort paths, in order.
    pub fn upload_ids_received(&self) -> Vec<(Route, String)> {
        self.lock().upload_ids.clone()
    }

    /// Number of whole-object PUTs (PutObject, not part uploads) received
    /// for this key of the harness bucket: how empty files are stored.
    pub fn object_puts(&self, key: &str) -> u32 {
        let path = format!("/{}/{key}", s3bgu_backend::EMBEDDED_BUCKET);
        self.lock().object_puts.get(&path).copied().unwrap_or(0)
    }

    /// Forgets everything counted so far.
    pub fn reset(&self) {
        let mut inner = self.lock();
        inner.puts_by_part.clear();
        inner.total_part_puts = 0;
        inner.ok_part_puts = 0;
        inner.put_headers_ok = true;
        inner.backend_calls.clear();
        inner.requested_parts.clear();
        inner.start_bodies.clear();
        inner.store_requests.clear();
        inner.upload_ids.clear();
        inner.object_puts.clear();
        drop(inner);
        self.max_puts_in_flight
            .store(self.puts_in_flight.load(Ordering::SeqCst), Ordering::SeqCst);
    }

    pub(crate) fn part_put_received(
        &self,
        upload_id: &str,
        part: u32,
        headers_ok: bool,
    ) -> InFlightPut<'_> {
        {
            let mut inner = self.lock();
            *inner
                .puts_by_part
                .entry((upload_id.to_owned(), part))
                .or_insert(0) += 1;
            inner.total_part_puts += 1;
            inner.put_headers_ok &= headers_ok;
        }
        let now = self.puts_in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_puts_in_flight.fetch_max(now, Ordering::SeqCst);
        InFlightPut { stats: self }
    }

    pub(crate) fn object_put_received(&self, path: &str) {
        let path = percent_encoding::percent_decode_str(path)
            .decode_utf8_lossy()
            .into_owned();
        *self.lock().object_puts.entry(path).or_insert(0) += 1;
    }

    pub(crate) fn store_request_done(&self, request: StoreRequest) {
        let mut inner = self.lock();
        if request.part.is_some() && request.status.is_some_and(|s| (200..300).contains(&s)) {
            inner.ok_part_puts += 1;
        }
        inner.store_requests.push(request);
    }

    pub(crate) fn backend_call(&self, route: Route) {
        *self.lock().backend_calls.entry(route).or_insert(0) += 1;
    }

    pub(crate) fn upload_id_received(&self, route: Route, id: String) {
        self.lock().upload_ids.push((route, id));
    }

    pub(crate) fn start_body(&self, body: serde_json::Value) {
        self.lock().start_bodies.push(body);
    }

    pub(crate) fn parts_requested(&self, parts: Vec<u32>) {
        self.lock().requested_parts.push(parts);
    }
}

/// Counts a part PUT as in flight until dropped, however its handling ends.
pub(crate) struct InFlightPut<'a> {
    stats: &'a Stats,
}

impl Drop for InFlightPut<'_> {
    fn drop(&mut self) {
        self.stats.puts_in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}
