//! The reference backend and the s3s-fs store over plain HTTP on loopback,
//! for the app-on-an-emulator tests (.github/workflows/native.yml,
//! example-app/e2e/run.sh): prints `backend <url>`, `store-url <url>` and
//! `store <dir>`, and runs until its stdin closes.
//!
//! It is `s3bgu serve` plus what those tests need and `serve` deliberately
//! lacks (its log leaves out store requests, which carry presigned queries):
//! counting the part PUTs and slowing them down, so the app can be sent to
//! the background or killed while an upload is surely under way.
//!
//! Options: `--store DIR` keeps the objects in DIR, `--part-size BYTES` sets
//! the backend's part size.
//!
//! Commands on stdin, one a line, each answered by one line:
//! `delay-puts MS` (every part PUT waits MS first; 0: off) -> `ok`;
//! `part-puts` -> part PUTs received; `ok-part-puts` -> those answered 2xx;
//! `parts-stored-twice` -> parts of an upload answered 2xx more than once
//! (after `mark-kill`: only parts first stored before the mark);
//! `mark-kill` -> `ok`, the moment the app's process is killed
//! (a completed part sent again); `completes` -> complete calls received.

use s3bgu_testkit::{Harness, HarnessOptions, Route};
use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::time::Duration;

const USAGE: &str = "usage: e2e-harness [--store DIR] [--part-size BYTES]";

/// Parts of an upload answered 2xx more than once. With `confirmed_before`
/// (the number of store requests seen when the app was killed), only parts
/// first stored before that count: a PUT still on its way at the kill may
/// be stored after it, its answer lost with the process, and sending that
/// part again is right.
fn parts_stored_twice(harness: &Harness, confirmed_before: Option<usize>) -> usize {
    let mut ok: BTreeMap<(String, u32), (usize, u32)> = BTreeMap::new();
    for (i, r) in harness.stats.store_requests().into_iter().enumerate() {
        if let (Some(part), Some(status)) = (r.part, r.status) {
            if (200..300).contains(&status) {
                let entry = ok.entry(part).or_insert((i, 0));
                entry.1 += 1;
            }
        }
    }
    ok.values()
        .filter(|&&(first, n)| n > 1 && confirmed_before.is_none_or(|mark| first < mark))
        .count()
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mut opts = HarnessOptions::default();
    while let Some(flag) = args.next() {
        let Some(value) = args.next() else {
            eprintln!("{USAGE}");
            std::process::exit(2);
        };
        match (flag.as_str(), value.parse::<u64>()) {
            ("--store", _) => opts.store_dir = Some(PathBuf::from(value)),
            ("--part-size", Ok(bytes)) => opts.part_size = bytes,
            _ => {
                eprintln!("{USAGE}");
                std::process::exit(2);
            }
        }
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("e2e-harness: no runtime: {e}");
            std::process::exit(1);
        }
    };
    let harness = runtime.block_on(Harness::start(opts));
    println!("backend {}", harness.backend_url);
    println!("store-url {}", harness.store_url);
    println!("store {}", harness.store_dir.display());
    let _ = std::io::stdout().flush();
    let mut killed_at: Option<usize> = None;
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        let mut words = line.split_whitespace();
        let answer = match (words.next(), words.next().map(str::parse::<u64>)) {
            (Some("delay-puts"), Some(Ok(ms))) => {
                harness.faults.delay_puts(Duration::from_millis(ms));
                "ok".to_string()
            }
            (Some("part-puts"), None) => harness.stats.total_part_puts().to_string(),
            (Some("ok-part-puts"), None) => harness.stats.ok_part_puts().to_string(),
            (Some("parts-stored-twice"), None) => {
                parts_stored_twice(&harness, killed_at).to_string()
            }
            (Some("mark-kill"), None) => {
                killed_at = Some(harness.stats.store_requests().len());
                "ok".to_string()
            }
            (Some("completes"), None) => harness.stats.backend_calls(Route::Complete).to_string(),
            _ => format!("error: unknown command {line:?}"),
        };
        println!("{answer}");
        let _ = std::io::stdout().flush();
    }
    drop(harness);
    drop(runtime);
}
