//! An upload as the engine tracks it: its stored row plus live state.

use super::*;

#[derive(Clone, Debug, Default)]
pub(super) struct PartSlot {
    pub(super) etag: Option<String>,
    pub(super) attempts: u32,
    pub(super) next_attempt_at: i64,
    /// URL refreshes in a row after 403s (in memory: bounded per process).
    pub(super) refreshes: u32,
    /// Bytes sent by the PUT in flight, if one is.
    pub(super) in_flight: Option<Arc<AtomicU64>>,
    /// A task for this part is with the platform's transport (hand-off).
    pub(super) handed_off: bool,
    /// Its file is being staged for hand-off.
    pub(super) staging: bool,
}

impl PartSlot {
    /// Needs a PUT that nobody is doing: not done, not in flight, not
    /// handed off or being staged for it.
    pub(super) fn open(&self) -> bool {
        self.etag.is_none() && self.in_flight.is_none() && !self.handed_off && !self.staging
    }
}

/// An upload as the engine tracks it: the stored row plus live state.
pub(super) struct Tracked {
    pub(super) row: UploadRow,
    pub(super) parts: Vec<PartSlot>,
    pub(super) urls: UrlCache,
    /// Backend calls in flight for this upload (at most one of each kind).
    pub(super) busy: BTreeSet<TaskKindTag>,
    pub(super) done_bytes: u64,
    pub(super) parts_done: u32,
    pub(super) last_progress: Option<(Instant, u64)>,
    /// User param values, kept out of messages.
    pub(super) secrets: Vec<String>,
    /// The commit count right after this upload's last ETag was committed
    /// here (0: none since the queue was opened): complete waits until it
    /// is synced.
    pub(super) etags_commit: u64,
    /// Its file was refused while the device's protected data was
    /// unavailable: its parts wait (`protected.rs`).
    pub(super) unlock_wait: Option<super::protected::UnlockWait>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum TaskKindTag {
    Start,
    Urls,
    Complete,
    Abort,
}

pub(crate) fn part_len(size: u64, part_size: u64, number: u32) -> u64 {
    let offset = (u64::from(number) - 1) * part_size;
    size.saturating_sub(offset).min(part_size)
}

impl Tracked {
    pub(super) fn new(row: UploadRow, stored_parts: Vec<PartRow>) -> Tracked {
        let secrets = crate::redact::param_secrets(&row.user_params);
        let mut t = Tracked {
            row,
            parts: Vec::new(),
            urls: UrlCache::default(),
            busy: BTreeSet::new(),
            done_bytes: 0,
            parts_done: 0,
            last_progress: None,
            secrets,
            etags_commit: 0,
            unlock_wait: None,
        };
        t.set_parts(stored_parts);
        t
    }

    pub(super) fn set_parts(&mut self, stored: Vec<PartRow>) {
        self.parts = stored
            .into_iter()
            .map(|p| PartSlot {
                etag: p.etag,
                attempts: p.attempts,
                next_attempt_at: p.next_attempt_at,
                refreshes: 0,
                in_flight: None,
                handed_off: false,
                staging: false,
            })
            .collect();
        self.recount();
    }

    pub(super) fn recount(&mut self) {
        let part_size = self.row.part_size.unwrap_or(0);
        self.parts_done = 0;
        self.done_bytes = 0;
        for (i, p) in self.parts.iter().enumerate() {
            if p.etag.is_some() {
                self.parts_done += 1;
                self.done_bytes += part_len(self.row.size, part_size, i as u32 + 1);
            }
        }
        if self.row.state == UploadState::Completed {
            self.done_bytes = self.row.size;
            self.parts_done = self.row.parts_total;
        }
    }

    /// Part `n`'s slot (numbers start at 1). `None` for a number the
    /// upload does not have (now): outcomes may name parts of a multipart
    /// upload that was dropped since, and must find nothing, not panic.
    pub(super) fn part(&self, n: u32) -> Option<&PartSlot> {
        self.parts.get(usize::try_from(n.checked_sub(1)?).ok()?)
    }

    pub(super) fn part_mut(&mut self, n: u32) -> Option<&mut PartSlot> {
        self.parts.get_mut(usize::try_from(n.checked_sub(1)?).ok()?)
    }

    pub(super) fn in_flight_bytes(&self) -> u64 {
        self.parts
            .iter()
            .filter_map(|p| p.in_flight.as_ref())
            .map(|c| c.load(Ordering::Relaxed))
            .sum()
    }

    pub(super) fn uploaded_bytes(&self) -> u64 {
        (self.done_bytes + self.in_flight_bytes()).min(self.row.size)
    }

    pub(super) fn parts_in_flight(&self) -> usize {
        self.parts.iter().filter(|p| p.in_flight.is_some()).count()
    }

    pub(super) fn all_parts_done(&self) -> bool {
        self.row.parts_total > 0 && self.parts_done == self.row.parts_total
    }

    pub(super) fn info(&self) -> UploadInfo {
        let r = &self.row;
        UploadInfo {
            id: r.id,
            transfer_id: r.transfer_id.clone(),
            path: r.shown_path().to_owned(),
            file_name: r.file_name.clone(),
            file_hash: r.file_hash.clone(),
            size: r.size,
            state: r.state,
            key: r.key.clone(),
            upload_id: r.upload_id.clone(),
            part_size: r.part_size,
            parts_total: r.parts_total,
            parts_done: self.parts_done,
            uploaded_bytes: self.uploaded_bytes(),
            error: r.error.clone(),
            created_at_ms: r.created_at,
            updated_at_ms: r.updated_at,
        }
    }

    pub(super) fn progress(&self) -> Progress {
        Progress {
            id: self.row.id,
            transfer_id: self.row.transfer_id.clone(),
            uploaded_bytes: self.uploaded_bytes(),
            total_bytes: self.row.size,
            parts_done: self.parts_done,
            parts_total: self.row.parts_total,
        }
    }

    pub(super) fn matches(&self, sel: &Selector) -> bool {
        match sel {
            Selector::All => true,
            Selector::Upload(id) => self.row.id == *id,
            Selector::Transfer(t) => &self.row.transfer_id == t,
        }
    }

    /// Nothing more will happen to it: completed, or cancelled with no
    /// abort call left. Such uploads leave the engine's working set.
    pub(super) fn finished(&self) -> bool {
        match self.row.state {
            UploadState::Completed => true,
            UploadState::Cancelled => self.row.abort_state != AbortState::Pending,
            _ => false,
        }
    }

    pub(super) fn due(&self, now: i64) -> bool {
        self.row.next_attempt_at <= now
    }
}

pub(super) fn load_tracked(store: &Store) -> Result<BTreeMap<UploadId, Tracked>> {
    let mut uploads = BTreeMap::new();
    for row in store.uploads()? {
        let parts = if row.state == UploadState::Completed {
            Vec::new()
        } else {
            store.parts(row.id)?
        };
        uploads.insert(row.id, Tracked::new(row, parts));
    }
    Ok(uploads)
}

/// What the first pass of an opened queue needs: every upload already begun
/// and the first `pending` not begun; with the id after which more pending
/// ones may wait (loaded by [`load_pending_after`] once the first calls are
/// out, so a long queue does not delay them).
pub(super) fn load_unfinished_head(
    store: &Store,
    pending: usize,
) -> Result<(BTreeMap<UploadId, Tracked>, Option<UploadId>)> {
    let mut parts = store.unfinished_parts()?;
    let (rows, more) = store.unfinished_head(pending)?;
    let uploads = rows
        .into_iter()
        .map(|row| {
            let parts = parts.remove(&row.id).unwrap_or_default();
            (row.id, Tracked::new(row, parts))
        })
        .collect();
    Ok((uploads, more))
}

/// The uploads not begun after `after`, in queue order.
pub(super) fn load_pending_after(
    store: &Store,
    after: UploadId,
) -> Result<BTreeMap<UploadId, Tracked>> {
    let mut parts = store.unfinished_parts()?;
    Ok(store
        .pending_after(Some(after), None)?
        .into_iter()
        .map(|row| {
            let parts = parts.remove(&row.id).unwrap_or_default();
            (row.id, Tracked::new(row, parts))
        })
        .collect())
}
