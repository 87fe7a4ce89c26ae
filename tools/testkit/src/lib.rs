//! Test harness for the upload engine: an embedded S3 store and the
//! reference backend, both in-process on loopback, with every part upload
//! and backend call counted and faults injectable on both.

mod backend;
mod chaos;
mod faults;
mod stats;
mod store;
pub mod tls;

use std::net::SocketAddr;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use s3bgu_backend::{
    embedded_credentials, store_service, Backend, BackendOptions, StoreTarget, EMBEDDED_BUCKET,
};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use chaos::{ChaosPlan, ChaosReport, Fault, Target};
pub use faults::{Broken, Faults};
pub use stats::{Route, Stats, StoreRequest};

pub struct HarnessOptions {
    pub part_size: u64,
    pub url_ttl: Duration,
    /// Serve the store and the backend over HTTPS with this certificate
    /// (`https://127.0.0.1:PORT`); plain HTTP when `None` (default).
    pub tls: Option<tls::HarnessTls>,
    /// Keep the store's objects in this directory (created if missing, left
    /// in place when the harness stops) instead of a temporary one.
    pub store_dir: Option<PathBuf>,
    /// The store's sockets get the segment size and a receive buffer of a
    /// phone's path to the Internet instead of loopback's (64 KiB segments,
    /// megabytes buffered on both sides): a client is held back within a
    /// few hundred KiB of what the store has read. For slow-uplink tests
    /// ([`Faults::throttle_part_bodies`]); slower for everything else.
    pub narrow_store_sockets: bool,
}

impl Default for HarnessOptions {
    fn default() -> Self {
        Self {
            part_size: 5 * 1024 * 1024,
            url_ttl: Duration::from_secs(3600),
            tls: None,
            store_dir: None,
            narrow_store_sockets: false,
        }
    }
}

/// A running store and backend. Dropping it stops both and deletes the
/// store directory.
pub struct Harness {
    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub backend_url: String,
    /// `http://127.0.0.1:PORT` of the store (the host of the part URLs).
    pub store_url: String,
    /// Root of the s3s-fs store; objects are under `uploads/<key>`.
    pub store_dir: PathBuf,
    pub stats: Arc<Stats>,
    pub faults: Arc<Faults>,
    _running: Running,
}

/// Owns what must live as long as the harness.
struct Running {
    store_task: JoinHandle<()>,
    backend_stop: watch::Sender<bool>,
    backend_task: JoinHandle<()>,
    tls_tasks: Vec<JoinHandle<()>>,
    _dir: Option<tempfile::TempDir>,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.backend_stop.send(true);
        self.backend_task.abort();
        self.store_task.abort();
        for t in &self.tls_tasks {
            t.abort();
        }
    }
}

impl Harness {
    /// Starts the store and the backend on the current tokio runtime.
    /// Panics if either cannot start.
    pub async fn start(opts: HarnessOptions) -> Harness {
        let (dir, store_dir) = match &opts.store_dir {
            Some(d) => (None, d.clone()),
            None => {
                let dir = tempfile::tempdir().expect("create the store directory");
                let path = dir.path().to_path_buf();
                (Some(dir), path)
            }
        };
        let stats = Arc::new(Stats::default());
        let faults = Arc::new(Faults::default());

        let (access_key, secret_key) = embedded_credentials(&store_dir).expect("store credentials");
        let service = store_service(&store_dir, &access_key, &secret_key).expect("store service");
        let store_listener = bind_store(opts.narrow_store_sockets);
        let mut tls_tasks = Vec::new();
        let (store_url, store_listener) = match &opts.tls {
            None => (
                format!(
                    "http://{}",
                    store_listener.local_addr().expect("store address")
                ),
                store_listener,
            ),
            Some(t) => {
                // The terminator relays into the store: narrow on both legs,
                // or the relay's own buffers would hide the store's pace.
                let plain = bind_store(opts.narrow_store_sockets);
                let (url, task) =
                    front_with_tls(t, store_listener, plain.local_addr().expect("address"));
                tls_tasks.push(task);
                (url, plain)
            }
        };
        let recorder = store::Recorder {
            service,
            stats: stats.clone(),
            faults: faults.clone(),
        };
        let store_task = tokio::spawn(store::serve(store_listener, recorder));

        let mut backend_opts = BackendOptions::new(StoreTarget {
            endpoint: store_url.parse().expect("store url"),
            bucket: EMBEDDED_BUCKET.to_owned(),
            region: "us-east-1".to_owned(),
            access_key,
            secret_key,
        });
        backend_opts.part_size = opts.part_size;
        backend_opts.url_ttl = opts.url_ttl;
        if let Some(t) = &opts.tls {
            backend_opts.store_root_certificates_der = vec![t.ca_der.clone()];
        }
        let watch = backend::Watch {
            stats: stats.clone(),
            faults: faults.clone(),
        };
        // The watch runs before routing, so it can rewrite paths.
        let routes = Backend::new(backend_opts)
            .expect("backend options")
            .router();
        let router = axum::Router::new()
            .fallback_service(routes)
            .layer(axum::middleware::from_fn_with_state(watch, backend::layer));
        let backend_listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the backend");
        let (backend_url, backend_listener) = match &opts.tls {
            None => (
                format!(
                    "http://{}",
                    backend_listener.local_addr().expect("backend address")
                ),
                backend_listener,
            ),
            Some(t) => {
                let plain = TcpListener::bind("127.0.0.1:0").await.expect("bind");
                let (url, task) =
                    front_with_tls(t, backend_listener, plain.local_addr().expect("address"));
                tls_tasks.push(task);
                (url, plain)
            }
        };
        let (backend_stop, mut stopped) = watch::channel(false);
        let backend_task = tokio::spawn(async move {
            let _ = axum::serve(backend_listener, router)
                .with_graceful_shutdown(async move {
                    let _ = stopped.changed().await;
                })
                .await;
        });

        Harness {
            backend_url,
            store_url,
            store_dir,
            stats,
            faults,
            _running: Running {
                store_task,
                backend_stop,
                backend_task,
                tls_tasks,
                _dir: dir,
            },
        }
    }

    /// The completed object's bytes, read from the store directory; `None`
    /// if there is no such object.
    pub fn object_bytes(&self, key: &str) -> Option<Vec<u8>> {
        // Keys come from tests, but must still not read outside the bucket.
        let rel = Path::new(key);
        if key.is_empty() || !rel.components().all(|c| matches!(c, Component::Normal(_))) {
            return None;
        }
        std::fs::read(self.store_dir.join(EMBEDDED_BUCKET).join(rel)).ok()
    }

    pub fn start_url(&self) -> String {
        format!("{}/startUpload", self.backend_url)
    }

    pub fn urls_url(&self) -> String {
        format!("{}/getUploadUrls", self.backend_url)
    }

    /// Base of the complete endpoint; append `/{uploadId}/{key}`.
    pub fn complete_url(&self) -> String {
        format!("{}/complete", self.backend_url)
    }

    /// Base of the abort endpoint; append `/{uploadId}/{key}`.
    pub fn abort_url(&self) -> String {
        format!("{}/abort", self.backend_url)
    }
}

/// Puts a TLS terminator on `public` (whose port the URLs name) in front of
/// the plain listener of the server itself at `upstream`.
fn front_with_tls(
    t: &tls::HarnessTls,
    public: TcpListener,
    upstream: SocketAddr,
) -> (String, JoinHandle<()>) {
    let url = format!("https://{}", public.local_addr().expect("address"));
    let task = tokio::spawn(tls::terminate(public, t.acceptor(), upstream));
    (url, task)
}

/// Segment size of a typical Ethernet path: the client's kernel sizes its
/// send buffer from it (about 10 segments' worth, instead of megabytes).
const NARROW_MSS: u32 = 1460;
/// Receive buffer asked for (the kernel doubles it for its bookkeeping).
const NARROW_RECV_BUFFER: usize = 4 * 1024;

/// A loopback listener for the store, `narrow` as [`HarnessOptions`] says.
/// Both options are set before `listen`: accepted sockets inherit them, and
/// the handshake already offers the small segment size and window.
fn bind_store(narrow: bool) -> TcpListener {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket =
        Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP)).expect("store socket");
    if narrow {
        socket.set_tcp_mss(NARROW_MSS).expect("store segment size");
        socket
            .set_recv_buffer_size(NARROW_RECV_BUFFER)
            .expect("store receive buffer");
    }
    let addr = SocketAddr::from(([127, 0, 0, 1], 0));
    socket.bind(&addr.into()).expect("bind the store");
    socket.listen(1024).expect("listen on the store");
    socket
        .set_nonblocking(true)
        .expect("non-blocking store socket");
    TcpListener::from_std(socket.into()).expect("store listener")
}

/// Starts a harness on a runtime of its own, for tests that are not async.
/// The servers run on the runtime's worker threads; keep the runtime alive
/// as long as the harness, and drop it outside any async context.
pub fn spawn_in_thread(opts: HarnessOptions) -> (Harness, tokio::runtime::Runtime) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("build a tokio runtime");
    let harness = runtime.block_on(Harness::start(opts));
    (harness, runtime)
}

#[cfg(test)]
mod tests;
