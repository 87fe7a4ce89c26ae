//! The retry and stall flags of `upload`, `add` and `resume`: bad values are
//! refused with a message naming the flag, good ones reach the engine and
//! are kept with the queue.

use s3bgu_core::{RetryPolicy, Uploader, UploaderOptions};
use s3bgu_testkit::{Harness, HarnessOptions, Route};
use std::path::Path;
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_s3bgu");

fn s3bgu(dir: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .current_dir(dir)
        .args(args)
        .output()
        .expect("run s3bgu")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The retry policy stored with the queue at `db` (read without sending).
async fn stored_retry(db: &Path) -> RetryPolicy {
    let mut options = UploaderOptions::new(db);
    options.start = false;
    let uploader = Uploader::open(options).expect("open the queue");
    let config = uploader.config().await.expect("config").expect("stored");
    uploader.shutdown().await;
    config.retry
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_retry_values_are_refused_with_the_flag_named() {
    let h = Harness::start(HarnessOptions::default()).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("x.bin"), b"0123456789").unwrap();
    let upload = |flag: &str, value: &str| {
        s3bgu(
            dir.path(),
            &["upload", "--backend", &h.backend_url, flag, value, "x.bin"],
        )
    };
    for (flag, value, says) in [
        ("--stall-timeout", "10", "10 has no unit: write 10s or 10ms"),
        (
            "--stall-timeout",
            "ten",
            "expected a whole number and a unit",
        ),
        (
            "--stall-timeout",
            "1.5s",
            "1.5s is not a whole number: use a smaller unit",
        ),
        ("--stall-timeout", "10d", "unknown unit \"d\""),
        ("--stall-timeout", "50ms", "must be between 100ms and 1h"),
        ("--request-timeout", "2h", "must be between 100ms and 1h"),
        ("--stall-timeout", "99999999999999999999h", "is too long"),
        ("--retry-max-delay", "61m", "must be between 0s and 1h"),
        ("--max-attempts", "0", "a whole number from 1 to 100"),
        ("--max-attempts", "many", "a whole number from 1 to 100"),
        ("--max-url-refreshes", "101", "a whole number from 0 to 100"),
    ] {
        let out = upload(flag, value);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{flag} {value}: {err}");
        assert!(
            err.contains(&format!("'{flag} <")) && err.contains(says),
            "{flag} {value}: {err}"
        );
    }
    // Valid one by one, not together (the default maximum is 60s).
    let out = upload("--retry-base-delay", "2m");
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(
            "--retry-base-delay 2m is longer than --retry-max-delay 1m (stored or default)"
        ),
        "{err}"
    );
    assert_eq!(
        h.stats.backend_calls(Route::StartUpload),
        0,
        "nothing was sent"
    );

    // Every command that builds the configuration takes the flags.
    for command in ["upload", "add", "resume"] {
        let help = s3bgu(dir.path(), &[command, "--help"]);
        let text = String::from_utf8_lossy(&help.stdout);
        for flag in [
            "--stall-timeout <DURATION>",
            "--request-timeout <DURATION>",
            "--max-attempts <N>",
            "--retry-base-delay <DURATION>",
            "--retry-max-delay <DURATION>",
            "--max-url-refreshes <N>",
        ] {
            assert!(
                text.contains(flag),
                "{command} --help lacks {flag}:\n{text}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_flags_reach_the_engine_and_stay_with_the_queue() {
    let h = Harness::start(HarnessOptions::default()).await;
    // The part's answer starts, then stops coming: with the defaults (a 60 s
    // stall timeout, 8 attempts) this upload would still be waiting.
    h.faults.stall_put_answers(1, 503);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("x.bin"), b"0123456789").unwrap();
    let db = dir.path().join("q.db");
    let db_arg = db.to_str().unwrap();
    let out = s3bgu(
        dir.path(),
        &[
            "upload",
            "--backend",
            &h.backend_url,
            "--db",
            db_arg,
            "--json",
            "--stall-timeout",
            "1s",
            "--max-attempts",
            "1",
            "--request-timeout",
            "20s",
            "--retry-base-delay",
            "50ms",
            "--retry-max-delay",
            "2s",
            "--max-url-refreshes",
            "7",
            "x.bin",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let upload = &report["uploads"][0];
    assert_eq!(upload["state"], "FAILED", "{report}");
    let message = upload["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("nothing received for 1000 ms") && message.contains("after 1 attempts"),
        "{message}"
    );
    assert_eq!(h.stats.total_part_puts(), 1);
    let expected = RetryPolicy {
        max_attempts: 1,
        base_delay_ms: 50,
        max_delay_ms: 2_000,
        max_url_refreshes: 7,
        request_timeout_ms: 20_000,
        stall_timeout_ms: 1_000,
    };
    assert_eq!(stored_retry(&db).await, expected);

    // Resume changes only what it is given, and the upload goes through.
    let out = s3bgu(
        dir.path(),
        &["resume", "--db", db_arg, "--json", "--stall-timeout", "2m"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["uploads"][0]["state"], "COMPLETED", "{report}");
    assert_eq!(
        stored_retry(&db).await,
        RetryPolicy {
            stall_timeout_ms: 120_000,
            ..expected
        }
    );
}
