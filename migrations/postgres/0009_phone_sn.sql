-- PostgreSQL twin of sqlite/0009_phone_sn.sql.
ALTER TABLE phones ADD COLUMN sn TEXT;
