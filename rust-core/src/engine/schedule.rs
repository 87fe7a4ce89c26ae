//! Scheduling: which backend call and which part PUT go next, the tasks
//! that run them, and when the loop wakes.

use super::*;

impl Engine {
    pub(super) fn secrets_for(&self, id: UploadId) -> Vec<String> {
        let mut s: Vec<String> = self
            .config
            .as_ref()
            .map(|c| c.secret_values().map(str::to_string).collect())
            .unwrap_or_default();
        if let Some(t) = self.uploads.get(&id) {
            s.extend(t.secrets.iter().cloned());
        }
        s
    }

    /// Runs `fut` as a task of the upload; returns its ticket.
    pub(super) fn spawn<F>(&mut self, upload: UploadId, kind: TaskKind, fut: F) -> u64
    where
        F: std::future::Future<Output = Outcome> + Send + 'static,
    {
        let ticket = self.next_ticket;
        self.next_ticket += 1;
        let handle = self.tasks.spawn(async move {
            TaskDone {
                ticket,
                outcome: fut.await,
            }
        });
        self.task_ids.insert(handle.id(), ticket);
        let multipart = self
            .uploads
            .get(&upload)
            .and_then(|t| t.row.upload_id.clone());
        let protected_stamp = self.protected.stamp();
        self.tickets.insert(
            ticket,
            TaskInfo {
                upload,
                kind,
                handle,
                multipart,
                protected_stamp,
            },
        );
        ticket
    }

    pub(super) fn stop_tasks_of(&mut self, id: UploadId) {
        for info in self.tickets.values() {
            // A startUpload in flight may already have created the multipart
            // upload: its answer is kept (or aborted if cancelled), never lost.
            if info.upload == id && info.kind != TaskKind::Start {
                info.handle.abort();
            }
        }
        // Flags are cleared when the aborted tasks report back.
    }

    pub(super) fn parts_in_flight(&self) -> usize {
        self.tickets
            .values()
            .filter(|t| matches!(t.kind, TaskKind::Part(_)))
            .count()
    }

    pub(super) fn schedule(&mut self) {
        self.pass = PassClock::now();
        self.bound_waits_if_needed(false);
        if !self.running || !self.network_allowed() {
            return;
        }
        let Some(config) = self.config.clone() else {
            return;
        };
        for step in self.plan_calls(&config) {
            match step {
                Call::Abort(id) => self.spawn_abort(id, &config),
                Call::Start(id) => self.spawn_start(id, &config),
                Call::Complete(id) => self.spawn_complete(id, &config),
                Call::Urls(id, parts) => self.spawn_urls(id, parts, &config),
                Call::SyncFirst => self.want_sync = true,
            }
        }
        if self.handoff_active() {
            return self.fill_handoff(None);
        }
        // Fill the free slots, oldest upload first. A file found changed
        // fails its upload and frees its slots for the next one: go again.
        while self.fill_slots(config.max_parts_in_flight as usize) {}
        if self.prehandoff_active() {
            // The next parts after those sent now go to the transport.
            self.fill_handoff(Some(self.phone.window));
        }
    }

    /// The backend calls due now. One pass over the uploads, no lookups:
    /// with thousands of queued files this runs after every event.
    pub(super) fn plan_calls(&self, config: &Config) -> Vec<Call> {
        let PassClock {
            ms: now_ms,
            boot: now,
        } = self.pass;
        let limit = self.part_window(config);
        // How far ahead of the parts in flight the next files are prepared.
        let window = 2 * limit;
        let mut ahead = 0usize;
        let mut starts = self
            .tickets
            .values()
            .filter(|t| t.kind == TaskKind::Start)
            .count();
        let mut calls = Vec::new();
        let mut wants_sync = false;
        for (&id, t) in &self.uploads {
            let state = t.row.state;
            if state == UploadState::Cancelled
                && t.row.abort_state == AbortState::Pending
                && !t.busy.contains(&TaskKindTag::Abort)
                && t.due(now_ms)
            {
                calls.push(Call::Abort(id));
                continue;
            }
            if !state.is_active() {
                continue;
            }
            if state == UploadState::Pending {
                if ahead < window
                    && starts < MAX_STARTS_IN_FLIGHT
                    && !t.busy.contains(&TaskKindTag::Start)
                    && t.due(now_ms)
                {
                    calls.push(Call::Start(id));
                    starts += 1;
                }
                // Its parts are unknown yet: count it as cut at the smallest
                // part size, so many small files are prepared in parallel
                // while one big file fills the window alone.
                ahead += usize::try_from(t.row.size.div_ceil(MIN_PART))
                    .unwrap_or(usize::MAX)
                    .clamp(1, limit);
                continue;
            }
            if t.all_parts_done() {
                if !t.busy.contains(&TaskKindTag::Complete) && t.due(now_ms) {
                    // The store forgets the parts at complete: their ETags
                    // must survive a power cut first.
                    if self.store.is_durable(t.etags_commit) {
                        calls.push(Call::Complete(id));
                    } else if !wants_sync {
                        calls.push(Call::SyncFirst);
                        wants_sync = true;
                    }
                }
                continue;
            }
            // Parts that still need a PUT, in order.
            let pending = t
                .parts
                .iter()
                .enumerate()
                .filter(|(_, p)| p.open())
                .map(|(i, _)| i as u32 + 1);
            // A file waiting for the device's unlock needs no URLs yet.
            if ahead < window
                && !t.busy.contains(&TaskKindTag::Urls)
                && t.due(now_ms)
                && !t.waits_for_unlock(now_ms)
            {
                let want = (window - ahead).clamp(limit, MAX_URL_BATCH);
                let missing: Vec<u32> = pending
                    .clone()
                    .take(want)
                    .filter(|n| !self.url_ready(t, *n, now))
                    .collect();
                if !missing.is_empty() {
                    calls.push(Call::Urls(id, missing));
                }
            }
            ahead += pending.count();
        }
        calls
    }

    /// Starts part PUTs up to `limit` in flight. Returns true when an upload
    /// failed its file check on the way (its slots are free again).
    pub(super) fn fill_slots(&mut self, limit: usize) -> bool {
        let PassClock {
            ms: now_ms,
            boot: now,
        } = self.pass;
        let mut in_flight = self.parts_in_flight();
        let mut batches: Vec<(UploadId, Vec<(u32, String)>)> = Vec::new();
        for (&id, t) in &self.uploads {
            if in_flight >= limit {
                break;
            }
            if !matches!(t.row.state, UploadState::Initialized | UploadState::Running) {
                continue;
            }
            if self.waits_for_opener(t) || t.waits_for_unlock(now_ms) {
                continue;
            }
            let ready: Vec<(u32, String)> = t
                .parts
                .iter()
                .enumerate()
                .filter(|(_, p)| p.open() && p.next_attempt_at <= now_ms)
                .filter_map(|(i, _)| {
                    let n = i as u32 + 1;
                    t.urls.usable(n, now).map(|u| (n, u.to_string()))
                })
                .take(limit - in_flight)
                .collect();
            if !ready.is_empty() {
                in_flight += ready.len();
                batches.push((id, ready));
            }
        }
        let mut freed = false;
        for (id, ready) in batches {
            // The file must still be the one that was added (never a mixed object).
            if let Err(e) = self.check_file(id) {
                self.file_check_failed(id, e);
                freed = true;
                continue;
            }
            if self.uploads[&id].row.state == UploadState::Initialized {
                if let Err(e) = self.commit_state(id, UploadState::Running, None) {
                    self.db_failed(id, e);
                    freed = true;
                    continue;
                }
                self.notify_state(id);
            }
            for (n, url) in ready {
                self.spawn_part(id, n, url);
            }
        }
        freed
    }

    pub(super) fn spawn_start(&mut self, id: UploadId, config: &Config) {
        let t = self.uploads.get_mut(&id).expect("scheduled upload exists");
        t.busy.insert(TaskKindTag::Start);
        let (name, hash, size, params) = (
            t.row.file_name.clone(),
            t.row.file_hash.clone(),
            t.row.size,
            t.row.user_params.clone(),
        );
        let http = self.http.clone();
        let config = config.clone();
        let secrets = self.secrets_for(id);
        self.spawn(id, TaskKind::Start, async move {
            let client = BackendClient {
                http: &http,
                config: &config,
                secrets,
            };
            Outcome::Start(client.start_upload(&name, &hash, size, &params).await)
        });
    }

    pub(super) fn spawn_urls(&mut self, id: UploadId, parts: Vec<u32>, config: &Config) {
        let t = self.uploads.get_mut(&id).expect("scheduled upload exists");
        let (Some(key), Some(upload_id)) = (t.row.key.clone(), t.row.upload_id.clone()) else {
            return;
        };
        t.busy.insert(TaskKindTag::Urls);
        let http = self.http.clone();
        let config = config.clone();
        let secrets = self.secrets_for(id);
        self.spawn(id, TaskKind::Urls, async move {
            let client = BackendClient {
                http: &http,
                config: &config,
                secrets,
            };
            let fetched_at = super::boot_clock::BootTime::now();
            let result = client.upload_urls(&key, &upload_id, &parts).await;
            Outcome::Urls { fetched_at, result }
        });
    }

    pub(super) fn spawn_part(&mut self, id: UploadId, number: u32, url: String) {
        // fill_slots skips uploads that wait for an opener.
        let Some(file) = self.part_file(id) else {
            return;
        };
        let t = self.uploads.get_mut(&id).expect("scheduled upload exists");
        let part_size = t.row.part_size.unwrap_or(0);
        let len = part_len(t.row.size, part_size, number);
        let offset = (u64::from(number) - 1) * part_size;
        let sent = Arc::new(AtomicU64::new(0));
        let Some(slot) = t.part_mut(number) else {
            return;
        };
        slot.in_flight = Some(sent.clone());
        let http = self.http.clone();
        let pool = self.chunks.clone();
        let (stall_timeout, answer_timeout) = self
            .config
            .as_ref()
            .map(|c| (c.retry.stall_timeout(), c.retry.request_timeout()))
            .unwrap_or((
                crate::transfer::STALL_TIMEOUT,
                crate::transfer::STALL_TIMEOUT,
            ));
        tracing::debug!(upload = id, part = number, len, url = %redact::url_for_log(&url), "part upload starts");
        self.spawn(id, TaskKind::Part(number), async move {
            let result = put_part(
                &http,
                PartJob {
                    url: &url,
                    file,
                    offset,
                    len,
                    sent,
                    stall_timeout,
                    answer_timeout,
                    pool: &pool,
                },
            )
            .await;
            Outcome::Part { number, result }
        });
    }

    pub(super) fn spawn_complete(&mut self, id: UploadId, config: &Config) {
        let etags = match self.store.etags(id) {
            Ok(e) => e,
            Err(e) => return self.db_failed(id, e),
        };
        // ETags come from the database, sorted by part number; every part once.
        let mut parts = Vec::with_capacity(etags.len());
        for (n, etag) in etags {
            match etag {
                Some(e) => parts.push((n, e)),
                None => {
                    return self.fail(
                        id,
                        UploadError::new(
                            ErrorCode::Internal,
                            format!("part {n} has no stored ETag at complete"),
                        ),
                    )
                }
            }
        }
        let t = self.uploads.get_mut(&id).expect("scheduled upload exists");
        let (Some(key), Some(upload_id)) = (t.row.key.clone(), t.row.upload_id.clone()) else {
            return;
        };
        t.busy.insert(TaskKindTag::Complete);
        let http = self.http.clone();
        let config = config.clone();
        let secrets = self.secrets_for(id);
        self.spawn(id, TaskKind::Complete, async move {
            let client = BackendClient {
                http: &http,
                config: &config,
                secrets,
            };
            Outcome::Complete(client.complete(&key, &upload_id, &parts).await)
        });
    }

    pub(super) fn spawn_abort(&mut self, id: UploadId, config: &Config) {
        let t = self.uploads.get_mut(&id).expect("scheduled upload exists");
        let (Some(key), Some(upload_id), Some(base)) = (
            t.row.key.clone(),
            t.row.upload_id.clone(),
            config.abort_url.clone(),
        ) else {
            // Nothing can be aborted: record that so it is not retried.
            t.row.abort_state = AbortState::Done;
            if let Ok(tx) = self.store.transaction() {
                let _ = write::set_abort_state(&tx, id, AbortState::Done)
                    .and_then(|_| Ok(tx.commit()?));
            }
            self.retire_if_finished(id);
            return;
        };
        t.busy.insert(TaskKindTag::Abort);
        let http = self.http.clone();
        let config = config.clone();
        let secrets = self.secrets_for(id);
        self.spawn(id, TaskKind::Abort, async move {
            let client = BackendClient {
                http: &http,
                config: &config,
                secrets,
            };
            Outcome::Abort(client.abort(&base, &key, &upload_id).await)
        });
    }

    /// When the loop must wake for a wait that the last pass saw running:
    /// a retry time or a URL expiry after the pass's clock. One that has
    /// passed since the pass (a wait of a millisecond, a slow pass) wakes
    /// at once; judged against the time now it would be missed, and the
    /// upload would sleep until something else woke the loop.
    pub(super) fn next_wake(&self) -> Instant {
        let pass = self.pass;
        let now = Instant::now();
        let boot_now = super::boot_clock::BootTime::now();
        let now_ms = now_ms();
        let mut wake = now + IDLE_WAKE;
        let max_delay = self
            .config
            .as_ref()
            .map(|c| c.retry.longest_wait())
            .unwrap_or(IDLE_WAKE);
        let at = |ms: i64| -> Instant {
            // Persisted times are wall-clock; a clock moved back cannot park
            // an upload longer than the retry policy allows.
            let d = Duration::from_millis(u64::try_from(ms - now_ms).unwrap_or(0));
            now + d.min(max_delay)
        };
        let handoff_margin = self.url_margin_in_use();
        for t in self.uploads.values() {
            let state = t.row.state;
            let waits_for_call = state.is_active()
                || (state == UploadState::Cancelled && t.row.abort_state == AbortState::Pending);
            if waits_for_call && t.row.next_attempt_at > pass.ms {
                wake = wake.min(at(t.row.next_attempt_at));
            }
            if !state.is_active() {
                continue;
            }
            if let Some(retry) = t.unlock_retry_at().filter(|&ms| ms > pass.ms) {
                wake = wake.min(at(retry));
            }
            for p in &t.parts {
                if p.open() && p.next_attempt_at > pass.ms {
                    wake = wake.min(at(p.next_attempt_at));
                }
            }
            let left = match handoff_margin {
                // Hand-off wants URLs with a margin left (url_ready): wake
                // when that ends, to ask for fresh ones in time.
                Some(margin) => t.urls.next_expiry_with_margin(pass.boot, margin),
                None => t.urls.next_expiry(pass.boot),
            };
            if let Some(until) = left.and_then(|left| pass.boot.checked_add(left)) {
                wake = wake.min(now + until.saturating_duration_since(boot_now));
            }
            if t.parts_in_flight() > 0 {
                wake = wake.min(now + PROGRESS_INTERVAL);
            }
        }
        wake
    }

    pub(super) fn emit_due_progress(&mut self, force_all: bool) {
        let Some(listener) = self.listener.clone() else {
            return;
        };
        let now = Instant::now();
        for t in self.uploads.values_mut() {
            if !t.row.state.is_active() {
                continue;
            }
            let bytes = t.uploaded_bytes();
            let due = match t.last_progress {
                None => bytes > 0 || force_all,
                Some((at, last)) => last != bytes && now.duration_since(at) >= PROGRESS_INTERVAL,
            };
            if due {
                t.last_progress = Some((now, bytes));
                listener.on_event(&UploadEvent::Progress(t.progress()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::boot_clock::BootTime;
    use super::*;

    /// An engine over an in-memory queue holding one upload not begun.
    fn engine_with_one_upload() -> (Engine, UploadId) {
        let mut store = Store::open_in_memory().unwrap();
        let tx = store.transaction().unwrap();
        let id = write::insert_upload(
            &tx,
            &NewRow {
                transfer_id: "t",
                path: "/nowhere/a.bin",
                file_name: "a.bin",
                file_hash: "00",
                size: 100,
                mtime_ns: 0,
                user_params: &serde_json::Map::new(),
                is_uri: false,
                in_root: false,
            },
        )
        .unwrap();
        tx.commit().unwrap();
        let (changes, _) = watch::channel(0);
        let engine = Engine::load(
            store,
            reqwest::Client::new(),
            changes,
            crate::source::OpenerSlot::default(),
        )
        .unwrap();
        (engine, id)
    }

    /// The pass ran 20 ms ago: what was waiting then and is due by now
    /// wakes the loop at once (the flake this fixes: a retry delay of a
    /// millisecond or two, over by the time the wake was computed, left
    /// the upload asleep for IDLE_WAKE).
    #[test]
    fn a_retry_due_between_the_pass_and_the_wake_wakes_at_once() {
        let (mut engine, id) = engine_with_one_upload();
        let pass_ms = now_ms() - 20;
        engine.pass = PassClock {
            ms: pass_ms,
            boot: BootTime::now(),
        };
        engine.uploads.get_mut(&id).unwrap().row.next_attempt_at = pass_ms + 1;
        assert!(engine.next_wake() <= Instant::now());
        // Due already at the pass (and held back by something else, like
        // the window): no wake for it, or the loop would spin.
        engine.uploads.get_mut(&id).unwrap().row.next_attempt_at = pass_ms;
        assert!(engine.next_wake() > Instant::now() + IDLE_WAKE / 2);
    }

    #[test]
    fn a_url_expiring_between_the_pass_and_the_wake_wakes_at_once() {
        let (mut engine, id) = engine_with_one_upload();
        let since_origin = BootTime::now().saturating_duration_since(BootTime::at(Duration::ZERO));
        let ago = |d: Duration| BootTime::at(since_origin - d);
        engine.pass = PassClock {
            ms: now_ms(),
            boot: ago(Duration::from_millis(20)),
        };
        // Signed long ago: only the stated 4 s count, less a quarter as
        // margin, so it is usable until 3 s after it was fetched, which is
        // 10 ms ago.
        let url = "http://127.0.0.1:9/b/k?X-Amz-Date=20200101T000000Z&X-Amz-Expires=4";
        let fetched = ago(Duration::from_millis(3_010));
        let t = engine.uploads.get_mut(&id).unwrap();
        t.urls.insert(1, url.into(), fetched);
        assert!(t.urls.usable(1, engine.pass.boot).is_some());
        assert!(t.urls.usable(1, BootTime::now()).is_none());
        assert!(engine.next_wake() <= Instant::now());
    }
}
