//! Stored waits (next attempt times) are wall-clock times, so they survive a
//! restart. A wall clock moved back, or a far-future time found in the
//! database, must not park an upload longer than the retry policy allows:
//! every stored wait is held to the policy's longest wait when it is read.

use super::*;

/// Tolerance before a wall clock running behind the monotonic one counts as
/// moved back (ordinary NTP slewing stays far below it).
const JUMP_TOLERANCE_MS: i64 = 1_000;

/// The wall clock as last seen, beside the monotonic clock.
#[derive(Clone, Copy, Debug)]
pub(super) struct ClockWatch {
    mono: Instant,
    wall_ms: i64,
}

impl ClockWatch {
    pub(super) fn now() -> ClockWatch {
        ClockWatch {
            mono: Instant::now(),
            wall_ms: now_ms(),
        }
    }

    /// True when the wall clock advanced less than the monotonic one since
    /// `self` (it was set back). A device asleep only moves the wall clock
    /// ahead of the monotonic one, which is no jump back.
    pub(super) fn moved_back(&self, now: &ClockWatch) -> bool {
        let mono =
            i64::try_from(now.mono.duration_since(self.mono).as_millis()).unwrap_or(i64::MAX);
        now.wall_ms.saturating_sub(self.wall_ms) < mono.saturating_sub(JUMP_TOLERANCE_MS)
    }
}

/// `at` held to at most `longest` after `now` (all in wall-clock ms).
pub(super) fn bounded(at: i64, now: i64, longest: Duration) -> i64 {
    let longest = i64::try_from(longest.as_millis()).unwrap_or(i64::MAX);
    at.min(now.saturating_add(longest))
}

impl Engine {
    /// At load, and whenever the wall clock was set back: holds every stored
    /// next-attempt time to the policy's longest wait from now. In memory;
    /// the next write of the row stores a fresh value.
    pub(super) fn bound_waits_if_needed(&mut self, force: bool) {
        let now = ClockWatch::now();
        let moved_back = self.clock.moved_back(&now);
        self.clock = now;
        if !(force || moved_back) {
            return;
        }
        let longest = self
            .config
            .as_ref()
            .map(|c| c.retry.longest_wait())
            .unwrap_or_else(|| crate::config::RetryPolicy::default().longest_wait());
        let mut held = 0usize;
        for t in self.uploads.values_mut() {
            if t.row.state == UploadState::Completed {
                continue;
            }
            let at = bounded(t.row.next_attempt_at, now.wall_ms, longest);
            held += usize::from(at != t.row.next_attempt_at);
            t.row.next_attempt_at = at;
            for p in &mut t.parts {
                let at = bounded(p.next_attempt_at, now.wall_ms, longest);
                held += usize::from(at != p.next_attempt_at);
                p.next_attempt_at = at;
            }
        }
        if held > 0 {
            tracing::warn!(
                held,
                "stored retry times lay beyond the retry policy (clock set back?): held to it"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clock_set_back_is_seen_and_sleep_is_not() {
        let before = ClockWatch::now();
        let mut later = before;
        later.mono = before.mono + Duration::from_secs(10);
        // Wall clock moved with the monotonic one: nothing.
        later.wall_ms = before.wall_ms + 10_000;
        assert!(!before.moved_back(&later));
        // Asleep: wall clock far ahead of the monotonic one.
        later.wall_ms = before.wall_ms + 3_600_000;
        assert!(!before.moved_back(&later));
        // Set back by a day.
        later.wall_ms = before.wall_ms - 86_400_000;
        assert!(before.moved_back(&later));
    }

    #[test]
    fn waits_are_held_to_the_longest() {
        let long = Duration::from_secs(600);
        assert_eq!(bounded(5_000, 1_000, long), 5_000);
        assert_eq!(bounded(i64::MAX, 1_000, long), 601_000);
        assert_eq!(bounded(0, 1_000, long), 0);
    }
}
