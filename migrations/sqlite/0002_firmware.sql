-- Firmware store: images by content (sha256), their parsed identity, target assignments per
-- site, model within site and phone, and digests refused at import (so a renamed copy of a
-- refused image is recognised by content wherever it turns up).

CREATE TABLE firmware (
    sha256    TEXT    PRIMARY KEY CHECK (length(sha256) = 64),
    vendor    TEXT    NOT NULL,
    version   TEXT    NOT NULL,
    models    TEXT    NOT NULL,          -- space-separated catalogue names
    size      INTEGER NOT NULL,
    file_name TEXT    NOT NULL UNIQUE,   -- the name phones fetch it by
    added_at  INTEGER NOT NULL
);

-- The layer is given by which of site_id / model / mac are set: site; site and model; mac.
CREATE TABLE firmware_assign (
    id      INTEGER PRIMARY KEY,
    site_id INTEGER REFERENCES sites (id) ON DELETE CASCADE,
    model   TEXT,
    mac     TEXT REFERENCES phones (mac) ON DELETE CASCADE,
    sha256  TEXT NOT NULL REFERENCES firmware (sha256),
    CHECK ((mac IS NULL) = (site_id IS NOT NULL))
);
CREATE UNIQUE INDEX firmware_assign_layer
    ON firmware_assign (ifnull(site_id, 0), ifnull(model, ''), ifnull(mac, ''));

CREATE TABLE firmware_refused (
    sha256    TEXT PRIMARY KEY,
    file_name TEXT NOT NULL,
    reason    TEXT NOT NULL,
    at        INTEGER NOT NULL
);
