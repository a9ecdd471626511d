-- Firmware by content. SHA-1 beside SHA-256 for stored images (the public record of vendor
-- builds gives SHA-1 only; rows stored before this are filled in from the image files when the
-- store opens), and what a refused image claimed to be, so the policy in force can judge a
-- renamed or re-declared copy of the same bytes as the original.

ALTER TABLE firmware ADD COLUMN sha1 TEXT CHECK (sha1 IS NULL OR length(sha1) = 40);
ALTER TABLE firmware_refused ADD COLUMN sha1 TEXT;
ALTER TABLE firmware_refused ADD COLUMN vendor TEXT;
ALTER TABLE firmware_refused ADD COLUMN version TEXT;
ALTER TABLE firmware_refused ADD COLUMN models TEXT;
