-- PostgreSQL twin of sqlite/0010_render_pages.sql.
CREATE INDEX phones_site_mac ON phones (site_id, mac);
CREATE INDEX settings_mac ON settings (mac) WHERE mac IS NOT NULL;
