//! The clock presigned URL expiry runs on. It must keep counting while the
//! device sleeps: std's `Instant` does not (CLOCK_MONOTONIC on Linux and
//! Android, CLOCK_UPTIME_RAW on Apple platforms, both stopped during
//! suspend), so after a long sleep an expired URL would still look usable
//! and a whole part would be sent to be refused.
//! - Linux, Android: CLOCK_BOOTTIME, the monotonic clock plus suspend time.
//! - iOS, macOS: CLOCK_MONOTONIC, which on Darwin "will continue to
//!   increment while the system is asleep" (clock_gettime(3)).
//! - Elsewhere: `Instant` (no suspend-aware clock wired up).

use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// A reading of the suspend-aware clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct BootTime(Duration);

impl BootTime {
    pub(crate) fn now() -> BootTime {
        BootTime(read())
    }

    pub(crate) fn checked_add(self, d: Duration) -> Option<BootTime> {
        self.0.checked_add(d).map(BootTime)
    }

    pub(crate) fn saturating_duration_since(self, earlier: BootTime) -> Duration {
        self.0.saturating_sub(earlier.0)
    }

    /// A reading at `d` after the clock's origin (tests inject time).
    #[cfg(test)]
    pub(crate) fn at(d: Duration) -> BootTime {
        BootTime(d)
    }
}

#[cfg(any(target_os = "linux", target_os = "android"))]
const SUSPEND_AWARE: libc::clockid_t = libc::CLOCK_BOOTTIME;
#[cfg(target_vendor = "apple")]
const SUSPEND_AWARE: libc::clockid_t = libc::CLOCK_MONOTONIC;

#[cfg(any(target_os = "linux", target_os = "android", target_vendor = "apple"))]
fn os_clock() -> Option<Duration> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec the call only writes to.
    let rc = unsafe { libc::clock_gettime(SUSPEND_AWARE, &mut ts) };
    if rc != 0 {
        return None;
    }
    Some(Duration::new(
        u64::try_from(ts.tv_sec).ok()?,
        u32::try_from(ts.tv_nsec).ok()?,
    ))
}

#[cfg(not(any(target_os = "linux", target_os = "android", target_vendor = "apple")))]
fn os_clock() -> Option<Duration> {
    None
}

fn read() -> Duration {
    // Decided once, so readings never mix two clocks.
    static USE_OS: OnceLock<bool> = OnceLock::new();
    static ORIGIN: OnceLock<Instant> = OnceLock::new();
    if *USE_OS.get_or_init(|| os_clock().is_some()) {
        if let Some(d) = os_clock() {
            return d;
        }
    }
    ORIGIN.get_or_init(Instant::now).elapsed()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clock_moves_forward() {
        let a = BootTime::now();
        std::thread::sleep(Duration::from_millis(5));
        let b = BootTime::now();
        assert!(b > a);
        assert!(b.saturating_duration_since(a) > Duration::ZERO);
        assert_eq!(a.saturating_duration_since(b), Duration::ZERO);
    }
}
