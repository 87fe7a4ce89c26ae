//! The embedded S3 store: s3s-fs over a local directory.

use std::fs::OpenOptions;
use std::io::{ErrorKind, Write};
use std::path::Path;

use rand::distr::{Alphanumeric, SampleString};
use s3s::auth::SimpleAuth;
use s3s::service::{S3Service, S3ServiceBuilder};

use crate::config::BackendError;

/// The bucket the embedded store serves.
pub const EMBEDDED_BUCKET: &str = "uploads";
/// Access key of every embedded store; only the secret is per directory.
pub const EMBEDDED_ACCESS_KEY: &str = "s3bgu-local";
const SECRET_FILE: &str = ".s3bgu-secret";
const SECRET_LEN: usize = 40;

/// Builds the s3s-fs service over `dir` (creates dir and dir/<EMBEDDED_BUCKET>
/// if missing), with SimpleAuth for the given credentials.
pub fn store_service(
    dir: &Path,
    access_key: &str,
    secret_key: &str,
) -> Result<S3Service, BackendError> {
    std::fs::create_dir_all(dir.join(EMBEDDED_BUCKET))?;
    let fs = s3s_fs::FileSystem::new(dir).map_err(|e| BackendError::Store(format!("{e:?}")))?;
    let mut builder = S3ServiceBuilder::new(fs);
    builder.set_auth(SimpleAuth::from_single(access_key, secret_key));
    Ok(builder.build())
}

/// Credentials of an embedded store directory: access key fixed
/// "s3bgu-local", secret generated randomly on first use and persisted in
/// `dir/.s3bgu-secret` (mode 0600) so uploads started earlier keep working
/// after restarts (s3s-fs ties an uploadId to the access key).
pub fn embedded_credentials(dir: &Path) -> Result<(String, String), BackendError> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join(SECRET_FILE);
    if let Some(secret) = read_secret(&path)? {
        return Ok((EMBEDDED_ACCESS_KEY.to_owned(), secret));
    }

    // Written under a temporary name and hard-linked into place, so that a
    // second process starting at the same time never reads a half-written
    // file and both end up with the same secret.
    let secret = Alphanumeric.sample_string(&mut rand::rng(), SECRET_LEN);
    let tmp = dir.join(format!(
        "{SECRET_FILE}.tmp-{}",
        Alphanumeric.sample_string(&mut rand::rng(), 8)
    ));
    let written = write_private(&tmp, &secret).and_then(|()| std::fs::hard_link(&tmp, &path));
    let _ = std::fs::remove_file(&tmp);
    match written {
        Ok(()) => Ok((EMBEDDED_ACCESS_KEY.to_owned(), secret)),
        Err(e) if e.kind() == ErrorKind::AlreadyExists => match read_secret(&path)? {
            Some(theirs) => Ok((EMBEDDED_ACCESS_KEY.to_owned(), theirs)),
            None => Err(BackendError::Store(
                "the store secret file is unreadable".to_owned(),
            )),
        },
        Err(e) => Err(e.into()),
    }
}

fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    let mut opts = OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut file = opts.open(path)?;
    file.write_all(contents.as_bytes())?;
    file.sync_all()
}

/// `None` when there is no secret yet; an error when the file is corrupt,
/// since silently replacing it would orphan every upload in progress.
fn read_secret(path: &Path) -> Result<Option<String>, BackendError> {
    match std::fs::read_to_string(path) {
        Ok(contents) => {
            let secret = contents.trim();
            if secret.is_empty() || !secret.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(BackendError::Store(format!(
                    "{} is corrupt; delete it to start over",
                    path.display()
                )));
            }
            Ok(Some(secret.to_owned()))
        }
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_is_generated_once_and_private() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = dir.path().join("store");
        let (ak, first) = embedded_credentials(&store).expect("first");
        assert_eq!(ak, EMBEDDED_ACCESS_KEY);
        assert_eq!(first.len(), SECRET_LEN);
        let (_, second) = embedded_credentials(&store).expect("second");
        assert_eq!(first, second);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(store.join(SECRET_FILE))
                .expect("meta")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // No temporary files are left behind.
        let names: Vec<_> = std::fs::read_dir(&store)
            .expect("read_dir")
            .filter_map(|e| e.ok())
            .map(|e| e.file_name())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
    }

    #[test]
    fn corrupt_secret_is_an_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join(SECRET_FILE), "\n").expect("write");
        assert!(embedded_credentials(dir.path()).is_err());
    }
}
