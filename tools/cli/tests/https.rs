//! `s3bgu upload --ca-cert`: the CLI trusts a private CA for the backend and
//! the store (the benchmark's HTTPS rows depend on it), and without the flag
//! the same servers are refused.

use s3bgu_testkit::tls::{HarnessTls, TestCa};
use s3bgu_testkit::{Harness, HarnessOptions};
use serde_json::Value;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_s3bgu");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ca_cert_flag_trusts_a_private_ca_and_nothing_else_does() {
    let ca = TestCa::new("cli https test CA");
    let h = Harness::start(HarnessOptions {
        tls: Some(HarnessTls::new(&ca, &["127.0.0.1"])),
        ..HarnessOptions::default()
    })
    .await;
    assert!(h.backend_url.starts_with("https://"));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("photo.bin");
    let body: Vec<u8> = (0..300_000u32).map(|i| (i * 7 + 3) as u8).collect();
    std::fs::write(&file, &body).unwrap();
    let pem = dir.path().join("ca.pem");
    std::fs::write(&pem, ca.pem()).unwrap();

    // Without the flag the private CA is unknown: the upload fails, typed
    // (two quick attempts: the default policy retries for about a minute).
    let out = Command::new(BIN)
        .args([
            "upload",
            "--json",
            "--max-attempts",
            "2",
            "--retry-base-delay",
            "50ms",
        ])
        .args(["--backend", &h.backend_url, "--db"])
        .arg(dir.path().join("untrusted.db"))
        .arg(&file)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let v: Value = serde_json::from_slice(&out.stdout).expect("json on stdout");
    assert_eq!(v["uploads"][0]["state"], "FAILED", "{v}");

    let out = Command::new(BIN)
        .args(["upload", "--json", "--backend", &h.backend_url, "--ca-cert"])
        .arg(&pem)
        .arg("--db")
        .arg(dir.path().join("trusted.db"))
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let u = &v["uploads"][0];
    assert_eq!(u["state"], "COMPLETED", "{v}");
    assert_eq!(h.object_bytes(u["key"].as_str().unwrap()).unwrap(), body);

    // A file that is not PEM is a clear error, before anything is sent.
    let not_pem = dir.path().join("not-a-cert.pem");
    std::fs::write(&not_pem, "this is not a certificate\n").unwrap();
    let out = Command::new(BIN)
        .args(["upload", "--backend", &h.backend_url, "--ca-cert"])
        .arg(&not_pem)
        .arg("--db")
        .arg(dir.path().join("bad.db"))
        .arg(&file)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("extraRootCertificatesPem"), "{err}");
}
