-- Per-site recovery: when set, image requests (.rom/.bin/.rfs) that match nothing else are
-- answered with this stored image, so a phone in recovery mode on the site's network can
-- reflash from the provisioning server itself. The policy still decides at serve time.
ALTER TABLE sites ADD COLUMN recovery_sha256 TEXT REFERENCES firmware (sha256);
