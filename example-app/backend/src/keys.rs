//! Object keys, part sizes and multipart ETags: pure helpers with no I/O.

use crate::config::{MAX_PART_SIZE, MIB};
use s3s::crypto::{Checksum, Md5};

pub(crate) const MAX_PARTS: u64 = 10_000;
/// S3's largest object.
pub(crate) const MAX_OBJECT_SIZE: u64 = 5 * 1024 * 1024 * MIB;
/// S3's key length limit, in bytes.
const MAX_KEY_LEN: usize = 1024;
/// File names are cut to this many bytes: the last key segment becomes a
/// file name on disk for file-backed stores, and most file systems stop at 255.
const MAX_NAME_LEN: usize = 200;
/// An extension longer than this is not worth keeping when cutting a name.
const MAX_KEPT_EXTENSION: usize = 16;

/// Makes a client-supplied file name safe to use as the last key segment.
pub(crate) fn sanitize_file_name(name: &str) -> String {
    let mut out: String = name
        .chars()
        .map(|c| {
            if c == '/' || c == '\\' || c.is_control() {
                '_'
            } else {
                c
            }
        })
        .collect();
    if out.len() > MAX_NAME_LEN {
        out = shorten_keeping_extension(&out);
    }
    // URLs resolve `.` and `..` segments away, which would change the key.
    if out == "." || out == ".." {
        out = out.replace('.', "_");
    }
    if out.is_empty() {
        out = "file".to_owned();
    }
    out
}

fn shorten_keeping_extension(name: &str) -> String {
    let ext = match name.rfind('.') {
        Some(dot) if dot > 0 && name.len() - dot <= MAX_KEPT_EXTENSION => &name[dot..],
        _ => "",
    };
    let stem = &name[..name.len() - ext.len()];
    let mut cut = MAX_NAME_LEN - ext.len();
    while !stem.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}{}", &stem[..cut], ext)
}

/// Checks a key sent back by a client before it is put into a signed URL.
/// Only keys under our prefix are accepted so that the backend's credentials
/// cannot be used to touch other objects of the bucket.
pub(crate) fn check_client_key(key: &str, prefix: &str) -> Result<(), &'static str> {
    if key.is_empty() {
        return Err("key is empty");
    }
    if key.len() > MAX_KEY_LEN {
        return Err("key is too long");
    }
    if !key.starts_with(prefix) || key.len() == prefix.len() {
        return Err("key is not one this backend issued");
    }
    if key.starts_with('/') || key.chars().any(char::is_control) {
        return Err("key contains invalid characters");
    }
    // URL path resolution would silently map these to another key.
    if key.split('/').any(|seg| seg == "." || seg == "..") {
        return Err("key contains '.' or '..' segments");
    }
    Ok(())
}

/// The part size for a file: the configured one unless the file would then
/// need more than 10,000 parts, in which case the smallest whole number of
/// MiB that fits.
pub(crate) fn part_size_for(configured: u64, file_size: u64) -> u64 {
    if file_size.div_ceil(configured) <= MAX_PARTS {
        return configured;
    }
    let needed = file_size.div_ceil(MAX_PARTS).div_ceil(MIB) * MIB;
    needed.min(MAX_PART_SIZE)
}

/// Removes the double quotes S3 puts around ETags.
pub(crate) fn unquote(etag: &str) -> &str {
    let t = etag.trim();
    t.strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or(t)
}

/// The ETag S3 gives a multipart object: the MD5 of the concatenated binary
/// MD5s of the parts, then `-N`. `None` when a part ETag is not a plain MD5
/// (e.g. SSE-KMS stores), in which case the ETag cannot be predicted.
pub(crate) fn multipart_etag<'a>(
    part_etags: impl ExactSizeIterator<Item = &'a str>,
) -> Option<String> {
    let count = part_etags.len();
    let mut outer = Md5::new();
    for etag in part_etags {
        let digest = decode_md5_hex(unquote(etag))?;
        outer.update(&digest);
    }
    Some(format!("{}-{}", to_hex(&outer.finalize()), count))
}

fn decode_md5_hex(s: &str) -> Option<[u8; 16]> {
    let bytes = s.as_bytes();
    if bytes.len() != 32 {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, pair) in bytes.chunks_exact(2).enumerate() {
        let hi = hex_value(pair[0])?;
        let lo = hex_value(pair[1])?;
        out[i] = hi << 4 | lo;
    }
    Some(out)
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn to_hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

pub(crate) fn is_md5_hex_lower(s: &str) -> bool {
    s.len() == 32 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitizes_names() {
        assert_eq!(sanitize_file_name("a/b\\c\nd.txt"), "a_b_c_d.txt");
        assert_eq!(sanitize_file_name(""), "file");
        assert_eq!(sanitize_file_name(".."), "__");
        assert_eq!(sanitize_file_name("."), "_");
        assert_eq!(sanitize_file_name("été 😀.mov"), "été 😀.mov");
        let long = format!("{}.jpeg", "é".repeat(300));
        let short = sanitize_file_name(&long);
        assert!(short.len() <= MAX_NAME_LEN);
        assert!(short.ends_with(".jpeg"));
    }

    #[test]
    fn checks_client_keys() {
        assert!(check_client_key("uploads/x/y/z.bin", "uploads/").is_ok());
        assert!(check_client_key("other/x", "uploads/").is_err());
        assert!(check_client_key("uploads/", "uploads/").is_err());
        assert!(check_client_key("uploads/a/../b", "uploads/").is_err());
        assert!(check_client_key("uploads/a/./b", "uploads/").is_err());
        assert!(check_client_key("", "").is_err());
        assert!(check_client_key("/abs", "").is_err());
    }

    #[test]
    fn grows_part_size_for_huge_files() {
        let eight = 8 * MIB;
        assert_eq!(part_size_for(eight, 0), eight);
        assert_eq!(part_size_for(eight, eight * MAX_PARTS), eight);
        let grown = part_size_for(eight, eight * MAX_PARTS + 1);
        assert_eq!(grown, 9 * MIB);
        let huge = MAX_OBJECT_SIZE;
        let ps = part_size_for(eight, huge);
        assert_eq!(ps % MIB, 0);
        assert!(huge.div_ceil(ps) <= MAX_PARTS);
    }

    #[test]
    fn computes_multipart_etag() {
        // md5("a") quoted, as S3 returns it, and md5("b") bare.
        let parts = [
            "\"0cc175b9c0f1b6a831c399e269772661\"",
            "92eb5ffee6ae2fec3ad71c777531578f",
        ];
        let etag = multipart_etag(parts.iter().copied()).expect("md5 etags");
        let mut concat = Vec::new();
        concat.extend_from_slice(&Md5::checksum(b"a"));
        concat.extend_from_slice(&Md5::checksum(b"b"));
        assert_eq!(etag, format!("{}-2", to_hex(&Md5::checksum(&concat))));
        assert!(multipart_etag(["\"xyz\""].iter().copied()).is_none());
    }
}
