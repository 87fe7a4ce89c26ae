//! Local faults: the file deleted, modified, a directory or unreadable; the
//! queue database corrupt at open or full during an upload. Each ends in a
//! clear, typed error without a panic, and the rest of the queue carries on.

mod common;

use common::*;
use s3bgu_core::{
    ErrorCode, NewUpload, Selector, UploadInfo, UploadState, Uploader, UploaderOptions,
};
use s3bgu_testkit::Route;
use std::path::Path;
use std::time::Duration;

/// A second upload that must not notice the fault beside it.
async fn bystander(e: &Env) -> (UploadInfo, std::path::PathBuf) {
    let path = write_file(e.dir.path(), "bystander.bin", PART * 2 + 3, 42);
    (e.add(&path, "others").await, path)
}

async fn assert_bystander_completes(
    h: &s3bgu_testkit::Harness,
    e: &Env,
    b: &(UploadInfo, std::path::PathBuf),
) {
    let done = e.settle(b.0.id).await;
    assert_eq!(done.state, UploadState::Completed, "{:?}", done.error);
    assert_object(h, &done, &b.1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_deleted_mid_upload_fails_alone() {
    let h = harness().await;
    let e = env(&h, 2).await;
    // Slow parts, so the file goes away with parts still to read, even on
    // a loaded machine.
    h.faults.delay_put_responses(Duration::from_millis(1000));
    let path = e.file("doomed.bin", PART * 6);
    let u = e.add(&path, "t").await;
    let b = bystander(&e).await;
    e.wait_for(u.id, "a part done", |u| u.parts_done >= 1).await;
    std::fs::remove_file(&path).unwrap();
    let done = e.settle(u.id).await;
    assert_eq!(done.state, UploadState::Failed);
    let err = done.error.unwrap();
    assert_eq!(err.code, ErrorCode::FileNotFound, "{}", err.message);
    assert!(err.message.contains("doomed.bin"), "{}", err.message);
    assert_bystander_completes(&h, &e, &b).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_modified_mid_upload_fails_alone() {
    let h = harness().await;
    let e = env(&h, 2).await;
    h.faults.delay_put_responses(Duration::from_millis(1000));
    let path = e.file("growing.bin", PART * 6);
    let other = content(PART * 6, 99);
    let u = e.add(&path, "t").await;
    let b = bystander(&e).await;
    e.wait_for(u.id, "a part done", |u| u.parts_done >= 1).await;
    // Same size, new content and mtime: a rewrite in place.
    std::fs::write(&path, other).unwrap();
    let done = e.settle(u.id).await;
    assert_eq!(done.state, UploadState::Failed);
    let err = done.error.unwrap();
    assert_eq!(err.code, ErrorCode::FileChanged, "{}", err.message);
    assert_bystander_completes(&h, &e, &b).await;
    assert_eq!(
        h.stats.backend_calls(Route::Complete),
        1,
        "only the bystander completes"
    );
    assert!(h.object_bytes(done.key.as_deref().unwrap()).is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_directory_is_refused_at_add() {
    let h = harness().await;
    let e = env(&h, 2).await;
    let b = bystander(&e).await;
    let err = add(&e.uploader, e.dir.path(), "t").await.unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidArgument);
    assert!(err.message.contains("is a directory"), "{}", err.message);
    assert_eq!(e.uploader.uploads(Selector::All).await.unwrap().len(), 1);
    assert_bystander_completes(&h, &e, &b).await;
}

/// Root reads any file whatever its mode; drop the capabilities that allow
/// it, for this thread and the threads it starts (capabilities are per
/// thread on Linux, and inherited by new threads).
fn give_up_reading_everything() {
    if unsafe { libc::geteuid() } != 0 {
        return;
    }
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Clone, Copy, Default)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    const VERSION_3: u32 = 0x2008_0522;
    const DAC_OVERRIDE: u32 = 1 << 1;
    const DAC_READ_SEARCH: u32 = 1 << 2;
    let mut header = Header {
        version: VERSION_3,
        pid: 0,
    };
    let mut data = [Data::default(); 2];
    let rc = unsafe { libc::syscall(libc::SYS_capget, &mut header, data.as_mut_ptr()) };
    assert_eq!(rc, 0, "capget");
    data[0].effective &= !(DAC_OVERRIDE | DAC_READ_SEARCH);
    let rc = unsafe { libc::syscall(libc::SYS_capset, &mut header, data.as_ptr()) };
    assert_eq!(rc, 0, "capset");
}

fn make_unreadable(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o000)).unwrap();
    assert!(
        std::fs::File::open(path).is_err(),
        "the file should be unreadable now"
    );
}

#[test]
fn unreadable_files_fail_with_file_unreadable_and_the_rest_completes() {
    give_up_reading_everything();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let h = harness().await;
        let dir = tempfile::tempdir().unwrap();
        let uploader = Uploader::open(UploaderOptions {
            start: false,
            ..UploaderOptions::new(dir.path().join("queue.db"))
        })
        .unwrap();
        uploader.set_config(config_for(&h, 2)).await.unwrap();

        // Unreadable before it is added: refused at add.
        let early = write_file(dir.path(), "early.bin", 1000, 1);
        make_unreadable(&early);
        let err = add(&uploader, &early, "t").await.unwrap_err();
        assert_eq!(err.code, ErrorCode::FileUnreadable, "{}", err.message);
        assert!(err.message.contains("permission denied"), "{}", err.message);

        // Unreadable after it was added: the upload fails when it reads.
        let late = write_file(dir.path(), "late.bin", PART + 1, 2);
        let late_upload = add(&uploader, &late, "t").await.unwrap();
        make_unreadable(&late);
        let fine = write_file(dir.path(), "fine.bin", PART * 2, 3);
        let fine_upload = add(&uploader, &fine, "t").await.unwrap();
        uploader.start().await.unwrap();
        tokio::time::timeout(Duration::from_secs(60), uploader.wait_idle(Selector::All))
            .await
            .unwrap()
            .unwrap();
        let all = uploader.uploads(Selector::All).await.unwrap();
        let late_done = all.iter().find(|u| u.id == late_upload.id).unwrap();
        assert_eq!(late_done.state, UploadState::Failed);
        let err = late_done.error.as_ref().unwrap();
        assert_eq!(err.code, ErrorCode::FileUnreadable, "{}", err.message);
        let fine_done = all.iter().find(|u| u.id == fine_upload.id).unwrap();
        assert_eq!(
            fine_done.state,
            UploadState::Completed,
            "{:?}",
            fine_done.error
        );
        assert_object(&h, fine_done, &fine);
        uploader.shutdown().await;
    });
}

/// A queue with one completed upload, closed.
async fn queue_with_history(h: &s3bgu_testkit::Harness, db: &Path, dir: &Path) {
    let uploader = open(db);
    uploader.set_config(config_for(h, 2)).await.unwrap();
    let path = write_file(dir, "history.bin", 1000, 5);
    let u = uploader
        .add_file(NewUpload {
            path,
            transfer_id: "t".into(),
            ..NewUpload::default()
        })
        .await
        .unwrap();
    uploader.wait_idle(Selector::Upload(u.id)).await.unwrap();
    uploader.shutdown().await;
}

async fn corrupt_database_is_typed_then_set_aside(damage: impl FnOnce(&Path)) {
    let h = harness().await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("queue.db");
    queue_with_history(&h, &db, dir.path()).await;
    damage(&db);
    let damaged = std::fs::read(&db).unwrap();

    let err = Uploader::open(UploaderOptions::new(&db))
        .err()
        .expect("open refuses");
    assert_eq!(err.code, ErrorCode::DatabaseCorrupt, "{}", err.message);
    assert!(err.message.contains("set it aside"), "{}", err.message);
    let err = s3bgu_core::read_queue(&db).unwrap_err();
    assert_eq!(err.code, ErrorCode::DatabaseCorrupt, "{}", err.message);

    // The documented recovery: the bad file is kept, the queue starts empty.
    let aside = s3bgu_core::set_aside_database(&db).unwrap();
    assert_eq!(
        std::fs::read(&aside).unwrap(),
        damaged,
        "kept byte for byte"
    );
    assert!(!db.exists());
    let uploader = open(&db);
    assert!(uploader.uploads(Selector::All).await.unwrap().is_empty());
    uploader.set_config(config_for(&h, 2)).await.unwrap();
    let path = write_file(dir.path(), "after.bin", PART + 9, 6);
    let u = add(&uploader, &path, "t").await.unwrap();
    uploader.wait_idle(Selector::Upload(u.id)).await.unwrap();
    let done = uploader
        .uploads(Selector::Upload(u.id))
        .await
        .unwrap()
        .pop()
        .unwrap();
    assert_eq!(done.state, UploadState::Completed);
    assert_object(&h, &done, &path);
    uploader.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_that_is_not_a_database_is_typed_and_set_aside() {
    corrupt_database_is_typed_then_set_aside(|db| {
        std::fs::write(db, b"this is a text file, not a queue\n".repeat(300)).unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_with_a_damaged_page_is_typed_and_set_aside() {
    corrupt_database_is_typed_then_set_aside(|db| {
        use std::io::{Seek, SeekFrom, Write};
        let mut f = std::fs::OpenOptions::new().write(true).open(db).unwrap();
        let len = f.metadata().unwrap().len();
        assert!(len >= 3 * 4096, "a few pages: {len}");
        // Page 2 onwards: b-tree pages of the tables, now noise.
        f.seek(SeekFrom::Start(4096)).unwrap();
        f.write_all(&content(len - 4096, 7)).unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_database_fails_the_upload_that_needs_room_and_the_rest_go_on() {
    let h = harness().await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("queue.db");
    {
        let uploader = open(&db);
        uploader.set_config(config_for(&h, 2)).await.unwrap();
        uploader.shutdown().await;
    }
    let pages: u32 = rusqlite::Connection::open(&db)
        .unwrap()
        .query_row("PRAGMA page_count", [], |r| r.get(0))
        .unwrap();
    // Room for a few uploads, not for thousands of parts.
    let uploader = Uploader::open(UploaderOptions {
        max_db_pages: Some(pages + 6),
        ..UploaderOptions::new(&db)
    })
    .unwrap();
    h.faults.delay_put_responses(Duration::from_millis(300));
    let small = write_file(dir.path(), "small.bin", PART * 3, 8);
    let s = add(&uploader, &small, "t").await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while uploader.uploads(Selector::Upload(s.id)).await.unwrap()[0].parts_total == 0 {
        assert!(std::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // The next file gets 6,000 parts of 2 KiB: their rows do not fit.
    h.faults.fail_backend(
        Route::StartUpload,
        1,
        200,
        r#"{"key":"uploads/many-parts.bin","uploadId":"many","partSize":2048}"#,
    );
    let big = write_file(dir.path(), "many-parts.bin", 2048 * 6000, 9);
    let b = add(&uploader, &big, "t").await.unwrap();
    tokio::time::timeout(Duration::from_secs(60), uploader.wait_idle(Selector::All))
        .await
        .unwrap()
        .unwrap();
    let all = uploader.uploads(Selector::All).await.unwrap();
    let b_done = all.iter().find(|u| u.id == b.id).unwrap();
    assert_eq!(b_done.state, UploadState::Failed);
    let err = b_done.error.as_ref().unwrap();
    assert_eq!(err.code, ErrorCode::Database, "{}", err.message);
    assert!(err.message.contains("full"), "{}", err.message);
    let s_done = all.iter().find(|u| u.id == s.id).unwrap();
    assert_eq!(s_done.state, UploadState::Completed, "{:?}", s_done.error);
    assert_object(&h, s_done, &small);
    uploader.shutdown().await;

    // With room again, the failed upload resumes and nothing was lost.
    let uploader = open(&db);
    let listed = uploader.uploads(Selector::All).await.unwrap();
    assert_eq!(listed.len(), 2);
    uploader.resume(Selector::Upload(b.id)).await.unwrap();
    tokio::time::timeout(Duration::from_secs(60), uploader.wait_idle(Selector::All))
        .await
        .unwrap()
        .unwrap();
    let b_done = uploader
        .uploads(Selector::Upload(b.id))
        .await
        .unwrap()
        .pop()
        .unwrap();
    assert_eq!(b_done.state, UploadState::Completed, "{:?}", b_done.error);
    assert_object(&h, &b_done, &big);
    uploader.shutdown().await;
}
