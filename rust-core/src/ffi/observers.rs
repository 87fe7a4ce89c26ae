//! Subscriptions: the foreign observer trait and the hub that fans the
//! engine's one listener out to every subscriber.

use super::js_api;
use super::records::UploaderEvent;
use crate::model;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

/// Implemented in Kotlin or Swift to receive events; see
/// [`UploadEngine::subscribe`]. Called on an engine thread: return quickly.
/// Whatever it throws is logged and costs this observer that one event;
/// the engine and the other observers go on.
#[uniffi::export(foreign)]
pub trait UploadObserver: Send + Sync {
    fn on_event(&self, event: UploaderEvent) -> Result<(), ObserverError>;
}

/// What an observer may throw. Any other exception arrives as `Failed` too.
#[derive(Debug, thiserror::Error, uniffi::Error)]
pub enum ObserverError {
    #[error("the observer failed: {reason}")]
    Failed { reason: String },
}

impl From<uniffi::UnexpectedUniFFICallbackError> for ObserverError {
    fn from(e: uniffi::UnexpectedUniFFICallbackError) -> Self {
        ObserverError::Failed { reason: e.reason }
    }
}

pub(super) struct Registered {
    pub(super) observer: Sink,
}

/// A subscriber: typed records, or the spec's JSON (see `js_api`).
#[derive(Clone)]
pub(super) enum Sink {
    Records(Arc<dyn UploadObserver>),
    Json(Arc<dyn js_api::JsEventObserver>),
}

/// Fans the engine's single listener out to every subscription.
#[derive(Default)]
pub(super) struct ObserverHub {
    observers: Mutex<BTreeMap<u64, Registered>>,
    pub(super) next_id: AtomicU64,
}

impl ObserverHub {
    pub(super) fn lock(&self) -> MutexGuard<'_, BTreeMap<u64, Registered>> {
        self.observers.lock().unwrap_or_else(|e| e.into_inner())
    }
}

pub(super) fn deliver(observer: &Arc<dyn UploadObserver>, event: UploaderEvent) {
    // A throwing observer must not stop the engine, whose thread this is.
    // Its message is app code's and may hold anything: it is not logged.
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| observer.on_event(event))) {
        Ok(Ok(())) => {}
        Ok(Err(_)) | Err(_) => {
            tracing::warn!("an upload observer failed; it missed one event")
        }
    }
}

impl model::UploadListener for ObserverHub {
    fn on_event(&self, event: &model::UploadEvent) {
        let sinks: Vec<Sink> = self.lock().values().map(|r| r.observer.clone()).collect();
        if sinks.is_empty() {
            return;
        }
        // Each form is built once, and only if someone wants it.
        let mut record = None;
        let mut json = None;
        for sink in &sinks {
            match sink {
                Sink::Records(o) => {
                    let e = record.get_or_insert_with(|| UploaderEvent::from(event));
                    deliver(o, e.clone());
                }
                Sink::Json(o) => {
                    let (name, body) = json.get_or_insert_with(|| crate::js::event_json(event));
                    js_api::deliver_json(o, name, body);
                }
            }
        }
    }
}

/// Ends its subscription when cancelled or closed (Kotlin `close()`, Swift
/// deinit). An event being delivered at that moment may still arrive.
#[derive(uniffi::Object)]
pub struct Subscription {
    pub(super) hub: Weak<ObserverHub>,
    pub(super) id: u64,
    pub(super) cancelled: Arc<AtomicBool>,
}

#[uniffi::export]
impl Subscription {
    /// Ends the subscription. Idempotent; non-blocking; any thread.
    pub fn cancel(&self) {
        if let Some(hub) = self.hub.upgrade() {
            let mut observers = hub.lock();
            self.cancelled.store(true, Ordering::SeqCst);
            observers.remove(&self.id);
        } else {
            self.cancelled.store(true, Ordering::SeqCst);
        }
    }

    /// Whether the observer still receives events.
    pub fn is_active(&self) -> bool {
        !self.cancelled.load(Ordering::SeqCst)
            && self
                .hub
                .upgrade()
                .is_some_and(|hub| hub.lock().contains_key(&self.id))
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.cancel();
    }
}
