use std::fmt;
use std::time::Duration;

/// 1 MiB, the unit part sizes are rounded to.
pub(crate) const MIB: u64 = 1024 * 1024;
/// S3's largest allowed part.
pub(crate) const MAX_PART_SIZE: u64 = 5 * 1024 * MIB;
/// S3 refuses presigned URLs valid for longer than a week.
pub(crate) const MAX_URL_TTL: Duration = Duration::from_secs(7 * 24 * 3600);
/// Keys are checked against this when they come back from clients, so a
/// prefix longer than this would leave too little room for the rest.
const MAX_PREFIX_LEN: usize = 512;

/// Where the backend creates uploads: an S3-compatible endpoint addressed
/// path-style (`{endpoint}/{bucket}/{key}`).
#[derive(Clone)]
pub struct StoreTarget {
    pub endpoint: url::Url,
    pub bucket: String,
    pub region: String,
    pub access_key: String,
    pub secret_key: String,
}

// Written by hand so the secret never ends up in logs through `{:?}`.
impl fmt::Debug for StoreTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // An endpoint with a password in it is refused later, but may be
        // printed before that.
        let mut endpoint = self.endpoint.clone();
        let _ = endpoint.set_password(None);
        f.debug_struct("StoreTarget")
            .field("endpoint", &endpoint.as_str())
            .field("bucket", &self.bucket)
            .field("region", &self.region)
            .field("access_key", &self.access_key)
            .field("secret_key", &"<redacted>")
            .finish()
    }
}

#[derive(Clone, Debug)]
pub struct BackendOptions {
    pub store: StoreTarget,
    /// Preferred part size in bytes; grown per upload when a file would need
    /// more than 10,000 parts.
    pub part_size: u64,
    /// How long presigned part URLs stay valid.
    pub url_ttl: Duration,
    /// Prepended to every object key; only keys under it are accepted back.
    pub key_prefix: String,
    /// Root certificates (DER) trusted for the backend's own calls to the
    /// store, on top of the bundled ones: a store behind a private CA.
    pub store_root_certificates_der: Vec<Vec<u8>>,
    /// The address the presigned part URLs name.
    pub part_url_base: PartUrlBase,
}

/// Where the presigned part URLs point. The backend's own calls always use
/// the store endpoint; clients may have to reach the same store another way
/// (a phone cannot use the server's loopback address).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum PartUrlBase {
    /// The store endpoint, as the backend reaches it.
    #[default]
    Store,
    /// This base URL: the store as clients reach it.
    Fixed(url::Url),
    /// The local address each request came in on, with this port: a client
    /// that reached the backend at an address reaches the store there too.
    RequestAddress { port: u16 },
}

impl BackendOptions {
    pub fn new(store: StoreTarget) -> Self {
        Self {
            store,
            part_size: 8 * MIB,
            url_ttl: Duration::from_secs(3600),
            key_prefix: "uploads/".to_owned(),
            store_root_certificates_der: Vec::new(),
            part_url_base: PartUrlBase::Store,
        }
    }

    pub(crate) fn validate(&self) -> Result<(), BackendError> {
        if self.part_size == 0 || self.part_size > MAX_PART_SIZE {
            return Err(BackendError::InvalidOption(format!(
                "part_size must be between 1 byte and 5 GiB, got {}",
                self.part_size
            )));
        }
        // Presigned URLs carry whole seconds, so anything under one second
        // would produce URLs that are already expired.
        if self.url_ttl < Duration::from_secs(1) || self.url_ttl > MAX_URL_TTL {
            return Err(BackendError::InvalidOption(format!(
                "url_ttl must be between 1 second and 7 days, got {:?}",
                self.url_ttl
            )));
        }
        let prefix = &self.key_prefix;
        if prefix.len() > MAX_PREFIX_LEN
            || prefix.starts_with('/')
            || prefix.chars().any(char::is_control)
            || prefix.split('/').any(|seg| seg == "." || seg == "..")
        {
            return Err(BackendError::InvalidOption(
                "key_prefix must be at most 512 bytes, not start with '/', and contain no '.' or '..' segments or control characters".to_owned(),
            ));
        }
        if let PartUrlBase::Fixed(base) = &self.part_url_base {
            check_public_base(base)?;
        }
        let store = &self.store;
        if store.bucket.is_empty() {
            return Err(BackendError::InvalidOption(
                "store bucket is empty".to_owned(),
            ));
        }
        if store.region.is_empty() {
            return Err(BackendError::InvalidOption(
                "store region is empty".to_owned(),
            ));
        }
        if store.access_key.is_empty() || store.secret_key.is_empty() {
            return Err(BackendError::InvalidOption(
                "store credentials are empty".to_owned(),
            ));
        }
        Ok(())
    }
}

/// A base URL clients are given for the store: http(s), a host, nothing
/// that would end up beside a signature (credentials, query, fragment).
fn check_public_base(base: &url::Url) -> Result<(), BackendError> {
    if !matches!(base.scheme(), "http" | "https")
        || base.host_str().is_none()
        || !base.username().is_empty()
        || base.password().is_some()
        || base.query().is_some()
        || base.fragment().is_some()
    {
        return Err(BackendError::InvalidOption(format!(
            "the store's public URL must be http(s)://HOST[:PORT][/PATH] without credentials, query or fragment, got {}",
            without_secrets(base)
        )));
    }
    Ok(())
}

/// A URL fit for a message: no password, no query.
fn without_secrets(u: &url::Url) -> String {
    let mut u = u.clone();
    let _ = u.set_password(None);
    u.set_query(None);
    u.to_string()
}

#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    #[error("cannot listen on {addr} for {what}: {source}")]
    Listen {
        addr: std::net::SocketAddr,
        what: &'static str,
        source: std::io::Error,
    },
    #[error("invalid option: {0}")]
    InvalidOption(String),
    #[error("bad store endpoint: {0}")]
    BadEndpoint(String),
    #[error("embedded store setup failed: {0}")]
    Store(String),
    #[error("HTTP client setup failed: {0}")]
    HttpClient(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target() -> StoreTarget {
        StoreTarget {
            endpoint: "http://127.0.0.1:9000".parse().expect("valid url"),
            bucket: "b".into(),
            region: "us-east-1".into(),
            access_key: "ak".into(),
            secret_key: "super-secret-value".into(),
        }
    }

    #[test]
    fn debug_hides_secret() {
        let shown = format!("{:?}", BackendOptions::new(target()));
        assert!(!shown.contains("super-secret-value"), "{shown}");
        assert!(shown.contains("<redacted>"));
    }

    #[test]
    fn rejects_out_of_range_options() {
        let mut o = BackendOptions::new(target());
        assert!(o.validate().is_ok());
        o.part_size = 0;
        assert!(o.validate().is_err());
        o.part_size = MAX_PART_SIZE + 1;
        assert!(o.validate().is_err());
        o.part_size = MAX_PART_SIZE;
        assert!(o.validate().is_ok());
        o.url_ttl = Duration::ZERO;
        assert!(o.validate().is_err());
        o.url_ttl = MAX_URL_TTL + Duration::from_secs(1);
        assert!(o.validate().is_err());
        o.url_ttl = MAX_URL_TTL;
        assert!(o.validate().is_ok());
        o.key_prefix = "a/../b/".into();
        assert!(o.validate().is_err());
    }
}
