-- PostgreSQL twin of sqlite/0003_site_recovery.sql.
ALTER TABLE sites ADD COLUMN recovery_sha256 TEXT REFERENCES firmware (sha256);
