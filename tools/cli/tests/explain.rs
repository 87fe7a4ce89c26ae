//! What `s3bgu` tells a person when things go wrong: retries as they
//! happen, https:// against a plain-HTTP server, a URL without a scheme,
//! `status` exit codes, and logs without colour codes in a pipe.

use s3bgu_testkit::{Harness, HarnessOptions};
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_s3bgu");

fn s3bgu(dir: &Path) -> Command {
    let mut c = Command::new(BIN);
    c.current_dir(dir);
    c
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A port nothing listens on: bound, then released.
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

#[test]
fn an_unreachable_backend_shows_each_retry_with_its_reason_and_wait() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.bin"), b"abc").unwrap();
    let backend = format!("http://127.0.0.1:{}", closed_port());
    let out = s3bgu(dir.path())
        .args(["upload", "a.bin", "--backend", &backend])
        .args(["--max-attempts", "3", "--retry-base-delay", "10ms"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    // Not a terminal: one line per retry, naming the upload, the attempt,
    // why it failed and when the next one comes.
    for n in [1, 2] {
        let line = err
            .lines()
            .find(|l| l.contains(&format!("attempt {n} of 3 failed")))
            .unwrap_or_else(|| panic!("no line for attempt {n}: {err}"));
        assert!(line.starts_with("s3bgu: upload 1 (a.bin): "), "{line}");
        assert!(line.contains("startUpload connection failed"), "{line}");
        assert!(line.contains("next try in "), "{line}");
    }
    assert!(!err.contains("attempt 3 of 3 failed"), "{err}");
    assert!(err.contains("gave up after 3 attempts"), "{err}");
}

#[test]
fn https_against_a_plain_http_server_fails_at_once_saying_so() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.bin"), b"abc").unwrap();
    // The embedded backend of another run serves plain HTTP.
    let mut serve = s3bgu(dir.path())
        .args(["serve", "--listen", "127.0.0.1:0", "--store", "st"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut first = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(serve.stdout.take().unwrap()),
        &mut first,
    )
    .unwrap();
    let plain = first
        .trim()
        .strip_prefix("listening on ")
        .unwrap()
        .to_owned();
    let https = plain.replacen("http://", "https://", 1);
    let started = Instant::now();
    let out = s3bgu(dir.path())
        .args(["upload", "a.bin", "--backend", &https, "--json"])
        .output()
        .unwrap();
    let took = started.elapsed();
    serve.kill().unwrap();
    let _ = serve.wait();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("this server does not speak TLS"), "{err}");
    assert!(err.contains("backend_unavailable"), "{err}");
    assert!(!err.contains("attempt 1 of"), "not retried: {err}");
    // Generous: the old behaviour retried for about a minute.
    assert!(took < Duration::from_secs(30), "{took:?}");
}

#[test]
fn a_url_without_a_scheme_is_named_by_its_flag() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.bin"), b"abc").unwrap();
    for (flag, value) in [
        ("--backend", "localhost:8080"),
        ("--backend", "192.168.1.5:8080"),
    ] {
        let out = s3bgu(dir.path())
            .args(["upload", "a.bin", flag, value])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1));
        let err = stderr(&out);
        assert!(
            err.contains(&format!(
                "{flag} {value} has no scheme: write http://{value}"
            )),
            "{err}"
        );
        assert!(!err.contains("startUploadApi"), "{err}");
    }
    let out = s3bgu(dir.path())
        .args([
            "check",
            "--start-url",
            "api.example.com/start",
            "--urls-url",
            "https://api.example.com/urls",
            "--complete-url",
            "https://api.example.com/complete",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("--start-url api.example.com/start has no scheme"),
        "{}",
        stderr(&out)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_exits_by_what_is_left_to_do() {
    let h = Harness::start(HarnessOptions::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    let backend = h.backend_url.clone();
    tokio::task::spawn_blocking(move || {
        let dir = path.as_path();
        let status = || s3bgu(dir).args(["status"]).output().unwrap().status.code();
        std::fs::write(dir.join("a.bin"), b"abc").unwrap();
        std::fs::write(dir.join("b.bin"), b"defg").unwrap();
        // Queued, not sent: unfinished.
        let add = s3bgu(dir)
            .args(["add", "a.bin", "--backend", &backend])
            .output()
            .unwrap();
        assert!(add.status.success(), "{}", stderr(&add));
        assert_eq!(status(), Some(4));
        // Finished: nothing left to do.
        let resume = s3bgu(dir).args(["resume"]).output().unwrap();
        assert!(resume.status.success(), "{}", stderr(&resume));
        assert_eq!(status(), Some(0));
        // One failed beside a completed one.
        let refused = format!("http://127.0.0.1:{}", closed_port());
        let failed = s3bgu(dir)
            .args(["upload", "b.bin", "--backend", &refused])
            .args(["--max-attempts", "1"])
            .output()
            .unwrap();
        assert_eq!(failed.status.code(), Some(1));
        assert_eq!(status(), Some(3));
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_in_a_pipe_have_no_colour_codes() {
    let h = Harness::start(HarnessOptions::default()).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.bin"), b"abc").unwrap();
    let out = s3bgu(dir.path())
        .env("S3BGU_LOG", "info")
        .env_remove("NO_COLOR")
        .args(["upload", "a.bin", "--backend", &h.backend_url])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("INFO"), "the log is on: {err}");
    assert!(!err.contains('\u{1b}'), "escape codes in a pipe: {err:?}");
}
