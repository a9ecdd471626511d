-- PostgreSQL twin of sqlite/0005_site_ymcs.sql.
ALTER TABLE sites ADD COLUMN ymcs_site TEXT;
