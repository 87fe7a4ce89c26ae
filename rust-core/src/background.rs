//! What a background task (Android job, iOS background task) needs from the
//! engine: the network the platform reports, a status to decide whether there
//! is anything left to run, and why a run ended.

use serde::{Deserialize, Serialize};

/// Which networks parts may be sent on. Stored with the configuration.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum NetworkPolicy {
    /// Any network that is online.
    #[default]
    Any,
    /// Only unmetered networks (Wi-Fi, Ethernet): on a metered one the engine
    /// holds its uploads until the platform reports an unmetered network.
    UnmeteredOnly,
}

/// The network as the platform sees it. The engine cannot see the network
/// itself: it assumes online and unmetered until told otherwise.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct NetworkState {
    pub online: bool,
    /// Charged by the byte (mobile data, a hotspot).
    pub metered: bool,
}

impl Default for NetworkState {
    fn default() -> Self {
        NetworkState {
            online: true,
            metered: false,
        }
    }
}

impl NetworkState {
    /// Whether uploads may use this network under `policy`.
    pub fn allows(self, policy: NetworkPolicy) -> bool {
        self.online && !(self.metered && policy == NetworkPolicy::UnmeteredOnly)
    }
}

/// The engine's view of its own work, taken in one step.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EngineStatus {
    /// False after `stop`/`suspend` until `start`/`run_until_idle`.
    pub running: bool,
    pub network: NetworkState,
    /// The configured policy allows the reported network.
    pub network_allowed: bool,
    /// Uploads PENDING, INITIALIZED or RUNNING.
    pub active: u32,
    /// PAUSED uploads, including those paused for `auth_required`.
    pub paused: u32,
    /// PAUSED uploads waiting for new headers (`auth_required`).
    pub auth_paused: u32,
    /// Bytes the active uploads still have to send (parts in flight count
    /// as sent so far). Paused and failed uploads are not counted: a
    /// background task will not send them.
    pub bytes_remaining: u64,
    /// Write transactions committed to the queue database since it was
    /// opened (each is one WAL append and one fsync).
    pub db_commits: u64,
    /// Parts go to the platform's transport (hand-off mode with a transport).
    pub handoff: bool,
    /// Tasks with the platform's transport now.
    pub tasks_handed_off: u32,
    /// Tasks handed off since the engine was opened.
    pub tasks_handed_off_total: u64,
    /// Bytes of staged part files now (with the bytes of stagings under
    /// way, which hold their share of the budget), and at most since open.
    pub staged_bytes: u64,
    pub staging_peak: u64,
    /// The engine has requests or staging of its own in progress.
    pub engine_busy: bool,
    /// Active uploads whose file was refused while the device's protected
    /// data was unavailable: they wait for it (`set_protected_data_available`).
    pub waiting_for_unlock: u32,
    /// Uploads held in the engine's working set (every one but the
    /// finished ones): the scheduler's work per event grows with this.
    pub tracked: u32,
    /// Turns of the engine's loop since it was opened (each one a
    /// scheduling pass): with nothing to do it should barely move.
    pub scheduler_passes: u64,
}

/// Why [`crate::Uploader::run_until_idle`] returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IdleReason {
    /// Nothing is left to run: every upload is completed, failed or cancelled.
    Idle,
    /// `suspend` (or `stop`) was called: work stopped at a checkpoint.
    Suspended,
    /// Uploads remain, but the network is offline or not allowed by the policy.
    WaitingForNetwork,
    /// The only unfinished uploads are paused by the app.
    AllPaused,
    /// Unfinished uploads wait for new headers (the backend answered 401).
    AuthRequired,
    /// Hand-off mode: what is left is with the platform's transport (or
    /// waits for staging room); the engine has nothing to do until the
    /// platform reports a task's end.
    HandedOff,
    /// Uploads remain, but their files are protected while the device is
    /// locked (iOS data protection): they go on once the platform reports
    /// protected data available again (or after the retry backoff).
    WaitingForUnlock,
}

impl IdleReason {
    pub fn as_str(self) -> &'static str {
        match self {
            IdleReason::Idle => "idle",
            IdleReason::Suspended => "suspended",
            IdleReason::WaitingForNetwork => "waiting_for_network",
            IdleReason::AllPaused => "all_paused",
            IdleReason::AuthRequired => "auth_required",
            IdleReason::HandedOff => "handed_off",
            IdleReason::WaitingForUnlock => "waiting_for_unlock",
        }
    }
}

impl EngineStatus {
    /// Why a run should end now, or `None` while there is work it can do.
    pub fn idle_reason(&self) -> Option<IdleReason> {
        if !self.running {
            Some(IdleReason::Suspended)
        } else if self.active > 0 {
            if !self.network_allowed {
                Some(IdleReason::WaitingForNetwork)
            } else {
                let all_wait_for_unlock = self.waiting_for_unlock >= self.active;
                if self.engine_busy {
                    None
                } else if self.handoff {
                    Some(IdleReason::HandedOff)
                } else {
                    all_wait_for_unlock.then_some(IdleReason::WaitingForUnlock)
                }
            }
        } else if self.auth_paused > 0 {
            Some(IdleReason::AuthRequired)
        } else if self.paused > 0 {
            Some(IdleReason::AllPaused)
        } else {
            Some(IdleReason::Idle)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_and_network() {
        let wifi = NetworkState::default();
        let mobile = NetworkState {
            online: true,
            metered: true,
        };
        let offline = NetworkState {
            online: false,
            metered: false,
        };
        assert!(wifi.allows(NetworkPolicy::Any));
        assert!(wifi.allows(NetworkPolicy::UnmeteredOnly));
        assert!(mobile.allows(NetworkPolicy::Any));
        assert!(!mobile.allows(NetworkPolicy::UnmeteredOnly));
        assert!(!offline.allows(NetworkPolicy::Any));
    }

    #[test]
    fn idle_reasons_in_priority_order() {
        let busy = EngineStatus {
            running: true,
            network_allowed: true,
            active: 2,
            paused: 1,
            auth_paused: 1,
            ..EngineStatus::default()
        };
        assert_eq!(busy.idle_reason(), None);
        let suspended = EngineStatus {
            running: false,
            ..busy.clone()
        };
        assert_eq!(suspended.idle_reason(), Some(IdleReason::Suspended));
        let offline = EngineStatus {
            network_allowed: false,
            ..busy.clone()
        };
        assert_eq!(offline.idle_reason(), Some(IdleReason::WaitingForNetwork));
        // Hand-off: idle once the engine's own work is done, not before.
        let handed = EngineStatus {
            handoff: true,
            ..busy.clone()
        };
        assert_eq!(handed.idle_reason(), Some(IdleReason::HandedOff));
        let staging = EngineStatus {
            engine_busy: true,
            ..handed.clone()
        };
        assert_eq!(staging.idle_reason(), None);
        // Every active upload waits for the device's unlock: nothing to run.
        let locked = EngineStatus {
            waiting_for_unlock: 2,
            ..busy.clone()
        };
        assert_eq!(locked.idle_reason(), Some(IdleReason::WaitingForUnlock));
        let one_locked = EngineStatus {
            waiting_for_unlock: 1,
            ..busy.clone()
        };
        assert_eq!(one_locked.idle_reason(), None);
        let locked_busy = EngineStatus {
            engine_busy: true,
            ..locked.clone()
        };
        assert_eq!(locked_busy.idle_reason(), None);
        let auth = EngineStatus {
            active: 0,
            network_allowed: false,
            ..busy.clone()
        };
        assert_eq!(auth.idle_reason(), Some(IdleReason::AuthRequired));
        let paused = EngineStatus {
            active: 0,
            auth_paused: 0,
            ..busy.clone()
        };
        assert_eq!(paused.idle_reason(), Some(IdleReason::AllPaused));
        let done = EngineStatus {
            active: 0,
            paused: 0,
            auth_paused: 0,
            ..busy
        };
        assert_eq!(done.idle_reason(), Some(IdleReason::Idle));
    }

    #[test]
    fn a_config_stored_before_these_fields_still_loads() {
        let old = r#"{"startUploadUrl":"http://h/s","uploadUrlsUrl":"http://h/u","completeUrl":"http://h/c","maxPartsInFlight":2}"#;
        let c: crate::Config = serde_json::from_str(old).unwrap();
        assert_eq!(c.network_policy, NetworkPolicy::Any);
        assert_eq!(c.notification_title, None);
        assert_eq!(c.notification_text, None);
        assert_eq!(c.max_parts_in_flight, 2);
    }

    #[test]
    fn stored_policy_names_are_stable() {
        assert_eq!(
            serde_json::to_string(&NetworkPolicy::UnmeteredOnly).unwrap(),
            "\"unmeteredOnly\""
        );
        assert_eq!(
            serde_json::from_str::<NetworkPolicy>("\"any\"").unwrap(),
            NetworkPolicy::Any
        );
    }
}
