//! Commands from the API (config, add, pause, resume, cancel, queries) and
//! the state changes they make: committed first, then reported.

use super::*;

impl Engine {
    pub(super) fn handle(&mut self, cmd: Command) {
        match cmd {
            Command::SetConfig(config, reply) => {
                let r = self.set_config(config);
                // The retention may have changed: apply it now.
                self.next_sweep = Instant::now();
                self.hold_if_network_refused();
                self.answer_when_durable(reply, r.map_err(Into::into));
            }
            Command::GetConfig(reply) => {
                let _ = reply.send(Ok(self.config.clone()));
            }
            Command::Add(file, reply) => {
                let r = self.add(file);
                self.answer_when_durable(reply, r.map_err(Into::into));
            }
            Command::Pause(sel, reply) => {
                let r = self.pause(&sel, None);
                self.answer_when_durable(reply, r.map_err(Into::into));
            }
            Command::Resume(sel, reply) => {
                let r = self.resume(&sel);
                self.answer_when_durable(reply, r.map_err(Into::into));
            }
            Command::Cancel(sel, reply) => {
                let r = self.cancel(&sel);
                self.answer_when_durable(reply, r.map_err(Into::into));
            }
            // Queries show ends only once they are durable and told.
            Command::List(sel, reply) => {
                let r = self.list(&sel);
                self.answer_after_ends(reply, r.map_err(Into::into));
            }
            Command::ListUnfinished(reply) => {
                let list = self
                    .uploads
                    .values()
                    .filter(|t| !t.row.state.is_final())
                    .map(Tracked::info)
                    .collect();
                self.answer_after_ends(reply, Ok(list));
            }
            Command::Summary(transfer, reply) => {
                let r = self.summary(transfer.as_deref());
                self.answer_after_ends(reply, r.map_err(Into::into));
            }
            Command::Forget(sel, reply) => {
                let r = self.forget(&sel);
                self.answer_when_durable(reply, r.map_err(Into::into));
            }
            Command::SetListener(l) => self.listener = l,
            Command::SetRunning(running, reply) => {
                if self.lifecycle_managed() {
                    // The reported facts decide; a legacy call would undo them.
                    tracing::warn!("start/suspend ignored: the platform reports its app state");
                    let _ = reply.send(Ok(()));
                    return;
                }
                if !running {
                    // Checkpoint: stop the network work; nothing committed changes.
                    self.stop_all_tasks();
                }
                self.running = running;
                self.changes.send_modify(|n| *n += 1);
                let _ = reply.send(Ok(()));
            }
            Command::SetNetwork(state) => {
                self.network = state;
                self.hold_if_network_refused();
                self.network_reported();
            }
            Command::Status(reply) => {
                // Start what is due first, so "nothing to do" is never a
                // report that was just committed but not acted on yet.
                self.schedule();
                if std::mem::take(&mut self.want_sync) {
                    // A complete waits for its ETags' sync: sync here (as
                    // an idle answer would anyway), so it goes out first.
                    self.flush_durable_now();
                    self.schedule();
                }
                let status = self.status();
                if status.idle_reason().is_some() {
                    // A background run ends on this answer: what it did is
                    // on storage and told before then (nothing waits on a
                    // sync when idle, so this costs no throughput).
                    self.flush_durable();
                }
                let _ = reply.send(Ok(status));
            }
            Command::Handoff(cmd) => self.handle_handoff(cmd),
            Command::Phone(cmd) => self.handle_phone(cmd),
            Command::SetProtectedData(available) => self.set_protected_data(available),
            Command::Inspect(f) => {
                // Events held for the sync come before the snapshot, as
                // they would have without the hold.
                self.flush_durable();
                let (list, summary) = match (self.list(&Selector::All), self.summary(None)) {
                    (Ok(l), Ok(s)) => (l, s),
                    (Err(e), _) | (_, Err(e)) => {
                        // The working set is still a consistent snapshot.
                        tracing::warn!("finished uploads unreadable for a snapshot: {e}");
                        let list = self.uploads.values().map(Tracked::info).collect();
                        (list, Summary::default())
                    }
                };
                f(list, summary);
            }
            // The next pass of the loop starts the parts that waited.
            Command::OpenerChanged => self.changes.send_modify(|n| *n += 1),
            Command::SetFileRoots(roots) => self.set_file_roots(roots),
            Command::UriReplaced { upload, from, to } => self.replace_uri(upload, &from, &to),
            // The loop handles it before dispatching here; answer anyway.
            Command::Shutdown(done) => {
                let _ = done.send(());
            }
        }
    }

    pub(super) fn network_allowed(&self) -> bool {
        let policy = self
            .config
            .as_ref()
            .map(|c| c.network_policy)
            .unwrap_or_default();
        self.network.allows(policy)
    }

    /// Stops the network work when the network (or the policy) no longer
    /// allows it: parts in flight are sent again later and no attempt is
    /// counted, so an hour offline fails nothing.
    pub(super) fn hold_if_network_refused(&mut self) {
        if !self.network_allowed() {
            self.stop_all_tasks();
        }
        self.changes.send_modify(|n| *n += 1);
    }

    pub(super) fn status(&self) -> EngineStatus {
        let mut s = EngineStatus {
            running: self.running,
            network: self.network,
            network_allowed: self.network_allowed(),
            db_commits: self.store.commits(),
            tracked: self.uploads.len() as u32,
            scheduler_passes: self.passes,
            ..EngineStatus::default()
        };
        self.handoff_status(&mut s);
        for t in self.uploads.values() {
            let state = t.row.state;
            if state.is_active() {
                s.active += 1;
                s.bytes_remaining += t.row.size.saturating_sub(t.uploaded_bytes());
                if t.unlock_wait.is_some() {
                    s.waiting_for_unlock += 1;
                }
            } else if state == UploadState::Paused {
                s.paused += 1;
                if t.row
                    .error
                    .as_ref()
                    .is_some_and(|e| e.code == ErrorCode::AuthRequired)
                {
                    s.auth_paused += 1;
                }
            }
        }
        s
    }

    pub(super) fn set_config(&mut self, config: Config) -> Result<()> {
        config.validate()?;
        let roots = |c: &Config| c.extra_root_certificates_pem.clone();
        if self.config.as_ref().map(roots) != Some(roots(&config)) {
            // New trust: requests from now on use a client built for it.
            self.http = crate::tls::http_client(&config.extra_root_certificates_pem)?;
        }
        self.store.save_config(&config)?;
        self.config = Some(config);
        self.reissue_off_policy();
        Ok(())
    }

    pub(super) fn add(&mut self, f: HashedFile) -> Result<UploadInfo> {
        let f = self.place_in_root(f);
        if self.config.is_none() {
            return Err(err(
                ErrorCode::InvalidConfig,
                "no configuration: call setConfig before adding files",
            ));
        }
        if let Some(id) = self.store.find_duplicate(&f.transfer_id, &f.file_hash)? {
            if let Some(t) = self.uploads.get(&id) {
                if t.row.state == UploadState::Failed {
                    return self.add_again(id, &f);
                }
                return Ok(t.info());
            }
            // Finished (completed): answered from the database.
            if let Some(row) = self.store.upload(id)? {
                return Ok(Tracked::new(row, Vec::new()).info());
            }
        }
        let tx = self.store.transaction()?;
        let id = write::insert_upload(
            &tx,
            &NewRow {
                transfer_id: &f.transfer_id,
                path: &f.location,
                file_name: &f.file_name,
                file_hash: &f.file_hash,
                size: f.stamp.size,
                mtime_ns: f.stamp.mtime_ns,
                user_params: &f.user_params,
                is_uri: f.is_uri,
                in_root: f.in_root,
            },
        )?;
        tx.commit()?;
        let row = self
            .store
            .upload(id)?
            .ok_or_else(|| err(ErrorCode::Internal, "inserted upload vanished"))?;
        let t = Tracked::new(row, Vec::new());
        let info = t.info();
        self.uploads.insert(id, t);
        self.notify_state(id);
        Ok(info)
    }

    pub(super) fn selected(&self, sel: &Selector) -> Result<Vec<UploadId>> {
        let ids: Vec<UploadId> = self
            .uploads
            .values()
            .filter(|t| t.matches(sel))
            .map(|t| t.row.id)
            .collect();
        if let Selector::Upload(id) = sel {
            // A finished upload is only in the database: nothing to change.
            if ids.is_empty() && self.store.upload(*id)?.is_none() {
                return Err(err(ErrorCode::NotFound, format!("no upload with id {id}")));
            }
        }
        Ok(ids)
    }

    /// Pauses the selected unfinished uploads; `reason` is set for auth pauses.
    /// One transaction for all of them: pausing a thousand uploads is one fsync.
    pub(super) fn pause(
        &mut self,
        sel: &Selector,
        reason: Option<UploadError>,
    ) -> Result<Vec<UploadInfo>> {
        let ids: Vec<UploadId> = self
            .selected(sel)?
            .into_iter()
            .filter(|id| self.uploads[id].row.state.is_active())
            .collect();
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let tx = self.store.transaction()?;
        for &id in &ids {
            write::set_state(&tx, id, UploadState::Paused, reason.as_ref())?;
        }
        tx.commit()?;
        let now = now_ms();
        let mut changed = Vec::with_capacity(ids.len());
        for id in ids {
            let t = self.uploads.get_mut(&id).expect("selected upload exists");
            t.row.state = UploadState::Paused;
            t.row.error = reason.clone();
            t.row.updated_at = now;
            self.stop_tasks_of(id);
            self.recall_handoffs(id);
            changed.push(self.uploads[&id].info());
            self.notify_state(id);
        }
        Ok(changed)
    }

    /// Resumes the selected PAUSED or FAILED uploads, in one transaction.
    pub(super) fn resume(&mut self, sel: &Selector) -> Result<Vec<UploadInfo>> {
        let mut next_states = Vec::new();
        for id in self.selected(sel)? {
            let t = &self.uploads[&id];
            if !matches!(t.row.state, UploadState::Paused | UploadState::Failed) {
                continue;
            }
            let next = if t.row.upload_id.is_none() {
                UploadState::Pending
            } else if t.parts_done > 0 {
                UploadState::Running
            } else {
                UploadState::Initialized
            };
            next_states.push((id, next));
        }
        if next_states.is_empty() {
            return Ok(Vec::new());
        }
        let tx = self.store.transaction()?;
        for &(id, next) in &next_states {
            write::reset_attempts(&tx, id)?;
            write::set_state(&tx, id, next, None)?;
        }
        tx.commit()?;
        let now = now_ms();
        let mut changed = Vec::with_capacity(next_states.len());
        for (id, next) in next_states {
            let t = self.uploads.get_mut(&id).expect("selected upload exists");
            t.row.state = next;
            t.row.error = None;
            t.row.attempts = 0;
            t.row.next_attempt_at = 0;
            t.row.updated_at = now;
            for p in &mut t.parts {
                p.attempts = 0;
                p.next_attempt_at = 0;
                p.refreshes = 0;
            }
            changed.push(t.info());
            self.notify_state(id);
        }
        Ok(changed)
    }

    /// Cancels the selected unfinished uploads, in one transaction.
    pub(super) fn cancel(&mut self, sel: &Selector) -> Result<Vec<UploadInfo>> {
        let abort_configured = self.config.as_ref().is_some_and(|c| c.abort_url.is_some());
        let mut aborts = Vec::new();
        for id in self.selected(sel)? {
            let t = &self.uploads[&id];
            if t.row.state.is_final() {
                continue;
            }
            let abort = if t.row.upload_id.is_some() && abort_configured {
                AbortState::Pending
            } else {
                AbortState::None
            };
            aborts.push((id, abort));
        }
        if aborts.is_empty() {
            return Ok(Vec::new());
        }
        let tx = self.store.transaction()?;
        for &(id, abort) in &aborts {
            write::set_state(&tx, id, UploadState::Cancelled, None)?;
            write::set_attempts(&tx, id, 0, 0)?;
            write::set_abort_state(&tx, id, abort)?;
        }
        tx.commit()?;
        let now = now_ms();
        let mut changed = Vec::with_capacity(aborts.len());
        for (id, abort) in aborts {
            self.stop_tasks_of(id);
            self.drop_handoffs(id);
            let t = self.uploads.get_mut(&id).expect("selected upload exists");
            t.row.state = UploadState::Cancelled;
            t.row.error = None;
            t.row.attempts = 0;
            t.row.next_attempt_at = 0;
            t.row.abort_state = abort;
            t.row.updated_at = now;
            t.urls.clear();
            changed.push(t.info());
            self.notify_state(id);
            self.retire_if_finished(id);
        }
        Ok(changed)
    }

    // ----- state changes: committed first, then reported -----

    pub(super) fn commit_state(
        &mut self,
        id: UploadId,
        state: UploadState,
        error: Option<&UploadError>,
    ) -> Result<()> {
        let tx = self.store.transaction()?;
        write::set_state(&tx, id, state, error)?;
        tx.commit()?;
        if let Some(t) = self.uploads.get_mut(&id) {
            t.row.state = state;
            t.row.error = error.cloned();
            t.row.updated_at = now_ms();
            // Any change of state ends a wait for the device's unlock.
            t.unlock_wait = None;
        }
        if matches!(state, UploadState::Failed | UploadState::Completed) {
            self.drop_handoffs(id);
            self.phone.count_end(state);
        }
        Ok(())
    }

    pub(super) fn notify_state(&mut self, id: UploadId) {
        let Some(t) = self.uploads.get(&id) else {
            self.changes.send_modify(|n| *n += 1);
            return;
        };
        let info = t.info();
        let is_end = matches!(
            info.state,
            UploadState::Completed | UploadState::Failed | UploadState::Cancelled
        );
        if !is_end && !self.events_held(id) {
            self.changes.send_modify(|n| *n += 1);
            if let Some(l) = &self.listener {
                l.on_event(&UploadEvent::StateChanged(info));
            }
            return;
        }
        // An end is told once it is on storage: the app may act on it
        // (delete the photo) and must not find it undone after a power cut.
        // A later change of the same upload is told after it, in order.
        let listener = self.listener.clone();
        let changes = self.changes.clone();
        if is_end {
            self.ends_after_sync = true;
        }
        self.held_events.insert(id);
        self.after_sync.push(Box::new(move |_| {
            changes.send_modify(|n| *n += 1);
            if let Some(l) = listener {
                l.on_event(&UploadEvent::StateChanged(info));
            }
        }));
    }

    /// Sets the upload FAILED with `error`. If even that cannot be committed,
    /// the failure is still applied in memory (and reported) so nothing spins.
    pub(super) fn fail(&mut self, id: UploadId, error: UploadError) {
        tracing::warn!(upload = id, code = %error.code, "upload failed: {}", error.message);
        self.stop_tasks_of(id);
        if let Err(e) = self.commit_state(id, UploadState::Failed, Some(&error)) {
            tracing::error!(upload = id, "cannot record the failure: {e}");
            if let Some(t) = self.uploads.get_mut(&id) {
                t.row.state = UploadState::Failed;
                t.row.error = Some(error);
            }
        }
        self.notify_state(id);
    }

    pub(super) fn db_failed(&mut self, id: UploadId, e: crate::error::Error) {
        self.fail(id, e.into());
    }
}
