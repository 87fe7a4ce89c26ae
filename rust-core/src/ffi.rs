//! The uniffi facade: what the Kotlin and Swift wrappers call. It converts
//! and delegates to [`crate::Uploader`]; no upload logic lives here.
//!
//! Threads and blocking, for every export:
//! - `async` functions are Kotlin `suspend` functions and Swift `async`
//!   functions. They never block the calling thread: the work runs on the
//!   engine's own runtime. Any thread or coroutine may call them, many at once.
//! - Functions that are not `async` return at once unless their doc says they
//!   block; any thread may call them. Those that block (opening a queue,
//!   hashing a file) should stay off the main thread.
//! - [`UploadObserver::on_event`] is called on an engine thread, one event at a
//!   time and in order. It must return quickly and must not wait for the
//!   uploader (launch a coroutine or dispatch to a queue instead).
//!
//! Every failure is an [`UploaderError`] (or, for the JSON calls and
//! `open_json`, a [`JsError`]): it carries the stable error code string
//! (`UploaderError::error_code`) and a message that never contains presigned
//! query strings, header values or user params.
//!
//! Where each part lives: `error` (the error and its codes), `config`,
//! `records` (uploads, summaries, events, status), `observers`
//! (subscriptions), `engine` ([`UploadEngine`] and its upload calls),
//! `handoff` (the [`PartTransport`] contract), `js_api` (the JSON calls),
//! `platform` and `functions` (calls that need no engine).

// Text forms without secrets: exported as uniffi traits, so the generated
// Kotlin `toString` and Swift `description` of records call them instead of
// printing every field.

/// `Display` as the one-line `Debug`: what the foreign `toString` shows.
macro_rules! display_as_debug {
    ($($t:ty),*) => {$(
        impl std::fmt::Display for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "{self:?}")
            }
        }
    )*};
}

mod config;
mod engine;
mod error;
mod files;
mod functions;
mod handoff;
mod js_api;
mod lifecycle;
mod observers;
mod platform;
mod records;
#[cfg(test)]
mod tests;

pub use config::{config_for_base_url, HttpHeader, NetworkPolicy, RetrySettings, UploaderConfig};
pub use engine::UploadEngine;
pub use error::{ErrorCode, UploadFailure, UploaderError};
pub use files::{bookmark_data, bookmark_file_name, bookmark_uri};
pub use functions::{hash_file, set_aside_database};
pub use handoff::{
    HandoffSettings, PartMode, PartTask, PartTaskResult, PartTransport, SubmitError,
};
pub use js_api::{JsError, JsEventObserver};
pub use lifecycle::{
    AppState, Attention, BackgroundRun, LifecycleStatus, OsProgress, RunInfo, RunKind, RunVerdict,
    StopCause,
};
pub use observers::{ObserverError, Subscription, UploadObserver};
pub use platform::certificates_der_from_pem;
pub use records::{
    render_notification, AggregateState, EngineStatus, IdleReason, NewFile, TransferSummary,
    UploadProgress, UploadRecord, UploadSelector, UploadState, UploaderEvent,
};
