//! The configuration records and their conversions; their text forms hide
//! header values and URL queries.

use crate::background;
use crate::Config;

/// One header sent with every backend call (never with part uploads).
/// Its text form (Kotlin `toString`, Swift `description`) hides the value.
#[derive(Clone, PartialEq, Eq, uniffi::Record)]
#[uniffi::export(Debug, Display)]
pub struct HttpHeader {
    pub name: String,
    pub value: String,
}

/// Retries of every call: delays grow from `base_delay_ms` to `max_delay_ms`
/// with full jitter; after `max_attempts` failures in a row the upload fails.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct RetrySettings {
    #[uniffi(default = 8)]
    pub max_attempts: u32,
    #[uniffi(default = 1000)]
    pub base_delay_ms: u64,
    #[uniffi(default = 60000)]
    pub max_delay_ms: u64,
    /// New URLs fetched in a row for one part refused by the storage.
    #[uniffi(default = 4)]
    pub max_url_refreshes: u32,
    /// A backend call without a whole answer after this long is a failed attempt.
    #[uniffi(default = 60000)]
    pub request_timeout_ms: u64,
    /// A part upload that sends and receives nothing for this long is a failed attempt.
    #[uniffi(default = 60000)]
    pub stall_timeout_ms: u64,
}

/// Which networks parts may be sent on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, uniffi::Enum)]
pub enum NetworkPolicy {
    #[default]
    Any,
    /// Hold uploads while the reported network is metered.
    UnmeteredOnly,
}

/// Everything the engine needs to reach the app's backend; stored with the
/// queue so a background task can run without any JavaScript. Its text form
/// hides header values and URL queries.
#[derive(Clone, PartialEq, Eq, uniffi::Record)]
#[uniffi::export(Debug, Display)]
pub struct UploaderConfig {
    pub start_upload_url: String,
    pub upload_urls_url: String,
    /// Base of the complete route: `{completeUrl}/{uploadId}/{key}`.
    pub complete_url: String,
    /// `Any`, or `UnmeteredOnly` to hold uploads on metered networks.
    pub network_policy: NetworkPolicy,
    /// Optional abort route (same shape), called when an upload is cancelled.
    #[uniffi(default = None)]
    pub abort_url: Option<String>,
    /// Sent with every backend call, e.g. `Authorization`.
    #[uniffi(default)]
    pub headers: Vec<HttpHeader>,
    /// Part uploads in flight at once, shared by every file (1..=32).
    #[uniffi(default = 4)]
    pub max_parts_in_flight: u32,
    #[uniffi(default)]
    pub retry: RetrySettings,
    /// Notification templates for the wrappers; see [`render_notification`].
    #[uniffi(default = None)]
    pub notification_title: Option<String>,
    #[uniffi(default = None)]
    pub notification_text: Option<String>,
    /// PEM root certificates trusted on top of the device's, for backend
    /// calls and part uploads (private CAs). Never a way to skip checks.
    #[uniffi(default)]
    pub extra_root_certificates_pem: Vec<String>,
    /// Finished uploads are deleted this long after they finished; 0 keeps
    /// them until `forget`. Default: 7 days.
    #[uniffi(default = 604800000)]
    pub finished_retention_ms: u64,
}

impl From<UploaderConfig> for Config {
    fn from(c: UploaderConfig) -> Self {
        let mut config = Config::new(c.start_upload_url, c.upload_urls_url, c.complete_url);
        config.abort_url = c.abort_url;
        config.headers = c.headers.into_iter().map(|h| (h.name, h.value)).collect();
        config.max_parts_in_flight = c.max_parts_in_flight;
        config.retry = crate::RetryPolicy {
            max_attempts: c.retry.max_attempts,
            base_delay_ms: c.retry.base_delay_ms,
            max_delay_ms: c.retry.max_delay_ms,
            max_url_refreshes: c.retry.max_url_refreshes,
            request_timeout_ms: c.retry.request_timeout_ms,
            stall_timeout_ms: c.retry.stall_timeout_ms,
        };
        config.network_policy = match c.network_policy {
            NetworkPolicy::Any => background::NetworkPolicy::Any,
            NetworkPolicy::UnmeteredOnly => background::NetworkPolicy::UnmeteredOnly,
        };
        config.notification_title = c.notification_title;
        config.notification_text = c.notification_text;
        config.extra_root_certificates_pem = c.extra_root_certificates_pem;
        config.finished_retention_ms = c.finished_retention_ms;
        config
    }
}

impl From<Config> for UploaderConfig {
    fn from(c: Config) -> Self {
        UploaderConfig {
            start_upload_url: c.start_upload_url,
            upload_urls_url: c.upload_urls_url,
            complete_url: c.complete_url,
            network_policy: match c.network_policy {
                background::NetworkPolicy::Any => NetworkPolicy::Any,
                background::NetworkPolicy::UnmeteredOnly => NetworkPolicy::UnmeteredOnly,
            },
            abort_url: c.abort_url,
            headers: c
                .headers
                .into_iter()
                .map(|(name, value)| HttpHeader { name, value })
                .collect(),
            max_parts_in_flight: c.max_parts_in_flight,
            retry: RetrySettings {
                max_attempts: c.retry.max_attempts,
                base_delay_ms: c.retry.base_delay_ms,
                max_delay_ms: c.retry.max_delay_ms,
                max_url_refreshes: c.retry.max_url_refreshes,
                request_timeout_ms: c.retry.request_timeout_ms,
                stall_timeout_ms: c.retry.stall_timeout_ms,
            },
            notification_title: c.notification_title,
            notification_text: c.notification_text,
            extra_root_certificates_pem: c.extra_root_certificates_pem,
            finished_retention_ms: c.finished_retention_ms,
        }
    }
}

/// A configuration for a backend with the reference routes under `base_url`
/// (`/startUpload`, `/getUploadUrls`, `/complete`, `/abort`) and defaults for
/// the rest. Does not validate (`set_config` does).
#[uniffi::export]
pub fn config_for_base_url(base_url: String) -> UploaderConfig {
    Config::for_base_url(&base_url).into()
}

display_as_debug!(HttpHeader, UploaderConfig);

impl std::fmt::Debug for HttpHeader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpHeader")
            .field("name", &self.name)
            .field("value", &crate::redact::REDACTED)
            .finish()
    }
}

impl std::fmt::Debug for UploaderConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use crate::redact::url_for_debug;
        // Every field named: a new one does not compile until it is decided
        // here whether it may be shown.
        let UploaderConfig {
            start_upload_url,
            upload_urls_url,
            complete_url,
            network_policy,
            abort_url,
            headers,
            max_parts_in_flight,
            retry,
            notification_title,
            notification_text,
            extra_root_certificates_pem,
            finished_retention_ms,
        } = self;
        f.debug_struct("UploaderConfig")
            .field("start_upload_url", &url_for_debug(start_upload_url))
            .field("upload_urls_url", &url_for_debug(upload_urls_url))
            .field("complete_url", &url_for_debug(complete_url))
            .field("network_policy", network_policy)
            .field("abort_url", &abort_url.as_deref().map(url_for_debug))
            .field("headers", headers)
            .field("max_parts_in_flight", max_parts_in_flight)
            .field("retry", retry)
            .field("notification_title", notification_title)
            .field("notification_text", notification_text)
            .field(
                "extra_root_certificates_pem",
                &format_args!("[{} PEM texts]", extra_root_certificates_pem.len()),
            )
            .field("finished_retention_ms", finished_retention_ms)
            .finish()
    }
}
