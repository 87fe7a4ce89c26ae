-- Each hand-off task names the multipart upload it was made for: a report
-- of a task whose multipart upload vanished (and was replaced) must never
-- reach the next one. Rows made before this were made for their upload's
-- multipart upload of the time; if it was dropped since, NULL drops them.
ALTER TABLE handoff_tasks ADD COLUMN multipart_upload TEXT;
UPDATE handoff_tasks SET multipart_upload =
    (SELECT upload_id FROM uploads WHERE uploads.id = handoff_tasks.upload);
