//! The local file behind an upload: checked before parts are sent. A file
//! added as a URI is opened through the platform's opener by each part
//! upload, which checks the descriptor itself (no opener call on this task).
//! A file under a registered root is found through that root's path as
//! registered now (`roots.rs`), at every use.

use super::*;

impl Engine {
    /// Where the path of an upload stored under a root is now; the stored
    /// path itself for any other path. `None` while its root is not
    /// registered.
    fn local_path(&self, row: &UploadRow) -> Option<std::path::PathBuf> {
        if row.in_root {
            self.store.resolve_in_root(&row.path)
        } else {
            Some(row.path.clone().into())
        }
    }

    pub(super) fn check_file(&self, id: UploadId) -> Result<()> {
        let row = &self.uploads[&id].row;
        if row.is_uri {
            return Ok(());
        }
        // Its root went away since the part was read: checked again once
        // the root is back, before the next part.
        let Some(path) = self.local_path(row) else {
            return Ok(());
        };
        let stamp = FileStamp::of(&path)?;
        if stamp.size != row.size || stamp.mtime_ns != row.mtime_ns {
            return Err(err(
                ErrorCode::FileChanged,
                format!(
                    "{} changed after it was added (size {} -> {}); add it again to upload the new content",
                    path.display(),
                    row.size,
                    stamp.size
                ),
            ));
        }
        Ok(())
    }

    /// An upload whose file cannot be reached yet: a URI while no opener
    /// is registered, a path under a root not registered (e.g. a
    /// background launch before the platform registered them). Its parts
    /// wait; registering what it needs wakes the engine.
    pub(super) fn waits_for_opener(&self, t: &Tracked) -> bool {
        if t.row.in_root {
            return self.local_path(&t.row).is_none();
        }
        t.row.is_uri && self.opener.get().is_none()
    }

    /// Where the parts of `id` are read from; `None` while it waits for an
    /// opener or its root.
    pub(super) fn part_file(&self, id: UploadId) -> Option<Arc<PartFile>> {
        let row = &self.uploads[&id].row;
        if !row.is_uri {
            return Some(Arc::new(PartFile::Path(self.local_path(row)?)));
        }
        Some(Arc::new(PartFile::Uri {
            uri: row.path.clone(),
            opener: self.opener.get()?,
            stamp: FileStamp {
                size: row.size,
                mtime_ns: row.mtime_ns,
            },
            calls: self.opener_calls.clone(),
            replaced: self.uri_replaced_sink(id, &row.path),
        }))
    }

    /// Lets the engine's tasks send it commands (see `own_commands`).
    pub(crate) fn hold_commands(&mut self, commands: mpsc::WeakUnboundedSender<Command>) {
        self.own_commands = Some(commands);
    }

    /// Where an opener's replacement for `uri` goes: back to the engine's
    /// task, which stores it.
    fn uri_replaced_sink(&self, id: UploadId, uri: &str) -> Option<crate::transfer::ReplacedUri> {
        let commands = self.own_commands.clone()?;
        let from = uri.to_owned();
        Some(Arc::new(move |to: String| {
            if let Some(commands) = commands.upgrade() {
                let _ = commands.send(Command::UriReplaced {
                    upload: id,
                    from: from.clone(),
                    to,
                });
            }
        }))
    }

    /// Keeps the opener's replacement of an upload's URI: one statement,
    /// so the database holds either URI after a crash (both open the same
    /// file), and only if `from` is still the one stored (a slower part's
    /// answer for an older URI changes nothing).
    pub(super) fn replace_uri(&mut self, id: UploadId, from: &str, to: &str) {
        let Some(t) = self.uploads.get(&id) else {
            return;
        };
        if !t.row.is_uri || t.row.path != from {
            return;
        }
        let stored = self.store.transaction().and_then(|tx| {
            let changed = write::replace_uri(&tx, id, from, to)?;
            tx.commit()?;
            Ok(changed)
        });
        match stored {
            Ok(true) => {
                if let Some(t) = self.uploads.get_mut(&id) {
                    t.row.path = to.to_owned();
                }
                tracing::info!(
                    upload = id,
                    uri = %crate::source::uri_for_message(to),
                    "the file opener replaced the upload's URI"
                );
            }
            Ok(false) => {}
            // The old URI still opens the file: the next open asks again.
            Err(e) => tracing::warn!(upload = id, "cannot store a replaced URI: {e}"),
        }
    }

    /// A new file's path under the closest registered root, as stored.
    pub(super) fn place_in_root(&self, mut f: HashedFile) -> HashedFile {
        if f.is_uri || f.in_root {
            return f;
        }
        if let Some(stored) = self.store.roots().place(&f.location) {
            f.location = stored;
            f.in_root = true;
        }
        f
    }

    /// Takes the platform's roots: uploads under a root are found at its
    /// registered path from now on, and those that waited for it go on.
    pub(super) fn set_file_roots(&mut self, roots: crate::roots::FileRoots) {
        for t in self.uploads.values_mut().filter(|t| t.row.in_root) {
            t.row.resolved = roots
                .resolve(&t.row.path)
                .map(|p| p.to_string_lossy().into_owned());
        }
        self.store.set_roots(roots);
        self.changes.send_modify(|n| *n += 1);
    }
}
