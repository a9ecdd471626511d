-- PostgreSQL twin of sqlite/0008_site_sip.sql (transport_dns kept beside transport, as there).
ALTER TABLE sites ADD COLUMN outbound_proxy TEXT;
ALTER TABLE sites ADD COLUMN outbound_proxy_2 TEXT;
ALTER TABLE sites ADD COLUMN recheck TEXT NOT NULL DEFAULT 'daily:02:00-04:00';
ALTER TABLE lines ADD COLUMN domain TEXT;
ALTER TABLE sites ADD COLUMN transport_dns BIGINT NOT NULL DEFAULT 0;
