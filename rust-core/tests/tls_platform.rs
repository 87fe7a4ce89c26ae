//! The platform trust hook (`install_platform_trust`): with it installed,
//! the device decides on the chain, the engine still checks the host name.
//! One test in its own binary: the hook is process-wide.

mod common;

use common::*;
use s3bgu_core::tls::{install_platform_trust, remove_platform_trust, PlatformTrust, TrustError};
use s3bgu_core::{ErrorCode, Selector, UploadState};
use s3bgu_testkit::tls::{HarnessTls, TestCa};
use s3bgu_testkit::{Harness, HarnessOptions};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// A device whose store holds one certificate authority: it trusts a chain
/// whose server certificate is the one that CA issued for the harness.
struct Device {
    trusted_leaf: Vec<u8>,
    accept: AtomicBool,
    calls: Mutex<Vec<(usize, String, String)>>,
}

impl PlatformTrust for Device {
    fn check_server_trusted(
        &self,
        chain_der: Vec<Vec<u8>>,
        auth_type: String,
        host: String,
    ) -> Result<(), TrustError> {
        self.calls
            .lock()
            .unwrap()
            .push((chain_der.len(), auth_type, host));
        if self.accept.load(Ordering::SeqCst) && chain_der.first() == Some(&self.trusted_leaf) {
            Ok(())
        } else {
            Err(TrustError::Untrusted {
                reason: "not in the device store".into(),
            })
        }
    }
}

async fn upload_once(h: &Harness, size: u64) -> s3bgu_core::UploadInfo {
    let env = env(h, 4).await;
    let path = env.file("f.bin", size);
    let u = env.add(&path, "t").await;
    let end = env.settle(u.id).await;
    if end.state == UploadState::Completed {
        assert_eq!(
            h.object_bytes(end.key.as_deref().unwrap()).unwrap(),
            std::fs::read(&path).unwrap()
        );
    }
    env.uploader.cancel(Selector::All).await.unwrap();
    end
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_device_decides_on_the_chain_and_the_engine_on_the_name() {
    let ca = TestCa::new("device CA");
    let tls = HarnessTls::new(&ca, &["127.0.0.1"]);
    let device = Arc::new(Device {
        trusted_leaf: tls.server.chain[0].to_vec(),
        accept: AtomicBool::new(true),
        calls: Mutex::default(),
    });
    let h = Harness::start(HarnessOptions {
        tls: Some(tls),
        ..HarnessOptions::default()
    })
    .await;

    // Bundled roots do not know the CA.
    let end = upload_once(&h, 1000).await;
    assert_eq!(end.state, UploadState::Failed);

    // The device trusts it: no extra roots needed, backend and store alike.
    install_platform_trust(device.clone());
    let end = upload_once(&h, PART + 10).await;
    assert_eq!(end.state, UploadState::Completed, "{:?}", end.error);
    {
        let calls = device.calls.lock().unwrap();
        assert!(calls.len() >= 2, "backend and store handshakes: {calls:?}");
        for (len, auth, host) in calls.iter() {
            assert_eq!(
                (*len, auth.as_str(), host.as_str()),
                (1, "UNKNOWN", "127.0.0.1")
            );
        }
    }

    // The device refuses: a typed failure that says so.
    device.accept.store(false, Ordering::SeqCst);
    let end = upload_once(&h, 1000).await;
    assert_eq!(end.state, UploadState::Failed);
    let e = end.error.unwrap();
    assert_eq!(e.code, ErrorCode::BackendUnavailable);
    assert!(e.message.contains("not trusted"), "{e}");

    // A certificate for another name: refused here before the device is asked.
    device.accept.store(true, Ordering::SeqCst);
    let other = HarnessTls::new(&ca, &["uploads.example.com"]);
    let device2 = Arc::new(Device {
        trusted_leaf: other.server.chain[0].to_vec(),
        accept: AtomicBool::new(true),
        calls: Mutex::default(),
    });
    install_platform_trust(device2.clone());
    let h2 = Harness::start(HarnessOptions {
        tls: Some(other),
        ..HarnessOptions::default()
    })
    .await;
    let end = upload_once(&h2, 1000).await;
    assert_eq!(end.state, UploadState::Failed);
    assert!(end.error.unwrap().message.contains("another host name"));
    assert!(device2.calls.lock().unwrap().is_empty());

    remove_platform_trust();
}
