//! Running the backend (and optionally the embedded store) on TCP listeners.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use hyper_util::rt::TokioIo;
use s3s::service::S3Service;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

use crate::api::{Backend, LocalAddr};
use crate::config::{BackendError, BackendOptions, PartUrlBase, StoreTarget};
use crate::embedded::{embedded_credentials, store_service, EMBEDDED_BUCKET};

/// Region the embedded store signs with; s3s-fs accepts any.
const EMBEDDED_REGION: &str = "us-east-1";
/// How long shutdown waits for requests in flight before cutting them off.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

pub enum StoreChoice {
    /// Serve an s3s-fs store over this directory next to the backend.
    Embedded {
        dir: PathBuf,
    },
    External(StoreTarget),
}

pub struct ServeOptions {
    pub listen: SocketAddr,
    pub store: StoreChoice,
    pub part_size: Option<u64>,
    pub url_ttl: Option<Duration>,
    /// Port of the embedded store, on the listen address's IP (0: any free
    /// one). A fixed port lets a firewall rule or a phone's config outlive
    /// a restart.
    pub store_port: u16,
    /// The store's base URL as clients reach it, named by the part URLs.
    /// `None`: for the embedded store, the address each request came in on
    /// (with the store's port); for an external store, its endpoint.
    pub store_public_url: Option<url::Url>,
}

/// A backend being served. Dropping it stops the servers abruptly;
/// [`RunningBackend::shutdown`] lets requests in flight finish first.
pub struct RunningBackend {
    /// `http://host:port/` of the backend.
    pub url: url::Url,
    /// Endpoint of the S3 store the backend uses (embedded or external).
    pub store_url: url::Url,
    /// The backend at this machine's LAN address, when it listens on every
    /// interface and the machine has one: what a phone on the network uses.
    pub lan_url: Option<url::Url>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl RunningBackend {
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        for task in std::mem::take(&mut self.tasks) {
            let abort = task.abort_handle();
            if tokio::time::timeout(SHUTDOWN_GRACE * 2, task)
                .await
                .is_err()
            {
                abort.abort();
            }
        }
    }
}

impl Drop for RunningBackend {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Starts the backend (and the embedded store on the same IP with port 0 when
/// StoreChoice::Embedded) on the current tokio runtime; returns once both listen.
pub async fn serve(opts: ServeOptions) -> Result<RunningBackend, BackendError> {
    let (stop, _) = watch::channel(false);

    // Everything that can fail happens before any task is spawned, so an
    // error leaves nothing running.
    let (target, store) = match opts.store {
        StoreChoice::Embedded { dir } => {
            let (access_key, secret_key) = embedded_credentials(&dir)?;
            let service = store_service(&dir, &access_key, &secret_key)?;
            let listener = bind(
                SocketAddr::new(opts.listen.ip(), opts.store_port),
                "the embedded store",
            )
            .await?;
            let endpoint = http_url(listener.local_addr()?)?;
            let target = StoreTarget {
                endpoint,
                bucket: EMBEDDED_BUCKET.to_owned(),
                region: EMBEDDED_REGION.to_owned(),
                access_key,
                secret_key,
            };
            (target, Some((listener, service)))
        }
        StoreChoice::External(target) => (target, None),
    };
    let store_url = target.endpoint.clone();
    let part_url_base = match (opts.store_public_url, &store) {
        (Some(base), _) => PartUrlBase::Fixed(base),
        (None, Some((listener, _))) => PartUrlBase::RequestAddress {
            port: listener.local_addr()?.port(),
        },
        (None, None) => PartUrlBase::Store,
    };

    let mut backend_opts = BackendOptions::new(target);
    backend_opts.part_url_base = part_url_base;
    if let Some(part_size) = opts.part_size {
        backend_opts.part_size = part_size;
    }
    if let Some(url_ttl) = opts.url_ttl {
        backend_opts.url_ttl = url_ttl;
    }
    let router = Backend::new(backend_opts)?.router();
    let listener = bind(opts.listen, "the backend").await?;
    let local = listener.local_addr()?;
    let url = http_url(local)?;
    let lan_url = if local.ip().is_unspecified() {
        lan_address()
            .map(|ip| http_url(SocketAddr::new(ip, local.port())))
            .transpose()?
    } else {
        None
    };

    let mut tasks = Vec::new();
    if let Some((store_listener, service)) = store {
        tasks.push(tokio::spawn(serve_store(
            store_listener,
            service,
            stop.subscribe(),
        )));
    }
    let mut backend_stop = stop.subscribe();
    tasks.push(tokio::spawn(async move {
        // The local address of each connection decides the part URLs' host.
        let app = router.into_make_service_with_connect_info::<LocalAddr>();
        let server = axum::serve(listener, app).with_graceful_shutdown(async move {
            let _ = backend_stop.changed().await;
        });
        if let Err(e) = server.await {
            tracing::error!(error = %e, "backend server failed");
        }
    }));
    tracing::info!(%url, %store_url, "backend listening");
    Ok(RunningBackend {
        url,
        store_url,
        lan_url,
        stop,
        tasks,
    })
}

async fn bind(addr: SocketAddr, what: &'static str) -> Result<TcpListener, BackendError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| BackendError::Listen { addr, what, source })
}

/// This machine's address on its network: the source address of the route
/// to an outside address. A UDP connect only picks the route, nothing is
/// sent. `None` without a route out.
pub fn lan_address() -> Option<IpAddr> {
    let socket = std::net::UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).ok()?;
    // TEST-NET-3 (RFC 5737): never a real peer, routed like any outside address.
    socket.connect((Ipv4Addr::new(203, 0, 113, 1), 9)).ok()?;
    let ip = socket.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
}

/// The URL clients use to reach a listener. A wildcard address is not
/// something a client can connect to, so it is replaced by loopback.
fn http_url(addr: SocketAddr) -> Result<url::Url, BackendError> {
    let ip = match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    let addr = SocketAddr::new(ip, addr.port());
    url::Url::parse(&format!("http://{addr}")).map_err(|e| BackendError::BadEndpoint(e.to_string()))
}

async fn serve_store(listener: TcpListener, service: S3Service, mut stop: watch::Receiver<bool>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    connections.spawn(serve_store_connection(stream, service.clone(), stop.clone()));
                }
                Err(e) => {
                    // Usually running out of file descriptors: back off
                    // instead of spinning.
                    tracing::warn!(error = %e, "store accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            _ = stop.changed() => break,
        }
    }
    drop(listener);
    let drained = async { while connections.join_next().await.is_some() {} };
    if tokio::time::timeout(SHUTDOWN_GRACE, drained).await.is_err() {
        connections.abort_all();
    }
}

async fn serve_store_connection(
    stream: TcpStream,
    service: S3Service,
    mut stop: watch::Receiver<bool>,
) {
    let conn =
        hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service);
    let mut conn = std::pin::pin!(conn);
    tokio::select! {
        result = conn.as_mut() => {
            if let Err(e) = result {
                tracing::debug!(error = %e, "store connection ended with an error");
            }
        }
        _ = stop.changed() => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}
