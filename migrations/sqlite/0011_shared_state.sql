-- Secrets every server process on this database shares (the Digest nonce key, so a nonce one
-- process minted is good at another and across a restart), and the layer indexes rebuilt with
-- coalesce() — the spelling PostgreSQL also knows — so one ON CONFLICT target fits both.

CREATE TABLE server_secrets (
    name       TEXT    PRIMARY KEY,
    value      BLOB    NOT NULL,
    created_at INTEGER NOT NULL
);

DROP INDEX settings_layer_key;
CREATE UNIQUE INDEX settings_layer_key
    ON settings (coalesce(site_id, 0), coalesce(model, ''), coalesce(mac, ''), coalesce(vendor, ''), key);

DROP INDEX firmware_assign_layer;
CREATE UNIQUE INDEX firmware_assign_layer
    ON firmware_assign (coalesce(site_id, 0), coalesce(model, ''), coalesce(mac, ''));
