//! Keys of any UTF-8 survive the trip engine -> reference backend -> store:
//! the engine builds the abort/complete URL, the backend decodes it, and
//! the store must receive exactly the same key and upload id.

use proptest::prelude::*;
use s3bgu_testkit::HarnessOptions;

/// A key segment: any characters but `/` and control characters, and not
/// `.` or `..` (which the engine and the backend refuse).
fn segment() -> impl Strategy<Value = String> {
    "[^/\\p{Cc}]{0,12}".prop_filter("dot segments", |s| s != "." && s != "..")
}

fn key() -> impl Strategy<Value = String> {
    prop::collection::vec(segment(), 1..5)
        .prop_map(|segs| format!("uploads/{}", segs.join("/")))
        .prop_filter("something after the prefix", |k| k.len() > "uploads/".len())
}

/// The store (s3s-fs) only knows UUID upload ids and refuses others with
/// 400, so ids here are UUIDs; ids of any shape are covered by the
/// encoder's own property test and the bad-backend matrix.
fn upload_id() -> impl Strategy<Value = String> {
    "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
}

#[test]
fn arbitrary_utf8_keys_round_trip_through_the_reference_backend() {
    let (h, rt) = s3bgu_testkit::spawn_in_thread(HarnessOptions::default());
    let http = reqwest::Client::new();
    let base = h.abort_url();
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    let result = runner.run(&(key(), upload_id()), |(key, upload_id)| {
        h.stats.reset();
        let url = s3bgu_core::complete_url(&base, &upload_id, &key);
        let status = rt
            .block_on(http.post(&url).body("{}").send())
            .map(|r| r.status().as_u16())
            .map_err(|e| TestCaseError::fail(format!("{e}")))?;
        prop_assert_eq!(status, 204, "backend refused {}", url);
        let requests = h.stats.store_requests();
        let abort = requests
            .iter()
            .find(|r| r.method == "DELETE")
            .ok_or_else(|| TestCaseError::fail("the store saw no abort"))?;
        let path = percent_encoding::percent_decode_str(&abort.path)
            .decode_utf8()
            .map_err(|e| TestCaseError::fail(format!("{e}")))?;
        // The bucket is "uploads"; the key follows it.
        prop_assert_eq!(path.as_ref(), format!("/uploads/{key}"));
        prop_assert_eq!(abort.upload_id.as_deref(), Some(upload_id.as_str()));
        Ok(())
    });
    drop(h);
    drop(rt);
    if let Err(e) = result {
        panic!("{e}");
    }
}
