//! Property tests of the parsers and the arithmetic the engine trusts:
//! backend answers of any shape, and part numbering for sizes near 0, the
//! part size, 5 GiB and the 10,000-part edge.

use crate::backend::{
    join_complete_url, parse_start_answer, parse_upload_urls, part_count, MAX_PARTS, MAX_PART_SIZE,
};
use crate::engine::part_len;
use crate::error::ErrorCode;
use crate::failure::Failure;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use serde_json::{json, Map, Value};

const GIB: u64 = 1 << 30;

/// Any JSON value, a few levels deep.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        ".{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(".{0,6}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A text field: mostly plausible, often wrong.
fn text_field() -> impl Strategy<Value = Option<Value>> {
    prop_oneof![
        1 => Just(None),
        8 => "[a-zA-Z0-9/+= _.-]{0,20}".prop_map(|s| Some(Value::from(s))),
        1 => "(\\.{1,2}/)?[a-z]{1,4}(/\\.{1,2})?".prop_map(|s| Some(Value::from(s))),
        1 => any::<i64>().prop_map(|n| Some(Value::from(n))),
        2 => any_json().prop_map(Some),
    ]
}

/// A size field: mostly plausible, often wrong.
fn size_field() -> impl Strategy<Value = Option<Value>> {
    prop_oneof![
        1 => Just(None),
        8 => size_like().prop_map(|n| Some(Value::from(n))),
        1 => any::<i64>().prop_map(|n| Some(Value::from(n))),
        1 => "[0-9]{1,8}".prop_map(|s| Some(Value::from(s))),
        2 => any_json().prop_map(Some),
    ]
}

/// Sizes and part sizes around the edges that matter.
fn size_like() -> impl Strategy<Value = u64> {
    prop_oneof![
        0u64..=16,
        (5u64 * 1024 * 1024 - 8)..(5u64 * 1024 * 1024 + 8),
        (5 * GIB - 8)..(5 * GIB + 8),
        Just(MAX_PARTS * 5 * 1024 * 1024),
        (MAX_PARTS * 5 * 1024 * 1024 - 2)..(MAX_PARTS * 5 * 1024 * 1024 + 2),
        any::<u64>(),
    ]
}

fn expect_invalid(r: Result<impl std::fmt::Debug, Failure>) {
    match r {
        Err(Failure::Fatal(e)) => assert_eq!(e.code, ErrorCode::BackendInvalidResponse),
        Err(Failure::Garbled { code, .. }) => assert_eq!(code, ErrorCode::BackendInvalidResponse),
        other => panic!("expected an invalid-response failure, got {other:?}"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn start_answer_of_arbitrary_bytes_never_panics(
        body in prop::collection::vec(any::<u8>(), 0..256),
        size in size_like(),
    ) {
        if let Ok(a) = parse_start_answer(&body, size) {
            prop_assert!(!a.key.is_empty() && !a.upload_id.is_empty());
            prop_assert!((1..=MAX_PART_SIZE).contains(&a.part_size));
        }
    }

    #[test]
    fn start_answer_is_accepted_exactly_when_it_follows_the_contract(
        key in text_field(),
        upload_id in text_field(),
        part_size in size_field(),
        extra in any_json(),
        size in size_like(),
    ) {
        let mut m = Map::new();
        for (name, v) in [("key", &key), ("uploadId", &upload_id), ("partSize", &part_size)] {
            if let Some(v) = v {
                m.insert(name.into(), v.clone());
            }
        }
        m.insert("extra".into(), extra);
        let body = serde_json::to_vec(&Value::Object(m)).unwrap();
        let text = |v: &Option<Value>| match v {
            Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
            _ => None,
        };
        let ps = part_size.as_ref().and_then(Value::as_u64);
        let valid = match (text(&key), text(&upload_id), ps) {
            (Some(k), Some(u), Some(p)) if (1..=MAX_PART_SIZE).contains(&p)
                && !k.split('/').any(|seg| seg == "." || seg == "..")
                && part_count(size, p) <= MAX_PARTS => Some((k, u, p)),
            _ => None,
        };
        let r = parse_start_answer(&body, size);
        match valid {
            Some((k, u, p)) => {
                let a = r.expect("a valid answer is accepted");
                prop_assert_eq!(a.key, k);
                prop_assert_eq!(a.upload_id, u);
                prop_assert_eq!(a.part_size, p);
            }
            None => expect_invalid(r),
        }
    }

    #[test]
    fn upload_urls_are_accepted_exactly_when_every_part_has_an_http_url(
        asked in prop::collection::btree_set(1u32..=10_000, 1..20),
        answers in prop::collection::vec(
            prop_oneof![
                4 => "https?://[a-z]{1,8}(:[0-9]{2,5})?/[a-zA-Z0-9/%?=&.-]{0,30}".prop_map(|s| Some(json!(s))),
                1 => Just(None),
                1 => "(ftp|file|mailto)://?[a-z]{0,8}".prop_map(|s| Some(json!(s))),
                1 => "[a-z ]{0,10}".prop_map(|s| Some(json!(s))),
                1 => any_json().prop_map(Some),
            ],
            20,
        ),
        junk in prop::collection::btree_map("[0-9a-z]{1,5}", any_json(), 0..3),
    ) {
        let asked: Vec<u32> = asked.into_iter().collect();
        let mut urls: Map<String, Value> = junk
            .into_iter()
            .filter(|(k, _)| k.parse::<u32>().map_or(true, |n| !asked.contains(&n)))
            .collect();
        let mut all_good = true;
        for (n, answer) in asked.iter().zip(&answers) {
            let good = matches!(answer, Some(Value::String(s))
                if url::Url::parse(s).is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.has_host()));
            all_good &= good;
            if let Some(v) = answer {
                urls.insert(n.to_string(), v.clone());
            }
        }
        let body = serde_json::to_vec(&json!({ "urls": urls })).unwrap();
        match parse_upload_urls(&body, &asked) {
            Ok(map) => {
                prop_assert!(all_good);
                prop_assert_eq!(map.keys().copied().collect::<Vec<_>>(), asked.clone());
                for (n, u) in &map {
                    prop_assert_eq!(&urls[&n.to_string()], &json!(u));
                }
            }
            Err(f) => {
                prop_assert!(!all_good, "refused a valid answer: {f:?}");
                expect_invalid(Err::<(), _>(f));
            }
        }
    }

    #[test]
    fn parts_cover_the_file_exactly(size in size_like(), part_size in 1u64..=MAX_PART_SIZE) {
        let n = part_count(size, part_size);
        prop_assert!(n >= 1);
        if n > MAX_PARTS {
            // Refused by the engine; the arithmetic is never used.
            return Ok(());
        }
        let mut covered = 0u64;
        for number in 1..=n as u32 {
            let len = part_len(size, part_size, number);
            prop_assert!(len <= part_size);
            if (number as u64) < n {
                prop_assert_eq!(len, part_size, "every part but the last is full");
            } else if size > 0 {
                prop_assert!(len >= 1, "the last part is not empty");
            }
            covered += len;
        }
        prop_assert_eq!(covered, size);
        prop_assert_eq!(part_len(size, part_size, n as u32 + 1), 0);
    }

    #[test]
    fn complete_urls_keep_one_slash_and_encode_each_segment(
        base in "https?://[a-z]{1,6}(/[a-z]{1,5}){0,2}/{0,2}",
        upload_id in ".{1,24}",
        key in "[^/]{0,8}(/[^/]{0,8}){0,4}",
    ) {
        let url = join_complete_url(&base, &upload_id, &key);
        let trimmed = base.trim_end_matches('/');
        let prefix = format!("{trimmed}/");
        prop_assert!(url.starts_with(&prefix));
        let rest = &url[trimmed.len() + 1..];
        let (id_part, key_part) = rest.split_once('/').expect("id then key");
        let decode = |s: &str| percent_encoding::percent_decode_str(s).decode_utf8().unwrap().into_owned();
        prop_assert_eq!(decode(id_part), upload_id);
        let segments: Vec<String> = key_part.split('/').map(decode).collect();
        prop_assert_eq!(segments.join("/"), key);
        // Only unreserved characters, '%' escapes and the key's separators.
        prop_assert!(rest.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~%/".contains(&b)));
    }
}

#[test]
fn generated_start_answers_include_valid_ones() {
    // The property above must see both kinds: run its generator and count.
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let strategy = (text_field(), text_field(), size_field(), size_like());
    let mut valid = 0;
    for _ in 0..512 {
        let (k, u, p, size) = strategy.new_tree(&mut runner).unwrap().current();
        let ok = |v: &Option<Value>| matches!(v, Some(Value::String(s)) if !s.is_empty());
        let ps = p.as_ref().and_then(Value::as_u64);
        if ok(&k)
            && ok(&u)
            && ps.is_some_and(|p| {
                (1..=MAX_PART_SIZE).contains(&p) && part_count(size, p) <= MAX_PARTS
            })
        {
            valid += 1;
        }
    }
    assert!(valid >= 25, "only {valid} valid answers in 512");
}

#[test]
fn the_ten_thousand_part_edge() {
    let p = 5 * 1024 * 1024;
    assert_eq!(part_count(MAX_PARTS * p, p), MAX_PARTS);
    assert_eq!(part_count(MAX_PARTS * p + 1, p), MAX_PARTS + 1);
    let ok = parse_start_answer(
        format!(r#"{{"key":"k","uploadId":"u","partSize":{p}}}"#).as_bytes(),
        MAX_PARTS * p,
    );
    assert!(ok.is_ok());
    expect_invalid(parse_start_answer(
        format!(r#"{{"key":"k","uploadId":"u","partSize":{p}}}"#).as_bytes(),
        MAX_PARTS * p + 1,
    ));
    assert_eq!(part_len(MAX_PARTS * p + 1, p, 10_000), p);
}
