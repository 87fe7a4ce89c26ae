//! Helpers shared by the CLI test binaries.

#![allow(dead_code)]

use std::path::Path;

pub const MIB: u64 = 1024 * 1024;

/// A sparse file with an 8-byte marker every MiB, so parts differ; quick to create.
pub fn sparse_file(path: &Path, size: u64) {
    use std::io::{Seek, SeekFrom, Write};
    let mut f = std::fs::File::create(path).unwrap();
    f.set_len(size).unwrap();
    let mut at = 0;
    while at < size {
        f.seek(SeekFrom::Start(at)).unwrap();
        f.write_all(&at.to_le_bytes()).unwrap();
        at += MIB;
    }
}

/// `(uploadId, part number)` of every part with a committed ETag, read
/// straight from the queue database.
pub fn committed_parts(db: &Path) -> Vec<(String, u32)> {
    let conn = rusqlite::Connection::open(db).unwrap();
    let mut stmt = conn
        .prepare(
            "SELECT u.upload_id, p.number FROM parts p JOIN uploads u ON u.id = p.upload \
             WHERE p.etag IS NOT NULL ORDER BY u.id, p.number",
        )
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// How many uploads the queue at `db` holds (0 while it has no table yet).
pub fn queued_uploads(db: &Path) -> usize {
    let Ok(conn) = rusqlite::Connection::open(db) else {
        return 0;
    };
    conn.query_row("SELECT count(*) FROM uploads", [], |r| r.get::<_, i64>(0))
        .map(|n| n as usize)
        .unwrap_or(0)
}

/// Runs `s3bgu ARGS --json` in `dir`, asserts it succeeded, returns its report.
pub fn s3bgu_json(dir: &Path, args: &[&str]) -> serde_json::Value {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_s3bgu"))
        .current_dir(dir)
        .args(args)
        .arg("--json")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "s3bgu {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}
