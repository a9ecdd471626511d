-- State replicas share (PostgreSQL twin of sqlite/0011_shared_state.sql), and a notification
-- on every change-log row so replicas re-render at once instead of at their next poll.

CREATE TABLE server_secrets (
    name       TEXT   PRIMARY KEY,
    value      BYTEA  NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE FUNCTION phoneprov_changes_notify() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('phoneprov_changes', '');
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER changes_notify AFTER INSERT ON changes
    FOR EACH STATEMENT EXECUTE FUNCTION phoneprov_changes_notify();
