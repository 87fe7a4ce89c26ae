//! The `s3bgu` binary as scripts use it: flags, `--json` output, exit codes,
//! the embedded default, Ctrl-C, and a SIGKILL mid-upload followed by resume.

mod common;

use common::{committed_parts, queued_uploads, sparse_file, MIB};
use s3bgu_testkit::{Harness, HarnessOptions, Route};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_s3bgu");
const PART: u64 = 5 * MIB;

fn write_file(dir: &Path, name: &str, size: u64, seed: u8) -> PathBuf {
    let p = dir.join(name);
    let data: Vec<u8> = (0..size)
        .map(|i| ((i * 2_654_435_761) >> 13) as u8 ^ seed)
        .collect();
    std::fs::write(&p, data).unwrap();
    p
}

fn s3bgu(dir: &Path) -> Command {
    let mut c = Command::new(BIN);
    c.current_dir(dir);
    c
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("run s3bgu")
}

fn json_of(out: &Output) -> Value {
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(text.trim()).unwrap_or_else(|e| {
        panic!(
            "stdout is not one JSON object ({e}): {text}\nstderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn uploads(v: &Value) -> &Vec<Value> {
    v["uploads"].as_array().expect("uploads array")
}

fn wait_until(what: &str, limit: Duration, mut pred: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !pred() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn signal(child: &Child, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .expect("kill")
        .success();
    assert!(ok, "kill {sig} failed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_with_backend_prints_json_and_exits_zero() {
    let h = Harness::start(HarnessOptions::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let a = write_file(dir.path(), "a.bin", PART + 3, 1);
    let b = write_file(dir.path(), "b b.bin", 10, 2);
    let out = run(s3bgu(dir.path())
        .args([
            "upload",
            "--backend",
            &h.backend_url,
            "--json",
            "--transfer",
            "tx",
        ])
        .args([
            "--param",
            "album=holidays",
            "--header",
            "X-Client: cli-test",
        ])
        .arg(&a)
        .arg(&b));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = json_of(&out);
    let list = uploads(&v);
    assert_eq!(list.len(), 2);
    for (u, path) in list.iter().zip([&a, &b]) {
        for field in [
            "id",
            "file",
            "fileName",
            "fileHash",
            "transferId",
            "key",
            "uploadId",
            "state",
            "size",
            "uploadedBytes",
            "partsDone",
            "partsTotal",
            "error",
        ] {
            assert!(u.get(field).is_some(), "field {field} in {u}");
        }
        assert_eq!(u["state"], "COMPLETED");
        assert_eq!(u["transferId"], "tx");
        assert!(u["error"].is_null());
        let stored = h.object_bytes(u["key"].as_str().unwrap()).unwrap();
        assert_eq!(stored, std::fs::read(path).unwrap());
    }
    assert_eq!(list[0]["partsTotal"], 2);
    assert_eq!(list[1]["fileName"], "b b.bin");
    assert_eq!(h.stats.last_start_body().unwrap()["album"], "holidays");
    assert!(
        dir.path().join(".s3bgu/queue.db").exists(),
        "default database"
    );
}

#[test]
fn hash_prints_the_xxh3_128() {
    let dir = tempfile::tempdir().unwrap();
    let f = write_file(dir.path(), "h.bin", 300_000, 7);
    let out = run(s3bgu(dir.path()).args(["hash"]).arg(&f));
    assert!(out.status.success());
    let expected = format!(
        "{:032x}",
        xxhash_rust::xxh3::xxh3_128(&std::fs::read(&f).unwrap())
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), expected);
    let missing = run(s3bgu(dir.path()).args(["hash", "nope.bin"]));
    assert!(!missing.status.success());
    let err = String::from_utf8_lossy(&missing.stderr);
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    assert!(err.contains("file_not_found"), "{err}");
}

#[test]
fn embedded_default_quickstart_status_and_resume() {
    let dir = tempfile::tempdir().unwrap();
    let f = write_file(dir.path(), "movie.bin", 2 * PART + 1, 3);
    let out = run(s3bgu(dir.path()).args(["upload", "movie.bin", "--json"]));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = json_of(&out);
    let u = &uploads(&v)[0];
    assert_eq!(u["state"], "COMPLETED");
    let key = u["key"].as_str().unwrap();
    let stored = dir.path().join(".s3bgu/store/uploads").join(key);
    assert_eq!(std::fs::read(stored).unwrap(), std::fs::read(&f).unwrap());

    let status = run(s3bgu(dir.path()).args(["status", "--json"]));
    assert!(status.status.success());
    assert_eq!(uploads(&json_of(&status))[0]["state"], "COMPLETED");

    // Nothing left to do: resume exits 0 with an empty list.
    let resumed = run(s3bgu(dir.path()).args(["resume", "--json"]));
    assert!(resumed.status.success());
    assert!(uploads(&json_of(&resumed)).is_empty());

    // The same file again is the same upload (dedup), already complete.
    let again = run(s3bgu(dir.path()).args(["upload", "movie.bin", "--json"]));
    assert!(again.status.success());
    assert_eq!(uploads(&json_of(&again))[0]["id"], u["id"]);
}

#[test]
fn errors_are_one_line_and_exit_nonzero() {
    let dir = tempfile::tempdir().unwrap();
    let ok = write_file(dir.path(), "ok.bin", 10, 1);
    let out = run(s3bgu(dir.path())
        .args(["upload", "--json", "missing.bin"])
        .arg(&ok));
    assert_eq!(out.status.code(), Some(1));
    let v = json_of(&out);
    assert_eq!(uploads(&v).len(), 1, "the readable file was still uploaded");
    assert_eq!(uploads(&v)[0]["state"], "COMPLETED");
    let err = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = err.trim().lines().collect();
    assert_eq!(lines.len(), 1, "{err}");
    assert!(lines[0].contains("missing.bin") && lines[0].contains("file_not_found"));

    let bad = run(s3bgu(dir.path()).args(["upload", "--concurrency", "0", "ok.bin"]));
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("invalid_config"));

    let no_db = run(s3bgu(dir.path()).args(["status", "--db", "nope/queue.db"]));
    assert!(!no_db.status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_upload_reports_its_error_in_json() {
    let h = Harness::start(HarnessOptions::default()).await;
    h.faults
        .fail_backend(Route::StartUpload, 1, 403, "forbidden for this user");
    let dir = tempfile::tempdir().unwrap();
    write_file(dir.path(), "x.bin", 10, 1);
    let out =
        run(s3bgu(dir.path()).args(["upload", "--backend", &h.backend_url, "--json", "x.bin"]));
    assert_eq!(out.status.code(), Some(1));
    let v = json_of(&out);
    let u = &uploads(&v)[0];
    assert_eq!(u["state"], "FAILED");
    assert_eq!(u["error"]["code"], "backend_rejected");
    assert!(u["error"]["message"].as_str().unwrap().contains("403"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_prints_its_address_first_and_serves_uploads() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = s3bgu(dir.path())
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--store",
            "st",
            "--part-size",
            "5242880",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let base = first
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("first line: {first:?}"))
        .to_string();
    assert!(base.starts_with("http://127.0.0.1:"), "{base}");
    let f = write_file(dir.path(), "s.bin", PART + 9, 4);
    let out = run(s3bgu(dir.path()).args(["upload", "--backend", &base, "--json", "s.bin"]));
    child.kill().unwrap();
    let _ = child.wait();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let key = uploads(&json_of(&out))[0]["key"]
        .as_str()
        .unwrap()
        .to_string();
    let stored = dir.path().join("st/uploads").join(key);
    assert_eq!(std::fs::read(stored).unwrap(), std::fs::read(&f).unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_pauses_and_exits_130_then_resume_finishes() {
    let h = Harness::start(HarnessOptions::default()).await;
    h.faults.delay_put_responses(Duration::from_millis(300));
    let dir = tempfile::tempdir().unwrap();
    let f = write_file(dir.path(), "c.bin", 4 * PART, 5);
    let child = s3bgu(dir.path())
        .args([
            "upload",
            "--backend",
            &h.backend_url,
            "--json",
            "--concurrency",
            "1",
            "c.bin",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until("a part confirmed", Duration::from_secs(30), || {
        h.stats.ok_part_puts() >= 1
    });
    signal(&child, "-INT");
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(uploads(&json_of(&out))[0]["state"], "PAUSED");

    let resumed = run(s3bgu(dir.path()).args(["resume", "--json"]));
    assert!(
        resumed.status.success(),
        "{}",
        String::from_utf8_lossy(&resumed.stderr)
    );
    let v = json_of(&resumed);
    let u = &uploads(&v)[0];
    assert_eq!(u["state"], "COMPLETED");
    let stored = h.object_bytes(u["key"].as_str().unwrap()).unwrap();
    assert_eq!(stored, std::fs::read(&f).unwrap());
}

/// The crash test: SIGKILL mid-upload, then `s3bgu resume`. The object must be
/// byte-identical and no part committed before the kill may be sent again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_upload_then_resume_sends_no_committed_part_twice() {
    let h = Harness::start(HarnessOptions::default()).await;
    h.faults.delay_put_responses(Duration::from_millis(250));
    let dir = tempfile::tempdir().unwrap();
    let files = [
        write_file(dir.path(), "k1.bin", 6 * PART + 123, 8),
        write_file(dir.path(), "k2.bin", 3 * PART, 9),
    ];
    let db = dir.path().join(".s3bgu/queue.db");
    let mut child = s3bgu(dir.path())
        .args([
            "upload",
            "--backend",
            &h.backend_url,
            "--json",
            "--concurrency",
            "2",
        ])
        .args(["k1.bin", "k2.bin"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Both files queued (the second one is hashed while the first one's
    // parts already go out) and four parts confirmed.
    wait_until("four parts confirmed", Duration::from_secs(60), || {
        h.stats.ok_part_puts() >= 4 && queued_uploads(&db) == 2
    });
    signal(&child, "-KILL");
    let status = child.wait().unwrap();
    assert_eq!(status.code(), None, "killed by a signal");

    let committed = committed_parts(&db);
    let puts_before = h.stats.total_part_puts();
    assert!(
        !committed.is_empty(),
        "parts were committed before the kill"
    );

    let out = run(s3bgu(dir.path()).args(["resume", "--json"]));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = json_of(&out);
    let list = uploads(&v);
    assert_eq!(list.len(), 2);
    let mut total_parts = 0;
    for (u, path) in list.iter().zip(&files) {
        assert_eq!(u["state"], "COMPLETED", "{u}");
        let stored = h.object_bytes(u["key"].as_str().unwrap()).unwrap();
        assert!(
            stored == std::fs::read(path).unwrap(),
            "object of {} is byte-identical",
            path.display()
        );
        total_parts += u["partsTotal"].as_u64().unwrap();
    }
    for (upload_id, part) in &committed {
        assert_eq!(
            h.stats.part_puts(upload_id, *part),
            1,
            "part {part} of {upload_id} was committed before the kill and must not be sent again"
        );
    }
    let resent = h.stats.puts_by_part().values().filter(|n| **n > 1).count();
    assert_eq!(
        h.stats.backend_calls(Route::StartUpload),
        2,
        "no startUpload repeated"
    );
    eprintln!(
        "kill-and-resume: {} parts in all, {} committed before SIGKILL, {} PUTs before the kill, \
         {} PUTs in all, {} parts sent more than once (in flight at the kill), 0 committed parts re-sent",
        total_parts,
        committed.len(),
        puts_before,
        h.stats.total_part_puts(),
        resent
    );
}

/// Killed while uploading on the embedded default backend; `s3bgu resume`
/// with no flags starts the embedded backend again (on a new port) and finishes.
#[test]
fn killed_on_the_embedded_backend_resumes_on_it() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("big.bin");
    sparse_file(&f, 400 * MIB);
    let db = dir.path().join(".s3bgu/queue.db");
    let mut child = s3bgu(dir.path())
        .args(["upload", "--concurrency", "1", "big.bin"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let committed_now = || -> usize {
        if !db.exists() {
            return 0;
        }
        let Ok(conn) =
            rusqlite::Connection::open_with_flags(&db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        else {
            return 0;
        };
        conn.query_row("SELECT COUNT(etag) FROM parts", [], |r| r.get::<_, i64>(0))
            .map(|n| n as usize)
            .unwrap_or(0)
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    while committed_now() == 0 {
        assert!(Instant::now() < deadline, "no part committed");
        assert!(
            child.try_wait().unwrap().is_none(),
            "upload ended before the kill"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    signal(&child, "-KILL");
    let _ = child.wait();
    let before = s3bgu_core_state(dir.path());
    assert_ne!(before, "COMPLETED", "killed mid-upload");

    let out = run(s3bgu(dir.path()).args(["resume", "--json"]));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = json_of(&out);
    let u = &uploads(&v)[0];
    assert_eq!(u["state"], "COMPLETED");
    let stored = dir
        .path()
        .join(".s3bgu/store/uploads")
        .join(u["key"].as_str().unwrap());
    assert!(
        std::fs::read(stored).unwrap() == std::fs::read(&f).unwrap(),
        "byte-identical"
    );
}

fn s3bgu_core_state(dir: &Path) -> String {
    let out = run(s3bgu(dir).args(["status", "--json"]));
    // 0: nothing left to do, 3: some failed, 4: some unfinished.
    assert!(
        matches!(out.status.code(), Some(0 | 3 | 4)),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    uploads(&json_of(&out))[0]["state"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explicit_endpoint_flags_work_without_abort() {
    let h = Harness::start(HarnessOptions::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let f = write_file(dir.path(), "e.bin", PART * 2, 6);
    let out = run(s3bgu(dir.path())
        .args(["upload", "--json", "--db", "q/queue.db"])
        .args(["--start-url", &h.start_url()])
        .args(["--urls-url", &h.urls_url()])
        .args(["--complete-url", &format!("{}/", h.complete_url())])
        .arg(&f));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = json_of(&out);
    let u = &uploads(&v)[0];
    assert_eq!(u["state"], "COMPLETED");
    assert_eq!(
        h.object_bytes(u["key"].as_str().unwrap()).unwrap(),
        std::fs::read(&f).unwrap()
    );
    assert!(dir.path().join("q/queue.db").exists());
    // Half a set of endpoint flags is a usage error.
    let bad = run(s3bgu(dir.path()).args(["upload", "--start-url", &h.start_url(), "e.bin"]));
    assert_eq!(bad.status.code(), Some(2));
}

#[test]
fn a_corrupt_queue_is_reported_then_recover_sets_it_aside() {
    let dir = tempfile::tempdir().unwrap();
    write_file(dir.path(), "a.bin", 1000, 4);
    let first = run(s3bgu(dir.path()).args(["upload", "a.bin", "--json"]));
    assert!(first.status.success());
    let db = dir.path().join(".s3bgu/queue.db");
    std::fs::write(&db, b"not sqlite at all, just text\n".repeat(200)).unwrap();

    // Every command that reads the queue says what is wrong and what to do.
    for args in [&["upload", "a.bin"][..], &["status"], &["resume"]] {
        let out = run(s3bgu(dir.path()).args(args));
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("database_corrupt") && err.contains("s3bgu recover"),
            "{args:?}: {err}"
        );
    }
    let out = run(s3bgu(dir.path()).arg("recover"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("moved"), "{said}");
    let aside: Vec<_> = std::fs::read_dir(dir.path().join(".s3bgu"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("queue.db.corrupt-")
        })
        .collect();
    assert_eq!(aside.len(), 1, "the bad file is kept aside");
    assert_eq!(
        std::fs::read(aside[0].path()).unwrap(),
        b"not sqlite at all, just text\n".repeat(200)
    );
    // A fresh queue: the upload works again.
    let again = run(s3bgu(dir.path()).args(["upload", "a.bin", "--json"]));
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    // On a healthy queue, recover does nothing.
    let out = run(s3bgu(dir.path()).arg("recover"));
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("nothing done"));
}

/// `s3bgu add` records the files and sends nothing; `s3bgu resume` uploads
/// them and reports how many write transactions the queue database took.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn add_queues_without_sending_and_resume_uploads() {
    let h = Harness::start(HarnessOptions::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let files: Vec<PathBuf> = (0..5)
        .map(|i| write_file(dir.path(), &format!("q{i}.bin"), 1000 + i, i as u8))
        .collect();
    let big = write_file(dir.path(), "big.bin", 3 * PART + 1, 9);
    let out = run(s3bgu(dir.path())
        .args(["add", "--backend", &h.backend_url, "--transfer", "later"])
        .args(&files)
        .arg(&big));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("queued 6 uploads"));
    assert_eq!(
        h.stats.backend_calls(Route::StartUpload),
        0,
        "add sends nothing"
    );
    let status = json_of(&run(s3bgu(dir.path()).args(["status", "--json"])));
    let states: Vec<&str> = uploads(&status)
        .iter()
        .map(|u| u["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, vec!["PENDING"; 6]);

    let out = run(s3bgu(dir.path()).args(["resume", "--json"]));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = json_of(&out);
    // Every queued upload is reported, also those that ended before the
    // CLI listed the queue (the engine starts sending at once).
    assert_eq!(uploads(&v).len(), 6, "{v}");
    for (u, path) in uploads(&v).iter().zip(files.iter().chain([&big])) {
        assert_eq!(u["state"], "COMPLETED");
        let stored = h.object_bytes(u["key"].as_str().unwrap()).unwrap();
        assert_eq!(stored, std::fs::read(path).unwrap());
    }
    assert_eq!(h.stats.backend_calls(Route::StartUpload), 6);
    // The configuration saved at start, then per upload: initialized,
    // running, completed; per part: its ETag. 5 one-part uploads and one of
    // 4 parts: 1 + 6 x 3 + 9 = 28 at most.
    let commits = v["dbCommits"].as_u64().expect("dbCommits in the JSON");
    assert!(
        (10..=28).contains(&commits),
        "{commits} write transactions for 9 parts"
    );
}

/// Killed after startUpload of an empty file (the upload id is recorded, no
/// URL handed out yet), on a store that refuses empty parts and zero-part
/// completes: `s3bgu resume` finishes it as a 0-byte object with no second
/// startUpload.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_after_start_of_an_empty_file_then_resume_completes_it() {
    let h = Harness::start(HarnessOptions::default()).await;
    let strict = |h: &Harness| {
        h.faults.refuse_empty_parts(true);
        h.faults.refuse_zero_part_completes(true);
    };
    strict(&h);
    // getUploadUrls keeps failing, so the upload waits between startUpload
    // and its part.
    h.faults
        .fail_backend(Route::GetUploadUrls, 1000, 503, r#"{"error":"busy"}"#);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("empty.txt"), b"").unwrap();
    let db = dir.path().join(".s3bgu/queue.db");
    let mut child = s3bgu(dir.path())
        .args(["upload", "--backend", &h.backend_url, "--json", "empty.txt"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let recorded_id = || -> Option<String> {
        let conn =
            rusqlite::Connection::open_with_flags(&db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
                .ok()?;
        conn.query_row("SELECT upload_id FROM uploads", [], |r| {
            r.get::<_, Option<String>>(0)
        })
        .ok()
        .flatten()
    };
    wait_until(
        "startUpload answered and recorded",
        Duration::from_secs(60),
        || h.stats.backend_calls(Route::GetUploadUrls) >= 1 && recorded_id().is_some(),
    );
    signal(&child, "-KILL");
    assert_eq!(child.wait().unwrap().code(), None, "killed by a signal");
    let upload_id = recorded_id().unwrap();
    assert_eq!(
        h.stats.backend_calls(Route::Complete),
        0,
        "killed before complete"
    );

    h.faults.clear();
    strict(&h);
    let out = run(s3bgu(dir.path()).args(["resume", "--json"]));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = json_of(&out);
    let u = &uploads(&v)[0];
    assert_eq!(u["state"], "COMPLETED", "{u}");
    assert_eq!(u["uploadId"], upload_id.as_str(), "the same upload went on");
    let key = u["key"].as_str().unwrap();
    assert_eq!(
        h.object_bytes(key).unwrap(),
        Vec::<u8>::new(),
        "0-byte object"
    );
    assert_eq!(h.stats.object_puts(key), 1);
    assert_eq!(h.stats.total_part_puts(), 0, "no empty part was sent");
    assert_eq!(
        h.stats.backend_calls(Route::StartUpload),
        1,
        "no second startUpload"
    );
    assert!(
        !h.store_dir
            .join(format!(".upload-{upload_id}.json"))
            .exists(),
        "the multipart upload opened for it is gone"
    );
}
