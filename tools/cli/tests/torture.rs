//! Kill torture: a throttled multi-file upload killed with SIGKILL at 30
//! random moments, resumed with `s3bgu resume` each time. At the end every
//! object is byte-identical, the database passes `PRAGMA integrity_check`, and
//! no part was PUT again after its ETag was committed.
//!
//! The moments come from a seed printed at the start; set
//! `S3BGU_TORTURE_SEED` to replay a run.

mod common;

use common::{committed_parts, s3bgu_json, MIB};
use s3bgu_testkit::{Harness, HarnessOptions};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_s3bgu");
const PART: u64 = 5 * MIB;
const KILLS: usize = 30;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn queued(db: &Path) -> usize {
    if !db.exists() {
        return 0;
    }
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.query_row("SELECT COUNT(*) FROM uploads", [], |r| r.get::<_, i64>(0))
        .map(|n| n as usize)
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_kills_lose_nothing_and_resend_no_committed_part() {
    let seed = std::env::var("S3BGU_TORTURE_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    eprintln!("kill torture seed: {seed} (S3BGU_TORTURE_SEED={seed} replays it)");
    let mut rng = Rng(seed);

    let h = Harness::start(HarnessOptions::default()).await;
    h.faults.delay_put_responses(Duration::from_millis(1000));
    let dir = tempfile::tempdir().unwrap();
    let mut files: Vec<(PathBuf, u64)> = Vec::new();
    for i in 0..8u64 {
        let size = 8 * MIB + rng.below(4 * MIB);
        let path = dir.path().join(format!("f{i}.bin"));
        let data: Vec<u8> = (0..size)
            .map(|j| (j.wrapping_mul(31).wrapping_add(i * 7919) >> 3) as u8)
            .collect();
        std::fs::write(&path, data).unwrap();
        files.push((path, size));
    }
    let total: u64 = files.iter().map(|f| f.1).sum();
    assert!(total >= 64 * MIB);
    let db = dir.path().join(".s3bgu/queue.db");

    // PUTs counted for a part when its ETag was first seen committed.
    let mut puts_at_commit: BTreeMap<(String, u32), u32> = BTreeMap::new();
    let started = Instant::now();
    let mut finished_early = 0;
    for _ in 0..KILLS {
        let mut cmd = Command::new(BIN);
        cmd.current_dir(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        // `upload` again until every file is queued (a kill can land while
        // files are still being hashed and added); it is idempotent.
        if queued(&db) < files.len() {
            cmd.args(["upload", "--backend", &h.backend_url, "--concurrency", "2"]);
            cmd.args(files.iter().map(|f| f.0.as_os_str()));
        } else {
            cmd.args(["resume"]);
        }
        let mut child = cmd.spawn().unwrap();
        let wait = Duration::from_millis(50 + rng.below(1450));
        std::thread::sleep(wait);
        if let Some(status) = child.try_wait().unwrap() {
            finished_early += 1;
            if std::env::var("S3BGU_TORTURE_DEBUG").is_ok() {
                let mut err = String::new();
                use std::io::Read;
                child.stderr.take().map(|mut e| e.read_to_string(&mut err));
                eprintln!("early exit {status}: {err}");
            }
        } else {
            let ok = Command::new("kill")
                .args(["-KILL", &child.id().to_string()])
                .status()
                .unwrap()
                .success();
            assert!(ok);
        }
        let _ = child.wait();
        if db.exists() {
            for part in committed_parts(&db) {
                let now = h.stats.part_puts(&part.0, part.1);
                puts_at_commit.entry(part).or_insert(now);
            }
        }
    }

    // Every run may have been killed before the last file was queued: the
    // final run then queues the rest, as a user would run `upload` again.
    let v = if queued(&db) < files.len() {
        let mut args = vec!["upload", "--backend", &h.backend_url, "--concurrency", "2"];
        let paths: Vec<String> = files.iter().map(|f| f.0.display().to_string()).collect();
        args.extend(paths.iter().map(String::as_str));
        s3bgu_json(dir.path(), &args)
    } else {
        s3bgu_json(dir.path(), &["resume"])
    };
    let all = s3bgu_json(dir.path(), &["status"]);
    let uploads = all["uploads"].as_array().unwrap();
    assert_eq!(uploads.len(), files.len(), "one upload per file: {v}");
    for (u, (path, _)) in uploads.iter().zip(&files) {
        assert_eq!(u["state"], "COMPLETED", "{u}");
        let stored = h.object_bytes(u["key"].as_str().unwrap()).unwrap();
        assert!(
            stored == std::fs::read(path).unwrap(),
            "{} byte-identical",
            path.display()
        );
    }

    let conn = rusqlite::Connection::open(&db).unwrap();
    let integrity: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(integrity, "ok");

    for ((upload_id, part), at_commit) in &puts_at_commit {
        let now = h.stats.part_puts(upload_id, *part);
        assert_eq!(
            now,
            *at_commit,
            "part {part} of {upload_id} was PUT {} more time(s) after its ETag was committed",
            now - at_commit
        );
    }

    // Bytes sent over bytes of the files (a PUT cut by a kill counts whole).
    let mut sent = 0u64;
    for u in uploads {
        let size = u["size"].as_u64().unwrap();
        let upload_id = u["uploadId"].as_str().unwrap();
        let parts = u["partsTotal"].as_u64().unwrap() as u32;
        for p in 1..=parts {
            let len = size.saturating_sub((p as u64 - 1) * PART).min(PART);
            sent += len * h.stats.part_puts(upload_id, p) as u64;
        }
    }
    eprintln!(
        "kill torture: {KILLS} kills ({finished_early} runs ended before their kill), {} files, {:.1} MiB, \
         {} parts checked, {} PUTs, bytes sent / file bytes = {:.3}, {:.1} s",
        files.len(),
        total as f64 / MIB as f64,
        puts_at_commit.len(),
        h.stats.total_part_puts(),
        sent as f64 / total as f64,
        started.elapsed().as_secs_f64()
    );
}
