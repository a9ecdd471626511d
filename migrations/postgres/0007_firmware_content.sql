-- PostgreSQL twin of sqlite/0007_firmware_content.sql.
ALTER TABLE firmware ADD COLUMN sha1 TEXT CHECK (sha1 IS NULL OR length(sha1) = 40);
ALTER TABLE firmware_refused ADD COLUMN sha1 TEXT;
ALTER TABLE firmware_refused ADD COLUMN vendor TEXT;
ALTER TABLE firmware_refused ADD COLUMN version TEXT;
ALTER TABLE firmware_refused ADD COLUMN models TEXT;
