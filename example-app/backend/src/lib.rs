//! Reference backend for the background multipart upload engine.
//!
//! The backend is a small JSON-over-HTTP service that starts S3 multipart
//! uploads, hands out presigned `UploadPart` URLs, and completes or aborts
//! uploads. It keeps no state between requests, so any number of instances
//! can run behind a load balancer. An S3-compatible store backed by a local
//! directory (s3s-fs) can be embedded for development and tests.

mod api;
mod config;
mod embedded;
mod empty;
mod keys;
mod serve;
mod store;

pub use api::Backend;
pub use config::{BackendError, BackendOptions, StoreTarget};
pub use embedded::{embedded_credentials, store_service, EMBEDDED_ACCESS_KEY, EMBEDDED_BUCKET};
pub use serve::{serve, RunningBackend, ServeOptions, StoreChoice};

#[cfg(test)]
mod tests;
