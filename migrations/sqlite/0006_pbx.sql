-- PBXes phones and lines are read from, and the (PBX, domain, site) pairs a server keeps in
-- sync in the background (recorded by the first successful `pbx sync`).
CREATE TABLE pbx (
    id          INTEGER PRIMARY KEY,
    name        TEXT    NOT NULL UNIQUE,
    kind        TEXT    NOT NULL CHECK (kind IN ('netsapiens', 'sark')),
    base_url    TEXT    NOT NULL,
    api_version TEXT    NOT NULL DEFAULT 'auto' CHECK (api_version IN ('auto', 'v2', 'v1')),
    created_at  INTEGER NOT NULL
);

CREATE TABLE pbx_syncs (
    pbx_id     INTEGER NOT NULL REFERENCES pbx (id) ON DELETE CASCADE,
    domain     TEXT    NOT NULL,
    site_id    INTEGER NOT NULL REFERENCES sites (id) ON DELETE CASCADE,
    prune      INTEGER NOT NULL DEFAULT 0,
    last_ok_at INTEGER,
    last_error TEXT,
    PRIMARY KEY (pbx_id, domain, site_id)
);
