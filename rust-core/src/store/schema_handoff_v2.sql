-- Each hand-off task names the multipart upload it was made for: a report
-- of a task whose multipart upload vanished (and was replaced) must never
-- reach the next one. Rows made before this were made for their upload's
-- multipart upload of the time; if it was dropped since, NULL drops them.
ALTER TABLE handoff_tasks ADD COLUMN multipart_upload TEXT;
UPDATE handoff_tasks SET multipart_upload =
    (SELECT upload_id FROM uploads WHERE uploads.id = handoff_tasks.upload);

-- Tasks the platform no longer had at a relaunch (reconcilePartTasks):
-- their parts are sent again, yet iOS may report such a task afterwards
-- (it does not order getAllTasks against the reports of tasks that ended
-- while the app was dead). A late 2xx still counts while the upload has
-- that multipart upload and the part is not committed.
CREATE TABLE handoff_tombstones (
    task_id          TEXT    PRIMARY KEY,
    upload           INTEGER NOT NULL REFERENCES uploads (id) ON DELETE CASCADE,
    number           INTEGER NOT NULL,
    multipart_upload TEXT    NOT NULL
);

-- Whether the task may use a metered network, as it was given to the
-- platform (the network policy then): a policy change re-issues the tasks
-- given under the other one. Older tasks were given with no restriction.
ALTER TABLE handoff_tasks ADD COLUMN allow_metered INTEGER NOT NULL DEFAULT 1;
