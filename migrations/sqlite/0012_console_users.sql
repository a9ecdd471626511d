-- The web console's people: users with a role and an argon2 password hash, their sessions
-- (kept as SHA-256 of the cookie's token, so a copy of the database opens no session), and
-- the log of every change made through the console, with who made it and from where.

CREATE TABLE users (
    id            INTEGER PRIMARY KEY,
    name          TEXT    NOT NULL UNIQUE,
    role          TEXT    NOT NULL CHECK (role IN ('admin', 'tech', 'viewer')),
    password_hash TEXT    NOT NULL,
    created_at    INTEGER NOT NULL
);

CREATE TABLE sessions (
    token_sha256 TEXT    PRIMARY KEY,
    user_id      INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    peer         TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    last_used_at INTEGER NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_id);

CREATE TABLE operator_log (
    id        INTEGER PRIMARY KEY,
    at        INTEGER NOT NULL,
    user_name TEXT    NOT NULL,
    role      TEXT    NOT NULL,
    peer      TEXT    NOT NULL,
    action    TEXT    NOT NULL,
    detail    TEXT    NOT NULL
);
CREATE INDEX operator_log_at ON operator_log (at);
