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

/// What `Debug` output shows in place of a secret.
pub(crate) const REDACTED: &str = "[redacted]";

/// A URL as `Debug` output shows it: where it goes, with its query (a
/// presigned URL's signature) and any user info replaced.
pub fn url_for_debug(url: &str) -> String {
    let base = url_for_log(url);
    if url.contains('?') {
        format!("{base}?{REDACTED}")
    } else {
        base
    }
}

/// `(name, [redacted])` for each header: the names say what was sent.
pub(crate) fn header_names(headers: &[(String, String)]) -> Vec<(&str, &str)> {
    headers
        .iter()
        .map(|(n, _)| (n.as_str(), REDACTED))
        .collect()
}

/// `{name: [redacted]}` for each user param: the names say what was sent.
pub(crate) fn param_names(
    params: &serde_json::Map<String, serde_json::Value>,
) -> std::collections::BTreeMap<&str, &str> {
    params.keys().map(|k| (k.as_str(), REDACTED)).collect()
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

// Every pass below walks the text once: report bodies can be long, and a
// search restarted from the top after each match made this quadratic.

fn strip_url_queries(text: &str) -> String {
    // ASCII lowercasing keeps every byte offset, so matches in `lower` are
    // positions in `text`.
    let lower = text.to_ascii_lowercase();
    let mut out = String::with_capacity(text.len());
    let mut pos = 0;
    while let Some(start) = find_url_start(&lower, pos) {
        out.push_str(&text[pos..start]);
        let url_part = &text[start..];
        let end = url_part.find(is_url_end).unwrap_or(url_part.len());
        let url = &url_part[..end];
        match url.find('?') {
            Some(q) => {
                out.push_str(&url[..q]);
                out.push_str("?[redacted]");
            }
            None => out.push_str(url),
        }
        pos = start + end;
    }
    out.push_str(&text[pos..]);
    out
}

/// The first `http://` or `https://` in `lower` at or after `from`.
fn find_url_start(lower: &str, from: usize) -> Option<usize> {
    let mut at = from;
    while let Some(rel) = lower[at..].find("http") {
        let hit = at + rel;
        let rest = &lower[hit + 4..];
        if rest.starts_with("://") || rest.starts_with("s://") {
            return Some(hit);
        }
        at = hit + 4;
    }
    None
}

fn strip_secret_params(text: &str) -> String {
    let mut text = text.to_string();
    for param in SECRET_PARAMS {
        let lower = text.to_ascii_lowercase();
        let mut out = String::with_capacity(text.len());
        let mut pos = 0;
        while let Some(rel) = lower[pos..].find(param) {
            let value_start = pos + rel + param.len();
            let value_len = text[value_start..]
                .find(|c: char| c == '&' || is_url_end(c))
                .unwrap_or(text.len() - value_start);
            out.push_str(&text[pos..value_start]);
            out.push_str("[redacted]");
            pos = value_start + value_len;
        }
        out.push_str(&text[pos..]);
        text = out;
    }
    text
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

    /// Runs `f` on its own thread and gives up after a generous bound: a
    /// quadratic redaction of the inputs below takes hours, a linear one
    /// milliseconds.
    fn finishes<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(f());
        });
        rx.recv_timeout(std::time::Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("{what} did not finish within 60 s"))
    }

    #[test]
    fn redaction_of_a_long_text_with_many_matches_is_linear() {
        // 4 MiB: 100k URLs with queries, 100k signature parameters, 100k
        // echoes of a configured secret.
        let unit = "see https://s3.example/b/k?X-Amz-Signature=aa&n=1 then                     Signature=bbbb& and tok3n-s3cret;";
        let n = 100_000;
        let text = unit.repeat(n);
        let r = finishes("redaction of 100k matches", move || {
            redact(&text, &["tok3n-s3cret"])
        });
        assert!(!r.contains("aa&n=1"), "query kept");
        assert!(!r.contains("bbbb"), "parameter value kept");
        assert!(!r.contains("tok3n"), "secret kept");
        assert_eq!(r.matches("https://s3.example/b/k?[redacted]").count(), n);
        assert_eq!(r.matches("[redacted]").count(), 3 * n);
        // The excerpt reads all of it too (a secret may sit anywhere).
        let body = unit.repeat(n).into_bytes();
        let e = finishes("an excerpt of 4 MiB", move || excerpt(&body, &[]));
        assert!(e.chars().count() <= 201, "{e}");
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
