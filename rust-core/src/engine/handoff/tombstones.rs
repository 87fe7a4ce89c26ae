//! Tasks the engine stops holding: withdrawn (cancelled at the platform),
//! finished, or lost across a relaunch; and tombstones, which let a report
//! that comes after all still count.

use super::*;

impl Engine {
    /// The report of a task called lost: a 2xx counts if its part is still
    /// open (or handed off again) on the same multipart upload; anything
    /// else changes nothing, the part having been sent again.
    pub(super) fn on_late_report(&mut self, task_id: &str, stone: Tombstone, outcome: TaskOutcome) {
        let tx = self.store.transaction();
        if let Err(e) = tx.and_then(|tx| {
            delete_tombstone(&tx, task_id)?;
            Ok(tx.commit()?)
        }) {
            tracing::error!(task = %task_id, "cannot delete a tombstone: {e}");
        }
        let Ok(etag) = task_failure(outcome) else {
            return;
        };
        let open = self.uploads.get(&stone.upload).is_some_and(|t| {
            t.row.upload_id.as_deref() == Some(stone.multipart.as_str())
                && t.part(stone.number).is_some_and(|p| p.etag.is_none())
        });
        if !open {
            return;
        }
        tracing::info!(
            upload = stone.upload,
            part = stone.number,
            "late report of a lost task counts"
        );
        self.on_part(stone.upload, stone.number, Ok(etag));
        let done = self
            .uploads
            .get(&stone.upload)
            .and_then(|t| t.part(stone.number))
            .is_some_and(|p| p.etag.is_some());
        if !done {
            return;
        }
        // The part's second task is not needed any more.
        let again: Vec<String> = self
            .handoff
            .tasks
            .iter()
            .filter(|(_, t)| {
                t.upload == stone.upload
                    && t.number == stone.number
                    && t.multipart.as_deref() == Some(stone.multipart.as_str())
            })
            .map(|(k, _)| k.clone())
            .collect();
        for id in again {
            self.withdraw_task(&id, false);
        }
    }

    /// Cancels a held task at the platform and forgets it (row, file, the
    /// part's hand-off mark); as a tombstone with `entomb`, for a task that
    /// may have ended before the cancel reached it.
    pub(in crate::engine) fn withdraw_task(&mut self, task_id: &str, entomb: bool) {
        let Some(task) = self.handoff.tasks.remove(task_id) else {
            return;
        };
        if entomb {
            self.entomb(task_id, &task);
        }
        if let Some(transport) = self.handoff.transport.clone() {
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                transport.cancel(task_id)
            }));
        }
        if let Some(p) = self
            .uploads
            .get_mut(&task.upload)
            .filter(|t| t.row.upload_id == task.multipart)
            .and_then(|t| t.part_mut(task.number))
        {
            p.handed_off = false;
        }
        self.forget_task(task_id, &task);
    }

    /// A part was committed: the tombstones of its lost tasks go.
    pub(in crate::engine) fn part_committed(&mut self, id: UploadId, number: u32) {
        let stones: Vec<String> = self
            .handoff
            .tombstones
            .iter()
            .filter(|(_, s)| s.upload == id && s.number == number)
            .map(|(k, _)| k.clone())
            .collect();
        self.bury(&stones);
    }

    /// Deletes these tombstones.
    pub(super) fn bury(&mut self, stones: &[String]) {
        if stones.is_empty() {
            return;
        }
        for k in stones {
            self.handoff.tombstones.remove(k);
        }
        let tx = self.store.transaction();
        if let Err(e) = tx.and_then(|tx| {
            for k in stones {
                delete_tombstone(&tx, k)?;
            }
            Ok(tx.commit()?)
        }) {
            tracing::error!("cannot delete tombstones: {e}");
        }
    }

    pub(super) fn forget_task(&mut self, task_id: &str, task: &HandedTask) {
        let tx = self.store.transaction();
        if let Err(e) = tx.and_then(|tx| {
            delete_task(&tx, task_id)?;
            Ok(tx.commit()?)
        }) {
            tracing::error!(task = %task_id, "cannot delete a finished task: {e}");
        }
        self.handoff.staging.release(&task.path, task.len);
        self.handoff.no_space = false;
    }

    /// The platform's live tasks after a relaunch: held tasks it does not
    /// have were lost and their parts are sent again (no attempt counted),
    /// but a report of one that comes later still counts (tombstones);
    /// returns the live ids the engine does not hold (to cancel).
    pub(in crate::engine) fn reconcile(&mut self, live: Vec<String>) -> Vec<String> {
        let live: HashSet<String> = live.into_iter().collect();
        let lost: Vec<String> = self
            .handoff
            .tasks
            .keys()
            .filter(|k| !live.contains(*k))
            .cloned()
            .collect();
        for task_id in lost {
            if let Some(task) = self.handoff.tasks.remove(&task_id) {
                tracing::info!(
                    upload = task.upload,
                    part = task.number,
                    "handed-off task lost; sending again"
                );
                if let Some(p) = self
                    .uploads
                    .get_mut(&task.upload)
                    .filter(|t| t.row.upload_id == task.multipart)
                    .and_then(|t| t.part_mut(task.number))
                {
                    p.handed_off = false;
                }
                self.entomb(&task_id, &task);
                self.forget_task(&task_id, &task);
            }
        }
        let mut unknown: Vec<String> = live
            .into_iter()
            .filter(|k| !self.handoff.tasks.contains_key(k))
            .collect();
        unknown.sort();
        unknown
    }

    /// Keeps a task the engine stops waiting for as a tombstone, so that a
    /// report of it that comes after all still counts.
    pub(super) fn entomb(&mut self, task_id: &str, task: &HandedTask) {
        let Some(multipart) = task.multipart.clone() else {
            return;
        };
        let row = TombstoneRow {
            task_id: task_id.to_string(),
            upload: task.upload,
            number: task.number,
            multipart_upload: multipart.clone(),
        };
        let tx = self.store.transaction();
        if let Err(e) = tx.and_then(|tx| {
            insert_tombstone(&tx, &row)?;
            Ok(tx.commit()?)
        }) {
            // Only costs the part being sent twice.
            tracing::error!(task = %task_id, "cannot keep a tombstone: {e}");
        }
        self.handoff.tombstones.insert(
            task_id.to_string(),
            Tombstone {
                upload: task.upload,
                number: task.number,
                multipart,
            },
        );
    }
}
