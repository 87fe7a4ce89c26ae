//! The harness over plain HTTP, for suites that bring their own backend (the
//! Node backend kit's tests): prints `store-url <url>`, `bucket <name>`,
//! `access-key <id>`, `secret-file <path>`, `store <dir>` and
//! `backend <url>` (the reference backend over the same store, to compare
//! answers with), then runs until its stdin closes.
//!
//! The secret is given as a file path, not printed, so it stays out of test
//! logs. Options: `--store DIR` keeps the objects in DIR.
//!
//! Commands on stdin, one a line, each answered by one line: `part-puts`
//! answers the count of part PUTs (UploadPart) the store received.

use s3bgu_testkit::{Harness, HarnessOptions};
use std::io::{BufRead, Write};
use std::path::PathBuf;

const USAGE: &str = "usage: store-harness [--store DIR]";

fn main() {
    let mut args = std::env::args().skip(1);
    let mut opts = HarnessOptions::default();
    while let Some(flag) = args.next() {
        match (flag.as_str(), args.next()) {
            ("--store", Some(dir)) => opts.store_dir = Some(PathBuf::from(dir)),
            _ => {
                eprintln!("{USAGE}");
                std::process::exit(2);
            }
        }
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let harness = runtime.block_on(Harness::start(opts));
    println!("store-url {}", harness.store_url);
    println!("bucket {}", s3bgu_backend::EMBEDDED_BUCKET);
    println!("access-key {}", s3bgu_backend::EMBEDDED_ACCESS_KEY);
    // Where embedded_credentials keeps the secret of a store directory.
    let secret_file = harness.store_dir.join(".s3bgu-secret");
    assert!(secret_file.is_file(), "no store secret at {secret_file:?}");
    println!("secret-file {}", secret_file.display());
    println!("store {}", harness.store_dir.display());
    println!("backend {}", harness.backend_url);
    let _ = std::io::stdout().flush();
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        let answer = match line.trim() {
            "part-puts" => harness.stats.total_part_puts().to_string(),
            other => format!("error: unknown command {other:?}"),
        };
        println!("{answer}");
        let _ = std::io::stdout().flush();
    }
    drop(harness);
    drop(runtime);
}
