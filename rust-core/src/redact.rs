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
    for s in secrets {
        if s.len() >= MIN_SECRET_LEN {
            out = out.replace(s, "[redacted]");
        }
    }
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
}
