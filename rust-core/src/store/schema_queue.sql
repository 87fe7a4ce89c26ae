-- Finished uploads stay out of the engine's working set: the unfinished ones
-- are loaded by state, and the retention sweep finds old finished ones by
-- state and age, without reading the whole table.
CREATE INDEX uploads_by_state ON uploads (state, updated_at);
