//! Memory does not grow with part size: the CLI's peak RSS when sending
//! 64 MiB parts (4 in flight) stays close to its peak for a 1 MiB file.
//! One test in its own binary, so this process has no other children.

mod common;

use common::{s3bgu_json, sparse_file, MIB};
use s3bgu_testkit::{Harness, HarnessOptions};
use std::path::Path;

/// Largest resident set of any waited-for child so far, in bytes.
fn children_peak_rss() -> u64 {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage fills the struct it is given; RUSAGE_CHILDREN is valid.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, usage.as_mut_ptr()) };
    assert_eq!(rc, 0, "getrusage");
    // SAFETY: initialised by the successful call above.
    let usage = unsafe { usage.assume_init() };
    usage.ru_maxrss as u64 * 1024 // KiB on Linux
}

fn upload(dir: &Path, backend: &str, file: &str) {
    let v = s3bgu_json(
        dir,
        &["upload", "--backend", backend, "--concurrency", "4", file],
    );
    assert_eq!(v["uploads"][0]["state"], "COMPLETED");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peak_memory_does_not_grow_with_part_size() {
    let h = Harness::start(HarnessOptions {
        part_size: 64 * MIB,
        ..HarnessOptions::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    sparse_file(&dir.path().join("small.bin"), MIB);
    sparse_file(&dir.path().join("big.bin"), 256 * MIB);

    upload(dir.path(), &h.backend_url, "small.bin");
    let small_peak = children_peak_rss();
    upload(dir.path(), &h.backend_url, "big.bin");
    let big_peak = children_peak_rss();

    let growth = big_peak.saturating_sub(small_peak);
    eprintln!(
        "peak RSS: {:.1} MiB for 1 MiB in one part, {:.1} MiB for 256 MiB in 4 x 64 MiB parts in flight (+{:.1} MiB)",
        small_peak as f64 / MIB as f64,
        big_peak as f64 / MIB as f64,
        growth as f64 / MIB as f64
    );
    // One part-sized buffer alone would add 64 MiB; four would add 256 MiB.
    assert!(
        growth < 32 * MIB,
        "memory grew by {} MiB with 64 MiB parts",
        growth / MIB
    );
}
