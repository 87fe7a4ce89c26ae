//! Keeps secrets out of logs and error messages: presigned query strings,
//! configured header values and user param values.

/// Query parameters whose values are credentials or signatures, wherever they
/// appear in a text (S3 error bodies echo some of them).
const SECRET_PARAMS: &[&str] = &[
    "x-amz-signature=",
    "x-amz-credential=",
    "x-amz-security-token=",
    "signature=",
    "awsaccesskeyid=",
];

/// Shortest value treated as a secret; shorter ones would mangle ordinary words.
const MIN_SECRET_LEN: usize = 4;

/// `scheme://host[:port]/path` of a URL, without query or fragment.
pub fn url_for_log(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            u.set_query(None);
            u.set_fragment(None);
            let _ = u.set_password(None);
            let _ = u.set_username("");
            u.to_string()
        }
        Err(_) => "<invalid url>".to_string(),
    }
}

/// Removes every URL query string, credential-like parameter value and known
/// secret from `text`.
pub fn redact(text: &str, secrets: &[&str]) -> String {
    let mut out = strip_url_queries(text);
    out = strip_secret_params(&out);
    let mut forms: Vec<String> = secrets.iter().flat_map(|s| secret_forms(s)).collect();
    // Longest first, so a shorter form never leaves part of a longer one.
    forms.sort_by_key(|f| std::cmp::Reverse(f.len()));
    forms.dedup();
    for f in &forms {
        out = out.replace(f.as_str(), "[redacted]");
    }
    out
}

/// The forms a secret takes in a text that echoes it: as is, with its
/// whitespace collapsed (as excerpts flatten bodies), JSON-escaped, and each
/// word of a multi-word value (`Bearer <token>`: the token alone is secret).
fn secret_forms(secret: &str) -> Vec<String> {
    let words: Vec<&str> = secret.split_whitespace().collect();
    let mut forms = vec![secret.to_string(), words.join(" ")];
    if let Ok(json) = serde_json::to_string(secret) {
        forms.push(json[1..json.len() - 1].to_string());
    }
    if words.len() > 1 {
        for (i, w) in words.iter().enumerate() {
            // A leading scheme word (`Bearer`, `Basic`) is no secret.
            if i == 0 && w.chars().all(|c| c.is_ascii_alphabetic()) {
                continue;
            }
            forms.push((*w).to_string());
        }
    }
    forms.retain(|f| f.len() >= MIN_SECRET_LEN);
    forms
}

/// Every value of the user params that must stay out of messages: strings,
/// numbers and booleans at any depth, and each nested object or array as
/// the JSON text a backend may echo.
pub(crate) fn param_secrets(params: &serde_json::Map<String, serde_json::Value>) -> Vec<String> {
    fn walk(v: &serde_json::Value, out: &mut Vec<String>) {
        use serde_json::Value;
        match v {
            Value::Null => {}
            Value::Bool(b) => out.push(b.to_string()),
            Value::Number(n) => out.push(n.to_string()),
            Value::String(s) => out.push(s.clone()),
            Value::Array(items) => {
                items.iter().for_each(|x| walk(x, out));
                out.push(v.to_string());
            }
            Value::Object(map) => {
                map.values().for_each(|x| walk(x, out));
                out.push(v.to_string());
            }
        }
    }
    let mut out = Vec::new();
    params.values().for_each(|v| walk(v, &mut out));
    out
}

/// A short, single-line excerpt of a response body with secrets removed.
pub fn excerpt(body: &[u8], secrets: &[&str]) -> String {
    const MAX: usize = 200;
    let text = String::from_utf8_lossy(body);
    let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let clean = redact(&flat, secrets);
    if clean.chars().count() > MAX {
        let cut: String = clean.chars().take(MAX).collect();
        format!("{cut}…")
    } else {
        clean
    }
}

fn is_url_end(c: char) -> bool {
    c.is_whitespace() || matches!(c, '"' | '\'' | '<' | '>' | '`' | ')' | ']' | '}')
}

fn strip_url_queries(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = find_url_start(rest) {
        out.push_str(&rest[..pos]);
        let url_part = &rest[pos..];
        let end = url_part.find(is_url_end).unwrap_or(url_part.len());
        let url = &url_part[..end];
        match url.find('?') {
            Some(q) => {
                out.push_str(&url[..q]);
                out.push_str("?[redacted]");
            }
            None => out.push_str(url),
        }
        rest = &url_part[end..];
    }
    out.push_str(rest);
    out
}

fn find_url_start(text: &str) -> Option<usize> {
    let lower = text.to_ascii_lowercase();
    match (lower.find("http://"), lower.find("https://")) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn strip_secret_params(text: &str) -> String {
    let mut out = text.to_string();
    for param in SECRET_PARAMS {
        let mut search_from = 0;
        loop {
            let lower = out.to_ascii_lowercase();
            let Some(rel) = lower[search_from..].find(param) else {
                break;
            };
            let value_start = search_from + rel + param.len();
            let value_len = out[value_start..]
                .find(|c: char| c == '&' || is_url_end(c))
                .unwrap_or(out.len() - value_start);
            out.replace_range(value_start..value_start + value_len, "[redacted]");
            search_from = value_start + "[redacted]".len();
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_queries_params_and_secrets() {
        let t = "PUT https://s3.example.com/b/k?partNumber=1&X-Amz-Signature=abcdef failed; \
                 <CanonicalQueryString>X-Amz-Credential=AKIA123%2F2026&X-Amz-Date=1</CanonicalQueryString> \
                 token Bearer-s3cr3t";
        let r = redact(t, &["Bearer-s3cr3t", "ab"]);
        assert!(r.contains("https://s3.example.com/b/k?[redacted]"), "{r}");
        assert!(!r.contains("abcdef"), "{r}");
        assert!(!r.contains("AKIA123"), "{r}");
        assert!(!r.contains("s3cr3t"), "{r}");
        assert!(r.contains("X-Amz-Date=1"), "{r}");
    }

    #[test]
    fn excerpt_is_short_and_single_line() {
        let body = format!("line1\n\n  line2 {}", "x".repeat(500));
        let e = excerpt(body.as_bytes(), &[]);
        assert!(e.starts_with("line1 line2 "));
        assert!(e.chars().count() <= 201);
    }

    #[test]
    fn url_for_log_drops_query_and_userinfo() {
        assert_eq!(
            url_for_log("https://u:p@h.example/a/b?X-Amz-Signature=1#f"),
            "https://h.example/a/b"
        );
        assert_eq!(url_for_log("not a url"), "<invalid url>");
    }

    #[test]
    fn nested_and_boolean_param_values_are_secrets() {
        let params: serde_json::Map<String, serde_json::Value> = serde_json::from_str(
            r#"{"a":{"b":"deep-secret","c":[98765,true]},"d":false,"e":null}"#,
        )
        .unwrap();
        let secrets = param_secrets(&params);
        let refs: Vec<&str> = secrets.iter().map(String::as_str).collect();
        let body =
            r#"{"error":"bad params","echo":{"b":"deep-secret","c":[98765,true]},"d":false}"#;
        let r = redact(body, &refs);
        for leaked in ["deep-secret", "98765", "true", "false"] {
            assert!(!r.contains(leaked), "{leaked} in {r}");
        }
    }

    #[test]
    fn escaped_collapsed_and_partial_echoes_are_redacted() {
        // JSON-escaped in a backend's error body.
        let r = redact(
            r#"{"error":"token pa\"ss\\wo\nrd refused"}"#,
            &["pa\"ss\\wo\nrd"],
        );
        assert!(!r.contains("pa\\\"ss"), "{r}");
        assert!(r.contains("[redacted]"), "{r}");
        // Whitespace collapsed by the excerpt.
        let e = excerpt(
            b"key: first-half\n   second-half end",
            &["first-half\n second-half"],
        );
        assert!(!e.contains("first-half"), "{e}");
        assert!(!e.contains("second-half"), "{e}");
        // The token of an auth header, echoed without its scheme.
        let r = redact("invalid token t0k3n-v4lue", &["Bearer t0k3n-v4lue"]);
        assert!(!r.contains("t0k3n"), "{r}");
        assert!(r.contains("invalid token"), "{r}");
    }
}
