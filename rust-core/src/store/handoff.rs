//! Stored hand-off tasks: one row per part task given to the platform.

use super::{now_ms, Store};
use crate::error::Result;
use crate::model::UploadId;
use rusqlite::{params, Transaction};

/// A hand-off task as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct TaskRow {
    pub task_id: String,
    pub upload: UploadId,
    pub number: u32,
    pub staged_path: String,
    pub length: u64,
    pub url_expires_at: Option<i64>,
    /// The multipart upload the task was made for (`None`: unknown, from
    /// before this was recorded, and its upload had none left).
    pub multipart_upload: Option<String>,
    /// The task may use a metered network.
    pub allow_metered: bool,
}

/// A task the platform lost (by its reconciliation), kept so that its late
/// report still counts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct TombstoneRow {
    pub task_id: String,
    pub upload: UploadId,
    pub number: u32,
    pub multipart_upload: String,
}

impl Store {
    /// Every stored tombstone.
    pub(crate) fn handoff_tombstones(&self) -> Result<Vec<TombstoneRow>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT task_id, upload, number, multipart_upload FROM handoff_tombstones",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(TombstoneRow {
                task_id: r.get(0)?,
                upload: r.get(1)?,
                number: r.get::<_, i64>(2)? as u32,
                multipart_upload: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    /// Every stored hand-off task.
    pub(crate) fn handoff_tasks(&self) -> Result<Vec<TaskRow>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT task_id, upload, number, staged_path, length, url_expires_at, \
             multipart_upload, allow_metered FROM handoff_tasks ORDER BY upload, number",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(TaskRow {
                task_id: r.get(0)?,
                upload: r.get(1)?,
                number: r.get::<_, i64>(2)? as u32,
                staged_path: r.get(3)?,
                length: r.get::<_, i64>(4)? as u64,
                url_expires_at: r.get(5)?,
                multipart_upload: r.get(6)?,
                allow_metered: r.get(7)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }
}

pub(crate) fn insert_task(tx: &Transaction<'_>, t: &TaskRow) -> Result<()> {
    tx.execute(
        "INSERT INTO handoff_tasks (task_id, upload, number, staged_path, length, \
         url_expires_at, created_at, multipart_upload, allow_metered) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        params![
            t.task_id,
            t.upload,
            t.number,
            t.staged_path,
            t.length as i64,
            t.url_expires_at,
            now_ms(),
            t.multipart_upload,
            t.allow_metered,
        ],
    )?;
    Ok(())
}

pub(crate) fn delete_task(tx: &Transaction<'_>, task_id: &str) -> Result<()> {
    tx.execute(
        "DELETE FROM handoff_tasks WHERE task_id = ?1",
        params![task_id],
    )?;
    Ok(())
}

pub(crate) fn insert_tombstone(tx: &Transaction<'_>, t: &TombstoneRow) -> Result<()> {
    tx.execute(
        "INSERT OR REPLACE INTO handoff_tombstones (task_id, upload, number, multipart_upload) \
         VALUES (?1, ?2, ?3, ?4)",
        params![t.task_id, t.upload, t.number, t.multipart_upload],
    )?;
    Ok(())
}

pub(crate) fn delete_tombstone(tx: &Transaction<'_>, task_id: &str) -> Result<()> {
    tx.execute(
        "DELETE FROM handoff_tombstones WHERE task_id = ?1",
        params![task_id],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{write, NewRow};

    #[test]
    fn tasks_round_trip_and_go_with_their_upload() {
        let mut s = Store::open_in_memory().unwrap();
        let p = serde_json::Map::new();
        let tx = s.transaction().unwrap();
        let id = write::insert_upload(
            &tx,
            &NewRow {
                transfer_id: "t",
                path: "/tmp/a",
                file_name: "a",
                file_hash: "00",
                size: 10,
                mtime_ns: 1,
                user_params: &p,
                is_uri: false,
                in_root: false,
            },
        )
        .unwrap();
        write::set_initialized(&tx, id, "k", "u", 5, 2).unwrap();
        let row = TaskRow {
            task_id: "t-1".into(),
            upload: id,
            number: 2,
            staged_path: "/s/x.part".into(),
            length: 5,
            url_expires_at: Some(42),
            multipart_upload: Some("u".into()),
            allow_metered: false,
        };
        insert_task(&tx, &row).unwrap();
        // One task per part at a time.
        assert!(insert_task(
            &tx,
            &TaskRow {
                task_id: "t-2".into(),
                ..row.clone()
            }
        )
        .is_err());
        // A lost task of the same part may wait for its report beside it.
        let stone = TombstoneRow {
            task_id: "t-0".into(),
            upload: id,
            number: 2,
            multipart_upload: "u".into(),
        };
        insert_tombstone(&tx, &stone).unwrap();
        tx.commit().unwrap();
        assert_eq!(s.handoff_tasks().unwrap(), vec![row]);
        assert_eq!(s.handoff_tombstones().unwrap(), vec![stone]);
        let tx = s.transaction().unwrap();
        tx.execute("DELETE FROM uploads WHERE id = ?1", params![id])
            .unwrap();
        tx.commit().unwrap();
        assert!(s.handoff_tasks().unwrap().is_empty());
        assert!(s.handoff_tombstones().unwrap().is_empty());
    }
}
