//! Eight threads hammer one engine with add / pause / resume / cancel /
//! list / summary calls for 30 s (`S3BGU_CONCURRENCY_SECS`) while uploads
//! run. No deadlock, no panic, and at the end the invariants hold: every
//! upload in a legal final state, parts and ETags consistent with it, every
//! completed object byte-identical, and every state event already committed
//! when it was reported.

mod common;

use common::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use s3bgu_core::{
    ErrorCode, NewUpload, Selector, UploadEvent, UploadListener, UploadState, Uploader,
    UploaderOptions,
};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Checks invariant 1 on the fly: when a state change is reported, the
/// database already holds it. An end is told after its sync, so by then a
/// later change (a resume of a FAILED upload) may be stored: that is fine
/// only if the state stored then is told later (a change reported before
/// its commit, or told out of order, leaves a stored state never told).
struct CommittedFirst {
    db: PathBuf,
    checked: AtomicU64,
    violations: Mutex<Vec<String>>,
    /// Per upload: a stored state that was newer than the one reported,
    /// and must still be told.
    owed: Mutex<std::collections::HashMap<i64, (UploadState, UploadState)>>,
}

impl UploadListener for CommittedFirst {
    fn on_event(&self, event: &UploadEvent) {
        let UploadEvent::StateChanged(u) = event else {
            return;
        };
        let stored = match s3bgu_core::read_queue(&self.db) {
            Ok(list) => list.iter().find(|s| s.id == u.id).map(|s| s.state),
            Err(e) => {
                self.violations
                    .lock()
                    .unwrap()
                    .push(format!("read_queue: {e}"));
                return;
            }
        };
        self.checked.fetch_add(1, Ordering::Relaxed);
        let mut owed = self.owed.lock().unwrap();
        if owed.get(&u.id).is_some_and(|(_, s)| *s == u.state) {
            owed.remove(&u.id);
        }
        match stored {
            Some(s) if s == u.state => {}
            Some(s) => {
                owed.insert(u.id, (u.state, s));
            }
            None => self.violations.lock().unwrap().push(format!(
                "upload {} reported {:?}, not stored",
                u.id, u.state
            )),
        }
    }
}

impl CommittedFirst {
    /// Reports that found another state stored, never told afterwards.
    fn untold(&self) -> Vec<String> {
        self.owed
            .lock()
            .unwrap()
            .iter()
            .map(|(id, (told, stored))| {
                format!(
                    "upload {id} reported {told:?} while {stored:?} was stored, never told after"
                )
            })
            .collect()
    }
}

fn selector(rng: &mut StdRng, max_id: i64) -> Selector {
    match rng.random_range(0..10) {
        0 => Selector::All,
        1..=3 => Selector::Transfer(format!("t{}", rng.random_range(0..3))),
        _ => Selector::Upload(rng.random_range(1..=max_id.max(1) + 1)),
    }
}

#[derive(Default)]
struct Counts {
    calls: AtomicU64,
    adds: AtomicU64,
    not_found: AtomicU64,
}

fn hammer(
    uploader: &Uploader,
    files: &[PathBuf],
    seed: u64,
    stop: &AtomicBool,
    counts: &Counts,
) -> Result<(), String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut rng = StdRng::seed_from_u64(seed);
    let max_id = AtomicU64::new(files.len() as u64);
    while !stop.load(Ordering::Relaxed) {
        let max = max_id.load(Ordering::Relaxed) as i64;
        let op = rng.random_range(0..100);
        let result = rt.block_on(async {
            match op {
                0..=19 => {
                    let path = files[rng.random_range(0..files.len())].clone();
                    let transfer = format!("t{}", rng.random_range(0..3));
                    uploader
                        .add_file(NewUpload {
                            path,
                            transfer_id: transfer,
                            ..NewUpload::default()
                        })
                        .await
                        .map(|u| {
                            max_id.fetch_max(u.id as u64, Ordering::Relaxed);
                            counts.adds.fetch_add(1, Ordering::Relaxed);
                        })
                }
                20..=39 => uploader.pause(selector(&mut rng, max)).await.map(drop),
                40..=64 => uploader.resume(selector(&mut rng, max)).await.map(drop),
                65..=69 => uploader.cancel(selector(&mut rng, max)).await.map(drop),
                70..=89 => uploader.uploads(selector(&mut rng, max)).await.map(drop),
                _ => {
                    let transfer = rng.random_bool(0.5).then(|| "t1".to_owned());
                    uploader.summary(transfer).await.map(drop)
                }
            }
        });
        counts.calls.fetch_add(1, Ordering::Relaxed);
        match result {
            Ok(()) => {}
            Err(e) if e.code == ErrorCode::NotFound => {
                counts.not_found.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => return Err(format!("op {op}: {e}")),
        }
        // Leave the engine some air now and then.
        if rng.random_range(0..8) == 0 {
            std::thread::sleep(Duration::from_millis(rng.random_range(0..5)));
        }
    }
    Ok(())
}

/// `(upload, part number, has an ETag)` of every part row.
fn part_rows(db: &Path) -> Vec<(i64, i64, bool)> {
    let conn = rusqlite::Connection::open(db).unwrap();
    let mut stmt = conn
        .prepare("SELECT upload, number, etag IS NOT NULL FROM parts")
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

#[test]
fn eight_threads_for_thirty_seconds_keep_the_invariants() {
    let secs: u64 = std::env::var("S3BGU_CONCURRENCY_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(30);
    let (h, server_rt) = s3bgu_testkit::spawn_in_thread(Default::default());
    h.faults.delay_put_responses(Duration::from_millis(50));
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("queue.db");
    let uploader = Arc::new(Uploader::open(UploaderOptions::new(&db)).unwrap());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(uploader.set_config(config_for(&h, 4))).unwrap();
    let listener = Arc::new(CommittedFirst {
        db: db.clone(),
        checked: AtomicU64::new(0),
        violations: Mutex::new(Vec::new()),
        owed: Mutex::new(std::collections::HashMap::new()),
    });
    uploader.set_listener(Some(listener.clone()));

    // 24 files of 0 to 3 parts.
    let sizes = [
        0,
        1,
        1000,
        PART - 1,
        PART,
        PART + 1,
        2 * PART + 77,
        3 * PART,
    ];
    let files: Vec<PathBuf> = (0..24)
        .map(|i| {
            write_file(
                dir.path(),
                &format!("f{i:02}.bin"),
                sizes[i % sizes.len()],
                i as u64,
            )
        })
        .collect();

    let stop = Arc::new(AtomicBool::new(false));
    let counts = Arc::new(Counts::default());
    let started = Instant::now();
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let (uploader, files, stop, counts) = (
                uploader.clone(),
                files.clone(),
                stop.clone(),
                counts.clone(),
            );
            std::thread::spawn(move || hammer(&uploader, &files, 1000 + t, &stop, &counts))
        })
        .collect();
    std::thread::sleep(Duration::from_secs(secs));
    stop.store(true, Ordering::Relaxed);
    // A deadlocked thread would never come back: give them a bound.
    let deadline = Instant::now() + Duration::from_secs(30);
    for t in threads {
        while !t.is_finished() {
            assert!(
                Instant::now() < deadline,
                "a caller thread is stuck: deadlock"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        t.join()
            .expect("no panic")
            .expect("only typed, expected errors");
    }
    let hammer_time = started.elapsed();

    // Drain: everything not cancelled must complete.
    rt.block_on(async {
        uploader.resume(Selector::All).await.unwrap();
        tokio::time::timeout(Duration::from_secs(120), uploader.wait_idle(Selector::All))
            .await
            .expect("the queue drains: no deadlock")
            .unwrap();
    });
    let all = rt.block_on(uploader.uploads(Selector::All)).unwrap();
    let parts = part_rows(&db);
    let mut completed = 0;
    for u in &all {
        assert!(
            matches!(u.state, UploadState::Completed | UploadState::Cancelled),
            "upload {} ended {:?}: {:?}",
            u.id,
            u.state,
            u.error
        );
        let mine: Vec<_> = parts.iter().filter(|p| p.0 == u.id).collect();
        let committed: Vec<_> = mine.iter().filter(|p| p.2).collect();
        let part_size = u.part_size.unwrap_or(0);
        let committed_bytes: u64 = committed
            .iter()
            .map(|p| part_size.min(u.size - (p.1 as u64 - 1) * part_size))
            .sum();
        assert_eq!(u.parts_done as usize, committed.len(), "upload {}", u.id);
        assert_eq!(u.uploaded_bytes, committed_bytes, "upload {}", u.id);
        if u.state == UploadState::Completed {
            completed += 1;
            assert_eq!(mine.len(), u.parts_total as usize, "upload {}", u.id);
            assert_eq!(committed.len(), mine.len(), "every part has its ETag");
            assert_eq!(u.uploaded_bytes, u.size);
            assert_object(&h, u, Path::new(&u.path));
        }
    }
    let integrity: String = rusqlite::Connection::open(&db)
        .unwrap()
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(integrity, "ok");
    let violations = listener.violations.lock().unwrap().clone();
    assert!(violations.is_empty(), "{violations:?}");
    let untold = listener.untold();
    assert!(untold.is_empty(), "{untold:?}");
    println!(
        "concurrency: 8 threads for {:.1} s: {} calls ({} adds, {} not_found answers), \
         {} uploads ({completed} completed, {} cancelled), {} state events checked against the database",
        hammer_time.as_secs_f64(),
        counts.calls.load(Ordering::Relaxed),
        counts.adds.load(Ordering::Relaxed),
        counts.not_found.load(Ordering::Relaxed),
        all.len(),
        all.len() - completed,
        listener.checked.load(Ordering::Relaxed),
    );
    assert!(completed > 0, "some uploads completed");
    drop(uploader);
    drop(h);
    drop(server_rt);
}
