//! `s3bgu`: the upload engine and the reference backend from a terminal.

mod check;
mod output;

use clap::{Args, Parser, Subcommand};
use s3bgu_backend::{serve, BackendError, RunningBackend, ServeOptions, StoreChoice, StoreTarget};
use s3bgu_core::{
    Config, NewUpload, RetryPolicy, Selector, UploadInfo, UploadState, Uploader, UploaderOptions,
};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

const DEFAULT_DB: &str = ".s3bgu/queue.db";
const DEFAULT_STORE: &str = ".s3bgu/store";
/// Exit code after Ctrl-C (128 + SIGINT), as shells do.
const EXIT_INTERRUPTED: u8 = 130;

#[derive(Parser)]
#[command(
    name = "s3bgu",
    version,
    about = "Background multipart uploads to S3-compatible storage"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the reference backend (with an embedded S3 store unless --s3-endpoint is given).
    Serve(ServeArgs),
    /// Upload files, then wait until they are done.
    Upload(UploadArgs),
    /// Queue files without uploading them (hashed and recorded; `s3bgu
    /// resume` uploads them).
    Add(AddArgs),
    /// Finish every unfinished upload in the queue database.
    Resume(ResumeArgs),
    /// Show the uploads in the queue database. Exits 0 when nothing is left
    /// to do, 3 if an upload FAILED, 4 if some are not finished yet.
    Status(StatusArgs),
    /// Print a file's fileHash (XXH3-128, 32 hex digits).
    Hash { file: PathBuf },
    /// Check a backend against the contract with real uploads through it
    /// (0 B, 1 B, one part, several parts, awkward names, repeated complete,
    /// abort); one line per contract point, exit 0 only if all pass.
    Check(CheckArgs),
    /// Move a corrupt queue database aside (kept as <db>.corrupt-<time>) so
    /// the next run starts an empty queue.
    Recover(RecoverArgs),
}

#[derive(Args)]
struct CheckArgs {
    /// Base URL of the backend (B/startUpload, B/getUploadUrls, B/complete, B/abort).
    #[arg(long, conflicts_with_all = ["start_url", "urls_url", "complete_url", "abort_url"],
          required_unless_present = "start_url")]
    backend: Option<String>,
    /// The startUpload route of a backend with its own route names (with
    /// --urls-url and --complete-url).
    #[arg(long, requires_all = ["urls_url", "complete_url"])]
    start_url: Option<String>,
    /// The getUploadUrls route.
    #[arg(long, requires_all = ["start_url", "complete_url"])]
    urls_url: Option<String>,
    /// The complete route (the check appends /{uploadId}/{key}).
    #[arg(long, requires_all = ["start_url", "urls_url"])]
    complete_url: Option<String>,
    /// The abort route; without it the abort point is not asked.
    #[arg(long, requires = "start_url")]
    abort_url: Option<String>,
    /// A header sent with every backend call, as 'Name: value' (repeatable).
    #[arg(long = "header", value_parser = parse_header)]
    headers: Vec<(String, String)>,
    /// Extra field of the startUpload body, as key=value (repeatable).
    #[arg(long = "param", value_parser = parse_param)]
    params: Vec<(String, String)>,
    /// Print one JSON object instead of lines.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct RecoverArgs {
    #[arg(long, default_value = DEFAULT_DB)]
    db: PathBuf,
    /// Move it aside even if it reads fine.
    #[arg(long)]
    force: bool,
}

#[derive(Args)]
struct ServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Directory of the embedded store.
    #[arg(long, default_value = DEFAULT_STORE)]
    store: PathBuf,
    /// Port of the embedded store, on the --listen address
    /// [default: the --listen port + 1; any free port when that is 0]
    #[arg(long, value_name = "PORT", conflicts_with = "s3_endpoint")]
    store_port: Option<u16>,
    /// The store's base URL as the app reaches it, named by the part URLs
    /// (behind a proxy or a port forward) [default: the host each request
    /// came in on, with the store's port]
    #[arg(long, value_name = "URL")]
    store_public_url: Option<url::Url>,
    /// An S3-compatible endpoint (path-style) to use instead of the embedded store.
    #[arg(long, requires_all = ["bucket", "access_key", "secret_key"])]
    s3_endpoint: Option<url::Url>,
    #[arg(long)]
    bucket: Option<String>,
    #[arg(long, default_value = "us-east-1")]
    region: String,
    #[arg(long)]
    access_key: Option<String>,
    #[arg(long)]
    secret_key: Option<String>,
    /// Part size the backend hands out, in bytes.
    #[arg(long)]
    part_size: Option<u64>,
    /// Lifetime of presigned part URLs, in seconds.
    #[arg(long)]
    url_ttl: Option<u64>,
}

#[derive(Args, Clone, Default)]
struct BackendArgs {
    /// Base URL of a backend with the reference routes (B/startUpload, B/getUploadUrls, B/complete, B/abort).
    #[arg(long, conflicts_with_all = ["start_url", "urls_url", "complete_url"])]
    backend: Option<String>,
    #[arg(long, requires_all = ["urls_url", "complete_url"])]
    start_url: Option<String>,
    #[arg(long, requires_all = ["start_url", "complete_url"])]
    urls_url: Option<String>,
    #[arg(long, requires_all = ["start_url", "urls_url"])]
    complete_url: Option<String>,
    /// Called on cancel so the backend can abort the multipart upload.
    #[arg(long)]
    abort_url: Option<String>,
    /// A header sent with every backend call, as 'Name: value' (repeatable).
    #[arg(long = "header", value_parser = parse_header)]
    headers: Vec<(String, String)>,
    /// Parts in flight, shared by all files (1-32).
    #[arg(long)]
    concurrency: Option<u32>,
    /// A PEM file of root certificates trusted on top of the bundled ones,
    /// for the backend and the store alike (repeatable; a private CA).
    #[arg(long = "ca-cert", value_name = "PEM_FILE")]
    ca_certs: Vec<PathBuf>,
    #[command(flatten)]
    retry: RetryArgs,
}

const RETRIES: &str = "Retries and stalls";

/// The engine's retry and stall settings. Each one given replaces the
/// stored value; the others keep theirs (or the defaults). Durations take
/// a unit: 500ms, 10s, 2m, 1h.
#[derive(Args, Clone, Default)]
struct RetryArgs {
    /// A part upload that sends no byte and gets no answer for this long is
    /// abandoned and retried: raise it on very slow or flaky uplinks
    /// [default: 60s; 100ms to 1h]
    #[arg(long, value_name = "DURATION", value_parser = parse_timeout, help_heading = RETRIES)]
    stall_timeout: Option<Duration>,
    /// A backend call without a complete answer after this long is
    /// abandoned; also how long a part's answer may take once its body is
    /// sent [default: 60s; 100ms to 1h]
    #[arg(long, value_name = "DURATION", value_parser = parse_timeout, help_heading = RETRIES)]
    request_timeout: Option<Duration>,
    /// Failed attempts in a row of one call (a part, a backend call) before
    /// its upload fails; `s3bgu resume` starts a new round [default: 8]
    #[arg(long, value_name = "N", value_parser = parse_max_attempts, help_heading = RETRIES)]
    max_attempts: Option<u32>,
    /// The first retry waits up to this long, each further one up to twice
    /// as long as the one before, at most --retry-max-delay (each wait is
    /// drawn at random below that bound) [default: 1s]
    #[arg(long, value_name = "DURATION", value_parser = parse_delay, help_heading = RETRIES)]
    retry_base_delay: Option<Duration>,
    /// The longest wait between two attempts [default: 60s; at most 1h]
    #[arg(long, value_name = "DURATION", value_parser = parse_delay, help_heading = RETRIES)]
    retry_max_delay: Option<Duration>,
    /// Times in a row one part's URL may be refreshed after the store
    /// refuses it (403) before the upload fails [default: 4; at most 100]
    #[arg(long, value_name = "N", value_parser = parse_url_refreshes, help_heading = RETRIES)]
    max_url_refreshes: Option<u32>,
}

impl RetryArgs {
    /// Applies the settings given to `r`; refuses a base delay longer than
    /// the maximum, naming where each came from.
    fn apply(&self, r: &mut RetryPolicy) -> Result<(), String> {
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        if let Some(d) = self.stall_timeout {
            r.stall_timeout_ms = ms(d);
        }
        if let Some(d) = self.request_timeout {
            r.request_timeout_ms = ms(d);
        }
        if let Some(n) = self.max_attempts {
            r.max_attempts = n;
        }
        if let Some(d) = self.retry_base_delay {
            r.base_delay_ms = ms(d);
        }
        if let Some(d) = self.retry_max_delay {
            r.max_delay_ms = ms(d);
        }
        if let Some(n) = self.max_url_refreshes {
            r.max_url_refreshes = n;
        }
        if r.base_delay_ms > r.max_delay_ms {
            let origin = |given: bool| if given { "" } else { " (stored or default)" };
            return Err(format!(
                "--retry-base-delay {}{} is longer than --retry-max-delay {}{}: \
                 the base delay must not exceed the maximum",
                show_ms(r.base_delay_ms),
                origin(self.retry_base_delay.is_some()),
                show_ms(r.max_delay_ms),
                origin(self.retry_max_delay.is_some()),
            ));
        }
        Ok(())
    }
}

/// A duration as the flags take it: a whole number and a unit (ms, s, m,
/// h), e.g. `10s`. A bare number is refused: seconds or milliseconds?
fn parse_duration(s: &str) -> Result<Duration, String> {
    const FORM: &str = "a whole number and a unit (ms, s, m or h), e.g. 10s or 500ms";
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, unit) = s.split_at(split);
    if digits.is_empty() {
        return Err(format!("expected {FORM}"));
    }
    let per_unit: u64 = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "" => return Err(format!("{s} has no unit: write {s}s or {s}ms")),
        _ if unit.starts_with(['.', ',']) => {
            return Err(format!(
                "{s} is not a whole number: use a smaller unit (1500ms, not 1.5s)"
            ))
        }
        _ => return Err(format!("unknown unit {unit:?}: expected {FORM}")),
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(per_unit))
        .map(Duration::from_millis)
        .ok_or_else(|| format!("{s} is too long"))
}

/// A duration within `range` (in milliseconds).
fn parse_bounded(s: &str, range: std::ops::RangeInclusive<u64>) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    if range.contains(&u64::try_from(d.as_millis()).unwrap_or(u64::MAX)) {
        Ok(d)
    } else {
        Err(format!(
            "must be between {} and {}",
            show_ms(*range.start()),
            show_ms(*range.end())
        ))
    }
}

fn parse_timeout(s: &str) -> Result<Duration, String> {
    parse_bounded(s, s3bgu_core::TIMEOUT_MS_RANGE)
}

fn parse_delay(s: &str) -> Result<Duration, String> {
    parse_bounded(s, 0..=s3bgu_core::MAX_RETRY_DELAY_MS)
}

fn parse_count(s: &str, range: std::ops::RangeInclusive<u32>) -> Result<u32, String> {
    let bounds = || format!("a whole number from {} to {}", range.start(), range.end());
    match s.trim().parse::<u32>() {
        Ok(n) if range.contains(&n) => Ok(n),
        _ => Err(format!("expected {}", bounds())),
    }
}

fn parse_max_attempts(s: &str) -> Result<u32, String> {
    parse_count(s, s3bgu_core::MAX_ATTEMPTS_RANGE)
}

fn parse_url_refreshes(s: &str) -> Result<u32, String> {
    parse_count(s, 0..=s3bgu_core::MAX_URL_REFRESHES)
}

/// Milliseconds in the largest unit that shows them exactly: 1500ms, 2s, 1h.
fn show_ms(ms: u64) -> String {
    match ms {
        0 => "0s".into(),
        _ if ms.is_multiple_of(3_600_000) => format!("{}h", ms / 3_600_000),
        _ if ms.is_multiple_of(60_000) => format!("{}m", ms / 60_000),
        _ if ms.is_multiple_of(1_000) => format!("{}s", ms / 1_000),
        _ => format!("{ms}ms"),
    }
}

impl BackendArgs {
    fn given(&self) -> bool {
        self.backend.is_some() || self.start_url.is_some()
    }

    /// The PEM texts of `--ca-cert` (the engine checks what they hold).
    fn extra_roots(&self) -> Result<Vec<String>, String> {
        self.ca_certs
            .iter()
            .map(|p| {
                std::fs::read_to_string(p)
                    .map_err(|e| format!("cannot read --ca-cert {}: {e}", p.display()))
            })
            .collect()
    }
}

#[derive(Args)]
struct UploadArgs {
    #[arg(required = true)]
    files: Vec<PathBuf>,
    #[command(flatten)]
    backend: BackendArgs,
    /// Transfer that groups these files.
    #[arg(long, default_value = "default")]
    transfer: String,
    /// Extra field of the startUpload body, as key=value (repeatable).
    #[arg(long = "param", value_parser = parse_param)]
    params: Vec<(String, String)>,
    #[arg(long, default_value = DEFAULT_DB)]
    db: PathBuf,
    /// Print one JSON object with every upload on exit.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct AddArgs {
    #[arg(required = true)]
    files: Vec<PathBuf>,
    #[command(flatten)]
    backend: BackendArgs,
    #[arg(long, default_value = "default")]
    transfer: String,
    #[arg(long = "param", value_parser = parse_param)]
    params: Vec<(String, String)>,
    #[arg(long, default_value = DEFAULT_DB)]
    db: PathBuf,
}

#[derive(Args)]
struct ResumeArgs {
    #[arg(long, default_value = DEFAULT_DB)]
    db: PathBuf,
    #[command(flatten)]
    backend: BackendArgs,
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct StatusArgs {
    #[arg(long, default_value = DEFAULT_DB)]
    db: PathBuf,
    #[arg(long)]
    json: bool,
}

fn parse_header(s: &str) -> Result<(String, String), String> {
    let (name, value) = s
        .split_once(':')
        .ok_or_else(|| "expected 'Name: value'".to_string())?;
    let name = name.trim();
    if name.is_empty() {
        return Err("header name is empty".into());
    }
    Ok((name.to_string(), value.trim().to_string()))
}

fn parse_param(s: &str) -> Result<(String, String), String> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| "expected key=value".to_string())?;
    if k.is_empty() {
        return Err("param name is empty".into());
    }
    Ok((k.to_string(), v.to_string()))
}

/// One clear line on stderr.
fn fail(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("s3bgu: error: {msg}");
    ExitCode::FAILURE
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return fail(format!("cannot start: {e}")),
    };
    runtime.block_on(async move {
        match cli.command {
            Command::Serve(a) => run_serve(a).await,
            Command::Upload(a) => run_upload(a).await,
            Command::Add(a) => run_add(a).await,
            Command::Resume(a) => run_resume(a).await,
            Command::Status(a) => run_status(a).await,
            Command::Recover(a) => run_recover(a),
            Command::Check(a) => run_check(a).await,
            Command::Hash { file } => match s3bgu_core::hash_file(&file) {
                Ok(h) => {
                    println!("{h}");
                    ExitCode::SUCCESS
                }
                Err(e) => fail(e),
            },
        }
    })
}

fn init_logging() {
    use std::io::IsTerminal;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::Layer;
    // Quiet unless asked: the CLI prints its own results and errors.
    let filter = tracing_subscriber::EnvFilter::try_from_env("S3BGU_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("off"));
    // The embedded store logs whole requests (presigned queries included)
    // below warn level: never show those.
    let filter = match "s3s=warn".parse() {
        Ok(d) => filter.add_directive(d),
        Err(_) => filter,
    };
    // Colour codes only for a person at a terminal; https://no-color.org.
    let colour = std::io::stderr().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let log = tracing_subscriber::fmt::layer()
        .with_ansi(colour)
        .with_writer(std::io::stderr)
        .with_filter(filter);
    // The engine's retries are shown whatever S3BGU_LOG says.
    let retries = output::RetryLayer.with_filter(
        tracing_subscriber::filter::Targets::new().with_target("s3bgu_core", tracing::Level::INFO),
    );
    let _ = tracing_subscriber::registry()
        .with(log)
        .with(retries)
        .try_init();
}

async fn run_serve(a: ServeArgs) -> ExitCode {
    let embedded = a.s3_endpoint.is_none();
    let store = match a.s3_endpoint {
        Some(endpoint) => StoreChoice::External(StoreTarget {
            endpoint,
            bucket: a.bucket.unwrap_or_default(),
            region: a.region,
            access_key: a.access_key.unwrap_or_default(),
            secret_key: a.secret_key.unwrap_or_default(),
        }),
        None => StoreChoice::Embedded { dir: a.store },
    };
    // Next to the backend's port, so one firewall rule covers both.
    let store_port = a.store_port.unwrap_or(match a.listen.port() {
        0 | u16::MAX => 0,
        p => p + 1,
    });
    let running = match serve(ServeOptions {
        listen: a.listen,
        store,
        part_size: a.part_size,
        url_ttl: a.url_ttl.map(Duration::from_secs),
        store_port,
        store_public_url: a.store_public_url.clone(),
    })
    .await
    {
        Ok(r) => r,
        Err(e @ BackendError::Listen { what, .. }) if what.contains("store") => {
            return fail(format!("{e} (choose another port with --store-port)"))
        }
        Err(e @ BackendError::Listen { .. }) => {
            return fail(format!("{e} (choose another address with --listen)"))
        }
        Err(e) => return fail(e),
    };
    let local = running.url.as_str().trim_end_matches('/').to_owned();
    // Scripts read the first line: the URL to use, the LAN one when there is one.
    let shown = running.lan_url.as_ref().map_or(local.clone(), |u| {
        u.as_str().trim_end_matches('/').to_owned()
    });
    println!("listening on {shown}");
    let store_port = running.store_url.port_or_known_default().unwrap_or(0);
    // The port bound, also when --listen asked for any (0).
    let port = running.url.port_or_known_default().unwrap_or(0);
    if a.listen.ip().is_unspecified() {
        println!("on every interface; from this machine also {local}");
        match &running.lan_url {
            Some(_) => {
                let ports = if embedded {
                    format!("ports {port} and {store_port}")
                } else {
                    format!("port {port}")
                };
                println!("an app on this network ({ports} open in the firewall):");
                print_set_config(&shown);
            }
            None => {
                println!("no network address found: connect this machine to the phone's network")
            }
        }
    } else if a.listen.ip().is_loopback() {
        println!(
            "only this machine can reach it (and an iOS simulator; an Android emulator \
             at http://10.0.2.2:{port}); for a phone: --listen 0.0.0.0:{port}"
        );
        print_set_config(&shown);
    } else {
        print_set_config(&shown);
    }
    // Scripts read this line's last word (bench/bench.py).
    eprintln!(
        "s3 store at {}",
        running.store_url.as_str().trim_end_matches('/')
    );
    if embedded {
        match &a.store_public_url {
            Some(u) => eprintln!("part URLs name {}", u.as_str().trim_end_matches('/')),
            None => eprintln!("part URLs name the host each request came in on, port {store_port}"),
        }
    }
    let _ = tokio::signal::ctrl_c().await;
    running.shutdown().await;
    ExitCode::SUCCESS
}

/// The app's configuration for a backend at `base` (the reference routes).
fn print_set_config(base: &str) {
    println!("  setConfig({{");
    println!("    startUploadApi: '{base}/startUpload',");
    println!("    getUploadUrlsApi: '{base}/getUploadUrls',");
    println!("    completeApi: '{base}/complete',");
    println!("    abortApi: '{base}/abort',");
    println!("  }});");
}

/// The marker beside a queue database whose uploads use the embedded backend.
fn embedded_marker(db: &Path) -> PathBuf {
    let mut p = db.as_os_str().to_owned();
    p.push(".embedded");
    PathBuf::from(p)
}

fn embedded_store_dir(db: &Path) -> PathBuf {
    db.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .join("store")
}

/// Starts the embedded reference backend on a free loopback port.
async fn start_embedded(db: &Path) -> Result<RunningBackend, String> {
    let dir = match std::fs::read_to_string(embedded_marker(db)) {
        Ok(s) if !s.trim().is_empty() => PathBuf::from(s.trim()),
        _ => embedded_store_dir(db),
    };
    let running = serve(ServeOptions {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        store: StoreChoice::Embedded { dir: dir.clone() },
        part_size: None,
        url_ttl: None,
        store_port: 0,
        store_public_url: None,
    })
    .await
    .map_err(|e| format!("cannot start the embedded backend: {e}"))?;
    let dir = std::path::absolute(&dir).unwrap_or(dir);
    std::fs::write(embedded_marker(db), dir.to_string_lossy().as_bytes())
        .map_err(|e| format!("cannot write {}: {e}", embedded_marker(db).display()))?;
    Ok(running)
}

/// `value` as an absolute http(s) URL, or an error naming `flag` (the
/// engine's own error would name the app's config field).
fn check_url_flag(flag: &str, value: &str) -> Result<(), String> {
    match url::Url::parse(value) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => Ok(()),
        Ok(u) if u.scheme() != "http" && u.scheme() != "https" && !value.contains("://") => Err(
            format!("{flag} {value} has no scheme: write http://{value} or https://{value}"),
        ),
        Ok(u) => Err(format!(
            "{flag} {value}: the scheme must be http or https, not {}",
            u.scheme()
        )),
        Err(url::ParseError::RelativeUrlWithoutBase) => Err(format!(
            "{flag} {value} has no scheme: write http://{value} or https://{value}"
        )),
        Err(e) => Err(format!("{flag} {value} is not a URL: {e}")),
    }
}

/// The backend flags' URLs, each checked under its own flag name.
fn check_backend_urls(b: &BackendArgs) -> Result<(), String> {
    for (flag, value) in [
        ("--backend", &b.backend),
        ("--start-url", &b.start_url),
        ("--urls-url", &b.urls_url),
        ("--complete-url", &b.complete_url),
        ("--abort-url", &b.abort_url),
    ] {
        if let Some(v) = value {
            check_url_flag(flag, v)?;
        }
    }
    Ok(())
}

/// The configuration the flags ask for, on top of `base` (the stored one);
/// `None` when neither names a backend.
fn config_from_flags(b: &BackendArgs, base: Option<Config>) -> Result<Option<Config>, String> {
    check_backend_urls(b)?;
    let mut c = if let Some(url) = &b.backend {
        let mut c = Config::for_base_url(url);
        if let Some(old) = &base {
            c.headers = old.headers.clone();
            c.max_parts_in_flight = old.max_parts_in_flight;
            c.retry = old.retry.clone();
            c.extra_root_certificates_pem = old.extra_root_certificates_pem.clone();
        }
        c
    } else if let (Some(s), Some(u), Some(c)) = (&b.start_url, &b.urls_url, &b.complete_url) {
        let mut cfg = Config::new(s, u, c);
        if let Some(old) = &base {
            cfg.headers = old.headers.clone();
            cfg.max_parts_in_flight = old.max_parts_in_flight;
            cfg.retry = old.retry.clone();
            cfg.extra_root_certificates_pem = old.extra_root_certificates_pem.clone();
        }
        cfg
    } else {
        match base {
            Some(c) => c,
            None => return Ok(None),
        }
    };
    if let Some(a) = &b.abort_url {
        c.abort_url = Some(a.clone());
    }
    if !b.headers.is_empty() {
        c.headers = b.headers.clone();
    }
    if let Some(n) = b.concurrency {
        c.max_parts_in_flight = n;
    }
    b.retry.apply(&mut c.retry)?;
    Ok(Some(c))
}

/// Opens the queue and sets the configuration: from the flags, else the
/// embedded backend (started here) when none is given or the stored one used it.
async fn open_configured(
    db: &Path,
    flags: &BackendArgs,
    embedded_by_default: bool,
    start: bool,
) -> Result<(Uploader, Option<RunningBackend>), String> {
    let mut options = UploaderOptions::new(db);
    options.start = start;
    let uploader = Uploader::open(options).map_err(|e| e.to_string())?;
    let stored = uploader.config().await.map_err(|e| e.to_string())?;
    let mut embedded = None;
    let config = if flags.given() {
        let _ = std::fs::remove_file(embedded_marker(db));
        config_from_flags(flags, stored)?
    } else if embedded_by_default || embedded_marker(db).exists() || stored.is_none() {
        let running = start_embedded(db).await?;
        let mut c = BackendArgs {
            backend: Some(running.url.as_str().trim_end_matches('/').to_string()),
            ..flags.clone()
        };
        c.headers = flags.headers.clone();
        let cfg = config_from_flags(&c, stored)?;
        embedded = Some(running);
        cfg
    } else {
        config_from_flags(flags, stored)?
    };
    let mut config = config.ok_or("no backend configured: pass --backend URL")?;
    let extra_roots = flags.extra_roots()?;
    if !extra_roots.is_empty() {
        config.extra_root_certificates_pem = extra_roots;
    }
    uploader
        .set_config(config)
        .await
        .map_err(|e| e.to_string())?;
    Ok((uploader, embedded))
}

struct Session {
    uploader: Uploader,
    _embedded: Option<RunningBackend>,
    ids: Vec<i64>,
    /// The uploads as they were when the session began (for the bars).
    initial: Vec<UploadInfo>,
    /// Also report uploads that ended since this time (a resume reports
    /// every upload of the queue it finished, in queue order).
    ended_since_ms: Option<i64>,
    json: bool,
    had_errors: bool,
}

async fn run_upload(a: UploadArgs) -> ExitCode {
    let (uploader, embedded) = match open_configured(&a.db, &a.backend, true, true).await {
        Ok(x) => x,
        Err(e) => return fail(e),
    };
    let (added, had_errors) = add_files(&uploader, &a.files, &a.transfer, &a.params).await;
    // Uploads paused or failed earlier (same content, same transfer) go on.
    for u in &added {
        if matches!(u.state, UploadState::Paused | UploadState::Failed) {
            if let Err(e) = uploader.resume(Selector::Upload(u.id)).await {
                return fail(e);
            }
        }
    }
    let ids = added.iter().map(|u| u.id).collect();
    let initial = added;
    finish(Session {
        uploader,
        _embedded: embedded,
        ids,
        initial,
        ended_since_ms: None,
        json: a.json,
        had_errors,
    })
    .await
}

/// Hashes and records each file, in the command line's order; returns the
/// uploads and whether any file was refused (each refusal is reported on
/// stderr).
async fn add_files(
    uploader: &Uploader,
    files: &[PathBuf],
    transfer: &str,
    params: &[(String, String)],
) -> (Vec<UploadInfo>, bool) {
    let params: serde_json::Map<String, serde_json::Value> = params
        .iter()
        .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
        .collect();
    let new = files
        .iter()
        .map(|file| NewUpload {
            path: file.clone(),
            transfer_id: transfer.to_owned(),
            file_name: None,
            user_params: params.clone(),
        })
        .collect();
    let mut added = Vec::with_capacity(files.len());
    let mut had_errors = false;
    for (file, answer) in files.iter().zip(uploader.add_files(new).await) {
        match answer {
            Ok(info) => added.push(info),
            Err(e) => {
                had_errors = true;
                eprintln!("s3bgu: error: {}: {e}", file.display());
            }
        }
    }
    (added, had_errors)
}

async fn run_add(a: AddArgs) -> ExitCode {
    // Not started: nothing is sent, the uploads stay queued.
    let (uploader, _embedded) = match open_configured(&a.db, &a.backend, true, false).await {
        Ok(x) => x,
        Err(e) => return fail(e),
    };
    let (added, had_errors) = add_files(&uploader, &a.files, &a.transfer, &a.params).await;
    uploader.shutdown().await;
    println!("queued {} uploads in {}", added.len(), a.db.display());
    if had_errors {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

async fn run_resume(a: ResumeArgs) -> ExitCode {
    if !a.db.exists() {
        return fail(format!("no queue database at {}", a.db.display()));
    }
    // Uploads that end from here on are this run's, even those that end
    // before the queue is listed: the engine starts sending at once.
    let opened_at_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let (uploader, embedded) = match open_configured(&a.db, &a.backend, false, true).await {
        Ok(x) => x,
        Err(e) => return fail(e),
    };
    // One command for the whole queue: the paused and failed ones join.
    if let Err(e) = uploader.resume(Selector::All).await {
        return fail(e);
    }
    let unfinished = match uploader.unfinished().await {
        Ok(list) => list,
        Err(e) => return fail(e),
    };
    finish(Session {
        uploader,
        _embedded: embedded,
        ids: unfinished.iter().map(|u| u.id).collect(),
        initial: unfinished,
        ended_since_ms: Some(opened_at_ms),
        json: a.json,
        had_errors: false,
    })
    .await
}

/// Waits for the session's uploads (progress bars on a terminal), then reports.
async fn finish(s: Session) -> ExitCode {
    let bars = output::Bars::new(!s.json);
    s.uploader.set_listener(Some(Arc::new(bars.clone())));
    // Position of each id on the command line (a queue may hold thousands).
    let order: std::collections::HashMap<i64, usize> =
        s.ids.iter().enumerate().map(|(i, id)| (*id, i)).collect();
    bars.add(s.initial.iter());
    let wait = async {
        for id in &s.ids {
            s.uploader.wait_idle(Selector::Upload(*id)).await?;
        }
        Ok::<(), s3bgu_core::UploadError>(())
    };
    let interrupted = tokio::select! {
        r = wait => {
            if let Err(e) = r {
                return fail(e);
            }
            false
        }
        _ = tokio::signal::ctrl_c() => true,
    };
    if interrupted {
        for id in &s.ids {
            let _ = s.uploader.pause(Selector::Upload(*id)).await;
        }
    }
    s.uploader.set_listener(None);
    bars.finish();
    let list: Vec<UploadInfo> = match s.uploader.uploads(Selector::All).await {
        Ok(list) => {
            let ended_here = |u: &UploadInfo| {
                s.ended_since_ms
                    .is_some_and(|t| u.state.is_final() && u.updated_at_ms >= t)
            };
            let mut list: Vec<UploadInfo> = list
                .into_iter()
                .filter(|u| order.contains_key(&u.id) || ended_here(u))
                .collect();
            if s.ended_since_ms.is_some() {
                list.sort_by_key(|u| u.id);
            } else {
                // In the order the files were given.
                list.sort_by_key(|u| order.get(&u.id).copied());
            }
            list
        }
        Err(e) => return fail(e),
    };
    let db_commits = s.uploader.status().await.ok().map(|st| st.db_commits);
    s.uploader.shutdown().await;
    output::report(&list, s.json, db_commits);
    if interrupted {
        eprintln!("s3bgu: interrupted: uploads paused; run `s3bgu resume` to finish them");
        return ExitCode::from(EXIT_INTERRUPTED);
    }
    if !s.had_errors && list.iter().all(|u| u.state == UploadState::Completed) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

async fn run_check(a: CheckArgs) -> ExitCode {
    let flags = [
        ("--backend", &a.backend),
        ("--start-url", &a.start_url),
        ("--urls-url", &a.urls_url),
        ("--complete-url", &a.complete_url),
        ("--abort-url", &a.abort_url),
    ];
    for (flag, value) in flags {
        if let Some(v) = value {
            if let Err(e) = check_url_flag(flag, v) {
                return fail(e);
            }
        }
    }
    let (shown, routes) = match (a.backend, a.start_url, a.urls_url, a.complete_url) {
        (Some(base), ..) => (
            base.trim_end_matches('/').to_owned(),
            check::Routes::under(&base),
        ),
        (None, Some(start), Some(urls), Some(complete)) => (
            start.clone(),
            check::Routes {
                start,
                urls,
                complete,
                abort: a.abort_url,
            },
        ),
        _ => return fail("pass --backend URL, or --start-url, --urls-url and --complete-url"),
    };
    let opts = check::CheckOptions {
        backend: shown,
        routes,
        headers: a.headers,
        params: a.params,
    };
    match check::run(opts, a.json).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => fail(e),
    }
}

fn run_recover(a: RecoverArgs) -> ExitCode {
    if !a.db.exists() {
        return fail(format!("no queue database at {}", a.db.display()));
    }
    if !a.force {
        match s3bgu_core::read_queue(&a.db) {
            Ok(list) => {
                println!(
                    "the queue database {} reads fine ({} uploads); nothing done (--force moves it aside anyway)",
                    a.db.display(),
                    list.len()
                );
                return ExitCode::SUCCESS;
            }
            Err(e) if e.code == s3bgu_core::ErrorCode::DatabaseCorrupt => {}
            Err(e) => return fail(e),
        }
    }
    match s3bgu_core::set_aside_database(&a.db) {
        Ok(aside) => {
            println!(
                "moved {} aside to {}; the next run starts an empty queue (add unfinished files again)",
                a.db.display(),
                aside.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => fail(e),
    }
}

/// `status` when some upload is FAILED (resumable).
const EXIT_SOME_FAILED: u8 = 3;
/// `status` when none failed but some are not finished (queued, running,
/// paused: `s3bgu resume` goes on).
const EXIT_SOME_UNFINISHED: u8 = 4;

/// What `status` answers for a queue: 0 when nothing is left to do.
fn status_exit(list: &[UploadInfo]) -> u8 {
    if list.iter().any(|u| u.state == UploadState::Failed) {
        EXIT_SOME_FAILED
    } else if list.iter().any(|u| !u.state.is_final()) {
        EXIT_SOME_UNFINISHED
    } else {
        0
    }
}

async fn run_status(a: StatusArgs) -> ExitCode {
    if !a.db.exists() {
        return fail(format!("no queue database at {}", a.db.display()));
    }
    let list = match s3bgu_core::read_queue(&a.db) {
        Ok(l) => l,
        Err(e) => return fail(e),
    };
    output::report(&list, a.json, None);
    ExitCode::from(status_exit(&list))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_need_a_unit_and_show_in_the_largest_exact_one() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration(" 250ms "), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        for bad in [
            "",
            "s",
            "10",
            "1.5s",
            "10 s",
            "10sec",
            "-1s",
            "18446744073709551616ms",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?} was accepted");
        }
        assert!(parse_timeout("99ms").is_err());
        assert!(parse_timeout("100ms").is_ok());
        assert!(parse_delay("0s").is_ok());
        assert_eq!(show_ms(1_500), "1500ms");
        assert_eq!(show_ms(120_000), "2m");
        assert_eq!(show_ms(7_200_000), "2h");
    }

    #[test]
    fn a_base_delay_over_the_maximum_is_refused() {
        let mut r = RetryPolicy::default();
        let args = RetryArgs {
            retry_base_delay: Some(Duration::from_secs(90)),
            ..RetryArgs::default()
        };
        let e = args.apply(&mut r).unwrap_err();
        assert!(
            e.contains("--retry-base-delay 90s is longer than --retry-max-delay 1m"),
            "{e}"
        );
        let args = RetryArgs {
            retry_base_delay: Some(Duration::from_secs(90)),
            retry_max_delay: Some(Duration::from_secs(120)),
            ..RetryArgs::default()
        };
        args.apply(&mut r).unwrap();
        assert_eq!((r.base_delay_ms, r.max_delay_ms), (90_000, 120_000));
    }
}
