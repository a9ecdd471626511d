-- Rendering a large site a page of phones at a time: phones by site in MAC order, and a
-- phone's own settings by MAC, without scanning or sorting the whole site per page.
CREATE INDEX phones_site_mac ON phones (site_id, mac);
CREATE INDEX settings_mac ON settings (mac) WHERE mac IS NOT NULL;
