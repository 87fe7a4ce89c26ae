-- Version 1 of the queue database.

-- The engine configuration (one row), as JSON: persisted so the engine can run
-- after a restart with no app code loaded.
CREATE TABLE config (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    json TEXT NOT NULL
);

-- One row per file in the queue. The id gives the queue order.
CREATE TABLE uploads (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    transfer_id     TEXT    NOT NULL,
    path            TEXT    NOT NULL,
    file_name       TEXT    NOT NULL,
    file_hash       TEXT    NOT NULL,
    size            INTEGER NOT NULL,
    mtime_ns        INTEGER NOT NULL,
    user_params     TEXT    NOT NULL,          -- JSON object
    state           TEXT    NOT NULL,
    object_key      TEXT,
    upload_id       TEXT,
    part_size       INTEGER,
    parts_total     INTEGER NOT NULL DEFAULT 0,
    -- Consecutive failures of the current backend call and when to try again (ms since epoch).
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL DEFAULT 0,
    error_code      TEXT,
    error_message   TEXT,
    -- 0: nothing to abort, 1: abortApi still to be called, 2: abort done or given up.
    abort_state     INTEGER NOT NULL DEFAULT 0,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
);

CREATE INDEX uploads_by_transfer ON uploads (transfer_id);
CREATE INDEX uploads_by_hash ON uploads (transfer_id, file_hash);

-- One row per part once the upload is initialized. A part is done exactly
-- when its ETag is stored.
CREATE TABLE parts (
    upload          INTEGER NOT NULL REFERENCES uploads (id) ON DELETE CASCADE,
    number          INTEGER NOT NULL,
    etag            TEXT,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (upload, number)
) WITHOUT ROWID;
