-- Provisioning core: sites, phones, their SIP lines, raw vendor settings at layers,
-- files phones upload, and the change log a running server follows to re-render.
-- Timestamps are unix milliseconds (INTEGER), so the same schema ports to PostgreSQL.

CREATE TABLE sites (
    id            INTEGER PRIMARY KEY,
    name          TEXT    NOT NULL UNIQUE,
    key           TEXT    NOT NULL UNIQUE,     -- secret path segment: /p/<key>/
    sip_server    TEXT    NOT NULL,
    sip_port      INTEGER NOT NULL CHECK (sip_port BETWEEN 1 AND 65535),
    transport     TEXT    NOT NULL CHECK (transport IN ('udp', 'tcp', 'tls')),
    time_zone     TEXT,
    ntp           TEXT    NOT NULL DEFAULT '',  -- space-separated host names
    allow_keyless INTEGER NOT NULL DEFAULT 0,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);

CREATE TABLE phones (
    mac        TEXT    PRIMARY KEY CHECK (length(mac) = 12),
    site_id    INTEGER NOT NULL REFERENCES sites (id),
    model      TEXT    NOT NULL,
    label      TEXT    NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX phones_site ON phones (site_id);

-- Written by the server in batches, apart from the phone's own row so a boot storm's
-- writes never contend with an operator's edits.
CREATE TABLE phone_seen (
    mac        TEXT    PRIMARY KEY REFERENCES phones (mac) ON DELETE CASCADE,
    at         INTEGER NOT NULL,
    peer       TEXT    NOT NULL,
    transport  TEXT    NOT NULL,
    file       TEXT    NOT NULL,
    user_agent TEXT,
    model      TEXT,
    firmware   TEXT
);

CREATE TABLE lines (
    mac          TEXT    NOT NULL REFERENCES phones (mac) ON DELETE CASCADE,
    n            INTEGER NOT NULL CHECK (n BETWEEN 1 AND 64),
    user         TEXT    NOT NULL,
    auth_user    TEXT,
    password     TEXT    NOT NULL,
    display_name TEXT,
    label        TEXT,
    PRIMARY KEY (mac, n)
);

-- One row per (layer, vendor, key). The layer is given by which of site_id / model / mac
-- are set: model alone; site alone; site and model; mac alone.
CREATE TABLE settings (
    id      INTEGER PRIMARY KEY,
    site_id INTEGER REFERENCES sites (id) ON DELETE CASCADE,
    model   TEXT,
    mac     TEXT REFERENCES phones (mac) ON DELETE CASCADE,
    vendor  TEXT,
    key     TEXT NOT NULL,
    value   TEXT NOT NULL,
    CHECK ((mac IS NULL) OR (site_id IS NULL AND model IS NULL)),
    CHECK (site_id IS NOT NULL OR model IS NOT NULL OR mac IS NOT NULL)
);
CREATE UNIQUE INDEX settings_layer_key
    ON settings (ifnull(site_id, 0), ifnull(model, ''), ifnull(mac, ''), ifnull(vendor, ''), key);

CREATE TABLE uploads (
    mac        TEXT    NOT NULL REFERENCES phones (mac) ON DELETE CASCADE,
    name       TEXT    NOT NULL,
    body       BLOB    NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (mac, name)
);

-- Appended in the same transaction as every change that alters what phones receive.
-- site_id NULL: everything; mac NULL: the whole site.
CREATE TABLE changes (
    seq     INTEGER PRIMARY KEY AUTOINCREMENT,
    site_id INTEGER,
    mac     TEXT,
    at      INTEGER NOT NULL
);
