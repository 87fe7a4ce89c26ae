//! Hand-off across SIGKILLs: an engine process hands parts off (to a spool
//! folder standing in for the system's background session) and is killed;
//! while it is down a separate helper process uploads some of the spooled
//! tasks (the system finishing them) and one task is lost now and then;
//! the next engine process reports the results, reconciles the live
//! tasks and goes on. At the end every object is byte-identical and no
//! part was PUT more than once.
//!
//! One binary plays three roles (`S3BGU_HANDOFF_ROLE`): the test itself
//! (no variable), `engine` and `helper`.

mod common;

use common::transport::{self, dir_bytes, execute, Act};
use common::*;
use s3bgu_core::{
    HandoffSettings, IdleReason, PartTask, PartTransport, Selector, TaskOutcome, UploadState,
    Uploader,
};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

const ROLE: &str = "S3BGU_HANDOFF_ROLE";
const BUDGET: u64 = 3 * PART;
const FILES: u64 = 4;

fn main() {
    match std::env::var(ROLE).as_deref() {
        Ok("engine") => engine_process(),
        Ok("helper") => helper_process(),
        _ => {
            let started = Instant::now();
            the_test();
            eprintln!(
                "test kills_with_tasks_handed_off_lose_nothing ... ok ({:.1} s)",
                started.elapsed().as_secs_f64()
            );
        }
    }
}

fn spool(dir: &Path) -> PathBuf {
    dir.join("spool")
}

fn results(dir: &Path) -> PathBuf {
    dir.join("results")
}

fn dir_arg() -> PathBuf {
    PathBuf::from(std::env::var("S3BGU_HANDOFF_DIR").expect("dir"))
}

fn task_from_json(v: &serde_json::Value) -> PartTask {
    PartTask {
        task_id: v["taskId"].as_str().unwrap().into(),
        upload: v["upload"].as_i64().unwrap(),
        part_number: v["partNumber"].as_u64().unwrap() as u32,
        url: v["url"].as_str().unwrap().into(),
        file_path: v["filePath"].as_str().unwrap().into(),
        length: v["length"].as_u64().unwrap(),
        earliest_begin_ms: v["earliestBeginMs"].as_i64().unwrap(),
        allow_metered: v["allowMetered"].as_bool().unwrap(),
    }
}

fn read_json(p: &Path) -> Option<serde_json::Value> {
    serde_json::from_slice(&std::fs::read(p).ok()?).ok()
}

fn write_atomically(p: &Path, v: &serde_json::Value) {
    let tmp = p.with_extension("tmp");
    std::fs::write(&tmp, serde_json::to_vec(v).unwrap()).unwrap();
    std::fs::rename(&tmp, p).unwrap();
}

fn json_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|it| {
            it.flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "json"))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// The system's background session, as far as the engine sees it: tasks
/// are written to the spool and run later by someone else.
struct SpoolTransport {
    dir: PathBuf,
}

impl PartTransport for SpoolTransport {
    fn submit(&self, t: PartTask) -> Result<(), String> {
        let v = serde_json::json!({
            "taskId": t.task_id, "upload": t.upload, "partNumber": t.part_number,
            "url": t.url, "filePath": t.file_path, "length": t.length,
            "earliestBeginMs": t.earliest_begin_ms, "allowMetered": t.allow_metered,
        });
        write_atomically(&spool(&self.dir).join(format!("{}.json", t.task_id)), &v);
        Ok(())
    }

    fn cancel(&self, task_id: &str) {
        let _ = std::fs::remove_file(spool(&self.dir).join(format!("{task_id}.json")));
    }
}

fn outcome_from_json(v: &serde_json::Value) -> TaskOutcome {
    match v["kind"].as_str() {
        Some("response") => TaskOutcome::Response {
            status: v["status"].as_u64().unwrap() as u16,
            etag: v["etag"].as_str().map(str::to_string),
            retry_after: v["retryAfter"].as_str().map(str::to_string),
            body: v["body"].as_str().unwrap_or_default().into(),
        },
        _ => TaskOutcome::TransportError(v["message"].as_str().unwrap_or_default().into()),
    }
}

/// An app launch: report what finished, reconcile, hand off, and say when
/// everything is with the session ("HANDED") or done ("DONE").
fn engine_process() {
    let dir = dir_arg();
    let backend = std::env::var("S3BGU_HANDOFF_BACKEND").unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        // Launched into the background: nothing is sent before the mode is set.
        let mut options = s3bgu_core::UploaderOptions::new(dir.join("queue.db"));
        options.start = false;
        let u = Uploader::open(options).unwrap();
        let mut c = s3bgu_core::Config::for_base_url(&backend);
        c.max_parts_in_flight = 2;
        c.retry = fast_retry();
        u.set_config(c).await.unwrap();
        // Every result the session holds is reported (again): reports of
        // tasks the engine no longer holds are ignored.
        let mut finished = std::collections::HashSet::new();
        for p in json_files(&results(&dir)) {
            let v = read_json(&p).unwrap();
            let id = v["taskId"].as_str().unwrap().to_string();
            u.report_task(id.clone(), outcome_from_json(&v));
            finished.insert(id);
        }
        u.set_part_transport(
            Some(Arc::new(SpoolTransport { dir: dir.clone() })),
            HandoffSettings {
                staging_budget: BUDGET,
                ..HandoffSettings::default()
            },
        );
        let live: Vec<String> = json_files(&spool(&dir))
            .iter()
            .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
            .filter(|id| !finished.contains(id))
            .collect();
        u.reconcile_tasks(live).await.unwrap();
        u.set_handoff(true).await.unwrap();
        for i in 0..FILES {
            add(&u, &dir.join(format!("f{i}.bin")), "kill")
                .await
                .unwrap();
        }
        loop {
            match u.run_until_idle().await.unwrap() {
                IdleReason::Idle => {
                    println!("DONE");
                    u.shutdown().await;
                    return;
                }
                IdleReason::HandedOff => {
                    println!("HANDED");
                    // Suspended: the parent kills us.
                    tokio::time::sleep(Duration::from_secs(3600)).await;
                }
                other => panic!("engine idle: {other:?}"),
            }
        }
    });
}

/// The system finishing tasks while the app is gone: uploads every
/// spooled task without a result except those named in `S3BGU_HANDOFF_SKIP`.
fn helper_process() {
    let dir = dir_arg();
    let skip: Vec<String> = std::env::var("S3BGU_HANDOFF_SKIP")
        .unwrap_or_default()
        .split(',')
        .map(str::to_string)
        .collect();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let http = reqwest::Client::new();
        for p in json_files(&spool(&dir)) {
            let task = task_from_json(&read_json(&p).unwrap());
            let done = results(&dir).join(format!("{}.json", task.task_id));
            if done.exists() || skip.contains(&task.task_id) {
                continue;
            }
            let v = match execute(&http, &task, Act::Put).await {
                TaskOutcome::Response {
                    status,
                    etag,
                    retry_after,
                    body,
                } => serde_json::json!({"taskId": task.task_id, "kind": "response",
                    "status": status, "etag": etag, "retryAfter": retry_after, "body": body}),
                TaskOutcome::TransportError(m) => {
                    serde_json::json!({"taskId": task.task_id, "kind": "error", "message": m})
                }
                other => panic!("{other:?}"),
            };
            write_atomically(&done, &v);
        }
    });
}

struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

fn child(role: &str, dir: &Path, backend: &str) -> Command {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.env(ROLE, role)
        .env("S3BGU_HANDOFF_DIR", dir)
        .env("S3BGU_HANDOFF_BACKEND", backend)
        .stdin(Stdio::null());
    cmd
}

/// Parts with a committed ETag, as `(S3 upload id, part)`.
fn committed(db: &Path) -> Vec<(String, u32)> {
    if !db.exists() {
        return Vec::new();
    }
    let conn = rusqlite::Connection::open(db).unwrap();
    let mut stmt = conn
        .prepare(
            "SELECT u.upload_id, p.number FROM parts p JOIN uploads u ON u.id = p.upload \
             WHERE p.etag IS NOT NULL",
        )
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as u32)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

fn the_test() {
    let seed = std::env::var("S3BGU_HANDOFF_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| transport::now_ms() as u64 | 1);
    eprintln!("hand-off kill test seed {seed} (S3BGU_HANDOFF_SEED replays it)");
    let mut rng = Rng(seed);
    let (h, rt) = s3bgu_testkit::spawn_in_thread(s3bgu_testkit::HarnessOptions::default());
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::create_dir_all(spool(dir)).unwrap();
    std::fs::create_dir_all(results(dir)).unwrap();
    let mut paths = Vec::new();
    for i in 0..FILES {
        let size = (i + 1) * PART + rng.below(PART);
        paths.push(write_file(dir, &format!("f{i}.bin"), size, seed + i));
    }
    let bytes: u64 = paths
        .iter()
        .map(|p| std::fs::metadata(p).unwrap().len())
        .sum();
    let staging = dir.join("queue.db.staging");
    let db = dir.join("queue.db");

    let mut kills = 0;
    let mut lost = 0;
    let mut staging_peak = 0;
    let mut puts_at_commit: BTreeMap<(String, u32), u32> = BTreeMap::new();
    let mut done = false;
    for cycle in 0..40 {
        let mut engine = child("engine", dir, &h.backend_url)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, rx) = mpsc::channel();
        let out = engine.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        // Half the launches are killed at a random moment (maybe while
        // staging or reporting), the others once all is handed off.
        let deadline = Instant::now() + Duration::from_secs(60);
        let random_kill = cycle % 2 == 1 && cycle < 20;
        let kill_at = Instant::now() + Duration::from_millis(100 + rng.below(600));
        loop {
            staging_peak = staging_peak.max(dir_bytes(&staging));
            match rx.recv_timeout(Duration::from_millis(5)) {
                Ok(l) if l == "DONE" => {
                    done = true;
                    break;
                }
                Ok(l) if l == "HANDED" && !random_kill => break,
                _ => {}
            }
            if random_kill && Instant::now() >= kill_at {
                break;
            }
            assert!(Instant::now() < deadline, "engine process stuck");
        }
        if done {
            assert!(engine.wait().unwrap().success());
            break;
        }
        let ok = Command::new("kill")
            .args(["-KILL", &engine.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok);
        let _ = engine.wait();
        kills += 1;
        staging_peak = staging_peak.max(dir_bytes(&staging));
        for part in committed(&db) {
            let n = h.stats.part_puts(&part.0, part.1);
            puts_at_commit.entry(part).or_insert(n);
        }
        // While the app is down: now and then the system loses a task, and
        // the helper process finishes the others (all of them late on).
        let open: Vec<PathBuf> = json_files(&spool(dir))
            .into_iter()
            .filter(|p| !results(dir).join(p.file_name().unwrap()).exists())
            .collect();
        let mut skip = Vec::new();
        if !open.is_empty() && cycle % 3 == 0 && cycle < 20 {
            let p = &open[rng.below(open.len() as u64) as usize];
            std::fs::remove_file(p).unwrap();
            lost += 1;
        } else if open.len() > 1 && cycle < 20 {
            let p = &open[rng.below(open.len() as u64) as usize];
            skip.push(p.file_stem().unwrap().to_string_lossy().into_owned());
        }
        let status = child("helper", dir, &h.backend_url)
            .env("S3BGU_HANDOFF_SKIP", skip.join(","))
            .status()
            .unwrap();
        assert!(status.success(), "helper process");
    }
    assert!(done, "every upload finished within 40 launches");

    let u = Uploader::open(s3bgu_core::UploaderOptions::new(&db)).unwrap();
    let list = rt.block_on(u.uploads(Selector::All)).unwrap();
    assert_eq!(list.len() as u64, FILES);
    let mut parts = 0;
    for (info, path) in list.iter().zip(&paths) {
        assert_eq!(info.state, UploadState::Completed, "{info:?}");
        assert_object(&h, info, path);
        parts += info.parts_total;
    }
    drop(u);
    // No committed part was sent again, and indeed no part twice: a lost
    // task had never reached the store.
    for ((upload_id, n), at_commit) in &puts_at_commit {
        assert_eq!(
            h.stats.part_puts(upload_id, *n),
            *at_commit,
            "part {n} re-sent after its ETag was committed"
        );
    }
    let puts = h.stats.total_part_puts();
    assert_eq!(puts, parts, "every part PUT exactly once");
    assert!(
        staging_peak <= BUDGET,
        "staging peak {staging_peak} > {BUDGET}"
    );
    assert_eq!(dir_bytes(&staging), 0, "no staged file left");
    let handed_off = json_files(&spool(dir)).len() + lost;
    assert!(kills >= 3, "only {kills} kills");
    eprintln!(
        "hand-off kills: files {FILES}, bytes {bytes}, kills {kills}, tasks handed off {handed_off}, \
         tasks lost and handed off again {lost}, parts re-sent {}, staging peak {staging_peak} of {BUDGET}",
        puts - parts
    );
    // The summary line cargo's own harness prints, for whoever reads the log.
    println!("test result: ok. 1 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out");
    drop(h);
    rt.shutdown_background();
}
