//! Certificate trust for every HTTPS request of the engine (backend calls and
//! part PUTs share one client).
//!
//! A server's chain is accepted when either
//! 1. it leads to one of the configuration's extra roots
//!    (`extraRootCertificatesPem`: private S3 endpoints, test CAs), checked
//!    here by webpki; or
//! 2. the device trusts it: the platform installed a [`PlatformTrust`]
//!    (Android: the app's `X509TrustManager`, so user CAs and the network
//!    security config apply; iOS: `SecTrust`), or, where no platform store
//!    exists (desktop, CLI, tests), the bundled Mozilla roots agree.
//!
//! Why a foreign trait rather than rustls-platform-verifier: on Android that
//! crate needs a JNI entry point called with a `JNIEnv` and a `Context`
//! (uniffi's Kotlin goes through JNA, which provides neither), plus its own
//! Kotlin classes shipped as a Maven folder inside the crate, found by Gradle
//! through `cargo metadata`, and kept by a ProGuard rule. The trait needs none
//! of that, is ten lines of Kotlin over the same `X509TrustManager`, and can be
//! tested here from the Kotlin JVM suite. The host name is always checked here
//! in Rust, and rustls always checks the handshake signatures: the platform
//! only says whether it trusts the chain.
//!
//! There is no switch that accepts any certificate, on purpose.

use crate::error::{err, ErrorCode, Result, UploadError};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// Most root certificates accepted in one configuration.
pub const MAX_EXTRA_ROOTS: usize = 64;

/// The device's own decision on a server certificate chain. Installed once
/// at start-up with [`install_platform_trust`]; process-wide, and used by
/// every engine from its next TLS handshake on.
///
/// Android: build an `X509TrustManager` from
/// `TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm())`
/// initialised with a null `KeyStore` (system and, as the app's network
/// security config allows, user CAs), turn each DER into an
/// `X509Certificate`, and call
/// `X509TrustManagerExtensions(tm).checkServerTrusted(chain, authType, host)`.
/// iOS: `SecTrustCreateWithCertificates` with `SecPolicyCreateSSL(true, host)`
/// and `SecTrustEvaluateWithError`.
#[uniffi::export(foreign)]
pub trait PlatformTrust: Send + Sync {
    /// Throws [`TrustError::Untrusted`] unless the device trusts `chain_der`
    /// (DER certificates, the server's own first, then the intermediates it
    /// sent) for a TLS server named `host`. `auth_type` is the value to hand
    /// to `checkServerTrusted` as is. Called during the handshake on a
    /// thread of its own, so it may block (revocation checks, iOS fetching
    /// intermediates) without holding up other transfers; after 30 s
    /// without an answer the handshake fails and is retried like any failed
    /// connection. Must not call the engine.
    fn check_server_trusted(
        &self,
        chain_der: Vec<Vec<u8>>,
        auth_type: String,
        host: String,
    ) -> std::result::Result<(), TrustError>;
}

/// A refusal from [`PlatformTrust`]. Anything else it throws counts as a
/// refusal too.
#[derive(Debug, thiserror::Error, uniffi::Error)]
pub enum TrustError {
    #[error("{reason}")]
    Untrusted { reason: String },
}

impl From<uniffi::UnexpectedUniFFICallbackError> for TrustError {
    fn from(e: uniffi::UnexpectedUniFFICallbackError) -> Self {
        TrustError::Untrusted { reason: e.reason }
    }
}

static PLATFORM: RwLock<Option<Arc<dyn PlatformTrust>>> = RwLock::new(None);

/// How long a handshake waits for [`PlatformTrust`]'s answer: as long as a
/// connection may take to open at all.
pub const PLATFORM_TRUST_TIMEOUT: Duration = CONNECT_TIMEOUT;

/// Platform checks waiting at once, at most. Each has a thread of its own;
/// checks that never answer must not pile up threads, so beyond this a
/// handshake is refused at once (and retried later like any other).
const MAX_PLATFORM_CHECKS: usize = 8;

static PLATFORM_CHECKS: AtomicUsize = AtomicUsize::new(0);

const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// Makes the engine verify servers with the device's trust store (see
/// [`PlatformTrust`]). Call it once at start-up, before the first upload;
/// later calls replace it. Android and iOS must call it: their builds carry
/// no bundled roots, so without it only `extraRootCertificatesPem` is
/// trusted.
///
/// `trust` is asked once about a self-signed certificate that no device
/// trusts; one that accepts it (a debug "trust everything" manager) would
/// turn off certificate checks for the backend and the storage alike, and
/// is refused with `InvalidArgument` (the previous trust stays). Blocks
/// while `trust` answers that one check (no network is involved); any thread.
#[uniffi::export]
pub fn install_platform_trust(
    trust: Arc<dyn PlatformTrust>,
) -> std::result::Result<(), crate::ffi::UploaderError> {
    let probe = CertificateDer::from_pem_slice(TRUST_PROBE_PEM.as_bytes()).map_err(|_| {
        UploadError::from(err(
            ErrorCode::Internal,
            "the built-in probe certificate is not valid PEM",
        ))
    })?;
    if ask_platform(
        trust.clone(),
        vec![probe.to_vec()],
        TRUST_PROBE_HOST.to_owned(),
    )
    .is_ok()
    {
        return Err(UploadError::from(err(
            ErrorCode::InvalidArgument,
            "the platform trust accepted a self-signed certificate that no device trusts: it \
             would accept any server; install one that checks the chain (the system trust \
             store, or extraRootCertificatesPem for a private CA)",
        ))
        .into());
    }
    *PLATFORM.write().unwrap_or_else(|e| e.into_inner()) = Some(trust);
    Ok(())
}

/// A self-signed server certificate for [`TRUST_PROBE_HOST`], valid from
/// 2000 to 2099, whose key was thrown away once it was signed. Made once
/// with rcgen 0.14: `CertificateParams::new(vec![TRUST_PROBE_HOST])`, common
/// name "s3bgu trust probe (no real server)", key usage digitalSignature,
/// extended key usage serverAuth, `self_signed` with a fresh P-256 key.
const TRUST_PROBE_PEM: &str = include_str!("trust_probe.pem");

/// The name the probe certificate is for (`.invalid`: never a real host),
/// so a trust that checks names finds it right and only the chain wrong.
const TRUST_PROBE_HOST: &str = "trust-probe.s3bgu.invalid";

/// Goes back to the bundled roots (where the build has them). For tests.
#[uniffi::export]
pub fn remove_platform_trust() {
    *PLATFORM.write().unwrap_or_else(|e| e.into_inner()) = None;
}

fn platform() -> Option<Arc<dyn PlatformTrust>> {
    PLATFORM.read().unwrap_or_else(|e| e.into_inner()).clone()
}

/// Asks the platform about a chain, from a handshake (rustls calls its
/// verifier synchronously, on the engine's runtime thread that polls the
/// connection).
///
/// The call runs on a thread of its own and this one waits for it inside
/// `block_in_place`. `block_in_place` alone would free the runtime (the
/// worker's other tasks move to a new thread) but would wait for ever on a
/// check that never answers, and the connection's own timeouts cannot fire
/// while its task is blocked. A thread alone would bound the wait but keep
/// the worker, and the engine task queued on it, stopped until then. The
/// tokio blocking pool is not used: it also runs file reads and the
/// database's syncs, which stuck checks must not starve.
fn ask_platform(
    trust: Arc<dyn PlatformTrust>,
    chain: Vec<Vec<u8>>,
    host: String,
) -> std::result::Result<(), String> {
    let wait = |rx: std::sync::mpsc::Receiver<std::result::Result<(), String>>| {
        rx.recv_timeout(PLATFORM_TRUST_TIMEOUT).unwrap_or_else(|_| {
            Err(format!(
                "the device gave no answer on the certificate within {} s",
                PLATFORM_TRUST_TIMEOUT.as_secs()
            ))
        })
    };
    if PLATFORM_CHECKS.fetch_add(1, Ordering::SeqCst) >= MAX_PLATFORM_CHECKS {
        PLATFORM_CHECKS.fetch_sub(1, Ordering::SeqCst);
        return Err("too many certificate checks of the device are waiting".into());
    }
    /// Frees the slot when the check ends, however it ends.
    struct Slot;
    impl Drop for Slot {
        fn drop(&mut self) {
            PLATFORM_CHECKS.fetch_sub(1, Ordering::SeqCst);
        }
    }
    let slot = Slot;
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    let spawned = std::thread::Builder::new()
        .name("s3bgu-trust".into())
        .spawn(move || {
            let _slot = slot;
            // Platform code: whatever it does must not unwind into rustls.
            let answer = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                trust.check_server_trusted(chain, AUTH_TYPE.to_owned(), host)
            }));
            let answer = match answer {
                Ok(Ok(())) => Ok(()),
                Ok(Err(TrustError::Untrusted { reason })) => Err(reason),
                Err(_) => Err("the device's certificate check failed".to_string()),
            };
            // The handshake may have stopped waiting.
            let _ = tx.send(answer);
        });
    if let Err(e) = spawned {
        return Err(format!("cannot start the device's certificate check: {e}"));
    }
    match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        // Only a current-thread runtime cannot hand its thread over; the
        // engine's runtime is multi-threaded.
        Ok(tokio::runtime::RuntimeFlavor::CurrentThread) => wait(rx),
        _ => tokio::task::block_in_place(|| wait(rx)),
    }
}

/// Mozilla's roots, for hosts without a platform store. Phones use theirs.
#[cfg(all(
    feature = "bundled-roots",
    not(any(target_os = "android", target_os = "ios"))
))]
fn bundled_roots() -> Option<RootCertStore> {
    Some(RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    })
}

// Phones, and desktop builds without the feature (the size benchmark's
// phone proxy): only the platform's trust and the configured extra roots.
#[cfg(not(all(
    feature = "bundled-roots",
    not(any(target_os = "android", target_os = "ios"))
)))]
fn bundled_roots() -> Option<RootCertStore> {
    None
}

/// The certificates of the configured PEM texts, checked the way the
/// verifier will use them. Messages name the entry, never quote it.
pub(crate) fn parse_extra_roots(pems: &[String]) -> Result<Vec<CertificateDer<'static>>> {
    if pems.len() > MAX_EXTRA_ROOTS {
        return Err(err(
            ErrorCode::InvalidConfig,
            format!("extraRootCertificatesPem has at most {MAX_EXTRA_ROOTS} entries"),
        ));
    }
    let mut out = Vec::new();
    for (i, pem) in pems.iter().enumerate() {
        let bad = |why: &str| {
            err(
                ErrorCode::InvalidConfig,
                format!("extraRootCertificatesPem[{i}] {why}"),
            )
        };
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(pem.as_bytes())
            .collect::<std::result::Result<_, _>>()
            .map_err(|_| bad("is not valid PEM"))?;
        if certs.is_empty() {
            return Err(bad("holds no \"BEGIN CERTIFICATE\" block"));
        }
        let mut probe = RootCertStore::empty();
        for c in &certs {
            probe
                .add(c.clone())
                .map_err(|_| bad("holds a certificate that cannot be parsed"))?;
        }
        out.extend(certs);
    }
    Ok(out)
}

/// The engine's HTTP client, trusting `extra_roots_pem` on top of the
/// device's (or bundled) trust.
pub(crate) fn http_client(extra_roots_pem: &[String]) -> Result<reqwest::Client> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let extra = parse_extra_roots(extra_roots_pem)?;
    let verifier = EngineVerifier::new(provider.clone(), extra)?;
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| err(ErrorCode::Internal, format!("TLS setup failed: {e}")))?
        .dangerous() // The verifier below is the strict one described above.
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .connect_timeout(CONNECT_TIMEOUT)
        // Backend calls are POSTs with bodies and part PUTs stream from
        // the file: neither can be replayed by a redirect.
        .redirect(reqwest::redirect::Policy::none())
        .pool_idle_timeout(Duration::from_secs(60))
        .user_agent(concat!("s3bgu/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| {
            err(
                ErrorCode::Internal,
                format!("cannot create the HTTP client: {e}"),
            )
        })
}

#[derive(Debug)]
struct EngineVerifier {
    provider: Arc<CryptoProvider>,
    /// Chains to the configuration's extra roots.
    extra: Option<Arc<WebPkiServerVerifier>>,
    /// Chains to the bundled roots, used only when no platform trust is installed.
    bundled: Option<Arc<WebPkiServerVerifier>>,
}

fn webpki_verifier(
    roots: RootCertStore,
    provider: &Arc<CryptoProvider>,
) -> Result<Arc<WebPkiServerVerifier>> {
    WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| {
            err(
                ErrorCode::InvalidConfig,
                format!("extraRootCertificatesPem cannot be used: {e}"),
            )
        })
}

impl EngineVerifier {
    fn new(provider: Arc<CryptoProvider>, extra: Vec<CertificateDer<'static>>) -> Result<Self> {
        let extra = if extra.is_empty() {
            None
        } else {
            let mut roots = RootCertStore::empty();
            let (_, ignored) = roots.add_parsable_certificates(extra);
            if ignored > 0 {
                return Err(err(
                    ErrorCode::InvalidConfig,
                    "extraRootCertificatesPem holds a certificate that cannot be a root",
                ));
            }
            Some(webpki_verifier(roots, &provider)?)
        };
        let bundled = match bundled_roots() {
            Some(roots) => Some(webpki_verifier(roots, &provider)?),
            None => None,
        };
        Ok(EngineVerifier {
            provider,
            extra,
            bundled,
        })
    }
}

/// `authType` for `checkServerTrusted`: accepted by Android's and the JDK's
/// trust managers for any key type (it only selects key-usage checks).
const AUTH_TYPE: &str = "UNKNOWN";

impl ServerCertVerifier for EngineVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        let extra = self.extra.as_ref().map(|v| {
            v.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        });
        match extra {
            Some(Ok(ok)) => return Ok(ok),
            // The chain leads to an extra root but is wrong otherwise (host
            // name, dates): no other root makes it right, and this says why.
            Some(Err(e))
                if !matches!(
                    e,
                    rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer)
                ) =>
            {
                return Err(e)
            }
            _ => {}
        }
        if let Some(trust) = platform() {
            // The name is ours to check: a platform's chain check may not.
            let cert = rustls::server::ParsedCertificate::try_from(end_entity)?;
            rustls::client::verify_server_name(&cert, server_name)?;
            let mut chain = Vec::with_capacity(1 + intermediates.len());
            chain.push(end_entity.to_vec());
            chain.extend(intermediates.iter().map(|c| c.to_vec()));
            let host = server_name.to_str().into_owned();
            return match ask_platform(trust, chain, host) {
                Ok(()) => Ok(ServerCertVerified::assertion()),
                Err(reason) => {
                    tracing::warn!(%reason, "the device does not trust the server's certificate");
                    Err(rustls::Error::InvalidCertificate(
                        rustls::CertificateError::ApplicationVerificationFailure,
                    ))
                }
            };
        }
        match &self.bundled {
            Some(v) => {
                v.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
            }
            // A phone build without its platform trust: only extra roots.
            None => Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::UnknownIssuer,
            )),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// The rustls error behind a request failure, if TLS is what failed.
fn rustls_cause<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        // TLS errors arrive wrapped in io::Error, whose `source` skips them.
        let mut inner: Option<&(dyn std::error::Error + 'static)> = Some(s);
        while let Some(i) = inner {
            if let Some(r) = i.downcast_ref::<rustls::Error>() {
                return Some(r);
            }
            inner = i
                .downcast_ref::<std::io::Error>()
                .and_then(|io| io.get_ref())
                .map(|e| e as &(dyn std::error::Error + 'static));
        }
        source = s.source();
    }
    None
}

/// Why a request failed, when the cause is the server's certificate: a
/// sentence for the upload's error message, or `None` for other failures.
pub(crate) fn trust_failure(e: &(dyn std::error::Error + 'static)) -> Option<String> {
    let Some(rustls::Error::InvalidCertificate(c)) = rustls_cause(e) else {
        return None;
    };
    use rustls::CertificateError as C;
    let why = match c {
        C::NotValidForName | C::NotValidForNameContext { .. } => {
            "the server's TLS certificate is for another host name"
        }
        C::Expired | C::ExpiredContext { .. } | C::NotValidYet | C::NotValidYetContext { .. } => {
            "the server's TLS certificate is expired or not valid yet"
        }
        _ => "the server's TLS certificate is not trusted (add its CA to extraRootCertificatesPem if it is a private one)",
    };
    Some(why.to_owned())
}

/// True when an https:// request failed because the server answered
/// something that is not TLS at all (a plain-HTTP server answers the
/// handshake with an HTTP error page). No retry can change that.
pub(crate) fn not_tls(e: &(dyn std::error::Error + 'static)) -> bool {
    use rustls::InvalidMessage as M;
    matches!(
        rustls_cause(e),
        Some(rustls::Error::InvalidMessage(
            M::InvalidContentType | M::UnknownProtocolVersion
        ))
    )
}
