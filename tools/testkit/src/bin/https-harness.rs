//! The harness over HTTPS with a private CA, for suites in other languages
//! (the Kotlin JVM suite): writes the CA's PEM to the path given as the only
//! argument, prints `backend <url>`, and runs until its stdin closes.

use s3bgu_testkit::tls::{HarnessTls, TestCa};
use s3bgu_testkit::{Harness, HarnessOptions};
use std::io::Read;

fn main() {
    let ca_path = std::env::args()
        .nth(1)
        .expect("usage: https-harness CA_PEM_PATH");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let ca = TestCa::new("s3bgu https-harness CA");
    let harness = runtime.block_on(Harness::start(HarnessOptions {
        tls: Some(HarnessTls::new(&ca, &["127.0.0.1"])),
        ..HarnessOptions::default()
    }));
    std::fs::write(&ca_path, ca.pem()).expect("write the CA");
    println!("backend {}", harness.backend_url);
    println!("store {}", harness.store_dir.display());
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
    drop(harness);
    drop(runtime);
}
