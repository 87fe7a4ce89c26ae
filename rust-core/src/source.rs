//! Where an upload's bytes come from: a path the engine opens itself, or a
//! URI only the platform can open (an Android `content://` URI, an iOS
//! security-scoped URL kept as a bookmark). For a URI the platform's
//! [`FileOpener`] hands over a file descriptor each time the engine needs the
//! file; only the URI is stored, never a descriptor.

use crate::error::{err, ErrorCode, Result, UploadError};
use crate::hash::FileStamp;
use std::fs::File;
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

/// What the message of every "cannot read this URI" error ends with.
pub(crate) const COPY_FIRST: &str = "copy the file into the app's storage and upload the copy";

/// Opens URIs that only the platform can open. Implemented in Kotlin or
/// Swift (or Rust), registered with `set_file_opener`.
///
/// Called on an engine thread (never the caller's), each time the engine
/// needs the file: to hash it, before each part upload and after a restart.
/// It may block (Android's `ContentResolver` does a binder call; an iCloud
/// file may be downloaded first): at most `MAX_OPENER_CALLS` calls run at
/// once, and one that takes longer than the retry policy's stall timeout
/// costs that part an attempt (the late descriptor is closed).
#[uniffi::export(foreign)]
pub trait FileOpener: Send + Sync {
    /// Opens `uri` for reading and returns a file descriptor that the engine
    /// then owns and closes. Hand over a descriptor of its own, detached from
    /// anything that would close or use it later: on Android
    /// `ParcelFileDescriptor.detachFd()` (never `getFd()`, whose descriptor
    /// the `ParcelFileDescriptor` still closes), on iOS a fresh `open(2)`
    /// (or a `dup` of a descriptor the app keeps). The engine refuses, with
    /// `file_unreadable`, a number that is not an open descriptor, the
    /// standard streams 0, 1 and 2, and a descriptor not open for reading.
    /// The descriptor must allow positioned reads (a regular file): a pipe
    /// fails the upload with `file_unreadable`.
    ///
    ///
    /// The answer may name a replacement for `uri` (a refreshed bookmark):
    /// the engine then stores it for the upload and uses it for every later
    /// open, also after a restart. `uri` must still be usable until then.
    ///
    /// Not named `open`: uniffi writes a Swift keyword into the C header's
    /// vtable struct escaped with backticks, which no C compiler accepts.
    fn open_file(&self, uri: String) -> std::result::Result<OpenedFile, FileOpenError>;
}

/// A [`FileOpener`]'s answer: the descriptor it hands over, and optionally
/// a URI to use instead of the one it was asked for from now on (a stale
/// bookmark refreshed). A replacement that is not a URI the engine would
/// take from the app is ignored. `Debug` shows the replacement as in
/// messages (no query: a bookmark is in it).
#[derive(Clone, PartialEq, Eq, uniffi::Record)]
pub struct OpenedFile {
    pub fd: i32,
    pub replacement_uri: Option<String>,
}

impl std::fmt::Debug for OpenedFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenedFile")
            .field("fd", &self.fd)
            .field(
                "replacement_uri",
                &self.replacement_uri.as_deref().map(uri_for_message),
            )
            .finish()
    }
}

impl From<i32> for OpenedFile {
    /// A descriptor with no replacement.
    fn from(fd: i32) -> Self {
        OpenedFile {
            fd,
            replacement_uri: None,
        }
    }
}

/// Why a [`FileOpener`] could not open a URI. Any other exception thrown by
/// the opener arrives as `Failed`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, uniffi::Error)]
pub enum FileOpenError {
    /// The file no longer exists (deleted, or its provider is gone):
    /// the upload fails with `file_not_found`.
    #[error("the file is gone: {reason}")]
    Gone { reason: String },
    /// The app may no longer read it (the grant was revoked, the bookmark
    /// is stale): the upload fails with `file_unreadable`.
    #[error("permission to read the file is gone: {reason}")]
    PermissionRevoked { reason: String },
    /// It cannot be opened for another reason: `file_unreadable`.
    #[error("the file cannot be opened: {reason}")]
    Failed { reason: String },
}

impl From<uniffi::UnexpectedUniFFICallbackError> for FileOpenError {
    fn from(e: uniffi::UnexpectedUniFFICallbackError) -> Self {
        FileOpenError::Failed { reason: e.reason }
    }
}

/// What an app passed as the file to upload. `Debug` shows a URI as in
/// messages (no query, which may carry a token).
#[derive(Clone, PartialEq, Eq)]
pub enum FileSource {
    /// A file on this device, opened by the engine.
    Path(PathBuf),
    /// A URI the registered [`FileOpener`] opens.
    Uri(String),
}

impl FileSource {
    /// Classifies a string from the app: `scheme://...` is a URI for the
    /// opener, except `file://` which names a local path; anything else is
    /// a path.
    pub fn parse(s: &str) -> std::result::Result<FileSource, UploadError> {
        let Some(scheme) = uri_scheme(s) else {
            return Ok(FileSource::Path(PathBuf::from(s)));
        };
        if !scheme.eq_ignore_ascii_case("file") {
            return Ok(FileSource::Uri(s.to_string()));
        }
        url::Url::parse(s)
            .ok()
            .and_then(|u| u.to_file_path().ok())
            .map(FileSource::Path)
            .ok_or_else(|| {
                UploadError::new(
                    ErrorCode::InvalidArgument,
                    format!("{} is not a usable file:// URI", uri_for_message(s)),
                )
            })
    }
}

impl std::fmt::Debug for FileSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FileSource::Path(p) => f.debug_tuple("Path").field(p).finish(),
            FileSource::Uri(u) => f.debug_tuple("Uri").field(&uri_for_message(u)).finish(),
        }
    }
}

/// A path or URI as given by the app, for `Debug` output: paths as they
/// are, URIs as in messages.
pub(crate) fn path_for_debug(s: &str) -> String {
    match uri_scheme(s) {
        Some(_) => uri_for_message(s),
        None => s.to_string(),
    }
}

/// The scheme of `scheme://rest`, if `s` has that shape (RFC 3986 scheme
/// characters). Paths never do: `a://b` would be a relative path with an
/// empty component.
fn uri_scheme(s: &str) -> Option<&str> {
    let (scheme, rest) = s.split_once(':')?;
    let mut chars = scheme.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic());
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    (first_ok && rest_ok && rest.starts_with("//")).then_some(scheme)
}

/// A URI as it may appear in messages and logs: scheme, authority and last
/// path segment, without query or fragment (they can carry tokens).
pub(crate) fn uri_for_message(uri: &str) -> String {
    let cut = uri.find(['?', '#']).unwrap_or(uri.len());
    let base = &uri[..cut];
    let Some((scheme, rest)) = base.split_once("://") else {
        return "<the URI>".to_string();
    };
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    // Credentials in the authority (user:password@host) go as well.
    let host = authority.rsplit('@').next().unwrap_or("");
    let last = path.rsplit('/').find(|s| !s.is_empty()).unwrap_or("");
    let middle = if path.trim_matches('/').contains('/') {
        "…/"
    } else {
        ""
    };
    let tail = if cut < uri.len() { "?…" } else { "" };
    format!("{scheme}://{host}/{middle}{last}{tail}")
}

/// The file name a URI suggests: its last path segment, percent-decoded,
/// after any `/` or `:` it decodes to (document ids look like `primary:DCIM/a.mp4`);
/// a `bookmark://` URI's name is taken whole.
pub(crate) fn uri_file_name(uri: &str) -> Option<String> {
    if let Some(name) = crate::bookmark::bookmark_file_name(uri) {
        return Some(name);
    }
    let cut = uri.find(['?', '#']).unwrap_or(uri.len());
    let (_, rest) = uri[..cut].split_once("://")?;
    let (_, path) = rest.split_once('/')?;
    let last = path.rsplit('/').find(|s| !s.is_empty())?;
    let decoded = percent_encoding::percent_decode_str(last)
        .decode_utf8_lossy()
        .into_owned();
    let name = decoded.rsplit(['/', ':']).next().unwrap_or("").to_string();
    (!name.is_empty()).then_some(name)
}

/// The opener registered on an uploader, shared by the caller's side
/// (hashing at add) and the engine (part uploads).
#[derive(Clone, Default)]
pub(crate) struct OpenerSlot(Arc<RwLock<Option<Arc<dyn FileOpener>>>>);

impl OpenerSlot {
    pub(crate) fn get(&self) -> Option<Arc<dyn FileOpener>> {
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub(crate) fn set(&self, opener: Option<Arc<dyn FileOpener>>) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = opener;
    }
}

pub(crate) fn no_opener(uri: &str) -> crate::error::Error {
    err(
        ErrorCode::InvalidConfig,
        format!(
            "{} needs a file opener: register one with set_file_opener first",
            uri_for_message(uri)
        ),
    )
}

/// A URI opened by the platform's opener.
pub(crate) struct OpenedUri {
    pub file: File,
    /// The URI to use from now on instead, when the opener gave a usable one.
    pub replacement: Option<String>,
}

/// Asks `opener` for `uri` and checks that the descriptor can be read at
/// any offset. Blocking: the opener may block.
pub(crate) fn open_uri(opener: &dyn FileOpener, uri: &str) -> Result<OpenedUri> {
    let label = uri_for_message(uri);
    // The opener is app code: whatever it does must not unwind into the engine.
    let answer = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        opener.open_file(uri.to_string())
    }));
    let clean = |reason: &str| {
        let reason = crate::redact::redact(&reason.replace(uri, &label), &[]);
        let reason: String = reason.chars().take(200).collect();
        if reason.is_empty() {
            String::new()
        } else {
            format!(" ({reason})")
        }
    };
    let (fd, replacement) = match answer {
        Ok(Ok(OpenedFile {
            fd,
            replacement_uri,
        })) => (fd, replacement_uri),
        Ok(Err(FileOpenError::Gone { reason })) => {
            return Err(err(
                ErrorCode::FileNotFound,
                format!(
                    "{label} is gone{}: pick the file again, or {COPY_FIRST}",
                    clean(&reason)
                ),
            ))
        }
        // Both may be data protection on a locked device: the engine tells.
        Ok(Err(FileOpenError::PermissionRevoked { reason })) => {
            return Err(denied(format!(
                "permission to read {label} is gone{}: pick the file again, or {COPY_FIRST} \
                 while the permission lasts",
                clean(&reason)
            )))
        }
        Ok(Err(FileOpenError::Failed { reason })) => {
            return Err(denied(format!(
                "{label} cannot be opened{}: {COPY_FIRST}",
                clean(&reason)
            )))
        }
        Err(_) => {
            return Err(err(
                ErrorCode::FileUnreadable,
                format!("the file opener failed on {label}: {COPY_FIRST}"),
            ))
        }
    };
    // The process's standard streams are never an opener's own descriptor:
    // owning one would close it. Refused without taking it.
    if (0..=2).contains(&fd) {
        return Err(err(
            ErrorCode::FileUnreadable,
            format!(
                "the file opener returned standard stream {fd} for {label}, not a descriptor \
                 of its own: {COPY_FIRST}"
            ),
        ));
    }
    // SAFETY: `fcntl(F_GETFD)` reads the flags of a descriptor and changes
    // nothing; it tells an open descriptor from a bogus number.
    if fd < 0 || unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
        return Err(err(
            ErrorCode::FileUnreadable,
            format!("the file opener returned no open descriptor ({fd}) for {label}: {COPY_FIRST}"),
        ));
    }
    // SAFETY: the opener's contract hands the open descriptor over: nothing
    // else closes it, so the engine owns it from here on.
    let file = File::from(unsafe { OwnedFd::from_raw_fd(fd) });
    // SAFETY: as above, `F_GETFL` only reads the descriptor's status flags.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags >= 0 && flags & libc::O_ACCMODE == libc::O_WRONLY {
        // Every read would fail; say so now. Dropping `file` closes it.
        return Err(err(
            ErrorCode::FileUnreadable,
            format!("the file opener returned a descriptor not open for reading for {label}"),
        ));
    }
    descriptor_stamp(&file, &label)?;
    let replacement = replacement.filter(|new| usable_replacement(uri, new));
    Ok(OpenedUri { file, replacement })
}

/// An open refused by the opener: `file_unreadable`, or not now while the
/// device's protected data is unavailable.
fn denied(message: String) -> crate::error::Error {
    crate::error::Error::FileDenied(UploadError::new(ErrorCode::FileUnreadable, message))
}

/// Whether the opener's replacement for `uri` can be stored: a URI for the
/// opener again (not a path, not `file://`), and a different one.
fn usable_replacement(uri: &str, new: &str) -> bool {
    if new == uri {
        return false;
    }
    let usable = matches!(FileSource::parse(new), Ok(FileSource::Uri(_)));
    if !usable {
        tracing::warn!(
            uri = %uri_for_message(uri),
            "the file opener named a replacement that is not a URI it opens; ignored"
        );
    }
    usable
}

/// Size and modification time of an open descriptor (fstat); refuses
/// anything but a regular file, which is what positioned reads need.
pub(crate) fn descriptor_stamp(file: &File, label: &str) -> Result<FileStamp> {
    use std::os::unix::fs::FileTypeExt;
    let meta = file.metadata().map_err(|e| read_error(label, &e))?;
    let kind = meta.file_type();
    if !kind.is_file() {
        let what = if kind.is_fifo() {
            "a pipe"
        } else if kind.is_socket() {
            "a socket"
        } else if kind.is_dir() {
            "a directory"
        } else {
            "not a regular file"
        };
        return Err(not_positionable(label, what));
    }
    Ok(FileStamp::from_metadata(&meta))
}

fn not_positionable(label: &str, what: &str) -> crate::error::Error {
    err(
        ErrorCode::FileUnreadable,
        format!(
            "{label} was opened as {what}, which cannot be read at an offset (parts are read \
             independently and again after a restart): {COPY_FIRST}"
        ),
    )
}

/// A failed read of a descriptor-backed file, as the upload's error.
pub(crate) fn read_error(label: &str, e: &std::io::Error) -> crate::error::Error {
    if e.kind() == std::io::ErrorKind::NotSeekable {
        return not_positionable(label, "a stream");
    }
    err(
        ErrorCode::FileUnreadable,
        format!("reading {label} failed ({e}): {COPY_FIRST}"),
    )
}

/// Whether a stamp taken now still matches the one recorded at add. The
/// modification time counts only where the descriptor had one.
pub(crate) fn same_file(recorded: FileStamp, now: FileStamp) -> bool {
    recorded.size == now.size && (recorded.mtime_ns == 0 || recorded.mtime_ns == now.mtime_ns)
}

pub(crate) fn changed_error(label: &str, recorded: FileStamp, now: FileStamp) -> UploadError {
    UploadError::new(
        ErrorCode::FileChanged,
        format!(
            "{label} changed after it was added (size {} -> {}); add it again to upload the new content",
            recorded.size, now.size
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_classified_as_paths_or_uris() {
        let p = |s: &str| FileSource::parse(s).unwrap();
        assert_eq!(p("/data/a.bin"), FileSource::Path("/data/a.bin".into()));
        assert_eq!(p("rel/a:b.bin"), FileSource::Path("rel/a:b.bin".into()));
        assert_eq!(p("my:file.bin"), FileSource::Path("my:file.bin".into()));
        assert_eq!(
            p("file:///data/my%20file.bin"),
            FileSource::Path("/data/my file.bin".into())
        );
        let content = "content://com.android.providers.media.documents/document/video%3A12";
        assert_eq!(p(content), FileSource::Uri(content.into()));
        assert_eq!(
            p("s3bgu-bookmark://AAAA"),
            FileSource::Uri("s3bgu-bookmark://AAAA".into())
        );
        let e = FileSource::parse("file://elsewhere.example/x").unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidArgument);
    }

    #[test]
    fn messages_show_no_query_or_credentials() {
        assert_eq!(
            uri_for_message("content://media/external/video/media/1234?token=SECRET#frag"),
            "content://media/…/1234?…"
        );
        assert_eq!(
            uri_for_message("content://user:pw@host/doc"),
            "content://host/doc"
        );
        assert!(!uri_for_message("x://h/a?sig=SECRET").contains("SECRET"));
    }

    #[test]
    fn file_names_come_from_the_last_segment() {
        assert_eq!(
            uri_file_name("content://p.documents/document/primary%3ADCIM%2Fclip.mp4").as_deref(),
            Some("clip.mp4")
        );
        assert_eq!(
            uri_file_name("content://media/external/video/media/1234?x=1").as_deref(),
            Some("1234")
        );
        assert_eq!(uri_file_name("content://authority-only"), None);
    }

    #[test]
    fn a_not_seekable_read_says_to_copy_first() {
        let e: UploadError = read_error(
            "content://x/y",
            &std::io::Error::from_raw_os_error(libc::ESPIPE),
        )
        .into();
        assert_eq!(e.code, ErrorCode::FileUnreadable);
        assert!(e.message.contains("copy the file"), "{}", e.message);
    }

    #[test]
    fn an_opened_file_shows_no_bookmark_data() {
        let opened = OpenedFile {
            fd: 7,
            replacement_uri: Some("bookmark://local/a.mov?c2VjcmV0LWJvb2ttYXJr".into()),
        };
        for text in [format!("{opened:?}"), format!("{opened:#?}")] {
            assert!(!text.contains("c2VjcmV0"), "{text}");
            assert!(text.contains("bookmark://local/a.mov"), "{text}");
        }
    }

    /// Hands over a fixed descriptor number.
    struct FixedFd(i32);

    impl FileOpener for FixedFd {
        fn open_file(&self, _uri: String) -> std::result::Result<OpenedFile, FileOpenError> {
            Ok(self.0.into())
        }
    }

    fn is_open(fd: i32) -> bool {
        // SAFETY: reads the descriptor's flags, changes nothing.
        unsafe { libc::fcntl(fd, libc::F_GETFD) >= 0 }
    }

    #[test]
    fn the_standard_streams_are_never_taken_as_a_file() {
        // Stdin first: were it taken, the engine would close it.
        for fd in [0, 1, 2] {
            let was_open = is_open(fd);
            let e: UploadError = open_uri(&FixedFd(fd), "content://x/doc")
                .map(|_| ())
                .expect_err("a standard stream is refused")
                .into();
            assert_eq!(e.code, ErrorCode::FileUnreadable, "{}", e.message);
            assert_eq!(is_open(fd), was_open, "descriptor {fd} left as it was");
        }
    }

    #[test]
    fn a_descriptor_not_open_for_reading_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.bin");
        std::fs::write(&path, b"12345").unwrap();
        let write_only = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        let fd = std::os::fd::IntoRawFd::into_raw_fd(write_only);
        let e: UploadError = open_uri(&FixedFd(fd), "content://x/doc")
            .map(|_| ())
            .expect_err("a write-only descriptor is refused")
            .into();
        assert_eq!(e.code, ErrorCode::FileUnreadable, "{}", e.message);
        assert!(e.message.contains("reading"), "{}", e.message);
        assert!(
            !is_open(fd),
            "the refused descriptor was handed over: closed"
        );
    }

    #[test]
    fn the_mtime_counts_only_when_recorded() {
        let s = |size, mtime_ns| FileStamp { size, mtime_ns };
        assert!(same_file(s(5, 0), s(5, 99)));
        assert!(same_file(s(5, 7), s(5, 7)));
        assert!(!same_file(s(5, 7), s(5, 8)));
        assert!(!same_file(s(5, 0), s(6, 0)));
    }
}
