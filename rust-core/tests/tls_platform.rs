//! The platform trust hook (`install_platform_trust`): with it installed,
//! the device decides on the chain, the engine still checks the host name.
//! Its own binary, and its tests one at a time: the hook is process-wide.

mod common;

use common::*;
use s3bgu_core::ffi::UploaderError;
use s3bgu_core::tls::{install_platform_trust, remove_platform_trust, PlatformTrust, TrustError};
use s3bgu_core::{ErrorCode, Selector, UploadState};
use s3bgu_testkit::tls::{HarnessTls, TestCa};
use s3bgu_testkit::{Harness, HarnessOptions};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// Held by each test: the hook is process-wide.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

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
    let _one = ONE_AT_A_TIME.lock().await;
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
    install_platform_trust(device.clone()).expect("installed");
    // Only the handshakes from here on: installing asked about a probe.
    device.calls.lock().unwrap().clear();
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
    install_platform_trust(device2.clone()).expect("installed");
    device2.calls.lock().unwrap().clear();
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

/// A device whose first checks hang (trust evaluation waiting on the
/// network) until the test lets them go; later ones answer at once.
struct SlowDevice {
    trusted_leaf: Vec<u8>,
    hang_first: usize,
    state: Mutex<SlowState>,
    changed: Condvar,
}

#[derive(Default)]
struct SlowState {
    calls: usize,
    hanging: usize,
    released: bool,
}

impl SlowDevice {
    fn hanging(&self) -> usize {
        self.state.lock().unwrap().hanging
    }

    fn release(&self) {
        self.state.lock().unwrap().released = true;
        self.changed.notify_all();
    }
}

impl PlatformTrust for SlowDevice {
    fn check_server_trusted(
        &self,
        chain_der: Vec<Vec<u8>>,
        _auth_type: String,
        host: String,
    ) -> Result<(), TrustError> {
        let refuse = || TrustError::Untrusted {
            reason: "not in the device store".into(),
        };
        if host != "127.0.0.1" || chain_der.first() != Some(&self.trusted_leaf) {
            return Err(refuse());
        }
        let mut st = self.state.lock().unwrap();
        st.calls += 1;
        if st.calls <= self.hang_first {
            st.hanging += 1;
            while !st.released {
                st = self.changed.wait(st).unwrap();
            }
            st.hanging -= 1;
        }
        Ok(())
    }
}

/// Waits (bounded, polling from the test's own runtime) until `pred` holds.
async fn until(what: &str, pred: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !pred() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The engine's answer to a call, bounded: a stalled engine never answers.
async fn answer<T>(what: &str, call: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(30), call)
        .await
        .unwrap_or_else(|_| panic!("{what}: no answer within 30 s"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trust_check_that_hangs_does_not_stall_the_engine() {
    let _one = ONE_AT_A_TIME.lock().await;
    let ca = TestCa::new("device CA");
    let tls = HarnessTls::new(&ca, &["127.0.0.1"]);
    // As many hanging checks as the engine has worker threads.
    let device = Arc::new(SlowDevice {
        trusted_leaf: tls.server.chain[0].to_vec(),
        hang_first: 2,
        state: Mutex::default(),
        changed: Condvar::new(),
    });
    let h = Harness::start(HarnessOptions {
        tls: Some(tls),
        ..HarnessOptions::default()
    })
    .await;
    install_platform_trust(device.clone()).expect("installed");
    let env = env(&h, 4).await;

    // Two uploads whose startUpload handshakes hang in the device's check.
    let a1 = answer("adding a1", env.add(&env.file("a1.bin", 1000), "t")).await;
    until("the first check to hang", || device.hanging() == 1).await;
    let a2 = answer(
        "adding a2 while one trust check hangs",
        env.add(&env.file("a2.bin", 2000), "t"),
    )
    .await;
    until("the second check to hang", || device.hanging() == 2).await;

    // The engine still answers, and another upload goes all the way
    // (its handshakes are checked at once) while both checks hang.
    answer(
        "status() while two trust checks hang",
        env.uploader.status(),
    )
    .await
    .expect("status");
    let path_b = env.file("b.bin", PART + 10);
    let b = answer(
        "adding b while two trust checks hang",
        env.add(&path_b, "t"),
    )
    .await;
    let b = env.settle(b.id).await;
    assert_eq!(b.state, UploadState::Completed, "{:?}", b.error);
    assert_object(&h, &b, &path_b);
    assert_eq!(device.hanging(), 2, "both checks still hang");

    // Once the device answers, the held uploads finish too.
    device.release();
    for id in [a1.id, a2.id] {
        let done = env.settle(id).await;
        assert_eq!(done.state, UploadState::Completed, "{:?}", done.error);
    }
    env.uploader.cancel(Selector::All).await.unwrap();
    remove_platform_trust();
}

/// The classic debug trust manager: every chain is fine.
struct AcceptAnything;

impl PlatformTrust for AcceptAnything {
    fn check_server_trusted(
        &self,
        _: Vec<Vec<u8>>,
        _: String,
        _: String,
    ) -> Result<(), TrustError> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trust_that_accepts_anything_is_not_installed() {
    let _one = ONE_AT_A_TIME.lock().await;
    remove_platform_trust();
    let refused = install_platform_trust(Arc::new(AcceptAnything)).expect_err("refused");
    assert!(
        matches!(refused, UploaderError::InvalidArgument { .. }),
        "{refused:?}"
    );
    assert!(
        refused.to_string().contains("accept any server"),
        "{refused}"
    );
    // Servers behind a CA nobody trusts are still refused.
    let ca = TestCa::new("nobody's CA");
    let h = Harness::start(HarnessOptions {
        tls: Some(HarnessTls::new(&ca, &["127.0.0.1"])),
        ..HarnessOptions::default()
    })
    .await;
    let end = upload_once(&h, 1000).await;
    remove_platform_trust();
    assert_eq!(end.state, UploadState::Failed, "an unknown CA was trusted");
    assert!(end.error.unwrap().message.contains("not trusted"));

    // One installed before stays when an accepting one is refused.
    let device = Arc::new(Device {
        trusted_leaf: Vec::new(),
        accept: AtomicBool::new(false),
        calls: Mutex::default(),
    });
    install_platform_trust(device.clone()).expect("a checking trust is installed");
    assert_eq!(
        device.calls.lock().unwrap().len(),
        1,
        "asked once, about the probe"
    );
    install_platform_trust(Arc::new(AcceptAnything)).expect_err("refused");
    device.calls.lock().unwrap().clear();
    let end = upload_once(&h, 1000).await;
    assert_eq!(end.state, UploadState::Failed);
    assert!(
        !device.calls.lock().unwrap().is_empty(),
        "the first trust still decides"
    );
    remove_platform_trust();
}
