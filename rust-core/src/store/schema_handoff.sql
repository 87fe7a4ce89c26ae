-- Part tasks handed to the platform's transport (iOS background URLSession).
-- Kept so that a report arriving after a relaunch still commits its ETag, and
-- a task the system lost is sent again. The URL itself is not stored (it is a
-- bearer secret); only when it stops being valid.
CREATE TABLE handoff_tasks (
    task_id        TEXT    PRIMARY KEY,
    upload         INTEGER NOT NULL REFERENCES uploads (id) ON DELETE CASCADE,
    number         INTEGER NOT NULL,
    staged_path    TEXT    NOT NULL,
    length         INTEGER NOT NULL,
    -- ms since epoch; NULL when the URL states no expiry.
    url_expires_at INTEGER,
    created_at     INTEGER NOT NULL,
    UNIQUE (upload, number)
);
