use super::records::summary_record;
use super::*;
use crate::ffi::JsError;
use crate::{background, model, Config, UploadError};
use std::sync::Arc;

#[test]
fn every_variant_carries_its_stable_code_and_message() {
    let mut variants = std::collections::HashSet::new();
    for code in crate::error::ALL_CODES {
        let e = UploaderError::from(UploadError::new(code, "why"));
        variants.insert(std::mem::discriminant(&e));
        assert_eq!(e.error_code(), code.as_str());
        assert_eq!(e.core_code(), code);
        assert_eq!(e.code(), ErrorCode::from(code));
        assert_eq!(e.error_detail(), "why");
        assert_eq!(e.to_string(), "why");
        // iOS still derives codes from case names until it calls `error_code`.
        let name = format!("{:?}", e.code());
        assert_eq!(
            name.to_lowercase(),
            code.as_str().replace('_', ""),
            "variant names follow the stable codes"
        );
        let JsError::Rejected { code: js, detail } = JsError::from(e);
        assert_eq!((js.as_str(), detail.as_str()), (code.as_str(), "why"));
    }
    // One variant per code: none is reached by two codes.
    assert_eq!(variants.len(), crate::error::ALL_CODES.len());
}

/// A file that is not an SQLite database where the queue should be.
fn not_a_database(dir: &std::path::Path) -> String {
    let db = dir.join("q.db");
    std::fs::write(&db, b"this is a text file, not a queue\n".repeat(300)).unwrap();
    db.to_string_lossy().into_owned()
}

#[test]
fn open_json_rejects_a_corrupt_queue_with_its_code() {
    let dir = tempfile::tempdir().unwrap();
    let db = not_a_database(dir.path());
    match UploadEngine::open_json(db.clone(), false) {
        Err(JsError::Rejected { code, detail }) => {
            assert_eq!(code, "database_corrupt", "{detail}");
            assert!(detail.contains("set it aside"), "{detail}");
        }
        Ok(_) => panic!("a corrupt queue opened"),
    }
    // The platform's own open carries the same code.
    let e = UploadEngine::open(db, false).err().expect("open refuses");
    assert_eq!(e.error_code(), "database_corrupt");
    match UploadEngine::open_json(" ".into(), false) {
        Err(JsError::Rejected { code, .. }) => assert_eq!(code, "invalid_argument"),
        Ok(_) => panic!("an empty path opened"),
    }
}

#[test]
fn open_json_rejects_a_queue_held_by_another_process_with_its_code() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("q.db");
    // Another process's engine, as far as the lock file can tell.
    let _held = crate::Uploader::open({
        let mut o = crate::UploaderOptions::new(&db);
        o.start = false;
        o
    })
    .unwrap();
    match UploadEngine::open_json(db.to_string_lossy().into_owned(), false) {
        Err(JsError::Rejected { code, detail }) => {
            assert_eq!(code, "database", "{detail}");
            assert!(detail.contains("in use"), "{detail}");
        }
        Ok(_) => panic!("a queue in use opened twice"),
    }
}

#[test]
fn config_survives_the_round_trip() {
    let mut c = Config::for_base_url("https://api.example/up");
    c.headers = vec![("Authorization".into(), "Bearer t".into())];
    c.network_policy = background::NetworkPolicy::UnmeteredOnly;
    c.notification_title = Some("{percentage}%".into());
    c.retry.max_attempts = 3;
    let back = Config::from(UploaderConfig::from(c.clone()));
    assert_eq!(back, c);
}

#[test]
fn aggregate_states() {
    let s = |f: &dyn Fn(&mut model::Summary)| {
        let mut s = model::Summary::default();
        f(&mut s);
        summary_record(None, &s).state
    };
    assert_eq!(s(&|_| {}), AggregateState::Empty);
    assert_eq!(
        s(&|s| {
            s.uploads = 3;
            s.running = 1;
            s.paused = 1;
            s.failed = 1;
        }),
        AggregateState::Running
    );
    assert_eq!(
        s(&|s| {
            s.uploads = 2;
            s.paused = 1;
            s.failed = 1;
        }),
        AggregateState::Paused
    );
    assert_eq!(
        s(&|s| {
            s.uploads = 2;
            s.completed = 1;
            s.failed = 1;
        }),
        AggregateState::Failed
    );
    assert_eq!(
        s(&|s| {
            s.uploads = 2;
            s.completed = 1;
            s.cancelled = 1;
        }),
        AggregateState::Completed
    );
    assert_eq!(
        s(&|s| {
            s.uploads = 1;
            s.cancelled = 1;
        }),
        AggregateState::Cancelled
    );
}

#[test]
fn a_second_open_of_a_path_shares_the_engine_until_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.db").to_string_lossy().into_owned();
    let a = UploadEngine::open(path.clone(), false).unwrap();
    let b = UploadEngine::open(path.clone(), false).unwrap();
    assert!(Arc::ptr_eq(&a, &b));
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(a.shutdown());
    assert_eq!(
        rt.block_on(b.status()).unwrap_err().code(),
        ErrorCode::Shutdown
    );
    let c = UploadEngine::open(path, false).unwrap();
    assert!(!Arc::ptr_eq(&a, &c));
    assert!(rt.block_on(c.status()).is_ok());
}

#[test]
fn reopen_works_while_a_call_holds_the_old_engine() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("q.db").to_string_lossy().into_owned();
    let first = UploadEngine::open(db.clone(), false).unwrap();
    assert!(Arc::ptr_eq(
        &first,
        &UploadEngine::open(db.clone(), false).unwrap()
    ));
    // An addFile in flight holds the uploader while the engine shuts down.
    let in_flight = first.uploader().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(first.shutdown());
    let second = UploadEngine::open(db.clone(), false).expect("reopen");
    assert!(!Arc::ptr_eq(&first, &second));
    assert!(second.is_open());
    drop(in_flight);
}

#[test]
fn an_engine_whose_task_ended_is_not_handed_out_again() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("q.db").to_string_lossy().into_owned();
    let first = UploadEngine::open(db.clone(), false).unwrap();
    first.uploader().unwrap().stop_engine_for_test();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while first.is_open() {
        assert!(std::time::Instant::now() < deadline, "engine task ended");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let second = UploadEngine::open(db, false).expect("reopen");
    assert!(!Arc::ptr_eq(&first, &second));
    assert!(second.is_open());
    assert!(
        first.uploader().is_err(),
        "the dead engine answers shutdown"
    );
}
