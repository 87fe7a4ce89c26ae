//! Files protected while the device is locked (iOS data protection: `open`
//! answers EPERM/EACCES until the person unlocks it). The platform reports
//! whether protected data is available; an upload whose file is refused
//! while it is not waits instead of failing, with no attempt counted, and
//! goes on when it becomes available (or after the retry policy's backoff,
//! should that report never come). A refusal while it is available is the
//! failure it always was.

use super::*;

/// A waiting upload is tried again at least this long after a refusal,
/// whatever the jitter gives: a refused open costs an opener call.
const RETRY_FLOOR: Duration = Duration::from_secs(1);

/// The platform's fact, with a count of its changes: an attempt begun under
/// another count may have met the locked device, even if it is unlocked now.
#[derive(Debug)]
pub(super) struct Protected {
    available: bool,
    changes: u64,
}

impl Default for Protected {
    /// Available until told otherwise (Android never tells).
    fn default() -> Self {
        Protected {
            available: true,
            changes: 0,
        }
    }
}

impl Protected {
    /// What an attempt records when it begins.
    pub(super) fn stamp(&self) -> u64 {
        self.changes
    }

    /// Whether a refusal met by an attempt begun at `stamp` may be the
    /// lock's: protected data is unavailable now, or was at some point since.
    pub(super) fn refusal_is_not_now(&self, stamp: u64) -> bool {
        !self.available || self.changes != stamp
    }
}

/// An upload whose file was refused while protected data was unavailable.
#[derive(Clone, Copy, Debug)]
pub(super) struct UnlockWait {
    /// Tried again then (wall-clock ms) even without a report.
    retry_at_ms: i64,
    /// Refusals in a row: the backoff grows with them.
    refusals: u32,
    /// The first task ticket after the wait began: a part read by one of
    /// these shows the file readable (one begun before may have opened it
    /// before the lock).
    from_ticket: u64,
}

impl Tracked {
    /// Its parts wait for protected data (or for the backoff to pass).
    pub(super) fn waits_for_unlock(&self, now_ms: i64) -> bool {
        self.unlock_wait.is_some_and(|w| w.retry_at_ms > now_ms)
    }

    /// When its wait ends by itself, if it waits.
    pub(super) fn unlock_retry_at(&self) -> Option<i64> {
        self.unlock_wait.map(|w| w.retry_at_ms)
    }
}

impl Engine {
    /// The platform reports whether files protected while the device is
    /// locked can be read. Becoming available wakes every upload that
    /// waited for it.
    pub(super) fn set_protected_data(&mut self, available: bool) {
        if self.protected.available == available {
            return;
        }
        self.protected.available = available;
        self.protected.changes += 1;
        tracing::info!(available, "protected data availability reported");
        if available {
            let waiting: Vec<UploadId> = self
                .uploads
                .iter()
                .filter(|(_, t)| t.unlock_wait.is_some())
                .map(|(&id, _)| id)
                .collect();
            for id in waiting {
                self.unlock_wait_over(id);
            }
        }
        self.changes.send_modify(|n| *n += 1);
    }

    /// Whether a refusal of `id`'s file met by an attempt begun at `stamp`
    /// makes it wait rather than fail.
    pub(super) fn refusal_waits(&self, id: UploadId, stamp: u64) -> bool {
        self.protected.refusal_is_not_now(stamp)
            && self.uploads.get(&id).is_some_and(|t| {
                matches!(t.row.state, UploadState::Initialized | UploadState::Running)
            })
    }

    /// `id`'s file was refused while protected data was unavailable: its
    /// parts wait, no attempt is counted, and its record says why.
    pub(super) fn wait_for_unlock(&mut self, id: UploadId, refused: UploadError) {
        let policy = self
            .config
            .as_ref()
            .map(|c| c.retry.clone())
            .unwrap_or_default();
        let Some(t) = self.uploads.get_mut(&id) else {
            return;
        };
        let first = t.unlock_wait.is_none();
        let refusals = t.unlock_wait.map_or(0, |w| w.refusals).saturating_add(1);
        let from_ticket = t.unlock_wait.map_or(self.next_ticket, |w| w.from_ticket);
        let delay = policy.backoff(refusals, None).max(RETRY_FLOOR);
        t.unlock_wait = Some(UnlockWait {
            retry_at_ms: now_ms()
                .saturating_add(i64::try_from(delay.as_millis()).unwrap_or(i64::MAX)),
            refusals,
            from_ticket,
        });
        tracing::info!(
            upload = id,
            refusals,
            "file refused while protected data is unavailable; waiting"
        );
        if first {
            // In memory only: after a restart the fact is reported again.
            t.row.error = Some(UploadError::new(
                ErrorCode::FileUnreadable,
                format!(
                    "waiting for the device to be unlocked: {} (files protected while it is \
                     locked); the upload goes on by itself once it is",
                    refused.message
                ),
            ));
            self.notify_state(id);
        } else {
            // A run waiting for "idle" looks again.
            self.changes.send_modify(|n| *n += 1);
        }
    }

    /// Whether the task `ticket` of `id` began after `id` started waiting
    /// for an unlock.
    pub(super) fn read_since_unlock_wait(&self, id: UploadId, ticket: u64) -> bool {
        self.uploads
            .get(&id)
            .and_then(|t| t.unlock_wait)
            .is_some_and(|w| ticket >= w.from_ticket)
    }

    /// `id` no longer waits for protected data (it became available, or a
    /// part went through): its parts go on and its record says nothing.
    pub(super) fn unlock_wait_over(&mut self, id: UploadId) {
        let Some(t) = self.uploads.get_mut(&id) else {
            return;
        };
        if t.unlock_wait.take().is_none() {
            return;
        }
        if t.row.state.is_active() {
            t.row.error = None;
            self.notify_state(id);
        }
    }

    /// Handles a failed check of `id`'s file before its parts go out: a
    /// refusal while protected data is unavailable waits, anything else fails.
    pub(super) fn file_check_failed(&mut self, id: UploadId, e: crate::error::Error) {
        match e {
            crate::error::Error::FileDenied(refused)
                if self.refusal_waits(id, self.protected.stamp()) =>
            {
                self.wait_for_unlock(id, refused)
            }
            e => self.fail(id, e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_waits_while_unavailable_or_if_it_changed_since() {
        let mut p = Protected::default();
        let before = p.stamp();
        assert!(!p.refusal_is_not_now(before), "available, unchanged: final");
        p.available = false;
        p.changes += 1;
        assert!(p.refusal_is_not_now(before));
        assert!(p.refusal_is_not_now(p.stamp()));
        // Unlocked again before the attempt's answer came back: the
        // refusal may have been the lock's.
        p.available = true;
        p.changes += 1;
        assert!(p.refusal_is_not_now(before));
        assert!(!p.refusal_is_not_now(p.stamp()));
    }

    #[test]
    fn permission_denied_on_a_path_is_told_apart() {
        // What open(2) gives for a protected file on a locked iOS device.
        for errno in [libc::EPERM, libc::EACCES] {
            let io = std::io::Error::from_raw_os_error(errno);
            assert_eq!(io.kind(), std::io::ErrorKind::PermissionDenied);
            let e = crate::hash::file_error(std::path::Path::new("/data/clip.mov"), &io);
            let crate::error::Error::FileDenied(public) = &e else {
                panic!("not told apart: {e:?}");
            };
            assert_eq!(public.code, ErrorCode::FileUnreadable);
            // Outside the engine it is the failure it always was.
            let public: UploadError = e.into();
            assert_eq!(public.code, ErrorCode::FileUnreadable);
            assert!(
                public.message.contains("permission denied"),
                "{}",
                public.message
            );
            let f: Failure = crate::hash::file_error(std::path::Path::new("/x"), &io).into();
            assert!(matches!(f, Failure::FileDenied(_)), "{f:?}");
        }
        // Other errors are not refusals.
        let gone = std::io::Error::from_raw_os_error(libc::ENOENT);
        let e = crate::hash::file_error(std::path::Path::new("/x"), &gone);
        assert!(!matches!(e, crate::error::Error::FileDenied(_)), "{e:?}");
        let io = std::io::Error::from_raw_os_error(libc::EIO);
        let f: Failure = crate::hash::file_error(std::path::Path::new("/x"), &io).into();
        assert!(matches!(f, Failure::Fatal(_)), "{f:?}");
    }
}
