-- Phone-facing security per site: provisioning credentials (with the one being rotated out and
-- until when it is still accepted), allowed networks, HTTPS only, TFTP for sensitive files.
-- Passwords are stored as given: phones need them in their files and Digest needs them.
ALTER TABLE sites ADD COLUMN auth_user TEXT;
ALTER TABLE sites ADD COLUMN auth_password TEXT;
ALTER TABLE sites ADD COLUMN prev_auth_user TEXT;
ALTER TABLE sites ADD COLUMN prev_auth_password TEXT;
ALTER TABLE sites ADD COLUMN prev_auth_until INTEGER;
ALTER TABLE sites ADD COLUMN auth_generation INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sites ADD COLUMN allow_nets TEXT NOT NULL DEFAULT '';   -- space-separated CIDRs
ALTER TABLE sites ADD COLUMN require_https INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sites ADD COLUMN tftp_sensitive TEXT NOT NULL DEFAULT 'auto'
    CHECK (tftp_sensitive IN ('auto', 'allow', 'deny'));

-- Every fetch of a sensitive file (anything rendered for a site, and per-MAC names), hits and
-- misses. Identical fetches within a minute share a row (count, last_at). No secrets.
CREATE TABLE fetch_audit (
    id              INTEGER PRIMARY KEY,
    at              INTEGER NOT NULL,
    last_at         INTEGER NOT NULL,
    count           INTEGER NOT NULL DEFAULT 1,
    peer            TEXT    NOT NULL,
    transport       TEXT    NOT NULL,
    site_id         INTEGER,             -- NULL: the request named no site we have
    mac             TEXT,
    file            TEXT    NOT NULL,
    result          TEXT    NOT NULL,    -- served, not-found, unauthorized, refused-network, ...
    auth            TEXT    NOT NULL,    -- current, previous, missing, wrong, replayed, none
    auth_generation INTEGER
);
CREATE INDEX fetch_audit_at ON fetch_audit (at);
CREATE INDEX fetch_audit_site ON fetch_audit (site_id, auth_generation, mac);
