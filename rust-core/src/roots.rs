//! Stable file locations. A phone moves an app's directories: iOS puts the
//! app container at a new path with every update. The platform registers
//! its directories as named roots at every launch; a file added under one
//! is stored as `<root name>/<path under the root>` and resolved against
//! that root's path as registered now, each time the file is used.

use crate::error::{ErrorCode, UploadError};
use std::path::{Component, Path, PathBuf};

/// Most roots one uploader takes (a platform has a handful).
pub const MAX_FILE_ROOTS: usize = 16;
/// Longest root name.
pub const MAX_ROOT_NAME: usize = 32;

/// A directory the platform owns, under a name that stays the same when its
/// path changes (iOS: `documents`, `library`, `caches`, `tmp`; Android:
/// `files`, `cache`, `externalFiles`). `name`: an ASCII letter, then letters,
/// digits, `_` or `-`, at most [`MAX_ROOT_NAME`] in all. `path`: absolute;
/// it need not exist.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct FileRoot {
    pub name: String,
    pub path: String,
}

/// Roots as registered, checked; the path of each without `.` components
/// or trailing slashes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct FileRoots(Vec<(String, PathBuf)>);

fn bad(message: String) -> UploadError {
    UploadError::new(ErrorCode::InvalidArgument, message)
}

impl FileRoots {
    pub(crate) fn new(roots: Vec<FileRoot>) -> Result<FileRoots, UploadError> {
        if roots.len() > MAX_FILE_ROOTS {
            return Err(bad(format!(
                "{} file roots given; at most {MAX_FILE_ROOTS} are taken",
                roots.len()
            )));
        }
        let mut checked: Vec<(String, PathBuf)> = Vec::with_capacity(roots.len());
        for FileRoot { name, path } in roots {
            let mut chars = name.chars();
            let name_ok = name.len() <= MAX_ROOT_NAME
                && chars.next().is_some_and(|c| c.is_ascii_alphabetic())
                && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
            if !name_ok {
                return Err(bad(format!(
                    "file root name {name:?} is not usable: an ASCII letter, then letters, \
                     digits, _ or -, at most {MAX_ROOT_NAME} in all"
                )));
            }
            if checked.iter().any(|(n, _)| *n == name) {
                return Err(bad(format!("file root {name} is given twice")));
            }
            let given = Path::new(&path);
            let normal = given.components().all(|c| {
                matches!(
                    c,
                    Component::RootDir | Component::CurDir | Component::Normal(_)
                )
            });
            if !given.is_absolute() || !normal || path.contains('\0') {
                return Err(bad(format!(
                    "file root {name}: {path:?} is not an absolute path without `..`"
                )));
            }
            checked.push((name, given.components().collect()));
        }
        Ok(FileRoots(checked))
    }

    /// How a file at the absolute `path` is stored: `<root>/<path under
    /// it>` for the root that holds it most closely (compared by path
    /// components: `/a/bc` is not under `/a/b`); `None` when no root holds
    /// it, or the rest of the path is not plain names (a `..` would not
    /// follow the root when it moves).
    pub(crate) fn place(&self, path: &str) -> Option<String> {
        let path = Path::new(path);
        self.0
            .iter()
            .filter_map(|(name, root)| {
                let rest = path.strip_prefix(root).ok()?;
                let mut parts = Vec::new();
                for c in rest.components() {
                    match c {
                        Component::Normal(s) => parts.push(s.to_str()?),
                        _ => return None,
                    }
                }
                (!parts.is_empty()).then(|| (root.components().count(), name, parts))
            })
            .max_by_key(|(depth, _, _)| *depth)
            .map(|(_, name, parts)| format!("{name}/{}", parts.join("/")))
    }

    /// Where a stored `<root>/<path under it>` is now; `None` while that
    /// root is not registered.
    pub(crate) fn resolve(&self, stored: &str) -> Option<PathBuf> {
        let (name, rest) = stored.split_once('/')?;
        let (_, root) = self.0.iter().find(|(n, _)| n == name)?;
        Some(root.join(rest))
    }
}

impl crate::Uploader {
    /// Registers the platform's directories (replacing any registered
    /// before). Files added from now on under one of them are stored
    /// relative to it; uploads of such files wait while their root is not
    /// registered, and go on when it is, at its new path. Roots are not
    /// persisted: register them at every launch, right after
    /// [`crate::Uploader::open`]. A file already being read keeps its open
    /// descriptor; the next open uses the root's new path. Fails with
    /// `invalid_argument` for a bad name or path, changing nothing.
    /// Non-blocking.
    pub fn set_file_roots(&self, roots: Vec<FileRoot>) -> Result<(), UploadError> {
        let roots = FileRoots::new(roots)?;
        self.commands
            .send(crate::engine::Command::SetFileRoots(roots))
            .map_err(|_| crate::uploader::shutdown_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roots(list: &[(&str, &str)]) -> Result<FileRoots, UploadError> {
        FileRoots::new(
            list.iter()
                .map(|(n, p)| FileRoot {
                    name: n.to_string(),
                    path: p.to_string(),
                })
                .collect(),
        )
    }

    #[test]
    fn paths_are_placed_under_the_closest_root_by_components() {
        let r = roots(&[("b", "/a/b"), ("a", "/a/"), ("deep", "/a/b/c")]).unwrap();
        assert_eq!(r.place("/a/b/x.bin").as_deref(), Some("b/x.bin"));
        assert_eq!(r.place("/a/b/c/d/x.bin").as_deref(), Some("deep/d/x.bin"));
        // A string prefix is not a parent directory.
        assert_eq!(r.place("/a/bc/x.bin").as_deref(), Some("a/bc/x.bin"));
        assert_eq!(r.place("/z/x.bin"), None);
        // The root itself is no file under it; `..` would not move along.
        assert_eq!(r.place("/a/b").as_deref(), Some("a/b"));
        assert_eq!(r.place("/a"), None);
        assert_eq!(r.place("/a/b/../etc/x"), None);
        assert_eq!(
            r.resolve("deep/d/x.bin"),
            Some(PathBuf::from("/a/b/c/d/x.bin"))
        );
        assert_eq!(r.resolve("gone/x.bin"), None);
        let only_b = roots(&[("b", "/a/b")]).unwrap();
        assert_eq!(only_b.place("/a/bc/x.bin"), None);
    }

    #[test]
    fn bad_roots_are_refused() {
        for list in [
            vec![("", "/a")],
            vec![("1st", "/a")],
            vec![("has space", "/a")],
            vec![("dots.no", "/a")],
            vec![("é", "/a")],
            vec![("x", "relative/dir")],
            vec![("x", "")],
            vec![("x", "/a/../b")],
            vec![("x", "/a\0b")],
            vec![("x", "/a"), ("x", "/b")],
        ] {
            let e = roots(&list).expect_err(&format!("{list:?} is refused"));
            assert_eq!(e.code, ErrorCode::InvalidArgument, "{}", e.message);
        }
        let long = "n".repeat(MAX_ROOT_NAME + 1);
        assert!(roots(&[(&long, "/a")]).is_err());
        let many: Vec<(String, String)> = (0..=MAX_FILE_ROOTS)
            .map(|i| (format!("r{i}"), format!("/r{i}")))
            .collect();
        let many: Vec<(&str, &str)> = many.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        assert!(roots(&many).is_err());
        assert!(roots(&[("externalFiles", "/x/./y/"), ("tmp_2", "/")]).is_ok());
    }
}
