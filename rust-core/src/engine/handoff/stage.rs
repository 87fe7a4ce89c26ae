//! Staging runs off the engine's task: a task copies the part on a blocking
//! thread and its end comes back as an outcome, like a PUT's. An opener
//! that blocks for minutes (an iCloud file not downloaded yet) holds that
//! part, never the engine: commands, reports and suspension are served
//! meanwhile, and the stall timeout ends the wait as a failed attempt.

use super::*;
use crate::staging::{stage_part, StageError, StageJob, StagedFile};

impl Engine {
    /// Starts staging part `n` of `id` (`len` bytes of `src`). Its bytes
    /// are taken from the budget until the staging ends.
    pub(super) fn spawn_stage(&mut self, id: UploadId, n: u32, len: u64, src: Arc<PartFile>) {
        let stall_timeout = self
            .config
            .as_ref()
            .map_or(crate::transfer::STALL_TIMEOUT, |c| c.retry.stall_timeout());
        let Some(t) = self.uploads.get_mut(&id) else {
            return;
        };
        let offset = (u64::from(n) - 1) * t.row.part_size.unwrap_or(0);
        let Some(slot) = t.part_mut(n) else {
            return;
        };
        slot.staging = true;
        let task_id = format!("s3bgu-{id}-{n}-{:016x}", rand::random::<u64>());
        let job = StageJob {
            dir: self.handoff.staging.dir().to_path_buf(),
            src,
            offset,
            len,
            name: format!("{task_id}.part"),
            pool: self.chunks.clone(),
            stall_timeout,
        };
        self.handoff.staging.reserve(len);
        let ticket = self.spawn(id, TaskKind::Stage(n), async move {
            let result = stage_part(job).await;
            Outcome::Staged {
                number: n,
                task_id,
                len,
                result,
            }
        });
        self.handoff.stage_jobs.insert(ticket, len);
    }

    /// The task with `ticket` ended or was stopped: if it was a staging,
    /// its bytes go back to the budget (a kept file is counted again).
    pub(in crate::engine) fn end_stage_job(&mut self, ticket: u64) {
        if let Some(len) = self.handoff.stage_jobs.remove(&ticket) {
            self.handoff.staging.unreserve(len);
        }
    }

    /// A staging ended. Its file is handed off if the engine still wants
    /// it (the upload runs, hand-off is on, the part is still open and has
    /// a URL); otherwise it is dropped, which deletes it.
    pub(in crate::engine) fn on_staged(
        &mut self,
        id: UploadId,
        n: u32,
        task_id: String,
        len: u64,
        result: std::result::Result<StagedFile, StageError>,
    ) {
        let Some(t) = self.uploads.get(&id) else {
            return;
        };
        let running = matches!(t.row.state, UploadState::Initialized | UploadState::Running);
        let staged = match result {
            Ok(staged) => staged,
            Err(e) if running => return self.on_stage_failure(id, n, e),
            // Paused, failed or cancelled meanwhile: nothing to count.
            Err(_) => return,
        };
        let wanted = running
            && (self.handoff_active() || self.prehandoff_active())
            && t.part(n).is_some_and(|p| p.open());
        let url = t
            .urls
            .usable(n, BootTime::now())
            .filter(|_| wanted)
            .map(str::to_string);
        let Some(url) = url else {
            tracing::debug!(
                upload = id,
                part = n,
                "staged part no longer wanted; deleted"
            );
            return;
        };
        self.handoff.staging.adopt(len);
        self.hand_over(id, n, len, task_id, url, staged.keep());
    }

    fn on_stage_failure(&mut self, id: UploadId, n: u32, e: StageError) {
        match e {
            StageError::Stalled(detail) => {
                self.on_part_failure(id, n, crate::transfer::file_stalled(detail))
            }
            StageError::NoSpace if !self.handoff.tasks.is_empty() => {
                // Staged parts will be deleted as their reports come in.
                tracing::warn!(upload = id, part = n, "disk full while staging; waiting");
                self.handoff.no_space = true;
            }
            StageError::NoSpace => self.fail(
                id,
                UploadError::new(
                    ErrorCode::Database,
                    format!(
                        "no space left on the device to stage part {n} for the \
                         background upload; free some space, then resume"
                    ),
                ),
            ),
            StageError::Source(e) => self.fail(id, e.into()),
            StageError::Dest(e) => self.fail(
                id,
                UploadError::new(
                    ErrorCode::Database,
                    format!("cannot write the staging folder: {e}"),
                ),
            ),
        }
    }
}
