use super::*;
use crate::model::Progress;
use serde_json::json;

const CASES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../js/__tests__/fixtures/config-cases.json"
);

/// What `configToNativeJson` does to a valid config, without its checks: the
/// public names become the engine's, headers become pairs. Anything else is
/// passed on as it is, so the engine sees every mistake the case holds.
fn to_native(public: &Value) -> Value {
    let Some(obj) = public.as_object() else {
        return public.clone();
    };
    let mut out = Map::new();
    for (k, v) in obj {
        let v = match (k.as_str(), v) {
            ("headers", Value::Object(h)) => Value::Array(
                h.iter()
                    .map(|(n, v)| Value::Array(vec![n.clone().into(), v.clone()]))
                    .collect(),
            ),
            ("retry", Value::Object(r)) => Value::Object(
                r.iter()
                    .map(|(k, v)| {
                        let k = if k == "initialDelayMs" {
                            "baseDelayMs"
                        } else {
                            k
                        };
                        (k.to_owned(), v.clone())
                    })
                    .collect(),
            ),
            _ => v.clone(),
        };
        let k = match k.as_str() {
            "startUploadApi" => "startUploadUrl",
            "getUploadUrlsApi" => "uploadUrlsUrl",
            "completeApi" => "completeUrl",
            "abortApi" => "abortUrl",
            "maxParallelParts" => "maxPartsInFlight",
            other => other,
        };
        out.insert(k.to_owned(), v);
    }
    Value::Object(out)
}

#[test]
fn the_engine_accepts_exactly_the_configs_javascript_accepts() {
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(CASES).unwrap()).unwrap();
    let cases = doc["cases"].as_array().unwrap();
    assert!(cases.len() > 50, "{} cases", cases.len());
    let mut wrong = Vec::new();
    for case in cases {
        let config = if let Some(whole) = case.get("whole") {
            whole.clone()
        } else {
            let mut c = doc["base"].clone();
            let obj = c.as_object_mut().unwrap();
            for (k, v) in case
                .get("set")
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
            {
                obj.insert(k.clone(), v.clone());
            }
            for k in case
                .get("unset")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                obj.remove(k.as_str().unwrap());
            }
            c
        };
        let accept = case["accept"].as_bool().unwrap();
        match config_from_json(&to_native(&config).to_string()) {
            Ok(_) if accept => {}
            Err(e) if !accept && e.code == ErrorCode::InvalidConfig => {}
            r => wrong.push(format!("{}: {:?}", case["name"], r.map(|_| "accepted"))),
        }
    }
    assert!(wrong.is_empty(), "disagreements:\n{}", wrong.join("\n"));
}

fn base() -> Value {
    json!({
        "startUploadUrl": "https://api.example.com/start",
        "uploadUrlsUrl": "https://api.example.com/urls",
        "completeUrl": "https://api.example.com/complete",
    })
}

fn with(key: &str, v: Value) -> String {
    let mut c = base();
    c[key] = v;
    c.to_string()
}

#[test]
fn config_json_round_trips_and_defaults_apply() {
    let c = config_from_json(&base().to_string()).unwrap();
    assert_eq!(c.max_parts_in_flight, crate::DEFAULT_MAX_PARTS_IN_FLIGHT);
    assert_eq!(c.retry, RetryPolicy::default());
    assert_eq!(c.network_policy, NetworkPolicy::Any);

    let full = json!({
        "startUploadUrl": "https://api.example.com/start",
        "uploadUrlsUrl": "https://api.example.com/urls",
        "completeUrl": "https://api.example.com/complete",
        "abortUrl": "https://api.example.com/abort",
        "headers": [["Authorization", "Bearer x"], ["authorization", "twice"]],
        "maxPartsInFlight": 7,
        "retry": { "maxAttempts": 3, "baseDelayMs": 5, "maxDelayMs": 50, "maxUrlRefreshes": 1,
                   "requestTimeoutMs": 30_000, "stallTimeoutMs": 100 },
        "network": "unmetered",
        "notification": { "title": "{percentage}%", "text": "{totalFiles}" },
        "extraRootCertificatesPem": [],
        "finishedRetentionMs": 0,
    });
    let c = config_from_json(&full.to_string()).unwrap();
    assert_eq!(c.headers.len(), 2);
    assert_eq!(c.network_policy, NetworkPolicy::UnmeteredOnly);
    assert_eq!(
        (c.retry.request_timeout_ms, c.retry.stall_timeout_ms),
        (30_000, 100)
    );
    assert_eq!(c.finished_retention_ms, 0);
    let again: Value = serde_json::from_str(&config_to_json(&c)).unwrap();
    assert_eq!(again, full);
    assert_eq!(config_from_json(&again.to_string()).unwrap(), c);
}

#[test]
fn javascript_doubles_count_when_they_are_integers() {
    let c = config_from_json(&with("maxPartsInFlight", json!(4.0))).unwrap();
    assert_eq!(c.max_parts_in_flight, 4);
    for bad in [json!(4.5), json!(1e300), json!(-0.5), json!("4")] {
        let e = config_from_json(&with("maxPartsInFlight", bad.clone())).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidConfig, "{bad}");
        assert!(e.message.contains("maxPartsInFlight"), "{}", e.message);
    }
}

#[test]
fn messages_never_quote_header_values_or_urls() {
    let e = config_from_json(&with("headers", json!([["X-Key", "s3cr3t\n"]]))).unwrap_err();
    assert!(
        e.message.contains("X-Key") && !e.message.contains("s3cr3t"),
        "{}",
        e.message
    );
    let e = config_from_json(&with("headers", json!([["X-Key", ["s3cr3t"]]]))).unwrap_err();
    assert!(!e.message.contains("s3cr3t"), "{}", e.message);
    let e = config_from_json(&with("abortUrl", json!("https://x y/?token=s3cr3t"))).unwrap_err();
    assert!(
        e.message.contains("abortUrl") && !e.message.contains("s3cr3t"),
        "{}",
        e.message
    );
    let e = config_from_json(r#"{"startUploadUrl": "s3cr3t"#).unwrap_err();
    assert!(!e.message.contains("s3cr3t"), "{}", e.message);
}

#[test]
fn extra_roots_must_be_certificates_the_verifier_can_use() {
    // Well-formed PEM around bytes that are no certificate: JavaScript cannot
    // tell (it does not parse DER), the engine refuses it.
    let fake = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
    let e = config_from_json(&with("extraRootCertificatesPem", json!([fake]))).unwrap_err();
    assert_eq!(e.code, ErrorCode::InvalidConfig);
    assert!(
        e.message.contains("extraRootCertificatesPem[0]"),
        "{}",
        e.message
    );
    let many = vec![Value::from("x"); crate::tls::MAX_EXTRA_ROOTS + 1];
    let e = config_from_json(&with("extraRootCertificatesPem", Value::Array(many))).unwrap_err();
    assert!(e.message.contains("at most"), "{}", e.message);
}

#[test]
fn targets_as_javascript_passes_them() {
    assert_eq!(selector(None, None).unwrap(), Selector::All);
    assert_eq!(selector(Some(7.0), None).unwrap(), Selector::Upload(7));
    assert_eq!(
        selector(None, Some("t".into())).unwrap(),
        Selector::Transfer("t".into())
    );
    assert_eq!(
        selector(Some(MAX_SAFE_INTEGER), None).unwrap(),
        Selector::Upload(9_007_199_254_740_991)
    );
    for (id, t) in [
        (Some(7.5), None),
        (Some(-1.0), None),
        (Some(f64::NAN), None),
        (Some(f64::INFINITY), None),
        (Some(MAX_SAFE_INTEGER * 2.0), None),
        (Some(1.0), Some("t".to_owned())),
        (None, Some("  ".to_owned())),
    ] {
        let e = selector(id, t.clone()).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidArgument, "{id:?} {t:?}");
    }
}

#[test]
fn events_carry_the_spec_emitter_names() {
    let p = Progress {
        id: 3,
        transfer_id: "t".into(),
        uploaded_bytes: 1 << 40,
        total_bytes: 1 << 41,
        parts_done: 1,
        parts_total: 2,
    };
    let (name, body) = event_json(&UploadEvent::Progress(p));
    assert_eq!(name, "onProgress");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["uploadedBytes"].as_u64(), Some(1 << 40));
    assert_eq!(v["transferId"], "t");
}

#[test]
fn user_params_must_be_an_object() {
    assert!(user_params(r#"{"a":[1,{"b":null}]}"#).is_ok());
    for bad in ["[]", "1", "null", "{", r#""s3cr3t""#] {
        let e = user_params(bad).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidArgument);
        assert!(!e.message.contains("s3cr3t"));
    }
}
