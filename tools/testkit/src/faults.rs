use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use crate::chaos::{Chaos, ChaosPlan, ChaosReport, Fault, Target};
use crate::stats::Route;

/// Faults to inject into the store and the backend; set them while a test
/// runs. Rules of the same kind apply in the order they were added, each
/// for as many requests as it was given.
#[derive(Debug, Default)]
pub struct Faults {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    put_rules: Vec<PutRule>,
    put_delay: Duration,
    put_response_delay: Duration,
    part_delays: HashMap<u32, Duration>,
    backend_rules: Vec<BackendRule>,
    chaos: Option<Chaos>,
    alias: Option<String>,
    alias_real: Option<String>,
    /// getUploadUrls answers still to rewrite, and the `X-Amz-Expires` value.
    url_expiry: Option<(u32, String)>,
    /// Part PUTs whose error answer stalls: how many, and the status.
    stalled_answers: Option<(u32, u16)>,
    gone_uploads: HashSet<String>,
    start_answer_delay: Duration,
    refuse_empty_parts: bool,
    refuse_zero_part_completes: bool,
    /// Bytes per second at which the store reads each part body.
    part_body_rate: Option<u64>,
    broken: HashSet<Broken>,
    /// Upload ids completed once, for [`Broken::NonIdempotentComplete`].
    completed: HashSet<String>,
}

/// Ways a backend can break the contract, for testing contract checkers:
/// the harness makes the reference backend (or the URLs it hands out)
/// behave like a backend with that mistake.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Broken {
    /// startUpload answers a 1 MiB part size for any file over 1 MiB.
    SmallParts,
    /// A complete repeated after success answers 404 (the store's
    /// NoSuchUpload passed on) instead of 2xx.
    NonIdempotentComplete,
    /// PUT answers lose their ETag header (a proxy, or a CORS setup that
    /// does not expose it).
    NoEtagPassthrough,
    /// There is no abort route: it answers 404.
    NoAbortRoute,
}

#[derive(Debug)]
struct PutRule {
    part: Option<u32>,
    remaining: u32,
    action: PutFault,
}

/// What happens to a faulted part PUT.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum PutFault {
    Status(u16),
    /// This status with this body (XML or not).
    Body(u16, String),
    /// Stored for real, but answered 200 without an ETag header.
    NoEtag,
    Drop,
}

#[derive(Debug)]
struct BackendRule {
    route: Route,
    remaining: u32,
    fault: BackendFault,
}

/// A canned backend answer.
#[derive(Clone, Debug)]
pub(crate) struct BackendFault {
    pub status: u16,
    pub body: FaultBody,
    pub header: Option<(String, String)>,
}

#[derive(Clone, Debug)]
pub(crate) enum FaultBody {
    Text(String),
    /// `len` bytes of JSON-looking filler, streamed; with a Content-Length
    /// header when `declared`, chunked otherwise.
    Huge {
        len: u64,
        declared: bool,
    },
}

impl Faults {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The next `n` part PUTs are answered `status` (with an S3 XML error)
    /// without reaching the store.
    pub fn fail_puts(&self, n: u32, status: u16) {
        self.add_put_rule(None, n, PutFault::Status(status));
    }

    /// Like [`Faults::fail_puts`], for PUTs of one part number only.
    pub fn fail_puts_for_part(&self, part: u32, n: u32, status: u16) {
        self.add_put_rule(Some(part), n, PutFault::Status(status));
    }

    /// The next `n` part PUTs are answered `status` with exactly `body`.
    pub fn fail_puts_with_body(&self, n: u32, status: u16, body: &str) {
        self.add_put_rule(None, n, PutFault::Body(status, body.to_owned()));
    }

    /// The next `n` part PUTs reach the store, but their answer loses its ETag.
    pub fn strip_etags(&self, n: u32) {
        self.add_put_rule(None, n, PutFault::NoEtag);
    }

    /// The next `n` part PUTs have their connection closed without an answer.
    pub fn drop_puts(&self, n: u32) {
        self.add_put_rule(None, n, PutFault::Drop);
    }

    /// Like [`Faults::drop_puts`], for PUTs of one part number only.
    pub fn drop_puts_for_part(&self, part: u32, n: u32) {
        self.add_put_rule(Some(part), n, PutFault::Drop);
    }

    /// Every part PUT waits `d` before being handled (zero turns it off).
    pub fn delay_puts(&self, d: Duration) {
        self.lock().put_delay = d;
    }

    /// Every part PUT is handled by the store at once, but its answer is held
    /// back for `d` (zero turns it off). Unlike [`Faults::delay_puts`], the
    /// presigned URL is checked on arrival, so this slows uploads down
    /// without making URLs expire in the harness.
    pub fn delay_put_responses(&self, d: Duration) {
        self.lock().put_response_delay = d;
    }

    /// PUTs of this part wait `d` instead of the general delay (zero turns
    /// it off, falling back to the general one).
    pub fn set_put_delay_for_part(&self, part: u32, d: Duration) {
        let mut inner = self.lock();
        if d.is_zero() {
            inner.part_delays.remove(&part);
        } else {
            inner.part_delays.insert(part, d);
        }
    }

    /// The next `n` calls of `route` are answered `status` with `body`
    /// (sent as is, so it can be malformed JSON).
    pub fn fail_backend(&self, route: Route, n: u32, status: u16, body: &str) {
        self.add_backend_rule(route, n, status, body, None);
    }

    /// Like [`Faults::fail_backend`], with one extra response header (e.g.
    /// `Retry-After`).
    pub fn fail_backend_with_header(
        &self,
        route: Route,
        n: u32,
        status: u16,
        body: &str,
        header_name: &str,
        header_value: &str,
    ) {
        let header = Some((header_name.to_owned(), header_value.to_owned()));
        self.add_backend_rule(route, n, status, body, header);
    }

    /// From now on, faults drawn at random by `plan` (on top of the rules
    /// above, which are applied first). Replaces an earlier plan.
    pub fn chaos(&self, plan: ChaosPlan) {
        self.lock().chaos = Some(Chaos::new(plan));
    }

    /// Ends the random faults; returns what they did.
    pub fn stop_chaos(&self) -> ChaosReport {
        self.lock()
            .chaos
            .take()
            .map(|c| c.report)
            .unwrap_or_default()
    }

    /// What the random faults did so far.
    pub fn chaos_report(&self) -> ChaosReport {
        self.lock()
            .chaos
            .as_ref()
            .map(|c| c.report.clone())
            .unwrap_or_default()
    }

    /// Draws a random fault for one request, with the plan's stall and delay.
    pub(crate) fn roll(&self, target: Target) -> Option<(Fault, Duration, Duration)> {
        let mut inner = self.lock();
        let chaos = inner.chaos.as_mut()?;
        let fault = chaos.roll(target)?;
        Some((fault, chaos.plan.stall, chaos.plan.delay))
    }

    /// The next `n` calls of `route` are answered `status` with a body of
    /// `len` bytes, streamed (never held in memory). With `declared` the
    /// length is announced in Content-Length; otherwise it is chunked.
    pub fn huge_backend_answer(&self, route: Route, n: u32, status: u16, len: u64, declared: bool) {
        self.add_backend_rule_body(route, n, status, FaultBody::Huge { len, declared }, None);
    }

    /// The backend's upload ids are shown to the client as `alias` (e.g. with
    /// `/`, `+`, `=` and spaces) and mapped back when the client sends it,
    /// in the getUploadUrls body and the complete and abort paths. One
    /// upload at a time.
    pub fn alias_upload_id(&self, alias: &str) {
        self.lock().alias = Some(alias.to_owned());
    }

    pub(crate) fn upload_id_alias(&self) -> Option<String> {
        self.lock().alias.clone()
    }

    /// The real upload id behind the alias (the latest startUpload's).
    pub(crate) fn aliased_upload_id(&self) -> Option<String> {
        self.lock().alias_real.clone()
    }

    pub(crate) fn set_aliased_upload_id(&self, real: String) {
        self.lock().alias_real = Some(real);
    }

    /// The next `n` getUploadUrls answers come from the backend as usual,
    /// but with `X-Amz-Expires` of every URL set to `value` (e.g. `0`, or
    /// far beyond what a time can hold). The signature no longer matches,
    /// so the store refuses such a URL if it is used.
    pub fn rewrite_url_expiry(&self, n: u32, value: &str) {
        self.lock().url_expiry = (n > 0).then(|| (n, value.to_owned()));
    }

    /// Uses up one rewrite of [`Faults::rewrite_url_expiry`].
    pub(crate) fn take_url_expiry(&self) -> Option<String> {
        let mut inner = self.lock();
        let (left, value) = inner.url_expiry.as_mut()?;
        let value = value.clone();
        *left -= 1;
        if *left == 0 {
            inner.url_expiry = None;
        }
        Some(value)
    }

    /// The next `n` part PUTs are read whole, then answered `status` with
    /// `Content-Length: 100`, 10 bytes of the body, and then nothing: the
    /// connection stays open and silent (a network that died mid-answer).
    pub fn stall_put_answers(&self, n: u32, status: u16) {
        self.lock().stalled_answers = (n > 0).then_some((n, status));
    }

    /// Uses up one stalled answer of [`Faults::stall_put_answers`].
    pub(crate) fn take_stalled_answer(&self) -> Option<u16> {
        let mut inner = self.lock();
        let (left, status) = inner.stalled_answers.as_mut()?;
        let status = *status;
        *left -= 1;
        if *left == 0 {
            inner.stalled_answers = None;
        }
        Some(status)
    }

    /// The store forgets this multipart upload, as a lifecycle rule that
    /// aborts incomplete uploads would: from now on every request naming it
    /// (part PUTs, complete, abort) is answered 404 `NoSuchUpload`.
    pub fn abort_multipart_upload(&self, upload_id: &str) {
        self.lock().gone_uploads.insert(upload_id.to_owned());
    }

    pub(crate) fn upload_is_gone(&self, upload_id: &str) -> bool {
        self.lock().gone_uploads.contains(upload_id)
    }

    /// startUpload calls are handled by the backend at once (the multipart
    /// upload exists at the store), but their answer is held back for `d`
    /// (zero turns it off): a slow network on the way back.
    pub fn delay_start_answers(&self, d: Duration) {
        self.lock().start_answer_delay = d;
    }

    pub(crate) fn start_answer_delay(&self) -> Duration {
        self.lock().start_answer_delay
    }

    /// While on, the store refuses a part PUT with an empty body (400
    /// `InvalidRequest` "Empty body"), as some S3-compatible servers do.
    pub fn refuse_empty_parts(&self, on: bool) {
        self.lock().refuse_empty_parts = on;
    }

    pub(crate) fn refuses_empty_parts(&self) -> bool {
        self.lock().refuse_empty_parts
    }

    /// While on, the store refuses a CompleteMultipartUpload that lists no
    /// part (400 `MalformedXML`), as AWS does.
    pub fn refuse_zero_part_completes(&self, on: bool) {
        self.lock().refuse_zero_part_completes = on;
    }

    pub(crate) fn refuses_zero_part_completes(&self) -> bool {
        self.lock().refuse_zero_part_completes
    }

    /// From now on the store reads each part body at `bytes_per_sec` (zero
    /// turns it off): a slow uplink. Unread bytes hold the client back only
    /// as far as the sockets between them buffer, so start the harness with
    /// [`crate::HarnessOptions::narrow_store_sockets`] for the client to feel
    /// the rate (on loopback's own sizes it can hand over megabytes at once).
    pub fn throttle_part_bodies(&self, bytes_per_sec: u64) {
        self.lock().part_body_rate = (bytes_per_sec > 0).then_some(bytes_per_sec);
    }

    pub(crate) fn part_body_rate(&self) -> Option<u64> {
        self.lock().part_body_rate
    }

    /// From now on the backend behaves as if it had this mistake.
    pub fn break_backend(&self, how: Broken) {
        self.lock().broken.insert(how);
    }

    pub(crate) fn is_broken(&self, how: Broken) -> bool {
        self.lock().broken.contains(&how)
    }

    pub(crate) fn was_completed(&self, upload_id: &str) -> bool {
        self.lock().completed.contains(upload_id)
    }

    pub(crate) fn completed(&self, upload_id: String) {
        self.lock().completed.insert(upload_id);
    }

    /// Removes every fault and delay.
    pub fn clear(&self) {
        *self.lock() = Inner::default();
    }

    fn add_put_rule(&self, part: Option<u32>, n: u32, action: PutFault) {
        if n > 0 {
            self.lock().put_rules.push(PutRule {
                part,
                remaining: n,
                action,
            });
        }
    }

    fn add_backend_rule(
        &self,
        route: Route,
        n: u32,
        status: u16,
        body: &str,
        header: Option<(String, String)>,
    ) {
        self.add_backend_rule_body(route, n, status, FaultBody::Text(body.to_owned()), header);
    }

    fn add_backend_rule_body(
        &self,
        route: Route,
        n: u32,
        status: u16,
        body: FaultBody,
        header: Option<(String, String)>,
    ) {
        if n > 0 {
            self.lock().backend_rules.push(BackendRule {
                route,
                remaining: n,
                fault: BackendFault {
                    status,
                    body,
                    header,
                },
            });
        }
    }

    pub(crate) fn put_delay(&self, part: u32) -> Duration {
        let inner = self.lock();
        inner
            .part_delays
            .get(&part)
            .copied()
            .unwrap_or(inner.put_delay)
    }

    pub(crate) fn put_response_delay(&self) -> Duration {
        self.lock().put_response_delay
    }

    /// Uses up one application of the first rule matching this part.
    pub(crate) fn take_put_fault(&self, part: u32) -> Option<PutFault> {
        let mut inner = self.lock();
        let idx = inner
            .put_rules
            .iter()
            .position(|r| r.part.is_none_or(|p| p == part))?;
        let rule = &mut inner.put_rules[idx];
        let action = rule.action.clone();
        rule.remaining -= 1;
        if rule.remaining == 0 {
            inner.put_rules.remove(idx);
        }
        Some(action)
    }

    pub(crate) fn take_backend_fault(&self, route: Route) -> Option<BackendFault> {
        let mut inner = self.lock();
        let idx = inner.backend_rules.iter().position(|r| r.route == route)?;
        let rule = &mut inner.backend_rules[idx];
        let fault = rule.fault.clone();
        rule.remaining -= 1;
        if rule.remaining == 0 {
            inner.backend_rules.remove(idx);
        }
        Some(fault)
    }
}
