//! Task outcomes: what a finished backend call or part PUT changes, and
//! the retry, refresh and failure rules applied to it.

use super::*;

/// Why a batch of part URLs is refused on arrival.
const DEAD_ON_ARRIVAL: &str = "the part URLs from getUploadUrls had already expired when they \
    arrived: their lifetime (X-Amz-Expires) is too short, or this device's clock is ahead of \
    the server's (check the URL lifetime and the device's date and time)";

impl Engine {
    pub(super) fn on_task_end(
        &mut self,
        res: std::result::Result<(tokio::task::Id, TaskDone), tokio::task::JoinError>,
    ) {
        let (ticket, outcome, panicked) = match res {
            Ok((task_id, done)) => {
                self.task_ids.remove(&task_id);
                (done.ticket, Some(done.outcome), false)
            }
            Err(e) => match self.task_ids.remove(&e.id()) {
                Some(ticket) => (ticket, None, e.is_panic()),
                None => return,
            },
        };
        let Some(info) = self.tickets.remove(&ticket) else {
            return;
        };
        self.end_stage_job(ticket);
        self.note_task_end();
        let id = info.upload;
        let Some(t) = self.uploads.get_mut(&id) else {
            return;
        };
        match info.kind {
            TaskKind::Start => t.busy.remove(&TaskKindTag::Start),
            TaskKind::Urls => t.busy.remove(&TaskKindTag::Urls),
            TaskKind::Complete => t.busy.remove(&TaskKindTag::Complete),
            TaskKind::Abort => t.busy.remove(&TaskKindTag::Abort),
            TaskKind::Part(n) => {
                if let Some(p) = t.part_mut(n) {
                    p.in_flight = None;
                }
                true
            }
            TaskKind::Stage(n) => {
                if let Some(p) = t.part_mut(n) {
                    p.staging = false;
                }
                true
            }
        };
        // An outcome for a multipart upload the upload no longer has (it
        // vanished at the store and was dropped) changes nothing.
        let stale = matches!(
            info.kind,
            TaskKind::Urls | TaskKind::Part(_) | TaskKind::Stage(_) | TaskKind::Complete
        ) && info.multipart != t.row.upload_id;
        let outcome = if stale {
            tracing::debug!(upload = id, "outcome of a dropped multipart upload ignored");
            None
        } else {
            outcome
        };
        let Some(outcome) = outcome else {
            if panicked {
                tracing::error!(upload = id, "an upload task panicked");
                self.fail(
                    id,
                    UploadError::new(
                        ErrorCode::Internal,
                        "an upload task panicked; resume to retry",
                    ),
                );
            }
            // Otherwise it was stopped by us (pause, cancel, checkpoint).
            self.retire_if_finished(id);
            return;
        };
        // A file refused while the device's protected data was unavailable
        // (now, or at some point of the attempt): not now, not a failure.
        let outcome = match outcome {
            Outcome::Part {
                result: Err(Failure::FileDenied(refused)),
                ..
            }
            | Outcome::Staged {
                result:
                    Err(crate::staging::StageError::Source(crate::error::Error::FileDenied(refused))),
                ..
            } if self.refusal_waits(id, info.protected_stamp) => {
                self.wait_for_unlock(id, refused);
                return self.retire_if_finished(id);
            }
            outcome => outcome,
        };
        let read_since_wait = matches!(
            outcome,
            Outcome::Part { result: Ok(_), .. } | Outcome::Staged { result: Ok(_), .. }
        ) && self.read_since_unlock_wait(id, ticket);
        match outcome {
            Outcome::Start(r) => self.on_start(id, r),
            Outcome::Urls { fetched_at, result } => self.on_urls(id, fetched_at, result),
            Outcome::Part { number, result } => self.on_part(id, number, result),
            Outcome::Complete(r) => self.on_complete(id, r),
            Outcome::Abort(r) => self.on_abort(id, r),
            Outcome::Staged {
                number,
                task_id,
                len,
                result,
            } => self.on_staged(id, number, task_id, len, result),
        }
        if read_since_wait {
            // Its file reads again: no longer waiting for an unlock.
            self.unlock_wait_over(id);
        }
        self.retire_if_finished(id);
    }

    pub(super) fn on_start(&mut self, id: UploadId, r: std::result::Result<StartAnswer, Failure>) {
        let state = self.uploads[&id].row.state;
        let answer = match r {
            Ok(a) => a,
            Err(f) => {
                if state.is_active() {
                    self.on_call_failure(id, f, ErrorCode::BackendUnavailable);
                }
                return;
            }
        };
        let size = self.uploads[&id].row.size;
        let total = part_count(size, answer.part_size) as u32;
        let abort_configured = self.config.as_ref().is_some_and(|c| c.abort_url.is_some());
        let result = (|| -> Result<()> {
            let tx = self.store.transaction()?;
            write::set_initialized(
                &tx,
                id,
                &answer.key,
                &answer.upload_id,
                answer.part_size,
                total,
            )?;
            match state {
                // Paused or failed meanwhile: keep that state, but remember the
                // multipart upload so nothing is orphaned.
                UploadState::Paused | UploadState::Failed => {
                    let t = &self.uploads[&id];
                    write::set_state(&tx, id, state, t.row.error.as_ref())?;
                }
                UploadState::Cancelled => {
                    write::set_state(&tx, id, state, None)?;
                    if abort_configured {
                        write::set_abort_state(&tx, id, AbortState::Pending)?;
                    }
                }
                _ => {}
            }
            tx.commit()?;
            Ok(())
        })();
        if let Err(e) = result {
            return self.db_failed(id, e);
        }
        let parts = match self.store.parts(id) {
            Ok(p) => p,
            Err(e) => return self.db_failed(id, e),
        };
        let t = self.uploads.get_mut(&id).expect("upload exists");
        t.row.key = Some(answer.key);
        t.row.upload_id = Some(answer.upload_id);
        t.row.part_size = Some(answer.part_size);
        t.row.parts_total = total;
        t.row.attempts = 0;
        t.row.next_attempt_at = 0;
        t.row.updated_at = now_ms();
        t.set_parts(parts);
        match state {
            UploadState::Pending => {
                t.row.state = UploadState::Initialized;
                t.row.error = None;
                self.notify_state(id);
            }
            UploadState::Cancelled if abort_configured => t.row.abort_state = AbortState::Pending,
            _ => {}
        }
    }

    pub(super) fn on_urls(
        &mut self,
        id: UploadId,
        fetched_at: super::boot_clock::BootTime,
        r: std::result::Result<BTreeMap<u32, String>, Failure>,
    ) {
        if !self.uploads[&id].row.state.is_active() {
            return;
        }
        match r {
            Ok(urls) => {
                let t = self.uploads.get_mut(&id).expect("upload exists");
                let numbers: Vec<u32> = urls.keys().copied().collect();
                for (n, u) in urls {
                    t.urls.insert(n, u, fetched_at);
                }
                // A batch already expired on arrival is a failed attempt:
                // asking again at once would loop with no part ever sent.
                let now = super::boot_clock::BootTime::now();
                if !numbers.is_empty() && numbers.iter().all(|n| t.urls.usable(*n, now).is_none()) {
                    return self.retry_call(
                        id,
                        ErrorCode::BackendInvalidResponse,
                        DEAD_ON_ARRIVAL.into(),
                        None,
                    );
                }
                if t.row.attempts > 0 {
                    t.row.attempts = 0;
                    t.row.next_attempt_at = 0;
                    let tx = self.store.transaction();
                    if let Err(e) = tx.and_then(|tx| {
                        write::set_attempts(&tx, id, 0, 0)?;
                        Ok(tx.commit()?)
                    }) {
                        self.db_failed(id, e);
                    }
                }
            }
            Err(f) => self.on_call_failure(id, f, ErrorCode::BackendUnavailable),
        }
    }

    pub(super) fn on_part(
        &mut self,
        id: UploadId,
        number: u32,
        r: std::result::Result<String, Failure>,
    ) {
        // A part the upload does not have (its multipart upload was
        // dropped since): nothing to record.
        let Some(state) = self
            .uploads
            .get(&id)
            .filter(|t| t.part(number).is_some())
            .map(|t| t.row.state)
        else {
            tracing::debug!(
                upload = id,
                part = number,
                "outcome for a part the upload no longer has"
            );
            return;
        };
        match r {
            Ok(etag) => {
                // A part that finished while the upload was paused still counts.
                if state == UploadState::Cancelled {
                    return;
                }
                if let Err(e) = self.check_file(id) {
                    if state.is_active() {
                        self.file_check_failed(id, e);
                    }
                    return;
                }
                let tx = self.store.transaction();
                if let Err(e) = tx.and_then(|tx| {
                    write::part_done(&tx, id, number, &etag)?;
                    Ok(tx.commit()?)
                }) {
                    return self.db_failed(id, e);
                }
                let commit = self.store.commits();
                let Some(t) = self.uploads.get_mut(&id) else {
                    return;
                };
                t.etags_commit = commit;
                let part_len = part_len(t.row.size, t.row.part_size.unwrap_or(0), number);
                let Some(slot) = t.part_mut(number) else {
                    return;
                };
                let new = slot.etag.is_none();
                slot.etag = Some(etag);
                slot.attempts = 0;
                slot.next_attempt_at = 0;
                slot.refreshes = 0;
                if new {
                    t.done_bytes += part_len;
                    t.parts_done += 1;
                }
                t.urls.remove(number);
                if new {
                    self.phone.sent_done += part_len;
                }
                self.part_committed(id, number);
            }
            Err(f) => {
                if state.is_active() {
                    self.on_part_failure(id, number, f);
                }
            }
        }
    }

    pub(super) fn on_complete(&mut self, id: UploadId, r: std::result::Result<(), Failure>) {
        if !self.uploads[&id].row.state.is_active() {
            return;
        }
        match r {
            Ok(()) => {
                if let Err(e) = self.commit_state(id, UploadState::Completed, None) {
                    return self.db_failed(id, e);
                }
                let t = self.uploads.get_mut(&id).expect("upload exists");
                t.recount();
                t.urls.clear();
                let progress = t.progress();
                if let Some(l) = &self.listener {
                    l.on_event(&UploadEvent::Progress(progress));
                }
                tracing::info!(upload = id, "upload completed");
                self.notify_state(id);
            }
            // Complete goes out only with every part's ETag synced, so the
            // store forgetting the upload is no sign of lost parts: an
            // earlier complete may have made the object (its answer lost,
            // or its COMPLETED state to a power cut). Asked again, a
            // backend that checks for the object says so.
            Err(Failure::UploadGone { detail }) => self.retry_call(
                id,
                ErrorCode::StorageRejected,
                format!(
                    "{detail} (the storage no longer knows this multipart upload; if an \
                     earlier complete reached it, the object exists)"
                ),
                None,
            ),
            Err(f) => self.on_call_failure(id, f, ErrorCode::BackendUnavailable),
        }
    }

    pub(super) fn on_abort(&mut self, id: UploadId, r: std::result::Result<(), Failure>) {
        let give_up = match r {
            Ok(()) => true,
            Err(Failure::Transient {
                detail,
                retry_after,
            }) => {
                let max = self.config.as_ref().map_or(1, |c| c.retry.max_attempts);
                let t = &self.uploads[&id];
                let attempts = t.row.attempts + 1;
                if attempts >= max {
                    tracing::warn!(upload = id, "abort given up: {detail}");
                    true
                } else {
                    let _ = self.record_call_retry(id, attempts, retry_after);
                    false
                }
            }
            Err(other) => {
                tracing::warn!(upload = id, "abort refused: {other:?}");
                true
            }
        };
        if give_up {
            let tx = self.store.transaction();
            if let Err(e) = tx.and_then(|tx| {
                write::set_abort_state(&tx, id, AbortState::Done)?;
                write::set_attempts(&tx, id, 0, 0)?;
                Ok(tx.commit()?)
            }) {
                tracing::error!(upload = id, "cannot record the abort: {e}");
            }
            if let Some(t) = self.uploads.get_mut(&id) {
                t.row.abort_state = AbortState::Done;
                t.row.attempts = 0;
                t.row.next_attempt_at = 0;
            }
        }
    }

    /// Records a failed backend call and when to try again (persisted).
    /// Records a failed call's retry; the wait before it (`None` if the
    /// database failed and the upload with it).
    pub(super) fn record_call_retry(
        &mut self,
        id: UploadId,
        attempts: u32,
        retry_after: Option<Duration>,
    ) -> Option<Duration> {
        let policy = self
            .config
            .as_ref()
            .map(|c| c.retry.clone())
            .unwrap_or_default();
        let delay = policy.backoff(attempts, retry_after);
        let next = now_ms() + delay.as_millis() as i64;
        let tx = self.store.transaction();
        if let Err(e) = tx.and_then(|tx| {
            write::set_attempts(&tx, id, attempts, next)?;
            Ok(tx.commit()?)
        }) {
            self.db_failed(id, e);
            return None;
        }
        let t = self.uploads.get_mut(&id).expect("upload exists");
        t.row.attempts = attempts;
        t.row.next_attempt_at = next;
        Some(delay)
    }

    pub(super) fn on_call_failure(&mut self, id: UploadId, f: Failure, unavailable: ErrorCode) {
        match f {
            Failure::Transient {
                detail,
                retry_after,
            } => self.retry_call(id, unavailable, detail, retry_after),
            Failure::Garbled { code, detail } => self.retry_call(id, code, detail, None),
            Failure::Auth { detail } => {
                let e = UploadError::new(
                    ErrorCode::AuthRequired,
                    format!("{detail}; set new headers with setConfig, then resume"),
                );
                if let Err(db) = self.pause(&Selector::Upload(id), Some(e)) {
                    self.db_failed(id, db);
                }
            }
            Failure::UrlRejected { detail } => {
                self.fail(id, UploadError::new(ErrorCode::BackendRejected, detail))
            }
            Failure::UploadGone { detail } => self.upload_gone(id, &detail),
            Failure::FileDenied(e) | Failure::Fatal(e) => self.fail(id, e),
        }
    }

    /// Schedules another attempt of a backend call, or fails the upload with
    /// `give_up` once the attempts are used up.
    pub(super) fn retry_call(
        &mut self,
        id: UploadId,
        give_up: ErrorCode,
        detail: String,
        retry_after: Option<Duration>,
    ) {
        let max = self.config.as_ref().map_or(1, |c| c.retry.max_attempts);
        let attempts = self.uploads[&id].row.attempts + 1;
        if attempts >= max {
            self.fail(
                id,
                UploadError::new(
                    give_up,
                    format!("{detail} (gave up after {attempts} attempts)"),
                ),
            );
        } else if let Some(delay) = self.record_call_retry(id, attempts, retry_after) {
            // Structured fields: the CLI shows them as "attempt N of M,
            // next try in ..." (tools/cli/src/output.rs).
            tracing::info!(
                upload = id,
                attempts,
                max_attempts = max,
                retry_in_ms = delay.as_millis() as u64,
                reason = %detail,
                "backend call failed, will retry"
            );
        }
    }

    pub(super) fn on_part_failure(&mut self, id: UploadId, number: u32, f: Failure) {
        let policy = self
            .config
            .as_ref()
            .map(|c| c.retry.clone())
            .unwrap_or_default();
        let (give_up, detail, retry_after) = match f {
            Failure::Transient {
                detail,
                retry_after,
            } => (ErrorCode::StorageUnavailable, detail, retry_after),
            Failure::Garbled { code, detail } => (code, detail, None),
            other => return self.on_final_part_failure(id, number, other, &policy),
        };
        let Some(slot) = self.uploads.get(&id).and_then(|t| t.part(number)) else {
            return;
        };
        let attempts = slot.attempts + 1;
        if attempts >= policy.max_attempts {
            return self.fail(
                id,
                UploadError::new(
                    give_up,
                    format!("part {number}: {detail} (gave up after {attempts} attempts)"),
                ),
            );
        }
        let delay = policy.backoff(attempts, retry_after);
        tracing::info!(
            upload = id,
            part = number,
            attempts,
            max_attempts = policy.max_attempts,
            retry_in_ms = delay.as_millis() as u64,
            reason = %detail,
            "part failed, will retry"
        );
        let next = now_ms() + delay.as_millis() as i64;
        let tx = self.store.transaction();
        if let Err(e) = tx.and_then(|tx| {
            write::part_attempts(&tx, id, number, attempts, next)?;
            Ok(tx.commit()?)
        }) {
            return self.db_failed(id, e);
        }
        if let Some(slot) = self.uploads.get_mut(&id).and_then(|t| t.part_mut(number)) {
            slot.attempts = attempts;
            slot.next_attempt_at = next;
        }
    }

    /// Part failures that are not retried as such: a refused URL is
    /// replaced (bounded), anything else fails the upload.
    pub(super) fn on_final_part_failure(
        &mut self,
        id: UploadId,
        number: u32,
        f: Failure,
        policy: &crate::config::RetryPolicy,
    ) {
        match f {
            Failure::UrlRejected { detail } => {
                let Some(t) = self.uploads.get_mut(&id) else {
                    return;
                };
                t.urls.remove(number);
                let Some(slot) = t.part_mut(number) else {
                    return;
                };
                slot.refreshes += 1;
                if slot.refreshes > policy.max_url_refreshes {
                    let n = slot.refreshes;
                    return self.fail(
                        id,
                        UploadError::new(
                            ErrorCode::StorageRejected,
                            format!(
                                "part {number}: {detail} (still refused after {} new URLs)",
                                n - 1
                            ),
                        ),
                    );
                }
                tracing::info!(
                    upload = id,
                    part = number,
                    "part URL refused, fetching a new one: {detail}"
                );
            }
            Failure::Auth { detail }
            | Failure::Transient { detail, .. }
            | Failure::Garbled { detail, .. } => {
                self.fail(id, UploadError::new(ErrorCode::StorageRejected, detail))
            }
            Failure::UploadGone { detail } => self.upload_gone(id, &detail),
            Failure::FileDenied(e) | Failure::Fatal(e) => self.fail(id, e),
        }
    }
}
