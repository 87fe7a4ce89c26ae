//! Tests of the queue database: schema, migrations, writes.

use super::*;

fn new_row<'a>(params: &'a serde_json::Map<String, serde_json::Value>) -> NewRow<'a> {
    NewRow {
        transfer_id: "t1",
        path: "/tmp/a.bin",
        file_name: "a.bin",
        file_hash: "00112233445566778899aabbccddeeff",
        size: 12,
        mtime_ns: 7,
        user_params: params,
        is_uri: false,
        in_root: false,
    }
}

#[test]
fn round_trip_upload_parts_and_config() {
    let mut s = Store::open_in_memory().unwrap();
    let mut p = serde_json::Map::new();
    p.insert("album".into(), "x".into());
    let tx = s.transaction().unwrap();
    let id = write::insert_upload(&tx, &new_row(&p)).unwrap();
    write::set_initialized(&tx, id, "k/a.bin", "up-1", 5, 3).unwrap();
    write::part_done(&tx, id, 2, "\"etag-2\"").unwrap();
    tx.commit().unwrap();

    let row = s.upload(id).unwrap().unwrap();
    assert_eq!(row.state, UploadState::Initialized);
    assert_eq!(row.user_params, p);
    assert_eq!(row.parts_total, 3);
    let etags = s.etags(id).unwrap();
    assert_eq!(
        etags,
        vec![(1, None), (2, Some("\"etag-2\"".into())), (3, None)]
    );
    assert_eq!(s.find_duplicate("t1", &row.file_hash).unwrap(), Some(id));
    assert_eq!(s.find_duplicate("t2", &row.file_hash).unwrap(), None);

    assert_eq!(s.load_config().unwrap(), None);
    let c = Config::for_base_url("http://127.0.0.1:1");
    s.save_config(&c).unwrap();
    s.save_config(&c).unwrap();
    assert_eq!(s.load_config().unwrap(), Some(c));
}

#[test]
fn debug_of_a_stored_upload_shows_no_user_param_or_uri_query() {
    let mut s = Store::open_in_memory().unwrap();
    let mut p = serde_json::Map::new();
    p.insert("apiToken".into(), "tok-4711-secret".into());
    let uri = "content://media/doc/9?token=uri-secret-99";
    let tx = s.transaction().unwrap();
    let id = write::insert_upload(
        &tx,
        &NewRow {
            path: uri,
            is_uri: true,
            ..new_row(&p)
        },
    )
    .unwrap();
    tx.commit().unwrap();
    let row = s.upload(id).unwrap().unwrap();
    for text in [format!("{row:?}"), format!("{row:#?}")] {
        assert!(!text.contains("tok-4711"), "{text}");
        assert!(!text.contains("uri-secret"), "{text}");
        assert!(text.contains("apiToken"), "param names stay: {text}");
        assert!(text.contains("content://media/doc/9"), "{text}");
    }
}

#[test]
fn a_version_1_queue_keeps_its_paths_and_new_rows_can_hold_uris() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.db");
    let conn = Connection::open(&path).unwrap();
    conn.execute_batch(MIGRATIONS[0]).unwrap();
    conn.pragma_update(None, "user_version", 1).unwrap();
    conn.execute(
        "INSERT INTO uploads (transfer_id, path, file_name, file_hash, size, mtime_ns, \
         user_params, state, created_at, updated_at) \
         VALUES ('t', '/old/a.bin', 'a.bin', 'h', 3, 1, '{}', 'PENDING', 1, 1)",
        [],
    )
    .unwrap();
    drop(conn);
    let mut s = Store::open(&path).unwrap();
    let old = s.uploads().unwrap().remove(0);
    assert_eq!((old.path.as_str(), old.is_uri), ("/old/a.bin", false));
    let p = serde_json::Map::new();
    let tx = s.transaction().unwrap();
    let id = write::insert_upload(
        &tx,
        &NewRow {
            path: "content://test/b.bin",
            is_uri: true,
            ..new_row(&p)
        },
    )
    .unwrap();
    tx.commit().unwrap();
    let row = s.upload(id).unwrap().unwrap();
    assert_eq!(
        (row.path.as_str(), row.is_uri),
        ("content://test/b.bin", true)
    );
}

/// The schema of a queue, as SQLite keeps it.
fn schema_of(path: &Path) -> Vec<(String, String, Option<String>)> {
    let conn = Connection::open(path).unwrap();
    let mut stmt = conn
        .prepare("SELECT type, name, sql FROM sqlite_master ORDER BY type, name")
        .unwrap();
    let rows = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap();
    rows.collect::<rusqlite::Result<_>>().unwrap()
}

/// A queue written before hand-off tasks named their multipart upload
/// (version 4), opened by this engine: its schema is a fresh queue's,
/// and its task names its upload's multipart upload.
#[test]
fn a_migrated_queue_has_the_schema_of_a_fresh_one() {
    const BEFORE: usize = 4;
    let dir = tempfile::tempdir().unwrap();
    let fresh = dir.path().join("fresh.db");
    drop(Store::open(&fresh).unwrap());
    let old = dir.path().join("old.db");
    let conn = Connection::open(&old).unwrap();
    for sql in &MIGRATIONS[..BEFORE] {
        conn.execute_batch(sql).unwrap();
    }
    conn.pragma_update(None, "user_version", BEFORE as i64)
        .unwrap();
    conn.execute_batch(
        "INSERT INTO uploads (transfer_id, path, file_name, file_hash, size, mtime_ns, \
         user_params, state, object_key, upload_id, part_size, parts_total, created_at, \
         updated_at) VALUES ('t', '/a', 'a', 'h', 9, 1, '{}', 'RUNNING', 'k', 'mp-1', 5, 2, \
         1, 1); \
         INSERT INTO handoff_tasks (task_id, upload, number, staged_path, length, \
         created_at) VALUES ('task-1', 1, 2, '/s/x.part', 4, 1);",
    )
    .unwrap();
    drop(conn);
    let s = Store::open(&old).unwrap();
    let tasks = s.handoff_tasks().unwrap();
    assert_eq!(tasks.len(), 1);
    assert_eq!(tasks[0].multipart_upload.as_deref(), Some("mp-1"));
    assert!(tasks[0].allow_metered, "given with no restriction");
    drop(s);
    assert_eq!(schema_of(&old), schema_of(&fresh));
}

#[test]
fn newer_schema_is_refused_and_reopen_is_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.db");
    drop(Store::open(&path).unwrap());
    drop(Store::open(&path).unwrap());
    let conn = Connection::open(&path).unwrap();
    conn.pragma_update(None, "user_version", 99).unwrap();
    drop(conn);
    let e = Store::open(&path).err().unwrap();
    assert_eq!(e.code(), ErrorCode::Database);
}

#[test]
fn garbage_file_is_a_typed_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.db");
    std::fs::write(&path, vec![0x5au8; 8192]).unwrap();
    let e: UploadError = Store::open(&path).err().unwrap().into();
    assert_eq!(e.code, ErrorCode::DatabaseCorrupt);
    assert!(e.message.contains("corrupt"), "{}", e.message);
}
