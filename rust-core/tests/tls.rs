//! HTTPS on loopback with a private CA made in the test: trusted through
//! `extraRootCertificatesPem` (backend calls and part PUTs), refused without
//! it, refused for a certificate of another host name. (The platform trust
//! hook is process-wide: its tests are in `tls_platform.rs`.)

mod common;

use common::*;
use s3bgu_core::{ErrorCode, UploadState};
use s3bgu_testkit::tls::{HarnessTls, TestCa};
use s3bgu_testkit::{Harness, HarnessOptions};

async fn https_harness(ca: &TestCa, names: &[&str]) -> Harness {
    Harness::start(HarnessOptions {
        tls: Some(HarnessTls::new(ca, names)),
        ..HarnessOptions::default()
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_ca_in_the_config_carries_a_whole_upload_over_https() {
    let ca = TestCa::new("s3bgu test CA");
    let h = https_harness(&ca, &["127.0.0.1"]).await;
    assert!(h.backend_url.starts_with("https://") && h.store_url.starts_with("https://"));
    let env = env(&h, 4).await;
    let mut config = config_for(&h, 4);
    config.extra_root_certificates_pem = vec![ca.pem()];
    env.uploader.set_config(config).await.unwrap();

    let size = 2 * PART + 777;
    let path = env.file("over-https.bin", size);
    let u = env.add(&path, "t").await;
    let done = env.settle(u.id).await;
    assert_eq!(done.state, UploadState::Completed, "{:?}", done.error);
    let key = done.key.unwrap();
    assert_eq!(h.object_bytes(&key).unwrap(), std::fs::read(&path).unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_ca_the_upload_fails_as_untrusted_and_the_new_roots_fix_it() {
    let ca = TestCa::new("s3bgu test CA");
    let h = https_harness(&ca, &["127.0.0.1"]).await;
    let env = env(&h, 4).await;
    let path = env.file("untrusted.bin", PART + 1);
    let u = env.add(&path, "t").await;
    let failed = env.settle(u.id).await;
    assert_eq!(failed.state, UploadState::Failed);
    let e = failed.error.unwrap();
    // Bounded by the retry policy like any connection failure (captive
    // portals make it transient on phones), then a typed, clear error.
    assert_eq!(e.code, ErrorCode::BackendUnavailable, "{e}");
    assert!(e.message.contains("TLS certificate is not trusted"), "{e}");
    assert!(e.message.contains("extraRootCertificatesPem"), "{e}");

    // Another CA's certificate is no better.
    let other = TestCa::new("another CA");
    let mut config = config_for(&h, 4);
    config.extra_root_certificates_pem = vec![other.pem()];
    env.uploader.set_config(config.clone()).await.unwrap();
    env.uploader
        .resume(s3bgu_core::Selector::Upload(u.id))
        .await
        .unwrap();
    let again = env.settle(u.id).await;
    assert_eq!(again.state, UploadState::Failed);
    assert!(again.error.unwrap().message.contains("not trusted"));

    // The right root rebuilds the client: the same upload completes.
    config.extra_root_certificates_pem = vec![other.pem(), ca.pem()];
    env.uploader.set_config(config).await.unwrap();
    env.uploader
        .resume(s3bgu_core::Selector::Upload(u.id))
        .await
        .unwrap();
    let done = env.settle(u.id).await;
    assert_eq!(done.state, UploadState::Completed, "{:?}", done.error);
    assert_eq!(
        h.object_bytes(&done.key.unwrap()).unwrap(),
        std::fs::read(&path).unwrap()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_for_another_host_name_is_refused() {
    let ca = TestCa::new("s3bgu test CA");
    let h = https_harness(&ca, &["uploads.example.com"]).await;
    let env = env(&h, 4).await;
    let mut config = config_for(&h, 4);
    config.extra_root_certificates_pem = vec![ca.pem()];
    env.uploader.set_config(config).await.unwrap();
    let path = env.file("wrong-name.bin", 1000);
    let u = env.add(&path, "t").await;
    let failed = env.settle(u.id).await;
    assert_eq!(failed.state, UploadState::Failed);
    let e = failed.error.unwrap();
    assert_eq!(e.code, ErrorCode::BackendUnavailable, "{e}");
    assert!(e.message.contains("another host name"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roots_survive_a_restart_of_the_engine() {
    let ca = TestCa::new("s3bgu test CA");
    let h = https_harness(&ca, &["127.0.0.1"]).await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("queue.db");
    {
        let uploader = open(&db);
        let mut config = config_for(&h, 4);
        config.extra_root_certificates_pem = vec![ca.pem()];
        uploader.set_config(config).await.unwrap();
        uploader.shutdown().await;
    }
    // A fresh engine (a background job after a restart) reads the stored
    // roots and builds its client with them before any request.
    let uploader = open(&db);
    let path = write_file(dir.path(), "after-restart.bin", PART + 3, 9);
    let u = add(&uploader, &path, "t").await.unwrap();
    let list = tokio::time::timeout(
        std::time::Duration::from_secs(60),
        uploader.wait_idle(s3bgu_core::Selector::Upload(u.id)),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(list[0].state, UploadState::Completed, "{:?}", list[0].error);
    uploader.shutdown().await;
}

/// A plain-HTTP server that answers anything with a 400 page (what an HTTP
/// server says to a TLS handshake) and counts the connections it got.
async fn plain_http_server() -> (
    std::net::SocketAddr,
    std::sync::Arc<std::sync::atomic::AtomicUsize>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let count = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = count.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            tokio::spawn(async move {
                let mut buf = [0u8; 1024];
                let _ = stream.read(&mut buf).await;
                let _ = stream
                    .write_all(
                        b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                    )
                    .await;
            });
        }
    });
    (addr, count)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_to_a_plain_http_server_fails_at_once_saying_so() {
    let h = harness().await;
    let (addr, connections) = plain_http_server().await;
    let env = env(&h, 4).await;
    let mut config = config_for(&h, 4);
    config.start_upload_url = format!("https://{addr}/startUpload");
    env.uploader.set_config(config).await.unwrap();
    let path = env.file("not-tls.bin", 1000);
    let u = env.add(&path, "t").await;
    let failed = env.settle(u.id).await;
    assert_eq!(failed.state, UploadState::Failed);
    let e = failed.error.unwrap();
    assert_eq!(e.code, ErrorCode::BackendUnavailable, "{e}");
    assert!(e.message.contains("does not speak TLS"), "{e}");
    // One attempt: retrying cannot turn the server into a TLS one.
    assert_eq!(
        connections.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "{e}"
    );
}
