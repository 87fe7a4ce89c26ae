//! Engine configuration. It is persisted with the queue so a background job can
//! finish uploads after a restart without any JavaScript loaded.

use crate::background::NetworkPolicy;
use crate::error::{err, ErrorCode, Result};
use serde::{Deserialize, Serialize};
use std::ops::RangeInclusive;
use std::time::Duration;

pub const DEFAULT_MAX_PARTS_IN_FLIGHT: u32 = 4;
pub const MAX_PARTS_IN_FLIGHT: u32 = 32;
/// How long finished uploads are kept by default: a week.
pub const DEFAULT_FINISHED_RETENTION_MS: u64 = 7 * 24 * 3600 * 1000;
/// The longest retention that can be set (ten years); 0 keeps them forever.
pub(crate) const MAX_FINISHED_RETENTION_MS: u64 = 3650 * 24 * 3600 * 1000;
/// Bounds of `retry.maxAttempts`.
pub const MAX_ATTEMPTS_RANGE: RangeInclusive<u32> = 1..=100;
/// The longest `retry.maxDelayMs` (an hour).
pub const MAX_RETRY_DELAY_MS: u64 = 3_600_000;
/// The most `retry.maxUrlRefreshes`.
pub const MAX_URL_REFRESHES: u32 = 100;
/// Bounds of `retry.requestTimeoutMs` and `retry.stallTimeoutMs`.
pub const TIMEOUT_MS_RANGE: RangeInclusive<u64> = 100..=3_600_000;

/// Retry policy for every call (backend calls and part PUTs).
///
/// Delays grow exponentially from `base_delay_ms` up to `max_delay_ms`, with
/// full jitter (a uniform draw between 0 and the exponential value), and are
/// never shorter than a `Retry-After` the server sent. After `max_attempts`
/// consecutive failures of the same call the upload becomes FAILED; `resume`
/// starts a fresh round.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub base_delay_ms: u64,
    pub max_delay_ms: u64,
    /// How many times in a row one part's URL may be refreshed after a 403
    /// before the upload fails with `storage_rejected`.
    pub max_url_refreshes: u32,
    /// A backend call without a complete answer after this long is abandoned
    /// and counts as a failed attempt.
    pub request_timeout_ms: u64,
    /// A part upload that sends no byte and gets no answer for this long is
    /// abandoned and counts as a failed attempt (a stalled connection).
    pub stall_timeout_ms: u64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 8,
            base_delay_ms: 1_000,
            max_delay_ms: 60_000,
            max_url_refreshes: 4,
            request_timeout_ms: 60_000,
            stall_timeout_ms: 60_000,
        }
    }
}

impl RetryPolicy {
    pub(crate) fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }

    pub(crate) fn stall_timeout(&self) -> Duration {
        Duration::from_millis(self.stall_timeout_ms)
    }

    /// The longest wait the policy ever asks for: a `Retry-After` is honoured
    /// up to ten times `max_delay_ms`, so a hostile or broken header cannot
    /// park an upload for days. Stored waits are held to it when read.
    pub(crate) fn longest_wait(&self) -> Duration {
        Duration::from_millis(self.max_delay_ms.saturating_mul(10))
    }

    /// Delay before attempt `attempt + 1`, given `attempt` failures so far (>= 1).
    pub(crate) fn backoff(&self, failures: u32, retry_after: Option<Duration>) -> Duration {
        let exp = failures.saturating_sub(1).min(30);
        let ceiling = self
            .base_delay_ms
            .saturating_mul(1u64 << exp)
            .min(self.max_delay_ms);
        let jittered = if ceiling == 0 {
            0
        } else {
            rand::random_range(0..=ceiling)
        };
        let delay = Duration::from_millis(jittered);
        match retry_after {
            // Honour the server, but within the same bound as our own delays
            // (times ten) so a hostile header cannot park an upload for days.
            Some(ra) => delay.max(ra.min(self.longest_wait())),
            None => delay,
        }
    }
}

/// Where and how the engine talks to the app's backend. Its `Debug` output
/// shows header names but not their values, and URLs without their queries.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Config {
    pub start_upload_url: String,
    pub upload_urls_url: String,
    pub complete_url: String,
    /// Optional extension: called on cancel so the backend can abort the multipart upload.
    #[serde(default)]
    pub abort_url: Option<String>,
    /// Sent with every backend call (not with part PUTs, which carry their own signature).
    #[serde(default)]
    pub headers: Vec<(String, String)>,
    /// Global limit of part PUTs in flight, shared by all files (1..=32).
    #[serde(default = "default_parts_in_flight")]
    pub max_parts_in_flight: u32,
    #[serde(default)]
    pub retry: RetryPolicy,
    /// Which networks parts may be sent on (the platform reports the network).
    #[serde(default)]
    pub network_policy: NetworkPolicy,
    /// Notification title and text templates for the platform wrappers; the
    /// engine only stores them (see [`crate::notification::render`]).
    #[serde(default)]
    pub notification_title: Option<String>,
    #[serde(default)]
    pub notification_text: Option<String>,
    /// PEM texts of root certificates trusted on top of the device's (each
    /// may hold several certificates), for backend calls and part PUTs
    /// alike: private S3 endpoints and private CAs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra_root_certificates_pem: Vec<String>,
    /// Finished uploads (completed, or cancelled with the abort call done)
    /// are deleted from the queue this long after they finished; 0 keeps
    /// them until `forget`. Default: 7 days.
    #[serde(default = "default_finished_retention")]
    pub finished_retention_ms: u64,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use crate::redact::{header_names, url_for_debug};
        // Every field named: a new one does not compile until it is decided
        // here whether it may be shown.
        let Config {
            start_upload_url,
            upload_urls_url,
            complete_url,
            abort_url,
            headers,
            max_parts_in_flight,
            retry,
            network_policy,
            notification_title,
            notification_text,
            extra_root_certificates_pem,
            finished_retention_ms,
        } = self;
        f.debug_struct("Config")
            .field("start_upload_url", &url_for_debug(start_upload_url))
            .field("upload_urls_url", &url_for_debug(upload_urls_url))
            .field("complete_url", &url_for_debug(complete_url))
            .field("abort_url", &abort_url.as_deref().map(url_for_debug))
            .field("headers", &header_names(headers))
            .field("max_parts_in_flight", max_parts_in_flight)
            .field("retry", retry)
            .field("network_policy", network_policy)
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

fn default_finished_retention() -> u64 {
    DEFAULT_FINISHED_RETENTION_MS
}

fn default_parts_in_flight() -> u32 {
    DEFAULT_MAX_PARTS_IN_FLIGHT
}

impl Config {
    /// A configuration with the three required endpoints and defaults for the rest.
    pub fn new(
        start_upload_url: impl Into<String>,
        upload_urls_url: impl Into<String>,
        complete_url: impl Into<String>,
    ) -> Self {
        Config {
            start_upload_url: start_upload_url.into(),
            upload_urls_url: upload_urls_url.into(),
            complete_url: complete_url.into(),
            abort_url: None,
            headers: Vec::new(),
            max_parts_in_flight: DEFAULT_MAX_PARTS_IN_FLIGHT,
            retry: RetryPolicy::default(),
            network_policy: NetworkPolicy::Any,
            notification_title: None,
            notification_text: None,
            extra_root_certificates_pem: Vec::new(),
            finished_retention_ms: DEFAULT_FINISHED_RETENTION_MS,
        }
    }

    /// The four endpoints under one base URL: `B/startUpload`, `B/getUploadUrls`,
    /// `B/complete` and `B/abort` (the reference backend's routes).
    pub fn for_base_url(base: &str) -> Self {
        let base = base.trim_end_matches('/');
        let mut c = Config::new(
            format!("{base}/startUpload"),
            format!("{base}/getUploadUrls"),
            format!("{base}/complete"),
        );
        c.abort_url = Some(format!("{base}/abort"));
        c
    }

    pub(crate) fn validate(&self) -> Result<()> {
        for (name, url) in [
            ("startUploadApi", Some(&self.start_upload_url)),
            ("getUploadUrlsApi", Some(&self.upload_urls_url)),
            ("completeApi", Some(&self.complete_url)),
            ("abortApi", self.abort_url.as_ref()),
        ] {
            let Some(url) = url else { continue };
            match url::Url::parse(url) {
                Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => {}
                _ => {
                    return Err(err(
                        ErrorCode::InvalidConfig,
                        format!("{name} must be an absolute http(s) URL"),
                    ))
                }
            }
        }
        for (name, value) in &self.headers {
            if reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_err() {
                return Err(err(
                    ErrorCode::InvalidConfig,
                    format!("header name {name:?} is not a valid HTTP header name"),
                ));
            }
            // Non-ASCII passes the HTTP client (as obs-text) but servers
            // read it as Latin-1 or UTF-8 at will; validate.ts refuses it too.
            if !value.is_ascii() || reqwest::header::HeaderValue::from_str(value).is_err() {
                // The value may be a secret: name the header only.
                return Err(err(
                    ErrorCode::InvalidConfig,
                    format!("the value of header {name:?} is not a valid HTTP header value"),
                ));
            }
        }
        if !(1..=MAX_PARTS_IN_FLIGHT).contains(&self.max_parts_in_flight) {
            return Err(err(
                ErrorCode::InvalidConfig,
                format!(
                    "maxPartsInFlight must be between 1 and {MAX_PARTS_IN_FLIGHT}, got {}",
                    self.max_parts_in_flight
                ),
            ));
        }
        let r = &self.retry;
        if !MAX_ATTEMPTS_RANGE.contains(&r.max_attempts) {
            return Err(err(
                ErrorCode::InvalidConfig,
                format!(
                    "retry.maxAttempts must be between {} and {}",
                    MAX_ATTEMPTS_RANGE.start(),
                    MAX_ATTEMPTS_RANGE.end()
                ),
            ));
        }
        if r.max_delay_ms > MAX_RETRY_DELAY_MS || r.base_delay_ms > r.max_delay_ms {
            return Err(err(
                ErrorCode::InvalidConfig,
                format!(
                    "retry delays must satisfy baseDelayMs <= maxDelayMs <= {MAX_RETRY_DELAY_MS}"
                ),
            ));
        }
        if r.max_url_refreshes > MAX_URL_REFRESHES {
            return Err(err(
                ErrorCode::InvalidConfig,
                format!("retry.maxUrlRefreshes must be at most {MAX_URL_REFRESHES}"),
            ));
        }
        for (name, ms) in [
            ("retry.requestTimeoutMs", r.request_timeout_ms),
            ("retry.stallTimeoutMs", r.stall_timeout_ms),
        ] {
            if !TIMEOUT_MS_RANGE.contains(&ms) {
                return Err(err(
                    ErrorCode::InvalidConfig,
                    format!(
                        "{name} must be between {} and {}, got {ms}",
                        TIMEOUT_MS_RANGE.start(),
                        TIMEOUT_MS_RANGE.end()
                    ),
                ));
            }
        }
        if self.finished_retention_ms > MAX_FINISHED_RETENTION_MS {
            return Err(err(
                ErrorCode::InvalidConfig,
                format!(
                    "finishedRetentionMs must be at most {MAX_FINISHED_RETENTION_MS} (ten years; \
                     0 keeps finished uploads until forgotten), got {}",
                    self.finished_retention_ms
                ),
            ));
        }
        crate::notification::check_templates(self)?;
        crate::tls::parse_extra_roots(&self.extra_root_certificates_pem)?;
        Ok(())
    }

    /// How long finished uploads are kept, if they are removed at all.
    pub(crate) fn finished_retention(&self) -> Option<Duration> {
        (self.finished_retention_ms > 0).then(|| Duration::from_millis(self.finished_retention_ms))
    }

    /// Header values, for redaction.
    pub(crate) fn secret_values(&self) -> impl Iterator<Item = &str> {
        self.headers.iter().map(|(_, v)| v.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validates_urls_limits_and_headers() {
        let ok = Config::for_base_url("http://127.0.0.1:9/api/");
        assert_eq!(ok.start_upload_url, "http://127.0.0.1:9/api/startUpload");
        ok.validate().unwrap();

        let mut c = ok.clone();
        c.complete_url = "ftp://x/complete".into();
        assert_eq!(c.validate().unwrap_err().code(), ErrorCode::InvalidConfig);

        let mut c = ok.clone();
        c.max_parts_in_flight = 0;
        assert!(c.validate().is_err());
        c.max_parts_in_flight = 33;
        assert!(c.validate().is_err());
        c.max_parts_in_flight = 32;
        c.validate().unwrap();

        let mut c = ok.clone();
        c.headers = vec![("Authorization".into(), "Bearer sec\nret".into())];
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("Authorization"), "{e}");
        assert!(!e.contains("sec"), "secret leaked: {e}");

        let mut c = ok.clone();
        c.headers = vec![("X-Name".into(), "café".into())];
        assert_eq!(c.validate().unwrap_err().code(), ErrorCode::InvalidConfig);
    }

    #[test]
    fn backoff_is_bounded_and_honours_retry_after() {
        let p = RetryPolicy {
            max_attempts: 5,
            base_delay_ms: 100,
            max_delay_ms: 1_000,
            max_url_refreshes: 2,
            ..RetryPolicy::default()
        };
        for failures in 1..50 {
            let d = p.backoff(failures, None);
            assert!(d <= Duration::from_millis(1_000), "{d:?}");
        }
        let d = p.backoff(1, Some(Duration::from_secs(3)));
        assert_eq!(d, Duration::from_secs(3));
        // Capped at ten times the maximum delay.
        let d = p.backoff(1, Some(Duration::from_secs(100_000)));
        assert_eq!(d, Duration::from_secs(10));
        assert_eq!(p.longest_wait(), Duration::from_secs(10));
    }

    #[test]
    fn readme_states_the_retry_after_cap_the_code_applies() {
        // The promise and the code must agree: "never sooner than
        // Retry-After" holds up to the cap, and the README says where.
        let readme = include_str!("../../README.md");
        assert!(
            readme.contains("never sooner than `Retry-After` up to 10 × `maxDelayMs`"),
            "README no longer states the Retry-After cap"
        );
        let p = RetryPolicy::default();
        assert_eq!(p.longest_wait(), Duration::from_millis(10 * p.max_delay_ms));
    }
}
