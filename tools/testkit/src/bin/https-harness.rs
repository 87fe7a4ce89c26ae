//! The harness over HTTPS with a private CA, for suites in other languages
//! (the Kotlin JVM suite) and the benchmark: writes the CA's PEM to the path
//! given as the first argument, prints `backend <url>`, `store <dir>` and
//! `store-url <url>`, and runs until its stdin closes.
//!
//! Options after the path: `--store DIR` keeps the objects in DIR (the
//! benchmark puts it in memory), `--part-size BYTES` sets the backend's part
//! size.
//!
//! Commands on stdin, one a line, each answered by one line: `delay-puts MS`
//! (every part PUT waits MS before the store handles it; 0: off) answers
//! `ok`; `part-puts` answers the count of part PUTs the store received.

use s3bgu_testkit::tls::{HarnessTls, TestCa};
use s3bgu_testkit::{Harness, HarnessOptions};
use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::time::Duration;

const USAGE: &str = "usage: https-harness CA_PEM_PATH [--store DIR] [--part-size BYTES]";

fn main() {
    let mut args = std::env::args().skip(1);
    let ca_path = args.next().expect(USAGE);
    let mut opts = HarnessOptions::default();
    while let Some(flag) = args.next() {
        let value = args.next().expect(USAGE);
        match flag.as_str() {
            "--store" => opts.store_dir = Some(PathBuf::from(value)),
            "--part-size" => opts.part_size = value.parse().expect(USAGE),
            _ => panic!("{USAGE}"),
        }
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let ca = TestCa::new("s3bgu https-harness CA");
    opts.tls = Some(HarnessTls::new(&ca, &["127.0.0.1"]));
    let harness = runtime.block_on(Harness::start(opts));
    std::fs::write(&ca_path, ca.pem()).expect("write the CA");
    println!("backend {}", harness.backend_url);
    println!("store {}", harness.store_dir.display());
    println!("store-url {}", harness.store_url);
    let _ = std::io::stdout().flush();
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        let mut words = line.split_whitespace();
        let answer = match (words.next(), words.next().map(str::parse::<u64>)) {
            (Some("delay-puts"), Some(Ok(ms))) => {
                harness.faults.delay_puts(Duration::from_millis(ms));
                "ok".to_string()
            }
            (Some("part-puts"), None) => harness.stats.total_part_puts().to_string(),
            _ => format!("error: unknown command {line:?}"),
        };
        println!("{answer}");
        let _ = std::io::stdout().flush();
    }
    drop(harness);
    drop(runtime);
}
