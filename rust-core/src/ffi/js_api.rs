//! The TurboModule spec's calls on [`UploadEngine`], in and out as the JSON
//! texts `js/src/NativeS3BgUploader.ts` documents. Thin: the shapes live in
//! [`crate::js`]. A React Native module turns each text into a map
//! generically and rejects a promise with [`JsError`]'s code and detail.

use super::engine::UploadEngine;
use super::error::{shut_down, UploaderError};
use super::observers::{ObserverError, Sink, Subscription};
use crate::error::UploadError;
use crate::js;
use crate::NewUpload;
use std::path::PathBuf;
use std::sync::Arc;

/// Failure of a JSON call: `code` is the stable error code (`invalid_config`,
/// `file_not_found`, ... as `js/src/types.ts` lists them), to be used as the
/// promise's rejection code; `detail` is the rejection message, for people,
/// without secrets. (Not `message`: Kotlin exceptions already have one.)
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, uniffi::Error)]
pub enum JsError {
    #[error("{code}: {detail}")]
    Rejected { code: String, detail: String },
}

impl From<UploadError> for JsError {
    fn from(e: UploadError) -> Self {
        JsError::Rejected {
            code: e.code.as_str().to_owned(),
            detail: e.message,
        }
    }
}

impl From<UploaderError> for JsError {
    fn from(e: UploaderError) -> Self {
        JsError::Rejected {
            code: e.error_code(),
            detail: e.error_detail(),
        }
    }
}

type Result<T, E = JsError> = std::result::Result<T, E>;

/// Receives the spec's events: `name` is the emitter (`onProgress` or
/// `onStateChange`), `json` its payload (`NativeProgress` or `NativeUpload`).
/// Called on an engine thread, one event at a time and in order: return
/// quickly (emit and go). What it throws costs it that one event only.
#[uniffi::export(foreign)]
pub trait JsEventObserver: Send + Sync {
    fn on_event(&self, name: String, json: String) -> Result<(), ObserverError>;
}

pub(super) fn deliver_json(observer: &Arc<dyn JsEventObserver>, name: &str, json: &str) {
    let call = || observer.on_event(name.to_owned(), json.to_owned());
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(call)) {
        Ok(Ok(())) => {}
        Ok(Err(_)) | Err(_) => tracing::warn!("a JSON event observer failed; it missed one event"),
    }
}

impl UploadEngine {
    fn js_uploader(&self) -> Result<Arc<crate::Uploader>> {
        self.uploader
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .ok_or_else(|| shut_down().into())
    }
}

#[uniffi::export]
impl UploadEngine {
    /// [`UploadEngine::open`] for the side that answers JavaScript: a queue
    /// that cannot be opened fails with `JsError::Rejected` and the
    /// engine's code (`database_corrupt`, `database` when another process
    /// holds it or it is unwritable, `invalid_argument` for an unusable
    /// path), so every platform rejects with the same code. Blocking, as
    /// `open`: call it off the main thread.
    #[uniffi::constructor(default(start = true))]
    pub fn open_json(db_path: String, start: bool) -> Result<Arc<UploadEngine>> {
        Ok(UploadEngine::open(db_path, start)?)
    }

    /// The spec's `setConfig`: parses `config_json` (the shape documented in
    /// `NativeS3BgUploader.ts`), validates and stores it. Async.
    pub async fn set_config_json(&self, config_json: String) -> Result<()> {
        let config = js::config_from_json(&config_json)?;
        Ok(self.js_uploader()?.set_config(config).await?)
    }

    /// The stored configuration in the same shape, or `None` before the
    /// first configuration. Async.
    pub async fn config_json(&self) -> Result<Option<String>> {
        Ok(self
            .js_uploader()?
            .config()
            .await?
            .as_ref()
            .map(js::config_to_json))
    }

    /// The spec's `uploadFile`: hashes and queues the file; resolves with
    /// its `NativeUpload` JSON. Async (hashing takes seconds for big files).
    pub async fn upload_file_json(
        &self,
        path: String,
        transfer_id: String,
        file_name: Option<String>,
        user_params_json: String,
    ) -> Result<String> {
        let new = NewUpload {
            path: PathBuf::from(path),
            transfer_id,
            file_name,
            user_params: js::user_params(&user_params_json)?,
        };
        let info = self.js_uploader()?.add_file(new).await?;
        Ok(js::upload_json(&info))
    }

    /// The spec's `pause`: a JSON array of the uploads that changed. The
    /// target is `upload_id` (a JavaScript number) or `transfer_id`, or
    /// neither for every upload. Async.
    pub async fn pause_json(
        &self,
        upload_id: Option<f64>,
        transfer_id: Option<String>,
    ) -> Result<String> {
        let sel = js::selector(upload_id, transfer_id)?;
        Ok(js::uploads_json(&self.js_uploader()?.pause(sel).await?))
    }

    /// The spec's `resume`, like `pause_json`. Async.
    pub async fn resume_json(
        &self,
        upload_id: Option<f64>,
        transfer_id: Option<String>,
    ) -> Result<String> {
        let sel = js::selector(upload_id, transfer_id)?;
        Ok(js::uploads_json(&self.js_uploader()?.resume(sel).await?))
    }

    /// The spec's `cancel`, like `pause_json`. Async.
    pub async fn cancel_json(
        &self,
        upload_id: Option<f64>,
        transfer_id: Option<String>,
    ) -> Result<String> {
        let sel = js::selector(upload_id, transfer_id)?;
        Ok(js::uploads_json(&self.js_uploader()?.cancel(sel).await?))
    }

    /// The spec's `forget`: deletes the targeted finished uploads and
    /// resolves with how many went (a JavaScript number). Async.
    pub async fn forget_json(
        &self,
        upload_id: Option<f64>,
        transfer_id: Option<String>,
    ) -> Result<f64> {
        let sel = js::selector(upload_id, transfer_id)?;
        Ok(self.js_uploader()?.forget(sel).await? as f64)
    }

    /// The spec's `getUploads`: a JSON array in queue order. Async.
    pub async fn uploads_json(
        &self,
        upload_id: Option<f64>,
        transfer_id: Option<String>,
    ) -> Result<String> {
        let sel = js::selector(upload_id, transfer_id)?;
        Ok(js::uploads_json(&self.js_uploader()?.uploads(sel).await?))
    }

    /// The spec's `getSummary`: `NativeSummary` JSON of one transfer, or of
    /// every upload with `None`. Async.
    pub async fn summary_json(&self, transfer_id: Option<String>) -> Result<String> {
        if transfer_id.as_ref().is_some_and(|t| t.trim().is_empty()) {
            return Err(UploadError::new(
                crate::ErrorCode::InvalidArgument,
                "transferId must be a non-empty string",
            )
            .into());
        }
        Ok(js::summary_json(
            &self.js_uploader()?.summary(transfer_id).await?,
        ))
    }

    /// Registers `observer` for the spec's events. It first gets one
    /// `onStateChange` per upload in the queue (queue order: the snapshot),
    /// then every change and progress, in order, with nothing missed or
    /// repeated in between. Keep the handle: closing or cancelling it ends
    /// the subscription. Non-blocking; any thread.
    pub fn subscribe_json(&self, observer: Arc<dyn JsEventObserver>) -> Result<Arc<Subscription>> {
        let sink = Sink::Json(observer.clone());
        Ok(self.register(sink, move |uploads, _summary| {
            for u in &uploads {
                deliver_json(&observer, js::ON_STATE_CHANGE, &js::upload_json(u));
            }
        })?)
    }
}
