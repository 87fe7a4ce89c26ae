//! Empty files on stores that refuse an empty part body or a complete with
//! no parts: through the reference backend they are stored with one
//! whole-object PUT, and read back as 0-byte objects.

mod common;

use common::*;
use s3bgu_core::UploadState;
use s3bgu_testkit::Route;

#[derive(Clone, Copy, Debug)]
enum StoreRules {
    Plain,
    RefuseEmptyParts,
    RefuseZeroPartCompletes,
    Both,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_files_upload_on_the_plain_store_and_under_each_strict_rule() {
    for rules in [
        StoreRules::Plain,
        StoreRules::RefuseEmptyParts,
        StoreRules::RefuseZeroPartCompletes,
        StoreRules::Both,
    ] {
        let h = harness().await;
        let empty_parts = matches!(rules, StoreRules::RefuseEmptyParts | StoreRules::Both);
        let zero_part = matches!(
            rules,
            StoreRules::RefuseZeroPartCompletes | StoreRules::Both
        );
        h.faults.refuse_empty_parts(empty_parts);
        h.faults.refuse_zero_part_completes(zero_part);
        let e = env(&h, 2).await;
        // An empty file next to a small one, in the same transfer.
        let empty = e.file("placeholder .nomedia", 0);
        let small = e.file("one.bin", 1);
        let ue = e.add(&empty, "t").await;
        let us = e.add(&small, "t").await;
        for (u, path) in [(&ue, &empty), (&us, &small)] {
            let done = e.settle(u.id).await;
            assert_eq!(done.state, UploadState::Completed, "{rules:?}: {done:?}");
            assert_object(&h, &done, path);
        }
        let done = e.get(ue.id).await;
        let key = done.key.as_deref().unwrap();
        assert_eq!(h.object_bytes(key).unwrap().len(), 0, "{rules:?}");
        assert_eq!((done.parts_total, done.parts_done), (1, 1));
        assert_eq!(h.stats.object_puts(key), 1, "{rules:?}: one PutObject");
        // The multipart upload opened for it was aborted by complete.
        let upload_id = done.upload_id.as_deref().unwrap();
        assert_eq!(h.stats.part_puts(upload_id, 1), 0);
        assert!(
            !h.store_dir
                .join(format!(".upload-{upload_id}.json"))
                .exists(),
            "{rules:?}: no multipart upload left behind"
        );
        assert_eq!(h.stats.backend_calls(Route::Complete), 2, "{rules:?}");
        let refused = h
            .stats
            .store_requests()
            .iter()
            .filter(|r| r.status.is_some_and(|s| s >= 400))
            .count();
        assert_eq!(refused, 0, "{rules:?}: the store refused nothing");
    }
}
