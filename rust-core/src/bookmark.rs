//! The `bookmark://` URI that iOS stores for a file outside the app's
//! container (a security-scoped bookmark): `bookmark://local/<name>?<data>`.
//! The display name sits in the path, percent-encoded, so the engine takes
//! an upload's default name from it; the bookmark data sits in the query as
//! unpadded base64url, so the engine's messages (which drop queries) never
//! show it. Standard base64, padded or not, decodes as well (bookmarks made
//! by older versions or elsewhere).

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// The scheme, matched without regard to case as the platform did.
const SCHEME: &str = "bookmark://";
/// The authority every bookmark URI has.
const PREFIX: &str = "bookmark://local/";

/// Characters of a file name kept as they are; everything else (`/`, `?`,
/// `#`, `%`, `:`, spaces, non-ASCII...) is percent-encoded, so any name
/// survives the trip and no parser can cut it.
const NAME_KEEPS: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

const BASE64URL: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// The URI for `bookmark` data of the file called `file_name`.
pub fn bookmark_uri(file_name: &str, bookmark: &[u8]) -> String {
    let name = utf8_percent_encode(file_name, NAME_KEEPS);
    format!("{PREFIX}{name}?{}", encode_base64url(bookmark))
}

/// The bookmark data of a `bookmark://` URI: its query up to any fragment,
/// base64url or standard base64, padding optional. `None` for anything else.
pub fn bookmark_data(uri: &str) -> Option<Vec<u8>> {
    if !has_scheme(uri) {
        return None;
    }
    let (_, query) = uri.split_once('?')?;
    let query = query.split('#').next().unwrap_or("");
    decode_base64(query)
}

/// The display name of a `bookmark://` URI: its last path segment,
/// percent-decoded and otherwise whole (a `:` or `/` in it stays). `None`
/// for anything else, or when the name is empty.
pub fn bookmark_file_name(uri: &str) -> Option<String> {
    if !has_scheme(uri) {
        return None;
    }
    let end = uri.find(['?', '#']).unwrap_or(uri.len());
    let rest = &uri[SCHEME.len()..end];
    let (_, path) = rest.split_once('/')?;
    let last = path.rsplit('/').find(|s| !s.is_empty())?;
    let name = percent_encoding::percent_decode_str(last)
        .decode_utf8()
        .ok()?
        .into_owned();
    (!name.is_empty()).then_some(name)
}

fn has_scheme(uri: &str) -> bool {
    uri.get(..SCHEME.len())
        .is_some_and(|s| s.eq_ignore_ascii_case(SCHEME))
}

fn encode_base64url(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        // Three bytes make four characters; a short chunk makes one fewer
        // per missing byte (no padding).
        for i in 0..=chunk.len() {
            out.push(BASE64URL[(n >> (18 - 6 * i)) as usize & 63] as char);
        }
    }
    out
}

/// The value of one base64 character, either alphabet.
fn base64_value(c: u8) -> Option<u32> {
    Some(match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' | b'-' => 62,
        b'/' | b'_' => 63,
        _ => return None,
    } as u32)
}

fn decode_base64(text: &str) -> Option<Vec<u8>> {
    let body = text.trim_end_matches('=');
    // Padding only completes the last group of four.
    if text.len() - body.len() > 2 || (text.len() != body.len() && !text.len().is_multiple_of(4)) {
        return None;
    }
    if body.len() % 4 == 1 {
        return None; // one character cannot hold a whole byte
    }
    let mut out = Vec::with_capacity(body.len() * 3 / 4);
    for group in body.as_bytes().chunks(4) {
        let mut n = 0u32;
        for (i, &c) in group.iter().enumerate() {
            n |= base64_value(c)? << (18 - 6 * i);
        }
        let bytes = n.to_be_bytes();
        out.extend_from_slice(&bytes[1..group.len()]);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_format_the_platform_writes_decodes() {
        // As Platform.swift wrote it: the name encoded with its path
        // characters (a `:` left as is), base64url without padding.
        let uri = "bookmark://local/clip:take%202.mov?AAEC_-8";
        assert_eq!(bookmark_data(uri), Some(vec![0, 1, 2, 255, 239]));
        assert_eq!(bookmark_file_name(uri).as_deref(), Some("clip:take 2.mov"));
        // Standard base64 with padding, a fragment, another case of scheme.
        let std = "BOOKMARK://local/a.bin?AAEC/+8=#frag";
        assert_eq!(bookmark_data(std), Some(vec![0, 1, 2, 255, 239]));
        assert_eq!(bookmark_file_name(std).as_deref(), Some("a.bin"));
    }

    #[test]
    fn anything_else_is_no_bookmark() {
        assert_eq!(bookmark_data("content://local/a?AAAA"), None);
        assert_eq!(bookmark_data("bookmark://local/a"), None);
        assert_eq!(bookmark_data("bookmark://local/a?A"), None);
        assert_eq!(bookmark_data("bookmark://local/a?AA*A"), None);
        assert_eq!(bookmark_data("bookmark://local/a?A==="), None);
        assert_eq!(bookmark_file_name("content://local/a.bin"), None);
        assert_eq!(bookmark_file_name("bookmark://local/?AAAA"), None);
        assert_eq!(bookmark_file_name("bookmark://local/%FF?AAAA"), None);
        assert_eq!(bookmark_file_name("bookm"), None);
    }

    #[test]
    fn names_with_uri_characters_keep_their_full_text() {
        for name in ["a:b.mov", "x/y?z#w%20.bin", "été 1.jpg", "?", "#", "%"] {
            let uri = bookmark_uri(name, b"data");
            assert_eq!(bookmark_file_name(&uri).as_deref(), Some(name), "{uri}");
            assert_eq!(bookmark_data(&uri).as_deref(), Some(&b"data"[..]));
            // The engine's own classification and messages agree.
            assert!(matches!(
                crate::FileSource::parse(&uri),
                Ok(crate::FileSource::Uri(_))
            ));
            assert!(!crate::source::uri_for_message(&uri).contains("ZGF0YQ"));
        }
    }

    #[test]
    fn empty_data_round_trips() {
        let uri = bookmark_uri("a", b"");
        assert_eq!(uri, "bookmark://local/a?");
        assert_eq!(bookmark_data(&uri), Some(Vec::new()));
    }

    proptest! {
        #[test]
        fn encode_then_decode_gives_both_back(
            name in "\\PC{1,40}",
            data in proptest::collection::vec(any::<u8>(), 0..300),
        ) {
            let uri = bookmark_uri(&name, &data);
            prop_assert_eq!(bookmark_file_name(&uri), Some(name));
            prop_assert_eq!(bookmark_data(&uri), Some(data.clone()));
            // Standard base64, as other writers make it, decodes the same.
            let (head, url) = uri.split_once('?').unwrap();
            let mut std = url.replace('-', "+").replace('_', "/");
            while std.len() % 4 != 0 {
                std.push('=');
            }
            prop_assert_eq!(bookmark_data(&format!("{head}?{std}")), Some(data));
        }
    }
}
