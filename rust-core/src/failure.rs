//! How a failed call is classified: the engine's retry policy acts on this.

use crate::error::{ErrorCode, UploadError};
use std::time::Duration;

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Failure {
    /// Worth retrying after a delay: network errors, timeouts, 408, 429, 5xx.
    Transient {
        detail: String,
        retry_after: Option<Duration>,
    },
    /// A 2xx answer that cannot be used (not JSON, cut short, no ETag): it
    /// may be damage on the way, so it is retried like a transient failure;
    /// when the retries run out the upload fails with `code`. Also an
    /// attempt whose file did not open in time (`transfer::open_timed_out`).
    Garbled { code: ErrorCode, detail: String },
    /// The backend answered 401: the app must provide new headers.
    Auth { detail: String },
    /// The storage refused a presigned URL (403, or 400 saying it expired):
    /// fetch a new URL for the part and try again.
    UrlRejected { detail: String },
    /// The storage no longer knows the multipart upload (404 NoSuchUpload:
    /// aborted, e.g. by a lifecycle rule): its parts are lost and a fresh
    /// multipart upload is needed.
    UploadGone { detail: String },
    /// The upload's file could not be opened or read for lack of
    /// permission: final, unless the device's protected data was
    /// unavailable during the attempt (the engine decides).
    FileDenied(UploadError),
    /// Final for this upload.
    Fatal(UploadError),
}

impl Failure {
    pub(crate) fn fatal(code: ErrorCode, message: impl Into<String>) -> Failure {
        Failure::Fatal(UploadError::new(code, message))
    }
}

impl From<crate::error::Error> for Failure {
    fn from(e: crate::error::Error) -> Self {
        match e {
            crate::error::Error::FileDenied(e) => Failure::FileDenied(e),
            e => Failure::Fatal(e.into()),
        }
    }
}

/// Bytes of an error answer's body kept for its message, whether the
/// engine read it (direct PUT) or the platform reported it (hand-off): the
/// message shows an excerpt of the start, where storages put their code.
pub(crate) const MAX_ERROR_BODY: usize = 16 * 1024;

/// `text` cut to at most [`MAX_ERROR_BODY`] bytes, on a character boundary.
pub(crate) fn cap_error_text(mut text: String) -> String {
    if text.len() > MAX_ERROR_BODY {
        let mut cut = MAX_ERROR_BODY;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.shrink_to_fit();
    }
    text
}

/// Parses `Retry-After` (delay in seconds, or an HTTP date).
pub(crate) fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    parse_retry_after(headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?)
}

/// Parses a `Retry-After` value (delay in seconds, or an HTTP date).
pub(crate) fn parse_retry_after(v: &str) -> Option<Duration> {
    let v = v.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = httpdate::parse_http_date(v).ok()?;
    Some(
        when.duration_since(std::time::SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

/// Statuses the contract says to retry.
pub(crate) fn is_transient_status(status: u16) -> bool {
    status == 408 || status == 429 || (500..=599).contains(&status)
}

/// A request that got no answer: retried, unless the server does not speak
/// TLS on an https:// URL (a plain-HTTP server): then `code` at once,
/// since waiting cannot change the URL. `what` names the call.
pub(crate) fn request_failure(e: reqwest::Error, what: &str, code: ErrorCode) -> Failure {
    if crate::tls::not_tls(&e) {
        return Failure::fatal(
            code,
            format!(
                "{what} failed: this server does not speak TLS; \
                 use http:// for a plain-HTTP server, or its HTTPS port"
            ),
        );
    }
    Failure::Transient {
        detail: format!("{what} {}", describe_reqwest(e)),
        retry_after: None,
    }
}

/// A reqwest error described without its URL (presigned URLs carry signatures).
pub(crate) fn describe_reqwest(e: reqwest::Error) -> String {
    let timeout = e.is_timeout();
    let connect = e.is_connect();
    let e = e.without_url();
    if let Some(why) = crate::tls::trust_failure(&e) {
        return format!("connection failed: {why}");
    }
    let mut msg = if timeout {
        "timed out".to_string()
    } else if connect {
        "connection failed".to_string()
    } else {
        "request failed".to_string()
    };
    // The source chain says why (refused, reset, DNS...).
    let mut source: Option<&dyn std::error::Error> = std::error::Error::source(&e);
    let mut depth = 0;
    while let Some(s) = source {
        if depth == 3 {
            break;
        }
        msg.push_str(": ");
        msg.push_str(&crate::redact::redact(&s.to_string(), &[]));
        source = s.source();
        depth += 1;
    }
    msg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_texts_are_capped_on_a_character_boundary() {
        let short = "x".repeat(MAX_ERROR_BODY);
        assert_eq!(cap_error_text(short.clone()), short);
        // A two-byte character across the limit is left out whole.
        let long = format!("{}é{}", "x".repeat(MAX_ERROR_BODY - 1), "y".repeat(1 << 20));
        let capped = cap_error_text(long);
        assert_eq!(capped.len(), MAX_ERROR_BODY - 1);
        assert!(capped.chars().all(|c| c == 'x'));
    }

    #[test]
    fn retry_after_seconds_and_dates() {
        let mut h = reqwest::header::HeaderMap::new();
        h.insert(reqwest::header::RETRY_AFTER, "7".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(7)));
        let later = std::time::SystemTime::now() + Duration::from_secs(120);
        h.insert(
            reqwest::header::RETRY_AFTER,
            httpdate::fmt_http_date(later).parse().unwrap(),
        );
        let d = retry_after(&h).unwrap();
        assert!(
            d > Duration::from_secs(100) && d <= Duration::from_secs(120),
            "{d:?}"
        );
        h.insert(reqwest::header::RETRY_AFTER, "soon".parse().unwrap());
        assert_eq!(retry_after(&h), None);
    }

    #[test]
    fn transient_statuses() {
        for s in [408, 429, 500, 502, 503, 599] {
            assert!(is_transient_status(s));
        }
        for s in [400, 401, 403, 404, 409, 413] {
            assert!(!is_transient_status(s));
        }
    }
}
