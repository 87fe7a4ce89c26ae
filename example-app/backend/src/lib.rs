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

pub use api::{Backend, LocalAddr};
pub use config::{BackendError, BackendOptions, PartUrlBase, StoreTarget};
pub use embedded::{embedded_credentials, store_service, EMBEDDED_ACCESS_KEY, EMBEDDED_BUCKET};
pub use serve::{lan_address, serve, RunningBackend, ServeOptions, StoreChoice};

#[cfg(test)]
mod tests;
