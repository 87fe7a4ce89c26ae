-- File sources: 'path' (the engine opens `path` itself) or 'uri' (`path`
-- holds a URI that the platform's file opener turns into a descriptor each
-- time the file is read; the descriptor itself is never stored).
ALTER TABLE uploads ADD COLUMN source TEXT NOT NULL DEFAULT 'path';
