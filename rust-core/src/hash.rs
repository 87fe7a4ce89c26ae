//! Streaming XXH3-128 of a whole file, and the file identity (size + mtime)
//! that later checks compare against.

use crate::buffer::AlignedBuf;
use crate::error::{err, ErrorCode, Result};
use crate::xxh3::FileHasher;
use std::fs::File;
use std::io::Read;
use std::path::Path;
use std::time::UNIX_EPOCH;

/// One read; small enough to stay in the CPU's cache while it is hashed.
const READ_BUF: usize = 128 * 1024;

/// Size and modification time recorded when a file is added.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FileStamp {
    pub size: u64,
    pub mtime_ns: i64,
}

impl FileStamp {
    pub(crate) fn of(path: &Path) -> Result<FileStamp> {
        let meta = std::fs::metadata(path).map_err(|e| file_error(path, &e))?;
        if !meta.is_file() {
            let what = if meta.is_dir() {
                "a directory"
            } else {
                "not a regular file"
            };
            return Err(err(
                ErrorCode::InvalidArgument,
                format!(
                    "{} is {what}: only regular files can be uploaded",
                    path.display()
                ),
            ));
        }
        Ok(FileStamp::from_metadata(&meta))
    }

    pub(crate) fn from_metadata(meta: &std::fs::Metadata) -> FileStamp {
        let mtime_ns = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        FileStamp {
            size: meta.len(),
            mtime_ns,
        }
    }
}

pub(crate) fn file_error(path: &Path, e: &std::io::Error) -> crate::error::Error {
    match e.kind() {
        std::io::ErrorKind::NotFound => err(
            ErrorCode::FileNotFound,
            format!("{} does not exist", path.display()),
        ),
        // Also what iOS data protection answers while the device is locked.
        std::io::ErrorKind::PermissionDenied => {
            crate::error::Error::FileDenied(crate::error::UploadError::new(
                ErrorCode::FileUnreadable,
                format!("{} cannot be read (permission denied)", path.display()),
            ))
        }
        _ => err(
            ErrorCode::FileUnreadable,
            format!("reading {} failed: {e}", path.display()),
        ),
    }
}

/// XXH3-128 of `path`, as 32 lowercase hex digits, with the file's stamp.
/// Blocking: call it from a blocking thread. Fails with `file_changed` if the
/// file changes while it is read.
///
/// One thread, one page-aligned buffer that stays in the CPU's cache: handing
/// buffers to a second hashing thread was measured 3-6x slower (the cache
/// lines bounce between cores), and the hash itself (`crate::xxh3`: AVX2 on
/// x86-64, NEON on aarch64, when the CPU has them) costs a fraction of the
/// read.
pub(crate) fn hash_file(path: &Path) -> Result<(String, FileStamp)> {
    let before = FileStamp::of(path)?;
    let mut file = File::open(path).map_err(|e| file_error(path, &e))?;
    let mut hasher = FileHasher::new();
    let mut buf = AlignedBuf::new(READ_BUF);
    let mut total = 0u64;
    loop {
        let n = match file.read(buf.as_mut_slice()) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(file_error(path, &e)),
        };
        hasher.update(&buf.as_slice()[..n]);
        total += n as u64;
    }
    let after = FileStamp::of(path)?;
    if before != after || total != before.size {
        return Err(err(
            ErrorCode::FileChanged,
            format!("{} changed while it was being hashed", path.display()),
        ));
    }
    Ok((format!("{:032x}", hasher.digest()), after))
}

/// XXH3-128 of a file opened by the platform (see `crate::source`), read
/// with positioned reads from offset 0, with its stamp (fstat). Blocking.
/// Fails with `file_changed` if it changes while it is read.
pub(crate) fn hash_descriptor(file: &File, label: &str) -> Result<(String, FileStamp)> {
    use std::os::unix::fs::FileExt;
    let before = crate::source::descriptor_stamp(file, label)?;
    let mut hasher = FileHasher::new();
    let mut buf = AlignedBuf::new(READ_BUF);
    let mut total = 0u64;
    loop {
        let n = match file.read_at(buf.as_mut_slice(), total) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(crate::source::read_error(label, &e)),
        };
        hasher.update(&buf.as_slice()[..n]);
        total += n as u64;
    }
    let after = crate::source::descriptor_stamp(file, label)?;
    if before != after || total != before.size {
        return Err(err(
            ErrorCode::FileChanged,
            format!("{label} changed while it was being hashed"),
        ));
    }
    Ok((format!("{:032x}", hasher.digest()), after))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_matches_one_shot_and_is_32_hex() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f.bin");
        // Larger than the read buffer so the streaming path is exercised.
        let data: Vec<u8> = (0..(READ_BUF * 3 + 17))
            .map(|i| (i * 31 % 251) as u8)
            .collect();
        std::fs::write(&p, &data).unwrap();
        let (h, stamp) = hash_file(&p).unwrap();
        assert_eq!(h, format!("{:032x}", xxhash_rust::xxh3::xxh3_128(&data)));
        assert_eq!(h.len(), 32);
        assert_eq!(stamp.size, data.len() as u64);

        let empty = dir.path().join("empty");
        std::fs::write(&empty, b"").unwrap();
        let (h0, _) = hash_file(&empty).unwrap();
        assert_eq!(h0, format!("{:032x}", xxhash_rust::xxh3::xxh3_128(b"")));
    }

    #[test]
    fn sizes_around_the_buffer_hash_like_the_reference() {
        let dir = tempfile::tempdir().unwrap();
        for size in [READ_BUF - 1, READ_BUF, READ_BUF + 1, READ_BUF * 40 + 17] {
            let p = dir.path().join(format!("big-{size}"));
            let data: Vec<u8> = (0..size).map(|i| (i * 131 % 253) as u8).collect();
            std::fs::write(&p, &data).unwrap();
            let (h, stamp) = hash_file(&p).unwrap();
            assert_eq!(h, format!("{:032x}", xxhash_rust::xxh3::xxh3_128(&data)));
            assert_eq!(stamp.size, size as u64);
        }
    }

    #[test]
    fn missing_file_is_file_not_found() {
        let e = hash_file(Path::new("/nonexistent/s3bgu/x")).unwrap_err();
        assert_eq!(e.code(), ErrorCode::FileNotFound);
    }
}
